import { randomBytes } from 'node:crypto';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { throttledErrorLog } from '../queue/log-throttle.js';
import { EMAIL_STALLS, failedByStalls, requeueIfStalled, requeueOnStallFailure, stallOptions, type RequeueOptions, type StallPolicy } from '../queue/stalls.js';
import { scrub } from '../secrets.js';
import type { Mailer } from './email.js';
import { PermanentEmailError } from './email.js';

export const EMAIL_QUEUE = 'email';

/** Data of an email job: the day only. The worker reads the published snapshot itself. */
export interface EmailJobData {
  date: string;
}

/**
 * Outcomes counted in `vigil_email_sent_total{result}`: `sent` once per day delivered, `rejected`
 * once per day the SMTP server refused for good, `failed` once per day not sent within
 * `email.retryHours`, and `resent` for each send that resumed after an attempt whose outcome is
 * unknown (its replica died during SMTP): the recipient may hold two copies with the same Message-ID.
 */
export type EmailResult = 'sent' | 'rejected' | 'failed' | 'resent';

/** How long the per-day email markers are kept. */
const MARKER_TTL_SECONDS = 90 * 86_400;

/** The email keys of one day (all under the prefix, so one hash tag covers them in a cluster). */
export function emailKeys(prefix: string, date: string): { sent: string; due: string; done: string; attempt: string; counts: string } {
  return {
    sent: `${prefix}:email-sent:${date}`,
    due: `${prefix}:email-due:${date}`,
    done: `${prefix}:email-given-up:${date}`,
    attempt: `${prefix}:email-attempt:${date}`,
    counts: `${prefix}:email-counts`,
  };
}

/** SET marker NX; only the first writer counts its result. KEYS: marker, counts. ARGV: value, ttl, result. */
const finishScript = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
  return 1
end
return 0
`;

/**
 * Records a delivery: the sent marker (first delivery counts \`sent\`), \`resent\` when this send
 * resumed after an unknown outcome, and the end of the attempt. KEYS: sent, counts, attempt.
 * ARGV: messageId, ttl, resumed ('1' or '0').
 */
const sentScript = `
local first = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
if first then redis.call('HINCRBY', KEYS[2], 'sent', 1) end
if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[2], 'resent', 1) end
redis.call('DEL', KEYS[3])
if first then return 1 end
return 0
`;

type ScriptClient = Redis & {
  vigilEmailFinish(marker: string, counts: string, value: string, ttl: string, result: string): Promise<number>;
  vigilEmailSent(sent: string, counts: string, attempt: string, messageId: string, ttl: string, resumed: string): Promise<number>;
};

function scripts(client: Redis): ScriptClient {
  if (!('vigilEmailFinish' in client)) {
    client.defineCommand('vigilEmailFinish', { numberOfKeys: 2, lua: finishScript });
    client.defineCommand('vigilEmailSent', { numberOfKeys: 3, lua: sentScript });
  }
  return client as ScriptClient;
}

/** Retry delay for attempt n (1-based): `baseMs` (30 s) doubling, capped at 60 × base (30 min). */
export function emailBackoffMs(attempt: number, baseMs = 30_000): number {
  return Math.min(baseMs * 2 ** Math.max(0, attempt - 1), 60 * baseMs);
}

/** How many attempts fit in `hours` with {@link emailBackoffMs}. */
export function emailAttempts(hours: number, baseMs = 30_000): number {
  let total = 0;
  let n = 0;
  while (total < hours * 3_600_000) total += emailBackoffMs(++n, baseMs);
  return n + 1;
}

/**
 * Queues the snapshot email of a day, once: the job id is the day, and a day already sent is
 * skipped. Usable without a worker (the CLI queues, the daemon sends).
 */
export async function enqueueSnapshotEmail(queue: Queue<EmailJobData>, client: Redis, prefix: string, date: string, retryHours: number, backoffBaseMs = 30_000, nowMs = Date.now()): Promise<void> {
  const keys = emailKeys(prefix, date);
  if (await client.exists(keys.sent)) return;
  // email.retryHours counts from the first time the day's email was queued, whatever happens to its job.
  await client.set(keys.due, String(nowMs), 'EX', MARKER_TTL_SECONDS, 'NX');
  await queue.add('snapshot-email', { date }, {
    jobId: `email|${date}`,
    attempts: emailAttempts(retryHours, backoffBaseMs),
    backoff: { type: 'custom' },
    removeOnComplete: { age: 30 * 86_400 },
    removeOnFail: { age: 30 * 86_400 },
  });
}

export interface EmailQueueOptions {
  connection: Redis;
  /** For markers and counters (not the queue's own connection). */
  client: Redis;
  prefix: string;
  mailer: Mailer;
  retryHours: number;
  /** The published snapshot of a day, as archived bytes. */
  snapshotText: (date: string) => Promise<string | undefined>;
  log: Logger;
  /** First retry delay (doubles up to 60 ×). Default 30 s; tests shorten it. */
  backoffBaseMs?: number;
  /** Internal, for tests: shorter stall timings. Default {@link EMAIL_STALLS}. */
  stalls?: Partial<StallPolicy>;
  /** Clock for the retryHours deadline (ms). Default Date.now. */
  now?: () => number;
}

/**
 * Sends each day's snapshot email once. The job id is the day, so two replicas or a re-run of
 * the day close enqueue it once; a `sent` marker makes a later job for the same day a no-op.
 * An SMTP outage is retried with backoff for `retryHours`; a permanent rejection is logged and
 * counted, not retried. The snapshot itself is already archived and published before any of
 * this, so mail never blocks or loses it.
 *
 * Nothing is dropped: a job BullMQ fails for stalling (its sender died twice) is re-queued, and
 * {@link reconcile} — run by every replica's periodic pass — re-queues the email of a published
 * day that has neither a sent marker nor a pending job, including one whose job sits in the
 * failed set. A day not sent within `retryHours` of its first queueing is given up: logged and
 * counted `failed`, once (a marker decides which replica counts it).
 *
 * At-least-once: an "attempt" marker is set right before SMTP and cleared when the attempt ends.
 * A send that finds it still set resumes after a replica died mid-SMTP — perhaps after the server
 * accepted the message — and is counted `resent`: the recipient may get a second copy, with the
 * same Message-ID, which mail servers and clients fold into one.
 */
export class EmailQueue {
  readonly queue: Queue<EmailJobData>;
  readonly worker: Worker<EmailJobData, string>;
  /** Stall timings and limits of the email queue. */
  readonly stalls: StallPolicy;
  private readonly requeue: RequeueOptions;
  private readonly now: () => number;

  constructor(private readonly opts: EmailQueueOptions) {
    this.stalls = { ...EMAIL_STALLS, ...opts.stalls };
    this.now = opts.now ?? Date.now;
    this.queue = new Queue<EmailJobData>(EMAIL_QUEUE, { connection: opts.connection, prefix: opts.prefix });
    this.worker = new Worker<EmailJobData, string>(EMAIL_QUEUE, (job) => this.process(job), {
      connection: opts.connection,
      prefix: opts.prefix,
      concurrency: 1,
      settings: { backoffStrategy: (attemptsMade: number) => emailBackoffMs(attemptsMade, opts.backoffBaseMs) },
      // See EMAIL_STALLS: a dead sender's email is taken over within ~90 s, and re-queued past the stall limit.
      ...stallOptions(this.stalls),
    });
    this.worker.on('failed', (job, err) => {
      if (!job) return;
      const final = job.attemptsMade >= (job.opts.attempts ?? 1) || err instanceof UnrecoverableError;
      if (final && !(err instanceof UnrecoverableError)) {
        void this.giveUp(job.data.date, `retried ${job.attemptsMade} times: ${scrub(err.message)}`).catch(() => undefined);
      }
    });
    this.worker.on('error', throttledErrorLog(opts.log, 'email worker error'));
    this.queue.on('error', throttledErrorLog(opts.log, 'email queue error'));
    this.requeue = {
      policy: this.stalls,
      redis: opts.client,
      log: opts.log,
      decide: async (job) => {
        const { date } = job.data as EmailJobData;
        if (await this.settled(date)) return 'leave';
        if (await this.overdue(date)) {
          await this.giveUp(date, 'its senders kept dying');
          return 'leave';
        }
        return 'requeue';
      },
    };
    requeueOnStallFailure(this.worker, this.requeue);
  }

  /** Enqueues the email of a day (idempotent). */
  async enqueue(date: string): Promise<void> {
    await enqueueSnapshotEmail(this.queue, this.opts.client, this.opts.prefix, date, this.opts.retryHours, this.opts.backoffBaseMs, this.now());
  }

  /**
   * The periodic pass for one published day: makes sure its email is sent, pending, or given up.
   * Re-queues a failed job (stalled or not) while `retryHours` has not passed, queues a missing one,
   * and gives the day up — counted `failed` once — when the time is over and nothing is pending.
   * Returns what it did.
   */
  async reconcile(date: string): Promise<'settled' | 'pending' | 'requeued' | 'queued' | 'given-up'> {
    if (await this.settled(date)) return 'settled';
    const job = await this.queue.getJob(`email|${date}`);
    const state = job ? await job.getState() : 'missing';
    if (job && state === 'failed') {
      if (failedByStalls(job)) {
        if (await requeueIfStalled(this.queue, job, this.requeue)) return 'requeued';
        if (await this.settled(date)) return 'given-up';
        // Past the re-queue limit the stall path no longer decides: the time limit still gives the day up (counted once).
        if (await this.overdue(date)) return (await this.giveUp(date, 'its senders kept dying'), 'given-up');
        return 'pending';
      }
      if (await this.overdue(date)) return (await this.giveUp(date, 'retries exhausted'), 'given-up');
      await job.retry('failed').catch(() => undefined);
      this.opts.log.warn({ date }, 'snapshot email found failed before its time was over: re-queued');
      return 'requeued';
    }
    if (state === 'missing' || state === 'unknown') {
      if (await this.overdue(date)) return (await this.giveUp(date, 'never queued in time'), 'given-up');
      await this.enqueue(date);
      return 'queued';
    }
    // waiting, active, delayed, prioritized — or completed (sent, its marker since expired).
    return state === 'completed' ? 'settled' : 'pending';
  }

  /** Counts by result, for `vigil_email_sent_total`. */
  async counts(): Promise<Map<EmailResult, number>> {
    const raw = await this.opts.client.hgetall(emailKeys(this.opts.prefix, '').counts);
    return new Map(Object.entries(raw).map(([k, v]) => [k as EmailResult, Number(v)]));
  }

  /** Sent, rejected or given up. */
  private async settled(date: string): Promise<boolean> {
    const keys = emailKeys(this.opts.prefix, date);
    return (await this.opts.client.exists(keys.sent, keys.done)) > 0;
  }

  /** Whether `retryHours` have passed since the day's email was first queued. */
  private async overdue(date: string): Promise<boolean> {
    const due = await this.opts.client.get(emailKeys(this.opts.prefix, date).due);
    if (due === null) return false;
    return this.now() - Number(due) >= this.opts.retryHours * 3_600_000;
  }

  /** Marks the day given up and counts it `failed` — once, whichever replica gets here first. */
  private async giveUp(date: string, why: string): Promise<void> {
    const keys = emailKeys(this.opts.prefix, date);
    const first = await scripts(this.opts.client).vigilEmailFinish(keys.done, keys.counts, 'failed', String(MARKER_TTL_SECONDS), 'failed');
    if (first === 1) this.opts.log.error({ date, retryHours: this.opts.retryHours, reason: why }, 'snapshot email given up');
  }

  private async process(job: Job<EmailJobData, string>): Promise<string> {
    const { date } = job.data;
    const keys = emailKeys(this.opts.prefix, date);
    const log = this.opts.log.child({ date, attempt: job.attemptsMade + 1 });
    if (await this.settled(date)) return 'already sent';
    const text = await this.opts.snapshotText(date);
    if (text === undefined) {
      await this.giveUp(date, 'no published snapshot for this day');
      log.error('no published snapshot for this day: email not sent');
      throw new UnrecoverableError(`no published snapshot for ${date}`);
    }
    const client = scripts(this.opts.client);
    const token = randomBytes(8).toString('hex');
    // Outcome unknown from here until the attempt ends: a replica that dies in between leaves the marker.
    const previous = await client.set(keys.attempt, token, 'EX', MARKER_TTL_SECONDS, 'GET');
    const resumed = previous !== null;
    if (resumed) log.warn('resuming a send whose previous attempt ended with its replica: the recipient may get it twice, with the same Message-ID');
    try {
      const { messageId } = await this.opts.mailer.send(JSON.parse(text), text);
      const first = await client.vigilEmailSent(keys.sent, keys.counts, keys.attempt, messageId, String(MARKER_TTL_SECONDS), resumed ? '1' : '0');
      log.info({ messageId, resent: resumed, first: first === 1 }, 'snapshot email sent');
      return messageId;
    } catch (err) {
      // The server answered, or the connection failed under a live process: not delivered.
      // A resumed attempt stays resumed: the first one's outcome is still unknown.
      if (!resumed) await client.del(keys.attempt).catch(() => undefined);
      if (err instanceof PermanentEmailError) {
        await client.vigilEmailFinish(keys.done, keys.counts, 'rejected', String(MARKER_TTL_SECONDS), 'rejected');
        log.error({ error: scrub(err.message) }, 'snapshot email rejected by the SMTP server');
        throw new UnrecoverableError(scrub(err.message));
      }
      log.warn({ error: scrub((err as Error).message) }, 'snapshot email not sent yet, will retry');
      const retry = new Error(scrub((err as Error).message));
      retry.stack = retry.message;
      throw retry;
    }
  }

  async close(): Promise<void> {
    await this.worker.close();
    await this.queue.close();
    this.opts.mailer.close();
  }
}
