/**
 * V8 settings for `vigil run-once`: a process that loads a config, sweeps once, prints a report
 * and exits. Its peak RSS is mostly what V8 reserves for the work, not what it keeps: measured
 * on 500 TLS endpoints (bench/tls-run-once-memory.ts), live heap at the end of the sweep is
 * ~18 MiB, while the young generation grows to 2 × 16 MiB semi-spaces while the config's YAML
 * and the handshakes churn through short-lived objects, and the optimizing compilers
 * (TurboFan; Maglev on Node 22+) spend compile-zone memory on functions that run a few hundred
 * times before the process ends.
 *
 * - `--semi-space-growth-factor=1`: the young generation keeps its initial size (1 MiB
 *   semi-spaces) instead of doubling up to 16 MiB; scavenges are more frequent but cheap, since
 *   little survives them. Same effect as `--max-semi-space-size=1` on the command line, which
 *   V8 no longer honours once the heap is set up.
 * - `--optimize-for-size`: V8's own "favour memory over speed" (smaller heap growth steps and
 *   caches): 4–5 MiB less at the peak of the 500-endpoint run on Node 24.
 * - `--no-opt`, `--no-maglev`: interpreter and baseline code only. A run-once is over before
 *   optimized code would pay back its compile time: CPU seconds of the 500-endpoint run did not
 *   go up (they went down slightly), see the README's Benchmarks.
 *
 * Applied only by the real CLI process (not when tests drive `main()` in-process), before the
 * config is read, and never by the daemon, which runs for months and wants optimized code; not
 * when the operator set such flags themselves. The cost: JavaScript-heavy runs are slower — a
 * run-once of 10,000 AWS findings through a pipe took 1.37–1.45 s instead of 1.20 s (Node 24).
 * Verdicts do not depend on it: it changes when V8 collects and compiles, not what the code does.
 */
import { setFlagsFromString } from 'node:v8';

/** The V8 flags {@link tuneHeapForShortRun} sets, in order. */
export const shortRunV8Flags: readonly string[] = ['--semi-space-growth-factor=1', '--optimize-for-size', '--no-opt', '--no-maglev'];

/** Flags by which an operator tunes the same things: when one is given, their choice stands. */
const operatorTuning = /(^|\s)--(no-?)?(max-semi-space-size|min-semi-space-size|semi-space-growth-factor|optimize-for-size|opt|turbofan|maglev)(=|\s|$)/;

/** Whether the node command line or NODE_OPTIONS already sets young-generation or compiler flags. */
export function operatorTuned(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  // V8 reads `_` and `-` in flag names alike, and negates with `--no-x` or `--nox`.
  return operatorTuning.test(` ${[...execArgv, nodeOptions ?? ''].join(' ').replace(/_/g, '-')} `);
}

let applied = false;

/**
 * Sets {@link shortRunV8Flags} once per process; later calls do nothing. Does nothing when the
 * operator tuned V8 themselves (`node --max-semi-space-size=… bin/vigil.js`, or NODE_OPTIONS).
 */
export function tuneHeapForShortRun(execArgv: readonly string[] = process.execArgv, nodeOptions: string | undefined = process.env.NODE_OPTIONS): void {
  if (applied) return;
  applied = true;
  if (operatorTuned(execArgv, nodeOptions)) return;
  for (const flag of shortRunV8Flags) setFlagsFromString(flag);
}
