/**
 * The Redis `vigil start` runs for itself when the config names no `redis.url`: a
 * `redis-server` child process that keeps its data under `<dataDir>/redis`, persistent (AOF
 * plus RDB snapshots), `maxmemory-policy noeviction` (DESIGN.md §5), reachable only from this
 * machine — a unix socket with TCP switched off, or 127.0.0.1 when the socket path is too long.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, open, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** How to reach the embedded Redis; usable as-is as ioredis options or a BullMQ `connection`. */
export type EmbeddedRedisConnection = { path: string } | { host: string; port: number };

/** A running embedded Redis. */
export interface EmbeddedRedis {
  connection: EmbeddedRedisConnection;
  /**
   * Stops the server gracefully (SIGTERM, which Redis treats as SHUTDOWN: the AOF is flushed
   * and an RDB snapshot written), waits for it to exit, and SIGKILLs it if it does not within
   * `stopTimeoutMs`. Idempotent: later calls return the same promise.
   */
  stop(): Promise<void>;
}

/** Options of {@link startEmbeddedRedis}. */
export interface EmbeddedRedisOptions {
  /** vigil's data directory; Redis keeps its files (AOF, RDB, socket, log) in `<dataDir>/redis`. */
  dataDir: string;
  log: Logger;
  /** The `redis-server` executable. Default: looked up on `env.PATH`. */
  redisServerPath?: string;
  /** Environment used for the PATH lookup and handed to the child. Default: `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for the server to answer PING after it is spawned. Default: 10 000 ms. */
  readyTimeoutMs?: number;
  /** How long `stop()` waits for a graceful exit before SIGKILL. Default: 10 000 ms. */
  stopTimeoutMs?: number;
  /** Called when the server exits without `stop()` (the daemon cannot go on without it). */
  onUnexpectedExit?: (info: { code: number | null; signal: NodeJS.Signals | null }) => void;
}

/** `redis-server` could not be found: the user must install it or point vigil at a Redis. */
export class EmbeddedRedisUnavailableError extends Error {
  override name = 'EmbeddedRedisUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { cause: options?.cause });
  }
}

/** A Redis already serves this data directory, most likely another vigil using the same dataDir. */
export class EmbeddedRedisAlreadyRunningError extends Error {
  override name = 'EmbeddedRedisAlreadyRunningError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { cause: options?.cause });
  }
}

/** `redis-server` was spawned but did not become ready; the message carries the tail of its output. */
export class EmbeddedRedisStartError extends Error {
  override name = 'EmbeddedRedisStartError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { cause: options?.cause });
  }
}

const notInstalledMessage =
  'redis-server is not installed: run "sudo apt-get install -y redis-server", or set redis.url in the config to use an existing Redis';

/**
 * Linux limits sun_path to 108 bytes including the terminating NUL; 100 leaves a margin and
 * matches what other platforms accept (macOS allows 104).
 */
const maxSocketPathBytes = 100;
const portBindAttempts = 5;

/**
 * Children still running. The `exit` hook signals them at once on a normal exit; the
 * supervisor of {@link spawnTiedToParent} covers the deaths that run no hook.
 */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Only synchronous work is possible here: signal the children; Redis finishes its own
  // shutdown (AOF flush) after we are gone.
  process.on('exit', () => {
    for (const child of liveChildren) child.kill('SIGTERM');
  });
}

/**
 * Starts `redis-server` as a child process with its data in `<dataDir>/redis` and resolves once
 * it answers PING.
 *
 * The caller must call `stop()` on shutdown (including on SIGTERM/SIGINT, which by default end
 * Node without running `exit` hooks); a process `exit` hook signals the child as a last resort.
 *
 * @throws EmbeddedRedisUnavailableError when `redis-server` is not found.
 * @throws EmbeddedRedisAlreadyRunningError when a Redis already answers for this dataDir.
 * @throws EmbeddedRedisStartError when the server exits or stays silent during start-up.
 */
export async function startEmbeddedRedis(options: EmbeddedRedisOptions): Promise<EmbeddedRedis> {
  const { log } = options;
  const env = options.env ?? process.env;
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;

  const executable = await resolveRedisServer(options.redisServerPath, env);

  const dir = resolve(options.dataDir, 'redis');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const socketPath = join(dir, 'redis.sock');
  const portFile = join(dir, 'redis.port');
  const logFile = join(dir, 'redis.log');
  const useSocket = Buffer.byteLength(socketPath) <= maxSocketPathBytes;

  await assertNotRunning(useSocket ? { path: socketPath } : await recordedTcpEndpoint(portFile), dir);

  const baseArgs = [
    '--dir', dir,
    '--daemonize', 'no',
    '--logfile', logFile,
    '--pidfile', join(dir, 'redis.pid'),
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    // Redis 7's default save points; RDB snapshots complement the AOF (and speed up restarts).
    '--save', '3600 1 300 100 60 10000',
    '--maxmemory-policy', 'noeviction',
  ];

  for (let attempt = 1; ; attempt++) {
    let connection: EmbeddedRedisConnection;
    let args: string[];
    if (useSocket) {
      connection = { path: socketPath };
      args = [...baseArgs, '--port', '0', '--unixsocket', socketPath, '--unixsocketperm', '700'];
    } else {
      const port = await freeLoopbackPort();
      connection = { host: '127.0.0.1', port };
      args = [...baseArgs, '--bind', '127.0.0.1', '--port', String(port), '--protected-mode', 'yes'];
    }

    const logOffset = await fileSize(logFile);
    const spawned = await spawnRedis(executable, args, env);
    const { child } = spawned;
    liveChildren.add(child);
    installExitHook();
    child.once('exit', () => liveChildren.delete(child));

    const ready = await waitUntilReady(connection, spawned, readyTimeoutMs);
    if (!ready.ok) {
      if (child.exitCode === null && child.signalCode === null) {
        forceKill(child);
        await spawned.exited;
      }
      const tail = await outputTail(spawned, logFile, logOffset);
      const portTaken = !useSocket && /address already in use/i.test(tail);
      if (portTaken && attempt < portBindAttempts) {
        log.warn({ connection, attempt }, 'embedded redis port was taken, retrying on another port');
        continue;
      }
      throw new EmbeddedRedisStartError(
        `redis-server ${ready.reason}: see ${logFile}; last output:\n${tail || '(none)'}`,
      );
    }

    if (!useSocket && 'port' in connection) await writeFile(portFile, `${connection.port}\n`, { mode: 0o600 });
    log.info({ connection, dir, redisPid: child.pid }, 'embedded redis started');

    let stopping: Promise<void> | undefined;
    void spawned.exited.then(({ code, signal }) => {
      if (stopping) return;
      log.error({ code, signal, logFile }, 'embedded redis exited unexpectedly');
      options.onUnexpectedExit?.({ code, signal });
    });

    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          // ref: false, so a server that exits at once does not keep the process alive for the timeout.
          const exited = await Promise.race([spawned.exited.then(() => true), sleep(stopTimeoutMs, false, { ref: false })]);
          if (!exited) {
            log.warn({ stopTimeoutMs, redisPid: child.pid }, 'embedded redis did not stop in time, killing it');
            forceKill(child);
            await spawned.exited;
          }
        }
        liveChildren.delete(child);
        if (!useSocket) await unlink(portFile).catch(() => undefined);
        log.info({ dir }, 'embedded redis stopped');
      })();
      return stopping;
    };
    return { connection, stop };
  }
}

interface SpawnedRedis {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last few KB of stderr (Redis writes there only before its logfile is set up). */
  stderrTail(): string;
}

async function spawnRedis(executable: string, args: string[], env: NodeJS.ProcessEnv): Promise<SpawnedRedis> {
  const child = spawnTiedToParent(executable, args, { env, stdout: 'ignore' });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4096);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit({ code, signal }));
    child.once('error', () => resolveExit({ code: child.exitCode, signal: child.signalCode }));
  });
  await new Promise<void>((resolveSpawn, rejectSpawn) => {
    child.once('spawn', () => resolveSpawn());
    child.once('error', rejectSpawn);
  });
  // The daemon keeps itself alive; the child must not, so a finished process reaches its exit hook.
  child.unref();
  (child.stderr as { unref?: () => void } | null)?.unref?.();
  return { child, exited, stderrTail: () => stderr };
}

/**
 * Runs `executable` under a small `/bin/sh` supervisor so that it cannot outlive this process,
 * however this process ends. The supervisor holds the read end of a pipe whose write end only
 * we hold; when we die — even by SIGKILL or the OOM killer, which run no `exit` hook — the
 * kernel closes it, the supervisor reads EOF and sends SIGTERM (then SIGKILL after 15 s) to
 * the program. SIGTERM/SIGINT/SIGHUP sent to the supervisor are forwarded to the program, and
 * the supervisor exits with the program's status, so the returned child behaves like the
 * program itself. It leads its own process group: {@link forceKill} ends all of it.
 *
 * Exported for the test helper that runs redis-server for integration tests.
 */
export function spawnTiedToParent(
  executable: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; stdout: 'ignore' | 'pipe' },
): ChildProcess {
  const child = spawn('/bin/sh', ['-c', supervisorScript, 'vigil-supervisor', executable, ...args], {
    stdio: ['pipe', options.stdout, 'pipe'],
    env: options.env,
    // Its own process group: forceKill reaches the program too, and a terminal's Ctrl-C goes
    // to the daemon, which stops the program in order, not to both at once.
    detached: true,
  });
  (child.stdin as { unref?: () => void } | null)?.unref?.();
  return child;
}

/** SIGKILL for a child from {@link spawnTiedToParent}: its supervisor and the program alike. */
export function forceKill(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

// fd 3 is the pipe from our parent. A background job's stdin is /dev/null in a non-interactive
// shell, hence the explicit fd. The program does not get fd 3, so only the watcher holds it.
// Once the program has exited, `kill 0` ends the watcher (and its sleep) — the whole group,
// which is ours alone since the supervisor is spawned detached.
const supervisorScript = `
exec 3<&0 </dev/null
"$@" 3<&- &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT HUP
{ while read -r _ <&3; do :; done; kill -TERM "$pid" 2>/dev/null; sleep 15; kill -KILL "$pid" 2>/dev/null; } &
exec 3<&-
status=0
while kill -0 "$pid" 2>/dev/null; do wait "$pid"; status=$?; done
trap '' TERM
kill -TERM 0 2>/dev/null
exit "$status"
`;

type Readiness = { ok: true } | { ok: false; reason: string };

async function waitUntilReady(
  connection: EmbeddedRedisConnection,
  spawned: SpawnedRedis,
  timeoutMs: number,
): Promise<Readiness> {
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void spawned.exited.then((e) => {
    exit = e;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exit) return { ok: false, reason: `exited during start-up (code ${exit.code}, signal ${exit.signal})` };
    // A Redis still loading its AOF answers LOADING: keep waiting.
    if ((await ping(connection, 1_000)) === 'PONG') return { ok: true };
    if (exit) continue;
    await sleep(50);
  }
  return { ok: false, reason: `did not answer PING within ${timeoutMs} ms` };
}

/**
 * One PING on a fresh connection: `'PONG'`, the error reply (e.g. `LOADING …`, `NOAUTH …`) if
 * a server answered with one, or `undefined` when nothing answered.
 */
async function ping(connection: EmbeddedRedisConnection, timeoutMs: number): Promise<string | undefined> {
  const client = probeClient(connection, timeoutMs);
  try {
    await client.connect();
    return await client.ping();
  } catch (err) {
    const message = (err as { name?: unknown; message?: unknown }).name === 'ReplyError' ? (err as Error).message : undefined;
    return message;
  } finally {
    client.disconnect();
  }
}

function probeClient(connection: EmbeddedRedisConnection, timeoutMs: number): Redis {
  const client = new Redis({
    ...connection,
    lazyConnect: true,
    enableReadyCheck: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
  });
  // Failures surface through the awaited promises; without a listener ioredis logs them.
  client.on('error', () => undefined);
  return client;
}

/**
 * Refuses to start a second server on the same data: two Redis processes writing one AOF
 * directory corrupt it, and Redis unlinks an existing socket file before binding its own.
 */
async function assertNotRunning(endpoint: EmbeddedRedisConnection | undefined, dir: string): Promise<void> {
  if (!endpoint) return;
  const reply = await ping(endpoint, 1_000);
  if (reply === undefined) return;
  if ('port' in endpoint) {
    // A recorded port may since have been taken by an unrelated Redis: only ours uses our dir.
    const client = probeClient(endpoint, 1_000);
    try {
      await client.connect();
      const [, otherDir] = (await client.config('GET', 'dir')) as string[];
      if (otherDir !== dir) return;
    } catch {
      // Cannot tell whose it is: do not block start-up on a stranger's server.
      return;
    } finally {
      client.disconnect();
    }
  }
  const where = 'path' in endpoint ? endpoint.path : `${endpoint.host}:${endpoint.port}`;
  throw new EmbeddedRedisAlreadyRunningError(
    `an embedded redis is already running at ${where} for ${dir} (another vigil with the same dataDir?): stop it, or give this instance its own dataDir`,
  );
}

async function recordedTcpEndpoint(portFile: string): Promise<EmbeddedRedisConnection | undefined> {
  const text = await readFile(portFile, 'utf8').catch(() => undefined);
  const port = Number(text?.trim());
  return Number.isInteger(port) && port > 0 && port < 65_536 ? { host: '127.0.0.1', port } : undefined;
}

async function resolveRedisServer(explicit: string | undefined, env: NodeJS.ProcessEnv): Promise<string> {
  if (explicit !== undefined) {
    if (await isExecutableFile(explicit)) return explicit;
    throw new EmbeddedRedisUnavailableError(
      `redis-server not found at "${explicit}": install it with "sudo apt-get install -y redis-server", or set redis.url in the config to use an existing Redis`,
    );
  }
  for (const entry of (env.PATH ?? '').split(delimiter)) {
    if (entry === '') continue;
    const candidate = join(entry, 'redis-server');
    if (await isExecutableFile(candidate)) return candidate;
  }
  throw new EmbeddedRedisUnavailableError(notInstalledMessage);
}

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Asks the kernel for a free loopback port. Racy by nature: the caller retries if Redis cannot bind it. */
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

async function fileSize(path: string): Promise<number> {
  return (await stat(path).catch(() => undefined))?.size ?? 0;
}

/** What the child wrote during this start: stderr, then the log file from `offset`, last ~4 KB. */
async function outputTail(spawned: SpawnedRedis, logFile: string, offset: number): Promise<string> {
  let logText = '';
  try {
    const handle = await open(logFile, 'r');
    try {
      const size = (await handle.stat()).size;
      const start = Math.max(offset, size - 4096);
      const buffer = Buffer.alloc(Math.max(0, size - start));
      await handle.read(buffer, 0, buffer.length, start);
      logText = buffer.toString('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    // No log file: Redis failed before opening it, stderr says why.
  }
  return [spawned.stderrTail(), logText].filter((s) => s.trim() !== '').join('\n').trim();
}
