import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probes as registry } from '../probes/index.js';
import { main, type CliIo } from '../src/cli/main.js';
import { PREVIEW_WATERMARK, previewEmail, previewInput, previewTrustPage, sampleSnapshot } from '../src/cli/preview.js';
import { loadConfig } from '../src/config/load.js';
import { startDaemon, type Daemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { Snapshot, snapshotHash, snapshotBody } from '../src/posture/snapshot-types.js';
import { artifactsDir, launchBrowser } from './helpers/browser.js';
import { get, LogCapture, waitFor } from './helpers/daemon.js';
import { fakeBehaviour, fakeProbe } from './helpers/fake-probe.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SVG_LOGO = '<svg xmlns="http://www.w3.org/2000/svg" width="80" height="30"><rect width="80" height="30" fill="#0b7285"/></svg>\n';

/** A branded config over the shipped catalog; no secret is set for it (previews need none). */
function brandedConfig(extra = ''): { file: string; dir: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'vigil-preview-'));
  writeFileSync(path.join(dir, 'logo.svg'), SVG_LOGO);
  const file = path.join(dir, 'vigil.yaml');
  writeFileSync(
    file,
    [
      `dataDir: ${dir}/var`,
      'timezone: Europe/Berlin',
      'trust:',
      '  organization: Acme Payments',
      '  title: Acme Trust Center',
      '  logoFile: logo.svg',
      '  colors: { accent: "#0b7285" }',
      '  intro: Our controls, measured every day.',
      'http: { admin: { token: { env: VIGIL_TEST_UNSET_ADMIN } } }',
      'email: { smtp: { env: VIGIL_TEST_UNSET_SMTP }, from: vigil@acme.example, to: [sec@acme.example] }',
      extra,
    ].join('\n'),
  );
  return { file, dir };
}

function io(cwd: string): CliIo & { stdout: string; stderr: string } {
  const out = { stdout: '', stderr: '' };
  return Object.assign(out, { out: (t: string) => void (out.stdout += t), err: (t: string) => void (out.stderr += t), env: {}, registry, cwd });
}

describe('sample data', () => {
  it('is a valid snapshot over the user catalog, with green, red and unknown controls, and public ones on the feed', () => {
    const { file } = brandedConfig();
    const input = previewInput(loadConfig(file, registry, {}, { secrets: [] }), new Date('2026-11-22T09:00:00Z'));
    const s = sampleSnapshot(input);
    expect(Snapshot.parse(s)).toEqual(s);
    expect(s.hash).toBe(snapshotHash(snapshotBody(s)));
    expect(s.date).toBe('2026-11-21');
    expect(s.timezone).toBe('Europe/Berlin');
    expect(s.controls.map((c) => c.id)).toEqual(input.controls.map((c) => c.id));
    expect(s.counts.red).toBeGreaterThan(0);
    expect(s.counts.unknown).toBeGreaterThan(0);
    expect(s.counts.green).toBeGreaterThan(s.counts.red);
    expect(previewTrustPage(input)).toContain('class="streak"');
  });
});

describe('vigil preview', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('preview trust writes the branded page from sample data, watermarked in the title and a visible banner', async () => {
    const { file, dir } = brandedConfig();
    const cli = io(dir);
    expect(await main(['preview', 'trust', '-c', file], cli)).toBe(0);
    expect(cli.stderr).toBe('');
    const out = path.join(dir, 'vigil-preview-trust.html');
    expect(cli.stdout).toContain(out);
    const html = readFileSync(out, 'utf8');
    expect(html).toContain('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; base-uri \'none\'; form-action \'none\'; img-src data:">');
    const page = await browser.newPage({ viewport: { width: 390, height: 800 }, javaScriptEnabled: false });
    try {
      await page.goto(`file://${out}`, { waitUntil: 'load' });
      expect(await page.title()).toBe(`${PREVIEW_WATERMARK} — Acme Trust Center — continuously measured security controls`);
      const text = await page.innerText('body');
      expect(text.startsWith(PREVIEW_WATERMARK)).toBe(true);
      expect(text.trimEnd().endsWith('every figure on it is made up.')).toBe(true);
      expect(text).toContain('Acme Trust Center');
      expect(text).toContain('Our controls, measured every day.');
      // The shipped catalog's public titles, as they would be published.
      expect(text).toMatch(/Measured green every day since \d{4}-\d{2}-\d{2} \(\d+ consecutive days\)/);
      expect(await page.evaluate("document.querySelector('header.brand img').naturalWidth")).toBe(80);
      expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
      await page.screenshot({ path: path.join(artifactsDir, 'preview-trust.png'), fullPage: true });
    } finally {
      await page.close();
    }
  });

  it('preview email writes subject, HTML and text, each watermarked; the HTML reads at 390 px', async () => {
    const { file, dir } = brandedConfig();
    const outDir = path.join(dir, 'mail');
    const cli = io(dir);
    expect(await main(['preview', 'email', '-c', file, '--out', 'mail'], cli)).toBe(0);
    expect(readdirSync(outDir).sort()).toEqual(['email.html', 'email.txt', 'subject.txt']);
    const subject = readFileSync(path.join(outDir, 'subject.txt'), 'utf8');
    expect(subject).toMatch(new RegExp(`^${PREVIEW_WATERMARK} — vigil \\d{4}-\\d{2}-\\d{2}: \\d+ green · \\d+ red \\(new\\) · \\d+ unknown\\n$`));
    const text = readFileSync(path.join(outDir, 'email.txt'), 'utf8');
    expect(text.split('\n')[0]).toBe(`*** ${PREVIEW_WATERMARK}: not published, not archived. This is how the page or email will look; every figure on it is made up. ***`);
    expect(text).toContain('Acme Payments: control posture on');
    const page = await browser.newPage({ viewport: { width: 390, height: 800 }, javaScriptEnabled: false });
    try {
      await page.goto(`file://${path.join(outDir, 'email.html')}`, { waitUntil: 'load' });
      expect((await page.title()).startsWith(`${PREVIEW_WATERMARK} — vigil daily snapshot — Acme Payments — `)).toBe(true);
      const visible = await page.innerText('body');
      expect(visible.startsWith(PREVIEW_WATERMARK)).toBe(true);
      expect(visible).toContain('sample-resource-with-a-rather-long-name-to-show-wrapping-at-phone-width');
      expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
      await page.screenshot({ path: path.join(artifactsDir, 'preview-email.png'), fullPage: true });
    } finally {
      await page.close();
    }
  });

  it('refuses to write a preview into the evidence archive (exit 64), and writes nothing there', async () => {
    const { file, dir } = brandedConfig('archive: { dir: ./evidence }');
    const cli = io(dir);
    expect(await main(['preview', 'trust', '-c', file, '--out', 'evidence/2026-11-21.json'], cli)).toBe(64);
    expect(cli.stderr).toContain('inside the evidence archive');
    expect(await main(['preview', 'email', '-c', file, '--out', 'evidence'], cli)).toBe(64);
    expect(existsSync(path.join(dir, 'evidence'))).toBe(false);
  });

  it('an unusable logo file is a config error naming trust.logoFile (exit 78)', async () => {
    const { file, dir } = brandedConfig();
    writeFileSync(path.join(dir, 'logo.svg'), 'GIF89a not a logo');
    const cli = io(dir);
    expect(await main(['preview', 'trust', '-c', file], cli)).toBe(78);
    expect(cli.stderr).toContain('trust.logoFile:');
    expect(cli.stderr).toContain('neither a PNG nor an SVG');
  });
});

describe('the daemon never serves a preview', () => {
  /** Every module reachable from `entry` by static and dynamic relative imports. */
  function reachable(entry: string): Set<string> {
    const seen = new Set<string>();
    const todo = [entry];
    while (todo.length > 0) {
      const file = todo.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const src = readFileSync(file, 'utf8');
      for (const [, spec] of src.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)) {
        const ts = path.resolve(path.dirname(file), spec!).replace(/\.js$/, '.ts');
        if (existsSync(ts)) todo.push(ts);
      }
    }
    return seen;
  }

  it('the preview builder is not reachable from the daemon, and no other module holds the watermark', () => {
    const fromDaemon = reachable(path.join(root, 'src/daemon.ts'));
    expect(fromDaemon.size).toBeGreaterThan(20);
    expect(fromDaemon.has(path.join(root, 'src/http/trust.ts'))).toBe(true);
    expect(fromDaemon.has(path.join(root, 'src/cli/preview.ts'))).toBe(false);
    // The CLI reaches it (so the walk would see it if the daemon did).
    expect(reachable(path.join(root, 'src/cli/main.ts')).has(path.join(root, 'src/cli/preview.ts'))).toBe(true);
    const holders = [...fromDaemon].filter((f) => readFileSync(f, 'utf8').includes('PREVIEW'));
    expect(holders).toEqual([]);
  });

  describe('a daemon on the same config', () => {
    let redis: TestRedisServer;
    let daemon: Daemon;
    let clock = new Date('2026-11-20T10:00:00Z');
    let cfg: { file: string; dir: string };
    let archiveDir: string;
    const token = 'preview-admin-token-0123456789-abcdef';

    beforeAll(async () => {
      redis = await startRedisServer();
      fakeBehaviour.set('alpha', async () => [{ resource: 'r1', outcome: 'pass', message: 'fine' }]);
      cfg = brandedConfig(
        `redis: { url: "${redis.url}", prefix: ${uniquePrefix('preview')} }\n` +
          'probes:\n  fake-check: { schedule: "0 3 * * *" }\n' +
          'controls: ./controls.yaml\n',
      );
      writeFileSync(
        path.join(cfg.dir, 'controls.yaml'),
        'controls:\n  - { id: fake-control, title: Fake, public: true, publicTitle: Fake public, publicDescription: Fake public description, frameworks: { soc2: [CC6.7], iso27001: [A.8.24] }, probes: [fake-check] }\n',
      );
      // Previews first, with the very config the daemon then runs.
      const cli = io(cfg.dir);
      const yaml = readFileSync(cfg.file, 'utf8').replace('http: { admin: { token: { env: VIGIL_TEST_UNSET_ADMIN } } }', 'http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0, token: { env: ADMIN } } }');
      writeFileSync(cfg.file, yaml);
      expect(await main(['preview', 'trust', '-c', cfg.file], { ...cli, registry: [fakeProbe] })).toBe(0);
      expect(await main(['preview', 'email', '-c', cfg.file], { ...cli, registry: [fakeProbe] })).toBe(0);
      const loaded = loadConfig(cfg.file, [fakeProbe], { ADMIN: token, VIGIL_TEST_UNSET_SMTP: 'smtp://127.0.0.1:1' }, {});
      archiveDir = loaded.archiveDir;
      daemon = await startDaemon({ loaded, log: createLogger('warn', new LogCapture()), now: () => clock });
      await waitFor(async () => daemon.recorder.recorded >= 1, 10_000, 'the catch-up run');
      clock = new Date('2026-11-21T00:15:00Z');
      await daemon.tick();
    });
    afterAll(async () => {
      await daemon?.stop();
      await redis?.stop();
    });

    it('serves the branded page, the feed and the snapshot without any watermark, and the archive holds only the real day', async () => {
      const page = await get(`${daemon.publicUrl}/trust`);
      expect(page.status).toBe(200);
      expect(page.text).toContain('Acme Trust Center');
      expect(page.text).toContain('data:image/svg+xml;base64,');
      const bodies = [
        page.text,
        (await get(`${daemon.publicUrl}/trust/feed.json`)).text,
        (await get(`${daemon.publicUrl}/trust/feed.schema.json`)).text,
        (await get(`${daemon.adminUrl}/api/snapshots/2026-11-20`, token)).text,
        (await get(`${daemon.adminUrl}/api/snapshots/2026-11-20?format=html`, token)).text,
        (await get(`${daemon.adminUrl}/api/snapshots/2026-11-20?format=md`, token)).text,
      ];
      expect(bodies[3]).toContain('"date": "2026-11-20"');
      for (const body of bodies) {
        expect(body).not.toContain(PREVIEW_WATERMARK);
        expect(body).not.toContain('sample data');
        expect(body).not.toContain('sample-resource');
      }
      expect(readdirSync(archiveDir).filter((f) => f.endsWith('.json'))).toEqual(['2026-11-20.json']);
    });
  });
});

describe('preview renderings', () => {
  it('every one is watermarked', () => {
    const { file } = brandedConfig();
    const input = previewInput(loadConfig(file, registry, {}, { secrets: [] }), new Date('2026-11-22T09:00:00Z'));
    const mail = previewEmail(input);
    expect(mail.subject.startsWith(PREVIEW_WATERMARK)).toBe(true);
    for (const text of [previewTrustPage(input), mail.html, mail.text]) expect(text.split(PREVIEW_WATERMARK).length - 1).toBeGreaterThanOrEqual(2);
  });
});

describe('help', () => {
  it.each([
    [['preview', 'trust'], ['--out <file>', '--config', '73  ']],
    [['preview', 'email'], ['--out <dir>', '--config']],
    [['email', 'test'], ['--config', '75  ', 'could not be reached', '78  ']],
  ])('vigil %s --help shows its options and exit codes', async (command, shown) => {
    const cli = io(tmpdir());
    expect(await main([...command, '--help'], cli)).toBe(0);
    expect(cli.stdout).toContain(`Usage: vigil ${command.join(' ')} `);
    expect(cli.stdout).toMatch(/Exit codes:\n {2}0 /);
    for (const s of shown) expect(cli.stdout).toContain(s);
  });
});

describe('vigil config check', () => {
  it('checks the logo file too: an unusable one is named with the file and key path (exit 78)', async () => {
    const { file, dir } = brandedConfig();
    const ok = io(dir);
    expect(await main(['config', 'check', '-c', file], ok)).toBe(0);
    writeFileSync(path.join(dir, 'logo.svg'), Buffer.alloc(300 * 1024, 0x20));
    const bad = io(dir);
    expect(await main(['config', 'check', '-c', file], bad)).toBe(78);
    expect(bad.stderr).toContain(`${file}: trust.logoFile: `);
    expect(bad.stderr).toContain('more than the 262144 allowed');
  });
});
