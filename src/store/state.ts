import type { Redis } from 'ioredis';
import { ProbeResult } from '../probe/contract.js';
import { runOutcome } from '../posture/status.js';
import { dayOf } from '../posture/days.js';

/**
 * How long a recorded runId is remembered, so a replayed result is not counted twice. Replays come
 * from retries and stalled jobs, which end within about 6 days (the results queue's backoff and
 * re-queue limits); 8 days covers them with a margin. Longer only costs memory: at 1,000 runs a
 * minute each day of TTL is ~1.4 M keys (the soak benchmark measured 40 days growing without end
 * in practice). A result older than that cannot change a day anyway: its day is closed.
 */
const SEEN_TTL_SECONDS = 8 * 86_400;

/** How long a day's ledger is kept after its last write (the closed snapshot holds it afterwards). */
const DAY_TTL_SECONDS = 60 * 86_400;

/**
 * Records a result once: remembers its runId (NX), counts the run, replaces the stored newest
 * result of its probe × target only when this one is at least as new (scheduledFor, then
 * finishedAt) — a late retry of an old slot never hides a newer measurement — and adds it to
 * the ledger of its day (the calendar day of `scheduledFor`): run, red, unknown and error counts,
 * the failing resources with their messages, and the day's newest run.
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
local u = ARGV[1]
redis.call('HINCRBY', KEYS[6], u .. '|runs', 1)
if ARGV[8] == 'fail' then redis.call('HINCRBY', KEYS[6], u .. '|red', 1) end
if ARGV[8] == 'unknown' then redis.call('HINCRBY', KEYS[6], u .. '|unknown', 1) end
if ARGV[8] == 'error' then redis.call('HINCRBY', KEYS[6], u .. '|error', 1) end
local lastOrder = redis.call('HGET', KEYS[6], u .. '|lastOrder')
if (not lastOrder) or lastOrder <= ARGV[3] then
  redis.call('HSET', KEYS[6], u .. '|lastOrder', ARGV[3], u .. '|last', ARGV[10])
end
local failing = cjson.decode(ARGV[9])
for i = 1, #failing, 2 do
  redis.call('HSET', KEYS[7], u .. '|' .. failing[i], failing[i + 1])
end
redis.call('EXPIRE', KEYS[6], ARGV[7])
redis.call('EXPIRE', KEYS[7], ARGV[7])
return 1
`;

/** At most this many failing resources of one run are kept in its day's ledger. */
const MAX_FAILING_PER_RUN = 2000;

/** The newest run of a probe × target on a day, as kept in the ledger. */
export interface DayLastRun {
  finishedAt: string;
  sourceFreshness: string | null;
  error: string | null;
}

/** One probe × target's record of one day. */
export interface UnitDay {
  runs: number;
  red: number;
  unknown: number;
  errors: number;
  last: DayLastRun | undefined;
  /** Failing resources seen that day, with the newest message for each. */
  failing: Array<{ resource: string; message: string }>;
}

/** `probe|target`: the field under which a probe × target's state is kept. */
export function resultField(probe: string, target: string): string {
  return `${probe}|${target}`;
}

/** The daemon's state in Redis: newest result per probe × target, run counters, last success. */
export class StateStore {
  private readonly keys: {
    seen: (runId: string) => string;
    latest: string;
    runs: string;
    order: string;
    lastSuccess: string;
    day: (day: string) => string;
    dayFailing: (day: string) => string;
  };

  constructor(
    private readonly redis: Redis,
    prefix: string,
    /** Days of the ledger are calendar days in this zone. */
    private readonly timezone = 'UTC',
  ) {
    this.keys = {
      seen: (runId) => `${prefix}:seen:${runId}`,
      latest: `${prefix}:latest`,
      runs: `${prefix}:runs`,
      order: `${prefix}:latest-order`,
      lastSuccess: `${prefix}:last-success`,
      day: (day) => `${prefix}:day:${day}`,
      dayFailing: (day) => `${prefix}:day-failing:${day}`,
    };
    if (!('vigilRecord2' in this.redis)) {
      this.redis.defineCommand('vigilRecord2', { numberOfKeys: 7, lua: recordScript });
    }
  }

  /** Records one result idempotently. Returns false when its runId was already recorded. */
  async record(result: ProbeResult): Promise<boolean> {
    const field = resultField(result.probe, result.target);
    const outcome = runOutcome(result);
    // A success is a run that judged every resource: an error or an "unknown" is not one.
    const success = outcome === 'pass' || outcome === 'fail' ? String(Math.floor(Date.parse(result.finishedAt) / 1000)) : '';
    const order = `${result.scheduledFor}|${result.finishedAt}`;
    const day = dayOf(new Date(result.scheduledFor), this.timezone);
    const failing: string[] = [];
    for (const f of result.findings) {
      if (f.outcome !== 'fail') continue;
      if (failing.length >= 2 * MAX_FAILING_PER_RUN) break;
      failing.push(f.resource, f.message);
    }
    const last: DayLastRun = {
      finishedAt: result.finishedAt,
      sourceFreshness: result.sourceFreshness ?? null,
      error: result.error ? `${result.error.class}: ${result.error.message}` : null,
    };
    const recorded = await (this.redis as unknown as { vigilRecord2(...args: string[]): Promise<number> }).vigilRecord2(
      this.keys.seen(result.runId),
      this.keys.latest,
      this.keys.runs,
      this.keys.order,
      this.keys.lastSuccess,
      this.keys.day(day),
      this.keys.dayFailing(day),
      field,
      JSON.stringify(result),
      order,
      `${result.probe}|${outcome}`,
      success,
      String(SEEN_TTL_SECONDS),
      String(DAY_TTL_SECONDS),
      outcome,
      JSON.stringify(failing),
      JSON.stringify(last),
    );
    return recorded === 1;
  }

  /** Newest result of one probe × target; undefined when there is none or it fails the schema. */
  async latestResult(probe: string, target: string): Promise<ProbeResult | undefined> {
    const json = await this.redis.hget(this.keys.latest, resultField(probe, target));
    if (json === null) return undefined;
    try {
      const parsed = ProbeResult.safeParse(JSON.parse(json));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
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

  /** The ledger of one day: every probe × target that recorded a run, keyed `probe|target`. */
  async dayLedger(day: string): Promise<Map<string, UnitDay>> {
    const [counts, failing] = await Promise.all([this.redis.hgetall(this.keys.day(day)), this.redis.hgetall(this.keys.dayFailing(day))]);
    const units = new Map<string, UnitDay>();
    const unit = (key: string): UnitDay => {
      let u = units.get(key);
      if (!u) {
        u = { runs: 0, red: 0, unknown: 0, errors: 0, last: undefined, failing: [] };
        units.set(key, u);
      }
      return u;
    };
    for (const [field, value] of Object.entries(counts)) {
      const cut = field.lastIndexOf('|');
      const key = field.slice(0, cut);
      const what = field.slice(cut + 1);
      if (what === 'runs') unit(key).runs = Number(value);
      else if (what === 'red') unit(key).red = Number(value);
      else if (what === 'unknown') unit(key).unknown = Number(value);
      else if (what === 'error') unit(key).errors = Number(value);
      else if (what === 'last') unit(key).last = JSON.parse(value) as DayLastRun;
    }
    for (const [field, message] of Object.entries(failing)) {
      // field = probe|target|resource; probe ids and target names contain no '|'.
      const first = field.indexOf('|');
      const second = field.indexOf('|', first + 1);
      unit(field.slice(0, second)).failing.push({ resource: field.slice(second + 1), message });
    }
    for (const u of units.values()) u.failing.sort((a, b) => (a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0));
    return units;
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
