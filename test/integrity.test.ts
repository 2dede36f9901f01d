import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedConfig } from '../src/config/load.js';
import { startDaemon, type Daemon } from '../src/daemon.js';
import { EmailQueue } from '../src/notify/email-queue.js';
import { createMailer } from '../src/notify/email.js';
import { zonedInstant } from '../src/posture/days.js';
import { Snapshot, snapshotHash } from '../src/posture/snapshot-types.js';
import type { Finding } from '../src/probe/contract.js';
import { configuredUnits } from '../src/probe/units.js';
import { PROBES_QUEUE } from '../src/queue/connection.js';
import {
  ArchiveUnsafeFileError,
  formatArchiveReport,
  MAX_ARCHIVE_FILE_BYTES,
  readArchiveText,
  rebuildInputs,
  signHash,
  snapshotFileText,
  verifyArchive,
  writeArchivedSnapshot,
} from '../src/store/archive.js';
import { DayCloser, SnapshotIntegrityError, type SnapshotIntegrityReason, type SnapshotSource } from '../src/store/day-close.js';
import { StateStore } from '../src/store/state.js';
import { get, LogCapture, metricValue, testConfig, waitFor } from './helpers/daemon.js';
import { fakeBehaviour, fakeProbe } from './helpers/fake-probe.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';
import { startSmtpPeer, type SmtpPeer } from './helpers/smtp-peer.js';
import { sampleChain, sampleSnapshot } from './helpers/snapshots.js';

/**
 * Integrity end to end (issue 7 items 3, 4, 11): every snapshot read back from Redis or the
 * archive is re-checked before it is served, mailed, counted or chained to; day close adopts only
 * an archive file that is vigil's own; archive reads refuse symlinks, FIFOs and oversized files.
 */
const catalog = `controls:
  - id: fake-control
    title: Fake control (internal)
    public: true
    publicTitle: Fake public title
    publicDescription: Fake public description
    frameworks: { soc2: [CC6.7], iso27001: [A.8.24] }
    probes: [fake-check]
`;

let redis: TestRedisServer;
let client: Redis;
beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  client.disconnect();
  await redis.stop();
});

function keyFile(): { file: string; pem: string } {
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'vigil-key-')), 'archive.pem');
  writeFileSync(file, pem);
  return { file, pem };
}

interface Failure {
  date: string;
  source: SnapshotSource;
  reason: SnapshotIntegrityReason;
}

interface World {
  loaded: LoadedConfig;
  state: StateStore;
  closer: DayCloser;
  prefix: string;
  archiveDir: string;
  failures: Failure[];
  logs: LogCapture;
  runs: number;
}

function world(signingKeyFile?: string): World {
  const prefix = uniquePrefix('integrity');
  const archiveDir = mkdtempSync(path.join(tmpdir(), 'vigil-archive-'));
  const loaded = testConfig(
    `redis: { url: "${redis.url}", prefix: ${prefix} }\narchive: { dir: ${archiveDir}${signingKeyFile ? `, signingKey: { file: ${signingKeyFile} }` : ''} }\nprobes:\n  fake-check: { schedule: "0 10 * * *" }\n`,
    [fakeProbe],
    catalog,
  );
  const state = new StateStore(client, prefix, 'UTC');
  const logs = new LogCapture();
  const failures: Failure[] = [];
  const closer = new DayCloser({
    redis: client,
    prefix,
    loaded,
    units: configuredUnits(loaded),
    state,
    log: pino({ level: 'debug' }, logs),
    onIntegrityFailure: (f) => failures.push(f),
  });
  return { loaded, state, closer, prefix, archiveDir, failures, logs, runs: 0 };
}

const pass: Finding[] = [{ resource: 'r1', outcome: 'pass', message: 'fine' }];
const fail: Finding[] = [{ resource: 'r1', outcome: 'fail', message: 'broken: fix it' }];

/** Records a run of both targets at 10:00 UTC on `day`. */
async function measure(w: World, day: string, findings: Finding[], hhmm = '10:00'): Promise<void> {
  const at = zonedInstant(day, hhmm, 'UTC').toISOString();
  for (const target of ['alpha', 'beta']) {
    await w.state.record({ runId: `fake-check|${target}|${at}|${w.runs++}`, probe: 'fake-check', target, scheduledFor: at, startedAt: at, finishedAt: at, findings });
  }
}

/** Closes every day due at 00:15 UTC the day after `day`. */
function closeThrough(w: World, day: string) {
  const next = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
  return w.closer.closeDueDays(new Date(`${next}T00:15:00Z`));
}

/**
 * The stored text of a snapshot, made to say its control has been green for 45 days (enough for
 * the public feed). `rehash` recomputes the hash over the edited body; `signWith` signs it.
 */
function forged(text: string, opts: { rehash: boolean; signWith?: string; signature?: string }): string {
  const s = Snapshot.parse(JSON.parse(text));
  const { signature: _s, signedBy: _b, ...rest } = s;
  const controls = rest.controls.map((c) => ({
    ...c,
    verdict: 'green' as const,
    reasons: [],
    streak: 45,
    greenSince: new Date(Date.parse(`${s.date}T00:00:00Z`) - 44 * 86_400_000).toISOString().slice(0, 10),
    thirtyDayGreen: true,
    lastGreenDay: s.date,
    lastMeasuredAt: `${s.date}T03:00:00.000Z`,
  }));
  const edited = { ...rest, controls, counts: { green: controls.length, red: 0, unknown: 0 } };
  const hash = opts.rehash ? snapshotHash(edited) : s.hash;
  const signature = opts.signWith ? signHash(hash, opts.signWith) : opts.signature === undefined ? {} : { signature: opts.signature };
  return snapshotFileText(Snapshot.parse({ ...edited, hash, ...signature }));
}

async function rejection(p: Promise<unknown>): Promise<SnapshotIntegrityError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SnapshotIntegrityError);
  return err as SnapshotIntegrityError;
}

describe('day close adopts only its own archive file', () => {
  it('unsigned: a planted next-day file with a correct hash and prevHash is refused, counted and withheld until it is removed', async () => {
    const w = world();
    await w.closer.markFirstDay(new Date('2026-11-01T08:00:00Z'));
    await measure(w, '2026-11-01', pass);
    await closeThrough(w, '2026-11-01');
    const first = await w.closer.latest();
    // Someone who can write the archive drops in tomorrow's all-green file, chained correctly.
    const planted = sampleSnapshot('2026-11-02', first?.controls ?? [], first?.hash ?? null, {
      diff: { since: '2026-11-01', newReds: [], recoveries: [], reachedThirtyDays: [], leftFeed: [] },
    });
    await writeArchivedSnapshot(w.archiveDir, planted);
    // Without a key the chain cannot tell: this is why verify-archive proves order, not authorship.
    expect((await verifyArchive(w.archiveDir)).ok).toBe(true);
    await measure(w, '2026-11-02', fail);

    const err = await rejection(closeThrough(w, '2026-11-02'));
    expect(err).toMatchObject({ date: '2026-11-02', source: 'archive', reason: 'not-ours' });
    expect((await w.closer.latest())?.date).toBe('2026-11-01');
    expect(await client.get(`${w.prefix}:snapshot:2026-11-02`)).toBeNull();
    expect(w.failures).toEqual([{ date: '2026-11-02', source: 'archive', reason: 'not-ours' }]);
    const line = w.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'stored snapshot fails its integrity check: withheld');
    expect(line).toMatchObject({ level: 50, day: '2026-11-02', source: 'archive', reason: 'not-ours' });
    // Every retry refuses again: the day stays closed, the file untouched.
    await rejection(closeThrough(w, '2026-11-02'));
    expect((await w.closer.latest())?.date).toBe('2026-11-01');

    // The operator moves the planted file aside: the day closes from vigil's own ledger.
    unlinkSync(path.join(w.archiveDir, '2026-11-02.json'));
    expect((await closeThrough(w, '2026-11-02')).map((o) => o.result)).toEqual(['closed']);
    expect(await w.closer.latest()).toMatchObject({ date: '2026-11-02', counts: { green: 0, red: 1, unknown: 0 }, prevHash: first?.hash });
    expect((await verifyArchive(w.archiveDir)).ok).toBe(true);
  });

  it('a published day whose Redis copy expired and whose archive file is gone is an integrity failure: the chain does not restart', async () => {
    const w = world();
    await w.closer.markFirstDay(new Date('2026-11-01T08:00:00Z'));
    await measure(w, '2026-11-01', pass);
    await closeThrough(w, '2026-11-01');
    // Redis's copy expired (40-day TTL) and someone emptied the archive directory.
    await client.del(`${w.prefix}:snapshot:2026-11-01`);
    unlinkSync(path.join(w.archiveDir, '2026-11-01.json'));
    await measure(w, '2026-11-02', pass);
    const err = await rejection(closeThrough(w, '2026-11-02'));
    expect(err).toMatchObject({ date: '2026-11-01', source: 'archive', reason: 'not-archived' });
    expect(await client.get(`${w.prefix}:snapshot:2026-11-02`)).toBeNull();
    expect(w.failures).toContainEqual({ date: '2026-11-01', source: 'archive', reason: 'not-archived' });
  });

  it('a planted file for a later day (vigil never archives ahead of its record) is counted too, and nothing is published', async () => {
    const w = world();
    await w.closer.markFirstDay(new Date('2026-11-01T08:00:00Z'));
    await measure(w, '2026-11-01', pass);
    await closeThrough(w, '2026-11-01');
    const first = await w.closer.latest();
    await writeArchivedSnapshot(w.archiveDir, sampleSnapshot('2026-11-02', first?.controls ?? [], first?.hash ?? null));
    const ahead = (await readArchiveText(w.archiveDir, '2026-11-02')) ?? '';
    // Move the planted day forward: the archive now ends after a gap.
    writeFileSync(path.join(w.archiveDir, '2026-11-03.json'), ahead);
    unlinkSync(path.join(w.archiveDir, '2026-11-02.json'));
    await measure(w, '2026-11-02', pass);
    const err = await rejection(closeThrough(w, '2026-11-02'));
    expect(err).toMatchObject({ date: '2026-11-02', source: 'archive', reason: 'not-ours' });
    expect(w.failures).toEqual([{ date: '2026-11-02', source: 'archive', reason: 'not-ours' }]);
    expect((await w.closer.latest())?.date).toBe('2026-11-01');
  });

  it.each([
    ['unsigned', undefined],
    ['signed', keyFile().file],
  ])('%s: the file vigil wrote before crashing is still adopted, by byte equality with the rebuild alone', async (_mode, key) => {
    const w = world(key);
    await w.closer.markFirstDay(new Date('2026-11-01T08:00:00Z'));
    await measure(w, '2026-11-01', pass);
    await closeThrough(w, '2026-11-01');
    await measure(w, '2026-11-02', pass);
    await closeThrough(w, '2026-11-02');
    const archived = readFileSync(path.join(w.archiveDir, '2026-11-02.json'), 'utf8');
    // Undo the publication and forget what was built: only the rebuild can vouch for the file.
    await client.set(`${w.prefix}:snapshot-latest`, '2026-11-01');
    await client.del(`${w.prefix}:snapshot:2026-11-02`, `${w.prefix}:snapshot-pending:2026-11-02`);
    expect((await closeThrough(w, '2026-11-02')).map((o) => o.result)).toEqual(['closed']);
    expect(await w.closer.getText('2026-11-02')).toBe(archived);
    expect(w.failures).toEqual([]);
  });

  it('signed: a planted file signed by another key is refused', async () => {
    const w = world(keyFile().file);
    await w.closer.markFirstDay(new Date('2026-11-01T08:00:00Z'));
    await measure(w, '2026-11-01', pass);
    await closeThrough(w, '2026-11-01');
    const first = await w.closer.latest();
    const body = sampleSnapshot('2026-11-02', first?.controls ?? [], first?.hash ?? null, {
      diff: { since: '2026-11-01', newReds: [], recoveries: [], reachedThirtyDays: [], leftFeed: [] },
    });
    await writeArchivedSnapshot(w.archiveDir, { ...body, ...signHash(body.hash, keyFile().pem) });
    const err = await rejection(closeThrough(w, '2026-11-02'));
    expect(err).toMatchObject({ source: 'archive', reason: 'not-ours' });
    expect(w.failures).toEqual([{ date: '2026-11-02', source: 'archive', reason: 'not-ours' }]);
    expect((await w.closer.latest())?.date).toBe('2026-11-01');
  });
});

describe('snapshots read back from Redis are checked before use', () => {
  async function closedWorld(key?: string): Promise<{ w: World; text: string }> {
    const w = world(key);
    await w.closer.markFirstDay(new Date('2026-11-20T08:00:00Z'));
    await measure(w, '2026-11-20', pass);
    await closeThrough(w, '2026-11-20');
    const text = (await client.get(`${w.prefix}:snapshot:2026-11-20`)) ?? '';
    expect(text).toBe(readFileSync(path.join(w.archiveDir, '2026-11-20.json'), 'utf8'));
    return { w, text };
  }

  it('unsigned: an edited snapshot whose hash was not recomputed is withheld, counted, and not chained to', async () => {
    const { w, text } = await closedWorld();
    await client.set(`${w.prefix}:snapshot:2026-11-20`, forged(text, { rehash: false }));
    expect(await rejection(w.closer.latest())).toMatchObject({ date: '2026-11-20', source: 'redis', reason: 'hash' });
    await rejection(w.closer.getText('2026-11-20'));
    expect(w.failures).toEqual([{ date: '2026-11-20', source: 'redis', reason: 'hash' }]);
    // The next day's streak and prevHash would be built on it: day close refuses instead.
    await measure(w, '2026-11-21', pass);
    await rejection(closeThrough(w, '2026-11-21'));
    expect(await readArchiveText(w.archiveDir, '2026-11-21')).toBeUndefined();
    expect(await client.get(`${w.prefix}:snapshot-latest`)).toBe('2026-11-20');
  });

  it('unsigned: an edited snapshot with a recomputed hash is withheld, as the Redis copy is not the archived file (or has none)', async () => {
    const { w, text } = await closedWorld();
    await client.set(`${w.prefix}:snapshot:2026-11-20`, forged(text, { rehash: true }));
    expect(await rejection(w.closer.latest())).toMatchObject({ date: '2026-11-20', source: 'redis', reason: 'archive-mismatch' });
    // Both rewritten is beyond what an unsigned archive can tell; the archive file gone is not.
    await client.set(`${w.prefix}:snapshot:2026-11-20`, text);
    expect(await w.closer.getText('2026-11-20')).toBe(text);
    unlinkSync(path.join(w.archiveDir, '2026-11-20.json'));
    expect(await rejection(w.closer.getText('2026-11-20'))).toMatchObject({ source: 'redis', reason: 'not-archived' });
    expect(w.failures.map((f) => f.reason)).toEqual(['archive-mismatch', 'not-archived']);
  });

  it('unsigned: a snapshot with a correct hash but a duplicated key another parser would read first is withheld', async () => {
    const { w, text } = await closedWorld();
    // JSON.parse keeps the last "counts", so the hash still matches; a first-wins parser sees 9 green.
    const twoFaced = text.replace('{\n  "schema"', '{\n  "counts": { "green": 9, "red": 0, "unknown": 0 },\n  "schema"');
    await client.set(`${w.prefix}:snapshot:2026-11-20`, twoFaced);
    expect(await rejection(w.closer.getText('2026-11-20'))).toMatchObject({ source: 'redis', reason: 'not-canonical' });
  });

  it.each([
    ['no signature', (text: string) => forged(text, { rehash: true }), 'unsigned'],
    ['a signature by another key', (text: string) => forged(text, { rehash: true, signWith: keyFile().pem }), 'other-key'],
    ['a garbage signature', (text: string) => forged(text, { rehash: true, signature: Buffer.alloc(64, 7).toString('base64') }), 'bad-signature'],
  ] as const)('signed: an edited snapshot with a recomputed hash and %s is withheld', async (_name, make, reason) => {
    const { w, text } = await closedWorld(keyFile().file);
    await client.set(`${w.prefix}:snapshot:2026-11-20`, make(text));
    expect(await rejection(w.closer.latest())).toMatchObject({ date: '2026-11-20', source: 'redis', reason });
    expect(w.failures).toEqual([{ date: '2026-11-20', source: 'redis', reason }]);
  });

  describe('the daily email', () => {
    let smtp: SmtpPeer;
    beforeAll(async () => {
      smtp = await startSmtpPeer();
    });
    afterAll(async () => {
      await smtp.close();
    });

    it('signed: a forged Redis snapshot is not mailed; the job retries, and once the key is deleted the archived day is sent', async () => {
      const { w, text } = await closedWorld(keyFile().file);
      await client.set(`${w.prefix}:snapshot:2026-11-20`, forged(text, { rehash: true }));
      const q = new EmailQueue({
        connection: new Redis(redis.url, { maxRetriesPerRequest: null }),
        client,
        prefix: w.prefix,
        // The test peer speaks plain SMTP; TLS is covered in email.test.ts.
        mailer: createMailer({ smtpUrl: smtp.url, from: 'vigil@acme.test', to: ['security@acme.test'], organization: 'Acme', timeoutMs: 2_000, allowPlaintext: true }),
        retryHours: 12,
        backoffBaseMs: 200,
        snapshotText: (date) => w.closer.getText(date),
        log: pino({ level: 'silent' }),
      });
      try {
        await q.enqueue('2026-11-20');
        await waitFor(async () => ((await q.queue.getJob('email|2026-11-20'))?.attemptsMade ?? 0) >= 2, 10_000, 'two failed attempts');
        expect(smtp.messages.filter((m) => m.parsed.subject?.startsWith('vigil 2026-11-20'))).toHaveLength(0);
        expect(w.failures[0]).toEqual({ date: '2026-11-20', source: 'redis', reason: 'unsigned' });
        // The operator deletes the forged key: the day is read from the archive and mailed.
        await client.del(`${w.prefix}:snapshot:2026-11-20`);
        const sent = await waitFor(() => smtp.messages.find((m) => m.parsed.subject?.startsWith('vigil 2026-11-20')), 10_000, 'the email of 2026-11-20');
        expect(sent.parsed.subject).toBe('vigil 2026-11-20: 1 green');
        expect(sent.parsed.attachments[0]?.content.toString('utf8')).toBe(text);
      } finally {
        await q.close();
      }
    }, 30_000);
  });
});

describe('archive reads refuse symlinks, FIFOs and oversized files, without hanging', () => {
  const chain = sampleChain('2026-11-01', 4);

  async function archive(): Promise<string> {
    const dir = path.join(mkdtempSync(path.join(tmpdir(), 'vigil-archive-')), 'archive');
    for (const s of chain) await writeArchivedSnapshot(dir, s);
    return dir;
  }

  /** Replaces `<dir>/<date>.json` with a symlink to an identical copy outside the archive. */
  function symlinkDay(dir: string, date: string): string {
    const file = path.join(dir, `${date}.json`);
    const elsewhere = path.join(mkdtempSync(path.join(tmpdir(), 'vigil-elsewhere-')), `${date}.json`);
    copyFileSync(file, elsewhere);
    unlinkSync(file);
    symlinkSync(elsewhere, file);
    return file;
  }

  function fifoDay(dir: string, date: string): string {
    const file = path.join(dir, `${date}.json`);
    unlinkSync(file);
    execFileSync('mkfifo', [file]);
    return file;
  }

  it('readArchiveText refuses a symlink, a FIFO and a file over the cap, naming the file', async () => {
    const dir = await archive();
    const link = symlinkDay(dir, '2026-11-02');
    const fifo = fifoDay(dir, '2026-11-03');
    const big = path.join(dir, '2026-11-04.json');
    unlinkSync(big);
    writeFileSync(big, '');
    truncateSync(big, MAX_ARCHIVE_FILE_BYTES + 1);
    for (const [date, file, reason] of [
      ['2026-11-02', link, 'symlink'],
      ['2026-11-03', fifo, 'not-regular'],
      ['2026-11-04', big, 'too-large'],
    ] as const) {
      const err = await readArchiveText(dir, date).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ArchiveUnsafeFileError);
      expect(err).toMatchObject({ reason, file });
      expect((err as Error).message).toContain(file);
    }
    expect(await readArchiveText(dir, '2026-11-01')).toBe(snapshotFileText(chain[0]!));
  });

  it('verify-archive reports a symlinked day and a FIFO day as unreadable, and rebuild refuses them', async () => {
    const dir = await archive();
    symlinkDay(dir, '2026-11-02');
    const linked = await verifyArchive(dir);
    expect(linked).toMatchObject({ ok: false, problem: { date: '2026-11-02', kind: 'unreadable', detail: '2026-11-02.json is a symbolic link: refused, not read' } });
    await expect(rebuildInputs(dir)).rejects.toMatchObject({ name: 'ArchiveChainError', reason: 'not-verified' });

    const fifoDir = await archive();
    fifoDay(fifoDir, '2026-11-03');
    const started = Date.now();
    const report = await verifyArchive(fifoDir);
    expect(report.problem).toMatchObject({ date: '2026-11-03', kind: 'unreadable' });
    expect(report.problem?.detail).toContain('not a regular file');
    expect(Date.now() - started).toBeLessThan(3_000);
  }, 10_000);

  it('verify-archive without a key says it proves order, not authorship', async () => {
    expect(formatArchiveReport(await verifyArchive(await archive()))).toBe(
      'archive OK: 4 days, 2026-11-01 … 2026-11-04, hash chain intact (no public key given: this proves the order of the days, not who wrote them; pass --public-key to check authorship)',
    );
  });

  it('a past day served from the archive that is a symlink or another day\'s file is withheld, and day close does not hang on a FIFO', async () => {
    const w = world();
    await w.closer.markFirstDay(new Date('2026-11-01T08:00:00Z'));
    await measure(w, '2026-11-01', pass);
    await measure(w, '2026-11-02', pass);
    await closeThrough(w, '2026-11-02');
    // Past Redis retention: the days are read from the archive.
    await client.del(`${w.prefix}:snapshot:2026-11-01`, `${w.prefix}:snapshot:2026-11-02`);
    symlinkDay(w.archiveDir, '2026-11-01');
    expect(await rejection(w.closer.getText('2026-11-01'))).toMatchObject({ date: '2026-11-01', source: 'archive', reason: 'symlink' });
    // A regular file holding another day's snapshot.
    unlinkSync(path.join(w.archiveDir, '2026-11-01.json'));
    copyFileSync(path.join(w.archiveDir, '2026-11-02.json'), path.join(w.archiveDir, '2026-11-01.json'));
    expect(await rejection(w.closer.getText('2026-11-01'))).toMatchObject({ source: 'archive', reason: 'date' });

    // A FIFO where the next day is to be archived.
    execFileSync('mkfifo', [path.join(w.archiveDir, '2026-11-03.json')]);
    await measure(w, '2026-11-03', pass);
    // The streak base (2026-11-02) comes from the archive too, and is intact.
    const err = await rejection(closeThrough(w, '2026-11-03'));
    expect(err).toMatchObject({ date: '2026-11-03', source: 'archive', reason: 'not-regular' });
    expect(w.failures.map((f) => f.reason)).toEqual(['symlink', 'date', 'not-regular']);
  }, 10_000);
});

describe('the daemon withholds what fails its check', () => {
  const token = 'integrity-admin-token-0123456789';
  let clock = new Date('2026-11-21T10:00:00Z');
  let signedDaemon: Daemon | undefined;
  let signedLogs: LogCapture;
  let signed: LoadedConfig;

  function daemonConfig(key?: string): LoadedConfig {
    return testConfig(
      `redis: { url: "${redis.url}", prefix: ${uniquePrefix('integrity-daemon')} }
http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0, token: { env: ADMIN } } }
trust: { organization: Acme }
${key ? `archive: { signingKey: { file: ${key} } }\n` : ''}probes:
  fake-check: { schedule: "0 3 * * *" }
`,
      [fakeProbe],
      catalog,
      { ADMIN: token },
    );
  }

  /** Closes 2026-11-20 with a closer of its own, as another replica would, before the daemon starts. */
  async function closeFirstDay(loaded: LoadedConfig): Promise<string> {
    const prefix = loaded.config.redis.prefix;
    const closer = new DayCloser({ redis: client, prefix, loaded, units: configuredUnits(loaded), state: new StateStore(client, prefix), log: pino({ level: 'silent' }) });
    await closer.markFirstDay(new Date('2026-11-20T08:00:00Z'));
    await closer.closeDueDays(new Date('2026-11-21T00:15:00Z'));
    return (await client.get(`${prefix}:snapshot:2026-11-20`)) ?? '';
  }

  beforeAll(async () => {
    fakeBehaviour.set('alpha', async () => pass);
    fakeBehaviour.set('beta', async () => pass);
    signed = daemonConfig(keyFile().file);
    const text = await closeFirstDay(signed);
    // Whoever can write Redis rewrites the day as 45 days green, hash recomputed, no signature.
    await client.set(`${signed.config.redis.prefix}:snapshot:2026-11-20`, forged(text, { rehash: true }));
    signedLogs = new LogCapture();
    signedDaemon = await startDaemon({ loaded: signed, log: pino({ level: 'debug' }, signedLogs), now: () => clock });
  });
  afterAll(async () => {
    await signedDaemon?.stop();
  });

  it('signed: a forged Redis snapshot is not on the feed, the page, the API or the metrics, and is counted', async () => {
    const d = signedDaemon!;
    const feed = await get(`${d.publicUrl}/trust/feed.json`);
    expect(feed.status).toBe(200);
    expect(feed.json()).toMatchObject({ asOf: null, controls: [] });
    const page = await get(`${d.publicUrl}/trust`);
    expect(page.text).not.toContain('Fake public title');

    for (const url of [`${d.adminUrl}/api/snapshots/latest`, `${d.adminUrl}/api/snapshots/2026-11-20`, `${d.adminUrl}/api/snapshots/2026-11-20?format=html`]) {
      const res = await get(url, token);
      expect(res.status, url).toBe(500);
      expect(res.json()).toEqual({ error: 'the stored snapshot of 2026-11-20 (redis) fails its integrity check (unsigned) and is withheld; see the vigil log' });
    }
    const metrics = (await get(`${d.adminUrl}/metrics`, token)).text;
    expect(metricValue(metrics, 'vigil_snapshot_integrity_failures_total{source="redis"}')).toBeGreaterThanOrEqual(1);
    expect(metricValue(metrics, 'vigil_snapshot_integrity_failures_total{source="archive"}')).toBe(0);
    expect(metricValue(metrics, 'vigil_control_consecutive_green_days{control="fake-control"}')).toBeUndefined();
    expect(metricValue(metrics, 'vigil_trust_feed_controls')).toBe(0);
    expect(signedLogs.text).toContain('"day":"2026-11-20","source":"redis","reason":"unsigned"');
    // Signed: no warning about authorship.
    expect(signedLogs.text).not.toContain('no archive.signingKey configured');

    // The operator deletes the forged key: the day is served from the archive again, as archived.
    await client.del(`${signed.config.redis.prefix}:snapshot:2026-11-20`);
    const res = await get(`${d.adminUrl}/api/snapshots/2026-11-20`, token);
    expect(res.status).toBe(200);
    expect(res.text).toBe(readFileSync(path.join(signed.archiveDir, '2026-11-20.json'), 'utf8'));
    expect((await get(`${d.publicUrl}/trust/feed.json`)).json()).toMatchObject({ asOf: '2026-11-20', controls: [] });
  });

  it('unsigned: warns at start that the archive proves order, not authorship, louder once a second replica works the queue; a symlinked or FIFO past day answers 500', async () => {
    const loaded = daemonConfig();
    await closeFirstDay(loaded);
    const logs = new LogCapture();
    clock = new Date('2026-11-21T10:00:00Z');
    const d = await startDaemon({ loaded, log: pino({ level: 'debug' }, logs), now: () => clock });
    const otherConn = new Redis(redis.url, { maxRetriesPerRequest: null });
    const other = new Worker(PROBES_QUEUE, async () => undefined, { connection: otherConn, prefix: loaded.config.redis.prefix, autorun: false });
    try {
      expect(logs.text).toContain('no archive.signingKey configured: the archive proves the order of the days, not who wrote them');
      await d.tick();
      expect(logs.text).not.toContain('several replicas share archive.dir');
      void other.run();
      await waitFor(() => other.isRunning(), 5_000, 'the second worker');
      await waitFor(async () => {
        await d.tick();
        return logs.text.includes('several replicas share archive.dir and no archive.signingKey is configured');
      }, 10_000, 'the shared-archive error');

      // Past Redis retention, the day is read from the archive: a symlink there is refused.
      await client.del(`${loaded.config.redis.prefix}:snapshot:2026-11-20`);
      const file = path.join(loaded.archiveDir, '2026-11-20.json');
      const copy = path.join(mkdtempSync(path.join(tmpdir(), 'vigil-elsewhere-')), 'day.json');
      copyFileSync(file, copy);
      unlinkSync(file);
      symlinkSync(copy, file);
      const linked = await get(`${d.adminUrl}/api/snapshots/2026-11-20`, token);
      expect(linked.status).toBe(500);
      expect(linked.json()).toEqual({ error: 'the stored snapshot of 2026-11-20 (archive) fails its integrity check (symlink) and is withheld; see the vigil log' });
      unlinkSync(file);
      execFileSync('mkfifo', [file]);
      const started = Date.now();
      const fifo = await get(`${d.adminUrl}/api/snapshots/2026-11-20`, token);
      expect(fifo.status).toBe(500);
      expect(fifo.json()).toMatchObject({ error: expect.stringContaining('(not-regular)') });
      expect(Date.now() - started).toBeLessThan(3_000);
      const metrics = (await get(`${d.adminUrl}/metrics`, token)).text;
      expect(metricValue(metrics, 'vigil_snapshot_integrity_failures_total{source="archive"}')).toBe(2);
    } finally {
      await other.close();
      otherConn.disconnect();
      await d.stop();
    }
  }, 30_000);
});
