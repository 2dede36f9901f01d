import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProbeResult } from '../src/probe/contract.js';
import { configuredUnits } from '../src/probe/units.js';
import { DayCloser } from '../src/store/day-close.js';
import { REPLAY_HORIZON_MS, StateStore } from '../src/store/state.js';
import { testConfig } from './helpers/daemon.js';
import { fakeProbe } from './helpers/fake-probe.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';

/**
 * The replay guard of the state store (src/store/state.ts): each probe × target × slot counted
 * once, whenever and however often it arrives, in memory that does not grow with the number of
 * runs. Against a real redis-server.
 */
const log = pino({ level: 'silent' });
const catalog = `controls:
  - id: fake-control
    title: Fake control (internal)
    publicTitle: Fake public title
    publicDescription: Fake public description
    frameworks: { soc2: [CC6.7] }
    probes: [fake-check]
`;
const DAY = 86_400_000;

let redis: TestRedisServer;
let client: Redis;
beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  client.disconnect();
  await redis.stop();
});

/** The run of `target` in the slot at `at`, as the probe worker publishes it (runId = the slot's job id). */
function run(target: string, at: string | number, outcome: 'pass' | 'fail' = 'pass'): ProbeResult {
  const slot = new Date(at);
  const iso = slot.toISOString();
  return {
    runId: `fake-check|${target}|${slot.getTime()}`,
    probe: 'fake-check',
    target,
    scheduledFor: iso,
    startedAt: iso,
    finishedAt: new Date(slot.getTime() + 500).toISOString(),
    findings: [{ resource: 'r1', outcome, message: outcome === 'pass' ? 'fine' : 'broken: fix it' }],
  };
}

async function runsTotal(state: StateStore): Promise<number> {
  return [...(await state.runCounts()).values()].reduce((a, b) => a + b, 0);
}

async function keysOf(prefix: string): Promise<string[]> {
  return (await client.keys(`${prefix}:*`)).sort();
}

/**
 * What Redis would hold `days` days from now if nothing wrote meanwhile: every key of the prefix
 * whose TTL ends by then is deleted (Redis's clock cannot be moved; its expiry can be anticipated).
 */
async function expireAsIfLater(prefix: string, days: number): Promise<void> {
  for (const key of await client.keys(`${prefix}:*`)) {
    const ttl = await client.pttl(key);
    if (ttl > 0 && ttl <= days * DAY) await client.del(key);
  }
}

describe('replay guard', () => {
  it('a replay after its day closed, and after the old 8-day memory would have lapsed, is not counted twice; a late first arrival counts once for its own day', async () => {
    const prefix = uniquePrefix('guard-close');
    const archiveDir = mkdtempSync(path.join(tmpdir(), 'vigil-archive-'));
    const loaded = testConfig(`redis: { url: "${redis.url}", prefix: ${prefix} }\narchive: { dir: ${archiveDir} }\nprobes:\n  fake-check: { schedule: "0 * * * *" }\n`, [fakeProbe], catalog);
    const state = new StateStore(client, prefix);
    const closer = new DayCloser({ redis: client, prefix, loaded, units: configuredUnits(loaded), state, log });
    await closer.markFirstDay(new Date('2026-11-01T08:00:00Z'));
    for (const target of ['alpha', 'beta']) expect(await state.record(run(target, '2026-11-01T10:00:00Z'))).toBe(true);
    expect((await closer.closeDueDays(new Date('2026-11-02T00:15:00Z'))).map((o) => o.result)).toEqual(['closed']);
    const published = await closer.getText('2026-11-01');
    for (const target of ['alpha', 'beta']) expect(await state.record(run(target, '2026-11-02T10:00:00Z'))).toBe(true);

    // A retry of the 1st's 11:00 run, whose first attempts failed, arrives once the day is closed.
    const late = run('alpha', '2026-11-01T11:00:00Z', 'fail');
    expect(await state.recordOnce(late)).toBe('recorded');
    expect(await runsTotal(state)).toBe(5);
    expect((await state.dayLedger('2026-11-01')).get('fake-check|alpha')?.runs).toBe(2);
    expect((await state.dayLedger('2026-11-02')).get('fake-check|alpha')?.runs).toBe(1);
    // The published day does not change.
    expect(await closer.getText('2026-11-01')).toBe(published);

    // Nine days pass without a write, then every one of them is delivered again.
    await expireAsIfLater(prefix, 9);
    for (const r of [late, run('alpha', '2026-11-01T10:00:00Z'), run('beta', '2026-11-01T10:00:00Z'), run('alpha', '2026-11-02T10:00:00Z')]) {
      expect(await state.recordOnce(r), r.runId).toBe('replay');
    }
    expect(await runsTotal(state)).toBe(5);
    expect((await state.dayLedger('2026-11-01')).get('fake-check|alpha')?.runs).toBe(2);
    expect(await state.recordedRuns()).toBe(5);
    expect(await closer.getText('2026-11-01')).toBe(published);
  });

  it('memory per probe × target stays constant over many slots: one guard key, one bitmap a day, at most horizon + 1 days', async () => {
    const prefix = uniquePrefix('guard-bound');
    const state = new StateStore(client, prefix);
    const guard = `${prefix}:seen-slots:fake-check|alpha`;
    // In the past, all of it: a slot ahead of the recorder's clock does not move the horizon.
    const start = Math.floor(Date.now() / DAY) * DAY - 140 * DAY;
    await state.record(run('alpha', start));
    const keysAfterOne = await keysOf(prefix);
    const bytesAfterOne = await client.memory('USAGE', guard);
    // The other 1,439 one-minute slots of the day.
    await Promise.all(Array.from({ length: 1439 }, (_, i) => state.record(run('alpha', start + (i + 1) * 60_000))));
    expect(await runsTotal(state)).toBe(1440);
    expect(await keysOf(prefix)).toEqual(keysAfterOne);
    expect(await client.memory('USAGE', guard)).toBe(bytesAfterOne);
    expect(await state.recordedRuns()).toBe(1440);

    // 100 days of hourly runs: the guard keeps 41 days of bitmaps (plus `newest`), whatever the number of days.
    const horizonDays = REPLAY_HORIZON_MS / DAY;
    const fieldsAt: number[] = [];
    for (let d = 1; d <= 100; d++) {
      await Promise.all(Array.from({ length: 24 }, (_, h) => state.record(run('alpha', start + d * DAY + h * 3_600_000))));
      fieldsAt.push(await client.hlen(guard));
    }
    expect(fieldsAt[9]).toBe(11 + 1);
    expect(new Set(fieldsAt.slice(horizonDays + 1))).toEqual(new Set([horizonDays + 1 + 1]));
    const sizeAt60 = await client.memory('USAGE', guard);
    for (let d = 101; d <= 130; d++) await Promise.all(Array.from({ length: 24 }, (_, h) => state.record(run('alpha', start + d * DAY + h * 3_600_000))));
    expect(await client.memory('USAGE', guard)).toBe(sizeAt60);
    // Still one guard key for the unit (day ledgers are per day and expire on their own).
    expect((await keysOf(prefix)).filter((k) => !/:day(-failing|-population)?:/.test(k))).toEqual(keysAfterOne.filter((k) => !/:day(-failing|-population)?:/.test(k)));
  });

  it('a slot older than the horizon is refused, and a slot far in the future does not move the horizon', async () => {
    const prefix = uniquePrefix('guard-horizon');
    const state = new StateStore(client, prefix);
    const t = Math.floor(Date.now() / 60_000) * 60_000 - REPLAY_HORIZON_MS - 5 * DAY;
    expect(await state.recordOnce(run('alpha', t))).toBe('recorded');
    expect(await state.recordOnce(run('alpha', t + REPLAY_HORIZON_MS + DAY))).toBe('recorded');
    // Its day's bitmap is gone: refused whether it is a replay or not, and nothing is counted.
    expect(await state.recordOnce(run('alpha', t))).toBe('beyond-horizon');
    expect(await state.recordOnce(run('alpha', t + 3_600_000))).toBe('beyond-horizon');
    // Within the horizon, a late first arrival still counts once.
    expect(await state.recordOnce(run('alpha', t + 2 * DAY))).toBe('recorded');
    expect(await state.recordOnce(run('alpha', t + 2 * DAY))).toBe('replay');
    expect(await runsTotal(state)).toBe(3);

    // A replica whose clock is a year ahead records a slot in 2027: the others are not pushed out.
    const now = Date.now();
    expect(await state.recordOnce(run('beta', now + 365 * DAY))).toBe('recorded');
    expect(await state.recordOnce(run('beta', now - 60_000 - (now % 60_000)))).toBe('recorded');
  });

  it('slots a second apart and off the second are each counted once, apart from the minute bitmap', async () => {
    const prefix = uniquePrefix('guard-seconds');
    const state = new StateStore(client, prefix);
    const minute = Date.parse('2026-11-20T23:59:00Z');
    const slots = [minute, minute + 1000, minute + 10_000, minute + 59_000, minute + 59_250, minute + 60_000];
    for (const s of slots) expect(await state.recordOnce(run('alpha', s))).toBe('recorded');
    for (const s of slots) expect(await state.recordOnce(run('alpha', s))).toBe('replay');
    for (const s of slots) expect(await state.isRecorded('fake-check', 'alpha', new Date(s))).toBe(true);
    expect(await state.isRecorded('fake-check', 'alpha', new Date(minute + 2000))).toBe(false);
    expect(await state.isRecorded('fake-check', 'beta', new Date(minute))).toBe(false);
    expect(await runsTotal(state)).toBe(slots.length);
    expect(await state.recordedRuns()).toBe(slots.length);
  });

  it('a result recorded before the guard existed (its old seen:<runId> key) is not counted again', async () => {
    const prefix = uniquePrefix('guard-legacy');
    const state = new StateStore(client, prefix);
    const r = run('alpha', '2026-11-20T10:00:00Z');
    await client.set(`${prefix}:seen:${r.runId}`, '1', 'EX', 8 * 86_400);
    expect(await state.recordOnce(r)).toBe('replay');
    expect(await runsTotal(state)).toBe(0);
  });

  it('a result whose scheduledFor is not a date is refused before anything is written', async () => {
    const prefix = uniquePrefix('guard-invalid');
    const state = new StateStore(client, prefix);
    await expect(state.recordOnce({ ...run('alpha', '2026-11-20T10:00:00Z'), scheduledFor: 'yesterday' })).rejects.toThrow('is not a date');
    expect(await keysOf(prefix)).toEqual([]);
  });
});
