import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';

/** What {@link directoryProblems} checks. */
export interface DirectoryState {
  /** dataDir, absolute. */
  dataDir: string;
  /** Whether dataDir existed when the daemon started: one that never existed (external Redis, configured token) is not "gone". */
  dataDirExisted: boolean;
  /** archive.dir, absolute. */
  archiveDir: string;
  /** Whether a day was ever published: from then on archive.dir must exist (the first day close creates it). */
  published: boolean;
}

function code(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'error';
}

/** Why `dir` cannot take new files, or undefined when it can (or is absent and `mayBeAbsent`). */
async function directoryProblem(key: string, dir: string, mayBeAbsent: boolean): Promise<string | undefined> {
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) return `${key} ${dir} is not a directory`;
  } catch (err) {
    if (code(err) === 'ENOENT') return mayBeAbsent ? undefined : `${key} ${dir} is gone`;
    return `${key} ${dir} cannot be read (${code(err)})`;
  }
  try {
    // W_OK asks the kernel, so it also sees a read-only mount and an immutable directory (chattr +i), even for root.
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    return `${key} ${dir} is not writable (${code(err)})`;
  }
  return undefined;
}

/**
 * The readiness problems of vigil's directories (GET /readyz, vigil_ready): dataDir gone or not
 * writable (the embedded Redis and the generated admin token live there), archive.dir gone after a
 * day was published, or not writable (the next day close would fail). Cheap: two stat and two
 * access calls, no file is written.
 */
export async function directoryProblems(state: DirectoryState): Promise<string[]> {
  const problems = await Promise.all([
    directoryProblem('dataDir', state.dataDir, !state.dataDirExisted),
    directoryProblem('archive.dir', state.archiveDir, !state.published),
  ]);
  return problems.filter((p): p is string => p !== undefined);
}
