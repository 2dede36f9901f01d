import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmailQueue, type EmailJobData } from '../src/notify/email-queue.js';
import { createMailer } from '../src/notify/email.js';
import type { ProbeResult } from '../src/probe/contract.js';
import { configuredUnits } from '../src/probe/units.js';
import { PROBES_QUEUE, RESULTS_QUEUE, slotJobId, type ProbeJobData } from '../src/queue/connection.js';
import { ProbeWorker } from '../src/queue/probe-worker.js';
import { Recorder } from '../src/queue/recorder.js';
import { EMAIL_STALLS, RESULTS_STALLS, STALLED_REASON, probeStallPolicy } from '../src/queue/stalls.js';
import { snapshotFileText } from '../src/store/archive.js';
import { StateStore } from '../src/store/state.js';
import { testConfig, waitFor } from './helpers/daemon.js';
import { fakeBehaviour, fakeProbe } from './helpers/fake-probe.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';
import { startSmtpPeer, type SmtpPeer } from './helpers/smtp-peer.js';
import { sampleChain } from './helpers/snapshots.js';

const log = pino({ level: 'silent' });
let redis: TestRedisServer;
let client: Redis;
let smtp: SmtpPeer;
const connections: Redis[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url);
  smtp = await startSmtpPeer();
});
afterAll(async () => {
  for (const c of connections) c.disconnect();
  client.disconnect();
  await smtp.close();
  await redis.stop();
});

function workerConnection(): Redis {
  const c = new Redis(redis.url, { maxRetriesPerRequest: null });
  connections.push(c);
  return c;
}

/**
 * What a replica that keeps dying does to a job: it takes the job (active, locked) and then
 * neither renews the lock nor finishes, `times` times in a row. A live worker's stall check (here
 * the dying one's own, with the queue's real maxStalledCount) puts the job back each time; past
 * the limit BullMQ marks it to fail the next time a worker picks it up.
 */
async function stallRepeatedly(queueName: string, prefix: string, jobId: string, maxStalledCount: number, times: number): Promise<void> {
  const queue = new Queue(queueName, { connection: workerConnection(), prefix });
  const dying = new Worker(queueName, null, { connection: workerConnection(), prefix, autorun: false, lockDuration: 300, stalledInterval: 150, maxStalledCount });
  try {
    void dying.startStalledCheckTimer();
    for (let i = 0; i < times; i++) {
      const token = randomBytes(8).toString('hex');
      const job = await waitFor(() => dying.getNextJob(token, { block: false }), 10_000, `the job taken by a dying replica (${i + 1})`);
      expect(job.id).toBe(jobId);
      await waitFor(async () => (await queue.getJob(jobId))?.getState().then((s) => s === 'waiting'), 10_000, `the stalled job back in wait (${i + 1})`);
    }
  } finally {
    await dying.close(true);
    await queue.close();
  }
}

describe('a job stalled more than its queue allows is re-queued, not dropped', () => {
  it('email: the sender died twice mid-send (maxStalledCount 1); the email still goes out, once', async () => {
    const prefix = uniquePrefix('stall-email');
    const snapshot = sampleChain('2026-11-20', 1)[0]!;
    const text = snapshotFileText(snapshot);
    const mailer = () => createMailer({ smtpUrl: smtp.url, from: 'vigil@acme.test', to: ['security@acme.test'], organization: 'Acme', timeoutMs: 2_000, allowPlaintext: true });
    // Queued with the worker's settings, by a replica that then dies with the job twice.
    const first = new EmailQueue({ connection: workerConnection(), client, prefix, mailer: mailer(), retryHours: 12, snapshotText: async () => text, log });
    await first.worker.close();
    await first.enqueue('2026-11-20');
    await first.close();
    await stallRepeatedly('email', prefix, 'email|2026-11-20', EMAIL_STALLS.maxStalledCount, EMAIL_STALLS.maxStalledCount + 1);

    const q = new EmailQueue({ connection: workerConnection(), client, prefix, mailer: mailer(), retryHours: 12, snapshotText: async () => text, log });
    try {
      const sent = await waitFor(() => smtp.messages.find((m) => m.parsed.headers.get('x-vigil-snapshot-hash') === snapshot.hash), 15_000, 'the email');
      expect(sent.parsed.subject).toContain('2026-11-20');
      await waitFor(async () => (await q.counts()).get('sent') === 1, 5_000, 'sent counted');
      expect(Object.fromEntries(await q.counts())).toEqual({ sent: 1 });
      expect(smtp.messages.filter((m) => m.parsed.headers.get('x-vigil-snapshot-hash') === snapshot.hash)).toHaveLength(1);
    } finally {
      await q.close();
    }
  }, 40_000);

  it('results: a result whose recorders died more often than allowed is still recorded, once', async () => {
    const prefix = uniquePrefix('stall-results');
    const results = new Queue<ProbeResult>(RESULTS_QUEUE, { connection: workerConnection(), prefix });
    const result: ProbeResult = {
      runId: 'fake-check|alpha|1795000000000',
      probe: 'fake-check',
      target: 'alpha',
      scheduledFor: '2026-11-20T10:00:00.000Z',
      startedAt: '2026-11-20T10:00:00.000Z',
      finishedAt: '2026-11-20T10:00:01.000Z',
      findings: [{ resource: 'r1', outcome: 'pass', message: 'fine' }],
    };
    await results.add('result', result, { jobId: result.runId, attempts: 20 });
    await stallRepeatedly(RESULTS_QUEUE, prefix, result.runId, RESULTS_STALLS.maxStalledCount, RESULTS_STALLS.maxStalledCount + 1);
    const state = new StateStore(client, prefix);
    const recorder = new Recorder({ connection: workerConnection(), prefix, state, log });
    try {
      await waitFor(async () => (await state.runCounts()).get('fake-check|pass') === 1, 15_000, 'the result recorded');
      expect(recorder.recorded).toBe(1);
      expect(await (await results.getJob(result.runId))?.getState()).toBe('completed');
    } finally {
      await recorder.close();
      await results.close();
    }
  }, 40_000);

  it('probes: a run whose workers died more often than allowed runs again and its result is recorded', async () => {
    const prefix = uniquePrefix('stall-probes');
    fakeBehaviour.set('alpha', async () => [{ resource: 'r1', outcome: 'pass', message: 'fine' }]);
    const loaded = testConfig(`redis: { url: "${redis.url}", prefix: ${prefix} }\nprobes:\n  fake-check: { schedule: "0 3 * * *" }\n`, [fakeProbe], `controls:
  - id: fake-control
    title: Fake control
    publicTitle: Fake
    publicDescription: Fake control for tests
    frameworks: { soc2: [CC6.7] }
    probes: [fake-check]
`);
    const units = configuredUnits(loaded).filter((u) => u.target.name === 'alpha');
    const probes = new Queue<ProbeJobData>(PROBES_QUEUE, { connection: workerConnection(), prefix });
    const results = new Queue<ProbeResult>(RESULTS_QUEUE, { connection: workerConnection(), prefix });
    const slot = new Date('2026-11-20T03:00:00Z');
    const jobId = slotJobId('fake-check', 'alpha', slot);
    await probes.add('fake-check', { probe: 'fake-check', target: 'alpha', scheduledFor: slot.toISOString() }, { jobId, attempts: 3 });
    const policy = probeStallPolicy(5_000);
    await stallRepeatedly(PROBES_QUEUE, prefix, jobId, policy.maxStalledCount, policy.maxStalledCount + 1);
    const worker = new ProbeWorker({ connection: workerConnection(), prefix, units, results, concurrency: 1, timeoutMs: 5_000, log });
    try {
      const job = await waitFor(() => results.getJob(jobId), 15_000, 'the run result');
      expect((job.data as ProbeResult).findings).toEqual([{ resource: 'r1', outcome: 'pass', message: 'fine' }]);
      expect(worker.executed).toBe(1);
      expect(await (await probes.getJob(jobId))?.getState()).toBe('completed');
    } finally {
      await worker.close(1_000);
      await probes.close();
      await results.close();
    }
  }, 40_000);
});

describe('a run that keeps killing its replicas', () => {
  it('is recorded as an error after its re-queues are used up: the control goes unknown, not silent', async () => {
    const prefix = uniquePrefix('stall-poison');
    const loaded = testConfig(`redis: { url: "${redis.url}", prefix: ${prefix} }\nprobes:\n  fake-check: { schedule: "0 3 * * *" }\n`, [fakeProbe], `controls:
  - id: fake-control
    title: Fake control
    publicTitle: Fake
    publicDescription: Fake control for tests
    frameworks: { soc2: [CC6.7] }
    probes: [fake-check]
`);
    fakeBehaviour.set('alpha', async () => [{ resource: 'r1', outcome: 'pass', message: 'fine' }]);
    const units = configuredUnits(loaded).filter((u) => u.target.name === 'alpha');
    const probes = new Queue<ProbeJobData>(PROBES_QUEUE, { connection: workerConnection(), prefix });
    const results = new Queue<ProbeResult>(RESULTS_QUEUE, { connection: workerConnection(), prefix });
    const slot = new Date('2026-11-20T03:00:00Z');
    const jobId = slotJobId('fake-check', 'alpha', slot);
    await probes.add('fake-check', { probe: 'fake-check', target: 'alpha', scheduledFor: slot.toISOString() }, { jobId, attempts: 3 });
    const policy = probeStallPolicy(5_000);
    // It was already put back as often as the policy allows; its replicas die with it once more.
    await client.hset(probes.toKey(jobId), 'vigilRequeues', String(policy.maxRequeues));
    await stallRepeatedly(PROBES_QUEUE, prefix, jobId, policy.maxStalledCount, policy.maxStalledCount + 1);
    const worker = new ProbeWorker({ connection: workerConnection(), prefix, units, results, concurrency: 1, timeoutMs: 5_000, log });
    try {
      const job = await waitFor(() => results.getJob(jobId), 15_000, 'the error result');
      expect((job.data as ProbeResult).error?.class).toBe('StalledRunError');
      expect((job.data as ProbeResult).findings).toEqual([]);
      expect(worker.executed).toBe(0);
      await waitFor(async () => (await probes.getJob(jobId))?.getState().then((st) => st === 'failed'), 5_000, 'the run left failed');
      // The periodic pass leaves it alone from now on (handled once).
      expect(await worker.requeueStalled(probes)).toBe(0);
      expect(await (await probes.getJob(jobId))?.getState()).toBe('failed');
    } finally {
      await worker.close(1_000);
      await probes.close();
      await results.close();
    }
  }, 40_000);
});

describe('the periodic pass re-queues an email the worker never got back', () => {
  it('a day whose email job sits in the failed set (stall limit, no re-queue) is re-queued and sent once', async () => {
    const prefix = uniquePrefix('reconcile');
    const snapshot = sampleChain('2026-11-21', 1)[0]!;
    const text = snapshotFileText(snapshot);
    const mailer = createMailer({ smtpUrl: smtp.url, from: 'vigil@acme.test', to: ['security@acme.test'], organization: 'Acme', timeoutMs: 2_000, allowPlaintext: true });
    const q = new EmailQueue({ connection: workerConnection(), client, prefix, mailer, retryHours: 12, snapshotText: async () => text, log });
    // No worker of ours runs while the job stalls and fails: as when the replica that failed it died
    // before its `failed` event could re-queue it.
    await q.worker.close();
    await q.enqueue('2026-11-21');
    await stallRepeatedly('email', prefix, 'email|2026-11-21', EMAIL_STALLS.maxStalledCount, EMAIL_STALLS.maxStalledCount + 1);
    const plain = new Worker<EmailJobData>('email', async () => 'unreachable', { connection: workerConnection(), prefix });
    const queue = new Queue('email', { connection: workerConnection(), prefix });
    await waitFor(async () => (await queue.getJob('email|2026-11-21'))?.getState().then((s) => s === 'failed'), 10_000, 'the job failed for stalling');
    await plain.close();
    expect((await queue.getJob('email|2026-11-21'))?.failedReason).toBe(STALLED_REASON);
    // The old pass only called enqueue(), which is a no-op for a job id already in the failed set.
    await q.enqueue('2026-11-21');
    expect(await (await queue.getJob('email|2026-11-21'))?.getState()).toBe('failed');

    const live = new EmailQueue({ connection: workerConnection(), client, prefix, mailer: createMailer({ smtpUrl: smtp.url, from: 'vigil@acme.test', to: ['security@acme.test'], organization: 'Acme', timeoutMs: 2_000, allowPlaintext: true }), retryHours: 12, snapshotText: async () => text, log });
    try {
      expect(await live.reconcile('2026-11-21')).toBe('requeued');
      await waitFor(() => smtp.messages.find((m) => m.parsed.headers.get('x-vigil-snapshot-hash') === snapshot.hash), 15_000, 'the email');
      await waitFor(async () => (await live.counts()).get('sent') === 1, 5_000, 'sent counted');
      expect(await live.reconcile('2026-11-21')).toBe('settled');
      expect(smtp.messages.filter((m) => m.parsed.headers.get('x-vigil-snapshot-hash') === snapshot.hash)).toHaveLength(1);
    } finally {
      await live.close();
      await q.close();
      await queue.close();
    }
  }, 40_000);

  it('a day not sent within email.retryHours is counted failed exactly once, by one replica, and not re-queued', async () => {
    const prefix = uniquePrefix('give-up');
    let clock = Date.parse('2026-11-22T00:10:00Z');
    const snapshot = sampleChain('2026-11-22', 1)[0]!;
    const text = snapshotFileText(snapshot);
    const make = () =>
      new EmailQueue({
        connection: workerConnection(),
        client,
        prefix,
        // Nothing listens there: every attempt is a transient failure.
        mailer: createMailer({ smtpUrl: 'smtp://127.0.0.1:1', from: 'vigil@acme.test', to: ['security@acme.test'], organization: 'Acme', timeoutMs: 500, allowPlaintext: true }),
        retryHours: 1,
        backoffBaseMs: 60_000,
        snapshotText: async () => text,
        log,
        now: () => clock,
      });
    const a = make();
    const b = make();
    try {
      await a.enqueue('2026-11-22');
      // The first attempt fails and the job waits for its retry (delayed): pending, not given up.
      await waitFor(async () => (await a.queue.getJob('email|2026-11-22'))?.getState().then((s) => s === 'delayed'), 10_000, 'a delayed retry');
      expect(await a.reconcile('2026-11-22')).toBe('pending');
      // The job is lost (e.g. removed by hand) and the time is over.
      await (await a.queue.getJob('email|2026-11-22'))?.remove();
      clock += 61 * 60_000;
      const outcomes = await Promise.all([a.reconcile('2026-11-22'), b.reconcile('2026-11-22'), a.reconcile('2026-11-22')]);
      expect(outcomes.filter((o) => o === 'given-up').length + outcomes.filter((o) => o === 'settled').length).toBe(3);
      expect(Object.fromEntries(await a.counts())).toEqual({ failed: 1 });
      expect(await a.reconcile('2026-11-22')).toBe('settled');
      expect(await a.queue.getJob('email|2026-11-22')).toBeUndefined();
    } finally {
      await a.close();
      await b.close();
    }
  }, 30_000);
});
