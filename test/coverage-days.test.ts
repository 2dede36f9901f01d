import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/errors.js';
import { zonedInstant } from '../src/posture/days.js';
import { percent, scheduledSlots, slotCoverage } from '../src/posture/coverage.js';
import { buildFeed, feedCadence } from '../src/posture/feed.js';
import { renderHtml, renderMarkdown } from '../src/posture/render.js';
import { dayVerdict, expectedSlots, type ProbeCadence } from '../src/posture/snapshot.js';
import type { Finding, ProbeResult } from '../src/probe/contract.js';
import { configuredUnits } from '../src/probe/units.js';
import { DayCloser } from '../src/store/day-close.js';
import { StateStore, type UnitDay } from '../src/store/state.js';
import { testConfig } from './helpers/daemon.js';
import { fakeProbe } from './helpers/fake-probe.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';
import { sampleControl, sampleSnapshot } from './helpers/snapshots.js';

/**
 * Coverage-honest days (issue 13): a day is green only when each target was measured in at least
 * `days.minCoverage` of its scheduled slots; reasons name the cause; the feed states what was
 * measured, not the schedule.
 */

describe('scheduled slots of a calendar day', () => {
  it.each<[string, string, string, string, number]>([
    ['hourly on a UTC day', '0 * * * *', 'UTC', '2026-11-21', 24],
    ['hourly on the spring-forward day in Berlin (23 hours)', '0 * * * *', 'Europe/Berlin', '2026-03-29', 23],
    // node-cron fires the repeated hour once (R6): a 25-hour day has 24 hourly slots, not 25.
    ['hourly on the fall-back day in Berlin (25 hours, the repeated 02:00 fires once)', '0 * * * *', 'Europe/Berlin', '2026-10-25', 24],
    ['hourly on an ordinary Berlin day', '0 * * * *', 'Europe/Berlin', '2026-03-30', 24],
    // The slot the scheduler's arithmetic (cron-parser) fires just after the gap still falls on the day.
    ['02:30 daily on the spring-forward day in Berlin still counts once', '30 2 * * *', 'Europe/Berlin', '2026-03-29', 1],
    ['every 15 minutes', '*/15 * * * *', 'UTC', '2026-11-21', 96],
    ['a weekly schedule on another weekday', '0 3 * * 1', 'UTC', '2026-11-21', 0],
    ['a weekly schedule on its weekday', '0 3 * * 6', 'UTC', '2026-11-21', 1],
    ['a firing at midnight belongs to the day it starts', '0 0 * * *', 'UTC', '2026-11-21', 1],
    ['every 10 seconds (6 fields)', '*/10 * * * * *', 'UTC', '2026-11-21', 8640],
  ])('%s', (_name, expr, tz, day, n) => expect(scheduledSlots(expr, tz, day)).toBe(n));

  it('coverage caps at 1, is undefined when nothing was due, and percentages never round up to a threshold', () => {
    expect(slotCoverage(12, 24)).toBe(0.5);
    expect(slotCoverage(25, 24)).toBe(1);
    expect(slotCoverage(2, 3)).toBe(0.6667);
    expect(slotCoverage(0, 0)).toBeUndefined();
    expect([percent(0.5), percent(0.9), percent(0.8999), percent(0.999), percent(1)]).toEqual(['50 %', '90 %', '89.9 %', '99.9 %', '100 %']);
  });
});

const run = (runs: number, over: Partial<UnitDay> = {}): UnitDay => ({ runs, red: 0, unknown: 0, errors: 0, last: { finishedAt: '2026-11-21T23:00:01.000Z', sourceFreshness: null, error: null }, failing: [], ...over });
const hourly: ProbeCadence = { id: 'tls', schedule: '0 * * * *', intervalMs: 3_600_000, targets: ['public'] };

describe('day verdict with slot coverage', () => {
  const verdictOf = (day: UnitDay | undefined, opts: { date?: string; timezone?: string; minCoverage?: number; probe?: ProbeCadence } = {}) => {
    const probes = new Map([['tls', opts.probe ?? hourly]]);
    const coverage = { minCoverage: opts.minCoverage ?? 0.9, expected: expectedSlots(probes, opts.date ?? '2026-11-21', opts.timezone ?? 'UTC') };
    return dayVerdict({ probes: ['tls'] }, probes, new Map(day ? [['tls|public', day]] : []), coverage);
  };

  it('a day with 50 % of its hourly slots measured is unknown, with the coverage in the reason', () => {
    expect(verdictOf(run(12))).toEqual({ verdict: 'unknown', reasons: ['tls/public: measured 12 of 24 scheduled runs (50 %), below days.minCoverage 90 %'] });
  });

  it.each<[string, UnitDay, Parameters<typeof verdictOf>[1], 'green' | 'unknown' | 'red']>([
    ['24 of 24 hourly runs is green', run(24), {}, 'green'],
    ['22 of 24 (91.6 %) is green at the default 0.9', run(22), {}, 'green'],
    ['21 of 24 (87.5 %) is not', run(21), {}, 'unknown'],
    ['one run in a whole hourly day is not a measured day', run(1), {}, 'unknown'],
    ['minCoverage 1 needs every slot', run(23), { minCoverage: 1 }, 'unknown'],
    ['a catch-up run beyond the schedule caps at 100 %', run(25), { minCoverage: 1 }, 'green'],
    ['23 of 23 on the spring-forward day in Berlin is green', run(23), { date: '2026-03-29', timezone: 'Europe/Berlin' }, 'green'],
    ['24 hourly runs on the fall-back day in Berlin are green (24 slots: the repeated 02:00 fires once)', run(24), { date: '2026-10-25', timezone: 'Europe/Berlin', minCoverage: 0.95 }, 'green'],
    ['red still wins over too little coverage', run(3, { red: 1 }), {}, 'red'],
    ['a weekly probe measured on its day is green', run(1), { probe: { ...hourly, schedule: '0 3 * * 6', intervalMs: 604_800_000 } }, 'green'],
  ])('%s', (_name, day, opts, expected) => {
    const v = verdictOf(day, opts);
    expect(v.verdict).toBe(expected);
    expect(v.reasons.length > 0).toBe(expected !== 'green');
  });

  it('a target on a schedule of its own is judged against its own slots', () => {
    const probe: ProbeCadence = { ...hourly, targetCadence: new Map([['public', { schedule: '0 */4 * * *', intervalMs: 4 * 3_600_000 }]]) };
    expect(verdictOf(run(6), { probe }).verdict).toBe('green');
    expect(verdictOf(run(5), { probe }).reasons).toEqual(['tls/public: measured 5 of 6 scheduled runs (83.3 %), below days.minCoverage 90 %']);
  });

  it('reasons name the cause: the newest error, and the resources that could not be judged with their messages', () => {
    const day = run(24, {
      errors: 1,
      unknown: 2,
      lastError: 'PermissionError: token may not read org settings',
      population: [
        { resource: 'github.com/acme/api', outcome: 'unknown', message: 'token cannot read rulesets' },
        { resource: 'github.com/acme/docs', outcome: 'pass' },
        { resource: 'github.com/acme/web', outcome: 'unknown', message: 'token cannot read rulesets' },
      ],
    });
    expect(verdictOf(day).reasons).toEqual([
      'tls/public: 1 of 24 runs could not observe (newest error: PermissionError: token may not read org settings)',
      'tls/public: 2 of 24 runs could not judge every resource: github.com/acme/api (token cannot read rulesets); github.com/acme/web (token cannot read rulesets)',
    ]);
  });

  it('many unjudged resources: three are named and the rest counted', () => {
    const population = Array.from({ length: 5 }, (_, i) => ({ resource: `r${i}`, outcome: 'unknown' as const, message: 'm' }));
    expect(verdictOf(run(24, { unknown: 1, population })).reasons).toEqual(['tls/public: 1 of 24 runs could not judge every resource: r0 (m); r1 (m); r2 (m); … (2 more)']);
  });
});

describe('days.minCoverage in the config', () => {
  it('defaults to 0.9', () => {
    expect(testConfig('', [fakeProbe], catalog).config.days.minCoverage).toBe(0.9);
    expect(testConfig('days: { minCoverage: 0.5 }\n', [fakeProbe], catalog).config.days.minCoverage).toBe(0.5);
  });
  it.each(['1.5', '0', '-0.1', '"most"'])('minCoverage %s is a config error naming days.minCoverage', (value) => {
    let error: unknown;
    try {
      testConfig(`days: { minCoverage: ${value} }\n`, [fakeProbe], catalog);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/vigil\.yaml: days\.minCoverage: /);
    expect((error as Error).message.split('\n')).toHaveLength(1);
  });
});

describe('the feed states the measured cadence', () => {
  const streaked = (cadence: ReturnType<typeof sampleControl>['cadence']) => sampleSnapshot('2026-11-21', [sampleControl({ id: 'c', streak: 31, greenSince: '2026-10-22', cadence })]);
  it.each<[string, ReturnType<typeof sampleControl>['cadence'], string]>([
    ['24 runs measured', [{ probe: 'p', schedule: '0 * * * *', intervalSeconds: 3600, measuredRuns: 24 }], 'measured 24 times a day'],
    ['the least-measured probe of the control', [{ probe: 'p', schedule: '*/15 * * * *', intervalSeconds: 900, measuredRuns: 96 }, { probe: 'q', target: 't', schedule: '0 3 * * *', intervalSeconds: 86_400, measuredRuns: 1 }], 'measured once a day'],
    ['twice', [{ probe: 'p', schedule: '0 9,21 * * *', intervalSeconds: 43_200, measuredRuns: 2 }], 'measured twice a day'],
    ['a snapshot from before measured cadence: the schedule, said as such', [{ probe: 'p', schedule: '0 * * * *', intervalSeconds: 3600 }], 'scheduled hourly'],
    ['partly recorded: not a measurement claim', [{ probe: 'p', schedule: '0 * * * *', intervalSeconds: 3600, measuredRuns: 24 }, { probe: 'q', schedule: '0 3 * * *', intervalSeconds: 86_400 }], 'scheduled daily'],
  ])('%s', (_name, cadence, words) => {
    expect(buildFeed(streaked(cadence), { minGreenDays: 30, organization: 'Acme' }).controls[0]?.cadence).toBe(words);
  });
  it('states nothing it cannot (no entries, or a green day with no run)', () => {
    expect(feedCadence([])).toBeUndefined();
    expect(buildFeed(streaked([{ probe: 'p', schedule: '0 * * * *', intervalSeconds: 3600, measuredRuns: 0 }]), { minGreenDays: 30, organization: 'Acme' }).controls).toEqual([]);
  });
});

const catalog = `controls:
  - id: fake-control
    title: Fake control (internal)
    public: true
    publicTitle: Fake public title
    publicDescription: Fake public description
    frameworks: { soc2: [CC6.7], iso27001: [A.8.24] }
    probes: [fake-check]
`;

describe('coverage through the recorder and the day close (real redis-server)', () => {
  const log = pino({ level: 'silent' });
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

  function world(tz: string, extra = '') {
    const prefix = uniquePrefix('coverage');
    const archiveDir = mkdtempSync(path.join(tmpdir(), 'vigil-coverage-'));
    const loaded = testConfig(`timezone: ${tz}\nredis: { url: "${redis.url}", prefix: ${prefix} }\narchive: { dir: ${archiveDir} }\nprobes:\n  fake-check: { schedule: "0 * * * *" }\n${extra}`, [fakeProbe], catalog);
    const state = new StateStore(client, prefix, tz);
    const closer = new DayCloser({ redis: client, prefix, loaded, units: configuredUnits(loaded), state, log });
    return { state, closer, tz };
  }

  const pass: Finding[] = [{ resource: 'r1', outcome: 'pass', message: 'fine' }];
  async function hours(w: ReturnType<typeof world>, day: string, target: string, hoursOfDay: number[], findings: Finding[] = pass, error?: ProbeResult['error']) {
    for (const h of hoursOfDay) {
      const at = zonedInstant(day, `${String(h).padStart(2, '0')}:00`, w.tz).toISOString();
      await w.state.record({ runId: `fake-check|${target}|${Date.parse(at)}`, probe: 'fake-check', target, scheduledFor: at, startedAt: at, finishedAt: at, findings, ...(error ? { error } : {}) });
    }
  }
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

  it('12 of 24 hourly slots is an unknown day naming the coverage; 24 of 24 the next day is green; replays do not add coverage', async () => {
    const w = world('UTC');
    await w.closer.markFirstDay(new Date('2026-11-20T00:05:00Z'));
    await hours(w, '2026-11-20', 'alpha', range(0, 12));
    await hours(w, '2026-11-20', 'alpha', range(0, 12)); // every run delivered twice: still 12 slots
    await hours(w, '2026-11-20', 'beta', range(0, 24));
    await hours(w, '2026-11-21', 'alpha', range(0, 24));
    await hours(w, '2026-11-21', 'beta', range(0, 24));
    await w.closer.closeDueDays(new Date('2026-11-22T00:15:00Z'));

    const first = await w.closer.get('2026-11-20');
    expect(first?.controls[0]).toMatchObject({ verdict: 'unknown', streak: 0, reasons: ['fake-check/alpha: measured 12 of 24 scheduled runs (50 %), below days.minCoverage 90 %'] });
    expect(first?.probeHealth.map((h) => [h.target, h.runs, h.expectedRuns, h.coverage])).toEqual([['alpha', 12, 24, 0.5], ['beta', 24, 24, 1]]);
    expect(first?.controls[0]?.cadence).toEqual([{ probe: 'fake-check', schedule: '0 * * * *', intervalSeconds: 3600, measuredRuns: 12 }]);
    // The email and the Markdown state the coverage in the probe health.
    expect(renderMarkdown(first!)).toContain('| 12 of 24 scheduled (50 %) |');
    expect(renderHtml(first!, { organization: 'Acme' })).toContain('12 runs of 24 scheduled (50 %)');

    const second = await w.closer.get('2026-11-21');
    expect(second?.controls[0]).toMatchObject({ verdict: 'green', streak: 1, reasons: [] });
    expect(second?.controls[0]?.cadence[0]?.measuredRuns).toBe(24);
    expect(feedCadence(second!.controls[0]!.cadence)).toBe('measured 24 times a day');
  });

  it('the spring-forward day in Berlin has 23 slots: 23 runs are a green day with coverage 1', async () => {
    const w = world('Europe/Berlin');
    await w.closer.markFirstDay(new Date('2026-03-28T23:05:00Z'));
    // Local 02:00 does not exist that day: the hours are 00, 01, 03 … 23.
    const local = [0, 1, ...range(3, 24)];
    expect(local).toHaveLength(23);
    for (const t of ['alpha', 'beta']) await hours(w, '2026-03-29', t, local);
    await w.closer.closeDueDays(zonedInstant('2026-03-30', '00:15', 'Europe/Berlin'));
    const s = await w.closer.get('2026-03-29');
    expect(s?.controls[0]?.verdict).toBe('green');
    expect(s?.probeHealth.map((h) => [h.expectedRuns, h.coverage])).toEqual([[23, 1], [23, 1]]);
  });

  it('days.minCoverage from the config decides, and a failing run still makes the day red', async () => {
    const w = world('UTC', 'days: { minCoverage: 0.5 }\n');
    await w.closer.markFirstDay(new Date('2026-11-20T00:05:00Z'));
    for (const t of ['alpha', 'beta']) await hours(w, '2026-11-20', t, range(0, 12));
    await hours(w, '2026-11-21', 'alpha', range(0, 3), [{ resource: 'db:5432', outcome: 'fail', message: 'certificate expired: renew it' }]);
    await hours(w, '2026-11-21', 'beta', range(0, 24));
    await w.closer.closeDueDays(new Date('2026-11-22T00:15:00Z'));
    expect((await w.closer.get('2026-11-20'))?.controls[0]?.verdict).toBe('green');
    expect((await w.closer.get('2026-11-21'))?.controls[0]).toMatchObject({
      verdict: 'red',
      reasons: ['fake-check/alpha: 3 of 3 runs found failures', 'fake-check/alpha: measured 3 of 24 scheduled runs (12.5 %), below days.minCoverage 50 %'],
    });
  });

  it('reasons name the cause from the ledger: the newest error even when a later run succeeded, and the unjudged resources', async () => {
    const w = world('UTC');
    await w.closer.markFirstDay(new Date('2026-11-20T00:05:00Z'));
    await hours(w, '2026-11-20', 'alpha', [0, 1], [], { class: 'PermissionError', message: 'token may not read org settings' });
    await hours(w, '2026-11-20', 'alpha', range(2, 24));
    const unjudged: Finding[] = [
      { resource: 'github.com/acme/api', outcome: 'unknown', message: 'token cannot read rulesets' },
      { resource: 'github.com/acme/docs', outcome: 'pass', message: 'protected' },
    ];
    await hours(w, '2026-11-20', 'beta', range(0, 2), unjudged);
    await hours(w, '2026-11-20', 'beta', range(2, 24));
    await w.closer.closeDueDays(new Date('2026-11-21T00:15:00Z'));
    const s = await w.closer.get('2026-11-20');
    expect(s?.controls[0]).toMatchObject({
      verdict: 'unknown',
      reasons: [
        'fake-check/alpha: 2 of 24 runs could not observe (newest error: PermissionError: token may not read org settings)',
        'fake-check/beta: 2 of 24 runs could not judge every resource: github.com/acme/api (token cannot read rulesets)',
      ],
    });
    expect(s?.probeHealth.find((h) => h.target === 'alpha')?.lastError).toBe('PermissionError: token may not read org settings');
  });
});
