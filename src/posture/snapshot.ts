import type { Control } from '../config/controls.js';
import type { UnitDay } from '../store/state.js';
import { addDays, zonedInstant } from './days.js';
import type { CoverageEntry, CoverageStatus, DayVerdict, ProbeHealth, Snapshot, SnapshotBody, SnapshotControl, SnapshotDiff } from './snapshot-types.js';

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
}

const emptyDay: UnitDay = { runs: 0, red: 0, unknown: 0, errors: 0, last: undefined, failing: [] };

/**
 * A control's verdict on a day (DESIGN.md §3): green only when every configured target of every
 * one of its probes was measured that day and every measurement was green; red when any
 * measurement was red; unknown otherwise — a day without a measurement is never green.
 */
export function dayVerdict(control: Pick<Control, 'probes'>, probes: ReadonlyMap<string, ProbeCadence>, ledger: ReadonlyMap<string, UnitDay>): { verdict: DayVerdict; reasons: string[] } {
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
      if (day.red > 0) {
        red = true;
        reasons.push(`${id}/${target}: ${day.red} of ${day.runs} runs found failures`);
      }
      if (day.errors > 0) reasons.push(`${id}/${target}: ${day.errors} of ${day.runs} runs could not observe`);
      if (day.unknown > 0) reasons.push(`${id}/${target}: ${day.unknown} of ${day.runs} runs could not judge every resource`);
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
function probeCadence(probe: ProbeCadence): SnapshotControl['cadence'] {
  const own = probe.targetCadence ?? new Map<string, { schedule: string; intervalMs: number }>();
  const entries: SnapshotControl['cadence'] = [];
  if (probe.targets.length === 0 || probe.targets.some((t) => !own.has(t))) {
    entries.push({ probe: probe.id, schedule: probe.schedule, intervalSeconds: Math.round(probe.intervalMs / 1000) });
  }
  for (const target of [...probe.targets].sort()) {
    const c = own.get(target);
    if (c) entries.push({ probe: probe.id, target, schedule: c.schedule, intervalSeconds: Math.round(c.intervalMs / 1000) });
  }
  return entries;
}

/** Builds the body of one closed day's snapshot. Pure: same input, same bytes. */
export function buildSnapshot(input: SnapshotInput): SnapshotBody {
  const { date, timezone, minGreenDays, measured: catalog, probes, ledger, prev } = input;
  const prevControls = new Map((prev?.controls ?? []).map((c) => [c.id, c]));
  const endOfDay = zonedInstant(addDays(date, 1), '00:00', timezone).getTime();

  const controls: SnapshotControl[] = catalog.map((control) => {
    const { verdict, reasons } = dayVerdict(control, probes, ledger);
    const streak = nextStreak(date, verdict, prev ? { date: prev.date, control: prevControls.get(control.id) } : undefined);
    const failing: SnapshotControl['failing'] = [];
    const measured: string[] = [];
    const cadence: SnapshotControl['cadence'] = [];
    for (const id of control.probes) {
      const probe = probes.get(id);
      if (!probe) continue;
      cadence.push(...probeCadence(probe));
      for (const target of probe.targets) {
        const day = ledger.get(`${id}|${target}`);
        if (!day) continue;
        if (day.last) measured.push(day.last.finishedAt);
        for (const f of day.failing) failing.push({ probe: id, target, resource: f.resource, message: f.message });
      }
    }
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
    };
  });

  const probeHealth: ProbeHealth[] = [];
  for (const probe of [...probes.values()].sort((a, b) => a.id.localeCompare(b.id))) {
    for (const target of [...probe.targets].sort()) {
      const day = ledger.get(`${probe.id}|${target}`) ?? emptyDay;
      const lastAt = day.last ? Date.parse(day.last.finishedAt) : undefined;
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
        lastError: day.last?.error ?? null,
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
    diff: diffSnapshots(controls, prev, minGreenDays),
  };
}
