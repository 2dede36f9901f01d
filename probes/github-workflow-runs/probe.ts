import type { GithubTarget, VigilConfig } from '../../src/config/schema.js';
import { defineProbe, type ProbeTarget } from '../../src/probe/contract.js';
import { evaluateWorkflowRuns, Params, workflowResource, type WorkflowRunsObservation, type WorkflowSpec } from './evaluate.js';

export { Params, WorkflowSpec } from './evaluate.js';

/** One `github[]` target with the configured workflows its credential reads. */
export interface WorkflowTargetSpec {
  github: GithubTarget;
  workflows: WorkflowSpec[];
  /** Workflows no target covers: reported `unknown` by the first target, never dropped. */
  unassigned: Array<{ spec: WorkflowSpec; reason: string }>;
}

/**
 * Which target reads each workflow: the one `target` names; else the target whose `org` owns the
 * repository or whose `repos` list it; else the only target. Exported for the tests.
 */
export function assignWorkflows(config: Pick<VigilConfig, 'github' | 'probes'>): Array<ProbeTarget<WorkflowTargetSpec>> {
  // Invalid params are reported by the config loader under probes.github-workflow-runs.params.
  const parsed = Params.safeParse(config.probes['github-workflow-runs']?.params ?? {});
  if (!parsed.success || parsed.data.workflows.length === 0 || config.github.length === 0) return [];
  const byName = new Map(config.github.map((t) => [t.name, { github: t, workflows: [] as WorkflowSpec[], unassigned: [] as WorkflowTargetSpec['unassigned'] }]));
  const unassigned: WorkflowTargetSpec['unassigned'] = [];
  for (const w of parsed.data.workflows) {
    const owner = (w.repo.split('/')[0] ?? '').toLowerCase();
    const chosen =
      w.target !== undefined
        ? config.github.find((t) => t.name === w.target)
        : (config.github.find((t) => t.org?.toLowerCase() === owner || t.repos.some((r) => r.toLowerCase() === w.repo.toLowerCase())) ??
          (config.github.length === 1 ? config.github[0] : undefined));
    if (chosen) byName.get(chosen.name)?.workflows.push(w);
    else {
      unassigned.push({
        spec: w,
        reason:
          w.target !== undefined
            ? `its target "${w.target}" is not a github[] target name (known: ${config.github.map((t) => t.name).join(', ')})`
            : `no github[] target has org ${owner} or lists ${w.repo}: set "target" on it (probes.github-workflow-runs.params.workflows)`,
      });
    }
  }
  const specs = [...byName.values()];
  const first = specs.find((s) => s.workflows.length > 0) ?? specs[0];
  if (first && unassigned.length > 0) first.unassigned = unassigned;
  return specs.filter((s) => s.workflows.length > 0 || s.unassigned.length > 0).map((s) => ({ name: s.github.name, spec: s }));
}

export const probe = defineProbe<WorkflowTargetSpec, Params, WorkflowRunsObservation>({
  id: 'github-workflow-runs',
  title: 'Configured GitHub Actions workflows (DR scenarios, restore drills) ran recently and passed, with every required job',
  source: 'github',
  controls: ['dr-tests-pass'],
  schedule: '47 * * * *',
  docs: {
    checks:
      'For each configured `workflows[]` entry (`repo`, `workflow` file, `branch`, `maxAgeHours`, optional `jobs`, `minJobs`): the completed runs of the workflow on the branch, newest first. ' +
      'The newest run that **concluded** — `success`, or `failure` / `timed_out` / `startup_failure` — decides; `cancelled`, `skipped`, `neutral` and `stale` runs measured nothing and are looked past (and named); runs of another repository\'s code (a fork\'s pull request, `head_repository` ≠ `repository`) never count. ' +
      'Pass only when that run succeeded, started within `maxAgeHours`, every `jobs` name (exact or `*` glob) has a job that succeeded in it, and at least `minJobs` of its jobs succeeded. ' +
      'Fail when it failed, when a required job did not run or did not succeed, when the newest completed run is older than `maxAgeHours` (stale), or when there is no completed run. ' +
      'Unknown when every run within `maxAgeHours` was cancelled or skipped and the last concluded run was a success (nothing was measured), when the workflow or repository is not found (404) or may not be read. One finding per workflow, `owner/repo:file@branch`.',
    permissions:
      'Read-only; nothing is written. Fine-grained token or GitHub App: repository permissions Actions: read and Metadata: read on the repositories named. Classic token: `repo` for private repositories (none for public ones).',
    remediation:
      'A failed run: fix the failing job and re-run the workflow (Actions › the run › Re-run jobs). A stale or missing run: check the workflow\'s `schedule:` trigger and branch, that Actions is enabled for the repository, and that GitHub has not disabled the schedule after 60 days without activity. ' +
      'A missing required job: restore it to the workflow, or correct `jobs` / `minJobs`. See probes/github-workflow-runs/README.md.',
  },
  params: Params,
  targets(config) {
    return assignWorkflows(config);
  },
  // The I/O and the GitHub client stack (Octokit, Bottleneck, prom-client) load on the first run, not at start-up.
  async collect(ctx) {
    const [{ githubClient }, { collectWorkflowRuns }] = await Promise.all([import('../../src/clients/github.js'), import('./collect.js')]);
    const gh = githubClient(ctx.target.spec.github, { signal: ctx.signal, log: ctx.log, redis: ctx.redis });
    return collectWorkflowRuns(gh, ctx.target.spec);
  },
  evaluate(observation, _params, now) {
    return evaluateWorkflowRuns(observation, now);
  },
});

export { workflowResource };
