import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operatorTuned, shortRunV8Flags } from '../src/cli/short-run-heap.js';

// `vigil run-once` tunes V8 for a process that runs once (src/cli/short-run-heap.ts): the young
// generation keeps its initial size instead of growing to 16 MiB semi-spaces, which is most of
// what the README's run-once peak RSS figures gained. Checked on the built CLI in fresh
// processes, through a preload that records the largest new space the process ever had.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin/vigil.js');
const main = path.join(root, 'dist/src/cli/main.js');
const MiB = 1024 * 1024;
let dir: string;
let preload: string;
let config: string;

beforeAll(() => {
  if (!existsSync(main)) {
    const built = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], { encoding: 'utf8' });
    if (built.status !== 0 && !existsSync(main)) throw new Error(`build failed: ${built.stdout}${built.stderr}`);
  }
  dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-short-run-'));
  preload = path.join(dir, 'new-space.mjs');
  writeFileSync(
    preload,
    [
      "import v8 from 'node:v8';",
      "import { writeSync } from 'node:fs';",
      'let max = 0;',
      "const sample = () => { max = Math.max(max, v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size); };",
      'setInterval(sample, 2).unref();',
      "process.on('exit', () => { sample(); writeSync(2, `VIGIL_TEST_NEW_SPACE=${max}\\n`); });",
      '',
    ].join('\n'),
  );
  // Enough YAML and zod work for an untuned process to grow its young generation; no endpoint
  // that answers (nothing listens on these ports), so run-once judges each `unknown`, fast.
  config = path.join(dir, 'vigil.yaml');
  writeFileSync(
    config,
    ['tls:', '  - name: closed-ports', '    endpoints:', ...Array.from({ length: 200 }, (_, i) => `      - { host: 127.0.0.1, port: ${1 + i}, servername: vigil.test }`), ''].join('\n'),
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The largest new space (bytes) of a fresh `node --import preload …args`, and its exit code. */
function newSpaceOf(args: string[], env: NodeJS.ProcessEnv = process.env): { bytes: number; code: number | null } {
  const run = spawnSync(process.execPath, ['--import', preload, ...args], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * MiB, env });
  const bytes = Number(/VIGIL_TEST_NEW_SPACE=(\d+)/.exec(run.stderr)?.[1] ?? Number.NaN);
  if (!Number.isFinite(bytes)) throw new Error(`child printed no new-space figure (exit ${run.status}): ${run.stderr}`);
  return { bytes, code: run.status };
}

describe('run-once tunes V8 for one short run', () => {
  it('sets the young generation to grow by a factor of 1, among its flags', () => {
    expect(shortRunV8Flags).toContain('--semi-space-growth-factor=1');
  });

  it('the real binary keeps the young generation at its initial size during run-once', () => {
    const run = newSpaceOf([bin, 'run-once', '--config', config, '--json']);
    expect(run.code).toBe(2); // every endpoint unknown: nothing listens there
    expect(run.bytes).toBeLessThanOrEqual(2 * MiB);
  });

  it('other commands are not tuned: config check on the same config grows it', () => {
    const check = newSpaceOf([bin, 'config', 'check', '--config', config]);
    expect(check.code).toBe(0);
    expect(check.bytes).toBeGreaterThanOrEqual(8 * MiB);
  });

  it("an operator's own young-generation flag stands: on the node command line or in NODE_OPTIONS", () => {
    const flagged = newSpaceOf(['--max-semi-space-size=16', bin, 'run-once', '--config', config, '--json']);
    expect(flagged.code).toBe(2);
    expect(flagged.bytes).toBeGreaterThanOrEqual(8 * MiB);
    const viaEnv = newSpaceOf([bin, 'run-once', '--config', config, '--json'], { ...process.env, NODE_OPTIONS: '--max_semi_space_size=16' });
    expect(viaEnv.code).toBe(2);
    expect(viaEnv.bytes).toBeGreaterThanOrEqual(8 * MiB);
  });

  it.each([
    [[], undefined, false],
    [['--max-semi-space-size=2'], undefined, true],
    [[], '--no-opt', true],
    [[], '--max-old-space-size=512 --maglev', true],
    [['--import', 'x.mjs'], '--max-old-space-size=512', false],
    [[], '--optimize-for-size', true],
    [[], '--optional-thing', false],
    // V8 also negates a flag without the dash (`node --noopt` runs); the operator's choice stands.
    [['--nooptimize-for-size'], undefined, true],
    [['--noopt'], undefined, true],
    [['--nomaglev'], undefined, true],
    [['--no_maglev'], undefined, true],
    [['--notrace-gc', '--nonsense'], undefined, false],
  ] as Array<[string[], string | undefined, boolean]>)('operatorTuned(%j, %j) is %s', (execArgv, nodeOptions, expected) => {
    expect(operatorTuned(execArgv, nodeOptions)).toBe(expected);
  });

  it('main() called in-process with its own streams (as tests do) is not tuned either', () => {
    const script = `
      const { main } = await import(${JSON.stringify(main)});
      process.exitCode = await main(['run-once', '--config', ${JSON.stringify(config)}, '--json'], { out: () => {}, err: () => {}, env: {} });
    `;
    const run = newSpaceOf(['--input-type=module', '-e', script]);
    expect(run.code).toBe(2);
    expect(run.bytes).toBeGreaterThanOrEqual(8 * MiB);
  });
});
