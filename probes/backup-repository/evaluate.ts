import type { Finding } from '../../src/probe/contract.js';
import type { BackupGroup, RepositoryObservation } from './observation.js';

/**
 * The evidence ladder of issue 11. This probe can reach L3; L4 and L5 need a restore and come
 * from backup-restore-drill.
 */
export const levelMeaning = {
  0: 'no level met',
  1: 'L1 backups succeed on schedule',
  2: 'L2 backups are protected',
  3: 'L3 backup content is intact',
} as const;

const hours = (ms: number) => Math.round((ms / 3_600_000) * 10) / 10;

/** The resource a group's finding is about: the target, or the target and the group's filter. */
export function groupResource(target: string, group: BackupGroup): string {
  return group.label === '' ? target : `${target}/${group.label}`;
}

/**
 * One finding per group. It fails when the newest backup is missing, older than the RPO or
 * recorded as failed, or when an integrity check found damage; it is unknown when the repository
 * could not be read or a check could not tell; it passes otherwise. `details.level` is the
 * highest rung of the ladder met, each rung requiring the ones below.
 */
export function evaluateRepository(o: RepositoryObservation, now: Date): Finding[] {
  const groups = o.groups.length > 0 ? o.groups : [{ label: '', describe: 'the repository', newest: undefined, count: 0 }];
  return groups.map((group) => {
    const resource = groupResource(o.target, group);
    if (o.accessProblem !== undefined) {
      return { resource, outcome: 'unknown', message: o.accessProblem, details: { kind: o.kind, level: 0 } };
    }
    const newest = group.newest;
    const ageMs = newest ? now.getTime() - Date.parse(newest.time) : undefined;
    const fresh = newest !== undefined && newest.error === undefined && ageMs !== undefined && ageMs <= o.rpoHours * 3_600_000;
    const failedChecks = o.checks.filter((c) => c.outcome === 'fail');
    const unknownChecks = o.checks.filter((c) => c.outcome === 'unknown');
    const intact = o.checks.length > 0 && o.checks.some((c) => c.readsContent) && o.checks.every((c) => c.outcome === 'pass');
    const level = !fresh ? 0 : o.protection?.ok !== true ? 1 : intact ? 3 : 2;

    const problems: string[] = [];
    if (!newest) problems.push(`no backup matches ${group.describe}: run the backup job, or fix the filter in backups[] "${o.target}"`);
    else if (newest.error !== undefined) problems.push(`newest backup ${newest.id} (${newest.time}) failed: ${newest.error}`);
    else if (!fresh) {
      problems.push(
        `newest backup ${newest.id} is ${hours(ageMs ?? 0)} h old (RPO ${o.rpoHours} h, taken ${newest.time}): the backup job has not succeeded since; check its schedule and logs`,
      );
    }
    for (const c of failedChecks) problems.push(`${c.name} found damage: ${c.message}`);
    const outcome: Finding['outcome'] = problems.length > 0 ? 'fail' : unknownChecks.length > 0 ? 'unknown' : 'pass';
    const message =
      outcome === 'fail'
        ? problems.join('; ')
        : outcome === 'unknown'
          ? `${unknownChecks.map((c) => `${c.name} could not tell: ${c.message}`).join('; ')}`
          : `newest backup ${newest?.id} is ${hours(ageMs ?? 0)} h old (RPO ${o.rpoHours} h)${o.checks.length > 0 ? `; ${o.checks.map((c) => c.name).join(', ')}: no errors` : ''}; ${levelMeaning[level as 0 | 1 | 2 | 3]}`;
    return {
      resource,
      outcome,
      message,
      details: {
        kind: o.kind,
        level,
        rpoHours: o.rpoHours,
        ...(newest ? { newestBackup: newest.id, newestBackupAt: newest.time, ageHours: hours(ageMs ?? 0) } : {}),
        backups: group.count,
        ...(o.protection ? { protected: o.protection.ok, protection: o.protection.how } : {}),
        checks: o.checks.map((c) => ({ name: c.name, outcome: c.outcome, message: c.message, readsContent: c.readsContent, ...(c.details ?? {}) })),
        ...(o.notes.length > 0 ? { notes: o.notes } : {}),
      },
    };
  });
}
