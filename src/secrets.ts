import { readFileSync } from 'node:fs';
import type { SecretRef } from './config/schema.js';

/**
 * Every secret value vigil resolves is registered here, so the log stream and run errors can
 * scrub it wherever it appears — defence in depth behind pino's path redaction.
 */
const known = new Set<string>();

/** Remembers a secret so {@link scrub} removes it from any text. Values shorter than 6 chars are not tracked (too many false hits). */
export function registerSecret(value: string): void {
  if (value.length >= 6) known.add(value);
}

/** Replaces every registered secret in `text` with `[REDACTED]`. */
export function scrub(text: string): string {
  let out = text;
  for (const secret of known) if (out.includes(secret)) out = out.split(secret).join('[REDACTED]');
  return out;
}

/** Thrown when a referenced secret cannot be read; names the reference, never a value. */
export class SecretUnavailableError extends Error {
  override name = 'SecretUnavailableError';
}

/** Reads a secret from the environment or a file, and registers it for scrubbing. Undefined when an env var is unset. */
export function readSecret(ref: SecretRef, env: NodeJS.ProcessEnv = process.env): string | undefined {
  let value: string | undefined;
  if ('env' in ref) {
    value = env[ref.env];
    if (value === undefined || value === '') return undefined;
  } else {
    try {
      value = readFileSync(ref.file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new SecretUnavailableError(`cannot read secret file ${ref.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (value === '') throw new SecretUnavailableError(`secret file ${ref.file} is empty`);
  }
  registerSecret(value);
  return value;
}
