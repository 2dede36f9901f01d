/**
 * GitHub change-review budget: the real github-change-review probe (collect, then evaluate) over an
 * emulated organisation of 5,000 repositories with 20 merged pull requests a day, and the GraphQL
 * points GitHub would charge for it (the peer charges by GitHub's published formula: each
 * connection counts as many requests as its parents' `first`/`last`, ÷ 100, rounded, ≥ 1 a query).
 *
 *   npm run build && node dist/bench/github-change-review.js [repos=5000] [prsPerDay=20] [latencyMs=20]
 *
 * 1. Steady state: the last 7 days hold 7 × prsPerDay merged pull requests spread over the
 *    organisation's repositories (60% squash merges — one commit; 40% merge commits — the PR's
 *    3 commits plus the merge commit), 3 direct pushes, 2 self-approved merges and 5 bot commits;
 *    every other repository was last pushed a month or more ago. Points per run, and per day at the
 *    default schedule (every 6 hours: 4 runs), against the target of a few hundred a day.
 * 2. Worst case: every repository pushed within the window (one reviewed commit each) — what a
 *    sweep costs when the "pushed in the window" filter cannot help.
 *
 * Every verdict is checked against what the organisation was built with. Exits 1 if a GraphQL
 * query did not validate, a verdict is wrong, or (at ≤ 20 PRs a day) the steady state exceeds 300 points a day.
 */
import pino from 'pino';
import { resetGithubClientState } from '../src/clients/github.js';
import { GithubTarget } from '../src/config/schema.js';
import { runProbe } from '../src/probe/runner.js';
import { probe } from '../probes/github-change-review/probe.js';
import { startGithubPeer, type PeerCommit, type PeerOrg, type PeerPullRequest, type PeerRepo } from '../test/helpers/github-peer.js';

const repoCount = Number(process.argv[2] ?? 5000);
const prsPerDay = Number(process.argv[3] ?? 20);
const latencyMs = Number(process.argv[4] ?? 20);
const RUNS_PER_DAY = 4; // the default schedule, '29 */6 * * *'
const DAILY_TARGET = 300;
const TOKEN = 'ghp_bench_change_review_0001';
process.env.GH_BENCH_CR_TOKEN = TOKEN;
const NOW = new Date('2026-11-30T12:00:00Z');
const ago = (hours: number): string => new Date(NOW.getTime() - hours * 3_600_000).toISOString();
const log = pino({ level: 'silent' });
let failed = false;

/** Deterministic pseudo-random numbers (mulberry32), so every run builds the same organisation. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Built {
  org: PeerOrg;
  expected: { fail: number; notApplicable: number; passRepos: number };
}

function steadyOrg(login: string): Built {
  const random = rng(42);
  const repos: PeerRepo[] = Array.from({ length: repoCount }, (_, i) => ({
    name: `svc-${String(i).padStart(5, '0')}`,
    commits: [] as PeerCommit[],
    pullRequests: [] as PeerPullRequest[],
    pushedAt: ago(24 * 30 + (i % 400) * 6),
  }));
  const touched = new Set<PeerRepo>();
  const push = (repo: PeerRepo, c: PeerCommit): void => {
    repo.commits?.push(c);
    touched.add(repo);
  };
  let n = 0;
  const prs = 7 * prsPerDay;
  for (let p = 0; p < prs; p++) {
    const repo = repos[Math.floor(random() * repoCount)] as PeerRepo;
    const hours = (p / prs) * 7 * 24 + 0.5;
    const number = (repo.pullRequests?.length ?? 0) + 1;
    const selfApproved = p < 2;
    repo.pullRequests?.push({ number, author: 'alice', mergedAt: ago(hours), reviews: [{ author: selfApproved ? 'carol' : 'bob', state: 'APPROVED' }] });
    if (p % 5 < 3) push(repo, { message: `squash ${n++}`, author: selfApproved ? 'carol' : 'alice', committedDate: ago(hours), pullRequests: [number] });
    else {
      push(repo, { message: `merge ${n++}`, author: 'alice', committedDate: ago(hours), pullRequests: [number] });
      for (let k = 1; k <= 3; k++) push(repo, { message: `work ${n++}`, author: 'alice', committedDate: ago(hours + k), pullRequests: [number] });
    }
  }
  for (let d = 0; d < 3; d++) push(repos[Math.floor(random() * repoCount)] as PeerRepo, { message: `hotfix ${n++}`, author: 'mallory', committedDate: ago(10 + d * 30) });
  for (let b = 0; b < 5; b++) {
    const repo = repos[Math.floor(random() * repoCount)] as PeerRepo;
    const number = (repo.pullRequests?.length ?? 0) + 1;
    repo.pullRequests?.push({ number, author: 'dependabot[bot]', reviews: [] });
    push(repo, { message: `bump ${n++}`, author: 'dependabot[bot]', committedDate: ago(20 + b * 25), pullRequests: [number] });
  }
  let passRepos = 0;
  for (const repo of touched) {
    repo.commits?.sort((a, b) => b.committedDate.localeCompare(a.committedDate));
    repo.pushedAt = repo.commits?.[0]?.committedDate ?? null;
    // Every commit by alice is in a pull request bob approved: the repository gets its pass.
    if (repo.commits?.some((c) => c.author === 'alice')) passRepos++;
  }
  return { org: { login, repos }, expected: { fail: 3 + 2, notApplicable: 5, passRepos } };
}

function worstOrg(login: string): Built {
  const repos: PeerRepo[] = Array.from({ length: repoCount }, (_, i) => ({
    name: `svc-${String(i).padStart(5, '0')}`,
    commits: [{ message: `change ${i}`, author: 'alice', committedDate: ago(1 + (i % 150)), pullRequests: [1] }],
    pullRequests: [{ number: 1, author: 'alice', reviews: [{ author: 'bob', state: 'APPROVED' }] }],
  }));
  return { org: { login, repos }, expected: { fail: 0, notApplicable: 0, passRepos: repoCount } };
}

async function measure(label: string, built: Built, apiUrl: string, peer: Awaited<ReturnType<typeof startGithubPeer>>): Promise<number> {
  peer.reset();
  resetGithubClientState();
  const spec = GithubTarget.parse({ name: built.org.login, org: built.org.login, apiUrl, allowInsecureHttp: true, auth: { token: { env: 'GH_BENCH_CR_TOKEN' } } });
  const params = probe.params.parse({ botAuthors: ['dependabot[bot]'] });
  const t0 = performance.now();
  const { result } = await runProbe({ probe, target: { name: spec.name, spec }, params, runId: `bench-${label}`, scheduledFor: NOW, timeoutMs: 600_000, log, now: () => NOW });
  const seconds = (performance.now() - t0) / 1000;
  const count = (o: string) => result.findings.filter((f) => f.outcome === o && f.resource !== built.org.login).length;
  const got = { fail: count('fail'), notApplicable: count('not_applicable'), passRepos: count('pass'), unknown: count('unknown') };
  const summary = result.findings.find((f) => f.resource === built.org.login);
  const ok = result.error === undefined && got.fail === built.expected.fail && got.notApplicable === built.expected.notApplicable && got.passRepos === built.expected.passRepos && got.unknown === 0;
  if (!ok) failed = true;
  if (peer.invalidQueries.length > 0) {
    failed = true;
    console.log('invalid queries:', JSON.stringify(peer.invalidQueries.slice(0, 2), null, 1));
  }
  console.log(
    `${label}: ${peer.count('graphql')} GraphQL requests, ${peer.count('rest')} REST, ${peer.graphqlPoints} points (probe counted ${String(summary?.details?.graphqlPoints)}), ` +
      `${seconds.toFixed(2)} s; ${String(summary?.details?.commitsJudged)} commits judged in ${String(summary?.details?.reposRead)} repositories, ${String(summary?.details?.quietRepos)} quiet; ` +
      `findings fail ${got.fail}/${built.expected.fail}, not_applicable ${got.notApplicable}/${built.expected.notApplicable}, repo passes ${got.passRepos}/${built.expected.passRepos}, unknown ${got.unknown} — ${ok ? 'verdicts OK' : `WRONG${result.error ? ` (${result.error.class}: ${result.error.message})` : ''}`}`,
  );
  return peer.graphqlPoints;
}

async function main(): Promise<void> {
  const peer = await startGithubPeer({ latencyMs, rateLimit: 10_000_000 });
  try {
    const steady = steadyOrg('steady');
    const worst = worstOrg('worst');
    peer.addOrg(steady.org);
    peer.addOrg(worst.org);
    peer.addToken(TOKEN, { login: 'vigil', orgRoles: { steady: 'member', worst: 'member' }, repoPermission: 'read' });
    console.log(`github-change-review: ${repoCount} repositories, ${prsPerDay} merged PRs a day, 7-day window, ${latencyMs} ms per answer`);
    const points = await measure('steady state, one run', steady, peer.apiUrl, peer);
    const daily = points * RUNS_PER_DAY;
    console.log(`steady state: ${points} points a run × ${RUNS_PER_DAY} runs a day = ${daily} points a day (target ≤ ${DAILY_TARGET}; GitHub allows 5,000 an hour)`);
    // The target is set for the issue's workload (20 PRs a day); heavier workloads print their figure only.
    if (daily > DAILY_TARGET && prsPerDay <= 20) failed = true;
    await measure('worst case (every repository pushed in the window), one run', worst, peer.apiUrl, peer);
  } finally {
    await peer.close();
  }
  if (failed) {
    console.log('FAILED');
    process.exitCode = 1;
  }
}

void main();
