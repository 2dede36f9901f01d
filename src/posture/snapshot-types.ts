import { createHash } from 'node:crypto';
import { z } from 'zod';

/** A control's verdict on one closed calendar day (DESIGN.md §3). */
export const DayVerdict = z.enum(['green', 'red', 'unknown']);
export type DayVerdict = z.infer<typeof DayVerdict>;

/** A failing resource on the day, with the probe's remediation message. */
export const FailingResource = z.strictObject({
  probe: z.string(),
  target: z.string(),
  resource: z.string(),
  message: z.string(),
});
export type FailingResource = z.infer<typeof FailingResource>;

/** A configured exception (risk acceptance) as archived: who accepted what, why, until when. */
export const SnapshotException = z.strictObject({
  control: z.string(),
  probe: z.string().optional(),
  /** Resource name or glob. */
  resource: z.string(),
  reason: z.string(),
  approvedBy: z.string(),
  ticket: z.string().optional(),
  /** Day the risk was accepted (YYYY-MM-DD), when configured; absent in snapshots before it existed. */
  approved: z.string().optional(),
  /** Last day it holds (YYYY-MM-DD). */
  expires: z.string(),
});
export type SnapshotException = z.infer<typeof SnapshotException>;

/** A failing resource an exception held on the day: it did not redden the control, and is listed here instead of `failing`. */
export const ExceptedResource = z.strictObject({
  resource: z.string(),
  probe: z.string(),
  target: z.string(),
  /** The probe's remediation message for the failure. */
  message: z.string(),
  reason: z.string(),
  approvedBy: z.string(),
  ticket: z.string().optional(),
  expires: z.string(),
});
export type ExceptedResource = z.infer<typeof ExceptedResource>;

/** One control in a daily snapshot. */
export const SnapshotControl = z.strictObject({
  id: z.string(),
  title: z.string(),
  public: z.boolean(),
  publicTitle: z.string(),
  publicDescription: z.string(),
  frameworks: z.strictObject({ soc2: z.array(z.string()), iso27001: z.array(z.string()) }),
  /** The day's verdict. */
  verdict: DayVerdict,
  /** Why the day is not green (empty when green). */
  reasons: z.array(z.string()),
  /** Consecutive green days ending with this day. */
  streak: z.number().int().min(0),
  /** First day of the current streak (YYYY-MM-DD), null when the streak is 0. */
  greenSince: z.string().nullable(),
  /** streak ≥ trust.minGreenDays. */
  thirtyDayGreen: z.boolean(),
  /** The most recent green day (YYYY-MM-DD), null when it never was green. */
  lastGreenDay: z.string().nullable(),
  /** Newest measurement of the day (ISO), null when none. */
  lastMeasuredAt: z.string().nullable(),
  /**
   * Probes evidencing it and their cadence (cron schedule and interval): one entry per probe for
   * the targets on the probe's schedule, and one with `target` for each target on a schedule of
   * its own (absent in snapshots from before per-target schedules, and when no target has one).
   */
  cadence: z.array(
    z.strictObject({
      probe: z.string(),
      target: z.string().optional(),
      schedule: z.string(),
      intervalSeconds: z.number(),
      /**
       * Runs measured that day: the fewest over the targets the entry covers (absent in snapshots
       * from before measured cadence). The feed states this, not the schedule.
       */
      measuredRuns: z.number().int().min(0).optional(),
    }),
  ),
  failing: z.array(FailingResource),
  /**
   * Evidence ladder level (issue 11: L1 on schedule … L4 restore succeeds, L5 restored data
   * validated): the lowest `details.level` over the day's resources of its probes that report one.
   * Absent when none does (and in snapshots from before levels).
   */
  evidenceLevel: z.number().min(0).optional(),
  /** Consecutive days ending this day with `evidenceLevel` ≥ 4; absent when `evidenceLevel` is. */
  restoreTestedDays: z.number().int().min(0).optional(),
  /** Failing resources held by an exception that day (green with exceptions); absent when none. */
  exceptions: z.array(ExceptedResource).optional(),
  /** The control's exceptions that had expired by the day: they hold nothing any more. Absent when none. */
  expiredExceptions: z.array(SnapshotException).optional(),
  /** The control's exceptions that held but matched no failing resource that day: no longer needed. Absent when none. */
  staleExceptions: z.array(SnapshotException).optional(),
});
export type SnapshotControl = z.infer<typeof SnapshotControl>;

/** Health of one probe × target over the day. */
export const ProbeHealth = z.strictObject({
  probe: z.string(),
  target: z.string(),
  runs: z.number().int(),
  errors: z.number().int(),
  /** Runs with at least one unknown finding (or none at all). */
  unknown: z.number().int(),
  red: z.number().int(),
  lastRunAt: z.string().nullable(),
  /** No run that day, or the newest one older than 2 × the target's interval at the end of the day. */
  stale: z.boolean(),
  sourceFreshness: z.string().nullable(),
  lastError: z.string().nullable(),
  /** Firings of the target's schedule within the day in `timezone` (23/25 hourly on DST days); absent in older snapshots. */
  expectedRuns: z.number().int().min(0).optional(),
  /** Share of `expectedRuns` measured (distinct slots recorded, capped at 1); absent when none was due, and in older snapshots. */
  coverage: z.number().min(0).max(1).optional(),
});
export type ProbeHealth = z.infer<typeof ProbeHealth>;

/** measured: every control citing it had a green or red verdict; partly: some; not_measured: none. */
export const CoverageStatus = z.enum(['measured', 'partly_measured', 'not_measured']);
export type CoverageStatus = z.infer<typeof CoverageStatus>;

export const CoverageEntry = z.strictObject({ id: z.string(), status: CoverageStatus, controls: z.array(z.string()) });
export type CoverageEntry = z.infer<typeof CoverageEntry>;

/** What changed since the previous snapshot. */
export const SnapshotDiff = z.strictObject({
  /** The previous snapshot's date, null for the first one. */
  since: z.string().nullable(),
  newReds: z.array(z.string()),
  recoveries: z.array(z.string()),
  reachedThirtyDays: z.array(z.string()),
  leftFeed: z.array(z.string()),
  /** Exceptions in this snapshot's `exceptions` that the previous one did not list (absent when none). */
  exceptionsAdded: z.array(SnapshotException).optional(),
  /** Exceptions the previous snapshot listed that this one does not: removed from the config, or edited (absent when none). */
  exceptionsRemoved: z.array(SnapshotException).optional(),
});
export type SnapshotDiff = z.infer<typeof SnapshotDiff>;

/** A finding's outcome, as kept in the population. */
export const PopulationOutcome = z.enum(['pass', 'fail', 'unknown', 'not_applicable']);
export type PopulationOutcome = z.infer<typeof PopulationOutcome>;

/**
 * One resource judged on the day: its worst outcome over the day's runs (fail > unknown > pass >
 * not_applicable), the one-line message of that outcome (absent for pass), and the lowest
 * evidence level (`details.level`) reported for it that day, when the probe reports one.
 */
export const PopulationResource = z.strictObject({
  resource: z.string(),
  outcome: PopulationOutcome,
  message: z.string().optional(),
  level: z.number().optional(),
});
export type PopulationResource = z.infer<typeof PopulationResource>;

/**
 * Every resource one probe × target judged on the day, sorted by resource (code-unit order).
 * `omitted`: resources judged but not listed (a run beyond the per-run cap; the largest cut of
 * the day), absent when none was cut.
 */
export const PopulationUnit = z.strictObject({
  probe: z.string(),
  target: z.string(),
  resources: z.array(PopulationResource),
  omitted: z.number().int().min(0).optional(),
});
export type PopulationUnit = z.infer<typeof PopulationUnit>;

/** The canonical content of a daily snapshot (what the hash covers). */
export const SnapshotBody = z.strictObject({
  schema: z.literal('vigil.snapshot/1'),
  /** The closed calendar day, YYYY-MM-DD in `timezone`. */
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  timezone: z.string(),
  minGreenDays: z.number().int(),
  /** SHA-256 of the previous day's snapshot, null for the first. */
  prevHash: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
  counts: z.strictObject({ green: z.number().int(), red: z.number().int(), unknown: z.number().int() }),
  controls: z.array(SnapshotControl),
  probeHealth: z.array(ProbeHealth),
  coverage: z.strictObject({ soc2: z.array(CoverageEntry), iso27001: z.array(CoverageEntry) }),
  diff: SnapshotDiff,
  /** Every configured exception (sorted by control, probe, resource, expires…), so the archive shows who accepted what; absent when none. */
  exceptions: z.array(SnapshotException).optional(),
  /**
   * The tested population: per probe × target measured that day, every resource judged, with its
   * worst outcome of the day. Absent in snapshots from before it (their bytes and hashes unchanged).
   */
  population: z.array(PopulationUnit).optional(),
});
export type SnapshotBody = z.infer<typeof SnapshotBody>;

/** A snapshot as archived and served: the body, its hash, and an optional Ed25519 signature over the hash. */
export const Snapshot = SnapshotBody.extend({
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  /** base64 Ed25519 signature over the UTF-8 bytes of `hash`. */
  signature: z.string().optional(),
  /** Fingerprint (SHA-256 of the SPKI DER, hex) of the key that signed. */
  signedBy: z.string().optional(),
});
export type Snapshot = z.infer<typeof Snapshot>;

/**
 * Canonical JSON: object keys sorted, no whitespace, arrays in order, `undefined` members
 * dropped. The same value always gives the same bytes, so the hash can be recomputed offline.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('canonical JSON cannot hold a non-finite number');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** The body of a snapshot: everything but hash, signature and signedBy. */
export function snapshotBody(snapshot: Snapshot | SnapshotBody): SnapshotBody {
  const { hash: _h, signature: _s, signedBy: _b, ...body } = snapshot as Snapshot;
  return body;
}

/** SHA-256 (hex) over the canonical JSON of the snapshot body. */
export function snapshotHash(snapshot: Snapshot | SnapshotBody): string {
  return createHash('sha256').update(canonicalJson(snapshotBody(snapshot))).digest('hex');
}
