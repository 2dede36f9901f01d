/**
 * github-workflow-runs, the pure part: params, the observation collect hands over, and the
 * verdict on each configured workflow's newest runs.
 */
import { z } from 'zod';
import type { Finding } from '../../src/probe/contract.js';

/** One workflow that must run and pass: e.g. the nightly DR scenarios, or a restore drill. */
export const WorkflowSpec = z.strictObject({
  /** `owner/name` of the repository holding the workflow. */
  repo: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'expected owner/name'),
  /** The workflow's file name under `.github/workflows/`, e.g. `dr-nightly.yml`. */
  workflow: z.string().regex(/^[A-Za-z0-9_.-]+\.ya?ml$/, 'expected a workflow file name such as dr-nightly.yml'),
  /** Branch whose runs count, e.g. `main`. */
  branch: z.string().min(1),
  /** The newest concluded run must have started within this many hours. */
  maxAgeHours: z.number().positive().max(24 * 400),
  /** Job names (or `*` globs, for matrix jobs such as `scenario (*)`) that must each have succeeded in that run. */
  jobs: z.array(z.string().min(1)).min(1).optional(),
  /** At least this many jobs of that run must have succeeded (e.g. 22 DR scenarios). */
  minJobs: z.number().int().min(1).optional(),
  /** The `github[]` target whose credential reads it. Default: the target whose `org` owns the repository or whose `repos` list it, else the only target. */
  target: z.string().min(1).optional(),
});
export type WorkflowSpec = z.output<typeof WorkflowSpec>;

/** The probe's params (`probes.github-workflow-runs.params`). */
export const Params = z.strictObject({
  workflows: z
    .array(WorkflowSpec)
    .default([])
    .superRefine((list, ctx) => {
      const seen = new Map<string, number>();
      list.forEach((w, i) => {
        const key = workflowResource(w).toLowerCase();
        const first = seen.get(key);
        if (first === undefined) seen.set(key, i);
        else ctx.addIssue({ code: 'custom', path: [i], message: `duplicate of workflows[${first}] (same repo, workflow and branch): remove one` });
      });
    }),
});
export type Params = z.output<typeof Params>;

/** A workflow run as the runs list shows it (the fields judged). */
export interface RunRecord {
  id: number;
  runNumber: number | undefined;
  status: string;
  conclusion: string | null;
  headBranch: string | null;
  /** `run_started_at` (of the latest attempt), else `created_at`. */
  startedAt: string;
  url: string | undefined;
  /** Set when the run's code came from another repository (`head_repository`, e.g. a fork's pull request): it measured that code, not this repository's. */
  otherHeadRepo?: string;
}

export interface JobRecord {
  name: string;
  status: string;
  conclusion: string | null;
}

export type WorkflowRead =
  | {
      readable: true;
      /** Completed runs on the branch, newest first (one page). */
      runs: RunRecord[];
      /** The jobs of the newest concluded run when it succeeded and jobs are required; `readable: false` when refused. */
      jobs?: { runId: number; readable: true; jobs: JobRecord[] } | { runId: number; readable: false; reason: string };
    }
  | { readable: false; notFound: boolean; reason: string };

export interface WorkflowRunsObservation {
  workflows: Array<{ spec: WorkflowSpec; read: WorkflowRead }>;
  /** Configured workflows no `github[]` target covers (reported by the first target). */
  unassigned: Array<{ spec: WorkflowSpec; reason: string }>;
}

export function workflowResource(w: Pick<WorkflowSpec, 'repo' | 'workflow' | 'branch'>): string {
  return `${w.repo}:${w.workflow}@${w.branch}`;
}

/** Conclusions that measure the system: a success, or a failure of it. Everything else (cancelled, skipped, neutral, stale, action_required) measured nothing. */
const FAILED = new Set(['failure', 'timed_out', 'startup_failure']);
export function isDecisive(conclusion: string | null): boolean {
  return conclusion === 'success' || (conclusion !== null && FAILED.has(conclusion));
}

/** The newest run that measured something (success or a failure), skipping cancelled / skipped ones. Shared with collect. */
export function newestConcluded(runs: readonly RunRecord[]): RunRecord | undefined {
  return runs.find((r) => isDecisive(r.conclusion));
}

/** The runs that can measure the workflow: completed, on the branch, with this repository's own code. Shared with collect. */
export function countedRuns(runs: readonly RunRecord[], spec: Pick<WorkflowSpec, 'branch'>): RunRecord[] {
  return runs.filter((r) => r.status === 'completed' && (r.headBranch === null || r.headBranch === spec.branch) && r.otherHeadRepo === undefined);
}

function globMatches(glob: string, name: string): boolean {
  const re = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(name);
}

const hoursAgo = (iso: string, now: Date): number => (now.getTime() - Date.parse(iso)) / 3_600_000;
const fmtHours = (h: number): string => (h < 48 ? `${Math.max(0, Math.round(h))} h` : `${Math.round(h / 24)} days`);
const runName = (r: RunRecord): string => `run ${r.runNumber !== undefined ? `#${r.runNumber}` : r.id}${r.url ? ` (${r.url})` : ''}`;

function judge(spec: WorkflowSpec, read: WorkflowRead, now: Date): Finding {
  const resource = workflowResource(spec);
  const what = `${spec.workflow} on ${spec.repo}@${spec.branch}`;
  if (!read.readable) {
    return {
      resource,
      outcome: 'unknown',
      message: read.notFound
        ? `workflow ${spec.workflow} not found in ${spec.repo} (or the credential cannot see it): check the file name under .github/workflows/ and that the token or App has Actions: read; ${read.reason}`
        : `the runs of ${what} could not be read: ${read.reason}`,
    };
  }
  const runs = countedRuns(read.runs, spec);
  const foreign = read.runs.filter((r) => r.otherHeadRepo !== undefined);
  const decisive = newestConcluded(runs);
  const inconclusive = runs.filter((r) => !isDecisive(r.conclusion) && (decisive === undefined || Date.parse(r.startedAt) >= Date.parse(decisive.startedAt)));
  const within = (r: RunRecord): boolean => hoursAgo(r.startedAt, now) <= spec.maxAgeHours;
  const skippedNote = inconclusive.length > 0 ? `; newer ${inconclusive.map((r) => `${runName(r)} (${r.conclusion ?? 'no conclusion'})`).join(', ')} measured nothing` : '';
  const details: Record<string, unknown> = {
    maxAgeHours: spec.maxAgeHours,
    ...(decisive ? { runId: decisive.id, conclusion: decisive.conclusion, startedAt: decisive.startedAt } : {}),
    ...(inconclusive.length > 0 ? { inconclusiveRuns: inconclusive.map((r) => ({ id: r.id, conclusion: r.conclusion })) } : {}),
    ...(foreign.length > 0 ? { otherRepositoryRuns: foreign.slice(0, 20).map((r) => ({ id: r.id, headRepository: r.otherHeadRepo, conclusion: r.conclusion })) } : {}),
  };

  if (decisive && within(decisive)) {
    const age = fmtHours(hoursAgo(decisive.startedAt, now));
    if (decisive.conclusion !== 'success') {
      return { resource, outcome: 'fail', message: `${what}: the newest concluded ${runName(decisive)} ended "${decisive.conclusion}" ${age} ago: fix the failing jobs and re-run${skippedNote}`, details };
    }
    const problems: string[] = [];
    if (spec.jobs !== undefined || spec.minJobs !== undefined) {
      const jobs = read.jobs;
      if (!jobs || jobs.runId !== decisive.id) {
        return { resource, outcome: 'unknown', message: `${what}: the jobs of ${runName(decisive)} were not read, so the required jobs cannot be told`, details };
      }
      if (!jobs.readable) return { resource, outcome: 'unknown', message: `${what}: the jobs of ${runName(decisive)} could not be read: ${jobs.reason}`, details };
      for (const name of spec.jobs ?? []) {
        const matched = jobs.jobs.filter((j) => globMatches(name, j.name));
        if (matched.length === 0) problems.push(`required job "${name}" did not run`);
        for (const j of matched) if (j.conclusion !== 'success') problems.push(`required job "${j.name}" ended "${j.conclusion ?? j.status}"`);
      }
      const succeeded = jobs.jobs.filter((j) => j.conclusion === 'success').length;
      details.jobsSucceeded = succeeded;
      details.jobsTotal = jobs.jobs.length;
      if (spec.minJobs !== undefined && succeeded < spec.minJobs) problems.push(`only ${succeeded} job${succeeded === 1 ? '' : 's'} succeeded, ${spec.minJobs} required (minJobs)`);
    }
    if (problems.length > 0) {
      return { resource, outcome: 'fail', message: `${what}: ${runName(decisive)} succeeded ${age} ago but ${problems.join('; ')}: restore the missing scenarios to the workflow or fix them`, details };
    }
    const jobNote = spec.jobs !== undefined || spec.minJobs !== undefined ? `, ${String(details.jobsSucceeded)} job(s) succeeded including every required one` : '';
    return { resource, outcome: 'pass', message: `${what}: ${runName(decisive)} succeeded ${age} ago, within ${spec.maxAgeHours} h${jobNote}${skippedNote}`, details };
  }

  if (decisive && decisive.conclusion !== 'success') {
    return {
      resource,
      outcome: 'fail',
      message: `${what}: the newest concluded ${runName(decisive)} ended "${decisive.conclusion}" ${fmtHours(hoursAgo(decisive.startedAt, now))} ago and nothing concluded since${skippedNote}: fix it and re-run`,
      details,
    };
  }
  const recentInconclusive = inconclusive.filter(within);
  if (recentInconclusive.length > 0) {
    const last = decisive ? `the last success, ${runName(decisive)}, was ${fmtHours(hoursAgo(decisive.startedAt, now))} ago` : 'no successful run was seen';
    return {
      resource,
      outcome: 'unknown',
      message: `${what}: every run within the last ${spec.maxAgeHours} h was cancelled or skipped (${recentInconclusive.map((r) => `${runName(r)} ${r.conclusion ?? ''}`.trim()).join(', ')}), so nothing was measured; ${last}: re-run it`,
      details,
    };
  }
  const newest = runs[0];
  if (newest) {
    return {
      resource,
      outcome: 'fail',
      message: `${what} is stale: the newest completed ${runName(newest)} started ${fmtHours(hoursAgo(newest.startedAt, now))} ago, longer than ${spec.maxAgeHours} h: check its schedule trigger and that Actions is enabled`,
      details,
    };
  }
  return { resource, outcome: 'fail', message: `${what} has no completed run: check the workflow's schedule trigger and branch`, details };
}

/** The pure verdict: see README.md. One finding per configured workflow. */
export function evaluateWorkflowRuns(o: WorkflowRunsObservation, now: Date): Finding[] {
  const findings = o.workflows.map(({ spec, read }) => judge(spec, read, now));
  for (const { spec, reason } of o.unassigned) findings.push({ resource: workflowResource(spec), outcome: 'unknown', message: `${workflowResource(spec)} is not read: ${reason}` });
  return findings;
}
