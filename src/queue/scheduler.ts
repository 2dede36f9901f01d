import type { Queue } from 'bullmq';
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';


import type { StateStore } from '../store/state.js';
import { resultField } from '../store/state.js';
import { slotJobId, type ProbeJobData } from './connection.js';
import { previousSlot } from './cron.js';
import { dayOf, startOfDay } from '../posture/days.js';
import type { RedisRunCoordinator } from './run-coordinator.js';
import type { ScheduledUnit } from '../probe/units.js';


export interface SchedulerOptions {
  units: readonly ScheduledUnit[];
  queue: Queue<ProbeJobData>;
  coordinator: RedisRunCoordinator;
  state: StateStore;
  timezone: string;
  /** Attempts and first backoff delay for transient failures. */
  attempts: number;
  backoffMs: number;
  log: Logger;
}

/**
 * Fires each probe × target on its own cron schedule (the target's, else the probe's). Every firing is keyed by its slot: node-cron's
 * distributed mode lets one replica claim the slot, and the job id `probe|target|slotMs` makes a
 * second add of the same slot a no-op in BullMQ.
 */
export class Scheduler {
  private tasks: ScheduledTask[] = [];

  constructor(private readonly opts: SchedulerOptions) {}

  /** Starts the cron tasks. */
  start(): void {
    for (const unit of this.opts.units) {
      const name = `${unit.configured.probe.id}|${unit.target.name}`;
      const task = cron.schedule(
        unit.schedule,
        async (ctx) => {
          await this.enqueue(unit, ctx.date, 'scheduled');
        },
        { name, timezone: this.opts.timezone, distributed: true, runCoordinator: this.opts.coordinator },
      );
      task.on('execution:failed', (ctx) => this.opts.log.error({ err: ctx.execution?.error, unit: name }, 'scheduling a run failed'));
      task.on('execution:skipped', (ctx) => {
        if (ctx.reason === 'coordinator-error') this.opts.log.error({ unit: name, slot: ctx.date }, 'slot skipped: Redis run coordinator unreachable');
      });
      task.on('execution:missed', (ctx) => this.opts.log.warn({ unit: name, slot: ctx.date }, 'slot missed: event loop blocked'));
      this.tasks.push(task);
    }
  }

  /**
   * Runs at once every probe × target whose newest result is missing or older than its own interval,
   * as the run of its most recent slot (so replicas starting together enqueue it once) — or of
   * today's midnight when that slot was on an earlier day, so a day the daemon missed stays missed.
   */
  async catchUp(now = new Date()): Promise<number> {
    const { results } = await this.opts.state.latestResults();
    let enqueued = 0;
    for (const unit of this.opts.units) {
      const latest = results.get(resultField(unit.configured.probe.id, unit.target.name));
      const age = latest ? now.getTime() - Date.parse(latest.finishedAt) : Infinity;
      if (age <= unit.intervalMs) continue;
      let slot = previousSlot(unit.schedule, this.opts.timezone, now);
      // A run made today counts for today: a missed slot of an earlier day is run as today's
      // first slot (the same instant on every replica), never filed under the day it missed.
      const today = startOfDay(dayOf(now, this.opts.timezone), this.opts.timezone);
      if (slot < today) slot = today;
      if (await this.enqueue(unit, slot, 'catch-up')) enqueued++;
    }
    return enqueued;
  }

  /**
   * Adds the job of one slot; returns false when that slot is already in the queue. Two racing
   * adds may both return true: BullMQ keeps one job per id, which is the guarantee.
   */
  async enqueue(unit: ScheduledUnit, slot: Date, reason: 'scheduled' | 'catch-up'): Promise<boolean> {
    const jobId = slotJobId(unit.configured.probe.id, unit.target.name, slot);
    const existing = await this.opts.queue.getJob(jobId);
    if (existing) return false;
    await this.opts.queue.add(
      unit.configured.probe.id,
      { probe: unit.configured.probe.id, target: unit.target.name, scheduledFor: slot.toISOString() },
      {
        jobId,
        attempts: this.opts.attempts,
        backoff: { type: 'exponential', delay: this.opts.backoffMs },
        removeOnComplete: { age: 2 * 86_400, count: 50_000 },
        removeOnFail: { age: 7 * 86_400, count: 10_000 },
      },
    );
    this.opts.log.debug({ jobId, reason }, 'run enqueued');
    return true;
  }

  /** Stops firing. Safe to call twice. */
  async stop(): Promise<void> {
    const tasks = this.tasks;
    this.tasks = [];
    for (const task of tasks) await task.destroy();
  }
}
