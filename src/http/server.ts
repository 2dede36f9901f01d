import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Listen } from '../config/schema.js';

/** A route handler: returns the response body, or writes the response itself and returns undefined. */
export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** A started listener. */
export interface Listener {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Writes JSON with the given status. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

/** Compares a presented bearer token with the expected one in constant time (lengths hidden by hashing). */
export function bearerMatches(header: string | undefined, expected: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  const presented = createHash('sha256').update(m?.[1] ?? '').digest();
  const wanted = createHash('sha256').update(expected).digest();
  return timingSafeEqual(presented, wanted) && m !== null;
}

/**
 * Starts a listener with an exact-path routing table. Unknown paths are 404, other methods than
 * GET/HEAD are 405, and a handler that throws answers 500 without leaking the error.
 */
export async function listen(name: string, at: Listen, routes: Record<string, Handler>, log: Logger): Promise<Listener> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const handler = routes[url.pathname] ?? matchPrefix(routes, url.pathname);
    if (!handler) return sendJson(res, 404, { error: 'not found' });
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
    handler(req, res).catch((err: unknown) => {
      log.error({ err, path: url.pathname, listener: name }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
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
  log.info({ listener: name, url }, 'listening');
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

/** Routes ending in `/*` match any deeper path. */
function matchPrefix(routes: Record<string, Handler>, pathname: string): Handler | undefined {
  for (const [route, handler] of Object.entries(routes)) {
    if (route.endsWith('/*') && pathname.startsWith(route.slice(0, -1))) return handler;
  }
  return undefined;
}
