/** What collect saw of one backup repository (restic, borg, pgBackRest) or dump directory: data only, no verdicts. */

export type BackupKind = 'restic' | 'borg' | 'pgbackrest' | 'dumps';

/** One integrity check vigil ran, as the tool's own output reported it. */
export interface IntegrityCheck {
  /** The command as shown to people, e.g. `restic check --read-data-subset=3/7`. */
  name: string;
  outcome: 'pass' | 'fail' | 'unknown';
  /** One line from the tool's output: what it found, or why it could not tell. */
  message: string;
  /** True when the check read the backed-up content itself (checksums of the data), not only the structure. */
  readsContent: boolean;
  details?: Record<string, unknown>;
}

/** The newest backup of a group: a restic snapshot, a borg archive, a pgBackRest backup, a dump file. */
export interface BackupPoint {
  /** Snapshot id, archive name, backup label or file name. */
  id: string;
  /** When it was taken (ISO 8601, UTC). */
  time: string;
  /** Set when the tool records the backup as failed or the file cannot be a backup (e.g. empty). */
  error?: string;
}

/** One set of backups that must each be fresh (a restic host/paths/tags filter, a borg archive glob). */
export interface BackupGroup {
  /** Empty for "the whole repository"; otherwise shown after the target name, e.g. `host=web-1,tags=nightly`. */
  label: string;
  /** How the group is described in a message when nothing matches it. */
  describe: string;
  newest: BackupPoint | undefined;
  /** Backups in the group. */
  count: number;
}

/** Everything evaluate needs about one target. */
export interface RepositoryObservation {
  target: string;
  kind: BackupKind;
  rpoHours: number;
  /** Why the repository could not be read at all (wrong password, no repository): every finding is unknown naming it. */
  accessProblem?: string;
  /** L2: how the backups are protected, when vigil can tell (encryption, file permissions). */
  protection?: { ok: boolean; how: string };
  groups: BackupGroup[];
  checks: IntegrityCheck[];
  /** Facts worth showing that change no verdict (e.g. a backup running while vigil read). */
  notes: string[];
}
