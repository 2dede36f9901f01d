import { constants } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Finding } from '../../src/probe/contract.js';
import { defineProbe } from '../../src/probe/contract.js';
import { AwsDrillParams, evaluateAwsDrills, type AwsDrillObservation, type AwsDrillSpec } from './aws.js';
import { DrillRecord } from './record.js';

/** The probe's params, validated at config load time (the records' rules live in `backups:`; AWS restore testing's here). */
export const Params = z.strictObject({
  /** AWS Backup restore testing, read on every `aws:` target (see README.md). */
  aws: AwsDrillParams.prefault({}),
});
export type Params = z.output<typeof Params>;

/** Drill files read per target, and the size of one: a directory of records, not a data store. */
export const MAX_DRILL_FILES = 10_000;
export const MAX_DRILL_FILE_BYTES = 256 * 1024;

/**
 * Where a target's drill evidence comes from. `records`: JSON files in a directory (systems
 * outside AWS). AWS Backup restore testing joins as another source on the same probe.
 */
export interface RecordsDrillSpec {
  source: 'records';
  dir: string;
  systems: string[];
  maxDaysSinceDrill: number;
  maxRestoreMinutes: number;
}
export type DrillSpec = RecordsDrillSpec | AwsDrillSpec;

/** What collect read: valid records, and the files it could not accept (each one is reported, never skipped). */
export interface RecordsDrillObservation {
  source: 'records';
  target: string;
  dir: string;
  /** Why the directory could not be read at all. */
  unreadable?: string;
  records: Array<{ file: string; record: DrillRecord }>;
  invalid: Array<{ file: string; problem: string }>;
  systems: string[];
  maxDaysSinceDrill: number;
  maxRestoreMinutes: number;
}
export type DrillObservation = RecordsDrillObservation | AwsDrillObservation;

/** One line naming what is wrong with a record, from its zod issues. */
function problemOf(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'not a drill record';
  const where = issue.path.length > 0 ? issue.path.join('.') : 'record';
  return `${where}: ${issue.message}${error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : ''}`;
}

/** Reads a regular file of at most MAX_DRILL_FILE_BYTES; undefined when bigger. O_NONBLOCK: a FIFO named *.json cannot hang the run. */
async function readBounded(file: string): Promise<string | undefined> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!(await fh.stat()).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'not a regular file' });
    const buf = Buffer.alloc(MAX_DRILL_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, length, buf.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_DRILL_FILE_BYTES) return undefined;
    }
    return buf.subarray(0, length).toString('utf8');
  } finally {
    await fh.close();
  }
}

/** Reads every `*.json` file of the directory and validates it as one drill record or an array of them. */
export async function collectRecords(spec: RecordsDrillSpec, target: string, signal: AbortSignal): Promise<RecordsDrillObservation> {
  const dir = path.resolve(spec.dir);
  const obs: RecordsDrillObservation = { source: 'records', target, dir, records: [], invalid: [], systems: spec.systems, maxDaysSinceDrill: spec.maxDaysSinceDrill, maxRestoreMinutes: spec.maxRestoreMinutes };
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  } catch (err) {
    return { ...obs, unreadable: `cannot read the drill directory ${dir} (${(err as NodeJS.ErrnoException).code ?? 'error'}): check backups[].dir and vigil's read permission` };
  }
  if (names.length > MAX_DRILL_FILES) {
    obs.invalid.push({ file: `${names.length - MAX_DRILL_FILES} more files`, problem: `more than ${MAX_DRILL_FILES} drill files: archive old ones elsewhere` });
    names = names.slice(-MAX_DRILL_FILES);
  }
  for (const name of names) {
    signal.throwIfAborted();
    let text: string | undefined;
    try {
      text = await readBounded(path.join(dir, name));
    } catch (err) {
      obs.invalid.push({ file: name, problem: `cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})` });
      continue;
    }
    if (text === undefined) {
      obs.invalid.push({ file: name, problem: `larger than ${MAX_DRILL_FILE_BYTES / 1024} KiB` });
      continue;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      obs.invalid.push({ file: name, problem: 'not valid JSON' });
      continue;
    }
    const parsed = Array.isArray(raw) ? z.array(DrillRecord).max(1000).safeParse(raw) : DrillRecord.safeParse(raw);
    if (!parsed.success) {
      obs.invalid.push({ file: name, problem: problemOf(parsed.error) });
      continue;
    }
    for (const record of Array.isArray(parsed.data) ? parsed.data : [parsed.data]) obs.records.push({ file: name, record });
  }
  return obs;
}

const DAY_MS = 86_400_000;
/** A drill dated this far ahead of vigil's clock is a typo, not clock skew. */
const FUTURE_SLACK_MS = 3_600_000;

/**
 * One finding per system: it passes when a drill passed within `maxDaysSinceDrill` and within
 * `maxRestoreMinutes`, and no drill of the system failed in that window (a failed restore is
 * never outweighed by a later success until it leaves the window). Each unreadable or invalid
 * record file is its own unknown finding: it could be the failed drill.
 */
export function evaluateRecords(o: RecordsDrillObservation, now: Date): Finding[] {
  if (o.unreadable) return [{ resource: o.target, outcome: 'unknown', message: o.unreadable }];
  const findings: Finding[] = o.invalid.map((bad) => ({
    resource: `${o.target}/file:${bad.file}`,
    outcome: 'unknown',
    message: `drill record ${bad.file} is not valid (${bad.problem}): fix it — a record vigil cannot read could be a failed drill`,
  }));
  const future = o.records.filter((r) => Date.parse(r.record.date) > now.getTime() + FUTURE_SLACK_MS);
  for (const f of future) {
    findings.push({ resource: `${o.target}/file:${f.file}`, outcome: 'unknown', message: `drill record ${f.file} for ${f.record.system} is dated ${f.record.date}, in the future: fix its date` });
  }
  const records = o.records.filter((r) => !future.includes(r)).map((r) => r.record);
  const systems = [...new Set([...o.systems, ...records.map((r) => r.system)])].sort();
  if (systems.length === 0) {
    findings.push({ resource: o.target, outcome: 'fail', message: `no restore-drill record in ${o.dir}: run a restore drill and record it there (system, date, durationMinutes, result, operator, evidence)` });
  }
  const since = now.getTime() - o.maxDaysSinceDrill * DAY_MS;
  for (const system of systems) {
    const resource = `${o.target}/${system}`;
    const mine = records.filter((r) => r.system === system).sort((a, b) => Date.parse(b.date) - Date.parse(a.date));
    const window = mine.filter((r) => Date.parse(r.date) >= since);
    const failed = window.filter((r) => r.result === 'failed');
    const passed = window.filter((r) => r.result === 'passed');
    const inTime = passed.filter((r) => r.durationMinutes <= o.maxRestoreMinutes);
    const best = inTime.find((r) => r.validated) ?? inTime[0];
    const details = {
      level: 0,
      maxDaysSinceDrill: o.maxDaysSinceDrill,
      maxRestoreMinutes: o.maxRestoreMinutes,
      drillsInWindow: window.length,
      failedInWindow: failed.length,
      ...(mine[0] ? { newestDrillAt: mine[0].date, newestDrillResult: mine[0].result } : {}),
    };
    const f = failed[0];
    if (f) {
      findings.push({
        resource,
        outcome: 'fail',
        message: `restore drill of ${system} on ${f.date} by ${f.operator} failed (${f.evidence}): a failed restore in the last ${o.maxDaysSinceDrill} days fails until it leaves the window — fix the cause and drill again`,
        details,
      });
    } else if (passed.length === 0) {
      findings.push({
        resource,
        outcome: 'fail',
        message: `no restore drill of ${system} in the last ${o.maxDaysSinceDrill} days (newest: ${mine[0]?.date ?? 'none'}): run one and record it in ${o.dir}`,
        details,
      });
    } else if (!best) {
      const fastest = Math.min(...passed.map((r) => r.durationMinutes));
      findings.push({
        resource,
        outcome: 'fail',
        message: `restore drills of ${system} passed but took at least ${fastest} min, over the ${o.maxRestoreMinutes}-minute recovery time objective: speed up the restore or revisit the RTO`,
        details,
      });
    } else {
      const level = best.validated ? 5 : 4;
      findings.push({
        resource,
        outcome: 'pass',
        message: `restore drill of ${system} on ${best.date} by ${best.operator} passed in ${best.durationMinutes} min (RTO ${o.maxRestoreMinutes} min); ${level === 5 ? 'L5 the restored data was validated' : 'L4 a restore succeeds in isolation'}`,
        details: { ...details, level, drillAt: best.date, durationMinutes: best.durationMinutes, operator: best.operator, evidence: best.evidence, validated: best.validated },
      });
    }
  }
  return findings;
}

export const probe = defineProbe<DrillSpec, Params, DrillObservation>({
  id: 'backup-restore-drill',
  title: 'Restores are drilled: a recent restore drill passed within the RTO and none failed',
  source: 'backup',
  controls: ['restore-testing'],
  schedule: '47 6 * * *',
  actions: ['backup:ListRestoreTestingPlans', 'backup:ListRestoreTestingSelections', 'backup:ListRestoreJobs'],
  docs: {
    checks:
      'For each `backups:` entry of kind drills: every JSON record in `dir` (system, date, durationMinutes, result passed|failed, operator, evidence URL, ' +
      'validated) is valid; for each system (those listed in `systems`, and every system with a record) a drill passed within `maxDaysSinceDrill` days ' +
      '(default 90) and took at most `maxRestoreMinutes` (default 240), and no drill of it failed in that window — a failed restore is never outweighed ' +
      'by a later success. details.level: L4 a restore succeeded in isolation, L5 the restored data was also validated. An invalid or unreadable record ' +
      'is unknown (it could be the failed drill), a record dated in the future too. ' +
      'AWS Backup restore testing, on every `aws:` target (params `aws`): each restore testing plan ran within its schedule; per plan × selected resource type a restore job ' +
      'in the last `aws.maxDaysSinceDrill` days COMPLETED with DeletionStatus SUCCESSFUL within `aws.maxRestoreMinutes`, and none FAILED/ABORTED or failed validation (never outweighed); ' +
      'ValidationStatus SUCCESSFUL is L5; a restored resource AWS failed to delete is its own failing finding; a region without a plan fails (`aws.requirePlans`).',
    permissions:
      'read access to the drill directory (vigil runs no command and writes nothing); for AWS: `backup:ListRestoreTestingPlans`, `backup:ListRestoreTestingSelections`, `backup:ListRestoreJobs` in each region (and `sts:AssumeRole` on the role when `roleArn` is set)',
    remediation:
      'Run a restore of the system into an isolated environment, time it from start to a working system, check the restored data (row counts, checksums, ' +
      'an application smoke test), and record it as a JSON file in the drill directory with a link to the ticket or log. Fix a failed drill\'s cause and drill again.',
  },
  params: Params,
  targets(config) {
    const records = config.backups.flatMap((t) =>
      t.kind === 'drills'
        ? [{ name: t.name, spec: { source: 'records' as const, dir: t.dir, systems: t.systems, maxDaysSinceDrill: t.maxDaysSinceDrill, maxRestoreMinutes: t.maxRestoreMinutes } as DrillSpec }]
        : [],
    );
    // `aws.<name>`: an AWS target's restore testing, beside the drill directories (name a drills entry otherwise).
    return [...records, ...config.aws.map((t) => ({ name: `aws.${t.name}`, spec: { source: 'aws' as const, aws: t } as DrillSpec }))];
  },
  async collect(ctx) {
    const spec = ctx.target.spec;
    if (spec.source === 'aws') return (await import('./aws-collect.js')).collectAwsDrills(spec, ctx.target.name, ctx.params.aws, ctx);
    return collectRecords(spec, ctx.target.name, ctx.signal);
  },
  evaluate(observation, params, now) {
    return observation.source === 'aws' ? evaluateAwsDrills(observation, params.aws, now) : evaluateRecords(observation, now);
  },
});
