import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AnyProbe, ProbeResult } from '../probe/contract.js';
import { statusValue, type ControlState } from '../posture/status.js';
import { onFeed } from '../posture/snapshot.js';
import { registerGithubMetrics } from '../clients/github-metrics.js';
import type { Snapshot } from '../posture/snapshot-types.js';

/**
 * Names of the metrics this module registers, for everything that must name them the same way
 * (the Grafana dashboard generator, tests). Probe gauges are named in their probe definitions.
 */
export const METRIC = {
  controlStatus: 'vigil_control_status',
  probeRunsTotal: 'vigil_probe_runs_total',
  probeDurationSeconds: 'vigil_probe_duration_seconds',
  probeLastJudgedTimestampSeconds: 'vigil_probe_last_judged_timestamp_seconds',
  /** Deprecated alias of {@link METRIC.probeLastJudgedTimestampSeconds} (same value), kept for one release. */
  probeLastSuccessTimestampSeconds: 'vigil_probe_last_success_timestamp_seconds',
  sourceFreshnessSeconds: 'vigil_source_freshness_seconds',
  queueJobs: 'vigil_queue_jobs',
  controlConsecutiveGreenDays: 'vigil_control_consecutive_green_days',
  controlGreen: 'vigil_control_green',
  controlLastGreenTimestampSeconds: 'vigil_control_last_green_timestamp_seconds',
  trustFeedControls: 'vigil_trust_feed_controls',
  snapshotLastPublishedTimestampSeconds: 'vigil_snapshot_last_published_timestamp_seconds',
  emailSentTotal: 'vigil_email_sent_total',
  snapshotIntegrityFailuresTotal: 'vigil_snapshot_integrity_failures_total',
  dayCloseFailuresTotal: 'vigil_day_close_failures_total',
  ready: 'vigil_ready',
  controlOnFeed: 'vigil_control_on_feed',
} as const;

/** What the metrics read at scrape time: state already computed or cheap to read. */
export interface MetricsSource {
  /** Control states and newest results, read from the state store. */
  posture(): Promise<{ controls: ControlState[]; latest: ReadonlyMap<string, ProbeResult> }>;
  /** Run counts by `probe|outcome`. */
  runCounts(): Promise<ReadonlyMap<string, number>>;
  /** Unix seconds of the last run that judged every resource (no error, nothing unknown), by `probe|target`. */
  lastSuccess(): Promise<ReadonlyMap<string, number>>;
  /** Job counts by queue and state. */
  queueCounts(): Promise<Array<{ queue: string; counts: Record<string, number> }>>;
  now(): Date;
  /** The newest published daily snapshot: streaks and the trust feed come from it. */
  latestSnapshot(): Promise<Snapshot | undefined>;
  /** Unix seconds of the last snapshot publication. */
  snapshotPublishedAt(): Promise<number | undefined>;
  /** Snapshot emails by result (sent, rejected, failed). */
  emailCounts(): Promise<ReadonlyMap<string, number>>;
  /** The instant a calendar day ends (for the last-green timestamp). */
  endOfDay(day: string): Date;
  minGreenDays: number;
  /** What keeps this replica from being ready (the `/readyz` problems); empty when ready. */
  readiness?(): Promise<readonly string[]>;
}

/**
 * vigil's own prom-client registry (DESIGN.md §4). Gauges are filled in `collect()` from state;
 * the duration histogram is observed by this process's worker. Labels are bounded: control ids,
 * probe ids, configured target names and configured endpoints only.
 */
export class VigilMetrics {
  readonly registry = new Registry();
  readonly duration: Histogram<'probe'>;
  /**
   * Stored snapshots that failed their integrity check, by where they were read from. Counted by
   * this process (not kept in Redis: whoever can write Redis is what it reports on, and could
   * reset it there); Prometheus sums the replicas, and `increase()` absorbs restarts.
   */
  readonly integrityFailures: Counter<'source'>;
  /**
   * Attempts to close a due day that failed (archive directory not writable, Redis lost, a stored
   * snapshot refused…), counted by this process like {@link integrityFailures}.
   */
  readonly dayCloseFailures: Counter;

  constructor(given: MetricsSource, probes: readonly AnyProbe[]) {
    const registry = this.registry;
    // While Redis cannot be read, a scrape still answers (vigil_ready 0), without the series that
    // come from Redis state: absent, never stale or made up. Prometheus then tells "this replica
    // lost Redis" from "vigil is down", as exporters do with their `_up` gauges.
    const source = withoutRedisFailures(given);
    // One read of the state per scrape, shared by every collect() of that scrape.
    let pending: Promise<Awaited<ReturnType<MetricsSource['posture']>>> | undefined;
    let readAt = 0;
    const posture = () => {
      if (!pending || Date.now() - readAt > 1000) {
        readAt = Date.now();
        pending = source.posture();
      }
      return pending;
    };

    new Gauge({
      name: METRIC.controlStatus,
      help: 'Control status now: 1 green, 0 red, -1 unknown (no result, error, could not tell, or stale).',
      labelNames: ['control'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const c of (await posture()).controls) this.set({ control: c.id }, statusValue(c.status));
      },
    });

    new Counter({
      name: METRIC.probeRunsTotal,
      help: 'Recorded probe runs by outcome (pass, fail, unknown, error), across all replicas.',
      labelNames: ['probe', 'outcome'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [key, n] of await source.runCounts()) {
          const [probe = '', outcome = ''] = key.split('|');
          this.inc({ probe, outcome }, n);
        }
      },
    });

    this.duration = new Histogram({
      name: METRIC.probeDurationSeconds,
      help: 'Wall time of probe runs executed by this process.',
      labelNames: ['probe'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers: [registry],
    });

    // "Judged", not "succeeded": a run counts when it ended without error and left no resource unknown
    // (a red verdict is a judged run). The old name stays one release as an alias with the same value.
    for (const [name, help] of [
      [METRIC.probeLastJudgedTimestampSeconds, 'When a run of this probe on this target last judged every resource (no error, nothing unknown; pass or fail).'],
      [METRIC.probeLastSuccessTimestampSeconds, `DEPRECATED, removed in the next release: use ${METRIC.probeLastJudgedTimestampSeconds} (same value).`],
    ] as const) {
      new Gauge({
        name,
        help,
        labelNames: ['probe', 'target'],
        registers: [registry],
        async collect() {
          this.reset();
          for (const [key, ts] of await source.lastSuccess()) {
            const [probe = '', target = ''] = key.split('|');
            this.set({ probe, target }, ts);
          }
        },
      });
    }

    new Gauge({
      name: METRIC.sourceFreshnessSeconds,
      help: 'Age of the data the source reported (e.g. an AWS credential report) in the newest result.',
      labelNames: ['probe', 'target'],
      registers: [registry],
      async collect() {
        this.reset();
        const now = source.now().getTime();
        for (const r of (await posture()).latest.values()) {
          if (r.sourceFreshness) this.set({ probe: r.probe, target: r.target }, Math.max(0, (now - Date.parse(r.sourceFreshness)) / 1000));
        }
      },
    });

    new Gauge({
      name: METRIC.queueJobs,
      help: 'Jobs in the BullMQ queues by state.',
      labelNames: ['queue', 'state'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const { queue, counts } of await source.queueCounts()) {
          for (const [state, n] of Object.entries(counts)) this.set({ queue, state }, n);
        }
      },
    });

    new Gauge({
      name: METRIC.controlConsecutiveGreenDays,
      help: 'Consecutive green days ending with the last closed day.',
      labelNames: ['control'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const c of (await source.latestSnapshot())?.controls ?? []) this.set({ control: c.id }, c.streak);
      },
    });

    new Gauge({
      name: METRIC.controlGreen,
      help: '1 when the control is 30-day green (streak >= trust.minGreenDays), else 0.',
      labelNames: ['control'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const c of (await source.latestSnapshot())?.controls ?? []) this.set({ control: c.id }, c.verdict === 'green' && c.streak >= Math.max(30, source.minGreenDays) ? 1 : 0);
      },
    });

    new Gauge({
      name: METRIC.controlLastGreenTimestampSeconds,
      help: 'End of the most recent closed day on which the control was green.',
      labelNames: ['control'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const c of (await source.latestSnapshot())?.controls ?? []) {
          if (c.lastGreenDay) this.set({ control: c.id }, Math.floor(source.endOfDay(c.lastGreenDay).getTime() / 1000));
        }
      },
    });

    new Gauge({
      name: METRIC.controlOnFeed,
      help: '1 when the control is listed on the public trust feed (public and 30-day green at the last closed day), else 0.',
      labelNames: ['control'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const c of (await source.latestSnapshot())?.controls ?? []) this.set({ control: c.id }, onFeed(c, source.minGreenDays) ? 1 : 0);
      },
    });

    new Gauge({
      name: METRIC.trustFeedControls,
      help: 'Controls listed on the public trust feed.',
      registers: [registry],
      async collect() {
        const s = await source.latestSnapshot();
        this.set((s?.controls ?? []).filter((c) => onFeed(c, source.minGreenDays)).length);
      },
    });

    // prom-client exports 0 for a label-less gauge that was never set, and 0 is "published in 1970":
    // VigilSnapshotOverdue would page on every fresh install. Before the first snapshot: no sample.
    let publishedAt: number | undefined;
    const snapshotAge = new Gauge({
      name: METRIC.snapshotLastPublishedTimestampSeconds,
      help: 'When the last daily snapshot was published (after vigil rebuild: when the newest restored day became closable). No sample before the first snapshot.',
      registers: [registry],
      async collect() {
        this.reset();
        publishedAt = await source.snapshotPublishedAt();
        if (publishedAt !== undefined) this.set(publishedAt);
      },
    });
    const collectSnapshotAge = snapshotAge.get.bind(snapshotAge);
    snapshotAge.get = async () => {
      const metric = await collectSnapshotAge();
      return publishedAt === undefined ? { ...metric, values: [] } : metric;
    };

    new Counter({
      name: METRIC.emailSentTotal,
      help: 'Daily snapshot emails by result: sent (days delivered), rejected (permanently, by the SMTP server), failed (not sent within email.retryHours, once per day), resent (sends resumed after a replica died mid-SMTP: possible duplicates, same Message-ID).',
      labelNames: ['result'],
      registers: [registry],
      async collect() {
        this.reset();
        // Unreadable (Redis lost): no samples rather than zeros, which would come back as new failures.
        const counts = await boundedRead(() => given.emailCounts(), undefined);
        if (!counts) return;
        for (const result of ['sent', 'rejected', 'failed', 'resent']) this.inc({ result }, 0);
        for (const [result, n] of counts) this.inc({ result }, n);
      },
    });

    this.integrityFailures = new Counter({
      name: METRIC.snapshotIntegrityFailuresTotal,
      help: 'Stored daily snapshots withheld because they failed their hash, chain or signature check, or were planted in the archive, by source (redis, archive); counted by this process.',
      labelNames: ['source'],
      registers: [registry],
    });
    for (const source of ['redis', 'archive']) this.integrityFailures.inc({ source }, 0);

    this.dayCloseFailures = new Counter({
      name: METRIC.dayCloseFailuresTotal,
      help: 'Attempts to close a due day that failed (nothing published; retried every minute), counted by this process. GET /readyz names the day and the reason.',
      registers: [registry],
    });
    this.dayCloseFailures.inc(0);

    new Gauge({
      name: METRIC.ready,
      help: '1 when this replica is ready (GET /readyz answers 200: Redis answers PING, probe worker and recorder running, the last day close did not fail, dataDir and archive.dir writable), else 0.',
      registers: [registry],
      async collect() {
        if (!given.readiness) return;
        // Bounded like a Kubernetes probe: a hanging PING counts as not ready.
        const problems = await boundedRead(() => given.readiness!(), ['readiness check failed or timed out']);
        this.set(problems.length === 0 ? 1 : 0);
      },
    });

    // GitHub API request counts and rate-limit budgets (this process).
    registerGithubMetrics(registry);

    for (const probe of probes) {
      for (const g of probe.gauges ?? []) {
        new Gauge({
          name: g.name,
          help: g.help,
          labelNames: [...g.labelNames],
          registers: [registry],
          async collect() {
            this.reset();
            for (const r of (await posture()).latest.values()) {
              if (r.probe !== probe.id) continue;
              for (const { labels, value } of g.fromResult(r)) this.set(labels, value);
            }
          },
        });
      }
    }
  }

  /** Counts one stored snapshot that failed its integrity check. */
  countIntegrityFailure(source: 'redis' | 'archive'): void {
    this.integrityFailures.inc({ source });
  }

  /** Counts one failed attempt to close a due day. */
  countDayCloseFailure(): void {
    this.dayCloseFailures.inc();
  }

  /** Records one run this process executed. */
  observeRun(result: ProbeResult, durationSeconds: number): void {
    this.duration.observe({ probe: result.probe }, durationSeconds);
  }
}

/**
 * `read()`, or `fallback` when it fails or takes over 2 s: BullMQ's connection waits for Redis
 * without limit, and a scrape must answer well within Prometheus' scrape timeout (10 s by default).
 */
function boundedRead<T>(read: () => Promise<T>, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), 2_000);
    timer.unref();
  });
  return Promise.race([read().catch(() => fallback), late]).finally(() => clearTimeout(timer));
}

/** `source` with every Redis read turned into "nothing known" when it fails (see the constructor). */
function withoutRedisFailures(source: MetricsSource): MetricsSource {
  const none = <T>(read: () => Promise<T>, fallback: T) => (): Promise<T> => boundedRead(read, fallback);
  return {
    ...source,
    posture: none(() => source.posture(), { controls: [], latest: new Map() }),
    runCounts: none(() => source.runCounts(), new Map()),
    lastSuccess: none(() => source.lastSuccess(), new Map()),
    queueCounts: none(() => source.queueCounts(), []),
    latestSnapshot: none(() => source.latestSnapshot(), undefined),
    snapshotPublishedAt: none(() => source.snapshotPublishedAt(), undefined),
  };
}
