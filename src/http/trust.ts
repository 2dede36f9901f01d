import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { buildFeed, type TrustFeed, type TrustFeedControl } from '../posture/feed.js';
import type { Snapshot } from '../posture/snapshot-types.js';
import { HTML_PAGE_HEADERS, type Handler } from './server.js';

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
}

/** A rendered response body with its strong validator. */
interface Rendered {
  body: Buffer;
  etag: string;
}

/**
 * Routes for the public listener: `GET /trust/feed.json` (CORS-open JSON) and `GET /trust` (a
 * small HTML page with no scripts). Both carry a strong ETag over the exact body bytes and answer
 * a matching `If-None-Match` with 304; HEAD gets the same headers without a body.
 */
export function trustRoutes(opts: TrustRoutesOptions): Record<string, Handler> {
  // The body only depends on the snapshot (by hash) and fixed options, so render once per snapshot.
  let cached: { key: string; json: Rendered; html: Rendered } | undefined;
  const current = async () => {
    const snapshot = await opts.latest();
    const key = snapshot?.hash ?? '';
    if (cached?.key !== key) {
      const feed = buildFeed(snapshot, opts);
      cached = { key, json: rendered(`${JSON.stringify(feed, null, 2)}\n`), html: rendered(renderTrustPage(feed)) };
    }
    return cached;
  };
  const cache = `public, max-age=${Math.max(0, Math.floor(opts.maxAgeSeconds))}`;

  return {
    '/trust/feed.json': async (req, res) => {
      const { json } = await current();
      send(req, res, json, {
        'content-type': 'application/json; charset=utf-8',
        'access-control-allow-origin': '*',
        // Lets cross-origin scripts read the validator they may send back.
        'access-control-expose-headers': 'ETag',
        'cache-control': cache,
        'x-content-type-options': 'nosniff',
      });
    },
    '/trust': async (req, res) => {
      const { html } = await current();
      send(req, res, html, {
        'content-type': 'text/html; charset=utf-8',
        // CSP (with frame-ancestors 'none'), X-Frame-Options, Referrer-Policy, nosniff.
        ...HTML_PAGE_HEADERS,
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

/** Renders the feed as a self-contained, script-free, accessible HTML page. */
export function renderTrustPage(feed: TrustFeed): string {
  const org = escapeHtml(feed.organization);
  const n = feed.controls.length;
  const intro =
    n === 0
      ? `<p class="empty" role="status">No control has yet been measured green for ${feed.minGreenDays} consecutive days. Controls appear here once they have been, and leave the day they are not.</p>`
      : `<p>${n === 1 ? 'This control has' : `These ${n} controls have`} been measured automatically and found operating every day for at least ${feed.minGreenDays} consecutive days. A control leaves this page the first day it is not.</p>`;
  const footer = feed.asOf
    ? `<p>Based on the daily snapshot of <time datetime="${escapeHtml(feed.asOf)}">${escapeHtml(feed.asOf)}</time>, SHA-256 <code class="hash">${escapeHtml(feed.snapshotHash ?? '')}</code>.</p>`
    : '<p>No daily snapshot has been published yet.</p>';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${org} — continuously measured security controls</title>
<style>
:root { color-scheme: light; }
body { margin: 0; background: #ffffff; color: #1a1a1a; font: 1rem/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main, footer { max-width: 46rem; margin: 0 auto; padding: 1rem 1.25rem; }
h1 { font-size: 1.75rem; line-height: 1.25; margin: 1rem 0 0.5rem; }
h2 { font-size: 1.2rem; margin: 0 0 0.25rem; }
article { border: 1px solid #c8c8c8; border-left: 0.375rem solid #1b6e3a; border-radius: 0.375rem; padding: 0.875rem 1rem; margin: 1rem 0; }
.streak { color: #14532d; font-weight: 600; margin: 0.5rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.125rem 0.75rem; margin: 0.5rem 0 0; }
dt { font-weight: 600; }
dd { margin: 0; }
.empty { border: 1px solid #c8c8c8; border-radius: 0.375rem; padding: 1rem; background: #f5f5f5; }
footer { color: #3d3d3d; font-size: 0.9rem; border-top: 1px solid #c8c8c8; }
code.hash { word-break: break-all; }
a { color: #0b4fa8; }
a:focus { outline: 3px solid #0b4fa8; outline-offset: 2px; }
</style>
</head>
<body>
<main>
<h1>${org}</h1>
<p>Security controls measured continuously by vigil.</p>
${intro}
${feed.controls.map(renderControl).join('\n')}
</main>
<footer>
${footer}
<p>Machine-readable: <a href="/trust/feed.json">/trust/feed.json</a></p>
</footer>
</body>
</html>
`;
}

function renderControl(c: TrustFeedControl): string {
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
<dt>Measured</dt><dd>${escapeHtml(c.cadence)}</dd>
<dt>Last measured</dt><dd><time datetime="${escapeHtml(c.lastMeasuredAt)}">${escapeHtml(formatInstant(c.lastMeasuredAt))}</time></dd>
</dl>
</article>`;
}

/** "2026-11-21 23:45 UTC" from an ISO timestamp; the input unchanged when it does not parse. */
function formatInstant(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] ?? ch);
}
