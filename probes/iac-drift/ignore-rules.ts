import { z } from 'zod';

/**
 * Ignore rules an auditor would sign: each names what it hides (an address glob and an
 * attribute-path glob, both required), why, who owns it, who approved it, and when it expires —
 * at most {@link MAX_IGNORE_DAYS} days ahead. An expired rule stops matching and is reported.
 * A rule never hides a delete or a replacement (see evaluate.ts).
 *
 * This module imports zod only: src/config/schema.ts imports it for the `iac:` section.
 */

/** Longest an ignore rule may run: a longer one is a config error. */
export const MAX_IGNORE_DAYS = 180;

/** The file read beside a workspace's code. */
export const IGNORE_FILE_NAME = 'vigil.drift-ignore.yaml';

const Text = z.string().trim().min(1).max(500);

/** One ignore rule (in the config under `iac[].ignore`, or in `vigil.drift-ignore.yaml`). */
export const IgnoreRule = z.strictObject({
  /** Resource address glob: `*` within one dot-separated step, `**` across steps, `?` one character. */
  address: z.string().min(1).max(500),
  /** Attribute path glob (e.g. `tags.*`, `latest_restorable_time`): required, so a rule never hides a whole resource by accident. */
  attribute: z.string().min(1).max(500),
  reason: Text,
  owner: Text,
  approvedBy: Text,
  /** Last day the rule applies (YYYY-MM-DD, UTC), at most 180 days ahead. */
  expires: z
    .union([z.string(), z.date()])
    .transform((v, ctx) => {
      const text = v instanceof Date ? v.toISOString().slice(0, 10) : v;
      if (!/^\d{4}-\d{2}-\d{2}$/.test(text) || Number.isNaN(Date.parse(`${text}T00:00:00Z`))) {
        ctx.addIssue({ code: 'custom', message: 'expected a date YYYY-MM-DD' });
        return z.NEVER;
      }
      return text;
    }),
});
export type IgnoreRule = z.output<typeof IgnoreRule>;

/** The content of `vigil.drift-ignore.yaml`. */
export const IgnoreFile = z.strictObject({ ignore: z.array(IgnoreRule).max(1000).default([]) });

/** End of a rule's last day, in ms since the epoch. */
export function ruleEndsAt(rule: IgnoreRule): number {
  return Date.parse(`${rule.expires}T00:00:00Z`) + 86_400_000;
}

/** A problem per rule that expires more than 180 days after `now` ("where: message"). */
export function ignoreRuleProblems(rules: readonly IgnoreRule[], now: Date, where: string): string[] {
  const limit = now.getTime() + MAX_IGNORE_DAYS * 86_400_000;
  const problems: string[] = [];
  rules.forEach((r, i) => {
    if (ruleEndsAt(r) - 86_400_000 > limit) {
      problems.push(`${where}[${i}].expires: ${r.expires} is more than ${MAX_IGNORE_DAYS} days ahead: an ignore rule must be renewed (and re-approved) at least every ${MAX_IGNORE_DAYS} days`);
    }
  });
  return problems;
}

const globCache = new Map<string, RegExp>();

/**
 * Glob over dot-separated paths: `**` any run of characters, `*` any run without a dot, `?` one
 * character. Everything else is literal (brackets and quotes of `aws_x.y["k"]` included).
 */
export function globToRegExp(glob: string): RegExp {
  let re = globCache.get(glob);
  if (re) return re;
  let src = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*' && glob[i + 1] === '*') {
      src += '.*';
      i++;
    } else if (c === '*') src += '[^.]*';
    else if (c === '?') src += '.';
    else src += c.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  re = new RegExp(`^${src}$`, 's');
  if (globCache.size > 10_000) globCache.clear();
  globCache.set(glob, re);
  return re;
}

/** True when `text` matches the glob. */
export function globMatch(glob: string, text: string): boolean {
  return globToRegExp(glob).test(text);
}

/** A rule as published in details: what it hides and who signed it. */
export function describeRule(rule: IgnoreRule, source: string): Record<string, string> {
  return { address: rule.address, attribute: rule.attribute, reason: rule.reason, owner: rule.owner, approvedBy: rule.approvedBy, expires: rule.expires, source };
}
