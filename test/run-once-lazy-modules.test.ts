import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// What a CI gate's start-up pays for (README "Benchmarks"): a run-once on the probes' default
// schedules validates no cron expression, and one without a tls target opens no TLS connection,
// so neither loads the libraries for it. Checked in a fresh process on the built CLI, where
// module loading is real (vitest's own module graph would hide it).

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const main = path.join(root, 'dist/src/cli/main.js');
let dir: string;

beforeAll(() => {
  if (!existsSync(main)) {
    const built = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], { encoding: 'utf8' });
    if (built.status !== 0 && !existsSync(main)) throw new Error(`build failed: ${built.stdout}${built.stderr}`);
  }
  dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-lazy-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `vigil run-once` on `config` in a fresh process; returns the exit code and what got loaded. */
function modulesLoadedBy(config: string): { code: number; cjs: string[]; tls: boolean } {
  const file = path.join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, config);
  const script = `
    import { createRequire } from 'node:module';
    const { main } = await import(${JSON.stringify(main)});
    const code = await main(['run-once', '--config', ${JSON.stringify(file)}, '--json'], { out: () => {}, err: () => {}, env: {} });
    const cache = createRequire(${JSON.stringify(`${root}/`)}).cache;
    console.log(JSON.stringify({ code, cjs: Object.keys(cache), tls: process.moduleLoadList.includes('NativeModule tls') }));
  `;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  if (run.status !== 0) throw new Error(`child failed (${run.status}): ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').pop() ?? '') as { code: number; cjs: string[]; tls: boolean };
}

const cronLibraries = /node_modules[\\/](cron-parser|luxon|node-cron)[\\/]/;

describe('run-once loads what it needs, when it needs it', () => {
  it('a config on default schedules and without a tls target loads no cron library and not node:tls', () => {
    const loaded = modulesLoadedBy('{}\n');
    expect(loaded.code).toBe(2); // nothing judged
    expect(loaded.cjs.filter((f) => cronLibraries.test(f))).toEqual([]);
    expect(loaded.tls).toBe(false);
  });

  it('a schedule set in the config is still validated by node-cron and cron-parser', () => {
    const loaded = modulesLoadedBy("probes:\n  tls-certificate-posture:\n    schedule: '*/5 * * * *'\n");
    expect(loaded.cjs.some((f) => /node_modules[\\/]node-cron[\\/]/.test(f))).toBe(true);
    expect(loaded.cjs.some((f) => /node_modules[\\/]cron-parser[\\/]/.test(f))).toBe(true);
    expect(loaded.tls).toBe(false);
  });
});
