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
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  githubApiStats,
  githubClient,
  GithubOriginError,
  GithubPermissionError,
  GithubResponseError,
  NotFoundError,
  registerGithubMetrics,
  resetGithubClientState,
  type GithubClientOptions,
} from '../src/clients/github.js';
import { ConfigError, loadConfigText } from '../src/config/load.js';
import { GithubTarget } from '../src/config/schema.js';
import { collectBranchProtection } from '../probes/github-branch-protection/collect.js';
import { probe as branchProtection } from '../probes/github-branch-protection/probe.js';
import { MalformedResponseError, PermissionError, TransientError } from '../src/probe/errors.js';
import { runProbe } from '../src/probe/runner.js';
import { startGithubPeer, type GithubPeer } from './helpers/github-peer.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';

const log = pino({ level: 'silent' });
const Org = z.looseObject({ login: z.string(), two_factor_requirement_enabled: z.boolean().optional() });
const User = z.looseObject({ login: z.string() });
const env = { GH_TOKEN: 'ghp_owner_token_0001', GH_MEMBER: 'ghp_member_token_0002', GH_UNKNOWN: 'ghp_nobody_token_0003' };

let peer: GithubPeer;
let tmp: string;

function target(name: string, extra: Record<string, unknown> = {}): GithubTarget {
  return GithubTarget.parse({ name, org: 'acme', apiUrl: peer.apiUrl, allowInsecureHttp: true, auth: { token: { env: 'GH_TOKEN' } }, ...extra });
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

  it('GitHub\'s "Something went wrong while executing your query" (a GraphQL timeout on its side) is transient', async () => {
    peer.respondNext(/graphql$/, {
      status: 200,
      body: { data: null, errors: [{ message: 'Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug. Please include `0000:1234` when reporting this issue.' }] },
    });
    const err = await client(target('gql-timeout')).graphql('query { viewer { login } }', {}, z.unknown()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect(peer.count('graphql')).toBe(1);
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
      const t = GithubTarget.parse({ name: 'app', org: 'acme', apiUrl: appPeer.apiUrl, allowInsecureHttp: true, auth: { app: { appId: 4242, installationId: 77, privateKey: { file: keyFile } } } });
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

describe('origin lock: the credential only ever goes to the configured apiUrl origin', () => {
  let other: GithubPeer;
  beforeAll(async () => {
    // A second server on another port, that would accept the same token.
    other = await startGithubPeer();
    other.addToken(env.GH_TOKEN, { login: 'owner', orgRoles: { acme: 'owner' } });
    other.addOrg({ login: 'acme', members: [{ login: 'mallory', twoFactor: 'disabled' }] });
  });
  afterAll(async () => {
    await other?.close();
  });
  beforeEach(() => other.reset());

  it('a Link rel="next" to another origin is refused as a run error: the other server receives nothing', async () => {
    peer.respondNext(/^\/orgs\/acme\/members$/, {
      status: 200,
      body: [{ login: 'user000' }],
      headers: { link: `<${other.apiUrl}/orgs/acme/members?filter=2fa_disabled&per_page=100&page=2>; rel="next"` },
    });
    const err = await client(target('link-elsewhere')).restPages('GET /orgs/{org}/members', { org: 'acme', filter: '2fa_disabled' }, User).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GithubOriginError);
    expect(err).not.toBeInstanceOf(TransientError);
    expect((err as GithubOriginError).refusedOrigin).toBe(other.apiUrl);
    expect((err as Error).message).toContain(peer.apiUrl);
    expect(other.requests).toEqual([]);
    expect(peer.count()).toBe(1);
  });

  it('a redirect to another origin is refused the same way; one to the same origin is followed', async () => {
    peer.respondNext(/^\/orgs\/acme$/, { status: 302, body: '', headers: { location: `${other.apiUrl}/orgs/acme` } });
    const err = await client(target('redirect-elsewhere')).rest('GET /orgs/{org}', { org: 'acme' }, Org).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GithubOriginError);
    expect(other.requests).toEqual([]);

    peer.reset();
    peer.respondNext(/^\/orgs\/old-name$/, { status: 301, body: '', headers: { location: `${peer.apiUrl}/orgs/acme` } });
    const org = await client(target('redirect-same')).rest('GET /orgs/{org}', { org: 'old-name' }, Org);
    expect(org.login).toBe('acme');
    expect(peer.requests.map((r) => [r.path, r.status, r.login])).toEqual([
      ['/orgs/old-name', 301, 'owner'],
      ['/orgs/acme', 200, 'owner'],
    ]);
  });

  it('an http:// apiUrl without allowInsecureHttp is a config error naming github[i].apiUrl; with it, accepted', () => {
    const yaml = (extra: string) => `github:\n  - name: gh\n    org: acme\n    apiUrl: http://ghe.example.internal/api/v3\n${extra}    auth: { token: { env: GH_TOKEN } }\n`;
    let err: unknown;
    try {
      loadConfigText(yaml(''), 'vigil.yaml', [branchProtection]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/github(\[0\]|\.0)\.apiUrl: an http:\/\/ apiUrl sends the GitHub token in clear text/);
    expect(() => GithubTarget.parse({ name: 'gh', org: 'acme', apiUrl: 'http://127.0.0.1:1', auth: { token: { env: 'T' } } })).toThrow(/allowInsecureHttp/);
    expect(GithubTarget.parse({ name: 'gh', org: 'acme', apiUrl: 'http://127.0.0.1:1', allowInsecureHttp: true, auth: { token: { env: 'T' } } }).apiUrl).toBe('http://127.0.0.1:1');
    expect(() => GithubTarget.parse({ name: 'gh', org: 'acme', apiUrl: 'ftp://ghe.example.internal', allowInsecureHttp: true, auth: { token: { env: 'T' } } })).toThrow(/https/);
  });
});

describe('throttling shared through Redis: three replicas sweeping one org trip no secondary limit', () => {
  let redis: TestRedisServer;
  let limited: GithubPeer;
  const replicas: Redis[] = [];
  const SWEEP_TOKEN = 'ghp_replica_sweep_0005';
  const sweepTarget = (): GithubTarget =>
    GithubTarget.parse({ name: 'replicas', org: 'fleet', apiUrl: limited.apiUrl, allowInsecureHttp: true, auth: { token: { env: 'GH_SWEEP' } } });

  beforeAll(async () => {
    redis = await startRedisServer();
    // GitHub's concurrency limit, scaled down to the per-credential limit the clients use (and
    // below three, so that three replicas each sending one request at a time would trip it too).
    limited = await startGithubPeer({ latencyMs: 15, secondaryLimit: { maxInFlight: 2, retryAfterSeconds: 1 } });
    limited.addToken(SWEEP_TOKEN, { login: 'sweeper', orgRoles: { fleet: 'owner' } });
    limited.addOrg({
      login: 'fleet',
      // Explicit repos below are read in batches of 50: many GraphQL requests at once per replica.
      repos: Array.from({ length: 400 }, (_, i) => ({ name: `svc-${String(i).padStart(3, '0')}`, ...(i % 5 === 0 ? {} : { rulesets: [] }) })),
    });
  });
  afterAll(async () => {
    for (const r of replicas) r.disconnect();
    await limited?.close();
    await redis?.stop();
  });
  beforeEach(() => limited.reset());

  /** Three sweeps at once, each through its own client as a replica would hold it. */
  async function threeSweeps(redisFor: (i: number) => Redis | undefined) {
    const spec = { ...sweepTarget(), org: undefined, repos: Array.from({ length: 400 }, (_, i) => `fleet/svc-${String(i).padStart(3, '0')}`) };
    const params = branchProtection.params.parse({});
    const clients = [0, 1, 2].map((i) => {
      // Replicas share no process: each client starts from fresh process-local state, so only Redis can coordinate them.
      resetGithubClientState();
      return githubClient(spec, { signal: new AbortController().signal, log, env: { GH_SWEEP: SWEEP_TOKEN }, redis: redisFor(i), concurrency: 2, minSpacingMs: 0 });
    });
    return Promise.allSettled(clients.map((gh) => collectBranchProtection(gh, spec, params)));
  }

  it('clustered on one Redis: never more than 2 in flight across the three, zero refusals, every repository judged', async () => {
    for (let i = 0; i < 3; i++) replicas.push(new Redis(redis.url, { maxRetriesPerRequest: null }));
    const sweeps = await threeSweeps((i) => replicas[i]);
    expect(limited.secondaryRefusals).toBe(0);
    expect(limited.peakInFlightPerCredential).toBe(2);
    expect(sweeps.map((o) => (o.status === 'fulfilled' ? o.value.repos.length : o.reason))).toEqual([400, 400, 400]);
    expect(limited.count('graphql')).toBe(3 * 8);
    expect(limited.invalidQueries).toEqual([]);
  });

  it('a run handed vigil\'s Redis (runner → ctx → client) keeps its limiter there, keyed by a hash of the credential, never the credential', async () => {
    const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
    replicas.push(conn);
    const saved = process.env.GH_SWEEP;
    process.env.GH_SWEEP = SWEEP_TOKEN;
    try {
      resetGithubClientState();
      const spec = { ...sweepTarget(), org: undefined, repos: ['fleet/svc-001', 'fleet/svc-002'] };
      const outcome = await runProbe({ probe: branchProtection, target: { name: spec.name, spec }, params: branchProtection.params.parse({}), runId: 'r', scheduledFor: new Date(), timeoutMs: 20_000, log, redis: conn });
      expect(outcome.result.error).toBeUndefined();
      expect(outcome.result.findings).toHaveLength(2);
    } finally {
      if (saved === undefined) delete process.env.GH_SWEEP;
      else process.env.GH_SWEEP = saved;
    }
    const keys = await conn.keys('b_vigil-github-*');
    expect(keys.some((k) => k.startsWith('b_vigil-github-global-'))).toBe(true);
    expect(keys.join(' ')).not.toContain(SWEEP_TOKEN);
    expect(keys.join(' ')).not.toContain(SWEEP_TOKEN.slice(-8));
  });

  it('the same three sweeps with process-local limiters only: the peer refuses them (the limit is real)', async () => {
    await threeSweeps(() => undefined);
    expect(limited.secondaryRefusals).toBeGreaterThan(0);
    expect(limited.peakInFlightPerCredential).toBeGreaterThan(2);
  });
});
