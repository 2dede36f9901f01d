import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ConfigError, MIN_ADMIN_TOKEN_LENGTH, type LoadedConfig } from './config/load.js';
import { bearerMatches, HTML_PAGE_HEADERS, listen, sendJson, type HttpLimits, type Listener, type RequestTarget } from './http/server.js';
import { VigilMetrics } from './http/metrics.js';
import type { ProbeResult } from './probe/contract.js';
import { configuredUnits, evidenceFor, splitByConfiguration, type ScheduledUnit } from './probe/units.js';
import { controlStatus, type ControlState } from './posture/status.js';
import { externalRedisSettings, keyPrefix, openRedis, pingAtStart, PROBES_QUEUE, RESULTS_QUEUE, type ProbeJobData, type RedisLocation, type RedisSettings } from './queue/connection.js';
import { ProbeWorker } from './queue/probe-worker.js';
import { Recorder } from './queue/recorder.js';
import { RedisRunCoordinator } from './queue/run-coordinator.js';
import { Scheduler } from './queue/scheduler.js';
import { registerSecret, scrub, secretFileModeWarning } from './secrets.js';
import { startEmbeddedRedis, type EmbeddedRedis } from './store/embedded-redis.js';
import { makeDirectorySync } from './store/make-directory.js';
import { checkRedisServer } from './store/redis-checks.js';
import { StateStore } from './store/state.js';
import { DayCloseError, DayCloser, SnapshotIntegrityError, type CloseOutcome } from './store/day-close.js';
import { directoryProblems } from './store/readiness.js';
import { EmailQueue } from './notify/email-queue.js';
import { createMailer } from './notify/email.js';
import { trustRoutes } from './http/trust.js';
import { loadTrustBranding } from './http/trust-branding.js';
import { renderHtml, renderMarkdown } from './posture/render.js';
import { formatLocalTime } from './posture/local-time.js';
import { addDays, dayOf, lastClosableDay, zonedInstant } from './posture/days.js';
import type { Snapshot } from './posture/snapshot-types.js';

export interface DaemonOptions {
  loaded: LoadedConfig;
  log: Logger;
  /** Called when the daemon cannot go on (its embedded redis-server died); the caller should stop and exit non-zero. */
  onFatal?: (err: Error) => void;
  /** Injected clock for status computations. */
  now?: () => Date;
  /** Internal, for tests: shorter HTTP timeouts on both listeners. Default: the limits in src/http/server.ts. */
  httpLimits?: Partial<HttpLimits>;
}

/** A running daemon. */
export interface Daemon {
  adminUrl: string;
  publicUrl: string;
  state: StateStore;
  worker: ProbeWorker;
  recorder: Recorder;
  scheduler: Scheduler;
  closer: DayCloser;
  email: EmailQueue | undefined;
  /** One pass of the periodic work: catch-up runs, close due days, make sure the latest day's email is queued. */
  tick(): Promise<void>;
  /** Control states now, from the stored results. */
  posture(): Promise<{ controls: ControlState[]; latest: ReadonlyMap<string, ProbeResult> }>;
  /** Stop firing, let runs finish within the grace period, close everything. Idempotent. */
  stop(): Promise<void>;
}

/** Reads the admin token, or generates one into <dataDir>/admin-token (0600) when its source is unset. */
function adminToken(loaded: LoadedConfig, log: Logger, sharedRedis: boolean): string {
  if (loaded.secrets.adminToken) return loaded.secrets.adminToken;
  const file = path.resolve(loaded.config.dataDir, 'admin-token');
  let token: string | undefined;
  try {
    token = readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    token = undefined;
  }
  if (!token) {
    makeDirectorySync(path.dirname(file)); // not recursive mkdirSync: it spins for ever under /proc
    token = randomBytes(32).toString('base64url');
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  registerSecret(token);
  // The file is vigil's own: a short token in it was put there by hand, and is refused like a configured one.
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) throw new ConfigError([`${file}: the admin token is shorter than ${MIN_ADMIN_TOKEN_LENGTH} characters: delete the file to have vigil generate one, or set http.admin.token`]);
  const modeWarning = secretFileModeWarning(file);
  if (modeWarning) log.warn({ warning: modeWarning }, 'configuration warning');
  log.warn({ file }, 'admin token not configured: using the generated token in this file');
  // Replicas behind one load balancer share Redis, not dataDir: each would answer with its own token (200/401 in turn).
  if (sharedRedis) {
    log.warn(
      { file },
      'admin token generated per dataDir while using an external (shared) Redis: replicas would each have their own token; set the same http.admin.token (e.g. { env: VIGIL_ADMIN_TOKEN }) on every replica',
    );
  }
  return token;
}

/** Starts the daemon: Redis, queues, workers, scheduler, HTTP listeners. */
export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const { loaded, log } = opts;
  for (const warning of loaded.warnings) log.warn({ warning }, 'configuration warning');
  const now = opts.now ?? (() => new Date());
  const { config } = loaded;
  // Before anything starts: an unusable trust.logoFile stops the start with its key path.
  const branding = loadTrustBranding(config.trust, loaded.dir);
  // A hash tag in a Redis Cluster (see keyPrefix): every key of vigil and BullMQ in one slot.
  const prefix = keyPrefix(config.redis);
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (err) {
        log.warn({ err }, 'error while closing');
      }
    }
    closers.length = 0;
  };

  let embedded: EmbeddedRedis | undefined;
  try {
    let settings: RedisSettings | undefined = externalRedisSettings(config.redis, loaded.secrets.redisPassword, loaded.dir);
    if (!settings) {
      embedded = await startEmbeddedRedis({
        dataDir: path.resolve(config.dataDir),
        log,
        onUnexpectedExit: ({ code, signal }) => opts.onFatal?.(new Error(`the embedded redis-server exited (code ${code}, signal ${signal}): see ${path.resolve(config.dataDir, 'redis', 'redis.log')}`)),
      });
      settings = { location: embedded.connection, password: loaded.secrets.redisPassword };
    }
    const location: RedisLocation = settings.location;
    const token = adminToken(loaded, log, embedded === undefined);

    let lastRedisError = 0;
    const onRedisError = (err: Error) => {
      // Reconnect attempts repeat the same error many times a second: log at most every 10 s.
      if (Date.now() - lastRedisError < 10_000) return;
      lastRedisError = Date.now();
      log.error({ err: { message: err.message, code: (err as NodeJS.ErrnoException).code } }, 'redis connection error');
    };
    const client: Redis = openRedis(settings, 'client', 'vigil-client', onRedisError);
    closers.push(async () => void client.disconnect());
    const workerConn: Redis = openRedis(settings, 'worker', 'vigil-worker', onRedisError);
    closers.push(async () => void workerConn.disconnect());
    // Bounded: a silent server (e.g. plain Redis behind a rediss:// URL) must not hold the start.
    await pingAtStart(client, location);
    await checkRedisServer(client, log);

    const state = new StateStore(client, prefix, config.timezone);
    const units: ScheduledUnit[] = configuredUnits(loaded);
    const split = splitByConfiguration(loaded, units);
    const probesQueue = new Queue<ProbeJobData>(PROBES_QUEUE, { connection: workerConn, prefix });
    const resultsQueue = new Queue<ProbeResult>(RESULTS_QUEUE, { connection: workerConn, prefix });
    closers.push(() => probesQueue.close());
    closers.push(() => resultsQueue.close());
    // Without a listener BullMQ prints every connection error (e.g. during a Sentinel failover) to stderr.
    probesQueue.on('error', onRedisError);
    resultsQueue.on('error', onRedisError);

    const posture = async () => {
      const { results, corrupt } = await state.latestResults();
      if (corrupt.length > 0) log.error({ fields: corrupt }, 'stored results fail their schema: treated as missing');
      const evidence = evidenceFor(loaded, units, results);
      const at = now();
      // Exceptions hold through their `expires` day in the configured time zone.
      const exceptions = { list: config.exceptions, today: dayOf(at, config.timezone) };
      return { controls: split.measured.map((c) => controlStatus(c, evidence, at, exceptions)), latest: results };
    };

    const metrics = new VigilMetrics(
      {
        posture,
        runCounts: () => state.runCounts(),
        lastSuccess: () => state.lastSuccess(),
        queueCounts: async () => [
          { queue: PROBES_QUEUE, counts: await probesQueue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized') },
          { queue: RESULTS_QUEUE, counts: await resultsQueue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized') },
        ],
        now,
        latestSnapshot: () => latestSnapshot(),
        snapshotPublishedAt: () => closer.publishedAt(),
        emailCounts: async () => (email ? await email.counts() : new Map()),
        endOfDay: (day: string) => zonedInstant(addDays(day, 1), '00:00', config.timezone),
        minGreenDays: config.trust.minGreenDays,
        readiness: () => readiness(),
      },
      [...loaded.probes.values()].map((p) => p.probe),
    );

    const recorder = new Recorder({ connection: workerConn, prefix, state, log: log.child({ component: 'recorder' }) });
    closers.push(async () => {
      // Results of runs that finished during shutdown are recorded before the recorder stops (bounded).
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline) {
        const c = await resultsQueue.getJobCounts('waiting', 'active', 'delayed');
        if ((c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await recorder.close();
    });
    const worker = new ProbeWorker({
      connection: workerConn,
      prefix,
      units,
      results: resultsQueue,
      concurrency: config.worker.concurrency,
      timeoutMs: config.worker.timeoutSeconds * 1000,
      log: log.child({ component: 'worker' }),
      onRun: (r, s) => metrics.observeRun(r, s),
      previousResult: (probe, target) => state.latestResult(probe, target),
    });
    closers.push(() => worker.close(config.shutdown.graceSeconds * 1000));

    const scheduler = new Scheduler({
      units,
      queue: probesQueue,
      coordinator: new RedisRunCoordinator(client, prefix),
      state,
      timezone: config.timezone,
      attempts: config.worker.attempts,
      backoffMs: config.worker.backoffSeconds * 1000,
      log: log.child({ component: 'scheduler' }),
    });
    closers.push(() => scheduler.stop());

    let email: EmailQueue | undefined;
    if (config.email && loaded.secrets.smtpUrl) {
      email = new EmailQueue({
        connection: workerConn,
        client,
        prefix,
        mailer: createMailer({ smtpUrl: loaded.secrets.smtpUrl, from: config.email.from, to: config.email.to, organization: config.trust.organization, allowPlaintext: config.email.allowPlaintext }),
        retryHours: config.email.retryHours,
        snapshotText: (date) => closer.getText(date),
        log: log.child({ component: 'email' }),
        now: () => now().getTime(),
      });
      const e = email;
      closers.push(() => e.close());
    }
    const closer = new DayCloser({
      redis: client,
      prefix,
      loaded,
      units,
      state,
      log: log.child({ component: 'day-close' }),
      onPublished: async (snapshot) => {
        await email?.enqueue(snapshot.date);
      },
      onIntegrityFailure: ({ source }) => metrics.countIntegrityFailure(source),
    });
    await closer.markFirstDay(now());
    closer.warnIfUnsigned();
    // After a rebuild (or a Redis restored by an older vigil) the snapshot-age metric continues from
    // the newest restored day; with no day published it stays absent (a fresh install is not overdue).
    await closer.restorePublishedAt().catch((err: unknown) => log.error({ err }, 'restoring the snapshot publication time failed'));
    const dataDirExisted = existsSync(path.resolve(config.dataDir));

    // The last attempts to close a due day: /readyz fails while the latest one failed.
    const dayClose: { failures: number; reason?: string } = { failures: 0 };
    /** Closes the due days; a failure is logged (naming the day and archive.dir), counted and kept for /readyz, not thrown. */
    const closeDue = async (): Promise<CloseOutcome[]> => {
      try {
        const closed = await closer.closeDueDays(now());
        // 'busy': another replica holds the lock, which says nothing about this one's last failure.
        // Resetting on it made replicas that fail in turn flap between ready and not ready.
        if (!closed.some((c) => c.result === 'busy')) {
          dayClose.failures = 0;
          delete dayClose.reason;
        }
        return closed;
      } catch (err) {
        dayClose.failures++;
        metrics.countDayCloseFailure();
        const day = err instanceof DayCloseError ? err.day : err instanceof SnapshotIntegrityError ? err.date : undefined;
        // Shown by /readyz (admin listener, no token): scrubbed like everything else that leaves.
        dayClose.reason = scrub(err instanceof Error ? err.message : String(err)).slice(0, 500);
        log.error(
          { day, archiveDir: loaded.archiveDir, code: err instanceof DayCloseError ? err.code : undefined, reason: dayClose.reason, failures: dayClose.failures },
          'day close failed: nothing published, retrying every minute',
        );
        return [];
      }
    };

    // The latest snapshot, parsed once per published day.
    let latestCache: { day: string; snapshot: Snapshot } | undefined;
    const latestSnapshot = async (): Promise<Snapshot | undefined> => {
      const day = await client.get(`${prefix}:snapshot-latest`);
      if (!day) return undefined;
      if (latestCache?.day !== day) {
        // One that fails its integrity check is absent for the feed and the metrics (the closer logged and counted it).
        const snapshot = await closer.get(day).catch((err: unknown) => {
          if (err instanceof SnapshotIntegrityError) return undefined;
          throw err;
        });
        if (!snapshot) return undefined;
        latestCache = { day, snapshot };
      }
      return latestCache.snapshot;
    };

    const tick = async () => {
      // Live probe workers on the queue = live replicas, which then share archive.dir.
      if (!closer.signed) closer.warnIfSharedUnsigned(await probesQueue.getWorkersCount().catch(() => 0));
      await scheduler.catchUp(now());
      // A failing day close is logged, counted and shown by /readyz; the rest of the periodic work goes on.
      const closed = await closeDue();
      if (closed.some((c) => c.result === 'busy')) log.debug('another replica is closing a day');
      // Jobs BullMQ failed for stalling whose replica died before re-queueing them (see src/queue/stalls.ts).
      await worker.requeueStalled(probesQueue);
      await recorder.requeueStalled(resultsQueue);
      const latestDay = await client.get(`${prefix}:snapshot-latest`);
      // Covers a crash between publishing a day and queueing its email, a job failed behind the
      // worker's back, and days not sent within email.retryHours (given up and counted once).
      if (latestDay && email && config.email) {
        for (let back = Math.ceil(config.email.retryHours / 24) + 2; back >= 0; back--) {
          const day = addDays(latestDay, -back);
          if (await client.exists(`${prefix}:snapshot:${day}`)) await email.reconcile(day);
        }
      }
    };

    const health = async (_req: unknown, res: import('node:http').ServerResponse) => sendJson(res, 200, { status: 'ok' });
    /** What keeps this replica from being ready: GET /readyz and the vigil_ready gauge. */
    async function readiness(): Promise<string[]> {
      const problems: string[] = [];
      try {
        await client.ping();
      } catch {
        problems.push('redis unreachable');
      }
      if (!worker.worker.isRunning()) problems.push('probe worker not running');
      if (!recorder.worker.isRunning()) problems.push('recorder not running');
      if (dayClose.failures > 0) problems.push(`day close failing (${dayClose.failures} consecutive attempt${dayClose.failures === 1 ? '' : 's'}): ${dayClose.reason}`);
      const published = problems.includes('redis unreachable') ? false : Boolean(await client.get(`${prefix}:snapshot-latest`).catch(() => null));
      problems.push(...(await directoryProblems({ dataDir: path.resolve(config.dataDir), dataDirExisted, archiveDir: loaded.archiveDir, published })));
      return problems;
    }
    const ready = async (_req: unknown, res: import('node:http').ServerResponse) => {
      const problems = await readiness();
      sendJson(res, problems.length ? 503 : 200, { status: problems.length ? 'not ready' : 'ready', problems });
    };
    const requireToken = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): boolean => {
      if (bearerMatches(req.headers.authorization, token)) return true;
      sendJson(res, 401, { error: 'missing or wrong bearer token' }, { 'www-authenticate': 'Bearer realm="vigil-admin"' });
      return false;
    };
    const sendSnapshot = async (target: RequestTarget, res: import('node:http').ServerResponse, date: string) => {
      let text: string | undefined;
      try {
        text = await closer.getText(date);
      } catch (err) {
        if (!(err instanceof SnapshotIntegrityError)) throw err;
        return sendJson(res, 500, { error: err.message });
      }
      if (text === undefined) return sendJson(res, 404, { error: `no snapshot for ${date}` });
      const format = target.searchParams.get('format') ?? 'json';
      if (format === 'json') {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
        return void res.end(text);
      }
      const snapshot = JSON.parse(text) as Snapshot;
      if (format === 'html') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...HTML_PAGE_HEADERS, 'cache-control': 'no-store' });
        return void res.end(renderHtml(snapshot, { organization: config.trust.organization }));
      }
      if (format === 'md') {
        res.writeHead(200, { 'content-type': 'text/markdown; charset=utf-8', 'cache-control': 'no-store' });
        return void res.end(renderMarkdown(snapshot, { organization: config.trust.organization }));
      }
      sendJson(res, 400, { error: 'format is json, html or md' });
    };
    const catalogById = new Map(loaded.catalog.controls.map((c) => [c.id, c]));
    const localTime = (iso: string | undefined | null): string | null => (iso ? formatLocalTime(iso, config.timezone) : null);
    const controlView = (c: ControlState, latest: ReadonlyMap<string, ProbeResult>, withFindings: boolean) => {
      const def = catalogById.get(c.id);
      return {
        id: c.id,
        title: def?.title,
        status: c.status,
        stale: c.stale,
        reasons: c.reasons,
        lastMeasuredAt: c.lastMeasuredAt ?? null,
        /** lastMeasuredAt for people, in the configured timezone ("2026-11-21 14:03 CET"); the ISO field stays the machine one. */
        lastMeasuredAtLocal: localTime(c.lastMeasuredAt),
        frameworks: def?.frameworks,
        probes: def?.probes,
        /** Probes of the control whose source has no target in this config: not part of its measurement. */
        notConfiguredProbes: split.measured.find((m) => m.id === c.id)?.notConfiguredProbes ?? [],
        targets: c.targets.map((t) => ({
          ...t,
          lastMeasuredAt: t.lastMeasuredAt ?? null,
          lastMeasuredAtLocal: localTime(t.lastMeasuredAt),
          ...(withFindings ? { result: latest.get(`${t.probe}|${t.target}`) ?? null } : {}),
        })),
        /** Failing findings held by an exception (risk acceptance): not reddening, never hidden. */
        excepted: c.excepted ?? [],
        expiredExceptions: c.expiredExceptions ?? [],
        staleExceptions: c.staleExceptions ?? [],
      };
    };

    const admin: Listener = await listen(
      'admin',
      config.http.admin.listen,
      {
        '/metrics': async (req, res) => {
          // Metrics name red controls, TLS endpoints and targets: optionally behind the admin token.
          if (config.http.admin.metricsAuth && !requireToken(req, res)) return;
          const body = await metrics.registry.metrics();
          res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
          res.end(body);
        },
        '/healthz': health,
        '/readyz': ready,
        '/api/controls': async (req, res) => {
          if (!requireToken(req, res)) return;
          const p = await posture();
          const notConfigured = split.notConfigured.map((c) => ({ id: c.id, title: c.title, status: 'not_configured', reasons: ['no probe of this control has a configured target'], frameworks: c.frameworks, probes: c.probes }));
          const generatedAt = now().toISOString();
          sendJson(res, 200, { generatedAt, generatedAtLocal: localTime(generatedAt), timezone: config.timezone, controls: [...p.controls.map((c) => controlView(c, p.latest, false)), ...notConfigured] });
        },
        '/api/snapshots/latest': async (req, res, target) => {
          if (!requireToken(req, res)) return;
          // The day, not the cached snapshot: one that fails its check answers 500, not "none yet".
          const day = await client.get(`${prefix}:snapshot-latest`);
          if (!day) return sendJson(res, 404, { error: 'no day has been closed yet' });
          await sendSnapshot(target, res, day);
        },
        '/api/snapshots/*': async (req, res, target) => {
          if (!requireToken(req, res)) return;
          const date = target.rest;
          if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return sendJson(res, 400, { error: 'expected /api/snapshots/YYYY-MM-DD' });
          await sendSnapshot(target, res, date);
        },
        '/api/controls/*': async (req, res, target) => {
          if (!requireToken(req, res)) return;
          const id = target.rest;
          const p = await posture();
          const c = p.controls.find((x) => x.id === id);
          if (!c) return sendJson(res, 404, { error: `no control "${id}"` });
          sendJson(res, 200, controlView(c, p.latest, true));
        },
      },
      log,
      { maxConnections: config.http.admin.maxConnections, allowedHosts: config.http.admin.allowedHosts, limits: opts.httpLimits },
    );
    closers.push(() => admin.close());
    const pub: Listener = await listen(
      'public',
      config.http.public.listen,
      {
        '/healthz': health,
        ...trustRoutes({
          // A stalled day close must not keep old streaks on the public page: past a 2-hour grace
          // after a day should have closed, the feed is empty until closing resumes.
          latest: async () => {
            const s = await latestSnapshot();
            if (s && s.date < lastClosableDay(new Date(now().getTime() - 2 * 3_600_000), config.timezone, config.dayClose.at)) {
              log.warn({ latest: s.date }, 'trust feed withheld: the latest closed day is overdue');
              return undefined;
            }
            return s;
          },
          minGreenDays: config.trust.minGreenDays,
          organization: config.trust.organization,
          maxAgeSeconds: config.trust.maxAgeSeconds,
          branding,
          timezone: config.timezone,
        }),
      },
      log,
      { maxConnections: config.http.public.maxConnections, limits: opts.httpLimits },
    );
    closers.push(() => pub.close());

    const caughtUp = await scheduler.catchUp(now());
    scheduler.start();
    // Every minute: catch up lost slots, close due days (at dayClose.at, and any day missed while down).
    await closeDue();
    const tickTimer = setInterval(() => {
      tick().catch((err: unknown) => log.error({ err }, 'periodic work failed'));
    }, 60_000);
    tickTimer.unref();
    closers.push(async () => clearInterval(tickTimer));
    log.info({ units: units.length, caughtUp, admin: admin.url, public: pub.url }, 'vigil started');

    let stopping: Promise<void> | undefined;
    return {
      adminUrl: admin.url,
      publicUrl: pub.url,
      state,
      worker,
      recorder,
      scheduler,
      closer,
      email,
      tick,
      posture,
      stop: () => {
        stopping ??= (async () => {
          log.info('vigil stopping');
          // Stop firing first, then drain the workers, then the listeners and Redis. If Redis is
          // gone the BullMQ calls would wait for it forever: past the bound, cut the connections.
          await scheduler.stop();
          const closing = closeAll();
          // With Redis already unreachable nothing can be handed back or recorded: do not wait for it.
          const boundMs = client.status === 'ready' ? config.shutdown.graceSeconds * 1000 + 5_000 : 0;
          let timer: NodeJS.Timeout | undefined;
          const done = await Promise.race([closing.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), boundMs)))]);
          clearTimeout(timer);
          if (!done) {
            log.error({ boundMs }, 'Redis unreachable or shutdown too slow: closing connections without waiting');
            client.disconnect(false);
            workerConn.disconnect(false);
            await Promise.race([closing, new Promise((r) => setTimeout(r, 2_000).unref())]);
          }
          await embedded?.stop();
          log.info('vigil stopped');
        })();
        return stopping;
      },
    };
  } catch (err) {
    await closeAll();
    await embedded?.stop();
    throw err;
  }
}
