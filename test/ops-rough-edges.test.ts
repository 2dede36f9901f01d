import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calendarDateProblem, isCalendarDate } from '../src/cli/dates.js';
import { main } from '../src/cli/main.js';
import { formatProbes, plainText } from '../src/cli/probes-list.js';
import { ConfigError, loadConfigText } from '../src/config/load.js';
import { startDaemon } from '../src/daemon.js';
import { METRIC, VigilMetrics, type MetricsSource } from '../src/http/metrics.js';
import { createLogger } from '../src/log.js';
import { addDays, dayOf, zonedInstant } from '../src/posture/days.js';
import { configuredUnits } from '../src/probe/units.js';
import { DayCloser } from '../src/store/day-close.js';
import { StateStore } from '../src/store/state.js';
import { probes as registry } from '../probes/index.js';
import { get, LogCapture, metricValue, testConfig, waitFor } from './helpers/daemon.js';
import { fakeBehaviour, fakeProbe } from './helpers/fake-probe.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';

/** Operator rough edges of issue 13: secrets per command, calendar dates, plain `vigil probes`, local times, metric names. */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const catalog = `controls:
  - id: fake-control
    title: Fake control (internal)
    public: false
    publicTitle: Fake public title
    publicDescription: Fake public description
    frameworks: { soc2: [CC6.7], iso27001: [A.8.24] }
    probes: [fake-check]
`;

let redis: TestRedisServer;
let client: Redis;
beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url, { maxRetriesPerRequest: null });
  fakeBehaviour.set('alpha', async () => [{ resource: 'r1', outcome: 'pass', message: 'fine' }]);
  fakeBehaviour.set('beta', async () => [{ resource: 'r2', outcome: 'pass', message: 'fine' }]);
});
afterAll(async () => {
  client.disconnect();
  await redis.stop();
});

function cliIo(env: NodeJS.ProcessEnv = {}) {
  const io = { out: '', err: '' };
  return { io, cli: { out: (t: string) => void (io.out += t), err: (t: string) => void (io.err += t), env, registry: [fakeProbe] } };
}

describe('--date is a calendar date', () => {
  it.each([
    ['2026-02-30', '--date 2026-02-30 is not a calendar date: 2026-02 has 28 days'],
    ['2026-13-01', '--date 2026-13-01 is not a calendar date: there is no month 13'],
    ['2025-02-29', '--date 2025-02-29 is not a calendar date: 2025-02 has 28 days'],
    ['2026-04-31', '--date 2026-04-31 is not a calendar date: 2026-04 has 30 days'],
    ['2026-00-10', '--date 2026-00-10 is not a calendar date: there is no month 0'],
    ['26-11-01', '--date expects a date YYYY-MM-DD'],
    ['yesterday', '--date expects a date YYYY-MM-DD'],
  ])('vigil snapshot --date %s exits 64 before reading the config', async (date, message) => {
    const { io, cli } = cliIo();
    // The config does not exist: the date is refused first (exit 64, not 78).
    expect(await main(['snapshot', '--config', '/nonexistent/vigil.yaml', '--date', date], cli)).toBe(64);
    expect(io.err).toBe(`vigil: ${message}\n`);
  });

  it('real days pass, leap days included; verify-archive --through is checked the same way', async () => {
    for (const d of ['2024-02-29', '2026-02-28', '2026-12-31', '2000-02-29']) expect(isCalendarDate(d), d).toBe(true);
    for (const d of ['1900-02-29', '2026-02-29', '2026-06-31']) expect(isCalendarDate(d), d).toBe(false);
    expect(calendarDateProblem('--to', '2026-06-31')).toBe('--to 2026-06-31 is not a calendar date: 2026-06 has 30 days');
    const { io, cli } = cliIo();
    expect(await main(['verify-archive', '/nonexistent', '--through', '2026-02-30'], cli)).toBe(64);
    expect(io.err).toBe('vigil: --through 2026-02-30 is not a calendar date: 2026-02 has 28 days\n');
  });
});

describe('commands ask only for the secrets they use', () => {
  // Email, an admin token and a GitHub token all named by variables that are NOT set here.
  const yaml = (prefix: string) => `redis: { url: "${redis.url}", prefix: ${prefix} }
http: { admin: { token: { env: VIGIL_TEST_ADMIN_TOKEN } } }
email: { smtp: { env: VIGIL_TEST_SMTP_URL }, from: vigil@example.test, to: [security@example.test] }
github:
  - { name: acme, org: acme, auth: { token: { env: VIGIL_TEST_GITHUB_TOKEN } } }
probes:
  fake-check: { schedule: "0 3 * * *" }
`;

  it('the daemon still demands them, naming each key path', () => {
    const problems = (() => {
      try {
        testConfig(yaml(uniquePrefix('secrets')), [fakeProbe], catalog);
      } catch (err) {
        return (err as ConfigError).problems;
      }
      return [];
    })();
    expect(problems.map((p) => p.replace(/^.*?: /, ''))).toEqual([
      'email.smtp: environment variable VIGIL_TEST_SMTP_URL is not set',
      'github[0].auth.token: environment variable VIGIL_TEST_GITHUB_TOKEN is not set',
    ]);
  });

  it('snapshot and rebuild succeed with the SMTP URL, the admin token and the GitHub token unset; rebuild restores the publication time', async () => {
    const prefix = uniquePrefix('secrets');
    // Written by testConfig (with every secret set, so that it loads); the CLI below runs with none.
    const loaded = testConfig(yaml(prefix), [fakeProbe], catalog, { VIGIL_TEST_SMTP_URL: 'smtps://u:p@mail.example.test', VIGIL_TEST_GITHUB_TOKEN: 'ghp_x' });
    const today = dayOf(new Date(), 'UTC');
    const first = addDays(today, -3);
    const last = addDays(today, -2);
    await client.set(`${prefix}:first-day`, first);
    const { io, cli } = cliIo({});
    expect(await main(['snapshot', '--config', loaded.file, '--date', last], cli), io.err).toBe(0);
    expect(io.out).toMatch(new RegExp(`^${last}: published — 0 green, 0 red, 1 unknown; sha256 [0-9a-f]{64}\\n$`));
    expect(io.err).toBe('');
    // Its email is queued for the daemon to send (which has the SMTP URL), not sent here.
    expect(await client.keys(`${prefix}:email*`)).not.toEqual([]);
    expect(readFileSync(path.join(loaded.archiveDir, `${last}.json`), 'utf8')).toContain(`"date": "${last}"`);

    for (const key of await client.keys(`${prefix}*`)) await client.del(key);
    expect(await main(['rebuild', '--config', loaded.file], cli), io.err).toBe(0);
    expect(io.out).toContain(`restored 2 days (${first} … ${last})`);
    // vigil_snapshot_last_published_timestamp_seconds continues from the archive: when the newest day became closable.
    const closable = Math.floor(zonedInstant(addDays(last, 1), '00:10', 'UTC').getTime() / 1000);
    expect(await client.get(`${prefix}:snapshot-published-at`)).toBe(String(closable));

    // A Redis restored without it (an older vigil's rebuild): the daemon's start sets it the same way.
    await client.del(`${prefix}:snapshot-published-at`);
    const closer = new DayCloser({ redis: client, prefix, loaded, units: configuredUnits(loaded), state: new StateStore(client, prefix, 'UTC'), log: pino({ level: 'silent' }) });
    expect(await closer.publishedAt()).toBeUndefined();
    expect(await closer.restorePublishedAt()).toBe(closable);
    expect(await client.get(`${prefix}:snapshot-published-at`)).toBe(String(closable));
  });

  it('vigil snapshot into an unwritable archive exits 1 naming the day and archive.dir, not a temporary file', async () => {
    const prefix = uniquePrefix('secrets');
    const loaded = testConfig(yaml(prefix), [fakeProbe], catalog, { VIGIL_TEST_SMTP_URL: 'smtps://u:p@mail.example.test', VIGIL_TEST_GITHUB_TOKEN: 'ghp_x' });
    const day = addDays(dayOf(new Date(), 'UTC'), -2);
    await client.set(`${prefix}:first-day`, day);
    mkdirSync(loaded.archiveDir, { recursive: true });
    const asRoot = process.getuid?.() === 0;
    if (asRoot) execFileSync('chattr', ['+i', loaded.archiveDir]);
    else chmodSync(loaded.archiveDir, 0o500);
    try {
      const { io, cli } = cliIo({});
      expect(await main(['snapshot', '--config', loaded.file, '--date', day], cli)).toBe(1);
      expect(io.err).toMatch(new RegExp(`^vigil: closing ${day} failed: cannot write the archive directory ${loaded.archiveDir} \\(archive\\.dir\\): (EACCES|EPERM) on open\n$`));
    } finally {
      if (asRoot) execFileSync('chattr', ['-i', loaded.archiveDir]);
      else chmodSync(loaded.archiveDir, 0o700);
    }
  });

  it('config check reads them all but warns about the unset ones; probes and run-once need none of the daemon secrets', async () => {
    const loaded = testConfig(yaml(uniquePrefix('secrets')), [fakeProbe], catalog, { VIGIL_TEST_SMTP_URL: 'smtps://u:p@mail.example.test', VIGIL_TEST_GITHUB_TOKEN: 'ghp_x' });
    const check = cliIo({});
    expect(await main(['config', 'check', '--config', loaded.file], check.cli), check.io.err).toBe(0);
    expect(check.io.err).toContain('email.smtp: environment variable VIGIL_TEST_SMTP_URL is not set (the commands that use it refuse to run without it)');
    expect(check.io.err).toContain('github[0].auth.token: environment variable VIGIL_TEST_GITHUB_TOKEN is not set');
    expect(check.io.out).toContain(': OK — ');
    const probes = cliIo({});
    expect(await main(['probes', '--config', loaded.file], probes.cli), probes.io.err).toBe(0);
    // run-once runs the probes: their credentials are demanded, the SMTP URL and the admin token are not.
    const once = cliIo({ VIGIL_TEST_GITHUB_TOKEN: 'ghp_x' });
    expect(await main(['run-once', '--config', loaded.file, '--json'], once.cli), once.io.err).toBe(0);
    expect(JSON.parse(once.io.out)).toMatchObject({ controls: [{ id: 'fake-control', status: 'green' }] });
    const noToken = cliIo({});
    expect(await main(['run-once', '--config', loaded.file, '--json'], noToken.cli)).toBe(78);
    expect(noToken.io.err).toContain('github[0].auth.token: environment variable VIGIL_TEST_GITHUB_TOKEN is not set');
    expect(noToken.io.err).not.toContain('email.smtp');
  });
});

describe('vigil probes', () => {
  it('plain text strips the README markup; --format md / --markdown keep it', async () => {
    expect(plainText('`iam:GetCredentialReport` and **read-only** [docs](https://example.test/x) a \\| b')).toBe('iam:GetCredentialReport and read-only docs (https://example.test/x) a | b');
    const loaded = loadConfigText('{}\n', path.join(root, 'config', 'inline.yaml'), registry, {}, { secrets: [] });
    const text = formatProbes(loaded, registry, 'text');
    expect(text).toContain('tls-certificate-posture — ');
    expect(text).not.toMatch(/`|\*\*|\]\(/);
    const md = formatProbes(loaded, registry, 'md');
    expect(md).toMatch(/^# vigil probes\n\n## `[a-z-]+` — /);
    expect(md).toContain('- **permissions:** `');
    for (const flags of [['--format', 'md'], ['--markdown']]) {
      const { io, cli } = cliIo();
      expect(await main(['probes', ...flags], { ...cli, registry })).toBe(0);
      expect(io.out).toMatch(/^# vigil probes\n\n## `[a-z-]+` — /);
      expect(io.out).toContain('- **permissions:** `');
      expect(io.out).toContain('- **targets:** public-web');
    }
    const { io, cli } = cliIo();
    expect(await main(['probes', '--markdown', '--format', 'text'], { ...cli, registry })).toBe(64);
    expect(io.err).toContain('--markdown means --format md');
  });

  it('on a terminal (a real pty, via script(1)) the built binary prints no Markdown', () => {
    if (!existsSync(path.join(root, 'dist/src/cli/probes-list.js'))) {
      const built = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], { encoding: 'utf8' });
      if (built.status !== 0) throw new Error(`build failed: ${built.stdout}${built.stderr}`);
    }
    const run = (args: string) => spawnSync('script', ['-qec', `${process.execPath} ${path.join(root, 'bin/vigil.js')} probes${args} && test -t 1 && echo STDOUT-IS-A-TTY`, '/dev/null'], { encoding: 'utf8', timeout: 30_000 });
    const plain = run('');
    expect(plain.status, plain.stderr).toBe(0);
    expect(plain.stdout).toContain('STDOUT-IS-A-TTY');
    expect(plain.stdout).toContain('tls-certificate-posture — ');
    expect(plain.stdout).toMatch(/permissions: \S/);
    expect(plain.stdout).not.toMatch(/`|\*\*|\]\(/);
    const md = run(' --markdown');
    expect(md.stdout).toContain('- **permissions:** `');
  });
});

function source(over: Partial<MetricsSource>): MetricsSource {
  return {
    posture: async () => ({ controls: [], latest: new Map() }),
    runCounts: async () => new Map(),
    lastSuccess: async () => new Map(),
    queueCounts: async () => [],
    now: () => new Date('2026-11-30T12:00:00Z'),
    latestSnapshot: async () => undefined,
    snapshotPublishedAt: async () => undefined,
    emailCounts: async () => new Map(),
    endOfDay: (day) => new Date(`${day}T23:59:59Z`),
    minGreenDays: 30,
    ...over,
  };
}

describe('metrics', () => {
  it('the snapshot timestamp has no sample before the first snapshot (prom-client would say 0), and its value after', async () => {
    const none = await new VigilMetrics(source({}), []).registry.metrics();
    expect(none).toContain(`# TYPE ${METRIC.snapshotLastPublishedTimestampSeconds} gauge`);
    expect(none).not.toMatch(new RegExp(`^${METRIC.snapshotLastPublishedTimestampSeconds} `, 'm'));
    const some = await new VigilMetrics(source({ snapshotPublishedAt: async () => 1796775000 }), []).registry.metrics();
    expect(metricValue(some, METRIC.snapshotLastPublishedTimestampSeconds)).toBe(1796775000);
    expect(metricValue(some, METRIC.dayCloseFailuresTotal)).toBe(0);
  });

  it('vigil_probe_last_judged_timestamp_seconds, and the old name as a deprecated alias with the same value', async () => {
    const text = await new VigilMetrics(source({ lastSuccess: async () => new Map([['tls-certificate-posture|public', 1796252400]]) }), []).registry.metrics();
    expect(metricValue(text, 'vigil_probe_last_judged_timestamp_seconds{probe="tls-certificate-posture",target="public"}')).toBe(1796252400);
    expect(metricValue(text, 'vigil_probe_last_success_timestamp_seconds{probe="tls-certificate-posture",target="public"}')).toBe(1796252400);
    expect(text).toContain('# HELP vigil_probe_last_success_timestamp_seconds DEPRECATED, removed in the next release: use vigil_probe_last_judged_timestamp_seconds (same value).');
    // The alerts and the dashboard read the new name only.
    for (const file of ['deploy/prometheus/vigil-rules.yml', 'deploy/grafana/vigil.json', 'deploy/kubernetes/base/prometheusrule.yaml']) {
      const t = readFileSync(path.join(root, file), 'utf8');
      expect(t, file).toContain('vigil_probe_last_judged_timestamp_seconds');
      expect(t, file).not.toContain('vigil_probe_last_success_timestamp_seconds');
    }
  });
});

describe('the API for people', () => {
  it('shows times in the configured timezone beside the ISO fields; a generated admin token with a shared Redis is warned about', async () => {
    const loaded = testConfig(
      `timezone: Europe/Berlin
redis: { url: "${redis.url}", prefix: ${uniquePrefix('api-time')} }
http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0 } }
probes:
  fake-check: { schedule: "0 3 * * *" }
`,
      [fakeProbe],
      catalog,
    );
    mkdirSync(loaded.config.dataDir, { recursive: true });
    const logs = new LogCapture();
    const clock = new Date('2026-11-20T10:00:00Z');
    const daemon = await startDaemon({ loaded, log: createLogger('info', logs), now: () => clock });
    try {
      await waitFor(async () => daemon.recorder.recorded >= 1, 10_000, 'the catch-up run');
      expect(logs.text).toContain('admin token generated per dataDir while using an external (shared) Redis');
      const token = readFileSync(path.join(loaded.config.dataDir, 'admin-token'), 'utf8').trim();
      const body = (await get(`${daemon.adminUrl}/api/controls`, token)).json() as {
        generatedAt: string;
        generatedAtLocal: string;
        timezone: string;
        controls: Array<{ lastMeasuredAt: string; lastMeasuredAtLocal: string; targets: Array<{ lastMeasuredAt: string; lastMeasuredAtLocal: string }> }>;
      };
      expect(body).toMatchObject({ generatedAt: '2026-11-20T10:00:00.000Z', generatedAtLocal: '2026-11-20 11:00 CET', timezone: 'Europe/Berlin' });
      const control = body.controls[0];
      expect(control?.lastMeasuredAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      const local = new Date(control?.lastMeasuredAt ?? '').toLocaleString('sv-SE', { timeZone: 'Europe/Berlin' }).slice(0, 16);
      expect(control?.lastMeasuredAtLocal).toBe(`${local} CET`);
      expect(control?.targets[0]?.lastMeasuredAtLocal).toBe(`${local} CET`);
      const one = (await get(`${daemon.adminUrl}/api/controls/fake-control`, token)).json() as { lastMeasuredAtLocal: string };
      expect(one.lastMeasuredAtLocal).toBe(`${local} CET`);
    } finally {
      await daemon.stop();
    }
  });
});
