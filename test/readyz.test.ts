import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon.js';
import { startDaemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { get, LogCapture, metricValue, testConfig, waitFor } from './helpers/daemon.js';
import { fakeBehaviour, fakeProbe } from './helpers/fake-probe.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';

/**
 * GET /readyz and the day-close failure counter (issue 13): a day close that keeps failing, or a
 * dataDir / archive.dir that is gone or not writable, makes the replica not ready with the reason;
 * the log names the day and archive.dir, never the temporary file. Real daemon, real redis-server,
 * a real directory made unwritable.
 */
const catalog = `controls:
  - id: fake-control
    title: Fake control (internal)
    public: false
    publicTitle: Fake public title
    publicDescription: Fake public description
    frameworks: { soc2: [CC6.7], iso27001: [A.8.24] }
    probes: [fake-check]
`;
const token = 'readyz-admin-token-0123456789-abcdefgh';

/**
 * Makes `dir` refuse new files, also for root (the tests may run as root, for whom mode bits do not
 * count): the immutable attribute when root, mode 0500 otherwise. Returns the undo.
 */
function makeUnwritable(dir: string): () => void {
  if (process.getuid?.() === 0) {
    execFileSync('chattr', ['+i', dir]);
    return () => execFileSync('chattr', ['-i', dir]);
  }
  chmodSync(dir, 0o500);
  return () => chmodSync(dir, 0o700);
}

let redis: TestRedisServer;
let daemon: Daemon | undefined;
let undo: (() => void) | undefined;
beforeAll(async () => {
  redis = await startRedisServer();
  fakeBehaviour.set('alpha', async () => [{ resource: 'r1', outcome: 'pass', message: 'fine' }]);
});
afterEach(async () => {
  undo?.();
  undo = undefined;
  await daemon?.stop();
  daemon = undefined;
});
afterAll(async () => {
  await redis.stop();
});

async function start(clock: { now: Date }) {
  const loaded = testConfig(
    `redis: { url: "${redis.url}", prefix: ${uniquePrefix('readyz')} }
http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0, token: { env: ADMIN } } }
probes:
  fake-check: { schedule: "0 3 * * *" }
`,
    [fakeProbe],
    catalog,
    { ADMIN: token },
  );
  const logs = new LogCapture();
  // dataDir exists at start (the admin token is configured and Redis external: nothing else creates it).
  mkdirSync(loaded.config.dataDir, { recursive: true });
  daemon = await startDaemon({ loaded, log: createLogger('info', logs), now: () => clock.now });
  await waitFor(async () => (daemon?.recorder.recorded ?? 0) >= 1, 10_000, 'the catch-up run');
  return { loaded, logs, daemon };
}

async function readyz(d: Daemon): Promise<{ status: number; body: { status: string; problems: string[] } }> {
  const res = await get(`${d.adminUrl}/readyz`);
  return { status: res.status, body: res.json() as { status: string; problems: string[] } };
}

async function metrics(d: Daemon): Promise<string> {
  return (await get(`${d.adminUrl}/metrics`, token)).text;
}

describe('/readyz while day close fails', () => {
  it('an unwritable archive directory: 503 with the day and archive.dir, the counter counts each attempt; fixed, ready again', async () => {
    const clock = { now: new Date('2026-11-20T10:00:00Z') };
    const { loaded, logs, daemon: d } = await start(clock);
    expect(await readyz(d)).toEqual({ status: 200, body: { status: 'ready', problems: [] } });
    const before = await metrics(d);
    expect(metricValue(before, 'vigil_day_close_failures_total')).toBe(0);
    // A fresh install: no snapshot yet, so no sample (never 0, which VigilSnapshotOverdue would page on).
    expect(before).not.toMatch(/^vigil_snapshot_last_published_timestamp_seconds /m);

    mkdirSync(loaded.archiveDir, { recursive: true });
    undo = makeUnwritable(loaded.archiveDir);
    // Not writable is seen at once, before any close is due.
    const early = await readyz(d);
    expect(early.status).toBe(503);
    expect(early.body.problems).toEqual([expect.stringMatching(new RegExp(`^archive\\.dir ${loaded.archiveDir} is not writable \\((EACCES|EPERM)\\)$`))]);

    clock.now = new Date('2026-11-21T00:15:00Z');
    await d.tick();
    await d.tick();
    const failing = await readyz(d);
    expect(failing.status).toBe(503);
    expect(failing.body.status).toBe('not ready');
    expect(failing.body.problems).toContainEqual(
      expect.stringMatching(new RegExp(`^day close failing \\(2 consecutive attempts\\): closing 2026-11-20 failed: cannot write the archive directory ${loaded.archiveDir} \\(archive\\.dir\\): (EACCES|EPERM) on open$`)),
    );
    const m = await metrics(d);
    // One failed attempt at the tick's close (the first tick), one at the second.
    expect(metricValue(m, 'vigil_day_close_failures_total')).toBe(2);
    expect(metricValue(m, 'vigil_ready')).toBe(0);
    // The log names the day and the directory, and never the temporary file the writer was creating.
    const lines = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'day close failed: nothing published, retrying every minute');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ level: 50, day: '2026-11-20', archiveDir: loaded.archiveDir, failures: 2 });
    expect(logs.text).not.toContain('.tmp');

    undo();
    undo = undefined;
    await d.tick();
    expect(await readyz(d)).toEqual({ status: 200, body: { status: 'ready', problems: [] } });
    expect(existsSync(path.join(loaded.archiveDir, '2026-11-20.json'))).toBe(true);
    const after = await metrics(d);
    expect(metricValue(after, 'vigil_day_close_failures_total')).toBe(2);
    expect(metricValue(after, 'vigil_ready')).toBe(1);
    expect(metricValue(after, 'vigil_snapshot_last_published_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
  });

  it('a dataDir or archive.dir that is gone, or a file in its place, is not ready; restored, ready again', async () => {
    const clock = { now: new Date('2026-11-20T10:00:00Z') };
    const { loaded, daemon: d } = await start(clock);
    clock.now = new Date('2026-11-21T00:15:00Z');
    await d.tick();
    expect(existsSync(path.join(loaded.archiveDir, '2026-11-20.json'))).toBe(true);
    expect((await readyz(d)).status).toBe(200);

    // The archive once held published days: gone is a problem (the next close could not chain to them).
    const saved = readFileSync(path.join(loaded.archiveDir, '2026-11-20.json'), 'utf8');
    rmSync(loaded.archiveDir, { recursive: true, force: true });
    expect(await readyz(d)).toEqual({ status: 503, body: { status: 'not ready', problems: [`archive.dir ${loaded.archiveDir} is gone`] } });
    writeFileSync(loaded.archiveDir, 'not a directory');
    expect((await readyz(d)).body.problems).toEqual([`archive.dir ${loaded.archiveDir} is not a directory`]);
    rmSync(loaded.archiveDir);
    mkdirSync(loaded.archiveDir, { recursive: true });
    writeFileSync(path.join(loaded.archiveDir, '2026-11-20.json'), saved, { mode: 0o444 });
    expect((await readyz(d)).status).toBe(200);

    // archive.dir defaults to <dataDir>/archive: both go.
    const dataDir = path.resolve(loaded.config.dataDir);
    expect(loaded.archiveDir).toBe(path.join(dataDir, 'archive'));
    rmSync(dataDir, { recursive: true, force: true });
    expect((await readyz(d)).body.problems).toEqual([`dataDir ${dataDir} is gone`, `archive.dir ${loaded.archiveDir} is gone`]);
    mkdirSync(loaded.archiveDir, { recursive: true });
    writeFileSync(path.join(loaded.archiveDir, '2026-11-20.json'), saved, { mode: 0o444 });
    expect((await readyz(d)).status).toBe(200);
  });
});
