import type { Redis } from 'ioredis';
import { ProbeResult } from '../probe/contract.js';
import { runOutcome } from '../posture/status.js';

/** How long a recorded runId is remembered, so a replayed result is not counted twice. */
const SEEN_TTL_SECONDS = 40 * 86_400;

/**
 * Records a result once: remembers its runId (NX), counts the run, and replaces the stored
 * newest result of its probe × target only when this one is at least as new (scheduledFor, then
 * finishedAt) — a late retry of an old slot never hides a newer measurement.
 * Returns 1 when recorded, 0 when this runId was already recorded.
 */
const recordScript = `
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[6]) == false then return 0 end
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
local cur = redis.call('HGET', KEYS[4], ARGV[1])
if (not cur) or cur <= ARGV[3] then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
end
if ARGV[5] ~= '' then
  local last = redis.call('HGET', KEYS[5], ARGV[1])
  if (not last) or tonumber(last) < tonumber(ARGV[5]) then redis.call('HSET', KEYS[5], ARGV[1], ARGV[5]) end
end
return 1
`;

/** `probe|target`: the field under which a probe × target's state is kept. */
export function resultField(probe: string, target: string): string {
  return `${probe}|${target}`;
}

/** The daemon's state in Redis: newest result per probe × target, run counters, last success. */
export class StateStore {
  private readonly keys: { seen: (runId: string) => string; latest: string; runs: string; order: string; lastSuccess: string };

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = {
      seen: (runId) => `${prefix}:seen:${runId}`,
      latest: `${prefix}:latest`,
      runs: `${prefix}:runs`,
      order: `${prefix}:latest-order`,
      lastSuccess: `${prefix}:last-success`,
    };
    if (!('vigilRecord' in this.redis)) {
      this.redis.defineCommand('vigilRecord', { numberOfKeys: 5, lua: recordScript });
    }
  }

  /** Records one result idempotently. Returns false when its runId was already recorded. */
  async record(result: ProbeResult): Promise<boolean> {
    const field = resultField(result.probe, result.target);
    const outcome = runOutcome(result);
    // A success is a run that judged every resource: an error or an "unknown" is not one.
    const success = outcome === 'pass' || outcome === 'fail' ? String(Math.floor(Date.parse(result.finishedAt) / 1000)) : '';
    const order = `${result.scheduledFor}|${result.finishedAt}`;
    const recorded = await (this.redis as unknown as { vigilRecord(...args: string[]): Promise<number> }).vigilRecord(
      this.keys.seen(result.runId),
      this.keys.latest,
      this.keys.runs,
      this.keys.order,
      this.keys.lastSuccess,
      field,
      JSON.stringify(result),
      order,
      `${result.probe}|${outcome}`,
      success,
      String(SEEN_TTL_SECONDS),
    );
    return recorded === 1;
  }

  /** Newest result of every probe × target, keyed `probe|target`. Entries that fail the schema are dropped and reported. */
  async latestResults(): Promise<{ results: Map<string, ProbeResult>; corrupt: string[] }> {
    const raw = await this.redis.hgetall(this.keys.latest);
    const results = new Map<string, ProbeResult>();
    const corrupt: string[] = [];
    for (const [field, json] of Object.entries(raw)) {
      let parsed: ReturnType<typeof ProbeResult.safeParse> | undefined;
      try {
        parsed = ProbeResult.safeParse(JSON.parse(json));
      } catch {
        parsed = undefined;
      }
      if (parsed?.success) results.set(field, parsed.data);
      else corrupt.push(field);
    }
    return { results, corrupt };
  }

  /** Run counts by `probe|outcome`. */
  async runCounts(): Promise<Map<string, number>> {
    const raw = await this.redis.hgetall(this.keys.runs);
    return new Map(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }

  /** Unix seconds of the last run that judged every resource (no error, nothing unknown), by `probe|target`. */
  async lastSuccess(): Promise<Map<string, number>> {
    const raw = await this.redis.hgetall(this.keys.lastSuccess);
    return new Map(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }
}
