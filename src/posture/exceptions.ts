import type { ControlCatalog } from '../config/controls.js';
import type { RiskException } from '../config/schema.js';
import { addDays, dayOf } from './days.js';
import { formatValue } from '../config/errors.js';

/**
 * Exceptions — risk acceptance (issue 15). An exception names a control, optionally a probe, and a
 * resource glob; a FAILING finding it matches does not redden the control while the exception
 * holds (through its `expires` day, in `timezone`), but it is never hidden: it is listed as
 * excepted in `/api/controls`, in the snapshot (and so the email), the day stays green "with
 * exceptions", and the trust feed carries the count. An expired exception stops matching at once
 * and is reported; one that matches no failing finding is reported as stale. Pure.
 */

/** An exception is at most this many days ahead of the day the config is loaded. */
export const MAX_EXCEPTION_DAYS = 365;

/** A failing finding an exception held: what failed, and who accepted it, why, until when. */
export interface ExceptedFinding {
  probe: string;
  target: string;
  resource: string;
  /** The probe's one-line message for the failure. */
  message: string;
  reason: string;
  approvedBy: string;
  ticket?: string;
  expires: string;
}

/** Whether an exception still holds on `day` (YYYY-MM-DD): through its `expires` day. */
export function holdsOn(e: Pick<RiskException, 'expires'>, day: string): boolean {
  return day <= e.expires;
}

/** Whether an exception was already accepted on `day`: from its `approved` day (always, without one). */
export function acceptedOn(e: Pick<RiskException, 'approved'>, day: string): boolean {
  return e.approved === undefined || day >= e.approved;
}

/**
 * `*` matches any run of characters (also `/`), `?` one character, everything else itself; the
 * whole name must match. Iterative with one backtrack point (O(pattern × name) at worst), so a
 * hostile name or pattern cannot make it blow up the way a backtracking regular expression can.
 */
export function globMatch(pattern: string, name: string): boolean {
  const p = Array.from(pattern);
  const s = Array.from(name);
  let i = 0;
  let j = 0;
  let star = -1;
  let mark = 0;
  while (j < s.length) {
    if (i < p.length && (p[i] === '?' || (p[i] !== '*' && p[i] === s[j]))) {
      i++;
      j++;
    } else if (i < p.length && p[i] === '*') {
      star = i++;
      mark = j;
    } else if (star !== -1) {
      i = star + 1;
      j = ++mark;
    } else return false;
  }
  while (i < p.length && p[i] === '*') i++;
  return i === p.length;
}

/** Whether `e` covers a finding of `probe` on `resource` for `control` (ignoring expiry). */
export function covers(e: RiskException, control: string, probe: string, resource: string): boolean {
  return e.control === control && (e.probe === undefined || e.probe === probe) && globMatch(e.resource, resource);
}

/** One failing resource as the judges see it. */
export interface FailingFinding {
  probe: string;
  target: string;
  resource: string;
  message: string;
}

/** What the exceptions of one control did to its failing findings on one day (or now). */
export interface ExceptionOutcome<F extends FailingFinding> {
  /** Failing findings no exception holds: they redden the control. */
  kept: F[];
  /** Failing findings an exception holds: listed, not reddening. */
  excepted: ExceptedFinding[];
  /** Exceptions of the control that expired before `day` (they hold nothing any more). */
  expired: RiskException[];
  /** Exceptions of the control that hold on `day` but match no failing finding: no longer needed. */
  stale: RiskException[];
  /** Expired exceptions that would have matched a failing finding: why the control is red again. */
  lapsed: Array<{ exception: RiskException; finding: F }>;
  /**
   * Units (`probe|target`) whose failing list may have been cut, where a holding exception covers
   * some failure: it is not applied (vigil cannot prove every failure is excepted) — and is not
   * stale either, since it does match. Absent when none.
   */
  unprovable?: string[];
}

/**
 * Applies the exceptions of `control` to its failing findings on `day`. `provable(probe, target)`
 * says whether the unit's failing list is complete: when it was capped, vigil cannot prove that
 * every failure is excepted, so none of that unit's failures is excepted. The first holding
 * exception in config order wins.
 */
export function applyExceptions<F extends FailingFinding>(
  control: string,
  failing: readonly F[],
  exceptions: readonly RiskException[],
  day: string,
  provable: (probe: string, target: string) => boolean = () => true,
): ExceptionOutcome<F> {
  // An exception approved after `day` did not exist yet that day: it neither holds nor expires.
  const mine = exceptions.filter((e) => e.control === control && acceptedOn(e, day));
  const out: ExceptionOutcome<F> = { kept: [], excepted: [], expired: mine.filter((e) => !holdsOn(e, day)), stale: [], lapsed: [] };
  if (mine.length === 0) return { ...out, kept: [...failing] };
  const used = new Set<RiskException>();
  const unprovable = new Set<string>();
  for (const f of failing) {
    const covering = mine.find((e) => holdsOn(e, day) && covers(e, control, f.probe, f.resource));
    const holding = covering && provable(f.probe, f.target) ? covering : undefined;
    if (covering && !holding) {
      // Matches, but cannot be applied: neither an excepted finding nor a stale exception.
      used.add(covering);
      unprovable.add(`${f.probe}|${f.target}`);
    }
    if (holding) {
      used.add(holding);
      out.excepted.push({
        probe: f.probe,
        target: f.target,
        resource: f.resource,
        message: f.message,
        reason: holding.reason,
        approvedBy: holding.approvedBy,
        ...(holding.ticket !== undefined && { ticket: holding.ticket }),
        expires: holding.expires,
      });
      continue;
    }
    out.kept.push(f);
    const lapsed = out.expired.find((e) => covers(e, control, f.probe, f.resource));
    if (lapsed) out.lapsed.push({ exception: lapsed, finding: f });
  }
  out.stale = mine.filter((e) => holdsOn(e, day) && !used.has(e));
  if (unprovable.size > 0) out.unprovable = [...unprovable].sort();
  return out;
}

/** A reason line for a unit whose failing list may be cut, so its matching exceptions were not applied. */
export function unprovableReason(unit: string, max: number): string {
  const [probe, target] = unit.split('|');
  return `${probe}/${target}: ${max.toLocaleString('en-US')} or more resources fail, so its failing list may be incomplete and no exception applies to it`;
}

/** A deterministic order for listing exceptions (the archived snapshot hashes it). */
export function sortExceptions(list: readonly RiskException[]): RiskException[] {
  const key = (e: RiskException) => [e.control, e.probe ?? '', e.resource, e.expires, e.approvedBy, e.reason, e.ticket ?? '', e.approved ?? ''];
  return [...list].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return (ka[i] as string) < (kb[i] as string) ? -1 : 1;
    return 0;
  });
}

/** An exception as written into a snapshot (only its own fields, in a fixed shape). */
export function exceptionRecord(e: RiskException): RiskException {
  return { control: e.control, ...(e.probe !== undefined && { probe: e.probe }), resource: e.resource, reason: e.reason, approvedBy: e.approvedBy, ...(e.ticket !== undefined && { ticket: e.ticket }), ...(e.approved !== undefined && { approved: e.approved }), expires: e.expires };
}

/** A reason line for a failure that an expired exception no longer holds. */
export function lapsedReason(l: { exception: RiskException; finding: FailingFinding }): string {
  return `${l.finding.probe}/${l.finding.target}: ${l.finding.resource} fails, and its exception (approved by ${l.exception.approvedBy}) expired on ${l.exception.expires}`;
}

/**
 * Config problems of `exceptions:` that need the catalog or the clock: an unknown control, a probe
 * that does not evidence the control, and an `expires` more than {@link MAX_EXCEPTION_DAYS} days
 * after the day the config is loaded (in `timezone`). One line each, naming the key path.
 */
export function exceptionProblems(file: string, exceptions: readonly RiskException[], catalog: ControlCatalog, timezone: string, now: Date): string[] {
  const problems: string[] = [];
  const byId = new Map(catalog.controls.map((c) => [c.id, c]));
  const latest = addDays(dayOf(now, timezone), MAX_EXCEPTION_DAYS);
  exceptions.forEach((e, i) => {
    const control = byId.get(e.control);
    if (!control) problems.push(`${file}: exceptions[${i}].control: unknown control ${formatValue(e.control)} (see the catalog)`);
    else if (e.probe !== undefined && !control.probes.includes(e.probe)) {
      problems.push(`${file}: exceptions[${i}].probe: ${formatValue(e.probe)} does not evidence ${control.id} (its probes: ${control.probes.join(', ')})`);
    }
    if (e.approved !== undefined && e.approved > e.expires) problems.push(`${file}: exceptions[${i}].approved: ${e.approved} is after its expiry ${e.expires}`);
    if (e.expires > latest) problems.push(`${file}: exceptions[${i}].expires: ${e.expires} is more than ${MAX_EXCEPTION_DAYS} days ahead: accept a risk for at most a year (until ${latest}), then review it`);
  });
  return problems;
}
