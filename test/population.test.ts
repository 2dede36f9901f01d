import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderTrustPage } from '../src/http/trust.js';
import { addDays, zonedInstant } from '../src/posture/days.js';
import { buildFeed, restoreTested } from '../src/posture/feed.js';
import { renderHtml, renderMarkdown, renderText } from '../src/posture/render.js';
import { buildSnapshot, controlEvidence, dayPopulation, nextRestoreTestedDays, type ProbeCadence } from '../src/posture/snapshot.js';
import { PopulationUnit, Snapshot, snapshotHash } from '../src/posture/snapshot-types.js';
import type { Finding, ProbeResult } from '../src/probe/contract.js';
import { configuredUnits } from '../src/probe/units.js';
import { checkSnapshotText, snapshotFileText, verifyArchive } from '../src/store/archive.js';
import { DayCloser } from '../src/store/day-close.js';
import { encodePopulation, MAX_POPULATION_MESSAGE, MAX_POPULATION_PER_RUN, mergeEntry, StateStore, type UnitDay } from '../src/store/state.js';
import { testConfig } from './helpers/daemon.js';
import { fakeProbe } from './helpers/fake-probe.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';
import { sampleControl, sampleSnapshot } from './helpers/snapshots.js';

/**
 * The tested population (issue 13) and evidence levels (issue 11): recorded by the real record
 * script in a real redis-server, merged per day, carried into the snapshot, the renderings and
 * the feed's "restore-tested".
 */
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

function result(target: string, at: string, findings: Finding[], over: Partial<ProbeResult> = {}): ProbeResult {
  return { runId: `fake-check|${target}|${Date.parse(at)}`, probe: 'fake-check', target, scheduledFor: at, startedAt: at, finishedAt: at, findings, ...over };
}

const probes = new Map<string, ProbeCadence>([['fake-check', { id: 'fake-check', schedule: '0 * * * *', intervalMs: 3_600_000, targets: ['alpha', 'beta'] }]]);

describe('recording the population (real redis-server)', () => {
  it('lists passing resources, not only failing ones, and the snapshot carries them', async () => {
    const state = new StateStore(client, uniquePrefix('pop'));
    await state.record(
      result('alpha', '2026-11-20T09:00:00.000Z', [
        { resource: 'github.com/acme/api', outcome: 'pass', message: 'protected' },
        { resource: 'github.com/acme/web', outcome: 'pass', message: 'protected' },
        { resource: 'github.com/acme/old', outcome: 'not_applicable', message: 'archived repository' },
      ]),
    );
    const ledger = await state.dayLedger('2026-11-20');
    expect(ledger.get('fake-check|alpha')?.population).toEqual([
      { resource: 'github.com/acme/api', outcome: 'pass' },
      { resource: 'github.com/acme/old', outcome: 'not_applicable', message: 'archived repository' },
      { resource: 'github.com/acme/web', outcome: 'pass' },
    ]);
    expect(ledger.get('fake-check|alpha')?.failing).toEqual([]);
    expect(dayPopulation(probes, ledger).population).toEqual([
      {
        probe: 'fake-check',
        target: 'alpha',
        resources: [
          { resource: 'github.com/acme/api', outcome: 'pass' },
          { resource: 'github.com/acme/old', outcome: 'not_applicable', message: 'archived repository' },
          { resource: 'github.com/acme/web', outcome: 'pass' },
        ],
      },
    ]);
  });

  it('a target whose runs judged nothing (errors) is listed with no resources, not left out', async () => {
    const state = new StateStore(client, uniquePrefix('errors'));
    await state.record(result('beta', '2026-11-20T09:00:00.000Z', [], { error: { class: 'TransientError', message: '503' } }));
    const ledger = await state.dayLedger('2026-11-20');
    expect(ledger.get('fake-check|beta')?.population).toEqual([]);
    expect(dayPopulation(probes, ledger).population).toEqual([{ probe: 'fake-check', target: 'beta', resources: [] }]);
  });

  it('keeps the worst outcome of the day with its message, whatever order the runs arrive in', async () => {
    const runs: Array<[string, Finding[]]> = [
      ['09:00', [{ resource: 'a', outcome: 'pass', message: 'ok' }, { resource: 'b', outcome: 'pass', message: 'ok' }, { resource: 'c', outcome: 'not_applicable', message: 'n/a' }, { resource: 'd', outcome: 'unknown', message: 'token cannot read rulesets' }]],
      ['10:00', [{ resource: 'a', outcome: 'fail', message: 'force push allowed: disable it' }, { resource: 'b', outcome: 'unknown', message: 'rate limited' }, { resource: 'c', outcome: 'pass', message: 'ok' }, { resource: 'd', outcome: 'unknown', message: 'a token cannot read rulesets' }]],
      ['11:00', [{ resource: 'a', outcome: 'unknown', message: 'timeout' }, { resource: 'b', outcome: 'pass', message: 'ok' }, { resource: 'c', outcome: 'pass', message: 'ok' }, { resource: 'd', outcome: 'pass', message: 'ok' }]],
    ];
    const expected = [
      { resource: 'a', outcome: 'fail', message: 'force push allowed: disable it' },
      { resource: 'b', outcome: 'unknown', message: 'rate limited' },
      { resource: 'c', outcome: 'pass' },
      // Equal outcomes: the smaller message, so arrival order cannot change the day.
      { resource: 'd', outcome: 'unknown', message: 'a token cannot read rulesets' },
    ];
    for (const order of [[0, 1, 2], [2, 1, 0], [1, 2, 0]]) {
      const state = new StateStore(client, uniquePrefix('worst'));
      for (const i of order) {
        const [hhmm, findings] = runs[i] as [string, Finding[]];
        expect(await state.recordOnce(result('alpha', `2026-11-20T${hhmm}:00.000Z`, findings))).toBe('recorded');
      }
      expect((await state.dayLedger('2026-11-20')).get('fake-check|alpha')?.population).toEqual(expected);
    }
  });

  it('a replay of a slot changes nothing, even when it carries different findings', async () => {
    const state = new StateStore(client, uniquePrefix('replay'));
    const at = '2026-11-20T09:00:00.000Z';
    expect(await state.recordOnce(result('alpha', at, [{ resource: 'a', outcome: 'pass', message: 'ok', details: { level: 4 } }]))).toBe('recorded');
    expect(await state.recordOnce(result('alpha', at, [{ resource: 'a', outcome: 'fail', message: 'broken', details: { level: 1 } }, { resource: 'z', outcome: 'pass', message: 'ok' }], { runId: 'retry-2' }))).toBe('replay');
    const day = (await state.dayLedger('2026-11-20')).get('fake-check|alpha');
    expect(day?.runs).toBe(1);
    expect(day?.population).toEqual([{ resource: 'a', outcome: 'pass', level: 4 }]);
  });

  it('counts the resources cut beyond the per-run cap (non-pass ones are kept first) and shows the cut', async () => {
    const state = new StateStore(client, uniquePrefix('cap'));
    const findings: Finding[] = [];
    for (let i = 0; i < MAX_POPULATION_PER_RUN + 5; i++) findings.push({ resource: `repo-${String(i).padStart(6, '0')}`, outcome: 'pass', message: 'ok' });
    // The failures come last in the run: a plain cut would drop them.
    for (let i = 0; i < 3; i++) findings.push({ resource: `zz-failing-${i}`, outcome: 'fail', message: 'no review required' });
    await state.record(result('alpha', '2026-11-20T09:00:00.000Z', findings));
    // A later run with a smaller cut does not lower the count.
    await state.record(result('alpha', '2026-11-20T10:00:00.000Z', findings.slice(0, MAX_POPULATION_PER_RUN + 1)));
    const ledger = await state.dayLedger('2026-11-20');
    const day = ledger.get('fake-check|alpha') as UnitDay;
    expect(day.populationOmitted).toBe(8);
    // The first run kept the 3 failures and the first 19,997 passes by name; the second (no
    // failures, cut 1) kept 3 passes more. The largest cut of one run is what is shown.
    expect(day.population).toHaveLength(MAX_POPULATION_PER_RUN + 3);
    expect(day.population?.at(-4)?.resource).toBe('repo-019999');
    expect(day.population?.filter((r) => r.outcome === 'fail').map((r) => r.resource)).toEqual(['zz-failing-0', 'zz-failing-1', 'zz-failing-2']);
    const unit = dayPopulation(probes, ledger).population?.[0];
    expect(unit?.omitted).toBe(8);
    const s = sealedBody(ledger);
    expect(renderMarkdown(s)).toContain(`${MAX_POPULATION_PER_RUN + 3} listed: ${MAX_POPULATION_PER_RUN} passed · 3 failed · 0 unknown · 0 not applicable · not listed: 8 more that one run judged beyond the per-run cap`);
    expect(renderText(s)).toContain('not listed: 8 more that one run judged beyond the per-run cap');
    expect(renderHtml(s, { organization: 'Acme' })).toContain('not listed: 8 more that one run judged beyond the per-run cap');
  });

  it('caps messages, and survives hostile resource names and lone surrogates', async () => {
    const state = new StateStore(client, uniquePrefix('hostile'));
    await state.record(
      result('alpha', '2026-11-20T09:00:00.000Z', [
        { resource: 'a|b|c', outcome: 'fail', message: 'x'.repeat(5000) },
        { resource: 'bad\ud800name', outcome: 'unknown', message: 'lone \udc00 surrogate' },
        { resource: '<img src=x onerror=alert(1)>', outcome: 'pass', message: 'ok' },
      ]),
    );
    const pop = (await state.dayLedger('2026-11-20')).get('fake-check|alpha')?.population ?? [];
    expect(pop.map((r) => r.resource)).toEqual(['<img src=x onerror=alert(1)>', 'a|b|c', 'bad\ufffdname']);
    expect(pop[1]?.message).toHaveLength(MAX_POPULATION_MESSAGE);
    expect(pop[1]?.message?.endsWith('…')).toBe(true);
    expect(pop[2]?.message).toBe('lone \ufffd surrogate');
    const html = renderHtml(sealedBody(await state.dayLedger('2026-11-20')), { organization: 'Acme' });
    expect(html).not.toContain('<img src=x');
  });

  it('keeps the lowest evidence level reported per resource, and none for resources that report none', async () => {
    const state = new StateStore(client, uniquePrefix('level'));
    await state.record(result('alpha', '2026-11-20T09:00:00.000Z', [{ resource: 'vault/db', outcome: 'pass', message: 'L5', details: { level: 5 } }, { resource: 'plain', outcome: 'pass', message: 'ok', details: { level: 'high' } }]));
    await state.record(result('alpha', '2026-11-20T10:00:00.000Z', [{ resource: 'vault/db', outcome: 'pass', message: 'L4', details: { level: 4 } }]));
    await state.record(result('alpha', '2026-11-20T11:00:00.000Z', [{ resource: 'vault/db', outcome: 'pass', message: 'no level this time' }]));
    await state.record(result('beta', '2026-11-20T09:00:00.000Z', [{ resource: 'files/pg', outcome: 'pass', message: 'L5', details: { level: 5 } }]));
    const ledger = await state.dayLedger('2026-11-20');
    expect(ledger.get('fake-check|alpha')?.population).toEqual([
      { resource: 'plain', outcome: 'pass' },
      { resource: 'vault/db', outcome: 'pass', level: 4 },
    ]);
    // The control's level is the lowest over its resources that report one.
    expect(controlEvidence({ probes: ['fake-check'] }, probes, ledger, '2026-11-20', undefined)).toEqual({ evidenceLevel: 4, restoreTestedDays: 1 });
    expect(controlEvidence({ probes: ['other'] }, probes, ledger, '2026-11-20', undefined)).toEqual({});
  });

  it('a target whose population was cut proves no level that day (level 0, restore-tested days reset)', () => {
    const day = (populationOmitted?: number): UnitDay => ({
      runs: 1, red: 0, unknown: 0, errors: 0, last: undefined, failing: [],
      population: [{ resource: 'vault/db', outcome: 'pass', level: 5 }],
      ...(populationOmitted !== undefined && { populationOmitted }),
    });
    const prev = { date: '2026-11-19', control: sampleControl({ id: 'c', evidenceLevel: 5, restoreTestedDays: 30 }) };
    expect(controlEvidence({ probes: ['fake-check'] }, probes, new Map([['fake-check|alpha', day()]]), '2026-11-20', prev)).toEqual({ evidenceLevel: 5, restoreTestedDays: 31 });
    expect(controlEvidence({ probes: ['fake-check'] }, probes, new Map([['fake-check|alpha', day(2)]]), '2026-11-20', prev)).toEqual({ evidenceLevel: 0, restoreTestedDays: 0 });
  });
});

/** A sealed snapshot of 2026-11-20 built from a ledger, for the renderers. */
function sealedBody(ledger: ReadonlyMap<string, UnitDay>): Snapshot {
  const body = buildSnapshot({
    date: '2026-11-20',
    timezone: 'UTC',
    minGreenDays: 30,
    measured: [{ id: 'fake-control', title: 'Fake', public: true, publicTitle: 'Fake', publicDescription: 'Fake', frameworks: { soc2: ['A1.3'], iso27001: ['A.5.30'] }, probes: ['fake-check'] } as never],
    notConfigured: [],
    probes,
    ledger,
    prev: undefined,
  });
  return Snapshot.parse({ ...body, hash: snapshotHash(body) });
}

describe('the snapshot schema stays backward compatible', () => {
  const file = path.join(import.meta.dirname, 'fixtures/population/pre-population-snapshot.json');

  it('a snapshot archived before the population parses, re-serialises byte for byte, and keeps its hash', () => {
    const text = readFileSync(file, 'utf8');
    const raw = JSON.parse(text) as { hash: string };
    const parsed = Snapshot.parse(raw);
    expect(parsed.population).toBeUndefined();
    expect(parsed.controls[0]?.evidenceLevel).toBeUndefined();
    expect(snapshotHash(parsed)).toBe(raw.hash);
    // Pinned: the hash the fixture was archived with before the population existed.
    expect(raw.hash).toBe('8074475c5da0693b043d74aad23520ebb2120c63f7477aa571afb75b840fab93');
    expect(snapshotFileText(parsed)).toBe(text);
    expect(checkSnapshotText(text, { date: '2026-11-20' }).ok).toBe(true);
    // Renderings of an old snapshot have no population section.
    expect(renderMarkdown(parsed)).not.toContain('Tested population');
  });

  it('a ledger without population (a day recorded before it) builds a snapshot without the field', () => {
    const ledger = new Map<string, UnitDay>([['fake-check|alpha', { runs: 2, red: 0, unknown: 0, errors: 0, last: { finishedAt: '2026-11-20T10:00:00.000Z', sourceFreshness: null, error: null }, failing: [] }]]);
    expect(dayPopulation(probes, ledger)).toEqual({});
    expect('population' in sealedBody(ledger)).toBe(false);
  });

  it('PopulationUnit is the exported schema other tools read', () => {
    expect(PopulationUnit.parse({ probe: 'p', target: 't', resources: [{ resource: 'r', outcome: 'fail', message: 'm', level: 2 }], omitted: 3 })).toEqual({
      probe: 'p',
      target: 't',
      resources: [{ resource: 'r', outcome: 'fail', message: 'm', level: 2 }],
      omitted: 3,
    });
    expect(PopulationUnit.safeParse({ probe: 'p', target: 't', resources: [{ resource: 'r', outcome: 'green' }] }).success).toBe(false);
  });
});

describe('merging judgements (the same rules as the record script)', () => {
  it.each([
    ['fail beats unknown', { outcome: 'unknown', message: 'u' }, { outcome: 'fail', message: 'f' }, { outcome: 'fail', message: 'f' }],
    ['unknown beats pass', { outcome: 'pass' }, { outcome: 'unknown', message: 'u' }, { outcome: 'unknown', message: 'u' }],
    ['pass beats not applicable, and drops its message', { outcome: 'not_applicable', message: 'n' }, { outcome: 'pass' }, { outcome: 'pass' }],
    ['lowest level wins', { outcome: 'pass', level: 5 }, { outcome: 'pass', level: 4 }, { outcome: 'pass', level: 4 }],
  ] as const)('%s', (_name, a, b, want) => {
    expect(mergeEntry({ resource: 'r', ...a }, { resource: 'r', ...b })).toEqual({ resource: 'r', ...want });
    expect(mergeEntry({ resource: 'r', ...b }, { resource: 'r', ...a })).toEqual({ resource: 'r', ...want });
  });

  it('one resource listed twice in a run is one entry, merged', () => {
    const { flat, omitted } = encodePopulation([
      { resource: 'r', outcome: 'pass', message: 'ok', details: { level: 3 } },
      { resource: 'r', outcome: 'fail', message: 'bad', details: { level: 2 } },
    ]);
    expect(flat).toEqual(['r', 'f|2|bad']);
    expect(omitted).toBe(0);
  });
});

describe('restore-tested: L4+ for the whole streak', () => {
  const yesterday = (restoreTestedDays: number | undefined) => ({ date: '2026-11-19', control: sampleControl({ id: 'c', ...(restoreTestedDays !== undefined && { restoreTestedDays, evidenceLevel: 4 }) }) });

  it.each([
    ['continues yesterday', 4, yesterday(9), 10],
    ['L5 counts too', 5, yesterday(9), 10],
    ['starts at 1 when yesterday had none', 4, yesterday(undefined), 1],
    ['breaks below L4', 3, yesterday(9), 0],
    ['restarts when yesterday is missing', 4, { date: '2026-11-17', control: yesterday(9).control }, 1],
    ['starts at 1 with no previous snapshot', 4, undefined, 1],
  ] as const)('%s', (_name, level, prev, want) => {
    expect(nextRestoreTestedDays('2026-11-20', level, prev)).toBe(want);
  });

  it.each([
    ['streak 40, L4+ on 40 days: restore-tested', { streak: 40, evidenceLevel: 4, restoreTestedDays: 40 }, true],
    ['streak 40, L4+ on 55 days: restore-tested', { streak: 40, evidenceLevel: 5, restoreTestedDays: 55 }, true],
    ['streak longer than the restore-tested days: not', { streak: 40, evidenceLevel: 4, restoreTestedDays: 39 }, false],
    ['today below L4: not', { streak: 40, evidenceLevel: 3, restoreTestedDays: 40 }, false],
    ['no levels at all: not', { streak: 40 }, false],
  ] as const)('%s', (_name, over, want) => {
    const c = sampleControl({ id: 'restore-testing', greenSince: addDays('2026-11-21', -(over.streak - 1)), ...over });
    expect(restoreTested(c)).toBe(want);
    const feed = buildFeed(sampleSnapshot('2026-11-21', [c]), { minGreenDays: 30, organization: 'Acme' });
    expect(feed.controls).toHaveLength(1);
    expect(feed.controls[0]?.restoreTested).toBe(want ? true : undefined);
    expect('restoreTested' in (feed.controls[0] ?? {})).toBe(want);
    // The public page says "restore-tested" exactly when the feed does.
    expect(renderTrustPage(feed).includes('restore-tested')).toBe(want);
  });
});

describe('day close carries the population into the archived snapshots (real redis-server)', () => {
  const catalog = `controls:
  - id: fake-control
    title: Restore testing (internal)
    public: true
    publicTitle: Restores tested
    publicDescription: We restore our backups in drills.
    frameworks: { soc2: [A1.3], iso27001: [A.5.30] }
    probes: [fake-check]
`;

  async function live(levels: (day: number) => number, days: number) {
    const prefix = uniquePrefix('pop-close');
    const archiveDir = mkdtempSync(path.join(tmpdir(), 'vigil-archive-'));
    const loaded = testConfig(`timezone: UTC\nredis: { url: "${redis.url}", prefix: ${prefix} }\narchive: { dir: ${archiveDir} }\nprobes:\n  fake-check: { schedule: "0 9,23 * * *" }\n`, [fakeProbe], catalog);
    const state = new StateStore(client, prefix, 'UTC');
    const closer = new DayCloser({ redis: client, prefix, loaded, units: configuredUnits(loaded), state, log });
    const first = '2026-10-01';
    await closer.markFirstDay(zonedInstant(first, '08:00', 'UTC'));
    for (let i = 1; i <= days; i++) {
      const day = addDays(first, i - 1);
      for (const hhmm of ['09:00', '23:00']) {
        for (const target of ['alpha', 'beta']) {
          const at = zonedInstant(day, hhmm, 'UTC').toISOString();
          await state.record(result(target, at, [
            { resource: `${target}/db`, outcome: 'pass', message: 'restore drill passed', details: { level: levels(i) } },
            { resource: `${target}/files`, outcome: 'pass', message: 'restore drill passed', details: { level: 5 } },
          ]));
        }
      }
      await closer.closeDueDays(zonedInstant(addDays(day, 1), '00:15', 'UTC'));
    }
    return { closer, archiveDir, latest: await closer.latest() };
  }

  it('every resource is in the snapshot; restore-tested only when L4+ held for the whole streak', async () => {
    // 33 green days; L3 on days 1-2, L4 from day 3: streak 33, restore-tested on 31 days.
    const short = await live((i) => (i <= 2 ? 3 : 4), 33);
    const s = short.latest as Snapshot;
    expect(s.population).toEqual([
      { probe: 'fake-check', target: 'alpha', resources: [{ resource: 'alpha/db', outcome: 'pass', level: 4 }, { resource: 'alpha/files', outcome: 'pass', level: 5 }] },
      { probe: 'fake-check', target: 'beta', resources: [{ resource: 'beta/db', outcome: 'pass', level: 4 }, { resource: 'beta/files', outcome: 'pass', level: 5 }] },
    ]);
    expect(s.controls[0]).toMatchObject({ verdict: 'green', streak: 33, evidenceLevel: 4, restoreTestedDays: 31 });
    const feed = buildFeed(s, { minGreenDays: 30, organization: 'Acme' });
    expect(feed.controls[0]).toMatchObject({ id: 'fake-control', consecutiveGreenDays: 33 });
    expect(feed.controls[0]?.restoreTested).toBeUndefined();
    expect((await verifyArchive(short.archiveDir)).ok).toBe(true);

    const whole = await live(() => 5, 31);
    const w = whole.latest as Snapshot;
    expect(w.controls[0]).toMatchObject({ streak: 31, evidenceLevel: 5, restoreTestedDays: 31 });
    expect(buildFeed(w, { minGreenDays: 30, organization: 'Acme' }).controls[0]?.restoreTested).toBe(true);
    // The renderings show the per-resource level and the population counts.
    const md = renderMarkdown(w);
    expect(md).toContain('## Tested population');
    expect(md).toContain('- `alpha/db` pass L5');
    expect(md).toContain('2 judged: 2 passed · 0 failed · 0 unknown · 0 not applicable');
    expect(md).toContain('L4 or more (restore-tested) on 31 days in a row');
    const html = renderHtml(w, { organization: 'Acme' });
    expect(html).toContain('Tested population');
    expect(html).toContain('<code style="font-family');
    expect(html).toMatch(/alpha\/db<\/code> L5/);
  });
});
