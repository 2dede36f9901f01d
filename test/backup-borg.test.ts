/**
 * backup-repository on BorgBackup: the real borg (Debian's `borgbackup` package) against
 * repositories created here — a fresh and a stale archive glob, an unencrypted repository, a
 * corrupted segment, a lock held by `borg with-lock`, a wrong passphrase — through runProbe.
 */
import { cpSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probe } from '../probes/backup-repository/probe.js';
import { VigilConfig } from '../src/config/schema.js';
import { runProbe } from '../src/probe/runner.js';
import { borg, corruptMiddle, fingerprint, holdBorgLock, largestFile, sampleData, tempDir } from './helpers/backup-tools.js';

const log = pino({ level: 'silent' });
const PASSPHRASE = 'borg-passphrase-for-vigil-tests-5e1d';
const PASSPHRASE_ENV = 'VIGIL_TEST_BORG_PASSPHRASE';
const WRONG_ENV = 'VIGIL_TEST_BORG_WRONG';

let scratch: string;
let repo: string;
let plain: string;
let toolBase: string;

async function run(entry: Record<string, unknown>) {
  const config = VigilConfig.parse({
    backups: [{ name: 'hosts', kind: 'borg', passphrase: { env: PASSPHRASE_ENV }, baseDir: path.join(scratch, 'vigil-borg'), ...entry }],
  });
  const [target] = probe.targets(config);
  if (!target) throw new Error('no target');
  return runProbe({ probe, target, params: probe.params.parse({}), runId: 'test-run', scheduledFor: new Date(), timeoutMs: 60_000, log });
}

beforeAll(() => {
  process.env[PASSPHRASE_ENV] = PASSPHRASE;
  process.env[WRONG_ENV] = 'not-the-passphrase';
  scratch = tempDir('borg');
  toolBase = path.join(scratch, 'job-borg');
  repo = path.join(scratch, 'repo');
  plain = path.join(scratch, 'plain');
  const data = sampleData(scratch);
  borg(repo, PASSPHRASE, toolBase, ['init', '-e', 'repokey-blake2', repo]);
  borg(repo, PASSPHRASE, toolBase, ['create', `${repo}::web-2026`, data]);
  // `create --timestamp` stamps the archive as if made then: the db job stopped long ago.
  borg(repo, PASSPHRASE, toolBase, ['create', '--timestamp', '2024-01-01T03:00:00', `${repo}::db-2024`, data]);
  borg(plain, undefined, toolBase, ['init', '-e', 'none', plain]);
  borg(plain, undefined, toolBase, ['create', `${plain}::web-2026`, data]);
});

afterAll(() => {
  delete process.env[PASSPHRASE_ENV];
  delete process.env[WRONG_ENV];
  rmSync(scratch, { recursive: true, force: true });
});

describe('backup-repository: borg', () => {
  it('a fresh archive glob passes at L3 with --verify-data, a stale glob fails naming its age — segments, index and hints untouched', async () => {
    // borg 1.2's check rewrites two small files even without --repair (see the probe's docs): the
    // nonce reservation, and the repository config with unchanged content.
    const configBefore = readFileSync(path.join(repo, 'config'), 'utf8');
    const before = fingerprint(repo, ['nonce', 'config']);
    const { result } = await run({ repository: repo, archives: ['web-*', 'db-*'], verifyDataEveryDays: 1 });
    expect(result.error).toBeUndefined();
    const [web, db] = result.findings;
    expect(web).toMatchObject({ resource: 'hosts/web-*', outcome: 'pass' });
    expect(web?.details).toMatchObject({ level: 3, protected: true, protection: 'encrypted (repokey-blake2)', checks: [{ name: 'borg check --verify-data', outcome: 'pass' }] });
    expect(db).toMatchObject({ resource: 'hosts/db-*', outcome: 'fail' });
    expect(db?.message).toMatch(/newest backup db-2024 is \d+(\.\d)? h old \(RPO 26 h, taken 2024-01-01T03:00:00\.000Z\)/);
    // --bypass-lock: no lock files; segments, index and hints untouched.
    expect(fingerprint(repo, ['nonce', 'config'])).toBe(before);
    expect(readFileSync(path.join(repo, 'config'), 'utf8')).toBe(configBefore);
    expect(JSON.stringify(result)).not.toContain(PASSPHRASE);
  });

  it('an unencrypted repository is fresh but not protected: L1', async () => {
    const { result } = await run({ repository: plain, passphrase: undefined });
    expect(result.findings[0]).toMatchObject({ resource: 'hosts', outcome: 'pass', details: { level: 1, protected: false, protection: 'not encrypted (borg init -e none)' } });
  });

  it('a corrupted segment fails the check with borg\'s own error line', async () => {
    const broken = path.join(scratch, 'broken');
    cpSync(repo, broken, { recursive: true });
    corruptMiddle(largestFile(path.join(broken, 'data')));
    const { result } = await run({ repository: broken, archives: ['web-*'] });
    expect(result.findings[0]?.outcome).toBe('fail');
    expect(result.findings[0]?.message).toMatch(/borg check found damage: .*(checksum mismatch|Data integrity error)/i);
    expect(result.findings[0]?.details).toMatchObject({ level: 2 });
  });

  it('a repository locked by a running borg is a transient error, retried — not a verdict', async () => {
    const held = await holdBorgLock(repo, PASSPHRASE, toolBase);
    try {
      const outcome = await run({ repository: repo });
      expect(outcome.transientError?.name).toBe('TransientError');
      expect(outcome.result.error?.message).toMatch(/borg repository is locked exclusively .*retrying later/);
    } finally {
      await held.release();
    }
  });

  it('a wrong passphrase is unknown and names the setting', async () => {
    const { result, transientError } = await run({ repository: repo, passphrase: { env: WRONG_ENV } });
    expect(transientError).toBeUndefined();
    expect(result.findings).toEqual([expect.objectContaining({ resource: 'hosts', outcome: 'unknown', message: expect.stringContaining('the passphrase is wrong — check backups[].passphrase') })]);
  });

  it('a missing repository is unknown naming the repository setting', async () => {
    const { result } = await run({ repository: path.join(scratch, 'nope') });
    expect(result.findings[0]).toMatchObject({ outcome: 'unknown', message: expect.stringContaining('no repository at the configured location') });
  });
});
