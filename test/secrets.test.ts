import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermissionError, TransientError } from '../src/probe/errors.js';
import type { ProbeResult } from '../src/probe/contract.js';
import { REDACTED, registerSecret, scrub, secretForms } from '../src/secrets.js';
import { get, startTestDaemon, testConfig, waitFor } from './helpers/daemon.js';
import { fakeBehaviour, fakeProbe } from './helpers/fake-probe.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const b64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

/** Every run of base64 characters in `text`, decoded: what a reader of the output could recover. */
function decodedRuns(text: string): string[] {
  return Array.from(text.matchAll(/[A-Za-z0-9+/_-]{4,}={0,2}/g), (m) => Buffer.from(m[0].replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('latin1'));
}

/** True when some 4-character piece of `secret` survives in `text`, as is or base64-decoded. */
function leaks(text: string, secret: string): boolean {
  const haystacks = [text, ...decodedRuns(text)];
  for (let i = 0; i + 4 <= secret.length; i++) {
    const piece = secret.slice(i, i + 4);
    if (haystacks.some((h) => h.includes(piece) || h.includes(Buffer.from(piece, 'utf8').toString('latin1')))) return true;
  }
  return false;
}

describe('scrub', () => {
  // Secrets with the characters that used to escape redaction once a log line is JSON.
  const quoted = 'pa"ss\\wo\u0001rd\n-9Kq';
  const plain = 'Zq7vR2xW9mTb';
  registerSecret(quoted);
  registerSecret(plain);

  it.each([
    ['as is', (s: string) => `auth failed for ${s} (401)`],
    ['JSON-escaped, as in a pino line', (s: string) => JSON.stringify({ msg: `auth failed for ${s}` })],
    ['JSON-escaped twice (an error message inside a JSON field)', (s: string) => JSON.stringify({ body: JSON.stringify({ token: s }) })],
    ['percent-encoded in a URL', (s: string) => `https://vigil:${encodeURIComponent(s)}@mail.example.com/`],
    ['HTML-escaped', (s: string) => `<td>${s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')}</td>`],
    ['base64', (s: string) => `server said: ${b64(s)}`],
    ['base64 without padding', (s: string) => `server said: ${b64(s).replace(/=+$/, '')}.`],
    ['base64url', (s: string) => `token=${b64url(s)}`],
    ['HTTP Basic credentials echoed back (user of 5 chars)', (s: string) => `Authorization: Basic ${b64(`vigil:${s}`)}`],
    ['HTTP Basic credentials echoed back (user of 6 chars)', (s: string) => `Authorization: Basic ${b64(`vigil2:${s}`)}`],
    ['HTTP Basic credentials echoed back (user of 7 chars)', (s: string) => `Authorization: Basic ${b64(`vigil23:${s}`)}`],
    ['base64 of a longer JSON body containing it', (s: string) => `echo ${b64(JSON.stringify({ password: s, n: 1 }))}`],
  ])('removes a secret %s', (_name, render) => {
    for (const secret of [quoted, plain]) {
      const out = scrub(render(secret));
      expect(out).toContain(REDACTED);
      expect(leaks(out, secret), out).toBe(false);
    }
  });

  it('leaves text without a secret unchanged', () => {
    const text = '{"level":30,"msg":"probe run finished","probe":"tls-certificate-posture","target":"web"}';
    expect(scrub(text)).toBe(text);
  });

  it('removes a short secret only as a whole value: the whole text, or a whole JSON string', () => {
    const short = 'k9';
    registerSecret(short);
    expect(scrub('k9')).toBe(REDACTED);
    expect(scrub(JSON.stringify({ level: 40, password: short, msg: 'ok' }))).toBe(`{"level":40,"password":"${REDACTED}","msg":"ok"}`);
    // Inside other words it is not a secret but two letters: a redaction there would mangle the line and tell the secret.
    expect(scrub('disk k9s-node-k9 is ok')).toBe('disk k9s-node-k9 is ok');
  });

  it('a short secret with a quote is matched in its JSON-escaped form', () => {
    registerSecret('a"b');
    expect(scrub(JSON.stringify({ pw: 'a"b' }))).toBe(`{"pw":"${REDACTED}"}`);
  });

  it('lists the forms it looks for, the raw value first', () => {
    const forms = secretForms('hunter2-hunter2');
    expect(forms[0]).toBe('hunter2-hunter2');
    expect(forms).toEqual(expect.arrayContaining([b64('hunter2-hunter2'), b64url('hunter2-hunter2'), encodeURIComponent('hunter2-hunter2')]));
  });
});

describe('end to end: a run error that echoes secrets, through the real pipeline', () => {
  let redis: TestRedisServer;
  let client: Redis;
  beforeAll(async () => {
    redis = await startRedisServer();
    client = new Redis(redis.url);
  });
  afterAll(async () => {
    client.disconnect();
    await redis.stop();
  });

  it('reaches neither the logs, nor the stored results, nor Redis, nor the metrics and API', async () => {
    // Registered the way vigil registers them: read from the environment when the config loads
    // (the GitHub token), or when the mailer takes its URL apart (the SMTP password).
    const token = `gh"p_\\tok\u0007en-${'Q7x'.repeat(10)}`;
    const short = 'x9Q';
    const adminToken = 'Vq3kT9wZr6Lp2Xn8Yb4Hm7Jc5Fd1Gs0AeU';
    // A second GitHub token in a file anyone on the host can read: used, with a warning at start.
    const looseFile = path.join(mkdtempSync(path.join(tmpdir(), 'vigil-loose-')), 'gh-token');
    const looseToken = 'Lw8pN3vB6qR1tY4uI7oP0aS2dF5gH9jK';
    writeFileSync(looseFile, `${looseToken}\n`);
    chmodSync(looseFile, 0o644);
    const prefix = uniquePrefix('secrets-e2e');
    const loaded = testConfig(
      `redis: { url: "${redis.url}", prefix: ${prefix} }
http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0, token: { env: ADMIN } } }
worker: { concurrency: 2, attempts: 2, backoffSeconds: 0.05, timeoutSeconds: 5 }
shutdown: { graceSeconds: 1 }
github:
  - { name: gh, org: acme, auth: { token: { env: GH_TOKEN } } }
  - { name: gh2, org: acme, auth: { token: { file: ${looseFile} } } }
email: { smtp: { env: SMTP_URL }, from: vigil@example.com, to: [security@example.com] }
probes:
  fake-check: { schedule: "0 3 * * *" }
`,
      [fakeProbe],
      `controls:
  - { id: fake-control, title: Fake, publicTitle: Fake, publicDescription: Fake, frameworks: { soc2: [CC6.7] }, probes: [fake-check] }
`,
      { ADMIN: adminToken, GH_TOKEN: token, SMTP_URL: `smtp://vigil:${short}@127.0.0.1:9` },
    );
    // A hostile server echoing the credentials back, in every encoding: transient, so BullMQ stores the failure in Redis first.
    fakeBehaviour.set('alpha', async () => {
      throw new TransientError(`upstream said ${b64(`vigil:${token}`)} / ${b64(token)} / ${JSON.stringify({ token })} / ${encodeURIComponent(token)} / ${token}`);
    });
    fakeBehaviour.set('beta', async () => {
      throw new PermissionError(short);
    });
    const { daemon, logs } = await startTestDaemon(loaded);
    try {
      const latest = async (target: string): Promise<ProbeResult | undefined> => (await daemon.state.latestResults()).results.get(`fake-check|${target}`);
      await waitFor(async () => (await latest('alpha')) && (await latest('beta')), 15_000, 'both error results');
      const alpha = (await latest('alpha'))!;
      const beta = (await latest('beta'))!;
      // What is left of the Basic credentials is base64('vigil:'), the user name.
      expect(alpha.error?.message).toBe(`upstream said dmlnaWw6${REDACTED} / ${REDACTED} / {"token":"${REDACTED}"} / ${REDACTED} / ${REDACTED}`);
      expect(beta.error).toEqual({ class: 'PermissionError', message: REDACTED });

      const api = await get(`${daemon.adminUrl}/api/controls/fake-control`, adminToken);
      expect(api.status).toBe(200);
      const metrics = (await get(`${daemon.adminUrl}/metrics`)).text;

      // Everything vigil and BullMQ keep in Redis under the prefix: results, job data, failed reasons, stack traces.
      const dump: string[] = [];
      for (const key of await client.keys(`${prefix}:*`)) {
        const type = await client.type(key);
        if (type === 'string') dump.push((await client.get(key)) ?? '');
        else if (type === 'hash') dump.push(JSON.stringify(await client.hgetall(key)));
        else if (type === 'list') dump.push(...(await client.lrange(key, 0, -1)));
        else if (type === 'zset') dump.push(...(await client.zrange(key, 0, -1)));
        else if (type === 'set') dump.push(...(await client.smembers(key)));
        else if (type === 'stream') dump.push(JSON.stringify(await client.xrange(key, '-', '+')));
      }
      expect(dump.join('\n')).toContain(REDACTED);
      expect(logs.text).toContain(REDACTED);
      const warning = logs.lines.map((l) => JSON.parse(l) as { msg: string; warning?: string }).find((l) => l.msg === 'configuration warning');
      expect(warning?.warning).toContain(`github[1].auth.token: secret file ${looseFile} is accessible to group or others (mode 0644)`);
      for (const [where, text] of [
        ['logs', logs.text],
        ['results', JSON.stringify([alpha, beta])],
        ['redis', dump.join('\n')],
        ['metrics', metrics],
        ['api', api.text],
      ] as const) {
        expect(leaks(text, token), `${where} leaks the token`).toBe(false);
        expect(leaks(text, adminToken), `${where} leaks the admin token`).toBe(false);
        expect(leaks(text, looseToken), `${where} leaks the file token`).toBe(false);
        expect(text, where).not.toContain(JSON.stringify(short));
      }
    } finally {
      await daemon.stop();
    }
  });
});
