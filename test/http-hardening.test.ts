import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { pino } from 'pino';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon.js';
import { startDaemon } from '../src/daemon.js';
import { hostAllowed, listen, parseTarget, sendJson, type Handler } from '../src/http/server.js';
import { createLogger } from '../src/log.js';
import { LogCapture, testConfig, waitFor } from './helpers/daemon.js';
import { fakeBehaviour, fakeProbe } from './helpers/fake-probe.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';

/**
 * HTTP hardening of both listeners, against a real daemon, over raw sockets (fetch and curl
 * normalise request-targets, so they cannot send what an attacker sends).
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const token = 'hardening-admin-token-0123456789abcdef';
const MAX_CONNECTIONS = 5;
const HEADERS_TIMEOUT_MS = 3_000;
const catalog = `controls:
  - id: fake-control
    title: Fake control (internal)
    public: true
    publicTitle: Fake public title
    publicDescription: Fake public description
    frameworks: { soc2: [CC6.7], iso27001: [A.8.24] }
    probes: [fake-check]
`;

let redis: TestRedisServer;
let daemon: Daemon;
let logs: LogCapture;
let clock = new Date('2026-11-20T10:00:00Z');

beforeAll(async () => {
  redis = await startRedisServer();
  fakeBehaviour.set('alpha', async () => [{ resource: 'r1', outcome: 'pass', message: 'fine' }]);
  fakeBehaviour.set('beta', async () => [{ resource: 'r2', outcome: 'pass', message: 'fine' }]);
  const loaded = testConfig(
    `redis: { url: "${redis.url}", prefix: ${uniquePrefix('http-hardening')} }
http:
  public: { listen: 127.0.0.1:0, maxConnections: ${MAX_CONNECTIONS} }
  admin:
    listen: 127.0.0.1:0
    token: { env: ADMIN }
    maxConnections: ${MAX_CONNECTIONS}
    allowedHosts: [127.0.0.1, Vigil.Internal, "metrics.example:9464"]
    metricsAuth: true
trust: { organization: Acme }
probes:
  fake-check: { schedule: "0 3 * * *" }
`,
    [fakeProbe],
    catalog,
    { ADMIN: token },
  );
  logs = new LogCapture();
  daemon = await startDaemon({
    loaded,
    log: createLogger('warn', logs),
    now: () => clock,
    httpLimits: { headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: 2 * HEADERS_TIMEOUT_MS, connectionsCheckIntervalMs: 100 },
  });
  await waitFor(async () => daemon.recorder.recorded >= 2, 10_000, 'the catch-up runs of 2026-11-20');
  clock = new Date('2026-11-21T00:15:00Z');
  await daemon.tick();
});
afterAll(async () => {
  await daemon?.stop();
  await redis?.stop();
});

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function addressOf(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/** Sends raw bytes, reads until the server closes, and parses the (first) response. */
function rawRequest(url: string, request: string, timeoutMs = 5_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(addressOf(url));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms to ${JSON.stringify(request.slice(0, 60))}`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no response head in ${JSON.stringify(text)}`));
      const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const body = text.slice(end + 4);
      resolve({ status: Number(statusLine?.split(' ')[1]), headers, body: headers['transfer-encoding'] === 'chunked' ? dechunk(body) : body });
    });
    socket.write(request);
  });
}

/** The payload of a chunked body (RFC 9112 §7.1), trailers ignored. */
function dechunk(body: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    if (eol < 0) return out;
    const size = Number.parseInt(body.slice(at, eol), 16);
    if (!(size > 0)) return out;
    out += body.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

/** GET over a fresh connection that closes after the answer. */
function rawGet(url: string, target: string, extra: Record<string, string> = {}, host = '127.0.0.1'): Promise<RawResponse> {
  const headers = Object.entries({ host, connection: 'close', ...extra })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return rawRequest(url, `GET ${target} HTTP/1.1\r\n${headers}\r\n`);
}

const auth = { authorization: `Bearer ${token}` };

describe('request-targets that crashed the daemon get 400 on both listeners', () => {
  // Each of these reached `new URL(req.url, …)` and threw an uncaught TypeError: Invalid URL.
  const crashing = ['//', '//[', 'http://[', '//a:b@[x]/', '//x:99999/', '//%', 'http://a:b/', '//[::1', 'http://x:-1/', '//example.com:65536/trust'];
  const alsoRefused = ['*', 'http://127.0.0.1/healthz', '/healthz#frag', '/%', '/%zz', '/%E0%A4%A', '/trust/../healthz', '/./healthz', '/%2e%2e/healthz', '/\\x:99999/', '/tr[ust'];

  for (const listener of ['public', 'admin'] as const) {
    for (const target of [...crashing, ...alsoRefused]) {
      it(`${listener}: GET ${target} → 400 with a JSON error`, async () => {
        const url = listener === 'public' ? daemon.publicUrl : daemon.adminUrl;
        const res = await rawGet(url, target);
        expect({ target, status: res.status }).toEqual({ target, status: 400 });
        expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
        expect(JSON.parse(res.body)).toEqual({ error: expect.stringMatching(/^bad request-target: /) });
      });
    }
    it(`${listener}: still answers /healthz afterwards`, async () => {
      const res = await rawGet(listener === 'public' ? daemon.publicUrl : daemon.adminUrl, '/healthz');
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
    });
  }

  it('OPTIONS * (asterisk-form) is 400 too', async () => {
    const res = await rawRequest(daemon.publicUrl, 'OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    expect(res.status).toBe(400);
  });

  it('a bad percent-escape in an admin path parameter is 400, not 500', async () => {
    for (const target of ['/api/controls/%ff', '/api/controls/%C3', '/api/snapshots/%E0%A4%A']) {
      const res = await rawGet(daemon.adminUrl, target, auth);
      expect({ target, status: res.status }).toEqual({ target, status: 400 });
    }
    // A well-formed escape still decodes: the control id is looked up decoded.
    const res = await rawGet(daemon.adminUrl, '/api/controls/fake%2Dcontrol', auth);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ id: 'fake-control' });
    expect(logs.text).not.toContain('request failed');
  });
});

describe('parseTarget and hostAllowed', () => {
  it('parseTarget keeps the raw path for routing and parses the query', () => {
    const t = parseTarget('/api/snapshots/2026-11-20?format=html&x=%zz');
    expect(typeof t).toBe('object');
    if (typeof t === 'string') return;
    expect(t.pathname).toBe('/api/snapshots/2026-11-20');
    expect(t.searchParams.get('format')).toBe('html');
    expect(t.searchParams.get('x')).toBe('%zz');
    expect(typeof parseTarget(undefined)).toBe('string');
    expect(typeof parseTarget('')).toBe('string');
  });

  const cases: Array<[string, boolean]> = [
    ['127.0.0.1', true],
    ['127.0.0.1:9464', true],
    ['vigil.internal', true],
    ['VIGIL.INTERNAL:1234', true],
    ['metrics.example:9464', true],
    ['metrics.example:9465', false],
    ['metrics.example', false],
    ['evil.example', false],
    ['vigil.internal.evil.example', false],
    ['127.0.0.1:abc', false],
    ['127.0.0.1:', false],
    ['[::1]', false],
    ['', false],
  ];
  for (const [host, ok] of cases) {
    it(`Host "${host}" is ${ok ? 'allowed' : 'refused'}`, () => {
      expect(hostAllowed(host, ['127.0.0.1', 'Vigil.Internal', 'metrics.example:9464'])).toBe(ok);
    });
  }
  it('bracketed IPv6 entries match with and without a port', () => {
    expect(hostAllowed('[::1]:9464', ['[::1]'])).toBe(true);
    expect(hostAllowed('[::1]', ['[::1]:9464'])).toBe(false);
  });
});

describe('Host allow-list on the admin listener', () => {
  it('a Host off the list gets 421 on every admin route, an allowed one is served', async () => {
    for (const target of ['/healthz', '/metrics', '/api/controls']) {
      const res = await rawGet(daemon.adminUrl, target, auth, 'evil.example');
      expect({ target, status: res.status }).toEqual({ target, status: 421 });
      expect(JSON.parse(res.body)).toEqual({ error: 'this listener does not answer for that Host' });
    }
    expect((await rawGet(daemon.adminUrl, '/api/controls', auth, 'vigil.internal:9464')).status).toBe(200);
    expect((await rawGet(daemon.adminUrl, '/healthz', {}, 'METRICS.example:9464')).status).toBe(200);
    expect((await rawGet(daemon.adminUrl, '/healthz', {}, 'metrics.example:80')).status).toBe(421);
    // The list is admin-only: the public listener answers any Host.
    expect((await rawGet(daemon.publicUrl, '/healthz', {}, 'evil.example')).status).toBe(200);
  });

  it('no Host at all (HTTP/1.0) gets 400 when the list is set', async () => {
    const res = await rawRequest(daemon.adminUrl, 'GET /healthz HTTP/1.0\r\n\r\n');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ error: 'a Host header is required' });
  });
});

describe('/metrics behind the admin token (metricsAuth: true)', () => {
  it('401 without or with a wrong token, 200 with it', async () => {
    const none = await rawGet(daemon.adminUrl, '/metrics');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="vigil-admin"');
    expect(none.body).not.toContain('vigil_');
    expect((await rawGet(daemon.adminUrl, '/metrics', { authorization: 'Bearer wrong' })).status).toBe(401);
    const ok = await rawGet(daemon.adminUrl, '/metrics', auth);
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('vigil_control_status{control="fake-control"} 1');
    expect(ok.headers['cache-control']).toBe('no-store');
  });
});

describe('security headers', () => {
  const htmlHeaders = {
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
  };

  it('/trust carries CSP with frame-ancestors none, X-Frame-Options, Referrer-Policy and nosniff', async () => {
    const res = await rawGet(daemon.publicUrl, '/trust');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers).toMatchObject(htmlHeaders);
  });

  it('the admin HTML snapshot carries the same headers and no-store', async () => {
    for (const target of ['/api/snapshots/2026-11-20?format=html', '/api/snapshots/latest?format=html']) {
      const res = await rawGet(daemon.adminUrl, target, auth);
      expect({ target, status: res.status }).toEqual({ target, status: 200 });
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers).toMatchObject({ ...htmlHeaders, 'cache-control': 'no-store' });
      expect(res.body).toContain('Fake control (internal)');
    }
  });

  it('every admin API answer is no-store and nosniff, whatever its status and format', async () => {
    const answers: Array<[string, Record<string, string>, number]> = [
      ['/api/controls', auth, 200],
      ['/api/controls/fake-control', auth, 200],
      ['/api/controls/nope', auth, 404],
      ['/api/controls', {}, 401],
      ['/api/snapshots/latest', auth, 200],
      ['/api/snapshots/2026-11-20', auth, 200],
      ['/api/snapshots/2026-11-20?format=md', auth, 200],
      ['/api/snapshots/2026-11-20?format=pdf', auth, 400],
      ['/api/snapshots/2026-11-19', auth, 404],
      ['/api/snapshots/yesterday', auth, 400],
    ];
    for (const [target, headers, status] of answers) {
      const res = await rawGet(daemon.adminUrl, target, headers);
      expect({ target, status: res.status, cache: res.headers['cache-control'], nosniff: res.headers['x-content-type-options'] }).toEqual({
        target,
        status,
        cache: 'no-store',
        nosniff: 'nosniff',
      });
    }
  });

  it('nosniff on public JSON answers and refusals too', async () => {
    for (const target of ['/healthz', '/trust/feed.json', '/nope', '//']) {
      expect({ target, v: (await rawGet(daemon.publicUrl, target)).headers['x-content-type-options'] }).toEqual({ target, v: 'nosniff' });
    }
  });
});

describe('request bodies', () => {
  it('a GET announcing a 100 MB body gets 413 and the connection closes without reading it', async () => {
    const socket = connect(addressOf(daemon.publicUrl));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const received: Buffer[] = [];
    socket.on('data', (c: Buffer) => received.push(c));
    socket.on('error', () => undefined);
    let closed = false;
    socket.once('close', () => (closed = true));
    const total = 100 * 1024 * 1024;
    socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${total}\r\n\r\n`);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    while (!closed && sent < total) {
      if (!socket.write(chunk)) await new Promise<void>((r) => { socket.once('drain', () => r()); socket.once('close', () => r()); });
      sent += chunk.length;
    }
    await waitFor(() => closed, 5_000, 'the server to close the connection');
    const text = Buffer.concat(received).toString('latin1');
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text.toLowerCase()).toContain('connection: close');
    expect(sent).toBeLessThan(total);
  });

  it('a chunked GET and a POST are refused and closed too', async () => {
    const chunked = await rawRequest(daemon.publicUrl, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    expect(chunked.status).toBe(413);
    const post = await rawRequest(daemon.publicUrl, 'POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\nxx');
    expect(post.status).toBe(405);
    expect(post.headers.connection).toBe('close');
  });
});

describe('slow and numerous clients', () => {
  function open(url: string): Promise<Socket & { closedAt?: number; got: Buffer[] }> {
    return new Promise((resolve, reject) => {
      const s = connect(addressOf(url)) as Socket & { closedAt?: number; got: Buffer[] };
      s.got = [];
      s.on('data', (c: Buffer) => s.got.push(c));
      s.on('error', () => undefined);
      s.once('close', () => (s.closedAt = Date.now()));
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
  }

  for (const listener of ['public', 'admin'] as const) {
    it(`${listener}: connections past maxConnections (${MAX_CONNECTIONS}) are closed on accept; a freed slot serves again`, async () => {
      const url = listener === 'public' ? daemon.publicUrl : daemon.adminUrl;
      // Let earlier tests' connections finish closing on the server side.
      await new Promise((r) => setTimeout(r, 300));
      const held = [];
      for (let i = 0; i < MAX_CONNECTIONS; i++) held.push(await open(url));
      const extra = [await open(url), await open(url)];
      await waitFor(() => extra.every((s) => s.closedAt !== undefined), 1_000, 'the extra connections to be closed');
      expect(extra.map((s) => Buffer.concat(s.got).length)).toEqual([0, 0]);
      expect(logs.lines.filter((l) => l.includes('connection refused: maxConnections reached') && l.includes(`"listener":"${listener}"`))).toHaveLength(1);
      expect(held.map((s) => s.closedAt)).toEqual(held.map(() => undefined));
      // A held connection is still served.
      const first = held[0] as Socket & { closedAt?: number; got: Buffer[] };
      first.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      await waitFor(() => first.closedAt !== undefined, 2_000, 'the held connection to be answered');
      expect(Buffer.concat(first.got).toString('latin1')).toMatch(/^HTTP\/1\.1 200 /);
      for (const s of held) s.destroy();
      const again = await waitFor(async () => {
        const r = await rawGet(url, '/healthz').catch(() => undefined);
        return r?.status === 200 ? r : undefined;
      }, 3_000, 'a new connection to be served');
      expect(again.status).toBe(200);
    });
  }

  it('a client dripping its headers is cut off with 408 at the header timeout', async () => {
    const s = await open(daemon.publicUrl);
    const started = Date.now();
    s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    // One header line every 100 ms: the socket is never idle, only the head never ends.
    const drip = setInterval(() => s.writable && s.write('X-Slow: y\r\n'), 100);
    try {
      await waitFor(() => s.closedAt !== undefined, HEADERS_TIMEOUT_MS + 6_000, 'the server to cut the slow client off');
    } finally {
      clearInterval(drip);
    }
    const after = (s.closedAt ?? 0) - started;
    expect(Buffer.concat(s.got).toString('latin1')).toMatch(/^HTTP\/1\.1 408 /);
    expect(after).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 200);
    expect(after).toBeLessThan(HEADERS_TIMEOUT_MS + 4_000);
  });
});

describe('the per-request last resort', () => {
  it('a handler that throws synchronously or rejects answers 500, is logged, and the listener lives on', async () => {
    const capture = new LogCapture();
    const routes = {
      '/sync': (() => {
        throw new Error('thrown before any promise');
      }) as unknown as Handler,
      '/async': async () => {
        throw new Error('rejected');
      },
      '/ok': async (_req, res) => sendJson(res, 200, { ok: true }),
    } satisfies Record<string, Handler>;
    const l = await listen('last-resort', { host: '127.0.0.1', port: 0 }, routes, pino({ level: 'error' }, capture));
    try {
      for (const target of ['/sync', '/async']) {
        const res = await rawGet(l.url, target);
        expect({ target, status: res.status, body: JSON.parse(res.body) as unknown }).toEqual({ target, status: 500, body: { error: 'internal error' } });
      }
      expect((await rawGet(l.url, '/ok')).status).toBe(200);
      expect(capture.lines.map((line) => (JSON.parse(line) as { msg: string; target: string }).target)).toEqual(['/sync', '/async']);
      expect(capture.text).toContain('thrown before any promise');
    } finally {
      await l.close();
    }
  });
});

describe('default limits', () => {
  it('a listener runs with the documented limits unless told otherwise', async () => {
    const l = await listen('defaults', { host: '127.0.0.1', port: 0 }, {}, pino({ level: 'silent' }), { maxConnections: 64 });
    try {
      const { server } = l;
      expect({
        headersTimeout: server.headersTimeout,
        requestTimeout: server.requestTimeout,
        keepAliveTimeout: server.keepAliveTimeout,
        timeout: server.timeout,
        maxRequestsPerSocket: server.maxRequestsPerSocket,
        maxHeaderSize: (server as unknown as { maxHeaderSize: number }).maxHeaderSize,
        maxConnections: server.maxConnections,
      }).toEqual({ headersTimeout: 5_000, requestTimeout: 10_000, keepAliveTimeout: 5_000, timeout: 15_000, maxRequestsPerSocket: 100, maxHeaderSize: 16_384, maxConnections: 64 });
      // A head over 16 KiB is refused by the parser.
      const big = await rawRequest(l.url, `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`);
      expect(big.status).toBe(431);
    } finally {
      await l.close();
    }
  });
});

describe('the process-level last resort', () => {
  const lastResort = path.join(root, 'dist/src/last-resort.js');
  const child = (trigger: string) => {
    const script = `
      import { pino } from 'pino';
      import { installLastResort } from ${JSON.stringify(pathToFileURL(lastResort).href)};
      const log = pino({ base: null });
      setInterval(() => {}, 1000); // a daemon with work scheduled: the process would not end on its own
      installLastResort({ log, stop: async () => { await new Promise((r) => setTimeout(r, 100)); process.stdout.write('STOPPED\\n'); } });
      ${trigger}
    `;
    return spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 20_000 });
  };

  beforeAll(() => {
    // The child runs compiled code, as `vigil start` does.
    if (!existsSync(lastResort)) {
      const built = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], { encoding: 'utf8' });
      if (!existsSync(lastResort)) throw new Error(`${lastResort} is missing and the build failed: ${built.stdout}${built.stderr}`);
    }
  });

  it('an uncaught exception is logged, the daemon stopped, and the process exits 70', () => {
    const run = child(`setTimeout(() => { throw new Error('boom from a timer'); }, 10);`);
    expect(run.status).toBe(70);
    const lines = run.stdout.trim().split('\n');
    const fatal = JSON.parse(lines[0] ?? '{}') as { level: number; msg: string; origin: string; err: { message: string } };
    expect(fatal).toMatchObject({ level: 60, msg: 'uncaught error: stopping vigil', origin: 'uncaughtException', err: { message: 'boom from a timer' } });
    expect(lines[1]).toBe('STOPPED');
  });

  it('an unhandled rejection is logged, the daemon stopped, and the process exits 70', () => {
    const run = child(`setTimeout(() => { Promise.reject(new Error('nobody awaited me')); }, 10);`);
    expect(run.status).toBe(70);
    expect(run.stdout).toContain('"origin":"unhandledRejection"');
    expect(run.stdout).toContain('nobody awaited me');
    expect(run.stdout.trim().split('\n').at(-1)).toBe('STOPPED');
  });
});
