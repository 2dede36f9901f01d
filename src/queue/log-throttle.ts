import type { Logger } from 'pino';
import { scrub } from '../secrets.js';

/**
 * An `error` listener for a BullMQ worker or queue that logs at most once per `everyMs` (10 s):
 * while Redis is away (restart, failover) every reconnect attempt repeats the same error many
 * times a second. The message goes through `scrub`.
 */
export function throttledErrorLog(log: Logger, msg: string, everyMs = 10_000): (err: Error) => void {
  let last = 0;
  let suppressed = 0;
  return (err) => {
    const now = Date.now();
    if (now - last < everyMs) {
      suppressed++;
      return;
    }
    last = now;
    log.error({ error: scrub(err.message), code: (err as NodeJS.ErrnoException).code, suppressed }, msg);
    suppressed = 0;
  };
}
