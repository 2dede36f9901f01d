/**
 * An evidence record of evidence-cadence: a Markdown file whose YAML front matter says which
 * recurring review it evidences, when it was held, how often it must be held, who owns it and
 * where the evidence (minutes, sign-off) lives. Parsing is pure and never throws on content.
 *
 * ```markdown
 * ---
 * control: access-review
 * held: 2026-10-06
 * cadence: quarterly        # monthly | quarterly | yearly | a number of days
 * owner: Dana Reyes (CISO)
 * evidence: https://drive.example.com/reviews/2026-q3-access-review.pdf
 * ---
 * # Q3 2026 access review
 * ```
 */
import YAML from 'yaml';
import { z } from 'zod';
import { FORBIDDEN_KEYS, MAX_YAML_ALIASES } from '../../src/config/yaml.js';

/** Largest front matter accepted, bytes: a handful of lines. */
export const MAX_FRONT_MATTER_BYTES = 16 * 1024;

/** A calendar date `YYYY-MM-DD` that exists. */
const IsoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date YYYY-MM-DD').refine((s) => {
  const d = new Date(`${s}T00:00:00Z`);
  return Number.isFinite(d.getTime()) && d.toISOString().slice(0, 10) === s;
}, 'expected a date that exists (YYYY-MM-DD)');

/** How often a review must be held: a named period or a number of days. */
export const Cadence = z.union([
  z.enum(['monthly', 'quarterly', 'yearly']),
  z.number().int().min(1, 'expected monthly, quarterly, yearly or a number of days (1-3660)').max(3660, 'expected at most 3660 days'),
]);
export type Cadence = z.infer<typeof Cadence>;

/** The front matter fields vigil reads; other keys (title, attendees…) are allowed and ignored. */
export const EvidenceRecord = z.looseObject({
  control: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,99}$/i, 'expected a review id of letters, digits, ".", "_" or "-", e.g. access-review'),
  held: IsoDate,
  cadence: z.preprocess((v) => (typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v.trim()) : v), Cadence),
  owner: z.string().trim().min(1, 'expected the owner (a person or role)').max(200),
  evidence: z
    .string()
    .trim()
    .min(1, 'expected a link to the evidence')
    .max(2000)
    .refine((s) => !/^[a-z][a-z0-9+.-]*:/i.test(s) || /^https?:\/\//i.test(s), 'expected an http(s) link or a relative path'),
});
export type EvidenceRecord = z.output<typeof EvidenceRecord>;

/** The fields of a parsed record handed to evaluate (plain JSON). */
export interface RecordFields {
  control: string;
  held: string;
  cadence: Cadence;
  owner: string;
  evidence: string;
}

export type ParsedRecord = { ok: true; record: RecordFields } | { ok: false; problem: string };

/** The front matter between a first line `---` and the next `---` (or `...`) line. */
function frontMatterOf(text: string): string | undefined {
  const t = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const m = /^---[ \t]*\r?\n([\s\S]*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|$)/.exec(t);
  if (m) return m[1] ?? '';
  return /^---[ \t]*\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|$)/.test(t) ? '' : undefined;
}

/** Parses one record file's text; the problem names the field. Never throws. */
export function parseRecord(text: string): ParsedRecord {
  const fm = frontMatterOf(text);
  if (fm === undefined) return { ok: false, problem: 'no YAML front matter (the file must start with a line "---" and close it with "---")' };
  if (Buffer.byteLength(fm, 'utf8') > MAX_FRONT_MATTER_BYTES) return { ok: false, problem: `front matter larger than ${MAX_FRONT_MATTER_BYTES / 1024} KiB` };
  let value: unknown;
  try {
    // The core schema: dates stay strings, no custom tags; duplicate keys are errors.
    const doc = YAML.parseDocument(fm, { prettyErrors: false, uniqueKeys: true, schema: 'core' });
    if (doc.errors.length > 0) {
      const e = doc.errors[0] as YAML.YAMLError;
      return { ok: false, problem: `front matter is not valid YAML (${(e.code ?? 'error').toLowerCase()})` };
    }
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch {
    return { ok: false, problem: 'front matter is not valid YAML (too many aliases or too deep)' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { ok: false, problem: 'front matter is not a mapping of fields (control, held, cadence, owner, evidence)' };
  const forbidden = Object.keys(value).find((k) => FORBIDDEN_KEYS.has(k));
  if (forbidden !== undefined) return { ok: false, problem: `field "${forbidden}" is not allowed (a reserved JavaScript property name)` };
  const parsed = EvidenceRecord.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue && issue.path.length > 0 ? String(issue.path[0]) : 'front matter';
    const missing = issue && issue.code === 'invalid_type' && (value as Record<string, unknown>)[field] === undefined;
    return { ok: false, problem: missing ? `field "${field}" is missing` : `field "${field}": ${issue?.message ?? 'invalid'}` };
  }
  const r = parsed.data;
  return { ok: true, record: { control: r.control, held: r.held, cadence: r.cadence, owner: r.owner, evidence: r.evidence } };
}

/** The day (`YYYY-MM-DD`) a review held on `held` is next due, by its cadence (month ends clamp: 31 Jan + 1 month = 28/29 Feb). */
export function dueDate(held: string, cadence: Cadence): string {
  const d = new Date(`${held}T00:00:00Z`);
  if (typeof cadence === 'number') return new Date(d.getTime() + cadence * 86_400_000).toISOString().slice(0, 10);
  const months = cadence === 'monthly' ? 1 : cadence === 'quarterly' ? 3 : 12;
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + months;
  const lastDay = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  return new Date(Date.UTC(y, m, Math.min(d.getUTCDate(), lastDay))).toISOString().slice(0, 10);
}

/** Whole days from `a` to `b` (both `YYYY-MM-DD`). */
export function daysBetween(a: string, b: string): number {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000);
}

/** A cadence in words: `quarterly`, `every 30 days`. */
export function cadenceText(c: Cadence): string {
  return typeof c === 'number' ? `every ${c} day${c === 1 ? '' : 's'}` : c;
}
