import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon.js';
import type { ProbeResult } from '../src/probe/contract.js';
import { PermissionError, TransientError } from '../src/probe/errors.js';
import pino from 'pino';
import { PROBES_QUEUE, RESULTS_QUEUE, type ProbeJobData } from '../src/queue/connection.js';
import { RedisRunCoordinator } from '../src/queue/run-coordinator.js';
import { Scheduler } from '../src/queue/scheduler.js';
import { configuredUnits, type ScheduledUnit } from '../src/probe/units.js';
import { StateStore } from '../src/store/state.js';
import { get, metricValue, startTestDaemon, testConfig, waitFor, type LogCapture } from './helpers/daemon.js';
import { fakeBehaviour, fakeProbe } from './helpers/fake-probe.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';

const catalog = `controls:
  - id: fake-control
    title: Fake control
    publicTitle: Fake
    publicDescription: Fake control for tests
    frameworks: { soc2: [CC6.7] }
    probes: [fake-check]
`;

const pass = async () => [{ resource: 'r1', outcome: 'pass' as const, message: 'fine' }];
const fail = async () => [{ resource: 'r2', outcome: 'fail' as const, message: 'r2 is broken: fix the setting' }];

const silent = pino({ level: 'silent' });
let redis: TestRedisServer;
let client: Redis;
const running: Daemon[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client.disconnect();
  await redis.stop();
});
beforeEach(() => fakeBehaviour.clear());
afterEach(async () => {
  for (const d of running.splice(0)) await d.stop();
});

function config(prefix: string, schedule: string, extra = '') {
  const env = { TEST_ADMIN_TOKEN: 'admin-token-for-tests-0123456789-abc' };
  return testConfig(
    `redis: { url: "${redis.url}", prefix: ${prefix} }
http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0, token: { env: TEST_ADMIN_TOKEN } } }
worker: { concurrency: 2, attempts: 3, backoffSeconds: 0.05, timeoutSeconds: 5 }
shutdown: { graceSeconds: 2 }
probes:
  fake-check: { schedule: "${schedule}" }
${extra}`,
    [fakeProbe],
    catalog,
    env,
  );
}

async function start(prefix: string, schedule: string, extra = ''): Promise<{ daemon: Daemon; logs: LogCapture }> {
  const started = await startTestDaemon(config(prefix, schedule, extra));
  running.push(started.daemon);
  return started;
}

async function latest(daemon: Daemon, target: string): Promise<ProbeResult | undefined> {
  return (await daemon.state.latestResults()).results.get(`fake-check|${target}`);
}

describe('pipeline: scheduler → probes queue → worker → results queue → recorder → state', () => {
  it('runs stale probes at start, records results, and serves status, metrics and the API', async () => {
    fakeBehaviour.set('alpha', pass).set('beta', fail);
    const { daemon } = await start(uniquePrefix('catchup'), '0 3 * * *');
    await waitFor(async () => (await latest(daemon, 'alpha')) && (await latest(daemon, 'beta')), 10_000, 'both results');

    const alpha = await latest(daemon, 'alpha');
    expect(alpha?.findings).toEqual([{ resource: 'r1', outcome: 'pass', message: 'fine' }]);
    // The catch-up run belongs to the most recent 03:00 slot.
    expect(alpha?.scheduledFor).toMatch(/T03:00:00\.000Z$/);

    const unauth = await get(`${daemon.adminUrl}/api/controls`);
    expect(unauth.status).toBe(401);
    const wrong = await get(`${daemon.adminUrl}/api/controls`, 'admin-token-for-tests-0123456789-abd');
    expect(wrong.status).toBe(401);
    const api = await get(`${daemon.adminUrl}/api/controls`, 'admin-token-for-tests-0123456789-abc');
    expect(api.status).toBe(200);
    const body = api.json() as { controls: Array<{ id: string; status: string; reasons: string[] }> };
    expect(body.controls).toHaveLength(1);
    expect(body.controls[0]).toMatchObject({ id: 'fake-control', status: 'red', reasons: ['fake-check/beta: 1 failing (r2)'] });

    const one = await get(`${daemon.adminUrl}/api/controls/fake-control`, 'admin-token-for-tests-0123456789-abc');
    const detail = one.json() as { targets: Array<{ target: string; result: ProbeResult }> };
    expect(detail.targets.find((t) => t.target === 'beta')?.result.findings[0]?.message).toBe('r2 is broken: fix the setting');

    const metrics = (await get(`${daemon.adminUrl}/metrics`)).text;
    expect(metricValue(metrics, 'vigil_control_status{control="fake-control"}')).toBe(0);
    expect(metricValue(metrics, 'vigil_probe_runs_total{probe="fake-check",outcome="pass"}')).toBe(1);
    expect(metricValue(metrics, 'vigil_probe_runs_total{probe="fake-check",outcome="fail"}')).toBe(1);
    expect(metricValue(metrics, 'vigil_probe_duration_seconds_count{probe="fake-check"}')).toBe(2);
    expect(metricValue(metrics, 'vigil_probe_last_judged_timestamp_seconds{probe="fake-check",target="alpha"}')).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(metricValue(metrics, 'vigil_queue_jobs{queue="probes",state="completed"}')).toBe(2);

    expect((await get(`${daemon.publicUrl}/healthz`)).status).toBe(200);
    expect((await get(`${daemon.adminUrl}/readyz`)).status).toBe(200);
    expect((await get(`${daemon.publicUrl}/metrics`)).status).toBe(404);
  });

  it('does not run again on restart while results are fresh, and keeps its counts', async () => {
    fakeBehaviour.set('alpha', pass).set('beta', pass);
    const prefix = uniquePrefix('restart');
    const first = await start(prefix, '0 3 * * *');
    await waitFor(async () => (await first.daemon.state.runCounts()).get('fake-check|pass') === 2, 10_000, 'two passing runs');
    await first.daemon.stop();

    const second = await start(prefix, '0 3 * * *');
    await new Promise((r) => setTimeout(r, 500));
    expect(second.daemon.worker.executed).toBe(0);
    expect((await second.daemon.state.runCounts()).get('fake-check|pass')).toBe(2);
    const metrics = (await get(`${second.daemon.adminUrl}/metrics`)).text;
    expect(metricValue(metrics, 'vigil_control_status{control="fake-control"}')).toBe(1);
  });

  it('retries a transient failure and records the eventual success once', async () => {
    let calls = 0;
    fakeBehaviour.set('alpha', async () => {
      calls++;
      if (calls < 3) throw new TransientError('502 from the source');
      return pass();
    });
    fakeBehaviour.set('beta', pass);
    const { daemon } = await start(uniquePrefix('retry'), '0 3 * * *');
    await waitFor(async () => (await latest(daemon, 'alpha'))?.findings.length === 1, 10_000, 'alpha result');
    expect(calls).toBe(3);
    expect((await daemon.state.runCounts()).get('fake-check|pass')).toBe(2);
    expect((await daemon.state.runCounts()).get('fake-check|error')).toBeUndefined();
  });

  it('records the last failed attempt as an error and the control goes unknown', async () => {
    fakeBehaviour.set('alpha', async () => {
      throw new TransientError('503 Service Unavailable');
    });
    fakeBehaviour.set('beta', async () => {
      throw new PermissionError('403: the token may not read admin settings');
    });
    const { daemon } = await start(uniquePrefix('errors'), '0 3 * * *');
    await waitFor(async () => (await latest(daemon, 'alpha')) && (await latest(daemon, 'beta')), 10_000, 'both results');
    expect((await latest(daemon, 'alpha'))?.error).toEqual({ class: 'TransientError', message: '503 Service Unavailable' });
    expect((await latest(daemon, 'beta'))?.error).toEqual({ class: 'PermissionError', message: '403: the token may not read admin settings' });
    const { controls } = await daemon.posture();
    expect(controls[0]?.status).toBe('unknown');
    expect((await daemon.state.runCounts()).get('fake-check|error')).toBe(2);
  });

  it('keeps a secret out of logs, results and metrics', async () => {
    const secret = 'admin-token-for-tests-0123456789-abc';
    fakeBehaviour.set('alpha', async () => {
      throw new PermissionError(`request with token ${secret} was refused`);
    });
    fakeBehaviour.set('beta', pass);
    const { daemon, logs } = await start(uniquePrefix('secrets'), '0 3 * * *');
    await waitFor(async () => (await latest(daemon, 'alpha')) && (await latest(daemon, 'beta')), 10_000, 'both results');
    await get(`${daemon.adminUrl}/api/controls`, secret);
    const metrics = (await get(`${daemon.adminUrl}/metrics`)).text;
    const stored = JSON.stringify(await latest(daemon, 'alpha'));
    expect(stored).toContain('request with token [REDACTED] was refused');
    expect(logs.text).toContain('[REDACTED]');
    expect(logs.text.length).toBeGreaterThan(500);
    for (const text of [logs.text, stored, metrics]) expect(text).not.toContain(secret);
  });

  it('two replicas on one Redis run each slot exactly once', async () => {
    fakeBehaviour.set('alpha', pass).set('beta', pass);
    const prefix = uniquePrefix('replicas');
    const a = await start(prefix, '* * * * * *');
    const b = await start(prefix, '* * * * * *');
    await new Promise((r) => setTimeout(r, 4_500));
    await a.daemon.stop();
    await b.daemon.stop();
    const state = new StateStore(client, prefix);
    const counts = await state.runCounts();
    const executed = a.daemon.worker.executed + b.daemon.worker.executed;
    const recorded = a.daemon.recorder.recorded + b.daemon.recorder.recorded;
    // 2 targets × ~4 one-second slots, plus possibly the catch-up slot.
    expect(executed).toBeGreaterThanOrEqual(6);
    expect(recorded).toBe(executed);
    expect(counts.get('fake-check|pass')).toBe(executed);
    // One coordinator claim per fired slot.
    const claims = await client.keys(`${prefix}:cron:*`);
    expect(claims.length).toBeGreaterThanOrEqual(6);
  });

  it('a result delivered twice (crash between write and ack) is counted once', async () => {
    fakeBehaviour.set('alpha', pass).set('beta', pass);
    const prefix = uniquePrefix('dupes');
    const { daemon } = await start(prefix, '0 3 * * *');
    await waitFor(async () => (await daemon.state.runCounts()).get('fake-check|pass') === 2, 10_000, 'two runs');
    const result = (await latest(daemon, 'alpha')) as ProbeResult;
    const q = new Queue(RESULTS_QUEUE, { connection: client, prefix });
    // The same runId under new job ids, as a replayed delivery would be.
    await q.add('result', result, { jobId: 'replay-1' });
    await q.add('result', result, { jobId: 'replay-2' });
    await waitFor(async () => ((await q.getJobCounts('completed')).completed ?? 0) >= 4, 10_000, 'replays processed');
    await q.close();
    expect((await daemon.state.runCounts()).get('fake-check|pass')).toBe(2);
  });

  it('first guard alone: the Redis run coordinator lets one replica claim a slot', async () => {
    const prefix = uniquePrefix('coord');
    const other = new Redis(redis.url);
    const a = new RedisRunCoordinator(client, prefix);
    const b = new RedisRunCoordinator(other, prefix);
    const claims = await Promise.all([a.shouldRun('fake-check|alpha:2026-11-21T10:00:00.000Z', 1000), b.shouldRun('fake-check|alpha:2026-11-21T10:00:00.000Z', 1000)]);
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(await b.shouldRun('fake-check|alpha:2026-11-21T10:00:01.000Z', 1000)).toBe(true);
    other.disconnect();
  });

  it('second guard alone: the slot job id makes a second enqueue of a slot a no-op', async () => {
    const loaded = config(uniquePrefix('jobid'), '0 3 * * *');
    const prefix = loaded.config.redis.prefix;
    const queue = new Queue<ProbeJobData>(PROBES_QUEUE, { connection: client, prefix });
    const unit = configuredUnits(loaded)[0] as ScheduledUnit;
    const make = () =>
      new Scheduler({ units: [unit], queue, coordinator: new RedisRunCoordinator(client, prefix), state: new StateStore(client, prefix), timezone: 'UTC', attempts: 1, backoffMs: 0, log: silent });
    const slot = new Date('2026-11-21T03:00:00Z');
    await Promise.all([make().enqueue(unit, slot, 'scheduled'), make().enqueue(unit, slot, 'catch-up')]);
    expect(await make().enqueue(unit, slot, 'scheduled')).toBe(false);
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 1 });
    await queue.close();
  });

  it('a catch-up after midnight runs as today\'s, never filed under the day it missed', async () => {
    const loaded = config(uniquePrefix('midnight'), '0 3 * * *');
    const prefix = loaded.config.redis.prefix;
    const queue = new Queue<ProbeJobData>(PROBES_QUEUE, { connection: client, prefix });
    const scheduler = new Scheduler({ units: configuredUnits(loaded), queue, coordinator: new RedisRunCoordinator(client, prefix), state: new StateStore(client, prefix), timezone: 'UTC', attempts: 1, backoffMs: 0, log: silent });
    // Down since before yesterday's 03:00 run; back at 00:05.
    expect(await scheduler.catchUp(new Date('2026-11-21T00:05:00Z'))).toBe(2);
    const jobs = await queue.getJobs(['waiting']);
    expect(jobs.map((j) => j.data.scheduledFor)).toEqual(['2026-11-21T00:00:00.000Z', '2026-11-21T00:00:00.000Z']);
    // Later the same day, the most recent slot is today's own.
    expect(await scheduler.catchUp(new Date('2026-11-21T05:00:00Z'))).toBe(2);
    expect((await queue.getJobs(['waiting'])).map((j) => j.data.scheduledFor).filter((d) => d.endsWith('T03:00:00.000Z'))).toHaveLength(2);
    await queue.close();
  });

  it('an older result arriving late does not replace a newer one', async () => {
    const prefix = uniquePrefix('order');
    const state = new StateStore(client, prefix);
    const base = { probe: 'fake-check', target: 'alpha', startedAt: '2026-11-21T10:00:00.000Z', findings: [] };
    const newer: ProbeResult = { ...base, runId: 'n', scheduledFor: '2026-11-21T10:15:00.000Z', finishedAt: '2026-11-21T10:15:01.000Z' };
    const older: ProbeResult = { ...base, runId: 'o', scheduledFor: '2026-11-21T10:00:00.000Z', finishedAt: '2026-11-21T10:16:00.000Z' };
    expect(await state.record(newer)).toBe(true);
    expect(await state.record(older)).toBe(true);
    expect(await state.record(older)).toBe(false);
    expect((await state.latestResults()).results.get('fake-check|alpha')?.runId).toBe('n');
    expect((await state.runCounts()).get('fake-check|unknown')).toBe(2);
  });
});
