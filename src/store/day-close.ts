import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import { addDays, daysBetween, dayOf, lastClosableDay } from '../posture/days.js';
import { buildSnapshot, type ProbeCadence } from '../posture/snapshot.js';
import { Snapshot, snapshotHash } from '../posture/snapshot-types.js';
import { splitByConfiguration, type ScheduledUnit } from '../probe/units.js';
import { publicKeyFromPrivate, readArchivedSnapshot, readArchiveText, signHash, verifySignature, writeArchivedSnapshot } from './archive.js';
import type { StateStore } from './state.js';

/**
 * How long Redis keeps a published snapshot's text. Older days are read from the archive, so
 * Redis does not grow with history (500 controls ≈ 0.5 MB a day).
 */
const SNAPSHOT_TTL_SECONDS = 40 * 86_400;

/** Lease of the day-close lock: longer than any close takes; a crashed closer's lock lapses. */
const LOCK_MS = 120_000;

export interface DayCloserOptions {
  redis: Redis;
  prefix: string;
  loaded: LoadedConfig;
  units: readonly ScheduledUnit[];
  state: StateStore;
  log: Logger;
  /** Called once per newly published snapshot (enqueue the email, etc.). */
  onPublished?: (snapshot: Snapshot, archivedJson: string) => Promise<void>;
}

/** What one close attempt did. */
export type CloseOutcome = { day: string; result: 'closed'; snapshot: Snapshot } | { day: string; result: 'already' } | { day: string; result: 'busy' };

/**
 * Closes calendar days and publishes their snapshots — each day exactly once, in order, across
 * replicas, crashes and downtime. A Redis lock admits one closer at a time; the newest published
 * day (`snapshot-latest`) says what is done. A day's snapshot is written to the archive before
 * it is published in Redis; a closer that crashed in between finds the archived file on its next
 * try and publishes that very file, so the record never forks.
 */
export class DayCloser {
  private readonly keys: { snapshot: (day: string) => string; latest: string; firstDay: string; publishedAt: string; lock: string };

  /** Public key of archive.signingKey, when configured: archived files must carry its signature. */
  private readonly publicKey: string | undefined;

  constructor(private readonly opts: DayCloserOptions) {
    this.publicKey = opts.loaded.secrets.signingKey ? publicKeyFromPrivate(opts.loaded.secrets.signingKey) : undefined;
    const p = opts.prefix;
    this.keys = {
      snapshot: (day) => `${p}:snapshot:${day}`,
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

  /** The newest published snapshot. */
  async latest(): Promise<Snapshot | undefined> {
    const day = await this.opts.redis.get(this.keys.latest);
    return day ? this.get(day) : undefined;
  }

  /** The published snapshot of a day. */
  async get(day: string): Promise<Snapshot | undefined> {
    const text = await this.getText(day);
    return text === undefined ? undefined : Snapshot.parse(JSON.parse(text));
  }

  /** The published snapshot of a day, as the exact archived bytes (Redis keeps recent days; older ones come from the archive). */
  async getText(day: string): Promise<string | undefined> {
    const cached = await this.opts.redis.get(this.keys.snapshot(day));
    if (cached !== null) return cached;
    const latest = await this.opts.redis.get(this.keys.latest);
    // Only days that were published: the archive may hold a file for a day not yet published.
    if (!latest || day > latest) return undefined;
    return readArchiveText(this.opts.loaded.archiveDir, day);
  }

  /** Unix seconds of the last publication. */
  async publishedAt(): Promise<number | undefined> {
    const v = await this.opts.redis.get(this.keys.publishedAt);
    return v ? Number(v) : undefined;
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
      const outcome = await this.closeDay(day);
      out.push(outcome);
      if (outcome.result === 'busy') break;
    }
    return out;
  }

  /** Closes one day; the day before it must already be closed (or be before the record starts). */
  async closeDay(day: string): Promise<CloseOutcome> {
    const { redis, loaded, log } = this.opts;
    const token = randomBytes(8).toString('hex');
    if ((await redis.set(this.keys.lock, token, 'PX', LOCK_MS, 'NX')) !== 'OK') return { day, result: 'busy' };
    try {
      const latestDay = await redis.get(this.keys.latest);
      if (latestDay && latestDay >= day) return { day, result: 'already' };
      if (latestDay && addDays(latestDay, 1) !== day) throw new Error(`cannot close ${day} before ${addDays(latestDay, 1)}: days close in order`);
      const prev = latestDay ? await this.get(latestDay) : undefined;

      const archived = await readArchivedSnapshot(loaded.archiveDir, day);
      let snapshot: Snapshot;
      // With a signing key, only a file vigil itself signed may be adopted: anyone who can write
      // to the archive can compute a hash, not a signature.
      const trusted = archived !== undefined && (!this.publicKey || verifySignature(archived, this.publicKey));
      if (archived && !trusted) log.error({ day }, 'an archived file for this day is not signed by our key: refusing to publish it');
      if (archived && trusted && archived.prevHash === (prev?.hash ?? null)) {
        // A previous attempt archived this day and crashed before publishing: publish that file.
        snapshot = archived;
        log.warn({ day }, 'publishing the snapshot a previous attempt archived');
      } else {
        const probes = new Map<string, ProbeCadence>();
        for (const [id, configured] of loaded.probes) {
          probes.set(id, {
            id,
            schedule: configured.schedule,
            intervalMs: configured.intervalMs,
            targets: this.opts.units.filter((u) => u.configured.probe.id === id).map((u) => u.target.name),
          });
        }
        const body = buildSnapshot({
          date: day,
          timezone: loaded.config.timezone,
          minGreenDays: loaded.config.trust.minGreenDays,
          ...splitByConfiguration(loaded, this.opts.units),
          probes,
          ledger: await this.opts.state.dayLedger(day),
          prev,
        });
        const hash = snapshotHash(body);
        snapshot = { ...body, hash, ...(loaded.secrets.signingKey ? signHash(hash, loaded.secrets.signingKey) : {}) };
        await writeArchivedSnapshot(loaded.archiveDir, snapshot);
      }
      // Publish the archived bytes themselves, so the API and the email attachment equal the file.
      const text = (await readArchiveText(loaded.archiveDir, day)) ?? `${JSON.stringify(snapshot, null, 2)}\n`;
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
      // Release only our own lock.
      await redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end", 1, this.keys.lock, token);
    }
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
    }
    await multi.exec();
  }
}
