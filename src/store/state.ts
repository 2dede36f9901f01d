import type { Redis } from 'ioredis';
import { ProbeResult } from '../probe/contract.js';
import { runOutcome } from '../posture/status.js';
import { dayOf } from '../posture/days.js';
import { MAX_FAILING_PER_RUN } from '../posture/ledger-limits.js';

/**
 * The replay guard: how a result is counted once, in memory that does not grow with the number of
 * runs.
 *
 * What has to be remembered is which slots of a probe × target were recorded: a run is identified
 * by its slot (the scheduler's job id is `probe|target|slotMs`, and every retry, stall re-queue or
 * second delivery of a run carries the same slot). So each probe × target keeps one hash,
 * `<prefix>:seen-slots:<probe>|<target>`, holding one bitmap per UTC day ("chunk") of slots, one
 * bit per slot: field `m:<day number>` for slots on a whole minute (every 5-field cron slot and
 * the midnight catch-up slot; 1,440 bits = 180 bytes a day), `s:<day number>` for slots on a whole
 * second that are not on a minute (6-field crons; 86,400 bits = 10.8 kB a day), and for anything
 * else an exact field `x:<slotMs>`. A bitmap is allocated whole when its day is first written, so
 * recording more runs of the day costs no more memory.
 *
 * How long: a day's bitmap is needed as long as a result of that day may still arrive, a first
 * arrival or a replay. Results arrive late from the results queue's retries (~6 days of backoff)
 * and from its failed set (kept 30 days, from which stalled jobs are re-queued and an operator may
 * retry); a day that is closed still counts such a result once, in `vigil_probe_runs_total` and in
 * its ledger (the published snapshot does not change: it is immutable, and read back from Redis or
 * the archive, never rebuilt). The horizon is measured on the unit's own record, not on a clock:
 * a result is accepted while its slot is at most {@link REPLAY_HORIZON_MS} older than the newest
 * slot this probe × target recorded (`newest` in the same hash), and bitmaps of days entirely
 * older than that are deleted when the unit's newest slot moves to a new day. A result older than
 * the horizon is refused (logged, not counted): it could be a replay whose bitmap is gone, and a
 * result 40 days older than its unit's newest measurement can neither change a day nor the
 * unit's newest result. Because nothing expires by wall-clock time, a daemon that was down for
 * months still recognises every replay of what it recorded before. A slot more than a day ahead of
 * the recorder's clock is recorded but does not move `newest`, so one result with a wrong clock
 * cannot push every later one beyond the horizon.
 *
 * Memory: per probe × target at most horizon + 1 = 41 day bitmaps — 10.2 kB (MEMORY USAGE) for any
 * schedule on whole minutes, whatever the number of runs; 1,000 such targets ≈ 10 MB once 41 days
 * are held, growing by ~0.25 MB a day until then. A 6-field schedule adds up to 10.8 kB a day. The
 * key has no TTL, like the unit's field in `<prefix>:latest`: a probe × target removed from the
 * config keeps its last ≤ 41 bitmaps. (The day ledger, 60 days, outlives the horizon.)
 *
 * Identity: two results of one probe × target × slot count once whatever their runIds (the
 * scheduler never makes two runs of a slot: its job id is the slot). The per-run keys
 * `<prefix>:seen:<runId>` of earlier versions are still read, never written: once they have expired
 * (8 days after an upgrade) that check can go.
 */
export const REPLAY_HORIZON_MS = 40 * 86_400_000;

/** How long a day's ledger is kept after its last write (the closed snapshot holds it afterwards). */
const DAY_TTL_SECONDS = 60 * 86_400;

/** One replay-guard chunk: a UTC day (the guard needs no calendar, only disjoint spans of slots). */
const GUARD_DAY_MS = 86_400_000;

/**
 * Records a result once. First the replay guard (see {@link REPLAY_HORIZON_MS}): refuses a slot
 * older than the horizon (2), returns 0 when the slot's bit is already set — or, for results
 * recorded before the guard existed, when the old per-run key `<prefix>:seen:<runId>` (8-day TTL,
 * never written any more) still exists. Then counts the run, replaces the stored newest result of
 * its probe × target only when this one is at least as new (scheduledFor, then finishedAt) — a
 * late retry of an old slot never hides a newer measurement — and adds it to the ledger of its day
 * (the calendar day of `scheduledFor`): run, red, unknown and error counts, the failing resources
 * with their messages, and the day's newest run. The guard's bit is written with everything else,
 * in the same script. Returns 1 when recorded.
 *
 * The day's population (`<prefix>:day-population:<day>`, field `probe|target|resource`): every
 * resource a run judged, merged over the day's runs to its worst outcome (fail > unknown > pass >
 * not_applicable), the message of that outcome (not kept for pass; of equal outcomes the smallest,
 * so the merge does not depend on the order results arrive in), and the lowest numeric
 * `details.level` any run reported. Value `<o>|<level>|<message>`, `o` one of `f u p n`, level
 * empty when none. A run's resources beyond {@link MAX_POPULATION_PER_RUN} are counted, not kept:
 * the day's `probe|target|popOmitted` holds the largest such cut.
 */
const recordScript = `
local failing = cjson.decode(ARGV[8])
local DAY = ${GUARD_DAY_MS}
local slot = tonumber(ARGV[10])
local horizon = tonumber(ARGV[12])
local newestRaw = redis.call('HGET', KEYS[1], 'newest')
local newest = nil
if newestRaw then newest = tonumber(newestRaw) end
if newest and slot < newest - horizon then return 2 end
if redis.call('EXISTS', KEYS[8]) == 1 then return 0 end
local chunk = math.floor(slot / DAY)
local within = slot - chunk * DAY
local field, size, index
if within % 60000 == 0 then
  field = 'm:' .. string.format('%.0f', chunk); size = 180; index = within / 60000
elseif within % 1000 == 0 then
  field = 's:' .. string.format('%.0f', chunk); size = 10800; index = within / 1000
end
if field then
  local bm = redis.call('HGET', KEYS[1], field)
  if not bm then bm = string.rep(string.char(0), size)
  elseif #bm < size then bm = bm .. string.rep(string.char(0), size - #bm) end
  local b = math.floor(index / 8) + 1
  local mask = bit.lshift(1, 7 - (index % 8))
  local byte = string.byte(bm, b)
  if bit.band(byte, mask) ~= 0 then return 0 end
  redis.call('HSET', KEYS[1], field, string.sub(bm, 1, b - 1) .. string.char(bit.bor(byte, mask)) .. string.sub(bm, b + 1))
else
  if redis.call('HSETNX', KEYS[1], 'x:' .. string.format('%.0f', slot), '1') == 0 then return 0 end
end
if ((not newest) or slot > newest) and slot <= tonumber(ARGV[11]) + DAY then
  redis.call('HSET', KEYS[1], 'newest', string.format('%.0f', slot))
  if (not newest) or math.floor(slot / DAY) > math.floor(newest / DAY) then
    local floor = slot - horizon
    for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
      local kind = string.sub(f, 1, 2)
      local n = tonumber(string.sub(f, 3))
      if n and (((kind == 'm:' or kind == 's:') and (n + 1) * DAY <= floor) or (kind == 'x:' and n < floor)) then
        redis.call('HDEL', KEYS[1], f)
      end
    end
  end
end
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
if ARGV[7] == 'fail' then redis.call('HINCRBY', KEYS[6], u .. '|red', 1) end
if ARGV[7] == 'unknown' then redis.call('HINCRBY', KEYS[6], u .. '|unknown', 1) end
if ARGV[7] == 'error' then
  redis.call('HINCRBY', KEYS[6], u .. '|error', 1)
  local errorOrder = redis.call('HGET', KEYS[6], u .. '|errorOrder')
  if (not errorOrder) or errorOrder <= ARGV[3] then
    redis.call('HSET', KEYS[6], u .. '|errorOrder', ARGV[3], u .. '|lastErrorRun', ARGV[9])
  end
end
local lastOrder = redis.call('HGET', KEYS[6], u .. '|lastOrder')
if (not lastOrder) or lastOrder <= ARGV[3] then
  redis.call('HSET', KEYS[6], u .. '|lastOrder', ARGV[3], u .. '|last', ARGV[9])
end
for i = 1, #failing, 2 do
  redis.call('HSET', KEYS[7], u .. '|' .. failing[i], failing[i + 1])
end
local pop = cjson.decode(ARGV[13])
local rank = { f = 4, u = 3, p = 2, n = 1 }
local CHUNK = 500
for s = 1, #pop, 2 * CHUNK do
  local fields = {}
  for i = s, math.min(#pop, s + 2 * CHUNK - 1), 2 do fields[#fields + 1] = u .. '|' .. pop[i] end
  local curs = redis.call('HMGET', KEYS[9], unpack(fields))
  local out = {}
  for j = 1, #fields do
    local nv = pop[s + 2 * j - 1]
    local cv = curs[j]
    local merged = nv
    if cv then
      local cs = string.find(cv, '|', 3, true)
      if cv == nv then merged = nil
      elseif cs and rank[string.sub(cv, 1, 1)] then
        local ns = string.find(nv, '|', 3, true)
        local co, no = string.sub(cv, 1, 1), string.sub(nv, 1, 1)
        local cl, nl = string.sub(cv, 3, cs - 1), string.sub(nv, 3, ns - 1)
        local cm, nm = string.sub(cv, cs + 1), string.sub(nv, ns + 1)
        local level = cl
        if nl ~= '' and (cl == '' or tonumber(nl) < tonumber(cl)) then level = nl end
        local o, msg = co, cm
        if rank[no] > rank[co] then o = no; msg = nm
        elseif rank[no] == rank[co] and nm < cm then msg = nm end
        merged = o .. '|' .. level .. '|' .. msg
        if merged == cv then merged = nil end
      end
    end
    if merged then out[#out + 1] = fields[j]; out[#out + 1] = merged end
  end
  if #out > 0 then redis.call('HSET', KEYS[9], unpack(out)) end
end
-- Marks the unit's day as recorded with a population (even when a run judged nothing).
redis.call('HSET', KEYS[6], u .. '|popv', '1')
local cut = tonumber(ARGV[14])
if cut > 0 then
  local had = redis.call('HGET', KEYS[6], u .. '|popOmitted')
  if (not had) or tonumber(had) < cut then redis.call('HSET', KEYS[6], u .. '|popOmitted', ARGV[14]) end
end
redis.call('EXPIRE', KEYS[6], ARGV[6])
redis.call('EXPIRE', KEYS[7], ARGV[6])
-- Like KEYS[7]: a no-op when the day has no population yet, a refresh by every run otherwise.
redis.call('EXPIRE', KEYS[9], ARGV[6])
return 1
`;

/**
 * What recording one result did: `recorded` the first time its slot arrives, `replay` when its
 * slot was recorded already, `beyond-horizon` when its slot is more than {@link REPLAY_HORIZON_MS}
 * older than its probe × target's newest recorded slot (refused, not counted).
 */
export type RecordOutcome = 'recorded' | 'replay' | 'beyond-horizon';

/** A result whose `scheduledFor` is not a date: it has no slot and no day, so it cannot be recorded. */
export class InvalidSlotError extends Error {
  override name = 'InvalidSlotError';
  constructor(scheduledFor: string) {
    super(`result scheduledFor "${scheduledFor.slice(0, 40)}" is not a date: the run has no slot to be recorded under`);
  }
}

/** At most this many failing resources of one run are kept in its day's ledger (defined with the pure posture code, which needs it too). */
export { MAX_FAILING_PER_RUN };

/**
 * At most this many resources of one run go into its day's population (non-pass ones first); the
 * rest are counted in `omitted`. 20,000 covers the largest GitHub orgs and AWS accounts probed.
 */
export const MAX_POPULATION_PER_RUN = 20_000;

/** Population messages are cut to this many characters (one line of remediation). */
export const MAX_POPULATION_MESSAGE = 300;

/** A resource's outcome in the population. */
export type PopulationOutcome = 'pass' | 'fail' | 'unknown' | 'not_applicable';

/** One resource judged on a day: worst outcome, its message (non-pass), lowest evidence level reported. */
export interface PopulationEntry {
  resource: string;
  outcome: PopulationOutcome;
  message?: string;
  level?: number;
}

const outcomeCode: Record<PopulationOutcome, string> = { fail: 'f', unknown: 'u', pass: 'p', not_applicable: 'n' };
const codeOutcome: Record<string, PopulationOutcome> = { f: 'fail', u: 'unknown', p: 'pass', n: 'not_applicable' };
const populationRank: Record<PopulationOutcome, number> = { fail: 4, unknown: 3, pass: 2, not_applicable: 1 };

/** Replaces lone surrogates (which JSON cannot carry to the record script as text) with U+FFFD. */
function wellFormed(text: string): string {
  return text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

/** Cuts a message to {@link MAX_POPULATION_MESSAGE} characters without splitting a surrogate pair. */
function populationMessage(message: string): string {
  const well = wellFormed(message);
  if (well.length <= MAX_POPULATION_MESSAGE) return well;
  // The code-unit cut may end inside a pair: drop its high half (a lone surrogate fails the record script's cjson).
  return `${Array.from(well).slice(0, MAX_POPULATION_MESSAGE - 1).join('').slice(0, MAX_POPULATION_MESSAGE - 1).replace(/[\uD800-\uDBFF]$/, '')}…`;
}

/**
 * A run's population as the record script takes it: flat `[resource, "<o>|<level>|<message>", …]`,
 * one entry per resource (a resource listed twice in one run is merged here the way the day merges
 * runs); when the run has more than {@link MAX_POPULATION_PER_RUN} resources, non-pass ones are
 * kept first, then by name, so the runs of a day keep the same ones and the cut is the same.
 */
export function encodePopulation(findings: ProbeResult['findings']): { flat: string[]; omitted: number } {
  const merged = new Map<string, PopulationEntry>();
  for (const f of findings) {
    const raw = f.details?.level;
    // The evidence ladder starts at L0: anything else is no level (a negative one would fail the snapshot schema and wedge the day close).
    const level = typeof raw === 'number' && Number.isFinite(raw) && raw >= 0 ? raw : undefined;
    const resource = wellFormed(f.resource);
    const next: PopulationEntry = { resource, outcome: f.outcome, ...(f.outcome !== 'pass' && { message: populationMessage(f.message) }), ...(level !== undefined && { level }) };
    const cur = merged.get(resource);
    merged.set(resource, cur ? mergeEntry(cur, next) : next);
  }
  let entries = [...merged.values()];
  let omitted = 0;
  if (entries.length > MAX_POPULATION_PER_RUN) {
    // Non-pass first, then by name: every run of a stable population keeps the same resources.
    const byName = (x: PopulationEntry, y: PopulationEntry) => (x.resource < y.resource ? -1 : x.resource > y.resource ? 1 : 0);
    entries = [...entries.filter((x) => x.outcome !== 'pass').sort(byName), ...entries.filter((x) => x.outcome === 'pass').sort(byName)];
    omitted = entries.length - MAX_POPULATION_PER_RUN;
    entries = entries.slice(0, MAX_POPULATION_PER_RUN);
  }
  const flat: string[] = [];
  for (const x of entries) flat.push(x.resource, `${outcomeCode[x.outcome]}|${x.level ?? ''}|${x.message ?? ''}`);
  return { flat, omitted };
}

/** The day's merge of two judgements of one resource (the record script does the same in Lua). */
export function mergeEntry(a: PopulationEntry, b: PopulationEntry): PopulationEntry {
  const worse = populationRank[b.outcome] > populationRank[a.outcome] ? b : a;
  let message = worse.message;
  if (populationRank[a.outcome] === populationRank[b.outcome] && a.message !== undefined && b.message !== undefined) message = b.message < a.message ? b.message : a.message;
  const level = a.level === undefined ? b.level : b.level === undefined ? a.level : Math.min(a.level, b.level);
  return { resource: a.resource, outcome: worse.outcome, ...(message !== undefined && { message }), ...(level !== undefined && { level }) };
}

function decodePopulation(resource: string, value: string): PopulationEntry | undefined {
  const outcome = codeOutcome[value.slice(0, 1)];
  const bar = value.indexOf('|', 2);
  if (outcome === undefined || value[1] !== '|' || bar < 0) return undefined;
  const levelText = value.slice(2, bar);
  const level = levelText === '' ? undefined : Number(levelText);
  const message = value.slice(bar + 1);
  return {
    resource,
    outcome,
    ...(outcome !== 'pass' && { message }),
    ...(level !== undefined && Number.isFinite(level) && { level }),
  };
}

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
  /** The error of the day's newest run that could not observe, `Class: message` (absent when none, and in ledgers from before it was kept). */
  lastError?: string;
  /** Failing resources seen that day, with the newest message for each. */
  failing: Array<{ resource: string; message: string }>;
  /** Every resource judged that day (sorted by resource); empty when its runs judged none; absent for days recorded before vigil kept a population. */
  population?: PopulationEntry[];
  /** Resources of the day's runs not kept in `population` (the largest cut of one run beyond {@link MAX_POPULATION_PER_RUN}). */
  populationOmitted?: number;
}

function popcount(byte: number): number {
  let n = 0;
  for (let b = byte; b !== 0; b &= b - 1) n++;
  return n;
}

/** `probe|target`: the field under which a probe × target's state is kept. */
export function resultField(probe: string, target: string): string {
  return `${probe}|${target}`;
}

/** The daemon's state in Redis: newest result per probe × target, run counters, last success. */
export class StateStore {
  private readonly keys: {
    guard: (field: string) => string;
    legacySeen: (runId: string) => string;
    latest: string;
    runs: string;
    order: string;
    lastSuccess: string;
    day: (day: string) => string;
    dayFailing: (day: string) => string;
    dayPopulation: (day: string) => string;
  };

  constructor(
    private readonly redis: Redis,
    prefix: string,
    /** Days of the ledger are calendar days in this zone. */
    private readonly timezone = 'UTC',
  ) {
    this.keys = {
      guard: (field) => `${prefix}:seen-slots:${field}`,
      legacySeen: (runId) => `${prefix}:seen:${runId}`,
      latest: `${prefix}:latest`,
      runs: `${prefix}:runs`,
      order: `${prefix}:latest-order`,
      lastSuccess: `${prefix}:last-success`,
      day: (day) => `${prefix}:day:${day}`,
      dayFailing: (day) => `${prefix}:day-failing:${day}`,
      dayPopulation: (day) => `${prefix}:day-population:${day}`,
    };
    if (!('vigilRecord4' in this.redis)) {
      this.redis.defineCommand('vigilRecord4', { numberOfKeys: 9, lua: recordScript });
    }
  }

  /** Records one result idempotently. Returns false when it was not recorded now (a replay, or beyond the horizon). */
  async record(result: ProbeResult): Promise<boolean> {
    return (await this.recordOnce(result)) === 'recorded';
  }

  /**
   * Records one result at most once per probe × target × slot (see {@link REPLAY_HORIZON_MS}).
   *
   * @throws {@link InvalidSlotError} when `scheduledFor` is not a date.
   */
  async recordOnce(result: ProbeResult): Promise<RecordOutcome> {
    const slotMs = Date.parse(result.scheduledFor);
    if (Number.isNaN(slotMs)) throw new InvalidSlotError(result.scheduledFor);
    const field = resultField(result.probe, result.target);
    const outcome = runOutcome(result);
    // A success is a run that judged every resource: an error or an "unknown" is not one.
    const success = outcome === 'pass' || outcome === 'fail' ? String(Math.floor(Date.parse(result.finishedAt) / 1000)) : '';
    const order = `${result.scheduledFor}|${result.finishedAt}`;
    const day = dayOf(new Date(slotMs), this.timezone);
    // Cut by distinct resources (the ledger keys failures by resource, last message wins): a cut
    // then always leaves MAX_FAILING_PER_RUN entries, which is how the day knows its list may be
    // incomplete. Cutting by findings let many failures of one resource hide a cut (R6).
    const failingByResource = new Map<string, string>();
    for (const f of result.findings) {
      if (f.outcome !== 'fail') continue;
      // Lone surrogates would fail the record script's JSON decoding (and the run with it).
      const resource = wellFormed(f.resource);
      if (failingByResource.size >= MAX_FAILING_PER_RUN && !failingByResource.has(resource)) continue;
      failingByResource.set(resource, wellFormed(f.message));
    }
    const failing = [...failingByResource].flat();
    const last: DayLastRun = {
      finishedAt: result.finishedAt,
      sourceFreshness: result.sourceFreshness ?? null,
      error: result.error ? `${result.error.class}: ${result.error.message}` : null,
    };
    const population = encodePopulation(result.findings);
    const code = await (this.redis as unknown as { vigilRecord4(...args: string[]): Promise<number> }).vigilRecord4(
      this.keys.guard(field),
      this.keys.latest,
      this.keys.runs,
      this.keys.order,
      this.keys.lastSuccess,
      this.keys.day(day),
      this.keys.dayFailing(day),
      this.keys.legacySeen(result.runId),
      this.keys.dayPopulation(day),
      field,
      JSON.stringify(result),
      order,
      `${result.probe}|${outcome}`,
      success,
      String(DAY_TTL_SECONDS),
      outcome,
      JSON.stringify(failing),
      JSON.stringify(last),
      String(slotMs),
      String(Date.now()),
      String(REPLAY_HORIZON_MS),
      JSON.stringify(population.flat),
      String(population.omitted),
    );
    return code === 1 ? 'recorded' : code === 2 ? 'beyond-horizon' : 'replay';
  }

  /** Whether the replay guard holds the run of this probe × target in this slot (recorded, and within the horizon). */
  async isRecorded(probe: string, target: string, slot: Date): Promise<boolean> {
    const slotMs = slot.getTime();
    const chunk = Math.floor(slotMs / GUARD_DAY_MS);
    const within = slotMs - chunk * GUARD_DAY_MS;
    const key = this.keys.guard(resultField(probe, target));
    if (within % 1000 !== 0) return (await this.redis.hexists(key, `x:${slotMs}`)) === 1;
    const [name, index] = within % 60_000 === 0 ? [`m:${chunk}`, within / 60_000] : [`s:${chunk}`, within / 1000];
    const bitmap = await this.redis.hgetBuffer(key, name);
    const byte = bitmap?.[index >> 3];
    return byte !== undefined && (byte & (0x80 >> (index & 7))) !== 0;
  }

  /**
   * How many runs the replay guard holds, over every probe × target that has a newest result: each
   * one recorded once, within the horizon. Reads every guard: for tests and benchmarks, not scrapes.
   */
  async recordedRuns(): Promise<number> {
    let total = 0;
    for (const field of await this.redis.hkeys(this.keys.latest)) {
      const guard = await this.redis.hgetallBuffer(this.keys.guard(field));
      for (const [name, value] of Object.entries(guard)) {
        if (name.startsWith('x:')) total++;
        else if (name.startsWith('m:') || name.startsWith('s:')) for (const byte of value) total += popcount(byte);
      }
    }
    return total;
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
    const [counts, failing, population] = await Promise.all([
      this.redis.hgetall(this.keys.day(day)),
      this.redis.hgetall(this.keys.dayFailing(day)),
      this.redis.hgetall(this.keys.dayPopulation(day)),
    ]);
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
      else if (what === 'popv') unit(key).population ??= [];
      else if (what === 'popOmitted') unit(key).populationOmitted = (unit(key).populationOmitted ?? 0) + Number(value);
      else if (what === 'lastErrorRun') {
        const error = (JSON.parse(value) as DayLastRun).error;
        if (error) unit(key).lastError = error;
      }
    }
    for (const [field, message] of Object.entries(failing)) {
      // field = probe|target|resource; probe ids and target names contain no '|'.
      const first = field.indexOf('|');
      const second = field.indexOf('|', first + 1);
      unit(field.slice(0, second)).failing.push({ resource: field.slice(second + 1), message });
    }
    for (const [field, value] of Object.entries(population)) {
      const first = field.indexOf('|');
      const second = field.indexOf('|', first + 1);
      const u = unit(field.slice(0, second));
      const entry = decodePopulation(field.slice(second + 1), value);
      // A value the record script did not write is not evidence: counted as not kept, never listed.
      if (entry) (u.population ??= []).push(entry);
      else u.populationOmitted = (u.populationOmitted ?? 0) + 1;
    }
    for (const u of units.values()) {
      u.failing.sort((a, b) => (a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0));
      u.population?.sort((a, b) => (a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0));
    }
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
