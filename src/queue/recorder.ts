import { UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ProbeResult } from '../probe/contract.js';
import type { StateStore } from '../store/state.js';
import { RESULTS_QUEUE } from './connection.js';

/**
 * Consumes the `results` queue and writes each result to the state store. Idempotent: the store
 * remembers every runId, so a replayed job (retry, crash between write and ack, a second replica)
 * changes nothing.
 */
export class Recorder {
  readonly worker: Worker<unknown, boolean>;
  /** Results this replica recorded for the first time. */
  recorded = 0;

  constructor(opts: { connection: Redis; prefix: string; state: StateStore; log: Logger; concurrency?: number; onRecorded?: (r: ProbeResult) => void }) {
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
      { connection: opts.connection, prefix: opts.prefix, concurrency: opts.concurrency ?? 8 },
    );
    this.worker.on('error', (err) => opts.log.error({ err }, 'recorder error'));
  }

  async close(): Promise<void> {
    await this.worker.close();
  }
}
