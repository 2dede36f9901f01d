/**
 * backup-repository on PostgreSQL backups: a throwaway cluster this file starts (initdb + pg_ctl
 * in a temporary directory, Unix socket only) archiving WAL to a real pgBackRest stanza with an
 * encrypted repository; `pgbackrest backup`, then the probe's `info`/`verify` — including the
 * corrupted file that `verify` reports with `status: error` while exiting 0. And real
 * `pg_dump -Fc` dump files: intact, truncated, with a wrong sidecar, empty, stale.
 */
import { chmodSync, cpSync, mkdirSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probe } from '../probes/backup-repository/probe.js';
import { VigilConfig } from '../src/config/schema.js';
import { runProbe } from '../src/probe/runner.js';
import { corruptMiddle, startPostgres, tempDir, type PgCluster } from './helpers/backup-tools.js';

const log = pino({ level: 'silent' });
const CIPHER_ENV = 'VIGIL_TEST_PGBACKREST_CIPHER';
const HOUR = 3_600_000;

let pg: PgCluster;
let scratch: string;
let dump: string;

async function run(entry: Record<string, unknown>, now?: Date) {
  const config = VigilConfig.parse({ backups: [{ name: 'db', ...entry }] });
  const [target] = probe.targets(config);
  if (!target) throw new Error('no target');
  return runProbe({ probe, target, params: probe.params.parse({}), runId: 'test-run', scheduledFor: new Date(), timeoutMs: 60_000, log, ...(now ? { now: () => now } : {}) });
}

beforeAll(() => {
  pg = startPostgres();
  process.env[CIPHER_ENV] = pg.cipherPass;
  pg.pgbackrest(['--type=full', 'backup']);
  scratch = tempDir('dumps');
  dump = path.join(scratch, 'source.dump');
  pg.dump(dump);
});

afterAll(() => {
  delete process.env[CIPHER_ENV];
  pg?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** A dump directory holding `files` (name → content), all mode 0600. */
function dumpDir(name: string, files: Record<string, Buffer | string>): string {
  const dir = path.join(scratch, name);
  mkdirSync(dir);
  for (const [file, content] of Object.entries(files)) {
    writeFileSync(path.join(dir, file), content);
    chmodSync(path.join(dir, file), 0o600);
  }
  return dir;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('backup-repository: pgBackRest', () => {
  const stanza = () => ({ kind: 'pgbackrest', stanza: 'main', configFile: pg.pgbackrestConf, cipherPass: { env: CIPHER_ENV } });

  it('a fresh, encrypted, verified backup passes at L3', async () => {
    const { result } = await run(stanza());
    expect(result.error).toBeUndefined();
    expect(result.findings).toHaveLength(1);
    expect(result.findings[0]).toMatchObject({ resource: 'db', outcome: 'pass' });
    expect(result.findings[0]?.details).toMatchObject({
      level: 3,
      protected: true,
      protection: 'encrypted (aes-256-cbc)',
      checks: [{ name: 'pgbackrest verify', outcome: 'pass', message: 'status: ok' }],
    });
    expect(String(result.findings[0]?.details?.newestBackup)).toMatch(/^\d{8}-\d{6}F$/);
    expect(JSON.stringify(result)).not.toContain(pg.cipherPass);
  });

  it('the same backup fails once it is older than the RPO', async () => {
    const { result } = await run({ ...stanza(), verify: false, rpoHours: 24 }, new Date(Date.now() + 30 * HOUR));
    expect(result.findings[0]?.outcome).toBe('fail');
    expect(result.findings[0]?.message).toMatch(/newest backup \d{8}-\d{6}F is 30(\.\d)? h old \(RPO 24 h/);
  });

  it('a wrong cipher passphrase is unknown, never a verdict on the backups', async () => {
    process.env.VIGIL_TEST_PGBACKREST_WRONG = 'not-the-cipher-pass';
    try {
      const { result } = await run({ ...stanza(), cipherPass: { env: 'VIGIL_TEST_PGBACKREST_WRONG' } });
      expect(result.error).toBeUndefined();
      expect(result.findings[0]).toMatchObject({ outcome: 'unknown', message: expect.stringMatching(/status 99: \[FormatError\] unable to load info file .*backup\.info.* — check backups\[\]\.stanza, configFile and cipherPass/) });
      expect(JSON.stringify(result)).not.toContain('not-the-cipher-pass');
    } finally {
      delete process.env.VIGIL_TEST_PGBACKREST_WRONG;
    }
  });

  it('a stanza that does not exist is unknown, naming the setting', async () => {
    const { result } = await run({ ...stanza(), stanza: 'nope' });
    expect(result.findings[0]).toMatchObject({ outcome: 'unknown', message: expect.stringContaining('stanza "nope"') });
  });

  it('a corrupted backup file fails from verify\'s "status: error" although verify exits 0', async () => {
    const broken = path.join(pg.dir, 'repo-broken');
    cpSync(path.join(pg.dir, 'repo'), broken, { recursive: true });
    const conf = path.join(pg.dir, 'pgbackrest-broken.conf');
    writeFileSync(conf, readFileSync(pg.pgbackrestConf, 'utf8').replace(`repo1-path=${pg.dir}/repo`, `repo1-path=${broken}`));
    const backupDir = path.join(broken, 'backup', 'main');
    const label = readdirSync(backupDir).find((n) => /F$/.test(n)) as string;
    const victim = path.join(backupDir, label, 'pg_data', 'PG_VERSION');
    corruptMiddle(victim, 2);
    // The tool itself: exit 0, verdict only in the text.
    const raw = spawnSync('pgbackrest', [`--config=${conf}`, '--stanza=main', '--log-level-console=info', '--log-level-file=off', 'verify'], {
      env: { ...process.env, PGBACKREST_REPO1_CIPHER_PASS: pg.cipherPass },
      encoding: 'utf8',
    });
    expect(raw.status).toBe(0);
    expect(raw.stdout).toContain('status: error');

    const { result } = await run({ ...stanza(), configFile: conf });
    expect(result.findings[0]?.outcome).toBe('fail');
    expect(result.findings[0]?.message).toMatch(/pgbackrest verify found damage: status: error — invalid checksum.*PG_VERSION/);
    expect(result.findings[0]?.details).toMatchObject({ level: 2 });
  });
});

describe('backup-repository: dump files', () => {
  const dumps = (dir: string) => ({ kind: 'dumps', dir, pattern: '*.dump', format: 'postgres-custom' });

  it('the newest pg_dump -Fc file, matching its sidecar and read through by pg_restore, passes at L3', async () => {
    const content = readFileSync(dump);
    const dir = dumpDir('good', { 'db-2026-11-30.dump': content, 'db-2026-12-01.dump': content, 'db-2026-12-01.dump.sha256': `${sha256(content)}  db-2026-12-01.dump\n` });
    utimesSync(path.join(dir, 'db-2026-11-30.dump'), new Date(Date.now() - 30 * HOUR), new Date(Date.now() - 30 * HOUR));
    const { result } = await run(dumps(dir));
    expect(result.findings[0]).toMatchObject({ resource: 'db', outcome: 'pass' });
    expect(result.findings[0]?.details).toMatchObject({
      level: 3,
      newestBackup: 'db-2026-12-01.dump',
      backups: 2,
      protected: true,
      checks: [
        { name: 'sha256 sidecar', outcome: 'pass' },
        { name: 'pg_restore', outcome: 'pass' },
      ],
    });
  });

  it('a truncated dump fails: pg_restore --list alone would accept it, the full read does not', async () => {
    const content = readFileSync(dump);
    const dir = dumpDir('truncated', { 'db.dump': content.subarray(0, content.length - 4096) });
    expect(spawnSync('pg_restore', ['--list', path.join(dir, 'db.dump')]).status).toBe(0);
    const { result } = await run(dumps(dir));
    expect(result.findings[0]?.outcome).toBe('fail');
    expect(result.findings[0]?.message).toMatch(/pg_restore cannot read db\.dump through: .*(end of file|could not read)/);
  });

  it('a dump that does not match its sidecar fails', async () => {
    const content = readFileSync(dump);
    const dir = dumpDir('mismatch', { 'db.dump': content, 'db.dump.sha256': `${sha256(Buffer.from('something else'))}  db.dump\n` });
    const { result } = await run({ ...dumps(dir), format: 'raw' });
    expect(result.findings[0]?.outcome).toBe('fail');
    expect(result.findings[0]?.message).toContain('db.dump does not match its .sha256 sidecar');
  });

  it('an empty newest dump fails even when an older good one exists', async () => {
    const dir = dumpDir('empty', { 'db-old.dump': readFileSync(dump), 'db-new.dump': '' });
    utimesSync(path.join(dir, 'db-old.dump'), new Date(Date.now() - 2 * HOUR), new Date(Date.now() - 2 * HOUR));
    const { result } = await run(dumps(dir));
    expect(result.findings[0]).toMatchObject({ outcome: 'fail', details: { level: 0, newestBackup: 'db-new.dump' } });
    expect(result.findings[0]?.message).toContain('the file is empty (0 bytes)');
  });

  it('a stale dump fails, and a dump readable by others is fresh but not protected (L1)', async () => {
    const stale = dumpDir('stale', { 'db.dump': readFileSync(dump) });
    utimesSync(path.join(stale, 'db.dump'), new Date(Date.now() - 50 * HOUR), new Date(Date.now() - 50 * HOUR));
    const s = await run(dumps(stale));
    expect(s.result.findings[0]?.outcome).toBe('fail');
    expect(s.result.findings[0]?.message).toMatch(/newest backup db\.dump is 50(\.\d)? h old \(RPO 26 h/);

    const open = dumpDir('open', { 'db.dump': readFileSync(dump) });
    chmodSync(path.join(open, 'db.dump'), 0o644);
    const o = await run({ ...dumps(open), format: 'raw' });
    expect(o.result.findings[0]).toMatchObject({ outcome: 'pass', details: { level: 1, protected: false } });
  });

  it('a FIFO planted as the sidecar neither hangs the run nor passes', async () => {
    const dir = dumpDir('fifo', { 'db.dump': readFileSync(dump) });
    expect(spawnSync('mkfifo', [path.join(dir, 'db.dump.sha256')]).status).toBe(0);
    const { result } = await run({ ...dumps(dir), format: 'raw' });
    expect(result.findings[0]).toMatchObject({ outcome: 'fail', message: expect.stringContaining('db.dump.sha256 holds no sha256 digest') });
  });

  it('a missing directory is unknown; a directory with no matching file fails', async () => {
    const missing = await run(dumps(path.join(scratch, 'nope')));
    expect(missing.result.findings[0]).toMatchObject({ outcome: 'unknown', message: expect.stringContaining('cannot read the dump directory') });
    const none = dumpDir('none', { 'notes.txt': 'x' });
    const n = await run(dumps(none));
    expect(n.result.findings[0]).toMatchObject({ outcome: 'fail', message: expect.stringContaining('no backup matches the pattern *.dump') });
  });
});

