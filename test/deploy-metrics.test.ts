import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../src/posture/snapshot-types.js';
import { METRIC, VigilMetrics, type MetricsSource } from '../src/http/metrics.js';
import { metricValue } from './helpers/daemon.js';

/**
 * The gauges the dashboard and the alerts added for operating vigil read: vigil_control_on_feed
 * (the control grid's "on trust feed" column) and vigil_ready (VigilNotReady). The daemon's own
 * wiring is exercised against real Redis and Prometheus in test/prometheus-live.test.ts.
 */
function source(over: Partial<MetricsSource>): MetricsSource {
  return {
    posture: async () => ({ controls: [], latest: new Map() }),
    runCounts: async () => new Map(),
    lastSuccess: async () => new Map(),
    queueCounts: async () => [],
    now: () => new Date('2026-11-30T12:00:00Z'),
    latestSnapshot: async () => undefined,
    snapshotPublishedAt: async () => undefined,
    emailCounts: async () => new Map(),
    endOfDay: (day) => new Date(`${day}T23:59:59Z`),
    minGreenDays: 30,
    ...over,
  };
}

const snapshot = {
  date: '2026-11-29',
  controls: [
    { id: 'public-30', public: true, verdict: 'green', streak: 31 },
    { id: 'internal-40', public: false, verdict: 'green', streak: 40 },
    { id: 'public-12', public: true, verdict: 'green', streak: 12 },
    { id: 'public-red', public: true, verdict: 'red', streak: 0 },
  ],
} as unknown as Snapshot;

describe('operating gauges', () => {
  it('vigil_control_on_feed is 1 only for public controls that are 30-day green', async () => {
    const text = await new VigilMetrics(source({ latestSnapshot: async () => snapshot }), []).registry.metrics();
    expect(metricValue(text, `${METRIC.controlOnFeed}{control="public-30"}`)).toBe(1);
    expect(metricValue(text, `${METRIC.controlOnFeed}{control="internal-40"}`)).toBe(0);
    expect(metricValue(text, `${METRIC.controlOnFeed}{control="public-12"}`)).toBe(0);
    expect(metricValue(text, `${METRIC.controlOnFeed}{control="public-red"}`)).toBe(0);
    expect(metricValue(text, `${METRIC.controlGreen}{control="internal-40"}`)).toBe(1);
    expect(metricValue(text, METRIC.trustFeedControls)).toBe(1);
  });

  it('vigil_ready follows the readiness problems, and a hanging check counts as not ready within 2 s', async () => {
    const ready = await new VigilMetrics(source({ readiness: async () => [] }), []).registry.metrics();
    expect(metricValue(ready, METRIC.ready)).toBe(1);
    const lost = await new VigilMetrics(source({ readiness: async () => ['redis unreachable'] }), []).registry.metrics();
    expect(metricValue(lost, METRIC.ready)).toBe(0);
    const started = Date.now();
    const hanging = await new VigilMetrics(source({ readiness: () => new Promise(() => {}), queueCounts: () => new Promise(() => {}) }), []).registry.metrics();
    expect(metricValue(hanging, METRIC.ready)).toBe(0);
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it('state that cannot be read is absent from the scrape, not zero, and the scrape still answers', async () => {
    const fail = () => Promise.reject(new Error('Connection is closed.'));
    const text = await new VigilMetrics(source({ posture: fail, runCounts: fail, lastSuccess: fail, queueCounts: fail, latestSnapshot: fail, snapshotPublishedAt: fail, emailCounts: fail, readiness: async () => ['redis unreachable'] }), []).registry.metrics();
    expect(metricValue(text, METRIC.ready)).toBe(0);
    for (const name of [METRIC.controlStatus, METRIC.probeRunsTotal, METRIC.emailSentTotal, METRIC.queueJobs, METRIC.controlOnFeed]) expect(text).not.toMatch(new RegExp(`^${name}[{ ]`, 'm'));
  });
});
