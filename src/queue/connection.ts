import { Redis, type RedisOptions } from 'ioredis';

/** Where Redis is: a URL, a TCP host/port, or a unix socket path (the embedded server). */
export type RedisLocation = { url: string } | { host: string; port: number } | { path: string };

/** Connection settings shared by every client the daemon opens. */
export interface RedisSettings {
  location: RedisLocation;
  /** Read from the secret reference, never from YAML. */
  password?: string | undefined;
}

/**
 * Opens a client. BullMQ workers need `maxRetriesPerRequest: null` (they block on Redis); other
 * clients fail fast so an HTTP request or a scrape does not hang while Redis is away.
 */
export function openRedis(settings: RedisSettings, purpose: 'worker' | 'client', name = 'vigil', onError?: (err: Error) => void): Redis {
  const opts: RedisOptions = {
    connectionName: name,
    maxRetriesPerRequest: purpose === 'worker' ? null : 2,
    lazyConnect: false,
    ...(settings.password ? { password: settings.password } : {}),
  };
  const loc = settings.location;
  const redis = 'url' in loc ? new Redis(loc.url, opts) : 'path' in loc ? new Redis({ ...opts, path: loc.path }) : new Redis({ ...opts, host: loc.host, port: loc.port });
  // Without a listener ioredis prints "Unhandled error event" for every reconnect attempt.
  redis.on('error', onError ?? (() => undefined));
  return redis;
}

/** Where a Redis is, for messages: never includes a password (URLs with one are refused by config validation). */
export function describeLocation(loc: RedisLocation): string {
  if ('url' in loc) return loc.url;
  if ('path' in loc) return `unix:${loc.path}`;
  return `${loc.host}:${loc.port}`;
}

/** Redis could not be reached at start. */
export class RedisUnavailableError extends Error {
  override name = 'RedisUnavailableError';
}

/** Queue names. BullMQ forbids ':' in queue names and custom job ids. */
export const PROBES_QUEUE = 'probes';
export const RESULTS_QUEUE = 'results';

/** Data of a probe job. Names only: the worker resolves targets from its own config, so no secret ever enters Redis. */
export interface ProbeJobData {
  probe: string;
  target: string;
  /** ISO 8601 slot this run belongs to. */
  scheduledFor: string;
}

/** The deterministic id of the run of one probe × target in one slot: the same slot is the same job everywhere. */
export function slotJobId(probe: string, target: string, slot: Date): string {
  return `${probe}|${target}|${slot.getTime()}`;
}
