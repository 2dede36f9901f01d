import { describe, expect, it } from 'vitest';
import type { Control } from '../config/controls.js';
import type { UnitDay } from '../store/state.js';
import { sampleControl, sampleSnapshot } from '../../test/helpers/snapshots.js';
import { buildSnapshot, dayVerdict, diffSnapshots, nextStreak, onFeed, type ProbeCadence } from './snapshot.js';
import { snapshotHash, type SnapshotControl } from './snapshot-types.js';

const day = (over: Partial<UnitDay> = {}): UnitDay => ({ runs: 96, red: 0, unknown: 0, errors: 0, last: { finishedAt: '2026-11-21T23:45:01.000Z', sourceFreshness: null, error: null }, failing: [], ...over });
const probes = new Map<string, ProbeCadence>([
  ['p1', { id: 'p1', schedule: '*/15 * * * *', intervalMs: 900_000, targets: ['a', 'b'] }],
  ['p2', { id: 'p2', schedule: '0 */4 * * *', intervalMs: 4 * 3_600_000, targets: ['x'] }],
  ['p3', { id: 'p3', schedule: '0 3 * * *', intervalMs: 86_400_000, targets: [] }],
]);

describe('day verdict', () => {
  it.each<[string, string[], Array<[string, UnitDay]>, string]>([
    ['every target measured and green', ['p1'], [['p1|a', day()], ['p1|b', day()]], 'green'],
    ['one target not measured that day', ['p1'], [['p1|a', day()]], 'unknown'],
    ['one red run makes the day red', ['p1'], [['p1|a', day({ red: 1 })], ['p1|b', day()]], 'red'],
    ['red wins over a missing target', ['p1'], [['p1|a', day({ red: 1 })]], 'red'],
    ['a run error makes it unknown', ['p1'], [['p1|a', day({ errors: 1 })], ['p1|b', day()]], 'unknown'],
    ['an unknown run makes it unknown', ['p1'], [['p1|a', day({ unknown: 2 })], ['p1|b', day()]], 'unknown'],
    ['every probe of the control must be measured', ['p1', 'p2'], [['p1|a', day()], ['p1|b', day()]], 'unknown'],
    ['a probe with no target configured is unknown', ['p3'], [], 'unknown'],
    ['a switched-off probe is unknown', ['nope'], [], 'unknown'],
    ['no measurement at all is not green', ['p1'], [], 'unknown'],
  ])('%s', (_name, controlProbes, ledger, expected) => {
    const v = dayVerdict({ probes: controlProbes }, probes, new Map(ledger));
    expect(v.verdict).toBe(expected);
    expect(v.reasons.length > 0).toBe(expected !== 'green');
  });
});

describe('streaks', () => {
  const prev = (streak: number, greenSince: string | null) => ({ date: '2026-11-20', control: sampleControl({ id: 'c', streak, greenSince, lastGreenDay: streak > 0 ? '2026-11-20' : '2026-11-01' }) });
  it.each<[string, string, Parameters<typeof nextStreak>[2], { streak: number; greenSince: string | null; lastGreenDay: string | null }]>([
    ['first green day starts at 1', 'green', undefined, { streak: 1, greenSince: '2026-11-21', lastGreenDay: '2026-11-21' }],
    ['green after green continues', 'green', prev(29, '2026-10-23'), { streak: 30, greenSince: '2026-10-23', lastGreenDay: '2026-11-21' }],
    ['red breaks the streak', 'red', prev(29, '2026-10-23'), { streak: 0, greenSince: null, lastGreenDay: '2026-11-20' }],
    ['unknown breaks the streak', 'unknown', prev(29, '2026-10-23'), { streak: 0, greenSince: null, lastGreenDay: '2026-11-20' }],
    ['green after a broken day restarts', 'green', prev(0, null), { streak: 1, greenSince: '2026-11-21', lastGreenDay: '2026-11-21' }],
    ['a gap in snapshots restarts', 'green', { date: '2026-11-19', control: sampleControl({ id: 'c', streak: 40 }) }, { streak: 1, greenSince: '2026-11-21', lastGreenDay: '2026-11-21' }],
    ['a control new in the catalog starts at 1', 'green', { date: '2026-11-20', control: undefined }, { streak: 1, greenSince: '2026-11-21', lastGreenDay: '2026-11-21' }],
  ])('%s', (_name, verdict, p, expected) => {
    expect(nextStreak('2026-11-21', verdict as 'green', p)).toEqual(expected);
  });

  it('the feed needs public, green today, and 30+ days (never less, whatever is configured)', () => {
    expect(onFeed({ public: true, verdict: 'green', streak: 30 }, 30)).toBe(true);
    expect(onFeed({ public: true, verdict: 'green', streak: 29 }, 30)).toBe(false);
    expect(onFeed({ public: false, verdict: 'green', streak: 90 }, 30)).toBe(false);
    expect(onFeed({ public: true, verdict: 'red', streak: 90 }, 30)).toBe(false);
    expect(onFeed({ public: true, verdict: 'green', streak: 29 }, 7)).toBe(false);
    expect(onFeed({ public: true, verdict: 'green', streak: 44 }, 45)).toBe(false);
  });
});

describe('diff against the previous snapshot', () => {
  it('names new reds, recoveries, controls that reached 30 days and controls that left the feed', () => {
    const prev = sampleSnapshot('2026-11-20', [
      sampleControl({ id: 'stays-red', verdict: 'red', streak: 0, greenSince: null }),
      sampleControl({ id: 'recovers', verdict: 'red', streak: 0, greenSince: null }),
      sampleControl({ id: 'turns-red', verdict: 'green', streak: 10 }),
      sampleControl({ id: 'reaches', verdict: 'green', streak: 29, thirtyDayGreen: false }),
      sampleControl({ id: 'leaves', verdict: 'green', streak: 45 }),
      sampleControl({ id: 'removed-from-catalog', verdict: 'green', streak: 60 }),
    ]);
    const now = [
      sampleControl({ id: 'stays-red', verdict: 'red', streak: 0 }),
      sampleControl({ id: 'recovers', verdict: 'green', streak: 1 }),
      sampleControl({ id: 'turns-red', verdict: 'red', streak: 0 }),
      sampleControl({ id: 'reaches', verdict: 'green', streak: 30 }),
      sampleControl({ id: 'leaves', verdict: 'unknown', streak: 0 }),
    ];
    expect(diffSnapshots(now, prev, 30)).toEqual({
      since: '2026-11-20',
      newReds: ['turns-red'],
      recoveries: ['recovers'],
      reachedThirtyDays: ['reaches'],
      leftFeed: ['leaves', 'removed-from-catalog'],
    });
  });
});

describe('building a snapshot', () => {
  const catalog: Control[] = [
    { id: 'c1', title: 'C1', public: true, publicTitle: 'P1', publicDescription: 'D1', frameworks: { soc2: ['CC6.1', 'CC8.1'], iso27001: ['A.8.5'] }, probes: ['p1'] },
    { id: 'c2', title: 'C2', public: false, publicTitle: 'P2', publicDescription: 'D2', frameworks: { soc2: ['CC8.1'], iso27001: [] }, probes: ['p2'] },
  ];
  const ledger = new Map<string, UnitDay>([
    ['p1|a', day({ failing: [] })],
    ['p1|b', day({ red: 1, failing: [{ resource: 'api.example.com:443', message: 'certificate expires in 3 days: renew it' }] })],
  ]);
  const input = { date: '2026-11-21', timezone: 'UTC', minGreenDays: 30, measured: catalog, notConfigured: [] as Control[], probes, ledger, prev: undefined };

  it('holds verdicts, failing resources with remediation, probe health and coverage', () => {
    const s = buildSnapshot(input);
    expect(s.counts).toEqual({ green: 0, red: 1, unknown: 1 });
    expect(s.controls[0]).toMatchObject({ id: 'c1', verdict: 'red', streak: 0, greenSince: null, failing: [{ probe: 'p1', target: 'b', resource: 'api.example.com:443', message: 'certificate expires in 3 days: renew it' }] });
    expect(s.controls[1]).toMatchObject({ id: 'c2', verdict: 'unknown', reasons: ['p2/x: not measured that day'] });
    expect(s.probeHealth.find((h) => h.probe === 'p2')).toMatchObject({ target: 'x', runs: 0, stale: true, lastRunAt: null });
    expect(s.probeHealth.find((h) => h.target === 'a')).toMatchObject({ runs: 96, stale: false });
    expect(s.coverage.soc2).toEqual([
      { id: 'CC6.1', status: 'measured', controls: ['c1'] },
      { id: 'CC8.1', status: 'partly_measured', controls: ['c1', 'c2'] },
    ]);
    expect(s.coverage.iso27001).toEqual([{ id: 'A.8.5', status: 'measured', controls: ['c1'] }]);
    expect(s.prevHash).toBeNull();
    expect(s.diff.newReds).toEqual(['c1']);
  });

  it('a control no target measures is left out of the day but counts as not measured in coverage', () => {
    const unused: Control = { id: 'c3', title: 'C3', public: true, publicTitle: 'P3', publicDescription: 'D3', frameworks: { soc2: ['CC6.1', 'CC6.6'], iso27001: [] }, probes: ['github-org-2fa'] };
    const s = buildSnapshot({ ...input, notConfigured: [unused] });
    expect(s.controls.map((c) => c.id)).toEqual(['c1', 'c2']);
    expect(s.coverage.soc2).toContainEqual({ id: 'CC6.1', status: 'partly_measured', controls: ['c1', 'c3'] });
    expect(s.coverage.soc2).toContainEqual({ id: 'CC6.6', status: 'not_measured', controls: ['c3'] });
  });

  it('is deterministic: the same input gives the same hash', () => {
    expect(snapshotHash(buildSnapshot(input))).toBe(snapshotHash(buildSnapshot(input)));
  });

  it('a probe whose last run of the day was long before midnight is stale that day', () => {
    const early = new Map([...ledger, ['p1|a', day({ last: { finishedAt: '2026-11-21T20:00:00.000Z', sourceFreshness: null, error: null } })]]);
    const s = buildSnapshot({ ...input, ledger: early });
    expect(s.probeHealth.find((h) => h.target === 'a')?.stale).toBe(true);
  });

  const p1 = probes.get('p1')!;
  const weekly = { schedule: '0 3 * * 1', intervalMs: 7 * 86_400_000 };
  const hourly = { schedule: '7 * * * *', intervalMs: 3_600_000 };
  it.each<[string, ProbeCadence, SnapshotControl['cadence']]>([
    ['no target on its own schedule: the one probe entry, as before, with the runs measured', p1, [{ probe: 'p1', schedule: '*/15 * * * *', intervalSeconds: 900, measuredRuns: 96 }]],
    [
      'one target on its own: the probe entry for the rest, then that target',
      { ...p1, targetCadence: new Map([['b', weekly]]) },
      [
        { probe: 'p1', schedule: '*/15 * * * *', intervalSeconds: 900, measuredRuns: 96 },
        { probe: 'p1', target: 'b', schedule: '0 3 * * 1', intervalSeconds: 604_800, measuredRuns: 96 },
      ],
    ],
    [
      'every target on its own: no entry claims the probe\'s schedule',
      { ...p1, targetCadence: new Map([['b', weekly], ['a', hourly]]) },
      [
        { probe: 'p1', target: 'a', schedule: '7 * * * *', intervalSeconds: 3_600, measuredRuns: 96 },
        { probe: 'p1', target: 'b', schedule: '0 3 * * 1', intervalSeconds: 604_800, measuredRuns: 96 },
      ],
    ],
  ])('cadence: %s', (_name, cadence, expected) => {
    const s = buildSnapshot({ ...input, probes: new Map([...probes, ['p1', cadence]]) });
    expect(s.controls[0]?.cadence).toEqual(expected);
    expect(Object.keys(s.controls[0]?.cadence[0] ?? {})).toEqual(Object.keys(expected[0] ?? {}));
  });

  it('a target on its own schedule is stale after 2 × its interval, not the probe\'s', () => {
    // Both last ran at 20:00: 4 hours before midnight is past 2 × 15 min, within 2 × 1 week.
    const early = new Map([...ledger, ...(['a', 'b'] as const).map((t) => [`p1|${t}`, day({ last: { finishedAt: '2026-11-21T20:00:00.000Z', sourceFreshness: null, error: null } })] as const)]);
    const s = buildSnapshot({ ...input, ledger: early, probes: new Map([...probes, ['p1', { ...p1, targetCadence: new Map([['b', weekly]]) }]]) });
    expect(s.probeHealth.filter((h) => h.probe === 'p1').map((h) => [h.target, h.stale])).toEqual([['a', true], ['b', false]]);
  });
});
