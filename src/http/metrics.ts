import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AnyProbe, ProbeResult } from '../probe/contract.js';
import { statusValue, type ControlState } from '../posture/status.js';
import { onFeed } from '../posture/snapshot.js';
import { registerGithubMetrics } from '../clients/github.js';
import type { Snapshot } from '../posture/snapshot-types.js';

/** What the metrics read at scrape time: state already computed or cheap to read. */
export interface MetricsSource {
  /** Control states and newest results, read from the state store. */
  posture(): Promise<{ controls: ControlState[]; latest: ReadonlyMap<string, ProbeResult> }>;
  /** Run counts by `probe|outcome`. */
  runCounts(): Promise<ReadonlyMap<string, number>>;
  /** Unix seconds of the last run without error, by `probe|target`. */
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
}

/**
 * vigil's own prom-client registry (DESIGN.md §4). Gauges are filled in `collect()` from state;
 * the duration histogram is observed by this process's worker. Labels are bounded: control ids,
 * probe ids, configured target names and configured endpoints only.
 */
export class VigilMetrics {
  readonly registry = new Registry();
  readonly duration: Histogram<'probe'>;

  constructor(source: MetricsSource, probes: readonly AnyProbe[]) {
    const registry = this.registry;
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
      name: 'vigil_control_status',
      help: 'Control status now: 1 green, 0 red, -1 unknown (no result, error, could not tell, or stale).',
      labelNames: ['control'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const c of (await posture()).controls) this.set({ control: c.id }, statusValue(c.status));
      },
    });

    new Counter({
      name: 'vigil_probe_runs_total',
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
      name: 'vigil_probe_duration_seconds',
      help: 'Wall time of probe runs executed by this process.',
      labelNames: ['probe'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers: [registry],
    });

    new Gauge({
      name: 'vigil_probe_last_success_timestamp_seconds',
      help: 'When a run of this probe on this target last finished without error.',
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

    new Gauge({
      name: 'vigil_source_freshness_seconds',
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
      name: 'vigil_queue_jobs',
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
      name: 'vigil_control_consecutive_green_days',
      help: 'Consecutive green days ending with the last closed day.',
      labelNames: ['control'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const c of (await source.latestSnapshot())?.controls ?? []) this.set({ control: c.id }, c.streak);
      },
    });

    new Gauge({
      name: 'vigil_control_green',
      help: '1 when the control is 30-day green (streak >= trust.minGreenDays), else 0.',
      labelNames: ['control'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const c of (await source.latestSnapshot())?.controls ?? []) this.set({ control: c.id }, c.verdict === 'green' && c.streak >= Math.max(30, source.minGreenDays) ? 1 : 0);
      },
    });

    new Gauge({
      name: 'vigil_control_last_green_timestamp_seconds',
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
      name: 'vigil_trust_feed_controls',
      help: 'Controls listed on the public trust feed.',
      registers: [registry],
      async collect() {
        const s = await source.latestSnapshot();
        this.set((s?.controls ?? []).filter((c) => onFeed(c, source.minGreenDays)).length);
      },
    });

    new Gauge({
      name: 'vigil_snapshot_last_published_timestamp_seconds',
      help: 'When the last daily snapshot was published.',
      registers: [registry],
      async collect() {
        this.reset();
        const at = await source.snapshotPublishedAt();
        if (at !== undefined) this.set(at);
      },
    });

    new Counter({
      name: 'vigil_email_sent_total',
      help: 'Daily snapshot emails by result: sent, rejected (permanently, by the SMTP server), failed (given up after retries).',
      labelNames: ['result'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const result of ['sent', 'rejected', 'failed']) this.inc({ result }, 0);
        for (const [result, n] of await source.emailCounts()) this.inc({ result }, n);
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

  /** Records one run this process executed. */
  observeRun(result: ProbeResult, durationSeconds: number): void {
    this.duration.observe({ probe: result.probe }, durationSeconds);
  }
}
