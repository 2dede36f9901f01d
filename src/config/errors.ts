import type { z } from 'zod';

/** Exit code for bad configuration (sysexits EX_CONFIG). */
export const EXIT_CONFIG = 78;

/** Longest problem line kept: a problem names a key path and a short value, never a file's content. */
export const MAX_PROBLEM_LENGTH = 500;

/** Unknown keys named one by one at one level; past this, one line says how many more (a file that is not a vigil config at all). */
export const MAX_UNKNOWN_KEYS_LISTED = 10;

/** Longest key named as written; longer keys are cut (see {@link formatKey}). */
export const MAX_KEY_LENGTH = 40;

/** How much of a key that is not a plain name (letters, digits, `_`, `-`) is shown, escaped. */
const ODD_KEY_SHOWN = 12;

/** One line, control characters escaped (a config error must not drive the terminal), bounded. */
export function safeLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  const escaped = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return escaped.length > MAX_PROBLEM_LENGTH ? `${escaped.slice(0, MAX_PROBLEM_LENGTH - 1)}…` : escaped;
}

/** Invalid configuration: one line per problem, each naming the file and the key path. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly problems: string[];
  constructor(problems: string[]) {
    const lines = problems.map(safeLine);
    super(lines.join('\n'));
    this.problems = lines;
  }
}

/**
 * A key as it appears in a problem line. A plain name (letters, digits, `_`, `-`, as every vigil
 * key is) is shown as written, cut at {@link MAX_KEY_LENGTH} characters. Anything else is shown
 * JSON-escaped and cut to its first few characters with its length: a file that is not a
 * config at all (`--config /etc/shadow`) has its lines parsed as keys, and an error must name
 * the mistake without printing the file.
 */
export function formatKey(key: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(key)) return key.length > MAX_KEY_LENGTH ? `${key.slice(0, MAX_KEY_LENGTH)}…` : key;
  if (key.length <= ODD_KEY_SHOWN) return JSON.stringify(key);
  return `${JSON.stringify(key.slice(0, ODD_KEY_SHOWN))}… (${key.length} characters)`;
}

/** A value quoted in a problem line: JSON-escaped, at most `max` characters. */
export function formatValue(value: string, max = MAX_KEY_LENGTH): string {
  return value.length <= max ? JSON.stringify(value) : `${JSON.stringify(value.slice(0, max))}…`;
}

/** `a.b[0].c` from a zod path; keys shown with {@link formatKey}. */
export function formatPath(pathParts: readonly PropertyKey[]): string {
  let out = '';
  for (const part of pathParts) {
    if (typeof part === 'number') out += `[${part}]`;
    else {
      const key = formatKey(String(part));
      out += out === '' ? key : `.${key}`;
    }
  }
  return out === '' ? '(top level)' : out;
}

/** One human line per zod issue, `file: key.path: message`. Unknown keys name the key itself. */
export function formatIssues(file: string, issues: readonly z.core.$ZodIssue[], base: PropertyKey[] = []): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys.slice(0, MAX_UNKNOWN_KEYS_LISTED)) lines.push(`${file}: ${formatPath([...base, ...issue.path, key])}: unknown key`);
      const more = issue.keys.length - MAX_UNKNOWN_KEYS_LISTED;
      if (more > 0) lines.push(`${file}: ${formatPath([...base, ...issue.path])}: ${more} more unknown key(s) not listed: is this the right file?`);
    } else if (issue.code === 'invalid_union' && issue.errors.length > 0 && !issue.message.startsWith('secrets')) {
      // Report the branch that got furthest, rather than "invalid input".
      const best = [...issue.errors].sort((a, b) => depth(b) - depth(a))[0] ?? [];
      lines.push(...formatIssues(file, best, [...base, ...issue.path]));
    } else {
      lines.push(`${file}: ${formatPath([...base, ...issue.path])}: ${issue.message}`);
    }
  }
  return [...new Set(lines)];
}

function depth(issues: readonly z.core.$ZodIssue[]): number {
  return Math.max(0, ...issues.map((i) => i.path.length + (i.code === 'invalid_type' ? 0 : 0.5)));
}

