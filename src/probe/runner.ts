import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import { hasSecrets, scrub } from '../secrets.js';
import { Finding, type AnyProbe, type ProbeResult, type ProbeTarget } from './contract.js';
import { isTransient, ProbeTimeoutError } from './errors.js';

/** What one run needs. */
export interface RunRequest {
  probe: AnyProbe;
  target: ProbeTarget<unknown>;
  params: unknown;
  /** Deterministic per slot, so a re-run after a crash is recognised as the same run. */
  runId: string;
  scheduledFor: Date;
  /** Time budget of collect; exceeded → aborted with a ProbeTimeoutError. */
  timeoutMs: number;
  /** Aborts the run from outside (shutdown). */
  signal?: AbortSignal;
  log: Logger;
  /** Injected clock. */
  now?: () => Date;
  /** vigil's Redis, handed to collect (shared rate limits across replicas). */
  redis?: Redis | undefined;
  /** The newest recorded result of this probe × target, handed to collect. */
  previous?: ProbeResult | undefined;
}

/** A finished run, and whether its error is worth another attempt. */
export interface RunOutcome {
  result: ProbeResult;
  /** Set when the run failed with a transient error: the caller may retry instead of recording. */
  transientError?: Error;
  durationSeconds: number;
}

const Findings = z.array(Finding);

/**
 * Runs one probe on one target: collect (I/O, bounded by a timeout and the caller's signal),
 * then evaluate (pure). Never throws: a failure to observe becomes a result with `error`, and
 * the caller decides whether a transient one is retried first. A probe that returns malformed
 * findings is a bug, recorded as an error — never as a pass.
 */
export async function runProbe(req: RunRequest): Promise<RunOutcome> {
  const now = req.now ?? (() => new Date());
  const started = now();
  const t0 = performance.now();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new ProbeTimeoutError(`collect exceeded ${req.timeoutMs} ms`)), req.timeoutMs);
  const onOuterAbort = () => controller.abort(req.signal?.reason ?? new Error('aborted'));
  if (req.signal?.aborted) onOuterAbort();
  req.signal?.addEventListener('abort', onOuterAbort, { once: true });

  const base = {
    runId: req.runId,
    probe: req.probe.id,
    target: req.target.name,
    scheduledFor: req.scheduledFor.toISOString(),
    startedAt: started.toISOString(),
  };
  try {
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
    });
    aborted.catch(() => undefined);
    const observation = await Promise.race([
      req.probe.collect({ target: req.target, params: req.params, signal: controller.signal, log: req.log, now: started, redis: req.redis, previous: req.previous }),
      aborted,
    ]);
    const finishedAt = now();
    let findings: Finding[];
    try {
      findings = scrubFindings(Findings.parse(req.probe.evaluate(observation, req.params, finishedAt)));
    } catch (err) {
      return errorOutcome(base, finishedAt, err, 'EvaluateError', t0);
    }
    const freshness = req.probe.sourceFreshness?.(observation);
    const result: ProbeResult = {
      ...base,
      finishedAt: finishedAt.toISOString(),
      ...(freshness ? { sourceFreshness: freshness.toISOString() } : {}),
      findings,
    };
    return { result, durationSeconds: (performance.now() - t0) / 1000 };
  } catch (err) {
    const outcome = errorOutcome(base, now(), err, undefined, t0);
    if (isTransient(err)) outcome.transientError = err as Error;
    return outcome;
  } finally {
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', onOuterAbort);
  }
}

function errorOutcome(
  base: Omit<ProbeResult, 'finishedAt' | 'findings'>,
  finishedAt: Date,
  err: unknown,
  className: string | undefined,
  t0: number,
): RunOutcome {
  const e = err instanceof Error ? err : new Error(String(err));
  const result: ProbeResult = {
    ...base,
    finishedAt: finishedAt.toISOString(),
    findings: [],
    // The class too: an error's name can come from a peer's answer (R8).
    error: { class: scrub(className ?? (e.name || 'Error')).slice(0, 100), message: scrub(e.message).slice(0, 500) },
  };
  return { result, durationSeconds: (performance.now() - t0) / 1000 };
}

/**
 * Findings go into job data, Redis, the snapshot and the email: a message or detail that echoes a
 * secret (a hostile API answer quoting the token back) must not carry it there. One scrub over the
 * JSON text catches every string at once, JSON-escaped forms included.
 */
function scrubFindings(findings: Finding[]): Finding[] {
  // Nothing to remove (a TLS-only run-once has no secret): skip serialising every finding.
  if (!hasSecrets()) return findings;
  const text = JSON.stringify(findings);
  const clean = scrub(text);
  if (clean === text) return findings;
  try {
    return Findings.parse(JSON.parse(clean));
  } catch {
    // A replacement that broke the JSON (cannot happen with string-only matches, but never publish it raw).
    return findings.map((f) => ({ resource: scrub(f.resource), outcome: f.outcome, message: scrub(f.message) }));
  }
}
