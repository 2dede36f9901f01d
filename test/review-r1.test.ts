import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VigilConfig } from '../src/config/schema.js';
import { renderTrustPage, trustPageHeaders } from '../src/http/trust.js';
import { buildFeed } from '../src/posture/feed.js';
import { addDays } from '../src/posture/days.js';
import { sampleControl, sampleSnapshot } from './helpers/snapshots.js';
import { loadTrustBranding } from '../src/http/trust-branding.js';
import { buildSnapshot, type ProbeCadence } from '../src/posture/snapshot.js';
import { Snapshot, snapshotHash } from '../src/posture/snapshot-types.js';
import type { Finding, ProbeResult } from '../src/probe/contract.js';
import { MAX_POPULATION_MESSAGE, StateStore } from '../src/store/state.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';

/** Review R1: defects found in the tested population (H1) and their regression tests. */
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

const probes = new Map<string, ProbeCadence>([['fake-check', { id: 'fake-check', schedule: '0 * * * *', intervalMs: 3_600_000, targets: ['alpha'] }]]);

function seal(ledger: Awaited<ReturnType<StateStore['dayLedger']>>): Snapshot {
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
  // What the day close does before archiving: a body the schema rejects can never be published.
  return Snapshot.parse({ ...body, hash: snapshotHash(body) });
}

describe('review R1: the population', () => {
  it('a negative details.level is not an evidence level: the day still closes (no evidenceLevel below 0)', async () => {
    const state = new StateStore(client, uniquePrefix('r1-neg'));
    await state.record(result('alpha', '2026-11-20T09:00:00.000Z', [{ resource: 'vault/db', outcome: 'pass', message: 'ok', details: { level: -1 } }, { resource: 'vault/files', outcome: 'pass', message: 'ok', details: { level: 4 } }]));
    const ledger = await state.dayLedger('2026-11-20');
    expect(ledger.get('fake-check|alpha')?.population).toEqual([
      { resource: 'vault/db', outcome: 'pass' },
      { resource: 'vault/files', outcome: 'pass', level: 4 },
    ]);
    const s = seal(ledger);
    expect(s.controls[0]?.evidenceLevel).toBe(4);
  });

  it('a long message of astral characters is cut between code points: the run is still recorded', async () => {
    const state = new StateStore(client, uniquePrefix('r1-astral'));
    const message = `branch: ${'\u{1F680}'.repeat(400)} is not protected`;
    expect(await state.recordOnce(result('alpha', '2026-11-20T09:00:00.000Z', [{ resource: 'repo', outcome: 'fail', message }]))).toBe('recorded');
    const kept = (await state.dayLedger('2026-11-20')).get('fake-check|alpha')?.population?.[0]?.message ?? '';
    expect(kept.length).toBeLessThanOrEqual(MAX_POPULATION_MESSAGE);
    expect(kept.endsWith('\u{1F680}…')).toBe(true);
    expect(kept).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });

  it("a run that judged nothing refreshes the day population's TTL like the day's other keys", async () => {
    const prefix = uniquePrefix('r1-ttl');
    const state = new StateStore(client, prefix);
    await state.record(result('alpha', '2026-11-20T09:00:00.000Z', [{ resource: 'vault/db', outcome: 'pass', message: 'ok' }]));
    const key = `${prefix}:day-population:2026-11-20`;
    await client.expire(key, 100);
    await client.expire(`${prefix}:day:2026-11-20`, 100);
    await state.record(result('alpha', '2026-11-20T10:00:00.000Z', [], { error: { class: 'TransientError', message: '503' } }));
    const dayTtl = await client.ttl(`${prefix}:day:2026-11-20`);
    expect(dayTtl).toBeGreaterThan(86_400);
    expect(await client.ttl(key)).toBe(dayTtl);
  });
});

describe('review R1: trust branding URLs', () => {
  const parse = (logoUrl: string) => VigilConfig.safeParse({ trust: { organization: 'Acme', logoUrl } });

  it.each([
    ['a ; in the host (it would split the CSP header)', "https://cdn.example;img-src.com/logo.png"],
    ["a ' and $ in the host", "https://a'$b.example/logo.png"],
    ['a , in the host', 'https://a,b.example/logo.png'],
  ])('logoUrl with %s is refused, naming the key path', (_name, logoUrl) => {
    const r = parse(logoUrl);
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.'))).toEqual(['trust.logoUrl']);
  });

  it.each(['https://cdn.example.com/logo.png', 'https://cdn.example.com:8443/a/logo.png?v=2', 'https://192.0.2.7/logo.png', 'https://[2001:db8::1]/logo.png', 'https://b\u00fccher.example/logo.png'])('%s is accepted and its origin is a valid CSP source', (logoUrl) => {
    const r = parse(logoUrl);
    expect(r.success).toBe(true);
    const csp = trustPageHeaders(loadTrustBranding((r.data as VigilConfig).trust, '/'))['content-security-policy'] as string;
    const img = csp.split('; ').at(-1) as string;
    expect(img).toMatch(/^img-src https:\/\/[a-z0-9.:[\]-]+$/);
  });
});

describe('review R1: what "restore-tested" claims in public', () => {
  it('says the latest drill within its interval passed on every day, not that a restore ran every day', () => {
    const c = sampleControl({ id: 'restore-testing', streak: 40, greenSince: addDays('2026-11-21', -39), evidenceLevel: 4, restoreTestedDays: 40 });
    const feed = buildFeed(sampleSnapshot('2026-11-21', [c]), { minGreenDays: 30, organization: 'Acme' });
    expect(feed.controls[0]?.restoreTested).toBe(true);
    const html = renderTrustPage(feed);
    expect(html).toContain('restore-tested');
    // L4 on a day means a drill passed within maxDaysSinceDrill (default 90 days), not on that day.
    expect(html).not.toMatch(/a restore succeeded in isolation on every day/);
    expect(html).toContain('the latest restore drill, within its required interval, succeeded in isolation');
  });
});
