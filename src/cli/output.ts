import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes `data` to `file` atomically: into a temporary file in the same directory (so the rename
 * cannot cross file systems), flushed to disk, then renamed over `file`. A reader — a CI step
 * uploading the report, a second run — sees the old file or the whole new one, never a torn one.
 */
export async function writeFileAtomic(file: string, data: string): Promise<void> {
  const target = path.resolve(file);
  const dir = path.dirname(target);
  const temp = path.join(dir, `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  // 'wx': never follow or reuse something already at the temporary name.
  const handle = await open(temp, 'wx', 0o644);
  try {
    try {
      await handle.writeFile(data, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  // Persist the rename itself; not every file system lets a directory be opened for this.
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // best effort
  }
}
