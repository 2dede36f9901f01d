/**
 * github-branch-protection: collect → evaluate through the real Octokit client against the local
 * GitHub peer (GraphQL validated against GitHub's public schema, REST payloads from GitHub's
 * published examples), one test per case of the issue. Every test also asserts that each GraphQL
 * query vigil sent validated.
 */
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resetGithubClientState } from '../../src/clients/github.js';
import { GithubTarget, VigilConfig } from '../../src/config/schema.js';
import type { Finding } from '../../src/probe/contract.js';
import { runProbe } from '../../src/probe/runner.js';
import { startGithubPeer, type GithubPeer, type PeerOrg, type PeerRuleset } from '../../test/helpers/github-peer.js';
import { probe, type Params } from './probe.js';

const log = pino({ level: 'silent' });
const defaults: Params = probe.params.parse({});
const ADMIN = 'ghp_bp_admin_token_0001';
const READ = 'ghp_bp_read_token_00002';
const NO_ADMINISTRATION = 'ghp_bp_noadm_token_0003';
const env = { GH_ADMIN: ADMIN, GH_READ: READ, GH_NO_ADMINISTRATION: NO_ADMINISTRATION };

/** Everything the default params ask for, as ruleset rules (REST spelling, as the peer takes them). */
const strongRules: PeerRuleset['rules'] = [
  { type: 'pull_request', parameters: { required_approving_review_count: 1, dismiss_stale_reviews_on_push: false, require_code_owner_review: false, require_last_push_approval: false, required_review_thread_resolution: false } },
  { type: 'required_status_checks', parameters: { required_status_checks: [{ context: 'ci' }], strict_required_status_checks_policy: false } },
  { type: 'non_fast_forward' },
  { type: 'deletion' },
];
const ruleset = (id: number, over: Partial<PeerRuleset> = {}): PeerRuleset => ({
  id,
  name: `Protect ${id}`,
  enforcement: 'active',
  refInclude: ['~DEFAULT_BRANCH'],
  rules: strongRules,
  ...over,
});
const strongClassic = {
  pattern: 'main',
  requiresApprovingReviews: true,
  requiredApprovingReviewCount: 1,
  requiresStatusChecks: true,
  requiredStatusCheckContexts: ['ci'],
  isAdminEnforced: true,
};

const acme: PeerOrg = {
  login: 'acme',
  repos: [
    { name: 'classic-only', protectionRules: [strongClassic] },
    { name: 'repo-ruleset', rulesets: [ruleset(101, { name: 'Protect main' })] },
    { name: 'org-ruleset' },
    { name: 'evaluating', rulesets: [ruleset(102, { name: 'Dry run', enforcement: 'evaluate' })] },
    { name: 'bypassed', rulesets: [ruleset(103, { name: 'With bypass', bypassActors: [{ actorType: 'RepositoryRole', actorId: 5, bypassMode: 'always' }] })] },
    { name: 'excluded', rulesets: [ruleset(104, { name: 'All but main', refInclude: ['~ALL'], refExclude: ['refs/heads/main'] })] },
    { name: 'trunk-repo', defaultBranch: 'trunk', branches: ['trunk', 'release/1.0', 'feature/x'], rulesets: [ruleset(105, { name: 'Default only' })] },
    { name: 'odd-enforcement', rulesets: [ruleset(106, { name: 'Odd', enforcement: 'enabled' })] },
    { name: 'old', isArchived: true },
    { name: 'gone', isDisabled: true },
    { name: 'fresh', defaultBranch: null },
    { name: 'bare' },
  ],
  rulesets: [ruleset(900, { name: 'Org baseline', repositoryInclude: ['org-ruleset'] })],
};
/** `share`% of 600 repositories have no protection at all (`bare-*`, excluded from the org ruleset); the rest pass. */
function mixed(share: number): PeerOrg {
  const bare = (600 * share) / 100;
  return {
    login: `mixed${share}`,
    repos: Array.from({ length: 600 }, (_, i) => ({ name: i < bare ? `bare-${String(i).padStart(3, '0')}` : `svc-${String(i).padStart(3, '0')}` })),
    rulesets: [ruleset(910 + share, { name: 'Org baseline', repositoryExclude: ['bare-*'] })],
  };
}
const views: PeerOrg = {
  login: 'views',
  repos: [
    { name: 'broken-bare', failRefViews: true },
    { name: 'broken-ruleset', failRefViews: true, rulesets: [ruleset(120, { name: 'Protect main' })] },
    { name: 'intact-bare' },
    // The ruleset applies, but the org-level list vigil reads does not show it (see the test).
    { name: 'hidden-ruleset' },
  ],
  rulesets: [ruleset(930, { name: 'Hidden baseline', repositoryInclude: ['hidden-ruleset'], listed: false })],
};
const big: PeerOrg = {
  login: 'big',
  repos: Array.from({ length: 260 }, (_, i) => ({ name: `svc-${String(i).padStart(3, '0')}` })),
  rulesets: [ruleset(901, { name: 'Org baseline' })],
};

describe('collect → evaluate against the GitHub peer', () => {
  let peer: GithubPeer;

  function target(over: Partial<Record<'org' | 'token' | 'include' | 'exclude' | 'repos' | 'branches', unknown>>): GithubTarget {
    const { token = 'GH_ADMIN', ...rest } = over;
    return GithubTarget.parse({ name: 't', apiUrl: peer.apiUrl, allowInsecureHttp: true, auth: { token: { env: token } }, ...rest });
  }
  async function run(spec: GithubTarget, params: Partial<Params> = {}) {
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      const outcome = await runProbe({ probe, target: { name: spec.name, spec }, params: { ...defaults, ...params }, runId: 'run', scheduledFor: new Date(), timeoutMs: 20_000, log });
      return outcome.result;
    } finally {
      for (const k of Object.keys(env)) if (!(k in saved)) delete process.env[k];
    }
  }
  /** One repository of acme, read through the org sweep (the include glob is applied by vigil). */
  const one = (name: string, token = 'GH_ADMIN') => run(target({ org: 'acme', include: [name], token }));
  const brief = (fs: Finding[]) => fs.map((f) => ({ resource: f.resource, outcome: f.outcome }));

  beforeAll(async () => {
    peer = await startGithubPeer();
    peer.addToken(ADMIN, { login: 'alice', orgRoles: { acme: 'owner', big: 'owner', mixed15: 'owner', mixed60: 'owner', views: 'owner' }, repoPermission: 'admin' });
    // A fine-grained token with the organisation's Administration: read but only read access to repositories.
    peer.addToken(READ, { login: 'rita', orgRoles: { acme: 'owner', views: 'owner' }, repoPermission: 'read' });
    peer.addToken(NO_ADMINISTRATION, { login: 'adam', orgRoles: { acme: 'owner' }, repoPermission: 'admin', administrationRead: false });
    peer.addOrg(acme);
    peer.addOrg(big);
    peer.addOrg(mixed(15));
    peer.addOrg(mixed(60));
    peer.addOrg(views);
  });
  afterAll(async () => {
    await peer?.close();
  });
  beforeEach(() => {
    peer.reset();
    resetGithubClientState();
  });
  afterEach(() => {
    expect(peer.invalidQueries).toEqual([]);
  });

  it('protected by classic rules only: pass, one GraphQL request, no REST', async () => {
    const result = await one('classic-only');
    expect(result.error).toBeUndefined();
    expect(brief(result.findings)).toEqual([{ resource: 'acme/classic-only@main', outcome: 'pass' }]);
    expect(result.findings[0]?.message).toContain('classic rule "main"');
    expect(peer.count('graphql')).toBe(1);
    expect(peer.count('rest')).toBe(0);
  });

  it('protected by a repository ruleset only: pass naming the ruleset', async () => {
    const result = await one('repo-ruleset');
    expect(brief(result.findings)).toEqual([{ resource: 'acme/repo-ruleset@main', outcome: 'pass' }]);
    expect(result.findings[0]?.message).toContain('ruleset "Protect main" (repository)');
  });

  it('protected by an organisation ruleset only: pass naming it', async () => {
    const result = await one('org-ruleset');
    expect(brief(result.findings)).toEqual([{ resource: 'acme/org-ruleset@main', outcome: 'pass' }]);
    expect(result.findings[0]?.message).toContain('ruleset "Org baseline" (organization)');
  });

  it('a ruleset in evaluate mode protects nothing: fail, and says to set it Active', async () => {
    const result = await one('evaluating');
    expect(brief(result.findings)).toEqual([{ resource: 'acme/evaluating@main', outcome: 'fail' }]);
    expect(result.findings[0]?.message).toContain('no branch protection rule or active ruleset applies');
    expect(result.findings[0]?.message).toContain('ruleset "Dry run" (repository) is in evaluate mode: set enforcement to Active');
  });

  it('a bypass actor: fail, admins can bypass', async () => {
    const result = await one('bypassed');
    expect(brief(result.findings)).toEqual([{ resource: 'acme/bypassed@main', outcome: 'fail' }]);
    expect(result.findings[0]?.message).toContain('admins can bypass');
    expect(result.findings[0]?.message).toContain('"With bypass"');
    // The same with forbidAdminBypass off passes: the bypass list is what failed it.
    peer.reset();
    const lenient = await run(target({ org: 'acme', include: ['bypassed'] }), { forbidAdminBypass: false });
    expect(brief(lenient.findings)).toEqual([{ resource: 'acme/bypassed@main', outcome: 'pass' }]);
  });

  it('a branch excluded by a ref pattern: no protection applies, fail', async () => {
    const result = await one('excluded');
    expect(brief(result.findings)).toEqual([{ resource: 'acme/excluded@main', outcome: 'fail' }]);
    expect(result.findings[0]?.message).toContain('no branch protection rule or active ruleset applies');
  });

  it('~DEFAULT_BRANCH: protects the default branch (trunk), not the release branch matched by `branches`', async () => {
    const result = await run(target({ org: 'acme', include: ['trunk-repo'], branches: ['release/*'] }));
    expect(brief(result.findings)).toEqual([
      { resource: 'acme/trunk-repo@trunk', outcome: 'pass' },
      { resource: 'acme/trunk-repo@release/1.0', outcome: 'fail' },
    ]);
    expect(peer.count('graphql')).toBe(1);
  });

  it('an enforcement value outside GraphQL\'s enum: rulesets read through REST, reported as not enforced', async () => {
    const result = await one('odd-enforcement');
    expect(brief(result.findings)).toEqual([{ resource: 'acme/odd-enforcement@main', outcome: 'fail' }]);
    expect(result.findings[0]?.message).toContain('ruleset "Odd" (repository) has enforcement "enabled", which GitHub does not enforce');
    // "No protection" is confirmed from the sweep's own GraphQL answer: REST only for the rulesets.
    expect(peer.requests.filter((r) => r.kind === 'rest').map((r) => r.path)).toEqual(['/repos/acme/odd-enforcement/rulesets', '/repos/acme/odd-enforcement/rulesets/106']);
  });

  it('archived and disabled repositories: skipped, counted as not_applicable, never judged', async () => {
    const result = await run(target({ org: 'acme', include: ['old', 'gone'] }));
    expect(brief(result.findings)).toEqual([
      { resource: 'acme/old', outcome: 'not_applicable' },
      { resource: 'acme/gone', outcome: 'not_applicable' },
    ]);
    expect(result.findings[0]?.message).toContain('archived');
    expect(result.findings[1]?.message).toContain('disabled');
  });

  it('an empty repository: not_applicable', async () => {
    const result = await one('fresh');
    expect(brief(result.findings)).toEqual([{ resource: 'acme/fresh', outcome: 'not_applicable' }]);
    expect(result.findings[0]?.message).toContain('empty repository');
  });

  it('no protection at all: fail, confirmed from GitHub\'s read-level view in the same GraphQL answer — no REST, admin or read-only token', async () => {
    const admin = await one('bare');
    expect(brief(admin.findings)).toEqual([{ resource: 'acme/bare@main', outcome: 'fail' }]);
    expect(admin.findings[0]?.message).toContain('no branch protection rule or active ruleset applies');
    expect(peer.count('graphql')).toBe(1);
    expect(peer.count('rest')).toBe(0);
    peer.reset();
    const readOnly = await one('bare', 'GH_READ');
    expect(brief(readOnly.findings)).toEqual([{ resource: 'acme/bare@main', outcome: 'fail' }]);
    expect(readOnly.findings[0]?.message).toContain('no branch protection rule or active ruleset applies');
    expect(peer.count('graphql')).toBe(1);
    expect(peer.count('rest')).toBe(0);
  });

  it('a read-level view GraphQL answers with an error: REST GET branch decides for that branch only', async () => {
    const result = await run(target({ org: 'views', include: ['broken-*', 'intact-*'], token: 'GH_READ' }));
    expect(brief(result.findings)).toEqual([
      // REST `protected: false` proves there is no classic rule: the fail stands.
      { resource: 'views/broken-bare@main', outcome: 'fail' },
      // REST `protected: true` (by the ruleset, or by a rule the reader cannot see): still open.
      { resource: 'views/broken-ruleset@main', outcome: 'unknown' },
      // Its view came back: settled from GraphQL.
      { resource: 'views/intact-bare@main', outcome: 'fail' },
    ]);
    expect(peer.requests.filter((r) => r.kind === 'rest').map((r) => r.path).sort()).toEqual(['/repos/views/broken-bare/branches/main', '/repos/views/broken-ruleset/branches/main']);
  });

  it('an admin whose token sees no classic rule on a branch GitHub shows one on: unknown, not fail — without REST', async () => {
    const result = await one('classic-only', 'GH_NO_ADMINISTRATION');
    expect(brief(result.findings)).toEqual([{ resource: 'acme/classic-only@main', outcome: 'unknown' }]);
    expect(result.findings[0]?.message).toContain('needs Administration: read');
    expect(peer.count('rest')).toBe(0);
  });

  it('GitHub reports active ruleset rules the rulesets read do not explain: unknown, not fail', async () => {
    // The ruleset applies but no ruleset list shows it (as one from a level the repository's list omits).
    const result = await run(target({ org: 'views', include: ['hidden-ruleset'] }));
    expect(brief(result.findings)).toEqual([{ resource: 'views/hidden-ruleset@main', outcome: 'unknown' }]);
    expect(result.findings[0]?.message).toContain('do not account for');
  });

  it('a token without admin rights: classic protection unknown naming the permission; no REST', async () => {
    const classic = await one('classic-only', 'GH_READ');
    expect(brief(classic.findings)).toEqual([{ resource: 'acme/classic-only@main', outcome: 'unknown' }]);
    expect(classic.findings[0]?.message).toContain('the token lacks admin rights on acme/classic-only (needs Administration: read)');
    // GitHub shows a classic rule applies (by what settings, only an admin may read): still unknown.
    expect(peer.count('rest')).toBe(0);
  });

  it('a bypass list GitHub shows a read-only token is its answer, even empty: pass; one it withholds stays unknown', async () => {
    // rita is an owner of acme (sees organisation rulesets' bypass lists) but only reads the repositories.
    const shown = await one('org-ruleset', 'GH_READ');
    expect(brief(shown.findings)).toEqual([{ resource: 'acme/org-ruleset@main', outcome: 'pass' }]);
    expect(shown.findings[0]?.details?.policy).toMatchObject({ classic: { state: 'none-reported' } });
    expect(peer.count('rest')).toBe(0);

    peer.reset();
    // A repository ruleset's bypass list is withheld from a reader (GraphQL null): whether admins are bound is unknown.
    const withheld = await one('repo-ruleset', 'GH_READ');
    expect(brief(withheld.findings)).toEqual([{ resource: 'acme/repo-ruleset@main', outcome: 'unknown' }]);
    expect(withheld.findings[0]?.message).toMatch(/bypass actors of ruleset "Protect main" \(repository\) unreadable/);
    expect(peer.count('rest')).toBe(0);
  });

  it.each([
    { share: 15, unprotected: 90 },
    { share: 60, unprotected: 360 },
  ])('600 repositories, $share% without any protection: every verdict right, no REST, one GraphQL request per 100 repositories plus one', async ({ share, unprotected }) => {
    const result = await run(target({ org: `mixed${share}` }));
    expect(result.error).toBeUndefined();
    const counts = result.findings.reduce<Record<string, number>>((acc, f) => ({ ...acc, [f.outcome]: (acc[f.outcome] ?? 0) + 1 }), {});
    expect(counts).toEqual({ pass: 600 - unprotected, fail: unprotected });
    expect(result.findings.filter((f) => f.outcome === 'fail').every((f) => f.resource.includes('/bare-'))).toBe(true);
    expect(peer.count('rest')).toBe(0);
    // Both ends of the name order at once: ⌈601 / 100⌉ pages, the last one where the walks meet.
    expect(peer.count('graphql')).toBe(7);
  });

  it('a page that says "more" without a cursor is malformed: no verdict at all, never a partial pass', async () => {
    peer.respondNext(/graphql$/, {
      status: 200,
      body: { data: { organization: { repositories: { pageInfo: { hasNextPage: true, endCursor: null }, nodes: [] } } } },
    });
    const result = await run(target({ org: 'acme' }));
    expect(result.findings).toEqual([]);
    expect(result.error?.class).toBe('MalformedResponseError');
  });

  it('a secondary rate limit with retry-after is waited out: same findings', async () => {
    peer.retryAfterNext(1, 403);
    const result = await one('repo-ruleset');
    expect(result.error).toBeUndefined();
    expect(brief(result.findings)).toEqual([{ resource: 'acme/repo-ruleset@main', outcome: 'pass' }]);
    expect(peer.requests.map((r) => r.status)).toEqual([403, 200]);
  });

  it('a 502 then success: same findings', async () => {
    peer.failNext(1, 502);
    const result = await one('classic-only');
    expect(result.error).toBeUndefined();
    expect(brief(result.findings)).toEqual([{ resource: 'acme/classic-only@main', outcome: 'pass' }]);
    expect(peer.requests.map((r) => r.status)).toEqual([502, 200]);
  });

  it('260 repositories across pages: 3 GraphQL requests, no REST, 260 passes', async () => {
    const result = await run(target({ org: 'big' }));
    expect(result.error).toBeUndefined();
    expect(result.findings).toHaveLength(260);
    expect(result.findings.every((f) => f.outcome === 'pass')).toBe(true);
    expect(peer.count('graphql')).toBe(3);
    expect(peer.count('rest')).toBe(0);
  });

  it('explicit repos are read batched in one query; a missing one is unknown with the reason', async () => {
    const result = await run(target({ repos: ['acme/classic-only', 'acme/repo-ruleset', 'acme/nope'] }));
    expect(brief(result.findings)).toEqual([
      { resource: 'acme/classic-only@main', outcome: 'pass' },
      { resource: 'acme/repo-ruleset@main', outcome: 'pass' },
      { resource: 'acme/nope', outcome: 'unknown' },
    ]);
    expect(result.findings[2]?.message).toContain("Could not resolve to a Repository with the name 'acme/nope'");
    expect(peer.count('graphql')).toBe(1);
  });

  it('include/exclude globs select repositories of the org', async () => {
    const result = await run(target({ org: 'acme', include: ['*-ruleset'], exclude: ['org-*'] }));
    expect(brief(result.findings)).toEqual([{ resource: 'acme/repo-ruleset@main', outcome: 'pass' }]);
  });

  it('targets: every github entry', () => {
    const config = VigilConfig.parse({
      github: [
        { name: 'a', org: 'acme', auth: { token: { env: 'T' } } },
        { name: 'b', repos: ['acme/api'], auth: { token: { env: 'T' } } },
      ],
    });
    expect(probe.targets(config).map((t) => t.name)).toEqual(['a', 'b']);
  });
});
