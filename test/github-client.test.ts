/**
 * src/clients/github.ts through the real Octokit client against the local GitHub peer
 * (test/helpers/github-peer.ts): auth, rate limits, retries, classification, pagination,
 * GraphQL validated against GitHub's public schema, GHES URLs, App installation tokens.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  githubApiStats,
  githubClient,
  GithubPermissionError,
  GithubResponseError,
  NotFoundError,
  registerGithubMetrics,
  resetGithubClientState,
  type GithubClientOptions,
} from '../src/clients/github.js';
import { GithubTarget } from '../src/config/schema.js';
import { MalformedResponseError, PermissionError, TransientError } from '../src/probe/errors.js';
import { startGithubPeer, type GithubPeer } from './helpers/github-peer.js';

const log = pino({ level: 'silent' });
const Org = z.looseObject({ login: z.string(), two_factor_requirement_enabled: z.boolean().optional() });
const User = z.looseObject({ login: z.string() });
const env = { GH_TOKEN: 'ghp_owner_token_0001', GH_MEMBER: 'ghp_member_token_0002', GH_UNKNOWN: 'ghp_nobody_token_0003' };

let peer: GithubPeer;
let tmp: string;

function target(name: string, extra: Record<string, unknown> = {}): GithubTarget {
  return GithubTarget.parse({ name, org: 'acme', apiUrl: peer.apiUrl, auth: { token: { env: 'GH_TOKEN' } }, ...extra });
}
function client(t: GithubTarget, opts: Partial<GithubClientOptions> = {}) {
  return githubClient(t, { signal: new AbortController().signal, log, env, minSpacingMs: 0, retryDelayMs: 20, ...opts });
}

beforeAll(async () => {
  peer = await startGithubPeer();
  tmp = await mkdtemp(path.join(tmpdir(), 'vigil-gh-'));
  peer.addToken(env.GH_TOKEN, { login: 'owner', orgRoles: { acme: 'owner' } });
  peer.addToken(env.GH_MEMBER, { login: 'member', orgRoles: { acme: 'member' }, repoPermission: 'read' });
  peer.addOrg({
    login: 'acme',
    members: Array.from({ length: 250 }, (_, i) => ({ login: `user${String(i).padStart(3, '0')}`, twoFactor: i % 2 === 0 ? 'disabled' : 'enabled' })),
    repos: Array.from({ length: 230 }, (_, i) => ({ name: `repo-${String(i).padStart(3, '0')}`, private: i % 3 === 0 })),
  });
});
afterAll(async () => {
  await peer?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  peer.reset();
  peer.latencyMs = 0;
  resetGithubClientState();
});

describe('REST', () => {
  it('sends the token, parses the body, counts the request and the rate-limit headroom', async () => {
    const org = await client(target('rest-ok')).rest('GET /orgs/{org}', { org: 'acme' }, Org);
    expect(org.login).toBe('acme');
    expect(org.two_factor_requirement_enabled).toBe(true);
    expect(peer.requests.map((r) => [r.kind, r.path, r.status, r.login])).toEqual([['rest', '/orgs/acme', 200, 'owner']]);
    const stats = githubApiStats();
    expect(stats.requests.filter((r) => r.target === 'rest-ok')).toEqual([{ target: 'rest-ok', kind: 'rest', status: '200', count: 1 }]);
    expect(stats.rateLimitRemaining.find((r) => r.target === 'rest-ok' && r.resource === 'core')?.remaining).toBeLessThan(5000);
  });

  it('follows Link rel="next" across pages and parses every item', async () => {
    const users = await client(target('pages')).restPages('GET /orgs/{org}/members', { org: 'acme', filter: '2fa_disabled' }, User);
    expect(users).toHaveLength(125);
    expect(users[0]?.login).toBe('user000');
    expect(users[124]?.login).toBe('user248');
    expect(peer.requests.map((r) => r.query)).toEqual([
      '?per_page=100&filter=2fa_disabled',
      '?per_page=100&filter=2fa_disabled&page=2',
    ]);
  });

  it('a secondary rate limit with retry-after is waited out, then the request succeeds', async () => {
    peer.retryAfterNext(1, 429);
    const started = Date.now();
    const org = await client(target('retry-after')).rest('GET /orgs/{org}', { org: 'acme' }, Org);
    expect(org.login).toBe('acme');
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(peer.requests.map((r) => r.status)).toEqual([429, 200]);
    expect(githubApiStats().requests.filter((r) => r.target === 'retry-after').map((r) => [r.status, r.count]).sort()).toEqual([
      ['200', 1],
      ['429', 1],
    ]);
  });

  it('a retry-after pause holds back every request of that credential, not just the one that got it', async () => {
    peer.retryAfterNext(1, 403);
    const gh = client(target('pause-all'), { concurrency: 1 });
    const started = Date.now();
    await Promise.all([gh.rest('GET /orgs/{org}', { org: 'acme' }, Org), gh.rest('GET /orgs/{org}', { org: 'acme' }, Org)]);
    const times = peer.requests.map((r) => r.status);
    expect(times).toEqual([403, 200, 200]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('a long retry-after is not waited inline: TransientError with retryAfterSeconds, one request', async () => {
    peer.retryAfterNext(600, 403);
    const err = await client(target('long-wait')).rest('GET /orgs/{org}', { org: 'acme' }, Org).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).retryAfterSeconds).toBe(600);
    expect(peer.count()).toBe(1);
  });

  it('an exhausted primary limit (remaining 0) waits for a short reset, and refuses to send while a long one lasts', async () => {
    peer.exhaustRateLimitNext(1);
    const gh = client(target('primary'));
    await expect(gh.rest('GET /orgs/{org}', { org: 'acme' }, Org)).resolves.toMatchObject({ login: 'acme' });
    expect(peer.requests.map((r) => r.status)).toEqual([403, 200]);

    peer.reset();
    peer.exhaustRateLimitNext(3600);
    const err = await gh.rest('GET /orgs/{org}', { org: 'acme' }, Org).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).retryAfterSeconds).toBeGreaterThan(3500);
    // The next request is not even sent: the client knows the window is spent.
    const again = await gh.rest('GET /orgs/{org}', { org: 'acme' }, Org).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(TransientError);
    expect(peer.count()).toBe(1);
  });

  it('502 then success: retried inline', async () => {
    peer.failNext(1, 502);
    await expect(client(target('502')).rest('GET /orgs/{org}', { org: 'acme' }, Org)).resolves.toMatchObject({ login: 'acme' });
    expect(peer.requests.map((r) => r.status)).toEqual([502, 200]);
  });

  it('503 three times: gives up after two retries with a TransientError', async () => {
    peer.failNext(3, 503);
    const err = await client(target('503')).rest('GET /orgs/{org}', { org: 'acme' }, Org).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect(peer.requests.map((r) => r.status)).toEqual([503, 503, 503]);
  });

  it('500 is transient but not retried inline', async () => {
    peer.failNext(1, 500);
    await expect(client(target('500')).rest('GET /orgs/{org}', { org: 'acme' }, Org)).rejects.toBeInstanceOf(TransientError);
    expect(peer.count()).toBe(1);
  });

  it('a payload that fails its schema is a MalformedResponseError naming the field', async () => {
    peer.respondNext(/^\/orgs\/acme$/, { status: 200, body: { login: 42 } });
    const err = await client(target('malformed')).rest('GET /orgs/{org}', { org: 'acme' }, Org).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MalformedResponseError);
    expect((err as Error).message).toContain('login');
  });

  it('404 is a NotFoundError with GitHub\'s message', async () => {
    const err = await client(target('404')).rest('GET /repos/{owner}/{repo}/branches/{branch}/protection', { owner: 'acme', repo: 'repo-001', branch: 'main' }, z.unknown()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).githubMessage).toBe('Branch not protected');
  });

  it('403 names the permission GitHub says is missing', async () => {
    peer.respondNext(/^\/orgs\/acme$/, {
      status: 403,
      body: { message: 'Resource not accessible by integration', documentation_url: 'https://docs.github.com/rest' },
      headers: { 'x-accepted-github-permissions': 'members=read' },
    });
    const err = await client(target('403')).rest('GET /orgs/{org}', { org: 'acme' }, Org).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GithubPermissionError);
    expect(err).toBeInstanceOf(PermissionError);
    expect((err as GithubPermissionError).needs).toBe('members=read');
    expect((err as Error).message).toContain('needs the permission members=read');
  });

  it('403 for a classic token names the scope it lacks and the scopes it has', async () => {
    peer.respondNext(/^\/orgs\/acme$/, {
      status: 403,
      body: { message: 'Must have admin rights to Repository.' },
      headers: { 'x-accepted-oauth-scopes': 'admin:org, read:org', 'x-oauth-scopes': 'repo' },
    });
    const err = await client(target('403-scope')).rest('GET /orgs/{org}', { org: 'acme' }, Org).catch((e: unknown) => e);
    expect((err as Error).message).toContain('needs the scope admin:org or read:org (it has repo)');
  });

  it('401 bad credentials is a PermissionError that never shows the token', async () => {
    const err = await client(target('401', { auth: { token: { env: 'GH_UNKNOWN' } } })).rest('GET /orgs/{org}', { org: 'acme' }, Org).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermissionError);
    expect((err as Error).message).toContain('Bad credentials');
    expect((err as Error).message).not.toContain(env.GH_UNKNOWN);
  });

  it('an unset token variable is a PermissionError naming the variable', () => {
    expect(() => client(target('unset', { auth: { token: { env: 'GH_NOT_SET' } } }))).toThrow(/GH_NOT_SET/);
  });

  it('never more than `concurrency` requests in flight, and starts spaced by minSpacingMs', async () => {
    peer.latencyMs = 40;
    const gh = client(target('burst'), { concurrency: 3, minSpacingMs: 15 });
    const started = Date.now();
    await Promise.all(Array.from({ length: 12 }, () => gh.rest('GET /orgs/{org}', { org: 'acme' }, Org)));
    expect(peer.count()).toBe(12);
    expect(peer.peakInFlight).toBeLessThanOrEqual(3);
    expect(peer.peakInFlight).toBeGreaterThanOrEqual(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(11 * 15);
  });

  it('aborting the run ends a rate-limit wait at once', async () => {
    peer.retryAfterNext(30, 429);
    const controller = new AbortController();
    const gh = client(target('abort'), { signal: controller.signal });
    const pending = gh.rest('GET /orgs/{org}', { org: 'acme' }, Org).catch((e: unknown) => e);
    setTimeout(() => controller.abort(new Error('shutdown')), 100);
    const started = Date.now();
    const err = await pending;
    expect((err as Error).message).toBe('shutdown');
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('GraphQL', () => {
  const ReposPage = z.object({
    organization: z.object({
      repositories: z.object({
        pageInfo: z.object({ hasNextPage: z.boolean(), endCursor: z.string().nullable() }),
        nodes: z.array(z.object({ name: z.string(), isPrivate: z.boolean(), defaultBranchRef: z.object({ name: z.string() }).nullable() })),
      }),
    }),
  });
  const query = `query($org: String!, $after: String) {
    organization(login: $org) {
      repositories(first: 100, after: $after, orderBy: { field: NAME, direction: ASC }) {
        pageInfo { hasNextPage endCursor }
        nodes { name isPrivate defaultBranchRef { name } }
      }
    }
  }`;

  it('pages through 230 repositories with cursors; every query validates against GitHub\'s schema', async () => {
    const gh = client(target('gql-pages'));
    const names: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: z.infer<typeof ReposPage> = await gh.graphql(query, { org: 'acme', after }, ReposPage);
      names.push(...page.organization.repositories.nodes.map((n) => n.name));
      if (!page.organization.repositories.pageInfo.hasNextPage) break;
      after = page.organization.repositories.pageInfo.endCursor;
    }
    expect(names).toHaveLength(230);
    expect(new Set(names).size).toBe(230);
    expect(names[229]).toBe('repo-229');
    expect(peer.count('graphql')).toBe(3);
    expect(peer.invalidQueries).toEqual([]);
    expect(githubApiStats().requests.filter((r) => r.target === 'gql-pages')).toEqual([{ target: 'gql-pages', kind: 'graphql', status: '200', count: 3 }]);
  });

  it('the peer rejects a query that does not validate against GitHub\'s schema, and the client refuses it', async () => {
    const bad = 'query { organization(login: "acme") { repositories(first: 5) { nodes { name isProtected } } } }';
    const err = await client(target('gql-invalid')).graphql(bad, {}, z.unknown()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GithubResponseError);
    expect(peer.invalidQueries).toHaveLength(1);
    expect(peer.invalidQueries[0]?.errors.join()).toContain('Cannot query field "isProtected" on type "Repository"');
  });

  it('a connection without first/last is refused as GitHub does, and recorded', async () => {
    const err = await client(target('gql-nofirst')).graphql('query { organization(login: "acme") { repositories { totalCount } } }', {}, z.unknown()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GithubResponseError);
    expect(peer.invalidQueries[0]?.errors.join()).toContain('You must provide a `first` or `last` value');
  });

  it('NOT_FOUND errors become NotFoundError; graphqlPartial hands field errors to the caller with their path', async () => {
    const q = 'query { a: repository(owner: "acme", name: "repo-001") { name } b: repository(owner: "acme", name: "gone") { name } }';
    const gh = client(target('gql-partial'));
    await expect(gh.graphql(q, {}, z.unknown())).rejects.toBeInstanceOf(NotFoundError);
    const { data, errors } = await gh.graphqlPartial(q, {}, z.object({ a: z.object({ name: z.string() }).nullable(), b: z.object({ name: z.string() }).nullable() }));
    expect(data).toEqual({ a: { name: 'repo-001' }, b: null });
    expect(errors).toEqual([{ type: 'NOT_FOUND', path: ['b'], message: "Could not resolve to a Repository with the name 'acme/gone'." }]);
  });

  it('GHES-style apiUrl: REST under /api/v3, GraphQL at /api/graphql', async () => {
    const gh = client(target('ghes', { apiUrl: peer.ghesApiUrl }));
    await gh.rest('GET /orgs/{org}', { org: 'acme' }, Org);
    await gh.graphql('query { viewer { login } }', {}, z.object({ viewer: z.object({ login: z.literal('owner') }) }));
    expect(peer.requests.map((r) => [r.kind, r.path, r.status])).toEqual([
      ['rest', '/api/v3/orgs/acme', 200],
      ['graphql', '/api/graphql', 200],
    ]);
  });

  it('a GraphQL answer whose data fails the schema is a MalformedResponseError', async () => {
    peer.respondNext(/graphql$/, { status: 200, body: { data: { viewer: { login: null } } } });
    await expect(client(target('gql-malformed')).graphql('query { viewer { login } }', {}, z.object({ viewer: z.object({ login: z.string() }) }))).rejects.toBeInstanceOf(
      MalformedResponseError,
    );
  });

  it('a RATE_LIMITED GraphQL answer with a distant reset is a TransientError', async () => {
    peer.respondNext(/graphql$/, {
      status: 200,
      body: { data: null, errors: [{ type: 'RATE_LIMITED', message: 'API rate limit exceeded' }] },
      headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600), 'x-ratelimit-resource': 'graphql' },
    });
    const err = await client(target('gql-ratelimited')).graphql('query { viewer { login } }', {}, z.unknown()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).retryAfterSeconds).toBeGreaterThan(3500);
  });
});

describe('GitHub App auth', () => {
  it('mints an installation token with a verified JWT, reuses it, and refreshes it before it expires', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyFile = path.join(tmp, 'app.pem');
    await writeFile(keyFile, privateKey.export({ type: 'pkcs1', format: 'pem' }) as string);
    let skewMs = 0;
    const clock = () => Date.now() + skewMs;
    const appPeer = await startGithubPeer({ now: clock });
    try {
      appPeer.addOrg({ login: 'acme', members: [] });
      appPeer.addApp({ appId: 4242, installationId: 77, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string, tokenLifetimeSeconds: 3600 });
      const t = GithubTarget.parse({ name: 'app', org: 'acme', apiUrl: appPeer.apiUrl, auth: { app: { appId: 4242, installationId: 77, privateKey: { file: keyFile } } } });
      const run = () => client(t, { now: clock }).rest('GET /orgs/{org}', { org: 'acme' }, Org);

      await run();
      await run(); // a second run in the same process reuses the cached installation token
      expect(appPeer.installationTokens).toHaveLength(1);
      expect(appPeer.requests.map((r) => [r.kind, r.auth, r.status])).toEqual([
        ['app', 'jwt', 201],
        ['rest', 'installation', 200],
        ['rest', 'installation', 200],
      ]);

      // 58 minutes later the token has 2 minutes left, inside the 5-minute margin: a new one is minted first.
      skewMs = 58 * 60_000;
      await run();
      expect(appPeer.installationTokens).toHaveLength(2);
      expect(appPeer.requests.slice(3).map((r) => [r.kind, r.status])).toEqual([
        ['app', 201],
        ['rest', 200],
      ]);
      expect(appPeer.requests.some((r) => r.status === 401)).toBe(false);
    } finally {
      await appPeer.close();
    }
  });
});

describe('metrics', () => {
  it('registerGithubMetrics exposes request counts and rate-limit headroom by target', async () => {
    await client(target('metrics')).rest('GET /orgs/{org}', { org: 'acme' }, Org);
    peer.failNext(1, 500);
    await client(target('metrics')).rest('GET /orgs/{org}', { org: 'acme' }, Org).catch(() => undefined);
    const registry = new Registry();
    registerGithubMetrics(registry);
    const text = await registry.metrics();
    expect(text).toContain('vigil_github_api_requests_total{target="metrics",kind="rest",status="200"} 1');
    expect(text).toContain('vigil_github_api_requests_total{target="metrics",kind="rest",status="500"} 1');
    expect(text).toMatch(/vigil_github_rate_limit_remaining\{target="metrics",resource="core"\} \d+/);
  });
});

describe('the peer\'s repository model (what the branch-protection probe reads)', () => {
  const query = `query($owner: String!, $name: String!) {
    repository(owner: $owner, name: $name) {
      nameWithOwner isArchived isDisabled isEmpty viewerPermission
      defaultBranchRef { name branchProtectionRule { pattern } }
      branchProtectionRules(first: 10) { totalCount nodes { pattern requiresApprovingReviews requiredApprovingReviewCount isAdminEnforced allowsForcePushes allowsDeletions requiredStatusCheckContexts
        bypassPullRequestAllowances(first: 10) { totalCount } } }
      rulesets(first: 10, includeParents: true) {
        nodes {
          databaseId name enforcement target
          source { __typename ... on Organization { login } ... on Repository { nameWithOwner } }
          conditions { refName { include exclude } repositoryName { include exclude } }
          bypassActors(first: 10) { nodes { bypassMode organizationAdmin repositoryRoleName actor { __typename ... on Team { slug } ... on App { slug } } } }
          rules(first: 20) { nodes { type parameters { __typename
            ... on PullRequestParameters { requiredApprovingReviewCount dismissStaleReviewsOnPush requireCodeOwnerReview requireLastPushApproval }
            ... on RequiredStatusChecksParameters { requiredStatusChecks { context } } } } }
        }
      }
      refs(refPrefix: "refs/heads/", first: 10) { nodes { name } }
    }
  }`;
  const Result = z.object({ repository: z.unknown() });

  beforeAll(() => {
    peer.addOrg({
      login: 'model',
      rulesets: [
        {
          id: 7,
          name: 'org baseline',
          enforcement: 'active',
          refInclude: ['~DEFAULT_BRANCH'],
          repositoryInclude: ['svc-*'],
          rules: [{ type: 'deletion' }, { type: 'non_fast_forward' }],
          bypassActors: [{ actorType: 'OrganizationAdmin', actorId: 1, bypassMode: 'always' }],
        },
      ],
      repos: [
        {
          name: 'svc-api',
          branches: ['main', 'release/1'],
          protectionRules: [{ pattern: 'main', requiresApprovingReviews: true, requiredApprovingReviewCount: 2, isAdminEnforced: true, bypassPullRequestActors: ['octocat'] }],
          rulesets: [
            {
              id: 42,
              name: 'release',
              enforcement: 'evaluate',
              refInclude: ['refs/heads/release/*'],
              rules: [
                { type: 'pull_request', parameters: { required_approving_review_count: 1, dismiss_stale_reviews_on_push: true, require_code_owner_review: false, require_last_push_approval: false, required_review_thread_resolution: false } },
                { type: 'required_status_checks', parameters: { required_status_checks: [{ context: 'ci/build' }], strict_required_status_checks_policy: true } },
              ],
              bypassActors: [{ actorType: 'Team', actorId: 9, bypassMode: 'pull_request' }],
            },
          ],
        },
      ],
    });
    peer.addToken('ghp_model_reader_0004', { login: 'reader', repoPermission: 'read' });
    // Org rulesets' bypass actors are shown to org owners only.
    peer.addToken(env.GH_TOKEN, { login: 'owner', orgRoles: { acme: 'owner', model: 'owner' } });
  });

  it('an admin sees classic rules, repository and org rulesets with conditions, rules and bypass actors', async () => {
    const { repository } = await client(target('model-admin')).graphql(query, { owner: 'model', name: 'svc-api' }, Result);
    expect(peer.invalidQueries).toEqual([]);
    expect(repository).toMatchObject({
      nameWithOwner: 'model/svc-api',
      isEmpty: false,
      viewerPermission: 'ADMIN',
      defaultBranchRef: { name: 'main', branchProtectionRule: { pattern: 'main' } },
      branchProtectionRules: { totalCount: 1, nodes: [{ pattern: 'main', requiredApprovingReviewCount: 2, isAdminEnforced: true, bypassPullRequestAllowances: { totalCount: 1 } }] },
      rulesets: {
        nodes: [
          {
            databaseId: 42,
            enforcement: 'EVALUATE',
            target: 'BRANCH',
            source: { __typename: 'Repository', nameWithOwner: 'model/svc-api' },
            conditions: { refName: { include: ['refs/heads/release/*'], exclude: [] }, repositoryName: null },
            bypassActors: { nodes: [{ bypassMode: 'PULL_REQUEST', organizationAdmin: false, actor: { __typename: 'Team', slug: 'team-9' } }] },
            rules: {
              nodes: [
                { type: 'PULL_REQUEST', parameters: { __typename: 'PullRequestParameters', requiredApprovingReviewCount: 1, dismissStaleReviewsOnPush: true } },
                { type: 'REQUIRED_STATUS_CHECKS', parameters: { __typename: 'RequiredStatusChecksParameters', requiredStatusChecks: [{ context: 'ci/build' }] } },
              ],
            },
          },
          {
            databaseId: 7,
            enforcement: 'ACTIVE',
            source: { __typename: 'Organization', login: 'model' },
            conditions: { refName: { include: ['~DEFAULT_BRANCH'] }, repositoryName: { include: ['svc-*'], exclude: [] } },
            bypassActors: { nodes: [{ bypassMode: 'ALWAYS', organizationAdmin: true, actor: null }] },
            rules: { nodes: [{ type: 'DELETION', parameters: null }, { type: 'NON_FAST_FORWARD', parameters: null }] },
          },
        ],
      },
      refs: { nodes: [{ name: 'main' }, { name: 'release/1' }] },
    });
  });

  it('a read-only token sees no classic rules and no bypass actors, as GitHub answers (silently)', async () => {
    const t = target('model-reader', { auth: { token: { env: 'GH_READER' } } });
    const gh = githubClient(t, { signal: new AbortController().signal, log, env: { GH_READER: 'ghp_model_reader_0004' }, minSpacingMs: 0 });
    const { repository } = await gh.graphql(query, { owner: 'model', name: 'svc-api' }, Result);
    expect(repository).toMatchObject({
      viewerPermission: 'READ',
      defaultBranchRef: { name: 'main', branchProtectionRule: null },
      branchProtectionRules: { totalCount: 0, nodes: [] },
      rulesets: { nodes: [{ databaseId: 42, bypassActors: null }, { databaseId: 7, bypassActors: null }] },
    });
    // REST: protection needs admin; the branch itself says it is protected.
    await expect(gh.rest('GET /repos/{owner}/{repo}/branches/{branch}/protection', { owner: 'model', repo: 'svc-api', branch: 'main' }, z.unknown())).rejects.toBeInstanceOf(NotFoundError);
    const branch = await gh.rest('GET /repos/{owner}/{repo}/branches/{branch}', { owner: 'model', repo: 'svc-api', branch: 'main' }, z.looseObject({ protected: z.boolean() }));
    expect(branch.protected).toBe(true);
  });

  it('REST: classic protection, effective branch rules (active rulesets only) and the ruleset list', async () => {
    const gh = client(target('model-rest'));
    const protection = await gh.rest(
      'GET /repos/{owner}/{repo}/branches/{branch}/protection',
      { owner: 'model', repo: 'svc-api', branch: 'main' },
      z.looseObject({ enforce_admins: z.object({ enabled: z.boolean() }), required_pull_request_reviews: z.looseObject({ required_approving_review_count: z.number() }) }),
    );
    expect(protection.enforce_admins.enabled).toBe(true);
    expect(protection.required_pull_request_reviews.required_approving_review_count).toBe(2);
    const Rule = z.looseObject({ type: z.string(), ruleset_id: z.number(), ruleset_source_type: z.string() });
    expect(await gh.restPages('GET /repos/{owner}/{repo}/rules/branches/{branch}', { owner: 'model', repo: 'svc-api', branch: 'main' }, Rule)).toEqual([
      expect.objectContaining({ type: 'deletion', ruleset_id: 7, ruleset_source_type: 'Organization' }),
      expect.objectContaining({ type: 'non_fast_forward', ruleset_id: 7, ruleset_source_type: 'Organization' }),
    ]);
    // The release ruleset is in evaluate mode: GitHub lists no effective rule for it.
    expect(await gh.restPages('GET /repos/{owner}/{repo}/rules/branches/{branch}', { owner: 'model', repo: 'svc-api', branch: 'release/1' }, Rule)).toEqual([]);
    const sets = await gh.restPages('GET /repos/{owner}/{repo}/rulesets', { owner: 'model', repo: 'svc-api', includes_parents: true }, z.looseObject({ id: z.number(), enforcement: z.string() }));
    expect(sets.map((s) => [s.id, s.enforcement])).toEqual([
      [42, 'evaluate'],
      [7, 'active'],
    ]);
    await expect(gh.rest('GET /repos/{owner}/{repo}/branches/{branch}/protection', { owner: 'model', repo: 'svc-api', branch: 'release/1' }, z.unknown())).rejects.toThrow(/Branch not protected/);
  });
});
