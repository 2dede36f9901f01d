/**
 * GitHub sweep: the real github-branch-protection probe (collect, then evaluate) over emulated
 * organisations of many repositories, every answer delayed by 50 ms.
 *
 *   npm run build && node dist/bench/github-sweep.js [repos=5000] [latencyMs=50]
 *
 * Targets (≤ 60 requests, ≤ 10 s) are for the default 50 ms; at 50 ms the sweep is paced by the
 * client's 70 ms spacing, and the two walks over the organisation pay off when answers are
 * slower than that (try 300).
 *
 * 1. One sweep of an organisation where 15% of the repositories have no protection at all, and
 *    one where 60% have none: requests (GraphQL, REST), wall time, and the verdict of every
 *    repository checked against what the organisation was built with.
 * 2. Three replicas sweeping the 15% organisation at once, each with its own client and its own
 *    Redis connection, the throttling clustered on one redis-server, against a peer with
 *    secondary limits on (more than 4 requests of one credential in flight → GitHub's 403
 *    "secondary rate limit"): refusals counted.
 *
 * The peer is test/helpers/github-peer.ts (GraphQL validated against GitHub's public schema)
 * with `latencyMs` (default 50) and a primary limit raised out of the way. The client runs with its
 * defaults: 4 requests in flight per credential, at least 70 ms between request starts.
 *
 * Organisations: protected repositories alternate between a classic rule on `main` (three in
 * four) and the organisation ruleset (one in four); unprotected ones (`bare-*`) are excluded
 * from the ruleset and have no rule; one in a hundred repositories is archived.
 *
 * Needs `redis-server` on PATH for part 2 (skipped with a note otherwise). Exits 1 if a GraphQL
 * query did not validate, a verdict is wrong, a target is missed, or a secondary limit was hit.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism, loadavg } from 'node:os';
import { Redis } from 'ioredis';
import pino from 'pino';
import { resetGithubClientState } from '../src/clients/github.js';
import { GithubTarget } from '../src/config/schema.js';
import type { Finding } from '../src/probe/contract.js';
import { probe } from '../probes/github-branch-protection/probe.js';
import { startGithubPeer, type GithubPeer, type PeerOrg, type PeerRepo, type PeerRuleset } from '../test/helpers/github-peer.js';

const repoCount = Number(process.argv[2] ?? 5000);
const latencyMs = Number(process.argv[3] ?? 50);
const targets = { requests: 60, seconds: 10 };
const log = pino({ level: 'silent' });
const TOKEN = 'ghp_bench_sweep_token_0001';
process.env.GH_BENCH_TOKEN = TOKEN;
const params = probe.params.parse({});
let failed = false;

const strongRules: PeerRuleset['rules'] = [
  { type: 'pull_request', parameters: { required_approving_review_count: 1, dismiss_stale_reviews_on_push: false, require_code_owner_review: false, require_last_push_approval: false, required_review_thread_resolution: false } },
  { type: 'required_status_checks', parameters: { required_status_checks: [{ context: 'ci' }], strict_required_status_checks_policy: false } },
  { type: 'non_fast_forward' },
  { type: 'deletion' },
];
const strongClassic = { pattern: 'main', requiresApprovingReviews: true, requiredApprovingReviewCount: 2, requiresStatusChecks: true, requiredStatusCheckContexts: ['ci'], isAdminEnforced: true };

/** An organisation of `n` repositories, `share`% of them unprotected, and the verdicts it must get. */
function organisation(login: string, n: number, share: number): { org: PeerOrg; expected: Record<string, number> } {
  const expected: Record<string, number> = { pass: 0, fail: 0, not_applicable: 0 };
  const repos: PeerRepo[] = Array.from({ length: n }, (_, i) => {
    const archived = i % 100 === 99;
    // Spread the unprotected ones over the whole name order: every page has some.
    const bare = (i * share) % 100 < share;
    const name = `${bare ? 'bare' : 'svc'}-${String(i).padStart(5, '0')}`;
    if (archived) expected.not_applicable = (expected.not_applicable ?? 0) + 1;
    else if (bare) expected.fail = (expected.fail ?? 0) + 1;
    else expected.pass = (expected.pass ?? 0) + 1;
    if (archived) return { name, isArchived: true };
    if (bare) return { name };
    return i % 4 === 0 ? { name } : { name, protectionRules: [strongClassic] };
  });
  const orgRuleset: PeerRuleset = { id: 1, name: 'Org baseline', enforcement: 'active', refInclude: ['~DEFAULT_BRANCH'], repositoryExclude: ['bare-*'], rules: strongRules };
  return { org: { login, repos, rulesets: [orgRuleset] }, expected };
}

function outcomes(findings: Finding[]): Record<string, number> {
  return findings.reduce<Record<string, number>>((acc, f) => ({ ...acc, [f.outcome]: (acc[f.outcome] ?? 0) + 1 }), {});
}

/** Exactly the expected count of every outcome (so no `unknown` either). */
function same(got: Record<string, number>, expected: Record<string, number>): boolean {
  return [...new Set([...Object.keys(got), ...Object.keys(expected)])].every((k) => (got[k] ?? 0) === (expected[k] ?? 0));
}

const spec = (peer: GithubPeer, org: string, name = `bench-${org}`) =>
  GithubTarget.parse({ name, org, apiUrl: peer.apiUrl, allowInsecureHttp: true, auth: { token: { env: 'GH_BENCH_TOKEN' } } });

async function sweep(peer: GithubPeer, org: string, redis?: Redis, name?: string) {
  const target = spec(peer, org, name);
  const t0 = performance.now();
  const observation = await probe.collect({ target: { name: target.name, spec: target }, params, signal: AbortSignal.timeout(600_000), log, now: new Date(), redis });
  const findings = probe.evaluate(observation, params, new Date());
  return { seconds: (performance.now() - t0) / 1000, findings };
}

/** The 1-minute load average and the cores: the machine is shared, so wall times carry this. */
function load(): string {
  return `${loadavg().map((l) => l.toFixed(2)).join(' ')} (load average 1/5/15 min) on ${availableParallelism()} cores`;
}

// ---- 1. one sweep each: 15% and 60% unprotected ------------------------------------------------
const peer = await startGithubPeer({ latencyMs, rateLimit: 1_000_000 });
const orgs = { p15: organisation('p15', repoCount, 15), p60: organisation('p60', repoCount, 60) };
peer.addToken(TOKEN, { login: 'bench', orgRoles: { p15: 'owner', p60: 'owner' }, repoPermission: 'admin' });
peer.addOrg(orgs.p15.org);
peer.addOrg(orgs.p60.org);

const single: Record<string, unknown> = {};
for (const key of ['p15', 'p60'] as const) {
  resetGithubClientState();
  peer.reset();
  const loadBefore = load();
  const { seconds, findings } = await sweep(peer, key);
  const got = outcomes(findings);
  const verdictsRight = same(got, orgs[key].expected);
  const requests = { graphql: peer.count('graphql'), rest: peer.count('rest'), total: peer.requests.length };
  const met = { requests: requests.total <= targets.requests, seconds: seconds <= targets.seconds, verdicts: verdictsRight, invalidQueries: peer.invalidQueries.length === 0 };
  single[key === 'p15' ? '15% unprotected' : '60% unprotected'] = { requests, seconds: +seconds.toFixed(2), peakInFlight: peer.peakInFlight, findings: got, expected: orgs[key].expected, met, load: loadBefore };
  if (!met.verdicts || !met.invalidQueries) failed = true;
}
await peer.close();

// ---- 2. three replicas at once, throttling clustered on one Redis, secondary limits on --------------
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

let replicas: Record<string, unknown> = { skipped: 'redis-server not on PATH' };
if (spawnSync('redis-server', ['--version']).status === 0) {
  const port = await freePort();
  const server: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const clients: Redis[] = [];
  const limited = await startGithubPeer({ latencyMs, rateLimit: 1_000_000, secondaryLimit: { maxInFlight: 4, retryAfterSeconds: 1 } });
  try {
    for (let i = 0; i < 3; i++) {
      const c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: null, retryStrategy: (n) => (n > 50 ? null : 100) });
      c.on('error', () => undefined); // connection refused until redis-server is up: retried
      clients.push(c);
    }
    await Promise.all(clients.map((c) => c.ping()));
    limited.addToken(TOKEN, { login: 'bench', orgRoles: { p15: 'owner' }, repoPermission: 'admin' });
    limited.addOrg(orgs.p15.org);
    resetGithubClientState();
    const loadBefore = load();
    const t0 = performance.now();
    const runs = await Promise.all(clients.map((c, i) => sweep(limited, 'p15', c, `replica-${i}`)));
    const seconds = (performance.now() - t0) / 1000;
    const verdictsRight = runs.every((r) => same(outcomes(r.findings), orgs.p15.expected));
    replicas = {
      replicas: 3,
      repos: repoCount,
      requests: { graphql: limited.count('graphql'), rest: limited.count('rest'), total: limited.requests.length },
      seconds: +seconds.toFixed(2),
      secondaryLimit: 'more than 4 in flight per credential → 403 secondary rate limit',
      secondaryRefusals: limited.secondaryRefusals,
      peakInFlightPerCredential: limited.peakInFlightPerCredential,
      verdictsRight,
      load: loadBefore,
    };
    if (limited.secondaryRefusals > 0 || !verdictsRight || limited.invalidQueries.length > 0) failed = true;
  } finally {
    for (const c of clients) c.disconnect();
    await limited.close();
    server.kill('SIGTERM');
  }
}

console.log(JSON.stringify({ repos: repoCount, latencyMs, targets, single, replicas }, null, 2));
if (failed) {
  console.error('FAILED: a wrong verdict, an invalid GraphQL query, or a secondary-limit refusal');
  process.exit(1);
}
