import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probes } from '../probes/index.js';
import { ConfigError, loadConfigText, type LoadedConfig } from '../src/config/load.js';
import type { ProbeResult } from '../src/probe/contract.js';
import { configuredUnits, evidenceFor } from '../src/probe/units.js';
import { controlCadence } from '../src/posture/feed.js';
import { Snapshot } from '../src/posture/snapshot-types.js';
import { controlStatus } from '../src/posture/status.js';
import { PROBES_QUEUE, type ProbeJobData } from '../src/queue/connection.js';
import { RedisRunCoordinator } from '../src/queue/run-coordinator.js';
import { Scheduler } from '../src/queue/scheduler.js';
import { verifyArchive } from '../src/store/archive.js';
import { DayCloser } from '../src/store/day-close.js';
import { StateStore } from '../src/store/state.js';
import { testConfig } from './helpers/daemon.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';

/**
 * Per-target schedules, on the one probe that offers them: each `iac:` workspace may carry its own
 * `schedule`, which then decides when it is fired, when it is stale, and the cadence its snapshot
 * states. The rest of the core is generic (ProbeTarget.schedule).
 */
const silent = pino({ level: 'silent' });
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let redis: TestRedisServer;
let client: Redis;
const tmp: string[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
  for (const dir of tmp) rmSync(dir, { recursive: true, force: true });
});

/** Three planFile workspaces (nothing runs in these tests): hourly, weekly, and one on the probe's schedule. */
function workspaces(prefix: string, extra = ''): LoadedConfig {
  const archiveDir = mkdtempSync(path.join(tmpdir(), 'vigil-iac-schedule-'));
  tmp.push(archiveDir);
  return testConfig(
    `redis: { url: "${redis.url}", prefix: ${prefix} }
archive: { dir: ${archiveDir} }
iac:
  - { name: hourly, planFile: /nonexistent/hourly.json, schedule: "7 * * * *" }
  - { name: weekly, planFile: /nonexistent/weekly.json, schedule: "0 3 * * 1" }
  - { name: daily, planFile: /nonexistent/daily.json }
${extra}`,
    probes,
  );
}

function passed(target: string, finishedAt: Date): ProbeResult {
  const at = finishedAt.toISOString();
  return {
    runId: `iac-drift|${target}|${finishedAt.getTime()}`,
    probe: 'iac-drift',
    target,
    scheduledFor: at,
    startedAt: at,
    finishedAt: at,
    findings: [{ resource: target, outcome: 'pass', message: 'in sync' }],
  };
}

describe('a workspace schedule', () => {
  it('gives each workspace its own schedule and interval, and staleness uses each one\'s', () => {
    const loaded = workspaces(uniquePrefix('iac-units'));
    const units = configuredUnits(loaded).filter((u) => u.configured.probe.id === 'iac-drift');
    expect(units.map((u) => [u.target.name, u.schedule, u.intervalMs])).toEqual([
      ['hourly', '7 * * * *', HOUR],
      ['weekly', '0 3 * * 1', 7 * DAY],
      ['daily', '41 4 * * *', DAY],
    ]);

    const now = new Date('2026-11-23T10:30:00Z');
    const judge = (ageMs: number) => {
      const latest = new Map(units.map((u) => [`iac-drift|${u.target.name}`, passed(u.target.name, new Date(now.getTime() - ageMs))]));
      const control = loaded.catalog.controls.find((c) => c.id === 'infrastructure-matches-code')!;
      const state = controlStatus({ id: control.id, probes: ['iac-drift'] }, evidenceFor(loaded, units, latest), now);
      return Object.fromEntries(state.targets.map((t) => [t.target, t.stale]));
    };
    // 3 hours old: past 2 × 1 h for the hourly workspace only.
    expect(judge(3 * HOUR)).toEqual({ hourly: true, weekly: false, daily: false });
    // 3 days old: past 2 × 1 day, within 2 × 1 week.
    expect(judge(3 * DAY)).toEqual({ hourly: true, weekly: false, daily: true });
  });

  it('a 6-field schedule with seconds is accepted; a bad one is a config error naming iac[i].schedule, a long one is not echoed', () => {
    const file = path.join(tmpdir(), 'vigil-iac-schedule.yaml');
    const problems = (yaml: string): string[] => {
      try {
        loadConfigText(yaml, file, probes, {});
        return [];
      } catch (err) {
        if (err instanceof ConfigError) return err.problems;
        throw err;
      }
    };
    expect(problems('iac:\n  - { name: prod, planFile: /p.json, schedule: "*/2 * * * * *" }\n')).toEqual([]);
    const bad = problems('iac:\n  - { name: ok, planFile: /p.json }\n  - { name: prod, planFile: /p.json, schedule: "*/99 * * *" }\n');
    expect(bad).toHaveLength(1);
    expect(bad[0]?.startsWith(`${file}: iac[1].schedule: invalid cron expression "*/99 * * *"`)).toBe(true);
    const both = problems('iac:\n  - { name: prod, planFile: /p.json, schedule: "0 3 1 * 1" }\n');
    expect(both).toEqual([`${file}: iac[0].schedule: "0 3 1 * 1" restricts both day-of-month and day-of-week; cron dialects disagree on that, use one`]);
    const long = problems(`iac:\n  - { name: prod, planFile: /p.json, schedule: "${'9'.repeat(300)}" }\n`);
    expect(long).toEqual([`${file}: iac[0].schedule: expected a cron expression of 5 or 6 fields (printable ASCII, at most 100 characters)`]);
  });
});

describe('the scheduler with workspace schedules', () => {
  it('fires each workspace on its own schedule, not the probe\'s', async () => {
    const loaded = workspaces(
      uniquePrefix('iac-fire'),
      `  - { name: fast, planFile: /nonexistent/fast.json, schedule: "* * * * * *" }
  - { name: even, planFile: /nonexistent/even.json, schedule: "*/2 * * * * *" }
probes:
  iac-drift: { schedule: "0 0 1 1 *" }
`,
    );
    const prefix = loaded.config.redis.prefix;
    const queue = new Queue<ProbeJobData>(PROBES_QUEUE, { connection: client, prefix });
    const units = configuredUnits(loaded).filter((u) => u.configured.probe.id === 'iac-drift');
    const scheduler = new Scheduler({ units, queue, coordinator: new RedisRunCoordinator(client, prefix), state: new StateStore(client, prefix), timezone: 'UTC', attempts: 1, backoffMs: 0, log: silent });
    try {
      scheduler.start();
      await new Promise((r) => setTimeout(r, 4_500));
    } finally {
      await scheduler.stop();
    }
    const jobs = await queue.getJobs(['waiting', 'delayed', 'active']);
    await queue.close();
    const seconds = (target: string) => jobs.filter((j) => j.data.target === target).map((j) => new Date(j.data.scheduledFor).getUTCSeconds());
    // Every second: ~4 slots, odd ones among them (so not on the even schedule).
    expect(seconds('fast').length).toBeGreaterThanOrEqual(3);
    expect(seconds('fast').some((s) => s % 2 === 1)).toBe(true);
    // Every other second: at least one slot, all even.
    expect(seconds('even').length).toBeGreaterThanOrEqual(1);
    expect(seconds('even').every((s) => s % 2 === 0)).toBe(true);
    // The others follow the probe's (yearly) or their own slow schedule: nothing in 4.5 s.
    expect(seconds('daily')).toEqual([]);
    expect(seconds('hourly').length + seconds('weekly').length).toBeLessThanOrEqual(1);
  });

  it('catches up a workspace older than its own interval, at its own most recent slot', async () => {
    const loaded = workspaces(uniquePrefix('iac-catchup'));
    const prefix = loaded.config.redis.prefix;
    const queue = new Queue<ProbeJobData>(PROBES_QUEUE, { connection: client, prefix });
    const state = new StateStore(client, prefix);
    const now = new Date('2026-11-23T10:30:00Z');
    // 90 minutes old: past the hourly workspace's interval, within the weekly and the daily one.
    for (const target of ['hourly', 'weekly', 'daily']) await state.record(passed(target, new Date(now.getTime() - 90 * 60_000)));
    const units = configuredUnits(loaded).filter((u) => u.configured.probe.id === 'iac-drift');
    const scheduler = new Scheduler({ units, queue, coordinator: new RedisRunCoordinator(client, prefix), state, timezone: 'UTC', attempts: 1, backoffMs: 0, log: silent });
    expect(await scheduler.catchUp(now)).toBe(1);
    const jobs = await queue.getJobs(['waiting']);
    await queue.close();
    expect(jobs.map((j) => [j.data.target, j.data.scheduledFor])).toEqual([['hourly', '2026-11-23T10:07:00.000Z']]);
  });
});

describe('the day close with workspace schedules', () => {
  it('states each workspace\'s cadence, judges its staleness on its own interval, and the archive verifies', async () => {
    const loaded = workspaces(uniquePrefix('iac-close'));
    const prefix = loaded.config.redis.prefix;
    const state = new StateStore(client, prefix);
    const closer = new DayCloser({ redis: client, prefix, loaded, units: configuredUnits(loaded), state, log: silent });
    await closer.markFirstDay(new Date('2026-11-23T00:05:00Z'));
    // One run each at 09:00: 15 hours before the day ends — stale for the hourly workspace only.
    for (const target of ['hourly', 'weekly', 'daily']) await state.record(passed(target, new Date('2026-11-23T09:00:00Z')));
    await closer.closeDueDays(new Date('2026-11-24T00:15:00Z'));
    const snapshot = await closer.get('2026-11-23');
    expect(snapshot).toBeDefined();
    const control = snapshot!.controls.find((c) => c.id === 'infrastructure-matches-code')!;
    expect(control.cadence.filter((c) => c.probe === 'iac-drift')).toEqual([
      { probe: 'iac-drift', schedule: '41 4 * * *', intervalSeconds: 86_400, measuredRuns: 1 },
      { probe: 'iac-drift', target: 'hourly', schedule: '7 * * * *', intervalSeconds: 3_600, measuredRuns: 1 },
      { probe: 'iac-drift', target: 'weekly', schedule: '0 3 * * 1', intervalSeconds: 604_800, measuredRuns: 1 },
    ]);
    // The feed states the slowest cadence: every workspace has been measured again only then.
    expect(controlCadence(control.cadence.filter((c) => c.probe === 'iac-drift').map((c) => c.intervalSeconds))).toBe('weekly');
    const health = Object.fromEntries(snapshot!.probeHealth.filter((h) => h.probe === 'iac-drift').map((h) => [h.target, h.stale]));
    expect(health).toEqual({ daily: false, hourly: true, weekly: false });

    const file = path.join(loaded.archiveDir, '2026-11-23.json');
    expect(Snapshot.parse(JSON.parse(readFileSync(file, 'utf8'))).hash).toBe(snapshot!.hash);
    expect(await verifyArchive(loaded.archiveDir)).toMatchObject({ ok: true, days: 1 });
  });
});
