import type { Redis } from 'ioredis';
import type { RunCoordinator } from 'node-cron';

/**
 * node-cron run coordinator on Redis: the first replica to claim a slot key runs it, the others
 * skip. The claim is kept until its lease expires (not released on completion), so a replica
 * whose clock lags a little cannot claim the same slot again after the first one finished.
 * BullMQ's deterministic job id remains the second guard.
 */
export class RedisRunCoordinator implements RunCoordinator {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly minLeaseMs = 60_000,
  ) {}

  async shouldRun(key: string, ttlMs: number): Promise<boolean> {
    const lease = Math.max(ttlMs || 0, this.minLeaseMs);
    const ok = await this.redis.set(`${this.prefix}:cron:${key}`, '1', 'PX', lease, 'NX');
    return ok === 'OK';
  }
}
