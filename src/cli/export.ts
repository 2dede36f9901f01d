/**
 * `vigil export --from D --to D [--out FILE]`: the evidence bundle an auditor receives for a
 * period (issue 13), and its offline re-check (`vigil verify-archive <unpacked folder>`).
 *
 * One `.tar.gz` (see ./tar.ts for why not zip or a dependency) holding one folder:
 *
 * ```
 * vigil-export-<from>_<to>/
 *   vigil-export.json        manifest: period, chain anchor (prevHash of the first day), head and
 *                            tail hashes, key fingerprint, SHA-256 of every other file
 *   VERIFICATION.md          the verify-archive output for the source archive and for the period
 *   public-key.pem           when archive.signingKey is configured (or --public-key is given)
 *   days/<YYYY-MM-DD>.json   the archived day files, byte for byte
 *   control-matrix.csv|.md   control → SOC 2 / ISO 27001 → probes → green/red/unknown days
 *   control-days.csv         each control's verdict, streak and reasons on each day
 *   population/<control>.csv every resource judged per day, with its outcome
 * ```
 *
 * The day files sit in their own folder because verify-archive refuses any file in an archive
 * directory that is not a day file. The period starts mid-chain, so the first day's prevHash is
 * not null: the manifest records it (with where it came from) and the re-check demands exactly it.
 * Anyone able to rewrite the whole bundle can rewrite an unsigned manifest too — then it proves only
 * that the bundle is internally consistent, not that the matrix or population files are the ones
 * exported. With `archive.signingKey` the manifest is signed (vigil-export.json.sig), so with a key
 * the auditor got elsewhere (the fingerprint is printed for that comparison) every file is the key
 * holder's; without it only the day files are proven (by their signatures, or their chain alone).
 *
 * The archive has no sidecar files today (verify-archive treats any as `inserted`), so only the
 * day files are copied.
 */
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readdir, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { LoadedConfig } from '../config/load.js';
import type { Snapshot, SnapshotControl } from '../posture/snapshot-types.js';
import {
  ArchiveKeyError,
  checkSnapshotText,
  formatArchiveReport,
  keyFingerprint,
  publicKeyFromPrivate,
  readArchiveText,
  readArchivedSnapshot,
  signHash,
  verifyArchive,
  type ArchiveReport,
} from '../store/archive.js';
import type { CliIo } from './main.js';
import { insideDirectory } from './out-path.js';
import { TarEntryError, TarGzWriter } from './tar.js';

/** sysexits EX_USAGE. */
const EXIT_USAGE = 64;
/** sysexits EX_NOINPUT: the `--public-key` file is not a usable key. */
const EXIT_NOINPUT = 66;
/** sysexits EX_CANTCREAT: `--out` cannot be written. */
const EXIT_CANTCREAT = 73;

/** File name of the manifest at the root of an unpacked export. */
export const EXPORT_MANIFEST = 'vigil-export.json';
/**
 * The manifest's signature, next to it, when the export was made with `archive.signingKey`: an
 * Ed25519 signature over the hex SHA-256 of the manifest's bytes (the same scheme as day files).
 * Without it the manifest — and so the matrix, population and report files it hashes — is
 * unauthenticated: anyone can edit control-matrix.csv and the hash recorded for it.
 */
export const EXPORT_MANIFEST_SIGNATURE = 'vigil-export.json.sig';
const ManifestSignature = z.strictObject({ sha256: z.string().regex(/^[0-9a-f]{64}$/), signature: z.string().min(1), signedBy: z.string().regex(/^[0-9a-f]{64}$/) });
/** Largest manifest or public key the re-check reads whole: 16 MiB (other files are hashed as they stream, up to the size the manifest records). */
const MAX_BUNDLE_FILE_BYTES = 16 * 1024 * 1024;

/** Options of {@link exportCommand}. */
export interface ExportOptions {
  /** First day of the period, YYYY-MM-DD. */
  from: string;
  /** Last day of the period, YYYY-MM-DD (inclusive). */
  to: string;
  /** Output file. Default `vigil-export-<from>_<to>.tar.gz` in the working directory. */
  out?: string;
  /** Public key PEM to verify with and ship, when no signing key is configured. */
  publicKeyPem?: string;
}

/** One bundle file in the manifest. */
const ManifestFile = z.strictObject({ path: z.string(), bytes: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) });

/** The manifest (`vigil-export.json`): what the re-check holds the unpacked folder to. */
export const ExportManifest = z.strictObject({
  schema: z.literal('vigil.export/1'),
  from: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  to: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  createdAt: z.string(),
  chain: z.strictObject({
    /** prevHash of the first day: the hash of the day before the period (null when the period starts the archive). */
    prevHash: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
    /** Hash of the first day of the period. */
    tail: z.string().regex(/^[0-9a-f]{64}$/),
    /** Hash of the last day of the period. */
    head: z.string().regex(/^[0-9a-f]{64}$/),
  }),
  /** The whole source archive at export time. */
  source: z.strictObject({ first: z.string(), last: z.string(), days: z.number().int() }),
  /** Fingerprint of the key the signatures were checked with; null when none was known. */
  keyFingerprint: z.string().nullable(),
  /** Every file of the bundle but the manifest itself and the day files (those are chained). */
  files: z.array(ManifestFile),
});
export type ExportManifest = z.infer<typeof ExportManifest>;


// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** A real calendar day written YYYY-MM-DD (2026-02-30 is not one). */
export function isCalendarDate(date: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return false;
  const t = Date.parse(`${date}T00:00:00Z`);
  return Number.isFinite(t) && new Date(t).toISOString().slice(0, 10) === date;
}

/** Why `--from`/`--to` are not a period (a usage error), or undefined when they are. */
export function periodProblem(from: string, to: string): string | undefined {
  for (const [flag, value] of [['--from', from], ['--to', to]] as const)
    if (!isCalendarDate(value)) return `${flag} expects a calendar day YYYY-MM-DD, got "${value}"`;
  if (from > to) return `--from ${from} is after --to ${to}`;
  return undefined;
}

function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * One CSV field (RFC 4180). A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab,
 * CR first) gets a leading `'` (OWASP CSV injection): resource names come from the observed
 * systems. The day files stay the authoritative, unaltered record.
 */
function csvField(value: string | number | null | undefined): string {
  let s = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csv(rows: ReadonlyArray<ReadonlyArray<string | number | null | undefined>>): string {
  return rows.map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n';
}

/** A Markdown table cell: pipes escaped, line breaks folded. */
function mdCell(value: string | number): string {
  return String(value).replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ');
}

/** A file name for a control's population file: the id when it is a plain kebab-case id. */
function controlFileName(id: string): string {
  return /^[a-z0-9]+(-[a-z0-9]+)*$/.test(id) && id.length <= 80 ? id : `control-${sha256(id).slice(0, 16)}`;
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/**
 * Reads a bundle file the way archive day files are read — `lstat` (no symlink, regular files
 * only), `O_NOFOLLOW | O_NONBLOCK`, `fstat` — at most `maxBytes`, in 1 MiB chunks handed to
 * `chunk`; a larger file is refused, never read to its end.
 */
async function readBundleFile(
  file: string,
  maxBytes: number,
  chunk: (data: Buffer) => void,
): Promise<{ ok: true; bytes: number } | { ok: false; why: string }> {
  let st;
  try {
    st = await lstat(file);
  } catch (err) {
    return { ok: false, why: errorCode(err) === 'ENOENT' ? 'is missing' : `cannot be read (${errorCode(err) ?? 'error'})` };
  }
  if (st.isSymbolicLink()) return { ok: false, why: 'is a symbolic link: refused, not followed' };
  if (!st.isFile()) return { ok: false, why: 'is not a regular file: refused, not read' };
  if (st.size > maxBytes) return { ok: false, why: `is larger than ${maxBytes} bytes: refused, not read` };
  let fh;
  try {
    fh = await open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (err) {
    return { ok: false, why: `cannot be opened (${errorCode(err) ?? 'error'})` };
  }
  try {
    if (!(await fh.stat()).isFile()) return { ok: false, why: 'is not a regular file: refused, not read' };
    let total = 0;
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes) return { ok: false, why: `is larger than ${maxBytes} bytes: refused` };
      chunk(buf.subarray(0, bytesRead));
    }
    return { ok: true, bytes: total };
  } finally {
    await fh.close();
  }
}

/** {@link readBundleFile} of a small file (manifest, key), whole. */
async function readSmallBundleFile(file: string): Promise<{ ok: true; data: Buffer } | { ok: false; why: string }> {
  const chunks: Buffer[] = [];
  const r = await readBundleFile(file, MAX_BUNDLE_FILE_BYTES, (c) => chunks.push(Buffer.from(c)));
  return r.ok ? { ok: true, data: Buffer.concat(chunks) } : r;
}

// ---------------------------------------------------------------------------------------------
// The matrix and the population
// ---------------------------------------------------------------------------------------------

/** What the matrix keeps of a day: its controls without their failing lists (those go straight to the population files). */
interface DaySummary {
  date: string;
  hash: string;
  controls: Array<Omit<SnapshotControl, 'failing'>>;
  /** The snapshot has the population (else only its failing resources are known). */
  population: boolean;
}

interface MatrixRow {
  id: string;
  title: string;
  soc2: string[];
  iso27001: string[];
  probes: string[];
  green: number;
  red: number;
  unknown: number;
  /** Days of the period whose snapshot does not list the control. */
  notRecorded: number;
  streakAtEnd: number | null;
  greenSinceAtEnd: string | null;
  /** Days with the full population / with failing resources only. */
  populationDays: number;
  failingOnlyDays: number;
}

function controlIds(days: readonly DaySummary[]): string[] {
  const ids: string[] = [];
  const seen = new Set<string>();
  // Newest snapshot's order first (today's catalog order), then controls that left it.
  for (const d of [...days].reverse())
    for (const c of d.controls)
      if (!seen.has(c.id)) {
        seen.add(c.id);
        ids.push(c.id);
      }
  return ids;
}

/** The probes that evidenced a control on a day: its cadence; the catalog's when the day names none (old or unscheduled days). */
function dayProbes(c: Pick<SnapshotControl, 'id' | 'cadence'>, loaded: LoadedConfig): string[] {
  const probes = new Set(c.cadence.map((k) => k.probe));
  if (probes.size === 0) for (const p of loaded.catalog.controls.find((x) => x.id === c.id)?.probes ?? []) probes.add(p);
  return [...probes].sort();
}

function matrix(days: readonly DaySummary[], loaded: LoadedConfig): MatrixRow[] {
  return controlIds(days).map((id) => {
    const latest = [...days].reverse().map((d) => d.controls.find((c) => c.id === id)).find((c) => c !== undefined)!;
    const probes = new Set<string>();
    const row: MatrixRow = {
      id,
      title: latest.title,
      soc2: [...latest.frameworks.soc2],
      iso27001: [...latest.frameworks.iso27001],
      probes: [],
      green: 0,
      red: 0,
      unknown: 0,
      notRecorded: 0,
      streakAtEnd: null,
      greenSinceAtEnd: null,
      populationDays: 0,
      failingOnlyDays: 0,
    };
    for (const d of days) {
      const c = d.controls.find((x) => x.id === id);
      if (!c) {
        row.notRecorded++;
        continue;
      }
      for (const p of dayProbes(c, loaded)) probes.add(p);
      row[c.verdict]++;
      if (d.population) row.populationDays++;
      else row.failingOnlyDays++;
    }
    row.probes = [...probes].sort();
    const last = days.at(-1)?.controls.find((c) => c.id === id);
    row.streakAtEnd = last ? last.streak : null;
    row.greenSinceAtEnd = last ? last.greenSince : null;
    return row;
  });
}

function matrixCsv(rows: readonly MatrixRow[]): string {
  return csv([
    ['control', 'title', 'soc2', 'iso27001', 'probes', 'days_green', 'days_red', 'days_unknown', 'days_not_recorded', 'streak_at_end', 'green_since_at_end', 'days_with_population', 'days_failing_only'],
    ...rows.map((r) => [
      r.id,
      r.title,
      r.soc2.join(' '),
      r.iso27001.join(' '),
      r.probes.join(' '),
      r.green,
      r.red,
      r.unknown,
      r.notRecorded,
      r.streakAtEnd,
      r.greenSinceAtEnd,
      r.populationDays,
      r.failingOnlyDays,
    ]),
  ]);
}

function matrixMarkdown(rows: readonly MatrixRow[], from: string, to: string, days: number): string {
  const lines = [
    `# Control matrix, ${from} … ${to} (${days} ${days === 1 ? 'day' : 'days'})`,
    '',
    'Days are the archived day verdicts (DESIGN.md §3): green only when every probe was measured and every measurement was green; unknown is never green. "Not recorded": the control is not in that day\'s snapshot. Each day\'s verdict, streak and reasons: [control-days.csv](control-days.csv).',
    '',
    '| Control | SOC 2 | ISO 27001:2022 | Probes | Green | Red | Unknown | Not recorded | Streak at end | Population |',
    '|---|---|---|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    const file = `population/${controlFileName(r.id)}.csv`;
    const population =
      r.failingOnlyDays === 0
        ? `every resource, [${file}](${file})`
        : `${r.populationDays} days every resource, ${r.failingOnlyDays} days failing resources only (snapshots from before the population), [${file}](${file})`;
    lines.push(
      `| ${mdCell(`${r.id} — ${r.title}`)} | ${mdCell(r.soc2.join(', ') || '—')} | ${mdCell(r.iso27001.join(', ') || '—')} | ${mdCell(r.probes.join(', ') || '—')} | ${r.green} | ${r.red} | ${r.unknown} | ${r.notRecorded} | ${r.streakAtEnd ?? '—'}${r.greenSinceAtEnd ? ` (since ${r.greenSinceAtEnd})` : ''} | ${mdCell(population)} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

const CONTROL_DAYS_HEADER = ['date', 'control', 'verdict', 'streak', 'green_since', 'reasons', 'snapshot_hash'];
const POPULATION_HEADER = ['date', 'verdict', 'probe', 'target', 'resource', 'outcome', 'level', 'message', 'source'];

/** `control-days.csv` rows of one day: each control's verdict, streak and reasons (what an auditor samples). */
function controlDaysRows(s: Snapshot): string {
  return csv(s.controls.map((c) => [s.date, c.id, c.verdict, c.streak, c.greenSince, c.reasons.join('; '), s.hash]));
}

/** `population/<control>.csv` rows of one day: every resource the control's probes judged that day. */
function populationRows(s: Snapshot, c: SnapshotControl, probes: readonly string[]): string {
  const rows: Array<Array<string | number | null>> = [];
  if (s.population) {
    const wanted = new Set(probes);
    for (const unit of s.population) {
      if (!wanted.has(unit.probe)) continue;
      for (const r of unit.resources) rows.push([s.date, c.verdict, unit.probe, unit.target, r.resource, r.outcome, r.level ?? null, r.message ?? null, 'population']);
      if (unit.omitted) rows.push([s.date, c.verdict, unit.probe, unit.target, null, 'omitted', null, `${unit.omitted} more resources were judged but not listed (per-run cap)`, 'population']);
    }
  } else {
    // Old snapshots list failing resources only: say so on every row instead of implying a full population.
    for (const f of c.failing) rows.push([s.date, c.verdict, f.probe, f.target, f.resource, 'fail', null, f.message, 'failing-only']);
  }
  return rows.length === 0 ? '' : csv(rows);
}

/** A bundle file written to the staging folder piece by piece, its SHA-256 kept as it grows. */
class StagedFile {
  readonly hash = createHash('sha256');
  bytes = 0;
  private constructor(
    readonly rel: string,
    readonly file: string,
    private readonly fh: FileHandle,
  ) {}

  static async create(staging: string, rel: string): Promise<StagedFile> {
    const file = path.join(staging, ...rel.split('/'));
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    return new StagedFile(rel, file, await open(file, 'wx', 0o600));
  }

  async write(text: string): Promise<void> {
    if (text === '') return;
    const data = Buffer.from(text, 'utf8');
    this.hash.update(data);
    this.bytes += data.length;
    await this.fh.write(data);
  }

  async close(): Promise<{ path: string; bytes: number; sha256: string }> {
    await this.fh.close();
    return { path: this.rel, bytes: this.bytes, sha256: this.hash.digest('hex') };
  }
}

// ---------------------------------------------------------------------------------------------
// export
// ---------------------------------------------------------------------------------------------

/**
 * Builds the bundle for `from … to` from the configured archive. The whole source archive is
 * verified first (with the signing key's public half when one is configured); the day files are
 * then copied byte for byte into a staging folder, one at a time (the population and per-day
 * files are appended as each day is read, so memory holds one day, not the period), and the
 * period is verified again there, from the copies — that second report goes into the bundle.
 * The tar.gz is streamed from the staging folder to a temporary name, then renamed to `--out`.
 *
 * Exit codes: 0 written; 1 the archive does not verify or does not hold the period;
 * 64 bad dates or `--out` inside the archive; 66 `--public-key` is not a key; 73 `--out` cannot be written.
 */
export async function exportCommand(loaded: LoadedConfig, opts: ExportOptions, io: CliIo, now = new Date()): Promise<number> {
  const problem = periodProblem(opts.from, opts.to);
  if (problem) {
    io.err(`vigil: ${problem}\n`);
    return EXIT_USAGE;
  }
  const dir = loaded.archiveDir;
  const out = path.resolve(io.cwd ?? process.cwd(), opts.out ?? `vigil-export-${opts.from}_${opts.to}.tar.gz`);
  // A bundle written into the archive would be a stray file there: verify-archive would fail on it.
  // insideDirectory: lexical (`..name` is inside) and through symlinks (R8).
  if (insideDirectory(out, dir)) {
    io.err(`vigil: --out ${out} is inside the evidence archive ${dir}; write the bundle elsewhere\n`);
    return EXIT_USAGE;
  }
  const publicKeyPem = loaded.secrets.signingKey ? publicKeyFromPrivate(loaded.secrets.signingKey) : opts.publicKeyPem;
  let fingerprint: string | null = null;
  try {
    // A --public-key given beside archive.signingKey is not silently ignored: it must be a key, and
    // the signing key's own public half (an auditor passing the key they hold expects it checked).
    const given = opts.publicKeyPem === undefined ? undefined : keyFingerprint(opts.publicKeyPem);
    if (publicKeyPem !== undefined) fingerprint = keyFingerprint(publicKeyPem);
    if (given !== undefined && given !== fingerprint) {
      io.err(`vigil: --public-key: key ${given} is not the public half of archive.signingKey (key ${fingerprint}): pass the matching key, or leave --public-key out\n`);
      return EXIT_NOINPUT;
    }
  } catch (err) {
    if (!(err instanceof ArchiveKeyError)) throw err;
    io.err(`vigil: --public-key: ${err.message}\n`);
    return EXIT_NOINPUT;
  }
  const keyOpts = publicKeyPem === undefined ? {} : { publicKeyPem };

  const source = await verifyArchive(dir, keyOpts);
  if (!source.ok) {
    io.err(`vigil: the archive ${dir} does not verify, so nothing was exported: ${formatArchiveReport(source)}\n`);
    return 1;
  }
  if (opts.from < (source.first ?? '') || opts.to > (source.last ?? '')) {
    io.err(`vigil: the archive ${dir} holds ${source.first} … ${source.last}; ${opts.from} … ${opts.to} is not inside it\n`);
    return 1;
  }

  const staging = await mkdtemp(path.join(tmpdir(), 'vigil-export-'));
  const staged: StagedFile[] = [];
  try {
    const daysDir = path.join(staging, 'days');
    await mkdir(daysDir, { mode: 0o700 });
    const days: DaySummary[] = [];
    let first: Snapshot | undefined;
    let last: Snapshot | undefined;
    const stage = async (rel: string) => {
      const f = await StagedFile.create(staging, rel);
      staged.push(f);
      return f;
    };
    const controlDays = await stage('control-days.csv');
    await controlDays.write(csv([CONTROL_DAYS_HEADER]));
    const population = new Map<string, StagedFile>();
    for (let date = opts.from; date <= opts.to; date = addDays(date, 1)) {
      const text = await readArchiveText(dir, date);
      const check = text === undefined ? undefined : checkSnapshotText(text, { date, ...keyOpts });
      if (text === undefined || !check?.ok) {
        io.err(`vigil: ${date}.json ${text === undefined ? 'disappeared from the archive' : `changed in the archive while exporting: ${check && !check.ok ? check.detail : ''}`}; run vigil verify-archive ${dir}\n`);
        return 1;
      }
      // The bytes as archived: readArchiveText decodes strict UTF-8, so re-encoding is byte-identical.
      await writeFile(path.join(daysDir, `${date}.json`), Buffer.from(text, 'utf8'), { mode: 0o444 });
      const s = check.snapshot;
      first ??= s;
      last = s;
      days.push({ date, hash: s.hash, population: s.population !== undefined, controls: s.controls.map(({ failing: _f, ...c }) => c) });
      await controlDays.write(controlDaysRows(s));
      for (const c of s.controls) {
        const rel = `population/${controlFileName(c.id)}.csv`;
        let f = population.get(rel);
        if (!f) {
          f = await stage(rel);
          await f.write(csv([POPULATION_HEADER]));
          population.set(rel, f);
        }
        await f.write(populationRows(s, c, dayProbes(c, loaded)));
      }
    }
    if (!first || !last) throw new Error('empty period'); // unreachable: from ≤ to, both inside the archive

    // The period's own verify-archive report, from the copies that go into the bundle.
    const period = await verifyArchive(daysDir, { ...keyOpts, firstPrevHash: first.prevHash });
    if (!period.ok) {
      io.err(`vigil: the exported period does not verify: ${formatArchiveReport(period)}\n`);
      return 1;
    }

    const rows = matrix(days, loaded);
    const folder = `vigil-export-${opts.from}_${opts.to}`;
    const small = async (rel: string, text: string) => {
      const f = await stage(rel);
      await f.write(text);
    };
    await small('VERIFICATION.md', verificationReport({ dir, from: opts.from, to: opts.to, source, period, first, last, fingerprint, folder, manifestSigned: Boolean(loaded.secrets.signingKey) }));
    // The SPKI public half, never the --public-key text as given: createPublicKey accepts a private
    // key PEM too, and an operator passing the signing key itself must not ship it to the auditor (R8).
    if (publicKeyPem !== undefined) await small('public-key.pem', createPublicKey(publicKeyPem).export({ type: 'spki', format: 'pem' }).toString());
    await small('control-matrix.csv', matrixCsv(rows));
    await small('control-matrix.md', matrixMarkdown(rows, opts.from, opts.to, days.length));
    const order = ['VERIFICATION.md', 'public-key.pem', 'control-matrix.csv', 'control-matrix.md', 'control-days.csv'];
    const closed = await Promise.all(staged.map((f) => f.close()));
    staged.length = 0;
    const rank = (p: string) => (order.includes(p) ? order.indexOf(p) : order.length);
    const files = closed.sort((a, b) => rank(a.path) - rank(b.path) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

    const manifest: ExportManifest = {
      schema: 'vigil.export/1',
      from: opts.from,
      to: opts.to,
      createdAt: now.toISOString(),
      chain: { prevHash: first.prevHash, tail: first.hash, head: last.hash },
      source: { first: source.first ?? '', last: source.last ?? '', days: source.days },
      keyFingerprint: fingerprint,
      files,
    };

    const temp = path.join(path.dirname(out), `.${path.basename(out)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    let tar: TarGzWriter;
    try {
      tar = new TarGzWriter(temp, now.getTime() / 1000);
      await tar.directory(folder);
      const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
      await tar.file(`${folder}/${EXPORT_MANIFEST}`, manifestBytes);
      if (loaded.secrets.signingKey) {
        const digest = sha256(manifestBytes);
        await tar.file(`${folder}/${EXPORT_MANIFEST_SIGNATURE}`, Buffer.from(`${JSON.stringify({ sha256: digest, ...signHash(digest, loaded.secrets.signingKey) }, null, 2)}\n`, 'utf8'));
      }
      for (const f of files.filter((x) => !x.path.includes('/'))) await tar.fileFrom(`${folder}/${f.path}`, path.join(staging, f.path));
      await tar.directory(`${folder}/days`);
      for (const d of days) await tar.fileFrom(`${folder}/days/${d.date}.json`, path.join(daysDir, `${d.date}.json`), 0o444);
      await tar.directory(`${folder}/population`);
      for (const f of files.filter((x) => x.path.startsWith('population/'))) await tar.fileFrom(`${folder}/${f.path}`, path.join(staging, ...f.path.split('/')));
      await tar.close();
      // On disk before it gets its name: a crash leaves the old file or the whole new one.
      const fh = await open(temp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(temp, out);
    } catch (err) {
      await rm(temp, { force: true });
      if (err instanceof TarEntryError) throw err;
      io.err(`vigil: cannot write --out ${out}: ${errorCode(err) ?? (err as Error).message}\n`);
      return EXIT_CANTCREAT;
    }
    io.out(
      `${out}: ${days.length} ${days.length === 1 ? 'day' : 'days'} (${opts.from} … ${opts.to}), ${rows.length} controls, chain ${first.hash.slice(0, 12)}… … ${last.hash.slice(0, 12)}…; ` +
        `sha256 ${await fileSha256(out)}\nunpack with: tar -xzf ${path.basename(out)} && vigil verify-archive ${folder}\n`,
    );
    return 0;
  } finally {
    for (const f of staged) await f.close().catch(() => undefined);
    await rm(staging, { recursive: true, force: true });
  }
}

async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function verificationReport(r: {
  dir: string;
  from: string;
  to: string;
  source: ArchiveReport;
  period: ArchiveReport;
  first: Snapshot;
  last: Snapshot;
  fingerprint: string | null;
  folder: string;
  manifestSigned: boolean;
}): string {
  const anchor =
    r.first.prevHash === null
      ? `\`null\`: ${r.from} is the first day of the archive`
      : `\`${r.first.prevHash}\` — the hash of ${addDays(r.from, -1)}, the day before the period, as recorded in ${r.from}.json; that day is not in this export. It is the \`hash\` of ${addDays(r.from, -1)}.json in the full archive, which verified as a whole when this export was made (below); compare it with an earlier export or the daily email of ${addDays(r.from, -1)}.`;
  return [
    `# Verification report: ${r.from} … ${r.to}`,
    '',
    `## Source archive (${r.dir}), at export time`,
    '',
    '```',
    formatArchiveReport(r.source),
    '```',
    '',
    '## This period, checked on the exported copies',
    '',
    '```',
    formatArchiveReport(r.period),
    '```',
    '',
    `- Chain tail (hash of ${r.from}): \`${r.first.hash}\``,
    `- Chain head (hash of ${r.to}): \`${r.last.hash}\``,
    `- prevHash of ${r.from}: ${anchor}`,
    r.fingerprint === null
      ? '- Key fingerprint: none — no signing key is configured, so the chain proves the order of the days and that none changed, not who wrote them.'
      : `- Key fingerprint: \`${r.fingerprint}\` (SHA-256 of the SPKI DER of public-key.pem). Compare it with the fingerprint you received separately: a key shipped inside the bundle proves nothing by itself.`,
    '',
    '## Re-check offline',
    '',
    '```sh',
    `vigil verify-archive ${r.folder}${r.fingerprint === null ? '' : ` --public-key <the key you hold>`}`,
    '```',
    '',
    `It re-checks every day file in days/ (hash, order, chain from the prevHash above, signatures), that the period is exactly ${r.from} … ${r.to}, and the SHA-256 of every other file against ${EXPORT_MANIFEST}.`,
    '',
    r.manifestSigned
      ? `${EXPORT_MANIFEST} is signed with the archive's key (${EXPORT_MANIFEST_SIGNATURE}): with that key, the control matrix, the population files and this report are proven to be the ones exported.`
      : `${EXPORT_MANIFEST} is not signed (no private key where the export was made): the control matrix, the population files and this report are proven only as far as someone could not rewrite them and their hashes in the manifest; the day files are the evidence, re-derive the rest from them.`,
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// verify-archive on an unpacked export
// ---------------------------------------------------------------------------------------------

/** Whether `dir` is an unpacked export (holds a {@link EXPORT_MANIFEST}) rather than an archive directory. */
export async function isExportDir(dir: string): Promise<boolean> {
  try {
    await lstat(path.join(dir, EXPORT_MANIFEST));
    return true;
  } catch {
    return false;
  }
}

/** Lists the regular files under `dir` (relative, `/`-separated), for the stray-file check. */
async function listFiles(dir: string, base = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(path.join(dir, base), { withFileTypes: true })) {
    const rel = base ? `${base}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else out.push(rel);
  }
  return out;
}

/**
 * `vigil verify-archive <unpacked export>`: the day files re-verified as a chain starting at the
 * manifest's prevHash and covering exactly its period, every other file matched against the
 * manifest's SHA-256, no file added. With no `--public-key`, signatures are checked with the
 * key shipped in the bundle, and the output says so (compare its fingerprint).
 *
 * Exit 0 when all of it holds; 1 naming the first problem.
 */
export async function verifyExportCommand(dir: string, publicKeyPem: string | undefined, through: string | undefined, io: CliIo): Promise<number> {
  const fail = (line: string): number => {
    io.err(`export FAILED${line}\n`);
    return 1;
  };
  const manifestFile = await readSmallBundleFile(path.join(dir, EXPORT_MANIFEST));
  if (!manifestFile.ok) return fail(`: ${EXPORT_MANIFEST} ${manifestFile.why}`);
  let manifest: ExportManifest;
  try {
    const parsed = ExportManifest.safeParse(JSON.parse(manifestFile.data.toString('utf8')));
    if (!parsed.success) return fail(`: ${EXPORT_MANIFEST} is not a vigil export manifest (${parsed.error.issues[0]?.message ?? 'schema mismatch'} at ${parsed.error.issues[0]?.path.join('.') ?? ''})`);
    manifest = parsed.data;
  } catch {
    return fail(`: ${EXPORT_MANIFEST} is not valid JSON`);
  }

  let key = publicKeyPem;
  let keyNote = '';
  if (key === undefined && manifest.keyFingerprint !== null) {
    const shipped = await readSmallBundleFile(path.join(dir, 'public-key.pem'));
    if (!shipped.ok) return fail(`: the export was signed (key ${manifest.keyFingerprint}) but public-key.pem ${shipped.why}`);
    key = shipped.data.toString('utf8');
    keyNote = ' — the key shipped in the export: compare its fingerprint with the one you hold, or pass --public-key';
  }

  const daysDir = path.join(dir, 'days');
  const opts = { firstPrevHash: manifest.chain.prevHash, ...(key === undefined ? {} : { publicKeyPem: key }) };
  let report: ArchiveReport;
  try {
    report = await verifyArchive(daysDir, opts);
  } catch (err) {
    if (!(err instanceof ArchiveKeyError)) throw err;
    return fail(`: ${publicKeyPem === undefined ? 'public-key.pem in the export' : 'the --public-key file'} is not usable: ${err.message}`);
  }
  if (!report.ok) return fail(formatArchiveReport(report).replace(/^archive FAILED/, ''));
  if (report.first !== manifest.from) return fail(` at ${manifest.from}: removed — the export's days start at ${report.first}, the manifest says the period starts at ${manifest.from}`);
  if (report.last !== manifest.to) {
    const missing = (report.last ?? '') < manifest.to ? addDays(report.last ?? manifest.to, 1) : manifest.to;
    return fail(` at ${missing}: removed — the export's days end at ${report.last}, the manifest says the period ends at ${manifest.to}`);
  }
  if (through && manifest.to < through) return fail(` at ${addDays(manifest.to, 1)}: removed — the export ends at ${manifest.to}, expected it to run through ${through}`);
  const tail = await readArchivedSnapshot(daysDir, manifest.from);
  const head = await readArchivedSnapshot(daysDir, manifest.to);
  if (tail?.hash !== manifest.chain.tail || head?.hash !== manifest.chain.head)
    return fail(`: the chain's tail/head hashes are not the ones ${EXPORT_MANIFEST} records`);
  if (key !== undefined && manifest.keyFingerprint !== null && publicKeyPem !== undefined && report.keyFingerprint !== manifest.keyFingerprint)
    keyNote = ` (the export was made with key ${manifest.keyFingerprint}; every day verified with the key you gave)`;

  // The manifest's own signature: only it makes the files the manifest hashes (matrix, population,
  // report) the key holder's. Unsigned (no private key at export, or the .sig removed), the output says so.
  let manifestNote: string;
  const sigFile = await readSmallBundleFile(path.join(dir, EXPORT_MANIFEST_SIGNATURE));
  if (!sigFile.ok && sigFile.why !== 'is missing') return fail(`: ${EXPORT_MANIFEST_SIGNATURE} ${sigFile.why}`);
  if (!sigFile.ok || key === undefined)
    manifestNote = `${EXPORT_MANIFEST} ${sigFile.ok ? 'signature not checked (no key)' : 'is not signed'}: anyone can rewrite those files and their hashes there — only the day files are proven, re-derive the rest from them`;
  else {
    let good = false;
    try {
      const sig = ManifestSignature.safeParse(JSON.parse(sigFile.data.toString('utf8')));
      good =
        sig.success &&
        sig.data.sha256 === sha256(manifestFile.data) &&
        sig.data.signedBy === report.keyFingerprint &&
        verify(null, Buffer.from(sig.data.sha256, 'utf8'), createPublicKey(key), Buffer.from(sig.data.signature, 'base64'));
    } catch {
      good = false;
    }
    if (!good) return fail(`: altered — ${EXPORT_MANIFEST}'s signature (${EXPORT_MANIFEST_SIGNATURE}) does not verify with key ${report.keyFingerprint}: the manifest, and so the files it lists, is not the one exported`);
    manifestNote = `${EXPORT_MANIFEST} signed by key ${report.keyFingerprint}`;
  }

  for (const f of manifest.files) {
    if (f.path.split('/').some((p) => p === '..' || p === '.' || p === '') || path.isAbsolute(f.path))
      return fail(`: ${EXPORT_MANIFEST} names a path outside the export: ${f.path}`);
    const hash = createHash('sha256');
    // Up to one byte more than recorded: a longer file is altered, and is not read to its end.
    const file = await readBundleFile(path.join(dir, ...f.path.split('/')), f.bytes + 1, (c) => hash.update(c));
    if (!file.ok && !file.why.startsWith('is larger than')) return fail(`: ${f.path} ${file.why}`);
    if (!file.ok || file.bytes !== f.bytes || hash.digest('hex') !== f.sha256) return fail(`: altered — ${f.path} does not match the SHA-256 ${EXPORT_MANIFEST} records`);
  }
  const known = new Set([EXPORT_MANIFEST, ...(sigFile.ok ? [EXPORT_MANIFEST_SIGNATURE] : []), ...manifest.files.map((f) => f.path)]);
  const stray = (await listFiles(dir)).filter((p) => !known.has(p) && !/^days\/\d{4}-\d{2}-\d{2}\.json$/.test(p)).sort()[0];
  if (stray) return fail(`: inserted — ${stray} is not part of the export (${EXPORT_MANIFEST} does not list it)`);

  const signatures = report.keyFingerprint === undefined ? 'no key: this proves the order of the days, not who wrote them' : `signatures checked with key ${report.keyFingerprint}${keyNote}`;
  io.out(
    `export OK: ${report.days} ${report.days === 1 ? 'day' : 'days'}, ${manifest.from} … ${manifest.to}, hash chain intact from prevHash ${manifest.chain.prevHash === null ? 'null (the start of the archive)' : `${manifest.chain.prevHash.slice(0, 12)}… (${addDays(manifest.from, -1)}, not in the export)`} to head ${manifest.chain.head.slice(0, 12)}…; ` +
      `${manifest.files.length} files match ${EXPORT_MANIFEST} (${manifestNote}); ${signatures}\n`,
  );
  return 0;
}
