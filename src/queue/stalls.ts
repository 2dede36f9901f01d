import type { Job, Queue, Worker, WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * Stall handling, per queue. A job "stalls" when the replica running it dies (SIGKILL, OOM, a
 * lost machine) or is frozen: its lock is no longer renewed, and after `lockDuration` another
 * worker's stall check (every `stalledInterval`) puts it back in the wait list. BullMQ fails a job
 * that stalled more than `maxStalledCount` times ("job stalled more than allowable limit"), which
 * without more would drop it silently: nothing retries a failed job, and a job id already in the
 * failed set is not added again. Every vigil queue therefore re-queues such a job
 * ({@link requeueStalledFailures}) from the worker's `failed` event and from the periodic pass (in
 * case the replica that failed it died before its event ran), up to `maxRequeues` times; what
 * happens after that is the queue's own decision (see each policy).
 *
 * The day close is not a job: it is a Redis lock (120 s lease) retried by every replica's periodic
 * pass, so a closer that dies is replaced when its lease lapses.
 */
export interface StallPolicy {
  /** How long a job's lock lasts without renewal (the worker renews it every lockDuration / 2). */
  lockDuration: number;
  /** How often each worker looks for jobs whose lock lapsed. */
  stalledInterval: number;
  /** Stalls BullMQ tolerates before it fails the job (we then re-queue it). */
  maxStalledCount: number;
  /** How many times a job failed for stalling is put back before the queue gives it up. */
  maxRequeues: number;
}

/** The failedReason BullMQ gives a job that stalled more than maxStalledCount times. */
export const STALLED_REASON = 'job stalled more than allowable limit';

/**
 * Probe runs. The lock outlasts a whole collect (timeout + 10 s) so a slow but live run is never
 * taken for a dead one and run twice; two stalls are tolerated because a rolling restart can kill
 * two replicas in a row. A run whose replicas keep dying (a probe that crashes the process) is
 * re-queued 3 times, then recorded as an error result: the control goes unknown, honestly.
 */
export function probeStallPolicy(timeoutMs: number): StallPolicy {
  return { lockDuration: Math.max(30_000, timeoutMs + 10_000), stalledInterval: 30_000, maxStalledCount: 2, maxRequeues: 3 };
}

/**
 * Results. Recording is one Lua script (milliseconds) and idempotent by runId, so a result
 * recorded twice changes nothing: a short lock lets a dead recorder's results move on within
 * ~20 s, and stalls are re-queued generously, since every stall is harmless.
 */
// No practical re-queue cap: recording is idempotent per slot, so putting a stalled result back is
// always safe, and leaving it in the failed set would lose the run.
export const RESULTS_STALLS: StallPolicy = { lockDuration: 15_000, stalledInterval: 5_000, maxStalledCount: 5, maxRequeues: Number.MAX_SAFE_INTEGER };

/**
 * The daily email. A send can take minutes (SMTP timeouts are 30 s per stage) but its lock is
 * renewed every 7.5 s while it runs, so the 15 s lock only bounds how long a dead sender holds
 * the day's email: it is taken over within ~20 s. One stall is all BullMQ needs to tolerate: the
 * email is re-queued after that until `email.retryHours` has passed since it was first queued,
 * and given up (counted failed) only then.
 */
export const EMAIL_STALLS: StallPolicy = { lockDuration: 15_000, stalledInterval: 5_000, maxStalledCount: 1, maxRequeues: 1_000 };

/** The WorkerOptions of a policy, with test overrides. */
export function stallOptions(policy: StallPolicy): Pick<WorkerOptions, 'lockDuration' | 'stalledInterval' | 'maxStalledCount'> {
  return { lockDuration: policy.lockDuration, stalledInterval: policy.stalledInterval, maxStalledCount: policy.maxStalledCount };
}

/** Whether a failed job was failed by BullMQ's stall limit (not by our processor). */
export function failedByStalls(job: Pick<Job, 'failedReason'>): boolean {
  return job.failedReason === STALLED_REASON;
}

/** What to do with one job failed by stalls: put it back (`requeue`), or leave it (the caller handled it). */
export type StallDecision = 'requeue' | 'leave';

/** Options of {@link requeueStalledFailures}. */
export interface RequeueOptions {
  policy: StallPolicy;
  /** A client for the re-queue counter (a field of the job's own hash, gone with the job). */
  redis: Redis;
  log: Logger;
  /**
   * Called for a job failed by stalls before it is put back; `requeues` is how many times it was
   * put back already. Default: re-queue while `requeues < policy.maxRequeues`, else leave it (logged).
   */
  decide?: (job: Job, requeues: number) => Promise<StallDecision>;
  /** Failed jobs examined per call (newest first). Default 500. */
  scan?: number;
}

/** Field of the job's hash counting its re-queues: removed with the job, never part of its data. */
const REQUEUES_FIELD = 'vigilRequeues';

/**
 * Re-queues one job that BullMQ failed for stalling (or lets `decide` handle it). Returns true
 * when it was put back. A job that is no longer failed (another replica re-queued it first) is
 * left alone: `retry` only moves a job that is still in the failed set.
 */
export async function requeueIfStalled(queue: Pick<Queue, 'name' | 'toKey'>, job: Job, opts: RequeueOptions): Promise<boolean> {
  if (!failedByStalls(job) || job.id === undefined) return false;
  const raw = await opts.redis.hget(queue.toKey(job.id), REQUEUES_FIELD);
  const requeues = raw === null ? 0 : Number(raw);
  // Past the limit: left for good by an earlier pass, which handled (logged, recorded) it once.
  if (requeues > opts.policy.maxRequeues) return false;
  const decision = opts.decide ? await opts.decide(job, requeues) : requeues < opts.policy.maxRequeues ? 'requeue' : 'leave';
  if (decision === 'leave') {
    await opts.redis.hset(queue.toKey(job.id), REQUEUES_FIELD, String(opts.policy.maxRequeues + 1));
    if (!opts.decide) opts.log.error({ queue: queue.name, jobId: job.id, requeues }, 'job stalled too often and was re-queued too often: left in the failed set');
    return false;
  }
  // Counted first: once back in the queue the job may complete and be removed at once.
  await opts.redis.hincrby(queue.toKey(job.id), REQUEUES_FIELD, 1);
  try {
    await job.retry('failed');
  } catch {
    // Not in the failed set any more: another replica re-queued or removed it.
    await opts.redis.hincrby(queue.toKey(job.id), REQUEUES_FIELD, -1).catch(() => undefined);
    return false;
  }
  opts.log.warn({ queue: queue.name, jobId: job.id, requeues: requeues + 1 }, 'job stalled more than its limit: re-queued');
  return true;
}

/** Re-queues every job of `queue` that BullMQ failed for stalling (the periodic pass). Returns how many went back. */
export async function requeueStalledFailures(queue: Queue, opts: RequeueOptions): Promise<number> {
  const failed = await queue.getFailed(0, (opts.scan ?? 500) - 1);
  let n = 0;
  for (const job of failed) if (job && (await requeueIfStalled(queue, job, opts))) n++;
  return n;
}

/** Re-queues a job as soon as its worker fails it for stalling (the periodic pass covers a replica that dies first). */
export function requeueOnStallFailure(worker: Worker, opts: RequeueOptions): void {
  const queue = worker;
  worker.on('failed', (job: Job | undefined) => {
    if (!job || !failedByStalls(job)) return;
    requeueIfStalled(queue, job, opts).catch((err: unknown) => opts.log.error({ err, queue: queue.name, jobId: job.id }, 're-queueing a stalled job failed'));
  });
}
