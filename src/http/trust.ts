import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { buildFeed, TrustFeed, type TrustFeedControl } from '../posture/feed.js';
import { formatLocalTime } from '../posture/local-time.js';
import type { Snapshot } from '../posture/snapshot-types.js';
import { HTML_PAGE_HEADERS, type Handler } from './server.js';
import type { TrustBranding } from './trust-branding.js';

/** What the public trust routes need. */
export interface TrustRoutesOptions {
  /** The latest published daily snapshot, undefined before the first. Read on every request. */
  latest: () => Promise<Snapshot | undefined>;
  /** `trust.minGreenDays` (values below 30 are treated as 30). */
  minGreenDays: number;
  /** `trust.organization`, shown on the page and in the feed. */
  organization: string;
  /** `trust.maxAgeSeconds`: Cache-Control max-age of both routes. */
  maxAgeSeconds: number;
  /** The page's branding (`trust.title`, logo, colours, intro, securityUrl). Default: none. */
  branding?: TrustBranding;
  /** IANA zone of the times shown on the page (`timezone`). Default UTC. */
  timezone?: string;
}

/** A rendered response body with its strong validator. */
interface Rendered {
  body: Buffer;
  etag: string;
}

/** The published JSON Schema of feed.json, generated from the zod {@link TrustFeed} (so it follows every field added there). */
export function trustFeedJsonSchema(): Record<string, unknown> {
  return {
    title: 'vigil trust feed (vigil.trust-feed/1)',
    description: 'Controls measured green every day for at least minGreenDays consecutive days, as published at /trust/feed.json.',
    ...z.toJSONSchema(TrustFeed, { target: 'draft-2020-12', io: 'output' }),
  };
}

/** Headers of a CORS preflight answer and of the methods the feed routes allow. */
const PREFLIGHT_HEADERS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, OPTIONS',
  'access-control-allow-headers': 'If-None-Match',
  'access-control-max-age': '86400',
  allow: 'GET, HEAD, OPTIONS',
};

/** Answers OPTIONS (a CORS preflight) with 204 and what cross-origin scripts may send. */
function preflight(res: ServerResponse): void {
  res.writeHead(204, { ...PREFLIGHT_HEADERS, 'cache-control': 'public, max-age=86400' });
  res.end();
}

/**
 * The trust page's headers: {@link HTML_PAGE_HEADERS} with images allowed only from where the logo
 * is (a data: URI, or the logoUrl's origin) — still no script, no frame, no form.
 */
export function trustPageHeaders(branding: TrustBranding | undefined): Record<string, string> {
  const src = branding?.logoSrc;
  if (src === undefined) return { ...HTML_PAGE_HEADERS };
  const img = src.startsWith('data:') ? 'data:' : (branding?.logoOrigin ?? new URL(src).origin);
  return { ...HTML_PAGE_HEADERS, 'content-security-policy': `${HTML_PAGE_HEADERS['content-security-policy']}; img-src ${img}` };
}

/**
 * Routes for the public listener: `GET /trust/feed.json` (CORS-open JSON), its JSON Schema
 * `GET /trust/feed.schema.json`, and `GET /trust` (a small HTML page with no scripts). All carry
 * a strong ETag over the exact body bytes and answer a matching `If-None-Match` with 304; HEAD
 * gets the same headers without a body; the two JSON routes answer a CORS preflight (OPTIONS) with 204.
 */
export function trustRoutes(opts: TrustRoutesOptions): Record<string, Handler> {
  // The body only depends on the snapshot (by hash) and fixed options, so render once per snapshot.
  let cached: { key: string; json: Rendered; html: Rendered } | undefined;
  const current = async () => {
    const snapshot = await opts.latest();
    const key = snapshot?.hash ?? '';
    if (cached?.key !== key) {
      const feed = buildFeed(snapshot, opts);
      cached = { key, json: rendered(`${JSON.stringify(feed, null, 2)}\n`), html: rendered(renderTrustPage(feed, { branding: opts.branding, timezone: opts.timezone })) };
    }
    return cached;
  };
  const cache = `public, max-age=${Math.max(0, Math.floor(opts.maxAgeSeconds))}`;
  const schema = rendered(`${JSON.stringify(trustFeedJsonSchema(), null, 2)}\n`);
  const pageHeaders = trustPageHeaders(opts.branding);

  const feedRoute: Handler = async (req, res) => {
    if (req.method === 'OPTIONS') return preflight(res);
    const { json } = await current();
    send(req, res, json, {
      'content-type': 'application/json; charset=utf-8',
      'access-control-allow-origin': '*',
      // Lets cross-origin scripts read the validator they may send back.
      'access-control-expose-headers': 'ETag',
      'cache-control': cache,
      'x-content-type-options': 'nosniff',
    });
  };
  feedRoute.options = true;
  const schemaRoute: Handler = async (req, res) => {
    if (req.method === 'OPTIONS') return preflight(res);
    send(req, res, schema, {
      'content-type': 'application/schema+json; charset=utf-8',
      'access-control-allow-origin': '*',
      'access-control-expose-headers': 'ETag',
      'cache-control': cache,
      'x-content-type-options': 'nosniff',
    });
  };
  schemaRoute.options = true;

  return {
    '/trust/feed.json': feedRoute,
    '/trust/feed.schema.json': schemaRoute,
    '/trust': async (req, res) => {
      const { html } = await current();
      send(req, res, html, {
        'content-type': 'text/html; charset=utf-8',
        // CSP (with frame-ancestors 'none'; images only from the logo's source), X-Frame-Options, Referrer-Policy, nosniff.
        ...pageHeaders,
        'cache-control': cache,
      });
    },
  };
}

function rendered(text: string): Rendered {
  const body = Buffer.from(text, 'utf8');
  return { body, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"` };
}

function send(req: IncomingMessage, res: ServerResponse, r: Rendered, headers: Record<string, string>): void {
  if (etagMatches(req.headers['if-none-match'], r.etag)) {
    // RFC 9110 §15.4.5: a 304 repeats the validator and caching headers, without content headers.
    const { 'content-type': _type, ...rest } = headers;
    res.writeHead(304, { ...rest, etag: r.etag });
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, etag: r.etag, 'content-length': String(r.body.length) });
  if (req.method === 'HEAD') res.end();
  else res.end(r.body);
}

/**
 * If-None-Match uses weak comparison (RFC 9110 §13.1.2): `W/` prefixes are ignored, a list
 * matches when any member does, `*` matches any current representation.
 */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header
    .split(',')
    .map((t) => t.trim())
    .some((t) => t === '*' || t.replace(/^W\//, '') === etag);
}

/** How the page looks beyond the feed itself. */
export interface TrustPageOptions {
  branding?: TrustBranding | undefined;
  /** IANA zone of the times shown (`timezone`). Default UTC. */
  timezone?: string | undefined;
}

const COLOUR = /^#[0-9a-fA-F]{6}$/;
const DEFAULT_COLOURS = { accent: '#0b4fa8', background: '#ffffff', text: '#1a1a1a' };

/** A colour from config, re-checked here: only #rrggbb ever reaches the style sheet. */
function colour(value: string | undefined, fallback: string): string {
  return value !== undefined && COLOUR.test(value) ? value : fallback;
}

/** An https URL, re-checked here (config validates it too); undefined otherwise. */
function httpsUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return new URL(value).protocol === 'https:' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The logo's src, when it is an https URL or a PNG/SVG data: URI (what loadTrustBranding makes). */
function logoSrc(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (/^data:image\/(png|svg\+xml);base64,[A-Za-z0-9+/]+=*$/.test(value)) return value;
  return httpsUrl(value);
}

/**
 * The shell command, run in the evidence archive directory, that prints the SHA-256 of a day's
 * snapshot: the hash is over the canonical JSON (keys sorted, no whitespace) of the file without
 * its `hash`, `signature` and `signedBy` members.
 */
export function verifyCommand(date: string): string {
  // Node, not jq: jq 1.6 escapes U+007F and stops on lone surrogate escapes, so its bytes differ
  // from the canonical JSON for some genuine snapshots. Keys sort by UTF-16 code units, as
  // canonicalJson does.
  return (
    `node -e 'const c=v=>v===null||typeof v!=="object"?JSON.stringify(v):Array.isArray(v)?"["+v.map(c).join(",")+"]":"{"+Object.keys(v).sort().map(k=>JSON.stringify(k)+":"+c(v[k])).join(",")+"}";` +
    `const d=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));delete d.hash;delete d.signature;delete d.signedBy;` +
    `console.log(require("crypto").createHash("sha256").update(c(d)).digest("hex"))' ${date}.json`
  );
}

/** Renders the feed as a self-contained, script-free, accessible HTML page, branded from `trust:`. */
export function renderTrustPage(feed: TrustFeed, opts: TrustPageOptions = {}): string {
  const b = opts.branding ?? {};
  const tz = opts.timezone ?? 'UTC';
  const org = escapeHtml(feed.organization);
  const title = b.title === undefined ? org : escapeHtml(b.title);
  const colours = {
    accent: colour(b.colors?.accent, DEFAULT_COLOURS.accent),
    background: colour(b.colors?.background, DEFAULT_COLOURS.background),
    text: colour(b.colors?.text, DEFAULT_COLOURS.text),
  };
  const logo = logoSrc(b.logoSrc);
  const security = httpsUrl(b.securityUrl);
  const n = feed.controls.length;
  const intro =
    n === 0
      ? `<p class="empty" role="status">No control has yet been measured green for ${feed.minGreenDays} consecutive days. Controls appear here once they have been, and leave the day they are not.</p>`
      : `<p>${n === 1 ? 'This control has' : `These ${n} controls have`} been measured automatically and found operating every day for at least ${feed.minGreenDays} consecutive days. A control leaves this page the first day it is not.</p>`;
  const verify =
    feed.asOf && feed.snapshotHash
      ? `<details class="verify">
<summary>Verify this page</summary>
<p>This page was built from the daily snapshot of <time datetime="${escapeHtml(feed.asOf)}">${escapeHtml(feed.asOf)}</time>, whose SHA-256 is</p>
<p><code class="hash">${escapeHtml(feed.snapshotHash)}</code></p>
<p>The snapshot is a file of ${org}'s evidence archive (<code>${escapeHtml(feed.asOf)}.json</code>, available to auditors). In the archive directory, this command prints the same hash:</p>
<pre><code>${escapeHtml(verifyCommand(feed.asOf))}</code></pre>
<p><code>vigil verify-archive &lt;archive-dir&gt; --through ${escapeHtml(feed.asOf)}</code> re-checks every day's hash and the chain linking them (and, with <code>--public-key</code>, their signatures).</p>
</details>`
      : '';
  const footer = feed.asOf
    ? `<p>Based on the daily snapshot of <time datetime="${escapeHtml(feed.asOf)}">${escapeHtml(feed.asOf)}</time>.</p>\n${verify}`
    : '<p>No daily snapshot has been published yet.</p>';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} — continuously measured security controls</title>
<style>
:root { color-scheme: light; --accent: ${colours.accent}; --background: ${colours.background}; --text: ${colours.text}; }
body { margin: 0; background: var(--background); color: var(--text); font: 1rem/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main, footer { max-width: 46rem; margin: 0 auto; padding: 1rem 1.25rem; }
header.brand { display: flex; align-items: center; gap: 0.75rem; flex-wrap: wrap; margin: 1rem 0 0.5rem; }
header.brand img { max-height: 3rem; max-width: 12rem; height: auto; }
h1 { font-size: 1.75rem; line-height: 1.25; margin: 0; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 0 0 0.25rem; }
article { border: 1px solid #c8c8c8; border-left: 0.375rem solid var(--accent); border-radius: 0.375rem; padding: 0.875rem 1rem; margin: 1rem 0; }
.streak { font-weight: 600; margin: 0.5rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.125rem 0.75rem; margin: 0.5rem 0 0; }
dt { font-weight: 600; }
dd { margin: 0; }
.empty { border: 1px solid #c8c8c8; border-radius: 0.375rem; padding: 1rem; }
footer { font-size: 0.9rem; border-top: 1px solid #c8c8c8; }
code.hash { word-break: break-all; }
pre { white-space: pre-wrap; word-break: break-all; background: rgba(127, 127, 127, 0.12); padding: 0.5rem; border-radius: 0.25rem; }
summary { cursor: pointer; font-weight: 600; }
a { color: var(--accent); }
a:focus, summary:focus { outline: 3px solid var(--accent); outline-offset: 2px; }
</style>
</head>
<body>
<main>
<header class="brand">
${logo === undefined ? '' : `<img src="${escapeHtml(logo)}" alt="${org} logo">\n`}<h1>${title}</h1>
</header>
<p>${b.title === undefined ? '' : `${org} · `}Security controls measured continuously by vigil.</p>
${b.intro === undefined ? '' : `<p class="intro">${escapeHtml(b.intro)}</p>\n`}${intro}
${feed.controls.map((c) => renderControl(c, tz)).join('\n')}
${security === undefined ? '' : `<p class="security"><a href="${escapeHtml(security)}">Security at ${org}</a></p>`}
</main>
<footer>
${footer}
<p>Machine-readable: <a href="/trust/feed.json">/trust/feed.json</a> (JSON Schema: <a href="/trust/feed.schema.json">/trust/feed.schema.json</a>)</p>
</footer>
</body>
</html>
`;
}

function renderControl(c: TrustFeedControl, timeZone: string): string {
  const refs = [
    c.frameworks.soc2.length > 0 ? `SOC 2: ${c.frameworks.soc2.map(escapeHtml).join(', ')}` : '',
    c.frameworks.iso27001.length > 0 ? `ISO/IEC 27001:2022: ${c.frameworks.iso27001.map(escapeHtml).join(', ')}` : '',
  ].filter((s) => s !== '');
  const headingId = `control-${escapeHtml(c.id)}`;
  return `<article aria-labelledby="${headingId}">
<h2 id="${headingId}">${escapeHtml(c.title)}</h2>
<p>${escapeHtml(c.description)}</p>
<p class="streak">Measured green every day since <time datetime="${escapeHtml(c.greenSince)}">${escapeHtml(c.greenSince)}</time> (${c.consecutiveGreenDays} consecutive days)</p>
<dl>
${refs.length > 0 ? `<dt>Frameworks</dt><dd>${refs.join('; ')}</dd>` : ''}
<dt>Cadence</dt><dd>${escapeHtml(c.cadence)}</dd>
${typeof c.exceptions === 'number' && c.exceptions > 0 ? `<dt>Exceptions</dt><dd class="exceptions">green with ${c.exceptions} ${c.exceptions === 1 ? 'exception' : 'exceptions'}: accepted risks, approved and time-limited</dd>\n` : ''}${c.restoreTested === true ? '<dt>Restores</dt><dd class="restore-tested">restore-tested: on every day of this streak, the latest restore drill, within its required interval, succeeded in isolation</dd>\n' : ''}<dt>Last measured</dt><dd><time datetime="${escapeHtml(c.lastMeasuredAt)}">${escapeHtml(formatLocalTime(c.lastMeasuredAt, timeZone))}</time></dd>
</dl>
</article>`;
}

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] ?? ch);
}
