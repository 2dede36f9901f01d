import { Redis } from 'ioredis';
import cron from 'node-cron';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Control } from '../src/config/controls.js';
import type { RiskException } from '../src/config/schema.js';
import { addDays, startOfDay } from '../src/posture/days.js';
import { scheduledSlots } from '../src/posture/coverage.js';
import { buildSnapshot, dayVerdict, expectedSlots, type ProbeCadence } from '../src/posture/snapshot.js';
import type { Finding } from '../src/probe/contract.js';
import { controlStatus } from '../src/posture/status.js';
import { MAX_FAILING_PER_RUN, StateStore, type UnitDay } from '../src/store/state.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';

/**
 * Review R6 of coverage-honest days and exceptions: the slots a day is judged against are the
 * ones the scheduler (node-cron) actually fires; a slot count cron-parser cannot make is not a
 * green day; a share just short of the threshold never reads as reaching it; and a run's failing
 * list cut by repeated failures of one resource cannot let an exception hide another failure.
 */

/** How many times node-cron itself fires `expression` on `day` in `timezone` (its public API, on a frozen clock). */
function nodeCronFirings(expression: string, timezone: string, day: string): number {
  const start = startOfDay(day, timezone).getTime();
  const end = startOfDay(addDays(day, 1), timezone).getTime();
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(start - 1000);
  const task = cron.createTask(expression, () => undefined, { timezone });
  try {
    return task.getNextRuns(400).filter((d) => d.getTime() >= start && d.getTime() < end).length;
  } finally {
    void task.destroy();
    vi.useRealTimers();
  }
}

describe('scheduled slots are the firings of the scheduler', () => {
  afterEach(() => vi.useRealTimers());

  it.each<[string, string, string, number]>([
    // The repeated hour of a fall-back day fires once: cron-parser alone counted 25 and 300.
    ['0 * * * *', 'Europe/Berlin', '2026-10-25', 24],
    ['*/5 * * * *', 'Europe/London', '2026-10-25', 288],
    ['*/15 2 * * *', 'Europe/Berlin', '2026-10-25', 4],
    ['0 * * * *', 'Europe/Berlin', '2026-03-29', 23],
    ['17 */4 * * *', 'America/New_York', '2026-11-01', 6],
    ['30 1 * * *', 'America/New_York', '2026-11-01', 1],
    ['*/7 * * * *', 'UTC', '2026-12-01', 216],
    ['0 9 * * 1-5', 'UTC', '2026-12-05', 0],
    ['0 9 * * 7', 'UTC', '2026-11-29', 1],
  ])('%s in %s on %s: %i, as node-cron fires it', (expression, timezone, day, n) => {
    expect(scheduledSlots(expression, timezone, day)).toBe(n);
    expect(nodeCronFirings(expression, timezone, day)).toBe(n);
  });

  it('days.minCoverage 1 on a fall-back day: 24 hourly runs are the whole day (green), not 24 of 25', () => {
    const probes = new Map<string, ProbeCadence>([['tls', { id: 'tls', schedule: '0 * * * *', intervalMs: 3_600_000, targets: ['public'] }]]);
    const day: UnitDay = { runs: 24, red: 0, unknown: 0, errors: 0, last: { finishedAt: '2026-10-25T21:00:01.000Z', sourceFreshness: null, error: null }, failing: [] };
    const coverage = { minCoverage: 1, expected: expectedSlots(probes, '2026-10-25', 'Europe/Berlin') };
    expect(dayVerdict({ probes: ['tls'] }, probes, new Map([['tls|public', day]]), coverage)).toEqual({ verdict: 'green', reasons: [] });
  });

  it('a day cron-parser cannot step through (30-minute DST shift on Lord Howe) is not green on two runs', () => {
    // cron-parser's hasNext() swallowed its loop-limit error here and the day "had" 2 hourly slots.
    expect(() => scheduledSlots('0 * * * *', 'Australia/Lord_Howe', '2026-04-05')).toThrow(/loop limit/);
    const probes = new Map<string, ProbeCadence>([['tls', { id: 'tls', schedule: '0 * * * *', intervalMs: 3_600_000, targets: ['public'] }]]);
    const day: UnitDay = { runs: 2, red: 0, unknown: 0, errors: 0, last: { finishedAt: '2026-04-04T14:00:01.000Z', sourceFreshness: null, error: null }, failing: [] };
    const coverage = { minCoverage: 0.9, expected: expectedSlots(probes, '2026-04-05', 'Australia/Lord_Howe') };
    const v = dayVerdict({ probes: ['tls'] }, probes, new Map([['tls|public', day]]), coverage);
    expect(v.verdict).toBe('unknown');
    expect(v.reasons).toEqual([expect.stringMatching(/^tls\/public: the scheduled slots of "0 \* \* \* \*" could not be counted \(.*loop limit/)]);
    // The days around it count normally.
    expect(scheduledSlots('0 * * * *', 'Australia/Lord_Howe', '2026-04-06')).toBe(24);
  });

  it('a share just short of days.minCoverage never reads as reaching it in the reason', () => {
    const probes = new Map<string, ProbeCadence>([['p', { id: 'p', schedule: '* * * * * *', intervalMs: 1000, targets: ['t'] }]]);
    const day: UnitDay = { runs: 77_759, red: 0, unknown: 0, errors: 0, last: { finishedAt: '2026-11-21T23:59:59.500Z', sourceFreshness: null, error: null }, failing: [] };
    const v = dayVerdict({ probes: ['p'] }, probes, new Map([['p|t', day]]), { minCoverage: 0.9, expected: new Map([['p|t', 86_400]]) });
    expect(v).toEqual({ verdict: 'unknown', reasons: ['p/t: measured 77759 of 86400 scheduled runs (89.9 %), below days.minCoverage 90 %'] });
  });
});

describe('a failing list cut by repeated failures of one resource is never excepted (real redis-server)', () => {
  let redis: TestRedisServer;
  let client: Redis;
  beforeAll(async () => {
    redis = await startRedisServer();
    client = new Redis(redis.url, { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    client.disconnect();
    await redis?.stop();
  });

  it('2,000 failures of an excepted resource before one of another: the other still reddens the day', async () => {
    const state = new StateStore(client, uniquePrefix('r6-cut'), 'UTC');
    const findings: Finding[] = [
      ...Array.from({ length: MAX_FAILING_PER_RUN }, (_, i): Finding => ({ resource: 'github.com/acme/legacy-api', outcome: 'fail', message: `rule ${i} is off` })),
      { resource: 'github.com/acme/api', outcome: 'fail', message: 'main is not protected: require a pull request review' },
    ];
    const at = '2026-11-21T10:00:00.000Z';
    expect(await state.record({ runId: `p1|org|${Date.parse(at)}`, probe: 'p1', target: 'org', scheduledFor: at, startedAt: at, finishedAt: '2026-11-21T10:00:02.000Z', findings })).toBe(true);
    const ledger = await state.dayLedger('2026-11-21');
    expect(ledger.get('p1|org')?.failing.map((f) => f.resource)).toEqual(['github.com/acme/api', 'github.com/acme/legacy-api']);

    const controls: Control[] = [
      { id: 'c1', title: 'Protected branches', public: true, publicTitle: 'Reviewed changes', publicDescription: 'Every change is reviewed.', frameworks: { soc2: ['CC8.1'], iso27001: ['A.8.32'] }, probes: ['p1'] },
    ];
    const exception: RiskException = { control: 'c1', resource: 'github.com/acme/legacy-*', reason: 'archived', approvedBy: 'ciso@acme.example', expires: '2026-12-31' };
    const body = buildSnapshot({
      date: '2026-11-21',
      timezone: 'UTC',
      minGreenDays: 30,
      measured: controls,
      notConfigured: [],
      // One slot a day: the single run is full coverage, so only the failures decide.
      probes: new Map([['p1', { id: 'p1', schedule: '0 10 * * *', intervalMs: 86_400_000, targets: ['org'] }]]),
      ledger,
      prev: undefined,
      exceptions: [exception],
    });
    expect(body.controls[0]).toMatchObject({ verdict: 'red', failing: [{ resource: 'github.com/acme/api' }] });
    expect(body.controls[0]?.reasons).toEqual(['p1/org: 1 of 1 runs found failures']);
  });
});

describe('an exception that matches a cut failing list', () => {
  it('is not applied, is not called stale, and the reason says why', () => {
    const controls: Control[] = [{ id: 'c1', title: 'c1', public: true, publicTitle: 'c1', publicDescription: 'c1', frameworks: { soc2: ['CC8.1'], iso27001: ['A.8.32'] }, probes: ['p1'] }];
    const exception: RiskException = { control: 'c1', resource: 'github.com/acme/legacy-*', reason: 'archived', approvedBy: 'ciso@acme.example', expires: '2026-12-31' };
    const many = Array.from({ length: MAX_FAILING_PER_RUN }, (_, i) => ({ resource: `github.com/acme/legacy-${String(i).padStart(5, '0')}`, message: 'unprotected' }));
    const body = buildSnapshot({
      date: '2026-11-21',
      timezone: 'UTC',
      minGreenDays: 30,
      measured: controls,
      notConfigured: [],
      probes: new Map([['p1', { id: 'p1', schedule: '0 10 * * *', intervalMs: 86_400_000, targets: ['org'] }]]),
      ledger: new Map([['p1|org', { runs: 1, red: 1, unknown: 0, errors: 0, last: { finishedAt: '2026-11-21T10:00:02.000Z', sourceFreshness: null, error: null }, failing: many }]]),
      prev: undefined,
      exceptions: [exception],
    });
    const c = body.controls[0]!;
    expect(c.verdict).toBe('red');
    expect(c.exceptions).toBeUndefined();
    // It matches (every listed failure is one it covers): telling the officer to remove it would be wrong.
    expect(c.staleExceptions).toBeUndefined();
    expect(c.reasons).toEqual(['p1/org: 1 of 1 runs found failures', 'p1/org: 2,000 or more resources fail, so its failing list may be incomplete and no exception applies to it']);
  });
});

describe('an exception excepts only for its own control', () => {
  const control = (id: string): Control => ({ id, title: id, public: true, publicTitle: id, publicDescription: id, frameworks: { soc2: ['CC8.1'], iso27001: ['A.8.32'] }, probes: ['p1'] });
  const exception: RiskException = { control: 'c1', resource: 'github.com/acme/legacy-*', reason: 'archived', approvedBy: 'ciso@acme.example', expires: '2026-12-31' };
  const failing = { resource: 'github.com/acme/legacy-api', message: 'main is not protected' };

  it('a failure of a probe shared by two controls: green with the exception for c1, red for c2 (day and now)', () => {
    const day: UnitDay = { runs: 1, red: 1, unknown: 0, errors: 0, last: { finishedAt: '2026-11-21T10:00:02.000Z', sourceFreshness: null, error: null }, failing: [failing] };
    const body = buildSnapshot({
      date: '2026-11-21',
      timezone: 'UTC',
      minGreenDays: 30,
      measured: [control('c1'), control('c2')],
      notConfigured: [],
      probes: new Map([['p1', { id: 'p1', schedule: '0 10 * * *', intervalMs: 86_400_000, targets: ['org'] }]]),
      ledger: new Map([['p1|org', day]]),
      prev: undefined,
      exceptions: [exception],
    });
    expect(body.controls.map((c) => [c.id, c.verdict, c.failing.length, c.exceptions?.length ?? 0])).toEqual([['c1', 'green', 0, 1], ['c2', 'red', 1, 0]]);

    const now = new Date('2026-11-21T10:30:00Z');
    const at = '2026-11-21T10:00:00.000Z';
    const evidence = [{ probe: 'p1', enabled: true, intervalMs: 86_400_000, targets: [{ target: 'org', result: { runId: 'r', probe: 'p1', target: 'org', scheduledFor: at, startedAt: at, finishedAt: at, findings: [{ ...failing, outcome: 'fail' as const }] } }] }];
    const ctx = { list: [exception], today: '2026-11-21' };
    expect([controlStatus(control('c1'), evidence, now, ctx).status, controlStatus(control('c2'), evidence, now, ctx).status]).toEqual(['green', 'red']);
  });
});
