/**
 * The Redis `vigil start` runs for itself when the config names no `redis.url`: a
 * `redis-server` child process that keeps its data under `<dataDir>/redis`, persistent (AOF
 * plus RDB snapshots), `maxmemory-policy noeviction` (DESIGN.md §5), and reachable by this user
 * only: a 0700 unix socket, with TCP switched off. Anyone who can write this Redis can forge what
 * vigil publishes, so there is no TCP fallback: when `<dataDir>/redis/redis.sock` is too long
 * for a socket address, the socket goes in a fresh private directory under $XDG_RUNTIME_DIR,
 * $TMPDIR or /tmp, and its path is recorded in `<dataDir>/redis/redis.sock-path`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, lstat, mkdir, mkdtemp, open, readFile, realpath, rename, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** How to reach the embedded Redis, a unix socket; usable as-is as ioredis options or a BullMQ `connection`. */
export type EmbeddedRedisConnection = { path: string };

/** A running embedded Redis. */
export interface EmbeddedRedis {
  connection: EmbeddedRedisConnection;
  /**
   * Stops the server gracefully (SIGTERM, which Redis treats as SHUTDOWN: the AOF is flushed
   * and an RDB snapshot written), waits for it to exit, and SIGKILLs it if it does not within
   * `stopTimeoutMs`; then removes the private socket directory, if one was made. Idempotent:
   * later calls return the same promise.
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
  /**
   * Environment used for the PATH lookup, for $XDG_RUNTIME_DIR and $TMPDIR (where a socket that
   * does not fit under dataDir goes), and handed to the child. Default: `process.env`.
   */
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
  /** Where the running server answers: a one-shot command can use it instead of starting its own. */
  readonly connection: EmbeddedRedisConnection;
  constructor(message: string, connection: EmbeddedRedisConnection, options?: { cause?: unknown }) {
    super(message, { cause: options?.cause });
    this.connection = connection;
  }
}

/** `redis-server` was spawned but did not become ready, or had no safe place for its socket; the message says why. */
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
const socketName = 'redis.sock';
/** In `<dataDir>/redis`: the socket path, when the socket lives in a private directory elsewhere. */
const socketRecordName = 'redis.sock-path';
/** mkdtemp appends six characters. */
const privateDirPrefix = 'vigil-redis-';

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
 * it answers PING on its unix socket.
 *
 * The caller must call `stop()` on shutdown (including on SIGTERM/SIGINT, which by default end
 * Node without running `exit` hooks); a process `exit` hook signals the child as a last resort.
 * A private socket directory left behind by a server that was not stopped is removed by the
 * next start on the same dataDir.
 *
 * @throws EmbeddedRedisUnavailableError when `redis-server` is not found.
 * @throws EmbeddedRedisAlreadyRunningError when a Redis already answers for this dataDir.
 * @throws EmbeddedRedisStartError when the server exits or stays silent during start-up, or
 *   when the socket does not fit under dataDir and no safe short directory is available.
 */
export async function startEmbeddedRedis(options: EmbeddedRedisOptions): Promise<EmbeddedRedis> {
  const { log } = options;
  const env = options.env ?? process.env;
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;

  const executable = await resolveRedisServer(options.redisServerPath, env);

  const dir = resolve(options.dataDir, 'redis');
  await makeDirectory(dir, 0o700);
  const logFile = join(dir, 'redis.log');
  const recordFile = join(dir, socketRecordName);
  const localSocket = join(dir, socketName);

  await assertNotRunning(dir, log);

  // Either the socket fits under dataDir, or it goes in a directory made for it now.
  const privateDir = fits(localSocket) ? undefined : await makePrivateSocketDir(env, localSocket);
  const socketPath = privateDir ? join(privateDir, socketName) : localSocket;
  const connection: EmbeddedRedisConnection = { path: socketPath };
  const removeSocketDir = async () => {
    if (!privateDir) return;
    await removePrivateSocketDir(privateDir);
    // A later start may already have replaced the record (after this server died): keep theirs.
    if ((await readFile(recordFile, 'utf8').catch(() => '')).trim() === socketPath) await unlink(recordFile).catch(() => undefined);
  };
  // Recorded before the spawn, so a start that dies half-way still leaves a trail to clean.
  if (privateDir) await writeSocketRecord(recordFile, socketPath);

  const args = [
    '--dir', dir,
    '--daemonize', 'no',
    '--logfile', logFile,
    '--pidfile', join(dir, 'redis.pid'),
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    // Redis 7's default save points; RDB snapshots complement the AOF (and speed up restarts).
    '--save', '3600 1 300 100 60 10000',
    '--maxmemory-policy', 'noeviction',
    // No TCP at all: only this user may reach the socket (the 0700 directory covers the moment
    // between Redis binding the socket and applying the permission).
    '--port', '0',
    '--unixsocket', socketPath,
    '--unixsocketperm', '700',
  ];

  const logOffset = await fileSize(logFile);
  let spawned: SpawnedRedis;
  try {
    spawned = await spawnRedis(executable, args, env);
  } catch (err) {
    await removeSocketDir();
    throw err;
  }
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
    await removeSocketDir();
    const tail = await outputTail(spawned, logFile, logOffset);
    throw new EmbeddedRedisStartError(
      `redis-server ${ready.reason}: see ${logFile}; last output:\n${tail || '(none)'}`,
    );
  }

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
        // The timer holds the event loop open until the server is gone (the child itself is
        // unref'd: without it Node could exit mid-stop, before the AOF flush and the clean-up);
        // it is cancelled then, so a server that exits at once does not hold it for the timeout.
        const cancelTimer = new AbortController();
        const exited = await Promise.race([
          spawned.exited.then(() => true),
          sleep(stopTimeoutMs, false, { signal: cancelTimer.signal }).catch(() => true),
        ]);
        cancelTimer.abort();
        if (!exited) {
          log.warn({ stopTimeoutMs, redisPid: child.pid }, 'embedded redis did not stop in time, killing it');
          forceKill(child);
          await spawned.exited;
        }
      }
      liveChildren.delete(child);
      await removeSocketDir();
      log.info({ dir }, 'embedded redis stopped');
    })();
    return stopping;
  };
  return { connection, stop };
}

function fits(socketPath: string): boolean {
  return Buffer.byteLength(socketPath) <= maxSocketPathBytes;
}

/**
 * A fresh directory for the socket, mode 0700 and ours, under the first of $XDG_RUNTIME_DIR,
 * $TMPDIR and /tmp that is short enough and safe. mkdtemp picks an unpredictable name and
 * never reuses an existing entry, so nobody can have pre-created it or planted a symlink there.
 */
async function makePrivateSocketDir(env: NodeJS.ProcessEnv, localSocket: string): Promise<string> {
  const tried: string[] = [];
  for (const candidate of new Set([env.XDG_RUNTIME_DIR, env.TMPDIR, '/tmp'])) {
    if (!candidate || !isAbsolute(candidate)) continue;
    tried.push(candidate);
    const base = await realpath(candidate).catch(() => undefined);
    if (!base || !fits(join(base, `${privateDirPrefix}XXXXXX`, socketName)) || !(await isSafeAncestry(base))) continue;
    const made = await mkdtemp(join(base, privateDirPrefix)).catch(() => undefined);
    if (!made) continue;
    if ((await privateDirState(made)) === 'private') return made;
    // e.g. a umask that took away our own bits: not usable, and ours to remove.
    await rmdir(made).catch(() => undefined);
  }
  throw new EmbeddedRedisStartError(
    `the redis socket path ${localSocket} is longer than ${maxSocketPathBytes} bytes and no short private directory could be made for it (tried ${tried.join(', ')}): use a shorter dataDir`,
  );
}

/**
 * Whether `path` and every directory above it can be changed only by us or root: owned by one
 * of them, not a symlink, and not group- or world-writable unless sticky (like /tmp, where
 * others cannot rename or remove what we made). Otherwise someone could swap our directory.
 */
async function isSafeAncestry(path: string): Promise<boolean> {
  const uid = process.getuid?.();
  for (let p = path; ; p = dirname(p)) {
    const st = await lstat(p).catch(() => undefined);
    if (!st?.isDirectory()) return false;
    if (st.uid !== 0 && st.uid !== uid) return false;
    if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) return false;
    if (dirname(p) === p) return true;
  }
}

/** `private`: a real directory (not a symlink), ours, mode 0700, on a safe, symlink-free path. */
async function privateDirState(path: string): Promise<'private' | 'missing' | 'unsafe'> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unsafe';
  }
  if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o777) !== 0o700) return 'unsafe';
  if ((await realpath(path).catch(() => undefined)) !== path) return 'unsafe';
  return (await isSafeAncestry(dirname(path))) ? 'private' : 'unsafe';
}

/** Only ever called on a directory {@link privateDirState} found private: it holds nothing but the socket. */
async function removePrivateSocketDir(privateDir: string): Promise<void> {
  // Redis removes its socket on a clean shutdown, not when it is killed.
  await unlink(join(privateDir, socketName)).catch(() => undefined);
  await rmdir(privateDir).catch(() => undefined);
}

async function writeSocketRecord(recordFile: string, socketPath: string): Promise<void> {
  const temp = `${recordFile}.${process.pid}.tmp`;
  await unlink(temp).catch(() => undefined);
  await writeFile(temp, `${socketPath}\n`, { mode: 0o600, flag: 'wx' });
  await rename(temp, recordFile);
}

/**
 * The socket recorded in `<dataDir>/redis/redis.sock-path`, if it is one this user made: in a
 * private directory named like ours. A record pointing anywhere else is not followed — a
 * stranger's directory could hold a stranger's Redis — and is removed.
 */
async function recordedSocket(recordFile: string, log: Logger): Promise<{ path: string; state: 'private' | 'missing' } | undefined> {
  const text = await readFile(recordFile, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const path = text.trim();
  const privateDir = dirname(path);
  const wellFormed = isAbsolute(path) && fits(path) && basename(path) === socketName && basename(privateDir).startsWith(privateDirPrefix);
  const state = wellFormed ? await privateDirState(privateDir) : 'unsafe';
  if (state !== 'unsafe') return { path, state };
  log.warn({ recordFile, socketPath: path }, 'ignoring the recorded embedded redis socket: it is not in a private directory of this user');
  await unlink(recordFile).catch(() => undefined);
  return undefined;
}

/**
 * Refuses to start a second server on the same data: two Redis processes writing one AOF
 * directory corrupt it, and Redis unlinks an existing socket file before binding its own.
 * Checks both places a server for this dataDir may listen, and cleans up after one that died
 * without `stop()`.
 */
async function assertNotRunning(dir: string, log: Logger): Promise<void> {
  const candidates: string[] = [];
  const localSocket = join(dir, socketName);
  if (fits(localSocket)) candidates.push(localSocket);
  const recordFile = join(dir, socketRecordName);
  const recorded = await recordedSocket(recordFile, log);
  if (recorded?.state === 'private') candidates.push(recorded.path);

  for (const path of candidates) {
    if ((await ping({ path }, 1_000)) === undefined) continue;
    throw new EmbeddedRedisAlreadyRunningError(
      `an embedded redis is already running at ${path} for ${dir} (another vigil with the same dataDir?): stop it, or give this instance its own dataDir`,
      { path },
    );
  }
  if (recorded) {
    if (recorded.state === 'private') await removePrivateSocketDir(dirname(recorded.path));
    await unlink(recordFile).catch(() => undefined);
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

/**
 * `mkdir -p` (mode 0700) that always ends: Node's recursive mkdir spins for ever when a parent
 * exists but cannot hold children (`dataDir: /proc/x`). The same walk as src/store/make-directory.ts,
 * kept here because this module has no local imports (tests run a plain-JS copy of it alone).
 */
async function makeDirectory(dir: string, mode: number): Promise<void> {
  const code = (err: unknown) => (err as NodeJS.ErrnoException).code;
  try {
    await mkdir(dir, { mode });
  } catch (err) {
    if (code(err) === 'EEXIST') {
      if ((await stat(dir)).isDirectory()) return;
      throw err;
    }
    if (code(err) !== 'ENOENT' || dirname(dir) === dir) throw err;
    await makeDirectory(dirname(dir), mode);
    try {
      await mkdir(dir, { mode });
    } catch (again) {
      if (code(again) !== 'EEXIST' || !(await stat(dir)).isDirectory()) throw again;
    }
  }
}
