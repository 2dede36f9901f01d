import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { probes as registry } from '../probes/index.js';
import { ProbeResult } from '../src/probe/contract.js';
import { createCertificate, pemChain } from './helpers/tls-certs.js';
import { startRedisServer } from './helpers/redis-server.js';
import { closedPort, startTlsPeer, startValidTlsPeer, type TlsPeer, type ValidTlsPeer } from './helpers/tls-peer.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(path.join(tmpdir(), 'vigil-cli-'));
let good: ValidTlsPeer;
let wrongName: TlsPeer;
let deadPort: number;

beforeAll(async () => {
  good = await startValidTlsPeer();
  // Same trusted chain, but the certificate names another host.
  const other = createCertificate({ commonName: 'other.example', keySlot: 'leaf', issuer: good.pki.intermediate, altNames: ['other.example'] });
  wrongName = await startTlsPeer({ cert: pemChain(other, good.pki.intermediate), key: other.keyPem });
  deadPort = await closedPort();
});
afterAll(async () => {
  await Promise.all([good.close(), wrongName.close()]);
});

function writeConfig(name: string, endpoints: string): string {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `dataDir: ${dir}/var-${name}
worker: { attempts: 1, timeoutSeconds: 10 }
tls:
  - name: web
    caFile: ${good.caFile}
    endpoints: ${endpoints}
`,
  );
  return file;
}

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), env: {} });
  return { code, out, err };
}

describe('vigil CLI', () => {
  it('run-once --json prints one document and exits 0 when every control is green', async () => {
    const file = writeConfig('green', `[{ host: 127.0.0.1, port: ${good.port}, servername: localhost }]`);
    const { code, out } = await cli('run-once', '--config', file, '--json');
    const doc = JSON.parse(out) as { results: unknown[]; controls: Array<{ id: string; status: string }> };
    expect(Object.keys(doc).sort()).toEqual(['controls', 'results']);
    expect(doc.results).toHaveLength(1);
    const result = ProbeResult.parse(doc.results[0]);
    expect(result).toMatchObject({ probe: 'tls-certificate-posture', target: 'web' });
    expect(result.findings).toEqual([expect.objectContaining({ resource: `localhost@127.0.0.1:${good.port}`, outcome: 'pass' })]);
    expect(doc.controls.filter((c) => c.status !== 'not_configured')).toEqual([{ id: 'tls-certificates', status: 'green', reasons: [] }]);
    expect(code).toBe(0);
  });

  it('run-once exits 1 when a control is red and prints a table', async () => {
    const file = writeConfig('red', `[{ host: 127.0.0.1, port: ${wrongName.port}, servername: localhost }]`);
    const { code, out } = await cli('run-once', '--config', file);
    expect(code).toBe(1);
    expect(out).toMatch(/^PROBE\s+TARGET\s+RESOURCE\s+OUTCOME\s+MESSAGE/);
    expect(out).toContain(`tls-certificate-posture  web     localhost@127.0.0.1:${wrongName.port}  fail`);
    expect(out).toMatch(/tls-certificates\s+red/);
  });

  it('run-once exits 2 when nothing is red but something could not be observed', async () => {
    const file = writeConfig('unknown', `["127.0.0.1:${deadPort}"]`);
    const { code, out } = await cli('run-once', '--config', file, '--json');
    expect(code).toBe(2);
    const doc = JSON.parse(out) as { results: Array<{ findings: Array<{ outcome: string }> }> };
    expect(doc.results[0]?.findings[0]?.outcome).toBe('unknown');
  });

  it('run-once lists a control with no configured target as not configured, and exits 2 when nothing was judged', async () => {
    const file = path.join(dir, 'empty.yaml');
    writeFileSync(file, 'tls: []\n');
    const all = await cli('run-once', '--config', file, '--json');
    expect(JSON.parse(all.out).controls).toContainEqual({ id: 'tls-certificates', status: 'not_configured', reasons: ['no probe of this control has a configured target'] });
    expect(JSON.parse(all.out).controls.every((c: { status: string }) => c.status === 'not_configured')).toBe(true);
    expect(all.code).toBe(2);
    const one = await cli('run-once', '--config', file, '--json', '--probe', 'tls-certificate-posture');
    expect(JSON.parse(one.out).controls[0].status).toBe('unknown');
    expect(one.code).toBe(2);
  });

  it('run-once --json is --format json', async () => {
    const file = writeConfig('alias', `["127.0.0.1:${deadPort}"]`);
    const strip = (out: string) => JSON.stringify(JSON.parse(out), (k, v) => (['runId', 'scheduledFor', 'startedAt', 'finishedAt'].includes(k) ? '-' : v));
    const [json, format] = [await cli('run-once', '--config', file, '--json'), await cli('run-once', '--config', file, '--format', 'json')];
    expect([json.code, format.code]).toEqual([2, 2]);
    expect(strip(format.out)).toBe(strip(json.out));
    expect(JSON.parse(format.out).results[0].findings[0].outcome).toBe('unknown');
  });

  it('run-once --probe refuses a probe that is not enabled', async () => {
    const file = writeConfig('probe', `["127.0.0.1:${deadPort}"]`);
    const { code, err } = await cli('run-once', '--config', file, '--probe', 'nope');
    expect(code).toBe(64);
    expect(err).toContain('no enabled probe "nope"');
  });

  it('config check exits 78 with one line per problem naming the key path', async () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'tls:\n  - name: web\n    endpoints: [a.example, b.example, { host: c.example, port: 0 }]\nhttp: { admin: { token: plain-text-secret } }\n');
    const { code, err } = await cli('config', 'check', '--config', file);
    expect(code).toBe(78);
    expect(err.trim().split('\n')).toEqual([
      `${file}: http.admin.token: secrets are never values in YAML: write { env: VAR_NAME } or { file: /path/to/secret }`,
      `${file}: tls[0].endpoints[2].port: expected a number 1–65535`,
    ]);
  });

  it('config check accepts the embedded defaults', async () => {
    const { code, out } = await cli('config', 'check');
    expect(code).toBe(0);
    // Every registered probe is enabled by default; the example config has one TLS target; the catalog is the shipped one.
    const catalogControls = (readFileSync(path.join(root, 'config/controls.yaml'), 'utf8').match(/^ {2}- id: /gm) ?? []).length;
    expect(out).toContain(`vigil.example.yaml: OK — ${registry.length} probe(s) enabled, 1 target(s), ${catalogControls} control(s)`);
  });

  it('probes lists each probe with its controls, schedule and permissions', async () => {
    const { code, out } = await cli('probes');
    expect(code).toBe(0);
    expect(out).toContain('tls-certificate-posture — ');
    expect(out).toContain('controls:    tls-certificates');
    expect(out).toContain('schedule:    */15 * * * *');
    expect(out).toMatch(/permissions: \S/);
  });
});

describe('the vigil binary', () => {
  beforeAll(() => {
    if (!existsSync(path.join(root, 'dist/src/cli/main.js'))) {
      const built = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], { encoding: 'utf8' });
      if (built.status !== 0) throw new Error(`build failed: ${built.stdout}${built.stderr}`);
    }
  }, 120_000);

  it('stops with one line when redis-server is missing and no redis.url is set', () => {
    const file = writeConfig('noredis', `["127.0.0.1:${deadPort}"]`);
    const run = spawnSync(process.execPath, [path.join(root, 'bin/vigil.js'), 'start', '--config', file], {
      encoding: 'utf8',
      env: { PATH: path.join(dir, 'empty-path') },
      timeout: 20_000,
    });
    expect(run.stderr.trim()).toBe('redis-server is not installed: run "sudo apt-get install -y redis-server", or set redis.url in the config to use an existing Redis');
    expect(run.status).toBe(69);
  });

  /** Starts `vigil start` on a config with free ports; resolves once it logged that it started. */
  async function startBinary(name: string, extra = '') {
    const file = writeConfig(name, `["127.0.0.1:${deadPort}"]`);
    writeFileSync(file, `http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0 } }\nshutdown: { graceSeconds: 0 }\n${extra}${readFileSync(file, 'utf8')}`);
    const child = spawn(process.execPath, [path.join(root, 'bin/vigil.js'), 'start', '--config', file], { env: { PATH: process.env.PATH ?? '' } });
    const proc = { child, out: '', exit: new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c))) };
    child.stdout.on('data', (d: Buffer) => (proc.out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (proc.out += d.toString()));
    const deadline = Date.now() + 20_000;
    while (!proc.out.includes('"msg":"vigil started"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(proc.out).toContain('"msg":"vigil started"');
    return proc;
  }

  it('start runs on its own redis-server and exits 0 on SIGTERM', async () => {
    const proc = await startBinary('start');
    expect(existsSync(path.join(dir, 'var-start', 'admin-token'))).toBe(true);
    const redisPid = Number(readFileSync(path.join(dir, 'var-start', 'redis', 'redis.pid'), 'utf8'));
    proc.child.kill('SIGTERM');
    expect(await proc.exit).toBe(0);
    expect(proc.out).toContain('"msg":"vigil stopped"');
    expect(() => process.kill(redisPid, 0)).toThrow();
  });

  it('exits 1 when its embedded redis-server dies', async () => {
    const proc = await startBinary('redis-dies');
    const redisPid = Number(readFileSync(path.join(dir, 'var-redis-dies', 'redis', 'redis.pid'), 'utf8'));
    process.kill(redisPid, 'SIGKILL');
    expect(await proc.exit).toBe(1);
    expect(proc.out).toContain('"msg":"vigil cannot go on"');
  });

  it('a SIGTERM while its Redis is unreachable still exits, within the bound', async () => {
    const redis = await startRedisServer();
    const proc = await startBinary('redis-gone', `redis: { url: "${redis.url}" }\n`);
    await redis.stop();
    const t0 = Date.now();
    proc.child.kill('SIGTERM');
    expect(await proc.exit).toBe(0);
    expect(Date.now() - t0).toBeLessThan(12_000);
  }, 30_000);

  it('stops with one line when redis.url cannot be reached', async () => {
    const file = writeConfig('unreachable', `["127.0.0.1:${deadPort}"]`);
    writeFileSync(file, `redis: { url: "redis://127.0.0.1:${deadPort}" }\n${readFileSync(file, 'utf8')}`);
    const run = spawnSync(process.execPath, [path.join(root, 'bin/vigil.js'), 'start', '--config', file], { encoding: 'utf8', timeout: 20_000 });
    expect(run.stderr.trim()).toMatch(new RegExp(`^cannot reach Redis at redis://127\\.0\\.0\\.1:${deadPort} \\(.*ECONNREFUSED.*\\): start it, or fix redis.url$`));
    expect(run.status).toBe(69);
  });
});
