import { CronExpressionParser } from 'cron-parser';
import cron from 'node-cron';

/**
 * Schedule arithmetic. node-cron fires the schedules; cron-parser answers "when was the previous
 * slot" and "how far apart are slots", which node-cron does not expose. The two differ only when
 * both day-of-month and day-of-week are restricted (node-cron ANDs them, classic cron ORs them),
 * so such expressions are refused rather than interpreted two ways.
 */

/** A problem with the expression, or undefined when node-cron and cron-parser both accept it. */
export function validateCron(expression: string): string | undefined {
  const detailed = cron.validateDetailed(expression);
  if (!detailed.valid) {
    const first = detailed.errors[0];
    return `invalid cron expression "${expression}"${first ? ` (${first.field}: ${first.message})` : ''}`;
  }
  const fields = expression.trim().split(/\s+/);
  const [dom, , dow] = fields.slice(-3);
  if (dom !== undefined && dow !== undefined && !['*', '?'].includes(dom) && !['*', '?'].includes(dow)) {
    return `"${expression}" restricts both day-of-month and day-of-week; cron dialects disagree on that, use one`;
  }
  try {
    CronExpressionParser.parse(expression, { tz: 'UTC' });
  } catch (err) {
    return `invalid cron expression "${expression}" (${(err as Error).message})`;
  }
  return undefined;
}

/** The longest gap between consecutive firings over the next ~year (at most 500 firings). */
export function cronIntervalMs(expression: string, timezone: string, from = new Date('2026-01-01T00:00:00Z')): number {
  const it = CronExpressionParser.parse(expression, { tz: timezone, currentDate: from });
  let prev = it.next().getTime();
  let max = 0;
  const horizon = prev + 366 * 86_400_000;
  for (let i = 0; i < 500; i++) {
    const next = it.next().getTime();
    max = Math.max(max, next - prev);
    prev = next;
    if (prev > horizon) break;
  }
  return max;
}

/** The most recent firing at or before `at`. */
export function previousSlot(expression: string, timezone: string, at: Date): Date {
  // cron-parser's prev() is strictly before currentDate: step 1 ms past `at` so an exact match counts.
  const it = CronExpressionParser.parse(expression, { tz: timezone, currentDate: new Date(at.getTime() + 1) });
  return it.prev().toDate();
}
