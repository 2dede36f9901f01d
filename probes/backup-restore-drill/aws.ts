/**
 * The AWS half of backup-restore-drill, pure: AWS Backup restore testing plans, their selections
 * and the restore jobs they ran, judged per plan × selected resource type. The I/O is
 * aws-collect.ts, loaded on the first run only (it loads the AWS SDK).
 */
import { z } from 'zod';
import { deniedFinding, type AccountObservation, type Readable } from '../../src/clients/aws/denied.js';
import type { AwsTarget } from '../../src/config/schema.js';
import type { Finding } from '../../src/probe/contract.js';

/** The `aws` params of backup-restore-drill (every `aws:` target is read). */
export const AwsDrillParams = z.strictObject({
  /** Restore jobs are looked at this far back; a passed one must be in it, a failed one in it fails. Default 90. */
  maxDaysSinceDrill: z.number().int().min(1).max(3660).default(90),
  /** Recovery time objective: a restore job that took longer (CreationDate to CompletionDate) does not count as passed. Default 240. */
  maxRestoreMinutes: z.number().positive().default(240),
  /** Only these of the target's regions (empty: all). */
  regions: z.array(z.string()).default([]),
  /** Only these `aws:` target names (empty: every one). */
  targets: z.array(z.string()).default([]),
  /** A region with no restore testing plan fails. Default true. */
  requirePlans: z.boolean().default(true),
});
export type AwsDrillParams = z.output<typeof AwsDrillParams>;

/** An `aws:` target as backup-restore-drill reads it. */
export interface AwsDrillSpec {
  source: 'aws';
  aws: AwsTarget;
}

/** A restore testing plan (ListRestoreTestingPlans) with its selections. Times ISO. */
export interface PlanView {
  name: string;
  arn: string;
  schedule: string;
  startWindowHours?: number;
  lastExecutionTime?: string;
  creationTime?: string;
  /** ProtectedResourceType of each selection (ListRestoreTestingSelections). */
  selections: Readable<string[]>;
}

/** A restore job (ListRestoreJobs). */
export interface RestoreJobView {
  id: string;
  planArn?: string;
  resourceType?: string;
  status: string;
  statusMessage?: string;
  creationDate?: string;
  completionDate?: string;
  createdResourceArn?: string;
  validationStatus?: string;
  validationStatusMessage?: string;
  deletionStatus?: string;
  deletionStatusMessage?: string;
}

/** What the AWS collect hands to evaluate. */
export type AwsDrillObservation = { source: 'aws'; target: string; selected: boolean } & AccountObservation<{
  since: string;
  regions: Array<{ region: string; plans: Readable<PlanView[]>; jobs: Readable<RestoreJobView[]> }>;
}>;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * The longest gap between two runs a plan's schedule allows, in hours: `rate(N unit)`, or a
 * `cron(min hour dom month dow year)` read as daily (dom and dow open), weekly (a dow) or monthly
 * (a dom). Undefined when vigil cannot read it (then the plan is judged by its jobs only, said so).
 */
export function schedulePeriodHours(expression: string): number | undefined {
  const rate = /^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$/.exec(expression.trim());
  if (rate) {
    const n = Number(rate[1]);
    return rate[2]?.startsWith('minute') ? n / 60 : rate[2]?.startsWith('hour') ? n : n * 24;
  }
  const cron = /^cron\(([^)]*)\)$/.exec(expression.trim());
  const fields = cron?.[1]?.trim().split(/\s+/);
  if (!fields || fields.length !== 6) return undefined;
  const [, hour, dom, month, dow] = fields as [string, string, string, string, string, string];
  const open = (f: string) => f === '*' || f === '?';
  if (!open(month)) return 366 * 24;
  if (!open(dom)) return 31 * 24;
  // `2#1` (first Monday) and `6L` (last Friday) fire once a month, not once a week.
  if (/[#L]/.test(dow)) return 31 * 24;
  if (!open(dow)) return 7 * 24;
  // Open day fields: at least daily, whatever the hours say.
  void hour;
  return 24;
}

const minutes = (j: RestoreJobView) => (j.creationDate && j.completionDate ? Math.round(((Date.parse(j.completionDate) - Date.parse(j.creationDate)) / 60_000) * 10) / 10 : undefined);
const said = (m: string | undefined) => (m ? `: "${m.slice(0, 200)}"` : '');

/**
 * Per region: each restore testing plan ran within its schedule; per plan × selected resource
 * type, a restore job in the window COMPLETED, cleaned up (DeletionStatus SUCCESSFUL) and within
 * the RTO, and no restore job failed (never outweighed by a success); ValidationStatus SUCCESSFUL
 * is L5, FAILED/TIMED_OUT fails. A restored resource AWS failed to delete is its own finding.
 */
export function evaluateAwsDrills(o: AwsDrillObservation, params: AwsDrillParams, now: Date): Finding[] {
  if (!o.selected) return [{ resource: o.target, outcome: 'not_applicable', message: `AWS target ${o.target} is not among backup-restore-drill's aws.targets` }];
  if (o.denied) return [deniedFinding(o.account, `AWS Backup restore testing in ${o.account} (the role could not be assumed)`, o.denied)];
  const findings: Finding[] = [];
  const since = Date.parse(o.data?.since ?? '');
  for (const { region, plans, jobs } of o.data?.regions ?? []) {
    const where = `${o.account}/${region}`;
    if (!plans.readable) {
      findings.push(deniedFinding(where, `the restore testing plans of ${o.account} in ${region}`, plans));
      continue;
    }
    if (plans.value.length === 0) {
      findings.push(
        params.requirePlans
          ? { resource: where, outcome: 'fail', message: `no AWS Backup restore testing plan in ${region}: create one (AWS Backup > Restore testing) so restores are drilled on a schedule`, details: { level: 0 } }
          : { resource: where, outcome: 'not_applicable', message: `no AWS Backup restore testing plan in ${region}` },
      );
      continue;
    }
    for (const plan of plans.value) {
      const planWhere = `${where}/${plan.name}`;
      // The plan ran within its schedule (plus its start window and a day of slack).
      const period = schedulePeriodHours(plan.schedule);
      const last = plan.lastExecutionTime ?? undefined;
      const allowed = period !== undefined ? (period + (plan.startWindowHours ?? 24) + 24) * HOUR : undefined;
      const ranOnTime = allowed === undefined || (last !== undefined && now.getTime() - Date.parse(last) <= allowed);
      if (period === undefined) {
        // A schedule vigil cannot read leaves "ran on time" unjudged: said, never passed silently.
        findings.push({
          resource: planWhere,
          outcome: 'unknown',
          message: `restore testing plan ${plan.name}: vigil cannot read its schedule "${plan.schedule.slice(0, 100)}", so whether it ran on time is not judged`,
          details: { schedule: plan.schedule, lastExecutionTime: last ?? null },
        });
      } else if (!ranOnTime) {
        findings.push({
          resource: planWhere,
          outcome: 'fail',
          message: `restore testing plan ${plan.name} (${plan.schedule}) has not run since ${last ?? 'it was created'}: its schedule allows ${Math.round((allowed ?? 0) / HOUR)} h between runs — check the plan and its IAM role`,
          details: { schedule: plan.schedule, lastExecutionTime: last ?? null },
        });
      }
      if (!plan.selections.readable) {
        findings.push(deniedFinding(planWhere, `the selections of restore testing plan ${plan.name}`, plan.selections));
        continue;
      }
      if (plan.selections.value.length === 0) {
        findings.push({ resource: planWhere, outcome: 'fail', message: `restore testing plan ${plan.name} selects no resource type: add a restore testing selection` });
        continue;
      }
      if (!jobs.readable) {
        findings.push(deniedFinding(planWhere, `the restore jobs of ${o.account} in ${region}`, jobs));
        continue;
      }
      const planJobs = jobs.value.filter((j) => j.planArn === plan.arn && j.creationDate !== undefined && Date.parse(j.creationDate) >= since).sort((a, b) => Date.parse(b.creationDate ?? '') - Date.parse(a.creationDate ?? ''));
      for (const type of [...new Set(plan.selections.value)].sort()) {
        const resource = `${planWhere}/${type}`;
        const mine = planJobs.filter((j) => j.resourceType === type);
        for (const j of mine.filter((x) => x.deletionStatus === 'FAILED')) {
          findings.push({
            resource: `${resource}/cleanup:${j.id}`,
            outcome: 'fail',
            message: `AWS could not delete ${j.createdResourceArn ?? 'the resource'} restored by test job ${j.id}${said(j.deletionStatusMessage)}: delete it yourself (it costs money and holds a copy of production data)`,
            details: { restoreJobId: j.id, createdResourceArn: j.createdResourceArn, deletionStatus: j.deletionStatus },
          });
        }
        const failed = mine.filter((j) => j.status === 'FAILED' || j.status === 'ABORTED');
        const invalid = mine.filter((j) => j.validationStatus === 'FAILED' || j.validationStatus === 'TIMED_OUT');
        const completed = mine.filter((j) => j.status === 'COMPLETED' && j.deletionStatus === 'SUCCESSFUL');
        const inTime = completed.filter((j) => (minutes(j) ?? Infinity) <= params.maxRestoreMinutes);
        const best = inTime.find((j) => j.validationStatus === 'SUCCESSFUL') ?? inTime[0];
        const details = { level: 0, resourceType: type, maxDaysSinceDrill: params.maxDaysSinceDrill, maxRestoreMinutes: params.maxRestoreMinutes, restoreJobsInWindow: mine.length, failedInWindow: failed.length };
        const problems: string[] = [];
        for (const j of failed) problems.push(`restore test job ${j.id} (${j.creationDate}) ${j.status}${said(j.statusMessage)}`);
        for (const j of invalid) problems.push(`restore test job ${j.id} (${j.creationDate}): validation ${j.validationStatus}${said(j.validationStatusMessage)}`);
        if (problems.length > 0) {
          findings.push({ resource, outcome: 'fail', message: `${problems.join('; ')} — a failed restore test in the last ${params.maxDaysSinceDrill} days fails until it leaves the window: fix the cause`, details });
        } else if (completed.length === 0) {
          findings.push({ resource, outcome: 'fail', message: `no ${type} restore test of plan ${plan.name} completed and was cleaned up in the last ${params.maxDaysSinceDrill} days (${mine.length} job(s) in the window)`, details });
        } else if (!best) {
          const fastest = Math.min(...completed.map((j) => minutes(j) ?? Infinity));
          findings.push({ resource, outcome: 'fail', message: `${type} restore tests of plan ${plan.name} completed but took at least ${fastest} min, over the ${params.maxRestoreMinutes}-minute RTO`, details });
        } else {
          const level = best.validationStatus === 'SUCCESSFUL' ? 5 : 4;
          findings.push({
            resource,
            outcome: 'pass',
            message: `${type} restore test ${best.id} of plan ${plan.name} on ${best.creationDate} completed in ${minutes(best)} min (RTO ${params.maxRestoreMinutes} min) and was cleaned up; ${level === 5 ? 'L5 the restored data was validated' : 'L4 a restore succeeds in isolation'}`,
            details: { ...details, level, restoreJobId: best.id, drillAt: best.creationDate, durationMinutes: minutes(best), validationStatus: best.validationStatus ?? null },
          });
        }
      }
    }
  }
  return findings;
}
