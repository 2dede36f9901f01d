/**
 * The GitHub client every GitHub probe uses: the real Octokit (`@octokit/core`), authenticated by
 * a token or as a GitHub App installation, with the transport rules vigil needs applied once,
 * here, in one request hook:
 *
 * - **no bursts**: at most `concurrency` requests in flight per credential and a minimal gap
 *   between request starts, shared by every client in this process that uses that credential;
 * - **rate limits**: `retry-after` (secondary limit) and `x-ratelimit-remaining: 0` +
 *   `x-ratelimit-reset` (primary limit) pause every request of that credential; a short wait is
 *   waited out (abortable), a long one becomes a {@link TransientError} with `retryAfterSeconds`;
 * - **classification**: 5xx, timeouts and resets → TransientError (502/503 retried inline first);
 *   401/403 → {@link GithubPermissionError} naming the scope or permission GitHub says is missing;
 *   404 → {@link NotFoundError}; other 4xx → {@link GithubResponseError}; GraphQL `errors` by
 *   their `type`; a body that fails its zod schema → MalformedResponseError;
 * - **metrics**: requests by target, kind and status, and the last `x-ratelimit-remaining`
 *   (see {@link registerGithubMetrics}).
 *
 * Secrets are read when the client is created (at the start of a run), never stored in job
 * data, and scrubbed from every error message.
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/core';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import type { GithubTarget } from '../config/schema.js';
import { MalformedResponseError, PermissionError, TransientError } from '../probe/errors.js';
import { readSecret, registerSecret, scrub } from '../secrets.js';

/** What a client needs besides its target. */
export interface GithubClientOptions {
  /** The run's signal: aborts waits and requests in flight. */
  signal: AbortSignal;
  log: Logger;
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
  /** First inline retry delay after a 502/503, ms; doubles each retry. Default 500. */
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
}

// ---------------------------------------------------------------------------------------------
// Process-wide state: metrics, one gate per credential, one installation-token cache per App.

const requestCounts = new Map<string, number>();
const rateRemaining = new Map<string, number>();
const sep = '\u0000';

function countRequest(target: string, kind: RequestKind, status: string): void {
  const key = [target, kind, status].join(sep);
  requestCounts.set(key, (requestCounts.get(key) ?? 0) + 1);
}

/** A snapshot of this process's GitHub request counters and last-seen rate-limit headroom. */
export function githubApiStats(): {
  requests: Array<{ target: string; kind: RequestKind; status: string; count: number }>;
  rateLimitRemaining: Array<{ target: string; resource: string; remaining: number }>;
} {
  return {
    requests: [...requestCounts].map(([key, count]) => {
      const [target = '', kind = 'rest', status = ''] = key.split(sep);
      return { target, kind: kind as RequestKind, status, count };
    }),
    rateLimitRemaining: [...rateRemaining].map(([key, remaining]) => {
      const [target = '', resource = ''] = key.split(sep);
      return { target, resource, remaining };
    }),
  };
}

/**
 * Registers `vigil_github_api_requests_total{target,kind,status}` and
 * `vigil_github_rate_limit_remaining{target,resource}` on `registry`, both read at scrape time
 * from this process's counters. Labels are bounded: configured target names, `rest`/`graphql`,
 * HTTP status codes (or `network`, `timeout`), GitHub's rate-limit resources (`core`, `graphql`…).
 */
export function registerGithubMetrics(registry: Registry): void {
  new Counter({
    name: 'vigil_github_api_requests_total',
    help: 'GitHub API requests sent by this process, by configured target, kind (rest, graphql) and HTTP status (network, timeout when none came back).',
    labelNames: ['target', 'kind', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of githubApiStats().requests) this.inc({ target: r.target, kind: r.kind, status: r.status }, r.count);
    },
  });
  new Gauge({
    name: 'vigil_github_rate_limit_remaining',
    help: 'Requests left in the current GitHub primary rate-limit window (last x-ratelimit-remaining seen), by configured target and rate-limit resource (core, graphql…).',
    labelNames: ['target', 'resource'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of githubApiStats().rateLimitRemaining) this.set({ target: r.target, resource: r.resource }, r.remaining);
    },
  });
}

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
 * Admission to one credential's request slots: a counting semaphore, a minimal spacing between
 * starts, and a pause every request honours (set by a rate-limit answer).
 */
class RequestGate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private nextStart = 0;
  /** Unix ms before which no request starts (a rate-limit pause), and why. */
  private pausedUntil = 0;
  /** Last primary-limit state per resource (`core`, `graphql`): remaining and reset (unix ms). */
  readonly primary = new Map<string, { remaining: number; resetAt: number }>();

  constructor(
    readonly concurrency: number,
    readonly minSpacingMs: number,
  ) {}

  pause(untilMs: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, untilMs);
  }

  /** Waits for a slot; throws TransientError when the pause (or an exhausted primary limit) is longer than `maxWaitMs`. */
  async acquire(resource: string, signal: AbortSignal, maxWaitMs: number): Promise<() => void> {
    await this.waitOutPause(resource, signal, maxWaitMs);
    if (this.active >= this.concurrency) {
      await new Promise<void>((resolve, reject) => {
        const entry = (): void => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(signal.reason);
        };
        this.waiting.push(entry);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    } else {
      this.active++;
    }
    // The slot is ours from here (a released slot is handed over without decrementing `active`).
    try {
      await this.waitOutPause(resource, signal, maxWaitMs);
      const now = Date.now();
      const start = Math.max(now, this.nextStart);
      this.nextStart = start + this.minSpacingMs;
      if (start > now) await sleep(start - now, signal);
    } catch (err) {
      this.release();
      throw err;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.release();
    };
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }

  private async waitOutPause(resource: string, signal: AbortSignal, maxWaitMs: number): Promise<void> {
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

const gates = new Map<string, RequestGate>();

function gateFor(key: string, concurrency: number, minSpacingMs: number): RequestGate {
  let gate = gates.get(key);
  if (!gate) {
    gate = new RequestGate(concurrency, minSpacingMs);
    gates.set(key, gate);
  }
  return gate;
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

/** Forgets every gate and App token cache (tests that reuse target names with fresh peers). */
export function resetGithubClientState(): void {
  gates.clear();
  tokenCaches.clear();
}

// ---------------------------------------------------------------------------------------------

type RequestKind = 'rest' | 'graphql';

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
  return err instanceof TransientError || err instanceof PermissionError || err instanceof MalformedResponseError || err instanceof GithubResponseError;
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

/** The `rel="next"` URL of a Link header. */
function nextLink(link: string | undefined): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?([^";]+)"?/.exec(part.trim());
    if (m && m[2]?.split(/\s+/).includes('next')) return m[1];
  }
  return undefined;
}

function routeOf(options: { method?: string; url?: string }): string {
  return `${(options.method ?? 'GET').toUpperCase()} ${options.url ?? ''}`;
}

/** Octokit's request-hook types are wide; this is what the hook reads and writes. */
interface HookOptions {
  method?: string;
  url?: string;
  baseUrl?: string;
  request?: Record<string, unknown>;
  [key: string]: unknown;
}
interface HookResponse {
  status: number;
  headers: Record<string, string | undefined>;
  data: unknown;
}

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
  const retries = opts.retries ?? 2;
  const retryDelayMs = opts.retryDelayMs ?? 500;
  const env = opts.env ?? process.env;
  const now = opts.now ?? Date.now;
  const baseUrl = target.apiUrl.replace(/\/+$/, '');
  const octokitLog = {
    debug: (msg: string) => log.debug({ detail: scrub(msg) }, 'octokit'),
    info: (msg: string) => log.debug({ detail: scrub(msg) }, 'octokit'),
    warn: (msg: string) => log.warn({ detail: scrub(msg) }, 'octokit warning'),
    error: (msg: string) => log.error({ detail: scrub(msg) }, 'octokit error'),
  };

  let octokit: Octokit;
  let credential: string;
  if ('token' in target.auth) {
    const ref = target.auth.token;
    const token = readSecret(ref, env);
    if (token === undefined) {
      throw new PermissionError(`the GitHub token of target ${target.name} is not set: export ${'env' in ref ? ref.env : 'it'} (a token with the scopes listed in the probe docs)`);
    }
    credential = `token:${sha(token)}`;
    octokit = new Octokit({ auth: token, baseUrl, userAgent: 'vigil', log: octokitLog });
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
    octokit = new Octokit({
      baseUrl,
      userAgent: 'vigil',
      log: octokitLog,
      authStrategy: createAppAuth,
      auth: { appId: app.appId, privateKey, installationId: app.installationId, cache, log: octokitLog },
    });
  }
  const gate = gateFor(`${baseUrl}|${credential}`, concurrency, minSpacingMs);

  /** Remembers the primary-limit headers of an answer, for the gate and the gauge. */
  function noteRateLimit(headers: Record<string, string | undefined>, kind: RequestKind): void {
    const remaining = Number(headers['x-ratelimit-remaining']);
    if (headers['x-ratelimit-remaining'] === undefined || !Number.isFinite(remaining)) return;
    const resource = headers['x-ratelimit-resource'] ?? (kind === 'graphql' ? 'graphql' : 'core');
    const reset = Number(headers['x-ratelimit-reset']);
    gate.primary.set(resource, { remaining, resetAt: Number.isFinite(reset) ? reset * 1000 : 0 });
    rateRemaining.set([target.name, resource].join(sep), remaining);
  }

  octokit.hook.wrap('request', async (request, rawOptions) => {
    const options = rawOptions as unknown as HookOptions;
    const route = routeOf(options);
    const kind: RequestKind = /\/graphql$/.test(options.url ?? '') ? 'graphql' : 'rest';
    const resource = kind === 'graphql' ? 'graphql' : 'core';
    // auth-app mints installation tokens through this same hook while the request that needs
    // the token holds its slot: the mint bypasses the gate, or one slot would wait for itself.
    const nested = /\/app\/installations\/[^/]+\/access_tokens$/.test(options.url ?? '');
    let failures = 0;
    let rateWaits = 0;
    for (;;) {
      const release = nested ? () => undefined : await gate.acquire(resource, signal, maxWaitMs);
      const timeout = AbortSignal.timeout(requestTimeoutMs);
      options.request = { ...options.request, signal: AbortSignal.any([signal, timeout]) };
      let response: HookResponse | undefined;
      let failure: unknown;
      try {
        response = (await request(rawOptions)) as unknown as HookResponse;
      } catch (err) {
        failure = err;
      } finally {
        release();
      }
      if (signal.aborted) throw signal.reason;

      if (response) {
        countRequest(target.name, kind, String(response.status));
        noteRateLimit(response.headers, kind);
        const errors = kind === 'graphql' ? (response.data as { errors?: unknown } | null)?.errors : undefined;
        const rateLimited = Array.isArray(errors) && errors.some((e) => (e as { type?: unknown } | null)?.type === 'RATE_LIMITED');
        if (!rateLimited) return response as never;
        const reset = Number(response.headers['x-ratelimit-reset']);
        const waitMs = Number.isFinite(reset) ? Math.max(0, reset * 1000 - Date.now()) + 1000 : 60_000;
        if (waitMs > maxWaitMs || rateWaits >= 3) {
          throw new TransientError(`GitHub GraphQL rate limit reached for ${target.name}; retry in ${Math.ceil(waitMs / 1000)} s`, {
            retryAfterSeconds: Math.ceil(waitMs / 1000),
          });
        }
        rateWaits++;
        gate.pause(Date.now() + waitMs);
        log.warn({ waitMs, route }, 'github graphql rate limit: waiting');
        continue;
      }

      // Already classified by a nested pass through this hook (the installation-token mint).
      if (isClassified(failure)) throw failure;
      const err = failure as HttpErrorLike;
      const http = err.response;
      if (!http) {
        countRequest(target.name, kind, timeout.aborted ? 'timeout' : 'network');
        throw transportFailure(failure, route, timeout.aborted, requestTimeoutMs);
      }
      countRequest(target.name, kind, String(http.status));
      noteRateLimit(http.headers, kind);
      const waitMs = rateLimitWaitMs(http.status, http.headers, githubMessageOf(http.data), Date.now());
      if (waitMs !== undefined) {
        if (waitMs > maxWaitMs || rateWaits >= 3) {
          const seconds = Math.ceil(waitMs / 1000);
          throw new TransientError(`GitHub rate limit (${http.status}) for ${route}: retry in ${seconds} s`, { retryAfterSeconds: seconds, cause: failure });
        }
        rateWaits++;
        gate.pause(Date.now() + waitMs);
        log.warn({ waitMs, route, status: http.status }, 'github rate limit: waiting');
        continue;
      }
      if ((http.status === 502 || http.status === 503) && failures < retries) {
        const delay = retryDelayMs * 2 ** failures;
        failures++;
        log.debug({ route, status: http.status, delay }, 'github answered 5xx: retrying');
        await sleep(delay, signal);
        continue;
      }
      throw classifyHttpError(err, route);
    }
  });

  /** Sends one request through the hook; anything not yet classified (a bug) is rethrown as is. */
  async function send(route: string | { method: string; url: string }, params: Record<string, unknown>): Promise<HookResponse> {
    const res = typeof route === 'string' ? await octokit.request(route, params) : await octokit.request({ ...route, ...params });
    return res as unknown as HookResponse;
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
      const res = await send(route, params);
      return parseBody(schema, res.data, route);
    },

    async restPages(route, params, itemSchema, options) {
      const maxPages = options?.maxPages ?? 1000;
      const page = z.array(z.unknown());
      const out: Array<z.output<typeof itemSchema>> = [];
      let res = await send(route, { per_page: 100, ...params });
      for (let n = 1; ; n++) {
        const items = parseBody(page, res.data, route);
        items.forEach((item, i) => out.push(parseBody(itemSchema, item, `${route} [page ${n}, item ${i}]`)));
        const next = nextLink(res.headers.link);
        if (!next) return out;
        if (n >= maxPages) throw new MalformedResponseError(`GitHub kept paginating ${route} past ${maxPages} pages; no verdict drawn from a partial list`);
        res = await send({ method: 'GET', url: next }, {});
      }
    },

    async graphql(query, variables, schema) {
      const result = await graphqlPartial(query, variables, z.unknown());
      if (result.errors.length > 0) throw classifyGraphqlErrors(result.errors, 'POST /graphql');
      return parseBody(schema, result.data, 'POST /graphql');
    },

    graphqlPartial,
  };
}
