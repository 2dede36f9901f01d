/**
 * Pipeline throughput: results recorded per second through BullMQ → recorder, on a real
 * redis-server (started here, persistent as in production: AOF everysec).
 *
 *   npm run build && node dist/bench/pipeline.js [results=20000] [recorderConcurrency=64]
 *
 * Prints two figures: the recorder alone draining a pre-filled `results` queue, and the whole
 * path (probe job → worker running a no-op probe → results queue → recorder).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import pino from 'pino';
import { z } from 'zod';
import { openRedis, PROBES_QUEUE, RESULTS_QUEUE, type ProbeJobData } from '../src/queue/connection.js';
import { ProbeWorker } from '../src/queue/probe-worker.js';
import { Recorder } from '../src/queue/recorder.js';
import { defineProbe, type ProbeResult } from '../src/probe/contract.js';
import { startEmbeddedRedis } from '../src/store/embedded-redis.js';
import { StateStore } from '../src/store/state.js';

const total = Number(process.argv[2] ?? 20_000);
const concurrency = Number(process.argv[3] ?? 64);
const log = pino({ level: 'silent' });
const MINUTE = 60_000;

const noop = defineProbe({
  id: 'noop',
  title: 'no-op',
  source: 'tls',
  controls: [],
  schedule: '* * * * *',
  docs: { checks: '', permissions: '', remediation: '' },
  params: z.strictObject({}),
  targets: () => [],
  collect: async () => ({}),
  evaluate: () => [{ resource: 'r', outcome: 'pass', message: 'ok' }],
});

/** Waits for `recorded()` to reach `total`; fails when it stops moving for 30 s instead of hanging. */
async function waitUntil(recorded: () => number, total: number, what: string): Promise<void> {
  let last = recorded();
  let since = performance.now();
  while (recorded() < total) {
    await new Promise((r) => setTimeout(r, 20));
    const now = recorded();
    if (now !== last) [last, since] = [now, performance.now()];
    else if (performance.now() - since > 30_000) throw new Error(`${what}: ${now} of ${total} recorded, none for 30 s (results refused as replays or beyond the replay horizon?)`);
  }
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'vigil-bench-'));
  const redis = await startEmbeddedRedis({ dataDir, log });
  const settings = { location: redis.connection };
  const client = openRedis(settings, 'client');
  const conn = openRedis(settings, 'worker');
  try {
    // 1. Recorder alone.
    const prefix = 'bench1';
    const state = new StateStore(client, prefix);
    const results = new Queue<ProbeResult>(RESULTS_QUEUE, { connection: conn, prefix });
    // One slot per result: the replay guard counts a probe × target × slot once. Each of the 500
    // targets gets consecutive whole-minute slots, as cron schedules give in production (the
    // guard's 180-byte day bitmap; whole-second slots would copy a 10,800-byte one per result).
    const base = Math.floor(Date.now() / MINUTE) * MINUTE - Math.ceil(total / 500) * MINUTE;
    const slot = (n: number) => base + Math.floor(n / 500) * MINUTE;
    for (let i = 0; i < total; i += 1000) {
      await results.addBulk(
        Array.from({ length: Math.min(1000, total - i) }, (_, j) => {
          const n = i + j;
          const result: ProbeResult = {
            runId: `noop|t${n % 500}|${n}`,
            probe: 'noop',
            target: `t${n % 500}`,
            scheduledFor: new Date(slot(n)).toISOString(),
            startedAt: new Date(slot(n)).toISOString(),
            finishedAt: new Date(slot(n) + 1).toISOString(),
            findings: [{ resource: `r${n}`, outcome: 'pass', message: 'ok' }],
          };
          return { name: 'result', data: result, opts: { jobId: result.runId, removeOnComplete: true } };
        }),
      );
    }
    const t0 = performance.now();
    const recorder = new Recorder({ connection: conn, prefix, state, log, concurrency });
    await waitUntil(() => recorder.recorded, total, 'recorder alone');
    const recorderSeconds = (performance.now() - t0) / 1000;
    await recorder.close();
    await results.close();

    // 2. The whole path with a no-op probe.
    const prefix2 = 'bench2';
    const state2 = new StateStore(client, prefix2);
    const probes = new Queue<ProbeJobData>(PROBES_QUEUE, { connection: conn, prefix: prefix2 });
    const results2 = new Queue<ProbeResult>(RESULTS_QUEUE, { connection: conn, prefix: prefix2 });
    const e2eTotal = Math.floor(total / 2);
    const units = Array.from({ length: 500 }, (_, i) => ({
      configured: { probe: noop, schedule: '* * * * *', intervalMs: 60_000, params: {} },
      target: { name: `t${i}`, spec: {} },
      schedule: '* * * * *',
      intervalMs: 60_000,
    }));
    for (let i = 0; i < e2eTotal; i += 1000) {
      await probes.addBulk(
        Array.from({ length: Math.min(1000, e2eTotal - i) }, (_, j) => {
          const n = i + j;
          return { name: 'noop', data: { probe: 'noop', target: `t${n % 500}`, scheduledFor: new Date(slot(n)).toISOString() }, opts: { jobId: `noop|t${n % 500}|${n}`, removeOnComplete: true } };
        }),
      );
    }
    const t1 = performance.now();
    const recorder2 = new Recorder({ connection: conn, prefix: prefix2, state: state2, log, concurrency });
    const worker = new ProbeWorker({ connection: conn, prefix: prefix2, units, results: results2, concurrency, timeoutMs: 10_000, log });
    await waitUntil(() => recorder2.recorded, e2eTotal, 'whole path');
    const e2eSeconds = (performance.now() - t1) / 1000;
    await worker.close(1000);
    await recorder2.close();
    await probes.close();
    await results2.close();

    const counts = await state.runCounts();
    console.log(
      JSON.stringify(
        {
          machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
          recorderOnly: { results: total, seconds: +recorderSeconds.toFixed(2), perSecond: Math.round(total / recorderSeconds), recordedCount: counts.get('noop|pass') },
          endToEnd: { runs: e2eTotal, seconds: +e2eSeconds.toFixed(2), perSecond: Math.round(e2eTotal / e2eSeconds) },
          concurrency,
          target: '>= 2000 results/s',
        },
        null,
        2,
      ),
    );
  } finally {
    client.disconnect();
    conn.disconnect();
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
