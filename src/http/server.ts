import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Listen } from '../config/schema.js';

/**
 * The request-target of a request, parsed once by the listener. Handlers read the path and query
 * from here, never from `req.url`: the listener has already refused every target that is not
 * plain origin-form or whose percent-escapes do not decode.
 */
export interface RequestTarget {
  /** The path as sent, percent-escapes kept: what routes match on. */
  pathname: string;
  /** The query string, parsed (never throws; bad escapes in it are kept literally). */
  searchParams: URLSearchParams;
  /** For a route ending in `/*`: the rest of the path after the route's prefix, percent-decoded. Empty otherwise. */
  rest: string;
}

/**
 * A route handler: writes the response itself. Only GET and HEAD reach it, and OPTIONS too when
 * it sets `options: true` (a CORS preflight it answers itself); other methods get 405.
 */
export type Handler = ((req: IncomingMessage, res: ServerResponse, target: RequestTarget) => Promise<void>) & { options?: boolean };

/** A started listener. */
export interface Listener {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/**
 * Longest wait for a client's complete request head. Our requests are a line and a few headers
 * that any client sends in one packet; 5 s is generous on a bad mobile link and keeps a
 * slowloris client from holding a connection slot for the minute Node allows by default.
 */
export const HEADERS_TIMEOUT_MS = 5_000;
/** Longest wait for a whole request. We accept no bodies, so this only bounds a slow head plus nothing: twice the head timeout. */
export const REQUEST_TIMEOUT_MS = 10_000;
/**
 * How long an idle keep-alive connection stays open between requests. Long enough for a browser
 * loading the trust page and its feed, short enough that idle sockets do not pile up.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/**
 * A socket with no traffic in either direction for this long is destroyed. Bounds a client that
 * stops reading its response (slow read) and a handler stuck on Redis; every answer we compute
 * takes milliseconds, and Prometheus gives up on a scrape after 10 s by default.
 */
export const SOCKET_IDLE_TIMEOUT_MS = 15_000;
/**
 * How often Node checks connections against the head and request timeouts. Node's default (30 s)
 * would let a slow head live up to 35 s despite the 5 s timeout.
 */
export const CONNECTIONS_CHECK_INTERVAL_MS = 1_000;
/**
 * Largest request head (request line plus headers) accepted; larger gets 431. Pinned here rather
 * than left to Node's default or `--max-http-header-size`, and roomy enough for a browser's
 * cookies on a shared parent domain in front of the trust page.
 */
export const MAX_HEADER_BYTES = 16 * 1024;
/**
 * Requests served on one keep-alive connection before it is closed, so no single client keeps a
 * connection slot for ever by pipelining. Prometheus scrapes reuse far fewer.
 */
export const MAX_REQUESTS_PER_SOCKET = 100;

/** The limits of a listener, in milliseconds and bytes. Defaults: the constants above. */
export interface HttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  socketIdleTimeoutMs: number;
  connectionsCheckIntervalMs: number;
  maxHeaderBytes: number;
  maxRequestsPerSocket: number;
}

/** The limits every listener runs with unless a test overrides them. */
export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = {
  headersTimeoutMs: HEADERS_TIMEOUT_MS,
  requestTimeoutMs: REQUEST_TIMEOUT_MS,
  keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
  socketIdleTimeoutMs: SOCKET_IDLE_TIMEOUT_MS,
  connectionsCheckIntervalMs: CONNECTIONS_CHECK_INTERVAL_MS,
  maxHeaderBytes: MAX_HEADER_BYTES,
  maxRequestsPerSocket: MAX_REQUESTS_PER_SOCKET,
};

/** Options of {@link listen}. */
export interface ListenOptions {
  /** Open connections accepted at once (`http.*.maxConnections`); more are closed on accept. Default: unlimited. */
  maxConnections?: number;
  /** Host header values answered (`http.admin.allowedHosts`); other Hosts get 421, none gets 400. Default: any. */
  allowedHosts?: readonly string[];
  /** Internal: shorter limits for tests. Default: {@link DEFAULT_HTTP_LIMITS}. */
  limits?: Partial<HttpLimits>;
}

/**
 * Headers for every HTML page we serve (the trust page, the admin HTML snapshot): no script,
 * style, image, form or base from anywhere, inline styles allowed (the email HTML and the page
 * use them), never framed (clickjacking), no Referer leaked to links followed from the page.
 */
export const HTML_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
};

/** Writes JSON with the given status. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

/** Compares a presented bearer token with the expected one in constant time (lengths hidden by hashing). */
export function bearerMatches(header: string | undefined, expected: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  const presented = createHash('sha256').update(m?.[1] ?? '').digest();
  const wanted = createHash('sha256').update(expected).digest();
  return timingSafeEqual(presented, wanted) && m !== null;
}

/** Why a request-target was refused; `undefined` from {@link parseTarget} means it was fine. */
type TargetProblem = string;

// RFC 3986 pchar plus '/': unreserved, sub-delims, ':', '@' and pct-encoded (checked separately).
const PATH_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/;
// The query is looser (clients leave '|', '[' and the like unescaped): any visible ASCII but '#'.
const QUERY_CHARS = /^[\x21-\x22\x24-\x7e]*$/;
const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})/;

/**
 * Parses a request-target. Only origin-form (`/path?query`, RFC 9112 §3.2.1) is accepted:
 * absolute-form, authority-form, asterisk-form, a path starting `//` (which URL parsers read as
 * a host), backslashes, dot segments, fragments and bad percent-escapes are refused. Never throws.
 */
export function parseTarget(raw: string | undefined): RequestTarget | TargetProblem {
  if (!raw || raw[0] !== '/') return 'the request-target must be a path starting with /';
  if (raw[1] === '/') return 'the path must not start with //';
  const q = raw.indexOf('?');
  const pathname = q < 0 ? raw : raw.slice(0, q);
  const query = q < 0 ? '' : raw.slice(q + 1);
  if (!PATH_CHARS.test(pathname)) return 'the path has a character that must be percent-encoded';
  if (!QUERY_CHARS.test(query)) return 'the query has a character that must be percent-encoded';
  if (BAD_ESCAPE.test(pathname)) return 'the path has a malformed percent-escape';
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return 'the path does not percent-decode to UTF-8';
  }
  if (decoded.split('/').some((s) => s === '.' || s === '..')) return 'the path must not contain . or .. segments';
  if (decoded.includes('\\')) return 'the path must not contain a backslash';
  return { pathname, searchParams: new URLSearchParams(query), rest: '' };
}

/** The host and optional port of a Host header value (or allow-list entry), lowercased; undefined when malformed. */
function splitHost(value: string): { host: string; port?: string } | undefined {
  const v = value.trim().toLowerCase();
  if (v === '') return undefined;
  let host: string;
  let after: string;
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    if (end < 0) return undefined;
    host = v.slice(0, end + 1);
    after = v.slice(end + 1);
  } else {
    const colon = v.indexOf(':');
    host = colon < 0 ? v : v.slice(0, colon);
    after = colon < 0 ? '' : v.slice(colon);
  }
  if (after === '') return { host };
  if (!/^:\d{1,5}$/.test(after)) return undefined;
  return { host, port: after.slice(1) };
}

/**
 * Whether a Host header value is on the allow-list. An entry with a port matches that host and
 * port; an entry without one matches the host on any port. Case-insensitive.
 */
export function hostAllowed(header: string, allowed: readonly string[]): boolean {
  const h = splitHost(header);
  if (!h) return false;
  return allowed.some((entry) => {
    const a = splitHost(entry);
    return a !== undefined && a.host === h.host && (a.port === undefined || a.port === (h.port ?? ''));
  });
}

/**
 * Starts a listener with an exact-path routing table and the limits above. Refused before any
 * route runs: a Host off the allow-list (421, none at all 400), a request-target that is not
 * plain origin-form (400). Unknown paths are 404, methods other than GET/HEAD 405 (OPTIONS
 * reaches a handler that sets `options`), a request with a body 413 (the body is never read:
 * the connection closes after the answer). A handler that throws or rejects answers 500 without
 * leaking the error.
 */
export async function listen(name: string, at: Listen, routes: Record<string, Handler>, log: Logger, opts: ListenOptions = {}): Promise<Listener> {
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...opts.limits };
  const allowedHosts = opts.allowedHosts;

  const fail = (err: unknown, req: IncomingMessage, res: ServerResponse) => {
    log.error({ err, listener: name, method: req.method, target: req.url?.slice(0, 200) }, 'request failed');
    if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
    else res.destroy();
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    res.setHeader('x-content-type-options', 'nosniff');
    // A body we do not read would otherwise be drained after the answer; close instead.
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    if (hasBody) res.setHeader('connection', 'close');
    if (allowedHosts) {
      const host = req.headers.host;
      if (host === undefined || host === '') return sendJson(res, 400, { error: 'a Host header is required' });
      if (!hostAllowed(host, allowedHosts)) return sendJson(res, 421, { error: 'this listener does not answer for that Host' });
    }
    const target = parseTarget(req.url);
    if (typeof target === 'string') return sendJson(res, 400, { error: `bad request-target: ${target}` });
    const route = findRoute(routes, target.pathname);
    if (!route) return sendJson(res, 404, { error: 'not found' });
    const withOptions = route.handler.options === true;
    // A CORS resource carries Access-Control-Allow-Origin on every answer, errors included, so a
    // cross-origin reader sees the status (405, 413, 500) instead of a network error.
    if (withOptions) res.setHeader('access-control-allow-origin', '*');
    if (req.method !== 'GET' && req.method !== 'HEAD' && !(withOptions && req.method === 'OPTIONS'))
      return sendJson(res, 405, { error: 'method not allowed' }, { allow: withOptions ? 'GET, HEAD, OPTIONS' : 'GET, HEAD' });
    if (hasBody) return sendJson(res, 413, { error: 'request bodies are not accepted' });
    if (route.prefix !== undefined) target.rest = decodeURIComponent(target.pathname.slice(route.prefix.length)); // parseTarget checked it decodes
    route.handler(req, res, target).catch((err: unknown) => fail(err, req, res));
  };

  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: limits.connectionsCheckIntervalMs,
      maxHeaderSize: limits.maxHeaderBytes,
      requireHostHeader: true,
    },
    (req, res) => {
      // Last resort: a synchronous throw anywhere in routing is a 500, never an uncaught exception.
      try {
        handle(req, res);
      } catch (err) {
        fail(err, req, res);
      }
    },
  );
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
  // With no 'timeout' listener Node destroys the idle socket, which is what we want.
  server.timeout = limits.socketIdleTimeoutMs;
  if (opts.maxConnections !== undefined) server.maxConnections = opts.maxConnections;
  let lastDropLog = 0;
  server.on('drop', () => {
    // A flood would log once per refused connection: at most once a minute.
    if (Date.now() - lastDropLog < 60_000) return;
    lastDropLog = Date.now();
    log.warn({ listener: name, maxConnections: opts.maxConnections }, 'connection refused: maxConnections reached');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;
  log.info({ listener: name, url, maxConnections: opts.maxConnections, allowedHosts }, 'listening');
  return {
    server,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The exact route for a path, else the longest `/*` route whose prefix it starts with. */
function findRoute(routes: Record<string, Handler>, pathname: string): { handler: Handler; prefix?: string } | undefined {
  const exact = Object.hasOwn(routes, pathname) ? routes[pathname] : undefined;
  if (exact) return { handler: exact };
  let best: { handler: Handler; prefix: string } | undefined;
  for (const [route, handler] of Object.entries(routes)) {
    if (!route.endsWith('/*')) continue;
    const prefix = route.slice(0, -1);
    if (pathname.startsWith(prefix) && (!best || prefix.length > best.prefix.length)) best = { handler, prefix };
  }
  return best;
}
