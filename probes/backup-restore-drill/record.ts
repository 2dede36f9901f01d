import { z } from 'zod';

const Text = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[^\x00-\x1f\x7f]+$/, 'expected one line of text');

/**
 * One restore drill, as a team records it (one JSON file per drill, or an array of them):
 *
 * ```json
 * { "system": "billing-db", "date": "2026-11-02T14:00:00Z", "durationMinutes": 42, "result": "passed",
 *   "operator": "alice@example.com", "evidence": "https://wiki.example.com/drills/2026-11-02", "validated": true }
 * ```
 *
 * `result` is whether the restore into an isolated environment succeeded (L4); `validated` says the
 * restored data was then checked — row counts, checksums, an application smoke test (L5).
 */
export const DrillRecord = z.strictObject({
  /** What was restored; the finding's resource is `<target>/<system>`. */
  system: Text,
  /** When the drill took place (ISO 8601 with a time zone). */
  date: z.iso.datetime({ offset: true, error: 'expected an ISO 8601 date-time with a time zone, e.g. 2026-11-02T14:00:00Z' }),
  /** Minutes from the start of the restore to the restored system answering: compared with the RTO. */
  durationMinutes: z.number().min(0).max(1_000_000),
  result: z.enum(['passed', 'failed']),
  /** Who ran it. */
  operator: Text,
  /** Link to the ticket, log or report that shows it. */
  evidence: z.url({ error: 'expected a URL to the drill\'s ticket, log or report' }).max(2000),
  /** The restored data was checked after the restore (L5). Default false. */
  validated: z.boolean().default(false),
  notes: z.string().max(4000).optional(),
});
export type DrillRecord = z.output<typeof DrillRecord>;

/** A drill file holds one record or an array of them. */
export const DrillFile = z.union([DrillRecord, z.array(DrillRecord).max(1000)]);
