/**
 * The tested population at scale (issue 13): one GitHub-org-sized target of `repos` repositories
 * judged `runs` times a day for `days` days, through the real record script (every resource's
 * worst outcome of the day merged in Redis), the real day close and the archive on disk.
 *
 *   npm run build && node dist/bench/population.js [repos=5000] [days=400] [runs=2]
 *
 * Resources are named like GitHub repositories (`github.com/acme-corp/service-0042`); per run ~1 %
 * fail (with a remediation message), ~0.3 % unknown, 3 % not applicable (archived), the rest
 * pass. A second, small backup probe reports evidence levels (L4/L5), so restoreTestedDays and
 * the levels are exercised too. Measures, per day: record time per run, day-close time, the day
 * file's size raw and gzip-compressed, the population's share of it, the ledger's Redis memory,
 * and on the last day the email renderings' sizes (HTML, text) and the Markdown's. Archive growth
 * is fitted over all days (bytes per day; linear means the slope is constant).
 *
 * Prints one JSON document.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import YAML from 'yaml';
import { z } from 'zod';
import { loadConfigText } from '../src/config/load.js';
import { addDays, zonedInstant } from '../src/posture/days.js';
import { renderHtml, renderMarkdown, renderText } from '../src/posture/render.js';
import type { Snapshot } from '../src/posture/snapshot-types.js';
import { defineProbe, type AnyProbe, type Finding, type ProbeResult } from '../src/probe/contract.js';
import { configuredUnits } from '../src/probe/units.js';
import { openRedis } from '../src/queue/connection.js';
import { DayCloser } from '../src/store/day-close.js';
import { startEmbeddedRedis } from '../src/store/embedded-redis.js';
import { StateStore } from '../src/store/state.js';

const repos = Number(process.argv[2] ?? 5000);
const days = Number(process.argv[3] ?? 400);
const runsPerDay = Number(process.argv[4] ?? 2);
const FIRST_DAY = '2025-01-01';
const TZ = 'UTC';
const BACKUPS = 12;
const log = pino({ level: 'silent' });
const KiB = 1024;
const MiB = 1024 * 1024;

const hours = Array.from({ length: runsPerDay }, (_, i) => Math.floor((i * 24) / runsPerDay));
const schedule = `0 ${hours.join(',')} * * *`;

function rand(...xs: number[]): number {
  let h = 2166136261;
  for (const x of xs) h = Math.imul(h ^ (x + 0x9e3779b9), 16777619) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0x5bd1e995) >>> 0;
  return (h >>> 0) / 4294967296;
}

const probe = (id: string, targets: string[]): AnyProbe =>
  defineProbe({
    id,
    title: `Bench ${id}`,
    source: 'github',
    controls: [],
    schedule,
    docs: { checks: 'none', permissions: 'none', remediation: 'none' },
    params: z.strictObject({}),
    targets: () => targets.map((name) => ({ name, spec: {} })),
    collect: async () => ({}),
    evaluate: () => [],
  });
const probes = [probe('bench-repos', ['acme-corp']), probe('bench-restore', ['drills'])];

function repoFindings(d: number, run: number): Finding[] {
  return Array.from({ length: repos }, (_, r) => {
    const resource = `github.com/acme-corp/service-${String(r).padStart(4, '0')}`;
    if (r % 33 === 0) return { resource, outcome: 'not_applicable', message: 'archived repository: branch rules do not apply' };
    const x = rand(d, run, r);
    if (x < 0.01) return { resource, outcome: 'fail', message: 'default branch main allows force pushes: enable "Block force pushes" in a ruleset or the classic protection' };
    if (x < 0.013) return { resource, outcome: 'unknown', message: 'the token cannot read the repository rulesets (403): grant "Administration: read"' };
    return { resource, outcome: 'pass', message: 'default branch main: PR review, status checks, no force push, no deletion, no bypass' };
  });
}

function backupFindings(): Finding[] {
  return Array.from({ length: BACKUPS }, (_, b) => ({
    resource: `drill/system-${b}`,
    outcome: 'pass',
    message: 'restore drill passed',
    details: { level: b % 3 === 0 ? 4 : 5 },
  }));
}

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

function stats(v: number[]): { median: number; p95: number; max: number } {
  const s = [...v].sort((a, b) => a - b);
  const at = (q: number) => +(s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0).toFixed(1);
  return { median: at(0.5), p95: at(0.95), max: +(s.at(-1) ?? 0).toFixed(1) };
}

async function main(): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-pop-'));
  const dataDir = path.join(root, 'data');
  const archiveDir = path.join(root, 'archive');
  mkdirSync(dataDir);
  const redis = await startEmbeddedRedis({ dataDir, log });
  const client = openRedis({ location: redis.connection }, 'client', 'vigil-bench');
  try {
    const controlsFile = path.join(root, 'controls.yaml');
    const control = (id: string, p: string, soc2: string, iso: string) => ({ id, title: id, public: true, publicTitle: id, publicDescription: id, frameworks: { soc2: [soc2], iso27001: [iso] }, probes: [p] });
    writeFileSync(controlsFile, YAML.stringify({ controls: [control('branch-protection', 'bench-repos', 'CC8.1', 'A.8.32'), control('restore-testing', 'bench-restore', 'A1.3', 'A.5.30')] }));
    const configText = [`timezone: ${TZ}`, `dataDir: ${JSON.stringify(dataDir)}`, 'redis: { prefix: bench }', `controls: ${JSON.stringify(controlsFile)}`, `archive: { dir: ${JSON.stringify(archiveDir)} }`, 'log: { level: silent }', ''].join('\n');
    const configFile = path.join(root, 'vigil.yaml');
    writeFileSync(configFile, configText);
    const loaded = loadConfigText(configText, configFile, probes, {});
    const units = configuredUnits(loaded);
    const state = new StateStore(client, 'bench', TZ);
    const closer = new DayCloser({ redis: client, prefix: 'bench', loaded, units, state, log });
    await closer.markFirstDay(new Date(`${FIRST_DAY}T00:00:00Z`));

    const recordMs: number[] = [];
    const closeMs: number[] = [];
    const fileBytes: number[] = [];
    const gzipBytes: number[] = [];
    const archiveBytes: number[] = [];
    const ledgerRedisBytes: number[] = [];
    let total = 0;
    let last: Snapshot | undefined;
    const t0 = performance.now();
    for (let d = 0; d < days; d++) {
      const day = addDays(FIRST_DAY, d);
      for (let run = 0; run < runsPerDay; run++) {
        const at = zonedInstant(day, `${String(hours[run]).padStart(2, '0')}:00`, TZ).toISOString();
        const base = { scheduledFor: at, startedAt: at, finishedAt: at };
        const repoRun: ProbeResult = { runId: `bench-repos|acme-corp|${Date.parse(at)}`, probe: 'bench-repos', target: 'acme-corp', findings: repoFindings(d, run), ...base };
        const w = performance.now();
        await state.record(repoRun);
        recordMs.push(performance.now() - w);
        await state.record({ runId: `bench-restore|drills|${Date.parse(at)}`, probe: 'bench-restore', target: 'drills', findings: backupFindings(), ...base });
      }
      ledgerRedisBytes.push((await client.memory('USAGE', `bench:day-population:${day}`)) ?? 0);
      const w = performance.now();
      const out = await closer.closeDueDays(zonedInstant(addDays(day, 1), '00:15', TZ));
      closeMs.push(performance.now() - w);
      const closed = out[0];
      if (out.length !== 1 || closed?.result !== 'closed') throw new Error(`closing ${day} failed: ${JSON.stringify(out.map((o) => o.result))}`);
      last = closed.snapshot;
      const text = readFileSync(path.join(archiveDir, `${day}.json`));
      fileBytes.push(text.length);
      gzipBytes.push(gzipSync(text).length);
      total += text.length;
      archiveBytes.push(total);
    }
    const wallS = (performance.now() - t0) / 1000;
    if (!last) throw new Error('no day closed');
    const onDisk = readdirSync(archiveDir)
      .filter((n) => n.endsWith('.json'))
      .reduce((sum, n) => sum + statSync(path.join(archiveDir, n)).size, 0);
    const lastText = readFileSync(path.join(archiveDir, `${last.date}.json`), 'utf8');
    const withoutPopulation = `${JSON.stringify({ ...last, population: undefined }, null, 2)}\n`;
    const html = renderHtml(last, { organization: 'Acme' });
    const md = renderMarkdown(last, { organization: 'Acme' });
    const txt = renderText(last, { organization: 'Acme' });
    const lastRepos = last.population?.find((u) => u.probe === 'bench-repos');
    console.log(
      JSON.stringify(
        {
          bench: 'population',
          setup: { repos, days, runsPerDay, backupResources: BACKUPS, node: process.version, cpus: os.cpus().length },
          wallSeconds: +wallS.toFixed(1),
          recordPerRunMs: { ...stats(recordMs), what: `StateStore.record of one run with ${repos} findings (population merge in the record script)` },
          dayCloseMs: { ...stats(closeMs), first20Mean: +(closeMs.slice(0, 20).reduce((a, b) => a + b, 0) / Math.min(20, closeMs.length)).toFixed(1), last20Mean: +(closeMs.slice(-20).reduce((a, b) => a + b, 0) / Math.min(20, closeMs.length)).toFixed(1), slopeMsPerDay: +slope(closeMs).toFixed(4) },
          dayFile: {
            rawKiB: stats(fileBytes.map((b) => b / KiB)),
            gzipKiB: stats(gzipBytes.map((b) => b / KiB)),
            lastDayPopulationShare: +(1 - Buffer.byteLength(withoutPopulation) / Buffer.byteLength(lastText)).toFixed(3),
            lastDayListed: lastRepos?.resources.length,
            lastDayOmitted: lastRepos?.omitted ?? 0,
          },
          archive: { files: days, MiB: +(onDisk / MiB).toFixed(1), gzipMiBIfCompressed: +(gzipBytes.reduce((a, b) => a + b, 0) / MiB).toFixed(1), bytesPerDaySlope: Math.round(slope(archiveBytes)), meanFileKiB: +(onDisk / days / KiB).toFixed(1) },
          ledgerRedisKiBPerDay: stats(ledgerRedisBytes.map((b) => b / KiB)),
          renderingsLastDayKiB: { emailHtml: +(Buffer.byteLength(html) / KiB).toFixed(1), emailText: +(Buffer.byteLength(txt) / KiB).toFixed(1), markdown: +(Buffer.byteLength(md) / KiB).toFixed(1) },
          restoreTesting: last.controls.find((c) => c.id === 'restore-testing'),
        },
        (k, v) => (k === 'failing' || k === 'reasons' || k === 'cadence' || k === 'frameworks' ? undefined : v),
        2,
      ),
    );
  } finally {
    client.disconnect();
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
