import { X509Certificate } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { probes } from '../probes/index.js';
import type { Daemon } from '../src/daemon.js';
import { StateStore } from '../src/store/state.js';
import { Redis } from 'ioredis';
import { get, metricValue, startTestDaemon, testConfig, waitFor } from './helpers/daemon.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';
import { closedPort, startValidTlsPeer, type ValidTlsPeer } from './helpers/tls-peer.js';

/**
 * End to end with the real TLS probe: the daemon on a one-second schedule against a real TLS
 * server on loopback, through a real redis-server, read back over HTTP.
 */
let redis: TestRedisServer;
let client: Redis;
let peer: ValidTlsPeer;
let deadPort: number;
const running: Daemon[] = [];
const token = 'e2e-admin-token-0123456789-abcdefgh';

beforeAll(async () => {
  [redis, peer, deadPort] = await Promise.all([startRedisServer({ appendonly: true }), startValidTlsPeer(), closedPort()]);
  client = new Redis(redis.url);
});
afterAll(async () => {
  client.disconnect();
  await Promise.all([redis.stop(), peer.close()]);
});
afterEach(async () => {
  for (const d of running.splice(0)) await d.stop();
});

function loaded(prefix: string, endpoints: string) {
  return testConfig(
    `redis: { url: "${redis.url}", prefix: ${prefix} }
http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0, token: { env: ADMIN } } }
worker: { concurrency: 2, attempts: 1, timeoutSeconds: 10 }
shutdown: { graceSeconds: 5 }
tls:
  - name: local
    caFile: ${peer.caFile}
    endpoints: ${endpoints}
probes:
  tls-certificate-posture:
    schedule: "* * * * * *"
    params: { minDaysValid: 21 }
`,
    probes,
    undefined,
    { ADMIN: token },
  );
}

async function start(prefix: string, endpoints = `[{ host: 127.0.0.1, port: ${peer.port}, servername: localhost }]`): Promise<Daemon> {
  const { daemon } = await startTestDaemon(loaded(prefix, endpoints));
  running.push(daemon);
  return daemon;
}

describe('daemon end to end with the TLS probe', () => {
  it('measures a real TLS endpoint and publishes it in /metrics and /api/controls', async () => {
    const daemon = await start(uniquePrefix('tls-e2e'));
    const endpoint = `localhost@127.0.0.1:${peer.port}`; // servername differs from the host: part of the identity
    const metrics = await waitFor(
      async () => {
        const text = (await get(`${daemon.adminUrl}/metrics`)).text;
        return metricValue(text, 'vigil_control_status{control="tls-certificates"}') === 1 ? text : undefined;
      },
      15_000,
      'tls-certificates green in /metrics',
    );
    const leafNotAfter = Date.parse(new X509Certificate(peer.pki.leaf.pem).validTo) / 1000;
    expect(metricValue(metrics, `vigil_tls_certificate_expiry_timestamp_seconds{endpoint="${endpoint}"}`)).toBe(leafNotAfter);
    expect(metricValue(metrics, `vigil_tls_verify_ok{endpoint="${endpoint}"}`)).toBe(1);
    expect(metricValue(metrics, `vigil_tls_chain_expiry_timestamp_seconds{endpoint="${endpoint}"}`)).toBeLessThanOrEqual(leafNotAfter);
    expect(metricValue(metrics, 'vigil_probe_runs_total{probe="tls-certificate-posture",outcome="pass"}')).toBeGreaterThanOrEqual(1);

    const api = (await get(`${daemon.adminUrl}/api/controls`, token)).json() as { controls: Array<{ id: string; status: string; lastMeasuredAt: string }> };
    const tlsControl = api.controls.find((c) => c.id === 'tls-certificates');
    expect(tlsControl).toEqual(expect.objectContaining({ id: 'tls-certificates', status: 'green' }));
    expect(Date.parse(tlsControl?.lastMeasuredAt ?? '')).toBeGreaterThan(Date.now() - 10_000);
    expect(peer.servernames).toContain('localhost');
  });

  it('an unreachable endpoint makes the control unknown, never green', async () => {
    const daemon = await start(uniquePrefix('tls-dead'), `[{ host: 127.0.0.1, port: ${peer.port}, servername: localhost }, "127.0.0.1:${deadPort}"]`);
    const api = await waitFor(
      async () => {
        const body = (await get(`${daemon.adminUrl}/api/controls/tls-certificates`, token)).json() as {
          status: string;
          targets: Array<{ result: { findings: Array<{ resource: string; outcome: string; message: string }> } | null }>;
        };
        return body.targets[0]?.result ? body : undefined;
      },
      15_000,
      'a result',
    );
    expect(api.status).toBe('unknown');
    const dead = api.targets[0]?.result?.findings.find((f) => f.resource === `127.0.0.1:${deadPort}`);
    expect(dead?.outcome).toBe('unknown');
    expect(dead?.message).toMatch(/refused/i);
  });

  it('restarting the daemon loses nothing and counts nothing twice', async () => {
    const prefix = uniquePrefix('tls-restart');
    const first = await start(prefix);
    await waitFor(async () => first.recorder.recorded >= 2, 15_000, 'two recorded runs');
    await first.stop();
    running.splice(running.indexOf(first), 1);
    const state = new StateStore(client, prefix);
    const afterFirst = (await state.runCounts()).get('tls-certificate-posture|pass') ?? 0;
    expect(afterFirst).toBe(first.worker.executed);

    // Redis itself restarts too (AOF on): the record survives both.
    await redis.restart();
    const second = await start(prefix);
    await waitFor(async () => second.recorder.recorded >= 2, 15_000, 'two more recorded runs');
    await second.stop();
    running.splice(running.indexOf(second), 1);
    const total = (await state.runCounts()).get('tls-certificate-posture|pass') ?? 0;
    expect(total).toBe(first.worker.executed + second.worker.executed);
    expect(total).toBeGreaterThanOrEqual(afterFirst + 2);
    expect((await state.latestResults()).results.get('tls-certificate-posture|local')?.findings[0]?.outcome).toBe('pass');
  });

  it('two replicas on one Redis run each one-second slot exactly once', async () => {
    const prefix = uniquePrefix('tls-replicas');
    const a = await start(prefix);
    const b = await start(prefix);
    await new Promise((r) => setTimeout(r, 4_200));
    await Promise.all([a.stop(), b.stop()]);
    running.length = 0;
    const executed = a.worker.executed + b.worker.executed;
    const state = new StateStore(client, prefix);
    expect(executed).toBeGreaterThanOrEqual(3);
    expect((await state.runCounts()).get('tls-certificate-posture|pass')).toBe(executed);
    // Each executed run had its own slot: the recorded run ids are all distinct slots.
    expect(a.recorder.recorded + b.recorder.recorded).toBe(executed);
  });
});
