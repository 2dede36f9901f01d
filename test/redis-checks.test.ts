import { Redis } from 'ioredis';
import pino, { type Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkRedisServer,
  evictionWarning,
  persistenceWarning,
  uncheckedWarning,
} from '../src/store/redis-checks.js';
import { startRedisServer, uniquePrefix, type RedisServerOptions, type TestRedisServer } from './helpers/redis-server.js';

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

function capturingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { log, lines };
}

const warnLevel = 40;

describe('checkRedisServer', () => {
  let server: TestRedisServer | undefined;
  let client: Redis | undefined;

  afterEach(async () => {
    client?.disconnect();
    client = undefined;
    await server?.stop();
    server = undefined;
  });

  async function connect(options: RedisServerOptions, user?: { username: string; password: string }): Promise<Redis> {
    server = await startRedisServer(options);
    client = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 1, ...user });
    return client;
  }

  it('warns about an evicting, non-persistent Redis and names the values', async () => {
    const redis = await connect({ maxmemoryPolicy: 'allkeys-lru', appendonly: false });
    const { log, lines } = capturingLogger();

    const result = await checkRedisServer(redis, log);

    expect(result).toEqual({
      maxmemoryPolicy: 'allkeys-lru',
      appendonly: 'no',
      warnings: [evictionWarning, persistenceWarning],
    });
    const warns = lines.filter((l) => l.level === warnLevel);
    expect(warns.map((l) => [l.msg, l.maxmemoryPolicy ?? l.appendonly])).toEqual([
      [evictionWarning, 'allkeys-lru'],
      [persistenceWarning, 'no'],
    ]);
  });

  it('warns only about eviction when AOF is on but the policy evicts', async () => {
    const redis = await connect({ maxmemoryPolicy: 'allkeys-lru', appendonly: true });
    const { log } = capturingLogger();

    expect(await checkRedisServer(redis, log)).toEqual({
      maxmemoryPolicy: 'allkeys-lru',
      appendonly: 'yes',
      warnings: [evictionWarning],
    });
  });

  it('warns only about persistence when noeviction is set but AOF is off', async () => {
    const redis = await connect({ maxmemoryPolicy: 'noeviction', appendonly: false });
    const { log } = capturingLogger();

    expect(await checkRedisServer(redis, log)).toEqual({
      maxmemoryPolicy: 'noeviction',
      appendonly: 'no',
      warnings: [persistenceWarning],
    });
  });

  it('is silent about noeviction with appendonly yes', async () => {
    const redis = await connect({ maxmemoryPolicy: 'noeviction', appendonly: true });
    const { log, lines } = capturingLogger();

    const result = await checkRedisServer(redis, log);

    expect(result).toEqual({ maxmemoryPolicy: 'noeviction', appendonly: 'yes', warnings: [] });
    expect(lines.filter((l) => l.level >= warnLevel)).toEqual([]);
    expect(lines.map((l) => l.msg)).toEqual(['redis configuration checked']);
  });

  it('does not fail when CONFIG is renamed away (unknown command), and says it could not check', async () => {
    const redis = await connect({ args: ['--rename-command', 'CONFIG', ''] });
    const { log, lines } = capturingLogger();

    const result = await checkRedisServer(redis, log);

    expect(result).toEqual({ maxmemoryPolicy: 'unknown', appendonly: 'unknown', warnings: [uncheckedWarning] });
    const warns = lines.filter((l) => l.level === warnLevel);
    expect(warns).toHaveLength(1);
    expect(warns[0]?.msg).toBe(uncheckedWarning);
    expect(JSON.stringify(warns[0]?.unreadable)).toMatch(/unknown command/i);
  });

  it('does not fail when the ACL user may not run CONFIG (NOPERM)', async () => {
    server = await startRedisServer();
    const admin = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 1 });
    try {
      await admin.call('ACL', 'SETUSER', 'vigil', 'on', '>secret', '~*', '&*', '+@all', '-config');
    } finally {
      admin.disconnect();
    }
    client = new Redis({ host: server.host, port: server.port, username: 'vigil', password: 'secret', maxRetriesPerRequest: 1 });
    const { log } = capturingLogger();

    const result = await checkRedisServer(client, log);

    expect(result).toEqual({ maxmemoryPolicy: 'unknown', appendonly: 'unknown', warnings: [uncheckedWarning] });
  });

  it('lets a connection failure propagate instead of reporting a healthy server', async () => {
    server = await startRedisServer();
    client = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    await client.ping();
    await server.stop();
    const { log } = capturingLogger();

    await expect(checkRedisServer(client, log)).rejects.toThrow();
  });
});

// The helper these tests stand on: if it silently ran the shared Redis or lost AOF data on
// restart, every integration test built on it would be wrong.
describe('startRedisServer (test helper)', () => {
  let server: TestRedisServer | undefined;

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('runs its own server on a free loopback port, in its own dir, and flushAll empties it', async () => {
    server = await startRedisServer();
    expect(server.port).not.toBe(6379);
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    const c = new Redis(server.url, { maxRetriesPerRequest: 1 });
    try {
      expect(await c.config('GET', 'dir')).toEqual(['dir', server.dir]);
      expect(await c.config('GET', 'save')).toEqual(['save', '']);
      await c.set(`${uniquePrefix()}-key`, '1');
      await server.flushAll();
      expect(await c.dbsize()).toBe(0);
    } finally {
      c.disconnect();
    }
  });

  it('restart() keeps port, dir and (with appendonly) the data', async () => {
    server = await startRedisServer({ appendonly: true });
    const { port, dir } = server;
    const before = new Redis(server.url, { maxRetriesPerRequest: 1 });
    await before.set('k', 'v');
    before.disconnect();

    await server.restart();

    expect([server.port, server.dir]).toEqual([port, dir]);
    const after = new Redis(server.url, { maxRetriesPerRequest: 1 });
    try {
      expect(await after.get('k')).toBe('v');
    } finally {
      after.disconnect();
    }
  });

  it('stop() is idempotent and the server is gone afterwards', async () => {
    server = await startRedisServer();
    const { port } = server;
    await Promise.all([server.stop(), server.stop()]);
    await server.stop();
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
    c.on('error', () => undefined);
    await expect(c.connect()).rejects.toThrow();
    c.disconnect();
  });

  it('uniquePrefix() is fresh each time and has no ":"', () => {
    const a = uniquePrefix('queue:probes');
    const b = uniquePrefix('queue:probes');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[A-Za-z0-9-]+$/);
  });
});
