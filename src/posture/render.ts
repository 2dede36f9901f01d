/**
 * Human renderings of a daily snapshot: the email subject, the HTML email body, its plain-text
 * alternative and Markdown. Pure: no clock, no env, no I/O — the same snapshot always renders to
 * the same bytes, so what the officer reads can be re-derived from the archived JSON.
 *
 * Every string that comes from outside vigil's code (control titles, resource names, remediation
 * messages, probe errors) is untrusted: it is escaped for the target format, and control and
 * bidirectional-override characters are replaced, so a resource called `<img onerror=…>` or one
 * with a newline in its name shows up as text and cannot forge a line or a section.
 */
import type { CoverageEntry, CoverageStatus, DayVerdict, Snapshot, SnapshotControl } from './snapshot-types.js';

/** Options shared by the three body renderers. */
export interface RenderOptions {
  /** Organisation named in the heading. Default: none. */
  organization?: string;
  /**
   * Failing resources listed per control; the rest are counted ("and 812 more") and stay in the
   * attached canonical JSON. Keeps a bad day's email under common size limits. Default 200.
   */
  maxResourcesPerControl?: number;
}

const defaultMaxResources = 200;

// ---------------------------------------------------------------------------------------------
// The story of the day, shared by the subject line and every body's headline.

/** The parts of the day's story: counts first (zero red/unknown left out), then the changes. */
export function storyParts(s: Snapshot): string[] {
  const parts = [`${s.counts.green} green`];
  if (s.counts.red > 0) {
    const isRed = new Set(s.controls.filter((c) => c.verdict === 'red').map((c) => c.id));
    // newReds should all be red today; count only those that are, so the note never exceeds the count.
    const fresh = new Set(s.diff.newReds.filter((id) => isRed.size === 0 || isRed.has(id))).size;
    const n = Math.min(fresh, s.counts.red);
    parts.push(n === 0 ? `${s.counts.red} red` : n >= s.counts.red ? `${s.counts.red} red (new)` : `${s.counts.red} red (${n} new)`);
  }
  if (s.counts.unknown > 0) parts.push(`${s.counts.unknown} unknown`);
  if (s.diff.recoveries.length > 0) parts.push(`${s.diff.recoveries.length} recovered`);
  if (s.diff.reachedThirtyDays.length > 0) parts.push(`${s.diff.reachedThirtyDays.length} reached ${s.minGreenDays} days`);
  if (s.diff.leftFeed.length > 0) parts.push(`${s.diff.leftFeed.length} left the feed`);
  return parts;
}

/**
 * The email subject: `vigil 2026-11-21: 12 green · 1 red (new) · 1 unknown · 1 recovered`.
 * Only numbers and the (validated) date go in, so it cannot carry a header injection and stays
 * well under 120 characters.
 */
export function subjectLine(s: Snapshot): string {
  return `vigil ${s.date}: ${storyParts(s).join(' · ')}`;
}

// ---------------------------------------------------------------------------------------------
// A format-neutral view of the snapshot, so the three renderings cannot drift apart.

const verdictOrder: Record<DayVerdict, number> = { red: 0, unknown: 1, green: 2 };
const verdictWord: Record<DayVerdict, string> = { green: 'GREEN', red: 'RED', unknown: 'UNKNOWN' };
const verdictSymbol: Record<DayVerdict, string> = { green: '✓', red: '✗', unknown: '?' };
const coverageWord: Record<CoverageStatus, string> = { measured: 'measured', partly_measured: 'partly measured', not_measured: 'not measured' };

interface ChangeGroup {
  label: string;
  items: Array<{ id: string; title: string | undefined }>;
}

interface View {
  /** Red first, then unknown, then green; catalog order within each. */
  controls: SnapshotControl[];
  changes: ChangeGroup[];
  frameworks: Array<{ name: string; entries: CoverageEntry[]; summary: string }>;
  probeSummary: string;
  max: number;
}

function view(s: Snapshot, opts: RenderOptions): View {
  const titles = new Map(s.controls.map((c) => [c.id, c.title]));
  const group = (label: string, ids: string[]): ChangeGroup => ({ label, items: ids.map((id) => ({ id, title: titles.get(id) })) });
  const controls = s.controls
    .map((c, i) => ({ c, i }))
    .sort((a, b) => verdictOrder[a.c.verdict] - verdictOrder[b.c.verdict] || a.i - b.i)
    .map(({ c }) => c);
  const summarize = (entries: CoverageEntry[]): string => {
    const n = (st: CoverageStatus) => entries.filter((e) => e.status === st).length;
    return `${n('measured')} measured · ${n('partly_measured')} partly measured · ${n('not_measured')} not measured`;
  };
  const errors = s.probeHealth.reduce((sum, p) => sum + p.errors, 0);
  const stale = s.probeHealth.filter((p) => p.stale).length;
  const runs = s.probeHealth.reduce((sum, p) => sum + p.runs, 0);
  return {
    controls,
    changes: [
      group('New red', s.diff.newReds),
      group('Recovered', s.diff.recoveries),
      group(`Reached ${s.minGreenDays} days green`, s.diff.reachedThirtyDays),
      group('Left the trust feed', s.diff.leftFeed),
    ],
    frameworks: [
      { name: 'SOC 2 (Trust Services Criteria)', entries: s.coverage.soc2, summary: summarize(s.coverage.soc2) },
      { name: 'ISO/IEC 27001:2022 Annex A', entries: s.coverage.iso27001, summary: summarize(s.coverage.iso27001) },
    ],
    probeSummary: `${s.probeHealth.length} probe ${plural(s.probeHealth.length, 'target', 'targets')} · ${runs} ${plural(runs, 'run', 'runs')} · ${errors} ${plural(errors, 'error', 'errors')} · ${stale} stale`,
    max: Math.max(0, Math.floor(opts.maxResourcesPerControl ?? defaultMaxResources)),
  };
}

function plural(n: number, one: string, many: string): string {
  return n === 1 ? one : many;
}

function days(n: number): string {
  return `${n} ${plural(n, 'day', 'days')}`;
}

function changesIntro(s: Snapshot): string {
  return s.diff.since === null ? 'First snapshot in the archive: nothing to compare with.' : `Since the snapshot of ${s.diff.since}:`;
}

function signatureLine(s: Snapshot): string {
  if (s.signature === undefined) return 'Not signed.';
  return s.signedBy === undefined ? 'Signed (Ed25519 over the hash).' : `Signed (Ed25519 over the hash) by the key with SPKI SHA-256 fingerprint ${s.signedBy}.`;
}

/**
 * Replaces C0/C1 control characters (newlines included) and Unicode line separators and
 * bidirectional overrides, which could forge lines or reorder what the reader sees.
 */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '\uFFFD');
}

// ---------------------------------------------------------------------------------------------
// HTML email. Table layout and inline styles only (mail clients drop <style> and ignore most
// layout CSS), no script, no images, no external resource of any kind.

const font = "font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;";
const badgeColour: Record<DayVerdict, string> = { green: '#1a7f37', red: '#cf222e', unknown: '#57606a' };
const coverageColour: Record<CoverageStatus, string> = { measured: '#1a7f37', partly_measured: '#9a6700', not_measured: '#57606a' };
const th = 'text-align:left;padding:6px 8px;border-bottom:2px solid #d0d7de;font-size:13px;color:#24292f;';
const td = 'text-align:left;vertical-align:top;padding:6px 8px;border-bottom:1px solid #eaeef2;font-size:13px;color:#24292f;';
const h2 = `${font}font-size:18px;color:#24292f;margin:28px 0 8px 0;padding:0;`;
const p = `${font}font-size:14px;color:#24292f;margin:0 0 8px 0;`;
const codeStyle = "font-family:SFMono-Regular,Consolas,'Liberation Mono',Menlo,monospace;font-size:12px;word-wrap:break-word;overflow-wrap:break-word;";

/** Escapes text for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(text: string): string {
  return clean(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const e = escapeHtml;

function badge(text: string, colour: string): string {
  return `<span style="display:inline-block;padding:2px 8px;border-radius:3px;background-color:${colour};color:#ffffff;font-weight:bold;font-size:12px;white-space:nowrap;">${e(text)}</span>`;
}

function verdictBadge(v: DayVerdict): string {
  return badge(`${verdictSymbol[v]} ${verdictWord[v]}`, badgeColour[v]);
}

function code(text: string): string {
  return `<code style="${codeStyle}">${e(text)}</code>`;
}

function table(head: string[], rows: string[]): string {
  return (
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="border-collapse:collapse;width:100%;${font}">` +
    `<tr>${head.map((h) => `<th style="${th}">${e(h)}</th>`).join('')}</tr>${rows.join('')}</table>`
  );
}

function row(cells: string[]): string {
  return `<tr>${cells.map((c) => `<td style="${td}">${c}</td>`).join('')}</tr>`;
}

function htmlControlRows(c: SnapshotControl, max: number): string {
  const streak = `${e(days(c.streak))}${c.thirtyDayGreen ? '<br><span style="font-size:12px;color:#1a7f37;">on the trust feed</span>' : ''}`;
  let out = row([
    verdictBadge(c.verdict),
    `<strong>${e(c.title)}</strong><br>${code(c.id)}`,
    streak,
    e(c.greenSince ?? '—'),
    e(c.lastMeasuredAt ?? 'not measured'),
  ]);
  if (c.reasons.length === 0 && c.failing.length === 0) return out;
  let detail = '';
  if (c.reasons.length > 0) {
    detail += `<p style="${p}font-size:13px;"><strong>Why not green:</strong> ${c.reasons.map(e).join('; ')}</p>`;
  }
  if (c.failing.length > 0) {
    const shown = c.failing.slice(0, max);
    detail += table(
      ['Failing resource', 'Probe / target', 'Remediation'],
      shown.map((f) => row([code(f.resource), `${e(f.probe)} / ${e(f.target)}`, e(f.message)])),
    );
    if (c.failing.length > shown.length) {
      detail += `<p style="${p}font-size:13px;">…and ${c.failing.length - shown.length} more failing resources, listed in the attached snapshot JSON.</p>`;
    }
  }
  out += `<tr><td colspan="5" style="padding:4px 8px 12px 24px;border-bottom:1px solid #eaeef2;background-color:#f6f8fa;">${detail}</td></tr>`;
  return out;
}

/**
 * The daily snapshot as a complete HTML email: headline counts, what changed, every control
 * (verdict as coloured badge and word, streak, greenSince, failing resources with remediation),
 * probe health, framework coverage, and a footer with the hash chain and signature state.
 */
export function renderHtml(s: Snapshot, opts: RenderOptions & { organization: string }): string {
  const v = view(s, opts);
  const story = storyParts(s);
  const title = `vigil daily snapshot — ${opts.organization} — ${s.date}`;

  const headline =
    `<h1 style="${font}font-size:22px;color:#24292f;margin:0 0 4px 0;">${e(opts.organization)}: control posture on ${e(s.date)}</h1>` +
    `<p style="${p}color:#57606a;">Daily snapshot by vigil · calendar day in ${e(s.timezone)} · a control is on the trust feed after ${e(days(s.minGreenDays))} green in a row</p>` +
    `<p style="${font}font-size:20px;color:#24292f;margin:12px 0 0 0;">${story
      .map((part, i) => {
        const colour = i === 0 ? badgeColour.green : part.endsWith(' unknown') ? badgeColour.unknown : / red( |$)/.test(part) ? badgeColour.red : '#24292f';
        return `<strong style="color:${colour};">${e(part)}</strong>`;
      })
      .join(' · ')}</p>`;

  const changes =
    `<h2 style="${h2}">What changed</h2><p style="${p}">${e(changesIntro(s))}</p>` +
    (v.changes.every((g) => g.items.length === 0)
      ? `<p style="${p}">No new reds, recoveries, controls reaching ${e(days(s.minGreenDays))}, or controls leaving the feed.</p>`
      : table(
          ['Change', 'Controls'],
          v.changes
            .filter((g) => g.items.length > 0)
            .map((g) => row([`<strong>${e(g.label)}</strong>`, g.items.map((it) => `${it.title === undefined ? '' : `${e(it.title)} `}${code(it.id)}`).join('<br>')])),
        ));

  const controls =
    `<h2 style="${h2}">Controls (${s.controls.length})</h2>` +
    (s.controls.length === 0
      ? `<p style="${p}">No controls in the catalog.</p>`
      : table(['Verdict', 'Control', 'Streak', 'Green since', 'Last measured'], v.controls.map((c) => htmlControlRows(c, v.max))));

  const health =
    `<h2 style="${h2}">Probe health</h2><p style="${p}">${e(v.probeSummary)}</p>` +
    (s.probeHealth.length === 0
      ? ''
      : table(
          ['Probe / target', 'Runs', 'Errors', 'Red', 'Unknown', 'Stale', 'Source freshness', 'Last run', 'Last error'],
          s.probeHealth.map((h) =>
            row([
              `${code(h.probe)} / ${e(h.target)}`,
              e(String(h.runs)),
              h.errors > 0 ? `<strong style="color:${badgeColour.red};">${h.errors}</strong>` : '0',
              e(String(h.red)),
              e(String(h.unknown)),
              h.stale ? `<strong style="color:${badgeColour.red};">STALE</strong>` : 'no',
              e(h.sourceFreshness ?? '—'),
              e(h.lastRunAt ?? 'no run'),
              h.lastError === null ? '—' : e(h.lastError),
            ]),
          ),
        ));

  const coverage =
    `<h2 style="${h2}">Framework coverage</h2>` +
    `<p style="${p}">Whether vigil measured each requirement the catalog cites: <em>measured</em> when every control citing it had a green or red day, <em>partly measured</em> when some did, <em>not measured</em> when none did. Not a statement of compliance.</p>` +
    v.frameworks
      .map(
        (f) =>
          `<h3 style="${font}font-size:15px;color:#24292f;margin:16px 0 4px 0;">${e(f.name)}</h3><p style="${p}">${e(f.summary)}</p>` +
          (f.entries.length === 0
            ? `<p style="${p}">No requirement of this framework is cited by the catalog.</p>`
            : table(
                ['Requirement', 'Status', 'Controls'],
                f.entries.map((c) => row([`<strong>${e(c.id)}</strong>`, badge(coverageWord[c.status], coverageColour[c.status]), c.controls.map(code).join(' ') || '—'])),
              )),
      )
      .join('');

  const footer =
    `<hr style="border:0;border-top:1px solid #d0d7de;margin:28px 0 12px 0;">` +
    `<p style="${p}font-size:12px;color:#57606a;">Snapshot hash (SHA-256 of the canonical JSON): ${code(s.hash)}</p>` +
    `<p style="${p}font-size:12px;color:#57606a;">Previous snapshot hash: ${s.prevHash === null ? 'none (first snapshot of the archive)' : code(s.prevHash)}</p>` +
    `<p style="${p}font-size:12px;color:#57606a;">${e(signatureLine(s))}</p>` +
    `<p style="${p}font-size:12px;color:#57606a;">The attached JSON is the archived snapshot byte for byte; <code style="${codeStyle}">vigil verify-archive</code> re-checks the hash chain offline. Schema ${e(s.schema)}.</p>`;

  return (
    '<!DOCTYPE html>\n' +
    `<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${e(title)}</title></head>` +
    `<body style="margin:0;padding:0;background-color:#f6f8fa;">` +
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="border-collapse:collapse;width:100%;background-color:#f6f8fa;"><tr><td align="center" style="padding:16px 8px;">` +
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="border-collapse:collapse;width:100%;max-width:900px;background-color:#ffffff;border:1px solid #d0d7de;"><tr><td style="padding:20px 24px;${font}color:#24292f;">` +
    headline +
    changes +
    controls +
    health +
    coverage +
    footer +
    '</td></tr></table></td></tr></table></body></html>\n'
  );
}

// ---------------------------------------------------------------------------------------------
// Markdown (CommonMark + GFM tables). Free text is backslash-escaped so it cannot open HTML,
// links or emphasis; identifiers and resource names go in code spans, where nothing is parsed.

/** Escapes free text for Markdown, inside or outside a table cell. */
export function escapeMarkdown(text: string): string {
  return clean(text).replace(/[\\`*_{}[\]<>#|&~]/g, (ch) => `\\${ch}`);
}

/** A code span that survives backticks and table pipes in its content. */
function mdCode(text: string): string {
  const t = clean(text).replace(/\|/g, '\\|');
  const longest = Math.max(0, ...Array.from(t.matchAll(/`+/g), (m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  const pad = t.startsWith('`') || t.endsWith('`') || t === '' ? ' ' : '';
  return `${fence}${pad}${t}${pad}${fence}`;
}

const m = escapeMarkdown;

function mdTable(head: string[], rows: string[][]): string[] {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

/** The daily snapshot as Markdown, with the same content as {@link renderHtml}. */
export function renderMarkdown(s: Snapshot, opts: RenderOptions = {}): string {
  const v = view(s, opts);
  const out: string[] = [];
  const org = opts.organization === undefined ? '' : `${m(opts.organization)}: `;
  out.push(`# ${org}control posture on ${s.date}`, '');
  out.push(`**${storyParts(s).map(m).join(' · ')}**`, '');
  out.push(`Daily snapshot by vigil · calendar day in ${m(s.timezone)} · a control is on the trust feed after ${days(s.minGreenDays)} green in a row`, '');

  out.push('## What changed', '', m(changesIntro(s)), '');
  if (v.changes.every((g) => g.items.length === 0)) out.push(`No new reds, recoveries, controls reaching ${days(s.minGreenDays)}, or controls leaving the feed.`, '');
  for (const g of v.changes) {
    if (g.items.length === 0) continue;
    out.push(`- **${m(g.label)}:** ${g.items.map((it) => (it.title === undefined ? mdCode(it.id) : `${m(it.title)} ${mdCode(it.id)}`)).join(', ')}`);
  }
  if (v.changes.some((g) => g.items.length > 0)) out.push('');

  out.push(`## Controls (${s.controls.length})`, '');
  if (s.controls.length === 0) out.push('No controls in the catalog.', '');
  else {
    out.push(
      ...mdTable(
        ['Verdict', 'Control', 'Streak', 'Green since', 'Last measured'],
        v.controls.map((c) => [
          `${verdictSymbol[c.verdict]} **${verdictWord[c.verdict]}**`,
          `${m(c.title)} ${mdCode(c.id)}`,
          `${days(c.streak)}${c.thirtyDayGreen ? ' (on the trust feed)' : ''}`,
          c.greenSince === null ? '—' : m(c.greenSince),
          c.lastMeasuredAt === null ? 'not measured' : m(c.lastMeasuredAt),
        ]),
      ),
      '',
    );
  }
  for (const c of v.controls) {
    if (c.reasons.length === 0 && c.failing.length === 0) continue;
    out.push(`### ${verdictWord[c.verdict]}: ${m(c.title)} ${mdCode(c.id)}`, '');
    if (c.reasons.length > 0) out.push(`Why not green: ${c.reasons.map(m).join('; ')}`, '');
    const shown = c.failing.slice(0, v.max);
    for (const f of shown) out.push(`- ${mdCode(f.resource)} (${mdCode(f.probe)} / ${m(f.target)}): ${m(f.message)}`);
    if (c.failing.length > shown.length) out.push(`- …and ${c.failing.length - shown.length} more failing resources, listed in the snapshot JSON.`);
    if (shown.length > 0) out.push('');
  }

  out.push('## Probe health', '', m(v.probeSummary), '');
  if (s.probeHealth.length > 0) {
    out.push(
      ...mdTable(
        ['Probe / target', 'Runs', 'Errors', 'Red', 'Unknown', 'Stale', 'Source freshness', 'Last run', 'Last error'],
        s.probeHealth.map((h) => [
          `${mdCode(h.probe)} / ${m(h.target)}`,
          String(h.runs),
          h.errors > 0 ? `**${h.errors}**` : '0',
          String(h.red),
          String(h.unknown),
          h.stale ? '**STALE**' : 'no',
          h.sourceFreshness === null ? '—' : m(h.sourceFreshness),
          h.lastRunAt === null ? 'no run' : m(h.lastRunAt),
          h.lastError === null ? '—' : m(h.lastError),
        ]),
      ),
      '',
    );
  }

  out.push('## Framework coverage', '');
  out.push('Whether vigil measured each requirement the catalog cites: *measured* when every control citing it had a green or red day, *partly measured* when some did, *not measured* when none did. Not a statement of compliance.', '');
  for (const f of v.frameworks) {
    out.push(`### ${m(f.name)}`, '', f.summary, '');
    if (f.entries.length === 0) out.push('No requirement of this framework is cited by the catalog.', '');
    else out.push(...mdTable(['Requirement', 'Status', 'Controls'], f.entries.map((c) => [`**${m(c.id)}**`, coverageWord[c.status], c.controls.map(mdCode).join(' ') || '—'])), '');
  }

  out.push('---', '');
  out.push(`Snapshot hash (SHA-256 of the canonical JSON): ${mdCode(s.hash)}  `);
  out.push(`Previous snapshot hash: ${s.prevHash === null ? 'none (first snapshot of the archive)' : mdCode(s.prevHash)}  `);
  out.push(`${m(signatureLine(s))}  `);
  out.push(`Schema ${mdCode(s.schema)}; \`vigil verify-archive\` re-checks the hash chain offline.`, '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Plain text, the text/plain alternative of the email.

/** The daily snapshot as plain text, with the same content as {@link renderHtml}. */
export function renderText(s: Snapshot, opts: RenderOptions = {}): string {
  const v = view(s, opts);
  const t = clean;
  const out: string[] = [];
  const heading = (text: string) => out.push('', text.toUpperCase(), '='.repeat(text.length));
  out.push(`${opts.organization === undefined ? '' : `${t(opts.organization)}: `}control posture on ${s.date}`);
  out.push(storyParts(s).join(' · '));
  out.push(`Daily snapshot by vigil · calendar day in ${t(s.timezone)} · a control is on the trust feed after ${days(s.minGreenDays)} green in a row`);

  heading('What changed');
  out.push(changesIntro(s));
  if (v.changes.every((g) => g.items.length === 0)) out.push(`No new reds, recoveries, controls reaching ${days(s.minGreenDays)}, or controls leaving the feed.`);
  for (const g of v.changes) {
    if (g.items.length === 0) continue;
    out.push(`${g.label}:`);
    for (const it of g.items) out.push(`  - ${t(it.id)}${it.title === undefined ? '' : ` (${t(it.title)})`}`);
  }

  heading(`Controls (${s.controls.length})`);
  if (s.controls.length === 0) out.push('No controls in the catalog.');
  for (const c of v.controls) {
    out.push('');
    out.push(`[${verdictSymbol[c.verdict]} ${verdictWord[c.verdict]}] ${t(c.title)} (${t(c.id)})`);
    out.push(
      `    streak ${days(c.streak)}${c.thirtyDayGreen ? ', on the trust feed' : ''} · green since ${c.greenSince === null ? '—' : t(c.greenSince)} · last measured ${c.lastMeasuredAt === null ? 'never that day' : t(c.lastMeasuredAt)}`,
    );
    if (c.reasons.length > 0) out.push(`    why not green: ${c.reasons.map(t).join('; ')}`);
    const shown = c.failing.slice(0, v.max);
    if (shown.length > 0) out.push(`    failing resources (${c.failing.length}):`);
    for (const f of shown) out.push(`      - ${t(f.resource)} [${t(f.probe)} / ${t(f.target)}]: ${t(f.message)}`);
    if (c.failing.length > shown.length) out.push(`      …and ${c.failing.length - shown.length} more, listed in the snapshot JSON.`);
  }

  heading('Probe health');
  out.push(v.probeSummary);
  for (const h of s.probeHealth) {
    out.push(
      `  - ${t(h.probe)} / ${t(h.target)}: ${h.runs} runs, ${h.errors} errors, ${h.red} red, ${h.unknown} unknown, ${h.stale ? 'STALE' : 'not stale'}, ` +
        `source freshness ${h.sourceFreshness === null ? '—' : t(h.sourceFreshness)}, last run ${h.lastRunAt === null ? 'none' : t(h.lastRunAt)}` +
        (h.lastError === null ? '' : `, last error: ${t(h.lastError)}`),
    );
  }

  heading('Framework coverage');
  out.push('measured: every control citing it had a green or red day; partly measured: some did; not measured: none did. Not a statement of compliance.');
  for (const f of v.frameworks) {
    out.push('', `${f.name}: ${f.summary}`);
    if (f.entries.length === 0) out.push('  No requirement of this framework is cited by the catalog.');
    for (const c of f.entries) out.push(`  - ${t(c.id)}: ${coverageWord[c.status]}${c.controls.length === 0 ? '' : ` (${c.controls.map(t).join(', ')})`}`);
  }

  out.push('', '-'.repeat(40));
  out.push(`Snapshot hash (SHA-256 of the canonical JSON): ${s.hash}`);
  out.push(`Previous snapshot hash: ${s.prevHash ?? 'none (first snapshot of the archive)'}`);
  out.push(t(signatureLine(s)));
  out.push(`Schema ${s.schema}; "vigil verify-archive" re-checks the hash chain offline.`);
  return `${out.join('\n')}\n`;
}
