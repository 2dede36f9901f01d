import { mkdirSync, statSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

/*
 * `mkdir -p` that always ends. Node's `mkdir(dir, { recursive: true })` (sync and async, Node 20
 * and 24) spins for ever at 100 % CPU, with no error, when a parent exists but cannot hold
 * children — a path under /proc or /sys, e.g. `dataDir: /proc/vigil`: the kernel answers ENOENT
 * for the child and EEXIST for the parent, and libuv's walk goes back and forth. Here a child
 * that still gets ENOENT once its parent exists is final: the caller gets that ENOENT and says
 * which path it could not create.
 */

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Creates `dir` and its missing parents (each with `mode`); an existing directory is fine, an existing file is EEXIST. */
export function makeDirectorySync(dir: string, mode?: number): void {
  const target = path.resolve(dir);
  try {
    mkdirSync(target, mode === undefined ? undefined : { mode });
  } catch (err) {
    if (code(err) === 'EEXIST') {
      if (statSync(target).isDirectory()) return;
      throw err;
    }
    const parent = path.dirname(target);
    if (code(err) !== 'ENOENT' || parent === target) throw err;
    makeDirectorySync(parent, mode);
    try {
      mkdirSync(target, mode === undefined ? undefined : { mode });
    } catch (again) {
      // Created meanwhile by someone else (two replicas, two commands): fine, as with recursive mkdir.
      if (code(again) !== 'EEXIST' || !statSync(target).isDirectory()) throw again;
    }
  }
}

/** Async {@link makeDirectorySync}. */
export async function makeDirectory(dir: string, mode?: number): Promise<void> {
  const target = path.resolve(dir);
  try {
    await mkdir(target, mode === undefined ? undefined : { mode });
  } catch (err) {
    if (code(err) === 'EEXIST') {
      if ((await stat(target)).isDirectory()) return;
      throw err;
    }
    const parent = path.dirname(target);
    if (code(err) !== 'ENOENT' || parent === target) throw err;
    await makeDirectory(parent, mode);
    try {
      await mkdir(target, mode === undefined ? undefined : { mode });
    } catch (again) {
      if (code(again) !== 'EEXIST' || !(await stat(target)).isDirectory()) throw again;
    }
  }
}
