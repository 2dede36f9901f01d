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

async function waitUntil(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 20));
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
    // One slot per result (a second apart): the replay guard counts a probe × target × slot once.
    const base = Math.floor(Date.now() / 1000) * 1000 - total * 1000;
    for (let i = 0; i < total; i += 1000) {
      await results.addBulk(
        Array.from({ length: Math.min(1000, total - i) }, (_, j) => {
          const n = i + j;
          const result: ProbeResult = {
            runId: `noop|t${n % 500}|${n}`,
            probe: 'noop',
            target: `t${n % 500}`,
            scheduledFor: new Date(base + n * 1000).toISOString(),
            startedAt: new Date(base + n * 1000).toISOString(),
            finishedAt: new Date(base + n * 1000 + 1).toISOString(),
            findings: [{ resource: `r${n}`, outcome: 'pass', message: 'ok' }],
          };
          return { name: 'result', data: result, opts: { jobId: result.runId, removeOnComplete: true } };
        }),
      );
    }
    const t0 = performance.now();
    const recorder = new Recorder({ connection: conn, prefix, state, log, concurrency });
    await waitUntil(() => recorder.recorded >= total);
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
          return { name: 'noop', data: { probe: 'noop', target: `t${n % 500}`, scheduledFor: new Date(n * 1000).toISOString() }, opts: { jobId: `noop|t${n % 500}|${n}`, removeOnComplete: true } };
        }),
      );
    }
    const t1 = performance.now();
    const recorder2 = new Recorder({ connection: conn, prefix: prefix2, state: state2, log, concurrency });
    const worker = new ProbeWorker({ connection: conn, prefix: prefix2, units, results: results2, concurrency, timeoutMs: 10_000, log });
    await waitUntil(() => recorder2.recorded >= e2eTotal);
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
