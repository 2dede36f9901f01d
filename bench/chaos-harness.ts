/**
 * The chaos run, shared by the short test (test/chaos/chaos.test.ts, in `npm test`) and the long
 * bench (`npm run bench:chaos`, bench/chaos.ts): N replicas — real `node bin/vigil.js start`
 * processes — on one real redis-server with AOF, a real TLS endpoint for the
 * tls-certificate-posture probe, a real SMTP server, and a shifted wall clock
 * (test/chaos/fake-clock.mjs) that crosses several midnights. Replicas are SIGKILLed at random,
 * right after a day close, and while the SMTP server accepts a day's email; Redis is SIGKILLed and
 * restarted on its AOF before a close. The report says what happened; the callers assert on it.
 *
 * Everything runs on loopback; every loop and wait is bounded.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { forceKill, spawnTiedToParent } from '../src/store/embedded-redis.js';
import { StateStore } from '../src/store/state.js';
import { startSmtpPeer, type SmtpPeer } from '../test/helpers/smtp-peer.js';
import { createTestPki } from '../test/helpers/tls-certs.js';

const execFileP = promisify(execFile);

/** The repository root (this file runs from bench/ under vitest and from dist/bench/ when built). */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (readdirSync(dir).includes('package.json')) return dir;
    dir = path.dirname(dir);
  }
  throw new Error('repository root not found');
}

/** What to run. */
export interface ChaosOptions {
  /** Replicas on the one Redis. Default 3. */
  replicas?: number;
  /** Midnights crossed (days closed). Default 3. */
  midnights?: number;
  /** Each replica's clock offset (ms), e.g. [-2000, 0, 2000]. Default all 0. */
  skewsMs?: number[];
  /** Real seconds spent before and after each midnight. Default 4 and 4. */
  beforeSeconds?: number;
  afterSeconds?: number;
  /** Also SIGKILL a random replica every this many real ms (the long run). Default: once per 3 days. */
  randomKillEveryMs?: number;
  /** Seed of the kill choices. */
  seed?: number;
  /** Progress lines. */
  progress?: (line: string) => void;
}

/** What happened. */
export interface ChaosReport {
  days: string[];
  /** "day closed" log lines per day, over every replica, in the order they arrived. */
  closeOrder: string[];
  closes: Record<string, number>;
  archiveDays: string[];
  verifyArchiveExit: number;
  /** Email copies per day, and the distinct Message-IDs among them. */
  emails: Record<string, { copies: number; messageIds: number }>;
  emailCounts: Record<string, number>;
  /** Probe runs finished ("run finished" lines) per slot job. */
  runs: { slots: number; runs: number; maxPerSlot: number };
  /** Results counted in the run counters vs distinct runIds recorded: equal when nothing is recorded twice. */
  counted: number;
  distinctRecorded: number;
  /** Completed probe jobs whose result was never recorded. */
  lost: number;
  /** Real ms from the end of the chaos to the first result measured after it. */
  measuredAfterChaosMs: number | undefined;
  kills: { random: number; afterClose: number; midSmtp: number; redis: number };
  /** Replica exits the harness did not cause, e.g. `69` (Redis unreachable at start); each was restarted. */
  selfExits: string[];
  /** Replica processes started in all. */
  starts: number;
  durationMs: number;
}

interface Replica {
  index: number;
  child: ChildProcess | undefined;
  lines: Array<{ at: number; entry: Record<string, unknown> }>;
  starts: number;
  /** Exits the harness did not cause (code or signal). */
  exits: string[];
}

/**
 * Whether no day was logged closed twice and the logged closes come in date order. (A close is
 * logged right after it is published, so a replica SIGKILLed in between leaves a day published
 * — archived, chained — without its line: the archive, not the log, proves every day closed.)
 */
export function closedOnceInOrder(r: Pick<ChaosReport, 'closeOrder' | 'days'>): boolean {
  return r.closeOrder.every((d, i) => r.days.includes(d) && (i === 0 || r.closeOrder[i - 1]! < d));
}

/** A tiny deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`chaos: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Runs the chaos scenario and returns what it observed. Cleans up everything it started. */
export async function runChaos(options: ChaosOptions = {}): Promise<ChaosReport> {
  const root = repoRoot();
  const n = options.replicas ?? 3;
  const midnights = options.midnights ?? 3;
  const skews = options.skewsMs ?? [];
  const before = (options.beforeSeconds ?? 4) * 1000;
  const after = (options.afterSeconds ?? 4) * 1000;
  const random = prng(options.seed ?? 12);
  const progress = (line: string) => {
    options.progress?.(line);
    if (process.env.VIGIL_CHAOS_KEEP) process.stderr.write(`chaos ${new Date().toISOString()} ${line}\n`);
  };
  const started = Date.now();
  const dir = mkdtempSync(path.join(tmpdir(), 'vigil-chaos-'));
  const kills = { random: 0, afterClose: 0, midSmtp: 0, redis: 0 };
  const cleanups: Array<() => Promise<void> | void> = [];

  // The shared wall clock: real time + offset (each replica adds its skew).
  const clockFile = path.join(dir, 'clock.json');
  let offset = 0;
  const setClock = (fakeMs: number) => {
    offset = fakeMs - Date.now();
    writeFileSync(`${clockFile}.tmp`, JSON.stringify({ offsetMs: offset }));
    renameSync(`${clockFile}.tmp`, clockFile);
  };
  const fakeNow = () => Date.now() + offset;

  // Redis with AOF (fsync always: a SIGKILL loses nothing acknowledged), killable with SIGKILL.
  const redisPort = await freePort();
  let redisChild: ChildProcess | undefined;
  const startRedis = async () => {
    redisChild = spawnTiedToParent(
      'redis-server',
      ['--bind', '127.0.0.1', '--port', String(redisPort), '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction', '--daemonize', 'no', '--logfile', ''],
      { stdout: 'ignore' },
    );
    const probe = new Redis({ port: redisPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await until('redis-server to answer', 15_000, async () => {
        try {
          if (probe.status !== 'ready') await probe.connect();
          return (await probe.ping()) === 'PONG';
        } catch {
          probe.disconnect();
          return false;
        }
      });
    } finally {
      probe.disconnect();
    }
  };
  const killRedis = () => {
    if (redisChild) forceKill(redisChild);
    redisChild = undefined;
  };
  await startRedis();
  cleanups.push(killRedis);
  const redis = new Redis({ port: redisPort, host: '127.0.0.1', maxRetriesPerRequest: 20 });
  redis.on('error', () => undefined);
  cleanups.push(() => redis.disconnect());

  // A TLS endpoint with a private CA for the probe to measure.
  const pki = createTestPki();
  const caFile = path.join(dir, 'ca.pem');
  writeFileSync(caFile, pki.caPem);
  const tlsServer: TlsServer = createTlsServer({ key: pki.keyPem, cert: pki.chainPem }, (socket) => socket.end());
  tlsServer.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => tlsServer.close(() => r())));
  const tlsPort = (tlsServer.address() as AddressInfo).port;

  const replicas: Replica[] = Array.from({ length: n }, (_, index) => ({ index, child: undefined, lines: [], starts: 0, exits: [] }));
  let stopping = false;
  const restartSoon = (r: Replica, ms = 500) => {
    setTimeout(() => void startReplica(r), ms);
  };
  const kill = (r: Replica) => {
    r.child?.kill('SIGKILL');
    r.child = undefined;
  };

  // The real SMTP server; the first accepted email kills every replica before the sender hears "250".
  let killOnAccept = true;
  const smtp: SmtpPeer = await startSmtpPeer({
    onAccept: () => {
      if (!killOnAccept) return;
      killOnAccept = false;
      kills.midSmtp++;
      progress('SIGKILL every replica while the SMTP server accepts an email');
      for (const r of replicas) {
        kill(r);
        restartSoon(r, 700);
      }
    },
  });
  cleanups.push(() => smtp.close());

  const configFile = path.join(dir, 'vigil.yaml');
  writeFileSync(
    configFile,
    `timezone: UTC
dataDir: ${dir}/var
redis: { url: "redis://127.0.0.1:${redisPort}", prefix: chaos }
http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0, token: { env: VIGIL_ADMIN_TOKEN } } }
worker: { concurrency: 2, attempts: 3, backoffSeconds: 0.2, timeoutSeconds: 5 }
shutdown: { graceSeconds: 1 }
dayClose: { at: "00:00" }
archive: { dir: ${dir}/archive }
email: { smtp: { env: VIGIL_SMTP_URL }, from: "vigil <vigil@chaos.test>", to: [security@chaos.test], retryHours: 6, allowPlaintext: true }
tls:
  - name: chaos
    endpoints: ["localhost:${tlsPort}"]
    caFile: ${caFile}
probes:
  # Every 2 s in the minutes around midnight only: a jump of the clock to the next evening skips few slots.
  tls-certificate-posture: { schedule: "*/2 0,59 0,23 * * *" }
`,
  );

  let closedHook: ((r: Replica, day: string) => void) | undefined;
  const startReplica = async (r: Replica) => {
    if (r.child) return;
    const child = spawn(process.execPath, ['--import', path.join(root, 'test/chaos/fake-clock.mjs'), path.join(root, 'bin/vigil.js'), 'start', '-c', configFile], {
      cwd: dir,
      env: {
        ...process.env,
        VIGIL_ADMIN_TOKEN: 'chaos-admin-token-0123456789abcdef-xyz',
        VIGIL_SMTP_URL: smtp.url,
        VIGIL_CHAOS_CLOCK_FILE: clockFile,
        VIGIL_CHAOS_SKEW_MS: String(skews[r.index] ?? 0),
        VIGIL_CHAOS_INTERVAL_DIVISOR: '60',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    r.child = child;
    r.starts++;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      r.lines.push({ at: Date.now(), entry });
      if (entry.msg === 'day closed' && typeof entry.day === 'string') closedHook?.(r, entry.day);
    });
    child.stderr!.resume();
    child.once('exit', (code, signal) => {
      if (r.child !== child) return;
      // It exited by itself (e.g. Redis was down while it started: exit 69): a supervisor restarts it.
      r.child = undefined;
      r.exits.push(`${code ?? signal}`);
      if (!stopping) restartSoon(r, 1_000);
    });
  };
  cleanups.push(async () => {
    stopping = true;
    for (const r of replicas) {
      r.child?.kill('SIGKILL');
      r.child = undefined;
    }
  });

  const startedLines = (r: Replica) => r.lines.filter((l) => l.entry.msg === 'vigil started').length;

  try {
    // Day 0 starts in the evening; the replicas come up, then the clock moves to just before midnight.
    const day0 = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1);
    // Started inside the minute before midnight (the schedule fires every 2 s there): node-cron
    // arms its timer from the clock at start, and a jump of the clock does not cut a long wait short.
    setClock(day0 + 86_400_000 - 40_000);
    await Promise.all(replicas.map((r) => startReplica(r)));
    await until('every replica to start', 30_000, () => replicas.every((r) => startedLines(r) >= 1));
    progress(`${n} replicas started`);
    const days: string[] = [];
    let lastRandomKill = Date.now();

    for (let k = 0; k < midnights; k++) {
      const midnight = day0 + (k + 1) * 86_400_000;
      const day = isoDay(midnight - 1);
      days.push(day);
      setClock(midnight - before);
      let killAfterClose = k % 3 === 1 || k % 3 === 2;
      closedHook = (r, closedDay) => {
        if (!killAfterClose || closedDay !== day) return;
        killAfterClose = false;
        kills.afterClose++;
        progress(`SIGKILL replica ${r.index} right after it closed ${closedDay}`);
        kill(r);
        restartSoon(r);
      };
      // Before midnight: a random replica dies (every third day), or Redis dies and comes back on its AOF.
      // (early enough that Redis is back before the fastest clock, +2 s, reaches midnight)
      await sleep(Math.max(0, before - 3_500));
      if (k % 3 === 0) {
        const r = replicas[Math.floor(random() * n)]!;
        kills.random++;
        progress(`SIGKILL replica ${r.index} (random) before ${day} closes`);
        kill(r);
        restartSoon(r);
      } else if (k % 3 === 1) {
        kills.redis++;
        progress(`SIGKILL redis-server before ${day} closes; restart on its AOF`);
        killRedis();
        await sleep(700);
        await startRedis();
      }
      await until(`the clock to pass midnight of ${day}`, 30_000, () => fakeNow() >= midnight + after);
      await until(`${day} to be closed`, 30_000, async () => (await redis.get('chaos:snapshot-latest').catch(() => null)) === day);
      if (options.randomKillEveryMs !== undefined && Date.now() - lastRandomKill >= options.randomKillEveryMs) {
        lastRandomKill = Date.now();
        const r = replicas[Math.floor(random() * n)]!;
        kills.random++;
        kill(r);
        restartSoon(r);
      }
      progress(`${day} closed (fake ${new Date(fakeNow()).toISOString()})`);
    }
    closedHook = undefined;

    // Chaos stops: every replica runs; the control must be measured again within a minute.
    await until('every replica to run again', 30_000, () => replicas.every((r) => r.child !== undefined));
    const chaosEnd = fakeNow();
    const chaosEndReal = Date.now();
    let measuredAfterChaosMs: number | undefined;
    try {
      await until('a measurement after the chaos', 60_000, async () => {
        const json = await redis.hget('chaos:latest', 'tls-certificate-posture|chaos').catch(() => null);
        return json !== null && Date.parse((JSON.parse(json) as { finishedAt: string }).finishedAt) > chaosEnd;
      });
      measuredAfterChaosMs = Date.now() - chaosEndReal;
    } catch {
      measuredAfterChaosMs = undefined;
    }
    // Every closed day's email sent (the one killed mid-SMTP waits for its lock to lapse: ~20 s).
    await until('every day’s email', 60_000, async () => (await redis.exists(...days.map((d) => `chaos:email-sent:${d}`)).catch(() => 0)) === days.length).catch(() => undefined);

    // Stop the replicas gracefully (their recorders drain), then look at what they left.
    stopping = true;
    await Promise.all(
      replicas.map(async (r) => {
        const child = r.child;
        if (!child) return;
        const exited = new Promise<void>((res) => child.once('exit', () => res()));
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(10_000)]);
        child.kill('SIGKILL');
        r.child = undefined;
      }),
    );

    const all = replicas.flatMap((r) => r.lines).sort((a, b) => a.at - b.at);
    const closeOrder = all.filter((l) => l.entry.msg === 'day closed').map((l) => String(l.entry.day));
    const closes: Record<string, number> = {};
    for (const d of closeOrder) closes[d] = (closes[d] ?? 0) + 1;
    const perSlot = new Map<string, number>();
    for (const l of all) if (l.entry.msg === 'run finished' && typeof l.entry.jobId === 'string') perSlot.set(l.entry.jobId, (perSlot.get(l.entry.jobId) ?? 0) + 1);
    const runsTotal = [...perSlot.values()].reduce((a, b) => a + b, 0);

    const counted = Object.values(await redis.hgetall('chaos:runs')).reduce((a, b) => a + Number(b), 0);
    // The replay guard holds each recorded slot once: its size is the number of distinct results recorded.
    const state = new StateStore(redis, 'chaos');
    const distinctRecorded = await state.recordedRuns();
    let lost = 0;
    for (const runId of await redis.zrange('chaos:probes:completed', 0, -1)) {
      const [probe = '', target = '', slotMs = ''] = runId.split('|');
      if (!(await state.isRecorded(probe, target, new Date(Number(slotMs))))) lost++;
    }

    const emails: Record<string, { copies: number; messageIds: number }> = {};
    for (const d of days) {
      const copies = smtp.messages.filter((m) => m.parsed.headers.get('x-vigil-snapshot-date') === d);
      emails[d] = { copies: copies.length, messageIds: new Set(copies.map((m) => m.parsed.messageId)).size };
    }
    const emailCounts = Object.fromEntries(Object.entries(await redis.hgetall('chaos:email-counts')).map(([k, v]) => [k, Number(v)]));
    const archiveDays = readdirSync(path.join(dir, 'archive'))
      .filter((f) => /^\d{4}-\d{2}-\d{2}\.json$/.test(f))
      .map((f) => f.slice(0, 10))
      .sort();
    let verifyArchiveExit = 0;
    try {
      await execFileP(process.execPath, [path.join(root, 'bin/vigil.js'), 'verify-archive', path.join(dir, 'archive')], { cwd: dir });
    } catch (err) {
      verifyArchiveExit = (err as { code?: number }).code ?? 1;
    }
    return {
      days,
      closeOrder,
      closes,
      archiveDays,
      verifyArchiveExit,
      emails,
      emailCounts,
      runs: { slots: perSlot.size, runs: runsTotal, maxPerSlot: Math.max(0, ...perSlot.values()) },
      counted,
      distinctRecorded,
      lost,
      measuredAfterChaosMs,
      kills,
      selfExits: replicas.flatMap((r) => r.exits),
      starts: replicas.reduce((a, r) => a + r.starts, 0),
      durationMs: Date.now() - started,
    };
  } finally {
    for (const c of cleanups.reverse()) await c();
    // VIGIL_CHAOS_KEEP=1 keeps the run's directory, with each replica's log, for a post-mortem.
    if (process.env.VIGIL_CHAOS_KEEP) {
      for (const r of replicas) writeFileSync(path.join(dir, `replica-${r.index}.log`), r.lines.map((l) => `${l.at} ${JSON.stringify(l.entry)}`).join('\n'));
      progress(`kept ${dir}`);
    } else rmSync(dir, { recursive: true, force: true });
  }
}
