import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { startDaemon } from '../src/daemon.js';
import { get, LogCapture, metricValue, testConfig, waitFor } from './helpers/daemon.js';
import { fakeBehaviour, fakeProbe } from './helpers/fake-probe.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';

/** The daemon closes a day on its own clock and serves the snapshot, the feed and the streak metrics. */
const catalog = `controls:
  - id: fake-control
    title: Fake control (internal)
    public: true
    publicTitle: Fake public title
    publicDescription: Fake public description
    frameworks: { soc2: [CC6.7], iso27001: [A.8.24] }
    probes: [fake-check]
`;
const token = 'posture-admin-token-0123456789-abcdef';
let redis: TestRedisServer;
let daemon: Daemon;
let clock = new Date('2026-11-20T10:00:00Z');
let archiveDir: string;

beforeAll(async () => {
  redis = await startRedisServer();
  fakeBehaviour.set('alpha', async () => [{ resource: 'r1', outcome: 'pass', message: 'fine' }]);
  fakeBehaviour.set('beta', async () => [{ resource: 'r2', outcome: 'pass', message: 'fine' }]);
  const loaded = testConfig(
    `redis: { url: "${redis.url}", prefix: ${uniquePrefix('daemon-posture')} }
http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0, token: { env: ADMIN } } }
trust: { organization: Acme }
probes:
  fake-check: { schedule: "0 3 * * *" }
`,
    [fakeProbe],
    catalog,
    { ADMIN: token },
  );
  archiveDir = loaded.archiveDir;
  daemon = await startDaemon({ loaded, log: createLogger('warn', new LogCapture()), now: () => clock });
  await waitFor(async () => daemon.recorder.recorded >= 2, 10_000, 'the catch-up runs of 2026-11-20');
});
afterAll(async () => {
  await daemon?.stop();
  await redis.stop();
});

describe('the daemon publishes the day', () => {
  it('closes the day at 00:10 on its clock, not before', async () => {
    clock = new Date('2026-11-21T00:09:00Z');
    await daemon.tick();
    expect((await get(`${daemon.adminUrl}/api/snapshots/latest`, token)).status).toBe(404);
    clock = new Date('2026-11-21T00:15:00Z');
    await daemon.tick();
    const latest = await get(`${daemon.adminUrl}/api/snapshots/latest`, token);
    expect(latest.status).toBe(200);
    expect(latest.text).toBe(readFileSync(path.join(archiveDir, '2026-11-20.json'), 'utf8'));
    expect(latest.json()).toMatchObject({ date: '2026-11-20', counts: { green: 1, red: 0, unknown: 0 }, controls: [{ id: 'fake-control', verdict: 'green', streak: 1, greenSince: '2026-11-20' }] });
  });

  it('serves snapshots by date, as JSON, HTML and Markdown, behind the token', async () => {
    expect((await get(`${daemon.adminUrl}/api/snapshots/2026-11-20`)).status).toBe(401);
    expect((await get(`${daemon.adminUrl}/api/snapshots/2026-11-19`, token)).status).toBe(404);
    expect((await get(`${daemon.adminUrl}/api/snapshots/yesterday`, token)).status).toBe(400);
    const html = await get(`${daemon.adminUrl}/api/snapshots/2026-11-20?format=html`, token);
    expect(html.headers.get('content-type')).toContain('text/html');
    expect(html.text).toContain('Fake control (internal)');
    const md = await get(`${daemon.adminUrl}/api/snapshots/2026-11-20?format=md`, token);
    expect(md.text).toContain('fake-control');
  });

  it('serves the public feed (empty until 30 days) with CORS and ETag', async () => {
    const feed = await get(`${daemon.publicUrl}/trust/feed.json`);
    expect(feed.status).toBe(200);
    expect(feed.headers.get('access-control-allow-origin')).toBe('*');
    expect(feed.json()).toMatchObject({ organization: 'Acme', asOf: '2026-11-20', controls: [] });
    const etag = feed.headers.get('etag') as string;
    const again = await fetch(`${daemon.publicUrl}/trust/feed.json`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    const page = await get(`${daemon.publicUrl}/trust`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('Acme');
    // The admin API is not on the public listener.
    expect((await get(`${daemon.publicUrl}/api/snapshots/latest`, token)).status).toBe(404);
  });

  it('exposes streak, 30-day-green, last-green and publication metrics', async () => {
    const metrics = (await get(`${daemon.adminUrl}/metrics`)).text;
    expect(metricValue(metrics, 'vigil_control_consecutive_green_days{control="fake-control"}')).toBe(1);
    expect(metricValue(metrics, 'vigil_control_green{control="fake-control"}')).toBe(0);
    expect(metricValue(metrics, 'vigil_control_last_green_timestamp_seconds{control="fake-control"}')).toBe(Date.parse('2026-11-21T00:00:00Z') / 1000);
    expect(metricValue(metrics, 'vigil_trust_feed_controls')).toBe(0);
    expect(metricValue(metrics, 'vigil_snapshot_last_published_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(metricValue(metrics, 'vigil_email_sent_total{result="sent"}')).toBe(0);
  });
});
