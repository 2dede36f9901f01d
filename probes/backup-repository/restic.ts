import { z } from 'zod';
import type { ResticBackup } from '../../src/config/schema.js';
import { MalformedResponseError, TransientError } from '../../src/probe/errors.js';
import type { BackupGroup, IntegrityCheck, RepositoryObservation } from './observation.js';
import { firstLines, runTool, type ToolResult, type ToolRun } from './run-tool.js';

export type ResticSpec = z.output<typeof ResticBackup>;

/** `restic snapshots --json`: the fields vigil reads. */
const ResticSnapshots = z.array(
  z.object({
    id: z.string().min(1),
    short_id: z.string().optional(),
    time: z.string().min(1),
    hostname: z.string().default(''),
    paths: z.array(z.string()).default([]),
    tags: z.array(z.string()).nullish(),
  }),
);
type ResticSnapshot = z.infer<typeof ResticSnapshots>[number];

/** `restic cat lock <id>`. */
const ResticLock = z.object({ time: z.string(), exclusive: z.boolean().default(false), hostname: z.string().default('?'), pid: z.number().optional() });

/** Locks looked at per run: a repository with more is itself a finding for its owner, not a reason to run for minutes. */
const MAX_LOCKS_READ = 20;

/** Global flags of every call: read-only (no lock files written), no local cache written. */
const READ_ONLY = ['--no-lock', '--no-cache'] as const;

/**
 * restic ≥ 0.17 exits 10 (no repository), 11 (locked), 12 (wrong password); older releases exit 1
 * for all three, so the message is read as well.
 */
function accessProblem(r: ToolResult): string | undefined {
  if (r.code === 0) return undefined;
  if (r.code === 11 || /repository is already locked/i.test(r.stderr)) {
    throw new TransientError(`restic repository is locked: ${firstLines(r.stderr, 1)} — retrying later`);
  }
  if (r.code === 12 || /wrong password or no key found/i.test(r.stderr)) {
    return 'restic could not open the repository: wrong password or no key found — check backups[].password';
  }
  if (r.code === 10 || /Is there a repository at the following location|unable to open config file/i.test(r.stderr)) {
    return 'restic found no repository at the configured location — check backups[].repository and that vigil can reach it';
  }
  return undefined;
}

function matches(s: ResticSnapshot, g: ResticSpec['snapshots'][number]): boolean {
  if (g.host !== undefined && s.hostname !== g.host) return false;
  if (!g.paths.every((p) => s.paths.includes(p))) return false;
  const tags = s.tags ?? [];
  return g.tags.every((t) => tags.includes(t));
}

function groupLabel(g: ResticSpec['snapshots'][number]): string {
  return [g.host !== undefined ? `host=${g.host}` : '', g.paths.length ? `paths=${g.paths.join(':')}` : '', g.tags.length ? `tags=${g.tags.join(':')}` : '']
    .filter(Boolean)
    .join(',');
}

/** Groups the snapshots by the configured filters and picks each group's newest. */
export function resticGroups(snapshots: readonly ResticSnapshot[], filters: ResticSpec['snapshots']): BackupGroup[] {
  const wanted = filters.length > 0 ? filters : [{ paths: [], tags: [] }];
  return wanted.map((g) => {
    const hits = snapshots.filter((s) => matches(s, g) && Number.isFinite(Date.parse(s.time)));
    const newest = hits.reduce<ResticSnapshot | undefined>((a, s) => (a === undefined || Date.parse(s.time) > Date.parse(a.time) ? s : a), undefined);
    const label = filters.length > 0 ? groupLabel(g) || 'all' : '';
    return {
      label,
      describe: label === '' ? 'the repository (it has no snapshot)' : label,
      newest: newest ? { id: newest.short_id ?? newest.id.slice(0, 8), time: new Date(Date.parse(newest.time)).toISOString() } : undefined,
      count: hits.length,
    };
  });
}

/** The data subset of today's run: k = (day mod N) + 1, so N consecutive daily runs read every pack. */
export function readDataSubset(now: Date, subsets: number): string {
  const day = Math.floor(now.getTime() / 86_400_000);
  return `${(day % subsets) + 1}/${subsets}`;
}

/**
 * Reads `restic check` output. restic ≥ 0.17 prints a JSON `summary` line with `num_errors` on
 * stdout and JSON `error` lines on stderr with `--json`; older releases print text and ignore
 * `--json`. Pass needs exit 0 *and* the tool saying so; damage needs the tool saying so; anything
 * else is unknown.
 */
export function judgeResticCheck(r: ToolResult): { outcome: IntegrityCheck['outcome']; message: string } {
  const parse = (l: string): Record<string, unknown> | undefined => {
    if (!l.startsWith('{')) return undefined;
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };
  const summary = r.stdout.split('\n').map(parse).find((l) => l?.message_type === 'summary');
  // Errors go to stderr: JSON lines ({"message_type":"error","message":…}) from 0.17 on, text before.
  const errorLines = r.stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^Fatal: repository contains errors/.test(l) && !/^using temporary cache/.test(l))
    .map((l) => {
      const j = parse(l);
      return j ? String(j.message ?? '') : l;
    })
    .filter((l) => l !== '' && !/repository contains errors/.test(l));
  if (r.truncated) return { outcome: 'unknown', message: 'restic check wrote more output than vigil reads' };
  if (summary && typeof summary.num_errors === 'number') {
    if (summary.num_errors === 0 && r.code === 0) return { outcome: 'pass', message: 'no errors were found' };
    if (summary.num_errors > 0) return { outcome: 'fail', message: `${summary.num_errors} error(s): ${firstLines(errorLines.join('\n'))}` };
  }
  if (r.code === 0 && /^no errors were found$/m.test(r.stdout)) return { outcome: 'pass', message: 'no errors were found' };
  if (/repository contains errors/i.test(r.stderr) || /repository contains errors/i.test(r.stdout)) {
    return { outcome: 'fail', message: `${firstLines(errorLines.join('\n')) || 'repository contains errors'}: run restic check --read-data, then restic repair (or restore from another copy)` };
  }
  return { outcome: 'unknown', message: `restic check ended with exit code ${r.code} without a verdict: ${firstLines(r.stderr) || '(no output)'}` };
}

/** Reads a restic repository without locking it: locks held by others, snapshots, and the configured checks. */
export async function collectRestic(spec: ResticSpec, run: ToolRun, now: Date, target: string): Promise<RepositoryObservation> {
  const base: RepositoryObservation = { target, kind: 'restic', rpoHours: spec.rpoHours, groups: [], checks: [], notes: [] };

  const snaps = await runTool(run, ['snapshots', '--json', ...READ_ONLY]);
  const deniedSnaps = accessProblem(snaps);
  if (deniedSnaps) return { ...base, accessProblem: deniedSnaps };
  if (snaps.code !== 0 || snaps.truncated) return { ...base, accessProblem: `restic snapshots failed (exit ${snaps.code}): ${firstLines(snaps.stderr)}` };
  let parsed: ResticSnapshot[];
  try {
    parsed = ResticSnapshots.parse(JSON.parse(snaps.stdout));
  } catch (err) {
    throw new MalformedResponseError('restic snapshots --json printed something that is not a snapshot list', { cause: err });
  }
  base.groups = resticGroups(parsed, spec.snapshots);
  // restic encrypts every repository with the key unlocked by the password.
  base.protection = { ok: true, how: 'encrypted (restic encrypts every repository)' };

  if (spec.check || spec.readDataSubsets > 0) {
    // A prune or forget holds an exclusive lock while it deletes packs: a check read then would report damage that is not there.
    const locks = await runTool(run, ['list', 'locks', ...READ_ONLY]);
    const denied = accessProblem(locks);
    if (denied) return { ...base, accessProblem: denied };
    if (locks.code !== 0) return { ...base, accessProblem: `restic list locks failed (exit ${locks.code}): ${firstLines(locks.stderr)}` };
    const ids = locks.stdout.split('\n').map((l) => l.trim()).filter((l) => /^[0-9a-f]{64}$/.test(l));
    for (const id of ids.slice(0, MAX_LOCKS_READ)) {
      const cat = await runTool(run, ['cat', 'lock', id, ...READ_ONLY]);
      if (cat.code !== 0) continue; // released between list and cat
      let lock: z.infer<typeof ResticLock>;
      try {
        lock = ResticLock.parse(JSON.parse(cat.stdout));
      } catch {
        continue;
      }
      if (lock.exclusive) {
        throw new TransientError(
          `restic repository is locked exclusively by ${lock.hostname} pid ${lock.pid ?? '?'} since ${lock.time} (prune, forget or check running; a lock left by a crashed run is removed with restic unlock): retrying later`,
        );
      }
      base.notes.push(`a restic process on ${lock.hostname} held a shared lock (since ${lock.time}) while vigil read`);
    }

    const subset = spec.readDataSubsets > 0 ? readDataSubset(now, spec.readDataSubsets) : undefined;
    const args = ['check', '--json', ...READ_ONLY, ...(subset ? [`--read-data-subset=${subset}`] : [])];
    const check = await runTool(run, args);
    const deniedCheck = accessProblem(check);
    if (deniedCheck) return { ...base, accessProblem: deniedCheck };
    const verdict = judgeResticCheck(check);
    base.checks.push({
      name: subset ? `restic check --read-data-subset=${subset}` : 'restic check',
      ...verdict,
      readsContent: subset !== undefined,
      ...(subset
        ? { details: { readDataSubset: subset, readDataShare: 1 / spec.readDataSubsets, fullReadEveryDays: spec.readDataSubsets } }
        : {}),
    });
  }
  return base;
}
