/**
 * TLS sweep: one run of the real tls-certificate-posture probe over one target with many local
 * endpoints, timed, with the peak RSS of the probing process.
 *
 *   npm run build && node dist/bench/tls-sweep.js [endpoints=500] [sweeps=1] [legacyProtocolCheckHours=24]
 *
 * The TLS servers run in a separate process (bench/tls-peers.ts) so that their memory does not
 * count against this one. Each serves leaf + intermediate under a test root given as the
 * target's caFile, and refuses TLS 1.0/1.1, so every endpoint must pass. Endpoints are written
 * as in the config, `{ host: 127.0.0.1, port, servername: vigil.test }` (SNI sent, the name
 * checked against the certificate's DNS names, no DNS lookup).
 *
 * The probe is called as the daemon's runner calls it: `collect` with the default params (but
 * `legacyProtocolCheckHours` from the command line) and an abort signal on the default 120 s run
 * budget, then `evaluate`. Sweeps run in one process, as a daemon's runs do: the first makes the
 * TLS 1.0/1.1 checks, later ones reuse their verdicts (unless legacyProtocolCheckHours is 0), and
 * certificates and chain verdicts are remembered from the first. Each run reports the TCP
 * connections and handshakes the servers saw for it, per endpoint. For the side-by-side with
 * blackbox_exporter in a fresh process, see bench/tls-blackbox.ts. RSS of this process is sampled
 * every 20 ms (`process.memoryUsage().rss`) and the kernel's high-water mark
 * (`process.resourceUsage().maxRSS`, the whole life of the process) is reported too.
 *
 * Exits 1 if any endpoint does not pass.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import pino from 'pino';
import { TlsEndpoint } from '../src/config/schema.js';
import type { Finding } from '../src/probe/contract.js';
import { maxConcurrentEndpoints, probe } from '../probes/tls-certificate-posture/probe.js';
import { startPeerProcess } from './tls-peers.js';

const endpointCount = Number(process.argv[2] ?? 500);
const sweeps = Number(process.argv[3] ?? 1);
const legacyProtocolCheckHours = Number(process.argv[4] ?? 24);
const MiB = 1024 * 1024;
const targets = { seconds: 10, peakRssMiB: 200 };
const log = pino({ level: 'silent' });

const mib = (bytes: number): number => +(bytes / MiB).toFixed(1);

/** The soft limit on open files (`ulimit -n`), from /proc on Linux. */
function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/** Samples this process's RSS on a timer until stopped. */
function rssSampler(intervalMs: number): { stop(): { peak: number; samples: number; maxGapMs: number } } {
  let peak = process.memoryUsage().rss;
  let samples = 1;
  let last = performance.now();
  let maxGapMs = 0;
  const timer = setInterval(() => {
    const t = performance.now();
    maxGapMs = Math.max(maxGapMs, t - last);
    last = t;
    peak = Math.max(peak, process.memoryUsage().rss);
    samples++;
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      // A synchronous stretch (evaluate) shows up as the gap to this last sample.
      maxGapMs = Math.max(maxGapMs, performance.now() - last);
      peak = Math.max(peak, process.memoryUsage().rss);
      return { peak, samples, maxGapMs: Math.round(maxGapMs) };
    },
  };
}

async function main(): Promise<void> {
  // The peer process holds one listening socket per server plus the accepted connections; this
  // process at most maxConcurrentEndpoints main handshakes plus as many legacy checks (up to 2 sockets each) at once.
  const fdLimit = openFileLimit();
  if (fdLimit !== undefined && fdLimit < endpointCount + 256) {
    throw new Error(`open-file limit ${fdLimit} is too low for ${endpointCount} servers: raise it (ulimit -n ${endpointCount + 1024})`);
  }
  const tStart = performance.now();
  const peers = await startPeerProcess(endpointCount);
  const peersStartSeconds = (performance.now() - tStart) / 1000;
  const params = probe.params.parse({ legacyProtocolCheckHours });
  const endpoints = peers.ports.map((port) => TlsEndpoint.parse({ host: '127.0.0.1', port, servername: 'vigil.test' }));
  const target = { name: 'bench-local', spec: { endpoints, caFile: peers.caFile } };

  const runs: Array<Record<string, unknown>> = [];
  let allPassed = true;
  let worst = { seconds: 0, peakRssBytes: 0 };
  let counted = (await peers.stats()).perPort;
  try {
    for (let sweep = 1; sweep <= sweeps; sweep++) {
      const rssBefore = process.memoryUsage().rss;
      const sampler = rssSampler(20);
      // As src/probe/runner.ts: an abort signal on the run's time budget (worker.timeoutSeconds, default 120 s).
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new Error('collect exceeded 120000 ms')), 120_000);
      const t0 = performance.now();
      const observation = await probe.collect({ target, params, signal: controller.signal, log, now: new Date() });
      const t1 = performance.now();
      clearTimeout(timer);
      const findings: Finding[] = probe.evaluate(observation, params, new Date());
      const t2 = performance.now();
      const rss = sampler.stop();

      const outcomes: Record<string, number> = { pass: 0, fail: 0, unknown: 0, not_applicable: 0 };
      for (const f of findings) outcomes[f.outcome] = (outcomes[f.outcome] ?? 0) + 1;
      const passed = findings.length === endpointCount && outcomes.pass === endpointCount;
      if (!passed) {
        allPassed = false;
        const notPassing = findings.filter((f) => f.outcome !== 'pass').slice(0, 5);
        console.error(`SWEEP ${sweep} FAILED: ${outcomes.pass} of ${endpointCount} endpoints passed; first others:`);
        for (const f of notPassing) console.error(`  ${f.resource}: ${f.outcome}: ${f.message}`);
      }
      const seconds = (t2 - t0) / 1000;
      // Let the probe's polite closes (end, then destroy after 1 s) settle before reading the counts.
      await new Promise((r) => setTimeout(r, 1_500));
      const now = (await peers.stats()).perPort;
      const perEndpoint = (key: 'connections' | 'completed' | 'refused'): number =>
        +(now.reduce((sum, c, i) => sum + c[key] - (counted[i]?.[key] ?? 0), 0) / endpointCount).toFixed(2);
      const serverSaw = { tcpConnections: perEndpoint('connections'), handshakesCompleted: perEndpoint('completed'), handshakesRefused: perEndpoint('refused') };
      counted = now;
      worst = { seconds: Math.max(worst.seconds, seconds), peakRssBytes: Math.max(worst.peakRssBytes, rss.peak) };
      runs.push({
        sweep,
        endpoints: endpointCount,
        findings: findings.length,
        outcomes,
        collectSeconds: +((t1 - t0) / 1000).toFixed(2),
        evaluateMs: +(t2 - t1).toFixed(1),
        totalSeconds: +seconds.toFixed(2),
        endpointsPerSecond: Math.round(endpointCount / seconds),
        rssBeforeMiB: mib(rssBefore),
        peakRssSampledMiB: mib(rss.peak),
        rssSamples: rss.samples,
        maxSampleGapMs: rss.maxGapMs,
        perEndpoint: serverSaw,
      });
    }

    const peerStats = await peers.stats();
    const maxRssKiB = process.resourceUsage().maxRSS; // kilobytes (KiB) on Linux

    console.log(
      JSON.stringify(
        {
          machine: { cpus: os.cpus().length, node: process.version, openFileLimit: fdLimit ?? null },
          probe: probe.id,
          maxConcurrentEndpoints,
          legacyProtocolCheckHours,
          peers: { process: 'separate (bench/tls-peers.ts)', servers: endpointCount, startSeconds: +peersStartSeconds.toFixed(2), rssMiB: mib(peerStats.rssBytes) },
          runs,
          measuringProcess: {
            peakRssSampledMiB: mib(worst.peakRssBytes),
            maxRssMiB: +(maxRssKiB / 1024).toFixed(1),
            finalRssMiB: mib(process.memoryUsage().rss),
          },
          targets: { endpoints: 500, maxSeconds: targets.seconds, maxPeakRssMiB: targets.peakRssMiB },
          met: {
            allPassed,
            time: worst.seconds <= targets.seconds,
            peakRss: Math.max(worst.peakRssBytes, maxRssKiB * 1024) <= targets.peakRssMiB * MiB,
          },
        },
        null,
        2,
      ),
    );
  } finally {
    await peers.close();
  }
  if (!allPassed) {
    console.error(`tls-sweep: NOT ALL ENDPOINTS PASSED`);
    process.exitCode = 1;
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
