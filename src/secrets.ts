import { closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';
import type { SecretRef } from './config/schema.js';

/**
 * Every secret value vigil resolves is registered here, so the log stream, stderr and run errors
 * can scrub it wherever it appears — defence in depth behind pino's path redaction.
 *
 * A secret rarely leaks verbatim: a log line is JSON (a `"` or `\` in the secret comes out
 * escaped), a URL carries it percent-encoded, and a hostile server can echo an `Authorization:
 * Basic` header back base64-encoded. {@link scrub} therefore removes each registered secret in all
 * the forms listed in {@link secretForms}.
 */

/** Secrets at least this long are removed wherever they occur; shorter ones only as a whole value (see {@link scrub}). */
export const MIN_SUBSTRING_SECRET_LENGTH = 6;

/** What a scrubbed secret is replaced with. */
export const REDACTED = '[REDACTED]';

/** The largest secret file read (a PEM private key is a few KB): a bigger "secret" is a wrong path, not a secret. */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;

/** Long secrets and their forms (computed once). */
const long = new Map<string, string[]>();
const short = new Set<string>();
/** One alternation of every form of every long secret, longest first; rebuilt lazily after a registration. */
let longPattern: RegExp | undefined;
/** Short secrets as whole JSON string literals (`"ab"`), in their JSON-escaped form. */
let shortPattern: RegExp | undefined;
let stale = false;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The JSON-escaped form of a string, without the surrounding quotes. */
function jsonEscaped(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}

function htmlEscaped(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/**
 * The base64 text that the secret's bytes alone determine when the secret starts `offset` bytes
 * (0, 1 or 2) into a longer encoded value — as in `base64("user:" + secret)`. The first and last
 * characters, which mix bits of the neighbouring bytes, are left out.
 */
function base64Core(bytes: Buffer, offset: number): string {
  const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
  return encoded.slice(Math.ceil((offset * 8) / 6), Math.floor(((offset + bytes.length) * 8) / 6));
}

/**
 * Every form in which a secret is looked for: as is; JSON-escaped (once and twice: an error
 * message inside a JSON field inside a log line); percent-encoded (`encodeURIComponent`);
 * HTML-escaped (the email body); base64 and base64url, padded and unpadded, of the secret and of
 * its JSON-escaped form, and the part of that base64 which survives at any byte offset inside a
 * longer encoded value (`user:secret`, a whole JSON body).
 */
export function secretForms(secret: string): string[] {
  const forms = new Set<string>([secret, jsonEscaped(secret), jsonEscaped(jsonEscaped(secret)), encodeURIComponent(secret), htmlEscaped(secret)]);
  const toUrl = (s: string) => s.replace(/\+/g, '-').replace(/\//g, '_');
  // base64 of the secret itself, and of its JSON-escaped form (a JSON body encoded whole).
  for (const source of new Set([secret, jsonEscaped(secret)])) {
    const bytes = Buffer.from(source, 'utf8');
    const b64 = bytes.toString('base64');
    for (const form of [b64, b64.replace(/=+$/, '')]) {
      forms.add(form);
      forms.add(toUrl(form));
    }
    for (const offset of [0, 1, 2]) {
      const core = base64Core(bytes, offset);
      // A core this short could match ordinary text; the full forms above still catch the secret.
      if (core.length < 8) continue;
      forms.add(core);
      forms.add(toUrl(core));
    }
  }
  forms.delete('');
  return [...forms];
}

function rebuild(): void {
  stale = false;
  const forms = [...new Set([...long.values()].flat())].sort((a, b) => b.length - a.length);
  longPattern = forms.length > 0 ? new RegExp(forms.map(escapeRegExp).join('|'), 'g') : undefined;
  const literals = [...new Set([...short].map(jsonEscaped))].map(escapeRegExp);
  shortPattern = literals.length > 0 ? new RegExp(`"(?:${literals.join('|')})"`, 'g') : undefined;
}

/** Remembers a secret so {@link scrub} removes it from any text. The empty string is ignored. */
export function registerSecret(value: string): void {
  if (value === '' || long.has(value) || short.has(value)) return;
  if (value.length >= MIN_SUBSTRING_SECRET_LENGTH) long.set(value, secretForms(value));
  else short.add(value);
  // Rebuilt on the next scrub: a burst of registrations (config load) compiles the pattern once.
  stale = true;
}

/**
 * Stops scrubbing a secret that no longer exists (e.g. an expired GitHub App installation
 * token), so the set of patterns does not grow for the life of the daemon.
 */
export function forgetSecret(value: string): void {
  if (long.delete(value) || short.delete(value)) stale = true;
}

/** Whether any secret is registered: when none is, {@link scrub} returns every text unchanged. */
export function hasSecrets(): boolean {
  return long.size > 0 || short.size > 0;
}

/**
 * Replaces every registered secret in `text` with `[REDACTED]`, in every form of
 * {@link secretForms}.
 *
 * Secrets shorter than {@link MIN_SUBSTRING_SECRET_LENGTH} characters are removed only where they
 * are a whole value: the whole text, or a whole JSON string (`"ab"`, as a field value of a log
 * line). Replacing every occurrence of a two-letter password would mangle every line that
 * happens to contain those two letters, and a redaction that fires on ordinary words tells the
 * reader the secret.
 */
export function scrub(text: string): string {
  if (stale) rebuild();
  if (short.has(text)) return REDACTED;
  let out = text;
  if (longPattern) out = out.replace(longPattern, REDACTED);
  if (shortPattern) out = out.replace(shortPattern, `"${REDACTED}"`);
  return out;
}

/** Thrown when a referenced secret cannot be read; names the reference, never a value. */
export class SecretUnavailableError extends Error {
  override name = 'SecretUnavailableError';
}

/** Reads at most `max` + 1 bytes, so that a device or FIFO named by mistake cannot fill memory. */
function readBounded(file: string, max: number): { text: string; tooBig: boolean } {
  // Non-blocking: a FIFO named by mistake must not hang the start waiting for a writer.
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (stat.isFIFO() || stat.isSocket()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTREG' });
    const size = stat.size;
    if (size > max) return { text: '', tooBig: true };
    const buf = Buffer.alloc(max + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > max) return { text: '', tooBig: true };
    }
    return { text: buf.subarray(0, length).toString('utf8'), tooBig: false };
  } finally {
    closeSync(fd);
  }
}

/** Reads a secret from the environment or a file, and registers it for scrubbing. Undefined when an env var is unset. */
export function readSecret(ref: SecretRef, env: NodeJS.ProcessEnv = process.env): string | undefined {
  let value: string | undefined;
  if ('env' in ref) {
    value = env[ref.env];
    if (value === undefined || value === '') return undefined;
  } else {
    let read: { text: string; tooBig: boolean };
    try {
      read = readBounded(ref.file, MAX_SECRET_FILE_BYTES);
    } catch (err) {
      throw new SecretUnavailableError(`cannot read secret file ${ref.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (read.tooBig) throw new SecretUnavailableError(`secret file ${ref.file} is larger than ${MAX_SECRET_FILE_BYTES / 1024} KiB: is it the right file?`);
    value = read.text.replace(/\r?\n$/, '');
    if (value === '') throw new SecretUnavailableError(`secret file ${ref.file} is empty`);
  }
  registerSecret(value);
  return value;
}

/**
 * A warning when a secret file is open to its group or to others (mode & 0o077), naming
 * the file and its mode, never its content. Undefined when the mode is tight or the file cannot
 * be stat'ed (reading it reports that).
 */
export function secretFileModeWarning(file: string): string | undefined {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    return undefined;
  }
  if ((mode & 0o077) === 0) return undefined;
  const octal = (mode & 0o777).toString(8).padStart(4, '0');
  return `secret file ${file} is accessible to group or others (mode ${octal}): restrict it with chmod 600 (or 0400), owned by the user vigil runs as`;
}
