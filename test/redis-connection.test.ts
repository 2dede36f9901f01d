import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';

describe('redis.url with rediss://', () => {
  let plain: TestRedisServer;
  let dir: string;

  beforeAll(async () => {
    plain = await startRedisServer();
    dir = mkdtempSync(path.join(tmpdir(), 'vigil-rediss-'));
  });
  afterAll(async () => {
    await plain.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('against a Redis that does not serve TLS, vigil start exits 69 in bounded time with one line naming the fix', async () => {
    // A plain Redis waits for a command line that a TLS ClientHello never completes: without a
    // bound the client retries the silent server until its retry budget is spent.
    const file = path.join(dir, 'vigil.yaml');
    writeFileSync(
      file,
      `dataDir: ${dir}/var
redis: { url: "rediss://127.0.0.1:${plain.port}" }
http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0 } }
`,
    );
    let err = '';
    const t0 = Date.now();
    const code = await main(['start', '--config', file], { out: () => undefined, err: (t) => (err += t), env: {} });
    const elapsedMs = Date.now() - t0;

    expect(code).toBe(69);
    expect(err).toBe(
      `cannot reach Redis at rediss://127.0.0.1:${plain.port} (connect ETIMEDOUT; no TLS session within 5 s: if that server does not serve TLS, use a redis:// URL): start it, or fix redis.url\n`,
    );
    // 10 s bound on the first PING, with a wide margin for a loaded machine.
    expect(elapsedMs).toBeLessThan(15_000);
  }, 40_000);
});
