import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { tarBytes, TarEntryError } from '../src/cli/tar.js';
import type { PopulationUnit, Snapshot, SnapshotControl } from '../src/posture/snapshot-types.js';
import { keyFingerprint, publicKeyFromPrivate, signHash, writeArchivedSnapshot } from '../src/store/archive.js';
import { sampleControl, sampleSnapshot } from './helpers/snapshots.js';

const root = mkdtempSync(path.join(tmpdir(), 'vigil-export-test-'));
const archiveDir = path.join(root, 'archive');
const keyFile = path.join(root, 'signing.pem');
const configFile = path.join(root, 'vigil.yaml');
const unsignedArchiveDir = path.join(root, 'archive-unsigned');
const unsignedConfig = path.join(root, 'unsigned.yaml');
const privateKeyPem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const publicKeyPem = publicKeyFromPrivate(privateKeyPem);
const publicKeyFile = path.join(root, 'public.pem');

const FIRST = '2026-11-01';
const DAYS = 10;
/** Days 1–5 are "old" snapshots (no population); from day 6 on every resource is listed. */
const POPULATION_FROM = '2026-11-06';
/** A hostile resource name: a comma, quotes, a newline and a spreadsheet formula. */
const HOSTILE = '=HYPERLINK("http://x.test","a,b")\nrepo';

function dateAt(i: number): string {
  return new Date(Date.parse(`${FIRST}T00:00:00Z`) + i * 86_400_000).toISOString().slice(0, 10);
}

/** tls-certificates is red on 2026-11-02 and 2026-11-07, green otherwise; backups unknown on 2026-11-04. */
function controlsOn(date: string): SnapshotControl[] {
  const tlsRed = date === '2026-11-02' || date === '2026-11-07';
  return [
    sampleControl({
      id: 'tls-certificates',
      verdict: tlsRed ? 'red' : 'green',
      reasons: tlsRed ? ['1 failing resource'] : [],
      failing: tlsRed ? [{ probe: 'tls-certificate-posture', target: 'public-web', resource: 'www.example.test:443', message: 'certificate expires in 3 days: renew it' }] : [],
    }),
    sampleControl({
      id: 'backups',
      title: 'Backups fresh, protected and restorable',
      frameworks: { soc2: ['A1.2', 'A1.3'], iso27001: ['A.8.13'] },
      verdict: date === '2026-11-04' ? 'unknown' : 'green',
      reasons: date === '2026-11-04' ? ['aws-backup-freshness/prod: no run that day'] : [],
      cadence: [{ probe: 'aws-backup-freshness', schedule: '0 * * * *', intervalSeconds: 3600 }],
    }),
  ];
}

function populationOn(date: string): PopulationUnit[] {
  const tlsRed = date === '2026-11-07';
  return [
    {
      probe: 'aws-backup-freshness',
      target: 'prod',
      resources: [
        { resource: 'arn:aws:dynamodb:eu-west-1:123456789012:table/orders', outcome: 'pass', level: 2 },
        { resource: HOSTILE, outcome: 'pass', level: 1 },
      ],
    },
    {
      probe: 'tls-certificate-posture',
      target: 'public-web',
      resources: [
        { resource: 'api.example.test:443', outcome: 'pass' },
        tlsRed
          ? { resource: 'www.example.test:443', outcome: 'fail', message: 'certificate expires in 3 days: renew it' }
          : { resource: 'www.example.test:443', outcome: 'pass' },
      ],
      omitted: 2,
    },
  ];
}

const chain: Snapshot[] = [];

beforeAll(async () => {
  writeFileSync(keyFile, privateKeyPem, { mode: 0o600 });
  writeFileSync(publicKeyFile, publicKeyPem);
  let prev: string | null = null;
  for (let i = 0; i < DAYS; i++) {
    const date = dateAt(i);
    const body = sampleSnapshot(date, controlsOn(date), prev, {
      diff: { since: chain.at(-1)?.date ?? null, newReds: [], recoveries: [], reachedThirtyDays: [], leftFeed: [] },
      ...(date >= POPULATION_FROM ? { population: populationOn(date) } : {}),
    });
    const signed = { ...body, ...signHash(body.hash, privateKeyPem) };
    expect(await writeArchivedSnapshot(archiveDir, signed)).toBe('written');
    // The same days unsigned, in an archive whose config has no signing key.
    expect(await writeArchivedSnapshot(unsignedArchiveDir, body)).toBe('written');
    chain.push(signed);
    prev = body.hash;
  }
  writeFileSync(configFile, `dataDir: ${root}/var\narchive: { dir: ${archiveDir}, signingKey: { file: ${keyFile} } }\n`);
  writeFileSync(unsignedConfig, `dataDir: ${root}/var\narchive: { dir: ${unsignedArchiveDir} }\n`);
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), env: {}, cwd: root });
  return { code, out, err };
}

/** Exports a period and unpacks it with Debian's tar into a fresh folder; returns the unpacked bundle folder. */
async function exportAndUnpack(from: string, to: string, config = configFile): Promise<{ folder: string; file: string; out: string }> {
  const file = path.join(mkdtempSync(path.join(root, 'out-')), 'bundle.tar.gz');
  const r = await cli('export', '--config', config, '--from', from, '--to', to, '--out', file);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  const into = mkdtempSync(path.join(root, 'unpacked-'));
  execFileSync('tar', ['-xzf', file, '-C', into]);
  return { folder: path.join(into, `vigil-export-${from}_${to}`), file, out: r.out };
}

/** RFC 4180 parser (quoted fields, doubled quotes, CRLF records, line breaks inside quotes). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else if (ch === '"' || ch === '\n' || ch === '\r') throw new Error(`bad CSV at offset ${i}: ${JSON.stringify(text.slice(i - 10, i + 10))}`);
    else field += ch;
  }
  if (quoted) throw new Error('unterminated quoted field');
  if (field !== '' || row.length > 0) throw new Error('last record not terminated by CRLF');
  return rows;
}

function records(text: string): Array<Record<string, string>> {
  const [header, ...rows] = parseCsv(text);
  for (const r of rows) expect(r).toHaveLength(header!.length);
  return rows.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]!])));
}

describe('vigil export', () => {
  it('writes a tar.gz that unpacks to byte-identical day files that verify-archive re-checks offline', async () => {
    const { folder, file, out } = await exportAndUnpack('2026-11-03', '2026-11-08');
    expect(out).toContain(`${file}: 6 days (2026-11-03 … 2026-11-08), 2 controls`);
    const listing = execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).trim().split('\n');
    expect(listing).toEqual([
      'vigil-export-2026-11-03_2026-11-08/',
      'vigil-export-2026-11-03_2026-11-08/vigil-export.json',
      'vigil-export-2026-11-03_2026-11-08/vigil-export.json.sig',
      'vigil-export-2026-11-03_2026-11-08/VERIFICATION.md',
      'vigil-export-2026-11-03_2026-11-08/public-key.pem',
      'vigil-export-2026-11-03_2026-11-08/control-matrix.csv',
      'vigil-export-2026-11-03_2026-11-08/control-matrix.md',
      'vigil-export-2026-11-03_2026-11-08/control-days.csv',
      'vigil-export-2026-11-03_2026-11-08/days/',
      ...['03', '04', '05', '06', '07', '08'].map((d) => `vigil-export-2026-11-03_2026-11-08/days/2026-11-${d}.json`),
      'vigil-export-2026-11-03_2026-11-08/population/',
      'vigil-export-2026-11-03_2026-11-08/population/backups.csv',
      'vigil-export-2026-11-03_2026-11-08/population/tls-certificates.csv',
    ]);
    for (const d of ['03', '04', '05', '06', '07', '08'])
      expect(readFileSync(path.join(folder, 'days', `2026-11-${d}.json`)).equals(readFileSync(path.join(archiveDir, `2026-11-${d}.json`)))).toBe(true);
    expect(readFileSync(path.join(folder, 'public-key.pem'), 'utf8')).toBe(publicKeyPem);

    const report = readFileSync(path.join(folder, 'VERIFICATION.md'), 'utf8');
    const fp = keyFingerprint(publicKeyPem);
    expect(report).toContain(`archive OK: 10 days, 2026-11-01 … 2026-11-10, hash chain intact (signatures checked with key ${fp})`);
    expect(report).toContain(`archive OK: 6 days, 2026-11-03 … 2026-11-08, hash chain intact (signatures checked with key ${fp})`);
    expect(report).toContain(`Chain tail (hash of 2026-11-03): \`${chain[2]!.hash}\``);
    expect(report).toContain(`Chain head (hash of 2026-11-08): \`${chain[7]!.hash}\``);
    expect(report).toContain(`prevHash of 2026-11-03: \`${chain[1]!.hash}\` — the hash of 2026-11-02, the day before the period`);
    expect(report).toContain(`Key fingerprint: \`${fp}\``);

    // With the key the auditor holds, and with the one shipped in the bundle (which it says).
    const held = await cli('verify-archive', folder, '--public-key', publicKeyFile);
    expect(held.err).toBe('');
    expect(held.code).toBe(0);
    expect(held.out).toBe(
      `export OK: 6 days, 2026-11-03 … 2026-11-08, hash chain intact from prevHash ${chain[1]!.hash.slice(0, 12)}… (2026-11-02, not in the export) to head ${chain[7]!.hash.slice(0, 12)}…; 7 files match vigil-export.json (vigil-export.json signed by key ${fp}); signatures checked with key ${fp}\n`,
    );
    const shipped = await cli('verify-archive', folder);
    expect(shipped.code).toBe(0);
    expect(shipped.out).toContain('the key shipped in the export: compare its fingerprint');
    // The built CLI agrees (what an auditor runs).
    const bin = path.resolve(import.meta.dirname, '..', 'bin', 'vigil.js');
    expect(existsSync(path.resolve(import.meta.dirname, '..', 'dist', 'src', 'cli', 'export.js')), 'build first: npx tsc -p tsconfig.build.json (npm test does)').toBe(true);
    const run = spawnSync(process.execPath, [bin, 'verify-archive', folder, '--public-key', publicKeyFile], { encoding: 'utf8' });
    expect(run.stdout).toContain('export OK: 6 days');
    expect(run.status).toBe(0);
  });

  it('a period starting at the first archived day chains from null', async () => {
    const { folder } = await exportAndUnpack('2026-11-01', '2026-11-01');
    const r = await cli('verify-archive', folder);
    expect(r.code).toBe(0);
    expect(r.out).toContain('export OK: 1 day, 2026-11-01 … 2026-11-01, hash chain intact from prevHash null (the start of the archive)');
    expect(readFileSync(path.join(folder, 'VERIFICATION.md'), 'utf8')).toContain('prevHash of 2026-11-01: `null`: 2026-11-01 is the first day of the archive');
  });

  it('the control matrix CSV parses and counts the days of the period', async () => {
    const { folder } = await exportAndUnpack('2026-11-01', '2026-11-10');
    const rows = records(readFileSync(path.join(folder, 'control-matrix.csv'), 'utf8'));
    expect(rows).toEqual([
      {
        control: 'tls-certificates',
        title: 'Internal title of tls-certificates',
        soc2: 'CC6.7',
        iso27001: 'A.8.24',
        probes: 'tls-certificate-posture',
        days_green: '8',
        days_red: '2',
        days_unknown: '0',
        days_not_recorded: '0',
        streak_at_end: '31',
        green_since_at_end: '2026-10-22',
        days_with_population: '5',
        days_failing_only: '5',
      },
      {
        control: 'backups',
        title: 'Backups fresh, protected and restorable',
        soc2: 'A1.2 A1.3',
        iso27001: 'A.8.13',
        probes: 'aws-backup-freshness',
        days_green: '9',
        days_red: '0',
        days_unknown: '1',
        days_not_recorded: '0',
        streak_at_end: '31',
        green_since_at_end: '2026-10-22',
        days_with_population: '5',
        days_failing_only: '5',
      },
    ]);
    const perDay = records(readFileSync(path.join(folder, 'control-days.csv'), 'utf8'));
    expect(perDay).toHaveLength(20);
    expect(perDay.find((r) => r.date === '2026-11-04' && r.control === 'backups')).toEqual({
      date: '2026-11-04',
      control: 'backups',
      verdict: 'unknown',
      streak: '31',
      green_since: '2026-10-22',
      reasons: 'aws-backup-freshness/prod: no run that day',
      snapshot_hash: chain[3]!.hash,
    });
    const md = readFileSync(path.join(folder, 'control-matrix.md'), 'utf8');
    expect(md).toContain('| tls-certificates — Internal title of tls-certificates | CC6.7 | A.8.24 | tls-certificate-posture | 8 | 2 | 0 | 0 |');
    expect(md).toContain('| backups — Backups fresh, protected and restorable | A1.2, A1.3 | A.8.13 | aws-backup-freshness | 9 | 0 | 1 | 0 |');
  });

  it('per control, the population lists passing resources, falls back to failing ones for old days, and counts cuts', async () => {
    const { folder } = await exportAndUnpack('2026-11-01', '2026-11-10');
    const tls = records(readFileSync(path.join(folder, 'population', 'tls-certificates.csv'), 'utf8'));
    // Old day: the failing resource only, marked as such.
    expect(tls.filter((r) => r.date === '2026-11-02')).toEqual([
      { date: '2026-11-02', verdict: 'red', probe: 'tls-certificate-posture', target: 'public-web', resource: 'www.example.test:443', outcome: 'fail', level: '', message: 'certificate expires in 3 days: renew it', source: 'failing-only' },
    ]);
    // Green old day: nothing was recorded about individual resources.
    expect(tls.filter((r) => r.date === '2026-11-03')).toEqual([]);
    expect(tls.filter((r) => r.date === '2026-11-07').map((r) => [r.resource, r.outcome, r.message, r.source])).toEqual([
      ['api.example.test:443', 'pass', '', 'population'],
      ['www.example.test:443', 'fail', 'certificate expires in 3 days: renew it', 'population'],
      ['', 'omitted', '2 more resources were judged but not listed (per-run cap)', 'population'],
    ]);
    // Only the control's own probes.
    expect(new Set(tls.map((r) => r.probe))).toEqual(new Set(['tls-certificate-posture']));
    const backups = records(readFileSync(path.join(folder, 'population', 'backups.csv'), 'utf8'));
    expect(backups).toHaveLength(5 * 2);
    const hostile = backups.find((r) => r.date === '2026-11-06' && r.level === '1');
    // A formula is defused with a leading quote; comma, quotes and newline survive quoting.
    expect(hostile?.resource).toBe(`'${HOSTILE}`);
    expect(hostile?.outcome).toBe('pass');
  });

  it('a tampered day file, a removed last day, an altered CSV or an added file fail verify-archive, naming what', async () => {
    const { folder } = await exportAndUnpack('2026-11-03', '2026-11-08');
    const day = path.join(folder, 'days', '2026-11-05.json');
    const original = readFileSync(day, 'utf8');
    chmodSync(day, 0o644);
    writeFileSync(day, original.replace('"verdict": "green"', '"verdict": "red"'));
    let r = await cli('verify-archive', folder);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^export FAILED at 2026-11-05: altered — the file's contents do not match its hash \(2026-11-05\.json/);
    writeFileSync(day, original);
    expect((await cli('verify-archive', folder)).code).toBe(0);

    const csvFile = path.join(folder, 'control-matrix.csv');
    const csvText = readFileSync(csvFile, 'utf8');
    writeFileSync(csvFile, csvText.replace('tls-certificates,', 'tls-certificates-x,'));
    expect(readFileSync(csvFile, 'utf8')).not.toBe(csvText);
    r = await cli('verify-archive', folder);
    expect(r.code).toBe(1);
    expect(r.err).toBe('export FAILED: altered — control-matrix.csv does not match the SHA-256 vigil-export.json records\n');
    writeFileSync(csvFile, csvText);

    writeFileSync(path.join(folder, 'population', 'extra.csv'), 'date\r\n');
    r = await cli('verify-archive', folder);
    expect(r.code).toBe(1);
    expect(r.err).toContain('inserted — population/extra.csv is not part of the export');
    unlinkSync(path.join(folder, 'population', 'extra.csv'));

    const last = path.join(folder, 'days', '2026-11-08.json');
    const lastBytes = readFileSync(last);
    unlinkSync(last);
    r = await cli('verify-archive', folder);
    expect(r.code).toBe(1);
    expect(r.err).toContain("export FAILED at 2026-11-08: removed — the export's days end at 2026-11-07, the manifest says the period ends at 2026-11-08");
    writeFileSync(last, lastBytes);

    // A day dropped from the front would need the manifest's anchor rewritten; the first day's prevHash is demanded.
    const firstDay = path.join(folder, 'days', '2026-11-03.json');
    unlinkSync(firstDay);
    r = await cli('verify-archive', folder);
    expect(r.code).toBe(1);
    expect(r.err).toContain('export FAILED at 2026-11-03: removed');
  });

  it('signed with the key it claims: another key fails', async () => {
    const { folder } = await exportAndUnpack('2026-11-03', '2026-11-04');
    const other = path.join(root, 'other.pem');
    writeFileSync(other, publicKeyFromPrivate(generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()));
    const r = await cli('verify-archive', folder, '--public-key', other);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^export FAILED at 2026-11-03: bad-signature — 2026-11-03\.json is signed by key /);
  });

  it('a bundled or given public key that is not a key fails cleanly, naming it', async () => {
    const { folder } = await exportAndUnpack('2026-11-03', '2026-11-03');
    const shipped = path.join(folder, 'public-key.pem');
    const keyText = readFileSync(shipped, 'utf8');
    writeFileSync(shipped, 'not a key\n');
    let r = await cli('verify-archive', folder);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^export FAILED: public-key\.pem in the export is not usable: the public key is not a PEM public key/);
    writeFileSync(shipped, keyText);
    const junk = path.join(root, 'junk.pem');
    writeFileSync(junk, 'junk\n');
    r = await cli('export', '--config', unsignedConfig, '--from', '2026-11-01', '--to', '2026-11-02', '--public-key', junk, '--out', path.join(root, 'junk.tar.gz'));
    expect(r.code).toBe(66);
    expect(r.err).toContain('vigil: --public-key: the public key is not a PEM public key');
  });

  it('without a signing key: no public key shipped, and the report says what the chain proves', async () => {
    const { folder } = await exportAndUnpack('2026-11-02', '2026-11-04', unsignedConfig);
    expect(existsSync(path.join(folder, 'public-key.pem'))).toBe(false);
    expect(readFileSync(path.join(folder, 'VERIFICATION.md'), 'utf8')).toContain('Key fingerprint: none');
    const r = await cli('verify-archive', folder);
    expect(r.code).toBe(0);
    expect(r.out).toContain('no key: this proves the order of the days, not who wrote them');
  });

  it.each([
    [['--from', '2026-02-30', '--to', '2026-03-01'], '--from expects a calendar day YYYY-MM-DD, got "2026-02-30"'],
    [['--from', '2026-11-01', '--to', '2026-13-01'], '--to expects a calendar day YYYY-MM-DD, got "2026-13-01"'],
    [['--from', '2026-11-5', '--to', '2026-11-06'], '--from expects a calendar day YYYY-MM-DD, got "2026-11-5"'],
    [['--from', '2026-11-06', '--to', '2026-11-05'], '--from 2026-11-06 is after --to 2026-11-05'],
  ])('usage error %j exits 64', async (args, message) => {
    const r = await cli('export', '--config', configFile, ...args);
    expect(r.code).toBe(64);
    expect(r.err).toBe(`vigil: ${message}\n`);
    expect(readdirSync(root).some((f) => f.endsWith('.tar.gz'))).toBe(false);
  });

  it('vigil export --help shows its options and exit codes', async () => {
    const r = await cli('export', '--help');
    expect(r.code).toBe(0);
    for (const option of ['--from <YYYY-MM-DD>', '--to <YYYY-MM-DD>', '--out <file>', '--public-key <file>', '--config'])
      expect(r.out).toContain(option);
    expect(r.out).toMatch(/Exit codes:\n {2}0 {3}written\n {2}1 {3}the archive does not verify/);
    expect(r.out).toContain('64  usage error');
    expect(r.out).toContain('73  the --out file cannot be written');
  });

  it('a missing --to is a usage error', async () => {
    const r = await cli('export', '--config', configFile, '--from', '2026-11-01');
    expect(r.code).toBe(64);
    expect(r.err).toContain("required option '--to <YYYY-MM-DD>' not specified");
  });

  it('a period outside the archive, or an archive that does not verify, exports nothing (exit 1)', async () => {
    let r = await cli('export', '--config', configFile, '--from', '2026-10-31', '--to', '2026-11-02');
    expect(r.code).toBe(1);
    expect(r.err).toBe(`vigil: the archive ${archiveDir} holds 2026-11-01 … 2026-11-10; 2026-10-31 … 2026-11-02 is not inside it\n`);

    const broken = path.join(root, 'broken');
    mkdirSync(broken);
    for (const f of readdirSync(unsignedArchiveDir)) writeFileSync(path.join(broken, f), readFileSync(path.join(unsignedArchiveDir, f)));
    writeFileSync(path.join(broken, '2026-11-09.json'), readFileSync(path.join(broken, '2026-11-09.json'), 'utf8').replace('"runs": 96', '"runs": 95'));
    const brokenConfig = path.join(root, 'broken.yaml');
    writeFileSync(brokenConfig, `dataDir: ${root}/var\narchive: { dir: ${broken} }\n`);
    const out = path.join(root, 'never.tar.gz');
    r = await cli('export', '--config', brokenConfig, '--from', '2026-11-01', '--to', '2026-11-03', '--out', out);
    expect(r.code).toBe(1);
    expect(r.err).toContain('does not verify, so nothing was exported: archive FAILED at 2026-11-09: altered');
    expect(existsSync(out)).toBe(false);
  });

  it('an --out inside the evidence archive is refused (64): it would break verify-archive there', async () => {
    const r = await cli('export', '--config', configFile, '--from', '2026-11-01', '--to', '2026-11-02', '--out', path.join(archiveDir, 'x.tar.gz'));
    expect(r.code).toBe(64);
    expect(r.err).toContain('is inside the evidence archive');
    expect(existsSync(path.join(archiveDir, 'x.tar.gz'))).toBe(false);
  });

  it('an --out that cannot be written exits 73', async () => {
    const r = await cli('export', '--config', configFile, '--from', '2026-11-01', '--to', '2026-11-02', '--out', path.join(root, 'no-such-dir', 'x.tar.gz'));
    expect(r.code).toBe(73);
    expect(r.err).toContain('vigil: cannot write --out');
  });
});

describe('the ustar writer', () => {
  it('long names go into the prefix field and GNU tar reads them back', () => {
    const dir = `${'d'.repeat(60)}/${'e'.repeat(60)}`;
    const name = `${dir}/${'f'.repeat(90)}.txt`;
    const bytes = tarBytes([{ path: 'd'.repeat(60) }, { path: dir }, { path: name, data: Buffer.from('hello\n') }], 1_790_000_000);
    expect(bytes.length % 512).toBe(0);
    const into = mkdtempSync(path.join(root, 'ustar-'));
    const file = path.join(into, 'a.tar');
    writeFileSync(file, bytes);
    expect(execFileSync('tar', ['-tvf', file], { encoding: 'utf8' })).toContain(name);
    execFileSync('tar', ['-xf', file, '-C', into]);
    expect(readFileSync(path.join(into, name), 'utf8')).toBe('hello\n');
  });

  it.each([['../escape'], ['/abs'], ['a/./b'], ['naïve'], ['a//b'], ['x'.repeat(101)]])('refuses the member name %j', (name) => {
    expect(() => tarBytes([{ path: name, data: Buffer.from('x') }], 0)).toThrow(TarEntryError);
  });
});
