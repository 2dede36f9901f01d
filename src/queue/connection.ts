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
export function openRedis(settings: RedisSettings, purpose: 'worker' | 'client', name = 'vigil'): Redis {
  const opts: RedisOptions = {
    connectionName: name,
    maxRetriesPerRequest: purpose === 'worker' ? null : 2,
    lazyConnect: false,
    ...(settings.password ? { password: settings.password } : {}),
  };
  const loc = settings.location;
  if ('url' in loc) return new Redis(loc.url, opts);
  if ('path' in loc) return new Redis({ ...opts, path: loc.path });
  return new Redis({ ...opts, host: loc.host, port: loc.port });
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
