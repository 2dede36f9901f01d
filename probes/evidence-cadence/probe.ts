import path from 'node:path';
import { z } from 'zod';
import type { GithubTarget, VigilConfig } from '../../src/config/schema.js';
import { dayOf } from '../../src/posture/days.js';
import { defineProbe, type Finding, type ProbeTarget } from '../../src/probe/contract.js';
import { Cadence, cadenceText, daysBetween, dueDate, type RecordFields } from './record.js';

/** A review that must have a record in the source, optionally with the cadence it must keep. */
const Required = z.strictObject({
  control: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,99}$/i, 'expected a review id, e.g. access-review'),
  /** The cadence the review must keep, whatever its records say (the stricter of the two applies). */
  cadence: Cadence.optional(),
});

const SourceName = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'expected a name of letters, digits, ".", "_" or "-"');

/** Records in a local directory (absolute path: params are not resolved against the config file). */
const LocalSource = z.strictObject({
  name: SourceName,
  dir: z.string().min(1).refine((d) => path.isAbsolute(d), 'expected an absolute directory path'),
  required: z.array(Required).default([]),
  graceDays: z.number().int().min(0).max(365).optional(),
});

/** Records under a path of a GitHub repository, read with the credential of a `github[]` target. */
const GithubSource = z.strictObject({
  name: SourceName,
  /** Name of the `github[]` target whose credential and apiUrl are used. */
  github: z.string().min(1),
  repo: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'expected owner/name'),
  /** Directory in the repository; default the root. */
  path: z
    .string()
    .default('')
    .refine((p) => !p.split('/').includes('..'), 'expected a path inside the repository (no "..")'),
  /** Branch, tag or commit; default the repository's default branch. */
  ref: z.string().min(1).optional(),
  required: z.array(Required).default([]),
  graceDays: z.number().int().min(0).max(365).optional(),
});

/** The probe's params, validated at config load time. */
export const Params = z.strictObject({
  /** Where the evidence records live: local directories and GitHub repository paths. Each is a target. */
  sources: z
    .array(z.union([LocalSource, GithubSource]))
    .default([])
    .superRefine((list, ctx) => {
      const seen = new Set<string>();
      list.forEach((s, i) => {
        if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate source name "${s.name}"` });
        seen.add(s.name);
      });
    }),
  /** Days past a review's due date before it fails. Default 14. */
  graceDays: z.number().int().min(0).max(365).default(14),
  /** Record files read per source. Default 2000. */
  maxFiles: z.number().int().min(1).max(20_000).default(2000),
  /** Largest record file read, bytes. Default 256 KiB. */
  maxFileBytes: z.number().int().min(1024).max(4 * 1024 * 1024).default(256 * 1024),
});
export type Params = z.output<typeof Params>;
export type LocalSource = z.output<typeof LocalSource>;
export type GithubSource = z.output<typeof GithubSource>;

/** A target's spec: the source, and for a GitHub source the `github[]` target it reads with (or why there is none). */
export type EvidenceSpec = (
  | { kind: 'local'; index: number; source: LocalSource }
  | { kind: 'github'; index: number; source: GithubSource; github: GithubTarget | undefined }
) & {
  /** The config's `timezone`: `held` dates are calendar days there. Default UTC. */
  timezone?: string | undefined;
};

/** What collect hands to evaluate: plain JSON. */
export interface CadenceObservation {
  source: string;
  /** `/srv/evidence` or `acme/compliance:reviews@main`. */
  where: string;
  /** Why the source could not be read at all. */
  unreadable?: string;
  records: Array<{ file: string; record: RecordFields }>;
  /** Files that are not records vigil can use, each with the field or reason. */
  invalid: Array<{ file: string; problem: string }>;
  required: Array<{ control: string; cadence?: Cadence | undefined }>;
  graceDays: number;
  /** IANA time zone "today" is taken in (the config's `timezone`); absent = UTC (observations of earlier versions). */
  timezone?: string | undefined;
}

/** Cadence length in days, for "the stricter of two" (months counted as 31, 92, 366 days). */
function cadenceDays(c: Cadence): number {
  return typeof c === 'number' ? c : c === 'monthly' ? 31 : c === 'quarterly' ? 92 : 366;
}

/** The pure verdict: one finding per review (its newest record), one `unknown` per unusable file. See README.md. */
export function evaluateCadence(o: CadenceObservation, now: Date): Finding[] {
  if (o.unreadable !== undefined) return [{ resource: o.source, outcome: 'unknown', message: `cannot read the evidence records of ${o.source} (${o.where}): ${o.unreadable}` }];
  // `held` is a calendar day where the reviews are held: "today" in the config's time zone, not UTC.
  const today = o.timezone !== undefined && o.timezone !== 'UTC' ? dayOf(now, o.timezone) : now.toISOString().slice(0, 10);
  const findings: Finding[] = [];
  for (const bad of o.invalid) {
    findings.push({ resource: `${o.source}:${bad.file}`, outcome: 'unknown', message: `evidence record ${bad.file} cannot be used: ${bad.problem}; fix the file's front matter` });
  }
  const byControl = new Map<string, Array<{ file: string; record: RecordFields }>>();
  for (const r of o.records) {
    if (r.record.held > today) {
      findings.push({
        resource: `${o.source}:${r.file}`,
        outcome: 'unknown',
        message: `evidence record ${r.file} says ${r.record.control} was held on ${r.record.held}, in the future: correct the date`,
      });
      continue;
    }
    const list = byControl.get(r.record.control) ?? [];
    list.push(r);
    byControl.set(r.record.control, list);
  }
  const required = new Map(o.required.map((q) => [q.control, q.cadence]));
  const controls = [...new Set([...byControl.keys(), ...required.keys()])].sort();
  for (const control of controls) {
    const resource = `${o.source}/${control}`;
    const list = (byControl.get(control) ?? []).sort((a, b) => b.record.held.localeCompare(a.record.held) || a.file.localeCompare(b.file));
    const newest = list[0];
    if (!newest) {
      const c = required.get(control);
      findings.push({
        resource,
        outcome: 'fail',
        message: `no evidence record of ${control} in ${o.where}${c !== undefined ? ` (required ${cadenceText(c)})` : ''}: hold the review and add its record (control, held, cadence, owner, evidence)`,
      });
      continue;
    }
    const r = newest.record;
    const demanded = required.get(control);
    const cadence = demanded !== undefined && cadenceDays(demanded) < cadenceDays(r.cadence) ? demanded : r.cadence;
    const due = dueDate(r.held, cadence);
    const late = daysBetween(due, today);
    const details = { file: newest.file, held: r.held, cadence, due, graceDays: o.graceDays, owner: r.owner, evidence: r.evidence, records: list.length };
    if (late > o.graceDays) {
      findings.push({
        resource,
        outcome: 'fail',
        message: `${control} (${cadenceText(cadence)}) was last held on ${r.held}; it was due on ${due} and is ${late} days overdue (grace ${o.graceDays} days): ${r.owner} should hold it and add the record`,
        details,
      });
    } else {
      findings.push({
        resource,
        outcome: 'pass',
        message: `${control} (${cadenceText(cadence)}) was held on ${r.held} (owner ${r.owner}); next due ${due}${late > 0 ? `, ${late} days ago, within the ${o.graceDays}-day grace` : ''}`,
        details,
      });
    }
  }
  if (findings.length === 0) {
    findings.push({ resource: o.source, outcome: 'unknown', message: `${o.where} holds no evidence record (*.md with front matter): add records, or list the reviews under required` });
  }
  return findings;
}

/** The sources as targets; a GitHub source whose `github` names no target is kept (its runs error, naming the key). */
export function cadenceTargets(config: VigilConfig): Array<ProbeTarget<EvidenceSpec>> {
  const parsed = Params.safeParse(config.probes['evidence-cadence']?.params ?? {});
  if (!parsed.success) return [];
  return parsed.data.sources.map((source, index) =>
    'dir' in source
      ? { name: source.name, spec: { kind: 'local', index, source, timezone: config.timezone } }
      : { name: source.name, spec: { kind: 'github', index, source, github: config.github.find((t) => t.name === source.github), timezone: config.timezone } },
  );
}

export const probe = defineProbe<EvidenceSpec, Params, CadenceObservation>({
  id: 'evidence-cadence',
  title: 'Recurring reviews (access, management, board, risk) are held on their cadence',
  source: 'evidence',
  controls: ['review-cadence'],
  schedule: '11 6 * * *',
  docs: {
    checks:
      'Each source under `params.sources` (a local directory, or a path of a GitHub repository read through the contents API) holds evidence records: Markdown files with YAML front matter ' +
      '`control`, `held` (YYYY-MM-DD), `cadence` (`monthly`, `quarterly`, `yearly` or a number of days), `owner` and `evidence` (a link). ' +
      'For each review id, its newest record must not be older than its cadence plus `graceDays` (default 14): an overdue review fails, naming the cadence and how many days late; ' +
      'a review listed under `required` without any record fails. A malformed record is `unknown` naming the file and the field; a record dated in the future is `unknown`.',
    permissions:
      'Local directory: read access for the vigil user (symbolic links are followed only inside the directory). GitHub source: repository permission "Contents: read" ' +
      '(classic token: `repo` for a private repository). Nothing is written.',
    remediation:
      'Hold the overdue review, then add its record (a Markdown file with the front matter fields) next to the others; fix a malformed record\'s named field. See probes/evidence-cadence/README.md.',
  },
  params: Params,
  targets: cadenceTargets,
  // The file walk and the GitHub client stack load on the first run (collect.ts).
  async collect(ctx) {
    return (await import('./collect.js')).collectCadence(ctx);
  },
  evaluate(observation, _params, now) {
    return evaluateCadence(observation, now);
  },
});
