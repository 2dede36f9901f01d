/**
 * A local GitHub on loopback (node:http, port 0) that speaks REST and GraphQL as the real Octokit
 * client uses them, for the GitHub probes' tests and benchmark.
 *
 * - **REST** payloads are GitHub's own published examples — the `examples` of `@octokit/openapi`'s
 *   api.github.com.json (organization-full, simple-user-items, minimal-repository-items,
 *   full-repository-default-response, branch-get, branch-protection, repository-rule-items,
 *   repository-ruleset-items, repository-ruleset, rate-limit-overview, installation-token) —
 *   and recorded traffic from `@octokit/fixtures` (the 404 "Branch not protected" body, the
 *   response headers), loaded from node_modules at run time and reshaped per case.
 * - **GraphQL** requests are parsed and **validated against GitHub's public schema**
 *   (`@octokit/graphql-schema`): a query that does not validate is answered with GitHub-style
 *   `errors` and recorded in {@link GithubPeer.invalidQueries}, so a test can assert none was
 *   sent. Valid queries are executed by `graphql`'s `execute` against the in-memory model, with
 *   real cursor pagination (and GitHub's `first`/`last` requirement and 100-record cap).
 * - **Auth**: tokens registered with {@link GithubPeer.addToken} (owner or member per org, a
 *   repository permission); a GitHub App whose JWT (RS256) is verified and which mints
 *   installation tokens with `expires_at`; expired or unknown tokens get 401 "Bad credentials".
 * - **Read-level views**: a ref's `refUpdateRule` (the classic rule that applies, shown to any
 *   reader) and `rules` (rules of the active rulesets that apply), as GitHub shows them to
 *   non-admins; `failRefViews` answers them with an error, a ruleset with `listed: false` is
 *   enforced but missing from every ruleset list, an identity with `administrationRead: false`
 *   is an admin whose token sees no classic rules.
 * - **Faults**: `retryAfterNext`, `exhaustRateLimitNext`, `failNext`, `respondNext`, `latencyMs`,
 *   and `secondaryLimit` (more than N requests of one credential in flight → GitHub's 403
 *   secondary rate limit, counted in `secondaryRefusals`).
 * - **Log**: every request in {@link GithubPeer.requests}, with its kind and path.
 *
 * Both URL layouts work: api.github.com style (`/orgs/…`, `/graphql`) at {@link GithubPeer.apiUrl}
 * and GitHub Enterprise Server style (`/api/v3/orgs/…`, `/api/graphql`) at {@link GithubPeer.ghesApiUrl}.
 */
import { createHash, createPublicKey, randomBytes, verify as verifySignature, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createRequire } from 'node:module';
import { releasesAndContents, startAssetHost, type AssetHost, type ReleaseRepoModel } from './github-peer-releases.js';
import { schema as publicSchema } from '@octokit/graphql-schema';
import {
  buildClientSchema,
  execute,
  GraphQLError,
  Kind,
  parse,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type IntrospectionQuery,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';

// ---------------------------------------------------------------------------------------------
// The model a test describes.

/** A user as the org lists it. */
export interface PeerUser {
  login: string;
  id?: number;
  /** Default `enabled`. `insecure`: 2FA by SMS, which `filter=2fa_insecure` reports. */
  twoFactor?: 'enabled' | 'disabled' | 'insecure';
  /** Org role of a member. Default `member`. */
  role?: 'admin' | 'member';
}

/** A classic branch protection rule, in GraphQL `BranchProtectionRule` field names (unset booleans are false). */
export interface PeerProtectionRule {
  pattern: string;
  requiresApprovingReviews?: boolean;
  requiredApprovingReviewCount?: number | null;
  dismissesStaleReviews?: boolean;
  requiresCodeOwnerReviews?: boolean;
  requireLastPushApproval?: boolean;
  requiresStatusChecks?: boolean;
  requiresStrictStatusChecks?: boolean;
  requiredStatusCheckContexts?: string[];
  allowsForcePushes?: boolean;
  allowsDeletions?: boolean;
  isAdminEnforced?: boolean;
  requiresCommitSignatures?: boolean;
  requiresLinearHistory?: boolean;
  requiresConversationResolution?: boolean;
  lockBranch?: boolean;
  /** Logins allowed to bypass pull requests / to force push. */
  bypassPullRequestActors?: string[];
  bypassForcePushActors?: string[];
}

/** A ruleset, in REST terms (snake_case rule types and parameters, as GitHub's REST API shows them). */
export interface PeerRuleset {
  id: number;
  name: string;
  /** `active`, `evaluate`, `disabled` — or anything else, which the REST API passes through (GraphQL cannot). */
  enforcement: string;
  /** Default `branch`. */
  target?: 'branch' | 'tag' | 'push';
  /** ref_name condition, e.g. `refs/heads/main`, `~DEFAULT_BRANCH`, `~ALL`. */
  refInclude?: string[];
  refExclude?: string[];
  /** repository_name condition of an organisation ruleset. Default `['~ALL']`. */
  repositoryInclude?: string[];
  repositoryExclude?: string[];
  rules: Array<{ type: string; parameters?: Record<string, unknown> }>;
  bypassActors?: Array<{
    actorType: 'Integration' | 'OrganizationAdmin' | 'RepositoryRole' | 'Team' | 'DeployKey';
    actorId?: number | null;
    bypassMode: 'always' | 'pull_request';
  }>;
  /**
   * False: enforced (a ref's `rules`, a branch's `protected`, `rules/branches/{b}`) but missing from
   * every ruleset list — as a ruleset from a level a repository's list does not include. Default true.
   */
  listed?: boolean;
}

/** Releases, their assets and repository files (github-peer-releases.ts). */
export type { PeerAsset, PeerRelease } from './github-peer-releases.js';

export interface PeerRepo extends ReleaseRepoModel {
  name: string;
  /** Default `main`; `null` for an empty repository (no branch at all). */
  defaultBranch?: string | null;
  /** Branch names; default just the default branch. */
  branches?: string[];
  isArchived?: boolean;
  isDisabled?: boolean;
  /** Default: true exactly when defaultBranch is null. */
  isEmpty?: boolean;
  private?: boolean;
  protectionRules?: PeerProtectionRule[];
  rulesets?: PeerRuleset[];
  /** GraphQL answers its refs' `refUpdateRule` and `rules` with an error (e.g. a GitHub that cannot compute them). */
  failRefViews?: boolean;
  /** `pushedAt` of the repository (GraphQL; `orderBy: PUSHED_AT`). Default: the newest commit's date, else null. */
  pushedAt?: string | null;
  /** History of the default branch, newest first (github-change-review). */
  commits?: PeerCommit[];
  /** History of other branches, newest first, by branch name. */
  branchCommits?: Record<string, PeerCommit[]>;
  /** Pull requests, referenced by number from {@link PeerCommit.pullRequests}. */
  pullRequests?: PeerPullRequest[];
  /** GitHub Actions workflows and their runs (github-workflow-runs). */
  workflows?: PeerWorkflow[];
  /** The Actions REST endpoints answer 403 "Resource not accessible by integration" (no Actions: read). */
  actionsForbidden?: boolean;
}

/** A commit of a branch's history. */
export interface PeerCommit {
  /** Default: derived from the repository, message, date and author. */
  oid?: string;
  message?: string;
  /** Login of the author; a login ending in `[bot]` is a bot (GraphQL `author.user` is null, as GitHub shows bots). `null`: an author GitHub cannot link to an account. */
  author: string | null;
  /** Git author name when `author` is null. */
  authorName?: string;
  committedDate: string;
  /** Numbers of the repository's pull requests this commit is associated with, in GitHub's order. */
  pullRequests?: number[];
}

/** A pull request. */
export interface PeerPullRequest {
  number: number;
  author: string;
  /** Default: the repository's default branch. */
  baseRefName?: string;
  /** Default `MERGED`. */
  state?: 'MERGED' | 'OPEN' | 'CLOSED';
  mergedAt?: string;
  /** The PR's last commit. Default: derived from the number. */
  headRefOid?: string;
  /** `mergeCommit.oid`: the commit GitHub created when it merged the PR (a merge or squash commit). Default: none (null). */
  mergeCommitOid?: string;
  /** In submission order. */
  reviews?: PeerReview[];
}

export interface PeerReview {
  author: string;
  state: 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED' | 'DISMISSED' | 'PENDING';
  /** The commit the review was made on. Default: the PR's `headRefOid`. */
  commitOid?: string;
  /** Whether the reviewer may push to the repository (`writersOnly`). Default true. */
  writer?: boolean;
  submittedAt?: string;
}

/** A workflow file and its runs (Actions REST, shaped from GitHub's published examples). */
export interface PeerWorkflow {
  /** `.github/workflows/<file>`. */
  path: string;
  name?: string;
  id?: number;
  /** Runs in any order; answered newest first (by `created_at`). */
  runs?: PeerWorkflowRun[];
}

export interface PeerWorkflowRun {
  id?: number;
  headBranch: string;
  status: 'completed' | 'in_progress' | 'queued' | 'waiting' | 'requested' | 'pending';
  conclusion: 'success' | 'failure' | 'cancelled' | 'skipped' | 'timed_out' | 'action_required' | 'neutral' | 'stale' | 'startup_failure' | null;
  createdAt: string;
  runStartedAt?: string;
  updatedAt?: string;
  runAttempt?: number;
  event?: string;
  /** `head_repository.full_name`: where the run's code came from — a fork for a fork's pull request; null: a deleted fork. Default: the repository itself. */
  headRepository?: string | null;
  jobs?: PeerWorkflowJob[];
}

export interface PeerWorkflowJob {
  name: string;
  status: 'completed' | 'in_progress' | 'queued';
  conclusion: 'success' | 'failure' | 'cancelled' | 'skipped' | 'timed_out' | 'action_required' | 'neutral' | null;
}

export interface PeerOrg {
  login: string;
  /** The org's "Require two-factor authentication" setting. Default true. */
  twoFactorRequired?: boolean;
  members?: PeerUser[];
  outsideCollaborators?: PeerUser[];
  repos?: PeerRepo[];
  rulesets?: PeerRuleset[];
  /** Whether `filter=2fa_insecure` is understood; false answers 422 like an older GHES. Default true. */
  reportsInsecure2fa?: boolean;
}

export type PeerPermission = 'admin' | 'maintain' | 'write' | 'triage' | 'read';

/** Who a token is and what it may see. */
export interface PeerIdentity {
  login: string;
  /** Role per org login; orgs not listed: `member`. */
  orgRoles?: Record<string, 'owner' | 'member'>;
  /** Permission on repositories: one for all, or per `owner/name` (others: `read`). Default `admin`. */
  repoPermission?: PeerPermission | Record<string, PeerPermission>;
  /** Classic token scopes, sent as `x-oauth-scopes`. Default `read:org, repo`. */
  scopes?: string;
  /**
   * False for a fine-grained token without Administration: read whose user is a repository admin:
   * GraphQL still says `viewerPermission: ADMIN` but shows no classic rules. Default true.
   */
  administrationRead?: boolean;
}

/** A GitHub App whose installation tokens the peer mints. */
export interface PeerApp {
  appId: number;
  installationId: number;
  /** PEM of the App key's public half: the JWT's RS256 signature is verified with it. */
  publicKeyPem: string;
  /** Lifetime of minted installation tokens. Default 3600 s. */
  tokenLifetimeSeconds?: number;
  /** What the installation may see. Default: owner of every org, admin on every repo. */
  identity?: Omit<PeerIdentity, 'login' | 'scopes'>;
}

/** One request the peer answered. */
export interface PeerRequest {
  kind: 'rest' | 'graphql' | 'app';
  method: string;
  /** Path as received, without the query string (`/api/v3/orgs/acme` for GHES-style). */
  path: string;
  query: string;
  status: number;
  /** `token`, `installation`, `jwt`, or `none`. */
  auth: 'token' | 'installation' | 'jwt' | 'none';
  login: string | undefined;
}

export interface GithubPeerOptions {
  /** Delay before each answer, ms (the benchmark uses 50). Default 0. */
  latencyMs?: number;
  /** The peer's clock (token expiry, rate-limit reset). Default `Date.now`. */
  now?: () => number;
  /** Primary rate limit per token and resource. Default 5000. */
  rateLimit?: number;
  /** Secondary limits on (see {@link GithubPeer.secondaryLimit}). Default off. */
  secondaryLimit?: PeerSecondaryLimit;
}

/**
 * GitHub's secondary limit on concurrent requests, scaled down: a request arriving while more
 * than `maxInFlight` requests of the same credential are being answered gets GitHub's 403
 * "You have exceeded a secondary rate limit" with `retry-after`.
 */
export interface PeerSecondaryLimit {
  maxInFlight: number;
  /** `retry-after` of the refusal, seconds. Default 1. */
  retryAfterSeconds?: number;
}

export interface GithubPeer {
  /** The storage host release-asset downloads are redirected to (another origin); list its `host` in `downloadHosts`. */
  readonly assetHost: AssetHost;
  /** `http://127.0.0.1:PORT` — an api.github.com-style apiUrl. */
  readonly apiUrl: string;
  /** `http://127.0.0.1:PORT/api/v3` — a GitHub Enterprise Server-style apiUrl (GraphQL at /api/graphql). */
  readonly ghesApiUrl: string;
  latencyMs: number;
  readonly requests: PeerRequest[];
  /** GraphQL queries that did not parse or validate against GitHub's schema, or paginated wrongly. */
  readonly invalidQueries: Array<{ query: string; errors: string[] }>;
  /** The most requests the peer was answering at once. */
  readonly peakInFlight: number;
  /** The most requests of one credential the peer was answering at once. */
  readonly peakInFlightPerCredential: number;
  /** Secondary limits, when on; may be changed between requests. */
  secondaryLimit: PeerSecondaryLimit | undefined;
  /** Requests refused with a secondary rate limit (by {@link GithubPeer.secondaryLimit}, not `retryAfterNext`). */
  readonly secondaryRefusals: number;
  /** Installation tokens minted so far. */
  readonly installationTokens: Array<{ token: string; expiresAt: string }>;
  /** GraphQL points charged so far, by GitHub's published formula (connections × `first`/`last`, ÷ 100, at least 1 per query). */
  readonly graphqlPoints: number;
  addOrg(org: PeerOrg): void;
  addToken(token: string, identity: PeerIdentity): void;
  addApp(app: PeerApp): void;
  /** The next `n` answers are `status` (default 502) with GitHub's error body. */
  failNext(n: number, status?: number): void;
  /** The next answer is a secondary rate limit: `status` (403 or 429) with `retry-after: seconds`. */
  retryAfterNext(seconds: number, status?: 403 | 429): void;
  /** The next answer is a primary rate limit: 403, `x-ratelimit-remaining: 0`, reset in `resetInSeconds`. */
  exhaustRateLimitNext(resetInSeconds: number): void;
  /** The next request whose path matches answers this instead (malformed payloads, odd statuses). */
  respondNext(match: RegExp, answer: { status: number; body: unknown; headers?: Record<string, string> }): void;
  /** Requests counted by kind (and path pattern). */
  count(kind?: PeerRequest['kind'], path?: RegExp): number;
  /** Clears the request log and invalid-query list. */
  reset(): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Published examples and recorded traffic.

const require = createRequire(import.meta.url);

interface Published {
  example(name: string): unknown;
  branchNotProtected: unknown;
  recordedHeaders: Record<string, string>;
}

let published: Published | undefined;

/** Loads GitHub's published examples and @octokit/fixtures recordings once per process. */
function loadPublished(): Published {
  if (published) return published;
  const spec = JSON.parse(readFileSync(require.resolve('@octokit/openapi/generated/api.github.com.json'), 'utf8')) as {
    components: { examples: Record<string, { value: unknown }> };
  };
  const examples = spec.components.examples;
  const bp = JSON.parse(readFileSync(require.resolve('@octokit/fixtures/scenarios/api.github.com/branch-protection/normalized-fixture.json'), 'utf8')) as Array<{
    method: string;
    status: number;
    response: unknown;
  }>;
  const org = JSON.parse(readFileSync(require.resolve('@octokit/fixtures/scenarios/api.github.com/get-organization/normalized-fixture.json'), 'utf8')) as Array<{
    headers: Record<string, unknown>;
  }>;
  const notProtected = bp.find((r) => r.status === 404);
  if (!notProtected) throw new Error('@octokit/fixtures has no recorded 404 "Branch not protected"');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(org[0]?.headers ?? {})) {
    // Keep GitHub's own informational headers; framing and per-response values are set per answer.
    if (/^(content-length|connection|date|etag|last-modified|x-ratelimit-|x-oauth-scopes|x-accepted-oauth-scopes)/.test(k)) continue;
    headers[k] = String(v);
  }
  published = {
    example(name) {
      const ex = examples[name];
      if (!ex) throw new Error(`@octokit/openapi has no example "${name}"`);
      return structuredClone(ex.value);
    },
    branchNotProtected: notProtected.response,
    recordedHeaders: headers,
  };
  return published;
}

let githubSchema: GraphQLSchema | undefined;

/** GitHub's public GraphQL schema (introspection JSON of @octokit/graphql-schema), built once per process. */
function loadSchema(): GraphQLSchema {
  if (!githubSchema) {
    // The same introspection JSON the package's own `validate` builds its schema from.
    githubSchema = buildClientSchema(publicSchema.json as unknown as IntrospectionQuery);
  }
  return githubSchema;
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/** fnmatch-style glob: `*` within a path segment, `**` across, `?` one character. */
function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function nameMatches(patterns: string[], name: string): boolean {
  return patterns.some((p) => p === '~ALL' || globToRegExp(p).test(name));
}

function refMatches(patterns: string[], branch: string, defaultBranch: string | null): boolean {
  return patterns.some((p) => {
    if (p === '~ALL') return true;
    if (p === '~DEFAULT_BRANCH') return defaultBranch !== null && branch === defaultBranch;
    return globToRegExp(p).test(`refs/heads/${branch}`);
  });
}

const cursorOf = (i: number): string => Buffer.from(`cursor:v2:${i}`).toString('base64');
function indexOfCursor(cursor: string): number {
  const m = /^cursor:v2:(\d+)$/.exec(Buffer.from(cursor, 'base64').toString('utf8'));
  if (!m) throw new GraphQLError(`\`${cursor}\` does not appear to be a valid cursor.`);
  return Number(m[1]);
}

/**
 * GitHub's published GraphQL cost: every connection (a field given `first` or `last`) counts as
 * as many requests as its enclosing connections may return nodes (the product of their
 * `first`/`last`); the sum divided by 100, rounded, is the points charged, at least 1.
 */
function graphqlCost(document: DocumentNode, variables: Record<string, unknown>, operationName: string | undefined): number {
  const fragments = new Map<string, SelectionSetNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d.selectionSet);
  const operation = document.definitions.find(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION && (operationName === undefined || d.name?.value === operationName),
  );
  if (!operation) return 1;
  const countOf = (value: ValueNode | undefined): number | undefined => {
    if (!value) return undefined;
    if (value.kind === Kind.INT) return Number(value.value);
    if (value.kind === Kind.VARIABLE) {
      const v = variables[value.name.value];
      return typeof v === 'number' ? v : undefined;
    }
    return undefined;
  };
  let requests = 0;
  const walk = (set: SelectionSetNode | undefined, multiplier: number): void => {
    for (const sel of set?.selections ?? []) {
      if (sel.kind === Kind.INLINE_FRAGMENT) walk(sel.selectionSet, multiplier);
      else if (sel.kind === Kind.FRAGMENT_SPREAD) walk(fragments.get(sel.name.value), multiplier);
      else {
        const n = countOf(sel.arguments?.find((a) => a.name.value === 'first' || a.name.value === 'last')?.value);
        if (n === undefined) walk(sel.selectionSet, multiplier);
        else {
          requests += multiplier;
          walk(sel.selectionSet, multiplier * n);
        }
      }
    }
  };
  walk(operation.selectionSet, 1);
  return Math.max(1, Math.round(requests / 100));
}

const permissionRank: Record<PeerPermission, number> = { read: 1, triage: 2, write: 3, maintain: 4, admin: 5 };

function pascal(snake: string): string {
  return snake.replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());
}
function camel(snake: string): string {
  return snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** A GraphQL error that carries GitHub's `type` (NOT_FOUND, FORBIDDEN…). */
class TypedError extends GraphQLError {
  constructor(
    message: string,
    readonly githubType: string,
  ) {
    super(message);
  }
}

interface Identity extends PeerIdentity {
  kind: 'token' | 'installation';
  /** Unix ms; installation tokens only. */
  expiresAt?: number;
}

class AnswerError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(`answer ${status}`);
  }
}

const docs = 'https://docs.github.com/rest';

// ---------------------------------------------------------------------------------------------

/** Starts the peer on a free loopback port. */
export async function startGithubPeer(options: GithubPeerOptions = {}): Promise<GithubPeer> {
  const now = options.now ?? Date.now;
  const limit = options.rateLimit ?? 5000;
  const pub = loadPublished();
  const schema = loadSchema();
  const orgs = new Map<string, PeerOrg>();
  const tokens = new Map<string, Identity>();
  const apps = new Map<number, PeerApp>();
  const used = new Map<string, number>();
  const requests: PeerRequest[] = [];
  const invalidQueries: Array<{ query: string; errors: string[] }> = [];
  const installationTokens: Array<{ token: string; expiresAt: string }> = [];
  let graphqlPoints = 0;
  type Fault =
    | { kind: 'status'; status: number }
    | { kind: 'retryAfter'; seconds: number; status: number }
    | { kind: 'primary'; resetInSeconds: number };
  const faults: Fault[] = [];
  const overrides: Array<{ match: RegExp; status: number; body: unknown; headers?: Record<string, string> }> = [];
  const sockets = new Set<Socket>();
  let ids = 1000;
  const idOf = new Map<string, number>();
  const numericId = (key: string): number => {
    let id = idOf.get(key);
    if (id === undefined) {
      id = ++ids;
      idOf.set(key, id);
    }
    return id;
  };
  const nodeId = (type: string, key: string): string => Buffer.from(`0:${type}${numericId(`${type}:${key}`)}`).toString('base64');
  let base = '';

  // ---- model queries ------------------------------------------------------------------------

  const orgOf = (login: string): PeerOrg | undefined => orgs.get(login.toLowerCase());
  const isOwner = (who: Identity, org: PeerOrg): boolean =>
    Object.entries(who.orgRoles ?? {}).some(([o, role]) => o.toLowerCase() === org.login.toLowerCase() && role === 'owner');
  function permissionOn(who: Identity, fullName: string): PeerPermission {
    const p = who.repoPermission ?? 'admin';
    if (typeof p === 'string') return p;
    const hit = Object.entries(p).find(([k]) => k.toLowerCase() === fullName.toLowerCase());
    return hit ? hit[1] : 'read';
  }
  const defaultBranchOf = (repo: PeerRepo): string | null => (repo.defaultBranch === undefined ? 'main' : repo.defaultBranch);
  const branchesOf = (repo: PeerRepo): string[] => {
    const d = defaultBranchOf(repo);
    return repo.branches ?? (d === null ? [] : [d]);
  };
  const isEmptyRepo = (repo: PeerRepo): boolean => repo.isEmpty ?? defaultBranchOf(repo) === null;
  function findRepo(owner: string, name: string): { org: PeerOrg; repo: PeerRepo } | undefined {
    const org = orgOf(owner);
    const repo = org?.repos?.find((r) => r.name.toLowerCase() === name.toLowerCase());
    return org && repo ? { org, repo } : undefined;
  }
  /** Rulesets that may apply to the repository: its own, then (includeParents) its org's whose repository_name condition matches. */
  function rulesetsFor(org: PeerOrg, repo: PeerRepo, includeParents: boolean, listing = false): Array<{ ruleset: PeerRuleset; source: 'Repository' | 'Organization' }> {
    if (listing) return rulesetsFor(org, repo, includeParents).filter(({ ruleset }) => ruleset.listed !== false);
    const own = (repo.rulesets ?? []).map((ruleset) => ({ ruleset, source: 'Repository' as const }));
    if (!includeParents) return own;
    const parents = (org.rulesets ?? [])
      .filter((r) => nameMatches(r.repositoryInclude ?? ['~ALL'], repo.name) && !nameMatches(r.repositoryExclude ?? [], repo.name))
      .map((ruleset) => ({ ruleset, source: 'Organization' as const }));
    return [...own, ...parents];
  }
  function appliesToBranch(r: PeerRuleset, repo: PeerRepo, branch: string): boolean {
    const d = defaultBranchOf(repo);
    return (r.target ?? 'branch') === 'branch' && refMatches(r.refInclude ?? [], branch, d) && !refMatches(r.refExclude ?? [], branch, d);
  }
  const classicRuleFor = (repo: PeerRepo, branch: string): PeerProtectionRule | undefined =>
    (repo.protectionRules ?? []).find((r) => globToRegExp(r.pattern).test(branch));

  // ---- commit history, pull requests, reviews (github-change-review) ----------------------------

  const oidOf = (fullName: string, c: PeerCommit): string =>
    c.oid ?? createHash('sha1').update(`${fullName}:${c.message ?? ''}:${c.committedDate}:${c.author ?? c.authorName ?? ''}`).digest('hex');
  const historyOf = (repo: PeerRepo, branch: string): PeerCommit[] =>
    repo.branchCommits?.[branch] ?? (branch === defaultBranchOf(repo) ? (repo.commits ?? []) : []);
  function pushedAtOf(repo: PeerRepo): string | null {
    if (repo.pushedAt !== undefined) return repo.pushedAt;
    const dates = [...(repo.commits ?? []), ...Object.values(repo.branchCommits ?? {}).flat()].map((c) => c.committedDate).sort();
    return dates[dates.length - 1] ?? null;
  }
  const headOidOf = (fullName: string, pr: PeerPullRequest): string => pr.headRefOid ?? createHash('sha1').update(`${fullName}:pr:${pr.number}:head`).digest('hex');
  /** GitHub shows a bot's login with `[bot]` in REST, without it on the GraphQL `Bot` actor. */
  const actorNode = (login: string): Record<string, unknown> =>
    login.endsWith('[bot]')
      ? { __typename: 'Bot', id: nodeId('Bot', login), login: login.slice(0, -'[bot]'.length), url: `https://github.com/apps/${login.slice(0, -'[bot]'.length)}` }
      : { __typename: 'User', id: nodeId('User', login), login, url: `https://github.com/${login}` };

  function reviewNode(fullName: string, pr: PeerPullRequest, r: PeerReview, i: number): Record<string, unknown> {
    const oid = r.commitOid ?? headOidOf(fullName, pr);
    return {
      __typename: 'PullRequestReview',
      id: nodeId('PullRequestReview', `${fullName}#${pr.number}:${i}`),
      databaseId: numericId(`review:${fullName}#${pr.number}:${i}`),
      state: r.state,
      author: actorNode(r.author),
      authorCanPushToRepository: r.writer ?? true,
      submittedAt: r.state === 'PENDING' ? null : (r.submittedAt ?? pr.mergedAt ?? null),
      commit: { __typename: 'Commit', id: nodeId('Commit', oid), oid, abbreviatedOid: oid.slice(0, 7) },
    };
  }

  function pullRequestNode(org: PeerOrg, repo: PeerRepo, pr: PeerPullRequest): Record<string, unknown> {
    const fullName = `${org.login}/${repo.name}`;
    const state = pr.state ?? 'MERGED';
    const reviews = pr.reviews ?? [];
    return {
      __typename: 'PullRequest',
      id: nodeId('PullRequest', `${fullName}#${pr.number}`),
      number: pr.number,
      url: `https://github.com/${fullName}/pull/${pr.number}`,
      author: actorNode(pr.author),
      state,
      merged: state === 'MERGED',
      mergedAt: state === 'MERGED' ? (pr.mergedAt ?? null) : null,
      baseRefName: pr.baseRefName ?? defaultBranchOf(repo) ?? 'main',
      headRefOid: headOidOf(fullName, pr),
      mergeCommit: pr.mergeCommitOid ? { __typename: 'Commit', id: nodeId('Commit', pr.mergeCommitOid), oid: pr.mergeCommitOid, abbreviatedOid: pr.mergeCommitOid.slice(0, 7) } : null,
      reviews: (args: ConnectionArgs & { states?: string[] | null; author?: string | null }) =>
        connection(
          'reviews',
          reviews.map((r, i) => ({ r, i })).filter(({ r }) => (!args.states || args.states.includes(r.state)) && (!args.author || args.author === r.author)),
          args,
          ({ r, i }) => reviewNode(fullName, pr, r, i),
        ),
      // The latest APPROVED or CHANGES_REQUESTED review of each reviewer (writersOnly: those who may push).
      latestOpinionatedReviews: (args: ConnectionArgs & { writersOnly?: boolean | null }) => {
        const latest = new Map<string, { r: PeerReview; i: number }>();
        reviews.forEach((r, i) => {
          if (r.state !== 'APPROVED' && r.state !== 'CHANGES_REQUESTED') return;
          if (args.writersOnly && r.writer === false) return;
          latest.delete(r.author.toLowerCase());
          latest.set(r.author.toLowerCase(), { r, i });
        });
        return connection('latestOpinionatedReviews', [...latest.values()], args, ({ r, i }) => reviewNode(fullName, pr, r, i));
      },
    };
  }

  function commitNode(org: PeerOrg, repo: PeerRepo, c: PeerCommit): Record<string, unknown> {
    const fullName = `${org.login}/${repo.name}`;
    const oid = oidOf(fullName, c);
    const login = c.author;
    const bot = login?.endsWith('[bot]') ?? false;
    const author = {
      __typename: 'GitActor',
      name: login ?? c.authorName ?? 'unknown',
      email: login ? `${numericId(`user:${login}`)}+${login}@users.noreply.github.com` : 'someone@example.com',
      date: c.committedDate,
      // Bots are not users: GitHub links their commits to no User.
      user: login && !bot ? { __typename: 'User', id: nodeId('User', login), login, url: `https://github.com/${login}` } : null,
    };
    return {
      __typename: 'Commit',
      id: nodeId('Commit', oid),
      oid,
      abbreviatedOid: oid.slice(0, 7),
      message: c.message ?? '',
      messageHeadline: (c.message ?? '').split('\n')[0],
      committedDate: c.committedDate,
      authoredDate: c.committedDate,
      url: `https://github.com/${fullName}/commit/${oid}`,
      author,
      committer: author,
      authoredByCommitter: true,
      associatedPullRequests: (args: ConnectionArgs) =>
        connection(
          'associatedPullRequests',
          (c.pullRequests ?? []).map((n) => (repo.pullRequests ?? []).find((pr) => pr.number === n)).filter((pr): pr is PeerPullRequest => pr !== undefined),
          args,
          (pr) => pullRequestNode(org, repo, pr),
        ),
    };
  }

  /** The head commit of a branch, with its history (`since`/`until` on the committed date, as GitHub filters). */
  function headCommitNode(org: PeerOrg, repo: PeerRepo, branch: string): Record<string, unknown> {
    const fullName = `${org.login}/${repo.name}`;
    const commits = historyOf(repo, branch);
    const head = commits[0];
    const oid = head ? oidOf(fullName, head) : createHash('sha1').update(`${fullName}:${branch}`).digest('hex');
    return {
      ...(head ? commitNode(org, repo, head) : {}),
      __typename: 'Commit',
      id: nodeId('Commit', oid),
      oid,
      abbreviatedOid: oid.slice(0, 7),
      history: (args: ConnectionArgs & { since?: string | null; until?: string | null }) => {
        const since = args.since ? Date.parse(args.since) : -Infinity;
        const until = args.until ? Date.parse(args.until) : Infinity;
        const selected = commits.filter((c) => Date.parse(c.committedDate) >= since && Date.parse(c.committedDate) <= until);
        return connection('history', selected, args, (c) => commitNode(org, repo, c));
      },
    };
  }

  // ---- rate limits and headers ----------------------------------------------------------------

  function rateHeaders(who: string, resource: 'core' | 'graphql'): Record<string, string> {
    const key = `${who}|${resource}`;
    const n = (used.get(key) ?? 0) + 1;
    used.set(key, n);
    return {
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(Math.max(0, limit - n)),
      'x-ratelimit-used': String(n),
      'x-ratelimit-reset': String(Math.floor(now() / 1000) + 3600),
      'x-ratelimit-resource': resource,
    };
  }

  // ---- REST ---------------------------------------------------------------------------------

  function paginate<T>(items: T[], url: URL): { page: T[]; link?: string } {
    const perPage = Math.min(100, Math.max(1, Number(url.searchParams.get('per_page') ?? 30) || 30));
    const page = Math.max(1, Number(url.searchParams.get('page') ?? 1) || 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const slice = items.slice((page - 1) * perPage, page * perPage);
    const at = (p: number): string => {
      const u = new URL(url.href);
      u.searchParams.set('per_page', String(perPage));
      u.searchParams.set('page', String(p));
      return `<${base}${u.pathname}${u.search}>`;
    };
    const links: string[] = [];
    if (page > 1) links.push(`${at(page - 1)}; rel="prev"`);
    if (page < last) links.push(`${at(page + 1)}; rel="next"`, `${at(last)}; rel="last"`);
    if (page > 1) links.push(`${at(1)}; rel="first"`);
    return links.length > 0 ? { page: slice, link: links.join(', ') } : { page: slice };
  }

  function userPayload(u: PeerUser): unknown {
    const template = (pub.example('simple-user-items') as Array<Record<string, unknown>>)[0] as Record<string, unknown>;
    const id = u.id ?? numericId(`user:${u.login}`);
    return {
      ...template,
      login: u.login,
      id,
      node_id: nodeId('User', u.login),
      url: `${base}/users/${u.login}`,
      html_url: `https://github.com/${u.login}`,
      avatar_url: `https://avatars.githubusercontent.com/u/${id}`,
    };
  }

  function repoPayload(org: PeerOrg, repo: PeerRepo, who: Identity, full: boolean): Record<string, unknown> {
    const template = full
      ? (pub.example('full-repository-default-response') as Record<string, unknown>)
      : ((pub.example('minimal-repository-items') as Array<Record<string, unknown>>)[0] as Record<string, unknown>);
    const fullName = `${org.login}/${repo.name}`;
    const perm = permissionRank[permissionOn(who, fullName)];
    const out: Record<string, unknown> = {
      ...template,
      id: numericId(`repo:${fullName}`),
      node_id: nodeId('Repository', fullName),
      name: repo.name,
      full_name: fullName,
      owner: { ...(template.owner as object), login: org.login, id: numericId(`org:${org.login}`), type: 'Organization' },
      private: repo.private ?? false,
      visibility: repo.private ? 'private' : 'public',
      url: `${base}/repos/${fullName}`,
      html_url: `https://github.com/${fullName}`,
      default_branch: defaultBranchOf(repo) ?? 'main',
      archived: repo.isArchived ?? false,
      disabled: repo.isDisabled ?? false,
      size: isEmptyRepo(repo) ? 0 : 108,
      permissions: { admin: perm >= 5, maintain: perm >= 4, push: perm >= 3, triage: perm >= 2, pull: true },
    };
    if (full) {
      delete out.parent;
      delete out.source;
      delete out.template_repository;
      out.organization = { ...(template.organization as object), login: org.login, id: numericId(`org:${org.login}`) };
    }
    return out;
  }

  function protectionPayload(fullName: string, branch: string, rule: PeerProtectionRule): unknown {
    const t = pub.example('branch-protection') as Record<string, Record<string, unknown>>;
    const url = `${base}/repos/${fullName}/branches/${branch}/protection`;
    const out: Record<string, unknown> = { url };
    if (rule.requiresStatusChecks) {
      const contexts = rule.requiredStatusCheckContexts ?? [];
      out.required_status_checks = {
        url: `${url}/required_status_checks`,
        strict: rule.requiresStrictStatusChecks ?? false,
        contexts,
        checks: contexts.map((context) => ({ context, app_id: null })),
        contexts_url: `${url}/required_status_checks/contexts`,
      };
    }
    out.enforce_admins = { url: `${url}/enforce_admins`, enabled: rule.isAdminEnforced ?? false };
    if (rule.requiresApprovingReviews) {
      const reviews = { ...(t.required_pull_request_reviews as Record<string, unknown>) };
      reviews.url = `${url}/required_pull_request_reviews`;
      reviews.dismiss_stale_reviews = rule.dismissesStaleReviews ?? false;
      reviews.require_code_owner_reviews = rule.requiresCodeOwnerReviews ?? false;
      reviews.required_approving_review_count = rule.requiredApprovingReviewCount ?? 1;
      reviews.require_last_push_approval = rule.requireLastPushApproval ?? false;
      if ((rule.bypassPullRequestActors ?? []).length > 0) {
        reviews.bypass_pull_request_allowances = { users: (rule.bypassPullRequestActors ?? []).map((login) => userPayload({ login })), teams: [], apps: [] };
      }
      out.required_pull_request_reviews = reviews;
    }
    out.required_linear_history = { enabled: rule.requiresLinearHistory ?? false };
    out.allow_force_pushes = { enabled: rule.allowsForcePushes ?? false };
    out.allow_deletions = { enabled: rule.allowsDeletions ?? false };
    out.required_conversation_resolution = { enabled: rule.requiresConversationResolution ?? false };
    out.lock_branch = { enabled: rule.lockBranch ?? false };
    out.allow_fork_syncing = { enabled: false };
    out.required_signatures = { url: `${url}/required_signatures`, enabled: rule.requiresCommitSignatures ?? false };
    return out;
  }

  function rulesetSummary(org: PeerOrg, repo: PeerRepo | undefined, r: PeerRuleset, source: 'Repository' | 'Organization'): Record<string, unknown> {
    const t = (pub.example('repository-ruleset-items') as Array<Record<string, unknown>>)[0] as Record<string, unknown>;
    const sourceName = source === 'Repository' && repo ? `${org.login}/${repo.name}` : org.login;
    const self = source === 'Repository' && repo ? `${base}/repos/${org.login}/${repo.name}/rulesets/${r.id}` : `${base}/orgs/${org.login}/rulesets/${r.id}`;
    return {
      ...t,
      id: r.id,
      name: r.name,
      target: r.target ?? 'branch',
      source_type: source,
      source: sourceName,
      enforcement: r.enforcement,
      node_id: nodeId('RepositoryRuleset', String(r.id)),
      _links: { self: { href: self }, html: { href: `https://github.com/${sourceName}/rules/${r.id}` } },
    };
  }

  function rulesetDetail(org: PeerOrg, repo: PeerRepo, r: PeerRuleset, source: 'Repository' | 'Organization', who: Identity): unknown {
    const t = pub.example('repository-ruleset') as Record<string, unknown>;
    const admin = permissionOn(who, `${org.login}/${repo.name}`) === 'admin' || (source === 'Organization' && isOwner(who, org));
    const conditions: Record<string, unknown> = { ref_name: { include: r.refInclude ?? [], exclude: r.refExclude ?? [] } };
    if (source === 'Organization') conditions.repository_name = { include: r.repositoryInclude ?? ['~ALL'], exclude: r.repositoryExclude ?? [], protected: false };
    const out: Record<string, unknown> = {
      ...t,
      ...rulesetSummary(org, repo, r, source),
      conditions,
      rules: r.rules.map((rule) => (rule.parameters ? { type: rule.type, parameters: rule.parameters } : { type: rule.type })),
      current_user_can_bypass: admin && (r.bypassActors ?? []).length > 0 ? 'always' : 'never',
    };
    // GitHub shows bypass actors only to those who may edit the ruleset.
    if (admin) {
      out.bypass_actors = (r.bypassActors ?? []).map((a) => ({ actor_id: a.actorId ?? null, actor_type: a.actorType, bypass_mode: a.bypassMode }));
    } else delete out.bypass_actors;
    return out;
  }

  function rest(method: string, url: URL, path: string, who: Identity): { status: number; body: unknown; headers?: Record<string, string> } {
    const notFound = (): never => {
      throw new AnswerError(404, { message: 'Not Found', documentation_url: docs, status: '404' });
    };
    let m: RegExpExecArray | null;
    if (method !== 'GET') throw new AnswerError(404, { message: 'Not Found', documentation_url: docs, status: '404' });

    if (path === '/rate_limit') {
      const body = pub.example('rate-limit-overview') as { resources: Record<string, Record<string, number>>; rate: Record<string, number> };
      for (const resource of ['core', 'graphql'] as const) {
        const n = used.get(`${who.login}|${resource}`) ?? 0;
        body.resources[resource] = { limit, used: n, remaining: limit - n, reset: Math.floor(now() / 1000) + 3600 };
      }
      body.rate = body.resources.core as Record<string, number>;
      return { status: 200, body };
    }

    if ((m = /^\/orgs\/([^/]+)$/.exec(path))) {
      const org = orgOf(decodeURIComponent(m[1] as string)) ?? notFound();
      const body = pub.example('organization-full') as Record<string, unknown>;
      Object.assign(body, {
        login: org.login,
        id: numericId(`org:${org.login}`),
        node_id: nodeId('Organization', org.login),
        url: `${base}/orgs/${org.login}`,
        repos_url: `${base}/orgs/${org.login}/repos`,
        name: org.login,
        html_url: `https://github.com/${org.login}`,
        two_factor_requirement_enabled: org.twoFactorRequired ?? true,
      });
      if (!isOwner(who, org)) {
        // Fields GitHub shows to owners only.
        for (const k of ['two_factor_requirement_enabled', 'total_private_repos', 'owned_private_repos', 'private_gists', 'disk_usage', 'collaborators', 'billing_email', 'plan', 'default_repository_permission', 'members_can_create_repositories', 'members_allowed_repository_creation_type']) {
          delete body[k];
        }
      }
      return { status: 200, body, headers: { 'x-accepted-oauth-scopes': 'admin:org, read:org, repo, user, write:org' } };
    }

    if ((m = /^\/orgs\/([^/]+)\/(members|outside_collaborators)$/.exec(path))) {
      const org = orgOf(decodeURIComponent(m[1] as string)) ?? notFound();
      const list = (m[2] === 'members' ? org.members : org.outsideCollaborators) ?? [];
      const filter = url.searchParams.get('filter') ?? 'all';
      if (!['all', '2fa_disabled', '2fa_insecure'].includes(filter) || (filter === '2fa_insecure' && org.reportsInsecure2fa === false)) {
        throw new AnswerError(422, {
          message: 'Validation Failed',
          errors: [{ resource: 'Search', field: 'filter', code: 'invalid' }],
          documentation_url: docs,
          status: '422',
        });
      }
      if (filter !== 'all' && !isOwner(who, org)) {
        throw new AnswerError(422, { message: 'Only owners can use this filter.', documentation_url: docs, status: '422' });
      }
      if (m[2] === 'outside_collaborators' && !isOwner(who, org)) {
        throw new AnswerError(403, { message: 'Must be an owner of this organization.', documentation_url: docs, status: '403' }, { 'x-accepted-oauth-scopes': 'admin:org, read:org, repo, user, write:org' });
      }
      const selected = list.filter((u) =>
        filter === 'all' ? true : filter === '2fa_disabled' ? u.twoFactor === 'disabled' : u.twoFactor === 'insecure',
      );
      const { page, link } = paginate(selected, url);
      return { status: 200, body: page.map(userPayload), headers: { ...(link ? { link } : {}), 'x-accepted-oauth-scopes': 'admin:org, read:org, repo, user, write:org' } };
    }

    if ((m = /^\/orgs\/([^/]+)\/repos$/.exec(path))) {
      const org = orgOf(decodeURIComponent(m[1] as string)) ?? notFound();
      const repos = [...(org.repos ?? [])].sort((a, b) => a.name.localeCompare(b.name));
      const { page, link } = paginate(repos, url);
      return { status: 200, body: page.map((r) => repoPayload(org, r, who, false)), headers: link ? { link } : {} };
    }

    if ((m = /^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/.exec(path))) {
      const found = findRepo(decodeURIComponent(m[1] as string), decodeURIComponent(m[2] as string)) ?? notFound();
      const { org, repo } = found;
      const fullName = `${org.login}/${repo.name}`;
      const rest = m[3] ?? '';
      const admin = permissionOn(who, fullName) === 'admin';
      if (rest === '') return { status: 200, body: repoPayload(org, repo, who, true) };

      if ((m = /^\/branches\/(.+?)(\/protection)?$/.exec(rest))) {
        const branch = decodeURIComponent(m[1] as string);
        if (!branchesOf(repo).includes(branch)) throw new AnswerError(404, { message: 'Branch not found', documentation_url: docs, status: '404' });
        const classic = classicRuleFor(repo, branch);
        if (m[2]) {
          if (!admin) {
            throw new AnswerError(
              who.kind === 'installation' ? 403 : 404,
              who.kind === 'installation'
                ? { message: 'Resource not accessible by integration', documentation_url: docs, status: '403' }
                : { message: 'Not Found', documentation_url: docs, status: '404' },
              who.kind === 'installation' ? { 'x-accepted-github-permissions': 'administration=read' } : { 'x-accepted-oauth-scopes': 'repo' },
            );
          }
          if (!classic) throw new AnswerError(404, pub.branchNotProtected);
          return { status: 200, body: protectionPayload(fullName, branch, classic) };
        }
        const rulesets = rulesetsFor(org, repo, true).filter(({ ruleset }) => ruleset.enforcement === 'active' && appliesToBranch(ruleset, repo, branch));
        const isProtected = classic !== undefined || rulesets.length > 0;
        const body = pub.example('branch-get') as Record<string, unknown>;
        const contexts = classic?.requiresStatusChecks ? (classic.requiredStatusCheckContexts ?? []) : [];
        Object.assign(body, {
          name: branch,
          protected: isProtected,
          protection: {
            enabled: isProtected,
            required_status_checks: { enforcement_level: contexts.length > 0 ? (classic?.isAdminEnforced ? 'everyone' : 'non_admins') : 'off', contexts, checks: contexts.map((context) => ({ context, app_id: null })) },
          },
          protection_url: `${base}/repos/${fullName}/branches/${branch}/protection`,
          _links: { self: `${base}/repos/${fullName}/branches/${branch}`, html: `https://github.com/${fullName}/tree/${branch}` },
        });
        return { status: 200, body };
      }

      if ((m = /^\/actions\/(workflows\/([^/]+)\/runs|runs\/(\d+)\/jobs)$/.exec(rest))) {
        if (repo.actionsForbidden) {
          throw new AnswerError(
            403,
            { message: 'Resource not accessible by integration', documentation_url: docs, status: '403' },
            { 'x-accepted-github-permissions': 'actions=read' },
          );
        }
        const workflows = repo.workflows ?? [];
        const workflowOf = (w: PeerWorkflow): number => w.id ?? numericId(`workflow:${fullName}:${w.path}`);
        const runIdOf = (w: PeerWorkflow, run: PeerWorkflowRun, i: number): number => run.id ?? numericId(`run:${fullName}:${w.path}:${i}`);
        if (m[2] !== undefined) {
          const ref = decodeURIComponent(m[2]);
          const w = workflows.find((x) => String(workflowOf(x)) === ref || x.path.split('/').pop() === ref) ?? notFound();
          const statuses = new Set(['completed', 'in_progress', 'queued', 'waiting', 'requested', 'pending', 'action_required']);
          const branch = url.searchParams.get('branch');
          const status = url.searchParams.get('status');
          const runs = (w.runs ?? [])
            .map((run, i) => ({ run, i }))
            .filter(({ run }) => (branch === null || run.headBranch === branch) && (status === null || (statuses.has(status) && status !== 'action_required' ? run.status === status : run.conclusion === status)))
            .sort((a, b) => b.run.createdAt.localeCompare(a.run.createdAt));
          const template = (pub.example('workflow-run-paginated') as { workflow_runs: Array<Record<string, unknown>> }).workflow_runs[0] as Record<string, unknown>;
          const { page, link } = paginate(runs, url);
          const body = {
            total_count: runs.length,
            workflow_runs: page.map(({ run, i }) => {
              const id = runIdOf(w, run, i);
              return {
                ...structuredClone(template),
                id,
                name: w.name ?? w.path.split('/').pop(),
                node_id: nodeId('WorkflowRun', String(id)),
                head_branch: run.headBranch,
                path: `${w.path}@${run.headBranch}`,
                run_number: i + 1,
                event: run.event ?? 'schedule',
                status: run.status,
                conclusion: run.conclusion,
                workflow_id: workflowOf(w),
                url: `${base}/repos/${fullName}/actions/runs/${id}`,
                html_url: `https://github.com/${fullName}/actions/runs/${id}`,
                jobs_url: `${base}/repos/${fullName}/actions/runs/${id}/jobs`,
                created_at: run.createdAt,
                updated_at: run.updatedAt ?? run.createdAt,
                run_started_at: run.runStartedAt ?? run.createdAt,
                run_attempt: run.runAttempt ?? 1,
                repository: { ...(template.repository as Record<string, unknown>), id: numericId(`repo:${fullName}`), name: repo.name, full_name: fullName },
                head_repository:
                  run.headRepository === null
                    ? null
                    : {
                        ...(template.head_repository as Record<string, unknown>),
                        id: numericId(`repo:${run.headRepository ?? fullName}`),
                        name: (run.headRepository ?? fullName).split('/')[1],
                        full_name: run.headRepository ?? fullName,
                      },
              };
            }),
          };
          return { status: 200, body, headers: link ? { link } : {} };
        }
        const runId = Number(m[3]);
        const hit = workflows.flatMap((w) => (w.runs ?? []).map((run, i) => ({ w, run, id: runIdOf(w, run, i) }))).find((x) => x.id === runId) ?? notFound();
        const template = (pub.example('job-paginated') as { jobs: Array<Record<string, unknown>> }).jobs[0] as Record<string, unknown>;
        const jobs = hit.run.jobs ?? [];
        const { page, link } = paginate(jobs, url);
        const body = {
          total_count: jobs.length,
          jobs: page.map((j) => {
            const id = numericId(`job:${runId}:${j.name}`);
            return {
              ...structuredClone(template),
              id,
              run_id: runId,
              run_url: `${base}/repos/${fullName}/actions/runs/${runId}`,
              node_id: nodeId('WorkflowJob', String(id)),
              url: `${base}/repos/${fullName}/actions/jobs/${id}`,
              html_url: `https://github.com/${fullName}/actions/runs/${runId}/job/${id}`,
              name: j.name,
              status: j.status,
              conclusion: j.conclusion,
              workflow_name: hit.w.name ?? hit.w.path.split('/').pop(),
              head_branch: hit.run.headBranch,
              run_attempt: hit.run.runAttempt ?? 1,
            };
          }),
        };
        return { status: 200, body, headers: link ? { link } : {} };
      }

      if ((m = /^\/rules\/branches\/(.+)$/.exec(rest))) {
        const branch = decodeURIComponent(m[1] as string);
        const rules = rulesetsFor(org, repo, true)
          .filter(({ ruleset }) => ruleset.enforcement === 'active' && appliesToBranch(ruleset, repo, branch))
          .flatMap(({ ruleset, source }) =>
            ruleset.rules.map((rule) => ({
              type: rule.type,
              ruleset_source_type: source,
              ruleset_source: source === 'Repository' ? fullName : org.login,
              ruleset_id: ruleset.id,
              ...(rule.parameters ? { parameters: rule.parameters } : {}),
            })),
          );
        // Shape check against the published example: same keys as GitHub's repository-rule-items.
        void (pub.example('repository-rule-items') as unknown[]);
        const { page, link } = paginate(rules, url);
        return { status: 200, body: page, headers: link ? { link } : {} };
      }

      if (rest === '/rulesets') {
        const includeParents = url.searchParams.get('includes_parents') !== 'false';
        const list = rulesetsFor(org, repo, includeParents, true).map(({ ruleset, source }) => rulesetSummary(org, repo, ruleset, source));
        const { page, link } = paginate(list, url);
        return { status: 200, body: page, headers: link ? { link } : {} };
      }

      if ((m = /^\/rulesets\/(\d+)$/.exec(rest))) {
        const id = Number(m[1]);
        const hit = rulesetsFor(org, repo, true, true).find(({ ruleset }) => ruleset.id === id) ?? notFound();
        return { status: 200, body: rulesetDetail(org, repo, hit.ruleset, hit.source, who) };
      }
    }
    return notFound();
  }

  // ---- GraphQL model --------------------------------------------------------------------------

  interface ConnectionArgs {
    first?: number | null;
    last?: number | null;
    after?: string | null;
    before?: string | null;
  }

  /** Cursor pagination as GitHub does it, including its `first`/`last` rules. */
  function connection<T, N = T>(field: string, items: T[], args: ConnectionArgs, toNode?: (item: T) => N): unknown {
    if (args.first == null && args.last == null) {
      throw new GraphQLError(`You must provide a \`first\` or \`last\` value to properly paginate the \`${field}\` connection.`);
    }
    const n = (args.first ?? args.last) as number;
    if (n > 100) throw new GraphQLError(`Requesting ${n} records on the \`${field}\` connection exceeds the \`${args.first != null ? 'first' : 'last'}\` limit of 100 records.`);
    let start = args.after ? indexOfCursor(args.after) + 1 : 0;
    let end = args.before ? indexOfCursor(args.before) : items.length;
    if (args.first != null) end = Math.min(end, start + args.first);
    else if (args.last != null) start = Math.max(start, end - args.last);
    // Nodes are built for the requested page only: an org of 5,000 repositories stays cheap.
    const slice = items.slice(start, end).map((item, i) => ({ node: toNode ? toNode(item) : (item as unknown as N), cursor: cursorOf(start + i) }));
    return {
      totalCount: items.length,
      nodes: slice.map((e) => e.node),
      edges: slice,
      pageInfo: {
        hasNextPage: end < items.length,
        hasPreviousPage: start > 0,
        startCursor: slice[0]?.cursor ?? null,
        endCursor: slice[slice.length - 1]?.cursor ?? null,
      },
    };
  }

  function orgNode(org: PeerOrg, who: Identity): Record<string, unknown> {
    const owner = isOwner(who, org);
    return {
      __typename: 'Organization',
      id: nodeId('Organization', org.login),
      databaseId: numericId(`org:${org.login}`),
      login: org.login,
      name: org.login,
      url: `https://github.com/${org.login}`,
      viewerCanAdminister: owner,
      viewerIsAMember: true,
      requiresTwoFactorAuthentication: owner ? (org.twoFactorRequired ?? true) : null,
      repositories: (args: ConnectionArgs & { isArchived?: boolean | null; isFork?: boolean | null; orderBy?: { field: string; direction: string } | null }) => {
        let repos = [...(org.repos ?? [])];
        if (args.isArchived != null) repos = repos.filter((r) => (r.isArchived ?? false) === args.isArchived);
        if (args.isFork === true) repos = [];
        repos.sort((a, b) => a.name.localeCompare(b.name));
        if (args.orderBy?.field === 'PUSHED_AT') repos.sort((a, b) => (pushedAtOf(a) ?? '').localeCompare(pushedAtOf(b) ?? ''));
        if (args.orderBy?.direction === 'DESC') repos.reverse();
        return connection('repositories', repos, args, (r) => repoNode(org, r, who));
      },
      rulesets: (args: ConnectionArgs) =>
        connection('rulesets', (org.rulesets ?? []).map((r) => rulesetNode(org, undefined, r, 'Organization', who)), args),
      membersWithRole: (args: ConnectionArgs) => {
        const c = connection('membersWithRole', org.members ?? [], args) as { edges: Array<{ node: PeerUser; cursor: string }>; nodes: PeerUser[] };
        return {
          ...c,
          edges: c.edges.map((e) => ({
            cursor: e.cursor,
            role: e.node.role === 'admin' ? 'ADMIN' : 'MEMBER',
            hasTwoFactorEnabled: owner ? e.node.twoFactor !== 'disabled' : null,
            node: userNode(e.node),
          })),
          nodes: c.nodes.map(userNode),
        };
      },
    };
  }

  function userNode(u: PeerUser): Record<string, unknown> {
    return { __typename: 'User', id: nodeId('User', u.login), databaseId: u.id ?? numericId(`user:${u.login}`), login: u.login, name: u.login };
  }

  function ruleParameters(rule: { type: string; parameters?: Record<string, unknown> }): unknown {
    if (!rule.parameters) return null;
    const typename = `${pascal(rule.type)}Parameters`;
    if (!schema.getType(typename)) return null;
    const p: Record<string, unknown> = { __typename: typename };
    for (const [k, v] of Object.entries(rule.parameters)) p[camel(k)] = v;
    if (rule.type === 'required_status_checks') {
      p.requiredStatusChecks = ((rule.parameters.required_status_checks as Array<{ context: string; integration_id?: number }> | undefined) ?? []).map((c) => ({
        context: c.context,
        integrationId: c.integration_id ?? null,
      }));
      p.doNotEnforceOnCreate ??= false;
      p.strictRequiredStatusChecksPolicy ??= false;
    }
    if (rule.type === 'pull_request') {
      p.requiredReviewThreadResolution ??= false;
      p.dismissStaleReviewsOnPush ??= false;
      p.requireCodeOwnerReview ??= false;
      p.requireLastPushApproval ??= false;
      p.requiredApprovingReviewCount ??= 0;
    }
    return p;
  }

  function rulesetNode(org: PeerOrg, repo: PeerRepo | undefined, r: PeerRuleset, source: 'Repository' | 'Organization', who: Identity): Record<string, unknown> {
    const admin = source === 'Organization' ? isOwner(who, org) : repo !== undefined && permissionOn(who, `${org.login}/${repo.name}`) === 'admin';
    return {
      __typename: 'RepositoryRuleset',
      id: nodeId('RepositoryRuleset', String(r.id)),
      databaseId: r.id,
      name: r.name,
      enforcement: r.enforcement.toUpperCase(),
      target: (r.target ?? 'branch').toUpperCase(),
      createdAt: '2023-07-15T08:43:03Z',
      updatedAt: '2023-08-23T16:29:47Z',
      source: () => (source === 'Organization' || !repo ? orgNode(org, who) : repoNode(org, repo, who)),
      conditions: {
        refName: { include: r.refInclude ?? [], exclude: r.refExclude ?? [] },
        repositoryName: source === 'Organization' ? { include: r.repositoryInclude ?? ['~ALL'], exclude: r.repositoryExclude ?? [], protected: false } : null,
        repositoryId: null,
        repositoryProperty: null,
      },
      rules: (args: ConnectionArgs & { type?: string | null }) =>
        connection(
          'rules',
          r.rules
            .filter((rule) => !args.type || rule.type.toUpperCase() === args.type)
            .map((rule, i) => ({ __typename: 'RepositoryRule', id: nodeId('RepositoryRule', `${r.id}:${i}`), type: rule.type.toUpperCase(), parameters: ruleParameters(rule) })),
          args,
        ),
      // Bypass actors are visible only to those who may edit the ruleset; others get null.
      bypassActors: (args: ConnectionArgs) =>
        admin
          ? connection(
              'bypassActors',
              (r.bypassActors ?? []).map((a, i) => ({
                __typename: 'RepositoryRulesetBypassActor',
                id: nodeId('RepositoryRulesetBypassActor', `${r.id}:${i}`),
                bypassMode: a.bypassMode.toUpperCase(),
                organizationAdmin: a.actorType === 'OrganizationAdmin',
                enterpriseOwner: false,
                deployKey: a.actorType === 'DeployKey',
                repositoryRoleName: a.actorType === 'RepositoryRole' ? ({ 1: 'read', 2: 'triage', 3: 'write', 4: 'maintain', 5: 'admin' }[a.actorId ?? 5] ?? 'custom') : null,
                repositoryRoleDatabaseId: a.actorType === 'RepositoryRole' ? (a.actorId ?? 5) : null,
                actor:
                  a.actorType === 'Team'
                    ? { __typename: 'Team', id: nodeId('Team', String(a.actorId)), databaseId: a.actorId ?? 0, name: `team-${a.actorId}`, slug: `team-${a.actorId}` }
                    : a.actorType === 'Integration'
                      ? { __typename: 'App', id: nodeId('App', String(a.actorId)), databaseId: a.actorId ?? 0, name: `app-${a.actorId}`, slug: `app-${a.actorId}` }
                      : null,
              })),
              args,
            )
          : null,
    };
  }

  function protectionRuleNode(org: PeerOrg, repo: PeerRepo, rule: PeerProtectionRule, i: number): Record<string, unknown> {
    const key = `${org.login}/${repo.name}:${i}`;
    const actors = (logins: string[] | undefined, typename: string) => (args: ConnectionArgs) =>
      connection('allowances', (logins ?? []).map((login) => ({ __typename: typename, id: nodeId(typename, `${key}:${login}`), actor: userNode({ login }) })), args);
    return {
      __typename: 'BranchProtectionRule',
      id: nodeId('BranchProtectionRule', key),
      databaseId: numericId(`bpr:${key}`),
      pattern: rule.pattern,
      requiresApprovingReviews: rule.requiresApprovingReviews ?? false,
      requiredApprovingReviewCount: rule.requiresApprovingReviews ? (rule.requiredApprovingReviewCount ?? 1) : null,
      dismissesStaleReviews: rule.dismissesStaleReviews ?? false,
      requiresCodeOwnerReviews: rule.requiresCodeOwnerReviews ?? false,
      requireLastPushApproval: rule.requireLastPushApproval ?? false,
      requiresStatusChecks: rule.requiresStatusChecks ?? false,
      requiresStrictStatusChecks: rule.requiresStrictStatusChecks ?? false,
      requiredStatusCheckContexts: rule.requiredStatusCheckContexts ?? [],
      requiredStatusChecks: (rule.requiredStatusCheckContexts ?? []).map((context) => ({ context, app: null })),
      allowsForcePushes: rule.allowsForcePushes ?? false,
      allowsDeletions: rule.allowsDeletions ?? false,
      isAdminEnforced: rule.isAdminEnforced ?? false,
      requiresCommitSignatures: rule.requiresCommitSignatures ?? false,
      requiresLinearHistory: rule.requiresLinearHistory ?? false,
      requiresConversationResolution: rule.requiresConversationResolution ?? false,
      requiresDeployments: false,
      requiredDeploymentEnvironments: [],
      restrictsPushes: false,
      restrictsReviewDismissals: false,
      blocksCreations: false,
      lockBranch: rule.lockBranch ?? false,
      lockAllowsFetchAndMerge: false,
      bypassPullRequestAllowances: actors(rule.bypassPullRequestActors, 'BypassPullRequestAllowance'),
      bypassForcePushAllowances: actors(rule.bypassForcePushActors, 'BypassForcePushAllowance'),
      pushAllowances: actors([], 'PushAllowance'),
      reviewDismissalAllowances: actors([], 'ReviewDismissalAllowance'),
      matchingRefs: (args: ConnectionArgs) =>
        connection('matchingRefs', branchesOf(repo).filter((b) => globToRegExp(rule.pattern).test(b)).map((b) => refNode(org, repo, b, undefined)), args),
    };
  }

  function refUpdateRuleNode(rule: PeerProtectionRule, kind: Identity['kind']): Record<string, unknown> {
    return {
      __typename: 'RefUpdateRule',
      pattern: rule.pattern,
      allowsDeletions: rule.allowsDeletions ?? false,
      allowsForcePushes: rule.allowsForcePushes ?? false,
      blocksCreations: false,
      requiredApprovingReviewCount: rule.requiresApprovingReviews ? (rule.requiredApprovingReviewCount ?? 1) : null,
      requiredStatusCheckContexts: rule.requiresStatusChecks ? (rule.requiredStatusCheckContexts ?? []) : [],
      requiresCodeOwnerReviews: rule.requiresCodeOwnerReviews ?? false,
      requiresConversationResolution: rule.requiresConversationResolution ?? false,
      requiresLinearHistory: rule.requiresLinearHistory ?? false,
      requiresSignatures: rule.requiresCommitSignatures ?? false,
      viewerAllowedToDismissReviews: false,
      viewerCanPush: kind === 'token',
    };
  }

  function refNode(org: PeerOrg, repo: PeerRepo, branch: string, who: Identity | undefined): Record<string, unknown> {
    const fullName = `${org.login}/${repo.name}`;
    const admin = who !== undefined && permissionOn(who, fullName) === 'admin' && who.administrationRead !== false;
    const ruleIndex = (repo.protectionRules ?? []).findIndex((r) => globToRegExp(r.pattern).test(branch));
    const viewFailure = (): never => {
      throw new TypedError('Something went wrong while reading the protection of this ref.', 'SERVICE_UNAVAILABLE');
    };
    return {
      __typename: 'Ref',
      id: nodeId('Ref', `${fullName}:${branch}`),
      name: branch,
      prefix: 'refs/heads/',
      // Classic rules are visible to admins only: others see null (as GitHub does, silently).
      branchProtectionRule: admin && ruleIndex >= 0 ? protectionRuleNode(org, repo, (repo.protectionRules ?? [])[ruleIndex] as PeerProtectionRule, ruleIndex) : null,
      // The read-level view of the classic rule that applies ("viewable by non-admins").
      refUpdateRule: () =>
        repo.failRefViews ? viewFailure() : who !== undefined && ruleIndex >= 0 ? refUpdateRuleNode((repo.protectionRules ?? [])[ruleIndex] as PeerProtectionRule, who.kind) : null,
      // Rules of the active repository and organisation rulesets that apply to this ref.
      rules: (args: ConnectionArgs) =>
        repo.failRefViews ? viewFailure() : connection(
          'rules',
          rulesetsFor(org, repo, true)
            .filter(({ ruleset }) => ruleset.enforcement === 'active' && appliesToBranch(ruleset, repo, branch))
            .flatMap(({ ruleset }) =>
              ruleset.rules.map((rule, i) => ({ __typename: 'RepositoryRule', id: nodeId('RepositoryRule', `${ruleset.id}:${i}`), type: rule.type.toUpperCase(), parameters: ruleParameters(rule) })),
            ),
          args,
        ),
      target: () => headCommitNode(org, repo, branch),
    };
  }

  function repoNode(org: PeerOrg, repo: PeerRepo, who: Identity): Record<string, unknown> {
    const fullName = `${org.login}/${repo.name}`;
    const permission = permissionOn(who, fullName);
    const admin = permission === 'admin';
    const d = defaultBranchOf(repo);
    return {
      __typename: 'Repository',
      id: nodeId('Repository', fullName),
      databaseId: numericId(`repo:${fullName}`),
      name: repo.name,
      nameWithOwner: fullName,
      url: `https://github.com/${fullName}`,
      owner: () => orgNode(org, who),
      isArchived: repo.isArchived ?? false,
      isDisabled: repo.isDisabled ?? false,
      isEmpty: isEmptyRepo(repo),
      pushedAt: pushedAtOf(repo),
      object: (args: { oid?: string | null; expression?: string | null }) => {
        const all = [...(repo.commits ?? []), ...Object.values(repo.branchCommits ?? {}).flat()];
        const c = all.find((x) => oidOf(fullName, x) === args.oid);
        return c ? commitNode(org, repo, c) : null;
      },
      isFork: false,
      isPrivate: repo.private ?? false,
      isLocked: false,
      visibility: repo.private ? 'PRIVATE' : 'PUBLIC',
      viewerPermission: permission.toUpperCase(),
      viewerCanAdminister: admin,
      defaultBranchRef: () => (d !== null && !isEmptyRepo(repo) ? refNode(org, repo, d, who) : null),
      // Classic rules: admins see them; others get an empty list, which is what GitHub answers.
      branchProtectionRules: (args: ConnectionArgs) =>
        connection('branchProtectionRules', admin && who.administrationRead !== false ? (repo.protectionRules ?? []).map((r, i) => protectionRuleNode(org, repo, r, i)) : [], args),
      rulesets: (args: ConnectionArgs & { includeParents?: boolean | null }) =>
        connection('rulesets', rulesetsFor(org, repo, args.includeParents ?? true, true).map(({ ruleset, source }) => rulesetNode(org, repo, ruleset, source, who)), args),
      refs: (args: ConnectionArgs & { refPrefix: string; query?: string | null }) => {
        if (args.refPrefix !== 'refs/heads/') return connection('refs', [], args);
        const names = branchesOf(repo)
          .filter((b) => !args.query || b.includes(args.query))
          .sort();
        return connection('refs', names, args, (b) => refNode(org, repo, b, who));
      },
      ref: (args: { qualifiedName: string }) => {
        const name = args.qualifiedName.replace(/^refs\/heads\//, '');
        return branchesOf(repo).includes(name) ? refNode(org, repo, name, who) : null;
      },
    };
  }

  function rootValue(who: Identity, cost = 1): Record<string, unknown> {
    return {
      viewer: { __typename: 'User', id: nodeId('User', who.login), login: who.login, name: who.login },
      rateLimit: () => {
        const n = used.get(`${who.login}|graphql`) ?? 0;
        return { cost, limit, remaining: limit - n, used: n, nodeCount: 0, resetAt: new Date(now() + 3_600_000).toISOString() };
      },
      organization: (args: { login: string }) => {
        const org = orgOf(args.login);
        if (!org) throw new TypedError(`Could not resolve to an Organization with the login of '${args.login}'.`, 'NOT_FOUND');
        return orgNode(org, who);
      },
      repository: (args: { owner: string; name: string }) => {
        const found = findRepo(args.owner, args.name);
        if (!found) throw new TypedError(`Could not resolve to a Repository with the name '${args.owner}/${args.name}'.`, 'NOT_FOUND');
        return repoNode(found.org, found.repo, who);
      },
    };
  }

  function graphqlAnswer(body: unknown, who: Identity): { status: number; body: unknown } {
    const { query, variables, operationName } = (body ?? {}) as { query?: unknown; variables?: unknown; operationName?: unknown };
    if (typeof query !== 'string') {
      invalidQueries.push({ query: String(query), errors: ['no query'] });
      return { status: 400, body: { message: 'Problems parsing JSON', documentation_url: docs } };
    }
    let document: DocumentNode;
    try {
      document = parse(query);
    } catch (err) {
      const message = (err as Error).message;
      invalidQueries.push({ query, errors: [message] });
      return { status: 200, body: { errors: [{ message: `Parse error: ${message}` }] } };
    }
    const problems = validate(schema, document);
    if (problems.length > 0) {
      invalidQueries.push({ query, errors: problems.map((e) => e.message) });
      return { status: 200, body: { errors: problems.map((e) => ({ message: e.message, locations: e.locations, extensions: { code: 'undefinedField' } })) } };
    }
    const cost = graphqlCost(document, (variables ?? {}) as Record<string, unknown>, typeof operationName === 'string' ? operationName : undefined);
    graphqlPoints += cost;
    const result = execute({
      schema,
      document,
      rootValue: rootValue(who, cost),
      variableValues: (variables ?? {}) as Record<string, unknown>,
      operationName: typeof operationName === 'string' ? operationName : undefined,
    });
    if (result instanceof Promise) throw new Error('the peer resolves synchronously');
    const out: Record<string, unknown> = { data: result.data ?? null };
    if (result.errors && result.errors.length > 0) {
      const paginationMistakes = result.errors.filter((e) => !(e.originalError instanceof TypedError) && /paginate|exceeds the|valid cursor|Variable/.test(e.message));
      if (paginationMistakes.length > 0) invalidQueries.push({ query, errors: paginationMistakes.map((e) => e.message) });
      out.errors = result.errors.map((e) => {
        const typed = e.originalError instanceof TypedError ? e.originalError.githubType : undefined;
        return { ...(typed ? { type: typed } : {}), path: e.path, locations: e.locations, message: e.message };
      });
    }
    return { status: 200, body: out };
  }

  // ---- App auth -----------------------------------------------------------------------------

  function verifyJwt(jwt: string): PeerApp {
    const [h, p, s] = jwt.split('.');
    const bad = (why: string): never => {
      throw new AnswerError(401, { message: `A JSON web token could not be decoded (${why})`, documentation_url: docs, status: '401' });
    };
    if (!h || !p || !s) return bad('not a JWT');
    const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: string };
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as { iss?: unknown; exp?: number; iat?: number };
    if (header.alg !== 'RS256') return bad('alg must be RS256');
    const app = apps.get(Number(payload.iss));
    if (!app) return bad('unknown issuer');
    const key: KeyObject = createPublicKey(app.publicKeyPem);
    if (!verifySignature('RSA-SHA256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'))) return bad('signature');
    // JWTs are signed with the real clock (universal-github-app-jwt reads Date.now), so they are
    // checked against it; `now` only moves installation-token expiry.
    const t = Math.floor(Date.now() / 1000);
    if (typeof payload.exp !== 'number' || payload.exp < t) {
      throw new AnswerError(401, { message: "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires", documentation_url: docs, status: '401' });
    }
    if (payload.exp - (payload.iat ?? t) > 600) {
      throw new AnswerError(401, { message: "'Expiration time' claim ('exp') is too far in the future", documentation_url: docs, status: '401' });
    }
    return app;
  }

  function mintInstallationToken(app: PeerApp, installationId: number): unknown {
    if (installationId !== app.installationId) throw new AnswerError(404, { message: 'Not Found', documentation_url: docs, status: '404' });
    const token = `ghs_${randomBytes(18).toString('base64url')}`;
    const expiresAt = new Date(now() + (app.tokenLifetimeSeconds ?? 3600) * 1000);
    const allOwner = Object.fromEntries([...orgs.values()].map((o) => [o.login, 'owner' as const]));
    tokens.set(token, {
      kind: 'installation',
      login: `app-${app.appId}[bot]`,
      orgRoles: app.identity?.orgRoles ?? allOwner,
      repoPermission: app.identity?.repoPermission ?? 'admin',
      expiresAt: expiresAt.getTime(),
    });
    const iso = expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z');
    installationTokens.push({ token, expiresAt: iso });
    const body = pub.example('installation-token') as Record<string, unknown>;
    Object.assign(body, { token, expires_at: iso, permissions: { administration: 'read', members: 'read', metadata: 'read' }, repository_selection: 'all' });
    delete body.repositories;
    return body;
  }

  // ---- HTTP ---------------------------------------------------------------------------------

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
    const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      ...pub.recordedHeaders,
      'content-type': 'application/json; charset=utf-8',
      'x-github-request-id': `0000:${randomBytes(4).toString('hex')}`,
      ...headers,
      'content-length': String(Buffer.byteLength(text)),
    });
    res.end(text);
  }

  let inFlight = 0;
  let peakInFlight = 0;
  let peakPerCredential = 0;
  let secondaryRefusals = 0;
  const inFlightBy = new Map<string, number>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    inFlight++;
    peakInFlight = Math.max(peakInFlight, inFlight);
    // Counted from arrival, as GitHub counts concurrent requests per credential.
    const cred = req.headers.authorization ?? '';
    const mine = (inFlightBy.get(cred) ?? 0) + 1;
    inFlightBy.set(cred, mine);
    peakPerCredential = Math.max(peakPerCredential, mine);
    const limit = peer.secondaryLimit;
    const overLimit = limit !== undefined && cred !== '' && mine > limit.maxInFlight ? limit : undefined;
    try {
      await handleCounted(req, res, overLimit);
    } finally {
      inFlight--;
      inFlightBy.set(cred, (inFlightBy.get(cred) ?? 1) - 1);
    }
  }

  async function handleCounted(req: IncomingMessage, res: ServerResponse, overLimit: PeerSecondaryLimit | undefined): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://peer');
    const method = (req.method ?? 'GET').toUpperCase();
    const rawPath = url.pathname;
    const body = await readBody(req);
    if (peer.latencyMs > 0) await new Promise((r) => setTimeout(r, peer.latencyMs));
    let path = rawPath;
    let kind: PeerRequest['kind'] = 'rest';
    if (rawPath === '/graphql' || rawPath === '/api/graphql') kind = 'graphql';
    else if (rawPath.startsWith('/api/v3/')) path = rawPath.slice('/api/v3'.length);
    if (/^\/app(\/|$)/.test(path)) kind = 'app';
    const entry: PeerRequest = { kind, method, path: rawPath, query: url.search, status: 0, auth: 'none', login: undefined };
    requests.push(entry);
    const answer = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
      entry.status = status;
      send(res, status, payload, headers);
    };
    try {
      const authz = req.headers.authorization ?? '';
      const m = /^(token|bearer)\s+(.+)$/i.exec(authz);
      const credential = m?.[2]?.trim();

      if (kind === 'app') {
        if (!credential || !credential.includes('.')) throw new AnswerError(401, { message: 'A JSON web token could not be decoded', documentation_url: docs, status: '401' });
        entry.auth = 'jwt';
        const app = verifyJwt(credential);
        entry.login = `app-${app.appId}`;
        const tm = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path);
        if (method !== 'POST' || !tm) throw new AnswerError(404, { message: 'Not Found', documentation_url: docs, status: '404' });
        return answer(201, mintInstallationToken(app, Number(tm[1])));
      }

      const who = credential ? tokens.get(credential) : undefined;
      if (!who || (who.expiresAt !== undefined && who.expiresAt <= now())) {
        throw new AnswerError(401, { message: 'Bad credentials', documentation_url: docs, status: '401' });
      }
      entry.auth = who.kind;
      entry.login = who.login;
      if (overLimit) {
        secondaryRefusals++;
        return answer(
          403,
          { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.', documentation_url: `${docs}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits`, status: '403' },
          { ...rateHeaders(who.login, kind === 'graphql' ? 'graphql' : 'core'), 'retry-after': String(overLimit.retryAfterSeconds ?? 1) },
        );
      }

      const override = overrides.findIndex((o) => o.match.test(rawPath));
      if (override >= 0) {
        const o = overrides.splice(override, 1)[0] as (typeof overrides)[number];
        return answer(o.status, o.body, { ...rateHeaders(who.login, kind === 'graphql' ? 'graphql' : 'core'), ...o.headers });
      }
      const fault = faults.shift();
      if (fault) {
        const rate = rateHeaders(who.login, kind === 'graphql' ? 'graphql' : 'core');
        if (fault.kind === 'status') {
          return answer(fault.status, fault.status >= 500 ? { message: 'Server Error' } : { message: 'Error', documentation_url: docs, status: String(fault.status) }, rate);
        }
        if (fault.kind === 'retryAfter') {
          return answer(
            fault.status,
            { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.', documentation_url: `${docs}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits`, status: String(fault.status) },
            { ...rate, 'retry-after': String(fault.seconds) },
          );
        }
        return answer(
          403,
          { message: `API rate limit exceeded for user ID ${numericId(`user:${who.login}`)}.`, documentation_url: `${docs}/overview/rate-limits-for-the-rest-api`, status: '403' },
          { ...rate, 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.floor(now() / 1000) + fault.resetInSeconds) },
        );
      }

      const scopes: Record<string, string> = who.kind === 'token' ? { 'x-oauth-scopes': who.scopes ?? 'read:org, repo' } : {};
      if (kind === 'graphql') {
        if (method !== 'POST') throw new AnswerError(404, { message: 'Not Found', documentation_url: docs });
        let parsed: unknown;
        try {
          parsed = JSON.parse(body);
        } catch {
          throw new AnswerError(400, { message: 'Problems parsing JSON', documentation_url: docs });
        }
        const out = graphqlAnswer(parsed, who);
        return answer(out.status, out.body, { ...rateHeaders(who.login, 'graphql'), ...scopes });
      }
      const out = releaseRoute(method, path, url, req.headers.accept ?? '', rawPath) ?? rest(method, url, path, who);
      return answer(out.status, out.body, { ...rateHeaders(who.login, 'core'), ...scopes, ...out.headers });
    } catch (err) {
      if (err instanceof AnswerError) return answer(err.status, err.body, err.headers);
      return answer(500, { message: `peer bug: ${(err as Error).message}` });
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, { message: `peer bug: ${(err as Error).message}` }, {});
    });
  });
  server.keepAliveTimeout = 5000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  const assetHost = await startAssetHost();

  /** Releases, release assets and contents of a repository (github-peer-releases.ts); undefined for other routes. */
  function releaseRoute(method: string, path: string, url: URL, accept: string, rawPath: string): { status: number; body: unknown; headers?: Record<string, string> } | undefined {
    const m = /^\/repos\/([^/]+)\/([^/]+)(\/(?:releases|contents)(?:\/.*)?)$/.exec(path);
    if (method !== 'GET' || !m) return undefined;
    const found = findRepo(decodeURIComponent(m[1] as string), decodeURIComponent(m[2] as string));
    if (!found) return undefined;
    const fullName = `${found.org.login}/${found.repo.name}`;
    return releasesAndContents(m[3] as string, url, accept, found.repo, {
      base,
      fullName,
      branches: branchesOf(found.repo),
      defaultBranch: defaultBranchOf(found.repo) ?? 'main',
      numericId,
      example: (name) => pub.example(name),
      assetHost,
    }, rawPath);
  }

  const peer: GithubPeer = {
    assetHost,
    apiUrl: base,
    ghesApiUrl: `${base}/api/v3`,
    latencyMs: options.latencyMs ?? 0,
    requests,
    invalidQueries,
    get peakInFlight() {
      return peakInFlight;
    },
    get peakInFlightPerCredential() {
      return peakPerCredential;
    },
    secondaryLimit: options.secondaryLimit,
    get secondaryRefusals() {
      return secondaryRefusals;
    },
    installationTokens,
    get graphqlPoints() {
      return graphqlPoints;
    },
    addOrg(org) {
      orgs.set(org.login.toLowerCase(), org);
    },
    addToken(token, identity) {
      tokens.set(token, { ...identity, kind: 'token' });
    },
    addApp(app) {
      apps.set(app.appId, app);
    },
    failNext(n, status = 502) {
      for (let i = 0; i < n; i++) faults.push({ kind: 'status', status });
    },
    retryAfterNext(seconds, status = 403) {
      faults.push({ kind: 'retryAfter', seconds, status });
    },
    exhaustRateLimitNext(resetInSeconds) {
      faults.push({ kind: 'primary', resetInSeconds });
    },
    respondNext(match, answer) {
      overrides.push({ match, ...answer });
    },
    count(kind, path) {
      return requests.filter((r) => (!kind || r.kind === kind) && (!path || path.test(r.path))).length;
    },
    reset() {
      requests.length = 0;
      invalidQueries.length = 0;
      peakInFlight = 0;
      peakPerCredential = 0;
      secondaryRefusals = 0;
      graphqlPoints = 0;
    },
    close() {
      for (const s of sockets) s.destroy();
      return Promise.all([new Promise<void>((resolve) => server.close(() => resolve())), assetHost.close()]).then(() => undefined);
    },
  };
  return peer;
}
