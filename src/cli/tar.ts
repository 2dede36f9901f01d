/**
 * A minimal POSIX ustar writer, gzip-compressed with node:zlib, for `vigil export`.
 *
 * Why our own: no tar or zip library is a dependency, and the export needs only the writing side
 * of the simplest format — regular files and directories, short ASCII names, no links, no
 * extended headers. ustar (POSIX.1-1988) is read by every `tar` (GNU, bsdtar, busybox), by
 * Windows' own `tar.exe` and by the archive tools auditors use; gzip comes with Node. Reading
 * archives is deliberately not implemented: what vigil does not unpack cannot hurt it.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync } from 'node:zlib';

/** One member of the archive. */
export interface TarEntry {
  /** Path inside the archive, `/`-separated, relative; a trailing `/` is added for directories. ASCII only, no `..`. */
  path: string;
  /** File contents; absent for a directory. */
  data?: Buffer;
  /** Permission bits. Default 0o644 for files, 0o755 for directories. */
  mode?: number;
}

/** A member cannot be written as a ustar entry (bad name, too long). A bug in the caller. */
export class TarEntryError extends Error {
  override name = 'TarEntryError';
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width - 1 octal digits and a NUL, as ustar wants for numeric fields.
  const digits = value.toString(8);
  if (digits.length > width - 1) throw new TarEntryError(`value ${value} does not fit a ${width}-byte ustar field`);
  return `${digits.padStart(width - 1, '0')}\0`;
}

/**
 * Splits a member path into ustar `prefix` (≤ 155) and `name` (≤ 100) at a `/`. A directory's
 * name carries a trailing `/` when it fits (what GNU tar writes); its type flag says it anyway.
 */
function splitName(path: string, directory: boolean): { prefix: string; name: string } {
  const full = directory ? `${path}/` : path;
  if (full.length <= 100) return { prefix: '', name: full };
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
    const prefix = path.slice(0, i);
    const rest = path.slice(i + 1);
    if (prefix.length <= 155 && rest.length <= 100 && rest.length > 0) return { prefix, name: directory && rest.length < 100 ? `${rest}/` : rest };
  }
  throw new TarEntryError(`archive member name too long for ustar: ${path}`);
}

function header(path: string, size: number, mode: number, mtime: number, type: '0' | '5'): Buffer {
  const { prefix, name } = splitName(path, type === '5');
  const h = Buffer.alloc(BLOCK, 0);
  h.write(name, 0, 100, 'ascii');
  h.write(octal(mode & 0o7777, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(mtime, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii'); // checksum field counts as spaces while summing
  h.write(type, 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('vigil', 265, 32, 'ascii'); // uname
  h.write('vigil', 297, 32, 'ascii'); // gname
  h.write(prefix, 345, 155, 'ascii');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

function checkPath(path: string): void {
  // Members an extractor would place outside the folder, or that a reader could take two ways.
  if (!/^[\x21-\x7e]+$/.test(path.replace(/ /g, '_')) || path.startsWith('/') || path.split('/').some((p) => p === '..' || p === '.' || p === ''))
    throw new TarEntryError(`archive member name not allowed: ${JSON.stringify(path)}`);
}

/**
 * The uncompressed ustar bytes of `entries`, in the order given (list a directory before its
 * members). Every member gets `mtime` (seconds since the epoch), uid/gid 0, owner `vigil`.
 *
 * @throws {@link TarEntryError} for a name that is not relative ASCII without `..`, or too long.
 */
export function tarBytes(entries: readonly TarEntry[], mtime: number): Buffer {
  const parts: Buffer[] = [];
  const seen = new Set<string>();
  for (const e of entries) {
    const path = e.path.replace(/\/+$/, '');
    checkPath(path);
    if (seen.has(path)) throw new TarEntryError(`archive member listed twice: ${path}`);
    seen.add(path);
    if (e.data === undefined) {
      parts.push(header(path, 0, e.mode ?? 0o755, mtime, '5'));
      continue;
    }
    parts.push(header(path, e.data.length, e.mode ?? 0o644, mtime, '0'), e.data);
    const pad = (BLOCK - (e.data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad, 0));
  }
  // End of archive: two zero blocks.
  parts.push(Buffer.alloc(2 * BLOCK, 0));
  return Buffer.concat(parts);
}

/** {@link tarBytes}, gzip-compressed: the bytes of a `.tar.gz` file. */
export function tarGz(entries: readonly TarEntry[], mtime: number): Buffer {
  return gzipSync(tarBytes(entries, Math.floor(mtime)), { level: 9 });
}

/**
 * Writes a `.tar.gz` member by member, streaming: only one chunk of a member is in memory at a
 * time, so a bundle of hundreds of large day files needs no more memory than one of them. Same
 * rules as {@link tarBytes}. The file is created with `wx` (never over something that exists):
 * write to a temporary name and rename it.
 */
export class TarGzWriter {
  private readonly gzip = createGzip({ level: 6 });
  private readonly done: Promise<void>;
  private readonly seen = new Set<string>();
  private readonly mtime: number;

  constructor(file: string, mtime: number) {
    this.mtime = Math.floor(mtime);
    this.done = pipeline(this.gzip, createWriteStream(file, { flags: 'wx', mode: 0o644 }));
    // Surfaced by close() (or by the next write): never an unhandled rejection meanwhile.
    this.done.catch(() => undefined);
  }

  private async write(chunk: Buffer): Promise<void> {
    if (this.gzip.write(chunk)) return;
    const drained = once(this.gzip, 'drain');
    drained.catch(() => undefined);
    await Promise.race([drained, this.done]);
  }

  private name(path: string): string {
    const p = path.replace(/\/+$/, '');
    checkPath(p);
    if (this.seen.has(p)) throw new TarEntryError(`archive member listed twice: ${p}`);
    this.seen.add(p);
    return p;
  }

  /** A directory member (list it before its members). */
  async directory(path: string, mode = 0o755): Promise<void> {
    await this.write(header(this.name(path), 0, mode, this.mtime, '5'));
  }

  /** A file member from bytes in memory. */
  async file(path: string, data: Buffer, mode = 0o644): Promise<void> {
    await this.write(header(this.name(path), data.length, mode, this.mtime, '0'));
    await this.write(data);
    await this.pad(data.length);
  }

  /** A file member streamed from `source` (a file vigil wrote itself; it must not change meanwhile). */
  async fileFrom(path: string, source: string, mode = 0o644): Promise<void> {
    const { size } = await stat(source);
    await this.write(header(this.name(path), size, mode, this.mtime, '0'));
    let total = 0;
    for await (const chunk of createReadStream(source)) {
      total += (chunk as Buffer).length;
      if (total > size) throw new TarEntryError(`${source} grew while it was archived`);
      await this.write(chunk as Buffer);
    }
    if (total !== size) throw new TarEntryError(`${source} shrank while it was archived`);
    await this.pad(size);
  }

  private async pad(size: number): Promise<void> {
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad) await this.write(Buffer.alloc(pad, 0));
  }

  /** Ends the archive (two zero blocks), flushes gzip and the file. */
  async close(): Promise<void> {
    await this.write(Buffer.alloc(2 * BLOCK, 0));
    this.gzip.end();
    await this.done;
  }

  /** Abandons the archive (after an error): the partial file is the caller's to remove. */
  async abort(): Promise<void> {
    this.gzip.destroy();
    await this.done.catch(() => undefined);
  }
}
