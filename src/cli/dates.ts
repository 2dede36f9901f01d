/**
 * Calendar dates given on the command line (`--date`, `--through`, `--from`, `--to`): the form
 * YYYY-MM-DD is not enough, the day must exist (2026-02-30, 2026-13-01 and 2025-02-29 do not).
 */

/** Whether `value` is YYYY-MM-DD and names a day of the proleptic Gregorian calendar. */
export function isCalendarDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const t = Date.parse(`${value}T00:00:00Z`);
  // Date.parse rolls some impossible days over (or rejects them): only a round trip proves the day exists.
  return Number.isFinite(t) && new Date(t).toISOString().slice(0, 10) === value;
}

/**
 * The usage error for a date option, or `undefined` when `value` is a real calendar day. The
 * message names the option and, for a well-formed but impossible day, why (never echoing long input).
 */
export function calendarDateProblem(option: string, value: string): string | undefined {
  if (isCalendarDate(value)) return undefined;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return `${option} expects a date YYYY-MM-DD`;
  const [year, month] = value.split('-').map(Number) as [number, number];
  if (month < 1 || month > 12) return `${option} ${value} is not a calendar date: there is no month ${month}`;
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return `${option} ${value} is not a calendar date: ${year}-${String(month).padStart(2, '0')} has ${days} days`;
}
