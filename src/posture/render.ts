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
import { formatLocalTime } from './local-time.js';
import { percent } from './coverage.js';
import type { CoverageEntry, CoverageStatus, DayVerdict, PopulationResource, Snapshot, SnapshotControl } from './snapshot-types.js';

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

/** An instant as people read it: in the snapshot's time zone, e.g. "2026-11-21 14:03 CET". */
function when(iso: string, s: Pick<Snapshot, 'timezone'>): string {
  return formatLocalTime(iso, s.timezone);
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
// overflow-wrap:anywhere (and word-break:break-word for older engines) lets a long resource name or
// hash wrap anywhere *and* shrinks the cell's minimum width, so nothing overflows a 390 px phone.
const codeStyle = "font-family:SFMono-Regular,Consolas,'Liberation Mono',Menlo,monospace;font-size:12px;word-wrap:break-word;overflow-wrap:anywhere;word-break:break-word;";
/** A cell of a one-column list (controls, failing resources, probe health): reads the same at 390 px and 1200 px. */
const cell = 'text-align:left;vertical-align:top;padding:8px 8px;border-bottom:1px solid #eaeef2;font-size:13px;color:#24292f;overflow-wrap:anywhere;word-break:break-word;';
const small = `${font}font-size:12px;color:#57606a;margin:2px 0 0 0;`;

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

/** A one-column table: one row per item, so it never needs more width than its longest word. */
function list(rows: string[]): string {
  return (
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="border-collapse:collapse;width:100%;table-layout:fixed;${font}">` +
    rows.map((r) => `<tr><td style="${cell}">${r}</td></tr>`).join('') +
    '</table>'
  );
}

/** One control: verdict badge and title, then its streak line, then why it is not green and what fails. */
function htmlControl(c: SnapshotControl, s: Snapshot, max: number): string {
  const facts = [
    `Streak ${e(days(c.streak))}${c.thirtyDayGreen ? ' · <span style="color:#1a7f37;">on the trust feed</span>' : ''}`,
    `green since ${e(c.greenSince ?? '—')}`,
    `last measured ${c.lastMeasuredAt === null ? 'not measured' : e(when(c.lastMeasuredAt, s))}`,
  ];
  let out =
    `<p style="${p}margin:0;">${verdictBadge(c.verdict)} <strong>${e(c.title)}</strong> ${code(c.id)}</p>` +
    `<p style="${small}">${facts.join(' · ')}</p>`;
  if (c.reasons.length > 0) {
    out += `<p style="${p}font-size:13px;margin:6px 0 0 0;"><strong>Why not green:</strong> ${c.reasons.map(e).join('; ')}</p>`;
  }
  if (c.failing.length > 0) {
    const shown = c.failing.slice(0, max);
    out +=
      `<p style="${p}font-size:13px;margin:8px 0 2px 0;"><strong>Failing resources (${c.failing.length})</strong></p>` +
      `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="border-collapse:collapse;width:100%;table-layout:fixed;background-color:#f6f8fa;${font}">` +
      shown
        .map(
          (f) =>
            `<tr><td style="${cell}border-left:3px solid ${badgeColour.red};">${code(f.resource)}<br><span style="font-size:12px;color:#57606a;">${e(f.probe)} / ${e(f.target)}</span><br>${e(f.message)}</td></tr>`,
        )
        .join('') +
      '</table>';
    if (c.failing.length > shown.length) {
      out += `<p style="${p}font-size:13px;">…and ${c.failing.length - shown.length} more failing resources, listed in the attached snapshot JSON.</p>`;
    }
  }
  for (const line of exceptionLines(c, max)) out += `<p style="${p}font-size:13px;margin:6px 0 0 0;">${line.strong ? `<strong>${e(line.text)}</strong>` : e(line.text)}</p>`;
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
    (s.controls.length === 0 ? `<p style="${p}">No controls in the catalog.</p>` : list(v.controls.map((c) => htmlControl(c, s, v.max))));

  const health =
    `<h2 style="${h2}">Probe health</h2><p style="${p}">${e(v.probeSummary)}</p>` +
    (s.probeHealth.length === 0
      ? ''
      : list(
          s.probeHealth.map((h) => {
            const facts = [
              `${h.runs} ${plural(h.runs, 'run', 'runs')}${e(scheduledOf(h))}`,
              h.errors > 0 ? `<strong style="color:${badgeColour.red};">${h.errors} ${plural(h.errors, 'error', 'errors')}</strong>` : '0 errors',
              `${h.red} red`,
              `${h.unknown} unknown`,
              h.stale ? `<strong style="color:${badgeColour.red};">STALE</strong>` : 'not stale',
              `source freshness ${h.sourceFreshness === null ? '—' : e(when(h.sourceFreshness, s))}`,
              `last run ${h.lastRunAt === null ? 'no run' : e(when(h.lastRunAt, s))}`,
            ];
            return (
              `${code(h.probe)} / <strong>${e(h.target)}</strong><br><span style="font-size:12px;color:#57606a;">${facts.join(' · ')}</span>` +
              (h.lastError === null ? '' : `<br><span style="font-size:12px;">Last error: ${e(h.lastError)}</span>`)
            );
          }),
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
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="border-collapse:collapse;width:100%;max-width:900px;background-color:#ffffff;border:1px solid #d0d7de;"><tr><td style="padding:16px 16px;${font}color:#24292f;overflow-wrap:break-word;">` +
    headline +
    changes +
    controls +
    populationHtml(s, v.max) +
    health +
    coverage +
    footer +
    '</td></tr></table></td></tr></table></body></html>\n'
  );
}

// ---------------------------------------------------------------------------------------------
// The tested population (issue 13): per probe × target, every resource judged that day. The email
// (HTML and text) shows counts and the evidence levels; the Markdown and the attached JSON list
// every resource, passing ones included — a 5,000-repository org would otherwise make the email
// body several hundred kB (see bench/population.ts).

interface PopulationSummary {
  probe: string;
  target: string;
  judged: number;
  pass: number;
  fail: number;
  unknown: number;
  notApplicable: number;
  omitted: number;
  /** Resources that report an evidence level, in the unit's (sorted) order. */
  leveled: PopulationResource[];
  lowest: number | undefined;
}

function populationSummaries(s: Snapshot): PopulationSummary[] {
  return (s.population ?? []).map((u) => {
    const n = (o: PopulationResource['outcome']) => u.resources.filter((r) => r.outcome === o).length;
    const leveled = u.resources.filter((r) => r.level !== undefined);
    const lowest = leveled.length === 0 ? undefined : Math.min(...leveled.map((r) => r.level as number));
    return { probe: u.probe, target: u.target, judged: u.resources.length, pass: n('pass'), fail: n('fail'), unknown: n('unknown'), notApplicable: n('not_applicable'), omitted: u.omitted ?? 0, leveled, lowest };
  });
}

/** "5000 judged: 4990 passed · 8 failed · 2 unknown · 0 not applicable", or "… listed: … · not listed: N more …" when a run was cut. */
function populationCountsLine(u: PopulationSummary): string {
  const counts = `${u.pass} passed · ${u.fail} failed · ${u.unknown} unknown · ${u.notApplicable} not applicable`;
  if (u.omitted === 0) return `${u.judged} judged: ${counts}`;
  return `${u.judged} listed: ${counts} · not listed: ${u.omitted} more that one run judged beyond the per-run cap`;
}

function levelWord(level: number): string {
  return `L${level}`;
}

/** Controls whose probes report evidence levels: "L5 today; L4 or more on 40 consecutive days". */
function evidenceLines(s: Snapshot): Array<{ c: SnapshotControl; text: string }> {
  return s.controls
    .filter((c) => c.evidenceLevel !== undefined)
    .map((c) => ({
      c,
      text: `lowest evidence level ${levelWord(c.evidenceLevel as number)} today${c.restoreTestedDays !== undefined && c.restoreTestedDays > 0 ? `; L4 or more (restore-tested) on ${days(c.restoreTestedDays)} in a row` : ''}`,
    }));
}

const populationIntro =
  'Every resource vigil judged that day, per probe and target, with its worst outcome of the day. Evidence levels (backups): L1 on schedule · L2 protected · L3 content intact · L4 a restore succeeds in isolation · L5 restored data validated; a resource shows the lowest level it had that day.';

function populationHtml(s: Snapshot, max: number): string {
  if (s.population === undefined) return '';
  const units = populationSummaries(s);
  const evidence = evidenceLines(s);
  let out =
    `<h2 style="${h2}">Tested population</h2>` +
    `<p style="${p}">${e(populationIntro)} Every passing resource is listed in the attached snapshot JSON.</p>`;
  if (evidence.length > 0) out += list(evidence.map(({ c, text }) => `<strong>${e(c.title)}</strong> ${code(c.id)}<br><span style="font-size:12px;color:#57606a;">${e(text)}</span>`));
  if (units.length === 0) return `${out}<p style="${p}">No probe target was measured that day.</p>`;
  return (
    out +
    list(
      units.map((u) => {
        let row = `${code(u.probe)} / <strong>${e(u.target)}</strong><br><span style="font-size:12px;color:#57606a;">${e(populationCountsLine(u))}</span>`;
        if (u.lowest !== undefined) {
          const shown = u.leveled.slice(0, max);
          row +=
            `<br><span style="font-size:12px;">Evidence level per resource (lowest ${e(levelWord(u.lowest))}): ` +
            shown.map((r) => `${code(r.resource)} ${e(levelWord(r.level as number))}`).join(' · ') +
            (u.leveled.length > shown.length ? ` · …and ${u.leveled.length - shown.length} more in the attached snapshot JSON` : '') +
            '</span>';
        }
        return row;
      }),
    )
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
          c.lastMeasuredAt === null ? 'not measured' : m(when(c.lastMeasuredAt, s)),
        ]),
      ),
      '',
    );
  }
  for (const c of v.controls) {
    if (c.reasons.length === 0 && c.failing.length === 0 && exceptionLines(c, v.max).length === 0) continue;
    out.push(`### ${verdictWord[c.verdict]}: ${m(c.title)} ${mdCode(c.id)}`, '');
    if (c.reasons.length > 0) out.push(`Why not green: ${c.reasons.map(m).join('; ')}`, '');
    const shown = c.failing.slice(0, v.max);
    for (const f of shown) out.push(`- ${mdCode(f.resource)} (${mdCode(f.probe)} / ${m(f.target)}): ${m(f.message)}`);
    if (c.failing.length > shown.length) out.push(`- …and ${c.failing.length - shown.length} more failing resources, listed in the snapshot JSON.`);
    if (shown.length > 0) out.push('');
    const excepted = exceptionLines(c, v.max);
    for (const line of excepted) out.push(line.strong ? `**${m(line.text)}**` : `- ${m(line.text)}`);
    if (excepted.length > 0) out.push('');
  }

  out.push(...populationMarkdown(s));
  out.push('## Probe health', '', m(v.probeSummary), '');
  if (s.probeHealth.length > 0) {
    out.push(
      ...mdTable(
        ['Probe / target', 'Runs', 'Errors', 'Red', 'Unknown', 'Stale', 'Source freshness', 'Last run', 'Last error'],
        s.probeHealth.map((h) => [
          `${mdCode(h.probe)} / ${m(h.target)}`,
          `${h.runs}${scheduledOf(h)}`,
          h.errors > 0 ? `**${h.errors}**` : '0',
          String(h.red),
          String(h.unknown),
          h.stale ? '**STALE**' : 'no',
          h.sourceFreshness === null ? '—' : m(when(h.sourceFreshness, s)),
          h.lastRunAt === null ? 'no run' : m(when(h.lastRunAt, s)),
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

const outcomeWord: Record<PopulationResource['outcome'], string> = { pass: 'pass', fail: 'fail', unknown: 'unknown', not_applicable: 'not applicable' };

/** The population in Markdown: counts, levels and every resource (passing ones included). */
function populationMarkdown(s: Snapshot): string[] {
  if (s.population === undefined) return [];
  const out: string[] = ['## Tested population', '', m(populationIntro), ''];
  for (const { c, text } of evidenceLines(s)) out.push(`- ${m(c.title)} ${mdCode(c.id)}: ${m(text)}`);
  if (evidenceLines(s).length > 0) out.push('');
  const units = populationSummaries(s);
  if (units.length === 0) out.push('No probe target was measured that day.', '');
  (s.population ?? []).forEach((u, i) => {
    const sum = units[i] as PopulationSummary;
    out.push(`### ${mdCode(u.probe)} / ${m(u.target)}`, '', m(populationCountsLine(sum)), '');
    for (const r of u.resources) {
      const word = r.outcome === 'pass' ? outcomeWord.pass : `**${outcomeWord[r.outcome]}**`;
      out.push(`- ${mdCode(r.resource)} ${word}${r.level === undefined ? '' : ` ${levelWord(r.level)}`}${r.message === undefined ? '' : `: ${m(r.message)}`}`);
    }
    if (u.resources.length > 0) out.push('');
  });
  return out;
}

/** The population in the plain-text email: counts and levels, like the HTML. */
function populationText(s: Snapshot, max: number): string[] {
  if (s.population === undefined) return [];
  const out: string[] = [populationIntro, 'Every passing resource is listed in the attached snapshot JSON.'];
  for (const { c, text } of evidenceLines(s)) out.push(`  * ${clean(c.title)} (${clean(c.id)}): ${text}`);
  const units = populationSummaries(s);
  if (units.length === 0) out.push('No probe target was measured that day.');
  for (const u of units) {
    out.push(`  - ${clean(u.probe)} / ${clean(u.target)}: ${populationCountsLine(u)}`);
    if (u.lowest === undefined) continue;
    const shown = u.leveled.slice(0, max);
    out.push(`      evidence level per resource (lowest ${levelWord(u.lowest)}): ${shown.map((r) => `${clean(r.resource)} ${levelWord(r.level as number)}`).join(', ')}${u.leveled.length > shown.length ? `, …and ${u.leveled.length - shown.length} more in the snapshot JSON` : ''}`);
  }
  return out;
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
      `    streak ${days(c.streak)}${c.thirtyDayGreen ? ', on the trust feed' : ''} · green since ${c.greenSince === null ? '—' : t(c.greenSince)} · last measured ${c.lastMeasuredAt === null ? 'never that day' : t(when(c.lastMeasuredAt, s))}`,
    );
    if (c.reasons.length > 0) out.push(`    why not green: ${c.reasons.map(t).join('; ')}`);
    const shown = c.failing.slice(0, v.max);
    if (shown.length > 0) out.push(`    failing resources (${c.failing.length}):`);
    for (const f of shown) out.push(`      - ${t(f.resource)} [${t(f.probe)} / ${t(f.target)}]: ${t(f.message)}`);
    if (c.failing.length > shown.length) out.push(`      …and ${c.failing.length - shown.length} more, listed in the snapshot JSON.`);
    for (const line of exceptionLines(c, v.max)) out.push(`${line.strong ? '    ' : '      - '}${t(line.text)}`);
  }

  if (s.population !== undefined) {
    heading('Tested population');
    out.push(...populationText(s, v.max));
  }
  heading('Probe health');
  out.push(v.probeSummary);
  for (const h of s.probeHealth) {
    out.push(
      `  - ${t(h.probe)} / ${t(h.target)}: ${h.runs} runs${scheduledOf(h)}, ${h.errors} errors, ${h.red} red, ${h.unknown} unknown, ${h.stale ? 'STALE' : 'not stale'}, ` +
        `source freshness ${h.sourceFreshness === null ? '—' : t(when(h.sourceFreshness, s))}, last run ${h.lastRunAt === null ? 'none' : t(when(h.lastRunAt, s))}` +
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

/**
 * Exceptions (issue 15) of one control, as lines for every rendering: the failing resources an
 * accepted risk held that day (who accepted it, why, until when, the ticket), then the control's
 * expired and stale exceptions. Headings are `strong`. Empty when the control has none.
 */
function exceptionLines(c: SnapshotControl, max: number): Array<{ text: string; strong: boolean }> {
  const out: Array<{ text: string; strong: boolean }> = [];
  const excepted = c.exceptions ?? [];
  if (excepted.length > 0) {
    out.push({ text: `Excepted — accepted risks, not counted against the day (${excepted.length})`, strong: true });
    for (const x of excepted.slice(0, max)) {
      out.push({ text: `${x.resource} (${x.probe} / ${x.target}): ${x.message} — accepted by ${x.approvedBy} until ${x.expires}: ${x.reason}${x.ticket ? ` (${x.ticket})` : ''}`, strong: false });
    }
    if (excepted.length > max) out.push({ text: `…and ${excepted.length - max} more excepted resources, listed in the snapshot JSON.`, strong: false });
  }
  const rule = (x: { resource: string; probe?: string | undefined; approvedBy: string; expires: string }) => `${x.resource}${x.probe ? ` (${x.probe})` : ''}, accepted by ${x.approvedBy} until ${x.expires}`;
  if ((c.expiredExceptions ?? []).length > 0) {
    out.push({ text: `Expired exceptions (no longer hold; renew or fix): ${(c.expiredExceptions ?? []).map(rule).join('; ')}`, strong: false });
  }
  if ((c.staleExceptions ?? []).length > 0) {
    out.push({ text: `Stale exceptions (match no failing resource; remove them): ${(c.staleExceptions ?? []).map(rule).join('; ')}`, strong: false });
  }
  return out;
}

/** " of 24 scheduled (50 %)": the slot coverage of a probe × target (issue 13); empty for snapshots from before it. */
function scheduledOf(h: Pick<Snapshot['probeHealth'][number], 'expectedRuns' | 'coverage'>): string {
  if (h.expectedRuns === undefined) return '';
  return ` of ${h.expectedRuns} scheduled${h.coverage === undefined ? '' : ` (${percent(h.coverage)})`}`;
}
