import { UnrecoverableError, Worker, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ProbeResult } from '../probe/contract.js';
import { InvalidSlotError, type RecordOutcome, type StateStore } from '../store/state.js';
import { RESULTS_QUEUE } from './connection.js';
import { throttledErrorLog } from './log-throttle.js';
import { RESULTS_STALLS, requeueOnStallFailure, requeueStalledFailures, stallOptions, type RequeueOptions, type StallPolicy } from './stalls.js';

/**
 * Consumes the `results` queue and writes each result to the state store. Idempotent: the store's
 * replay guard remembers every recorded slot of every probe × target (a bitmap per day, see
 * REPLAY_HORIZON_MS in src/store/state.ts), so a replayed job (retry, crash between write and ack,
 * a second replica) changes nothing, and a late first arrival still counts once for its own day.
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
        let outcome: RecordOutcome;
        try {
          outcome = await opts.state.recordOnce(parsed.data);
        } catch (err) {
          if (!(err instanceof InvalidSlotError)) throw err;
          opts.log.error({ jobId: job.id, runId: parsed.data.runId }, 'result rejected: scheduledFor is not a date');
          throw new UnrecoverableError(err.message);
        }
        if (outcome === 'recorded') {
          this.recorded++;
          opts.onRecorded?.(parsed.data);
        } else if (outcome === 'replay') opts.log.debug({ runId: parsed.data.runId }, 'result already recorded');
        else {
          // Its unit has measured 40+ days past this slot: the replay guard no longer holds that day.
          opts.log.warn({ runId: parsed.data.runId, probe: parsed.data.probe, target: parsed.data.target, scheduledFor: parsed.data.scheduledFor }, 'result older than the replay horizon: not recorded');
        }
        return outcome === 'recorded';
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
