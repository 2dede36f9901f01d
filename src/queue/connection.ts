import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';

/** A Redis node or sentinel. */
export interface RedisNode {
  host: string;
  port: number;
}

/**
 * Where Redis is: a URL, a TCP host/port, a unix socket path (the embedded server), the primary a
 * Sentinel group names, or a Redis Cluster (some of its nodes).
 */
export type RedisLocation =
  | { url: string }
  | { host: string; port: number }
  | { path: string }
  | { sentinels: RedisNode[]; name: string }
  | { cluster: RedisNode[] };

/** TLS material for Redis connections (PEM contents, not paths). */
export interface RedisTls {
  ca: string;
  cert?: string | undefined;
  key?: string | undefined;
  servername?: string | undefined;
}

/** Connection settings shared by every client the daemon opens. */
export interface RedisSettings {
  location: RedisLocation;
  /** Read from the secret reference, never from YAML. */
  password?: string | undefined;
  /** ACL user (Redis 6+). */
  username?: string | undefined;
  tls?: RedisTls | undefined;
}

/** The `redis:` section as far as connections go (see src/config/schema.ts). */
export interface RedisConfig {
  url?: string | undefined;
  prefix: string;
  sentinels?: RedisNode[] | undefined;
  sentinelName?: string | undefined;
  cluster?: RedisNode[] | undefined;
  username?: string | undefined;
  tls?: { caFile: string; certFile?: string | undefined; keyFile?: string | undefined; servername?: string | undefined } | undefined;
}

/**
 * The connection settings of a configured external Redis (url, sentinels or cluster), or undefined
 * when none is configured (vigil runs its own). TLS files are read now, relative to `configDir`.
 */
export function externalRedisSettings(redis: RedisConfig, password: string | undefined, configDir: string): RedisSettings | undefined {
  let location: RedisLocation;
  if (redis.url) location = { url: redis.url };
  else if (redis.sentinels && redis.sentinelName) location = { sentinels: redis.sentinels, name: redis.sentinelName };
  else if (redis.cluster) location = { cluster: redis.cluster };
  else return undefined;
  const read = (file: string) => readFileSync(path.resolve(configDir, file), 'utf8');
  const tls = redis.tls
    ? { ca: read(redis.tls.caFile), cert: redis.tls.certFile ? read(redis.tls.certFile) : undefined, key: redis.tls.keyFile ? read(redis.tls.keyFile) : undefined, servername: redis.tls.servername }
    : undefined;
  return { location, password, username: redis.username, tls };
}

/**
 * The prefix of every key vigil and BullMQ write. In a Redis Cluster it is the hash tag
 * `{prefix}`: all keys then live in one slot, so the multi-key Lua scripts and MULTI blocks of
 * vigil (state, day close, email) and BullMQ stay valid. Elsewhere it is the prefix as configured
 * (existing keys keep their names).
 */
export function keyPrefix(redis: Pick<RedisConfig, 'prefix' | 'cluster'>): string {
  return redis.cluster ? `{${redis.prefix}}` : redis.prefix;
}

/**
 * Opens a client. BullMQ workers need `maxRetriesPerRequest: null` (they block on Redis); other
 * clients fail fast so an HTTP request or a scrape does not hang while Redis is away.
 */
export function openRedis(settings: RedisSettings, purpose: 'worker' | 'client', name = 'vigil', onError?: (err: Error) => void): Redis {
  const tls: ConnectionOptions | undefined = settings.tls
    ? {
        ca: settings.tls.ca,
        ...(settings.tls.cert ? { cert: settings.tls.cert, key: settings.tls.key } : {}),
        ...(settings.tls.servername ? { servername: settings.tls.servername } : {}),
        minVersion: 'TLSv1.2',
      }
    : undefined;
  const opts: RedisOptions = {
    connectionName: name,
    maxRetriesPerRequest: purpose === 'worker' ? null : 2,
    lazyConnect: false,
    connectTimeout: connectTimeoutMs,
    ...(settings.password ? { password: settings.password } : {}),
    ...(settings.username ? { username: settings.username } : {}),
    ...(tls ? { tls } : {}),
  };
  const loc = settings.location;
  let redis: Redis;
  if ('cluster' in loc) {
    // BullMQ and every vigil call site take a Redis; a Cluster answers the same commands (all
    // vigil keys share one hash tag, see keyPrefix), so it is handed over as one.
    const cluster = new Cluster(loc.cluster, {
      redisOptions: opts,
      // Errors while the cluster is resharding or failing over are retried, not surfaced.
      maxRedirections: 32,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 500,
    });
    redis = cluster as unknown as Redis;
  } else if ('sentinels' in loc) {
    redis = new Redis({
      ...opts,
      sentinels: loc.sentinels,
      name: loc.name,
      // The sentinels usually run beside the servers: same TLS (they are asked without AUTH).
      ...(tls ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
    });
  } else if ('url' in loc) redis = new Redis(loc.url, opts);
  else if ('path' in loc) redis = new Redis({ ...opts, path: loc.path });
  else redis = new Redis({ ...opts, host: loc.host, port: loc.port });
  // Without a listener ioredis prints "Unhandled error event" for every reconnect attempt.
  redis.on('error', (err: Error) => {
    guardStream(redis);
    (onError ?? (() => undefined))(err);
  });
  return redis;
}

/**
 * ioredis listens for a socket's first 'error' only (`stream.once`). A failed TLS handshake can
 * emit two (the certificate error, then the peer's alert), and the second would be an uncaught
 * exception that stops the daemon. The socket gets a lasting listener of its own the moment the
 * first error is seen; ioredis still handles (and reconnects on) the first.
 */
function guardStream(redis: Redis): void {
  const stream = (redis as unknown as { stream?: NodeJS.EventEmitter & { vigilGuarded?: boolean } }).stream;
  if (!stream || stream.vigilGuarded) return;
  stream.vigilGuarded = true;
  stream.on('error', () => undefined);
}

/** Where a Redis is, for messages: never includes a password (URLs with one are refused by config validation). */
export function describeLocation(loc: RedisLocation): string {
  if ('url' in loc) return loc.url;
  if ('sentinels' in loc) return `sentinel ${loc.name} via ${loc.sentinels.map((n) => `${n.host}:${n.port}`).join(',')}`;
  if ('cluster' in loc) return `cluster ${loc.cluster.map((n) => `${n.host}:${n.port}`).join(',')}`;
  if ('path' in loc) return `unix:${loc.path}`;
  return `${loc.host}:${loc.port}`;
}

/** Redis could not be reached at start. */
export class RedisUnavailableError extends Error {
  override name = 'RedisUnavailableError';
}

/**
 * How long one connection attempt may take. For `rediss://` ioredis counts until the TLS
 * handshake completes, so a server that does not speak TLS (it waits for a command line that
 * never comes) fails the attempt here instead of holding it open.
 */
const connectTimeoutMs = 5_000;

/** Default bound of {@link pingAtStart}: two connection attempts. */
export const startPingTimeoutMs = 10_000;

/**
 * The first PING at start, bounded: a client left to itself retries a silent server for as long
 * as its retry budget lasts. Resolves on PONG.
 *
 * @throws RedisUnavailableError (one line, never a password) when no PONG came within `timeoutMs`
 *   or the server answered with an error (e.g. NOAUTH).
 */
export async function pingAtStart(redis: Redis, location: RedisLocation, timeoutMs = startPingTimeoutMs): Promise<void> {
  let lastError: Error | undefined;
  const capture = (err: Error) => {
    lastError = err;
  };
  redis.on('error', capture);
  const ping = redis.ping();
  // Settles (when the caller disconnects) after we may have stopped waiting for it.
  ping.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolveTimeout) => {
    timer = setTimeout(() => resolveTimeout('timeout'), timeoutMs);
  });
  let failure: Error | undefined;
  try {
    if ((await Promise.race([ping.then(() => 'pong' as const), deadline])) === 'pong') return;
  } catch (err) {
    failure = err as Error;
  } finally {
    clearTimeout(timer);
    redis.off('error', capture);
  }
  // A connection error says more than the "max retries" or reply error that ends the PING.
  const cause = (lastError as Error | undefined) ?? failure;
  let reason = cause?.message ?? `no answer within ${timeoutMs} ms`;
  const silent = cause === undefined || (cause as NodeJS.ErrnoException).code === 'ETIMEDOUT';
  if ('url' in location && location.url.startsWith('rediss:') && silent) {
    reason += `; no TLS session within ${connectTimeoutMs / 1000} s: if that server does not serve TLS, use a redis:// URL`;
  }
  throw new RedisUnavailableError(`cannot reach Redis at ${describeLocation(location)} (${reason.replace(/\s+/g, ' ')}): start it, or fix redis.url`);
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
