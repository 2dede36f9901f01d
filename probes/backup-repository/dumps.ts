import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import type { DumpsBackup } from '../../src/config/schema.js';
import type { IntegrityCheck, RepositoryObservation } from './observation.js';
import { firstLines, runTool, type ToolRun } from './run-tool.js';

export type DumpsSpec = z.output<typeof DumpsBackup>;

/** Directory entries looked at: a dump directory with more is misconfigured (pattern too wide), not worth minutes of stat calls. */
export const MAX_DUMP_ENTRIES = 100_000;

/** `*` and `?` globs on a file name, anchored; every other character literal. */
export function globRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** Hashes a file as a stream, honouring the run's signal. */
async function sha256File(file: string, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Reads at most 4 KiB of the sidecar: a sha256sum line is 64 hex digits, two spaces and a name. */
async function readSidecar(file: string): Promise<string | undefined> {
  let fh;
  try {
    // O_NONBLOCK: a FIFO planted as the sidecar cannot hang the run.
    fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    if (!(await fh.stat()).isFile()) return '';
    const buf = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * The newest dump matching the pattern: within the RPO, not empty, equal to its `.sha256`
 * sidecar when there is one, and — for PostgreSQL custom-format dumps — read through by
 * `pg_restore` (its table of contents, then every data block into /dev/null: `--list` alone
 * reads only the table of contents and accepts a dump cut short in its data).
 */
export async function collectDumps(spec: DumpsSpec, run: ToolRun, target: string): Promise<RepositoryObservation> {
  const base: RepositoryObservation = { target, kind: 'dumps', rpoHours: spec.rpoHours, groups: [], checks: [], notes: [] };
  const dir = path.resolve(spec.dir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    return { ...base, accessProblem: `cannot read the dump directory ${dir} (${(err as NodeJS.ErrnoException).code ?? 'error'}): check backups[].dir and vigil's read permission` };
  }
  // A cut listing is unordered: the newest dump could be among the entries left out. Not judged.
  if (names.length > MAX_DUMP_ENTRIES) {
    return { ...base, accessProblem: `the dump directory ${dir} holds ${names.length} entries, more than vigil reads (${MAX_DUMP_ENTRIES}): prune old dumps or point backups[].dir at a narrower directory` };
  }
  const re = globRegExp(spec.pattern);
  let newest: { name: string; file: string; mtimeMs: number; size: number; mode: number } | undefined;
  let count = 0;
  for (const name of names) {
    if (!re.test(name) || name.endsWith('.sha256')) continue;
    const file = path.join(dir, name);
    let st;
    try {
      st = await stat(file);
    } catch {
      continue; // removed while listing (rotation), or a dangling link
    }
    if (!st.isFile()) continue;
    count += 1;
    if (!newest || st.mtimeMs > newest.mtimeMs) newest = { name, file, mtimeMs: st.mtimeMs, size: st.size, mode: st.mode };
  }
  base.groups.push({
    label: '',
    describe: `the pattern ${spec.pattern} in ${dir}`,
    newest: newest
      ? { id: newest.name, time: new Date(newest.mtimeMs).toISOString(), ...(newest.size === 0 ? { error: 'the file is empty (0 bytes): the dump job wrote nothing' } : {}) }
      : undefined,
    count,
  });
  if (!newest || newest.size === 0) return base;

  base.protection = (newest.mode & 0o007) === 0 ? { ok: true, how: 'not readable by other users' } : { ok: false, how: `readable by other users (mode ${(newest.mode & 0o777).toString(8)}): chmod o-rwx` };

  let sidecarText: string | undefined;
  try {
    sidecarText = await readSidecar(`${newest.file}.sha256`);
  } catch (err) {
    base.checks.push({ name: 'sha256 sidecar', outcome: 'unknown', message: `cannot read ${newest.name}.sha256 (${(err as NodeJS.ErrnoException).code ?? 'error'})`, readsContent: true });
  }
  if (sidecarText !== undefined) {
    const want = /^\s*([0-9a-fA-F]{64})\b/.exec(sidecarText)?.[1]?.toLowerCase();
    const check: IntegrityCheck = want
      ? await sha256File(newest.file, run.signal).then(
          (got): IntegrityCheck =>
          got === want
            ? { name: 'sha256 sidecar', outcome: 'pass', message: 'content matches its .sha256 sidecar', readsContent: true }
            : { name: 'sha256 sidecar', outcome: 'fail', message: `${newest.name} does not match its .sha256 sidecar (sha256 ${got.slice(0, 12)}…, sidecar ${want.slice(0, 12)}…): the file changed or was cut short after the dump; take a new dump`, readsContent: true },
          (err: unknown): IntegrityCheck => {
            if (run.signal.aborted) throw err;
            return { name: 'sha256 sidecar', outcome: 'unknown', message: `cannot read ${newest.name} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, readsContent: true };
          },
        )
      : { name: 'sha256 sidecar', outcome: 'fail', message: `${newest.name}.sha256 holds no sha256 digest (expected sha256sum output): rewrite it with sha256sum`, readsContent: true };
    base.checks.push(check);
  }

  if (spec.format === 'postgres-custom') {
    const list = await runTool(run, ['--list', newest.file]);
    // Killed by a signal, or stopped for printing too much: pg_restore said nothing about the dump.
    const unjudged = (r: { code: number | null; truncated: boolean }) => r.code === null || r.truncated;
    if (unjudged(list)) {
      base.checks.push({ name: 'pg_restore', outcome: 'unknown', message: `pg_restore --list on ${newest.name} ${list.code === null ? 'was stopped' : 'printed more than vigil reads'}: the dump was not judged`, readsContent: true });
    } else if (list.code !== 0 || !/^;\s+TOC Entries: \d+/m.test(list.stdout)) {
      base.checks.push({ name: 'pg_restore', outcome: 'fail', message: `pg_restore cannot read the table of contents of ${newest.name}: ${firstLines(list.stderr) || `exit ${list.code}`}`, readsContent: true });
    } else {
      const full = await runTool(run, ['--file=/dev/null', newest.file]);
      const errors = full.stderr.split('\n').filter((l) => /error:/i.test(l));
      const entries = /^;\s+TOC Entries: (\d+)/m.exec(list.stdout)?.[1];
      base.checks.push(
        unjudged(full)
          ? { name: 'pg_restore', outcome: 'unknown', message: `pg_restore reading ${newest.name} through ${full.code === null ? 'was stopped' : 'printed more than vigil reads'}: the dump was not judged`, readsContent: true }
          : full.code === 0 && errors.length === 0
          ? { name: 'pg_restore', outcome: 'pass', message: `pg_restore reads all ${entries} entries`, readsContent: true, details: { tocEntries: Number(entries) } }
          : { name: 'pg_restore', outcome: 'fail', message: `pg_restore cannot read ${newest.name} through: ${firstLines(errors.join('\n') || full.stderr) || `exit ${full.code}`} (truncated or damaged dump)`, readsContent: true },
      );
    }
  }
  return base;
}
