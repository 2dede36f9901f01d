/**
 * `node dist/bench/soak.js [minutes=90] [targets=1000]`: long-run resource bounds. One daemon (in
 * this process, `startDaemon`) on a real redis-server runs a fast no-op probe against `targets`
 * targets at a one-minute schedule for `minutes` of simulated time: each simulated minute's slot
 * is enqueued for every target exactly as the cron firing does (`Scheduler.enqueue`), and the next
 * minute starts once all its results are recorded. After each minute it samples this process's RSS
 * and heap, and Redis `used_memory` and key count. Prints a table every 10 minutes and the growth
 * after warm-up, per simulated hour, and what the replay guard holds at the end.
 *
 * Warm-up: the job retention caps (50 000 completed jobs per queue, probes and results) are
 * reached after 50 000 / targets minutes (50 at 1 000 targets): memory grows until then by design.
 * Growth is measured from 5 minutes after that (or from the middle of the run, if later): what must
 * not grow afterwards is everything else — state, the replay guard (one bitmap per target per
 * day, allocated whole), the day ledger.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { loadConfig } from '../src/config/load.js';
import { startDaemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { defineProbe } from '../src/probe/contract.js';
import { configuredUnits } from '../src/probe/units.js';
import { startRedisServer } from '../test/helpers/redis-server.js';

const minutes = Number(process.argv[2] ?? 90);
const targets = Number(process.argv[3] ?? 1000);
const MiB = 1024 * 1024;
/** `removeOnComplete.count` of the probes and results queues (src/queue/scheduler.ts, src/queue/probe-worker.ts). */
const RETENTION = 50_000;

/** Answers at once: the soak measures vigil, not a source. */
const noopProbe = defineProbe({
  id: 'soak-noop',
  title: 'No-op probe for the soak bench',
  source: 'tls',
  controls: ['soak-control'],
  schedule: '0 3 1 1 *',
  docs: { checks: 'nothing', permissions: 'none', remediation: 'none' },
  params: z.strictObject({}),
  targets: () => Array.from({ length: targets }, (_, i) => ({ name: `t${String(i).padStart(4, '0')}`, spec: {} })),
  async collect() {
    return null;
  },
  evaluate: () => [{ resource: 'r', outcome: 'pass' as const, message: 'fine' }],
});

interface Sample {
  minute: number;
  rss: number;
  heap: number;
  usedMemory: number;
  keys: number;
  seconds: number;
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN);
}

async function main(): Promise<void> {
  const server = await startRedisServer({ appendonly: false });
  const redis = new Redis(server.url);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-soak-'));
  writeFileSync(
    path.join(dir, 'controls.yaml'),
    `controls:
  - id: soak-control
    title: Soak control
    publicTitle: Soak
    publicDescription: Soak control
    frameworks: { soc2: [CC6.7] }
    probes: [soak-noop]
`,
  );
  const file = path.join(dir, 'vigil.yaml');
  writeFileSync(
    file,
    `dataDir: ${dir}/var
controls: ./controls.yaml
redis: { url: "${server.url}", prefix: soak }
http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0, token: { env: SOAK_ADMIN_TOKEN } } }
worker: { concurrency: 32, attempts: 3, backoffSeconds: 1, timeoutSeconds: 10 }
log: { level: warn }
`,
  );
  const loaded = loadConfig(file, [noopProbe], { SOAK_ADMIN_TOKEN: 'soak-admin-token-0123456789abcdef-xyz' });
  const discard = new Writable({ write: (_c, _e, cb) => cb() });
  const daemon = await startDaemon({ loaded, log: createLogger('warn', discard) });
  const units = configuredUnits(loaded);
  const recorded = async () => [...(await daemon.state.runCounts()).values()].reduce((a, b) => a + b, 0);
  // The catch-up runs of the start (one per target) settle first.
  const deadline = Date.now() + 120_000;
  while ((await recorded()) < targets && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));

  const base = Date.UTC(2026, 10, 20, 1, 0, 0);
  const samples: Sample[] = [];
  const started = Date.now();
  for (let m = 0; m < minutes; m++) {
    const before = await recorded();
    const slot = new Date(base + m * 60_000);
    for (const unit of units) await daemon.scheduler.enqueue(unit, slot, 'scheduled');
    const until = Date.now() + 120_000;
    while ((await recorded()) < before + units.length) {
      if (Date.now() > until) throw new Error(`minute ${m}: results not recorded within 120 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const mem = process.memoryUsage();
    samples.push({ minute: m + 1, rss: mem.rss, heap: mem.heapUsed, usedMemory: await usedMemory(redis), keys: await redis.dbsize(), seconds: (Date.now() - started) / 1000 });
    const s = samples.at(-1)!;
    if ((m + 1) % 10 === 0 || m === 0) {
      console.log(
        `sim minute ${String(s.minute).padStart(3)}: rss ${(s.rss / MiB).toFixed(1)} MiB, heap ${(s.heap / MiB).toFixed(1)} MiB, redis used_memory ${(s.usedMemory / MiB).toFixed(1)} MiB, ${s.keys} keys (${s.seconds.toFixed(0)} s real)`,
      );
    }
  }
  await daemon.stop();

  // Growth after warm-up: mean of the last 10 samples minus the mean of the 10 samples where warm-up ends, per simulated hour.
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const mid = Math.max(0, Math.min(samples.length - 20, Math.max(Math.floor(samples.length / 2), Math.ceil(RETENTION / targets) + 5)));
  const span = (samples.length - 5 - (mid + 5)) / 60;
  const growth = (pick: (s: Sample) => number) => (mean(samples.slice(-10).map(pick)) - mean(samples.slice(mid, mid + 10).map(pick))) / span;
  // GC makes RSS and heap a sawtooth: compare its troughs, the lowest sample of each half after warm-up.
  const q = Math.floor((samples.length - mid) / 2);
  const troughs = (pick: (s: Sample) => number) =>
    `${(Math.min(...samples.slice(mid, mid + q).map(pick)) / MiB).toFixed(1)} → ${(Math.min(...samples.slice(mid + q).map(pick)) / MiB).toFixed(1)} MiB`;
  const range = (pick: (s: Sample) => number) => {
    const xs = samples.slice(mid).map(pick);
    return `${(Math.min(...xs) / MiB).toFixed(0)}–${(Math.max(...xs) / MiB).toFixed(0)}`;
  };
  // The replay guard: one hash per probe × target, whatever the number of runs.
  let guardKeys = 0;
  let guardBytes = 0;
  for (const unit of units) {
    const bytes = await redis.memory('USAGE', `soak:seen-slots:${unit.configured.probe.id}|${unit.target.name}`);
    if (bytes === null) continue;
    guardKeys++;
    guardBytes += bytes;
  }
  const runs = minutes * targets;
  console.log(
    [
      `soak: ${targets} targets × ${minutes} simulated minutes = ${runs} runs in ${((Date.now() - started) / 1000).toFixed(0)} s real (${(runs / ((Date.now() - started) / 1000)).toFixed(0)} runs/s)`,
      `growth after warm-up (minute ${mid} → ${samples.length}), per simulated hour:`,
      `  daemon RSS range ${range((s) => s.rss)} MiB (GC sawtooth), troughs ${troughs((s) => s.rss)}; heap range ${range((s) => s.heap)} MiB, troughs ${troughs((s) => s.heap)}`,
      `  Redis used_memory ${(growth((s) => s.usedMemory) / MiB).toFixed(2)} MiB/h, keys ${growth((s) => s.keys).toFixed(0)}/h`,
      `end: rss ${(samples.at(-1)!.rss / MiB).toFixed(1)} MiB, redis used_memory ${(samples.at(-1)!.usedMemory / MiB).toFixed(1)} MiB, ${samples.at(-1)!.keys} keys`,
      `replay guard: ${guardKeys} keys, ${(guardBytes / 1024).toFixed(0)} KiB (${(guardBytes / Math.max(1, guardKeys)).toFixed(0)} B per target)`,
    ].join('\n'),
  );
  redis.disconnect();
  await server.stop();
}

await main();
