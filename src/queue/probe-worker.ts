import { Worker, WaitingError, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ProbeResult } from '../probe/contract.js';
import { TransientError } from '../probe/errors.js';
import { runProbe } from '../probe/runner.js';
import { scrub } from '../secrets.js';
import { PROBES_QUEUE, type ProbeJobData } from './connection.js';
import { throttledErrorLog } from './log-throttle.js';
import type { ScheduledUnit } from '../probe/units.js';
import { probeStallPolicy, requeueOnStallFailure, requeueStalledFailures, stallOptions, type RequeueOptions, type StallPolicy } from './stalls.js';

export interface ProbeWorkerOptions {
  connection: Redis;
  prefix: string;
  units: readonly ScheduledUnit[];
  results: Queue<ProbeResult>;
  concurrency: number;
  timeoutMs: number;
  log: Logger;
  /** Called after each finished run (metrics). */
  onRun?: (result: ProbeResult, durationSeconds: number) => void;
  /** Internal, for tests: shorter stall timings. Default {@link probeStallPolicy}. */
  stalls?: Partial<StallPolicy>;
  /** Reads the newest recorded result of a probe × target, handed to collect as `previous`. */
  previousResult?: (probe: string, target: string) => Promise<ProbeResult | undefined>;
}

/**
 * Runs probe jobs: resolves the target from this replica's own config (job data holds names
 * only), runs the probe, and hands the result to the `results` queue under its runId. A transient
 * failure is thrown back to BullMQ for a retry with backoff while attempts remain; the last
 * attempt, or any other failure, is published as a result with `error`.
 */
export class ProbeWorker {
  readonly worker: Worker<ProbeJobData, { runId: string }>;
  private readonly shutdown = new AbortController();
  private readonly byKey: Map<string, ScheduledUnit>;
  /** Runs this replica executed, for tests and logs. */
  executed = 0;
  /** Stall timings and limits of the probe queue. */
  readonly stalls: StallPolicy;
  private readonly requeue: RequeueOptions;

  constructor(private readonly opts: ProbeWorkerOptions) {
    this.byKey = new Map(opts.units.map((u) => [`${u.configured.probe.id}|${u.target.name}`, u]));
    this.stalls = { ...probeStallPolicy(opts.timeoutMs), ...opts.stalls };
    this.worker = new Worker<ProbeJobData, { runId: string }>(PROBES_QUEUE, (job, token) => this.process(job, token), {
      connection: opts.connection,
      prefix: opts.prefix,
      concurrency: opts.concurrency,
      // A crashed replica's jobs go back to the queue once their lock lapses (see probeStallPolicy).
      ...stallOptions(this.stalls),
    });
    this.worker.on('error', throttledErrorLog(opts.log, 'probe worker error'));
    this.requeue = {
      policy: this.stalls,
      redis: opts.connection,
      log: opts.log,
      decide: async (job, requeues) => {
        if (requeues < this.stalls.maxRequeues) return 'requeue';
        // Its replicas keep dying while running it: record that, so the control goes unknown rather than silent.
        await this.publish(this.stalledResult(job as Job<ProbeJobData, { runId: string }>, requeues));
        opts.log.error({ jobId: job.id, requeues }, 'probe run stalled too often: recorded as an error');
        return 'leave';
      },
    };
    requeueOnStallFailure(this.worker, this.requeue);
  }

  /** The periodic pass: re-queues runs BullMQ failed for stalling whose `failed` event was lost with its replica. */
  async requeueStalled(queue: Queue<ProbeJobData>): Promise<number> {
    return requeueStalledFailures(queue, this.requeue);
  }

  private stalledResult(job: Job<ProbeJobData, { runId: string }>, requeues: number): ProbeResult {
    const now = new Date().toISOString();
    return {
      runId: job.id as string,
      probe: job.data.probe,
      target: job.data.target,
      scheduledFor: job.data.scheduledFor,
      startedAt: now,
      finishedAt: now,
      findings: [],
      error: {
        class: 'StalledRunError',
        message: `the replica running this probe died or froze ${requeues + this.stalls.maxStalledCount + 1} times (lock lapsed): check the vigil logs and memory limits`,
      },
    };
  }

  private async publish(result: ProbeResult): Promise<void> {
    await this.opts.results.add('result', result, {
      jobId: result.runId,
      attempts: 20,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: { age: 86_400, count: 50_000 },
      // Count-capped too: a flood of failing results (say, every one failing its schema) stays bounded.
      removeOnFail: { age: 30 * 86_400, count: 50_000 },
    });
  }

  private async process(job: Job<ProbeJobData, { runId: string }>, token: string | undefined): Promise<{ runId: string }> {
    const runId = job.id as string;
    const log = this.opts.log.child({ jobId: runId, probe: job.data.probe, target: job.data.target, attempt: job.attemptsMade + 1 });
    const unit = this.byKey.get(`${job.data.probe}|${job.data.target}`);
    let result: ProbeResult;
    if (!unit) {
      const now = new Date().toISOString();
      result = {
        runId,
        probe: job.data.probe,
        target: job.data.target,
        scheduledFor: job.data.scheduledFor,
        startedAt: now,
        finishedAt: now,
        findings: [],
        error: { class: 'ConfigMismatchError', message: 'this replica has no such probe target configured: give every replica the same config' },
      };
    } else {
      this.executed++;
      // Unreadable state only costs the probe its memory of the last run: it must not stop the run.
      const previous = await this.opts.previousResult?.(job.data.probe, job.data.target).catch(() => undefined);
      const outcome = await runProbe({
        probe: unit.configured.probe,
        target: unit.target,
        params: unit.configured.params,
        runId,
        scheduledFor: new Date(job.data.scheduledFor),
        timeoutMs: unit.target.timeoutMs ?? this.opts.timeoutMs,
        signal: this.shutdown.signal,
        log,
        redis: this.opts.connection,
        previous,
      });
      if (this.shutdown.signal.aborted) {
        // Shutting down past the grace period: hand the job back untouched instead of recording an error.
        await job.moveToWait(token);
        throw new WaitingError();
      }
      const attempts = job.opts.attempts ?? 1;
      if (outcome.transientError && job.attemptsMade + 1 < attempts) {
        // BullMQ stores the thrown error's message and stack in Redis: hand it a scrubbed copy only.
        const retry = new TransientError(scrub(outcome.transientError.message));
        retry.stack = `${retry.name}: ${retry.message}`;
        log.warn({ error: retry.message }, 'transient failure, will retry');
        throw retry;
      }
      result = outcome.result;
      this.opts.onRun?.(result, outcome.durationSeconds);
      log.info({ findings: result.findings.length, error: result.error }, 'run finished');
    }
    await this.publish(result);
    return { runId };
  }

  /** Waits up to `graceMs` for running jobs, then aborts them and hands them back to the queue. */
  async close(graceMs: number): Promise<void> {
    const closing = this.worker.close();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      closing.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.opts.log.warn({ graceMs }, 'runs still going at the end of the grace period: returning them to the queue');
      this.shutdown.abort(new Error('shutting down'));
      await closing;
    }
  }
}
