import { createHash } from 'node:crypto';
import { pino } from 'pino';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listen, type Listener } from '../src/http/server.js';
import { etagMatches, renderTrustPage, trustRoutes } from '../src/http/trust.js';
import { buildFeed, controlCadence, humanInterval, TrustFeed } from '../src/posture/feed.js';
import type { Snapshot, SnapshotControl } from '../src/posture/snapshot-types.js';
import { launchBrowser, renderPage } from './helpers/browser.js';
import { sampleControl, sampleSnapshot } from './helpers/snapshots.js';

const DAY = '2026-11-21';

/** A control whose `greenSince` agrees with `streak` on DAY. */
function streaked(id: string, streak: number, over: Partial<SnapshotControl> = {}): SnapshotControl {
  return sampleControl({ id, streak, greenSince: streak > 0 ? daysBefore(DAY, streak - 1) : null, thirtyDayGreen: streak >= 30, ...over });
}

function daysBefore(date: string, n: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) - n * 86_400_000).toISOString().slice(0, 10);
}

describe('buildFeed', () => {
  const cases: Array<{ name: string; control: SnapshotControl; minGreenDays?: number; listed: boolean }> = [
    { name: 'a 29-day streak is not on the feed', control: streaked('c', 29), listed: false },
    { name: 'a 30-day streak is on the feed', control: streaked('c', 30), listed: true },
    { name: 'a control not marked public is never listed', control: streaked('c', 60, { public: false }), listed: false },
    { name: 'a red day with a stale streak number is not listed', control: streaked('c', 40, { verdict: 'red', thirtyDayGreen: true }), listed: false },
    { name: 'an unknown day with a stale streak number is not listed', control: streaked('c', 40, { verdict: 'unknown', thirtyDayGreen: true }), listed: false },
    { name: 'the thirtyDayGreen flag alone does not list a 29-day streak', control: streaked('c', 29, { thirtyDayGreen: true }), listed: false },
    { name: 'minGreenDays 45: a 44-day streak is absent', control: streaked('c', 44), minGreenDays: 45, listed: false },
    { name: 'minGreenDays 45: a 45-day streak is listed', control: streaked('c', 45), minGreenDays: 45, listed: true },
    { name: 'minGreenDays below 30 is raised to 30', control: streaked('c', 29), minGreenDays: 10, listed: false },
    { name: 'a greenSince that disagrees with the streak is not published', control: streaked('c', 35, { greenSince: '2026-11-01' }), listed: false },
    { name: 'a green day without lastMeasuredAt is not published', control: streaked('c', 35, { lastMeasuredAt: null }), listed: false },
    { name: 'a control with no probe cadence is not published', control: streaked('c', 35, { cadence: [] }), listed: false },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const snap = sampleSnapshot(DAY, [tc.control]);
      const feed = buildFeed(snap, { minGreenDays: tc.minGreenDays ?? 30, organization: 'Acme' });
      expect(feed.controls.map((c) => c.id)).toEqual(tc.listed ? ['c'] : []);
    });
  }

  it('a 30-day streak is listed with exactly its public fields, greenSince its first green day', () => {
    const snap = sampleSnapshot(DAY, [
      streaked('tls-certificates', 30, {
        frameworks: { soc2: ['CC6.1', 'CC6.7'], iso27001: ['A.8.24'] },
        cadence: [
          { probe: 'tls-certificate-posture', schedule: '*/15 * * * *', intervalSeconds: 900 },
          { probe: 'tls-hsts', schedule: '0 */4 * * *', intervalSeconds: 14_400 },
        ],
      }),
    ]);
    expect(buildFeed(snap, { minGreenDays: 30, organization: 'Acme' })).toEqual({
      schema: 'vigil.trust-feed/1',
      organization: 'Acme',
      asOf: DAY,
      minGreenDays: 30,
      snapshotHash: snap.hash,
      controls: [
        {
          id: 'tls-certificates',
          title: 'Public tls-certificates',
          description: 'What tls-certificates means for customers.',
          frameworks: { soc2: ['CC6.1', 'CC6.7'], iso27001: ['A.8.24'] },
          greenSince: '2026-10-23',
          consecutiveGreenDays: 30,
          lastMeasuredAt: '2026-11-21T23:45:02.000Z',
          // A snapshot from before measured cadence: the schedule, said as such.
          cadence: 'scheduled every 4 hours',
          snapshotHash: snap.hash,
        },
      ],
    });
  });

  it('with no snapshot yet the feed is valid and empty', () => {
    const feed = buildFeed(undefined, { minGreenDays: 30, organization: 'Acme' });
    expect(TrustFeed.parse(feed)).toEqual({ schema: 'vigil.trust-feed/1', organization: 'Acme', asOf: null, minGreenDays: 30, snapshotHash: null, controls: [] });
  });

  const intervals: Array<[number, string]> = [
    [30, 'every 30 seconds'],
    [60, 'every minute'],
    [900, 'every 15 minutes'],
    [5_430, 'every 91 minutes'],
    [3_600, 'hourly'],
    [14_400, 'every 4 hours'],
    [86_400, 'daily'],
    [172_800, 'every 2 days'],
    [604_800, 'weekly'],
  ];
  for (const [seconds, words] of intervals) {
    it(`an interval of ${seconds} s reads "${words}"`, () => expect(humanInterval(seconds)).toBe(words));
  }

  it('a control is as frequent as its slowest probe, and has no cadence without a usable interval', () => {
    expect(controlCadence([900, 86_400, 3_600])).toBe('daily');
    expect(controlCadence([])).toBeUndefined();
    expect(controlCadence([900, 0])).toBeUndefined();
  });
});

/** Every string in `value` that contains "LEAK". */
function markers(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') {
    if (value.includes('LEAK')) out.push(value);
  } else if (Array.isArray(value)) {
    for (const v of value) markers(v, out);
  } else if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) markers(v, out);
  }
  return out;
}

/** Every object key anywhere in `value`. */
function keys(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) keys(v, out);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.add(k);
      keys(v, out);
    }
  }
  return out;
}

const failing = (tag: string) => [
  { probe: `LEAK-${tag}-failing-probe`, target: `LEAK-${tag}-failing-target`, resource: `LEAK-${tag}-resource arn:aws:iam::123:user/alice`, message: `LEAK-${tag}-message: enable MFA for alice` },
];

/** A bad day: the one listed control sits among failing, private and unknown ones, all carrying markers. */
function leakySnapshot(): Snapshot {
  const base = sampleSnapshot(DAY, [
    streaked('public-ok', 31, {
      title: 'LEAK-internal-title-of-listed',
      reasons: ['LEAK-reason-of-listed'],
      failing: failing('listed'),
      cadence: [{ probe: 'LEAK-probe-id-of-listed', schedule: 'LEAK-cron */15 * * * *', intervalSeconds: 900 }],
    }),
    streaked('LEAK-red-id', 40, {
      verdict: 'red',
      title: 'LEAK-red-internal-title',
      publicTitle: 'LEAK-red-public-title',
      publicDescription: 'LEAK-red-public-description',
      frameworks: { soc2: ['LEAK-red-soc2'], iso27001: ['LEAK-red-iso'] },
      reasons: ['LEAK-red-reason: 3 repositories without branch protection'],
      failing: failing('red'),
      lastMeasuredAt: '2026-11-21T10:00:00.000Z',
    }),
    streaked('LEAK-private-id', 90, {
      public: false,
      title: 'LEAK-private-internal-title',
      publicTitle: 'LEAK-private-public-title',
      publicDescription: 'LEAK-private-public-description',
      frameworks: { soc2: ['LEAK-private-soc2'], iso27001: ['LEAK-private-iso'] },
    }),
    streaked('LEAK-unknown-id', 0, {
      verdict: 'unknown',
      title: 'LEAK-unknown-internal-title',
      publicTitle: 'LEAK-unknown-public-title',
      publicDescription: 'LEAK-unknown-public-description',
      reasons: ['LEAK-unknown-reason: probe error 403 missing scope'],
      lastMeasuredAt: null,
    }),
  ], 'a'.repeat(64), {
    timezone: 'LEAK/Timezone',
    counts: { green: 1, red: 1, unknown: 1 },
    probeHealth: [
      { probe: 'LEAK-health-probe', target: 'LEAK-health-target', runs: 96, errors: 5, unknown: 2, red: 3, lastRunAt: 'LEAK-health-lastRunAt', stale: true, sourceFreshness: 'LEAK-health-freshness', lastError: 'LEAK-health-error: connect ECONNREFUSED 10.1.2.3:443' },
    ],
    coverage: { soc2: [{ id: 'LEAK-coverage-soc2', status: 'partly_measured', controls: ['LEAK-coverage-control'] }], iso27001: [{ id: 'LEAK-coverage-iso', status: 'not_measured', controls: [] }] },
    diff: { since: 'LEAK-diff-since', newReds: ['LEAK-diff-newred'], recoveries: ['LEAK-diff-recovery'], reachedThirtyDays: ['LEAK-diff-reached'], leftFeed: ['LEAK-diff-left'] },
  });
  return { ...base, signature: 'LEAK-signature', signedBy: 'LEAK-signedby' };
}

const silent = pino({ level: 'silent' });
const listeners: Listener[] = [];
async function serve(latest: () => Promise<Snapshot | undefined>, over: { minGreenDays?: number; maxAgeSeconds?: number } = {}): Promise<Listener> {
  const routes = trustRoutes({ latest, minGreenDays: over.minGreenDays ?? 30, organization: 'Acme & Co <Security>', maxAgeSeconds: over.maxAgeSeconds ?? 120 });
  const l = await listen('public', { host: '127.0.0.1', port: 0 }, routes, silent);
  listeners.push(l);
  return l;
}
afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.close()));
});

describe('nothing but public fields leaves the snapshot', () => {
  it('no marker from failing resources, reasons, errors, internal titles, probe health or other controls appears in the feed or the page', async () => {
    const snap = leakySnapshot();
    const planted = markers(snap);
    expect(planted.length).toBeGreaterThanOrEqual(40);
    const l = await serve(async () => snap);
    const json = await (await fetch(`${l.url}/trust/feed.json`)).text();
    const html = await (await fetch(`${l.url}/trust`)).text();
    for (const text of [json, html, renderTrustPage(buildFeed(snap, { minGreenDays: 30, organization: 'Acme' }))]) {
      expect(planted.filter((m) => text.includes(m))).toEqual([]);
      expect(text).not.toContain('LEAK');
      expect(text).not.toContain('*/15');
      expect(text).not.toContain('alice');
      expect(text).not.toContain('ECONNREFUSED');
    }
    // …while what is meant to be public is there.
    for (const text of [json, html]) {
      for (const shown of ['Public public-ok', 'What public-ok means for customers.', 'CC6.7', 'A.8.24', '2026-10-22', '31', 'every 15 minutes', snap.hash]) expect(text).toContain(shown);
    }
    // The feed's shape is the allow-list, at every depth.
    expect([...keys(JSON.parse(json))].sort()).toEqual(
      ['schema', 'organization', 'asOf', 'minGreenDays', 'snapshotHash', 'controls', 'id', 'title', 'description', 'frameworks', 'soc2', 'iso27001', 'greenSince', 'consecutiveGreenDays', 'lastMeasuredAt', 'cadence'].sort(),
    );
    expect((JSON.parse(json) as TrustFeed).controls.map((c) => c.id)).toEqual(['public-ok']);
  });

  it('the page escapes text from the catalog', () => {
    const snap = sampleSnapshot(DAY, [streaked('x', 30, { publicTitle: '<script>alert("t")</script> & co', publicDescription: "<img src=x onerror='y'>" })]);
    const html = renderTrustPage(buildFeed(snap, { minGreenDays: 30, organization: '<b>Org</b>' }));
    expect(html).toContain('&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt; &amp; co');
    expect(html).toContain('&lt;img src=x onerror=&#39;y&#39;&gt;');
    expect(html).toContain('<h1>&lt;b&gt;Org&lt;/b&gt;</h1>');
    expect(html).not.toMatch(/<script|<img|<b>/i);
  });
});

describe('trust routes over HTTP', () => {
  const sha = (body: ArrayBuffer) => `"${createHash('sha256').update(Buffer.from(body)).digest('hex').slice(0, 32)}"`;

  it('feed.json is CORS-open, cacheable, and tagged with a strong ETag over its exact bytes', async () => {
    const snap = sampleSnapshot(DAY, [sampleControl({ id: 'tls-certificates' })]);
    const l = await serve(async () => snap);
    const res = await fetch(`${l.url}/trust/feed.json`);
    const body = await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('public, max-age=120');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]{32}"$/);
    expect(res.headers.get('etag')).toBe(sha(body));
    expect(JSON.parse(Buffer.from(body).toString('utf8'))).toEqual(buildFeed(snap, { minGreenDays: 30, organization: 'Acme & Co <Security>' }));
  });

  it('If-None-Match answers 304 without a body for the tag, a W/ tag, a list or *, and 200 otherwise', async () => {
    const snap = sampleSnapshot(DAY, [sampleControl({ id: 'tls-certificates' })]);
    const l = await serve(async () => snap);
    for (const path of ['/trust/feed.json', '/trust']) {
      const etag = (await fetch(`${l.url}${path}`)).headers.get('etag') ?? 'missing';
      for (const inm of [etag, `W/${etag}`, `"nope", W/"other", ${etag}`, '*']) {
        const res = await fetch(`${l.url}${path}`, { headers: { 'if-none-match': inm } });
        expect({ path, inm, status: res.status, body: await res.text(), etag: res.headers.get('etag'), cache: res.headers.get('cache-control') }).toEqual({
          path, inm, status: 304, body: '', etag, cache: 'public, max-age=120',
        });
      }
      const miss = await fetch(`${l.url}${path}`, { headers: { 'if-none-match': '"0123456789abcdef0123456789abcdef", W/"x"' } });
      expect(miss.status).toBe(200);
      expect((await miss.arrayBuffer()).byteLength).toBeGreaterThan(0);
    }
  });

  it('a new snapshot changes the ETag, and the old tag no longer gets a 304', async () => {
    let snap: Snapshot | undefined = sampleSnapshot('2026-11-20', [streaked('tls-certificates', 30)]);
    const l = await serve(async () => snap);
    const first = await fetch(`${l.url}/trust/feed.json`);
    const firstPage = await fetch(`${l.url}/trust`);
    const [oldTag, oldPageTag] = [first.headers.get('etag') ?? '', firstPage.headers.get('etag') ?? ''];
    snap = sampleSnapshot(DAY, [streaked('tls-certificates', 31)], snap.hash);
    const res = await fetch(`${l.url}/trust/feed.json`, { headers: { 'if-none-match': oldTag } });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).not.toBe(oldTag);
    expect(((await res.json()) as TrustFeed).asOf).toBe(DAY);
    const page = await fetch(`${l.url}/trust`, { headers: { 'if-none-match': oldPageTag } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('31 consecutive days');
    // No snapshot at all (e.g. the archive was moved away) is a third, distinct representation.
    snap = undefined;
    const none = await fetch(`${l.url}/trust/feed.json`);
    expect(none.headers.get('etag')).not.toBe(res.headers.get('etag'));
    expect(((await none.json()) as TrustFeed).controls).toEqual([]);
  });

  it('HEAD gets the GET headers without a body', async () => {
    const snap = sampleSnapshot(DAY, [sampleControl({ id: 'tls-certificates' })]);
    const l = await serve(async () => snap);
    for (const path of ['/trust/feed.json', '/trust']) {
      const get = await fetch(`${l.url}${path}`);
      const getBytes = (await get.arrayBuffer()).byteLength;
      const head = await fetch(`${l.url}${path}`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(await head.text()).toBe('');
      for (const h of ['etag', 'content-type', 'cache-control', 'access-control-allow-origin', 'content-security-policy', 'x-content-type-options']) {
        expect({ path, h, v: head.headers.get(h) }).toEqual({ path, h, v: get.headers.get(h) });
      }
      expect(head.headers.get('content-length')).toBe(String(getBytes));
    }
  });

  it('the page is HTML under a strict CSP with no script, and the maxAge is configurable', async () => {
    const l = await serve(async () => sampleSnapshot(DAY, [sampleControl({ id: 'tls-certificates' })]), { maxAgeSeconds: 0 });
    const res = await fetch(`${l.url}/trust`);
    const html = await res.text();
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('cache-control')).toBe('public, max-age=0');
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]{32}"$/);
    expect(html).toMatch(/^<!doctype html>\n<html lang="en">/);
    expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    expect(html).toContain('<title>Acme &amp; Co &lt;Security&gt; — continuously measured security controls</title>');
    expect(html).toContain('<a href="/trust/feed.json">');
    expect(html).not.toMatch(/<script|\bon[a-z]+=|javascript:/i);
  });

  it('etagMatches compares weakly and ignores blanks', () => {
    expect(etagMatches(undefined, '"a"')).toBe(false);
    expect(etagMatches('', '"a"')).toBe(false);
    expect(etagMatches('"b"', '"a"')).toBe(false);
    expect(etagMatches('"a"', '"a"')).toBe(true);
    expect(etagMatches(' W/"a" ', '"a"')).toBe(true);
    expect(etagMatches('"b",W/"a"', '"a"')).toBe(true);
  });
});

describe('the /trust page in a real browser, JavaScript off', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('shows each listed control with its public title and consecutive days, and nothing else', async () => {
    const snap = leakySnapshot();
    const withSecond = sampleSnapshot(DAY, [...snap.controls, streaked('backups-restorable', 47, { publicTitle: 'Backups are restorable', cadence: [{ probe: 'p', schedule: '0 3 * * *', intervalSeconds: 86_400 }] })]);
    const l = await serve(async () => withSecond);
    const { visibleText, screenshot } = await renderPage(browser, { url: `${l.url}/trust` }, 'trust-page', { javaScriptEnabled: false });
    expect(screenshot).toMatch(/trust-page\.png$/);
    expect(visibleText).toContain('Acme & Co <Security>');
    expect(visibleText).toContain('Public public-ok');
    expect(visibleText).toContain('Measured green every day since 2026-10-22 (31 consecutive days)');
    expect(visibleText).toContain('Backups are restorable');
    expect(visibleText).toContain('Measured green every day since 2026-10-06 (47 consecutive days)');
    expect(visibleText).toContain('daily');
    // The hash sits in the closed "Verify this page" section (test/trust-page.test.ts opens it).
    expect(visibleText).toContain('Verify this page');
    expect(visibleText).not.toContain(withSecond.hash);
    expect(visibleText).not.toContain('LEAK');
    expect(visibleText).not.toContain('No control has yet');
  });

  it('says plainly when no control has been green for 30 days', async () => {
    const l = await serve(async () => sampleSnapshot(DAY, [streaked('young', 12)]));
    const { visibleText } = await renderPage(browser, { url: `${l.url}/trust` }, 'trust-page-empty', { javaScriptEnabled: false });
    expect(visibleText).toContain('No control has yet been measured green for 30 consecutive days.');
    expect(visibleText).not.toContain('Public young');
    expect(visibleText).toContain(DAY);
  });
});
