import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import type { ProbeResult } from '../probe/contract.js';
import { runProbe } from '../probe/runner.js';
import { configuredUnits, splitByConfiguration, type ScheduledUnit } from '../probe/units.js';
import { controlStatus, type ControlStatus, type ProbeEvidence } from '../posture/status.js';

/** The single JSON document `vigil run-once --json` prints. */
export interface RunOnceReport {
  results: ProbeResult[];
  /** `not_configured`: none of the control's probes has a target in this config (never green, not counted in the exit code). */
  controls: Array<{ id: string; status: ControlStatus | 'not_configured'; reasons: string[] }>;
}

/**
 * Runs every configured probe × target now, in this process (no Redis), retrying transient
 * failures like the daemon would, and judges the catalog's controls (with --probe, only the
 * controls that probe evidences, on that probe's evidence).
 */
export async function runOnce(loaded: LoadedConfig, opts: { probe?: string | undefined; log: Logger; now?: () => Date }): Promise<RunOnceReport> {
  const now = opts.now ?? (() => new Date());
  const units = configuredUnits(loaded).filter((u) => !opts.probe || u.configured.probe.id === opts.probe);
  const { attempts, backoffSeconds, timeoutSeconds } = loaded.config.worker;
  const slot = now();
  const results = await Promise.all(
    units.map(async (unit) => {
      for (let attempt = 1; ; attempt++) {
        const outcome = await runProbe({
          probe: unit.configured.probe,
          target: unit.target,
          params: unit.configured.params,
          runId: `${unit.configured.probe.id}|${unit.target.name}|once-${slot.getTime()}`,
          scheduledFor: slot,
          timeoutMs: unit.target.timeoutMs ?? timeoutSeconds * 1000,
          log: opts.log.child({ probe: unit.configured.probe.id, target: unit.target.name, attempt }),
          now,
        });
        if (!outcome.transientError || attempt >= attempts) return outcome.result;
        await new Promise((r) => setTimeout(r, Math.min(backoffSeconds * 1000 * 2 ** (attempt - 1), 30_000)));
      }
    }),
  );
  const latest = new Map(results.map((r) => [`${r.probe}|${r.target}`, r]));
  const evidence = freshEvidence(loaded, units, latest);
  const at = now();
  // With --probe, only the controls it evidences, judged on that probe. Without it, every control
  // with a configured target is judged; the rest are listed as not configured.
  const { measured, notConfigured } = splitByConfiguration(loaded, configuredUnits(loaded));
  const controls: RunOnceReport['controls'] = measured
    .filter((c) => !opts.probe || c.probes.includes(opts.probe))
    .map((c) => {
      const s = controlStatus({ id: c.id, probes: opts.probe ? [opts.probe] : c.probes }, evidence, at);
      return { id: c.id, status: s.status, reasons: s.reasons };
    });
  if (!opts.probe) {
    for (const c of notConfigured) controls.push({ id: c.id, status: 'not_configured', reasons: ['no probe of this control has a configured target'] });
  } else {
    for (const c of notConfigured.filter((c) => c.probes.includes(opts.probe as string))) {
      controls.push({ id: c.id, status: 'unknown', reasons: [`${opts.probe}: no target configured`] });
    }
  }
  return { results, controls };
}

/**
 * As evidenceFor (src/probe/units.ts), for results this run has just produced: they cannot be
 * stale, so no probe's schedule interval is read. Working that interval out of a cron expression
 * (cron-parser walks a year of firings) is the dearest part of a config — a CI gate need not pay it.
 */
function freshEvidence(loaded: LoadedConfig, units: readonly ScheduledUnit[], latest: ReadonlyMap<string, ProbeResult>): ProbeEvidence[] {
  const probeIds = new Set(loaded.catalog.controls.flatMap((c) => c.probes));
  return [...probeIds].map((id) => ({
    probe: id,
    enabled: loaded.probes.has(id),
    intervalMs: Number.POSITIVE_INFINITY,
    targets: units.filter((u) => u.configured.probe.id === id).map((u) => ({ target: u.target.name, result: latest.get(`${id}|${u.target.name}`) })),
  }));
}

/** 0 when every reported control is green, 1 when any is red, 2 when none is red but some is unknown (or nothing ran). */
export function runOnceExitCode(report: RunOnceReport): number {
  const judged = report.controls.filter((c) => c.status !== 'not_configured');
  if (judged.some((c) => c.status === 'red')) return 1;
  if (judged.length === 0 || judged.some((c) => c.status !== 'green')) return 2;
  return 0;
}

/** A plain-text table: one row per finding, then one per control. */
export function formatRunOnceTable(report: RunOnceReport): string {
  const rows: string[][] = [['PROBE', 'TARGET', 'RESOURCE', 'OUTCOME', 'MESSAGE']];
  for (const r of report.results) {
    if (r.error) rows.push([r.probe, r.target, '-', 'error', `${r.error.class}: ${r.error.message}`]);
    for (const f of r.findings) rows.push([r.probe, r.target, f.resource, f.outcome, f.message]);
  }
  const controls: string[][] = [['CONTROL', 'STATUS', 'WHY'], ...report.controls.map((c) => [c.id, c.status, c.reasons[0] ?? ''])];
  return `${table(rows)}\n${table(controls)}`;
}

function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n') + '\n';
}

/** pino's level numbers. */
const levelValues: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Number.POSITIVE_INFINITY };
const logMethods = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

/**
 * A logger for run-once that loads pino (and its ten modules, ~10 MB on Node 24) only when a
 * line at `level` or above is actually written: a CI gate on a healthy config, or any run with
 * `--format json` (level silent), never pays for it. Records written before pino is loaded are
 * queued and written, in order and through the real logger (redaction and scrubbing included),
 * once it is; `flush()` waits for that. Supports what probes and clients use: the six level
 * methods, `silent()`, `child()`, `bindings()`, `flush()` (a no-op: see the returned `flush`), `level` and `isLevelEnabled()`.
 */
export function lazyLogger(level: string, create: () => Promise<Logger>): { log: Logger; flush: () => Promise<void> } {
  const threshold = levelValues[level] ?? levelValues.info!;
  let real: Logger | undefined;
  let loading: Promise<void> | undefined;
  const queue: Array<{ bindings: Array<Record<string, unknown>>; method: (typeof logMethods)[number]; args: unknown[] }> = [];
  const target = (root: Logger, bindings: ReadonlyArray<Record<string, unknown>>): Logger => bindings.reduce<Logger>((l, b) => l.child(b), root);
  const write = (bindings: Array<Record<string, unknown>>, method: (typeof logMethods)[number], args: unknown[]): void => {
    if (real) {
      (target(real, bindings)[method] as (...a: unknown[]) => void)(...args);
      return;
    }
    queue.push({ bindings, method, args });
    loading ??= create().then(
      (logger) => {
        real = logger;
        for (const r of queue.splice(0)) (target(logger, r.bindings)[r.method] as (...a: unknown[]) => void)(...r.args);
      },
      () => undefined, // no logger, no lines: the report still stands
    );
  };
  const make = (bindings: Array<Record<string, unknown>>): Logger => {
    const logger: Record<string, unknown> = {
      level,
      isLevelEnabled: (l: string) => (levelValues[l] ?? Number.POSITIVE_INFINITY) >= threshold,
      child: (b: Record<string, unknown>) => make([...bindings, b]),
      bindings: () => Object.assign({}, ...bindings) as Record<string, unknown>,
      silent: () => undefined,
      flush: () => undefined,
    };
    for (const method of logMethods) {
      logger[method] = levelValues[method]! >= threshold ? (...args: unknown[]) => write(bindings, method, args) : () => undefined;
    }
    return logger as unknown as Logger;
  };
  return { log: make([]), flush: async () => void (await loading) };
}
