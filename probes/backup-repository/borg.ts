import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { BorgBackup } from '../../src/config/schema.js';
import { MalformedResponseError, TransientError } from '../../src/probe/errors.js';
import type { BackupGroup, IntegrityCheck, RepositoryObservation } from './observation.js';
import { firstLines, runTool, type ToolResult, type ToolRun } from './run-tool.js';

export type BorgSpec = z.output<typeof BorgBackup> & { baseDir: string };

/** `borg list --json`: the fields vigil reads. */
const BorgList = z.object({
  archives: z.array(z.object({ name: z.string(), id: z.string().optional(), time: z.string(), start: z.string().optional() })),
  encryption: z.object({ mode: z.string() }).optional(),
});

/** One `--log-json` line. */
interface BorgLogLine {
  levelname: string;
  message: string;
  msgid?: string;
}

/** borg's `--log-json` lines on stderr; other lines (a traceback) are kept as plain messages. */
export function borgLog(stderr: string): BorgLogLine[] {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        const j = JSON.parse(l) as Record<string, unknown>;
        if (j.type === 'log_message') {
          return { levelname: String(j.levelname ?? ''), message: String(j.message ?? ''), ...(typeof j.msgid === 'string' ? { msgid: j.msgid } : {}) };
        }
        return { levelname: 'DEBUG', message: '' };
      } catch {
        return { levelname: 'TEXT', message: l.trim() };
      }
    });
}

/** Errors that mean "could not read the repository", by borg's message id. Lock ids are retried. */
function accessProblem(r: ToolResult): string | undefined {
  if (r.code === 0) return undefined;
  const log = borgLog(r.stderr);
  const ids = new Set(log.map((l) => l.msgid).filter(Boolean));
  if (['LockTimeout', 'LockFailed', 'LockError', 'LockErrorT', 'NotLocked'].some((id) => ids.has(id))) {
    throw new TransientError(`borg repository is locked: ${firstLines(log.map((l) => l.message).join('\n'), 1)} — retrying later`);
  }
  if (ids.has('PassphraseWrong')) return 'borg could not open the repository: the passphrase is wrong — check backups[].passphrase';
  if (ids.has('Repository.DoesNotExist') || ids.has('Repository.InvalidRepository')) {
    return 'borg found no repository at the configured location — check backups[].repository and that vigil can reach it';
  }
  if ([...ids].some((id) => id?.startsWith('NoPassphraseFailure') || id === 'PasscommandFailure' || id === 'PassphraseWrong')) {
    return 'borg needs a passphrase for this repository — set backups[].passphrase';
  }
  return undefined;
}

/** A local repository path (not ssh://, not scp-style host:path): its lock files can be read directly. */
function localRepository(repository: string): string | undefined {
  if (repository.startsWith('file://')) return repository.slice('file://'.length);
  if (repository.includes('://') || /^[^/]*:/.test(repository)) return undefined;
  return repository;
}

const LockRoster = z.object({ exclusive: z.array(z.array(z.unknown())).default([]) });

/** borg times carry no offset before 2.0; the child runs with TZ=UTC, so an offset-less time is UTC. */
function borgTime(text: string): string | undefined {
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

/**
 * Reads `borg check --log-json --info` output: damage is an ERROR or CRITICAL line; pass needs
 * exit 0 or 1 (warnings only), no error line, and borg's own "no problems found".
 */
export function judgeBorgCheck(r: ToolResult): { outcome: IntegrityCheck['outcome']; message: string; warnings: string[] } {
  const log = borgLog(r.stderr);
  const errors = log.filter((l) => l.levelname === 'ERROR' || l.levelname === 'CRITICAL').map((l) => l.message);
  const warnings = log.filter((l) => l.levelname === 'WARNING').map((l) => l.message);
  if (errors.length > 0) {
    return { outcome: 'fail', message: `${firstLines(errors.join('\n'))}: find the cause (disk, transfer), then borg check --repair or restore from another copy`, warnings };
  }
  if ((r.code === 0 || r.code === 1) && log.some((l) => /no problems found/i.test(l.message))) {
    return { outcome: 'pass', message: 'no problems found', warnings };
  }
  return { outcome: 'unknown', message: `borg check ended with exit code ${r.code} without a verdict: ${firstLines(log.map((l) => l.message).join('\n')) || '(no output)'}`, warnings };
}

/** Reads a borg repository with `--bypass-lock`: newest archive per glob, then `borg check`. */
export async function collectBorg(spec: BorgSpec, run: ToolRun, now: Date, target: string): Promise<RepositoryObservation> {
  const base: RepositoryObservation = { target, kind: 'borg', rpoHours: spec.rpoHours, groups: [], checks: [], notes: [] };

  // borg create holds an exclusive lock while it writes segments; vigil reads past locks, so it
  // looks first and comes back later rather than judge a half-written repository.
  const local = localRepository(spec.repository);
  if (local !== undefined) {
    let roster: z.infer<typeof LockRoster> | undefined;
    try {
      roster = LockRoster.parse(JSON.parse(await readFile(path.join(local, 'lock.roster'), 'utf8')));
    } catch {
      roster = undefined; // no lock held (or an unreadable roster: borg itself will say)
    }
    if (roster && roster.exclusive.length > 0) {
      throw new TransientError(`borg repository is locked exclusively (${JSON.stringify(roster.exclusive[0])}): a backup, prune or compact is running (a lock left by a crashed borg is removed with borg break-lock) — retrying later`);
    }
  } else {
    base.notes.push('remote repository: vigil cannot see its lock without taking one, so schedule this probe outside the backup window');
  }

  const globs = spec.archives.length > 0 ? spec.archives : [undefined];
  for (const glob of globs) {
    const r = await runTool(run, ['list', '--json', '--last', '1', '--bypass-lock', '--log-json', ...(glob !== undefined ? [`--glob-archives=${glob}`] : [])]);
    const denied = accessProblem(r);
    if (denied) return { ...base, groups: [], accessProblem: denied };
    if (r.code !== 0 || r.truncated) return { ...base, groups: [], accessProblem: `borg list failed (exit ${r.code}): ${firstLines(borgLog(r.stderr).map((l) => l.message).join('\n'))}` };
    let list: z.infer<typeof BorgList>;
    try {
      list = BorgList.parse(JSON.parse(r.stdout));
    } catch (err) {
      throw new MalformedResponseError('borg list --json printed something that is not an archive list', { cause: err });
    }
    const newest = list.archives.at(-1);
    const time = newest ? borgTime(newest.time) : undefined;
    if (newest && !time) throw new MalformedResponseError(`borg list --json gave archive ${newest.name.slice(0, 80)} a time vigil cannot read`);
    const group: BackupGroup = {
      label: glob ?? '',
      describe: glob !== undefined ? `the archive glob ${glob}` : 'the repository (it has no archive)',
      newest: newest && time ? { id: newest.name, time } : undefined,
      count: list.archives.length,
    };
    base.groups.push(group);
    if (list.encryption) {
      base.protection = { ok: list.encryption.mode !== 'none', how: list.encryption.mode === 'none' ? 'not encrypted (borg init -e none)' : `encrypted (${list.encryption.mode})` };
    }
  }

  if (spec.check) {
    const day = Math.floor(now.getTime() / 86_400_000);
    const verifyData = spec.verifyDataEveryDays > 0 && day % spec.verifyDataEveryDays === 0;
    const r = await runTool(run, ['check', '--bypass-lock', '--info', '--log-json', ...(verifyData ? ['--verify-data'] : [])]);
    const denied = accessProblem(r);
    if (denied) return { ...base, accessProblem: denied };
    const verdict = judgeBorgCheck(r);
    base.checks.push({
      name: verifyData ? 'borg check --verify-data' : 'borg check',
      outcome: verdict.outcome,
      message: verdict.message,
      // The repository check reads every segment and compares its CRC32; --verify-data also decrypts and hashes every chunk.
      readsContent: true,
      details: { verifyData, ...(spec.verifyDataEveryDays > 0 ? { verifyDataEveryDays: spec.verifyDataEveryDays } : {}), ...(verdict.warnings.length ? { warnings: verdict.warnings.slice(0, 5) } : {}) },
    });
  }
  return base;
}
