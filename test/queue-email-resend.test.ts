import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmailQueue } from '../src/notify/email-queue.js';
import { createMailer } from '../src/notify/email.js';
import { snapshotFileText } from '../src/store/archive.js';
import { waitFor } from './helpers/daemon.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';
import { startSmtpPeer, type SmtpPeer } from './helpers/smtp-peer.js';
import { sampleChain } from './helpers/snapshots.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const log = pino({ level: 'silent' });
let redis: TestRedisServer;
let client: Redis;
let smtp: SmtpPeer;
/** The sender process to SIGKILL when the server accepts its message. */
let victim: ChildProcess | undefined;

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url);
  smtp = await startSmtpPeer({
    onAccept: () => {
      // Accepted by the server, but the sender never hears the 250 nor writes its sent marker.
      victim?.kill('SIGKILL');
      victim = undefined;
    },
  });
});
afterAll(async () => {
  victim?.kill('SIGKILL');
  client.disconnect();
  await smtp.close();
  await redis.stop();
});

/** A replica's email sender in its own process (the built dist/), killable at any instant. */
function senderProcess(prefix: string, textFile: string): ChildProcess {
  const code = `
    import { readFileSync } from 'node:fs';
    import { Redis } from 'ioredis';
    import pino from 'pino';
    import { EmailQueue } from './dist/src/notify/email-queue.js';
    import { createMailer } from './dist/src/notify/email.js';
    const text = readFileSync(process.env.TEXT_FILE, 'utf8');
    new EmailQueue({
      connection: new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: null }),
      client: new Redis(process.env.REDIS_URL),
      prefix: process.env.PREFIX,
      mailer: createMailer({ smtpUrl: process.env.SMTP_URL, from: 'vigil@acme.test', to: ['security@acme.test'], organization: 'Acme', timeoutMs: 5000, allowPlaintext: true }),
      retryHours: 12,
      snapshotText: async () => text,
      log: pino({ level: 'silent' }),
      stalls: { lockDuration: 1000, stalledInterval: 500 },
    });
  `;
  return spawn(process.execPath, ['--input-type=module', '-e', code], {
    cwd: root,
    env: { ...process.env, REDIS_URL: redis.url, SMTP_URL: smtp.url, PREFIX: prefix, TEXT_FILE: textFile },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

describe('a send that resumes after an unknown outcome', () => {
  it('is counted resent: the sender died after the SMTP server accepted the message, the next one sends the same Message-ID again', async () => {
    const prefix = uniquePrefix('resend');
    const snapshot = sampleChain('2026-11-23', 1)[0]!;
    const text = snapshotFileText(snapshot);
    const textFile = path.join(mkdtempSync(path.join(tmpdir(), 'vigil-resend-')), 'snapshot.json');
    writeFileSync(textFile, text);
    const ofDay = () => smtp.messages.filter((m) => m.parsed.headers.get('x-vigil-snapshot-hash') === snapshot.hash);

    const child = senderProcess(prefix, textFile);
    victim = child;
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    const live = new EmailQueue({
      connection: new Redis(redis.url, { maxRetriesPerRequest: null }),
      client,
      prefix,
      mailer: createMailer({ smtpUrl: smtp.url, from: 'vigil@acme.test', to: ['security@acme.test'], organization: 'Acme', timeoutMs: 5_000, allowPlaintext: true }),
      retryHours: 12,
      snapshotText: async () => text,
      log,
      stalls: { lockDuration: 1_000, stalledInterval: 300 },
    });
    // Only the child may take the job at first: the live replica's worker waits.
    await live.worker.pause(true);
    try {
      await live.enqueue('2026-11-23');
      expect(await exited).toBe('SIGKILL');
      expect(ofDay()).toHaveLength(1);
      expect(await client.exists(`${prefix}:email-sent:2026-11-23`)).toBe(0);
      live.worker.resume();
      await waitFor(() => ofDay().length === 2, 20_000, 'the resumed send');
      await waitFor(async () => (await live.counts()).get('sent') === 1, 5_000, 'sent counted');
      expect(Object.fromEntries(await live.counts())).toEqual({ sent: 1, resent: 1 });
      const [a, b] = ofDay();
      expect(a?.parsed.messageId).toBe(`<vigil-2026-11-23-${snapshot.hash.slice(0, 16)}@vigil.invalid>`);
      expect(b?.parsed.messageId).toBe(a?.parsed.messageId);
      // The attempt is over: nothing left that would count another resend.
      expect(await client.exists(`${prefix}:email-attempt:2026-11-23`)).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await live.close();
    }
  }, 40_000);

  it('a send after a clean SMTP failure (server down) is not a resend', async () => {
    const prefix = uniquePrefix('no-resend');
    const snapshot = sampleChain('2026-11-24', 1)[0]!;
    const text = snapshotFileText(snapshot);
    await smtp.stop();
    const q = new EmailQueue({
      connection: new Redis(redis.url, { maxRetriesPerRequest: null }),
      client,
      prefix,
      mailer: createMailer({ smtpUrl: smtp.url, from: 'vigil@acme.test', to: ['security@acme.test'], organization: 'Acme', timeoutMs: 2_000, allowPlaintext: true }),
      retryHours: 12,
      backoffBaseMs: 300,
      snapshotText: async () => text,
      log,
    });
    try {
      await q.enqueue('2026-11-24');
      await waitFor(async () => ((await q.queue.getJob('email|2026-11-24'))?.attemptsMade ?? 0) >= 1, 10_000, 'a failed attempt');
      await smtp.start();
      await waitFor(async () => (await q.counts()).get('sent') === 1, 15_000, 'sent');
      expect(Object.fromEntries(await q.counts())).toEqual({ sent: 1 });
    } finally {
      await q.close();
    }
  }, 30_000);
});
