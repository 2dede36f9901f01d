import type { Control } from '../config/controls.js';
import type { RiskException } from '../config/schema.js';
import type { UnitDay } from '../store/state.js';
import { MAX_FAILING_PER_RUN } from './ledger-limits.js';
import { applyExceptions, exceptionRecord, lapsedReason, sortExceptions, unprovableReason } from './exceptions.js';
import { DEFAULT_MIN_COVERAGE, percent, scheduledSlots, slotCoverage } from './coverage.js';
import { addDays, zonedInstant } from './days.js';
import { canonicalJson } from './snapshot-types.js';
import type { SnapshotException } from './snapshot-types.js';
import type { CoverageEntry, CoverageStatus, DayVerdict, PopulationUnit, ProbeHealth, Snapshot, SnapshotBody, SnapshotControl, SnapshotDiff } from './snapshot-types.js';

/** A configured probe as the day close sees it. */
export interface ProbeCadence {
  id: string;
  schedule: string;
  intervalMs: number;
  /** Configured target names; empty when the probe has none. */
  targets: string[];
  /** Targets on a schedule of their own (other than `schedule`), by name; the others follow the probe's. */
  targetCadence?: ReadonlyMap<string, { schedule: string; intervalMs: number }>;
}

/** Everything one day's snapshot is built from. */
export interface SnapshotInput {
  date: string;
  timezone: string;
  minGreenDays: number;
  /** The controls this deployment measures (at least one probe with a configured target). */
  measured: readonly Control[];
  /** Catalog controls with no configured target: absent from the day's controls, "not measured" in coverage. */
  notConfigured: readonly Control[];
  /** Enabled probes by id (a catalog probe missing here is switched off). */
  probes: ReadonlyMap<string, ProbeCadence>;
  /** The day's ledger, keyed `probe|target`. */
  ledger: ReadonlyMap<string, UnitDay>;
  /** The previous snapshot (normally the day before), if any. */
  prev: Snapshot | undefined;
  /** `days.minCoverage`: share of a target's scheduled slots a green day needs measured. Default 0.9. */
  minCoverage?: number;
  /** The config's `exceptions:` (risk acceptances); none by default. */
  exceptions?: readonly RiskException[];
}

/**
 * Whether a unit's failing list holds every failure of its day: a run's failing resources beyond
 * {@link MAX_FAILING_PER_RUN} are not kept, so a list that long may be cut, and no exception can
 * prove it holds every failure.
 */
function failingComplete(day: UnitDay | undefined): boolean {
  return day !== undefined && day.failing.length < MAX_FAILING_PER_RUN;
}

/** Units (`probe|target`) whose red runs are wholly excepted: every failing resource is held by an exception. */
function exceptedUnits(ledger: ReadonlyMap<string, UnitDay>, applied: { kept: ReadonlyArray<{ probe: string; target: string }>; excepted: ReadonlyArray<{ probe: string; target: string }> }): Set<string> {
  const kept = new Set(applied.kept.map((f) => `${f.probe}|${f.target}`));
  const out = new Set<string>();
  for (const f of applied.excepted) {
    const key = `${f.probe}|${f.target}`;
    if (!kept.has(key) && failingComplete(ledger.get(key))) out.add(key);
  }
  return out;
}

/** Slot coverage as the day verdict judges it (issue 13). */
export interface DayCoverage {
  /** `days.minCoverage`, in (0, 1]. */
  minCoverage: number;
  /**
   * Scheduled slots of each probe × target that day, keyed `probe|target`; a string says why they
   * could not be counted (the day is then not green).
   */
  expected: ReadonlyMap<string, number | string>;
}

/** The schedule a target follows: its own, else its probe's. */
function targetSchedule(probe: ProbeCadence, target: string): string {
  return probe.targetCadence?.get(target)?.schedule ?? probe.schedule;
}

/** Scheduled slots on `date` of every configured probe × target (see {@link DayCoverage}). */
export function expectedSlots(probes: ReadonlyMap<string, ProbeCadence>, date: string, timezone: string): Map<string, number | string> {
  const out = new Map<string, number | string>();
  for (const probe of probes.values()) {
    for (const target of probe.targets) {
      const schedule = targetSchedule(probe, target);
      try {
        out.set(`${probe.id}|${target}`, scheduledSlots(schedule, timezone, date));
      } catch (err) {
        out.set(`${probe.id}|${target}`, `the scheduled slots of "${schedule}" could not be counted (${(err as Error).message})`);
      }
    }
  }
  return out;
}

/** At most this many unjudged resources are named in one reason. */
const MAX_CAUSES = 3;

/** Longest message quoted in a reason. */
const MAX_CAUSE_CHARS = 200;

function clip(text: string): string {
  return text.length > MAX_CAUSE_CHARS ? `${text.slice(0, MAX_CAUSE_CHARS - 1)}…` : text;
}

/** ": cause; cause; …" for reasons; empty when no cause is known. */
function because(causes: ReadonlyArray<string>): string {
  if (causes.length === 0) return '';
  return `: ${causes.slice(0, MAX_CAUSES).map(clip).join('; ')}${causes.length > MAX_CAUSES ? `; … (${causes.length - MAX_CAUSES} more)` : ''}`;
}

/**
 * The resources the day could not judge, "resource (message)", from the day's population (their
 * worst outcome that day was unknown); empty for ledgers from before the population was kept.
 */
function unknownCauses(day: UnitDay): string[] {
  const causes: string[] = [];
  for (const e of day.population ?? []) if (e.outcome === 'unknown') causes.push(e.message ? `${e.resource} (${e.message})` : e.resource);
  return causes;
}

const emptyDay: UnitDay = { runs: 0, red: 0, unknown: 0, errors: 0, last: undefined, failing: [] };

/**
 * A control's verdict on a day (DESIGN.md §3): green only when every configured target of every
 * one of its probes was measured that day and every measurement was green; red when any
 * measurement was red; unknown otherwise — a day without a measurement is never green. With
 * `coverage`, a target measured in fewer than `minCoverage` of its scheduled slots also keeps the
 * day from green (issue 13: one run in 24 hourly slots is not a measured day). Reasons name the
 * cause: the newest error, and some of the resources that could not be judged with their messages.
 */
export function dayVerdict(
  control: Pick<Control, 'probes'>,
  probes: ReadonlyMap<string, ProbeCadence>,
  ledger: ReadonlyMap<string, UnitDay>,
  coverage?: DayCoverage,
  /** Units whose failures were all held by exceptions: their red runs do not redden the day. */
  excepted?: ReadonlySet<string>,
): { verdict: DayVerdict; reasons: string[] } {
  const reasons: string[] = [];
  let red = false;
  for (const id of control.probes) {
    const probe = probes.get(id);
    if (!probe) {
      reasons.push(`${id}: probe is switched off`);
      continue;
    }
    if (probe.targets.length === 0) {
      reasons.push(`${id}: no target configured`);
      continue;
    }
    for (const target of probe.targets) {
      const day = ledger.get(`${id}|${target}`) ?? emptyDay;
      if (day.runs === 0) reasons.push(`${id}/${target}: not measured that day`);
      if (day.red > 0 && !excepted?.has(`${id}|${target}`)) {
        red = true;
        reasons.push(`${id}/${target}: ${day.red} of ${day.runs} runs found failures`);
      }
      if (day.errors > 0) {
        const error = day.lastError ?? day.last?.error;
        reasons.push(`${id}/${target}: ${day.errors} of ${day.runs} runs could not observe${error ? ` (newest error: ${clip(error)})` : ''}`);
      }
      if (day.unknown > 0) reasons.push(`${id}/${target}: ${day.unknown} of ${day.runs} runs could not judge every resource${because(unknownCauses(day))}`);
      const expected = coverage?.expected.get(`${id}|${target}`);
      if (coverage && typeof expected === 'string') reasons.push(`${id}/${target}: ${expected}`);
      else if (coverage && typeof expected === 'number' && expected > 0 && day.runs > 0 && day.runs / expected < coverage.minCoverage) {
        // The unrounded share: slotCoverage rounds to 4 decimals, which can reach the threshold (89.996 % → 0.9 → "90 %").
        const share = day.runs / expected;
        reasons.push(`${id}/${target}: measured ${day.runs} of ${expected} scheduled runs (${percent(share)}), below days.minCoverage ${percent(coverage.minCoverage)}`);
      }
    }
  }
  if (control.probes.length === 0) reasons.push('no probe evidences this control');
  return { verdict: red ? 'red' : reasons.length > 0 ? 'unknown' : 'green', reasons };
}

/**
 * The streak after a day, from the previous snapshot's entry alone (O(1) per control): one more
 * than yesterday's when today is green and the previous snapshot is yesterday's, 1 when today
 * starts a streak, 0 when today is not green.
 */
export function nextStreak(date: string, verdict: DayVerdict, prev: { date: string; control: SnapshotControl | undefined } | undefined): { streak: number; greenSince: string | null; lastGreenDay: string | null } {
  const prevControl = prev?.control;
  const continues = prev !== undefined && prev.date === addDays(date, -1) && prevControl !== undefined && prevControl.streak > 0;
  if (verdict !== 'green') return { streak: 0, greenSince: null, lastGreenDay: prevControl?.lastGreenDay ?? null };
  if (continues) return { streak: prevControl.streak + 1, greenSince: prevControl.greenSince ?? date, lastGreenDay: date };
  return { streak: 1, greenSince: date, lastGreenDay: date };
}

/** On the trust feed: public and green for at least `minGreenDays` (never below 30) consecutive days. */
export function onFeed(c: Pick<SnapshotControl, 'public' | 'verdict' | 'streak'>, minGreenDays: number): boolean {
  return c.public && c.verdict === 'green' && c.streak >= Math.max(30, minGreenDays);
}

/**
 * How the configured exceptions changed since the previous snapshot (who accepted what, and when
 * it was withdrawn): compared whole, so an edited exception is one removed and one added.
 */
export function exceptionChanges(now: readonly SnapshotException[], prev: Pick<Snapshot, 'exceptions'> | undefined): Pick<SnapshotDiff, 'exceptionsAdded' | 'exceptionsRemoved'> {
  const before = prev?.exceptions ?? [];
  const keys = (list: readonly SnapshotException[]) => new Set(list.map((e) => canonicalJson(e)));
  const had = keys(before);
  const has = keys(now);
  const added = now.filter((e) => !had.has(canonicalJson(e)));
  const removed = before.filter((e) => !has.has(canonicalJson(e)));
  return { ...(added.length > 0 && { exceptionsAdded: added }), ...(removed.length > 0 && { exceptionsRemoved: removed }) };
}

/** What changed since the previous snapshot. */
export function diffSnapshots(controls: readonly SnapshotControl[], prev: Snapshot | undefined, minGreenDays: number): SnapshotDiff {
  const before = new Map((prev?.controls ?? []).map((c) => [c.id, c]));
  const diff: SnapshotDiff = { since: prev?.date ?? null, newReds: [], recoveries: [], reachedThirtyDays: [], leftFeed: [] };
  for (const c of controls) {
    const p = before.get(c.id);
    if (c.verdict === 'red' && p?.verdict !== 'red') diff.newReds.push(c.id);
    if (c.verdict === 'green' && p?.verdict === 'red') diff.recoveries.push(c.id);
    if (c.streak >= Math.max(30, minGreenDays) && !(p && p.streak >= Math.max(30, minGreenDays))) diff.reachedThirtyDays.push(c.id);
    if (p && onFeed(p, minGreenDays) && !onFeed(c, minGreenDays)) diff.leftFeed.push(c.id);
  }
  // A public control that was on the feed and is no longer in the catalog has left it too.
  const now = new Set(controls.map((c) => c.id));
  for (const p of before.values()) if (!now.has(p.id) && onFeed(p, minGreenDays)) diff.leftFeed.push(p.id);
  return diff;
}

function coverage(controls: ReadonlyArray<Pick<SnapshotControl, 'id' | 'verdict' | 'frameworks'>>, framework: 'soc2' | 'iso27001'): CoverageEntry[] {
  const byRef = new Map<string, Array<Pick<SnapshotControl, 'id' | 'verdict'>>>();
  for (const c of controls) for (const ref of c.frameworks[framework]) byRef.set(ref, [...(byRef.get(ref) ?? []), c]);
  return [...byRef.entries()]
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([id, cs]) => {
      const measured = cs.filter((c) => c.verdict !== 'unknown').length;
      const status: CoverageStatus = measured === cs.length ? 'measured' : measured > 0 ? 'partly_measured' : 'not_measured';
      return { id, status, controls: cs.map((c) => c.id) };
    });
}

/**
 * A probe's cadence entries: the probe's own schedule, stated while some target follows it (or it
 * has none), then each target on a schedule of its own, by name. Without such targets this is the
 * one entry snapshots always had, so their bytes and hashes are unchanged.
 */
function probeCadence(probe: ProbeCadence, ledger: ReadonlyMap<string, UnitDay>): SnapshotControl['cadence'] {
  const own = probe.targetCadence ?? new Map<string, { schedule: string; intervalMs: number }>();
  const runs = (target: string) => ledger.get(`${probe.id}|${target}`)?.runs ?? 0;
  const entries: SnapshotControl['cadence'] = [];
  if (probe.targets.length === 0 || probe.targets.some((t) => !own.has(t))) {
    // Measured as often as its least-measured target: only then was every part measured that often.
    const following = probe.targets.filter((t) => !own.has(t));
    entries.push({
      probe: probe.id,
      schedule: probe.schedule,
      intervalSeconds: Math.round(probe.intervalMs / 1000),
      ...(following.length > 0 && { measuredRuns: Math.min(...following.map(runs)) }),
    });
  }
  for (const target of [...probe.targets].sort()) {
    const c = own.get(target);
    if (c) entries.push({ probe: probe.id, target, schedule: c.schedule, intervalSeconds: Math.round(c.intervalMs / 1000), measuredRuns: runs(target) });
  }
  return entries;
}

/** Code-unit order, the same in every locale (the population's sort). */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** An evidence level at which a restore succeeded in isolation (issue 11: L4; L5 also validated the data). */
export const RESTORE_TESTED_LEVEL = 4;

/**
 * A control's evidence level on the day — the lowest `details.level` over the resources of its
 * probes' configured targets that report one — and `restoreTestedDays`, the run of days ending
 * today at L4 or more, from the previous snapshot alone (O(1), like {@link nextStreak}). Both
 * absent when no resource of the control reports a level that day; level 0 when a target that
 * reports levels had resources cut from the population (their levels are not known).
 */
export function controlEvidence(
  control: Pick<Control, 'probes'>,
  probes: ReadonlyMap<string, ProbeCadence>,
  ledger: ReadonlyMap<string, UnitDay>,
  date: string,
  prev: { date: string; control: SnapshotControl | undefined } | undefined,
): { evidenceLevel?: number; restoreTestedDays?: number } {
  let level: number | undefined;
  for (const id of control.probes) {
    const probe = probes.get(id);
    if (!probe) continue;
    for (const target of probe.targets) {
      const day = ledger.get(`${id}|${target}`);
      let reports = false;
      for (const r of day?.population ?? []) {
        if (r.level === undefined) continue;
        reports = true;
        if (level === undefined || r.level < level) level = r.level;
      }
      // Resources cut from the population may have had a lower level: the day proves none.
      if (reports && (day?.populationOmitted ?? 0) > 0) level = 0;
    }
  }
  if (level === undefined) return {};
  return { evidenceLevel: level, restoreTestedDays: nextRestoreTestedDays(date, level, prev) };
}

/** One more than yesterday's `restoreTestedDays` when today is at L4+ (1 when yesterday's snapshot is missing or was below), else 0. */
export function nextRestoreTestedDays(date: string, level: number, prev: { date: string; control: SnapshotControl | undefined } | undefined): number {
  if (level < RESTORE_TESTED_LEVEL) return 0;
  const before = prev !== undefined && prev.date === addDays(date, -1) ? (prev.control?.restoreTestedDays ?? 0) : 0;
  return before + 1;
}

/**
 * The day's tested population: every configured probe × target that was measured, sorted by probe
 * then target, each with its resources (already sorted by the ledger). Absent (`{}`) when the
 * ledger holds no population at all — a day recorded before vigil kept one — so such a day's
 * snapshot is what it always was.
 */
export function dayPopulation(probes: ReadonlyMap<string, ProbeCadence>, ledger: ReadonlyMap<string, UnitDay>): { population?: PopulationUnit[] } {
  const units: PopulationUnit[] = [];
  let recorded = false;
  for (const probe of [...probes.values()].sort((a, b) => byCodeUnits(a.id, b.id))) {
    for (const target of [...probe.targets].sort(byCodeUnits)) {
      const day = ledger.get(`${probe.id}|${target}`);
      if (!day || day.runs === 0) continue;
      if (day.population !== undefined || day.populationOmitted !== undefined) recorded = true;
      const resources = (day.population ?? []).map((r) => ({
        resource: r.resource,
        outcome: r.outcome,
        ...(r.message !== undefined && { message: r.message }),
        ...(r.level !== undefined && { level: r.level }),
      }));
      units.push({ probe: probe.id, target, resources, ...(day.populationOmitted ? { omitted: day.populationOmitted } : {}) });
    }
  }
  return recorded ? { population: units } : {};
}

/** Builds the body of one closed day's snapshot. Pure: same input, same bytes. */
export function buildSnapshot(input: SnapshotInput): SnapshotBody {
  const { date, timezone, minGreenDays, measured: catalog, probes, ledger, prev } = input;
  const prevControls = new Map((prev?.controls ?? []).map((c) => [c.id, c]));
  const endOfDay = zonedInstant(addDays(date, 1), '00:00', timezone).getTime();
  const dayCoverage: DayCoverage = { minCoverage: input.minCoverage ?? DEFAULT_MIN_COVERAGE, expected: expectedSlots(probes, date, timezone) };

  const exceptions = input.exceptions ?? [];
  const archivedExceptions = sortExceptions(exceptions).map(exceptionRecord);
  const controls: SnapshotControl[] = catalog.map((control) => {
    const allFailing: SnapshotControl['failing'] = [];
    const measured: string[] = [];
    const cadence: SnapshotControl['cadence'] = [];
    for (const id of control.probes) {
      const probe = probes.get(id);
      if (!probe) continue;
      cadence.push(...probeCadence(probe, ledger));
      for (const target of probe.targets) {
        const day = ledger.get(`${id}|${target}`);
        if (!day) continue;
        if (day.last) measured.push(day.last.finishedAt);
        for (const f of day.failing) allFailing.push({ probe: id, target, resource: f.resource, message: f.message });
      }
    }
    // Exceptions (issue 15): a unit's failures are excepted only when its failing list is provably complete.
    const applied = applyExceptions(control.id, allFailing, exceptions, date, (probe, target) => failingComplete(ledger.get(`${probe}|${target}`)));
    const failing = applied.kept;
    const { verdict, reasons } = dayVerdict(control, probes, ledger, dayCoverage, exceptedUnits(ledger, applied));
    reasons.push(...applied.lapsed.map(lapsedReason), ...(applied.unprovable ?? []).map((u) => unprovableReason(u, MAX_FAILING_PER_RUN)));
    const streak = nextStreak(date, verdict, prev ? { date: prev.date, control: prevControls.get(control.id) } : undefined);
    const evidence = controlEvidence(control, probes, ledger, date, prev ? { date: prev.date, control: prevControls.get(control.id) } : undefined);
    return {
      id: control.id,
      title: control.title,
      public: control.public,
      publicTitle: control.publicTitle,
      publicDescription: control.publicDescription,
      frameworks: { soc2: [...control.frameworks.soc2], iso27001: [...control.frameworks.iso27001] },
      verdict,
      reasons,
      ...streak,
      thirtyDayGreen: verdict === 'green' && streak.streak >= Math.max(30, minGreenDays),
      lastMeasuredAt: measured.sort().at(-1) ?? null,
      cadence,
      failing,
      ...evidence,
      ...(applied.excepted.length > 0 && { exceptions: applied.excepted }),
      ...(applied.expired.length > 0 && { expiredExceptions: sortExceptions(applied.expired).map(exceptionRecord) }),
      ...(applied.stale.length > 0 && { staleExceptions: sortExceptions(applied.stale).map(exceptionRecord) }),
    };
  });

  const probeHealth: ProbeHealth[] = [];
  for (const probe of [...probes.values()].sort((a, b) => a.id.localeCompare(b.id))) {
    for (const target of [...probe.targets].sort()) {
      const day = ledger.get(`${probe.id}|${target}`) ?? emptyDay;
      const lastAt = day.last ? Date.parse(day.last.finishedAt) : undefined;
      const expected = dayCoverage.expected.get(`${probe.id}|${target}`);
      const share = typeof expected === 'number' ? slotCoverage(day.runs, expected) : undefined;
      probeHealth.push({
        probe: probe.id,
        target,
        runs: day.runs,
        errors: day.errors,
        unknown: day.unknown,
        red: day.red,
        lastRunAt: day.last?.finishedAt ?? null,
        stale: lastAt === undefined || endOfDay - lastAt > 2 * (probe.targetCadence?.get(target)?.intervalMs ?? probe.intervalMs),
        sourceFreshness: day.last?.sourceFreshness ?? null,
        lastError: day.lastError ?? day.last?.error ?? null,
        ...(typeof expected === 'number' && { expectedRuns: expected }),
        ...(share !== undefined && { coverage: share }),
      });
    }
  }

  const count = (v: DayVerdict) => controls.filter((c) => c.verdict === v).length;
  return {
    schema: 'vigil.snapshot/1',
    date,
    timezone,
    minGreenDays,
    prevHash: prev?.hash ?? null,
    counts: { green: count('green'), red: count('red'), unknown: count('unknown') },
    controls,
    probeHealth,
    coverage: (() => {
      const all = [...controls, ...input.notConfigured.map((c) => ({ id: c.id, verdict: 'unknown' as DayVerdict, frameworks: c.frameworks }))];
      return { soc2: coverage(all, 'soc2'), iso27001: coverage(all, 'iso27001') };
    })(),
    diff: { ...diffSnapshots(controls, prev, minGreenDays), ...exceptionChanges(archivedExceptions, prev) },
    ...(archivedExceptions.length > 0 && { exceptions: archivedExceptions }),
    ...dayPopulation(probes, ledger),
  };
}
