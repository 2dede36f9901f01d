import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

/**
 * Running the OpenTofu/Terraform executable: no shell, an explicit environment (nothing
 * inherited), its own process group so a timeout stops the tool and the providers it started,
 * and bounded output buffers.
 */

/** What one command did. `stdout` is kept whole (bounded); `stderr` only its tail, for classification. */
export interface ToolRun {
  exitCode: number | null;
  stdout: string;
  /** Last {@link STDERR_TAIL_BYTES} of stderr: read to classify, never published. */
  stderrTail: string;
  timedOut: boolean;
  /** stdout passed `maxStdoutBytes` (the tool was stopped). */
  tooLarge: boolean;
  /** The spawn itself failed (ENOENT, EACCES). */
  spawnError?: string;
}

export const STDERR_TAIL_BYTES = 64 * 1024;

/** Time between SIGTERM to the process group and SIGKILL. */
const KILL_GRACE_MS = 5_000;

export interface ToolRequest {
  file: string;
  args: readonly string[];
  cwd: string;
  env: Record<string, string>;
  /** Absolute deadline (ms since epoch). */
  deadline: number;
  signal: AbortSignal;
  /** stdout kept, in bytes; more stops the tool. 0: stdout is read and discarded (init, plan). */
  maxStdoutBytes: number;
}

/** True for a regular file this process may execute. */
function isExecutable(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The executable for `binary`: a path is used as is, a bare name is looked up on vigil's own PATH
 * (the tool itself gets no PATH unless `env` lists it). Undefined when there is none.
 */
export function resolveBinary(binary: string, searchPath: string | undefined): string | undefined {
  if (binary.includes('/')) return isExecutable(binary) ? binary : undefined;
  for (const dir of (searchPath ?? '').split(path.delimiter)) {
    if (!dir || !path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, binary);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Runs one command to its end, its deadline, or the caller's abort. Never throws. */
export function runTool(req: ToolRequest): Promise<ToolRun> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    let outBytes = 0;
    let errTail = Buffer.alloc(0);
    let timedOut = false;
    let tooLarge = false;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const child = spawn(req.file, req.args, {
      cwd: req.cwd,
      env: req.env,
      shell: false,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stopped = false;
    const stop = () => {
      stopped = true;
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // The group is gone already.
      }
      killTimer ??= setTimeout(() => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Gone.
        }
      }, KILL_GRACE_MS);
    };
    const remaining = Math.max(0, req.deadline - Date.now());
    const deadlineTimer = setTimeout(() => {
      timedOut = true;
      stop();
    }, remaining);
    const onAbort = () => stop();
    if (req.signal.aborted) stop();
    req.signal.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (chunk: Buffer) => {
      if (tooLarge || req.maxStdoutBytes === 0) return;
      outBytes += chunk.length;
      if (outBytes > req.maxStdoutBytes) {
        tooLarge = true;
        out.length = 0;
        stop();
        return;
      }
      out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      errTail = Buffer.concat([errTail, chunk]);
      if (errTail.length > STDERR_TAIL_BYTES) errTail = errTail.subarray(errTail.length - STDERR_TAIL_BYTES);
    });
    const finish = (exitCode: number | null, spawnError?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadlineTimer);
      req.signal.removeEventListener('abort', onAbort);
      // Stopped by us: make sure nothing it started (providers) outlives it. Its group cannot have
      // been reused while a member lives; with none left, kill fails harmlessly.
      if (stopped && child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // No such group: nothing left.
        }
      }
      clearTimeout(killTimer);
      resolve({
        exitCode,
        stdout: Buffer.concat(out).toString('utf8'),
        stderrTail: errTail.toString('utf8'),
        timedOut,
        tooLarge,
        ...(spawnError ? { spawnError } : {}),
      });
    };
    child.on('error', (err: NodeJS.ErrnoException) => finish(null, err.code ?? 'spawn failed'));
    child.on('close', (code) => finish(code));
  });
}

/** What stderr says about why a command failed, in words safe to publish (stderr itself never is). */
export type StderrClass = 'access-denied' | 'throttled' | 'lock' | 'other';

const ACCESS_DENIED =
  /AccessDenied|UnauthorizedOperation|not authorized to perform|AuthorizationError|InvalidClientTokenId|ExpiredToken|SignatureDoesNotMatch|No valid credential sources found|NoCredentialProviders|403 Forbidden|StatusCode: 403/;
const THROTTLED = /Throttling|ThrottlingException|Rate exceeded|TooManyRequests|RequestLimitExceeded|SlowDown|StatusCode: 429/;
const LOCK = /Error acquiring the state lock|state lock/i;

/** Classifies a failed command's stderr. */
export function classifyStderr(stderr: string): StderrClass {
  if (ACCESS_DENIED.test(stderr)) return 'access-denied';
  if (THROTTLED.test(stderr)) return 'throttled';
  if (LOCK.test(stderr)) return 'lock';
  return 'other';
}
