import type { Control } from '../config/controls.js';
import type { RiskException } from '../config/schema.js';
import type { ProbeResult } from '../probe/contract.js';
import { applyExceptions, exceptionRecord, lapsedReason, sortExceptions, type ExceptedFinding } from './exceptions.js';

/** Status of a control now (DESIGN.md §3). Stale, error and unknown are never green. */
export type ControlStatus = 'green' | 'red' | 'unknown';

/** What is known about one probe of a control, as input to {@link controlStatus}. */
export interface ProbeEvidence {
  probe: string;
  /** False when the probe is switched off in the config. */
  enabled: boolean;
  /** The probe's schedule interval: the staleness limit (2 × this) of targets that carry none of their own. */
  intervalMs: number;
  /**
   * Every configured target, with its newest result if any, and its own schedule interval when it
   * has one (a target with its own schedule is stale after 2 × its interval, not the probe's).
   */
  targets: Array<{ target: string; intervalMs?: number; result: ProbeResult | undefined }>;
}

/** The verdict on one probe × target. */
export interface TargetStatus {
  probe: string;
  target: string;
  status: ControlStatus;
  stale: boolean;
  /** Why it is not green (empty when green). */
  reasons: string[];
  lastMeasuredAt: string | undefined;
}

/** A control's status with the reasons behind it. */
export interface ControlState {
  id: string;
  status: ControlStatus;
  /** True when some newest result is older than 2 × its target's schedule interval. */
  stale: boolean;
  reasons: string[];
  /** Newest finishedAt among its results. */
  lastMeasuredAt: string | undefined;
  targets: TargetStatus[];
  /** Failing findings held by an exception now: they do not redden the control, and are listed here (absent when none). */
  excepted?: ExceptedFinding[];
  /** The control's exceptions that have expired: they hold nothing any more (absent when none). */
  expiredExceptions?: RiskException[];
  /** The control's exceptions that hold but match no failing finding now (absent when none). */
  staleExceptions?: RiskException[];
}

/** The config's exceptions and the calendar day (in `timezone`) they are judged on. */
export interface ExceptionContext {
  list: readonly RiskException[];
  /** Today, YYYY-MM-DD in `timezone`: an exception holds through its `expires` day. */
  today: string;
}

/** Judges one probe × target from its newest result. */
export function targetStatus(probe: string, target: string, intervalMs: number, result: ProbeResult | undefined, now: Date, excepted: (resource: string) => boolean = () => false): TargetStatus {
  const base = { probe, target, lastMeasuredAt: result?.finishedAt };
  if (!result) return { ...base, status: 'unknown', stale: false, reasons: [`${probe}/${target}: no result yet`] };
  const ageMs = now.getTime() - Date.parse(result.finishedAt);
  const stale = !(ageMs <= 2 * intervalMs);
  const reasons: string[] = [];
  let status: ControlStatus = 'green';
  if (result.error) {
    status = 'unknown';
    reasons.push(`${probe}/${target}: run error ${result.error.class}: ${result.error.message}`);
  }
  const failing = result.findings.filter((f) => f.outcome === 'fail' && !excepted(f.resource));
  const unknown = result.findings.filter((f) => f.outcome === 'unknown');
  if (failing.length > 0) {
    status = 'red';
    reasons.push(`${probe}/${target}: ${failing.length} failing (${failing.slice(0, 3).map((f) => f.resource).join(', ')}${failing.length > 3 ? ', …' : ''})`);
  }
  if (unknown.length > 0) {
    if (status === 'green') status = 'unknown';
    // Name the cause, not just the count: the resource and the probe's one-line message.
    const named = unknown.slice(0, 3).map((f) => (f.message ? `${f.resource} (${f.message.length > 200 ? `${f.message.slice(0, 199)}…` : f.message})` : f.resource));
    reasons.push(`${probe}/${target}: ${unknown.length} could not be judged: ${named.join('; ')}${unknown.length > 3 ? `; … (${unknown.length - 3} more)` : ''}`);
  }
  if (!result.error && result.findings.length === 0) {
    status = 'unknown';
    reasons.push(`${probe}/${target}: the run found nothing to judge`);
  }
  if (stale) {
    if (status === 'green') status = 'unknown';
    reasons.push(`${probe}/${target}: stale, newest result is from ${result.finishedAt} (limit ${Math.round((2 * intervalMs) / 1000)} s)`);
  }
  return { ...base, status, stale, reasons };
}

/**
 * Status of a control now: red when some newest finding fails (a known failure stays red even
 * when its result is stale: that never overstates health); unknown when anything is missing,
 * errored, could not be judged, or stale; green only when every configured target of every probe
 * has a fresh result whose findings all pass or are not applicable.
 */
export function controlStatus(control: Pick<Control, 'id' | 'probes'>, evidence: readonly ProbeEvidence[], now: Date, exceptions?: ExceptionContext): ControlState {
  const byProbe = new Map(evidence.map((e) => [e.probe, e]));
  const targets: TargetStatus[] = [];
  const reasons: string[] = [];
  // Exceptions (issue 15) are applied to the newest failing findings of every target at once, so
  // "stale" (matches nothing) is judged over the whole control.
  let applied: ReturnType<typeof applyExceptions> | undefined;
  const exceptedKeys = new Set<string>();
  if (exceptions && exceptions.list.some((e) => e.control === control.id)) {
    const failing = [];
    for (const probe of control.probes) {
      const e = byProbe.get(probe);
      if (!e || !e.enabled) continue;
      for (const t of e.targets) for (const f of t.result?.findings ?? []) if (f.outcome === 'fail') failing.push({ probe, target: t.target, resource: f.resource, message: f.message });
    }
    applied = applyExceptions(control.id, failing, exceptions.list, exceptions.today);
    for (const x of applied.excepted) exceptedKeys.add(`${x.probe}|${x.target}|${x.resource}`);
  }
  for (const probe of control.probes) {
    const e = byProbe.get(probe);
    if (!e || !e.enabled) {
      reasons.push(`${probe}: probe is switched off in the config`);
      continue;
    }
    if (e.targets.length === 0) {
      reasons.push(`${probe}: no target configured`);
      continue;
    }
    for (const t of e.targets) targets.push(targetStatus(probe, t.target, t.intervalMs ?? e.intervalMs, t.result, now, (resource) => exceptedKeys.has(`${probe}|${t.target}|${resource}`)));
  }
  if (control.probes.length === 0) reasons.push('no probe evidences this control');
  for (const t of targets) reasons.push(...t.reasons);
  if (applied) reasons.push(...applied.lapsed.map(lapsedReason));
  let status: ControlStatus;
  if (targets.some((t) => t.status === 'red')) status = 'red';
  else if (reasons.length > 0) status = 'unknown';
  else status = 'green';
  const measured = targets.map((t) => t.lastMeasuredAt).filter((x): x is string => x !== undefined).sort();
  return {
    id: control.id,
    status,
    stale: targets.some((t) => t.stale),
    reasons,
    lastMeasuredAt: measured.at(-1),
    targets,
    ...(applied && applied.excepted.length > 0 && { excepted: applied.excepted }),
    ...(applied && applied.expired.length > 0 && { expiredExceptions: sortExceptions(applied.expired).map(exceptionRecord) }),
    ...(applied && applied.stale.length > 0 && { staleExceptions: sortExceptions(applied.stale).map(exceptionRecord) }),
  };
}

/** The metric value of a status: 1 green, 0 red, -1 unknown. */
export function statusValue(status: ControlStatus): number {
  return status === 'green' ? 1 : status === 'red' ? 0 : -1;
}

/** The outcome of one run, for `vigil_probe_runs_total{outcome}`: error, fail, unknown or pass. */
export function runOutcome(result: ProbeResult): 'error' | 'fail' | 'unknown' | 'pass' {
  if (result.error) return 'error';
  if (result.findings.some((f) => f.outcome === 'fail')) return 'fail';
  if (result.findings.length === 0 || result.findings.some((f) => f.outcome === 'unknown')) return 'unknown';
  return 'pass';
}
