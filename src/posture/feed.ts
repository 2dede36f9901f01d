import { z } from 'zod';
import type { Snapshot, SnapshotControl } from './snapshot-types.js';

/** The trust feed never lists a control with fewer consecutive green days than this (DESIGN.md §3). */
export const FEED_FLOOR_DAYS = 30;

const IsoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

/** One public, 30-day-green control as published. Every member is meant for the public. */
export const TrustFeedControl = z.strictObject({
  id: z.string(),
  /** The catalog's public title (never the internal one). */
  title: z.string(),
  /** The catalog's public description. */
  description: z.string(),
  frameworks: z.strictObject({ soc2: z.array(z.string()), iso27001: z.array(z.string()) }),
  /** First day (YYYY-MM-DD) of the current run of green days. */
  greenSince: IsoDate,
  consecutiveGreenDays: z.number().int().min(FEED_FLOOR_DAYS),
  /** Newest measurement on the snapshot's day (ISO timestamp). */
  lastMeasuredAt: z.string(),
  /**
   * How often the whole control was measured on the snapshot's day, in words ("measured 24 times a
   * day"), from the runs the snapshot recorded; from a snapshot older than that, the schedule,
   * said as such ("scheduled hourly").
   */
  cadence: z.string(),
  /** SHA-256 of the daily snapshot this entry comes from. */
  snapshotHash: Sha256Hex,
  /**
   * Present (true) only when the evidence level was L4 or more (the latest restore drill, within
   * its required interval, succeeded in isolation) on every day of the current green streak —
   * not that a restore ran every day; absent otherwise.
   */
  restoreTested: z.literal(true).optional(),
  /**
   * Accepted risks (config `exceptions:` entries) that held failing resources on the snapshot's
   * day: the control is green with this many exceptions. A count of exceptions, not of resources
   * (one entry covering 50 repositories is 1: the public learns neither names nor how many fail).
   * Absent when none.
   */
  exceptions: z.number().int().min(1).optional(),
});
export type TrustFeedControl = z.infer<typeof TrustFeedControl>;

/** The public trust feed (`GET /trust/feed.json`). */
export const TrustFeed = z.strictObject({
  schema: z.literal('vigil.trust-feed/1'),
  organization: z.string(),
  /** The closed day the feed describes; null before the first snapshot. */
  asOf: IsoDate.nullable(),
  minGreenDays: z.number().int().min(FEED_FLOOR_DAYS),
  snapshotHash: Sha256Hex.nullable(),
  controls: z.array(TrustFeedControl),
});
export type TrustFeed = z.infer<typeof TrustFeed>;

/** What `buildFeed` needs besides the snapshot (from the `trust` config section). */
export interface FeedOptions {
  /** Consecutive green days required; values below 30 are treated as 30. */
  minGreenDays: number;
  /** Shown as the publisher of the feed. */
  organization: string;
}

/**
 * Builds the public trust feed from the latest daily snapshot. Pure.
 *
 * A control is listed only when it is marked public, its day verdict is green, and its streak is
 * at least max(30, minGreenDays) — the snapshot's `thirtyDayGreen` flag is not trusted on its own.
 * It is also left out, rather than published with a doubtful claim, when the snapshot is
 * internally inconsistent about it: `greenSince` is not exactly `streak - 1` days before the
 * snapshot's date, there is no `lastMeasuredAt`, or no probe cadence can be stated.
 *
 * Each entry is built by picking public fields (an allow-list), so a field added to the snapshot
 * later cannot leak into the feed. Controls keep the snapshot's order.
 */
export function buildFeed(snapshot: Snapshot | undefined, opts: FeedOptions): TrustFeed {
  const minGreenDays = Math.max(FEED_FLOOR_DAYS, Math.ceil(opts.minGreenDays));
  const controls: TrustFeedControl[] = [];
  if (snapshot) {
    for (const c of snapshot.controls) {
      const entry = feedEntry(c, snapshot, minGreenDays);
      if (entry) controls.push(entry);
    }
  }
  return TrustFeed.parse({
    schema: 'vigil.trust-feed/1',
    organization: opts.organization,
    asOf: snapshot?.date ?? null,
    minGreenDays,
    snapshotHash: snapshot?.hash ?? null,
    controls,
  } satisfies TrustFeed);
}

function feedEntry(c: SnapshotControl, snapshot: Snapshot, minGreenDays: number): TrustFeedControl | undefined {
  if (c.public !== true || c.verdict !== 'green') return undefined;
  if (!Number.isInteger(c.streak) || c.streak < minGreenDays) return undefined;
  if (c.greenSince === null || c.greenSince !== addDays(snapshot.date, -(c.streak - 1))) return undefined;
  if (c.lastMeasuredAt === null) return undefined;
  const cadence = feedCadence(c.cadence);
  if (cadence === undefined) return undefined;
  return {
    id: c.id,
    title: c.publicTitle,
    description: c.publicDescription,
    frameworks: { soc2: [...c.frameworks.soc2], iso27001: [...c.frameworks.iso27001] },
    greenSince: c.greenSince,
    consecutiveGreenDays: c.streak,
    lastMeasuredAt: c.lastMeasuredAt,
    cadence,
    snapshotHash: snapshot.hash,
    ...(restoreTested(c) && { restoreTested: true as const }),
    ...(Array.isArray(c.exceptions) && c.exceptions.length > 0 && { exceptions: acceptedRisks(c.exceptions) }),
  };
}

/**
 * "Restore-tested" only when L4+ held for the whole streak (issue 11): today at L4 or more and the
 * run of such days at least as long as the green streak. A snapshot without levels never says so.
 */
export function restoreTested(c: Pick<SnapshotControl, 'streak' | 'evidenceLevel' | 'restoreTestedDays'>): boolean {
  return (
    typeof c.evidenceLevel === 'number' &&
    c.evidenceLevel >= 4 &&
    typeof c.restoreTestedDays === 'number' &&
    Number.isInteger(c.restoreTestedDays) &&
    c.streak > 0 &&
    c.restoreTestedDays >= c.streak
  );
}

/**
 * The cadence a feed entry states: what the snapshot measured (the least-measured probe × target
 * of the control, {@link measuredCadence}) when every entry records it; otherwise — snapshots from
 * before measured cadence — the slowest schedule, prefixed "scheduled" so it never reads as a
 * measurement. Undefined when nothing can be stated.
 */
export function feedCadence(entries: SnapshotControl['cadence']): string | undefined {
  if (entries.length === 0) return undefined;
  const measured = entries.map((e) => e.measuredRuns);
  if (measured.every((n): n is number => n !== undefined)) return measuredCadence(Math.min(...measured));
  const scheduled = controlCadence(entries.map((p) => p.intervalSeconds));
  return scheduled === undefined ? undefined : `scheduled ${scheduled}`;
}

/** Runs measured on a day, in words: "measured once a day", "measured twice a day", "measured 24 times a day". Undefined for none. */
export function measuredCadence(runs: number): string | undefined {
  if (!Number.isInteger(runs) || runs < 1) return undefined;
  if (runs === 1) return 'measured once a day';
  if (runs === 2) return 'measured twice a day';
  return `measured ${runs} times a day`;
}

/**
 * The cadence of a control measured by several probes is that of its slowest probe: only then
 * has every part of the control been measured again. Undefined when there is no usable interval.
 */
export function controlCadence(intervalsSeconds: readonly number[]): string | undefined {
  if (intervalsSeconds.length === 0 || !intervalsSeconds.every((s) => Number.isFinite(s) && s > 0)) return undefined;
  return humanInterval(Math.max(...intervalsSeconds));
}

/**
 * An interval in words: "every 15 minutes", "hourly", "every 4 hours", "daily", "weekly".
 * An interval that is not a whole number of minutes is rounded up (never claims more often).
 */
export function humanInterval(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return s === 1 ? 'every second' : `every ${s} seconds`;
  if (s % 604_800 === 0) return s === 604_800 ? 'weekly' : `every ${s / 604_800} weeks`;
  if (s % 86_400 === 0) return s === 86_400 ? 'daily' : `every ${s / 86_400} days`;
  if (s % 3_600 === 0) return s === 3_600 ? 'hourly' : `every ${s / 3_600} hours`;
  const minutes = Math.ceil(s / 60);
  return minutes === 1 ? 'every minute' : `every ${minutes} minutes`;
}

/** YYYY-MM-DD plus `days` calendar days (dates carry no time zone, so UTC arithmetic is exact). */
function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

/**
 * How many distinct accepted risks held a control's failures: excepted resources grouped by the
 * exception they carry (reason, approver, expiry, ticket).
 */
function acceptedRisks(excepted: ReadonlyArray<{ reason: string; approvedBy: string; expires: string; ticket?: string | undefined }>): number {
  return new Set(excepted.map((e) => JSON.stringify([e.reason, e.approvedBy, e.expires, e.ticket ?? null]))).size;
}
