/**
 * Idle daemon memory: RSS of a running vigil between and around its probe runs.
 *
 *   npm run build && node dist/bench/idle-rss.js [settleSeconds=30] [sampleSeconds=30]
 *
 * Starts the daemon in this process with `startDaemon`, on a config written to a temp dir: the
 * embedded redis-server (its own process; its RSS is reported separately, from /proc), HTTP
 * listeners on free loopback ports, and one `tls` target with one local TLS server (run in a
 * separate process, bench/tls-peers.ts), probed every minute. After the first result is
 * recorded it waits `settleSeconds`, then samples this process's RSS and heap every 100 ms for
 * `sampleSeconds`, and stops the daemon as SIGTERM would.
 *
 * Logs go through the daemon's own logger at `info`, into a discarding stream.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { probes as registry } from '../probes/index.js';
import { loadConfig } from '../src/config/load.js';
import { startDaemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { startPeerProcess } from './tls-peers.js';

const settleSeconds = Number(process.argv[2] ?? 30);
const sampleSeconds = Number(process.argv[3] ?? 30);
const MiB = 1024 * 1024;
const targetRssMiB = 150;
const probeId = 'tls-certificate-posture';
const targetName = 'bench-local';

const mib = (bytes: number): number => +(bytes / MiB).toFixed(1);

function stats(values: number[]): { min: number; median: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  return { min: mib(sorted[0]!), median: mib(median), max: mib(sorted[sorted.length - 1]!) };
}

/** VmRSS of another process in bytes, from /proc (Linux), or undefined. */
function procRss(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-idle-'));
  const peers = await startPeerProcess(1);
  const port = peers.ports[0]!;
  const file = path.join(dir, 'vigil.yaml');
  writeFileSync(
    file,
    [
      `dataDir: ${JSON.stringify(path.join(dir, 'var'))}`,
      'http:',
      '  public: { listen: 127.0.0.1:0 }',
      '  admin: { listen: 127.0.0.1:0, token: { env: VIGIL_BENCH_ADMIN_TOKEN } }',
      'log: { level: info }',
      'tls:',
      `  - name: ${targetName}`,
      `    endpoints: [{ host: 127.0.0.1, port: ${port}, servername: vigil.test }]`,
      `    caFile: ${JSON.stringify(peers.caFile)}`,
      'probes:',
      `  ${probeId}: { schedule: "* * * * *" }`,
      '',
    ].join('\n'),
  );
  const loaded = loadConfig(file, registry, { ...process.env, VIGIL_BENCH_ADMIN_TOKEN: 'bench-token-not-secret-0123456789abcdef' });
  const discard = new Writable({ write: (_chunk, _enc, cb) => cb() });
  const log = createLogger(loaded.config.log.level, discard);

  const rssAtStart = process.memoryUsage().rss;
  const t0 = performance.now();
  const daemon = await startDaemon({ loaded, log });
  const startSeconds = (performance.now() - t0) / 1000;
  let stopped = false;
  try {
    const redisPid = (() => {
      try {
        return Number(readFileSync(path.join(dir, 'var', 'redis', 'redis.pid'), 'utf8').trim()) || undefined;
      } catch {
        return undefined;
      }
    })();

    // The catch-up run on start: wait for its result, and check it passed.
    const deadline = Date.now() + 60_000;
    let first;
    for (;;) {
      first = (await daemon.state.latestResults()).results.get(`${probeId}|${targetName}`);
      if (first) break;
      if (Date.now() > deadline) throw new Error('no result recorded within 60 s of start');
      await sleep(100);
    }
    const firstResultSeconds = (performance.now() - t0) / 1000;
    const firstOutcomes = first.error ? [`error: ${first.error.message}`] : first.findings.map((f) => `${f.outcome}: ${f.message}`);
    if (first.error || first.findings.length !== 1 || first.findings[0]?.outcome !== 'pass') {
      throw new Error(`the first run did not pass: ${firstOutcomes.join('; ')}`);
    }

    await sleep(settleSeconds * 1000);

    const recordedBefore = daemon.recorder.recorded;
    const rss: number[] = [];
    const heapUsed: number[] = [];
    const heapTotal: number[] = [];
    const redisRss: number[] = [];
    const sampleEnd = performance.now() + sampleSeconds * 1000;
    let tick = 0;
    while (performance.now() < sampleEnd) {
      const m = process.memoryUsage();
      rss.push(m.rss);
      heapUsed.push(m.heapUsed);
      heapTotal.push(m.heapTotal);
      if (redisPid !== undefined && tick % 10 === 0) {
        const r = procRss(redisPid);
        if (r !== undefined) redisRss.push(r);
      }
      tick++;
      await sleep(100);
    }
    const runsDuringSampling = daemon.recorder.recorded - recordedBefore;

    const t1 = performance.now();
    await daemon.stop();
    stopped = true;
    const stopSeconds = (performance.now() - t1) / 1000;
    const rssStats = stats(rss);
    const maxRssMiB = +(process.resourceUsage().maxRSS / 1024).toFixed(1);

    console.log(
      JSON.stringify(
        {
          machine: { cpus: os.cpus().length, node: process.version },
          setup: {
            redis: 'embedded redis-server (AOF everysec, unix socket), separate process',
            tlsPeer: 'one TLS server in a separate process (bench/tls-peers.ts)',
            schedule: '* * * * *',
            logLevel: loaded.config.log.level,
          },
          rssBeforeStartMiB: mib(rssAtStart),
          startSeconds: +startSeconds.toFixed(2),
          firstResultSeconds: +firstResultSeconds.toFixed(2),
          firstResult: firstOutcomes,
          settleSeconds,
          sampleSeconds,
          samples: rss.length,
          runsRecordedWhileSampling: runsDuringSampling,
          nodeRssMiB: rssStats,
          heapUsedMiB: stats(heapUsed),
          heapTotalMiB: stats(heapTotal),
          maxRssMiB,
          redisServerRssMiB: redisRss.length ? stats(redisRss) : null,
          stopSeconds: +stopSeconds.toFixed(2),
          target: { maxIdleRssMiB: targetRssMiB },
          met: rssStats.max <= targetRssMiB,
        },
        null,
        2,
      ),
    );
  } finally {
    if (!stopped) await daemon.stop();
    await peers.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  // Exit now: the embedded redis-server's stop() leaves its 10 s stop-timeout timer running after
  // the server has exited (src/store/embedded-redis.ts), which would hold this process 10 s more.
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
