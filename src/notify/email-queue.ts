import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { scrub } from '../secrets.js';
import type { Mailer } from './email.js';
import { PermanentEmailError } from './email.js';

export const EMAIL_QUEUE = 'email';

/** Data of an email job: the day only. The worker reads the published snapshot itself. */
export interface EmailJobData {
  date: string;
}

/** Outcomes counted in `vigil_email_sent_total{result}`. */
export type EmailResult = 'sent' | 'rejected' | 'failed';

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
export async function enqueueSnapshotEmail(queue: Queue<EmailJobData>, client: Redis, prefix: string, date: string, retryHours: number, backoffBaseMs = 30_000): Promise<void> {
  if (await client.exists(`${prefix}:email-sent:${date}`)) return;
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
}

/**
 * Sends each day's snapshot email once. The job id is the day, so two replicas or a re-run of
 * the day close enqueue it once; a `sent` marker makes a later job for the same day a no-op.
 * An SMTP outage is retried with backoff for `retryHours`; a permanent rejection is logged and
 * counted, not retried. The snapshot itself is already archived and published before any of
 * this, so mail never blocks or loses it. (A crash between the SMTP server's acceptance and the
 * marker can send a second copy; its Message-ID is the same, so clients can fold it.)
 */
export class EmailQueue {
  readonly queue: Queue<EmailJobData>;
  readonly worker: Worker<EmailJobData, string>;
  private readonly keys: { sent: (date: string) => string; counts: string };

  constructor(private readonly opts: EmailQueueOptions) {
    this.keys = { sent: (d) => `${opts.prefix}:email-sent:${d}`, counts: `${opts.prefix}:email-counts` };
    this.queue = new Queue<EmailJobData>(EMAIL_QUEUE, { connection: opts.connection, prefix: opts.prefix });
    this.worker = new Worker<EmailJobData, string>(EMAIL_QUEUE, (job) => this.process(job), {
      connection: opts.connection,
      prefix: opts.prefix,
      concurrency: 1,
      settings: { backoffStrategy: (attemptsMade: number) => emailBackoffMs(attemptsMade, opts.backoffBaseMs) },
    });
    this.worker.on('failed', (job, err) => {
      if (!job) return;
      const final = job.attemptsMade >= (job.opts.attempts ?? 1) || err instanceof UnrecoverableError;
      if (final && !(err instanceof UnrecoverableError)) {
        void this.count('failed');
        opts.log.error({ date: job.data.date, attempts: job.attemptsMade, error: scrub(err.message) }, 'snapshot email given up');
      }
    });
    this.worker.on('error', (err) => opts.log.error({ error: scrub(err.message) }, 'email worker error'));
  }

  /** Enqueues the email of a day (idempotent). */
  async enqueue(date: string): Promise<void> {
    await enqueueSnapshotEmail(this.queue, this.opts.client, this.opts.prefix, date, this.opts.retryHours, this.opts.backoffBaseMs);
  }

  /** Counts by result, for `vigil_email_sent_total`. */
  async counts(): Promise<Map<EmailResult, number>> {
    const raw = await this.opts.client.hgetall(this.keys.counts);
    return new Map(Object.entries(raw).map(([k, v]) => [k as EmailResult, Number(v)]));
  }

  private async count(result: EmailResult): Promise<void> {
    await this.opts.client.hincrby(this.keys.counts, result, 1);
  }

  private async process(job: Job<EmailJobData, string>): Promise<string> {
    const { date } = job.data;
    const log = this.opts.log.child({ date, attempt: job.attemptsMade + 1 });
    if (await this.opts.client.exists(this.keys.sent(date))) return 'already sent';
    const text = await this.opts.snapshotText(date);
    if (text === undefined) {
      await this.count('failed');
      log.error('no published snapshot for this day: email not sent');
      throw new UnrecoverableError(`no published snapshot for ${date}`);
    }
    try {
      const { messageId } = await this.opts.mailer.send(JSON.parse(text), text);
      await this.opts.client.set(this.keys.sent(date), messageId, 'EX', 90 * 86_400);
      await this.count('sent');
      log.info({ messageId }, 'snapshot email sent');
      return messageId;
    } catch (err) {
      if (err instanceof PermanentEmailError) {
        await this.count('rejected');
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
