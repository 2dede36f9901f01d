import type { ConfiguredProbe, LoadedConfig } from '../config/load.js';
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
