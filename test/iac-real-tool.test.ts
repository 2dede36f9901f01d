import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probes } from '../probes/index.js';
import { probe } from '../probes/iac-drift/probe.js';
import { resolveBinary } from '../probes/iac-drift/exec.js';
import { loadConfigText } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { runProbe } from '../src/probe/runner.js';

/**
 * With a real `terraform` or `tofu` when the machine has one (skipped otherwise): a local-backend
 * workspace using only the built-in `terraform_data` resource (no provider download), applied by
 * the test, then checked by vigil — in sync, then code not applied. Shows the exact commands work
 * against the real CLI, and that vigil's run leaves the state and its lock untouched.
 */
const tool = ['tofu', 'terraform'].map((b) => ({ b, file: resolveBinary(b, process.env.PATH) })).find((t) => t.file);
let dir: string;
let root: string;

const main = (input: string) => `terraform {\n  backend "local" {}\n}\nresource "terraform_data" "a" {\n  input = "${input}"\n}\noutput "x" {\n  value = terraform_data.a.output\n}\n`;

beforeAll(() => {
  if (!tool) return;
  root = mkdtempSync(path.join(tmpdir(), 'vigil-iac-real-'));
  dir = path.join(root, 'ws');
  execFileSync('mkdir', [dir]);
  writeFileSync(path.join(dir, 'main.tf'), main('one'));
  const env = { TF_IN_AUTOMATION: '1', TF_DATA_DIR: path.join(root, 'setup-data') };
  execFileSync(tool.file!, ['init', '-input=false'], { cwd: dir, env, stdio: 'ignore', timeout: 60_000 });
  execFileSync(tool.file!, ['apply', '-auto-approve', '-input=false'], { cwd: dir, env, stdio: 'ignore', timeout: 60_000 });
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

async function check() {
  const yaml = `iac:\n  - name: real\n    dir: ${dir}\n    binary: ${tool!.b}\n    timeoutMinutes: 2\nprobes:\n  iac-drift:\n    params: { confirmRuns: 1 }\n`;
  const loaded = loadConfigText(yaml, path.join(root, 'vigil.yaml'), probes);
  const [target] = probe.targets(loaded.config);
  const { result } = await runProbe({ probe, target: target!, params: loaded.probes.get('iac-drift')!.params, runId: 'real', scheduledFor: new Date(), timeoutMs: 120_000, log: createLogger('silent') });
  return result;
}

describe.skipIf(!tool)(`iac-drift with the real ${tool?.b ?? 'tool'}`, () => {
  it('in sync, then code not applied; state and lock untouched', async () => {
    const state = readFileSync(path.join(dir, 'terraform.tfstate'), 'utf8');
    const serial = (JSON.parse(state) as { serial: number }).serial;
    const inSync = await check();
    expect(inSync.error).toBeUndefined();
    expect(inSync.findings).toMatchObject([{ resource: 'real', outcome: 'pass', details: { exitCode: 0, stateSerialBefore: serial, stateSerialAfter: serial, toolVersion: expect.stringMatching(/^\d+\.\d+/) } }]);

    writeFileSync(path.join(dir, 'main.tf'), main('two'));
    const changed = await check();
    expect(changed.findings.map((f) => [f.resource, f.outcome])).toEqual([
      ['real', 'fail'],
      ['real/terraform_data.a', 'fail'],
    ]);
    expect(changed.findings[1]!.message).toBe('terraform_data.a code not applied (update: input, output) — apply the reviewed change (or revert it in the code)');

    expect(readFileSync(path.join(dir, 'terraform.tfstate'), 'utf8')).toBe(state);
    expect(existsSync(path.join(dir, '.terraform.tfstate.lock.info'))).toBe(false);
    // Nothing of vigil's run stays in the workspace (TF_DATA_DIR was a private temp dir).
    expect(readdirSync(dir).sort()).toEqual(['main.tf', 'terraform.tfstate']);
  }, 120_000);
});
