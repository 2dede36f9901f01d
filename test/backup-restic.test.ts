/**
 * backup-repository on restic: the real restic (Debian's `restic` package) against repositories
 * created here — a fresh and a stale snapshot group, a corrupted pack, an exclusive lock held by a
 * real restic process, a wrong password, a missing repository — all through runProbe as the
 * daemon runs it.
 */
import { cpSync, rmSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probe } from '../probes/backup-repository/probe.js';
import { readDataSubset } from '../probes/backup-repository/restic.js';
import { VigilConfig } from '../src/config/schema.js';
import { runProbe } from '../src/probe/runner.js';
import { corruptMiddle, fingerprint, holdResticExclusiveLock, largestFile, restic, sampleData, tempDir } from './helpers/backup-tools.js';

const log = pino({ level: 'silent' });
const PASSWORD = 'restic-password-for-vigil-tests-91c2';
const PASSWORD_ENV = 'VIGIL_TEST_RESTIC_PASSWORD';
const WRONG_ENV = 'VIGIL_TEST_RESTIC_WRONG';

let scratch: string;
let repo: string;

async function run(entry: Record<string, unknown>) {
  const config = VigilConfig.parse({ backups: [{ name: 'files', kind: 'restic', password: { env: PASSWORD_ENV }, ...entry }] });
  const [target] = probe.targets(config);
  if (!target) throw new Error('no target');
  return runProbe({ probe, target, params: probe.params.parse({}), runId: 'test-run', scheduledFor: new Date(), timeoutMs: 60_000, log });
}

beforeAll(() => {
  process.env[PASSWORD_ENV] = PASSWORD;
  // A decoy in vigil's own environment: restic prefers a password file, so if vigil passed its
  // environment through to restic instead of the allow-list, every run below would fail.
  process.env.RESTIC_PASSWORD_FILE = '/nonexistent/vigil-must-not-pass-this-on';
  process.env[WRONG_ENV] = 'not-the-password';
  scratch = tempDir('restic');
  repo = path.join(scratch, 'repo');
  const data = sampleData(scratch);
  restic(repo, PASSWORD, ['init']);
  restic(repo, PASSWORD, ['backup', '--host', 'web-1', '--tag', 'nightly', data]);
  // A second host whose last backup is years old: `backup --time` stamps the snapshot.
  restic(repo, PASSWORD, ['backup', '--host', 'db-1', '--time', '2024-01-01 03:00:00', data]);
});

afterAll(() => {
  delete process.env[PASSWORD_ENV];
  delete process.env.RESTIC_PASSWORD_FILE;
  delete process.env[WRONG_ENV];
  rmSync(scratch, { recursive: true, force: true });
});

describe('backup-repository: restic', () => {
  it('a fresh snapshot group passes at L3 after reading all data, a stale one fails naming its age — and the repository is left untouched', async () => {
    const before = fingerprint(repo);
    const { result } = await run({ repository: repo, snapshots: [{ host: 'web-1', tags: ['nightly'] }, { host: 'db-1' }], readDataSubsets: 1 });
    expect(result.error).toBeUndefined();
    const [web, db] = result.findings;
    expect(web).toMatchObject({ resource: 'files/host=web-1,tags=nightly', outcome: 'pass' });
    expect(web?.details).toMatchObject({ level: 3, protected: true, checks: [{ name: 'restic check --read-data-subset=1/1', outcome: 'pass', readsContent: true }] });
    expect(db).toMatchObject({ resource: 'files/host=db-1', outcome: 'fail' });
    expect(db?.message).toMatch(/newest backup [0-9a-f]{8} is \d+(\.\d)? h old \(RPO 26 h, taken 2024-01-01T03:00:00\.000Z\)/);
    expect(db?.details).toMatchObject({ level: 0 });
    // --no-lock --no-cache: not one file of the repository written, no lock left behind.
    expect(fingerprint(repo)).toBe(before);
    expect(JSON.stringify(result)).not.toContain(PASSWORD);
  });

  it('without a data read the structure check alone reaches L2, not L3; a filter that matches nothing fails', async () => {
    const { result } = await run({ repository: repo, snapshots: [{ host: 'web-1' }, { host: 'web-1', tags: ['weekly'] }] });
    expect(result.findings[0]).toMatchObject({ outcome: 'pass', details: { level: 2, checks: [{ name: 'restic check', outcome: 'pass', readsContent: false }] } });
    expect(result.findings[1]).toMatchObject({ resource: 'files/host=web-1,tags=weekly', outcome: 'fail' });
    expect(result.findings[1]?.message).toContain('no backup matches host=web-1,tags=weekly');
  });

  it('a corrupted pack is caught by the data read', async () => {
    const broken = path.join(scratch, 'broken');
    cpSync(repo, broken, { recursive: true });
    corruptMiddle(largestFile(path.join(broken, 'data')));
    const read = await run({ repository: broken, snapshots: [{ host: 'web-1' }], readDataSubsets: 1 });
    expect(read.result.findings[0]?.outcome).toBe('fail');
    expect(read.result.findings[0]?.message).toMatch(/restic check --read-data-subset=1\/1 found damage: .*(Pack ID does not match|ciphertext verification failed|pack .* damaged)/i);
    expect(read.result.findings[0]?.details).toMatchObject({ level: 2 });
  });

  it('an exclusive lock held by another restic process is a transient error, retried — not a verdict', async () => {
    const held = await holdResticExclusiveLock(repo, PASSWORD, scratch);
    try {
      const outcome = await run({ repository: repo });
      expect(outcome.transientError?.name).toBe('TransientError');
      expect(outcome.result.findings).toEqual([]);
      expect(outcome.result.error?.message).toMatch(/locked exclusively by .* pid \d+ since .*retrying later/);
    } finally {
      await held.release();
    }
  });

  it('a wrong password is unknown and says which setting to fix', async () => {
    const { result, transientError } = await run({ repository: repo, password: { env: WRONG_ENV } });
    expect(transientError).toBeUndefined();
    expect(result.findings).toEqual([
      expect.objectContaining({ resource: 'files', outcome: 'unknown', message: expect.stringContaining('wrong password or no key found — check backups[].password') }),
    ]);
    expect(JSON.stringify(result)).not.toContain('not-the-password');
  });

  it('a missing repository is unknown naming the repository setting', async () => {
    const { result } = await run({ repository: path.join(scratch, 'nope') });
    expect(result.findings[0]).toMatchObject({ outcome: 'unknown', message: expect.stringContaining('no repository at the configured location') });
  });

  it('the data subset rotates with the day so that N daily runs read the whole repository', () => {
    const day0 = Date.UTC(2026, 11, 1);
    const subsets = Array.from({ length: 7 }, (_, i) => readDataSubset(new Date(day0 + i * 86_400_000 + 3_600_000), 7));
    expect(new Set(subsets)).toEqual(new Set(['1/7', '2/7', '3/7', '4/7', '5/7', '6/7', '7/7']));
    // Every run of the same day reads the same subset (a retry does not skip one).
    expect(readDataSubset(new Date(day0 + 60_000), 7)).toBe(readDataSubset(new Date(day0 + 86_399_000), 7));
  });
});
