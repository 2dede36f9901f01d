import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { BackupTarget, SecretRef } from '../../src/config/schema.js';
import { defineProbe, type ProbeGauge, type ProbeResult } from '../../src/probe/contract.js';
import { PermissionError } from '../../src/probe/errors.js';
import { readSecret } from '../../src/secrets.js';
import { collectBorg, type BorgSpec } from './borg.js';
import { collectDumps, type DumpsSpec } from './dumps.js';
import { evaluateRepository } from './evaluate.js';
import type { RepositoryObservation } from './observation.js';
import { collectPgbackrest, type PgbackrestSpec } from './pgbackrest.js';
import { collectRestic, type ResticSpec } from './restic.js';
import type { ToolRun } from './run-tool.js';

/** The probe's params, validated at config load time. */
export const Params = z.strictObject({
  /** Budget of one tool invocation (a `check --read-data-subset` of a large repository takes a while). Default 900 s; the run's own budget, worker.timeoutSeconds, applies as well. */
  commandTimeoutSeconds: z.number().int().min(1).max(86_400).default(900),
});
export type Params = z.output<typeof Params>;

/** One `backups:` entry this probe reads (every kind but `drills`), with config-derived defaults filled in. */
export type RepositorySpec = ResticSpec | BorgSpec | PgbackrestSpec | DumpsSpec;

/** A secret the tool needs, read at run time so a rotated password is picked up without a restart. */
function secret(target: string, key: string, ref: SecretRef): string {
  const value = readSecret(ref);
  if (value === undefined) throw new PermissionError(`backups "${target}": ${key} names environment variable ${'env' in ref ? ref.env : '?'}, which is not set`);
  return value;
}

function extraEnvironment(target: string, refs: Record<string, SecretRef>): Record<string, string> {
  return Object.fromEntries(Object.entries(refs).map(([name, ref]) => [name, secret(target, `environment.${name}`, ref)]));
}

/** Reads one number out of each finding's details. */
function detailGauge(name: string, help: string, read: (d: Record<string, unknown>) => number | undefined): ProbeGauge {
  return {
    name,
    help,
    labelNames: ['resource'],
    fromResult(result: ProbeResult) {
      return result.findings.flatMap((f) => {
        const v = f.details ? read(f.details) : undefined;
        return v !== undefined && Number.isFinite(v) ? [{ labels: { resource: f.resource }, value: v }] : [];
      });
    },
  };
}

export const probe = defineProbe<RepositorySpec, Params, RepositoryObservation>({
  id: 'backup-repository',
  title: 'Backup repositories hold a fresh, protected and intact backup',
  source: 'backup',
  controls: ['backups'],
  // After the usual nightly backup window; integrity checks run at every run, so more often costs more reads.
  schedule: '41 6 * * *',
  docs: {
    checks:
      'For each `backups:` entry of kind restic, borg, pgbackrest or dumps: the newest backup (per restic host/paths/tags group, per borg archive glob, ' +
      'per pgBackRest stanza, or the newest file matching the dump pattern) is younger than `rpoHours` (default 26) and not recorded as failed ' +
      '(pgBackRest `error: true`, an empty dump); the integrity check passes, judged from the tool\'s output, never its exit code alone ' +
      '(`restic check`, with `--read-data-subset=k/N` rotating daily when `readDataSubsets` is N; `borg check`, with `--verify-data` every ' +
      '`verifyDataEveryDays`; `pgbackrest verify` status lines — it exits 0 on `status: error`; the `.sha256` sidecar and a full `pg_restore` read of ' +
      'custom-format dumps). details.level is the evidence ladder rung met: L1 fresh, L2 protected (encrypted; dumps not readable by others), ' +
      'L3 content read and intact. A wrong password or missing repository is unknown naming it; a repository locked exclusively (prune, ' +
      'backup in progress) is retried.',
    permissions:
      'read access to the repository and its secrets; vigil runs, without a shell and with only PATH/HOME/TMPDIR and the configured secrets in the environment: ' +
      '`restic list locks|cat lock|snapshots --json|check --json [--read-data-subset=k/N]`, all with `--no-lock --no-cache` (no lock files, no cache written); ' +
      '`borg list --json --last 1 --bypass-lock [--glob-archives G]` and `borg check --bypass-lock --info --log-json [--verify-data]` (no lock taken, so a backup is never blocked; but borg 1.2\'s check, even without --repair, rewrites the repository\'s small `nonce` reservation file and may rewrite `config` with unchanged content — the only writes; its security and keys directories live in BORG_BASE_DIR, default <dataDir>/borg; vigil reads a local repository\'s lock.roster first and retries while a borg holds it exclusively); ' +
      '`pgbackrest info --output=json` and `pgbackrest verify --verbose` with `--log-level-file=off` (never `check`, which writes to the database; both are lock-free); ' +
      '`pg_restore --list FILE` and `pg_restore --file=/dev/null FILE` (no database connection).',
    remediation:
      'Stale: find why the backup job stopped (scheduler, credentials, disk) and run it. Damage: restic repair / borg check --repair / a new pgBackRest full backup, ' +
      'after finding the cause; restore from another copy if data is lost. Unprotected: encrypt the repository (restic always is; borg init -e repokey-blake2; ' +
      'pgBackRest repo-cipher-type), or chmod o-rwx the dumps. A truncated or mismatching dump: take a new one and write its sidecar with sha256sum after it completes.',
  },
  params: Params,
  targets(config) {
    return config.backups
      .filter((t): t is Exclude<BackupTarget, { kind: 'drills' }> => t.kind !== 'drills')
      .map((t) => ({ name: t.name, spec: t.kind === 'borg' ? { ...t, baseDir: t.baseDir ?? path.resolve(config.dataDir, 'borg') } : t }));
  },
  async collect(ctx) {
    const spec = ctx.target.spec;
    const name = ctx.target.name;
    const base = { timeoutMs: ctx.params.commandTimeoutSeconds * 1000, signal: ctx.signal };
    switch (spec.kind) {
      case 'restic': {
        const run: ToolRun = {
          ...base,
          command: spec.command ?? 'restic',
          env: { ...extraEnvironment(name, spec.environment), RESTIC_REPOSITORY: spec.repository, RESTIC_PASSWORD: secret(name, 'password', spec.password) },
        };
        return collectRestic(spec, run, ctx.now, name);
      }
      case 'borg': {
        await mkdir(spec.baseDir, { recursive: true, mode: 0o700 });
        const run: ToolRun = {
          ...base,
          command: spec.command ?? 'borg',
          env: {
            ...extraEnvironment(name, spec.environment),
            BORG_REPO: spec.repository,
            BORG_BASE_DIR: spec.baseDir,
            ...(spec.passphrase ? { BORG_PASSPHRASE: secret(name, 'passphrase', spec.passphrase) } : {}),
            ...(spec.keyFile ? { BORG_KEY_FILE: spec.keyFile } : {}),
            // vigil only reads: accepting a repository its own BORG_BASE_DIR has not seen (or saw elsewhere) cannot redirect a backup.
            BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
            BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
            BORG_CHECK_I_KNOW_WHAT_I_AM_DOING: 'NO',
            BORG_DISPLAY_PASSPHRASE: 'no',
          },
        };
        return collectBorg(spec, run, ctx.now, name);
      }
      case 'pgbackrest': {
        const run: ToolRun = {
          ...base,
          command: spec.command ?? 'pgbackrest',
          env: {
            ...extraEnvironment(name, spec.environment),
            ...(spec.cipherPass ? { [`PGBACKREST_REPO${spec.repo ?? 1}_CIPHER_PASS`]: secret(name, 'cipherPass', spec.cipherPass) } : {}),
          },
        };
        return collectPgbackrest(spec, run, name);
      }
      case 'dumps':
        return collectDumps(spec, { ...base, command: spec.command ?? 'pg_restore', env: {} }, name);
    }
  },
  evaluate(observation, _params, now) {
    return evaluateRepository(observation, now);
  },
  gauges: [
    detailGauge(
      'vigil_backup_repository_newest_backup_timestamp_seconds',
      'When the newest backup of the resource (restic snapshot, borg archive, pgBackRest backup, dump file) was taken, unix seconds',
      (d) => (typeof d.newestBackupAt === 'string' ? Date.parse(d.newestBackupAt) / 1000 : undefined),
    ),
    detailGauge(
      'vigil_backup_repository_evidence_level',
      'Highest evidence-ladder rung the resource meets: 0 none, 1 fresh, 2 protected, 3 content intact',
      (d) => (typeof d.level === 'number' ? d.level : undefined),
    ),
  ],
});
