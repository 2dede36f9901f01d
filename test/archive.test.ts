import { createHash, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { snapshotHash, type Snapshot } from '../src/posture/snapshot-types.js';
import {
  ArchiveChainError,
  ArchiveConflictError,
  ArchiveCorruptError,
  ArchiveInvalidSnapshotError,
  checkSnapshotText,
  formatArchiveReport,
  MAX_ARCHIVE_FILE_BYTES,
  keyFingerprint,
  listArchive,
  publicKeyFromPrivate,
  readArchivedSnapshot,
  readArchiveText,
  rebuildInputs,
  signHash,
  snapshotFileText,
  verifyArchive,
  verifySignature,
  writeArchivedSnapshot,
} from '../src/store/archive.js';
import { sampleChain, sampleControl, sampleSnapshot, sealed } from './helpers/snapshots.js';

const keys = generateKeyPairSync('ed25519');
const privateKeyPem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const publicKeyPem = publicKeyFromPrivate(privateKeyPem);
const fingerprint = createHash('sha256').update(keys.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
const otherPrivateKeyPem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/** 2026-11-01 … 2026-11-10. */
const chain = sampleChain('2026-11-01', 10);
const signedChain = chain.map((s) => ({ ...s, ...signHash(s.hash, privateKeyPem) }));

function day(i: number): Snapshot {
  const s = chain[i];
  if (!s) throw new Error('no such day in the sample chain');
  return s;
}

let dir: string;
beforeEach(async () => {
  dir = join(await mkdtemp(join(tmpdir(), 'vigil-archive-')), 'archive');
});
afterEach(async () => {
  await rm(join(dir, '..'), { recursive: true, force: true });
});

async function writeAll(snapshots: Snapshot[]): Promise<void> {
  for (const s of snapshots) expect(await writeArchivedSnapshot(dir, s)).toBe('written');
}

/** Overwrites an archived file the way an attacker with shell access would (the files are 0444). */
async function overwrite(date: string, text: string): Promise<void> {
  const file = join(dir, `${date}.json`);
  await chmod(file, 0o644);
  await writeFile(file, text);
}

async function problemOf(opts?: { publicKeyPem?: string }) {
  const report = await verifyArchive(dir, opts);
  expect(report.ok).toBe(false);
  return report.problem;
}

describe('writeArchivedSnapshot', () => {
  it('writes one pretty-printed, read-only file per day in a private directory, and nothing else', async () => {
    await writeAll(chain.slice(0, 3));
    const s = day(1);
    const text = (await readArchiveText(dir, s.date))!;
    expect(JSON.parse(text)).toEqual(s);
    expect(text).toBe(`${JSON.stringify(JSON.parse(text), null, 2)}\n`);
    expect(text.startsWith('{\n  "schema": "vigil.snapshot/1",\n  "date": "2026-11-02",')).toBe(true);
    expect(await readArchivedSnapshot(dir, s.date)).toEqual(s);
    expect((await stat(join(dir, `${s.date}.json`))).mode & 0o777).toBe(0o444);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await readdir(dir)).sort()).toEqual(['2026-11-01.json', '2026-11-02.json', '2026-11-03.json']);
    expect((await listArchive(dir)).map((e) => e.date)).toEqual(['2026-11-01', '2026-11-02', '2026-11-03']);
  });

  it('re-writing an archived day with the same hash is "exists", for the newest and for an older day', async () => {
    await writeAll(chain.slice(0, 4));
    expect(await writeArchivedSnapshot(dir, day(3))).toBe('exists');
    expect(await writeArchivedSnapshot(dir, day(1))).toBe('exists');
    // The signature is not part of the snapshot's identity.
    expect(await writeArchivedSnapshot(dir, { ...day(1), ...signHash(day(1).hash, privateKeyPem) })).toBe('exists');
  });

  it('a different snapshot for an archived day throws ArchiveConflictError naming the file and leaves it intact', async () => {
    await writeAll(chain.slice(0, 4));
    const file = join(dir, '2026-11-03.json');
    const before = await readFile(file, 'utf8');
    const other = sampleSnapshot('2026-11-03', [sampleControl({ id: 'tls-certificates', verdict: 'red', streak: 0, greenSince: null })], day(1).hash);
    const err = await writeArchivedSnapshot(dir, other).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveConflictError);
    expect(err).toMatchObject({ name: 'ArchiveConflictError', file, date: '2026-11-03', existingHash: day(2).hash, hash: other.hash });
    expect(await readFile(file, 'utf8')).toBe(before);
  });

  it.each([
    ['a day before the newest', () => sampleSnapshot('2026-10-31', [sampleControl({ id: 'x' })], null), 'before-newest'],
    ['a day after a gap', () => sampleSnapshot('2026-11-06', [sampleControl({ id: 'x' })], day(3).hash), 'gap'],
    ['the next day chained to the wrong snapshot', () => sampleSnapshot('2026-11-05', [sampleControl({ id: 'x' })], day(2).hash), 'prev-hash'],
    ['the next day with prevHash null', () => sampleSnapshot('2026-11-05', [sampleControl({ id: 'x' })], null), 'prev-hash'],
  ] as const)('refuses %s with ArchiveChainError and writes nothing', async (_name, make, reason) => {
    await writeAll(chain.slice(0, 4));
    const err = await writeArchivedSnapshot(dir, make()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveChainError);
    expect(err).toMatchObject({ name: 'ArchiveChainError', reason, newest: '2026-11-04' });
    expect((await readdir(dir)).length).toBe(4);
  });

  it('refuses to start an empty archive with a snapshot that chains to an earlier one', async () => {
    const err = await writeArchivedSnapshot(dir, day(1)).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ArchiveChainError', reason: 'first-prev-hash' });
    expect(await listArchive(dir)).toEqual([]);
  });

  it('refuses a snapshot whose hash is not the hash of its body', async () => {
    const bad = { ...day(0), counts: { green: 5, red: 0, unknown: 0 } };
    const err = await writeArchivedSnapshot(dir, bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveInvalidSnapshotError);
    expect(err).toMatchObject({ reason: 'hash' });
    expect(await listArchive(dir)).toEqual([]);
  });

  it('refuses a snapshot whose file would be larger than the per-day cap the readers enforce', async () => {
    const huge = sampleSnapshot('2026-11-01', [sampleControl({ id: 'x', reasons: ['r'.repeat(MAX_ARCHIVE_FILE_BYTES)] })], null);
    const err = await writeArchivedSnapshot(dir, huge).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveInvalidSnapshotError);
    expect(err).toMatchObject({ reason: 'too-large' });
    expect(await listArchive(dir)).toEqual([]);
  });

  it('two writers racing on one day: one writes, the other gets "exists" or a conflict, never an overwrite', async () => {
    await writeAll(chain.slice(0, 2));
    const results = await Promise.all([writeArchivedSnapshot(dir, day(2)), writeArchivedSnapshot(dir, day(2))]);
    expect(results.sort()).toEqual(['exists', 'written']);

    const rival = sampleSnapshot('2026-11-04', [sampleControl({ id: 'rival' })], day(2).hash);
    const settled = await Promise.allSettled([writeArchivedSnapshot(dir, day(3)), writeArchivedSnapshot(dir, rival)]);
    const written = settled.filter((r) => r.status === 'fulfilled');
    const refused = settled.filter((r) => r.status === 'rejected');
    expect(written).toHaveLength(1);
    expect(refused.map((r) => (r as PromiseRejectedResult).reason)).toEqual([expect.any(ArchiveConflictError)]);
    const kept = await readArchivedSnapshot(dir, '2026-11-04');
    expect([day(3).hash, rival.hash]).toContain(kept?.hash);
    expect((await readdir(dir)).sort()).toEqual(['2026-11-01.json', '2026-11-02.json', '2026-11-03.json', '2026-11-04.json']);
  });
});

describe('readArchivedSnapshot', () => {
  it('returns undefined for a day not archived and for a date that is not a calendar day', async () => {
    await writeAll(chain.slice(0, 2));
    expect(await readArchivedSnapshot(dir, '2026-11-05')).toBeUndefined();
    expect(await readArchivedSnapshot(dir, '../archive/2026-11-01')).toBeUndefined();
    expect(await readArchiveText(dir, '2026-11-1')).toBeUndefined();
    expect((await readArchivedSnapshot(dir, '2026-11-02'))?.hash).toBe(day(1).hash);
  });

  it('throws ArchiveCorruptError for an edited file', async () => {
    await writeAll(chain.slice(0, 2));
    await overwrite('2026-11-02', (await readArchiveText(dir, '2026-11-02'))!.replace('public-web', 'public-wec'));
    await expect(readArchivedSnapshot(dir, '2026-11-02')).rejects.toBeInstanceOf(ArchiveCorruptError);
  });
});

describe('signatures', () => {
  it('signHash signs the hash with Ed25519 and names the key by the SHA-256 of its SPKI DER', () => {
    const { signature, signedBy } = signHash(day(0).hash, privateKeyPem);
    expect(signedBy).toBe(fingerprint);
    expect(keyFingerprint(publicKeyPem)).toBe(fingerprint);
    expect(verify(null, Buffer.from(day(0).hash, 'utf8'), keys.publicKey, Buffer.from(signature, 'base64'))).toBe(true);
    expect(publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(createPublicKey(publicKeyPem).equals(keys.publicKey)).toBe(true);
  });

  it('verifySignature accepts a signed snapshot and rejects unsigned, re-bodied and other-key ones', () => {
    const signed = signedChain[0]!;
    expect(verifySignature(signed, publicKeyPem)).toBe(true);
    expect(verifySignature(day(0), publicKeyPem)).toBe(false);
    expect(verifySignature({ ...signed, timezone: 'Europe/Paris' }, publicKeyPem)).toBe(false);
    expect(verifySignature({ ...day(0), ...signHash(day(0).hash, otherPrivateKeyPem) }, publicKeyPem)).toBe(false);
    // A signature by another key cannot be passed off by relabelling signedBy.
    expect(verifySignature({ ...day(0), ...signHash(day(0).hash, otherPrivateKeyPem), signedBy: fingerprint }, publicKeyPem)).toBe(false);
  });
});

describe('verifyArchive', () => {
  it('a clean chain verifies, with and without a key', async () => {
    await writeAll(signedChain);
    const report = await verifyArchive(dir);
    expect(report).toEqual({ ok: true, days: 10, first: '2026-11-01', last: '2026-11-10' });
    const keyed = await verifyArchive(dir, { publicKeyPem });
    expect(keyed).toEqual({ ok: true, days: 10, first: '2026-11-01', last: '2026-11-10', keyFingerprint: fingerprint });
    expect(formatArchiveReport(keyed)).toBe(
      `archive OK: 10 days, 2026-11-01 … 2026-11-10, hash chain intact (signatures checked with key ${fingerprint})`,
    );
  });

  it('editing one byte of a file → altered at that day', async () => {
    await writeAll(chain);
    const text = (await readArchiveText(dir, '2026-11-05'))!;
    const edited = text.replace('"target": "public-web"', '"target": "public-wec"');
    expect(edited.length).toBe(text.length);
    expect(edited).not.toBe(text);
    await overwrite('2026-11-05', edited);
    const report = await verifyArchive(dir);
    expect(report.problem).toMatchObject({ date: '2026-11-05', kind: 'altered' });
    expect(formatArchiveReport(report)).toMatch(/^archive FAILED at 2026-11-05: altered — the file's contents do not match its hash \(2026-11-05\.json: /);
  });

  it('a file that is no longer JSON → unreadable at that day', async () => {
    await writeAll(chain);
    await overwrite('2026-11-07', '{"schema": "vigil.snapshot/1", ');
    expect(await problemOf()).toMatchObject({ date: '2026-11-07', kind: 'unreadable' });
  });

  it('a file that is JSON but not a snapshot → altered at that day', async () => {
    await writeAll(chain);
    const { controls: _dropped, ...rest } = day(6);
    await overwrite('2026-11-07', JSON.stringify(rest));
    expect(await problemOf()).toMatchObject({ date: '2026-11-07', kind: 'altered' });
  });

  it('deleting a middle day → removed, naming the missing day', async () => {
    await writeAll(chain);
    await unlink(join(dir, '2026-11-04.json'));
    const problem = await problemOf();
    expect(problem).toEqual({ date: '2026-11-04', kind: 'removed', detail: 'no snapshot for 2026-11-04: the archive jumps from 2026-11-03 to 2026-11-05' });
  });

  it('deleting the first days → removed, naming the day before the new first one', async () => {
    await writeAll(chain);
    await unlink(join(dir, '2026-11-01.json'));
    await unlink(join(dir, '2026-11-02.json'));
    expect(await problemOf()).toMatchObject({ date: '2026-11-02', kind: 'removed' });
  });

  it.each([
    ['adjacent days', '2026-11-04', '2026-11-05'],
    ['distant days', '2026-11-03', '2026-11-08'],
    ['the first and second days', '2026-11-01', '2026-11-02'],
  ])('swapping two files (%s) → reordered at the earlier one', async (_name, a, b) => {
    await writeAll(chain);
    await rename(join(dir, `${a}.json`), join(dir, 'swap.tmp'));
    await rename(join(dir, `${b}.json`), join(dir, `${a}.json`));
    await rename(join(dir, 'swap.tmp'), join(dir, `${b}.json`));
    expect(await problemOf()).toEqual({ date: a, kind: 'reordered', detail: `${a}.json holds the snapshot of ${b}` });
  });

  it.each([
    ['prevHash null', null],
    ['a made-up prevHash', 'ab'.repeat(32)],
  ])('a forged day prepended before the first (%s) → inserted at that day', async (_name, prevHash) => {
    await writeAll(chain);
    const forged = sampleSnapshot('2026-10-31', [sampleControl({ id: 'tls-certificates' })], prevHash);
    expect(forged.hash).toBe(snapshotHash(forged));
    await writeFile(join(dir, '2026-10-31.json'), `${JSON.stringify(forged, null, 2)}\n`);
    expect(await problemOf()).toMatchObject({ date: '2026-10-31', kind: 'inserted' });
  });

  it('a stray copy of a day → inserted at the date its name starts with', async () => {
    await writeAll(chain);
    await writeFile(join(dir, '2026-11-03-copy.json'), (await readArchiveText(dir, '2026-11-03'))!);
    expect(await problemOf()).toEqual({
      date: '2026-11-03',
      kind: 'inserted',
      detail: '2026-11-03-copy.json is not a daily snapshot file (the archive holds only YYYY-MM-DD.json files)',
    });
  });

  it('a stray file reports after an earlier day problem, and a stray without a date comes first', async () => {
    await writeAll(chain);
    await writeFile(join(dir, '2026-11-08-copy.json'), '{}');
    await unlink(join(dir, '2026-11-04.json'));
    expect(await problemOf()).toMatchObject({ date: '2026-11-04', kind: 'removed' });
    await writeFile(join(dir, 'notes.txt'), 'hello');
    expect(await problemOf()).toMatchObject({ date: 'notes.txt', kind: 'inserted' });
  });

  it('a temp file left by a crashed write is ignored', async () => {
    await writeAll(chain);
    await writeFile(join(dir, `.2026-11-11.json.4242.0a1b2c3d4e5f.tmp`), '{"half": ');
    expect((await verifyArchive(dir)).ok).toBe(true);
  });

  it('a middle day replaced by a re-hashed snapshot → altered at that day', async () => {
    await writeAll(chain);
    const forged = sealed({ ...day(4), counts: { green: 1, red: 0, unknown: 0 }, timezone: 'Europe/Paris' });
    expect(forged.hash).not.toBe(day(4).hash);
    await overwrite('2026-11-05', `${JSON.stringify(forged, null, 2)}\n`);
    expect(await problemOf()).toMatchObject({ date: '2026-11-05', kind: 'altered' });
  });

  it('a forged last day with a correct hash and prevHash passes without a key but not with it', async () => {
    await writeAll(signedChain);
    const forged = sampleSnapshot('2026-11-11', [sampleControl({ id: 'tls-certificates', streak: 41 })], day(9).hash);
    expect(await writeArchivedSnapshot(dir, forged)).toBe('written');
    expect(await verifyArchive(dir)).toMatchObject({ ok: true, days: 11 });
    expect(await problemOf({ publicKeyPem })).toEqual({ date: '2026-11-11', kind: 'unsigned', detail: '2026-11-11.json carries no signature' });

    const byOtherKey = { ...forged, ...signHash(forged.hash, otherPrivateKeyPem) };
    await overwrite('2026-11-11', `${JSON.stringify(byOtherKey, null, 2)}\n`);
    expect(await problemOf({ publicKeyPem })).toEqual({
      date: '2026-11-11',
      kind: 'bad-signature',
      detail: `2026-11-11.json is signed by key ${byOtherKey.signedBy}, not ${fingerprint}`,
    });

    const relabelled = { ...forged, ...signHash(forged.hash, otherPrivateKeyPem), signedBy: fingerprint };
    await overwrite('2026-11-11', `${JSON.stringify(relabelled, null, 2)}\n`);
    const report = await verifyArchive(dir, { publicKeyPem });
    expect(report.problem).toEqual({
      date: '2026-11-11',
      kind: 'bad-signature',
      detail: `2026-11-11.json's signature does not verify with key ${fingerprint}`,
    });
  });

  it('an unsigned day in a signed archive → unsigned at that day', async () => {
    await writeAll([...signedChain.slice(0, 6), day(6), ...signedChain.slice(7)]);
    expect(await problemOf({ publicKeyPem })).toMatchObject({ date: '2026-11-07', kind: 'unsigned' });
  });

  it('a missing or empty directory does not verify', async () => {
    const missing = await verifyArchive(dir);
    expect(missing).toMatchObject({ ok: false, days: 0, problem: { date: '', kind: 'unreadable' } });
    expect(formatArchiveReport(missing)).toBe(`archive FAILED: unreadable — the archive directory ${dir} does not exist`);
    await mkdir(dir);
    expect(await verifyArchive(dir)).toMatchObject({ ok: false, days: 0, problem: { date: '', kind: 'removed' } });
  });
});

describe('checkSnapshotText', () => {
  const s = signedChain[1]!;
  const text = snapshotFileText(s);
  const unsignedText = snapshotFileText(day(1));
  const resealed = (over: Partial<Snapshot>) => {
    const { hash: _h, signature: _s, signedBy: _b, ...body } = { ...day(1), ...over };
    return snapshotFileText({ ...body, hash: snapshotHash(body) });
  };
  it.each([
    ['not JSON', unsignedText.slice(0, 40), {}, 'not-json'],
    ['not a snapshot', '{"schema":"vigil.snapshot/1"}', {}, 'schema'],
    ['stored under another day', unsignedText, { date: '2026-11-03' }, 'date'],
    ['edited without a new hash', unsignedText.replace('"green": 1', '"green": 2'), {}, 'hash'],
    ['prevHash without diff.since', resealed({ diff: { ...day(1).diff, since: null } }), {}, 'chain'],
    ['diff.since not before its day', resealed({ diff: { ...day(1).diff, since: '2026-11-02' } }), {}, 'chain'],
    ['reformatted (same content, other bytes)', JSON.stringify(JSON.parse(unsignedText)), {}, 'not-canonical'],
    ['unsigned with a key', unsignedText, { publicKeyPem }, 'unsigned'],
    ['signed by another key', snapshotFileText({ ...day(1), ...signHash(day(1).hash, otherPrivateKeyPem) }), { publicKeyPem }, 'other-key'],
    ['a signature over another hash', snapshotFileText({ ...day(1), signature: signHash(day(2).hash, privateKeyPem).signature }), { publicKeyPem }, 'bad-signature'],
  ] as const)('refuses a snapshot %s', (_name, t, expect_, reason) => {
    expect(checkSnapshotText(t, { date: '2026-11-02', ...expect_ })).toMatchObject({ ok: false, reason });
  });

  it('accepts the bytes vigil writes, with and without a key (the private key PEM derives the public one)', () => {
    expect(checkSnapshotText(unsignedText, { date: '2026-11-02' })).toEqual({ ok: true, snapshot: day(1) });
    expect(checkSnapshotText(text, { date: '2026-11-02', publicKeyPem })).toMatchObject({ ok: true, snapshot: { hash: s.hash } });
    expect(checkSnapshotText(text, { date: '2026-11-02', publicKeyPem: privateKeyPem })).toMatchObject({ ok: true });
  });
});

describe('rebuildInputs', () => {
  it('returns the verified snapshots in date order', async () => {
    await writeAll(chain);
    expect(await rebuildInputs(dir)).toEqual(chain);
  });

  it('throws ArchiveChainError carrying the report when the archive does not verify', async () => {
    await writeAll(chain);
    await unlink(join(dir, '2026-11-06.json'));
    const err = await rebuildInputs(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveChainError);
    expect(err).toMatchObject({ reason: 'not-verified', report: { ok: false, problem: { date: '2026-11-06', kind: 'removed' } } });
    expect((err as Error).message).toBe('archive FAILED at 2026-11-06: removed — no snapshot for 2026-11-06: the archive jumps from 2026-11-05 to 2026-11-07');
  });
});
