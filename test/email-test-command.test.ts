import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { probes as registry } from '../probes/index.js';
import { emailTestCommand, EXIT_EMAIL_REFUSED, EXIT_EMAIL_TEMPFAIL } from '../src/cli/email-test.js';
import { main, type CliIo } from '../src/cli/main.js';
import { loadConfig } from '../src/config/load.js';
import { startSmtpPeer, type SmtpPeer } from './helpers/smtp-peer.js';
import { createTestPki } from './helpers/tls-certs.js';

const pki = createTestPki();
const starttls = { key: pki.keyPem, cert: pki.chainPem };
const PASSWORD = 'Sm7p-Passw0rd-for-the-test';

let peer: SmtpPeer | undefined;
afterEach(async () => {
  await peer?.close();
  peer = undefined;
});

/**
 * A config whose email.smtp comes from VIGIL_TEST_SMTP_URL. The admin token and the signing key
 * point at variables that are never set: `email test` must not ask for them.
 */
function configFile(extra = ''): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'vigil-email-test-'));
  const file = path.join(dir, 'vigil.yaml');
  writeFileSync(
    file,
    [
      `dataDir: ${dir}/var`,
      'timezone: Europe/Berlin',
      'trust: { organization: Acme Payments }',
      'http: { admin: { token: { env: VIGIL_TEST_UNSET_ADMIN_TOKEN } } }',
      'archive: { signingKey: { env: VIGIL_TEST_UNSET_SIGNING_KEY } }',
      'email:',
      '  smtp: { env: VIGIL_TEST_SMTP_URL }',
      '  from: vigil <vigil@acme.example>',
      '  to: [security@acme.example, ciso@acme.example]',
      extra,
    ].join('\n'),
  );
  return file;
}

function io(env: NodeJS.ProcessEnv): CliIo & { stdout: string; stderr: string } {
  const out = { stdout: '', stderr: '' };
  return Object.assign(out, { out: (t: string) => void (out.stdout += t), err: (t: string) => void (out.stderr += t), env, registry });
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('vigil email test', () => {
  it('sends one real message with the configured from/to, asking for no secret but the SMTP URL (exit 0)', async () => {
    peer = await startSmtpPeer({ auth: { user: 'vigil', pass: PASSWORD } });
    const cli = io({ VIGIL_TEST_SMTP_URL: `smtp://vigil:${PASSWORD}@127.0.0.1:${peer.port}` });
    const code = await main(['email', 'test', '-c', configFile('  allowPlaintext: true')], cli);
    expect(cli.stderr).toBe('');
    expect(code).toBe(0);
    expect(peer.messages).toHaveLength(1);
    const m = peer.messages[0]!;
    expect(m.mailFrom).toBe('vigil@acme.example');
    expect(m.rcptTo).toEqual(['security@acme.example', 'ciso@acme.example']);
    expect(m.user).toBe('vigil');
    expect(m.parsed.subject).toBe('vigil test message — Acme Payments');
    expect(m.parsed.text).toContain('after each day closes at 00:10 (Europe/Berlin)');
    expect(m.parsed.headers.get('auto-submitted')).toBe('auto-generated');
    expect(cli.stdout).toMatch(/^test message accepted for security@acme\.example, ciso@acme\.example \(Message-ID <vigil-test-\d+-[0-9a-f]{12}@vigil\.invalid>\)\n$/);
    expect(m.raw.toString('utf8')).not.toContain(PASSWORD);
  });

  it('keeps the TLS rule of the daily email: a server without STARTTLS gets no password (exit 1, reason printed)', async () => {
    peer = await startSmtpPeer({ auth: { user: 'vigil', pass: PASSWORD } });
    const cli = io({ VIGIL_TEST_SMTP_URL: `smtp://vigil:${PASSWORD}@127.0.0.1:${peer.port}` });
    const code = await main(['email', 'test', '-c', configFile()], cli);
    expect(code).toBe(EXIT_EMAIL_REFUSED);
    expect(peer.authAttempts).toBe(0);
    expect(peer.messages).toHaveLength(0);
    expect(cli.stderr).toContain('the server does not support STARTTLS');
    expect(cli.stderr).toContain(`127.0.0.1:${peer.port}`);
    expect(cli.stderr).not.toContain(PASSWORD);
  });

  it('over STARTTLS with the right password the message arrives encrypted; a wrong password is refused with the SMTP reply', async () => {
    peer = await startSmtpPeer({ auth: { user: 'vigil', pass: PASSWORD }, tls: starttls });
    const file = configFile();
    const good = io({ VIGIL_TEST_SMTP_URL: `smtp://vigil:${PASSWORD}@localhost:${peer.port}` });
    expect(await emailTestCommand(loadConfig(file, registry, good.env, { secrets: ['smtp'] }), good, { ca: pki.caPem })).toBe(0);
    expect(peer.messages.map((m) => m.secure)).toEqual([true]);

    const wrong = 'Wr0ng-password-value';
    const bad = io({ VIGIL_TEST_SMTP_URL: `smtp://vigil:${wrong}@localhost:${peer.port}` });
    expect(await emailTestCommand(loadConfig(file, registry, bad.env, { secrets: ['smtp'] }), bad, { ca: pki.caPem })).toBe(EXIT_EMAIL_REFUSED);
    expect(bad.stderr).toContain('the server refused the credentials');
    expect(bad.stderr).toContain('535');
    expect(bad.stderr).toContain('5.7.8 Authentication credentials invalid');
    expect(bad.stderr).not.toContain(wrong);
    expect(peer.messages).toHaveLength(1);
  });

  it('a deferral (451) and an unreachable server exit 75 with the reason', async () => {
    peer = await startSmtpPeer();
    peer.rejectNext(1, 451, '4.3.0 Mailbox temporarily unavailable');
    const file = configFile('  allowPlaintext: true');
    const deferred = io({ VIGIL_TEST_SMTP_URL: `smtp://127.0.0.1:${peer.port}` });
    expect(await main(['email', 'test', '-c', file], deferred)).toBe(EXIT_EMAIL_TEMPFAIL);
    expect(deferred.stderr).toContain('the server deferred it');
    expect(deferred.stderr).toContain('4.3.0 Mailbox temporarily unavailable');
    expect(deferred.stderr).toContain('try again later');

    const port = await closedPort();
    const down = io({ VIGIL_TEST_SMTP_URL: `smtp://127.0.0.1:${port}` });
    expect(await emailTestCommand(loadConfig(file, registry, down.env, { secrets: ['smtp'] }), down, { timeoutMs: 2_000 })).toBe(EXIT_EMAIL_TEMPFAIL);
    expect(down.stderr).toContain('could not be reached');
    expect(down.stderr).toContain('ECONNREFUSED');
  });

  it('without the SMTP URL, or without an email section, it is a config error naming the key (exit 78)', async () => {
    const missing = io({});
    expect(await main(['email', 'test', '-c', configFile()], missing)).toBe(78);
    expect(missing.stderr).toContain('email.smtp');
    expect(missing.stderr).not.toContain('VIGIL_TEST_UNSET_ADMIN_TOKEN');

    const dir = mkdtempSync(path.join(tmpdir(), 'vigil-email-test-'));
    const bare = path.join(dir, 'vigil.yaml');
    writeFileSync(bare, `dataDir: ${dir}/var\n`);
    const none = io({});
    expect(await main(['email', 'test', '-c', bare], none)).toBe(78);
    expect(none.stderr).toContain('email: no email section is configured');
  });
});
