import { randomUUID } from 'node:crypto';
import { closeSync, fstatSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ConfigError } from '../../src/config/errors.js';
import type { IacWorkspace } from '../../src/config/schema.js';
import { parseYamlText } from '../../src/config/yaml.js';
import { TransientError } from '../../src/probe/errors.js';
import { readSecret, registerSecret } from '../../src/secrets.js';
import type { Confirmation, CoverageObservation, RunEvidence, SourcedRule, WorkspaceObservation } from './evaluate.js';
import { classifyStderr, resolveBinary, runTool, type ToolRun } from './exec.js';
import { IGNORE_FILE_NAME, IgnoreFile, ignoreRuleProblems } from './ignore-rules.js';
import { MAX_PLAN_BYTES, parsePlanJson } from './plan-json.js';

/** The target spec: one `iac:` entry, and every workspace dir declared (for discover). */
export interface IacSpec {
  entry: IacWorkspace;
  declaredDirs: string[];
  /** Redis key marking a run of this workspace in flight across replicas (under vigil's prefix). */
  inflightKey: string;
  /**
   * The tool's time budget: `timeoutMinutes`, but never past the runner's own collect timeout
   * (`worker.timeoutSeconds`, less a margin to stop the tool and delete the plan file first).
   */
  timeoutMs: number;
}

/** The state changed while the check ran: the comparison is meaningless, retried later. */
export class StateChangedError extends TransientError {
  override name = 'StateChangedError';
}

/** Another run of the same workspace is still going. */
export class WorkspaceBusyError extends TransientError {
  override name = 'WorkspaceBusyError';
}

/** Deletes the in-flight key only if this run still holds it. */
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

/** Workspaces with a run in flight in this process, by target name. */
const inFlight = new Set<string>();

const MAX_IGNORE_FILE_BYTES = 256 * 1024;
/** `state pull` prints the whole state; only its serial is read. */
const MAX_STATE_BYTES = MAX_PLAN_BYTES;

/** Reads at most `max` bytes of a file; undefined when it is larger. */
function readBounded(file: string, max: number): string | undefined {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > max) return undefined;
    const buf = Buffer.alloc(size);
    let n = 0;
    while (n < size) {
      const r = readSync(fd, buf, n, size - n, null);
      if (r === 0) break;
      n += r;
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** The commit checked out at `dir` (walking up to the repository root), read from .git without running git. */
export function gitCommit(dir: string): string | undefined {
  try {
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      const dotGit = path.join(d, '.git');
      let gitDir: string | undefined;
      try {
        const st = statSync(dotGit);
        if (st.isDirectory()) gitDir = dotGit;
        else if (st.isFile()) {
          const m = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, 'utf8'));
          if (m) gitDir = path.resolve(d, (m[1] as string).trim());
        }
      } catch {
        // No .git here.
      }
      if (gitDir) {
        const head = readFileSync(path.join(gitDir, 'HEAD'), 'utf8').trim();
        if (/^[0-9a-f]{40,64}$/.test(head)) return head;
        const ref = /^ref:\s*(refs\/\S+)$/.exec(head)?.[1];
        if (!ref) return undefined;
        let common = gitDir;
        try {
          common = path.resolve(gitDir, readFileSync(path.join(gitDir, 'commondir'), 'utf8').trim());
        } catch {
          // Not a linked worktree.
        }
        for (const base of [gitDir, common]) {
          try {
            const v = readFileSync(path.join(base, ref), 'utf8').trim();
            if (/^[0-9a-f]{40,64}$/.test(v)) return v;
          } catch {
            // Packed, perhaps.
          }
        }
        try {
          const packed = readFileSync(path.join(common, 'packed-refs'), 'utf8');
          for (const line of packed.split('\n')) {
            const [sha, name] = line.split(' ');
            if (name === ref && sha && /^[0-9a-f]{40,64}$/.test(sha)) return sha;
          }
        } catch {
          // No packed refs.
        }
        return undefined;
      }
      if (path.dirname(d) === d) return undefined;
    }
  } catch {
    return undefined;
  }
}

/** The config's rules plus those of `vigil.drift-ignore.yaml` beside the code; a broken file is a problem, never ignored. */
export function loadRules(entry: IacWorkspace, now: Date): { rules: SourcedRule[]; problem?: string } {
  const rules: SourcedRule[] = entry.ignore.map((rule) => ({ rule, source: 'config' }));
  if (!entry.dir) return { rules };
  const file = path.join(entry.dir, IGNORE_FILE_NAME);
  let text: string | undefined;
  try {
    text = readBounded(file, MAX_IGNORE_FILE_BYTES);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { rules };
    return { rules, problem: `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  if (text === undefined) return { rules, problem: `${file} is larger than ${MAX_IGNORE_FILE_BYTES / 1024} KiB` };
  let raw: unknown;
  try {
    raw = parseYamlText(file, text, 'config file', MAX_IGNORE_FILE_BYTES);
  } catch (err) {
    if (err instanceof ConfigError) return { rules, problem: err.problems.join('; ') };
    throw err;
  }
  const parsed = IgnoreFile.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.map(String).join('.') || '(top level)'}: ${i.message}`);
    return { rules, problem: `${file}: ${issues.join('; ')}` };
  }
  const problems = ignoreRuleProblems(parsed.data.ignore, now, 'ignore');
  if (problems.length > 0) return { rules, problem: `${file}: ${problems.join('; ')}` };
  return { rules: [...rules, ...parsed.data.ignore.map((rule) => ({ rule, source: 'vigil.drift-ignore.yaml' as const }))] };
}

/** Expands a path whose segments may hold `*` and `?` (no `**`); returns existing regular files. */
export function expandGlob(pattern: string): string[] {
  const abs = path.resolve(pattern);
  const parts = abs.split(path.sep).filter(Boolean);
  let current: string[] = [path.sep];
  for (const [i, part] of parts.entries()) {
    const last = i === parts.length - 1;
    const next: string[] = [];
    for (const base of current) {
      if (!/[*?]/.test(part)) {
        next.push(path.join(base, part));
        continue;
      }
      const re = new RegExp(`^${part.replace(/[\\^$.|+()[\]{}]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
      let names: string[] = [];
      try {
        names = readdirSync(base);
      } catch {
        // Not a directory.
      }
      for (const n of names) if (re.test(n) && !n.startsWith('.')) next.push(path.join(base, n));
      if (next.length > 10_000) break;
    }
    current = last ? next : next.filter((p) => isDir(p));
  }
  return current.filter((p) => {
    try {
      return statSync(p).isFile();
    } catch {
      return false;
    }
  });
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The environment the tool gets: only what `env` lists, plus TF_IN_AUTOMATION and a fresh TF_DATA_DIR. */
export function toolEnv(entry: IacWorkspace, dataDir: string, source: NodeJS.ProcessEnv = process.env): { env: Record<string, string>; missing: string[] } {
  const env: Record<string, string> = {};
  const missing: string[] = [];
  for (const e of entry.env) {
    if (typeof e === 'string') {
      const v = source[e];
      if (v === undefined) missing.push(e);
      else {
        // Passed through by name, it may well be a credential (AWS_SECRET_ACCESS_KEY): scrubbed wherever it could surface.
        registerSecret(v);
        env[e] = v;
      }
    } else {
      const v = readSecret(e.from, source);
      if (v === undefined) missing.push(e.name);
      else env[e.name] = v;
    }
  }
  env.TF_IN_AUTOMATION = '1';
  env.TF_DATA_DIR = dataDir;
  return { env, missing };
}

/** Why a command failed, in words safe to publish; throws for what is worth a retry. */
function commandFailure(step: string, run: ToolRun, timeoutMinutes: number): string {
  if (run.timedOut) return `${step} timed out after ${timeoutMinutes} minutes: the tool was stopped and the plan file deleted`;
  if (run.spawnError) return `${step} could not start the tool (${run.spawnError})`;
  if (run.tooLarge) return `${step} printed more than ${MAX_PLAN_BYTES / 1024 / 1024} MB`;
  const cls = classifyStderr(run.stderrTail);
  if (cls === 'throttled') throw new TransientError(`${step}: the provider API throttled the requests; retried later`);
  if (cls === 'access-denied') return `${step} exited ${run.exitCode}: access denied — the credentials may not read some resource (see the read-only role in probes/iac-drift/README.md)`;
  if (cls === 'lock') return `${step} exited ${run.exitCode} on a state lock, which vigil never takes nor waits on: check the backend`;
  return `${step} exited ${run.exitCode ?? 'on a signal'}: run it by hand in the workspace to see the error`;
}

/** The `serial` of `state pull`'s output; undefined when it has none (no state yet). */
function stateSerial(stdout: string): number | undefined {
  try {
    const serial = (JSON.parse(stdout) as { serial?: unknown }).serial;
    return typeof serial === 'number' && Number.isInteger(serial) ? serial : undefined;
  } catch {
    return undefined;
  }
}

export interface CollectArgs {
  entry: IacWorkspace;
  /** See {@link IacSpec.timeoutMs}; default `timeoutMinutes`. */
  timeoutMs?: number;
  /** vigil's Redis and the key that marks a run in flight across replicas; in-process only without it. */
  redis?: Redis | undefined;
  inflightKey?: string;
  signal: AbortSignal;
  log: Logger;
  now: Date;
  previous: Confirmation | undefined;
  /** Where private temp dirs go (tests); default the OS temp dir. */
  tmpRoot?: string;
  env?: NodeJS.ProcessEnv;
}

/** Reads CI's plan document (planFile mode): the newest match of the glob. */
function fromPlanFile(a: CollectArgs, obs: WorkspaceObservation): WorkspaceObservation {
  const pattern = a.entry.planFile as string;
  const files = expandGlob(pattern)
    .map((f) => ({ f, mtime: statSync(f).mtimeMs }))
    .sort((x, y) => y.mtime - x.mtime);
  const newest = files[0];
  if (!newest) return { ...obs, failure: `no plan file matches ${pattern}: has CI written it (tofu show -json plan > file)?` };
  obs.evidence.planFile = { path: newest.f, modifiedAt: new Date(newest.mtime).toISOString() };
  const text = readBounded(newest.f, MAX_PLAN_BYTES);
  if (text === undefined) return { ...obs, failure: `the plan file ${newest.f} is larger than ${MAX_PLAN_BYTES / 1024 / 1024} MB` };
  const parsed = parsePlanJson(text);
  if (!parsed.ok) return { ...obs, failure: `${newest.f}: ${parsed.reason}` };
  return { ...obs, plan: parsed.plan };
}

/**
 * One workspace: init, state serial, plan, show, state serial again — see README.md for the exact
 * commands. The plan file and TF_DATA_DIR live in a private temp dir removed whatever happens.
 */
export async function collectWorkspace(a: CollectArgs, target: string): Promise<WorkspaceObservation> {
  const entry = a.entry;
  const mode = entry.planFile ? 'planFile' : entry.mode;
  const evidence: RunEvidence = { tool: path.basename(entry.binary), mode };
  const { rules, problem } = loadRules(entry, a.now);
  const obs: WorkspaceObservation = { kind: 'workspace', workspace: target, evidence, rules, ...(problem ? { rulesProblem: problem } : {}), ...(a.previous ? { previous: a.previous } : {}) };
  if (entry.dir) {
    const commit = gitCommit(entry.dir);
    if (commit) evidence.commit = commit;
  }
  if (entry.planFile) return fromPlanFile(a, obs);

  const dir = entry.dir as string;
  if (!isDir(dir)) return { ...obs, failure: `the workspace directory ${dir} does not exist` };
  const file = resolveBinary(entry.binary, (a.env ?? process.env).PATH);
  if (!file) return { ...obs, failure: `the ${entry.binary} executable was not found${entry.binary.includes('/') ? '' : ' on PATH'}: install it, or set binary to its path` };
  const budgetMs = a.timeoutMs ?? entry.timeoutMinutes * 60_000;
  const busy = () => new WorkspaceBusyError(`a run of workspace ${target} is still in flight: retried later`);
  if (inFlight.has(target)) throw busy();
  const token = `${process.pid}:${randomUUID()}`;
  // Across replicas: a key of vigil's own (not a state lock), expiring on its own if this replica dies.
  if (a.redis && a.inflightKey && (await a.redis.set(a.inflightKey, token, 'PX', budgetMs + 60_000, 'NX')) !== 'OK') throw busy();
  inFlight.add(target);
  const started = Date.now();
  const deadline = started + budgetMs;
  const timeoutText = Math.round((budgetMs / 60_000) * 100) / 100;
  let tmp: string | undefined;
  try {
    tmp = mkdtempSync(path.join(a.tmpRoot ?? tmpdir(), 'vigil-iac-'));
    const planPath = path.join(tmp, 'plan.tfplan');
    const { env, missing } = toolEnv(entry, path.join(tmp, 'tf-data'), a.env);
    if (missing.length > 0) return { ...obs, failure: `environment variable(s) ${missing.join(', ')} listed in env are not set` };
    // init and plan print progress nobody reads (the verdict comes from show -json): discarded, however long.
    const run = (args: string[], maxStdoutBytes = 0) =>
      runTool({ file, args, cwd: dir, env, deadline, signal: a.signal, maxStdoutBytes });
    const aborted = () => {
      if (a.signal.aborted) throw a.signal.reason instanceof Error ? a.signal.reason : new Error('aborted');
    };
    const done = (extra: Partial<WorkspaceObservation>): WorkspaceObservation => {
      evidence.durationMs = Date.now() - started;
      return { ...obs, ...extra };
    };

    const init = await run(['init', '-input=false', '-lockfile=readonly']);
    aborted();
    if (init.exitCode !== 0) return done({ failure: commandFailure('init', init, timeoutText) });

    const before = await run(['state', 'pull'], MAX_STATE_BYTES);
    aborted();
    if (before.exitCode !== 0) return done({ failure: commandFailure('state pull', before, timeoutText) });
    const serialBefore = stateSerial(before.stdout);
    if (serialBefore !== undefined) evidence.stateSerialBefore = serialBefore;

    const planArgs = ['plan', '-input=false', '-no-color', '-detailed-exitcode', '-lock=false'];
    if (entry.mode === 'refresh-only') planArgs.push('-refresh-only');
    for (const v of entry.varFiles) planArgs.push(`-var-file=${v}`);
    planArgs.push(`-out=${planPath}`);
    const plan = await run(planArgs);
    aborted();
    evidence.exitCode = plan.exitCode;
    if (plan.exitCode !== 0 && plan.exitCode !== 2) return done({ failure: commandFailure('plan', plan, timeoutText) });

    const show = await run(['show', '-json', planPath], MAX_PLAN_BYTES);
    aborted();
    if (show.exitCode !== 0) return done({ failure: commandFailure('show', show, timeoutText) });
    const parsed = parsePlanJson(show.stdout);

    const after = await run(['state', 'pull'], MAX_STATE_BYTES);
    aborted();
    if (after.exitCode !== 0) return done({ failure: commandFailure('state pull', after, timeoutText) });
    const serialAfter = stateSerial(after.stdout);
    if (serialAfter !== undefined) evidence.stateSerialAfter = serialAfter;
    if (serialBefore !== serialAfter) {
      throw new StateChangedError(`state changed during the check (serial ${serialBefore ?? 'none'} → ${serialAfter ?? 'none'}): an apply ran meanwhile; retried later`);
    }
    if (!parsed.ok) return done({ failure: parsed.reason });
    return done({ plan: parsed.plan });
  } finally {
    inFlight.delete(target);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    a.log.debug({ target }, 'iac workspace temp dir removed');
    if (a.redis && a.inflightKey) await a.redis.eval(RELEASE, 1, a.inflightKey, token).catch(() => undefined);
  }
}

const SKIP_DIRS = new Set(['.terraform', '.git', 'node_modules', '.terragrunt-cache']);
const BACKEND_BLOCK = /^\s*(backend\s+"[^"]*"|cloud)\s*\{/m;

/** A discover root: directories under it with a backend/cloud block, and which of them no workspace declares. */
export function collectCoverage(root: string, declaredDirs: readonly string[]): CoverageObservation {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  if (!isDir(root)) return { kind: 'coverage', root, found: [], undeclared: [], failure: 'the directory does not exist' };
  const declared = new Set(declaredDirs.map(real));
  const found: string[] = [];
  let visited = 0;
  const walk = (dir: string, depth: number) => {
    if (depth > 12 || visited++ > 20_000) return;
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    let hasBackend = false;
    for (const e of entries) {
      if (e.isFile() && e.name.endsWith('.tf') && !hasBackend) {
        const text = (() => {
          try {
            return readBounded(path.join(dir, e.name), 1024 * 1024);
          } catch {
            return undefined;
          }
        })();
        if (text && BACKEND_BLOCK.test(text)) hasBackend = true;
      }
    }
    if (hasBackend) found.push(dir);
    for (const e of entries) if (e.isDirectory() && !SKIP_DIRS.has(e.name) && !e.name.startsWith('.')) walk(path.join(dir, e.name), depth + 1);
  };
  walk(root, 0);
  const rel = (d: string) => path.relative(root, d) || '.';
  return {
    kind: 'coverage',
    root,
    found: found.map(rel).sort(),
    undeclared: found.filter((d) => !declared.has(real(d))).map(rel).sort(),
  };
}
