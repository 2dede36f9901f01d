import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probes as registry } from '../probes/index.js';
import { main, type CliIo } from '../src/cli/main.js';
import { insideDirectory, landingPath } from '../src/cli/out-path.js';
import { publicKeyFromPrivate, signHash, writeArchivedSnapshot } from '../src/store/archive.js';
import { sampleChain } from './helpers/snapshots.js';

/** R8: `--out` of export and preview must never land in the evidence archive, by name or by symlink. */
const root = mkdtempSync(path.join(tmpdir(), 'vigil-r8-'));
const archiveDir = path.join(root, 'archive');
const configFile = path.join(root, 'vigil.yaml');

function io(): CliIo & { stdout: string; stderr: string } {
  const out = { stdout: '', stderr: '' };
  return Object.assign(out, { out: (t: string) => void (out.stdout += t), err: (t: string) => void (out.stderr += t), env: {}, registry, cwd: root });
}

beforeAll(async () => {
  for (const s of sampleChain('2026-11-01', 2)) expect(await writeArchivedSnapshot(archiveDir, s)).toBe('written');
  writeFileSync(configFile, `dataDir: ${root}/var\narchive: { dir: ${archiveDir} }\n`);
  symlinkSync(archiveDir, path.join(root, 'link-to-archive'));
  symlinkSync(path.join(archiveDir, 'planted.tar.gz'), path.join(root, 'dangling-into-archive.tar.gz'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const archiveFiles = () => readdirSync(archiveDir).sort();

describe('insideDirectory', () => {
  it('a name starting ".." inside the directory is inside it; a sibling directory is not', () => {
    expect(insideDirectory(path.join(archiveDir, '..bundle.tar.gz'), archiveDir)).toBe(true);
    expect(insideDirectory(path.join(archiveDir, '...'), archiveDir)).toBe(true);
    expect(insideDirectory(archiveDir, archiveDir)).toBe(true);
    expect(insideDirectory(path.join(root, 'archive-2', 'x.tar.gz'), archiveDir)).toBe(false);
    expect(insideDirectory(path.join(archiveDir, '..', 'x.tar.gz'), archiveDir)).toBe(false);
  });
  it('follows symlinks on the way, and a (dangling) symlink at the file itself', () => {
    expect(insideDirectory(path.join(root, 'link-to-archive', 'x.tar.gz'), archiveDir)).toBe(true);
    expect(insideDirectory(path.join(root, 'link-to-archive', 'new-dir', 'x.tar.gz'), archiveDir)).toBe(true);
    expect(insideDirectory(path.join(root, 'dangling-into-archive.tar.gz'), archiveDir)).toBe(true);
    expect(landingPath(path.join(root, 'dangling-into-archive.tar.gz'))).toBe(path.join(landingPath(archiveDir), 'planted.tar.gz'));
    expect(insideDirectory(path.join(root, 'plain.tar.gz'), archiveDir)).toBe(false);
  });
});

describe('vigil export --out', () => {
  const before = () => archiveFiles();
  it.each([
    ['a "..name" file inside the archive', () => path.join(archiveDir, '..bundle.tar.gz')],
    ['a path through a symlink to the archive', () => path.join(root, 'link-to-archive', 'bundle.tar.gz')],
    ['a dangling symlink pointing into the archive', () => path.join(root, 'dangling-into-archive.tar.gz')],
  ])('refuses %s (64) and writes nothing there', async (_what, out) => {
    const files = before();
    const cli = io();
    const code = await main(['export', '--config', configFile, '--from', '2026-11-01', '--to', '2026-11-02', '--out', out()], cli);
    expect(cli.stderr).toContain('is inside the evidence archive');
    expect(code).toBe(64);
    expect(archiveFiles()).toEqual(files);
  });
  it('still writes a bundle beside the archive (the check is not over-eager)', async () => {
    const cli = io();
    const out = path.join(root, '..beside.tar.gz');
    expect(await main(['export', '--config', configFile, '--from', '2026-11-01', '--to', '2026-11-02', '--out', out], cli)).toBe(0);
    expect(existsSync(out)).toBe(true);
  });
});

describe('vigil preview --out', () => {
  it('refuses a "..name" file in the archive and a path through a symlink to it (64)', async () => {
    const files = archiveFiles();
    for (const [kind, out] of [
      ['trust', path.join(archiveDir, '..preview.html')],
      ['trust', path.join(root, 'link-to-archive', 'preview.html')],
      ['email', path.join(root, 'link-to-archive', 'mail')],
      ['trust', path.join(root, 'dangling-into-archive.tar.gz')],
    ] as const) {
      const cli = io();
      expect(await main(['preview', kind, '-c', configFile, '--out', out], cli), `${kind} ${out}`).toBe(64);
      expect(cli.stderr).toContain('inside the evidence archive');
    }
    expect(archiveFiles()).toEqual(files);
    mkdirSync(path.join(root, 'elsewhere'));
    const cli = io();
    expect(await main(['preview', 'trust', '-c', configFile, '--out', path.join(root, 'elsewhere', 'p.html')], cli)).toBe(0);
  });
});

describe('vigil export --public-key given the private signing key', () => {
  it('ships only the public half in public-key.pem, never the private key', async () => {
    const privateKeyPem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const signedDir = path.join(root, 'signed-archive');
    for (const s of sampleChain('2026-11-01', 2)) expect(await writeArchivedSnapshot(signedDir, { ...s, ...signHash(s.hash, privateKeyPem) })).toBe('written');
    // A host without archive.signingKey (the key is not configured here), and the careless --public-key.
    const config = path.join(root, 'no-key.yaml');
    writeFileSync(config, `dataDir: ${root}/var\narchive: { dir: ${signedDir} }\n`);
    const keyFile = path.join(root, 'signing.pem');
    writeFileSync(keyFile, privateKeyPem, { mode: 0o600 });
    const out = path.join(root, 'keyed.tar.gz');
    const cli = io();
    const code = await main(['export', '--config', config, '--from', '2026-11-01', '--to', '2026-11-02', '--public-key', keyFile, '--out', out], cli);
    expect(cli.stderr).toBe('');
    expect(code).toBe(0);
    const into = mkdtempSync(path.join(root, 'unpacked-'));
    execFileSync('tar', ['-xzf', out, '-C', into]);
    const folder = path.join(into, 'vigil-export-2026-11-01_2026-11-02');
    const shipped = readFileSync(path.join(folder, 'public-key.pem'), 'utf8');
    expect(shipped).not.toContain('PRIVATE');
    expect(shipped).toBe(publicKeyFromPrivate(privateKeyPem));
    const everything = execFileSync('tar', ['-xzOf', out]).toString('latin1');
    expect(everything).not.toContain(privateKeyPem.split('\n')[1]);
    // And the bundle still verifies with the shipped key.
    const verify = io();
    expect(await main(['verify-archive', path.join(folder, 'days'), '--public-key', path.join(folder, 'public-key.pem')], verify), verify.stderr).toBe(0);
  });
});
