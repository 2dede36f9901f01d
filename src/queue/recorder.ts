import { UnrecoverableError, Worker, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ProbeResult } from '../probe/contract.js';
import type { StateStore } from '../store/state.js';
import { RESULTS_QUEUE } from './connection.js';
import { throttledErrorLog } from './log-throttle.js';
import { RESULTS_STALLS, requeueOnStallFailure, requeueStalledFailures, stallOptions, type RequeueOptions, type StallPolicy } from './stalls.js';

/**
 * Consumes the `results` queue and writes each result to the state store. Idempotent: the store
 * remembers every runId, so a replayed job (retry, crash between write and ack, a second replica)
 * changes nothing.
 */
export class Recorder {
  readonly worker: Worker<unknown, boolean>;
  /** Results this replica recorded for the first time. */
  recorded = 0;
  /** Stall timings and limits of the results queue. */
  readonly stalls: StallPolicy;
  private readonly requeue: RequeueOptions;

  constructor(opts: {
    connection: Redis;
    prefix: string;
    state: StateStore;
    log: Logger;
    concurrency?: number;
    onRecorded?: (r: ProbeResult) => void;
    /** Internal, for tests: shorter stall timings. Default {@link RESULTS_STALLS}. */
    stalls?: Partial<StallPolicy>;
  }) {
    this.stalls = { ...RESULTS_STALLS, ...opts.stalls };
    this.worker = new Worker<unknown, boolean>(
      RESULTS_QUEUE,
      async (job) => {
        const parsed = ProbeResult.safeParse(job.data);
        if (!parsed.success) {
          opts.log.error({ jobId: job.id, issues: parsed.error.issues.slice(0, 5) }, 'result rejected by schema');
          throw new UnrecoverableError('result does not match the ProbeResult schema');
        }
        const fresh = await opts.state.record(parsed.data);
        if (fresh) {
          this.recorded++;
          opts.onRecorded?.(parsed.data);
        } else opts.log.debug({ runId: parsed.data.runId }, 'result already recorded');
        return fresh;
      },
      { connection: opts.connection, prefix: opts.prefix, concurrency: opts.concurrency ?? 8, ...stallOptions(this.stalls) },
    );
    this.worker.on('error', throttledErrorLog(opts.log, 'recorder error'));
    // Recording is idempotent: a result whose recorder died is always worth another try.
    this.requeue = { policy: this.stalls, redis: opts.connection, log: opts.log };
    requeueOnStallFailure(this.worker, this.requeue);
  }

  /** The periodic pass: re-queues results BullMQ failed for stalling whose `failed` event was lost with its replica. */
  async requeueStalled(queue: Queue): Promise<number> {
    return requeueStalledFailures(queue, this.requeue);
  }

  async close(): Promise<void> {
    await this.worker.close();
  }
}
