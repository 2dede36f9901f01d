import type { ConfiguredProbe, LoadedConfig } from '../config/load.js';
import type { Control } from '../config/controls.js';
import type { ProbeResult, ProbeTarget } from './contract.js';
import type { ProbeEvidence } from '../posture/status.js';
import { cronIntervalMs } from '../queue/cron.js';

/** One probe × target: the unit the scheduler fires and the worker runs. */
export interface ScheduledUnit {
  configured: ConfiguredProbe;
  target: ProbeTarget<unknown>;
  /** The effective cron schedule: the target's own, else the probe's configured one. */
  schedule: string;
  /** Longest gap between two firings of {@link schedule}; this unit's staleness limit is 2 × this. */
  intervalMs: number;
}

/** Every enabled probe × every target it has in the config, each with its effective schedule. */
export function configuredUnits(loaded: LoadedConfig): ScheduledUnit[] {
  const units: ScheduledUnit[] = [];
  for (const configured of loaded.probes.values()) {
    for (const target of configured.probe.targets(loaded.config)) units.push(scheduledUnit(configured, target, loaded.config.timezone));
  }
  return units;
}

/**
 * One unit: the target's own schedule when it sets one, else the probe's. The interval walks many
 * firings through cron-parser, so it is computed on first use (the daemon), not by commands that
 * never ask (run-once, config check) — as the probe's own interval is.
 */
export function scheduledUnit(configured: ConfiguredProbe, target: ProbeTarget<unknown>, timezone: string): ScheduledUnit {
  const own = target.schedule;
  if (own === undefined || own === configured.schedule) {
    return {
      configured,
      target,
      schedule: configured.schedule,
      get intervalMs() {
        return configured.intervalMs;
      },
    };
  }
  let interval: number | undefined;
  return {
    configured,
    target,
    schedule: own,
    get intervalMs() {
      return (interval ??= cronIntervalMs(own, timezone));
    },
  };
}

/** The evidence each catalog probe has: its configured targets with their newest results (keyed `probe|target`). */
export function evidenceFor(loaded: LoadedConfig, units: readonly ScheduledUnit[], latest: ReadonlyMap<string, ProbeResult>): ProbeEvidence[] {
  const probeIds = new Set(loaded.catalog.controls.flatMap((c) => c.probes));
  return [...probeIds].map((id) => {
    const configured = loaded.probes.get(id);
    const mine = units.filter((u) => u.configured.probe.id === id);
    return {
      probe: id,
      enabled: configured !== undefined,
      intervalMs: configured?.intervalMs ?? 0,
      targets: mine.map((u) => ({ target: u.target.name, intervalMs: u.intervalMs, result: latest.get(`${id}|${u.target.name}`) })),
    };
  });
}

/**
 * Splits the catalog into the controls this deployment measures — at least one of their probes
 * has a configured target — and those it does not measure at all (e.g. the GitHub controls when
 * no `github:` target is configured). The latter are reported as `not_configured`, never green,
 * and count as "not measured" in framework coverage; they are left out of status metrics and day
 * verdicts so an unused integration does not page anyone.
 *
 * A measured control is judged on the probes this deployment can run: an enabled probe with no
 * configured target (its source — AWS, say — is not in the config at all) is left out of the
 * control's `probes` and listed in `notConfiguredProbes`, so a GitHub-only deployment's MFA control
 * is judged on GitHub rather than unknown forever. A probe switched off with `enabled: false` stays
 * in, and keeps the control unknown: switching off a check is not the same as not having the system.
 */
export function splitByConfiguration(
  loaded: LoadedConfig,
  units: readonly ScheduledUnit[],
): { measured: Array<Control & { notConfiguredProbes: string[] }>; notConfigured: Control[] } {
  const withTargets = new Set(units.map((u) => u.configured.probe.id));
  const measured: Array<Control & { notConfiguredProbes: string[] }> = [];
  const notConfigured: Control[] = [];
  for (const c of loaded.catalog.controls) {
    if (!c.probes.some((p) => withTargets.has(p))) {
      notConfigured.push(c);
      continue;
    }
    const sourceMissing = (p: string) => loaded.probes.has(p) && !withTargets.has(p);
    measured.push({ ...c, probes: c.probes.filter((p) => !sourceMissing(p)), notConfiguredProbes: c.probes.filter(sourceMissing) });
  }
  return { measured, notConfigured };
}
