/**
 * Daily snapshots at scale: the day close (ledger → snapshot → hash → archive file → publish)
 * for every one of `days` simulated days, and `buildSnapshot` alone on the last day's input.
 *
 *   npm run build && node dist/bench/snapshot.js [controls=500] [days=400]
 *
 * Everything runs for real except the probes: a redis-server started here (the embedded one,
 * AOF everysec as in production), the real `StateStore.record` writing the ledger, the real
 * `DayCloser` with an archive directory on disk (each file fsynced, then its directory). Ten
 * inline probes (`bench-probe-0` … `bench-probe-9`, ten targets each, schedule twice a day) are
 * never run: their results are written straight into the ledger — 2 runs per target per day,
 * mostly passing, with failures, errors and unmeasured days on some probes so that verdicts and
 * streaks vary. Each day is closed at 00:15 the next morning and the close is timed.
 *
 * The design claim under test: a day's snapshot depends only on that day's ledger and the
 * previous snapshot, so close time must not grow with history. The output compares the mean of
 * the first and last 20 closes and fits a slope over all of them. To attribute slow closes it
 * records, per close, this process's CPU time, GC pauses and whether redis-server had a
 * BGSAVE / AOF rewrite running; then it times the parts of a close (ledger read, previous
 * snapshot load, build, hash, archive write) on day `days`'s data, and `buildSnapshot` alone.
 *
 * Prints one JSON document. Exits 1 if a day does not close.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import pino from 'pino';
import YAML from 'yaml';
import { z } from 'zod';
import { loadConfigText } from '../src/config/load.js';
import { addDays, zonedInstant } from '../src/posture/days.js';
import { buildSnapshot, onFeed, type ProbeCadence } from '../src/posture/snapshot.js';
import { canonicalJson, Snapshot, snapshotHash, type SnapshotBody } from '../src/posture/snapshot-types.js';
import { defineProbe, type AnyProbe, type Finding, type ProbeResult } from '../src/probe/contract.js';
import { configuredUnits, splitByConfiguration } from '../src/probe/units.js';
import type { Redis } from 'ioredis';
import { openRedis } from '../src/queue/connection.js';
import { writeArchivedSnapshot } from '../src/store/archive.js';
import { DayCloser } from '../src/store/day-close.js';
import { startEmbeddedRedis } from '../src/store/embedded-redis.js';
import { StateStore } from '../src/store/state.js';

const controlCount = Number(process.argv[2] ?? 500);
const days = Number(process.argv[3] ?? 400);
const PROBES = 10;
const TARGETS = 10;
const RESOURCES = 4;
const RUN_TIMES = ['00:00', '12:00'];
const SCHEDULE = '0 0,12 * * *';
const FIRST_DAY = '2025-01-01';
const TZ = 'UTC';
const BUILD_REPEATS = 20;
const targets = { closeMs: 200, buildMs: 1000 };
const log = pino({ level: 'silent' });

const MiB = 1024 * 1024;
const ms = (v: number): number => +v.toFixed(2);

function stats(values: number[]): { median: number; p95: number; max: number; mean: number } {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
  const median = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return { median: ms(median), p95: ms(at(0.95)), max: ms(s[s.length - 1]!), mean: ms(s.reduce((a, b) => a + b, 0) / s.length) };
}

const mean = (values: number[]): number => ms(values.reduce((a, b) => a + b, 0) / Math.max(1, values.length));

/** Least-squares slope of y over x. */
function slope(ys: number[]): number {
  const n = ys.length;
  const mx = (n - 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  ys.forEach((y, x) => {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  });
  return den === 0 ? 0 : num / den;
}

async function timeIt<T>(fn: () => T | Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

/** Deterministic uniform [0, 1) from integers (mulberry32 over a mixed seed). */
function rand(...parts: number[]): number {
  let a = parts.reduce((h, p) => Math.imul(h ^ p, 0x9e3779b1) >>> 0, 0x12345678);
  a = (a + 0x6d2b79f5) >>> 0;
  let t = a;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
}

const probeId = (p: number) => `bench-probe-${p}`;
const targetName = (t: number) => `target-${t}`;

const probes: AnyProbe[] = Array.from({ length: PROBES }, (_, p) =>
  defineProbe({
    id: probeId(p),
    title: `Bench probe ${p}`,
    source: 'iac',
    controls: [],
    schedule: SCHEDULE,
    docs: { checks: 'none', permissions: 'none', remediation: 'none' },
    params: z.strictObject({}),
    targets: () => Array.from({ length: TARGETS }, (_, t) => ({ name: targetName(t), spec: {} })),
    collect: async () => ({}),
    evaluate: () => [],
  }),
);

/**
 * The day's plan for one run of one probe × target: probes 0–4 almost never fail, 5–7 fail a
 * run in 200, 8 cannot observe a run in 100 (unknown), 9 fails a run in 100 and its target-9 is
 * not measured every 37th day.
 */
function runPlan(day: number, p: number, t: number, run: number): 'skip' | 'pass' | 'fail' | 'error' {
  if (p === 9 && t === 9 && day % 37 === 0) return 'skip';
  const r = rand(day, p, t, run);
  if (p === 8 && r < 0.01) return 'error';
  const failRate = p <= 4 ? 0.0002 : p <= 7 ? 0.005 : 0.01;
  return rand(run, t, p, day, 7) < failRate ? 'fail' : 'pass';
}

function catalogYaml(n: number): string {
  const soc2 = ['CC6.1', 'CC6.2', 'CC6.3', 'CC6.6', 'CC6.7', 'CC6.8', 'CC7.1', 'CC7.2', 'CC8.1', 'A1.2'];
  const iso = ['A.5.15', 'A.8.5', 'A.8.8', 'A.8.9', 'A.8.15', 'A.8.16', 'A.8.20', 'A.8.24', 'A.8.25', 'A.8.32'];
  const controls = Array.from({ length: n }, (_, i) => {
    const cited = [probeId(i % PROBES)];
    if (i % 3 === 0) cited.push(probeId((i + 3) % PROBES));
    const pick = (pool: string[], k: number) => [...new Set([pool[i % pool.length]!, ...(k > 1 ? [pool[(i * 7 + 3) % pool.length]!] : [])])];
    return {
      id: `bench-control-${String(i).padStart(4, '0')}`,
      title: `Bench control ${i} (internal)`,
      public: true,
      publicTitle: `Control ${i}`,
      publicDescription: `Bench control number ${i}, measured by ${cited.join(' and ')}.`,
      frameworks: { soc2: pick(soc2, 1 + (i % 2)), iso27001: pick(iso, 1 + ((i >> 1) % 2)) },
      probes: cited,
    };
  });
  return YAML.stringify({ controls });
}

function dirSize(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.json')) continue;
    files += 1;
    bytes += statSync(path.join(dir, name)).size;
  }
  return { files, bytes };
}

/** Whether redis-server is writing an RDB snapshot or rewriting its AOF (forked child at work). */
async function persistenceBusy(client: Redis): Promise<boolean> {
  const info = await client.info('persistence');
  return /rdb_bgsave_in_progress:1|aof_rewrite_in_progress:1/.test(info);
}

async function main(): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-snap-'));
  const dataDir = path.join(root, 'data');
  const archiveDir = path.join(root, 'archive');
  mkdirSync(dataDir);
  const redis = await startEmbeddedRedis({ dataDir, log });
  const client = openRedis({ location: redis.connection }, 'client', 'vigil-bench');
  try {
    // --- config: temp vigil.yaml + controls.yaml, loaded as the daemon loads them -------------
    const controlsFile = path.join(root, 'controls.yaml');
    writeFileSync(controlsFile, catalogYaml(controlCount));
    const configText = [
      `timezone: ${TZ}`,
      `dataDir: ${JSON.stringify(dataDir)}`,
      'redis: { prefix: bench }',
      `controls: ${JSON.stringify(controlsFile)}`,
      `archive: { dir: ${JSON.stringify(archiveDir)} }`,
      'log: { level: silent }',
      '',
    ].join('\n');
    const configFile = path.join(root, 'vigil.yaml');
    writeFileSync(configFile, configText);
    const loaded = loadConfigText(configText, configFile, probes, {});
    const units = configuredUnits(loaded);
    const prefix = loaded.config.redis.prefix;
    const state = new StateStore(client, prefix, TZ);
    const closer = new DayCloser({ redis: client, prefix, loaded, units, state, log });
    await closer.markFirstDay(new Date(`${FIRST_DAY}T00:00:00Z`));

    // --- 1. simulate `days` days, timing each close ------------------------------------------
    // Garbage-collection pauses, to attribute slow closes.
    const gcPauses: Array<{ start: number; ms: number }> = [];
    const gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcPauses.push({ start: e.startTime, ms: e.duration });
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    const loadBefore = os.loadavg();
    const closeMs: number[] = [];
    const closeCpuMs: number[] = [];
    const closeWindows: Array<[number, number]> = [];
    /** Per close: a BGSAVE or AOF rewrite was running just before or just after it. */
    const closeDuringPersistence: boolean[] = [];
    const recordMs: number[] = [];
    let recorded = 0;
    const plans = { pass: 0, fail: 0, error: 0, skip: 0 };
    let last: Snapshot | undefined;
    const verdictDays = { green: 0, red: 0, unknown: 0 };
    for (let d = 0; d < days; d++) {
      const day = addDays(FIRST_DAY, d);
      const batch: ProbeResult[] = [];
      for (let p = 0; p < PROBES; p++) {
        for (let t = 0; t < TARGETS; t++) {
          RUN_TIMES.forEach((hhmm, run) => {
            const plan = runPlan(d, p, t, run);
            plans[plan] += 1;
            if (plan === 'skip') return;
            const slot = zonedInstant(day, hhmm, TZ);
            const at = slot.toISOString();
            const finished = new Date(slot.getTime() + 1500).toISOString();
            const failing = plan === 'fail' ? Math.floor(rand(d, p, t, run, 3) * RESOURCES) : -1;
            const findings: Finding[] =
              plan === 'error'
                ? []
                : Array.from({ length: RESOURCES }, (_, r) =>
                    r === failing
                      ? { resource: `resource-${r}`, outcome: 'fail', message: `setting ${r} is off: switch it on in the console` }
                      : { resource: `resource-${r}`, outcome: 'pass', message: 'ok' },
                  );
            batch.push({
              runId: `${probeId(p)}|${targetName(t)}|${slot.getTime()}`,
              probe: probeId(p),
              target: targetName(t),
              scheduledFor: at,
              startedAt: at,
              finishedAt: finished,
              findings,
              ...(plan === 'error' ? { error: { class: 'TransientError', message: 'HTTP 503 from the source' } } : {}),
            });
          });
        }
      }
      const rec = await timeIt(() => Promise.all(batch.map((r) => state.record(r))));
      recordMs.push(rec.ms);
      recorded += rec.value.filter(Boolean).length;

      const busyBefore = await persistenceBusy(client);
      const cpu0 = process.cpuUsage();
      const w0 = performance.now();
      const close = await timeIt(() => closer.closeDueDays(zonedInstant(addDays(day, 1), '00:15', TZ)));
      const cpu = process.cpuUsage(cpu0);
      closeCpuMs.push((cpu.user + cpu.system) / 1000);
      closeWindows.push([w0, performance.now()]);
      closeDuringPersistence.push(busyBefore || (await persistenceBusy(client)));
      const outcome = close.value[0];
      if (close.value.length !== 1 || outcome?.result !== 'closed' || outcome.day !== day) {
        throw new Error(`closing ${day} did not close exactly that day: ${JSON.stringify(close.value.map((o) => ({ day: o.day, result: o.result })))}`);
      }
      closeMs.push(close.ms);
      last = outcome.snapshot;
      verdictDays.green += last.counts.green;
      verdictDays.red += last.counts.red;
      verdictDays.unknown += last.counts.unknown;
    }
    if (!last) throw new Error('no day was closed');
    const loadAfterCloses = os.loadavg();
    await new Promise((r) => setImmediate(r));
    gcObserver.disconnect();
    const gcInCloses = closeWindows.map(([a, b]) => gcPauses.filter((g) => g.start >= a && g.start < b).reduce((sum, g) => sum + g.ms, 0));
    const lastDay = last.date;

    // --- 2. the parts of a close, on the last day's data, 20 times each ---------------------
    // The closer's own inputs: probes with their cadence and targets, the catalog split into
    // measured and not-configured controls (every bench control is measured).
    const byConfiguration = splitByConfiguration(loaded, units);
    const probeCadence = new Map<string, ProbeCadence>();
    for (const [id, configured] of loaded.probes) {
      probeCadence.set(id, {
        id,
        schedule: configured.schedule,
        intervalMs: configured.intervalMs,
        targets: units.filter((u) => u.configured.probe.id === id).map((u) => u.target.name),
      });
    }
    const parts = { ledgerRead: [] as number[], prevLoad: [] as number[], build: [] as number[], hash: [] as number[], canonicalJson: [] as number[], prettyJson: [] as number[], schemaParse: [] as number[], archiveWrite: [] as number[] };
    const prev = await closer.get(lastDay);
    if (!prev) throw new Error(`the snapshot of ${lastDay} is not published`);
    const ledger = await state.dayLedger(lastDay);
    const nextDay = addDays(lastDay, 1);
    let body: SnapshotBody | undefined;
    for (let i = 0; i < BUILD_REPEATS; i++) {
      parts.ledgerRead.push((await timeIt(() => state.dayLedger(lastDay))).ms);
      parts.prevLoad.push((await timeIt(() => closer.get(lastDay))).ms);
      const built = await timeIt(() =>
        buildSnapshot({ date: nextDay, timezone: TZ, minGreenDays: loaded.config.trust.minGreenDays, ...byConfiguration, probes: probeCadence, ledger, prev }),
      );
      parts.build.push(built.ms);
      body = built.value;
      const hashed = await timeIt(() => snapshotHash(body!));
      parts.hash.push(hashed.ms);
      parts.canonicalJson.push((await timeIt(() => canonicalJson(body))).ms);
      const full: Snapshot = { ...body, hash: hashed.value };
      parts.prettyJson.push((await timeIt(() => `${JSON.stringify(full, null, 2)}\n`)).ms);
      parts.schemaParse.push((await timeIt(() => Snapshot.parse(full))).ms);
      // The archive write as the closer does it (schema check, hash check, readdir, write,
      // fsync, link, dir fsync), into a fresh directory each time: there it is the first day,
      // so it must chain to nothing.
      const first = { ...full, prevHash: null };
      const scratch = mkdtempSync(path.join(root, 'scratch-'));
      parts.archiveWrite.push((await timeIt(() => writeArchivedSnapshot(scratch, { ...first, hash: snapshotHash(first) }))).ms);
    }
    if (!body) throw new Error('no snapshot was built');

    // --- 3. sizes and memory ----------------------------------------------------------------
    const archive = dirSize(archiveDir);
    const redisInfo = await client.info('memory');
    const redisUsed = Number(/used_memory:(\d+)/.exec(redisInfo)?.[1] ?? NaN);
    const redisRss = Number(/used_memory_rss:(\d+)/.exec(redisInfo)?.[1] ?? NaN);
    // Published snapshots are kept in Redis without expiry; the ledgers and seen-markers expire
    // (60 and 40 days of wall-clock time), which this simulation compresses into a minute.
    const snapshotKeys = await client.keys(`${prefix}:snapshot:*`);
    const snapshotKeyBytes = (await Promise.all(snapshotKeys.map((k) => client.memory('USAGE', k)))).reduce<number>((a, b) => a + Number(b ?? 0), 0);
    const redisStats = await client.info('stats');
    const forks = Number(/total_forks:(\d+)/.exec(redisStats)?.[1] ?? NaN);
    const aofRewrites = Number(/aof_rewrites:(\d+)/.exec(await client.info('persistence'))?.[1] ?? NaN);
    const quiet = closeMs.filter((_, i) => !closeDuringPersistence[i]);
    const busy = closeMs.filter((_, i) => closeDuringPersistence[i]);
    const slowest = closeMs
      .map((v, i) => ({ day: i + 1, ms: ms(v), cpuMs: ms(closeCpuMs[i]!), gcMs: ms(gcInCloses[i]!), redisPersisting: closeDuringPersistence[i]! }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 5);
    const first20 = closeMs.slice(0, 20);
    const last20 = closeMs.slice(-20);
    const closeStats = stats(closeMs);
    const buildStats = stats(parts.build);
    const feed = last.controls.filter((c) => onFeed(c, loaded.config.trust.minGreenDays)).length;
    const maxStreak = Math.max(...last.controls.map((c) => c.streak));

    console.log(
      JSON.stringify(
        {
          machine: {
            cpus: os.cpus().length,
            cpu: os.cpus()[0]?.model,
            node: process.version,
            loadAvg1mBeforeAfterCloses: [+loadBefore[0]!.toFixed(2), +loadAfterCloses[0]!.toFixed(2)],
          },
          setup: {
            controls: loaded.catalog.controls.length,
            probes: PROBES,
            targetsPerProbe: TARGETS,
            days,
            firstDay: FIRST_DAY,
            lastDay,
            resultsRecorded: recorded,
            runs: plans,
            redis: 'embedded redis-server (AOF everysec), unix socket',
            archive: 'fsync per file + directory',
          },
          dayClose: {
            what: 'closer.closeDueDays at 00:15: lock, ledger read, previous snapshot load, build, hash, archive write (fsync), publish',
            ms: closeStats,
            first20MeanMs: mean(first20),
            last20MeanMs: mean(last20),
            slopeMsPer100Days: ms(slope(closeMs) * 100),
            over200ms: closeMs.filter((v) => v > targets.closeMs).length,
            cpuMsOfThisProcess: stats(closeCpuMs),
            gcMsDuringCloses: { total: ms(gcInCloses.reduce((a, b) => a + b, 0)), maxInOneClose: ms(Math.max(...gcInCloses)) },
            slowest,
            byRedisBackgroundPersistence: {
              what: 'busy: redis-server had a forked BGSAVE or AOF rewrite running just before or just after the close; quiet: neither',
              quiet: quiet.length > 0 ? { closes: quiet.length, over200ms: quiet.filter((v) => v > targets.closeMs).length, ...stats(quiet) } : { closes: 0 },
              busy: busy.length > 0 ? { closes: busy.length, over200ms: busy.filter((v) => v > targets.closeMs).length, ...stats(busy) } : { closes: 0 },
              redisForks: forks,
              aofRewrites,
            },
            targetMs: targets.closeMs,
            met: closeStats.max <= targets.closeMs,
          },
          buildOnly: {
            what: `buildSnapshot for ${nextDay}, previous snapshot of day ${days} (${lastDay}), in memory, ${BUILD_REPEATS} times`,
            ms: { median: buildStats.median, max: buildStats.max },
            targetMs: targets.buildMs,
            met: buildStats.max <= targets.buildMs,
          },
          partsOfAClose: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, { median: stats(v).median, max: stats(v).max }])),
          recordPerDayMs: { ...stats(recordMs), results: recorded / days },
          lastSnapshot: {
            counts: last.counts,
            onFeed: feed,
            maxStreak,
            controlsWithStreakOverYear: last.controls.filter((c) => c.streak >= 365).length,
            bytes: Buffer.byteLength(`${JSON.stringify(last, null, 2)}\n`),
            canonicalBytes: Buffer.byteLength(canonicalJson(last)),
            prettyBytesBySection: Object.fromEntries(
              (['controls', 'probeHealth', 'coverage', 'diff'] as const).map((k) => [k, Buffer.byteLength(JSON.stringify(last![k], null, 2))]),
            ),
          },
          verdictDaysOverRun: verdictDays,
          archive: { files: archive.files, bytes: archive.bytes, MiB: +(archive.bytes / MiB).toFixed(1), meanFileKiB: +(archive.bytes / archive.files / 1024).toFixed(1) },
          memory: {
            nodePeakRssMiB: +((process.resourceUsage().maxRSS * 1024) / MiB).toFixed(1),
            nodeRssNowMiB: +(process.memoryUsage().rss / MiB).toFixed(1),
            nodeHeapUsedMiB: +(process.memoryUsage().heapUsed / MiB).toFixed(1),
            redisUsedMiB: +(redisUsed / MiB).toFixed(1),
            redisRssMiB: +(redisRss / MiB).toFixed(1),
            redisPublishedSnapshots: { keys: snapshotKeys.length, MiB: +(snapshotKeyBytes / MiB).toFixed(1) },
          },
        },
        null,
        2,
      ),
    );
  } finally {
    client.disconnect();
    // The redis-server child is unref'd, so nothing else keeps this process alive while it
    // writes its final RDB on SIGTERM: without this timer Node exits mid-stop and the temp
    // directory is never removed.
    const keepAlive = setInterval(() => undefined, 1000);
    try {
      await redis.stop();
    } finally {
      clearInterval(keepAlive);
    }
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
