import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { keyFingerprint, publicKeyFromPrivate, signHash, writeArchivedSnapshot } from '../src/store/archive.js';
import { makeDirectory, makeDirectorySync } from '../src/store/make-directory.js';
import { sampleChain } from './helpers/snapshots.js';

// Review R7 (a new user's walkthrough): two CLI defects found by following the README.

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(repo, 'bin', 'vigil.js');
const root = mkdtempSync(path.join(tmpdir(), 'vigil-r7-'));
const archiveDir = path.join(root, 'archive');
const keyFile = path.join(root, 'signing.pem');
const signedConfig = path.join(root, 'signed.yaml');
const privateKeyPem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const publicKeyPem = publicKeyFromPrivate(privateKeyPem);
const otherPublicKeyPem = publicKeyFromPrivate(generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());

beforeAll(async () => {
  writeFileSync(keyFile, privateKeyPem, { mode: 0o600 });
  for (const s of sampleChain('2026-11-01', 3)) expect(await writeArchivedSnapshot(archiveDir, { ...s, ...signHash(s.hash, privateKeyPem) })).toBe('written');
  writeFileSync(signedConfig, `dataDir: ${root}/var\narchive: { dir: ${archiveDir}, signingKey: { file: ${keyFile} } }\n`);
  writeFileSync(path.join(root, 'same.pem'), publicKeyPem);
  writeFileSync(path.join(root, 'other.pem'), otherPublicKeyPem);
  writeFileSync(path.join(root, 'not-a-key.pem'), 'timezone: UTC\n');
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), env: {}, cwd: root });
  return { code, out, err };
}

describe('export --public-key beside archive.signingKey', () => {
  const exportWith = (key: string, out: string) =>
    cli('export', '--config', signedConfig, '--from', '2026-11-01', '--to', '2026-11-03', '--public-key', path.join(root, key), '--out', path.join(root, out));

  it('a file that is not a key exits 66 and writes nothing (it was silently ignored)', async () => {
    const r = await exportWith('not-a-key.pem', 'a.tar.gz');
    expect(r.code).toBe(66);
    expect(r.err).toBe('vigil: --public-key: the public key is not a PEM public key; derive it with: openssl pkey -in key.pem -pubout\n');
    expect(existsSync(path.join(root, 'a.tar.gz'))).toBe(false);
  });

  it('another key than the signing key exits 66, naming both fingerprints', async () => {
    const r = await exportWith('other.pem', 'b.tar.gz');
    expect(r.code).toBe(66);
    expect(r.err).toBe(
      `vigil: --public-key: key ${keyFingerprint(otherPublicKeyPem)} is not the public half of archive.signingKey (key ${keyFingerprint(publicKeyPem)}): pass the matching key, or leave --public-key out\n`,
    );
    expect(existsSync(path.join(root, 'b.tar.gz'))).toBe(false);
  });

  it('the signing key’s own public half is accepted', async () => {
    const r = await exportWith('same.pem', 'c.tar.gz');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(readFileSync(path.join(root, 'c.tar.gz')).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
  });
});

// Run as a child process with a timeout: the defect was a synchronous endless loop (Node 20's
// recursive mkdirSync under /proc), which would hang an in-process test for ever.
describe.runIf(process.platform === 'linux' && existsSync('/proc/self'))('preview --out where no directory can be made', () => {
  for (const [kind, out] of [
    ['email', '/proc/vigil-r7-preview/email'],
    ['trust', '/proc/vigil-r7-preview/sub/trust.html'],
  ] as const) {
    it(`preview ${kind} --out ${out} exits 73 instead of spinning`, () => {
      const r = spawnSync(process.execPath, [bin, 'preview', kind, '--out', out], { encoding: 'utf8', timeout: 20_000, cwd: root });
      expect(r.signal).toBeNull();
      expect(r.status).toBe(73);
      expect(r.stderr).toMatch(new RegExp(`^vigil: cannot write /proc/vigil-r7-preview/\\S+: ENOENT\\n$`));
    });
  }
});

describe('vigil start --help', () => {
  it('lists every exit code the README gives for start, 70 included', async () => {
    const r = await cli('start', '--help');
    expect(r.code).toBe(0);
    const codes = [...r.out.split('Exit codes:\n')[1]!.matchAll(/^ {2}(\d+) /gm)].map((m) => Number(m[1]));
    expect(codes).toEqual([0, 1, 64, 69, 70, 78]);
    expect(r.out).toContain('  70  an uncaught error stopped the daemon (logged at fatal): let the supervisor restart it\n');
  });
});

describe('makeDirectory / makeDirectorySync (mkdir -p that always ends)', () => {
  it('creates missing parents with the mode, accepts an existing directory, refuses an existing file', async () => {
    const sync = path.join(root, 'md-sync', 'a', 'b');
    makeDirectorySync(sync, 0o700);
    makeDirectorySync(sync, 0o700);
    expect(statSync(sync).isDirectory()).toBe(true);
    expect(statSync(path.join(root, 'md-sync', 'a')).mode & 0o777).toBe(0o700);
    const asyncDir = path.join(root, 'md-async', 'a', 'b');
    await makeDirectory(asyncDir, 0o700);
    await makeDirectory(asyncDir, 0o700);
    expect(statSync(asyncDir).isDirectory()).toBe(true);
    expect(statSync(path.join(root, 'md-async', 'a')).mode & 0o777).toBe(0o700);
    const file = path.join(root, 'md-file');
    writeFileSync(file, 'x');
    expect(() => makeDirectorySync(file)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    await expect(makeDirectory(file)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(() => makeDirectorySync(path.join(file, 'sub'))).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
  });

  it.runIf(process.platform === 'linux' && existsSync('/proc/self'))('a parent that cannot hold children (/proc) is ENOENT, not an endless loop', async () => {
    await expect(makeDirectory('/proc/vigil-r7-md/a/b', 0o700)).rejects.toMatchObject({ code: 'ENOENT', path: '/proc/vigil-r7-md' });
  }, 10_000);
});

describe.runIf(process.platform === 'linux' && existsSync('/proc/self'))('vigil start with a dataDir that cannot be created', () => {
  it('exits 1 naming the path instead of spinning at 100 % CPU for ever', () => {
    const config = path.join(root, 'proc-datadir.yaml');
    writeFileSync(config, 'dataDir: /proc/vigil-r7-data/var\nhttp:\n  public: { listen: 127.0.0.1:1 }\n  admin: { listen: 127.0.0.1:2 }\n');
    const r = spawnSync(process.execPath, [bin, 'start', '--config', config], { encoding: 'utf8', timeout: 30_000, cwd: root });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(1);
    expect(r.stdout + r.stderr).toContain("ENOENT: no such file or directory, mkdir '/proc/vigil-r7-data'");
  }, 40_000);
});
