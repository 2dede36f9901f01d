/**
 * github-workflow-runs: collect → evaluate through the real Octokit client against the local
 * GitHub peer (Actions REST payloads shaped from @octokit/openapi's published examples).
 */
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resetGithubClientState } from '../../src/clients/github.js';
import { VigilConfig } from '../../src/config/schema.js';
import type { Finding } from '../../src/probe/contract.js';
import { runProbe } from '../../src/probe/runner.js';
import { startGithubPeer, type GithubPeer, type PeerOrg, type PeerWorkflowJob, type PeerWorkflowRun } from '../../test/helpers/github-peer.js';
import { assignWorkflows, probe } from './probe.js';

const log = pino({ level: 'silent' });
const TOKEN = 'ghp_workflow_runs_token_01';
const NOW = new Date('2026-11-30T12:00:00Z');
const ago = (h: number): string => new Date(NOW.getTime() - h * 3_600_000).toISOString();
const scenarios = (n: number, failing: number[] = []) =>
  Array.from({ length: n }, (_, i) => ({ name: `scenario ${String(i + 1).padStart(2, '0')}`, status: 'completed' as const, conclusion: failing.includes(i + 1) ? ('failure' as const) : ('success' as const) }));
const nightly = (conclusion: PeerWorkflowRun['conclusion'], hoursAgo: number, jobs: PeerWorkflowJob[] = scenarios(22), branch = 'main'): PeerWorkflowRun => ({
  headBranch: branch,
  status: 'completed',
  conclusion,
  createdAt: ago(hoursAgo),
  jobs,
});

const acme: PeerOrg = {
  login: 'acme',
  repos: [
    {
      name: 'dr',
      workflows: [
        // Green: 22 scenarios last night; an in-progress run and a run on another branch are newer.
        {
          path: '.github/workflows/green.yml',
          runs: [nightly('success', 5), nightly('failure', 29), { headBranch: 'main', status: 'in_progress', conclusion: null, createdAt: ago(1) }, nightly('failure', 2, scenarios(22, [3]), 'feature')],
        },
        { path: '.github/workflows/red.yml', runs: [nightly('failure', 5, scenarios(22, [22])), nightly('success', 29)] },
        { path: '.github/workflows/cancelled.yml', runs: [nightly('cancelled', 2, []), nightly('success', 20)] },
        { path: '.github/workflows/cancelled-only.yml', runs: [nightly('cancelled', 2, []), nightly('success', 50)] },
        { path: '.github/workflows/stale.yml', runs: [nightly('success', 80)] },
        { path: '.github/workflows/missing-job.yml', runs: [nightly('success', 5, scenarios(21))] },
        { path: '.github/workflows/skipped-jobs.yml', runs: [nightly('success', 5, scenarios(22).map((j, i) => (i >= 20 ? { ...j, conclusion: 'skipped' as const } : j)))] },
        { path: '.github/workflows/big-matrix.yml', runs: [nightly('success', 5, scenarios(130))] },
        { path: '.github/workflows/never.yml', runs: [] },
        // Review R2: a fork's pull request from its branch "main" runs the fork's copy of the workflow.
        { path: '.github/workflows/fork.yml', runs: [{ ...nightly('success', 2), event: 'pull_request', headRepository: 'mallory/dr' }, nightly('failure', 5)] },
        { path: '.github/workflows/bad-date.yml', runs: [{ ...nightly('failure', 1), createdAt: 'last tuesday' }, nightly('success', 5)] },
      ],
    },
    { name: 'locked', actionsForbidden: true, workflows: [{ path: '.github/workflows/dr.yml', runs: [nightly('success', 1)] }] },
  ],
};

describe('github-workflow-runs against the GitHub peer', () => {
  let peer: GithubPeer;

  function config(workflows: unknown[], github?: unknown[]) {
    return VigilConfig.parse({
      github: github ?? [{ name: 'acme', org: 'acme', apiUrl: peer.apiUrl, allowInsecureHttp: true, auth: { token: { env: 'GH_WR_TOKEN' } } }],
      probes: { 'github-workflow-runs': { params: { workflows } } },
    });
  }
  async function run(workflows: unknown[]) {
    process.env.GH_WR_TOKEN = TOKEN;
    const cfg = config(workflows);
    const [target] = probe.targets(cfg);
    if (!target) throw new Error('no target');
    const outcome = await runProbe({
      probe,
      target,
      params: probe.params.parse(cfg.probes['github-workflow-runs']?.params),
      runId: 'run-wr',
      scheduledFor: NOW,
      timeoutMs: 20_000,
      log,
      now: () => NOW,
    });
    return outcome.result;
  }
  const one = (workflow: string, extra: Record<string, unknown> = {}) => ({ repo: 'acme/dr', workflow, branch: 'main', maxAgeHours: 26, ...extra });
  const find = (fs: Finding[], workflow: string) => fs.find((f) => f.resource === `acme/dr:${workflow}@main`);

  beforeAll(async () => {
    peer = await startGithubPeer();
    peer.addToken(TOKEN, { login: 'vigil', orgRoles: { acme: 'member' }, repoPermission: 'read' });
    peer.addOrg(acme);
  });
  afterAll(async () => {
    delete process.env.GH_WR_TOKEN;
    await peer?.close();
  });
  beforeEach(() => {
    peer.reset();
    resetGithubClientState();
  });

  it('green, red, cancelled, stale, missing job, minJobs not met, never run: one verdict each', async () => {
    const result = await run([
      one('green.yml', { minJobs: 22, jobs: ['scenario 22'] }),
      one('red.yml', { minJobs: 22 }),
      one('cancelled.yml'),
      one('cancelled-only.yml'),
      one('stale.yml'),
      one('missing-job.yml', { jobs: ['scenario 22'] }),
      one('skipped-jobs.yml', { minJobs: 22 }),
      one('never.yml'),
    ]);
    expect(result.error).toBeUndefined();
    expect(Object.fromEntries(result.findings.map((f) => [f.resource.replace('acme/dr:', '').replace('@main', ''), f.outcome]))).toEqual({
      'green.yml': 'pass',
      'red.yml': 'fail',
      'cancelled.yml': 'pass',
      'cancelled-only.yml': 'unknown',
      'stale.yml': 'fail',
      'missing-job.yml': 'fail',
      'skipped-jobs.yml': 'fail',
      'never.yml': 'fail',
    });
    expect(find(result.findings, 'green.yml')?.message).toMatch(/run #1 \(https:\/\/github.com\/acme\/dr\/actions\/runs\/\d+\) succeeded 5 h ago, within 26 h, 22 job\(s\) succeeded/);
    expect(find(result.findings, 'red.yml')?.message).toContain('ended "failure" 5 h ago');
    expect(find(result.findings, 'cancelled.yml')?.message).toContain('(cancelled) measured nothing');
    expect(find(result.findings, 'cancelled-only.yml')?.message).toContain('was cancelled or skipped');
    expect(find(result.findings, 'stale.yml')?.message).toContain('is stale');
    expect(find(result.findings, 'missing-job.yml')?.message).toContain('required job "scenario 22" did not run');
    expect(find(result.findings, 'skipped-jobs.yml')?.message).toContain('only 20 jobs succeeded, 22 required (minJobs)');
    expect(find(result.findings, 'never.yml')?.message).toContain('has no completed run');
    // Jobs are read only where they are required and the concluded run succeeded: green, missing-job, skipped-jobs.
    expect(peer.count('rest', /\/jobs$/)).toBe(3);
    const runsQuery = peer.requests.find((r) => r.path.endsWith('/green.yml/runs'))?.query ?? '';
    expect(new URLSearchParams(runsQuery).get('status')).toBe('completed');
    expect(new URLSearchParams(runsQuery).get('branch')).toBe('main');
  });

  it("a fork's pull-request run on a branch named like the monitored one measures nothing: the repository's own newest run decides", async () => {
    const result = await run([one('fork.yml', { jobs: ['scenario 01'] })]);
    expect(result.error).toBeUndefined();
    expect(result.findings.map((f) => f.outcome)).toEqual(['fail']);
    expect(result.findings[0]?.message).toContain('ended "failure" 5 h ago');
    expect(result.findings[0]?.details?.otherRepositoryRuns).toEqual([expect.objectContaining({ headRepository: 'mallory/dr', conclusion: 'success' })]);
    // Jobs are not read for the fork's run (the repository's own newest concluded run failed).
    expect(peer.count('rest', /\/jobs$/)).toBe(0);
  });

  it('a run date that is not an ISO timestamp is a MalformedResponseError run error: the newest-first order cannot be trusted', async () => {
    const result = await run([one('bad-date.yml')]);
    expect(result.error?.class).toBe('MalformedResponseError');
    expect(result.findings).toEqual([]);
  });

  it('jobs across pages: 130 matrix jobs, every page read', async () => {
    const result = await run([one('big-matrix.yml', { minJobs: 130, jobs: ['scenario *'] })]);
    expect(result.findings.map((f) => f.outcome)).toEqual(['pass']);
    expect(result.findings[0]?.details?.jobsSucceeded).toBe(130);
    expect(peer.count('rest', /\/jobs$/)).toBe(2);
  });

  it('a workflow file that does not exist is unknown naming it; a repository without Actions: read is unknown naming the permission', async () => {
    const result = await run([one('nope.yml'), { repo: 'acme/locked', workflow: 'dr.yml', branch: 'main', maxAgeHours: 26 }]);
    expect(result.findings.map((f) => [f.resource, f.outcome])).toEqual([
      ['acme/dr:nope.yml@main', 'unknown'],
      ['acme/locked:dr.yml@main', 'unknown'],
    ]);
    expect(result.findings[0]?.message).toContain('workflow nope.yml not found in acme/dr');
    expect(result.findings[1]?.message).toContain('Actions: read');
  });

  it('a malformed runs payload is a MalformedResponseError run error, never a verdict', async () => {
    peer.respondNext(/\/green\.yml\/runs$/, { status: 200, body: { total_count: 1, workflow_runs: [{ id: 'x' }] } });
    const result = await run([one('green.yml')]);
    expect(result.error?.class).toBe('MalformedResponseError');
    expect(result.findings).toEqual([]);
  });

  it('a 502 is retried inline: same verdict', async () => {
    peer.failNext(1, 502);
    const result = await run([one('green.yml')]);
    expect(result.findings.map((f) => f.outcome)).toEqual(['pass']);
    expect(peer.requests[0]?.status).toBe(502);
  });

  it('targets: workflows go to the target owning the repository, an explicit target, or are reported unassigned', () => {
    const auth = { token: { env: 'T' } };
    const cfg = config(
      [
        { repo: 'acme/dr', workflow: 'a.yml', branch: 'main', maxAgeHours: 26 },
        { repo: 'other/x', workflow: 'b.yml', branch: 'main', maxAgeHours: 26 },
        { repo: 'third/y', workflow: 'c.yml', branch: 'main', maxAgeHours: 26, target: 'ops' },
        { repo: 'nobody/z', workflow: 'd.yml', branch: 'main', maxAgeHours: 26 },
      ],
      [
        { name: 'acme', org: 'acme', auth },
        { name: 'ops', repos: ['other/x'], auth },
        { name: 'idle', org: 'idle', auth },
      ],
    );
    const targets = assignWorkflows(cfg);
    expect(targets.map((t) => [t.name, t.spec.workflows.map((w) => w.workflow), t.spec.unassigned.map((u) => u.spec.workflow)])).toEqual([
      ['acme', ['a.yml'], ['d.yml']],
      ['ops', ['b.yml', 'c.yml'], []],
    ]);
    expect(targets[0]?.spec.unassigned[0]?.reason).toContain('set "target" on it');
    expect(assignWorkflows(config([]))).toEqual([]);
  });

  it('params: a duplicate workflow and a path instead of a file name are refused with their key path', () => {
    const bad = probe.params.safeParse({
      workflows: [one('a.yml'), one('a.yml'), { ...one('b.yml'), workflow: '.github/workflows/b.yml' }],
    });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['workflows.2.workflow', 'expected a workflow file name such as dr-nightly.yml'],
      ['workflows.1', 'duplicate of workflows[0] (same repo, workflow and branch): remove one'],
    ]);
  });
});
