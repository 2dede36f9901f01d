import { createRequire } from 'node:module';
import type { CronExpressionParser as CronExpressionParserClass } from 'cron-parser';
import { addDays, startOfDay } from './days.js';

/**
 * Slot coverage of a day (issue 13): how many of a schedule's firings fell on a calendar day, and
 * what share of them was measured. A day is green only when the share reaches `days.minCoverage`.
 *
 * cron-parser is loaded on first use (as in src/queue/cron.ts): it brings luxon and ICU's
 * time-zone data, which a process that never closes a day does not need.
 */
const require = createRequire(import.meta.url);

let parser: typeof CronExpressionParserClass | undefined;

function cronParser(): typeof CronExpressionParserClass {
  parser ??= (require('cron-parser') as typeof import('cron-parser')).CronExpressionParser;
  return parser;
}

/** The default of `days.minCoverage`: a day needs 90 % of its scheduled slots measured to be green. */
export const DEFAULT_MIN_COVERAGE = 0.9;

/** No schedule fires more often than once a second; a day has at most this many slots (25 h). */
const MAX_SLOTS = 90_000;

const slotCache = new Map<string, number>();

const wallClocks = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock reading of an instant in `timezone`, to the second. */
function wallClock(at: number, timezone: string): string {
  let f = wallClocks.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: timezone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    wallClocks.set(timezone, f);
  }
  return f.format(at);
}

/**
 * The firings of a cron schedule within the calendar day `day` in `timezone`: from the day's first
 * instant (inclusive) to the next day's (exclusive). Counted as the scheduler (node-cron) fires
 * them: once per wall-clock time, so the hour repeated on a fall-back day fires once (an hourly
 * schedule has 24 slots on a 25-hour day, 23 on a 23-hour one). Memoised (snapshots of one
 * deployment ask the same few questions every day).
 *
 * @throws when cron-parser cannot step through the day (e.g. its loop limit on a time zone with a
 * 30-minute DST shift): a day whose slots are not known is not green, so this is never swallowed.
 */
export function scheduledSlots(expression: string, timezone: string, day: string): number {
  const key = `${expression}\u0000${timezone}\u0000${day}`;
  const cached = slotCache.get(key);
  if (cached !== undefined) return cached;
  const start = startOfDay(day, timezone).getTime();
  const end = startOfDay(addDays(day, 1), timezone).getTime();
  // prev/next are strict: start 1 ms before the day so a firing at 00:00 counts. No endDate and no
  // hasNext(): hasNext() answers false when cron-parser fails, which would undercount the day.
  const it = cronParser().parse(expression, { tz: timezone, currentDate: new Date(start - 1) });
  const slots = new Set<string>();
  while (slots.size < MAX_SLOTS) {
    const at = it.next().getTime();
    if (at >= end) break;
    if (at >= start) slots.add(wallClock(at, timezone));
  }
  const n = slots.size;
  if (slotCache.size > 10_000) slotCache.clear();
  slotCache.set(key, n);
  return n;
}

/**
 * The share of scheduled slots measured, in [0, 1], rounded to 4 decimals (canonical JSON holds
 * it byte-stably); undefined when no slot fell on the day (nothing was due). Runs beyond the
 * expected count (a catch-up slot) cap the share at 1.
 */
export function slotCoverage(measured: number, expected: number): number | undefined {
  if (!(expected > 0)) return undefined;
  return Math.round(Math.min(1, Math.max(0, measured) / expected) * 10_000) / 10_000;
}

/**
 * A share as a percentage for people, with one decimal when it is not whole; rounded down, so a
 * share short of 100 % (or of a threshold) never reads as reaching it.
 */
export function percent(share: number): string {
  const tenths = Math.floor(share * 1000 + 1e-6);
  return `${tenths % 10 === 0 ? String(tenths / 10) : (tenths / 10).toFixed(1)} %`;
}
