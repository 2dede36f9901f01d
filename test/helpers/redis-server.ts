/**
 * A real `redis-server` for integration tests: its own process on a free loopback port, its
 * own temp directory, never the shared Redis on 6379.
 *
 * ```ts
 * let redis: TestRedisServer | undefined;
 * beforeEach(async () => { redis = await startRedisServer(); });
 * afterEach(async () => { await redis?.stop(); });
 * ```
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { forceKill, spawnTiedToParent } from '../../src/store/embedded-redis.js';

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** Turn AOF on, so data survives `restart()`. Default: `false` (`--appendonly no`). */
  appendonly?: boolean;
  /** Default: `'noeviction'`, what vigil requires in production. */
  maxmemoryPolicy?: string;
  /** Extra `redis-server` arguments, appended last (so they win over the defaults). */
  args?: string[];
  /** Default: `'redis-server'` on PATH. */
  redisServerPath?: string;
  /** How long to wait for PING after spawning. Default: 5 000 ms. */
  readyTimeoutMs?: number;
}

/** A running test Redis. */
export interface TestRedisServer {
  host: string;
  port: number;
  /** `redis://127.0.0.1:<port>` */
  url: string;
  /** The server's `--dir`, a fresh temp directory removed when the test process exits. */
  dir: string;
  /**
   * Stops the server (SIGTERM, SIGKILL after 5 s) and waits for it to exit. Idempotent, and
   * safe in afterEach/afterAll whatever state the test left it in. `restart()` brings it back.
   */
  stop(): Promise<void>;
  /** Stops the server (an AOF server flushes on the way out) and starts it again on the same port and dir. Also works after `stop()`. */
  restart(): Promise<void>;
  /** FLUSHALL on the server. */
  flushAll(): Promise<void>;
}

const liveChildren = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A crashed or timed-out test must not leave servers or temp dirs behind.
  // (Deaths that run no hook are covered by spawnTiedToParent's supervisor.)
  process.on('exit', () => {
    for (const child of liveChildren) forceKill(child);
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/**
 * Starts `redis-server` on 127.0.0.1 and a free port (bind, `--save ''`, `--appendonly no|yes`,
 * `--maxmemory-policy noeviction`, temp `--dir`) and resolves once it answers PING.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<TestRedisServer> {
  installExitHook();
  const host = '127.0.0.1';
  const dir = mkdtempSync(join(tmpdir(), 'vigil-redis-'));
  tempDirs.add(dir);
  const executable = options.redisServerPath ?? 'redis-server';
  const readyTimeoutMs = options.readyTimeoutMs ?? 5_000;

  const argsFor = (port: number): string[] => [
    '--bind', host,
    '--port', String(port),
    '--dir', dir,
    '--save', '',
    '--appendonly', options.appendonly ? 'yes' : 'no',
    '--maxmemory-policy', options.maxmemoryPolicy ?? 'noeviction',
    '--daemonize', 'no',
    '--logfile', '',
    ...(options.args ?? []),
  ];

  let child: ChildProcess | undefined;
  let port = 0;

  const launch = async (fixedPort: number | undefined): Promise<void> => {
    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= 5; attempt++) {
      const candidate = fixedPort ?? (await freeLoopbackPort());
      const started = await spawnAndWait(executable, argsFor(candidate), host, candidate, readyTimeoutMs);
      if (started.ok) {
        child = started.child;
        port = candidate;
        return;
      }
      lastError = started.error;
      // Another process took the port between our probe and Redis binding it: try again.
      if (!started.portTaken) break;
      if (fixedPort !== undefined) await sleep(100);
    }
    throw lastError ?? new Error('redis-server did not start');
  };

  const kill = async (): Promise<void> => {
    const current = child;
    child = undefined;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    const exited = new Promise<void>((done) => current.once('exit', () => done()));
    // SIGTERM lets the supervisor reap redis-server (a group SIGKILL would orphan it as a
    // zombie where init does not reap); with no RDB save points it exits at once.
    current.kill('SIGTERM');
    const timer = setTimeout(() => forceKill(current), 5_000);
    await exited;
    clearTimeout(timer);
  };

  await launch(undefined);

  return {
    host,
    get port() {
      return port;
    },
    get url() {
      return `redis://${host}:${port}`;
    },
    dir,
    stop: kill,
    async restart() {
      await kill();
      await launch(port);
    },
    async flushAll() {
      const client = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 1 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.flushall();
      } finally {
        client.disconnect();
      }
    },
  };
}

/** A fresh key/queue prefix for one test: letters, digits and '-' only (BullMQ forbids ':' in prefixes and names). */
export function uniquePrefix(label = 'test'): string {
  const safe = label.replace(/[^A-Za-z0-9-]/g, '-');
  return `${safe}-${randomBytes(6).toString('hex')}`;
}

type Started = { ok: true; child: ChildProcess } | { ok: false; error: Error; portTaken: boolean };

async function spawnAndWait(
  executable: string,
  args: string[],
  host: string,
  port: number,
  timeoutMs: number,
): Promise<Started> {
  const child = spawnTiedToParent(executable, args, { stdout: 'pipe' });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-4096);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let exited = false;
  let spawnError: Error | undefined;
  child.once('exit', () => {
    exited = true;
    liveChildren.delete(child);
  });
  child.once('error', (err) => {
    spawnError = err;
    exited = true;
  });
  liveChildren.add(child);

  const deadline = Date.now() + timeoutMs;
  while (!exited && Date.now() < deadline) {
    if (await answersPing(host, port)) return { ok: true, child };
    await sleep(20);
  }
  if (!exited) {
    const gone = new Promise<void>((done) => child.once('exit', () => done()));
    forceKill(child);
    await gone;
  }
  liveChildren.delete(child);
  const reason = spawnError ? spawnError.message : exited ? 'exited during start-up' : `did not answer PING within ${timeoutMs} ms`;
  return {
    ok: false,
    portTaken: /address already in use/i.test(output),
    error: new Error(`test redis-server on ${host}:${port} ${reason}; output:\n${output}`, { cause: spawnError }),
  };
}

async function answersPing(host: string, port: number): Promise<boolean> {
  const client = new Redis({
    host,
    port,
    lazyConnect: true,
    enableReadyCheck: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 500,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePort, rejectPort) => {
    const server = createServer();
    server.once('error', rejectPort);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolvePort(address.port);
        else rejectPort(new Error('could not read the port of a loopback listener'));
      });
    });
  });
}
