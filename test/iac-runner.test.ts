import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigText } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import type { ProbeResult } from '../src/probe/contract.js';
import { runProbe } from '../src/probe/runner.js';
import { probes } from '../probes/index.js';
import { probe } from '../probes/iac-drift/probe.js';
import { installFakeTofu } from './helpers/fake-tofu.js';

/** Real `show -json` documents replayed by the stand-in (see test/fixtures/testdata/README.md). */
const IAC = path.resolve(import.meta.dirname, 'fixtures/testdata/iac');
const doc = (rel: string) => path.join(IAC, rel);

let root: string;
let bin: string;
let wsDir: string;
let fake: ReturnType<typeof installFakeTofu>;
const savedPath = process.env.PATH;
const COMMIT = '0123456789abcdef0123456789abcdef01234567';

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'vigil-iac-test-'));
  bin = path.join(root, 'bin');
  wsDir = path.join(root, 'infra', 'prod');
  mkdirSync(wsDir, { recursive: true });
  writeFileSync(path.join(wsDir, 'main.tf'), readFileSync(doc('opentofu-show-json/drift/main.tf')));
  writeFileSync(path.join(wsDir, 'backend.tf'), 'terraform {\n  backend "s3" {}\n}\n');
  // The workspace is a git checkout: the evidence names its commit (read from .git, git is not run).
  mkdirSync(path.join(root, 'infra', '.git', 'refs', 'heads'), { recursive: true });
  writeFileSync(path.join(root, 'infra', '.git', 'HEAD'), 'ref: refs/heads/main\n');
  writeFileSync(path.join(root, 'infra', '.git', 'refs', 'heads', 'main'), `${COMMIT}\n`);
  fake = installFakeTofu(bin, { show: doc('terraform-json-plans/no_changes/plan.json') });
  process.env.PATH = `${bin}${path.delimiter}${savedPath}`;
  process.env.VIGIL_TEST_INHERITED = 'must-not-reach-the-tool';
  process.env.AWS_REGION = 'eu-west-1';
});

afterAll(() => {
  process.env.PATH = savedPath;
  delete process.env.VIGIL_TEST_INHERITED;
  delete process.env.AWS_REGION;
  rmSync(root, { recursive: true, force: true });
});

afterEach(() => fake.clearCalls());

interface Setup {
  workspace?: string;
  params?: string;
  now?: Date;
  previous?: ProbeResult;
  logs?: PassThrough;
}

function configYaml(workspace: string, params = ''): string {
  return `iac:\n${workspace}\nprobes:\n  iac-drift:\n    params:\n${params || '      confirmRuns: 1'}\n`;
}

async function run(s: Setup = {}) {
  const yaml = configYaml(s.workspace ?? `  - name: prod\n    dir: infra/prod\n    env: [AWS_REGION]\n    timeoutMinutes: 1`, s.params);
  const loaded = loadConfigText(yaml, path.join(root, 'vigil.yaml'), probes);
  const configured = loaded.probes.get('iac-drift')!;
  const [target] = probe.targets(loaded.config);
  const stream = s.logs ?? new PassThrough();
  if (!s.logs) stream.resume();
  const outcome = await runProbe({
    probe,
    target: target!,
    params: configured.params,
    runId: 'run-1',
    scheduledFor: s.now ?? new Date(),
    timeoutMs: 60_000,
    log: createLogger('trace', stream),
    previous: s.previous,
    ...(s.now ? { now: () => s.now as Date } : {}),
  });
  return outcome;
}

const ws = (r: ProbeResult) => r.findings.find((f) => f.resource === 'prod')!;
const outFile = (argv: string[]) => argv.find((a) => a.startsWith('-out='))!.slice(5);

describe('iac-drift runner against a stand-in tofu replaying real outputs', () => {
  it('in sync: runs exactly init, state pull, plan, show, state pull, with the allow-listed env only', async () => {
    fake.script({ show: doc('terraform-json-plans/no_changes/plan.json') });
    const { result } = await run();
    expect(result.error).toBeUndefined();
    expect(result.findings.map((f) => f.outcome)).toEqual(['pass']);
    const calls = fake.calls();
    expect(calls.map((c) => c.argv.slice(0, 2).join(' '))).toEqual(['init -input=false', 'state pull', 'plan -input=false', 'show -json', 'state pull']);
    expect(calls[0]!.argv).toEqual(['init', '-input=false', '-lockfile=readonly']);
    const plan = calls[2]!.argv;
    expect(plan.slice(0, 5)).toEqual(['plan', '-input=false', '-no-color', '-detailed-exitcode', '-lock=false']);
    expect(plan).toHaveLength(6);
    expect(calls[3]!.argv).toEqual(['show', '-json', outFile(plan)]);
    for (const c of calls) {
      expect(c.cwd).toBe(wsDir);
      expect(c.argv.join(' ')).not.toMatch(/-upgrade|force-unlock|-lock=true|-lock-timeout/);
      expect(Object.keys(c.env).sort()).toEqual(['AWS_REGION', 'TF_DATA_DIR', 'TF_IN_AUTOMATION']);
      expect(c.env.TF_IN_AUTOMATION).toBe('1');
    }
    // A fresh TF_DATA_DIR beside the plan file in one private temp dir, all of it gone afterwards.
    expect(path.dirname(calls[0]!.env.TF_DATA_DIR!)).toBe(path.dirname(outFile(plan)));
    expect(existsSync(path.dirname(outFile(plan)))).toBe(false);
    expect(ws(result).details).toMatchObject({ tool: 'tofu', toolVersion: '0.12.11', mode: 'plan', exitCode: 0, commit: COMMIT, stateSerialBefore: 7, stateSerialAfter: 7 });
    expect(ws(result).details!.durationMs).toEqual(expect.any(Number));
  });

  it('out-of-band change (OpenTofu drift output, exit 2): red per resource', async () => {
    fake.script({ show: doc('opentofu-show-json/drift/output.json'), plan: { exit: 2 } });
    const { result } = await run();
    expect(Object.fromEntries(result.findings.map((f) => [f.resource, f.outcome]))).toEqual({
      prod: 'fail',
      'prod/test_instance.should_refresh': 'fail',
      'prod/test_instance.no_refresh': 'fail',
    });
    expect(ws(result).details).toMatchObject({ exitCode: 2, counts: { driftItems: 1, codeChanges: 2 }, digest: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });

  it('the verdict comes from the JSON: exit 0 with resource_drift is still drift', async () => {
    fake.script({ show: doc('opentofu-show-json/drift/output.json'), plan: { exit: 0 } });
    expect(ws((await run()).result).outcome).toBe('fail');
  });

  it('a long plan printout (8 MB of diff on stdout) does not matter: the verdict is read from show -json', async () => {
    fake.script({ show: doc('opentofu-show-json/drift/output.json'), plan: { exit: 2, stdoutBytes: 8 * 1024 * 1024 } });
    expect(ws((await run()).result).outcome).toBe('fail');
  });

  it('output-only change with exit 2 stays green', async () => {
    fake.script({ show: doc('opentofu-show-json/unknown-output/output.json'), plan: { exit: 2 } });
    expect(ws((await run()).result).outcome).toBe('pass');
  });

  it('errored partial plan is unknown', async () => {
    fake.script({ show: doc('opentofu-show-json/plan-error/output.json'), plan: { exit: 2 } });
    expect(ws((await run()).result)).toMatchObject({ outcome: 'unknown', message: expect.stringContaining('errored: true') });
  });

  it('plan exit 1 is unknown, and the plan file is gone', async () => {
    fake.script({ show: doc('opentofu-show-json/drift/output.json'), plan: { exit: 1, stderr: 'Error: Unsupported argument\n' } });
    const { result } = await run();
    expect(ws(result)).toMatchObject({ outcome: 'unknown', message: expect.stringContaining('plan exited 1') });
    expect(existsSync(path.dirname(outFile(fake.calls()[2]!.argv)))).toBe(false);
  });

  it('AccessDenied in stderr is unknown naming access, not quoting stderr', async () => {
    const stderr = 'Error: reading S3 Bucket (secret-bucket-name-xyz): AccessDenied: Access Denied\n\tstatus code: 403\n';
    fake.script({ show: doc('opentofu-show-json/drift/output.json'), plan: { exit: 1, stderr } });
    const { result } = await run();
    expect(ws(result)).toMatchObject({ outcome: 'unknown', message: expect.stringContaining('access denied') });
    expect(JSON.stringify(result)).not.toContain('secret-bucket-name-xyz');
  });

  it('JSON that does not parse (Terraform invalid plan) is unknown', async () => {
    fake.script({ show: doc('terraform-json-plans/invalid/plan.json'), plan: { exit: 2 } });
    expect(ws((await run()).result)).toMatchObject({ outcome: 'unknown', message: expect.stringContaining('not valid JSON') });
  });

  it('timeout: the hanging tool is stopped, unknown, and the plan file is gone', async () => {
    fake.script({ show: doc('opentofu-show-json/drift/output.json'), plan: { hang: true } });
    const t0 = Date.now();
    const { result } = await run({ workspace: `  - name: prod\n    dir: infra/prod\n    timeoutMinutes: 0.02` });
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(ws(result)).toMatchObject({ outcome: 'unknown', message: expect.stringContaining('plan timed out after 0.02 minutes') });
    const planFile = outFile(fake.calls()[2]!.argv);
    expect(existsSync(planFile)).toBe(false);
    // The hanging tool was stopped, not left behind.
    expect(() => process.kill(fake.calls()[2]!.pid, 0)).toThrow();
    expect(existsSync(path.dirname(planFile))).toBe(false);
  });

  it('the state serial changed during the run: not judged, retried later', async () => {
    fake.script({ show: doc('opentofu-show-json/drift/output.json'), plan: { exit: 2, bumpSerial: true } });
    const outcome = await run();
    expect(outcome.result.findings).toEqual([]);
    expect(outcome.result.error).toMatchObject({ class: 'StateChangedError', message: expect.stringContaining('state changed during the check (serial 7 → 8)') });
    expect(outcome.transientError).toBeDefined();
  });

  it('a missing binary is unknown', async () => {
    // Only the stand-in's dir on PATH: it holds a tofu, no terraform (this machine may have a real one elsewhere).
    process.env.PATH = bin;
    try {
      const { result } = await run({ workspace: `  - name: prod\n    dir: infra/prod\n    binary: terraform` });
      expect(ws(result)).toMatchObject({ outcome: 'unknown', message: expect.stringContaining('terraform executable was not found on PATH') });
      const byPath = await run({ workspace: `  - name: prod\n    dir: infra/prod\n    binary: ./no/such/tofu` });
      expect(ws(byPath.result)).toMatchObject({ outcome: 'unknown', message: expect.stringContaining('no/such/tofu executable was not found:') });
    } finally {
      process.env.PATH = `${bin}${path.delimiter}${savedPath}`;
    }
    expect(fake.calls()).toEqual([]);
  });

  it('at most one run per workspace in flight', async () => {
    fake.script({ show: doc('opentofu-show-json/drift/output.json'), plan: { hang: true } });
    const workspace = `  - name: prod\n    dir: infra/prod\n    timeoutMinutes: 0.03`;
    const first = run({ workspace });
    await new Promise((r) => setTimeout(r, 300));
    const second = await run({ workspace });
    expect(second.result.error).toMatchObject({ class: 'WorkspaceBusyError' });
    expect(ws((await first).result).outcome).toBe('unknown');
    expect(fake.calls().filter((c) => c.argv[0] === 'init')).toHaveLength(1);
  });

  it('a single drift run is suspected, the next one ≥ 10 minutes later with the same drift is red', async () => {
    fake.script({ show: doc('opentofu-show-json/drift/output.json'), plan: { exit: 2 } });
    const t0 = new Date('2026-12-01T04:41:00Z');
    const first = (await run({ params: '      confirmRuns: 2', now: t0 })).result;
    expect(first.findings.map((f) => f.outcome)).toEqual(['unknown', 'unknown', 'unknown']);
    expect(ws(first).message).toMatch(/^suspected drift/);
    const second = (await run({ params: '      confirmRuns: 2', now: new Date(t0.getTime() + 15 * 60_000), previous: first })).result;
    expect(second.findings.map((f) => f.outcome)).toEqual(['fail', 'fail', 'fail']);
  });

  it('an ignore rule in vigil.drift-ignore.yaml beside the code hides an attribute change but not a delete', async () => {
    const file = path.join(wsDir, 'vigil.drift-ignore.yaml');
    const expires = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
    writeFileSync(file, `ignore:\n  - address: "test_instance.*"\n    attribute: ami\n    reason: rolled by the image pipeline\n    owner: platform\n    approvedBy: ciso@example.com\n    expires: ${expires}\n`);
    try {
      fake.script({ show: doc('opentofu-show-json/basic-delete/output.json'), plan: { exit: 2 } });
      const { result } = await run();
      expect(Object.fromEntries(result.findings.map((f) => [f.resource, f.outcome]))).toEqual({ prod: 'fail', 'prod/test_instance.test-delete': 'fail' });
      expect(ws(result).details).toMatchObject({ counts: { suppressed: 1 }, suppressed: [{ address: 'test_instance.test', rule: { source: 'vigil.drift-ignore.yaml' } }] });
    } finally {
      rmSync(file);
    }
  });

  it('an ignore file with a rule beyond 180 days is unknown, never silently applied', async () => {
    const file = path.join(wsDir, 'vigil.drift-ignore.yaml');
    const expires = new Date(Date.now() + 200 * 86_400_000).toISOString().slice(0, 10);
    writeFileSync(file, `ignore:\n  - address: "**"\n    attribute: "**"\n    reason: x\n    owner: y\n    approvedBy: z\n    expires: ${expires}\n`);
    try {
      fake.script({ show: doc('opentofu-show-json/drift/output.json'), plan: { exit: 2 } });
      expect(ws((await run()).result)).toMatchObject({ outcome: 'unknown', message: expect.stringContaining('more than 180 days ahead') });
    } finally {
      rmSync(file);
    }
  });

  it('a config ignore rule beyond 180 days is a config error', () => {
    const expires = new Date(Date.now() + 181 * 86_400_000).toISOString().slice(0, 10);
    const yaml = configYaml(
      `  - name: prod\n    dir: infra/prod\n    ignore:\n      - { address: "a.b", attribute: tags, reason: r, owner: o, approvedBy: a, expires: "${expires}" }`,
    );
    expect(() => loadConfigText(yaml, path.join(root, 'vigil.yaml'), probes)).toThrow(/more than 180 days ahead/);
  });

  it('a workspace has its own time budget, longer than worker.timeoutSeconds, with no warning', () => {
    const yaml = `worker: { timeoutSeconds: 120 }\n${configYaml(`  - name: prod\n    dir: infra/prod`)}`;
    const loaded = loadConfigText(yaml, path.join(root, 'vigil.yaml'), probes);
    expect(loaded.warnings.join('\n')).not.toContain('timeoutMinutes');
    const [target] = probe.targets(loaded.config);
    // The tool stops at timeoutMinutes; the runner's collect budget for this target is 10 s more.
    expect(target!.spec.timeoutMs).toBe(30 * 60_000);
    expect(target!.timeoutMs).toBe(30 * 60_000 + 10_000);
  });

  it('env names vigil sets itself are refused in config', () => {
    const yaml = configYaml(`  - name: prod\n    dir: infra/prod\n    env: [TF_DATA_DIR]`);
    expect(() => loadConfigText(yaml, path.join(root, 'vigil.yaml'), probes)).toThrow(/TF_DATA_DIR/);
  });
});

describe('planFile mode', () => {
  it('newest matching file wins; its age is the source freshness; a stale one is unknown', async () => {
    const ci = path.join(root, 'ci');
    mkdirSync(ci, { recursive: true });
    writeFileSync(path.join(ci, 'plan-1.json'), readFileSync(doc('opentofu-show-json/drift/output.json')));
    writeFileSync(path.join(ci, 'plan-2.json'), readFileSync(doc('terraform-json-plans/no_changes/plan.json')));
    const now = new Date();
    const hoursAgo = (h: number) => new Date(now.getTime() - h * 3_600_000);
    utimesSync(path.join(ci, 'plan-1.json'), hoursAgo(5), hoursAgo(5));
    utimesSync(path.join(ci, 'plan-2.json'), hoursAgo(1), hoursAgo(1));
    const workspace = `  - name: prod\n    planFile: ci/plan-*.json\n    dir: infra/prod`;
    const fresh = (await run({ workspace, now })).result;
    expect(ws(fresh)).toMatchObject({ outcome: 'pass', details: { mode: 'planFile', planFile: { path: path.join(ci, 'plan-2.json') }, commit: COMMIT } });
    expect(fresh.sourceFreshness).toBe(hoursAgo(1).toISOString().replace(/\.\d{3}Z$/, (m) => m));
    expect(fake.calls()).toEqual([]);

    utimesSync(path.join(ci, 'plan-2.json'), hoursAgo(60), hoursAgo(60));
    utimesSync(path.join(ci, 'plan-1.json'), hoursAgo(50), hoursAgo(50));
    const stale = (await run({ workspace, now })).result;
    expect(ws(stale)).toMatchObject({ outcome: 'unknown', message: expect.stringContaining('50 h old'), details: { planFile: { path: path.join(ci, 'plan-1.json') } } });
  });

  it('no matching file is unknown', async () => {
    const { result } = await run({ workspace: `  - name: prod\n    planFile: ci/none-*.json` });
    expect(ws(result)).toMatchObject({ outcome: 'unknown', message: expect.stringContaining('no plan file matches') });
  });
});

describe('coverage', () => {
  it('a discover root lists backend directories no workspace declares as not monitored', async () => {
    const other = path.join(root, 'infra', 'staging');
    mkdirSync(other, { recursive: true });
    writeFileSync(path.join(other, 'versions.tf'), 'terraform {\n  cloud {\n    organization = "x"\n  }\n}\n');
    mkdirSync(path.join(root, 'infra', 'modules', 'vpc'), { recursive: true });
    writeFileSync(path.join(root, 'infra', 'modules', 'vpc', 'main.tf'), 'variable "cidr" {}\n');
    const yaml = configYaml(`  - name: prod\n    dir: infra/prod\n  - name: infra-coverage\n    discover: infra`);
    const loaded = loadConfigText(yaml, path.join(root, 'vigil.yaml'), probes);
    const target = probe.targets(loaded.config).find((t) => t.name === 'infra-coverage')!;
    const { result } = await runProbe({
      probe,
      target,
      params: loaded.probes.get('iac-drift')!.params,
      runId: 'cov',
      scheduledFor: new Date(),
      timeoutMs: 10_000,
      log: createLogger('silent'),
    });
    expect(Object.fromEntries(result.findings.map((f) => [f.resource, f.outcome]))).toEqual({
      [`discover:${path.join(root, 'infra')}/staging`]: 'unknown',
      [`discover:${path.join(root, 'infra')}`]: 'unknown',
    });
    expect(result.findings[0]!.message).toContain('not monitored: staging');
  });
});
