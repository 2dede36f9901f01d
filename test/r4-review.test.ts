/**
 * Review R4 of H3/H4: regressions for the defects found (each case fails without its fix).
 */
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { evaluateFreshness, Params, type BackupRegionView, type FreshnessObservation } from '../probes/aws-backup-freshness/probe.js';
import { publicKeyFromPrivate, signHash, writeArchivedSnapshot } from '../src/store/archive.js';
import { sampleChain } from './helpers/snapshots.js';
import { Redis } from 'ioredis';
import { mkdirSync, unlinkSync } from 'node:fs';
import { startDaemon, type Daemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { get, LogCapture, testConfig, waitFor } from './helpers/daemon.js';
import { fakeBehaviour, fakeProbe } from './helpers/fake-probe.js';
import { startRedisServer, uniquePrefix } from './helpers/redis-server.js';

const root = mkdtempSync(path.join(tmpdir(), 'vigil-r4-'));
const archiveDir = path.join(root, 'archive');
const keyFile = path.join(root, 'signing.pem');
const configFile = path.join(root, 'vigil.yaml');
const junkKey = path.join(root, 'junk.pem');
const privateKeyPem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const publicKeyFile = path.join(root, 'public.pem');

beforeAll(async () => {
  writeFileSync(keyFile, privateKeyPem, { mode: 0o600 });
  writeFileSync(publicKeyFile, publicKeyFromPrivate(privateKeyPem));
  writeFileSync(junkKey, 'this is not a key\n');
  for (const s of sampleChain('2026-11-01', 4)) expect(await writeArchivedSnapshot(archiveDir, { ...s, ...signHash(s.hash, privateKeyPem) })).toBe('written');
  writeFileSync(configFile, `dataDir: ${root}/var\narchive: { dir: ${archiveDir}, signingKey: { file: ${keyFile} } }\n`);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), env: {}, cwd: root });
  return { code, out, err };
}

describe('verify-archive --public-key <not a key>', () => {
  it('exits 66 naming the file, for an archive directory (it used to throw ArchiveKeyError)', async () => {
    expect((await cli('verify-archive', archiveDir, '--public-key', publicKeyFile)).code).toBe(0);
    const r = await cli('verify-archive', archiveDir, '--public-key', junkKey);
    expect(r.code).toBe(66);
    expect(r.out).toBe('');
    expect(r.err).toBe(`vigil: --public-key ${junkKey}: the public key is not a PEM public key; derive it with: openssl pkey -in key.pem -pubout\n`);
  });

  it('exits 66 for an unpacked export too (it used to exit 1, as if the bundle were broken)', async () => {
    const file = path.join(root, 'bundle.tar.gz');
    expect((await cli('export', '--config', configFile, '--from', '2026-11-02', '--to', '2026-11-03', '--out', file)).code).toBe(0);
    execFileSync('tar', ['-xzf', file, '-C', root]);
    const folder = path.join(root, 'vigil-export-2026-11-02_2026-11-03');
    expect((await cli('verify-archive', folder, '--public-key', publicKeyFile)).code).toBe(0);
    const r = await cli('verify-archive', folder, '--public-key', junkKey);
    expect(r.code).toBe(66);
    expect(r.err).toContain(`vigil: --public-key ${junkKey}: the public key is not a PEM public key`);
  });

  it('an Ed25519 private key is not mistaken for junk (its public half is used)', async () => {
    const r = await cli('verify-archive', archiveDir, '--public-key', keyFile);
    expect(r.code).toBe(0);
    expect(readFileSync(keyFile, 'utf8')).toContain('PRIVATE KEY');
  });
});

describe('aws-backup-freshness coverage across regions', () => {
  const ACCOUNT = '123456789012';
  const now = new Date('2026-11-20T12:00:00Z');
  const since = new Date(now.getTime() - 52 * 3_600_000).toISOString();
  const recording = {
    recorders: { readable: true as const, value: [{ name: 'default', allSupported: true, strategy: 'ALL_SUPPORTED_RESOURCE_TYPES', resourceTypes: [], excludedTypes: [], recording: true, lastStatus: 'SUCCESS', lastErrorCode: undefined }] },
  };
  function region(name: string, protectedTables: string[], configTables: string[]): BackupRegionView {
    const arn = (t: string) => `arn:aws:dynamodb:${name}:${ACCOUNT}:table/${t}`;
    const vault = `arn:aws:backup:${name}:${ACCOUNT}:backup-vault:Default`;
    return {
      region: name,
      protectedResources: { readable: true, value: protectedTables.map((t) => ({ arn: arn(t), type: 'DynamoDB', name: t, lastBackupTime: '2026-11-20T09:00:00.000Z' })) },
      vaults: { readable: true, value: [{ name: 'Default', arn: vault, locked: false }] },
      points: {
        readable: true,
        value: protectedTables.map((t) => ({ arn: `${vault}:rp-${t}`, vaultArn: vault, resourceArn: arn(t), resourceType: 'DynamoDB', status: 'COMPLETED', creationDate: '2026-11-20T08:50:00.000Z', completionDate: '2026-11-20T09:00:00.000Z', encrypted: true })),
      },
      jobs: { readable: true, value: [] },
      coverage: { ...recording, discovered: [{ type: 'DynamoDB', resources: { readable: true, value: configTables.map((t) => ({ id: t, name: t })) } }] },
    };
  }

  it('a table protected in one region does not cover a same-named table in another region', () => {
    const o: FreshnessObservation = { account: ACCOUNT, data: { since, regions: [region('eu-west-1', ['orders'], ['orders']), region('us-east-1', [], ['orders'])] } };
    const findings = evaluateFreshness(o, Params.parse({ coverageTypes: ['DynamoDB'], requireProtectedResources: false }), now);
    const cov = findings.filter((f) => f.resource.includes('/coverage/') || f.resource.includes(':table/'));
    const us = cov.find((f) => f.resource === `${ACCOUNT}/us-east-1/arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/orders`);
    expect(us?.outcome).toBe('fail');
    expect(us?.message).toContain('orders, a AWS::DynamoDB::Table AWS Config records in us-east-1');
    expect(cov.find((f) => f.resource === `${ACCOUNT}/eu-west-1/coverage/DynamoDB`)?.outcome).toBe('pass');
    expect(cov.some((f) => f.resource === `${ACCOUNT}/us-east-1/coverage/DynamoDB`)).toBe(false);
  });
});

describe('an unpacked export whose manifest was rewritten to match an edited file', () => {
  async function unpacked(config: string, tag: string): Promise<string> {
    const file = path.join(root, `forge-${tag}.tar.gz`);
    expect((await cli('export', '--config', config, '--from', '2026-11-01', '--to', '2026-11-04', '--out', file)).code).toBe(0);
    const into = mkdtempSync(path.join(root, `forge-${tag}-`));
    execFileSync('tar', ['-xzf', file, '-C', into]);
    return path.join(into, 'vigil-export-2026-11-01_2026-11-04');
  }
  /** Edits control-matrix.csv and records the new SHA-256 and size in the manifest: a consistent forgery. */
  function forgeMatrix(folder: string): void {
    const csvFile = path.join(folder, 'control-matrix.csv');
    const forged = readFileSync(csvFile, 'utf8').replace(/,4,0,0,0,/, ',3,1,0,0,');
    expect(forged).not.toBe(readFileSync(csvFile, 'utf8'));
    writeFileSync(csvFile, forged);
    const manifestFile = path.join(folder, 'vigil-export.json');
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { files: Array<{ path: string; bytes: number; sha256: string }> };
    const entry = manifest.files.find((f) => f.path === 'control-matrix.csv')!;
    entry.bytes = Buffer.byteLength(forged);
    entry.sha256 = createHash('sha256').update(forged).digest('hex');
    writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  }

  it('fails with the signing key (the manifest is signed), also when the .sig is re-pointed at the new manifest', async () => {
    const folder = await unpacked(configFile, 'signed');
    expect((await cli('verify-archive', folder, '--public-key', publicKeyFile)).out).toContain('(vigil-export.json signed by key ');
    forgeMatrix(folder);
    let r = await cli('verify-archive', folder, '--public-key', publicKeyFile);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^export FAILED: altered — vigil-export\.json's signature \(vigil-export\.json\.sig\) does not verify with key [0-9a-f]{64}/);
    // Re-pointing the signature file's digest at the forged manifest does not help: the signature covers the digest.
    const sigFile = path.join(folder, 'vigil-export.json.sig');
    const sig = JSON.parse(readFileSync(sigFile, 'utf8')) as { sha256: string };
    sig.sha256 = createHash('sha256').update(readFileSync(path.join(folder, 'vigil-export.json'))).digest('hex');
    writeFileSync(sigFile, JSON.stringify(sig));
    r = await cli('verify-archive', folder, '--public-key', publicKeyFile);
    expect(r.code).toBe(1);
    expect(r.err).toContain('does not verify with key');
  });

  it('with the .sig removed it passes, but says the manifest is not signed and only the day files are proven', async () => {
    const folder = await unpacked(configFile, 'stripped');
    forgeMatrix(folder);
    rmSync(path.join(folder, 'vigil-export.json.sig'));
    const r = await cli('verify-archive', folder, '--public-key', publicKeyFile);
    expect(r.code).toBe(0);
    expect(r.out).toContain('(vigil-export.json is not signed: anyone can rewrite those files and their hashes there — only the day files are proven, re-derive the rest from them)');
  });

  it('an export without a signing key ships no .sig and its report says what is not proven', async () => {
    const unsignedConfig = path.join(root, 'unsigned.yaml');
    writeFileSync(unsignedConfig, `dataDir: ${root}/var\narchive: { dir: ${archiveDir} }\n`);
    const folder = await unpacked(unsignedConfig, 'unsigned');
    expect(existsSync(path.join(folder, 'vigil-export.json.sig'))).toBe(false);
    expect(readFileSync(path.join(folder, 'VERIFICATION.md'), 'utf8')).toContain('vigil-export.json is not signed (no private key where the export was made)');
    const r = await cli('verify-archive', folder);
    expect(r.code).toBe(0);
    expect(r.out).toContain('vigil-export.json is not signed');
  });
});

describe('/readyz while another replica holds the day-close lock', () => {
  it('a failing replica stays not ready when its next attempt finds the lock busy (it used to flip to ready)', async () => {
    const redis = await startRedisServer();
    const client = new Redis(redis.url);
    let daemon: Daemon | undefined;
    try {
      fakeBehaviour.set('alpha', async () => [{ resource: 'r1', outcome: 'pass', message: 'fine' }]);
      const prefix = uniquePrefix('r4-ready');
      const loaded = testConfig(
        `redis: { url: "${redis.url}", prefix: ${prefix} }
http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0, token: { env: ADMIN } } }
probes:
  fake-check: { schedule: "0 3 * * *" }
`,
        [fakeProbe],
        `controls:
  - id: fake-control
    title: Fake control (internal)
    public: false
    publicTitle: Fake public title
    publicDescription: Fake public description
    frameworks: { soc2: [CC6.7], iso27001: [A.8.24] }
    probes: [fake-check]
`,
        { ADMIN: 'r4-readyz-admin-token-0123456789-abcdef' },
      );
      mkdirSync(loaded.archiveDir, { recursive: true });
      const clock = { now: new Date('2026-11-20T10:00:00Z') };
      const d = await startDaemon({ loaded, log: createLogger('info', new LogCapture()), now: () => clock.now });
      daemon = d;
      await waitFor(async () => (d.recorder.recorded ?? 0) >= 1, 10_000, 'the catch-up run');
      const readyz = async () => (await get(`${d.adminUrl}/readyz`)).json() as { status: string; problems: string[] };
      // A file vigil did not write where the day goes: the close is refused, every attempt, until it is moved out.
      const planted = path.join(loaded.archiveDir, '2026-11-20.json');
      writeFileSync(planted, '{"not":"vigil"}\n');
      clock.now = new Date('2026-11-21T00:15:00Z');
      await d.tick();
      const failing = await readyz();
      expect(failing.status).toBe('not ready');
      expect(failing.problems).toEqual([expect.stringMatching(/^day close failing \(1 consecutive attempt\): /)]);
      // Another replica is closing (it holds the lock): this replica's day close has not succeeded.
      await client.set(`${prefix}:lock:day-close`, 'another-replica', 'PX', 60_000);
      await d.tick();
      expect((await readyz()).problems).toEqual(failing.problems);
      // The other replica finishes; the planted file is moved out: this one closes the day and is ready.
      await client.del(`${prefix}:lock:day-close`);
      unlinkSync(planted);
      await d.tick();
      expect(await readyz()).toEqual({ status: 'ready', problems: [] });
    } finally {
      await daemon?.stop();
      client.disconnect();
      await redis.stop();
    }
  }, 30_000);
});
