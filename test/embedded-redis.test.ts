import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  EmbeddedRedisAlreadyRunningError,
  EmbeddedRedisUnavailableError,
  forceKill,
  spawnTiedToParent,
  startEmbeddedRedis,
  type EmbeddedRedis,
  type EmbeddedRedisConnection,
} from '../src/store/embedded-redis.js';

const log = pino({ level: 'silent' });

/** Ports of the TCP sockets in LISTEN state that process `pid` holds (Linux /proc). */
function tcpListenPorts(pid: number): number[] {
  const own = new Set(
    readdirSync(`/proc/${pid}/fd`)
      .map((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          return '';
        }
      })
      .map((link) => /^socket:\[(\d+)\]$/.exec(link)?.[1])
      .filter((inode): inode is string => inode !== undefined),
  );
  const listening: number[] = [];
  for (const table of ['tcp', 'tcp6']) {
    const path = `/proc/${pid}/net/${table}`;
    if (!existsSync(path)) continue;
    for (const line of readFileSync(path, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const [, localAddress, , state, , , , , , inode] = cols;
      if (state === '0A' && inode !== undefined && own.has(inode)) listening.push(parseInt(localAddress?.split(':')[1] ?? '', 16));
    }
  }
  return listening;
}

/** `redis-cli … ping` as the unprivileged user `nobody` (the tests run as root). */
function pingAsNobody(...where: string[]): { stdout: string; stderr: string } {
  return spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'redis-cli', ...where, 'ping'], { encoding: 'utf8', timeout: 10_000 });
}

function pidOf(info: string): number {
  const match = /^process_id:(\d+)/m.exec(info);
  if (!match?.[1]) throw new Error('INFO server has no process_id');
  return Number(match[1]);
}

/** Running, as opposed to gone or a zombie nobody reaped (this sandbox's init does not reap). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitUntilGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !isAlive(pid);
}

/** A dataDir under `base` whose `<dataDir>/redis/redis.sock` is over the socket-path limit. */
function longDirOf(base: string): string {
  return join(base, 'x'.repeat(100));
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * A plain-JS copy of the module next to a driver script, so a separate Node process (which
 * cannot load TypeScript) can start an embedded Redis and then be killed, or run `afterStart`
 * (the script's last lines; by default, idle forever).
 */
function writeDriver(dir: string, afterStart = ['setInterval(() => {}, 60_000);']): string {
  const source = readFileSync(join(repoRoot, 'src/store/embedded-redis.ts'), 'utf8');
  const js = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  writeFileSync(join(dir, 'embedded-redis.mjs'), js);
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  const driver = join(dir, 'driver.mjs');
  writeFileSync(
    driver,
    [
      "import pino from 'pino';",
      "import { startEmbeddedRedis } from './embedded-redis.mjs';",
      "const redis = await startEmbeddedRedis({ dataDir: process.argv[2], log: pino({ level: 'silent' }) });",
      "process.stdout.write(JSON.stringify(redis.connection) + '\\n');",
      ...afterStart,
    ].join('\n'),
  );
  return driver;
}

describe('startEmbeddedRedis', () => {
  let dataDir: string;
  const running: EmbeddedRedis[] = [];
  const clients: Redis[] = [];

  function client(connection: EmbeddedRedisConnection): Redis {
    const c = new Redis({ ...connection, maxRetriesPerRequest: 1, retryStrategy: () => null });
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  }

  async function start(dir = dataDir): Promise<EmbeddedRedis> {
    const redis = await startEmbeddedRedis({ dataDir: dir, log });
    running.push(redis);
    return redis;
  }

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'vigil-data-'));
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect();
    await Promise.all(running.splice(0).map((r) => r.stop()));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves a 0700 unix socket under <dataDir>/redis with TCP switched off', async () => {
    const redis = await start();
    const socketPath = join(dataDir, 'redis', 'redis.sock');
    expect(redis.connection).toEqual({ path: socketPath });

    const c = client(redis.connection);
    expect(await c.ping()).toBe('PONG');
    expect(statSync(socketPath).mode & 0o777).toBe(0o700);
    expect(await c.config('GET', 'port')).toEqual(['port', '0']);
    expect(tcpListenPorts(pidOf(await c.info('server')))).toEqual([]);
  });

  it('runs persistent and non-evicting, logging to <dataDir>/redis/redis.log', async () => {
    const redis = await start();
    const c = client(redis.connection);

    const config = Object.fromEntries(
      (await Promise.all(
        ['appendonly', 'appendfsync', 'maxmemory-policy', 'save', 'dir'].map((p) => c.config('GET', p) as Promise<string[]>),
      )).map(([k, v]) => [k, v]),
    );
    expect(config).toEqual({
      appendonly: 'yes',
      appendfsync: 'everysec',
      'maxmemory-policy': 'noeviction',
      save: '3600 1 300 100 60 10000',
      dir: join(dataDir, 'redis'),
    });
    expect(readFileSync(join(dataDir, 'redis', 'redis.log'), 'utf8')).toMatch(
      /ready to accept connections at .*redis\.sock/,
    );
  });

  it('keeps data across stop and start', async () => {
    const first = await start();
    await client(first.connection).set('vigil-test:key', 'kept');
    await first.stop();

    const second = await start();
    expect(await client(second.connection).get('vigil-test:key')).toBe('kept');
  });

  it('keeps data when the server is killed without a chance to snapshot (the AOF, not RDB, holds it)', async () => {
    const first = await start();
    const c = client(first.connection);
    await c.set('vigil-test:key', 'in-the-aof');
    const pid = pidOf(await c.info('server'));
    process.kill(pid, 'SIGKILL');
    while (isAlive(pid)) await new Promise((r) => setTimeout(r, 10));
    await first.stop();

    // The dead server left its socket file behind; starting again must cope with that.
    const second = await start();
    expect(await client(second.connection).get('vigil-test:key')).toBe('in-the-aof');
  });

  it('refuses a second server on the same dataDir and leaves the first one serving', async () => {
    const first = await start();

    const second = startEmbeddedRedis({ dataDir, log });
    await expect(second).rejects.toThrow(EmbeddedRedisAlreadyRunningError);
    await expect(second).rejects.toThrow(/already running/);
    expect(await client(first.connection).ping()).toBe('PONG');
  });

  it('stop() ends the process, and is idempotent', async () => {
    const redis = await start();
    const pid = pidOf(await client(redis.connection).info('server'));

    await Promise.all([redis.stop(), redis.stop()]);
    await redis.stop();

    expect(isAlive(pid)).toBe(false);
  });

  it('stop() kills a server that refuses to shut down (its final save fails)', async () => {
    const redis = await startEmbeddedRedis({ dataDir, log, stopTimeoutMs: 300 });
    running.push(redis);
    const c = client(redis.connection);
    await c.set('vigil-test:key', 'x');
    const pid = pidOf(await c.info('server'));
    // Redis will not exit on SIGTERM when its shutdown RDB save fails, e.g. on a full or lost disk.
    rmSync(join(dataDir, 'redis'), { recursive: true, force: true });

    await redis.stop();

    // SIGKILL is delivered asynchronously: give a loaded machine a moment to reap it.
    expect(await waitUntilGone(pid, 3_000)).toBe(true);
  });

  describe('with a dataDir too long for a socket address', () => {
    const longDir = () => longDirOf(dataDir);
    /** Neither variable set: the socket directory goes in /tmp whatever the machine running the tests has. */
    const plainEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH });
    const startLong = async (env = plainEnv()) => {
      const redis = await startEmbeddedRedis({ dataDir: longDir(), log, env });
      running.push(redis);
      return redis;
    };
    const recordFile = () => join(longDir(), 'redis', 'redis.sock-path');

    it('serves a socket in a fresh 0700 directory of ours, with TCP off, that another local user cannot reach', async () => {
      const redis = await startLong();
      const c = client(redis.connection);
      await c.set('vigil-test:key', 'kept-private');
      expect(await c.get('vigil-test:key')).toBe('kept-private');

      // Another local user tries every way in that this server offers: its socket and any TCP port.
      const pid = pidOf(await c.info('server'));
      const ways = [
        ...('path' in redis.connection ? [['-s', redis.connection.path]] : []),
        ...tcpListenPorts(pid).map((port) => ['-h', '127.0.0.1', '-p', String(port)]),
      ];
      expect(ways.length).toBeGreaterThan(0);
      for (const way of ways) {
        const attempt = pingAsNobody(...way);
        expect(attempt.stdout).not.toContain('PONG');
        expect(attempt.stderr).toContain('Permission denied');
      }
      expect(tcpListenPorts(pid)).toEqual([]);
      expect(await c.config('GET', 'port')).toEqual(['port', '0']);

      const socketPath = redis.connection.path;
      expect(socketPath).toMatch(/^\/tmp\/vigil-redis-[A-Za-z0-9]{6}\/redis\.sock$/);
      const socketDir = lstatSync(dirname(socketPath));
      expect(socketDir.isDirectory()).toBe(true);
      expect(socketDir.mode & 0o777).toBe(0o700);
      expect(socketDir.uid).toBe(process.getuid?.());
      expect(statSync(socketPath).mode & 0o777).toBe(0o700);
      // Recorded, privately, where the next start and the one-shot commands look.
      expect(readFileSync(recordFile(), 'utf8')).toBe(`${socketPath}\n`);
      expect(statSync(recordFile()).mode & 0o777).toBe(0o600);
    });

    it('refuses a second start while the first runs, and starts again, with the data, after stop', async () => {
      const first = await startLong();
      await client(first.connection).set('vigil-test:key', 'kept');

      const second: unknown = await startEmbeddedRedis({ dataDir: longDir(), log, env: plainEnv() }).catch((e: unknown) => e);
      expect(second).toBeInstanceOf(EmbeddedRedisAlreadyRunningError);
      expect((second as EmbeddedRedisAlreadyRunningError).connection).toEqual(first.connection);
      expect(await client(first.connection).ping()).toBe('PONG');

      await first.stop();
      expect(existsSync(dirname(first.connection.path))).toBe(false);
      expect(existsSync(recordFile())).toBe(false);

      const again = await startLong();
      expect(await client(again.connection).get('vigil-test:key')).toBe('kept');
    });

    it('after a server that was never stopped, the next start serves and removes the old socket directory', async () => {
      const first = await startLong();
      const c = client(first.connection);
      await c.set('vigil-test:key', 'in-the-aof');
      const pid = pidOf(await c.info('server'));
      process.kill(pid, 'SIGKILL');
      expect(await waitUntilGone(pid, 5_000)).toBe(true);

      const second = await startLong();
      expect(existsSync(dirname(first.connection.path))).toBe(false);
      expect(second.connection.path).not.toBe(first.connection.path);
      expect(await client(second.connection).get('vigil-test:key')).toBe('in-the-aof');
      // The late stop() of the dead server leaves the new server's record alone.
      await first.stop();
      expect(readFileSync(recordFile(), 'utf8')).toBe(`${second.connection.path}\n`);
    });

    it('does not follow a record to a socket in a directory another user owns', async () => {
      // Another local user's Redis, in a directory named like ours (on a shared /tmp anyone can make one).
      const foreignDir = mkdtempSync('/tmp/vigil-redis-');
      chownSync(foreignDir, 65_534, 65_534);
      const foreignSocket = join(foreignDir, 'redis.sock');
      const foreign = spawnTiedToParent(
        'setpriv',
        ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'redis-server', '--port', '0', '--unixsocket', foreignSocket, '--unixsocketperm', '777', '--dir', foreignDir, '--save', '', '--appendonly', 'no'],
        { stdout: 'ignore' },
      );
      try {
        await expect.poll(() => existsSync(foreignSocket), { timeout: 5_000 }).toBe(true);
        const probe = client({ path: foreignSocket });
        expect(await probe.ping()).toBe('PONG');
        mkdirSync(join(longDir(), 'redis'), { recursive: true });
        writeFileSync(recordFile(), `${foreignSocket}\n`);

        const redis = await startLong();
        expect(redis.connection.path).not.toBe(foreignSocket);
        await client(redis.connection).set('vigil-test:key', 'ours');
        expect(await probe.get('vigil-test:key')).toBeNull();
        // Theirs is left as it was.
        expect(await probe.ping()).toBe('PONG');
        expect(readFileSync(recordFile(), 'utf8')).toBe(`${redis.connection.path}\n`);
      } finally {
        forceKill(foreign);
        rmSync(foreignDir, { recursive: true, force: true });
      }
    });

    it('prefers $XDG_RUNTIME_DIR, and passes over one that others can write to', async () => {
      const runtimeDir = mkdtempSync('/tmp/vigil-xdg-');
      try {
        chmodSync(runtimeDir, 0o777);
        const unsafe = await startLong({ ...plainEnv(), XDG_RUNTIME_DIR: runtimeDir });
        expect(unsafe.connection.path.startsWith('/tmp/vigil-redis-')).toBe(true);
        await unsafe.stop();

        chmodSync(runtimeDir, 0o700);
        const safe = await startLong({ ...plainEnv(), XDG_RUNTIME_DIR: runtimeDir });
        expect(safe.connection.path).toMatch(new RegExp(`^${runtimeDir}/vigil-redis-[A-Za-z0-9]{6}/redis\\.sock$`));
        expect(await client(safe.connection).ping()).toBe('PONG');
      } finally {
        await Promise.all(running.splice(0).map((r) => r.stop()));
        rmSync(runtimeDir, { recursive: true, force: true });
      }
    });
  });

  it('says in one line how to install redis-server when it is not on PATH', async () => {
    const emptyBin = mkdtempSync(join(tmpdir(), 'vigil-empty-bin-'));
    try {
      const err: unknown = await startEmbeddedRedis({ dataDir, log, env: { PATH: emptyBin } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EmbeddedRedisUnavailableError);
      expect((err as Error).message).toBe(
        'redis-server is not installed: run "sudo apt-get install -y redis-server", or set redis.url in the config to use an existing Redis',
      );
      // Nothing was created for a server that could not start.
      expect(existsSync(join(dataDir, 'redis'))).toBe(false);
      expect(process.env.PATH).toContain('/usr/bin');
    } finally {
      rmSync(emptyBin, { recursive: true, force: true });
    }
  });

  it('reports an explicit redisServerPath that does not exist as unavailable', async () => {
    const attempt = startEmbeddedRedis({ dataDir, log, redisServerPath: join(dataDir, 'no-such-redis-server') });
    await expect(attempt).rejects.toThrow(EmbeddedRedisUnavailableError);
    await expect(attempt).rejects.toThrow(/^[^\n]*no-such-redis-server[^\n]*$/);
  });

  it('puts the server output in the error when it cannot start', async () => {
    // An executable that exits at once with a message, standing in for a broken redis-server.
    const fake = join(dataDir, 'redis-server');
    writeFileSync(fake, '#!/bin/sh\necho "FATAL: bad config directive" >&2\nexit 1\n');
    chmodSync(fake, 0o755);

    await expect(startEmbeddedRedis({ dataDir, log, redisServerPath: fake })).rejects.toThrow(
      /exited during start-up[\s\S]*FATAL: bad config directive/,
    );
  });

  it('stop() finishes in a process that has nothing else to wait for (Node does not exit mid-stop)', async () => {
    const driverDir = mkdtempSync(join(tmpdir(), 'vigil-driver-'));
    try {
      // Nothing but the stop keeps this process alive: no sockets, no stdin, and the driver waits
      // out the start-up's client timers (~2 s), as a daemon that ran a while has.
      const driver = writeDriver(driverDir, [
        'await new Promise((r) => setTimeout(r, 3_000));',
        'await redis.stop();',
        "process.stdout.write('stopped\\n');",
      ]);
      const run = spawn(process.execPath, [driver, longDirOf(dataDir)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      run.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const [code] = (await once(run, 'exit')) as [number | null];
      expect(code).toBe(0);
      const [line, stopped] = out.trim().split('\n');
      expect(stopped).toBe('stopped');
      // …which includes the clean-up: the private socket directory is gone.
      const { path } = JSON.parse(line ?? '{}') as EmbeddedRedisConnection;
      expect(existsSync(dirname(path))).toBe(false);
    } finally {
      rmSync(driverDir, { recursive: true, force: true });
    }
  });

  it('does not outlive a parent that is SIGKILLed (no exit hook runs), and flushes its AOF on the way out', async () => {
    const driverDir = mkdtempSync(join(tmpdir(), 'vigil-driver-'));
    try {
      const parent = spawn(process.execPath, [writeDriver(driverDir), dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
      const [line] = (await once(createInterface({ input: parent.stdout }), 'line')) as [string];
      const connection = JSON.parse(line) as EmbeddedRedisConnection;
      const c = client(connection);
      await c.set('vigil-test:key', 'survives-the-parent');
      const redisPid = pidOf(await c.info('server'));

      parent.kill('SIGKILL');
      await once(parent, 'exit');

      expect(await waitUntilGone(redisPid, 5_000)).toBe(true);
      // It stopped, not merely vanished: the socket is free for the next start and the data is there.
      const next = await start();
      expect(await client(next.connection).get('vigil-test:key')).toBe('survives-the-parent');
    } finally {
      rmSync(driverDir, { recursive: true, force: true });
    }
  });
});
