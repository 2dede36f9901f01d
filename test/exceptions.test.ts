import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Control } from '../src/config/controls.js';
import { ConfigError } from '../src/config/errors.js';
import type { RiskException } from '../src/config/schema.js';
import type { Daemon } from '../src/daemon.js';
import { startDaemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { addDays, dayOf } from '../src/posture/days.js';
import { applyExceptions, globMatch } from '../src/posture/exceptions.js';
import { buildFeed } from '../src/posture/feed.js';
import { renderHtml, renderMarkdown } from '../src/posture/render.js';
import { renderTrustPage } from '../src/http/trust.js';
import { buildSnapshot, type ProbeCadence } from '../src/posture/snapshot.js';
import { Snapshot, snapshotHash } from '../src/posture/snapshot-types.js';
import { controlStatus, type ProbeEvidence } from '../src/posture/status.js';
import type { Finding, ProbeResult } from '../src/probe/contract.js';
import { MAX_FAILING_PER_RUN, type UnitDay } from '../src/store/state.js';
import { get, LogCapture, testConfig, waitFor } from './helpers/daemon.js';
import { fakeBehaviour, fakeProbe } from './helpers/fake-probe.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';
import { sampleControl, sampleSnapshot } from './helpers/snapshots.js';

/**
 * Exceptions — risk acceptance (issue 15): an excepted failing finding does not redden its
 * control but is never hidden; expired ones stop matching at once; stale ones are reported; the
 * expiry is at most a year ahead.
 */

const catalog = `controls:
  - id: fake-control
    title: Fake control (internal)
    public: true
    publicTitle: Fake public title
    publicDescription: Fake public description
    frameworks: { soc2: [CC6.7], iso27001: [A.8.24] }
    probes: [fake-check]
`;

const accepted = (over: Partial<RiskException> = {}): RiskException => ({
  control: 'c1',
  resource: 'github.com/acme/legacy-*',
  reason: 'archived in Q1, read-only',
  approvedBy: 'ciso@acme.example',
  ticket: 'https://tickets.acme.example/SEC-42',
  expires: '2026-12-31',
  ...over,
});

describe('resource globs', () => {
  it.each<[string, string, boolean]>([
    ['github.com/acme/legacy-*', 'github.com/acme/legacy-api', true],
    ['github.com/acme/legacy-*', 'github.com/acme/api', false],
    ['github.com/acme/legacy-*', 'xgithub.com/acme/legacy-api', false],
    ['*', 'anything/at/all', true],
    ['db-?.internal:5432', 'db-1.internal:5432', true],
    ['db-?.internal:5432', 'db-12.internal:5432', false],
    ['a.b', 'axb', false],
    ['(x)+[y]', '(x)+[y]', true],
    ['acme/*/main', 'acme/api/main', true],
  ])('%s against %s → %s', (glob, name, expected) => expect(globMatch(glob, name)).toBe(expected));

  it('many stars on a long hostile name stay fast', () => {
    const t = Date.now();
    expect(globMatch('*a*a*a*a*a*a*a*a*b', 'a'.repeat(5_000))).toBe(false);
    expect(Date.now() - t).toBeLessThan(2_000);
  });
});

describe('applying exceptions', () => {
  const failing = [
    { probe: 'p1', target: 'org', resource: 'github.com/acme/legacy-api', message: 'no review required' },
    { probe: 'p1', target: 'org', resource: 'github.com/acme/api', message: 'no review required' },
  ];
  it('holds matching failures through the expiry day, reports stale and expired ones', () => {
    const stale = accepted({ resource: 'github.com/acme/gone' });
    const expired = accepted({ resource: 'github.com/acme/api', expires: '2026-11-20' });
    const out = applyExceptions('c1', failing, [accepted(), stale, expired, accepted({ control: 'other' })], '2026-12-31');
    expect(out.excepted.map((x) => x.resource)).toEqual(['github.com/acme/legacy-api']);
    expect(out.kept.map((f) => f.resource)).toEqual(['github.com/acme/api']);
    expect(out.stale).toEqual([stale]);
    expect(out.expired).toEqual([expired]);
    expect(out.lapsed.map((l) => l.finding.resource)).toEqual(['github.com/acme/api']);
    // The day after its expiry it holds nothing.
    expect(applyExceptions('c1', failing, [accepted()], '2027-01-01').excepted).toEqual([]);
  });
  it('a probe-scoped exception holds only that probe\'s findings', () => {
    expect(applyExceptions('c1', failing, [accepted({ probe: 'p2' })], '2026-12-01').excepted).toEqual([]);
    expect(applyExceptions('c1', failing, [accepted({ probe: 'p1' })], '2026-12-01').excepted).toHaveLength(1);
  });
  it('a unit whose failing list may be capped is never excepted', () => {
    expect(applyExceptions('c1', failing, [accepted()], '2026-12-01', () => false).excepted).toEqual([]);
  });
});

describe('exceptions in the config', () => {
  const today = dayOf(new Date(), 'UTC');
  const yaml = (list: string) => `exceptions:\n${list}`;
  const entry = (resource: string, expires: string, extra = '') =>
    `  - { control: fake-control, resource: "${resource}", reason: accepted, approvedBy: ciso@acme.example, expires: "${expires}"${extra} }\n`;
  const problems = (text: string): string[] => {
    try {
      testConfig(text, [fakeProbe], catalog);
      return [];
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return err.message.split('\n');
    }
  };

  it('an exception up to 365 days ahead loads; one already expired loads too (it is reported, not refused)', () => {
    const loaded = testConfig(yaml(entry('r*', addDays(today, 365), ', probe: fake-check, ticket: "https://t.example/1"') + entry('x', '2020-01-01')), [fakeProbe], catalog);
    expect(loaded.config.exceptions).toHaveLength(2);
    expect(loaded.config.exceptions[0]).toMatchObject({ probe: 'fake-check', ticket: 'https://t.example/1' });
  });
  it('an expiry too far ahead is a config error naming exceptions[2].expires', () => {
    const out = problems(yaml(entry('a', addDays(today, 10)) + entry('b', addDays(today, 20)) + entry('c', addDays(today, 366))));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/vigil\.yaml: exceptions\[2\]\.expires: \d{4}-\d{2}-\d{2} is more than 365 days ahead/);
  });
  it.each<[string, string, RegExp]>([
    ['no expiry', `  - { control: fake-control, resource: r, reason: x, approvedBy: y }\n`, /exceptions\[0\]\.expires: /],
    ['an impossible date', entry('r', '2026-02-30'), /exceptions\[0\]\.expires: not a calendar date/],
    ['an unknown control', `  - { control: nope, resource: r, reason: x, approvedBy: y, expires: "${today}" }\n`, /exceptions\[0\]\.control: unknown control "nope"/],
    ['a probe that does not evidence the control', entry('r', today, ', probe: other-probe'), /exceptions\[0\]\.probe: "other-probe" does not evidence fake-control/],
    ['a ticket that is not a URL', entry('r', today, ', ticket: "SEC-1"'), /exceptions\[0\]\.ticket: expected an http\(s\) URL/],
    ['an approval after the expiry', entry('r', today, `, approved: "${addDays(today, 1)}"`), /exceptions\[0\]\.approved: \d{4}-\d{2}-\d{2} is after its expiry/],
    ['an impossible approval date', entry('r', today, ', approved: "2026-02-30"'), /exceptions\[0\]\.approved: not a calendar date/],
    ['no approver', `  - { control: fake-control, resource: r, reason: x, expires: "${today}" }\n`, /exceptions\[0\]\.approvedBy: /],
  ])('%s is a config error naming the key', (_name, list, pattern) => {
    expect(problems(yaml(list)).some((line) => pattern.test(line))).toBe(true);
  });
});

describe('exceptions in the day snapshot', () => {
  const controls: Control[] = [
    { id: 'c1', title: 'Protected branches', public: true, publicTitle: 'Reviewed changes', publicDescription: 'Every change is reviewed.', frameworks: { soc2: ['CC8.1'], iso27001: ['A.8.32'] }, probes: ['p1'] },
  ];
  const probes = new Map<string, ProbeCadence>([['p1', { id: 'p1', schedule: '0 * * * *', intervalMs: 3_600_000, targets: ['org'] }]]);
  const day = (failing: UnitDay['failing'], red = failing.length > 0 ? 24 : 0): UnitDay => ({ runs: 24, red, unknown: 0, errors: 0, last: { finishedAt: '2026-11-21T23:00:02.000Z', sourceFreshness: null, error: null }, failing });
  const legacy = { resource: 'github.com/acme/legacy-api', message: 'main is not protected: require a pull request review' };
  // Yesterday: 30 green days in a row, so today's green makes 31 and the control is on the feed.
  const prev = sampleSnapshot('2026-11-20', [sampleControl({ id: 'c1', streak: 30, greenSince: '2026-10-22', lastGreenDay: '2026-11-20' })]);
  const build = (failing: UnitDay['failing'], exceptions: RiskException[]) =>
    buildSnapshot({ date: '2026-11-21', timezone: 'UTC', minGreenDays: 30, measured: controls, notConfigured: [], probes, ledger: new Map([['p1|org', day(failing)]]), prev, exceptions });
  const seal = (body: ReturnType<typeof build>) => Snapshot.parse({ ...body, hash: snapshotHash(body) });

  it('an exception approved after the day does not hold that day (a backlog close stays red), and holds from its approved day', () => {
    const late = build([legacy], [accepted({ approved: '2026-11-22' })]);
    expect(late.controls[0]).toMatchObject({ verdict: 'red' });
    expect(late.controls[0]?.failing).toEqual([{ ...legacy, probe: 'p1', target: 'org' }]);
    expect(late.controls[0]?.staleExceptions ?? []).toEqual([]);
    expect(late.controls[0]?.expiredExceptions ?? []).toEqual([]);
    const onTime = build([legacy], [accepted({ approved: '2026-11-21' })]);
    expect(onTime.controls[0]).toMatchObject({ verdict: 'green', failing: [] });
    expect(onTime.exceptions).toEqual([accepted({ approved: '2026-11-21' })]);
    expect(Snapshot.parse({ ...onTime, hash: snapshotHash(onTime) }).exceptions?.[0]?.approved).toBe('2026-11-21');
  });
  it('the feed counts accepted risks, not resources: one glob over three failing repositories is 1, two entries are 2', () => {
    const three = ['a-api', 'b-api', 'c-api'].map((n) => ({ resource: `github.com/acme/legacy-${n}`, message: 'main is not protected' }));
    const one = seal(build(three, [accepted({ resource: 'github.com/acme/legacy-*' })]));
    expect(one.controls[0]?.verdict).toBe('green');
    expect(one.controls[0]?.exceptions).toHaveLength(3);
    expect(buildFeed(one, { minGreenDays: 30, organization: 'Acme' }).controls[0]?.exceptions).toBe(1);
    const two = seal(build(three, [accepted({ resource: 'github.com/acme/legacy-a*' }), accepted({ resource: 'github.com/acme/*-api', reason: 'second risk' })]));
    expect(two.controls[0]?.verdict).toBe('green');
    expect(buildFeed(two, { minGreenDays: 30, organization: 'Acme' }).controls[0]?.exceptions).toBe(2);
  });
  it('an exception that holds a failure: green with exceptions, streak continues, listed (not in failing), feed count 1 without names', () => {
    const body = build([legacy], [accepted()]);
    const c = body.controls[0]!;
    expect(c).toMatchObject({ verdict: 'green', reasons: [], streak: 31, failing: [] });
    expect(c.exceptions).toEqual([
      {
        resource: 'github.com/acme/legacy-api',
        probe: 'p1',
        target: 'org',
        message: legacy.message,
        reason: 'archived in Q1, read-only',
        approvedBy: 'ciso@acme.example',
        ticket: 'https://tickets.acme.example/SEC-42',
        expires: '2026-12-31',
      },
    ]);
    expect(body.exceptions).toEqual([accepted()]);
    expect(body.counts).toEqual({ green: 1, red: 0, unknown: 0 });
    const snapshot = seal(body);
    const feed = buildFeed(snapshot, { minGreenDays: 30, organization: 'Acme' });
    expect(feed.controls).toHaveLength(1);
    expect(feed.controls[0]?.exceptions).toBe(1);
    const json = JSON.stringify(feed);
    const page = renderTrustPage(feed);
    expect(page).toContain('green with 1 exception: accepted risks, approved and time-limited');
    for (const secret of ['legacy', 'ciso@', 'SEC-42', 'archived in Q1']) {
      expect(json).not.toContain(secret);
      expect(page).not.toContain(secret);
    }
    // The email and the Markdown list it, with who accepted it and until when.
    for (const text of [renderHtml(snapshot, { organization: 'Acme' }), renderMarkdown(snapshot)]) {
      expect(text).toContain('github.com/acme/legacy-api');
      expect(text).toContain('accepted by ciso@acme.example until 2026-12-31');
    }
  });

  it('without the exception the same day is red and the feed drops the control', () => {
    const body = build([legacy], []);
    expect(body.controls[0]).toMatchObject({ verdict: 'red', streak: 0, failing: [{ probe: 'p1', target: 'org', ...legacy }] });
    expect(body.controls[0]?.exceptions).toBeUndefined();
    expect(body.exceptions).toBeUndefined();
    expect(buildFeed(seal(body), { minGreenDays: 30, organization: 'Acme' }).controls).toEqual([]);
  });

  it('an expired exception stops matching at once: red, with the reason and the expired exception listed', () => {
    const expired = accepted({ expires: '2026-11-20' });
    const body = build([legacy], [expired]);
    expect(body.controls[0]).toMatchObject({ verdict: 'red', failing: [{ resource: legacy.resource }], expiredExceptions: [expired] });
    expect(body.controls[0]?.reasons).toContain('p1/org: github.com/acme/legacy-api fails, and its exception (approved by ciso@acme.example) expired on 2026-11-20');
  });

  it('an exception that matches no failing finding is reported as stale', () => {
    const stale = accepted({ resource: 'github.com/acme/retired-*' });
    const body = build([], [stale]);
    expect(body.controls[0]).toMatchObject({ verdict: 'green', staleExceptions: [stale] });
    expect(body.controls[0]?.exceptions).toBeUndefined();
  });

  it('one failure excepted and another not: still red, the excepted one listed apart', () => {
    const body = build([legacy, { resource: 'github.com/acme/api', message: 'no review' }], [accepted()]);
    expect(body.controls[0]).toMatchObject({ verdict: 'red', failing: [{ resource: 'github.com/acme/api' }], exceptions: [{ resource: legacy.resource }] });
  });

  it('a failing list that may have been capped is never excepted (cannot prove every failure is)', () => {
    const many = Array.from({ length: MAX_FAILING_PER_RUN }, (_, i) => ({ resource: `github.com/acme/legacy-${String(i).padStart(5, '0')}`, message: 'unprotected' }));
    const body = build(many, [accepted()]);
    expect(body.controls[0]?.verdict).toBe('red');
    expect(body.controls[0]?.exceptions).toBeUndefined();
    expect(body.controls[0]?.failing).toHaveLength(MAX_FAILING_PER_RUN);
  });

  it('the diff names exceptions added and withdrawn since the previous snapshot', () => {
    expect(build([legacy], [accepted()]).diff).toMatchObject({ exceptionsAdded: [accepted()] });
    const withOld = sampleSnapshot('2026-11-20', prev.controls, null, { exceptions: [accepted({ resource: 'old-*' })] });
    const body = buildSnapshot({ date: '2026-11-21', timezone: 'UTC', minGreenDays: 30, measured: controls, notConfigured: [], probes, ledger: new Map([['p1|org', day([legacy])]]), prev: withOld, exceptions: [accepted()] });
    expect(body.diff.exceptionsAdded).toEqual([accepted()]);
    expect(body.diff.exceptionsRemoved).toEqual([accepted({ resource: 'old-*' })]);
    // Unchanged: neither field.
    const same = sampleSnapshot('2026-11-20', prev.controls, null, { exceptions: [accepted()] });
    const again = buildSnapshot({ date: '2026-11-21', timezone: 'UTC', minGreenDays: 30, measured: controls, notConfigured: [], probes, ledger: new Map([['p1|org', day([legacy])]]), prev: same, exceptions: [accepted()] });
    expect(Object.keys(again.diff)).toEqual(['since', 'newReds', 'recoveries', 'reachedThirtyDays', 'leftFeed']);
  });

  it('the archived list is in a hash-stable order whatever the config order', () => {
    const a = accepted({ resource: 'a*' });
    const b = accepted({ resource: 'b*', probe: 'p1' });
    expect(snapshotHash(build([legacy], [a, b]))).toBe(snapshotHash(build([legacy], [b, a])));
  });

  it('a snapshot from before exceptions parses and hashes as before', () => {
    const old = sampleSnapshot('2026-11-21', [sampleControl({ id: 'c1' })]);
    const reparsed = Snapshot.parse(JSON.parse(JSON.stringify(old)));
    expect(snapshotHash(reparsed)).toBe(old.hash);
    expect(Object.keys(reparsed)).not.toContain('exceptions');
  });
});

describe('exceptions in the current status', () => {
  const now = new Date('2026-11-21T10:00:00Z');
  const result = (findings: Finding[]): ProbeResult => ({ runId: 'r', probe: 'p1', target: 'org', scheduledFor: '2026-11-21T09:00:00.000Z', startedAt: '2026-11-21T09:00:00.000Z', finishedAt: '2026-11-21T09:00:01.000Z', findings });
  const evidence = (findings: Finding[]): ProbeEvidence[] => [{ probe: 'p1', enabled: true, intervalMs: 3_600_000, targets: [{ target: 'org', result: result(findings) }] }];
  const failing: Finding[] = [{ resource: 'github.com/acme/legacy-api', outcome: 'fail', message: 'unprotected' }, { resource: 'github.com/acme/api', outcome: 'pass', message: 'ok' }];

  it('an excepted failure is green now and listed; an expired one is red again with the reason', () => {
    const held = controlStatus({ id: 'c1', probes: ['p1'] }, evidence(failing), now, { list: [accepted()], today: '2026-11-21' });
    expect(held).toMatchObject({ status: 'green', reasons: [], excepted: [{ resource: 'github.com/acme/legacy-api', approvedBy: 'ciso@acme.example', expires: '2026-12-31' }] });
    const lapsed = controlStatus({ id: 'c1', probes: ['p1'] }, evidence(failing), now, { list: [accepted({ expires: '2026-11-20' })], today: '2026-11-21' });
    expect(lapsed.status).toBe('red');
    expect(lapsed.expiredExceptions).toHaveLength(1);
    expect(lapsed.reasons.at(-1)).toContain('expired on 2026-11-20');
  });

  it('reasons for resources that could not be judged name the cause', () => {
    const s = controlStatus({ id: 'c1', probes: ['p1'] }, evidence([{ resource: 'github.com/acme/api', outcome: 'unknown', message: 'token cannot read rulesets' }]), now);
    expect(s.reasons).toEqual(['p1/org: 1 could not be judged: github.com/acme/api (token cannot read rulesets)']);
  });
});

describe('exceptions through the daemon (real redis-server, /api/controls and the day close)', () => {
  const token = 'exceptions-admin-token-0123456789-abcdef';
  let redis: TestRedisServer;
  let daemon: Daemon;
  let clock = new Date('2026-11-20T10:00:00Z');

  beforeAll(async () => {
    redis = await startRedisServer();
    fakeBehaviour.set('alpha', async () => [
      { resource: 'legacy-repo', outcome: 'fail', message: 'main is not protected: require reviews' },
      { resource: 'api', outcome: 'pass', message: 'protected' },
    ]);
    fakeBehaviour.set('beta', async () => [{ resource: 'r2', outcome: 'pass', message: 'fine' }]);
    const loaded = testConfig(
      `redis: { url: "${redis.url}", prefix: ${uniquePrefix('exceptions')} }
http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0, token: { env: ADMIN } } }
probes:
  fake-check: { schedule: "0 3 * * *" }
exceptions:
  - { control: fake-control, probe: fake-check, resource: "legacy-*", reason: "archived, read-only", approvedBy: ciso@acme.example, ticket: "https://tickets.acme.example/SEC-42", expires: "2026-11-25" }
  - { control: fake-control, resource: "retired-*", reason: "decommissioned", approvedBy: cto@acme.example, expires: "2026-11-25" }
  - { control: fake-control, resource: "r2", reason: "old", approvedBy: cto@acme.example, expires: "2026-11-01" }
`,
      [fakeProbe],
      catalog,
      { ADMIN: token },
    );
    daemon = await startDaemon({ loaded, log: createLogger('warn', new LogCapture()), now: () => clock });
    await waitFor(async () => daemon.recorder.recorded >= 2, 10_000, 'the catch-up runs of 2026-11-20');
  });
  afterAll(async () => {
    await daemon?.stop();
    await redis?.stop();
  });

  it('/api/controls lists the excepted failure, the stale and the expired exception; the control is green', async () => {
    const res = await get(`${daemon.adminUrl}/api/controls`, token);
    expect(res.status).toBe(200);
    const control = (res.json() as { controls: Array<Record<string, unknown>> }).controls.find((c) => c.id === 'fake-control');
    expect(control).toMatchObject({
      status: 'green',
      excepted: [{ resource: 'legacy-repo', probe: 'fake-check', target: 'alpha', message: 'main is not protected: require reviews', approvedBy: 'ciso@acme.example', expires: '2026-11-25' }],
      staleExceptions: [{ resource: 'retired-*', approvedBy: 'cto@acme.example' }],
      expiredExceptions: [{ resource: 'r2', expires: '2026-11-01' }],
    });
  });

  it('the closed day is green with the exception, and the archived snapshot lists the config\'s exceptions', async () => {
    clock = new Date('2026-11-21T00:15:00Z');
    await daemon.tick();
    const res = await get(`${daemon.adminUrl}/api/snapshots/2026-11-20`, token);
    expect(res.status).toBe(200);
    const s = Snapshot.parse(res.json());
    expect(s.controls[0]).toMatchObject({ verdict: 'green', streak: 1, failing: [], exceptions: [{ resource: 'legacy-repo', target: 'alpha' }] });
    // Sorted by control, probe (none first), resource: the config's order does not change the hash.
    expect(s.exceptions?.map((e) => e.resource)).toEqual(['r2', 'retired-*', 'legacy-*']);
    expect(s.controls[0]?.staleExceptions?.map((e) => e.resource)).toEqual(['retired-*']);
  });
});
