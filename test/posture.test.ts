import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import type { LoadedConfig } from '../src/config/load.js';
import { EmailQueue } from '../src/notify/email-queue.js';
import { createMailer } from '../src/notify/email.js';
import { addDays, zonedInstant } from '../src/posture/days.js';
import { buildFeed } from '../src/posture/feed.js';
import type { Finding, ProbeResult } from '../src/probe/contract.js';
import { configuredUnits } from '../src/probe/units.js';
import { verifyArchive, writeArchivedSnapshot } from '../src/store/archive.js';
import { sampleSnapshot } from './helpers/snapshots.js';
import { DayCloser } from '../src/store/day-close.js';
import { StateStore } from '../src/store/state.js';
import { testConfig, waitFor } from './helpers/daemon.js';
import { fakeProbe } from './helpers/fake-probe.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';
import { startSmtpPeer, type SmtpPeer } from './helpers/smtp-peer.js';

/**
 * Days, streaks, snapshots and the feed with an injected clock: 45 simulated days run in
 * seconds against a real redis-server, through the real recorder store and day closer.
 */
const log = pino({ level: 'silent' });
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

type DayPlan = 'green' | 'red' | 'unknown' | 'none';

interface World {
  loaded: LoadedConfig;
  state: StateStore;
  closer: DayCloser;
  tz: string;
  prefix: string;
  archiveDir: string;
  runs: number;
}

function world(tz: string, extra = '', signingKeyFile?: string): World {
  const prefix = uniquePrefix('posture');
  const archiveDir = mkdtempSync(path.join(tmpdir(), 'vigil-archive-'));
  const loaded = testConfig(
    `timezone: ${tz}\nredis: { url: "${redis.url}", prefix: ${prefix} }\narchive: { dir: ${archiveDir}${signingKeyFile ? `, signingKey: { file: ${signingKeyFile} }` : ''} }\nprobes:\n  fake-check: { schedule: "0 9,23 * * *" }\n${extra}`,
    [fakeProbe],
    catalog,
  );
  const state = new StateStore(client, prefix, tz);
  const closer = new DayCloser({ redis: client, prefix, loaded, units: configuredUnits(loaded), state, log });
  return { loaded, state, closer, tz, prefix, archiveDir, runs: 0 };
}

const pass: Finding[] = [{ resource: 'r1', outcome: 'pass', message: 'fine' }];
const fail: Finding[] = [{ resource: 'db.internal:5432', outcome: 'fail', message: 'certificate expired: renew it' }];

/** Records one run of `target` scheduled at local `hhmm` on `day`. */
async function record(w: World, day: string, hhmm: string, target: string, findings: Finding[], error?: ProbeResult['error']): Promise<void> {
  const at = zonedInstant(day, hhmm, w.tz).toISOString();
  await w.state.record({ runId: `fake-check|${target}|${Date.parse(at)}|${w.runs++}`, probe: 'fake-check', target, scheduledFor: at, startedAt: at, finishedAt: at, findings, ...(error ? { error } : {}) });
}

/** Lives one day according to the plan, then closes it at 00:15 the next morning. */
async function live(w: World, day: string, plan: DayPlan): Promise<void> {
  if (plan !== 'none') {
    for (const hhmm of ['09:00', '23:30']) {
      await record(w, day, hhmm, 'alpha', plan === 'red' && hhmm === '23:30' ? fail : pass);
      if (plan === 'unknown' && hhmm === '09:00') await record(w, day, hhmm, 'beta', [], { class: 'TransientError', message: '503' });
      else await record(w, day, hhmm, 'beta', pass);
    }
  }
  await w.closer.closeDueDays(zonedInstant(addDays(day, 1), '00:15', w.tz));
}

async function feedOf(w: World) {
  return buildFeed(await w.closer.latest(), { minGreenDays: 30, organization: 'Acme' });
}

describe('45 simulated days: streaks and the trust feed', () => {
  it.each(['UTC', 'Europe/Berlin'])('in %s (a DST change inside the run neither adds nor drops a day)', async (tz) => {
    const w = world(tz);
    // 2026-10-01 … 2026-11-14 contains Berlin's fall-back day, 2026-10-25 (25 hours long).
    const first = '2026-10-01';
    await w.closer.markFirstDay(zonedInstant(first, '08:00', tz));
    const plan = (i: number): DayPlan => (i === 31 ? 'red' : i === 41 ? 'none' : i === 44 ? 'unknown' : 'green');
    for (let i = 1; i <= 45; i++) {
      const day = addDays(first, i - 1);
      await live(w, day, plan(i));
      const latest = await w.closer.latest();
      expect(latest?.date).toBe(day);
      const control = latest?.controls[0];
      const feed = await feedOf(w);
      if (i === 29) {
        expect(control?.streak).toBe(29);
        expect(feed.controls).toEqual([]);
      }
      if (i === 30) {
        expect(feed.controls).toHaveLength(1);
        expect(feed.controls[0]).toMatchObject({ id: 'fake-control', greenSince: first, consecutiveGreenDays: 30, title: 'Fake public title' });
        expect(latest?.diff.reachedThirtyDays).toEqual(['fake-control']);
      }
      if (i === 31) {
        expect(control).toMatchObject({ verdict: 'red', streak: 0, greenSince: null });
        expect(control?.failing).toEqual([{ probe: 'fake-check', target: 'alpha', resource: 'db.internal:5432', message: 'certificate expired: renew it' }]);
        expect(feed.controls).toEqual([]);
        expect(latest?.diff).toMatchObject({ newReds: ['fake-control'], leftFeed: ['fake-control'] });
      }
      if (i === 40) expect(control).toMatchObject({ streak: 9, greenSince: addDays(first, 31) });
      if (i === 41) expect(control).toMatchObject({ verdict: 'unknown', streak: 0, reasons: ['fake-check/alpha: not measured that day', 'fake-check/beta: not measured that day'] });
      if (i === 43) expect(control?.streak).toBe(2);
      if (i === 44) expect(control).toMatchObject({ verdict: 'unknown', streak: 0 });
      if (i === 45) expect(control).toMatchObject({ verdict: 'green', streak: 1, greenSince: addDays(first, 44), lastGreenDay: addDays(first, 44) });
    }
    // One file per calendar day, consecutive, chained.
    const files = readdirSync(w.archiveDir).filter((f) => f.endsWith('.json')).sort();
    expect(files).toHaveLength(45);
    expect(files[0]).toBe('2026-10-01.json');
    expect(files.at(-1)).toBe('2026-11-14.json');
    expect(files).toContain('2026-10-25.json');
    expect((await verifyArchive(w.archiveDir)).ok).toBe(true);
  }, 60_000);

  it('a run at 23:30 on the 25-hour day counts for that day, and a late result never for two days', async () => {
    const w = world('Europe/Berlin');
    await w.closer.markFirstDay(zonedInstant('2026-10-24', '08:00', w.tz));
    await live(w, '2026-10-24', 'green');
    // The fall-back day: 23:30 local is 22:30Z, after the repeated hour.
    await record(w, '2026-10-25', '00:30', 'alpha', pass);
    await record(w, '2026-10-25', '00:30', 'beta', pass);
    await record(w, '2026-10-25', '23:30', 'alpha', pass);
    await record(w, '2026-10-25', '23:30', 'beta', pass);
    await w.closer.closeDueDays(zonedInstant('2026-10-26', '00:15', w.tz));
    const closed = await w.closer.get('2026-10-25');
    expect(closed?.probeHealth.map((h) => h.runs)).toEqual([2, 2]);
    // A 23:45 run of the 26th that finishes after that day closed: kept for the 26th, never the 27th.
    await record(w, '2026-10-26', '09:00', 'alpha', pass);
    await record(w, '2026-10-26', '09:00', 'beta', pass);
    await w.closer.closeDueDays(zonedInstant('2026-10-27', '00:15', w.tz));
    const hash26 = (await w.closer.get('2026-10-26'))?.hash;
    await record(w, '2026-10-26', '23:45', 'alpha', fail);
    expect((await w.state.dayLedger('2026-10-27')).size).toBe(0);
    expect((await w.closer.get('2026-10-26'))?.hash).toBe(hash26);
  });

  it('catches up every day missed while down, in order, none of them green', async () => {
    const w = world('UTC');
    await w.closer.markFirstDay(new Date('2026-11-01T08:00:00Z'));
    await live(w, '2026-11-01', 'green');
    const outcomes = await w.closer.closeDueDays(new Date('2026-11-05T12:00:00Z'));
    expect(outcomes.map((o) => [o.day, o.result])).toEqual([
      ['2026-11-02', 'closed'],
      ['2026-11-03', 'closed'],
      ['2026-11-04', 'closed'],
    ]);
    const latest = await w.closer.latest();
    expect(latest).toMatchObject({ date: '2026-11-04', counts: { green: 0, red: 0, unknown: 1 } });
    expect(latest?.controls[0]?.streak).toBe(0);
    expect(await w.closer.closeDueDays(new Date('2026-11-05T12:00:00Z'))).toEqual([]);
  });

  it('older snapshots expire from Redis and are read back from the archive', async () => {
    const w = world('UTC');
    await w.closer.markFirstDay(new Date('2026-11-01T08:00:00Z'));
    await live(w, '2026-11-01', 'green');
    await live(w, '2026-11-02', 'green');
    expect(await client.ttl(`${w.prefix}:snapshot:2026-11-01`)).toBeGreaterThan(30 * 86_400);
    await client.del(`${w.prefix}:snapshot:2026-11-01`, `${w.prefix}:snapshot:2026-11-02`);
    expect(await w.closer.getText('2026-11-01')).toBe(readFileSync(path.join(w.archiveDir, '2026-11-01.json'), 'utf8'));
    // The streak base comes back from the archive too.
    await live(w, '2026-11-03', 'green');
    expect((await w.closer.latest())?.controls[0]?.streak).toBe(3);
    expect(await w.closer.getText('2026-11-04')).toBeUndefined();
  });

  it('two replicas closing at the same moment close each day once', async () => {
    const w = world('UTC');
    const otherRedis = new Redis(redis.url);
    const other = new DayCloser({ redis: otherRedis, prefix: w.prefix, loaded: w.loaded, units: configuredUnits(w.loaded), state: w.state, log });
    await w.closer.markFirstDay(new Date('2026-11-01T08:00:00Z'));
    for (const day of ['2026-11-01', '2026-11-02', '2026-11-03']) {
      for (const hhmm of ['09:00', '23:00']) {
        await record(w, day, hhmm, 'alpha', pass);
        await record(w, day, hhmm, 'beta', pass);
      }
    }
    const now = new Date('2026-11-04T00:15:00Z');
    const all = (await Promise.all([w.closer.closeDueDays(now), other.closeDueDays(now), w.closer.closeDueDays(now)])).flat();
    // Whoever was busy retries on its next tick.
    await other.closeDueDays(now);
    const closed = all.filter((o) => o.result === 'closed').map((o) => o.day);
    expect(new Set(closed).size).toBe(closed.length);
    expect((await w.closer.latest())?.date).toBe('2026-11-03');
    expect((await w.closer.latest())?.controls[0]?.streak).toBe(3);
    expect(readdirSync(w.archiveDir).filter((f) => f.endsWith('.json'))).toHaveLength(3);
    otherRedis.disconnect();
  });

  it('publishes the archived file when a closer crashed between archiving and publishing', async () => {
    const w = world('UTC');
    await w.closer.markFirstDay(new Date('2026-11-01T08:00:00Z'));
    await live(w, '2026-11-01', 'green');
    await record(w, '2026-11-02', '10:00', 'alpha', pass);
    await record(w, '2026-11-02', '10:00', 'beta', pass);
    await w.closer.closeDueDays(new Date('2026-11-03T00:15:00Z'));
    const archived = readFileSync(path.join(w.archiveDir, '2026-11-02.json'), 'utf8');
    // Undo the publication only, as if the process died right after writing the file.
    await client.set(`${w.prefix}:snapshot-latest`, '2026-11-01');
    await client.del(`${w.prefix}:snapshot:2026-11-02`);
    // A result arriving meanwhile must not fork the record: the archived file is what gets published.
    await record(w, '2026-11-02', '11:00', 'alpha', fail);
    const outcomes = await w.closer.closeDueDays(new Date('2026-11-03T00:20:00Z'));
    expect(outcomes.map((o) => o.result)).toEqual(['closed']);
    expect(await w.closer.getText('2026-11-02')).toBe(archived);
    expect((await verifyArchive(w.archiveDir)).ok).toBe(true);
  });

  it('with a signing key, an archived file it did not sign is never published', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const keyFile = path.join(mkdtempSync(path.join(tmpdir(), 'vigil-key-')), 'archive.pem');
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const w = world('UTC', '', keyFile);
    await w.closer.markFirstDay(new Date('2026-11-01T08:00:00Z'));
    await live(w, '2026-11-01', 'green');
    const first = await w.closer.latest();
    expect(first?.signature).toBeDefined();
    // Someone with write access drops in tomorrow's all-green file, hash and prevHash correct, unsigned.
    const forged = sampleSnapshot('2026-11-02', first?.controls ?? [], first?.hash ?? null);
    await writeArchivedSnapshot(w.archiveDir, forged);
    await record(w, '2026-11-02', '10:00', 'alpha', fail);
    await expect(w.closer.closeDueDays(new Date('2026-11-03T00:15:00Z'))).rejects.toThrow();
    expect((await w.closer.latest())?.date).toBe('2026-11-01');
  });

  it('vigil rebuild after FLUSHALL restores the same streaks, and snapshot --date is idempotent', async () => {
    const w = world('UTC');
    await w.closer.markFirstDay(new Date('2026-11-01T08:00:00Z'));
    for (let i = 0; i < 5; i++) await live(w, addDays('2026-11-01', i), i === 1 ? 'red' : 'green');
    const before = await w.closer.latest();
    expect(before?.controls[0]?.streak).toBe(3);

    let out = '';
    let err = '';
    const io = { out: (t: string) => (out += t), err: (t: string) => (err += t), env: {}, registry: [fakeProbe] };
    expect(await main(["snapshot", "--config", w.loaded.file, "--date", "2026-11-05"], io), err).toBe(0);
    expect(out).toContain(`2026-11-05: already published — 1 green, 0 red, 0 unknown; sha256 ${before?.hash}`);

    await redis.flushAll();
    expect(await w.closer.latest()).toBeUndefined();
    out = '';
    expect(await main(['rebuild', '--config', w.loaded.file], io)).toBe(0);
    expect(err).toBe('');
    expect(out).toContain('restored 5 days (2026-11-01 … 2026-11-05)');
    const after = await w.closer.latest();
    expect(after?.hash).toBe(before?.hash);
    expect(after?.controls.map((c) => [c.id, c.streak, c.greenSince])).toEqual([['fake-control', 3, '2026-11-03']]);
    // History continues: the next day extends the restored streak.
    await live(w, '2026-11-06', 'green');
    expect((await w.closer.latest())?.controls[0]?.streak).toBe(4);
    expect(await main(['rebuild', '--config', w.loaded.file], io)).toBe(1);
    expect(err).toContain('already holds published snapshots');
    expect(await main(['verify-archive', w.archiveDir], io)).toBe(0);
    expect(out).toContain('archive OK: 6 days');
    // Days cut from the end are caught against a date the auditor holds.
    expect(await main(['verify-archive', w.archiveDir, '--through', '2026-11-08'], io)).toBe(1);
    expect(err).toContain('archive FAILED at 2026-11-07: removed — the archive ends at 2026-11-06, expected it to run through 2026-11-08');
    // The restored days' emails were sent when they closed: none is sent again.
    expect(await client.exists(`${w.prefix}:email-sent:2026-11-05`)).toBe(1);
  });
});

describe('the daily email', () => {
  let smtp: SmtpPeer;
  beforeAll(async () => {
    smtp = await startSmtpPeer();
  });
  afterAll(async () => {
    await smtp.close();
  });

  function emailQueue(w: World): EmailQueue {
    return new EmailQueue({
      connection: new Redis(redis.url, { maxRetriesPerRequest: null }),
      client,
      prefix: w.prefix,
      // The test peer speaks plain SMTP; TLS is covered in email.test.ts.
      mailer: createMailer({ smtpUrl: smtp.url, from: 'vigil@acme.test', to: ['security@acme.test'], organization: 'Acme', timeoutMs: 2_000, allowPlaintext: true }),
      retryHours: 12,
      backoffBaseMs: 200,
      snapshotText: (date) => w.closer.getText(date),
      log,
    });
  }

  it('two replicas send one email per day; an SMTP outage delays it, exactly one arrives later, attachment = archive', async () => {
    const w = world('UTC');
    const a = emailQueue(w);
    const b = emailQueue(w);
    try {
      await w.closer.markFirstDay(new Date('2026-11-20T08:00:00Z'));
      await live(w, '2026-11-20', 'green');
      await Promise.all([a.enqueue('2026-11-20'), b.enqueue('2026-11-20'), a.enqueue('2026-11-20')]);
      const first = await waitFor(() => smtp.messages.find((m) => m.parsed.subject?.startsWith('vigil 2026-11-20')), 10_000, 'the email of 2026-11-20');
      expect(first.parsed.subject).toBe('vigil 2026-11-20: 1 green');
      const attachment = first.parsed.attachments[0];
      expect(attachment?.filename).toBe('vigil-snapshot-2026-11-20.json');
      expect(attachment?.content.toString('utf8')).toBe(readFileSync(path.join(w.archiveDir, '2026-11-20.json'), 'utf8'));

      // The SMTP server goes away before the next day's email.
      await smtp.stop();
      await live(w, '2026-11-21', 'red');
      await Promise.all([a.enqueue('2026-11-21'), b.enqueue('2026-11-21')]);
      await new Promise((r) => setTimeout(r, 1_500));
      expect(smtp.messages.filter((m) => m.parsed.subject?.startsWith('vigil 2026-11-21'))).toHaveLength(0);
      // The snapshot was published regardless.
      expect((await w.closer.latest())?.date).toBe('2026-11-21');
      await smtp.start();
      const second = await waitFor(() => smtp.messages.find((m) => m.parsed.subject?.startsWith('vigil 2026-11-21')), 15_000, 'the delayed email');
      expect(second.parsed.subject).toBe('vigil 2026-11-21: 0 green · 1 red (new)');
      await new Promise((r) => setTimeout(r, 1_000));
      expect(smtp.messages.filter((m) => m.parsed.subject?.startsWith('vigil 2026-11-20'))).toHaveLength(1);
      expect(smtp.messages.filter((m) => m.parsed.subject?.startsWith('vigil 2026-11-21'))).toHaveLength(1);
      expect(Object.fromEntries(await a.counts())).toEqual({ sent: 2 });
    } finally {
      await a.close();
      await b.close();
    }
  }, 40_000);

  it('a permanently rejected message is counted and not retried', async () => {
    const w = world('UTC');
    const q = emailQueue(w);
    try {
      await w.closer.markFirstDay(new Date('2026-11-20T08:00:00Z'));
      await live(w, '2026-11-20', 'green');
      const before = smtp.messages.length;
      smtp.rejectNext(1, 550, 'mailbox unavailable');
      await q.enqueue('2026-11-20');
      await waitFor(async () => (await q.counts()).get('rejected') === 1, 10_000, 'rejected count');
      await new Promise((r) => setTimeout(r, 800));
      expect(smtp.messages.length).toBe(before);
      expect((await q.queue.getJobCounts('failed')).failed).toBe(1);
    } finally {
      await q.close();
    }
  });
});
