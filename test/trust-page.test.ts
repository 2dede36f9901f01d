import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { pino } from 'pino';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { VigilConfig } from '../src/config/schema.js';
import { listen, type Listener } from '../src/http/server.js';
import { escapeHtml, renderTrustPage, trustFeedJsonSchema, trustPageHeaders, trustRoutes, verifyCommand } from '../src/http/trust.js';
import { loadTrustBranding, logoDataUri, MAX_LOGO_BYTES, TrustBrandingError, type TrustBranding } from '../src/http/trust-branding.js';
import { buildFeed, TrustFeedControl } from '../src/posture/feed.js';
import { formatLocalTime } from '../src/posture/local-time.js';
import type { Snapshot, SnapshotControl } from '../src/posture/snapshot-types.js';
import { writeArchivedSnapshot } from '../src/store/archive.js';
import { artifactsDir, launchBrowser } from './helpers/browser.js';
import { sampleControl, sampleSnapshot } from './helpers/snapshots.js';

const DAY = '2026-11-21';

function daysBefore(date: string, n: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) - n * 86_400_000).toISOString().slice(0, 10);
}
function streaked(id: string, streak: number, over: Partial<SnapshotControl> = {}): SnapshotControl {
  return sampleControl({ id, streak, greenSince: daysBefore(DAY, streak - 1), thirtyDayGreen: streak >= 30, ...over });
}

const tmp = () => mkdtempSync(path.join(tmpdir(), 'vigil-trust-page-'));
const SVG_LOGO = `<?xml version="1.0" encoding="UTF-8"?>
<!-- Acme logo -->
<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" viewBox="0 0 120 40" onload="document.title='svg-onload-ran'">
<script>document.title = 'svg-script-ran'</script>
<rect width="120" height="40" fill="#d6336c"/></svg>
`;
// A 1×1 PNG.
const PNG_1x1 = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

function snapshot(): Snapshot {
  return sampleSnapshot(DAY, [
    streaked('tls-certificates', 31, { publicTitle: 'TLS certificates are valid', lastMeasuredAt: '2026-11-21T13:03:00.000Z' }),
    streaked('backups', 12, { publicTitle: 'Young control' }),
  ]);
}

const silent = pino({ level: 'silent' });
const listeners: Listener[] = [];
async function serve(snap: Snapshot | undefined, over: { branding?: TrustBranding; timezone?: string } = {}): Promise<Listener> {
  const routes = trustRoutes({ latest: async () => snap, minGreenDays: 30, organization: 'Acme <Corp>', maxAgeSeconds: 60, ...over });
  const l = await listen('public', { host: '127.0.0.1', port: 0 }, routes, silent);
  listeners.push(l);
  return l;
}
afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.close()));
});

describe('trust branding config', () => {
  const parse = (trust: unknown) => VigilConfig.safeParse({ trust });
  const issuePath = (trust: unknown) => {
    const r = parse(trust);
    return r.success ? 'accepted' : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
  };
  it.each([
    ['a colour that is not #rrggbb (raw CSS) names its key', { colors: { accent: 'red;background:url(x)' } }, 'trust.colors.accent: expected a colour as #rrggbb'],
    ['a short hex colour is refused', { colors: { background: '#fff' } }, 'trust.colors.background: expected a colour as #rrggbb'],
    ['an http logo URL is refused', { logoUrl: 'http://example.com/logo.png' }, 'trust.logoUrl: expected an https:// URL'],
    ['a javascript: security URL is refused', { securityUrl: 'javascript:alert(1)' }, 'trust.securityUrl: expected an https:// URL'],
    ['a URL with credentials is refused', { securityUrl: 'https://u:p@example.com/' }, 'trust.securityUrl: expected an https:// URL'],
    ['logoUrl and logoFile together are refused', { logoUrl: 'https://example.com/l.png', logoFile: 'l.png' }, 'trust.logoFile: give logoUrl or logoFile, not both'],
    ['an unknown colour key is refused', { colors: { link: '#000000' } }, 'trust.colors'],
  ])('%s', (_name, trust, expected) => {
    expect(issuePath(trust)).toContain(expected);
  });
  it('a complete branding parses', () => {
    const r = parse({ title: 'Acme security', logoUrl: 'https://cdn.example.com/logo.svg', colors: { accent: '#D6336C', background: '#fffdf7', text: '#111111' }, intro: 'Hi', securityUrl: 'https://example.com/security' });
    expect(r.success).toBe(true);
  });

  it('a logo file is inlined as a data: URI when it is a PNG or an SVG; anything else names trust.logoFile', () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'logo.svg'), SVG_LOGO);
    writeFileSync(path.join(dir, 'logo.png'), PNG_1x1);
    writeFileSync(path.join(dir, 'logo.gif'), 'GIF89a....');
    writeFileSync(path.join(dir, 'entity.svg'), '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg>&x;</svg>');
    writeFileSync(path.join(dir, 'big.png'), Buffer.concat([PNG_1x1, Buffer.alloc(MAX_LOGO_BYTES)]));
    expect(logoDataUri(path.join(dir, 'logo.svg'))).toBe(`data:image/svg+xml;base64,${Buffer.from(SVG_LOGO).toString('base64')}`);
    expect(logoDataUri(path.join(dir, 'logo.png'))).toBe(`data:image/png;base64,${PNG_1x1.toString('base64')}`);
    for (const [file, why] of [
      ['logo.gif', 'neither a PNG nor an SVG'],
      ['entity.svg', 'neither a PNG nor an SVG'],
      ['big.png', `more than the ${MAX_LOGO_BYTES} allowed`],
      ['missing.png', 'cannot read'],
    ] as const) {
      expect(() => logoDataUri(path.join(dir, file))).toThrow(TrustBrandingError);
      expect(() => logoDataUri(path.join(dir, file))).toThrow(/^trust\.logoFile: /);
      expect(() => logoDataUri(path.join(dir, file))).toThrow(why);
    }
    const cfg = VigilConfig.parse({ trust: { logoFile: 'logo.png' } });
    expect(loadTrustBranding(cfg.trust, dir).logoSrc).toMatch(/^data:image\/png;base64,/);
  });
});

describe('page CSP', () => {
  it('allows images only from where the logo is, and never script', () => {
    expect(trustPageHeaders(undefined)['content-security-policy']).not.toContain('img-src');
    expect(trustPageHeaders({ logoSrc: 'data:image/png;base64,AAAA' })['content-security-policy']).toMatch(/; img-src data:$/);
    const remote = trustPageHeaders({ logoSrc: 'https://cdn.example.com/a/logo.svg', logoOrigin: 'https://cdn.example.com' })['content-security-policy'];
    expect(remote).toMatch(/; img-src https:\/\/cdn\.example\.com$/);
    for (const csp of [remote, trustPageHeaders(undefined)['content-security-policy']]) {
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toMatch(/script-src|unsafe-eval/);
    }
  });

  it('a hostile intro, title and a non-hex colour that slipped past config are rendered inert', () => {
    const feed = buildFeed(snapshot(), { minGreenDays: 30, organization: 'Acme' });
    const html = renderTrustPage(feed, {
      branding: { title: '<script>x</script>', intro: '<img src=x onerror=alert(1)> & more', colors: { accent: 'red;} body{display:none' }, securityUrl: 'javascript:alert(1)', logoSrc: 'javascript:alert(1)' },
    });
    expect(html).toContain('&lt;script&gt;x&lt;/script&gt;');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt; &amp; more');
    expect(html).not.toContain('display:none');
    expect(html).toContain('--accent: #0b4fa8');
    expect(html).not.toContain('javascript:');
    expect(html).not.toMatch(/<img|<script/);
  });
});

describe('the "Verify this page" recipe', () => {
  it('run in the archive directory, prints exactly the hash shown on the page', async () => {
    const snap = sampleSnapshot(DAY, [streaked('tls-certificates', 31, { publicTitle: 'Zertifikate — gültig “quoted” \\ back\\slash, DEL \u007f, lone \ud800 surrogate', failing: [] })]);
    const dir = tmp();
    expect(await writeArchivedSnapshot(dir, snap)).toBe('written');
    const html = renderTrustPage(buildFeed(snap, { minGreenDays: 30, organization: 'Acme' }));
    const command = verifyCommand(DAY);
    expect(html).toContain(escapeHtml(command));
    expect(html).toContain(snap.hash);
    const printed = execFileSync('sh', ['-c', command], { cwd: dir, encoding: 'utf8' });
    expect(printed).toBe(`${snap.hash}\n`);
    // And it is not a formality: a tampered file prints another hash.
    const tampered = path.join(tmp(), `${DAY}.json`);
    writeFileSync(tampered, (await import('node:fs')).readFileSync(path.join(dir, `${DAY}.json`), 'utf8').replace('"streak": 31', '"streak": 32'));
    expect(execFileSync('sh', ['-c', command], { cwd: path.dirname(tampered), encoding: 'utf8' })).not.toContain(snap.hash);
  });
});

describe('GET /trust/feed.schema.json', () => {
  it('is the JSON Schema of the served feed: a real feed validates, a doctored one does not', async () => {
    const l = await serve(snapshot());
    const schemaRes = await fetch(`${l.url}/trust/feed.schema.json`);
    expect(schemaRes.status).toBe(200);
    expect(schemaRes.headers.get('content-type')).toBe('application/schema+json; charset=utf-8');
    expect(schemaRes.headers.get('access-control-allow-origin')).toBe('*');
    expect(schemaRes.headers.get('etag')).toMatch(/^"[0-9a-f]{32}"$/);
    const schema = (await schemaRes.json()) as Record<string, unknown>;
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema);
    const feed = (await (await fetch(`${l.url}/trust/feed.json`)).json()) as { controls: Array<Record<string, unknown>>; snapshotHash: string };
    expect(feed.controls).toHaveLength(1);
    expect(validate(feed), JSON.stringify(validate.errors)).toBe(true);
    const empty = (await (await fetch(`${(await serve(undefined)).url}/trust/feed.json`)).json()) as unknown;
    expect(validate(empty), JSON.stringify(validate.errors)).toBe(true);
    const doctored: Array<[string, unknown]> = [
      ['an extra member on an entry', { ...feed, controls: [{ ...feed.controls[0], resources: ['repo-a'] }] }],
      ['a hash that is not SHA-256 hex', { ...feed, snapshotHash: 'abc' }],
      ['a streak under 30 days', { ...feed, controls: [{ ...feed.controls[0], consecutiveGreenDays: 29 }] }],
      ['a missing member', { ...feed, controls: [{ ...feed.controls[0], greenSince: undefined }] }],
    ];
    for (const [what, doc] of doctored) expect(validate(JSON.parse(JSON.stringify(doc))), what).toBe(false);
  });

  it('follows the zod definition: every member of a feed entry is in the schema, and required', () => {
    const schema = trustFeedJsonSchema() as { properties: { controls: { items: { properties: Record<string, unknown>; required: string[] } } } };
    const item = schema.properties.controls.items;
    const zodKeys = Object.keys(TrustFeedControl.shape).sort();
    expect(Object.keys(item.properties).sort()).toEqual(zodKeys);
    const requiredInZod = zodKeys.filter((k) => !(TrustFeedControl.shape as Record<string, { safeParse: (v: unknown) => { success: boolean } }>)[k]!.safeParse(undefined).success);
    expect([...item.required].sort()).toEqual(requiredInZod);
  });
});

describe('CORS preflight', () => {
  it.each(['/trust/feed.json', '/trust/feed.schema.json'])('OPTIONS %s answers 204 with the allowed methods, headers and max-age', async (route) => {
    const l = await serve(snapshot());
    const res = await fetch(`${l.url}${route}`, { method: 'OPTIONS', headers: { origin: 'https://www.example.com', 'access-control-request-method': 'GET', 'access-control-request-headers': 'if-none-match' } });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, HEAD, OPTIONS');
    expect(res.headers.get('access-control-allow-headers')).toBe('If-None-Match');
    expect(res.headers.get('access-control-max-age')).toBe('86400');
    expect(await res.text()).toBe('');
  });

  it('other methods still get 405, now naming OPTIONS in Allow; the HTML page takes no OPTIONS', async () => {
    const l = await serve(snapshot());
    const post = await fetch(`${l.url}/trust/feed.json`, { method: 'DELETE' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD, OPTIONS');
    // An error answer of a CORS resource is still readable cross-origin.
    expect(post.headers.get('access-control-allow-origin')).toBe('*');
    const page = await fetch(`${l.url}/trust`, { method: 'OPTIONS' });
    expect(page.status).toBe(405);
    expect(page.headers.get('allow')).toBe('GET, HEAD');
  });

  it('a cross-origin page can fetch the feed and revalidate it with If-None-Match (a real browser preflight)', async () => {
    const l = await serve(snapshot());
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      // Another origin (localhost vs 127.0.0.1), so the browser applies CORS and preflights If-None-Match.
      const other = await listen('other', { host: '127.0.0.1', port: 0 }, { '/': async (_req, res) => void res.end('<!doctype html><title>other</title>') }, silent);
      listeners.push(other);
      await page.goto(other.url.replace('127.0.0.1', 'localhost'));
      // A string, not a function: the tests are typed without the DOM library.
      const result = await page.evaluate<{ status: number; etag: string; controls: number; again: number }>(`(async () => {
        const feedUrl = ${JSON.stringify(`${l.url}/trust/feed.json`)};
        const first = await fetch(feedUrl);
        const etag = first.headers.get('etag') ?? '';
        const body = await first.json();
        const again = await fetch(feedUrl, { headers: { 'If-None-Match': etag }, cache: 'no-store' });
        return { status: first.status, etag, controls: body.controls.length, again: again.status };
      })()`);
      expect(result.status).toBe(200);
      expect(result.etag).toMatch(/^"[0-9a-f]{32}"$/);
      expect(result.controls).toBe(1);
      expect(result.again).toBe(304);
    } finally {
      await browser.close();
    }
  });
});

describe('the branded /trust page in a real browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('shows title, logo, colours, intro, security link and the verify section; the SVG logo runs no script', async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'logo.svg'), SVG_LOGO);
    const trust = VigilConfig.parse({
      trust: {
        organization: 'Acme <Corp>',
        title: 'Acme Trust Center',
        logoFile: 'logo.svg',
        colors: { accent: '#d6336c', background: '#fffdf7', text: '#112233' },
        intro: 'We measure <our> controls every day & publish what held.',
        securityUrl: 'https://acme.example/security',
      },
    }).trust;
    const l = await serve(snapshot(), { branding: loadTrustBranding(trust, dir), timezone: 'Europe/Berlin' });
    const res = await fetch(`${l.url}/trust`);
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; img-src data:");
    // JavaScript on: even so, nothing in the page or the logo may run.
    const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
    try {
      await page.goto(`${l.url}/trust`, { waitUntil: 'load' });
      expect(await page.title()).toBe('Acme Trust Center — continuously measured security controls');
      const logo = page.locator('header.brand img');
      expect(await logo.getAttribute('alt')).toBe('Acme <Corp> logo');
      expect(await page.evaluate("document.querySelector('header.brand img').complete && document.querySelector('header.brand img').naturalWidth")).toBe(120);
      const style = await page.evaluate(`(() => {
        const cs = getComputedStyle(document.body);
        const article = document.querySelector('article');
        return { bg: cs.backgroundColor, fg: cs.color, border: article ? getComputedStyle(article).borderLeftColor : '', link: getComputedStyle(document.querySelector('p.security a')).color };
      })()`);
      expect(style).toEqual({ bg: 'rgb(255, 253, 247)', fg: 'rgb(17, 34, 51)', border: 'rgb(214, 51, 108)', link: 'rgb(214, 51, 108)' });
      const text = await page.innerText('body');
      expect(text).toContain('Acme Trust Center');
      expect(text).toContain('Acme <Corp> · Security controls measured continuously by vigil.');
      expect(text).toContain('We measure <our> controls every day & publish what held.');
      expect(text).toContain('TLS certificates are valid');
      expect(text).not.toContain('Young control');
      // 13:03 UTC in Berlin in November.
      expect(text).toContain('2026-11-21 14:03 CET');
      expect(await page.locator('p.security a').getAttribute('href')).toBe('https://acme.example/security');
      // The hash is in the closed "Verify this page" section until it is opened.
      const hash = snapshot().hash;
      expect(text).toContain('Verify this page');
      expect(text).not.toContain(hash);
      await page.locator('details.verify summary').click();
      const opened = await page.innerText('details.verify');
      expect(opened).toContain(hash);
      expect(opened).toContain(verifyCommand(DAY));
      expect(opened).toContain(`vigil verify-archive <archive-dir> --through ${DAY}`);
      await page.screenshot({ path: path.join(artifactsDir, 'trust-page-branded.png'), fullPage: true });
      expect(await page.title()).not.toMatch(/svg-/);
      // At phone width nothing overflows either.
      await page.setViewportSize({ width: 390, height: 800 });
      expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    } finally {
      await page.close();
    }
  });

  it('an https logo URL is allowed by the CSP for its origin only', async () => {
    const l = await serve(snapshot(), { branding: { logoSrc: 'https://cdn.example.com/logo.svg', logoOrigin: 'https://cdn.example.com' } });
    const res = await fetch(`${l.url}/trust`);
    expect(res.headers.get('content-security-policy')).toMatch(/; img-src https:\/\/cdn\.example\.com$/);
    expect(await res.text()).toContain('<img src="https://cdn.example.com/logo.svg" alt="Acme &lt;Corp&gt; logo">');
  });
});

describe('formatLocalTime', () => {
  it.each([
    ['2026-11-21T13:03:00.000Z', 'UTC', '2026-11-21 13:03 UTC'],
    ['2026-11-21T13:03:00.000Z', 'Europe/Berlin', '2026-11-21 14:03 CET'],
    ['2026-07-01T13:03:00.000Z', 'Europe/Berlin', '2026-07-01 15:03 CEST'],
    ['2026-11-21T23:30:00.000Z', 'Europe/Berlin', '2026-11-22 00:30 CET'],
    ['2026-11-21T13:03:00.000Z', 'America/New_York', '2026-11-21 08:03 EST'],
    ['2026-11-21T13:03:00.000Z', 'Asia/Tokyo', '2026-11-21 22:03 GMT+9'],
    ['not a time', 'Europe/Berlin', 'not a time'],
  ])('%s in %s is %s', (iso, tz, shown) => {
    expect(formatLocalTime(iso, tz)).toBe(shown);
  });
});
