/**
 * GitHub sweep: the real github-branch-protection probe (collect, then evaluate) over an emulated
 * organisation of many repositories, every answer delayed by 50 ms, beside the per-repository
 * REST baseline common tools use (list the repositories, then for each one GET the default
 * branch's classic protection and GET the rules applying to it).
 *
 *   npm run build && node dist/bench/github-sweep.js [repos=5000] [baselineRepos=500]
 *
 * The peer is test/helpers/github-peer.ts (GraphQL validated against GitHub's public schema)
 * with `latencyMs: 50` and a primary limit raised out of the way (the baseline would exhaust
 * GitHub's 5,000 requests an hour on its own; the figures say so). Both sides use the same
 * client (src/clients/github.ts) with its default pacing: 4 requests in flight per credential and
 * at least 70 ms between request starts. The baseline is run over `baselineRepos` repositories
 * of the same org and, when that is fewer than `repos`, its time is extrapolated linearly
 * (its requests are independent of each other and paced by the same gate).
 *
 * Organisation: every repository is covered by an organisation ruleset; one in four also has a
 * classic rule on `main`, one in ten its own ruleset, one in a hundred is archived.
 *
 * Exits 1 if a GraphQL query did not validate or if any judged branch does not pass.
 */
import pino from 'pino';
import { z } from 'zod';
import { githubClient, NotFoundError, resetGithubClientState } from '../src/clients/github.js';
import { GithubTarget } from '../src/config/schema.js';
import { probe } from '../probes/github-branch-protection/probe.js';
import { startGithubPeer, type PeerRepo, type PeerRuleset } from '../test/helpers/github-peer.js';

const repoCount = Number(process.argv[2] ?? 5000);
const baselineCount = Math.min(repoCount, Number(process.argv[3] ?? 500));
const targets = { reductionFactor: 25, seconds: 60 };
const log = pino({ level: 'silent' });
const TOKEN = 'ghp_bench_sweep_token_0001';
process.env.GH_BENCH_TOKEN = TOKEN;

const strongRules: PeerRuleset['rules'] = [
  { type: 'pull_request', parameters: { required_approving_review_count: 1, dismiss_stale_reviews_on_push: false, require_code_owner_review: false, require_last_push_approval: false, required_review_thread_resolution: false } },
  { type: 'required_status_checks', parameters: { required_status_checks: [{ context: 'ci' }], strict_required_status_checks_policy: false } },
  { type: 'non_fast_forward' },
  { type: 'deletion' },
];

function repos(n: number): PeerRepo[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `svc-${String(i).padStart(5, '0')}`,
    ...(i % 100 === 99 ? { isArchived: true } : {}),
    ...(i % 4 === 0
      ? { protectionRules: [{ pattern: 'main', requiresApprovingReviews: true, requiredApprovingReviewCount: 2, requiresStatusChecks: true, requiredStatusCheckContexts: ['ci'], isAdminEnforced: true }] }
      : {}),
    ...(i % 10 === 0 ? { rulesets: [{ id: 10_000 + i, name: 'Repo rules', enforcement: 'active', refInclude: ['~DEFAULT_BRANCH'], rules: [{ type: 'required_linear_history' }] }] } : {}),
  }));
}

const peer = await startGithubPeer({ latencyMs: 50, rateLimit: 1_000_000 });
peer.addToken(TOKEN, { login: 'bench', orgRoles: { big: 'owner', sample: 'owner' }, repoPermission: 'admin' });
const orgRuleset: PeerRuleset = { id: 1, name: 'Org baseline', enforcement: 'active', refInclude: ['~DEFAULT_BRANCH'], rules: strongRules };
peer.addOrg({ login: 'big', repos: repos(repoCount), rulesets: [orgRuleset] });
peer.addOrg({ login: 'sample', repos: repos(baselineCount), rulesets: [orgRuleset] });
const spec = (org: string) => GithubTarget.parse({ name: `bench-${org}`, org, apiUrl: peer.apiUrl, auth: { token: { env: 'GH_BENCH_TOKEN' } } });

// ---- vigil: the probe's own collect + evaluate ---------------------------------------------------
resetGithubClientState();
peer.reset();
const params = probe.params.parse({});
const target = spec('big');
let t0 = performance.now();
const observation = await probe.collect({ target: { name: target.name, spec: target }, params, signal: AbortSignal.timeout(600_000), log, now: new Date() });
const findings = probe.evaluate(observation, params, new Date());
const sweepSeconds = (performance.now() - t0) / 1000;
const sweep = { graphql: peer.count('graphql'), rest: peer.count('rest'), total: peer.requests.length };
const invalid = peer.invalidQueries.length;
const byOutcome = findings.reduce<Record<string, number>>((acc, f) => ({ ...acc, [f.outcome]: (acc[f.outcome] ?? 0) + 1 }), {});

// ---- baseline: per-repository REST, same client and pacing -----------------------------------------
resetGithubClientState();
peer.reset();
const base = spec('sample');
const gh = githubClient(base, { signal: AbortSignal.timeout(3_600_000), log });
const Repo = z.looseObject({ name: z.string(), default_branch: z.string(), archived: z.boolean() });
t0 = performance.now();
const list = (await gh.restPages('GET /orgs/{org}/repos', { org: 'sample' }, Repo)).filter((r) => !r.archived);
await Promise.all(
  list.map(async (r) => {
    const p = { owner: 'sample', repo: r.name, branch: r.default_branch };
    try {
      await gh.rest('GET /repos/{owner}/{repo}/branches/{branch}/protection', p, z.unknown());
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err; // 404 "Branch not protected"
    }
    await gh.restPages('GET /repos/{owner}/{repo}/rules/branches/{branch}', p, z.unknown());
  }),
);
const baselineMeasuredSeconds = (performance.now() - t0) / 1000;
const baselineMeasured = peer.requests.length;
const scale = repoCount / baselineCount;
const baseline = {
  repos: baselineCount,
  requests: baselineMeasured,
  seconds: +baselineMeasuredSeconds.toFixed(1),
  // Listing pages scale with the org (100 a page), the per-repository pair with its non-archived repositories.
  requestsAt: Math.ceil(repoCount / 100) + 2 * Math.round(list.length * scale),
  secondsAt: +(baselineMeasuredSeconds * scale).toFixed(1),
  extrapolated: baselineCount < repoCount,
};
await peer.close();

const factor = baseline.requestsAt / sweep.total;
const report = {
  repos: repoCount,
  latencyMs: 50,
  vigil: { requests: sweep, seconds: +sweepSeconds.toFixed(1), findings: byOutcome, invalidQueries: invalid },
  baseline,
  fewerRequestsFactor: +factor.toFixed(1),
  targets,
  met: { requests: factor >= targets.reductionFactor, time: sweepSeconds < targets.seconds },
};
console.log(JSON.stringify(report, null, 2));
const judged = findings.filter((f) => f.outcome !== 'not_applicable');
if (invalid > 0 || judged.some((f) => f.outcome !== 'pass')) {
  console.error('FAILED: invalid GraphQL queries or branches that do not pass');
  process.exit(1);
}
