import { describe, expect, it } from 'vitest';
import { addDays, dayOf, daysBetween, lastClosableDay, startOfDay, zonedInstant } from './days.js';

describe('calendar days in a time zone', () => {
  it.each([
    ['2026-11-21T23:30:00Z', 'UTC', '2026-11-21'],
    ['2026-11-21T23:30:00Z', 'Europe/Berlin', '2026-11-22'],
    ['2026-11-22T04:59:59Z', 'America/New_York', '2026-11-21'],
    ['2026-03-29T00:59:59Z', 'Europe/Berlin', '2026-03-29'],
  ])('%s is %s → %s', (at, tz, day) => {
    expect(dayOf(new Date(at), tz)).toBe(day);
  });

  it('adds and counts calendar days across month, year and DST boundaries', () => {
    expect(addDays('2026-12-31', 1)).toBe('2027-01-01');
    expect(addDays('2026-03-01', -1)).toBe('2026-02-28');
    expect(addDays('2026-03-28', 2)).toBe('2026-03-30');
    expect(daysBetween('2026-03-28', '2026-03-30')).toBe(2);
    expect(daysBetween('2026-10-24', '2026-10-26')).toBe(2);
  });

  it.each([
    // Berlin: CET (+1) in winter, CEST (+2) in summer; spring forward 2026-03-29 02:00 → 03:00, fall back 2026-10-25 03:00 → 02:00.
    ['2026-03-29', '00:00', 'Europe/Berlin', '2026-03-28T23:00:00.000Z'],
    ['2026-03-30', '00:00', 'Europe/Berlin', '2026-03-29T22:00:00.000Z'],
    ['2026-10-25', '00:10', 'Europe/Berlin', '2026-10-24T22:10:00.000Z'],
    ['2026-10-26', '00:10', 'Europe/Berlin', '2026-10-25T23:10:00.000Z'],
    ['2026-11-22', '00:10', 'UTC', '2026-11-22T00:10:00.000Z'],
    ['2026-11-22', '00:10', 'America/New_York', '2026-11-22T05:10:00.000Z'],
    // 02:30 does not exist on the spring-forward day: the instant after the gap.
    ['2026-03-29', '02:30', 'Europe/Berlin', '2026-03-29T01:30:00.000Z'],
    // 02:30 happens twice on the fall-back day: the first one.
    ['2026-10-25', '02:30', 'Europe/Berlin', '2026-10-25T00:30:00.000Z'],
  ])('%s %s in %s is %s', (day, hhmm, tz, iso) => {
    expect(zonedInstant(day, hhmm, tz).toISOString()).toBe(iso);
  });

  it('a DST day is 23 or 25 hours long and still one day', () => {
    const hours = (d: string) => (startOfDay(addDays(d, 1), 'Europe/Berlin').getTime() - startOfDay(d, 'Europe/Berlin').getTime()) / 3_600_000;
    expect(hours('2026-03-29')).toBe(23);
    expect(hours('2026-10-25')).toBe(25);
    expect(hours('2026-11-21')).toBe(24);
  });

  it('the last closable day waits for the close time', () => {
    expect(lastClosableDay(new Date('2026-11-22T00:09:59Z'), 'UTC', '00:10')).toBe('2026-11-20');
    expect(lastClosableDay(new Date('2026-11-22T00:10:00Z'), 'UTC', '00:10')).toBe('2026-11-21');
    expect(lastClosableDay(new Date('2026-11-21T23:30:00Z'), 'Europe/Berlin', '00:10')).toBe('2026-11-21');
  });
});
