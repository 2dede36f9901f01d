/**
 * The evidence archive (DESIGN.md §4): one immutable file per closed day, `<dir>/<YYYY-MM-DD>.json`,
 * each snapshot carrying the hash of the previous one, optionally signed with Ed25519.
 *
 * The archive only grows at its end, in calendar order, and a written day is never replaced.
 * {@link verifyArchive} re-checks the whole chain offline from the files alone (plus the public
 * key, when the snapshots are signed), which is what an auditor runs.
 */
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, lstat, open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDirectory } from './make-directory.js';
import { Snapshot, snapshotHash } from '../posture/snapshot-types.js';

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * The archive already holds a different snapshot for this day. Archived days are never
 * overwritten: find out why two snapshots exist for one day (two deployments sharing the
 * directory, a clock change) before doing anything to the file. Do not retry.
 */
export class ArchiveConflictError extends Error {
  override name = 'ArchiveConflictError';
  /** The archived file that was left untouched. */
  readonly file: string;
  /** The day both snapshots are for. */
  readonly date: string;
  /** `hash` of the archived snapshot; undefined when the file does not parse. */
  readonly existingHash: string | undefined;
  /** `hash` of the snapshot that was refused. */
  readonly hash: string;
  constructor(details: { file: string; date: string; existingHash: string | undefined; hash: string }, options?: { cause?: unknown }) {
    super('the archive already holds a different snapshot for this day; archived days are never overwritten', { cause: options?.cause });
    this.file = details.file;
    this.date = details.date;
    this.existingHash = details.existingHash;
    this.hash = details.hash;
  }
}

/** Why {@link ArchiveChainError} was thrown. */
export type ArchiveChainReason =
  /** The snapshot is for a day before the newest archived day. */
  | 'before-newest'
  /** The snapshot is after the newest archived day but not the day right after it. */
  | 'gap'
  /** The snapshot's `prevHash` is not the newest archived snapshot's `hash`. */
  | 'prev-hash'
  /** The archive is empty and the snapshot's `prevHash` is not null. */
  | 'first-prev-hash'
  /** The newest archived file cannot be read, so the snapshot cannot be chained to it. */
  | 'newest-unreadable'
  /** {@link rebuildInputs}: the archive does not verify. */
  | 'not-verified';

const chainMessages: Record<ArchiveChainReason, string> = {
  'before-newest': 'the snapshot is for a day before the newest archived day; the archive only grows at its end',
  gap: 'the snapshot is not for the day after the newest archived day; archive the missing days first, in order',
  'prev-hash': 'the snapshot prevHash is not the hash of the newest archived snapshot; build it chained to that day',
  'first-prev-hash':
    'the archive is empty but the snapshot chains to an earlier one; point the archive at the directory that holds the earlier days',
  'newest-unreadable': 'the newest archived snapshot cannot be read, so nothing can be chained to it; run vigil verify-archive',
  'not-verified': 'the archive does not verify; run vigil verify-archive',
};

/**
 * A snapshot cannot be added at the end of the archive's hash chain, or (for
 * {@link rebuildInputs}) the archive does not verify. Not retryable: the snapshot or the
 * archive must be fixed first.
 */
export class ArchiveChainError extends Error {
  override name = 'ArchiveChainError';
  readonly reason: ArchiveChainReason;
  /** The day of the refused snapshot (absent for `not-verified`). */
  readonly date: string | undefined;
  /** The newest archived day, when there is one. */
  readonly newest: string | undefined;
  /** The failed verification (`not-verified` only). */
  readonly report: ArchiveReport | undefined;
  constructor(
    reason: ArchiveChainReason,
    details: { date?: string; newest?: string; report?: ArchiveReport } = {},
    options?: { cause?: unknown },
  ) {
    // For `not-verified` the message is the one-line report, which names the day and the problem.
    super(reason === 'not-verified' && details.report ? formatArchiveReport(details.report) : chainMessages[reason], { cause: options?.cause });
    this.reason = reason;
    this.date = details.date;
    this.newest = details.newest;
    this.report = details.report;
  }
}

/**
 * A snapshot handed to {@link writeArchivedSnapshot} is not archivable: it does not match the
 * snapshot schema, or its `hash` is not the hash of its body. A bug in whatever built it.
 */
export class ArchiveInvalidSnapshotError extends Error {
  override name = 'ArchiveInvalidSnapshotError';
  readonly reason: 'schema' | 'hash' | 'too-large';
  constructor(reason: 'schema' | 'hash' | 'too-large', options?: { cause?: unknown }) {
    super(
      reason === 'schema'
        ? 'the snapshot does not match the snapshot schema; it was not archived'
        : reason === 'hash'
          ? 'the snapshot hash is not the SHA-256 of its canonical body; it was not archived'
          : 'the snapshot is larger than the per-day archive cap (MAX_ARCHIVE_FILE_BYTES); it was not archived',
      { cause: options?.cause },
    );
    this.reason = reason;
  }
}

/**
 * An archived file exists but is not an intact snapshot for its day ({@link readArchivedSnapshot}).
 * Run `vigil verify-archive` to see what happened to it.
 */
export class ArchiveCorruptError extends Error {
  override name = 'ArchiveCorruptError';
  /** The archived file. */
  readonly file: string;
  constructor(file: string, options?: { cause?: unknown }) {
    super('the archived snapshot is not intact (unreadable, not a snapshot, wrong day or wrong hash); run vigil verify-archive', {
      cause: options?.cause,
    });
    this.file = file;
  }
}

/** Why {@link ArchiveUnsafeFileError} was thrown. */
export type ArchiveUnsafeReason =
  /** The day file is a symbolic link: never followed (it could point anywhere). */
  | 'symlink'
  /** The day file is not a regular file (a FIFO, a socket, a device, a directory). */
  | 'not-regular'
  /** The day file is larger than {@link MAX_ARCHIVE_FILE_BYTES}. */
  | 'too-large';

const unsafeMessages: Record<ArchiveUnsafeReason, string> = {
  symlink: 'the archived day file is a symbolic link; archive files must be regular files, so it was refused, not followed',
  'not-regular': 'the archived day file is not a regular file (FIFO, socket, device or directory); it was refused, not read',
  'too-large': 'the archived day file is larger than the per-day cap; it was refused, not read',
};

/**
 * An archive day file is not something vigil writes: a symbolic link, a FIFO or other non-regular
 * file, or a file over the size cap. It is refused without being followed or read (a FIFO would
 * otherwise hang the reader). Someone put it there: find out who, and remove it.
 */
export class ArchiveUnsafeFileError extends Error {
  override name = 'ArchiveUnsafeFileError';
  /** The refused file. */
  readonly file: string;
  readonly reason: ArchiveUnsafeReason;
  constructor(file: string, reason: ArchiveUnsafeReason, options?: { cause?: unknown }) {
    super(`${unsafeMessages[reason]}: ${file}`, { cause: options?.cause });
    this.file = file;
    this.reason = reason;
  }
}

/** A key given to sign or verify is not a PEM Ed25519 key of the expected kind. */
export class ArchiveKeyError extends Error {
  override name = 'ArchiveKeyError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { cause: options?.cause });
  }
}

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

function ed25519PrivateKey(privateKeyPem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch (err) {
    throw new ArchiveKeyError('the signing key is not a PEM private key; generate one with: openssl genpkey -algorithm ed25519', { cause: err });
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new ArchiveKeyError('the signing key is not an Ed25519 key; generate one with: openssl genpkey -algorithm ed25519');
  return key;
}

function ed25519PublicKey(publicKeyPem: string): KeyObject {
  let key: KeyObject;
  try {
    // createPublicKey also accepts a private key PEM and derives the public half, which is harmless here.
    key = createPublicKey(publicKeyPem);
  } catch (err) {
    throw new ArchiveKeyError('the public key is not a PEM public key; derive it with: openssl pkey -in key.pem -pubout', { cause: err });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new ArchiveKeyError('the public key is not an Ed25519 key');
  return key;
}

function fingerprintOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

/**
 * Signs a snapshot hash with an Ed25519 private key (PEM, PKCS#8).
 *
 * @returns `signature`: base64 Ed25519 signature over the UTF-8 bytes of `hash`;
 *   `signedBy`: the key's fingerprint, hex SHA-256 of the public key's SPKI DER (see {@link keyFingerprint}).
 * @throws {@link ArchiveKeyError} when the key is not an Ed25519 private key.
 */
export function signHash(hash: string, privateKeyPem: string): { signature: string; signedBy: string } {
  const key = ed25519PrivateKey(privateKeyPem);
  const signature = sign(null, Buffer.from(hash, 'utf8'), key).toString('base64');
  return { signature, signedBy: fingerprintOf(createPublicKey(key)) };
}

/**
 * The public half (SPKI PEM) of an Ed25519 private key: what an auditor is given to run
 * `vigil verify-archive --public-key`.
 *
 * @throws {@link ArchiveKeyError} when the key is not an Ed25519 private key.
 */
export function publicKeyFromPrivate(privateKeyPem: string): string {
  return createPublicKey(ed25519PrivateKey(privateKeyPem)).export({ type: 'spki', format: 'pem' }).toString();
}

/**
 * The fingerprint of an Ed25519 public key: hex SHA-256 of its SPKI DER, the value snapshots
 * carry in `signedBy`.
 *
 * @throws {@link ArchiveKeyError} when the key is not an Ed25519 public key.
 */
export function keyFingerprint(publicKeyPem: string): string {
  return fingerprintOf(ed25519PublicKey(publicKeyPem));
}

function checkSignature(snapshot: Snapshot, key: KeyObject, fingerprint: string): 'ok' | 'unsigned' | 'bad-signature' | 'other-key' {
  if (snapshot.signature === undefined) return 'unsigned';
  if (snapshot.signedBy !== undefined && snapshot.signedBy !== fingerprint) return 'other-key';
  try {
    return verify(null, Buffer.from(snapshot.hash, 'utf8'), key, Buffer.from(snapshot.signature, 'base64')) ? 'ok' : 'bad-signature';
  } catch {
    return 'bad-signature';
  }
}

/**
 * Whether a snapshot is authentic under `publicKeyPem`: it carries a signature, its `hash`
 * is the hash of its body (the signature covers only the hash, so this is checked too), the
 * signature verifies with the key, and `signedBy`, when present, is the key's fingerprint.
 *
 * @throws {@link ArchiveKeyError} when the key is not an Ed25519 public key.
 */
export function verifySignature(snapshot: Snapshot, publicKeyPem: string): boolean {
  const key = ed25519PublicKey(publicKeyPem);
  if (snapshot.hash !== snapshotHash(snapshot)) return false;
  return checkSignature(snapshot, key, fingerprintOf(key)) === 'ok';
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

const dayFileName = /^(\d{4}-\d{2}-\d{2})\.json$/;
/** Temp files {@link writeArchivedSnapshot} creates before linking; left over only after a crash. */
const tempFileName = /^\.\d{4}-\d{2}-\d{2}\.json\.\d+\.[0-9a-f]+\.tmp$/;
const datePrefix = /^(\d{4}-\d{2}-\d{2})/;

function isCalendarDate(date: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return false;
  const t = Date.parse(`${date}T00:00:00Z`);
  return Number.isFinite(t) && new Date(t).toISOString().slice(0, 10) === date;
}

function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/**
 * Largest archive day file vigil reads or writes: 16 MiB. A day of 500 controls is about 0.5 MB;
 * the cap keeps a planted or runaway file from filling the daemon's memory.
 */
export const MAX_ARCHIVE_FILE_BYTES = 16 * 1024 * 1024;

// fatal: bytes that are not UTF-8 are refused, not replaced; ignoreBOM: a BOM is kept, so such a file is not the bytes vigil writes.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Reads one archive day file the safe way, on every read path (day close, the API, verify-archive,
 * rebuild): `lstat` first, so a symlink or a special file is refused without being opened; then
 * `O_NOFOLLOW | O_NONBLOCK` (a symlink swapped in meanwhile fails with ELOOP, a FIFO never blocks
 * the open) and `fstat` on the open descriptor — regular files only, at most
 * {@link MAX_ARCHIVE_FILE_BYTES}, also while reading (a file that grows is cut off and refused).
 * Undefined when the file does not exist.
 *
 * @throws {@link ArchiveUnsafeFileError} for a symlink, a non-regular file or an oversized one.
 * @throws {@link ArchiveCorruptError} when the bytes are not UTF-8.
 */
async function readDayFile(file: string): Promise<string | undefined> {
  let st;
  try {
    st = await lstat(file);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  if (st.isSymbolicLink()) throw new ArchiveUnsafeFileError(file, 'symlink');
  if (!st.isFile()) throw new ArchiveUnsafeFileError(file, 'not-regular');
  if (st.size > MAX_ARCHIVE_FILE_BYTES) throw new ArchiveUnsafeFileError(file, 'too-large');
  let fh;
  try {
    fh = await open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new ArchiveUnsafeFileError(file, 'symlink', { cause: err });
    // ENXIO: a unix socket swapped in after the lstat.
    if (code === 'ENXIO') throw new ArchiveUnsafeFileError(file, 'not-regular', { cause: err });
    throw err;
  }
  try {
    const fst = await fh.stat();
    if (!fst.isFile()) throw new ArchiveUnsafeFileError(file, 'not-regular');
    if (fst.size > MAX_ARCHIVE_FILE_BYTES) throw new ArchiveUnsafeFileError(file, 'too-large');
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(1 << 20, MAX_ARCHIVE_FILE_BYTES + 1 - total));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > MAX_ARCHIVE_FILE_BYTES) throw new ArchiveUnsafeFileError(file, 'too-large');
      chunks.push(buf.subarray(0, bytesRead));
    }
    try {
      return utf8.decode(Buffer.concat(chunks, total));
    } catch (err) {
      throw new ArchiveCorruptError(file, { cause: err });
    }
  } finally {
    await fh.close();
  }
}

/** One archived day. */
export interface ArchiveEntry {
  /** The day, YYYY-MM-DD (from the file name). */
  date: string;
  /** Path of the file, `<dir>/<date>.json`. */
  path: string;
}

/**
 * The day files of the archive (`YYYY-MM-DD.json` naming a real calendar day), oldest first.
 * Other files are not listed. A missing directory is an empty archive. The listing follows no
 * link and opens no file: an entry that is a symlink or a FIFO is listed, and refused by whatever
 * reads it ({@link ArchiveUnsafeFileError}), so verify-archive reports it at its day instead of
 * calling the day missing.
 */
export async function listArchive(dir: string): Promise<ArchiveEntry[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return [];
    throw err;
  }
  const out: ArchiveEntry[] = [];
  for (const name of names) {
    const date = dayFileName.exec(name)?.[1];
    if (date !== undefined && isCalendarDate(date)) out.push({ date, path: join(dir, name) });
  }
  return out.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
}

/**
 * The exact bytes (UTF-8 text) of the archived file for `date`, e.g. to attach to an email;
 * undefined when the day is not archived or `date` is not a YYYY-MM-DD calendar day. Read safely
 * (no symlink, no FIFO, size cap) but not checked: use {@link readArchivedSnapshot} or
 * {@link checkSnapshotText} before serving it.
 *
 * @throws {@link ArchiveUnsafeFileError} when the day file is a symlink, not a regular file, or too large.
 */
export async function readArchiveText(dir: string, date: string): Promise<string | undefined> {
  if (!isCalendarDate(date)) return undefined;
  return readDayFile(join(dir, `${date}.json`));
}

/**
 * The exact bytes vigil writes for a snapshot (archive file, Redis copy, email attachment):
 * pretty-printed JSON, 2 spaces, keys in schema order, and a newline.
 *
 * @throws the schema's error when `snapshot` is not a snapshot.
 */
export function snapshotFileText(snapshot: Snapshot): string {
  return fileText(Snapshot.parse(snapshot));
}

/** {@link snapshotFileText} of a snapshot that is already the output of `Snapshot.parse` (keys in schema order). */
function fileText(parsed: Snapshot): string {
  return `${JSON.stringify(parsed, null, 2)}\n`;
}

/** Why a stored snapshot failed {@link checkSnapshotText}. */
export type SnapshotCheckFailure =
  /** Not JSON. */
  | 'not-json'
  /** JSON, but not a vigil snapshot. */
  | 'schema'
  /** A snapshot of another day than the one it is stored under. */
  | 'date'
  /** Its `hash` is not the SHA-256 of its canonical body: it was edited. */
  | 'hash'
  /** Its chain fields do not hold together (prevHash, diff.since). */
  | 'chain'
  /** The bytes are not the ones vigil writes for this snapshot (e.g. a duplicated key another JSON parser would read differently). */
  | 'not-canonical'
  /** A signing key is configured and the snapshot carries no signature. */
  | 'unsigned'
  /** A signing key is configured and the signature does not verify with its public key. */
  | 'bad-signature'
  /** A signing key is configured and the snapshot names another key in `signedBy`. */
  | 'other-key';

/** Result of {@link checkSnapshotText}. */
export type SnapshotCheck = { ok: true; snapshot: Snapshot } | { ok: false; reason: SnapshotCheckFailure; detail: string };

/** What a stored snapshot must be, for {@link checkSnapshotText}. */
export interface SnapshotExpectation {
  /** The day it is stored under. */
  date: string;
  /** Ed25519 public key (SPKI PEM, or the private key PEM it is derived from). When given, the snapshot must carry a valid signature by it. */
  publicKeyPem?: string;
}

/**
 * Re-checks a stored snapshot (Redis or archive) before it is served, mailed or counted: it parses
 * and matches the schema; it is the snapshot of `date`; its `hash` is the SHA-256 of its canonical
 * JSON body ({@link snapshotHash}); its chain fields are sane (`prevHash` and `diff.since` both set
 * or both null, `since` before `date`, `prevHash` not its own hash); the text is byte for byte what
 * vigil writes for it ({@link snapshotFileText}), so no other parser can read it differently; and,
 * with `publicKeyPem`, it carries a signature by that key that verifies over `hash`.
 *
 * Without a key this proves integrity and order, not authorship: anyone who can write Redis or
 * the archive can compute a hash.
 *
 * @throws {@link ArchiveKeyError} when `publicKeyPem` is not an Ed25519 key.
 */
export function checkSnapshotText(text: string, expect: SnapshotExpectation): SnapshotCheck {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not-json', detail: 'the stored snapshot is not JSON' };
  }
  const parsed = Snapshot.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    return { ok: false, reason: 'schema', detail: `the stored snapshot is not a vigil snapshot (${issue?.message ?? 'schema mismatch'}${where})` };
  }
  const s = parsed.data;
  if (s.date !== expect.date) return { ok: false, reason: 'date', detail: `the snapshot stored for ${expect.date} is dated ${s.date}` };
  const recomputed = snapshotHash(s);
  if (s.hash !== recomputed)
    return { ok: false, reason: 'hash', detail: `the contents do not match the hash (recorded ${s.hash.slice(0, 12)}…, recomputed ${recomputed.slice(0, 12)}…)` };
  if ((s.prevHash === null) !== (s.diff.since === null) || (s.diff.since !== null && s.diff.since >= s.date) || s.prevHash === s.hash)
    return { ok: false, reason: 'chain', detail: 'the chain fields do not hold together (prevHash, diff.since)' };
  if (text !== fileText(s)) return { ok: false, reason: 'not-canonical', detail: 'the stored bytes are not the ones vigil writes for this snapshot' };
  if (expect.publicKeyPem !== undefined) {
    const key = ed25519PublicKey(expect.publicKeyPem);
    const fingerprint = fingerprintOf(key);
    const sig = checkSignature(s, key, fingerprint);
    if (sig === 'unsigned') return { ok: false, reason: 'unsigned', detail: 'a signing key is configured and the snapshot carries no signature' };
    if (sig === 'other-key') return { ok: false, reason: 'other-key', detail: `the snapshot is signed by key ${s.signedBy ?? ''}, not ${fingerprint}` };
    if (sig === 'bad-signature') return { ok: false, reason: 'bad-signature', detail: `the signature does not verify with key ${fingerprint}` };
  }
  return { ok: true, snapshot: s };
}

/**
 * The archived snapshot for `date`, checked to be a snapshot of that day whose `hash` matches
 * its body; undefined when the day is not archived or `date` is not a YYYY-MM-DD calendar day.
 * Signatures and the chain are not checked here (see {@link verifyArchive}).
 *
 * @throws {@link ArchiveCorruptError} when the file exists but is not an intact snapshot of that day.
 * @throws {@link ArchiveUnsafeFileError} when the day file is a symlink, not a regular file, or too large.
 */
export async function readArchivedSnapshot(dir: string, date: string): Promise<Snapshot | undefined> {
  const text = await readArchiveText(dir, date);
  if (text === undefined) return undefined;
  const file = join(dir, `${date}.json`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ArchiveCorruptError(file, { cause: err });
  }
  const parsed = Snapshot.safeParse(json);
  if (!parsed.success) throw new ArchiveCorruptError(file, { cause: parsed.error });
  if (parsed.data.date !== date || parsed.data.hash !== snapshotHash(parsed.data)) throw new ArchiveCorruptError(file);
  return parsed.data;
}

/** The recorded `hash` of an archived file's JSON, without further checks; undefined if it has none. */
function recordedHash(text: string): string | undefined {
  try {
    const json: unknown = JSON.parse(text);
    if (typeof json === 'object' && json !== null && 'hash' in json && typeof json.hash === 'string') return json.hash;
  } catch {
    // not JSON: no hash
  }
  return undefined;
}

function existingOutcome(file: string, text: string, snapshot: Snapshot): 'exists' {
  const existingHash = recordedHash(text);
  if (existingHash === snapshot.hash) return 'exists';
  throw new ArchiveConflictError({ file, date: snapshot.date, existingHash, hash: snapshot.hash });
}

async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    // Some platforms and filesystems cannot open or fsync a directory; the data itself was synced.
    if (!['EISDIR', 'EINVAL', 'EPERM', 'EACCES', 'ENOTSUP'].includes(errorCode(err) ?? '')) throw err;
  } finally {
    await fh?.close();
  }
}

/**
 * Archives a day's snapshot as `<dir>/<date>.json`: pretty-printed JSON (2 spaces, keys in
 * schema order) and a trailing newline, file mode 0444. The directory is created (mode 0700)
 * when missing.
 *
 * Append-only and idempotent:
 * - the day is already archived with the same `hash` → `'exists'` (signature fields do not count:
 *   the hash is the snapshot's identity);
 * - already archived with another hash (or an unreadable file) → {@link ArchiveConflictError};
 *   the file is left untouched;
 * - otherwise the snapshot must extend the chain at its end: when the archive is not empty its
 *   date must be the day after the newest archived day and its `prevHash` that day's `hash`;
 *   when it is empty its `prevHash` must be null (this is what {@link verifyArchive} demands,
 *   so the writer never produces an archive that cannot verify) → else {@link ArchiveChainError}.
 *
 * The write is atomic and never clobbers: a temp file in the same directory is written and
 * fsynced, then hard-linked to the final name (`link` fails if the name exists, where `rename`
 * would silently replace a file another replica just wrote), the temp name removed and the
 * directory fsynced.
 *
 * @throws {@link ArchiveInvalidSnapshotError} when the snapshot fails the schema, its hash is wrong,
 *   or its file would be larger than {@link MAX_ARCHIVE_FILE_BYTES}.
 * @throws {@link ArchiveUnsafeFileError} when the day's name is taken by a symlink or a non-regular file.
 */
export async function writeArchivedSnapshot(dir: string, snapshot: Snapshot): Promise<'written' | 'exists'> {
  const parsed = Snapshot.safeParse(snapshot);
  if (!parsed.success || !isCalendarDate(parsed.data.date)) throw new ArchiveInvalidSnapshotError('schema', { cause: parsed.error });
  const s = parsed.data;
  if (s.hash !== snapshotHash(s)) throw new ArchiveInvalidSnapshotError('hash');

  await makeDirectory(dir, 0o700); // not recursive mkdir: it spins for ever under /proc
  const file = join(dir, `${s.date}.json`);
  const text = fileText(s);
  // The readers refuse anything larger: never write a file vigil could not read back.
  if (Buffer.byteLength(text, 'utf8') > MAX_ARCHIVE_FILE_BYTES) throw new ArchiveInvalidSnapshotError('too-large');
  const existing = await readDayFile(file);
  if (existing !== undefined) return existingOutcome(file, existing, s);

  const newest = (await listArchive(dir)).at(-1);
  if (newest === undefined) {
    if (s.prevHash !== null) throw new ArchiveChainError('first-prev-hash', { date: s.date });
  } else {
    if (s.date < newest.date) throw new ArchiveChainError('before-newest', { date: s.date, newest: newest.date });
    if (s.date !== addDays(newest.date, 1)) throw new ArchiveChainError('gap', { date: s.date, newest: newest.date });
    const newestText = await readDayFile(newest.path).catch(() => undefined);
    const newestHash = newestText === undefined ? undefined : recordedHash(newestText);
    if (newestHash === undefined) throw new ArchiveChainError('newest-unreadable', { date: s.date, newest: newest.date });
    if (s.prevHash !== newestHash) throw new ArchiveChainError('prev-hash', { date: s.date, newest: newest.date });
  }

  const tmp = join(dir, `.${s.date}.json.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.chmod(0o444);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await link(tmp, file);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
      // Another writer archived the day between our check and now.
      return existingOutcome(file, (await readDayFile(file)) ?? '', s);
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await fsyncDir(dir);
  return 'written';
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

/** What is wrong at a day of the archive. */
export type ArchiveProblemKind = 'altered' | 'removed' | 'reordered' | 'inserted' | 'unreadable' | 'bad-signature' | 'unsigned';

/** The first problem {@link verifyArchive} found, in date order. */
export interface ArchiveProblem {
  /**
   * The day the problem is at: the file's day, the missing day for `removed`, the date prefix
   * of a stray file (or its whole name when it has none), or `''` when the directory is
   * missing or holds no snapshot.
   */
  date: string;
  kind: ArchiveProblemKind;
  /** One sentence for a human, naming the file(s) involved. */
  detail: string;
}

/** Result of {@link verifyArchive}. */
export interface ArchiveReport {
  ok: boolean;
  /** Number of day files (`YYYY-MM-DD.json`) in the directory. */
  days: number;
  /** The oldest day file's date. */
  first?: string;
  /** The newest day file's date. */
  last?: string;
  /** Fingerprint of the public key signatures were checked with; absent when none was given. */
  keyFingerprint?: string;
  /** The first problem in date order; absent when `ok`. */
  problem?: ArchiveProblem;
}

/** Options of {@link verifyArchive}. */
export interface VerifyArchiveOptions {
  /** Ed25519 public key (SPKI PEM). When given, every snapshot must carry a valid signature by it. Default: signatures not checked. */
  publicKeyPem?: string;
  /**
   * The `prevHash` the first day file must carry: the hash of the day before it, for a period cut
   * out of a longer archive (`vigil export`). Default null: the directory holds the whole chain.
   */
  firstPrevHash?: string | null;
}

type Loaded = { ok: true; snapshot: Snapshot } | { ok: false; problem: ArchiveProblem };

async function loadDay(entry: ArchiveEntry): Promise<Loaded> {
  const name = `${entry.date}.json`;
  let text: string | undefined;
  try {
    text = await readDayFile(entry.path);
  } catch (err) {
    if (err instanceof ArchiveUnsafeFileError) {
      const what = { symlink: 'is a symbolic link', 'not-regular': 'is not a regular file (FIFO, socket, device or directory)', 'too-large': `is larger than ${MAX_ARCHIVE_FILE_BYTES} bytes` }[err.reason];
      return { ok: false, problem: { date: entry.date, kind: 'unreadable', detail: `${name} ${what}: refused, not read` } };
    }
    if (err instanceof ArchiveCorruptError) return { ok: false, problem: { date: entry.date, kind: 'unreadable', detail: `${name} is not UTF-8 text` } };
    return { ok: false, problem: { date: entry.date, kind: 'unreadable', detail: `${name} cannot be read (${errorCode(err) ?? 'error'})` } };
  }
  if (text === undefined) return { ok: false, problem: { date: entry.date, kind: 'unreadable', detail: `${name} disappeared while the archive was read` } };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, problem: { date: entry.date, kind: 'unreadable', detail: `${name} is not valid JSON` } };
  }
  const parsed = Snapshot.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    return {
      ok: false,
      problem: { date: entry.date, kind: 'altered', detail: `${name} is not a vigil snapshot (${issue?.message ?? 'schema mismatch'}${where})` },
    };
  }
  const snapshot = parsed.data;
  const recomputed = snapshotHash(snapshot);
  if (snapshot.hash !== recomputed)
    return {
      ok: false,
      problem: {
        date: entry.date,
        kind: 'altered',
        detail: `the file's contents do not match its hash (${name}: recorded ${snapshot.hash.slice(0, 12)}…, recomputed ${recomputed.slice(0, 12)}…)`,
      },
    };
  if (snapshot.date !== entry.date)
    return { ok: false, problem: { date: entry.date, kind: 'reordered', detail: `${name} holds the snapshot of ${snapshot.date}` } };
  return { ok: true, snapshot };
}

/**
 * Names in the archive directory that are neither day files nor our temp files, with their sort
 * key: the date their name starts with, or '' (before every day) when it starts with none.
 */
function strayFiles(names: string[]): { key: string; name: string }[] {
  return names
    .filter((name) => {
      if (tempFileName.test(name)) return false;
      // A filesystem's own recovery directory when the archive is a mount root.
      if (name === 'lost+found') return false;
      const date = dayFileName.exec(name)?.[1];
      return date === undefined || !isCalendarDate(date);
    })
    .map((name) => ({ key: datePrefix.exec(name)?.[1] ?? '', name }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

async function verifyChain(dir: string, opts: VerifyArchiveOptions, collect?: Snapshot[]): Promise<ArchiveReport> {
  const key = opts.publicKeyPem === undefined ? undefined : ed25519PublicKey(opts.publicKeyPem);
  const fingerprint = key === undefined ? undefined : fingerprintOf(key);
  const base = fingerprint === undefined ? {} : { keyFingerprint: fingerprint };

  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const detail = errorCode(err) === 'ENOENT' ? `the archive directory ${dir} does not exist` : `the archive directory ${dir} cannot be read (${errorCode(err) ?? 'error'})`;
    return { ok: false, days: 0, ...base, problem: { date: '', kind: 'unreadable', detail } };
  }
  const entries = await listArchive(dir);
  const first = entries[0]?.date;
  const last = entries.at(-1)?.date;
  const summary = { days: entries.length, ...(first === undefined ? {} : { first }), ...(last === undefined ? {} : { last }), ...base };
  if (entries.length === 0)
    return { ok: false, ...summary, problem: { date: '', kind: 'removed', detail: `the archive directory ${dir} holds no snapshot` } };

  const dayProblem = await verifyDays(entries, key, fingerprint, collect, opts.firstPrevHash ?? null);
  const stray = strayFiles(names)[0];
  const strayProblem: ArchiveProblem | undefined = stray && {
    date: stray.key === '' ? stray.name : stray.key,
    kind: 'inserted',
    detail: `${stray.name} is not a daily snapshot file (the archive holds only YYYY-MM-DD.json files)`,
  };
  // On the same date the day file's own problem is reported first.
  const problem = stray && strayProblem && (!dayProblem || stray.key < dayProblem.date) ? strayProblem : dayProblem;
  return problem ? { ok: false, ...summary, problem } : { ok: true, ...summary };
}

/**
 * Walks the day files in date order; returns the first problem. Each file is loaded once and
 * compared with its successor (the successor's prevHash tells whether this file belongs in
 * the chain), so at most two snapshots are in memory unless `collect` asks for all of them.
 */
async function verifyDays(
  entries: ArchiveEntry[],
  key: KeyObject | undefined,
  fingerprint: string | undefined,
  collect: Snapshot[] | undefined,
  firstPrevHash: string | null = null,
): Promise<ArchiveProblem | undefined> {
  let prev: Snapshot | undefined;
  let current = entries[0] ? await loadDay(entries[0]) : undefined;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (!current) break;
    if (!current.ok) return current.problem;
    const s = current.snapshot;
    const name = `${entry.date}.json`;

    if (prev) {
      const expected = addDays(prev.date, 1);
      if (s.date !== expected)
        return {
          date: expected,
          kind: 'removed',
          detail: `no snapshot for ${expected}: the archive jumps from ${prev.date} to ${s.date}`,
        };
      if (s.prevHash !== prev.hash)
        // Only reached when the previous file's look-ahead was skipped; kept as a backstop.
        return { date: s.date, kind: 'altered', detail: `${name}'s prevHash is not the hash of ${prev.date}` };
    }

    const nextEntry = entries[i + 1];
    const next = nextEntry ? await loadDay(nextEntry) : undefined;
    // Look ahead: when the next day is intact and follows this one, its prevHash says whether
    // this file is the snapshot the chain was built on.
    if (next?.ok && next.snapshot.date === addDays(s.date, 1) && next.snapshot.prevHash !== s.hash) {
      const before = prev ? prev.hash : firstPrevHash;
      if (next.snapshot.prevHash === before)
        return {
          date: s.date,
          kind: 'inserted',
          detail: `${name} is not part of the chain: ${next.snapshot.date}'s prevHash skips over it to ${prev ? prev.date : 'the start of the archive'}`,
        };
      return {
        date: s.date,
        kind: 'altered',
        detail: `${name} is not the snapshot ${next.snapshot.date} was chained to (its hash was recomputed after the fact)`,
      };
    }
    if (!prev && s.prevHash !== firstPrevHash) {
      const missing = addDays(s.date, -1);
      return {
        date: missing,
        kind: 'removed',
        detail:
          firstPrevHash === null
            ? `the first archived day ${s.date} chains to an earlier snapshot that is not in the archive`
            : `the first day ${s.date}'s prevHash is not ${firstPrevHash.slice(0, 12)}…, the hash recorded for ${missing} where the period starts`,
      };
    }

    if (key && fingerprint) {
      const sig = checkSignature(s, key, fingerprint);
      if (sig === 'unsigned') return { date: s.date, kind: 'unsigned', detail: `${name} carries no signature` };
      if (sig === 'other-key')
        return { date: s.date, kind: 'bad-signature', detail: `${name} is signed by key ${s.signedBy ?? ''}, not ${fingerprint}` };
      if (sig === 'bad-signature')
        return { date: s.date, kind: 'bad-signature', detail: `${name}'s signature does not verify with key ${fingerprint}` };
    }

    collect?.push(s);
    prev = s;
    current = next;
  }
  return undefined;
}

/**
 * Re-checks the whole archive offline and names the **first** problem in date order.
 *
 * Rules, checked for each `YYYY-MM-DD.json` file from the oldest:
 * 1. it reads and parses as JSON — else `unreadable`; it matches the Snapshot schema — else `altered`;
 * 2. its `hash` is the SHA-256 of its canonical body — else `altered` (any edit of a file);
 * 3. its `date` is the day in its name — else `reordered` (a file holding another day's
 *    snapshot, e.g. two days' files swapped: reported at the earlier one);
 * 4. it is the calendar day after the previous file — else `removed`, at the first missing day;
 * 5. the next file's `prevHash` is this file's hash. When it instead skips this file (equals the
 *    previous file's hash, or null for the first file) this file is `inserted`; when it points
 *    elsewhere, this file is `altered` (replaced by a snapshot whose hash was recomputed);
 * 6. the first file's `prevHash` is null — else `removed` (the days before it are missing),
 *    at the day before it;
 * 7. with `publicKeyPem`, the snapshot carries a signature (`unsigned` otherwise) by that key
 *    (`signedBy`, when present, is its fingerprint) that verifies over `hash` (`bad-signature`
 *    otherwise). Only signatures catch a forged day appended at the end with a correctly
 *    recomputed hash and prevHash, or a chain rewritten from some day onwards: without a key the
 *    report proves the days' order and that no file changed after its successor was chained to
 *    it, not who wrote them.
 *
 * Every day file is read safely: a symlink, a FIFO or another non-regular file, or a file over
 * {@link MAX_ARCHIVE_FILE_BYTES}, is `unreadable` at its day, never followed and never waited on.
 *
 * Any other entry in the directory is `inserted`, at the date its name starts with (so
 * `2026-11-03-copy.json` is reported at 2026-11-03, after that day's own problem if any); one whose
 * name starts with no date comes before every day and is reported under its whole name. Ignored: temp files {@link writeArchivedSnapshot}
 * leaves after a crash (`.<date>.json.<pid>.<hex>.tmp`) and a `lost+found` directory.
 *
 * A missing directory (`unreadable`) or one holding no day file (`removed`) is not ok, with
 * `date: ''`.
 *
 * @throws {@link ArchiveKeyError} when `publicKeyPem` is not an Ed25519 public key.
 */
export async function verifyArchive(dir: string, opts: VerifyArchiveOptions = {}): Promise<ArchiveReport> {
  return verifyChain(dir, opts);
}

/**
 * The report as one line, e.g.
 * `archive OK: 45 days, 2026-10-08 … 2026-11-21, hash chain intact (signatures checked with key <fp>)` or
 * (without a key, which proves order, not authorship)
 * `archive OK: 45 days, 2026-10-08 … 2026-11-21, hash chain intact (no public key given: this proves the order of the days, not who wrote them; …)` or
 * `archive FAILED at 2026-11-03: altered — the file's contents do not match its hash (…)`.
 */
export function formatArchiveReport(report: ArchiveReport): string {
  if (report.ok) {
    const days = `${report.days} ${report.days === 1 ? 'day' : 'days'}`;
    const signatures =
      report.keyFingerprint === undefined
        ? 'no public key given: this proves the order of the days, not who wrote them; pass --public-key to check authorship'
        : `signatures checked with key ${report.keyFingerprint}`;
    return `archive OK: ${days}, ${report.first ?? '?'} … ${report.last ?? '?'}, hash chain intact (${signatures})`;
  }
  const p = report.problem;
  if (!p) return 'archive FAILED';
  return `archive FAILED${p.date === '' ? '' : ` at ${p.date}`}: ${p.kind} — ${p.detail}`;
}

/**
 * The archived snapshots, oldest first, for `vigil rebuild` — only once the whole archive
 * verifies (same rules and options as {@link verifyArchive}); the snapshots returned are the
 * ones that were verified, not a second read.
 *
 * @throws {@link ArchiveChainError} (`not-verified`, message: the one-line report, `report` attached)
 *   when the archive does not verify, including when it is empty or missing.
 */
export async function rebuildInputs(dir: string, opts: VerifyArchiveOptions = {}): Promise<Snapshot[]> {
  const snapshots: Snapshot[] = [];
  const report = await verifyChain(dir, opts, snapshots);
  if (!report.ok) throw new ArchiveChainError('not-verified', { report });
  return snapshots;
}
