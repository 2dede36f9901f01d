import { X509Certificate } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { probes } from '../probes/index.js';
import type { Daemon } from '../src/daemon.js';
import { get, metricValue, startTestDaemon, testConfig, waitFor } from './helpers/daemon.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';
import { createCertificate, createTestPki, pemChain, writeCaFile, type TestPki } from './helpers/tls-certs.js';
import { startTlsPeer, type TlsPeer } from './helpers/tls-peer.js';

/**
 * Issue 13: two virtual hosts on one host:port (told apart by SNI) are two resources with two
 * metric series. Before, both were "127.0.0.1:<port>": one finding overwrote the other's series,
 * and with the failing virtual host first, vigil_tls_verify_ok read 1 and no alert fired.
 */
let redis: TestRedisServer;
let client: Redis;
let peer: TlsPeer;
let pki: TestPki;
let caFile: string;
let badNotAfter: Date;
const running: Daemon[] = [];
const token = 'e2e-admin-token-0123456789-abcdefgh';

beforeAll(async () => {
  redis = await startRedisServer({ appendonly: true });
  client = new Redis(redis.url);
  pki = createTestPki({ hostnames: ['good.vigil.test'] });
  caFile = await writeCaFile([pki.root]);
  // The failing virtual host: a self-signed certificate (no trusted issuer), with its own expiry.
  badNotAfter = new Date(Math.floor(Date.now() / 1000 + 40 * 86_400) * 1000);
  const bad = createCertificate({ commonName: 'bad.vigil.test', keySlot: 'sni-bad', altNames: ['bad.vigil.test'], notAfter: badNotAfter });
  peer = await startTlsPeer({ cert: pki.chainPem, key: pki.keyPem, virtualHosts: { 'bad.vigil.test': { cert: pemChain(bad), key: bad.keyPem } } });
});
afterAll(async () => {
  client.disconnect();
  await Promise.all([redis.stop(), peer.close(), rm(dirname(caFile), { recursive: true, force: true })]);
});
afterEach(async () => {
  for (const d of running.splice(0)) await d.stop();
});

describe('TLS endpoints told apart by servername', () => {
  it('two SNI-distinct endpoints on one host:port give separate findings and metric series; the failing one reads 0', async () => {
    const loaded = testConfig(
      `redis: { url: "${redis.url}", prefix: ${uniquePrefix('tls-sni')} }
http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0, token: { env: ADMIN } } }
worker: { concurrency: 2, attempts: 1, timeoutSeconds: 10 }
shutdown: { graceSeconds: 5 }
tls:
  - name: vhosts
    caFile: ${caFile}
    endpoints:
      - { host: 127.0.0.1, port: ${peer.port}, servername: bad.vigil.test }
      - { host: 127.0.0.1, port: ${peer.port}, servername: good.vigil.test }
probes:
  tls-certificate-posture:
    schedule: "* * * * * *"
`,
      probes,
      undefined,
      { ADMIN: token },
    );
    const bad = `bad.vigil.test@127.0.0.1:${peer.port}`;
    const good = `good.vigil.test@127.0.0.1:${peer.port}`;
    expect(loaded.config.tls[0]?.endpoints.map((e) => e.name)).toEqual([bad, good]);
    const { daemon } = await startTestDaemon(loaded);
    running.push(daemon);

    const metrics = await waitFor(
      async () => {
        const text = (await get(`${daemon.adminUrl}/metrics`)).text;
        return metricValue(text, `vigil_tls_verify_ok{endpoint="${good}"}`) !== undefined ? text : undefined;
      },
      15_000,
      'vigil_tls_verify_ok for the good virtual host',
    );
    expect(metricValue(metrics, `vigil_tls_verify_ok{endpoint="${bad}"}`)).toBe(0);
    expect(metricValue(metrics, `vigil_tls_verify_ok{endpoint="${good}"}`)).toBe(1);
    expect(metricValue(metrics, `vigil_tls_certificate_expiry_timestamp_seconds{endpoint="${bad}"}`)).toBe(badNotAfter.getTime() / 1000);
    expect(metricValue(metrics, `vigil_tls_certificate_expiry_timestamp_seconds{endpoint="${good}"}`)).toBe(Date.parse(new X509Certificate(pki.leaf.pem).validTo) / 1000);
    expect(metricValue(metrics, `vigil_tls_verify_ok{endpoint="127.0.0.1:${peer.port}"}`)).toBeUndefined();
    expect(metricValue(metrics, 'vigil_control_status{control="tls-certificates"}')).toBe(0);

    const api = (await get(`${daemon.adminUrl}/api/controls/tls-certificates`, token)).json() as {
      targets: Array<{ result?: { findings: Array<{ resource: string; outcome: string; message: string }> } }>;
    };
    const findings = api.targets[0]?.result?.findings ?? [];
    expect(findings.map((f) => [f.resource, f.outcome])).toEqual([
      [bad, 'fail'],
      [good, 'pass'],
    ]);
    expect(findings[0]?.message).toContain('self-signed');
    // Each handshake sent its own SNI, and each got its own certificate.
    expect(new Set(peer.servernames)).toEqual(new Set(['bad.vigil.test', 'good.vigil.test']));
  }, 30_000);
});
