/**
 * collect of github-workflow-runs: for each configured workflow, one page of its completed runs on
 * the branch (`GET /repos/{owner}/{repo}/actions/workflows/{file}/runs?branch=&status=completed`),
 * and — when jobs are required and the newest concluded run succeeded — that run's jobs (every
 * page). Workflows are read concurrently, within the client's per-credential limit. Loaded by
 * probe.ts on the first run only.
 */
import { z } from 'zod';
import { GithubPermissionError, GithubResponseError, NotFoundError, type GithubClient } from '../../src/clients/github.js';
import { countedRuns, newestConcluded, type JobRecord, type RunRecord, type WorkflowRead, type WorkflowRunsObservation, type WorkflowSpec } from './evaluate.js';
import type { WorkflowTargetSpec } from './probe.js';

/** Runs read per workflow: enough to look past a streak of cancelled or skipped runs to the newest that concluded. */
const RUNS_PER_PAGE = 50;

/** The fields of GitHub's workflow-run this probe reads (its payload has many more). */
const Run = z.looseObject({
  id: z.number().int(),
  run_number: z.number().int().optional(),
  status: z.string().nullable(),
  conclusion: z.string().nullable(),
  head_branch: z.string().nullable(),
  // Validated: an unparsable date would make the newest-first order, and so the verdict, arbitrary.
  created_at: z.iso.datetime({ offset: true }),
  run_started_at: z.iso.datetime({ offset: true }).nullable().optional(),
  html_url: z.string().optional(),
  repository: z.looseObject({ id: z.number().int() }),
  // A fork's pull request can run the workflow on a head branch of the same name (its code, its result).
  head_repository: z.looseObject({ id: z.number().int(), full_name: z.string() }).nullable(),
});
const Runs = z.looseObject({ total_count: z.number().int().min(0), workflow_runs: z.array(Run) });
const Job = z.looseObject({ name: z.string(), status: z.string(), conclusion: z.string().nullable() });

function reasonOf(err: unknown): { notFound: boolean; reason: string } | undefined {
  if (err instanceof NotFoundError) return { notFound: true, reason: err.message };
  if (err instanceof GithubPermissionError) return { notFound: false, reason: `${err.message} (needs Actions: read)` };
  if (err instanceof GithubResponseError) return { notFound: false, reason: err.message };
  return undefined;
}

async function readWorkflow(gh: GithubClient, spec: WorkflowSpec): Promise<WorkflowRead> {
  const [owner, repo] = spec.repo.split('/') as [string, string];
  let runs: RunRecord[];
  try {
    const page = await gh.rest(
      'GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs',
      { owner, repo, workflow_id: spec.workflow, branch: spec.branch, status: 'completed', per_page: RUNS_PER_PAGE, exclude_pull_requests: true },
      Runs,
    );
    runs = page.workflow_runs
      .map((r) => ({
        id: r.id,
        runNumber: r.run_number,
        status: r.status ?? 'unknown',
        conclusion: r.conclusion,
        headBranch: r.head_branch,
        startedAt: r.run_started_at ?? r.created_at,
        url: r.html_url,
        ...(r.head_repository?.id === r.repository.id ? {} : { otherHeadRepo: r.head_repository?.full_name ?? '(deleted)' }),
      }))
      // GitHub lists newest first; sorted again so the verdict never rests on an order it did not promise.
      .sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt) || b.id - a.id);
  } catch (err) {
    const why = reasonOf(err);
    if (why) return { readable: false, ...why };
    throw err;
  }
  const read: WorkflowRead = { readable: true, runs };
  const concluded = newestConcluded(countedRuns(runs, spec));
  if ((spec.jobs !== undefined || spec.minJobs !== undefined) && concluded?.conclusion === 'success') {
    try {
      const jobs: JobRecord[] = (
        await gh.restPages('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', { owner, repo, run_id: concluded.id, filter: 'latest' }, Job, { maxPages: 20 })
      ).map((j) => ({ name: j.name, status: j.status, conclusion: j.conclusion }));
      read.jobs = { runId: concluded.id, readable: true, jobs };
    } catch (err) {
      const why = reasonOf(err);
      if (!why) throw err;
      read.jobs = { runId: concluded.id, readable: false, reason: why.reason };
    }
  }
  return read;
}

export async function collectWorkflowRuns(gh: GithubClient, spec: WorkflowTargetSpec): Promise<WorkflowRunsObservation> {
  const reads = await Promise.all(spec.workflows.map((w) => readWorkflow(gh, w)));
  return { workflows: spec.workflows.map((w, i) => ({ spec: w, read: reads[i] as WorkflowRead })), unassigned: spec.unassigned };
}
