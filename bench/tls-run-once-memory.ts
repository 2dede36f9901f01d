/**
 * Where the peak RSS of `vigil run-once` on many TLS endpoints comes from.
 *
 *   npm run build && node dist/bench/tls-run-once-memory.js [endpoints=500] [repeats=3] [node=this node]
 *
 * One peer process (bench/tls-peers.ts) serves `endpoints` loopback TLS servers; `repeats` times,
 * a fresh `node bin/vigil.js run-once --json` (the real CLI on the built dist/) sweeps them under
 * GNU time (peak RSS: the kernel's high-water mark), with a preload (`--import`) that samples the
 * process every 5 ms and prints, at its RSS peak, what the RSS was made of: V8's heap (total and
 * used), its new space (young generation: what src/cli/short-run-heap.ts keeps at 1 MiB
 * semi-spaces), `external` (Buffers, native certificate wrappers) and the rest (code, OpenSSL,
 * sockets, malloc arenas), plus when the peak came (ms after start) relative to the end.
 *
 * Prints one JSON document: every run, the medians, the load average before and after.
 * Exits 1 when a run does not pass every endpoint.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPeerProcess } from './tls-peers.js';

const endpointCount = Number(process.argv[2] ?? 500);
const repeats = Number(process.argv[3] ?? 3);
const node = process.argv[4] ?? process.execPath;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(root, 'bin', 'vigil.js');
const MiB = 1024 * 1024;
const round = (n: number, digits = 1): number => +n.toFixed(digits);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The preload: samples memory, writes the breakdown at the RSS peak on exit (one line, prefixed). */
const sampler = `
import v8 from 'node:v8';
import { writeSync } from 'node:fs';
const t0 = performance.now();
let peak = { rss: 0 };
let maxNewSpace = 0;
const sample = () => {
  const u = process.memoryUsage();
  const newSpace = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
  maxNewSpace = Math.max(maxNewSpace, newSpace);
  if (u.rss > peak.rss) peak = { ...u, newSpace, atMs: performance.now() - t0 };
};
setInterval(sample, 5).unref();
process.on('exit', () => {
  sample();
  writeSync(2, 'VIGIL_BENCH_PEAK=' + JSON.stringify({ ...peak, maxNewSpace, endMs: performance.now() - t0 }) + '\\n');
});
`;

interface Run {
  wallSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  passed: number;
  atPeak: { heapTotalMiB: number; heapUsedMiB: number; newSpaceMiB: number; externalMiB: number; outsideHeapMiB: number; msBeforeEnd: number };
  maxNewSpaceMiB: number;
}

function runOnce(config: string, preload: string): Run {
  const t0 = performance.now();
  const run = spawnSync('/usr/bin/time', ['-f', 'VIGIL_BENCH_TIME=%M %U %S', node, '--import', preload, bin, 'run-once', '--config', config, '--json'], {
    encoding: 'utf8',
    maxBuffer: 256 * MiB,
  });
  const wallSeconds = (performance.now() - t0) / 1000;
  const [kib, user, system] = (/VIGIL_BENCH_TIME=(\S+) (\S+) (\S+)/.exec(run.stderr)?.slice(1) ?? []).map(Number) as [number, number, number];
  const peak = JSON.parse(/VIGIL_BENCH_PEAK=(.*)/.exec(run.stderr)?.[1] ?? 'null') as
    | { rss: number; heapTotal: number; heapUsed: number; external: number; newSpace: number; atMs: number; endMs: number; maxNewSpace: number }
    | null;
  if (!peak || !kib) throw new Error(`run-once printed no figures (exit ${run.status}): ${run.stderr.slice(-2000)}`);
  let passed = 0;
  try {
    const report = JSON.parse(run.stdout) as { results: Array<{ findings: Array<{ outcome: string }> }> };
    passed = report.results.flatMap((r) => r.findings).filter((f) => f.outcome === 'pass').length;
  } catch {
    console.error(`run-once printed no JSON report (exit ${run.status}): ${run.stderr.slice(-2000)}`);
  }
  return {
    wallSeconds: round(wallSeconds, 2),
    cpuSeconds: round(user + system, 2),
    peakRssMiB: round((kib * 1024) / MiB),
    passed,
    atPeak: {
      heapTotalMiB: round(peak.heapTotal / MiB),
      heapUsedMiB: round(peak.heapUsed / MiB),
      newSpaceMiB: round(peak.newSpace / MiB),
      externalMiB: round(peak.external / MiB),
      outsideHeapMiB: round((peak.rss - peak.heapTotal - peak.external) / MiB),
      msBeforeEnd: Math.round(peak.endMs - peak.atMs),
    },
    maxNewSpaceMiB: round(peak.maxNewSpace / MiB),
  };
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg().map((l) => round(l, 2));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-tls-memory-'));
  const peers = await startPeerProcess(endpointCount);
  try {
    const preload = path.join(dir, 'sampler.mjs');
    writeFileSync(preload, sampler);
    const config = path.join(dir, 'vigil.yaml');
    writeFileSync(
      config,
      [
        `dataDir: ${JSON.stringify(path.join(dir, 'var'))}`,
        'log: { level: warn }',
        'tls:',
        '  - name: bench-local',
        `    caFile: ${JSON.stringify(peers.caFile)}`,
        '    endpoints:',
        ...peers.ports.map((port) => `      - { host: 127.0.0.1, port: ${port}, servername: vigil.test }`),
        '',
      ].join('\n'),
    );
    const runs = Array.from({ length: repeats }, () => runOnce(config, preload));
    const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
    const allPassed = runs.every((r) => r.passed === endpointCount);
    console.log(
      JSON.stringify(
        {
          machine: { cpus: os.cpus().length, node: version, loadAverageBefore: loadBefore, loadAverageAfter: os.loadavg().map((l) => round(l, 2)) },
          endpoints: endpointCount,
          runs,
          medianPeakRssMiB: median(runs.map((r) => r.peakRssMiB)),
          medianWallSeconds: median(runs.map((r) => r.wallSeconds)),
          medianCpuSeconds: median(runs.map((r) => r.cpuSeconds)),
          target: { maxPeakRssMiB: 100 },
          met: { allPassed, peakRss: median(runs.map((r) => r.peakRssMiB)) <= 100 },
        },
        null,
        2,
      ),
    );
    if (!allPassed) {
      console.error('tls-run-once-memory: NOT EVERY ENDPOINT PASSED');
      process.exitCode = 1;
    }
  } finally {
    await peers.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
