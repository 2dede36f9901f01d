/**
 * `vigil preview trust|email`: what the public trust page and the daily email will look like with
 * the user's config (organisation, branding, catalog, time zone), rendered from SAMPLE data into
 * files — on day one, before any snapshot exists.
 *
 * Every rendering carries {@link PREVIEW_WATERMARK} (a visible banner, and the page title or
 * email subject). This module is the only place that builds preview data and is imported by the
 * CLI alone: the daemon cannot serve it, and nothing here writes to the archive or to Redis
 * (test/preview.test.ts checks both).
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Control } from '../config/controls.js';
import { ConfigError, EXIT_CONFIG } from '../config/errors.js';
import type { LoadedConfig } from '../config/load.js';
import { trustPageHeaders, renderTrustPage } from '../http/trust.js';
import { loadTrustBranding, type TrustBranding } from '../http/trust-branding.js';
import { buildFeed } from '../posture/feed.js';
import { renderHtml, renderText, subjectLine } from '../posture/render.js';
import { snapshotHash, type CoverageEntry, type CoverageStatus, type Snapshot, type SnapshotBody, type SnapshotControl } from '../posture/snapshot-types.js';
import { makeDirectorySync } from '../store/make-directory.js';
import type { CliIo } from './main.js';
import { insideDirectory } from './out-path.js';

/** The watermark of every preview rendering. */
export const PREVIEW_WATERMARK = 'PREVIEW — sample data';

/** sysexits EX_CANTCREAT: the output cannot be written. */
const EXIT_CANTCREAT = 73;
/** sysexits EX_USAGE: e.g. an output inside the evidence archive. */
const EXIT_USAGE = 64;

/** What a preview is built from: the user's settings, no state. */
export interface PreviewInput {
  organization: string;
  timezone: string;
  minGreenDays: number;
  branding: TrustBranding;
  controls: readonly Pick<Control, 'id' | 'title' | 'public' | 'publicTitle' | 'publicDescription' | 'frameworks' | 'probes'>[];
  /** The day before this is the sample day. */
  now: Date;
}

/** The sample input from a loaded config. */
export function previewInput(loaded: LoadedConfig, now: Date): PreviewInput {
  const { config } = loaded;
  return {
    organization: config.trust.organization,
    timezone: config.timezone,
    minGreenDays: Math.max(30, config.trust.minGreenDays),
    branding: loadTrustBranding(config.trust, loaded.dir),
    controls: loaded.catalog.controls,
    now,
  };
}

function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

/**
 * A sample snapshot of yesterday over the user's catalog: most controls green for long enough to
 * be on the feed (the public ones appear on the page), every fifth one red with two sample failing
 * resources, and one unknown, so every part of the email can be seen.
 */
export function sampleSnapshot(input: PreviewInput): Snapshot {
  const date = addDays(input.now.toISOString().slice(0, 10), -1);
  const controls: SnapshotControl[] = input.controls.map((c, i) => {
    const probe = c.probes[0] ?? 'sample-probe';
    const base = {
      id: c.id,
      title: c.title,
      public: c.public,
      publicTitle: c.publicTitle,
      publicDescription: c.publicDescription,
      frameworks: { soc2: [...c.frameworks.soc2], iso27001: [...c.frameworks.iso27001] },
      lastMeasuredAt: `${date}T21:45:00.000Z`,
      cadence: c.probes.map((p) => ({ probe: p, schedule: '*/15 * * * *', intervalSeconds: 900 })),
    };
    if (i % 5 === 1) {
      return {
        ...base,
        verdict: 'red',
        reasons: [`${probe}/sample-target: 2 failing resources (sample data)`],
        streak: 0,
        greenSince: null,
        thirtyDayGreen: false,
        lastGreenDay: addDays(date, -1),
        failing: [
          { probe, target: 'sample-target', resource: 'sample-resource-with-a-rather-long-name-to-show-wrapping-at-phone-width', message: 'Sample finding: this is where the probe says which setting is wrong and how to fix it' },
          { probe, target: 'sample-target', resource: 'sample-resource-2', message: 'Sample finding: a second failing resource' },
        ],
      };
    }
    if (i % 5 === 3) {
      return {
        ...base,
        verdict: 'unknown',
        reasons: [`${probe}/sample-target: 1 resource could not be judged: the token may not read that setting (sample data)`],
        streak: 0,
        greenSince: null,
        thirtyDayGreen: false,
        lastGreenDay: addDays(date, -2),
        failing: [],
      };
    }
    const streak = input.minGreenDays + 15 + (i % 7);
    return { ...base, verdict: 'green', reasons: [], streak, greenSince: addDays(date, -(streak - 1)), thirtyDayGreen: true, lastGreenDay: date, failing: [] };
  });
  const count = (v: string) => controls.filter((c) => c.verdict === v).length;
  const probes = [...new Set(input.controls.flatMap((c) => c.probes))];
  const coverage = (key: 'soc2' | 'iso27001'): CoverageEntry[] => {
    const ids = [...new Set(controls.flatMap((c) => c.frameworks[key]))].sort();
    return ids.map((id) => {
      const citing = controls.filter((c) => c.frameworks[key].includes(id));
      const measured = citing.filter((c) => c.verdict !== 'unknown').length;
      const status: CoverageStatus = measured === citing.length ? 'measured' : measured > 0 ? 'partly_measured' : 'not_measured';
      return { id, status, controls: citing.map((c) => c.id) };
    });
  };
  const body: SnapshotBody = {
    schema: 'vigil.snapshot/1',
    date,
    timezone: input.timezone,
    minGreenDays: input.minGreenDays,
    prevHash: createHash('sha256').update('vigil preview: the previous sample day').digest('hex'),
    counts: { green: count('green'), red: count('red'), unknown: count('unknown') },
    controls,
    probeHealth: probes.map((probe) => ({
      probe,
      target: 'sample-target',
      runs: 96,
      errors: 0,
      unknown: 0,
      red: 0,
      lastRunAt: `${date}T21:45:00.000Z`,
      stale: false,
      sourceFreshness: null,
      lastError: null,
    })),
    coverage: { soc2: coverage('soc2'), iso27001: coverage('iso27001') },
    diff: { since: addDays(date, -1), newReds: controls.filter((c) => c.verdict === 'red').map((c) => c.id), recoveries: [], reachedThirtyDays: [], leftFeed: [] },
  };
  return { ...body, hash: snapshotHash(body) };
}

const bannerText = `${PREVIEW_WATERMARK}: not published, not archived. This is how the page or email will look; every figure on it is made up.`;

/** Inserts the banner right after <body …> and before </body>, and the watermark at the start of <title>. */
function watermark(html: string, banner: string): string {
  const withTitle = html.replace(/<title>/, `<title>${PREVIEW_WATERMARK} — `);
  const open = /<body[^>]*>/.exec(withTitle);
  if (!open || !withTitle.includes('</body>')) throw new Error('preview: the rendering has no <body> to watermark');
  const at = open.index + open[0].length;
  const marked = `${withTitle.slice(0, at)}\n${banner}\n${withTitle.slice(at)}`;
  const end = marked.lastIndexOf('</body>');
  return `${marked.slice(0, end)}${banner}\n${marked.slice(end)}`;
}

/** The trust page with sample data, watermarked, with the page's CSP as a meta tag (a file carries no headers). */
export function previewTrustPage(input: PreviewInput): string {
  const snapshot = sampleSnapshot(input);
  const feed = buildFeed(snapshot, { minGreenDays: input.minGreenDays, organization: input.organization });
  const page = renderTrustPage(feed, { branding: input.branding, timezone: input.timezone });
  // frame-ancestors is ignored in a meta CSP; the rest applies when the file is opened.
  const csp = (trustPageHeaders(input.branding)['content-security-policy'] ?? '').replace(/;\s*frame-ancestors 'none'/, '');
  const withCsp = page.replace('<meta charset="utf-8">', `<meta charset="utf-8">\n<meta http-equiv="Content-Security-Policy" content="${csp}">`);
  const none = feed.controls.length === 0 ? ' No control of your catalog is marked public: the page would list none.' : '';
  const banner = `<p role="note" style="margin:0;padding:0.75rem 1rem;background:#fff3bf;color:#5c3c00;border:2px dashed #9a6700;font:600 1rem/1.4 system-ui,sans-serif;text-align:center;">${bannerText}${none}</p>`;
  return watermark(withCsp, banner);
}

/** The daily email (subject, HTML, text) with sample data, watermarked. */
export function previewEmail(input: PreviewInput): { subject: string; html: string; text: string } {
  const snapshot = sampleSnapshot(input);
  const opts = { organization: input.organization };
  const banner = `<p role="note" style="margin:0;padding:12px 16px;background-color:#fff3bf;color:#5c3c00;border:2px dashed #9a6700;font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:15px;font-weight:bold;text-align:center;">${bannerText}</p>`;
  const line = `*** ${bannerText} ***`;
  return {
    subject: `${PREVIEW_WATERMARK} — ${subjectLine(snapshot)}`,
    html: watermark(renderHtml(snapshot, opts), banner),
    text: `${line}\n\n${renderText(snapshot, opts)}\n${line}\n`,
  };
}

/** Whether `file` is `dir` or inside it. */
function inside(file: string, dir: string): boolean {
  // Lexical (`..name` is inside) and through symlinks (R8).
  return insideDirectory(file, dir);
}

/**
 * Writes a preview: `trust` to one HTML file (default vigil-preview-trust.html), `email` to a
 * directory (default vigil-preview-email/) holding subject.txt, email.html and email.txt.
 * Refuses an output inside the evidence archive (exit 64): a preview is never archived.
 */
export function previewCommand(kind: 'trust' | 'email', loaded: LoadedConfig, out: string | undefined, io: CliIo, now: Date = new Date()): number {
  const cwd = io.cwd ?? process.cwd();
  const target = path.resolve(cwd, out ?? (kind === 'trust' ? 'vigil-preview-trust.html' : 'vigil-preview-email'));
  if (inside(target, loaded.archiveDir)) {
    io.err(`vigil: --out ${target} is inside the evidence archive ${loaded.archiveDir}: a preview is never archived; choose another place\n`);
    return EXIT_USAGE;
  }
  let input: PreviewInput;
  try {
    input = previewInput(loaded, now);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.err(`${err.problems.map((line) => `${loaded.file}: ${line}`).join('\n')}\n`);
    return EXIT_CONFIG;
  }
  try {
    if (kind === 'trust') {
      makeDirectorySync(path.dirname(target)); // never recursive mkdirSync: it spins for ever on --out /proc/x
      writeFileSync(target, previewTrustPage(input));
      io.out(`wrote ${target} (${PREVIEW_WATERMARK}); open it in a browser\n`);
    } else {
      const mail = previewEmail(input);
      makeDirectorySync(target);
      writeFileSync(path.join(target, 'subject.txt'), `${mail.subject}\n`);
      writeFileSync(path.join(target, 'email.html'), mail.html);
      writeFileSync(path.join(target, 'email.txt'), mail.text);
      io.out(`wrote ${path.join(target, 'email.html')}, email.txt and subject.txt (${PREVIEW_WATERMARK})\nsubject: ${mail.subject}\n`);
    }
  } catch (err) {
    io.err(`vigil: cannot write ${target}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
    return EXIT_CANTCREAT;
  }
  return 0;
}
