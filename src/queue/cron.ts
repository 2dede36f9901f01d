import { createRequire } from 'node:module';
import type { CronExpressionParser as CronExpressionParserClass } from 'cron-parser';
import type { validateDetailed as ValidateDetailed } from 'node-cron';

/**
 * Schedule arithmetic. node-cron fires the schedules; cron-parser answers "when was the previous
 * slot" and "how far apart are slots", which node-cron does not expose. The two differ only when
 * both day-of-month and day-of-week are restricted (node-cron ANDs them, classic cron ORs them),
 * so such expressions are refused rather than interpreted two ways.
 *
 * Both libraries are loaded on first use, not when this module is: config loading imports it, and
 * a run-once on the probes' default schedules asks neither (cron-parser brings luxon and ICU's
 * time-zone data, several MB and tens of ms). They are CommonJS (node-cron ships both builds), so
 * `require` loads them synchronously and validateCron stays synchronous, as loadConfig needs.
 */
const require = createRequire(import.meta.url);

let parser: typeof CronExpressionParserClass | undefined;
let detailedValidation: typeof ValidateDetailed | undefined;

function cronParser(): typeof CronExpressionParserClass {
  parser ??= (require('cron-parser') as typeof import('cron-parser')).CronExpressionParser;
  return parser;
}

/** node-cron's own acceptance check: what the scheduler will accept is what the config accepts. */
function nodeCronValidate(expression: string): ReturnType<typeof ValidateDetailed> {
  detailedValidation ??= (require('node-cron') as typeof import('node-cron')).validateDetailed;
  return detailedValidation(expression);
}

/** A problem with the expression, or undefined when node-cron and cron-parser both accept it. */
export function validateCron(expression: string): string | undefined {
  const detailed = nodeCronValidate(expression);
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
    cronParser().parse(expression, { tz: 'UTC' });
  } catch (err) {
    return `invalid cron expression "${expression}" (${(err as Error).message})`;
  }
  return undefined;
}

/** The longest gap between consecutive firings over the next ~year (at most 500 firings). */
export function cronIntervalMs(expression: string, timezone: string, from = new Date('2026-01-01T00:00:00Z')): number {
  const it = cronParser().parse(expression, { tz: timezone, currentDate: from });
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
  const it = cronParser().parse(expression, { tz: timezone, currentDate: new Date(at.getTime() + 1) });
  return it.prev().toDate();
}
