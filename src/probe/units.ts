import type { ConfiguredProbe, LoadedConfig } from '../config/load.js';
import type { Control } from '../config/controls.js';
import type { ProbeResult, ProbeTarget } from './contract.js';
import type { ProbeEvidence } from '../posture/status.js';

/** One probe × target: the unit the scheduler fires and the worker runs. */
export interface ScheduledUnit {
  configured: ConfiguredProbe;
  target: ProbeTarget<unknown>;
}

/** Every enabled probe × every target it has in the config. */
export function configuredUnits(loaded: LoadedConfig): ScheduledUnit[] {
  const units: ScheduledUnit[] = [];
  for (const configured of loaded.probes.values()) {
    for (const target of configured.probe.targets(loaded.config)) units.push({ configured, target });
  }
  return units;
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
      targets: mine.map((u) => ({ target: u.target.name, result: latest.get(`${id}|${u.target.name}`) })),
    };
  });
}

/**
 * Splits the catalog into the controls this deployment measures — at least one of their probes
 * has a configured target — and those it does not measure at all (e.g. the GitHub controls when
 * no `github:` target is configured). The latter are reported as `not_configured`, never green,
 * and count as "not measured" in framework coverage; they are left out of status metrics and day
 * verdicts so an unused integration does not page anyone. A control with some probes configured
 * and others not is measured (and unknown until all are).
 */
export function splitByConfiguration(loaded: LoadedConfig, units: readonly ScheduledUnit[]): { measured: Control[]; notConfigured: Control[] } {
  const withTargets = new Set(units.map((u) => u.configured.probe.id));
  const measured: Control[] = [];
  const notConfigured: Control[] = [];
  for (const c of loaded.catalog.controls) (c.probes.some((p) => withTargets.has(p)) ? measured : notConfigured).push(c);
  return { measured, notConfigured };
}
