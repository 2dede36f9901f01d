import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probes } from '../probes/index.js';
import type { Daemon } from '../src/daemon.js';
import { sha256 } from '../probes/iac-drift/diff.js';
import { installFakeTofu } from './helpers/fake-tofu.js';
import { get, metricValue, startTestDaemon, testConfig, waitFor, type LogCapture } from './helpers/daemon.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';

/**
 * End to end: the daemon runs iac-drift every second against the stand-in tofu replaying a plan
 * with sensitive values (fixtures/sensitive-drift.json, derived from OpenTofu's sensitive-values
 * output), through a real redis-server. Proves that (1) the previous result reaches collect from
 * state, so confirmation spans runs, and (2) no part of a secret appears anywhere vigil writes.
 */
const FIXTURE = path.resolve(import.meta.dirname, '../probes/iac-drift/fixtures/sensitive-drift.json');
const SECRETS = ['Tr0ub4dor-and-Correct-Horse-93xq', 'Old-Secret-Value-77kz-Qp', 'Code-Secret-Value-55mw-Zr'];
/** Passed to the tool through `env: [{ name, from: { file } }]`, and echoed by it on stderr. */
const ENV_SECRET = 'env-secret-Zq8vW3nR5tY7';
const token = 'iac-e2e-admin-token-0123456789-abcdef';

let redis: TestRedisServer;
let client: Redis;
let root: string;
let daemon: Daemon;
let logs: LogCapture;
const savedPath = process.env.PATH;

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url);
  root = mkdtempSync(path.join(tmpdir(), 'vigil-iac-e2e-'));
  const dir = path.join(root, 'prod');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'main.tf'), 'terraform {\n  backend "s3" {}\n}\n');
  const secretFile = path.join(root, 'db-password');
  writeFileSync(secretFile, `${ENV_SECRET}\n`, { mode: 0o600 });
  const bin = path.join(root, 'bin');
  installFakeTofu(bin, { show: FIXTURE, plan: { exit: 2, stderr: `Warning: value ${SECRETS[0]} and ${ENV_SECRET}\n` } });
  process.env.PATH = `${bin}${path.delimiter}${savedPath}`;
  const loaded = testConfig(
    `redis: { url: "${redis.url}", prefix: ${uniquePrefix('iac-e2e')} }
http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0, token: { env: ADMIN } } }
worker: { concurrency: 1, attempts: 1, timeoutSeconds: 20 }
shutdown: { graceSeconds: 5 }
iac:
  - name: prod
    dir: ${dir}
    env: [{ name: TF_VAR_db_password, from: { file: ${secretFile} } }]
probes:
  iac-drift:
    schedule: "* * * * * *"
`,
    probes,
    undefined,
    { ADMIN: token },
  );
  ({ daemon, logs } = await startTestDaemon(loaded));
});

afterAll(async () => {
  await daemon?.stop();
  process.env.PATH = savedPath;
  client?.disconnect();
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

/** Every value of every key in Redis, as text. */
async function redisDump(): Promise<string> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await client.type(key);
      out.push(key);
      if (type === 'string') out.push((await client.getBuffer(key))?.toString('latin1') ?? '');
      else if (type === 'hash') out.push(JSON.stringify(await client.hgetall(key)));
      else if (type === 'list') out.push(JSON.stringify(await client.lrange(key, 0, -1)));
      else if (type === 'set') out.push(JSON.stringify(await client.smembers(key)));
      else if (type === 'zset') out.push(JSON.stringify(await client.zrange(key, 0, -1, 'WITHSCORES')));
      else if (type === 'stream') out.push(JSON.stringify(await client.xrange(key, '-', '+')));
    }
  } while (cursor !== '0');
  return out.join('\n');
}

describe('iac-drift in the daemon', () => {
  it('confirmation spans runs through state, and no secret appears anywhere vigil writes', async () => {
    const runs = await waitFor(async () => ((await daemon.state.runCounts()).get('iac-drift|unknown') ?? 0) >= 3 || undefined, 25_000, 'three iac-drift runs');
    expect(runs).toBe(true);
    const latest = await daemon.state.latestResult('iac-drift', 'prod');
    const ws = latest!.findings.find((f) => f.resource === 'prod')!;
    // Suspected, not red: the runs are seconds apart, so only the first counted.
    expect(ws.outcome).toBe('unknown');
    expect(ws.message).toMatch(/^suspected drift \(run 1 of 2/);
    const confirmation = ws.details!.confirmation as { runs: number; lastCountedAt: string };
    // Carried over from the first run (read back from state), not restarted at this run's time.
    expect(Date.parse(confirmation.lastCountedAt)).toBeLessThan(Date.parse(latest!.startedAt));
    expect(ws.details).toMatchObject({ counts: { driftItems: 1, noise: 1 } });
    const db = latest!.findings.find((f) => f.resource === 'prod/aws_db_instance.main')!;
    expect(JSON.stringify(db.details)).toContain('"path":"password","sensitive":true');
    expect(JSON.stringify(db.details)).toContain('"before":"team-a","after":"team-b"');

    const api = (await get(`${daemon.adminUrl}/api/controls`, token)).json() as { controls: Array<{ id: string; status: string }> };
    expect(api.controls.find((c) => c.id === 'infrastructure-matches-code')?.status).toBe('unknown');
    const metrics = (await get(`${daemon.adminUrl}/metrics`)).text;
    expect(metricValue(metrics, 'vigil_control_status{control="infrastructure-matches-code"}')).toBe(-1);
    expect(metricValue(metrics, 'vigil_iac_drift_resources{workspace="prod",kind="changed_outside_code"}')).toBe(1);
    expect(metricValue(metrics, 'vigil_iac_drift_resources{workspace="prod",kind="code_not_applied"}')).toBe(2);

    const written = [await redisDump(), logs.text, metrics, JSON.stringify(api), (await get(`${daemon.adminUrl}/api/controls/infrastructure-matches-code`, token)).text].join('\n');
    expect(written).toContain('aws_db_instance.main');
    for (const secret of [...SECRETS, ENV_SECRET]) {
      // No substring of 6 characters or more, and not its hash (a password's SHA-256 can be brute-forced).
      for (let i = 0; i + 6 <= secret.length; i++) expect(written, `substring of a secret at ${i}`).not.toContain(secret.slice(i, i + 6));
      expect(written).not.toContain(sha256(JSON.stringify(secret)));
    }
  });
});

describe('iac-drift across replicas', () => {
  it('a run in flight on another replica (its key in Redis) makes this one wait; a finished run releases its key', async () => {
    const { runProbe } = await import('../src/probe/runner.js');
    const { createLogger } = await import('../src/log.js');
    const { probe } = await import('../probes/iac-drift/probe.js');
    const prefix = uniquePrefix('iac-inflight');
    const loaded = testConfig(`redis: { url: "${redis.url}", prefix: ${prefix} }\niac:\n  - name: prod\n    dir: ${path.join(root, 'prod')}\n    timeoutMinutes: 1\n`, probes);
    const [target] = probe.targets(loaded.config);
    const key = `${prefix}:iac-drift:in-flight:prod`;
    const once = () =>
      runProbe({ probe, target: target!, params: loaded.probes.get('iac-drift')!.params, runId: 'x', scheduledFor: new Date(), timeoutMs: 60_000, log: createLogger('silent'), redis: client });
    await client.set(key, 'other-replica', 'PX', 60_000);
    const busy = await once();
    expect(busy.result.error).toMatchObject({ class: 'WorkspaceBusyError' });
    expect(await client.get(key)).toBe('other-replica');
    await client.del(key);
    const ran = await once();
    expect(ran.result.error).toBeUndefined();
    expect(ran.result.findings.length).toBeGreaterThan(0);
    expect(await client.exists(key)).toBe(0);
  });
});
