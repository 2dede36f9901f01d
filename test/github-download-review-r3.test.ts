/**
 * Review R3 of GithubClient.download (src/clients/github.ts): the edges of the storage redirect,
 * through the real Octokit client against two local HTTP servers — an "API" origin and a separate
 * "storage" origin (another port, so another origin), as github.com redirects release-asset
 * downloads to release-assets.githubusercontent.com.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { githubClient, GithubDownloadTooLargeError, GithubResponseError, resetGithubClientState, type GithubClientOptions } from '../src/clients/github.js';
import { GithubTarget } from '../src/config/schema.js';
import { TransientError } from '../src/probe/errors.js';

const log = pino({ level: 'silent' });
const TOKEN = 'ghp_review_r3_download_token';
const env = { GH_R3: TOKEN };
const ROUTE = 'GET /repos/{owner}/{repo}/releases/assets/{asset_id}';

interface Peer {
  origin: string;
  host: string;
  seen: Array<{ path: string; authorization: boolean }>;
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  close(): Promise<void>;
}

async function startPeer(): Promise<Peer> {
  const sockets = new Set<Socket>();
  const peer = {
    seen: [] as Peer['seen'],
    handle: (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(404).end();
    },
  } as Peer;
  const server: Server = createServer((req, res) => {
    peer.seen.push({ path: req.url ?? '', authorization: req.headers.authorization !== undefined });
    peer.handle(req, res);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  peer.origin = `http://127.0.0.1:${port}`;
  peer.host = `127.0.0.1:${port}`;
  peer.close = () => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  return peer;
}

let api: Peer;
let storage: Peer;

function client(opts: Partial<GithubClientOptions> = {}) {
  const t = GithubTarget.parse({ name: 'r3', repos: ['acme/app'], apiUrl: api.origin, allowInsecureHttp: true, auth: { token: { env: 'GH_R3' } } });
  return githubClient(t, { signal: new AbortController().signal, log, env, minSpacingMs: 0, retries: 0, ...opts });
}
const download = (gh: ReturnType<typeof client>, maxBytes = 1024 * 1024) =>
  gh.download(ROUTE, { owner: 'acme', repo: 'app', asset_id: 7 }, { maxBytes, redirectHosts: [storage.host] });

beforeAll(async () => {
  api = await startPeer();
  storage = await startPeer();
});
afterAll(async () => {
  await api?.close();
  await storage?.close();
});
beforeEach(() => {
  resetGithubClientState();
  api.seen.length = 0;
  storage.seen.length = 0;
});

describe('GithubClient.download (review R3)', () => {
  it('a redirect loop is an error, never the body of the last 3xx taken as the asset', async () => {
    api.handle = (req, res) => {
      res.writeHead(302, { location: req.url ?? '/' }).end('<html>You are being redirected</html>');
    };
    await expect(download(client())).rejects.toBeInstanceOf(GithubResponseError);
  });

  it('a 3xx without Location is an error, not an (empty) asset', async () => {
    api.handle = (_req, res) => {
      res.writeHead(302).end();
    };
    await expect(download(client())).rejects.toMatchObject({ name: 'GithubResponseError', status: 302 });
  });

  it('a body that stalls after the answer began is a TransientError (retried), not an unclassified abort', async () => {
    api.handle = (_req, res) => {
      res.writeHead(302, { location: `${storage.origin}/asset?sig=1` }).end();
    };
    storage.handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1000' });
      res.write('{"spdxVersion":'); // …and nothing more
    };
    const err = await download(client({ requestTimeoutMs: 400 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toContain('the download broke off');
  });

  it('the credential reaches neither the storage host nor the API again after it (storage → API redirect)', async () => {
    api.handle = (req, res) => {
      if (req.url?.startsWith('/again')) res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      else res.writeHead(302, { location: `${storage.origin}/asset?sig=1` }).end();
    };
    storage.handle = (_req, res) => {
      res.writeHead(302, { location: `${api.origin}/again` }).end();
    };
    const body = await download(client());
    expect(body.toString()).toBe('{"ok":true}');
    expect(api.seen).toEqual([
      { path: '/repos/acme/app/releases/assets/7', authorization: true },
      { path: '/again', authorization: false },
    ]);
    expect(storage.seen).toEqual([{ path: '/asset?sig=1', authorization: false }]);
  });

  it('a gzip bomb is cut at the cap on the inflated bytes', async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(1024 * 1024); // declared size under the cap: only inflating tells
    api.handle = (_req, res) => {
      res.writeHead(302, { location: `${storage.origin}/asset?sig=1` }).end();
    };
    storage.handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': String(bomb.length) }).end(bomb);
    };
    await expect(download(client(), 1024 * 1024)).rejects.toBeInstanceOf(GithubDownloadTooLargeError);
  });
});
