import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { VigilConfig } from '../config/schema.js';

/** A finding's verdict on one resource. `unknown` means "could not tell" and is never green. */
export const Outcome = z.enum(['pass', 'fail', 'not_applicable', 'unknown']);
export type Outcome = z.infer<typeof Outcome>;

/** One resource's verdict, as produced by a probe's `evaluate`. */
export const Finding = z.strictObject({
  resource: z.string().min(1),
  outcome: Outcome,
  /** One line: which setting, and how to fix it. */
  message: z.string().min(1),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type Finding = z.infer<typeof Finding>;

/** Why a run could not observe: set by the runner only, never by a probe. Never carries a secret. */
export const RunError = z.strictObject({
  /** Error class name, e.g. `TransientError`, `PermissionError`, `TimeoutError`. */
  class: z.string(),
  message: z.string(),
});
export type RunError = z.infer<typeof RunError>;

/** One execution of one probe on one target (DESIGN.md §2). */
export const ProbeResult = z.strictObject({
  runId: z.string().min(1),
  probe: z.string().min(1),
  target: z.string().min(1),
  /** The schedule slot this run belongs to (ISO 8601). */
  scheduledFor: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  /** When the source itself produced the data (e.g. AWS credential report time), if it says. */
  sourceFreshness: z.string().optional(),
  findings: z.array(Finding),
  error: RunError.optional(),
});
export type ProbeResult = z.infer<typeof ProbeResult>;

/** The data sources probes observe; used for grouping and documentation. */
export type ProbeSource = 'tls' | 'github' | 'aws' | 'iac' | 'backup' | 'evidence';

/** One configured scope a probe runs against. `spec` is probe-specific and never holds a secret value. */
export interface ProbeTarget<TSpec> {
  /** Stable, unique per probe; appears in job ids, result keys and the API. */
  name: string;
  spec: TSpec;
  /**
   * Time budget of one collect on this target, when the target sets its own (an IaC plan may take
   * half an hour); default `worker.timeoutSeconds`. The worker's job lock is renewed while it runs.
   */
  timeoutMs?: number;
  /**
   * Cron schedule (5 fields, or 6 with seconds) of this target, when it sets its own (an IaC
   * workspace planned weekly beside one planned hourly); default the probe's configured schedule.
   * Validated at config load. Its interval is the target's staleness limit and day-close cadence.
   */
  schedule?: string;
}

/** What `collect` gets: the target, its params, and a signal it must honour. */
export interface CollectContext<TSpec, TParams> {
  target: ProbeTarget<TSpec>;
  params: TParams;
  /** Aborted on timeout or shutdown: every I/O call must pass it on. */
  signal: AbortSignal;
  log: Logger;
  /** The moment the run started; collect may use it for request-level decisions, never for verdicts. */
  now: Date;
  /** vigil's Redis, when the run comes from the queue: clients share rate limits across replicas on it (e.g. GitHub throttling). */
  redis?: Redis | undefined;
  /**
   * The newest recorded result of this probe × target before this run, when the run comes from the
   * queue (undefined at the first run and in `run-once`). For probes whose verdict spans runs (e.g.
   * iac-drift's confirmation): collect hands what it needs to evaluate as data, so evaluate stays pure.
   */
  previous?: ProbeResult | undefined;
}

/** A gauge a probe family exposes to ops teams, filled at scrape time from the latest stored results. */
export interface ProbeGauge {
  /** Full metric name, `vigil_<noun>_<unit>`. */
  name: string;
  help: string;
  /** Bounded label names: only values the user configured (e.g. an endpoint), never discovered resources. */
  labelNames: readonly string[];
  /** Reads the values out of one stored result. */
  fromResult(result: ProbeResult): Array<{ labels: Record<string, string>; value: number }>;
}

/** A probe: one kind of resource in one source, turned into findings (DESIGN.md §2). */
export interface ProbeDefinition<TSpec = unknown, TParams = unknown, TObservation = unknown> {
  /** kebab-case, reads as the healthy property; equals the folder name under probes/. */
  id: string;
  title: string;
  source: ProbeSource;
  /** Control ids (config/controls.yaml) this probe evidences. */
  controls: readonly string[];
  /** Default cron schedule (5 or 6 fields); config may override it. */
  schedule: string;
  /** What the probe checks, the permissions it needs, and how to fix a failure (Markdown). */
  docs: { checks: string; permissions: string; remediation: string };
  /**
   * The source-side permissions the probe's calls need, by their provider's name (IAM actions such
   * as `iam:GetAccountSummary` for AWS probes). Listed by `vigil probes`; for AWS, tested against
   * the shipped least-privilege policy (deploy/aws/).
   */
  actions?: readonly string[];
  params: z.ZodType<TParams>;
  /** The targets this probe runs against, read from the validated config. */
  targets(config: VigilConfig): Array<ProbeTarget<TSpec>>;
  /** All I/O. Throws only when it could not observe (classified errors from src/probe/errors.ts). */
  collect(ctx: CollectContext<TSpec, TParams>): Promise<TObservation>;
  /** Pure and synchronous: no clock, no env, no I/O. */
  evaluate(observation: TObservation, params: TParams, now: Date): Finding[];
  /** When the source produced the observed data, if it says (e.g. a report's generation time). */
  sourceFreshness?(observation: TObservation): Date | undefined;
  /** Per-family gauges for direct alerting. */
  gauges?: readonly ProbeGauge[];
}

/** A probe whose generic types are erased, as held in the registry. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyProbe = ProbeDefinition<any, any, any>;

/** Identity helper that keeps a probe's generic types tied together. */
export function defineProbe<TSpec, TParams, TObservation>(
  probe: ProbeDefinition<TSpec, TParams, TObservation>,
): ProbeDefinition<TSpec, TParams, TObservation> {
  return probe;
}
