/**
 * collect of evidence-cadence: reads the record files of one source — a local directory (lstat
 * first, symbolic links followed only when they stay inside the directory, no FIFO or device,
 * size-capped) or a path of a GitHub repository (contents API) — and parses each one's front
 * matter. Every file it cannot use is reported with the reason, never skipped. Loaded by
 * probe.ts on the first run only.
 */
import { constants } from 'node:fs';
import { lstat, open, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { githubClient, GithubPermissionError, NotFoundError, type GithubClient } from '../../src/clients/github.js';
import type { CollectContext } from '../../src/probe/contract.js';
import type { CadenceObservation, EvidenceSpec, GithubSource, LocalSource, Params } from './probe.js';
import { parseRecord } from './record.js';

/** Directory levels walked below a source's root. */
const MAX_DEPTH = 5;

/** Entries GitHub's contents API lists of one directory at most (more are cut off without notice). */
const CONTENTS_LISTING_LIMIT = 1000;

/** A record file: `*.md`, but not a README. */
function isRecordName(name: string): boolean {
  return /\.md$/i.test(name) && !/^readme\.md$/i.test(name);
}

interface Collected {
  records: CadenceObservation['records'];
  invalid: CadenceObservation['invalid'];
}

function add(into: Collected, file: string, text: string): void {
  const parsed = parseRecord(text);
  if (parsed.ok) into.records.push({ file, record: parsed.record });
  else into.invalid.push({ file, problem: parsed.problem });
}

/** Reads a regular file of at most `max` bytes without following a link (O_NOFOLLOW) or waiting on a FIFO (O_NONBLOCK). */
async function readCapped(file: string, max: number): Promise<string | undefined> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTREG' });
    if (st.size > max) return undefined;
    const buf = Buffer.alloc(max + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, length, buf.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > max) return undefined;
    }
    return buf.subarray(0, length).toString('utf8');
  } finally {
    await fh.close();
  }
}

async function collectLocal(source: LocalSource, params: Params, signal: AbortSignal): Promise<Omit<CadenceObservation, 'required' | 'graceDays'>> {
  const where = source.dir;
  let root: string;
  try {
    root = await realpath(source.dir);
    if (!(await stat(root)).isDirectory()) return { source: source.name, where, unreadable: 'not a directory', records: [], invalid: [] };
  } catch (err) {
    return { source: source.name, where, unreadable: `cannot open the directory (${(err as NodeJS.ErrnoException).code ?? 'error'})`, records: [], invalid: [] };
  }
  const out: Collected = { records: [], invalid: [] };
  let files = 0;
  // Real paths of the directories walked: a link back to one (an ancestor, a sibling) is not walked
  // again, so n links to the root cost n entries, not n^MAX_DEPTH walks; its files are read once.
  const walked = new Set<string>([root]);
  const walk = async (dir: string, rel: string, depth: number): Promise<string | undefined> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      signal.throwIfAborted();
      const relName = rel === '' ? e.name : `${rel}/${e.name}`;
      const full = path.join(dir, e.name);
      let st = await lstat(full);
      let target = full;
      if (st.isSymbolicLink()) {
        let resolved: string;
        try {
          resolved = await realpath(full);
        } catch {
          if (isRecordName(e.name)) out.invalid.push({ file: relName, problem: 'a symbolic link whose target does not exist' });
          continue;
        }
        if (resolved !== root && !resolved.startsWith(root + path.sep)) {
          if (isRecordName(e.name) || (await stat(resolved).then((s) => s.isDirectory(), () => false))) {
            out.invalid.push({ file: relName, problem: 'a symbolic link to outside the evidence directory: not followed' });
          }
          continue;
        }
        target = resolved;
        st = await stat(resolved);
      }
      if (st.isDirectory()) {
        const real = target === full ? await realpath(full) : target;
        if (walked.has(real)) continue;
        if (depth >= MAX_DEPTH) {
          out.invalid.push({ file: relName, problem: `a directory nested deeper than ${MAX_DEPTH} levels: not read` });
          continue;
        }
        walked.add(real);
        const stop = await walk(target, relName, depth + 1);
        if (stop !== undefined) return stop;
        continue;
      }
      if (!isRecordName(e.name)) continue;
      if (!st.isFile()) {
        out.invalid.push({ file: relName, problem: 'not a regular file' });
        continue;
      }
      if (++files > params.maxFiles) return `more than maxFiles (${params.maxFiles}) record files: raise maxFiles or split the source`;
      let text: string | undefined;
      try {
        text = await readCapped(target, params.maxFileBytes);
      } catch (err) {
        out.invalid.push({ file: relName, problem: `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})` });
        continue;
      }
      if (text === undefined) out.invalid.push({ file: relName, problem: `larger than maxFileBytes (${params.maxFileBytes} bytes): not read` });
      else add(out, relName, text);
    }
    return undefined;
  };
  try {
    const stop = await walk(root, '', 0);
    if (stop !== undefined) return { source: source.name, where, unreadable: stop, records: [], invalid: [] };
  } catch (err) {
    if (signal.aborted) throw err;
    return { source: source.name, where, unreadable: `cannot read the directory (${(err as NodeJS.ErrnoException).code ?? 'error'})`, records: [], invalid: [] };
  }
  return { source: source.name, where, ...out };
}

/** One entry of a contents directory listing (GitHub's content-directory item). */
const DirEntry = z.looseObject({
  type: z.enum(['file', 'dir', 'symlink', 'submodule']),
  name: z.string().min(1),
  path: z.string().min(1),
  size: z.number().int().min(0),
});

/** A file of the contents API (content-file), base64 content for files up to 1 MB. */
const FileContent = z.looseObject({
  type: z.literal('file'),
  path: z.string(),
  size: z.number().int().min(0),
  encoding: z.string(),
  content: z.string(),
});

async function collectGithub(gh: GithubClient, source: GithubSource, params: Params): Promise<Omit<CadenceObservation, 'required' | 'graceDays'>> {
  const [owner, repo] = source.repo.split('/') as [string, string];
  const base = source.path.replace(/^\/+|\/+$/g, '');
  const where = `${source.repo}:${base === '' ? '/' : base}${source.ref ? `@${source.ref}` : ''}`;
  const ref = source.ref ? { ref: source.ref } : {};
  const out: Collected = { records: [], invalid: [] };
  const relOf = (p: string): string => (base === '' ? p : p.slice(base.length + 1));
  let files = 0;
  const walk = async (dir: string, depth: number): Promise<string | undefined> => {
    const listing = await gh.rest('GET /repos/{owner}/{repo}/contents/{path}', { owner, repo, path: dir, ...ref }, z.union([z.array(DirEntry), z.looseObject({ type: z.string() })]));
    if (!Array.isArray(listing)) {
      if (dir === base) return `${base} is a ${listing.type}, not a directory`;
      // Listed as a directory by its parent, something else now (changed between the two reads): reported, not skipped.
      out.invalid.push({ file: relOf(dir), problem: `listed as a directory, but GitHub now returns a ${String(listing.type).slice(0, 20)}: not read` });
      return undefined;
    }
    // The contents API lists at most 1,000 entries of a directory, silently: a longer one cannot be judged whole.
    if (listing.length >= CONTENTS_LISTING_LIMIT) {
      return `${dir === '' ? 'the repository root' : dir} has ${listing.length} or more entries, and GitHub's contents API lists at most ${CONTENTS_LISTING_LIMIT}: split the records into subdirectories`;
    }
    for (const e of [...listing].sort((a, b) => a.path.localeCompare(b.path))) {
      const rel = relOf(e.path);
      if (e.type === 'dir') {
        if (depth >= MAX_DEPTH) {
          out.invalid.push({ file: rel, problem: `a directory nested deeper than ${MAX_DEPTH} levels: not read` });
          continue;
        }
        const stop = await walk(e.path, depth + 1);
        if (stop !== undefined) return stop;
        continue;
      }
      if (!isRecordName(e.name)) continue;
      if (e.type !== 'file') {
        out.invalid.push({ file: rel, problem: `a ${e.type} in the repository, not a file: not followed` });
        continue;
      }
      if (++files > params.maxFiles) return `more than maxFiles (${params.maxFiles}) record files: raise maxFiles or split the source`;
      if (e.size > params.maxFileBytes) {
        out.invalid.push({ file: rel, problem: `larger than maxFileBytes (${params.maxFileBytes} bytes): not read` });
        continue;
      }
      const f = await gh.rest('GET /repos/{owner}/{repo}/contents/{path}', { owner, repo, path: e.path, ...ref }, FileContent);
      if (f.encoding !== 'base64') {
        out.invalid.push({ file: rel, problem: `GitHub returned it with encoding "${f.encoding}", not base64: not read` });
        continue;
      }
      const bytes = Buffer.from(f.content, 'base64');
      if (bytes.length > params.maxFileBytes) {
        out.invalid.push({ file: rel, problem: `larger than maxFileBytes (${params.maxFileBytes} bytes): not read` });
        continue;
      }
      add(out, rel, bytes.toString('utf8'));
    }
    return undefined;
  };
  try {
    const stop = await walk(base, 0);
    if (stop !== undefined) return { source: source.name, where, unreadable: stop, records: [], invalid: [] };
  } catch (err) {
    if (err instanceof NotFoundError) return { source: source.name, where, unreadable: 'GitHub answered 404: the repository, path or ref does not exist, or the credential may not see it (needs Contents: read)', records: [], invalid: [] };
    if (err instanceof GithubPermissionError) return { source: source.name, where, unreadable: err.message, records: [], invalid: [] };
    throw err;
  }
  return { source: source.name, where, ...out };
}

/** Reads one source's records. */
export async function collectCadence(ctx: CollectContext<EvidenceSpec, Params>): Promise<CadenceObservation> {
  const spec = ctx.target.spec;
  const extra = { required: spec.source.required, graceDays: spec.source.graceDays ?? ctx.params.graceDays, ...(spec.timezone !== undefined ? { timezone: spec.timezone } : {}) };
  if (spec.kind === 'local') return { ...(await collectLocal(spec.source, ctx.params, ctx.signal)), ...extra };
  if (!spec.github) {
    throw new Error(
      `probes.evidence-cadence.params.sources[${spec.index}].github: no github[] target is named "${spec.source.github}": name one whose credential may read ${spec.source.repo}`,
    );
  }
  const gh = githubClient(spec.github, { signal: ctx.signal, log: ctx.log, redis: ctx.redis });
  return { ...(await collectGithub(gh, spec.source, ctx.params)), ...extra };
}
