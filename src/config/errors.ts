import type { z } from 'zod';

/** Exit code for bad configuration (sysexits EX_CONFIG). */
export const EXIT_CONFIG = 78;

/** Invalid configuration: one line per problem, each naming the file and the key path. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

/** `a.b[0].c` from a zod path. */
export function formatPath(pathParts: readonly PropertyKey[]): string {
  let out = '';
  for (const part of pathParts) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(top level)' : out;
}

/** One human line per zod issue, `file: key.path: message`. Unknown keys name the key itself. */
export function formatIssues(file: string, issues: readonly z.core.$ZodIssue[], base: PropertyKey[] = []): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) lines.push(`${file}: ${formatPath([...base, ...issue.path, key])}: unknown key`);
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

