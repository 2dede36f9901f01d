import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';

/** Whether the relative path `rel` (from `path.relative`) stays inside its base: not `..`, not `../…`, not absolute. */
function relInside(rel: string): boolean {
  return rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/**
 * Where `file` really lands once the symlinks on its way are followed: the deepest existing
 * ancestor's realpath with the rest appended, and a symlink at `file` itself (dangling too:
 * writing through it creates its target) followed. Never throws.
 */
export function landingPath(file: string): string {
  let current = path.resolve(file);
  for (let hops = 0; hops < 40; hops++) {
    try {
      if (!lstatSync(current).isSymbolicLink()) return realpathSync(current);
      current = path.resolve(path.dirname(current), readlinkSync(current));
      continue;
    } catch {
      // Does not exist (or cannot be inspected): resolve the parent and keep the last part.
    }
    const parent = path.dirname(current);
    if (parent === current) return current;
    return path.join(landingPath(parent), path.basename(current));
  }
  return current;
}

/**
 * Whether `file` is `dir` or inside it — lexically (a name such as `..bundle.tar.gz` inside the
 * directory is inside it) and after following symlinks on either path (an `--out` through a link
 * into the evidence archive is inside it). Never throws.
 */
export function insideDirectory(file: string, dir: string): boolean {
  const lexical = path.relative(path.resolve(dir), path.resolve(file));
  if (lexical === '' || relInside(lexical)) return true;
  const real = path.relative(landingPath(dir), landingPath(file));
  return real === '' || relInside(real);
}
