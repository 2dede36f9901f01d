import { describe, expect, it } from 'vitest';
import { cronIntervalMs, previousSlot, validateCron } from './cron.js';

describe('schedule arithmetic', () => {
  it.each([
    ['*/15 * * * *', 'UTC', 15 * 60_000],
    ['* * * * * *', 'UTC', 1000],
    ['17 */4 * * *', 'UTC', 4 * 3_600_000],
    ['0 3 * * *', 'UTC', 86_400_000],
    // Across a DST change the longest gap of a daily job is 25 hours.
    ['0 3 * * *', 'Europe/Berlin', 25 * 3_600_000],
    ['0 9 * * 1', 'UTC', 7 * 86_400_000],
  ])('interval of %s in %s', (expr, tz, expected) => {
    expect(cronIntervalMs(expr, tz)).toBe(expected);
  });

  it('previous slot includes an exact match and respects the zone', () => {
    expect(previousSlot('*/15 * * * *', 'UTC', new Date('2026-11-21T10:29:59Z')).toISOString()).toBe('2026-11-21T10:15:00.000Z');
    expect(previousSlot('*/15 * * * *', 'UTC', new Date('2026-11-21T10:30:00Z')).toISOString()).toBe('2026-11-21T10:30:00.000Z');
    expect(previousSlot('0 3 * * *', 'Europe/Berlin', new Date('2026-11-21T12:00:00Z')).toISOString()).toBe('2026-11-21T02:00:00.000Z');
  });

  it.each([
    ['*/15 * * * *', undefined],
    ['61 * * * *', 'invalid cron expression'],
    ['0 0 13 * 5', 'restricts both day-of-month and day-of-week'],
    ['banana', 'invalid cron expression'],
  ])('validates %s', (expr, problem) => {
    const got = validateCron(expr);
    if (problem === undefined) expect(got).toBeUndefined();
    else expect(got).toContain(problem);
  });
});
