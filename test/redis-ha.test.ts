/**
 * Redis that survives a machine: vigil against a Sentinel group whose primary is killed mid-run, a
 * 3-primary Redis Cluster, and a TLS Redis with a private CA and an ACL user — real servers
 * (redis-server, `redis-server --sentinel`, `redis-cli --cluster create`) on loopback.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon.js';
import { addDays, dayOf } from '../src/posture/days.js';
import { RedisUnavailableError } from '../src/queue/connection.js';
import { forceKill, spawnTiedToParent } from '../src/store/embedded-redis.js';
import { verifyArchive } from '../src/store/archive.js';
import { StateStore } from '../src/store/state.js';
import { startTestDaemon, testConfig, waitFor, type LogCapture } from './helpers/daemon.js';
import { fakeBehaviour, fakeProbe } from './helpers/fake-probe.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';
import { createTestPki } from './helpers/tls-certs.js';

const run = promisify(execFile);
const catalog = `controls:
  - id: fake-control
    title: Fake control
    publicTitle: Fake
    publicDescription: Fake control for tests
    frameworks: { soc2: [CC6.7] }
    probes: [fake-check]
`;
const pass = async () => [{ resource: 'r1', outcome: 'pass' as const, message: 'fine' }];
const adminEnv = { TEST_ADMIN_TOKEN: 'admin-token-for-tests-0123456789-abc' };

const servers: TestRedisServer[] = [];
const children: ChildProcess[] = [];
const daemons: Daemon[] = [];
const clients: Array<{ disconnect(): void }> = [];

beforeEach(() => {
  fakeBehaviour.clear();
  fakeBehaviour.set('alpha', pass).set('beta', pass);
});
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  for (const c of clients.splice(0)) c.disconnect();
  for (const c of children.splice(0)) forceKill(c);
  for (const s of servers.splice(0)) await s.stop();
});
afterAll(() => {
  for (const c of children) forceKill(c);
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function server(args: string[] = [], appendonly = false): Promise<TestRedisServer> {
  const s = await startRedisServer({ args, appendonly });
  servers.push(s);
  return s;
}

function config(redisYaml: string, schedule = '* * * * * *', env: NodeJS.ProcessEnv = {}) {
  return testConfig(
    `redis: ${redisYaml}
http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0, token: { env: TEST_ADMIN_TOKEN } } }
worker: { concurrency: 2, attempts: 3, backoffSeconds: 0.05, timeoutSeconds: 5 }
shutdown: { graceSeconds: 2 }
probes:
  fake-check: { schedule: "${schedule}" }
`,
    [fakeProbe],
    catalog,
    { ...adminEnv, ...env },
  );
}

async function daemon(loaded: ReturnType<typeof config>): Promise<{ daemon: Daemon; logs: LogCapture }> {
  const started = await startTestDaemon(loaded);
  daemons.push(started.daemon);
  return started;
}

async function passes(d: Daemon): Promise<number> {
  return (await d.state.runCounts()).get('fake-check|pass') ?? 0;
}

/** No result counted twice, none lost between the queues: every run counted is one slot in the replay guard, every completed run has its result recorded. */
async function assertLossless(redis: Redis, prefix: string): Promise<void> {
  const counts = await redis.hgetall(`${prefix}:runs`);
  const counted = Object.values(counts).reduce((a, b) => a + Number(b), 0);
  const state = new StateStore(redis, prefix);
  expect(counted).toBeGreaterThan(0);
  expect(await state.recordedRuns()).toBe(counted);
  const completedRuns = await redis.zrange(`${prefix}:probes:completed`, 0, -1);
  for (const runId of completedRuns) {
    // A run is complete only once its result is in the results queue; the recorder drained it before stopping.
    const [probe = '', target = '', slotMs = ''] = runId.split('|');
    expect(await state.isRecorded(probe, target, new Date(Number(slotMs))), `result of ${runId}`).toBe(true);
  }
}

describe('redis config keys', () => {
  it.each([
    ['url and cluster together', '{ url: "redis://127.0.0.1:1", cluster: ["127.0.0.1:2"] }', 'give one of url, sentinels or cluster'],
    ['sentinels without sentinelName', '{ sentinels: ["127.0.0.1:26379"] }', 'sentinels and sentinelName go together'],
    ['a node that is not host:port', '{ cluster: ["127.0.0.1"] }', 'expected host:port'],
    ['a client certificate without its key', '{ url: "rediss://127.0.0.1:1", tls: { caFile: ca.pem, certFile: c.pem } }', 'give certFile and keyFile together'],
  ])('refuses %s', (_name, yaml, message) => {
    expect(() => config(yaml)).toThrow(message);
  });

  it('uses the hash tag {prefix} for every key in a cluster, the prefix as is elsewhere', async () => {
    const { keyPrefix } = await import('../src/queue/connection.js');
    expect(keyPrefix({ prefix: 'vigil', cluster: [{ host: '127.0.0.1', port: 7000 }] })).toBe('{vigil}');
    expect(keyPrefix({ prefix: 'vigil' })).toBe('vigil');
  });
});

describe('TLS Redis with a private CA and an ACL user', () => {
  it('connects over TLS as the ACL user, runs the pipeline; without the CA it refuses to start', async () => {
    const pki = createTestPki();
    const dir = mkdtempSync(path.join(tmpdir(), 'vigil-redis-tls-'));
    const files = { cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key'), ca: path.join(dir, 'ca.pem') };
    writeFileSync(files.cert, pki.chainPem);
    writeFileSync(files.key, pki.keyPem, { mode: 0o600 });
    writeFileSync(files.ca, pki.caPem);
    const tlsPort = await freePort();
    const s = await server(['--tls-port', String(tlsPort), '--tls-cert-file', files.cert, '--tls-key-file', files.key, '--tls-ca-cert-file', files.ca, '--tls-auth-clients', 'no']);
    const admin = new Redis(s.url);
    clients.push(admin);
    await admin.call('ACL', 'SETUSER', 'vigil', 'on', '>redis-acl-pass-0123', '~*', '&*', '+@all');

    const prefix = uniquePrefix('tls');
    const env = { REDIS_PW: 'redis-acl-pass-0123' };
    const loaded = config(`{ url: "rediss://localhost:${tlsPort}", prefix: ${prefix}, username: vigil, password: { env: REDIS_PW }, tls: { caFile: ${files.ca} } }`, '0 3 * * *', env);
    const { daemon: d } = await daemon(loaded);
    await waitFor(async () => (await passes(d)) === 2, 15_000, 'both catch-up runs recorded over TLS');
    const list = String(await admin.call('CLIENT', 'LIST'));
    const ours = list.split('\n').filter((l) => l.includes('name=vigil-'));
    expect(ours.length).toBeGreaterThanOrEqual(2);
    for (const line of ours) expect(line).toContain('user=vigil');

    // The same server without the private CA: its certificate is not trusted, so no connection.
    const untrusted = config(`{ url: "rediss://localhost:${tlsPort}", prefix: ${prefix}, username: vigil, password: { env: REDIS_PW } }`, '0 3 * * *', env);
    await expect(startTestDaemon(untrusted)).rejects.toBeInstanceOf(RedisUnavailableError);
  }, 60_000);
});

describe('Redis Sentinel', () => {
  it('the primary is killed mid-run: failover, nothing lost or counted twice, the day closed once by two replicas', async () => {
    const primary = await server([], true);
    const replica = await server(['--replicaof', '127.0.0.1', String(primary.port)], true);
    const sentinelPorts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const dir = mkdtempSync(path.join(tmpdir(), 'vigil-sentinel-'));
      const conf = path.join(dir, 'sentinel.conf');
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor vigilmain 127.0.0.1 ${primary.port} 2`,
          'sentinel down-after-milliseconds vigilmain 1000',
          'sentinel failover-timeout vigilmain 10000',
          'sentinel parallel-syncs vigilmain 1',
          '',
        ].join('\n'),
      );
      children.push(spawnTiedToParent('redis-server', [conf, '--sentinel'], { stdout: 'ignore' }));
      sentinelPorts.push(port);
    }
    const sentinel = new Redis({ host: '127.0.0.1', port: sentinelPorts[0]!, lazyConnect: false, retryStrategy: () => 100 });
    clients.push(sentinel);
    sentinel.on('error', () => undefined);
    // Every sentinel knows the replica (a failover candidate) and the other sentinels (a quorum).
    await waitFor(
      async () => {
        const replicas = (await sentinel.call('SENTINEL', 'REPLICAS', 'vigilmain').catch(() => [])) as unknown[];
        const others = (await sentinel.call('SENTINEL', 'SENTINELS', 'vigilmain').catch(() => [])) as unknown[];
        return replicas.length === 1 && others.length === 2;
      },
      30_000,
      'the sentinel group to form',
    );

    const prefix = uniquePrefix('sentinel');
    const loaded = config(`{ sentinels: [${sentinelPorts.map((p) => `"127.0.0.1:${p}"`).join(', ')}], sentinelName: vigilmain, prefix: ${prefix} }`);
    const a = await daemon(loaded);
    const b = await daemon(loaded);
    await waitFor(async () => (await passes(a.daemon)) >= 4, 15_000, 'runs recorded before the failover');

    await primary.stop();
    await waitFor(
      async () => {
        const addr = (await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'vigilmain').catch(() => null)) as string[] | null;
        return addr?.[1] === String(replica.port);
      },
      30_000,
      'the sentinels to promote the replica',
    );
    const atFailover = await passes(a.daemon).catch(() => 0);
    await waitFor(async () => (await passes(a.daemon).catch(() => 0)) >= atFailover + 4, 30_000, 'runs recorded on the new primary');

    // The record started yesterday: both replicas' periodic passes now race to close it.
    const direct = new Redis(replica.url);
    clients.push(direct);
    const yesterday = addDays(dayOf(new Date(), 'UTC'), -1);
    await direct.set(`${prefix}:first-day`, yesterday);
    await Promise.all([a.daemon.tick(), b.daemon.tick(), a.daemon.tick()]);
    expect(await direct.get(`${prefix}:snapshot-latest`)).toBe(yesterday);
    const closes = [...a.logs.lines, ...b.logs.lines].filter((l) => l.includes('"msg":"day closed"'));
    expect(closes).toHaveLength(1);
    expect((await verifyArchive(loaded.archiveDir)).ok).toBe(true);

    for (const d of daemons.splice(0)) await d.stop();
    await assertLossless(direct, prefix);
  }, 120_000);
});

describe('Redis Cluster', () => {
  it('three primaries: the pipeline runs and a day closes, every key in one slot', async () => {
    const nodes: TestRedisServer[] = [];
    for (let i = 0; i < 3; i++) nodes.push(await server(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000']));
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (const n of nodes) {
      const c = new Redis(n.url);
      clients.push(c);
      await waitFor(async () => String(await c.call('CLUSTER', 'INFO')).includes('cluster_state:ok'), 20_000, 'cluster_state:ok');
    }

    const prefix = uniquePrefix('cluster');
    const tagged = `{${prefix}}`;
    const cluster = new Cluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
    clients.push(cluster);
    const yesterday = addDays(dayOf(new Date(), 'UTC'), -1);
    // The record started yesterday: the daemon closes that day at start.
    await cluster.set(`${tagged}:first-day`, yesterday);

    const loaded = config(`{ cluster: [${nodes.map((n) => `"127.0.0.1:${n.port}"`).join(', ')}], prefix: ${prefix} }`);
    const { daemon: d, logs } = await daemon(loaded);
    await waitFor(async () => (await passes(d)) >= 6, 20_000, 'runs recorded in the cluster');
    expect(await cluster.get(`${tagged}:snapshot-latest`)).toBe(yesterday);
    expect(logs.lines.filter((l) => l.includes('"msg":"day closed"'))).toHaveLength(1);
    expect((await verifyArchive(loaded.archiveDir)).ok).toBe(true);
    await d.tick();
    await d.stop();
    daemons.splice(0);

    // One slot: all of vigil's and BullMQ's keys sit on one primary.
    const sizes = await Promise.all(
      nodes.map(async (n) => {
        const c = new Redis(n.url);
        clients.push(c);
        return Number(await c.dbsize());
      }),
    );
    expect(sizes.filter((s) => s > 0)).toHaveLength(1);
    const owner = nodes[sizes.findIndex((s) => s > 0)]!;
    const direct = new Redis(owner.url);
    clients.push(direct);
    const keys = await direct.keys('*');
    expect(keys.length).toBeGreaterThan(10);
    for (const k of keys) expect(k.startsWith(`${tagged}:`), k).toBe(true);
    await assertLossless(direct, tagged);
  }, 120_000);
});
