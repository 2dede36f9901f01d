/**
 * Calendar days in a time zone. A day is a `YYYY-MM-DD` string; arithmetic on it is calendar
 * arithmetic (no hours involved), so a 23- or 25-hour DST day is still exactly one day.
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

function partsIn(at: Date, timezone: string): { y: number; m: number; d: number; h: number; mi: number; s: number } {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timezone, f);
  }
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(at)) if (part.type !== 'literal') p[part.type] = Number(part.value);
  return { y: p.year ?? 0, m: p.month ?? 0, d: p.day ?? 0, h: p.hour ?? 0, mi: p.minute ?? 0, s: p.second ?? 0 };
}

/** The calendar day of an instant in a time zone. */
export function dayOf(at: Date, timezone: string): string {
  const { y, m, d } = partsIn(at, timezone);
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

/** `day` plus `n` calendar days. */
export function addDays(day: string, n: number): string {
  const t = Date.parse(`${day}T00:00:00Z`) + n * 86_400_000;
  return new Date(t).toISOString().slice(0, 10);
}

/** Days from `a` to `b` (b − a). */
export function daysBetween(a: string, b: string): number {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000);
}

/**
 * The instant when the wall clock in `timezone` shows `day` at `hh:mm`. In a DST gap (a time that
 * does not exist) it resolves to the instant just after the gap; in an overlap, to the first one.
 */
export function zonedInstant(day: string, hhmm: string, timezone: string): Date {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  const [h, mi] = hhmm.split(':').map(Number) as [number, number];
  const wall = Date.UTC(y, m - 1, d, h, mi);
  // Two passes of "wall time minus the zone's offset at the guess" converge outside DST edges.
  let guess = wall;
  for (let i = 0; i < 3; i++) {
    const p = partsIn(new Date(guess), timezone);
    const offset = Date.UTC(p.y, p.m - 1, p.d, p.h, p.mi, p.s) - guess;
    const next = wall - offset;
    if (next === guess) break;
    guess = next;
  }
  const wallAt = (t: number) => {
    const p = partsIn(new Date(t), timezone);
    return Date.UTC(p.y, p.m - 1, p.d, p.h, p.mi);
  };
  if (wallAt(guess) !== wall) {
    // In a gap: shift by the offset in force before it, which lands just after the gap.
    const before = guess - 6 * 3_600_000;
    return new Date(wall - (wallAt(before) - before));
  }
  // Prefer the earlier of two candidates that show the same wall time (DST overlap).
  const earlier = guess - 3_600_000;
  const pe = partsIn(new Date(earlier), timezone);
  if (Date.UTC(pe.y, pe.m - 1, pe.d, pe.h, pe.mi) === wall) return new Date(earlier);
  return new Date(guess);
}

/** The first instant of `day` in `timezone`. */
export function startOfDay(day: string, timezone: string): Date {
  return zonedInstant(day, '00:00', timezone);
}

/** The last day that may be closed at `now`: yesterday once today's close time has passed, else the day before. */
export function lastClosableDay(now: Date, timezone: string, closeAt: string): string {
  const today = dayOf(now, timezone);
  return now.getTime() >= zonedInstant(today, closeAt, timezone).getTime() ? addDays(today, -1) : addDays(today, -2);
}
