/**
 * The GitHub client every GitHub probe uses: `@octokit/rest` with `@octokit/plugin-throttling`
 * and `@octokit/plugin-retry`, authenticated by a token or as a GitHub App installation, with
 * vigil's own rules kept around them:
 *
 * - **origin lock**: every HTTP exchange — first request, `Link: rel="next"` page, redirect,
 *   installation-token mint — goes only to the configured API origin (scheme, host and port of
 *   `apiUrl`; GraphQL is derived from it). Anything else is refused with a
 *   {@link GithubOriginError} before a byte (or the credential) leaves; redirects are followed
 *   by vigil itself, same origin only;
 * - **throttling**: the plugin's Bottleneck groups, keyed by a hash of the credential (never the
 *   credential): at most `concurrency` requests in flight and `minSpacingMs` between starts per
 *   credential. Given vigil's Redis (`redis` option, from the probe ctx), the groups are
 *   clustered on it (`Bottleneck.IORedisConnection`), so every replica using one credential
 *   shares one budget and together they trip no secondary limit;
 * - **rate limits**: the plugin retries a secondary limit (`retry-after`) or an exhausted primary
 *   limit when the wait is at most `maxWaitSeconds`, and every later request of that credential
 *   in this process waits the pause out too; a longer wait becomes a {@link TransientError} with
 *   `retryAfterSeconds`, and no request is sent while a known exhausted window lasts;
 * - **classification**: 502/503 retried inline by the retry plugin (`retries`), then 5xx,
 *   timeouts, resets → TransientError; 401/403 → {@link GithubPermissionError} naming the scope
 *   or permission GitHub says is missing; 404 → {@link NotFoundError}; other 4xx →
 *   {@link GithubResponseError}; GraphQL `errors` by their `type`; a body that fails its zod
 *   schema → MalformedResponseError;
 * - **metrics**: every HTTP exchange by target, kind and status, and the last
 *   `x-ratelimit-remaining` (github-metrics.ts).
 *
 * `@octokit/plugin-paginate-graphql` is not used: it merges every page into one answer and fails
 * the whole walk on any field error, where the branch-protection sweep must judge each page's
 * repositories on their own and read the organisation from both ends at once.
 *
 * Secrets are read when the client is created (at the start of a run), never stored in job
 * data, and scrubbed from every error message.
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { createAppAuth } from '@octokit/auth-app';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { Octokit } from '@octokit/rest';
import Bottleneck from 'bottleneck';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { GithubTarget } from '../config/schema.js';
import { MalformedResponseError, PermissionError, TransientError } from '../probe/errors.js';
import { countGithubRequest as countRequest, noteGithubRateRemaining, type RequestKind } from './github-metrics.js';
import { readSecret, registerSecret, scrub } from '../secrets.js';

/** What a client needs besides its target. */
export interface GithubClientOptions {
  /** The run's signal: aborts waits and requests in flight. */
  signal: AbortSignal;
  log: Logger;
  /**
   * vigil's Redis: when given, the per-credential throttling is clustered on it and shared by
   * every replica. Without it, throttling is per process.
   */
  redis?: Redis | undefined;
  /** Requests in flight at once per credential. Default 4. */
  concurrency?: number;
  /**
   * Minimal gap between two request starts per credential, ms. Default 70: about 850 requests a
   * minute at most, under GitHub's secondary limit of 900 REST points per minute.
   */
  minSpacingMs?: number;
  /** Longest rate-limit wait done inline, seconds; a longer one throws TransientError. Default 60. */
  maxWaitSeconds?: number;
  /** Time budget of one HTTP exchange, ms. Default 30 000. */
  requestTimeoutMs?: number;
  /** Inline retries of a 502 or 503 before giving up with a TransientError. Default 2. */
  retries?: number;
  /** Base of the inline retry delay after a 502/503, ms: the n-th retry waits n² × this. Default 500. */
  retryDelayMs?: number;
  /** An App installation token is refreshed when it expires within this many seconds. Default 300. */
  tokenRefreshMarginSeconds?: number;
  /** Environment secrets are read from. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Clock for installation token expiry (tests). Default `Date.now`. */
  now?: () => number;
}

/** A GitHub REST or GraphQL request that failed with a 4xx GitHub did not mean as a permission or rate-limit answer. */
export class GithubResponseError extends Error {
  override name = 'GithubResponseError';
  /** HTTP status; 200 for a GraphQL error answer. */
  readonly status: number;
  /** `GET /orgs/{org}` or `POST /graphql`. */
  readonly route: string;
  /** GitHub's own `message`, if it gave one. */
  readonly githubMessage: string | undefined;
  constructor(message: string, info: { status: number; route: string; githubMessage?: string | undefined; cause?: unknown }) {
    super(message, { cause: info.cause });
    this.status = info.status;
    this.route = info.route;
    this.githubMessage = info.githubMessage;
  }
}

/** 404 (or GraphQL NOT_FOUND): the resource does not exist — or the credential may not see it (GitHub hides private resources as 404). */
export class NotFoundError extends GithubResponseError {
  override name = 'NotFoundError';
}

/** 401/403 (or GraphQL FORBIDDEN): the credential may not read this. Carries what GitHub said is missing. */
export class GithubPermissionError extends PermissionError {
  readonly status: number;
  readonly route: string;
  readonly githubMessage: string | undefined;
  /** What the endpoint accepts: `x-accepted-oauth-scopes` (classic tokens) or `x-accepted-github-permissions` (Apps, fine-grained tokens). */
  readonly needs: string | undefined;
  /** Scopes the classic token has (`x-oauth-scopes`). */
  readonly tokenScopes: string | undefined;
  constructor(
    message: string,
    info: { status: number; route: string; githubMessage?: string | undefined; needs?: string | undefined; tokenScopes?: string | undefined; cause?: unknown },
  ) {
    super(message, { cause: info.cause });
    this.status = info.status;
    this.route = info.route;
    this.githubMessage = info.githubMessage;
    this.needs = info.needs;
    this.tokenScopes = info.tokenScopes;
  }
}

/**
 * A request (a pagination link, a redirect) that would leave the configured API origin: refused
 * before it is sent, so the credential never reaches another host. Not retried.
 */
export class GithubOriginError extends Error {
  override name = 'GithubOriginError';
  /** The origin the request would have gone to. */
  readonly refusedOrigin: string;
  constructor(message: string, refusedOrigin: string) {
    super(message);
    this.refusedOrigin = refusedOrigin;
  }
}

/** One entry of a GraphQL answer's `errors`, classified. */
export interface GithubGraphqlError {
  /** GitHub's `type` (FORBIDDEN, NOT_FOUND, RATE_LIMITED…), or `undefined` (e.g. a query that does not validate). */
  type: string | undefined;
  message: string;
  /** Where in `data` the error sits; empty for a whole-query error. */
  path: Array<string | number>;
}

/** A GitHub client bound to one target, for one run. */
export interface GithubClient {
  /** The configured target name (the metrics label). */
  readonly target: string;
  /** One REST request; the body is parsed by `schema`. */
  rest<T>(route: string, params: Record<string, unknown>, schema: z.ZodType<T>): Promise<T>;
  /**
   * Every page of a list endpoint (`per_page=100`, then the `Link: rel="next"` URLs); each page
   * is an array whose items are parsed by `itemSchema`. Stops with a MalformedResponseError past `maxPages`.
   */
  restPages<T>(route: string, params: Record<string, unknown>, itemSchema: z.ZodType<T>, options?: { maxPages?: number }): Promise<T[]>;
  /** One GraphQL query; any `errors` entry throws (classified), so partial data is never used by accident. */
  graphql<T>(query: string, variables: Record<string, unknown>, schema: z.ZodType<T>): Promise<T>;
  /**
   * One GraphQL query whose field-level errors the caller handles itself: `data` (parsed by
   * `schema`, which must allow `null` where an error may sit) and the errors with their paths.
   * Whole-query errors (no path), RATE_LIMITED and missing `data` still throw.
   */
  graphqlPartial<T>(query: string, variables: Record<string, unknown>, schema: z.ZodType<T>): Promise<{ data: T; errors: GithubGraphqlError[] }>;
  /**
   * Downloads a binary (a release asset: `GET /repos/{owner}/{repo}/releases/assets/{asset_id}`
   * with `Accept: application/octet-stream`), at most `maxBytes`. GitHub answers with a redirect
   * to a signed URL on its storage host: it is followed only to a host of `redirectHosts` (exact
   * `host` or `host:port`), over https (or http when the target allows insecure http), and
   * **without** the credential. A bigger body throws {@link GithubDownloadTooLargeError}.
   */
  download(route: string, params: Record<string, unknown>, options: DownloadOptions): Promise<Buffer>;
}

/** Limits of {@link GithubClient.download}. */
export interface DownloadOptions {
  /** Largest body accepted, bytes. */
  maxBytes: number;
  /** Hosts (`host` or `host:port`, lower case) a redirect off the API origin may go to; the credential is never sent there. */
  redirectHosts: readonly string[];
}

/** A download larger than its cap: nothing past the cap was read. */
export class GithubDownloadTooLargeError extends Error {
  override name = 'GithubDownloadTooLargeError';
  readonly maxBytes: number;
  constructor(message: string, maxBytes: number) {
    super(message);
    this.maxBytes = maxBytes;
  }
}

// ---------------------------------------------------------------------------------------------
// Process-wide state: metrics, pauses and primary-limit state per credential, throttling groups
// (local, or clustered on a Redis), one installation-token cache per App.

// The request counters and rate-limit gauge live in github-metrics.ts, which the metrics endpoint
// reads without loading this client; re-exported here for callers that already import the client.
export { githubApiStats, registerGithubMetrics } from './github-metrics.js';

/** Abortable sleep. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * What this process knows of one credential's limits: a pause every request honours (set by a
 * secondary-limit answer) and the last primary-limit state per resource. The throttling plugin
 * retries the request that got the answer; this holds back the others of the credential.
 */
class CredentialLimits {
  /** Unix ms before which no request of the credential is sent. */
  private pausedUntil = 0;
  /** Last primary-limit state per resource (`core`, `graphql`): remaining and reset (unix ms). */
  readonly primary = new Map<string, { remaining: number; resetAt: number }>();

  pause(untilMs: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, untilMs);
  }

  /** Waits out a pause or an exhausted primary window; throws TransientError when that is longer than `maxWaitMs`. */
  async waitOut(resource: string, signal: AbortSignal, maxWaitMs: number): Promise<void> {
    for (;;) {
      const now = Date.now();
      const p = this.primary.get(resource);
      const primaryUntil = p && p.remaining <= 0 && p.resetAt > now ? p.resetAt + 1000 : 0;
      const until = Math.max(this.pausedUntil, primaryUntil);
      if (until <= now) return;
      const waitMs = until - now;
      if (waitMs > maxWaitMs) {
        const seconds = Math.ceil(waitMs / 1000);
        throw new TransientError(`GitHub rate limit: next request allowed in ${seconds} s, longer than vigil waits inline; retry later`, {
          retryAfterSeconds: seconds,
        });
      }
      await sleep(waitMs, signal);
    }
  }
}

const limits = new Map<string, CredentialLimits>();

function limitsFor(key: string): CredentialLimits {
  let l = limits.get(key);
  if (!l) {
    l = new CredentialLimits();
    limits.set(key, l);
  }
  return l;
}

/** The Bottleneck groups the throttling plugin schedules through, shared per store (process or Redis). */
interface ThrottleGroups {
  global: Bottleneck.Group;
  write: Bottleneck.Group;
  auth: Bottleneck.Group;
  search: Bottleneck.Group;
  notifications: Bottleneck.Group;
  clustered: boolean;
  connection: Bottleneck.IORedisConnection | undefined;
}

/** How long an idle per-credential limiter (and its Redis keys) is kept, ms. */
const LIMITER_IDLE_MS = 120_000;

function makeGroups(concurrency: number, minSpacingMs: number, connection: Bottleneck.IORedisConnection | undefined): ThrottleGroups {
  const common = connection ? { datastore: 'ioredis' as const, connection, timeout: LIMITER_IDLE_MS } : { timeout: LIMITER_IDLE_MS };
  return {
    // Every request passes here: the per-credential slots and spacing.
    global: new Bottleneck.Group({ id: 'vigil-github-global', maxConcurrent: concurrency, minTime: minSpacingMs, ...common }),
    // The plugin sends GraphQL through its write group first (it cannot tell a query from a
    // mutation). vigil never writes: queries are spaced like any request, not one a second.
    write: new Bottleneck.Group({ id: 'vigil-github-graphql', minTime: minSpacingMs, ...common }),
    // Installation-token mints: their own slot, so a request holding a global slot can mint.
    auth: new Bottleneck.Group({ id: 'vigil-github-auth', maxConcurrent: 1, ...common }),
    search: new Bottleneck.Group({ id: 'vigil-github-search', maxConcurrent: 1, minTime: 2000, ...common }),
    notifications: new Bottleneck.Group({ id: 'vigil-github-notifications', maxConcurrent: 1, minTime: 3000, ...common }),
    clustered: connection !== undefined,
    connection,
  };
}

/** Local groups by pacing; clustered groups by Redis client and pacing. */
const localGroups = new Map<string, ThrottleGroups>();
const clusteredGroups = new WeakMap<Redis, Map<string, ThrottleGroups>>();

function groupsFor(redis: Redis | undefined, concurrency: number, minSpacingMs: number): ThrottleGroups {
  const pacing = `${concurrency}/${minSpacingMs}`;
  if (!redis) {
    let g = localGroups.get(pacing);
    if (!g) {
      g = makeGroups(concurrency, minSpacingMs, undefined);
      localGroups.set(pacing, g);
    }
    return g;
  }
  let byPacing = clusteredGroups.get(redis);
  if (!byPacing) {
    byPacing = new Map();
    clusteredGroups.set(redis, byPacing);
    const own = byPacing;
    // Bottleneck defines its Lua commands on the client it is given and quits it on disconnect:
    // it gets its own duplicate of vigil's connection, closed when vigil's connection ends.
    redis.once('end', () => {
      for (const g of own.values()) void g.connection?.disconnect(false);
      own.clear();
    });
  }
  let g = byPacing.get(pacing);
  if (!g) {
    const connection = new Bottleneck.IORedisConnection({ client: redis.duplicate(), Redis: redis.constructor as typeof Redis });
    connection.on('error', () => undefined); // reconnects are ioredis's; a failed schedule surfaces on the request
    g = makeGroups(concurrency, minSpacingMs, connection);
    byPacing.set(pacing, g);
  }
  return g;
}

/**
 * An installation-token cache for `@octokit/auth-app` that honours the token's own `expires_at`
 * (auth-app's default cache assumes one hour): an entry expiring within the margin is a miss,
 * so auth-app mints a fresh token before the old one runs out. One cache per App, per process.
 */
class InstallationTokenCache {
  private readonly entries = new Map<string, { value: string; storedAt: number }>();
  constructor(
    private readonly marginMs: number,
    private readonly now: () => number,
  ) {}
  get(key: string): string | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    // auth-app stores `token|createdAt|expiresAt|…`; without a readable expiry assume GitHub's hour.
    const expiresAt = Date.parse(entry.value.split('|')[2] ?? '');
    const deadline = Number.isFinite(expiresAt) ? expiresAt : entry.storedAt + 3_600_000;
    if (deadline - this.now() <= this.marginMs) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }
  set(key: string, value: string): void {
    // Installation tokens are secrets too: scrub them wherever they might surface.
    registerSecret(value.split('|')[0] ?? value);
    this.entries.set(key, { value, storedAt: this.now() });
  }
}

const tokenCaches = new Map<string, InstallationTokenCache>();

/**
 * Forgets every pause, primary-limit state, local throttling group and App token cache (tests
 * that reuse target names with fresh peers). Clustered groups live as long as their Redis client.
 */
export function resetGithubClientState(): void {
  limits.clear();
  localGroups.clear();
  tokenCaches.clear();
}

// ---------------------------------------------------------------------------------------------

/** What an Octokit RequestError looks like; duck-typed so the transitive package need not be imported. */
interface HttpErrorLike {
  status?: unknown;
  message: string;
  response?: { status: number; headers: Record<string, string | undefined>; data: unknown };
  cause?: unknown;
}

/** What Octokit's GraphqlResponseError carries. */
interface GraphqlErrorLike {
  name: string;
  errors?: unknown;
  data?: unknown;
  headers?: Record<string, string | undefined>;
}

const GraphqlErrorEntry = z.looseObject({
  type: z.string().optional(),
  message: z.string().default(''),
  path: z.array(z.union([z.string(), z.number()])).optional(),
});

function sha(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

function githubMessageOf(data: unknown): string | undefined {
  if (data && typeof data === 'object' && 'message' in data && typeof data.message === 'string') return data.message;
  if (typeof data === 'string' && data.length > 0 && data.length < 300) return data;
  return undefined;
}

/** Seconds from a `retry-after` header (delta-seconds or HTTP date). */
function retryAfterSeconds(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (Number.isFinite(n) && n >= 0) return n;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, Math.ceil((at - now) / 1000)) : undefined;
}

/** How long a GraphQL RATE_LIMITED answer asks us to wait, in ms: until the window resets. */
function graphqlRateWaitMs(headers: Record<string, string | undefined>): number {
  const reset = Number(headers['x-ratelimit-reset']);
  return Number.isFinite(reset) && reset > 0 ? Math.max(0, reset * 1000 - Date.now()) + 1000 : 60_000;
}

/** How long a rate-limited answer asks us to wait, in ms; undefined when the answer is not a rate limit. */
function rateLimitWaitMs(status: number, headers: Record<string, string | undefined>, message: string | undefined, now: number): number | undefined {
  if (status !== 403 && status !== 429) return undefined;
  const after = retryAfterSeconds(headers['retry-after'], now);
  if (after !== undefined) return after * 1000;
  if (headers['x-ratelimit-remaining'] === '0') {
    const reset = Number(headers['x-ratelimit-reset']);
    return Number.isFinite(reset) ? Math.max(0, reset * 1000 - now) + 1000 : 60_000;
  }
  // GitHub's guidance for a secondary limit without retry-after: wait at least a minute.
  if (status === 429 || /secondary rate limit|abuse detection/i.test(message ?? '')) return 60_000;
  return undefined;
}

function transportFailure(err: unknown, route: string, timedOut: boolean, timeoutMs: number): Error {
  if (timedOut) return new TransientError(`GitHub did not answer ${route} within ${timeoutMs} ms; retry later`, { cause: err });
  const cause = (err as { cause?: unknown }).cause;
  const inner = (cause as { cause?: unknown } | undefined)?.cause ?? cause;
  const code = (inner as { code?: unknown } | undefined)?.code ?? (cause as { code?: unknown } | undefined)?.code;
  const detail = scrub(inner instanceof Error ? inner.message : (err as Error).message);
  const codeText = typeof code === 'string' ? code : undefined;
  const permanent = codeText !== undefined && /CERT|SSL|TLS|ERR_INVALID_URL/i.test(codeText);
  if (permanent) return new Error(`cannot reach GitHub for ${route}: ${detail}${codeText ? ` (${codeText})` : ''}: check apiUrl and the trusted CAs`, { cause: err });
  return new TransientError(`connection to GitHub failed for ${route}: ${detail}${codeText ? ` (${codeText})` : ''}; retry later`, { cause: err });
}

/** 401/403 (not rate limits) → GithubPermissionError naming what is missing. */
function permissionFailure(status: number, route: string, headers: Record<string, string | undefined>, githubMessage: string | undefined, cause: unknown): GithubPermissionError {
  const accepted = headers['x-accepted-oauth-scopes']?.trim() || undefined;
  const has = headers['x-oauth-scopes'];
  const permissions = headers['x-accepted-github-permissions']?.trim() || undefined;
  const needs = permissions ?? accepted;
  let hint: string;
  if (status === 401) hint = 'GitHub rejected the credentials: check that the token (or App key and installation id) is valid and not expired';
  else if (permissions) hint = `the token needs the permission ${permissions.split(/\s*;\s*/).join(' or ')}`;
  else if (accepted) hint = `the token needs the scope ${accepted.split(/\s*,\s*/).join(' or ')}${has !== undefined ? ` (it has ${has.trim() || 'none'})` : ''}`;
  else if (/not accessible by (integration|personal access token)/i.test(githubMessage ?? '')) hint = 'the App or fine-grained token lacks the permission this endpoint needs';
  else hint = 'the credential may not read this';
  const said = githubMessage ? ` "${githubMessage}"` : '';
  return new GithubPermissionError(scrub(`GitHub refused ${route} (${status}${said}): ${hint}`), {
    status,
    route,
    githubMessage,
    needs,
    tokenScopes: has,
    cause,
  });
}

function isClassified(err: unknown): boolean {
  return err instanceof GithubOriginError || err instanceof TransientError || err instanceof PermissionError || err instanceof MalformedResponseError || err instanceof GithubResponseError;
}

function classifyHttpError(err: HttpErrorLike, route: string): Error {
  const response = err.response;
  if (!response) return err as Error;
  const status = response.status;
  const headers = response.headers;
  const githubMessage = githubMessageOf(response.data);
  if (status === 401 || status === 403) return permissionFailure(status, route, headers, githubMessage, err);
  if (status === 404) {
    return new NotFoundError(scrub(`GitHub answered 404 for ${route}${githubMessage ? ` ("${githubMessage}")` : ''}: it does not exist, or the credential may not see it`), {
      status,
      route,
      githubMessage,
      cause: err,
    });
  }
  if (status >= 500 || status === 429) return new TransientError(`GitHub answered ${status} for ${route}; retry later`, { cause: err });
  return new GithubResponseError(scrub(`GitHub answered ${status} for ${route}${githubMessage ? ` ("${githubMessage}")` : ''}`), { status, route, githubMessage, cause: err });
}

function classifyGraphqlErrors(errors: GithubGraphqlError[], route: string): Error {
  const first = errors[0];
  const summary = scrub(errors.slice(0, 3).map((e) => `${e.type ?? 'ERROR'}${e.path.length ? ` at ${e.path.join('.')}` : ''}: ${e.message}`).join('; '));
  const types = new Set(errors.map((e) => e.type));
  if (types.has('RATE_LIMITED')) return new TransientError(`GitHub GraphQL rate limit reached (${summary}); retry later`, { retryAfterSeconds: 60 });
  if (types.has('FORBIDDEN')) {
    return new GithubPermissionError(`GitHub refused part of a GraphQL query (${summary}): the credential may not read it`, {
      status: 200,
      route,
      githubMessage: first?.message,
    });
  }
  if (types.has('NOT_FOUND')) return new NotFoundError(`GitHub GraphQL: not found (${summary})`, { status: 200, route, githubMessage: first?.message });
  if (types.has('SERVICE_UNAVAILABLE') || types.has('INTERNAL') || types.has('TIMEOUT')) {
    return new TransientError(`GitHub GraphQL failed (${summary}); retry later`);
  }
  return new GithubResponseError(`GitHub refused the GraphQL query (${summary})`, { status: 200, route, githubMessage: first?.message });
}

function parseGraphqlErrors(raw: unknown, route: string): GithubGraphqlError[] {
  const parsed = z.array(GraphqlErrorEntry).safeParse(raw);
  if (!parsed.success) throw new MalformedResponseError(`GitHub answered ${route} with an "errors" list vigil does not understand`);
  return parsed.data.map((e) => ({ type: e.type, message: e.message, path: e.path ?? [] }));
}

function parseBody<T>(schema: z.ZodType<T>, data: unknown, route: string): T {
  const parsed = schema.safeParse(data);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'the body';
  throw new MalformedResponseError(
    scrub(`GitHub answered ${route} with a payload vigil does not understand (${where}: ${issue?.message ?? 'invalid'}); no verdict drawn from it`),
    { cause: parsed.error },
  );
}

/** Why the locked fetch did not send: carried as the `cause` of Octokit's wrapping RequestError. */
class NotSent extends Error {
  constructor(readonly reason: Error) {
    super(reason.message);
  }
}

/** A failure of the HTTP exchange itself (no answer): carried as the `cause` of Octokit's RequestError. */
class ExchangeFailed extends Error {
  constructor(
    readonly original: unknown,
    readonly timedOut: boolean,
  ) {
    super(original instanceof Error ? original.message : String(original));
  }
}

/** The first of vigil's own markers in an error's cause chain. */
function markerOf(err: unknown): NotSent | ExchangeFailed | undefined {
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    if (e instanceof NotSent || e instanceof ExchangeFailed) return e;
  }
  return undefined;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
/** Statuses the retry plugin must not retry: all but 502 and 503 (rate limits are the throttling plugin's). */
const DO_NOT_RETRY = Array.from({ length: 200 }, (_, i) => 400 + i).filter((s) => s !== 502 && s !== 503);

/** `GET /orgs/{org}` for a route template; `GET /path` (no query) for an absolute URL. */
function routeOf(options: { method?: string; url?: string }): string {
  const method = (options.method ?? 'GET').toUpperCase();
  const url = options.url ?? '';
  if (!/^https?:\/\//i.test(url)) return `${method} ${url}`;
  try {
    return `${method} ${new URL(url).pathname}`;
  } catch {
    return method;
  }
}

/** `@octokit/rest` with the throttling and retry plugins (throttling innermost: retries of 502/503 are throttled too). */
const VigilOctokit = Octokit.plugin(throttling, retry);

/**
 * A GitHub client for one target and one run. Reads the target's secret now (token, or App
 * private key); throws PermissionError when the configured token variable is unset.
 */
export function githubClient(target: GithubTarget, opts: GithubClientOptions): GithubClient {
  // One listener on the run's signal; the many waits and requests of a large sweep listen to ours.
  const linked = new AbortController();
  setMaxListeners(0, linked.signal);
  if (opts.signal.aborted) linked.abort(opts.signal.reason);
  else opts.signal.addEventListener('abort', () => linked.abort(opts.signal.reason), { once: true });
  const signal = linked.signal;
  const log = opts.log.child({ github: target.name });
  const concurrency = opts.concurrency ?? 4;
  const minSpacingMs = opts.minSpacingMs ?? 70;
  const maxWaitMs = (opts.maxWaitSeconds ?? 60) * 1000;
  const requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
  const env = opts.env ?? process.env;
  const now = opts.now ?? Date.now;
  const baseUrl = target.apiUrl.replace(/\/+$/, '');
  const origin = new URL(baseUrl).origin;
  const octokitLog = {
    debug: (msg: string) => log.debug({ detail: scrub(msg) }, 'octokit'),
    info: (msg: string) => log.debug({ detail: scrub(msg) }, 'octokit'),
    warn: (msg: string) => log.warn({ detail: scrub(String(msg)) }, 'octokit warning'),
    // @octokit/rest's request log reports every failed request here (a 404 included): vigil
    // classifies failures itself, so this is detail, not an error of its own.
    error: (msg: string) => log.debug({ detail: scrub(String(msg)) }, 'octokit request failed'),
  };

  let credential: string;
  let auth: Record<string, unknown>;
  if ('token' in target.auth) {
    const ref = target.auth.token;
    const token = readSecret(ref, env);
    if (token === undefined) {
      throw new PermissionError(`the GitHub token of target ${target.name} is not set: export ${'env' in ref ? ref.env : 'it'} (a token with the scopes listed in the probe docs)`);
    }
    credential = `token:${sha(token)}`;
    auth = { auth: token };
  } else {
    const app = target.auth.app;
    const privateKey = readSecret(app.privateKey, env);
    if (privateKey === undefined) {
      throw new PermissionError(`the GitHub App private key of target ${target.name} is not set: export ${'env' in app.privateKey ? app.privateKey.env : 'it'}`);
    }
    credential = `app:${app.appId}:${app.installationId}:${sha(privateKey)}`;
    const cacheKey = `${baseUrl}|${credential}`;
    let cache = tokenCaches.get(cacheKey);
    if (!cache) {
      cache = new InstallationTokenCache((opts.tokenRefreshMarginSeconds ?? 300) * 1000, now);
      tokenCaches.set(cacheKey, cache);
    }
    auth = { authStrategy: createAppAuth, auth: { appId: app.appId, privateKey, installationId: app.installationId, cache, log: octokitLog } };
  }
  // The limiter key names the credential by a hash only: it is a Redis key when clustered.
  const limiterKey = sha(`${origin}|${credential}`);
  const credentialLimits = limitsFor(limiterKey);
  const groups = groupsFor(opts.redis, concurrency, minSpacingMs);

  /** Remembers the primary-limit headers of an answer, for the waits and the gauge. */
  function noteRateLimit(headers: Headers, kind: RequestKind): void {
    const raw = headers.get('x-ratelimit-remaining');
    const remaining = Number(raw);
    if (raw === null || !Number.isFinite(remaining)) return;
    const resource = headers.get('x-ratelimit-resource') ?? (kind === 'graphql' ? 'graphql' : 'core');
    const reset = Number(headers.get('x-ratelimit-reset'));
    credentialLimits.primary.set(resource, { remaining, resetAt: Number.isFinite(reset) ? reset * 1000 : 0 });
    noteGithubRateRemaining(target.name, resource, remaining);
  }

  /**
   * The only way out to the network: refuses any URL outside the configured origin (first
   * request, pagination link, redirect), waits out this credential's pause, bounds the exchange
   * in time, follows same-origin redirects itself, and counts every exchange.
   */
  async function lockedFetch(input: string | URL | Request, init: RequestInit = {}, redirectHosts?: ReadonlySet<string>): Promise<Response> {
    let url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    let method = (init.method ?? 'GET').toUpperCase();
    let body = init.body;
    let headers = init.headers;
    for (let hop = 0; ; hop++) {
      // A download's redirect to an allowed storage host is followed, without the credential.
      const allowedElsewhere =
        hop > 0 && redirectHosts !== undefined && redirectHosts.has(url.host.toLowerCase()) && (url.protocol === 'https:' || (url.protocol === 'http:' && target.allowInsecureHttp));
      if (allowedElsewhere) headers = withoutCredential(headers);
      else if (url.origin !== origin) {
        throw new NotSent(
          new GithubOriginError(
            `GitHub's answer for ${target.name} pointed vigil to ${url.origin}, outside the configured apiUrl origin ${origin}: refused, the credential is only sent to apiUrl (check apiUrl, or a proxy rewriting Link or Location headers)`,
            url.origin,
          ),
        );
      }
      const kind: RequestKind = /\/graphql$/.test(url.pathname) ? 'graphql' : 'rest';
      try {
        await credentialLimits.waitOut(kind === 'graphql' ? 'graphql' : 'core', signal, maxWaitMs);
      } catch (err) {
        throw new NotSent(err as Error);
      }
      const timeout = AbortSignal.timeout(requestTimeoutMs);
      let response: Response;
      try {
        response = await fetch(url, { ...init, method, body, headers, redirect: 'manual', signal: AbortSignal.any([signal, timeout]) });
      } catch (err) {
        if (signal.aborted) throw new NotSent(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
        countRequest(target.name, kind, timeout.aborted ? 'timeout' : 'network');
        throw new ExchangeFailed(err, timeout.aborted);
      }
      countRequest(target.name, kind, String(response.status));
      noteRateLimit(response.headers, kind);
      const location = response.headers.get('location');
      if (!REDIRECTS.has(response.status) || location === null) return response;
      if (hop >= MAX_REDIRECTS) return response;
      await response.body?.cancel().catch(() => undefined);
      url = new URL(location, url);
      if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === 'POST')) {
        method = 'GET';
        body = undefined;
      }
    }
  }

  /** The throttling plugin's answer to a rate limit: retry inline when the wait is short. */
  function onLimit(kind: 'secondary' | 'primary') {
    return (retryAfter: number, options: { method?: string; url?: string }, _octokit: unknown, retryCount: number): boolean => {
      const waitMs = retryAfter * 1000;
      // A secondary limit applies to the whole credential: hold back its other requests too.
      if (kind === 'secondary') credentialLimits.pause(Date.now() + waitMs);
      if (waitMs > maxWaitMs || retryCount >= 3 || signal.aborted) return false;
      log.warn({ waitMs, route: routeOf(options), kind }, 'github rate limit: waiting');
      return true;
    };
  }

  const octokit = new VigilOctokit({
    ...auth,
    baseUrl,
    userAgent: 'vigil',
    log: octokitLog,
    request: { fetch: lockedFetch },
    retry: { retries: opts.retries ?? 2, retryAfterBaseValue: opts.retryDelayMs ?? 500, doNotRetry: DO_NOT_RETRY },
    throttle: {
      Bottleneck,
      id: limiterKey,
      global: groups.global,
      write: groups.write,
      auth: groups.auth,
      search: groups.search,
      notifications: groups.notifications,
      clustering: groups.clustered,
      onRateLimit: onLimit('primary'),
      onSecondaryRateLimit: onLimit('secondary'),
    } as never,
  });

  octokit.hook.wrap('request', async (request, options) => {
    const route = routeOf(options);
    let onAbort: (() => void) | undefined;
    // The plugins' waits are not abortable: the run's end does not wait for them.
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => undefined);
    try {
      return await Promise.race([request(options), aborted]);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw classify(err, route);
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  });

  /** Turns whatever came out of Octokit into one of vigil's classified errors. */
  function classify(err: unknown, route: string): unknown {
    // Already classified by a nested pass through the hook (the installation-token mint).
    if (isClassified(err)) return err;
    const marker = markerOf(err);
    if (marker instanceof NotSent) return marker.reason;
    if (marker instanceof ExchangeFailed) return transportFailure(marker.original, route, marker.timedOut, requestTimeoutMs);
    // The shared limiter itself failed (Redis unreachable, a clustered job past its expiry): nothing was judged, try again later.
    if ((err as Error | null)?.name === 'BottleneckError' || (err as Error | null)?.name === 'MaxRetriesPerRequestError') {
      return new TransientError(`GitHub request throttling failed for ${route} (${scrub((err as Error).message)}); retry later`, { cause: err });
    }
    const e = err as HttpErrorLike & GraphqlErrorLike;
    const http = e?.response;
    if (!http) return err;
    // GitHub's answer when a GraphQL query ran out of time on its side (the retry plugin's own test for it).
    if (http.status === 200 && /Something went wrong while executing your query/.test(e.message)) {
      return new TransientError(`GitHub could not finish ${route} in time (${scrub(e.message).slice(0, 200)}); retry later`, { cause: err });
    }
    const rateLimited = Array.isArray((http.data as { errors?: unknown } | null)?.errors) &&
      ((http.data as { errors: unknown[] }).errors).some((x) => (x as { type?: unknown } | null)?.type === 'RATE_LIMITED');
    const waitMs = rateLimited ? graphqlRateWaitMs(http.headers) : rateLimitWaitMs(http.status, http.headers, githubMessageOf(http.data), Date.now());
    if (waitMs !== undefined) {
      const seconds = Math.ceil(waitMs / 1000);
      return new TransientError(`GitHub rate limit (${rateLimited ? 'GraphQL RATE_LIMITED' : http.status}) for ${route}: retry in ${seconds} s`, { retryAfterSeconds: seconds, cause: err });
    }
    return classifyHttpError(e, route);
  }

  async function graphqlPartial<T>(query: string, variables: Record<string, unknown>, schema: z.ZodType<T>): Promise<{ data: T; errors: GithubGraphqlError[] }> {
    const route = 'POST /graphql';
    let data: unknown;
    let errors: GithubGraphqlError[] = [];
    try {
      data = await octokit.graphql(query, variables);
    } catch (err) {
      const g = err as GraphqlErrorLike;
      if (g?.name !== 'GraphqlResponseError') throw err;
      errors = parseGraphqlErrors(g.errors, route);
      data = g.data;
      // A whole-query error, a rate limit or no data at all: nothing usable came back.
      if (errors.some((e) => e.type === 'RATE_LIMITED' || e.path.length === 0) || data === undefined || data === null) {
        throw classifyGraphqlErrors(errors, route);
      }
    }
    return { data: parseBody(schema, data, route), errors };
  }

  return {
    target: target.name,

    async rest(route, params, schema) {
      const res = await octokit.request(route, params);
      return parseBody(schema, res.data, route);
    },

    async restPages(route, params, itemSchema, options) {
      const maxPages = options?.maxPages ?? 1000;
      const page = z.array(z.unknown());
      const out: Array<z.output<typeof itemSchema>> = [];
      let n = 0;
      // Octokit follows `Link: rel="next"`; the locked fetch refuses a link to another origin.
      for await (const res of octokit.paginate.iterator(route as never, { per_page: 100, ...params } as never)) {
        n++;
        const r = res as { data: unknown; headers: Record<string, string | undefined> };
        const items = parseBody(page, r.data, route);
        items.forEach((item, i) => out.push(parseBody(itemSchema, item, `${route} [page ${n}, item ${i}]`)));
        if (n >= maxPages && /rel="next"/.test(r.headers.link ?? '')) {
          throw new MalformedResponseError(`GitHub kept paginating ${route} past ${maxPages} pages; no verdict drawn from a partial list`);
        }
      }
      return out;
    },

    async graphql(query, variables, schema) {
      const result = await graphqlPartial(query, variables, z.unknown());
      if (result.errors.length > 0) throw classifyGraphqlErrors(result.errors, 'POST /graphql');
      return parseBody(schema, result.data, 'POST /graphql');
    },

    graphqlPartial,

    async download(route, params, options) {
      const hosts = new Set(options.redirectHosts.map((h) => h.toLowerCase()));
      const res = await octokit.request(route, {
        ...params,
        headers: { accept: 'application/octet-stream' },
        request: { fetch: (input: string | URL | Request, init?: RequestInit) => lockedFetch(input, init, hosts), parseSuccessResponseBody: false },
      });
      // Past the redirect limit, or a 3xx without Location, lockedFetch hands back the 3xx itself: its body is no asset.
      if (res.status !== 200) {
        await (res.data as ReadableStream<Uint8Array> | null)?.cancel().catch(() => undefined);
        throw new GithubResponseError(`${route} ended on a ${res.status}, not the asset (a redirect without Location, or more than ${MAX_REDIRECTS} redirects): check the API origin and downloadHosts`, { status: res.status, route });
      }
      try {
        return await readCapped(res.data as ReadableStream<Uint8Array> | null, Number(res.headers['content-length']), options.maxBytes, route);
      } catch (err) {
        if (err instanceof GithubDownloadTooLargeError) throw err;
        if (signal.aborted) throw signal.reason;
        // The body broke off (timeout, reset) after the answer began: nothing was judged, try again.
        throw new TransientError(`${route}: the download broke off (${scrub(String((err as Error | null)?.name ?? err))}); retry later`, { cause: err });
      }
    },
  };
}

/** Request headers without the credential, for a hop off the API origin. */
function withoutCredential(headers: RequestInit['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new Headers(headers ?? {})) if (k !== 'authorization' && k !== 'cookie') out[k] = v;
  return out;
}

/** Reads a body up to `maxBytes`: a declared or actual size past the cap stops the read and throws. */
async function readCapped(stream: ReadableStream<Uint8Array> | null, declared: number, maxBytes: number, route: string): Promise<Buffer> {
  const tooLarge = (): GithubDownloadTooLargeError =>
    new GithubDownloadTooLargeError(`${route}: the download is larger than vigil's cap of ${maxBytes} bytes; not read`, maxBytes);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await stream?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (!stream) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let length = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.byteLength;
    if (length > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks, length);
}
