import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateXML } from 'xmllint-wasm';
import { formatJunit } from '../src/cli/report-junit.js';
import type { ReportContext } from '../src/cli/report-context.js';
import type { RunOnceReport } from '../src/cli/run-once.js';
import { createCertificate, pemChain } from './helpers/tls-certs.js';
import { closedPort, startTlsPeer, startValidTlsPeer, type TlsPeer, type ValidTlsPeer } from './helpers/tls-peer.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin/vigil.js');
const multitool = path.join(root, 'node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool');
const junitXsd = readFileSync(path.join(root, 'test/fixtures/junit/jenkins-junit.xsd'), 'utf8');
const version = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
const dir = mkdtempSync(path.join(tmpdir(), 'vigil-cli-reports-'));
let good: ValidTlsPeer;
let wrongName: TlsPeer;
let deadPort: number;

beforeAll(async () => {
  if (!existsSync(path.join(root, 'dist/src/cli/main.js'))) {
    const built = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], { encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`build failed: ${built.stdout}${built.stderr}`);
  }
  good = await startValidTlsPeer();
  const other = createCertificate({ commonName: 'other.example', keySlot: 'leaf', issuer: good.pki.intermediate, altNames: ['other.example'] });
  wrongName = await startTlsPeer({ cert: pemChain(other, good.pki.intermediate), key: other.keyPem });
  deadPort = await closedPort();
}, 120_000);
afterAll(async () => {
  await Promise.all([good.close(), wrongName.close()]);
});

/** Runs the real binary; resolves with its exit code and both streams. */
function vigil(args: string[], opts: { cwd?: string } = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: opts.cwd ?? dir, env: { PATH: process.env.PATH ?? '' } });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out, err }));
  });
}

/** A config with one TLS target: a passing endpoint, a failing one (wrong name) and one that cannot be reached. */
function mixedConfig(name: string): string {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `dataDir: ${dir}/var-${name}`,
      'worker: { attempts: 1, timeoutSeconds: 10 }',
      'tls:',
      '  - name: web',
      `    caFile: ${good.caFile}`,
      `    endpoints: [{ host: 127.0.0.1, port: ${good.port}, servername: localhost }, { host: 127.0.0.1, port: ${wrongName.port}, servername: localhost }, "127.0.0.1:${deadPort}"]`,
      '',
    ].join('\n'),
  );
  return file;
}

/** `Sarif.Multitool validate`: its exit code is 0 even when the log is invalid, so the verdict is read from its output lines. */
function validateSarif(file: string): { status: number | null; errors: string[]; output: string } {
  const run = spawnSync(multitool, ['validate', file], { encoding: 'utf8', timeout: 60_000 });
  const output = `${run.stdout}${run.stderr}`;
  return { status: run.status, errors: output.split('\n').filter((l) => /\berror [A-Z]+\d+:/.test(l)), output };
}

describe('vigil run-once through a pipe', () => {
  it('delivers a report of several MB whole to a process reading the pipe', async () => {
    // 8,000 endpoints on closed loopback ports: fast unknowns, ~3 MB of JSON.
    const endpoints = Array.from({ length: 8000 }, (_, i) => `"127.0.${Math.floor(i / 250)}.${(i % 250) + 1}:${deadPort}"`);
    const file = path.join(dir, 'big.yaml');
    writeFileSync(file, `worker: { attempts: 1, timeoutSeconds: 60 }\ntls:\n  - name: many\n    endpoints: [${endpoints.join(', ')}]\n`);
    const consumer = spawn(
      process.execPath,
      ['-e', `let s = ''; process.stdin.setEncoding('utf8').on('data', (d) => (s += d)).on('end', () => { const doc = JSON.parse(s); process.stdout.write(JSON.stringify({ bytes: Buffer.byteLength(s), findings: doc.results[0].findings.length })); });`],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let consumed = '';
    let consumerErr = '';
    consumer.stdout.setEncoding('utf8').on('data', (d: string) => (consumed += d));
    consumer.stderr.setEncoding('utf8').on('data', (d: string) => (consumerErr += d));
    const consumerExit = new Promise<number | null>((resolve) => consumer.once('close', resolve));
    // vigil's stdout is the consumer's stdin: one OS pipe between the two processes, nothing relayed by the test.
    const producer = spawn(process.execPath, [bin, 'run-once', '--format', 'json', '--config', file], { stdio: ['ignore', consumer.stdin, 'pipe'], env: { PATH: process.env.PATH ?? '' } });
    consumer.stdin.destroy(); // the children hold the pipe; the test's end would keep it open
    const producerExit = new Promise<number | null>((resolve) => producer.once('close', resolve));
    expect(await producerExit).toBe(2);
    expect(await consumerExit).toBe(0);
    expect(consumerErr).toBe('');
    const seen = JSON.parse(consumed) as { bytes: number; findings: number };
    expect(seen.findings).toBe(8000);
    expect(seen.bytes).toBeGreaterThan(2_500_000);
  }, 60_000);

  it('--output FILE writes the report atomically into FILE and nothing to stdout', async () => {
    const file = mixedConfig('output');
    const outDir = path.join(dir, 'out');
    mkdirSync(outDir, { recursive: true });
    const target = path.join(outDir, 'report.json');
    writeFileSync(target, 'old content');
    const run = await vigil(['run-once', '--config', file, '--json', '--output', target]);
    expect(run.code).toBe(1);
    expect(run.out).toBe('');
    const doc = JSON.parse(readFileSync(target, 'utf8')) as { results: Array<{ findings: unknown[] }> };
    expect(doc.results[0]?.findings).toHaveLength(3);
    expect(readdirSync(outDir)).toEqual(['report.json']); // no temporary file left behind
  });

  it('--output into a directory that does not exist exits 73 and says why', async () => {
    const run = await vigil(['run-once', '--config', mixedConfig('output-bad'), '-o', path.join(dir, 'missing', 'report.json')]);
    expect(run.code).toBe(73);
    expect(run.err).toContain(`vigil: cannot write --output ${path.join(dir, 'missing', 'report.json')}: ENOENT`);
  });
});

describe('vigil run-once --format sarif', () => {
  it('is valid SARIF 2.1.0 for the SARIF multitool, with one result per failing or unknown resource', async () => {
    const file = mixedConfig('sarif');
    const out = path.join(dir, 'vigil.sarif');
    const run = await vigil(['run-once', '--config', file, '--format', 'sarif', '--output', out]);
    expect(run.code).toBe(1);
    const check = validateSarif(out);
    expect(check.status, check.output).toBe(0);
    expect(check.output).toContain('1 files scanned');
    expect(check.errors, check.output).toEqual([]);

    const log = JSON.parse(readFileSync(out, 'utf8'));
    const sarifRun = log.runs[0];
    expect(sarifRun.tool.driver).toMatchObject({ name: 'vigil', version });
    const ruleIds = sarifRun.tool.driver.rules.map((r: { id: string }) => r.id);
    expect(ruleIds).toContain('tls-certificate-posture');
    const results = sarifRun.results as Array<{ ruleId: string; ruleIndex: number; level: string; message: { text: string }; locations: any[]; partialFingerprints: Record<string, string> }>;
    expect(results.map((r) => [r.level, r.locations[0].logicalLocations[0].name]).sort()).toEqual([
      ['error', `localhost@127.0.0.1:${wrongName.port}`],
      ['warning', `127.0.0.1:${deadPort}`],
    ]);
    for (const r of results) {
      expect(r.ruleId).toBe('tls-certificate-posture');
      expect(ruleIds[r.ruleIndex]).toBe(r.ruleId);
      // GitHub code scanning needs a physical location: the config file, at the line naming the target.
      expect(r.locations[0].physicalLocation).toEqual({ artifactLocation: { uri: 'sarif.yaml', uriBaseId: '%SRCROOT%' }, region: { startLine: 4 } });
      expect(r.message.text).toMatch(/\S/);
      expect(Object.values(r.partialFingerprints)[0]).toMatch(/^[0-9a-f]{32}$/);
    }
    expect(new Set(results.map((r) => Object.values(r.partialFingerprints)[0])).size).toBe(2);
  }, 60_000);

  it('the validator used above does report an invalid log (the check can fail)', () => {
    const bad = path.join(dir, 'bad.sarif');
    writeFileSync(bad, JSON.stringify({ version: '2.1.0', runs: [{ tool: {}, results: [{ ruleId: 'x' }] }] }));
    expect(validateSarif(bad).errors.length).toBeGreaterThan(0);
  }, 60_000);
});

describe('vigil run-once --format junit', () => {
  it('validates against the Jenkins JUnit schema: fail → failure, unknown → error, one suite per control', async () => {
    const run = await vigil(['run-once', '--config', mixedConfig('junit'), '--format', 'junit']);
    expect(run.code).toBe(1);
    const validation = await validateXML({ xml: { fileName: 'report.xml', contents: run.out }, schema: { fileName: 'jenkins-junit.xsd', contents: junitXsd } });
    expect(validation.errors).toEqual([]);
    expect(validation.valid).toBe(true);
    expect(run.out).toMatch(/<testsuite name="tls-certificates" tests="3" failures="1" errors="1" skipped="0"/);
    expect(run.out).toContain(`<testcase classname="tls-certificates.tls-certificate-posture" name="localhost@127.0.0.1:${good.port} (web)"/>`);
    // Every catalog control appears; one with no configured target is a skipped case, never a pass.
    expect(run.out).toMatch(/<testsuite name="protected-default-branches" tests="1" failures="0" errors="0" skipped="1"/);
  }, 60_000);

  it('escapes markup and drops characters XML cannot carry; not_applicable is skipped', async () => {
    const hostile = 'bad <b>&"quote"\'\u0000\u0007\u001b[31m\uFFFE\uD800 ]]> end';
    const report: RunOnceReport = {
      results: [
        {
          runId: 'r1',
          probe: 'p',
          target: 't<&>',
          scheduledFor: '2026-11-30T00:00:00.000Z',
          startedAt: '2026-11-30T00:00:00.000Z',
          finishedAt: '2026-11-30T00:00:01.500Z',
          findings: [
            { resource: hostile, outcome: 'fail', message: `${hostile}\nsecond line`, details: { raw: hostile } },
            { resource: 'archived-repo', outcome: 'not_applicable', message: 'archived' },
            { resource: 'ok', outcome: 'pass', message: 'fine' },
          ],
        },
        { runId: 'r2', probe: 'p', target: 'down', scheduledFor: '', startedAt: '2026-11-30T00:00:00.000Z', finishedAt: '2026-11-30T00:00:00.100Z', findings: [], error: { class: 'PermissionError', message: 'token may not read <org>' } },
      ],
      controls: [{ id: 'c1', status: 'red', reasons: ['p/t<&>: 1 failing'] }],
    };
    const context: ReportContext = { probes: [], controls: [{ id: 'c1', title: 'Control & <one>', probes: ['p'] }], configFile: '/x/vigil.yaml', baseDir: '/x', version };
    const xml = formatJunit(report, context);
    const validation = await validateXML({ xml: { fileName: 'report.xml', contents: xml }, schema: { fileName: 'jenkins-junit.xsd', contents: junitXsd } });
    expect(validation.errors).toEqual([]);
    expect(xml).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\uFFFE]/);
    expect(xml).not.toContain('<b>');
    expect(xml).toContain('name="bad &lt;b&gt;&amp;&quot;quote&quot;\'[31m ]]&gt; end (t&lt;&amp;&gt;)"');
    expect(xml).toContain('message="bad &lt;b&gt;&amp;&quot;quote&quot;\'[31m ]]&gt; end&#10;second line"');
    expect(xml).toContain('<skipped message="archived"/>');
    expect(xml).toContain('<error type="PermissionError" message="could not observe: PermissionError: token may not read &lt;org&gt;">');
    expect(xml).toMatch(/<testsuite name="c1" tests="4" failures="1" errors="1" skipped="1" time="1.500">/);
    expect(xml).toMatch(/<testsuites name="vigil run-once" tests="4" failures="1" errors="1" time="1.500">/);
  });
});

describe('vigil command line', () => {
  const commands: Array<[string[], string[]]> = [
    [['start'], ['--config']],
    [['run-once'], ['--config', '--probe', '--format', '--json', '--output', 'sarif', 'junit']],
    [['config'], ['check']],
    [['config', 'check'], ['--config']],
    [['probes'], ['--config']],
    [['snapshot'], ['--config', '--date']],
    [['verify-archive'], ['<dir>', '--public-key', '--through']],
    [['rebuild'], ['--config']],
  ];
  it.each(commands)('vigil %s --help shows its options and exit codes', async (command, options) => {
    for (const flag of ['--help', '-h']) {
      const run = await vigil([...command, flag]);
      expect(run.code).toBe(0);
      expect(run.err).toBe('');
      expect(run.out).toContain(`Usage: vigil ${command.join(' ')} `);
      for (const option of options) expect(run.out).toContain(option);
      expect(run.out).toMatch(/Exit codes:\n {2}0 /);
    }
  });

  it('loads only what the command needs: --version no config stack, run-once no daemon, queue, HTTP or probe client SDK', () => {
    const loaded = (args: string[]) => {
      const list = path.join(dir, `modules-${args[0]}.txt`);
      writeFileSync(list, '');
      const run = spawnSync(process.execPath, ['--import', path.join(root, 'test/fixtures/cli/record-modules.mjs'), bin, ...args], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', VIGIL_TEST_MODULES: list },
      });
      const urls = readFileSync(list, 'utf8').split('\n').filter(Boolean);
      expect(urls).toContain(pathToFileURL(bin).href); // the recorder did record
      return { status: run.status, urls };
    };
    const version = loaded(['--version']);
    expect(version.status).toBe(0);
    expect(version.urls.filter((u) => /node_modules\/(zod|yaml|pino|bullmq|ioredis|@octokit)\/|\/dist\/(probes|src\/config\/load)/.test(u))).toEqual([]);
    const empty = path.join(dir, 'empty.yaml');
    writeFileSync(empty, '{}\n');
    const runOnce = loaded(['run-once', '--config', empty]);
    expect(runOnce.status).toBe(2);
    expect(runOnce.urls.some((u) => u.endsWith('/dist/probes/index.js'))).toBe(true);
    expect(runOnce.urls.filter((u) => /node_modules\/bullmq\/|\/dist\/src\/(daemon|http\/|queue\/(probe-worker|recorder|scheduler|connection)|store\/|cli\/offline)/.test(u))).toEqual([]);
    // A probe's client SDK loads with its collect, when a target of that probe runs: an empty config runs none.
    expect(runOnce.urls.filter((u) => /node_modules\/(@aws-sdk|@smithy|@octokit|bottleneck|prom-client)\//.test(u))).toEqual([]);
  });

  it('vigil --version prints the package version', async () => {
    const run = await vigil(['--version']);
    expect(run).toEqual({ code: 0, out: `${version}\n`, err: '' });
  });

  it('a mistyped command or option exits 64 and suggests the right one', async () => {
    const command = await vigil(['runonce']);
    expect(command.code).toBe(64);
    expect(command.err).toContain("vigil: unknown command 'runonce'\n(Did you mean run-once?)");
    const option = await vigil(['run-once', '--jsno']);
    expect(option.code).toBe(64);
    expect(option.err).toContain("vigil: unknown option '--jsno'\n(Did you mean --json?)");
  });

  it('usage errors exit 64: no command, a bad format, a missing argument, --json against --format', async () => {
    for (const args of [[], ['run-once', '--format', 'xml'], ['verify-archive'], ['run-once', '--json', '--format', 'sarif'], ['config', 'nope']]) {
      const run = await vigil(args);
      expect({ args, code: run.code }).toEqual({ args, code: 64 });
      expect(run.err).toMatch(/\S/);
      expect(run.out).toBe('');
    }
  });
});
