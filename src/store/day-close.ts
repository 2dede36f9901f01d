import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import { addDays, daysBetween, dayOf, lastClosableDay, zonedInstant } from '../posture/days.js';
import { buildSnapshot, type ProbeCadence } from '../posture/snapshot.js';
import { Snapshot, snapshotHash } from '../posture/snapshot-types.js';
import { splitByConfiguration, type ScheduledUnit } from '../probe/units.js';
import {
  ArchiveChainError,
  ArchiveConflictError,
  ArchiveCorruptError,
  ArchiveUnsafeFileError,
  checkSnapshotText,
  publicKeyFromPrivate,
  readArchiveText,
  signHash,
  snapshotFileText,
  writeArchivedSnapshot,
  type ArchiveUnsafeReason,
  type SnapshotCheckFailure,
} from './archive.js';
import type { StateStore } from './state.js';

/**
 * How long Redis keeps a published snapshot's text. Older days are read from the archive, so
 * Redis does not grow with history (500 controls ≈ 0.5 MB a day).
 */
const SNAPSHOT_TTL_SECONDS = 40 * 86_400;

/**
 * Lease of the day-close lock, renewed every third of it while a close runs: a crashed closer's
 * lock lapses within 15 s (the next replica then closes the day, or the days it was catching up),
 * however long a live close takes.
 */
const LOCK_MS = 15_000;

/** One integrity failure of one stored snapshot is logged and counted at most this often (reads repeat on every request). */
const FAILURE_REPORT_INTERVAL_MS = 60_000;

/** Where a stored snapshot was read from. */
export type SnapshotSource = 'redis' | 'archive';

/**
 * Why {@link SnapshotIntegrityError} was thrown: the check that failed ({@link checkSnapshotText}),
 * an unsafe archive file ({@link ArchiveUnsafeFileError}), or
 * - `not-ours` — at day close, the archive holds a file for the day that is not the snapshot vigil
 *   builds for it (or a file for a later day, which vigil never writes ahead of its record);
 * - `archive-mismatch` — the Redis copy of a published day is not byte-equal to its archive file;
 * - `not-archived` — Redis holds a published day whose archive file is missing.
 */
export type SnapshotIntegrityReason = SnapshotCheckFailure | ArchiveUnsafeReason | 'not-ours' | 'archive-mismatch' | 'not-archived';

/**
 * A stored snapshot (Redis or the archive) failed its integrity check, so it is withheld: not
 * served, not mailed, not counted, not chained to. Someone who can write Redis or the archive
 * directory changed it, or planted it. Not retryable until an operator removes it: a forged Redis
 * key (`<prefix>:snapshot:<day>`) can be deleted, and the day is then read from the archive; a
 * planted archive file must be moved out of the directory, and day close then builds the day itself.
 */
export class SnapshotIntegrityError extends Error {
  override name = 'SnapshotIntegrityError';
  /** The day of the refused snapshot. */
  readonly date: string;
  readonly source: SnapshotSource;
  readonly reason: SnapshotIntegrityReason;
  constructor(details: { date: string; source: SnapshotSource; reason: SnapshotIntegrityReason }, options?: { cause?: unknown }) {
    super(
      `the stored snapshot of ${details.date} (${details.source}) fails its integrity check (${details.reason}) and is withheld; see the vigil log`,
      { cause: options?.cause },
    );
    this.date = details.date;
    this.source = details.source;
    this.reason = details.reason;
  }
}

/**
 * Closing a day failed for a reason other than integrity (an archive directory that cannot be
 * written, Redis lost mid-close…): nothing was published, and the next attempt retries. The message
 * names the day and archive.dir — never the temporary file the archive writer was creating.
 */
export class DayCloseError extends Error {
  override name = 'DayCloseError';
  /** The day that could not be closed. */
  readonly day: string;
  /** archive.dir (absolute). */
  readonly archiveDir: string;
  /** The errno code of a file-system failure (EACCES, EPERM, ENOSPC, ENOTDIR, EROFS…), when that was the cause. */
  readonly code: string | undefined;
  constructor(details: { day: string; archiveDir: string }, options: { cause: unknown }) {
    const cause = options.cause;
    const code = typeof cause === 'object' && cause !== null && 'code' in cause && typeof cause.code === 'string' ? cause.code : undefined;
    // Only a file-system error has a path (a socket error has an address): it is the one to say the directory for.
    const fsError = typeof cause === 'object' && cause !== null && 'path' in cause && typeof cause.path === 'string';
    const syscall = fsError && 'syscall' in cause && typeof cause.syscall === 'string' ? cause.syscall : undefined;
    // A file-system error's message quotes the path it failed on (a temporary file): say the directory instead.
    const why =
      code && syscall
        ? `cannot write the archive directory ${details.archiveDir} (archive.dir): ${code} on ${syscall}`
        : `${cause instanceof Error ? cause.message : String(cause)} (archive.dir ${details.archiveDir})`;
    super(`closing ${details.day} failed: ${why}`, { cause });
    this.day = details.day;
    this.archiveDir = details.archiveDir;
    this.code = code;
  }
}

export interface DayCloserOptions {
  redis: Redis;
  prefix: string;
  loaded: LoadedConfig;
  units: readonly ScheduledUnit[];
  state: StateStore;
  log: Logger;
  /** Called once per newly published snapshot (enqueue the email, etc.). */
  onPublished?: (snapshot: Snapshot, archivedJson: string) => Promise<void>;
  /**
   * Called when a stored snapshot fails its integrity check (after it was logged), at most once a
   * minute per day, source and reason: count it in `vigil_snapshot_integrity_failures_total`.
   */
  onIntegrityFailure?: (failure: { date: string; source: SnapshotSource; reason: SnapshotIntegrityReason }) => void;
}

/** What one close attempt did. */
export type CloseOutcome = { day: string; result: 'closed'; snapshot: Snapshot } | { day: string; result: 'already' } | { day: string; result: 'busy' };

/**
 * Closes calendar days and publishes their snapshots — each day exactly once, in order, across
 * replicas, crashes and downtime. A Redis lock admits one closer at a time; the newest published
 * day (`snapshot-latest`) says what is done. A day's snapshot is written to the archive before
 * it is published in Redis; a closer that crashed in between finds the archived file on its next
 * try and publishes that very file, so the record never forks.
 *
 * Integrity: every snapshot read back — from Redis or the archive, to serve, mail, count or chain
 * the next day to — is re-checked first ({@link checkSnapshotText}: hash over the canonical JSON,
 * chain fields, exact bytes, and the signature when archive.signingKey is set); a Redis copy must
 * also be byte-equal to the day's archive file. One that fails is withheld with a
 * {@link SnapshotIntegrityError}, logged and counted. At day close an archive file that already
 * exists for the day is adopted only when it is byte-equal to the snapshot vigil builds for the
 * day now, or to one this deployment built for it just before writing (a closer that crashed
 * between archiving and publishing while results kept arriving; the hashes it built are kept in
 * Redis, `<prefix>:snapshot-pending:<day>`, for the snapshot TTL), and, with a key, carries our
 * signature. Anything else is refused, and the day is not published until an operator removes
 * the file.
 */
export class DayCloser {
  private readonly keys: {
    snapshot: (day: string) => string;
    pending: (day: string) => string;
    latest: string;
    firstDay: string;
    publishedAt: string;
    lock: string;
  };

  /** Public key of archive.signingKey, when configured: every stored snapshot must carry its signature. */
  private readonly publicKey: string | undefined;

  /** When each integrity failure (`source|day|reason`) was last reported. */
  private readonly reported = new Map<string, number>();

  private sharedWarned = false;

  constructor(private readonly opts: DayCloserOptions) {
    this.publicKey = opts.loaded.secrets.signingKey ? publicKeyFromPrivate(opts.loaded.secrets.signingKey) : undefined;
    const p = opts.prefix;
    this.keys = {
      snapshot: (day) => `${p}:snapshot:${day}`,
      pending: (day) => `${p}:snapshot-pending:${day}`,
      latest: `${p}:snapshot-latest`,
      firstDay: `${p}:first-day`,
      publishedAt: `${p}:snapshot-published-at`,
      lock: `${p}:lock:day-close`,
    };
  }

  /** Remembers the first day vigil recorded on (the record starts there); idempotent. */
  async markFirstDay(now: Date): Promise<void> {
    await this.opts.redis.set(this.keys.firstDay, dayOf(now, this.opts.loaded.config.timezone), 'NX');
  }

  /** Whether archive.signingKey is configured (stored snapshots must carry its signature). */
  get signed(): boolean {
    return this.publicKey !== undefined;
  }

  /**
   * The newest published snapshot, checked.
   *
   * @throws {@link SnapshotIntegrityError} when it fails its integrity check.
   */
  async latest(): Promise<Snapshot | undefined> {
    const day = await this.opts.redis.get(this.keys.latest);
    return day ? this.get(day) : undefined;
  }

  /**
   * The published snapshot of a day, checked.
   *
   * @throws {@link SnapshotIntegrityError} when it fails its integrity check.
   */
  async get(day: string): Promise<Snapshot | undefined> {
    return (await this.read(day))?.snapshot;
  }

  /**
   * The published snapshot of a day, as the exact archived bytes (Redis keeps recent days; older
   * ones come from the archive), checked before it is returned.
   *
   * @throws {@link SnapshotIntegrityError} when it fails its integrity check.
   */
  async getText(day: string): Promise<string | undefined> {
    return (await this.read(day))?.text;
  }

  private async read(day: string): Promise<{ text: string; snapshot: Snapshot } | undefined> {
    const cached = await this.opts.redis.get(this.keys.snapshot(day));
    if (cached !== null) {
      const fromRedis = this.checked(day, 'redis', cached);
      // Redis holds a copy of the archived bytes (the file is written before the day is published):
      // a copy that differs was written by someone else, even with a recomputed hash and no key.
      const archived = await this.readArchive(day);
      if (archived === undefined) throw this.failure(day, 'redis', 'not-archived', 'Redis holds a published day whose archive file is missing');
      if (archived !== cached) throw this.failure(day, 'redis', 'archive-mismatch', 'the Redis copy of the day is not byte-equal to its archive file');
      return fromRedis;
    }
    const latest = await this.opts.redis.get(this.keys.latest);
    // Only days that were published: the archive may hold a file for a day not yet published.
    if (!latest || day > latest) return undefined;
    const text = await this.readArchive(day);
    if (text !== undefined) return this.checked(day, 'archive', text);
    // A published day (from the record's first day on, every day is closed and archived) whose file
    // is gone is an integrity failure, not "no snapshot": the next day would otherwise restart the
    // chain and the streaks with no alarm.
    const first = await this.opts.redis.get(this.keys.firstDay);
    if (first !== null && day >= first) throw this.failure(day, 'archive', 'not-archived', 'a published day has no archive file');
    return undefined;
  }

  /** The archive file of a day, read safely; an unsafe file is an integrity failure. */
  private async readArchive(day: string): Promise<string | undefined> {
    try {
      return await readArchiveText(this.opts.loaded.archiveDir, day);
    } catch (err) {
      if (err instanceof ArchiveUnsafeFileError) throw this.failure(day, 'archive', err.reason, err.message, err);
      if (err instanceof ArchiveCorruptError) throw this.failure(day, 'archive', 'not-json', 'the archived file is not UTF-8 text', err);
      throw err;
    }
  }

  private checked(day: string, source: SnapshotSource, text: string): { text: string; snapshot: Snapshot } {
    const check = checkSnapshotText(text, { date: day, ...(this.publicKey ? { publicKeyPem: this.publicKey } : {}) });
    if (!check.ok) throw this.failure(day, source, check.reason, check.detail);
    return { text, snapshot: check.snapshot };
  }

  /** Logs and counts an integrity failure (at most once a minute for the same one) and returns the error to throw. */
  private failure(day: string, source: SnapshotSource, reason: SnapshotIntegrityReason, detail: string, cause?: unknown): SnapshotIntegrityError {
    const key = `${source}|${day}|${reason}`;
    const now = Date.now();
    const last = this.reported.get(key);
    if (last === undefined || now - last >= FAILURE_REPORT_INTERVAL_MS) {
      if (this.reported.size > 1000) this.reported.clear();
      this.reported.set(key, now);
      this.opts.log.error({ day, source, reason, detail }, 'stored snapshot fails its integrity check: withheld');
      this.opts.onIntegrityFailure?.({ date: day, source, reason });
    }
    return new SnapshotIntegrityError({ date: day, source, reason }, { cause });
  }

  /**
   * Logs, once at start, that without archive.signingKey the archive proves the order of the
   * days, not who wrote them.
   */
  warnIfUnsigned(): void {
    if (this.publicKey) return;
    this.opts.log.warn(
      { archiveDir: this.opts.loaded.archiveDir },
      'no archive.signingKey configured: the archive proves the order of the days, not who wrote them; configure archive.signingKey',
    );
  }

  /**
   * Logs an error, once, when several replicas share the archive (and Redis) without
   * archive.signingKey: any replica's host can then plant a day that the others cannot tell from
   * their own. `replicas` is how many vigil processes are live, e.g. the probe workers on the queue.
   */
  warnIfSharedUnsigned(replicas: number): void {
    if (this.publicKey || this.sharedWarned || replicas <= 1) return;
    this.sharedWarned = true;
    this.opts.log.error(
      { archiveDir: this.opts.loaded.archiveDir, replicas },
      'several replicas share archive.dir and no archive.signingKey is configured: the archive proves order, not authorship; configure archive.signingKey',
    );
  }

  /** Unix seconds of the last publication; undefined before the first one (no sample, never 0). */
  async publishedAt(): Promise<number | undefined> {
    const v = await this.opts.redis.get(this.keys.publishedAt);
    const at = v ? Number(v) : NaN;
    return Number.isFinite(at) && at > 0 ? at : undefined;
  }

  /**
   * When a restored day counts as published: the instant it became closable (dayClose.at on the
   * next day, in the configured time zone). The real publication was at that instant or later, so
   * a restored record never looks fresher than it was, and the next day is overdue on time.
   */
  private restoredPublishedAt(day: string): number {
    const { timezone, dayClose } = this.opts.loaded.config;
    return Math.floor(zonedInstant(addDays(day, 1), dayClose.at, timezone).getTime() / 1000);
  }

  /**
   * Sets the publication time from the newest published snapshot (checked) when Redis holds days
   * but no publication time — a Redis rebuilt by an older vigil, or restored by hand — so the
   * snapshot-age metric continues where the record does. Nothing when no day was ever published:
   * the metric then has no sample (a fresh install is not overdue). Idempotent; returns the value.
   *
   * @throws {@link SnapshotIntegrityError} when the newest snapshot fails its check (it is not adopted).
   */
  async restorePublishedAt(): Promise<number | undefined> {
    const known = await this.publishedAt();
    if (known !== undefined) return known;
    const latest = await this.latest();
    if (!latest) return undefined;
    await this.opts.redis.set(this.keys.publishedAt, String(this.restoredPublishedAt(latest.date)), 'NX');
    return this.publishedAt();
  }

  /**
   * Closes every day that is due at `now` and not yet closed, oldest first: after downtime, each
   * missed day is closed in turn (with no measurements it is not green). `through` caps the last day.
   */
  async closeDueDays(now: Date, through?: string): Promise<CloseOutcome[]> {
    const { timezone, dayClose } = this.opts.loaded.config;
    let last = lastClosableDay(now, timezone, dayClose.at);
    if (through && through < last) last = through;
    const latest = await this.opts.redis.get(this.keys.latest);
    const first = latest ? addDays(latest, 1) : await this.opts.redis.get(this.keys.firstDay);
    if (!first || first > last) return [];
    const out: CloseOutcome[] = [];
    for (let day = first; daysBetween(day, last) >= 0; day = addDays(day, 1)) {
      let outcome: CloseOutcome;
      try {
        outcome = await this.closeDay(day);
      } catch (err) {
        // Integrity failures carry their day already (and callers tell them apart); anything else is named here.
        if (err instanceof SnapshotIntegrityError || err instanceof DayCloseError) throw err;
        throw new DayCloseError({ day, archiveDir: this.opts.loaded.archiveDir }, { cause: err });
      }
      out.push(outcome);
      if (outcome.result === 'busy') break;
    }
    return out;
  }

  /**
   * Closes one day; the day before it must already be closed (or be before the record starts).
   *
   * @throws {@link SnapshotIntegrityError} when the previous day's snapshot fails its check, or the
   *   archive holds a file for this day that is not vigil's (see the class doc): nothing is published.
   */
  async closeDay(day: string): Promise<CloseOutcome> {
    const { redis, loaded, log } = this.opts;
    const token = randomBytes(8).toString('hex');
    if ((await redis.set(this.keys.lock, token, 'PX', LOCK_MS, 'NX')) !== 'OK') return { day, result: 'busy' };
    const renew = setInterval(() => {
      redis
        .eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end", 1, this.keys.lock, token, String(LOCK_MS))
        .catch(() => undefined);
    }, LOCK_MS / 3);
    renew.unref();
    try {
      const latestDay = await redis.get(this.keys.latest);
      if (latestDay && latestDay >= day) return { day, result: 'already' };
      if (latestDay && addDays(latestDay, 1) !== day) throw new Error(`cannot close ${day} before ${addDays(latestDay, 1)}: days close in order`);
      // Checked: the streaks and prevHash of the new day are built on it.
      const prev = latestDay ? await this.get(latestDay) : undefined;

      const built = await this.build(day, prev);
      let text = await this.readArchive(day);
      const existed = text !== undefined;
      if (text === undefined) {
        // Remembered before the file exists, so that a retry after a crash right after the write
        // can recognise the file as this deployment's own even if results arrived meanwhile. Kept
        // (with the snapshot's TTL) after publishing too: a crash can also undo the publication.
        await redis.multi().sadd(this.keys.pending(day), built.hash).expire(this.keys.pending(day), SNAPSHOT_TTL_SECONDS).exec();
        try {
          await writeArchivedSnapshot(loaded.archiveDir, built);
        } catch (err) {
          // vigil never archives ahead of its record or off its chain: files it did not write are in the way.
          if (err instanceof ArchiveChainError) throw this.failure(day, 'archive', 'not-ours', `the archive does not end where vigil's record does: ${err.message}`, err);
          // Another writer got there first: what it wrote is judged like any existing file below.
          if (!(err instanceof ArchiveConflictError)) throw err;
        }
        text = await this.readArchive(day);
        if (text === undefined) throw new Error(`the archived snapshot of ${day} disappeared right after it was written`);
      }
      const snapshot = await this.adoptable(day, text, built, prev);
      if (existed) log.warn({ day, hash: snapshot.hash }, 'publishing the snapshot a previous attempt archived');
      // `latest` only moves forward, even if this closer outlived its lock.
      const published = await redis
        .multi()
        .set(this.keys.snapshot(day), text, 'EX', SNAPSHOT_TTL_SECONDS)
        .eval("local cur = redis.call('GET', KEYS[1]) if (not cur) or cur < ARGV[1] then redis.call('SET', KEYS[1], ARGV[1]) end return 1", 1, this.keys.latest, day)
        .set(this.keys.publishedAt, String(Math.floor(Date.now() / 1000)))
        .exec();
      if (!published || published.some(([err]) => err)) throw new Error(`publishing the snapshot of ${day} failed`);
      log.info({ day, hash: snapshot.hash, green: snapshot.counts.green, red: snapshot.counts.red, unknown: snapshot.counts.unknown }, 'day closed');
      await this.opts.onPublished?.(snapshot, text);
      return { day, result: 'closed', snapshot };
    } finally {
      clearInterval(renew);
      // Release only our own lock.
      await redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end", 1, this.keys.lock, token);
    }
  }

  /** The snapshot of `day` built from its ledger, hashed, and signed when a key is configured. Deterministic: same ledger, same bytes. */
  private async build(day: string, prev: Snapshot | undefined): Promise<Snapshot> {
    const { loaded } = this.opts;
    const probes = new Map<string, ProbeCadence>();
    for (const [id, configured] of loaded.probes) {
      const mine = this.opts.units.filter((u) => u.configured.probe.id === id);
      // Targets on a schedule of their own are listed with it: the snapshot states each one's cadence and staleness truthfully.
      const own = mine.filter((u) => u.schedule !== configured.schedule);
      probes.set(id, {
        id,
        schedule: configured.schedule,
        intervalMs: configured.intervalMs,
        targets: mine.map((u) => u.target.name),
        ...(own.length > 0 && { targetCadence: new Map(own.map((u) => [u.target.name, { schedule: u.schedule, intervalMs: u.intervalMs }])) }),
      });
    }
    const body = buildSnapshot({
      date: day,
      timezone: loaded.config.timezone,
      minGreenDays: loaded.config.trust.minGreenDays,
      minCoverage: loaded.config.days.minCoverage,
      exceptions: loaded.config.exceptions,
      ...splitByConfiguration(loaded, this.opts.units),
      probes,
      ledger: await this.opts.state.dayLedger(day),
      prev,
    });
    const hash = snapshotHash(body);
    // Parsed so its keys are in schema order, as the archive writes them. Ed25519 signatures are
    // deterministic, so a rebuild is byte-equal in signed mode too.
    return Snapshot.parse({ ...body, hash, ...(loaded.secrets.signingKey ? signHash(hash, loaded.secrets.signingKey) : {}) });
  }

  /**
   * Whether the archive file of `day` may be published: it is byte-equal to the snapshot built
   * now, or it is an intact snapshot (signed by our key, with one) chained to `prev` whose hash
   * this deployment recorded as built for the day before writing it. Anyone who can write the
   * archive directory can compute a hash and a prevHash; only vigil builds from its own ledger.
   *
   * @throws {@link SnapshotIntegrityError} (`not-ours`, source archive) otherwise.
   */
  private async adoptable(day: string, text: string, built: Snapshot, prev: Snapshot | undefined): Promise<Snapshot> {
    if (text === snapshotFileText(built)) return built;
    const check = checkSnapshotText(text, { date: day, ...(this.publicKey ? { publicKeyPem: this.publicKey } : {}) });
    if (check.ok && check.snapshot.prevHash === (prev?.hash ?? null) && (await this.opts.redis.sismember(this.keys.pending(day), check.snapshot.hash)) === 1) {
      return check.snapshot;
    }
    const why = check.ok
      ? 'it is neither the snapshot vigil builds for this day nor one it built before: remove it from the archive directory, and day close builds the day itself'
      : `${check.detail}; remove it from the archive directory, and day close builds the day itself`;
    throw this.failure(day, 'archive', 'not-ours', `the archive already holds a file for this day that vigil did not write: ${why}`);
  }

  /**
   * Restores published snapshots (from a verified archive) into an empty Redis: the newest one
   * carries every control's streak, so history continues where the archive ends.
   */
  async restore(snapshots: readonly Snapshot[], texts: readonly string[]): Promise<void> {
    const { redis } = this.opts;
    if (await redis.exists(this.keys.latest)) throw new Error('this Redis already holds published snapshots: rebuild only into an empty one');
    const multi = redis.multi();
    snapshots.forEach((s, i) => {
      multi.set(this.keys.snapshot(s.date), texts[i] ?? `${JSON.stringify(s, null, 2)}\n`, 'EX', SNAPSHOT_TTL_SECONDS);
      // Their emails went out when the days closed: a rebuilt Redis must not send them again.
      multi.set(`${this.opts.prefix}:email-sent:${s.date}`, 'restored', 'EX', 90 * 86_400);
    });
    const first = snapshots[0];
    const last = snapshots.at(-1);
    if (first && last) {
      multi.set(this.keys.firstDay, first.date);
      multi.set(this.keys.latest, last.date);
      // vigil_snapshot_last_published_timestamp_seconds continues from the archive (not from 0, not absent).
      multi.set(this.keys.publishedAt, String(this.restoredPublishedAt(last.date)));
    }
    await multi.exec();
  }
}
