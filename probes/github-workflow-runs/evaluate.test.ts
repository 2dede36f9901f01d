/** github-workflow-runs' pure verdict, table-driven with a fixed `now`. */
import { describe, expect, it } from 'vitest';
import { evaluateWorkflowRuns, type JobRecord, type RunRecord, type WorkflowRead, type WorkflowSpec } from './evaluate.js';

const NOW = new Date('2026-11-30T12:00:00Z');
const ago = (h: number): string => new Date(NOW.getTime() - h * 3_600_000).toISOString();
const run = (id: number, conclusion: string | null, hoursAgo: number, status = 'completed'): RunRecord => ({
  id,
  runNumber: id,
  status,
  conclusion,
  headBranch: 'main',
  startedAt: ago(hoursAgo),
  url: undefined,
});
const spec: WorkflowSpec = { repo: 'acme/ops', workflow: 'dr.yml', branch: 'main', maxAgeHours: 26 };
const ok = (runs: RunRecord[], jobs?: { runId: number; jobs: JobRecord[] }): WorkflowRead => ({ readable: true, runs, ...(jobs ? { jobs: { ...jobs, readable: true as const } } : {}) });
const job = (name: string, conclusion: string | null = 'success'): JobRecord => ({ name, status: 'completed', conclusion });

describe('evaluateWorkflowRuns', () => {
  const cases: Array<{ name: string; spec?: Partial<WorkflowSpec>; read: WorkflowRead; want: string; says: string }> = [
    { name: 'newest run succeeded within the age: pass', read: ok([run(9, 'success', 3)]), want: 'pass', says: 'run #9 succeeded 3 h ago, within 26 h' },
    { name: 'newest run failed: fail', read: ok([run(9, 'failure', 3), run(8, 'success', 27)]), want: 'fail', says: 'the newest concluded run #9 ended "failure" 3 h ago' },
    { name: 'timed out counts as a failure', read: ok([run(9, 'timed_out', 3)]), want: 'fail', says: '"timed_out"' },
    {
      name: 'cancelled newest run, an older success within the age: pass, naming the cancelled run',
      read: ok([run(10, 'cancelled', 1), run(9, 'success', 20)]),
      want: 'pass',
      says: 'run #9 succeeded 20 h ago, within 26 h; newer run #10 (cancelled) measured nothing',
    },
    {
      name: 'cancelled newest run hides no failure: the older failure within the age fails',
      read: ok([run(10, 'cancelled', 1), run(9, 'failure', 20)]),
      want: 'fail',
      says: 'run #9 ended "failure"',
    },
    {
      name: 'every run within the age cancelled, last success older: unknown (nothing measured)',
      read: ok([run(11, 'cancelled', 1), run(10, 'skipped', 5), run(9, 'success', 40)]),
      want: 'unknown',
      says: 'every run within the last 26 h was cancelled or skipped (run #11 cancelled, run #10 skipped)',
    },
    {
      name: 'every run within the age cancelled, last concluded one failed: fail',
      read: ok([run(11, 'cancelled', 1), run(9, 'failure', 40)]),
      want: 'fail',
      says: 'nothing concluded since',
    },
    { name: 'newest success older than maxAgeHours: stale fail', read: ok([run(9, 'success', 50)]), want: 'fail', says: 'is stale: the newest completed run #9 started 2 days ago, longer than 26 h' },
    { name: 'no completed run at all: fail', read: ok([]), want: 'fail', says: 'has no completed run' },
    { name: 'a run still in progress is not a result', read: ok([run(10, null, 1, 'in_progress')]), want: 'fail', says: 'has no completed run' },
    { name: 'workflow not found: unknown naming it', read: { readable: false, notFound: true, reason: 'Not Found' }, want: 'unknown', says: 'workflow dr.yml not found in acme/ops' },
    {
      name: 'required jobs all succeeded, matrix glob included: pass',
      spec: { jobs: ['restore', 'scenario (*)'], minJobs: 3 },
      read: ok([run(9, 'success', 3)], { runId: 9, jobs: [job('restore'), job('scenario (1)'), job('scenario (2)')] }),
      want: 'pass',
      says: '3 job(s) succeeded including every required one',
    },
    {
      name: 'a required job missing from the run: fail',
      spec: { jobs: ['restore', 'verify-backup'] },
      read: ok([run(9, 'success', 3)], { runId: 9, jobs: [job('restore')] }),
      want: 'fail',
      says: 'required job "verify-backup" did not run',
    },
    {
      name: 'a required job skipped inside a successful run: fail',
      spec: { jobs: ['restore'] },
      read: ok([run(9, 'success', 3)], { runId: 9, jobs: [job('restore', 'skipped')] }),
      want: 'fail',
      says: 'required job "restore" ended "skipped"',
    },
    {
      name: 'minJobs not met: fail',
      spec: { minJobs: 22 },
      read: ok([run(9, 'success', 3)], { runId: 9, jobs: Array.from({ length: 22 }, (_, i) => job(`scenario-${i}`, i < 20 ? 'success' : 'skipped')) }),
      want: 'fail',
      says: 'only 20 jobs succeeded, 22 required (minJobs)',
    },
    {
      name: 'jobs required but not read: unknown, never pass',
      spec: { minJobs: 1 },
      read: ok([run(9, 'success', 3)]),
      want: 'unknown',
      says: 'were not read',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const findings = evaluateWorkflowRuns({ workflows: [{ spec: { ...spec, ...c.spec }, read: c.read }], unassigned: [] }, NOW);
      expect(findings).toHaveLength(1);
      expect(findings[0]?.resource).toBe('acme/ops:dr.yml@main');
      expect(findings[0]?.outcome).toBe(c.want);
      expect(findings[0]?.message).toContain(c.says);
    });
  }

  it('an unassigned workflow is reported unknown, not dropped', () => {
    const findings = evaluateWorkflowRuns({ workflows: [], unassigned: [{ spec, reason: 'no github[] target has org acme' }] }, NOW);
    expect(findings).toEqual([{ resource: 'acme/ops:dr.yml@main', outcome: 'unknown', message: 'acme/ops:dr.yml@main is not read: no github[] target has org acme' }]);
  });
});
