import { spawn } from 'node:child_process';
import os from 'node:os';
import { ProbeTimeoutError } from '../../src/probe/errors.js';
import { scrub } from '../../src/secrets.js';

/** What one tool invocation produced. Never holds a secret: those travel in the child's environment only. */
export interface ToolResult {
  /** Exit code; null when the child was killed by a signal. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Output was cut at the cap: a verdict must not be drawn from it. */
  truncated: boolean;
}

/** How to run one tool: executable, fixed environment and budget. */
export interface ToolRun {
  command: string;
  /** The child's whole environment besides the base allow-list (see {@link baseEnvironment}). */
  env: Record<string, string>;
  timeoutMs: number;
  signal: AbortSignal;
}

/** Output kept per stream. restic's `snapshots --json` of a large repository is a few MB. */
export const MAX_OUTPUT_BYTES = 32 * 1024 * 1024;

/** Raised when the tool is not installed: permanent, the run records an error naming it. */
export class ToolMissingError extends Error {
  override name = 'ToolMissingError';
}

/**
 * The only variables a tool inherits from vigil: where programs are and where a temporary or home
 * directory is. Everything else (vigil's own secrets, AWS credentials, a RESTIC_PASSWORD left in
 * the service's environment) stays out. Messages are in English (`LC_ALL=C`) because some verdicts
 * are read from text, and times are UTC (borg prints local time without an offset).
 */
export function baseEnvironment(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? os.tmpdir(),
    TMPDIR: os.tmpdir(),
    LC_ALL: 'C',
    LANG: 'C',
    TZ: 'UTC',
  };
}

/**
 * Runs `command args…` without a shell, with the given environment only, bounded by a timeout
 * and the run's signal (the child is killed on either). Resolves with whatever exit code the tool
 * gave: judging it is the caller's job, from the output.
 */
export function runTool(run: ToolRun, args: readonly string[]): Promise<ToolResult> {
  run.signal.throwIfAborted();
  return new Promise<ToolResult>((resolve, reject) => {
    const child = spawn(run.command, [...args], {
      env: { ...baseEnvironment(), ...run.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: false,
      windowsHide: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let truncated = false;
    let failure: Error | undefined;
    const kill = (why: Error) => {
      failure ??= why;
      child.kill('SIGTERM');
      // A tool that ignores SIGTERM (a stuck network read) is not allowed to outlive the run.
      setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
    };
    const timer = setTimeout(
      () => kill(new ProbeTimeoutError(`${run.command} ${args[0] ?? ''} did not finish within ${run.timeoutMs / 1000} s: raise probes.backup-repository.params.commandTimeoutSeconds (and worker.timeoutSeconds)`)),
      run.timeoutMs,
    );
    const onAbort = () => kill(run.signal.reason instanceof Error ? run.signal.reason : new Error('aborted'));
    run.signal.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes <= MAX_OUTPUT_BYTES) out.push(chunk);
      else if (!truncated) {
        truncated = true;
        kill(new Error(`${run.command} wrote more than ${MAX_OUTPUT_BYTES} bytes`));
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      errBytes += chunk.length;
      if (errBytes <= MAX_OUTPUT_BYTES) err.push(chunk);
      else truncated = true;
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      failure ??= e.code === 'ENOENT' ? new ToolMissingError(`${run.command} is not installed or not on PATH: install it, or set backups[].command`) : e;
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      run.signal.removeEventListener('abort', onAbort);
      if (failure && !(truncated && failure.message.includes('wrote more than'))) return reject(failure);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), truncated });
    });
  });
}

/** The first meaningful lines of a tool's output, for a one-line message (bounded, never the whole output). */
export function firstLines(text: string, max = 2): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  // Scrubbed before the cut: a secret echoed across it would survive as a prefix the runner's scrub misses (R8).
  const joined = scrub(lines.slice(0, max).join(' / '));
  return joined.length > 300 ? `${joined.slice(0, 297)}...` : joined;
}
