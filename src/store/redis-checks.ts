/**
 * Start-up checks of the Redis vigil uses (DESIGN.md §5): BullMQ needs `maxmemory-policy
 * noeviction`, and the day-by-day record needs persistence (AOF). vigil still starts when they
 * fail — the operator may know better — but says so, loudly and once.
 */
import type { Redis as IORedis } from 'ioredis';
import type { Logger } from 'pino';

/** What {@link checkRedisServer} found. A value is `'unknown'` when CONFIG could not be read. */
export interface RedisServerCheck {
  maxmemoryPolicy: string;
  appendonly: string;
  /** One line per problem, the same text as the logged warning; empty when all is well. */
  warnings: string[];
}

/** Logged and returned when the eviction policy is not noeviction. */
export const evictionWarning = "BullMQ jobs and vigil's history can be evicted: set maxmemory-policy noeviction";
/** Logged and returned when AOF is off. */
export const persistenceWarning =
  "Redis is not persistent: enable appendonly yes, or vigil's day-by-day record is lost on restart";
/** Logged and returned when CONFIG GET is refused (managed Redis that renames or forbids CONFIG). */
export const uncheckedWarning =
  'Could not read the Redis configuration (CONFIG is disabled or not permitted): make sure maxmemory-policy is noeviction and appendonly is yes';

const unknown = 'unknown';

/**
 * Reads `maxmemory-policy` and `appendonly` with CONFIG GET and warns about settings that put
 * vigil's data at risk. Never throws because of a refused CONFIG command; connection errors do
 * propagate (vigil cannot run without Redis anyway).
 */
export async function checkRedisServer(redis: IORedis, log: Logger): Promise<RedisServerCheck> {
  const warnings: string[] = [];
  const unreadable: Array<{ parameter: string; error: string }> = [];

  const read = async (parameter: string): Promise<string> => {
    try {
      // CONFIG GET answers [name, value], or [] for a parameter this server does not know.
      const reply = (await redis.config('GET', parameter)) as unknown;
      const value = Array.isArray(reply) ? reply[1] : undefined;
      if (typeof value === 'string') return value;
      unreadable.push({ parameter, error: 'not reported by CONFIG GET' });
      return unknown;
    } catch (err) {
      if (!isReplyError(err)) throw err;
      unreadable.push({ parameter, error: err.message });
      return unknown;
    }
  };

  const maxmemoryPolicy = await read('maxmemory-policy');
  const appendonly = await read('appendonly');

  if (unreadable.length > 0) {
    log.warn({ unreadable }, uncheckedWarning);
    warnings.push(uncheckedWarning);
  }
  if (maxmemoryPolicy !== unknown && maxmemoryPolicy !== 'noeviction') {
    log.warn({ maxmemoryPolicy }, evictionWarning);
    warnings.push(evictionWarning);
  }
  if (appendonly !== unknown && appendonly !== 'yes') {
    log.warn({ appendonly }, persistenceWarning);
    warnings.push(persistenceWarning);
  }
  if (warnings.length === 0) log.info({ maxmemoryPolicy, appendonly }, 'redis configuration checked');

  return { maxmemoryPolicy, appendonly, warnings };
}

/** An error the server sent back (unknown command, NOPERM, ERR …), as opposed to a transport failure. */
function isReplyError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError';
}
