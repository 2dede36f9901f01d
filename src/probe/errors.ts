/**
 * Error classes that tell the runner what to do. Classify once, at the edge (src/clients):
 * anything that may succeed on a later attempt is a TransientError (BullMQ retries it with
 * backoff); everything else ends the run with an `error` result and the control goes unknown.
 */

/** 429, 5xx, timeouts, connection resets: worth another attempt. */
export class TransientError extends Error {
  override name = 'TransientError';
  /** Seconds the source asked us to wait (Retry-After), if it said. */
  readonly retryAfterSeconds: number | undefined;
  constructor(message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message, { cause: options?.cause });
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

/** The credentials may not read what the probe needs (401/403, missing scope). Not retried. */
export class PermissionError extends Error {
  override name = 'PermissionError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { cause: options?.cause });
  }
}

/** The source answered with something that fails its schema. Not retried. */
export class MalformedResponseError extends Error {
  override name = 'MalformedResponseError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { cause: options?.cause });
  }
}

/** A run exceeded its time budget. Transient: the next attempt may be faster. */
export class ProbeTimeoutError extends TransientError {
  override name = 'ProbeTimeoutError';
}

const transientCodes = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** True when another attempt may succeed. Unclassified errors are not retried: they are bugs or permanent. */
export function isTransient(err: unknown): boolean {
  if (err instanceof TransientError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && transientCodes.has(code);
}
