import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import path from 'node:path';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import { enqueueSnapshotEmail, EMAIL_QUEUE, type EmailJobData } from '../notify/email-queue.js';
import { addDays, dayOf, lastClosableDay } from '../posture/days.js';
import { configuredUnits } from '../probe/units.js';
import { externalRedisSettings, keyPrefix, openRedis, pingAtStart, type RedisLocation } from '../queue/connection.js';
import { checkSnapshotText, formatArchiveReport, publicKeyFromPrivate, readArchiveText, rebuildInputs, verifyArchive } from '../store/archive.js';
import { DayCloser, SnapshotIntegrityError } from '../store/day-close.js';
import { EmbeddedRedisAlreadyRunningError, startEmbeddedRedis } from '../store/embedded-redis.js';
import { StateStore } from '../store/state.js';
import type { CliIo } from './main.js';
import { calendarDateProblem } from './dates.js';

/**
 * Redis for a one-shot command: `redis.url` when set; otherwise the running daemon's embedded
 * server (its unix socket), or a temporary embedded server on the same data when none runs.
 */
async function openStore(loaded: LoadedConfig, log: Logger): Promise<{ client: Redis; close(): Promise<void> }> {
  const { config } = loaded;
  let location: RedisLocation;
  let stopEmbedded: (() => Promise<void>) | undefined;
  // url, sentinels or cluster (with ACL user and TLS), exactly as the daemon connects; else the embedded server.
  const external = externalRedisSettings(config.redis, loaded.secrets.redisPassword, loaded.dir);
  if (external) location = external.location;
  else {
    try {
      const embedded = await startEmbeddedRedis({ dataDir: path.resolve(config.dataDir), log });
      location = embedded.connection;
      stopEmbedded = () => embedded.stop();
    } catch (err) {
      if (!(err instanceof EmbeddedRedisAlreadyRunningError)) throw err;
      // The running daemon's socket: under dataDir, or the private directory it recorded for a long dataDir.
      location = err.connection;
    }
  }
  const client = openRedis(external ?? { location, password: loaded.secrets.redisPassword }, 'worker', 'vigil-cli');
  try {
    // Bounded: a 'worker' client retries forever, so an unreachable Redis would otherwise hang the command.
    await pingAtStart(client, location);
  } catch (err) {
    client.disconnect();
    await stopEmbedded?.();
    throw err;
  }
  return {
    client,
    close: async () => {
      client.disconnect();
      await stopEmbedded?.();
    },
  };
}

function closerFor(loaded: LoadedConfig, client: Redis, log: Logger, emailQueue: Queue<EmailJobData> | undefined): DayCloser {
  const prefix = keyPrefix(loaded.config.redis);
  return new DayCloser({
    redis: client,
    prefix,
    loaded,
    units: configuredUnits(loaded),
    state: new StateStore(client, prefix, loaded.config.timezone),
    log,
    onPublished: async (snapshot) => {
      if (emailQueue && loaded.config.email) await enqueueSnapshotEmail(emailQueue, client, prefix, snapshot.date, loaded.config.email.retryHours);
    },
  });
}

/** `vigil snapshot [--date D]`: closes and publishes D (default: the last day that may close), and any unclosed day before it. Idempotent. */
export async function snapshotCommand(loaded: LoadedConfig, date: string | undefined, io: CliIo, log: Logger, now = new Date()): Promise<number> {
  const { timezone, dayClose } = loaded.config;
  const last = lastClosableDay(now, timezone, dayClose.at);
  const day = date ?? last;
  const dateProblem = calendarDateProblem('--date', day);
  if (dateProblem) {
    io.err(`vigil: ${dateProblem}\n`);
    return 64;
  }
  if (day > last) {
    io.err(`vigil: ${day} cannot be closed yet: a day closes at ${dayClose.at} ${timezone} the day after (today is ${dayOf(now, timezone)})\n`);
    return 1;
  }
  const store = await openStore(loaded, log);
  const emailQueue = loaded.config.email ? new Queue<EmailJobData>(EMAIL_QUEUE, { connection: store.client, prefix: keyPrefix(loaded.config.redis) }) : undefined;
  try {
    const closer = closerFor(loaded, store.client, log, emailQueue);
    await closer.markFirstDay(now);
    const outcomes = await closer.closeDueDays(now, day);
    for (const o of outcomes) {
      if (o.result === 'busy') {
        io.err(`vigil: another vigil is closing ${o.day} right now: try again in a minute\n`);
        return 1;
      }
    }
    const snapshot = await closer.get(day);
    if (!snapshot) {
      io.err(`vigil: no snapshot for ${day}: the record starts later (first day ${await store.client.get(`${keyPrefix(loaded.config.redis)}:first-day`)})\n`);
      return 1;
    }
    const fresh = outcomes.some((o) => o.day === day && o.result === 'closed');
    io.out(`${day}: ${fresh ? 'published' : 'already published'} — ${snapshot.counts.green} green, ${snapshot.counts.red} red, ${snapshot.counts.unknown} unknown; sha256 ${snapshot.hash}\n`);
    return 0;
  } catch (err) {
    // A withheld snapshot (forged in Redis, planted in the archive): the closer logged which and why.
    if (!(err instanceof SnapshotIntegrityError)) throw err;
    io.err(`vigil: ${err.message}\n`);
    return 1;
  } finally {
    await emailQueue?.close();
    await store.close();
  }
}

/** `vigil verify-archive DIR [--public-key FILE]`: exit 0 when the chain is intact, 1 naming the first bad day. */
export async function verifyArchiveCommand(dir: string, publicKeyPem: string | undefined, through: string | undefined, io: CliIo): Promise<number> {
  const report = await verifyArchive(dir, publicKeyPem ? { publicKeyPem } : {});
  // The chain cannot know its own end: days deleted from the end are only caught against a date
  // (or hash) the auditor already holds, e.g. from the last daily email.
  if (report.ok && through && (report.last ?? '') < through) {
    const missing = report.last ? addDays(report.last, 1) : through;
    io.err(`archive FAILED at ${missing}: removed — the archive ends at ${report.last ?? '(empty)'}, expected it to run through ${through}\n`);
    return 1;
  }
  (report.ok ? io.out : io.err)(`${formatArchiveReport(report)}\n`);
  return report.ok ? 0 : 1;
}

/** `vigil rebuild`: verifies the archive, then restores its snapshots (and so every streak) into an empty Redis. */
export async function rebuildCommand(loaded: LoadedConfig, io: CliIo, log: Logger): Promise<number> {
  const dir = loaded.archiveDir;
  const signingKey = loaded.secrets.signingKey;
  const snapshots = await rebuildInputs(dir, signingKey ? { publicKeyPem: publicKeyFromPrivate(signingKey) } : {});
  const texts: string[] = [];
  for (const s of snapshots) {
    const text = (await readArchiveText(dir, s.date)) ?? '';
    // The restored bytes are served as they are: they must pass the same check as any stored snapshot.
    const check = checkSnapshotText(text, { date: s.date, ...(signingKey ? { publicKeyPem: signingKey } : {}) });
    if (!check.ok) {
      io.err(`vigil: ${s.date}.json cannot be restored: ${check.detail}\n`);
      return 1;
    }
    texts.push(text);
  }
  const store = await openStore(loaded, log);
  try {
    await closerFor(loaded, store.client, log, undefined).restore(snapshots, texts);
  } finally {
    await store.close();
  }
  const last = snapshots.at(-1);
  io.out(`restored ${snapshots.length} days (${snapshots[0]?.date} … ${last?.date}) from ${dir}; streaks as of ${last?.date}: ${last?.controls.map((c) => `${c.id} ${c.streak}`).join(', ')}\n`);
  return 0;
}
