import { createServer, type Server, type Socket } from 'node:net';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { createMailer, PermanentEmailError, type Mailer } from '../src/notify/email.js';
import { renderHtml, renderText, subjectLine } from '../src/posture/render.js';
import type { Snapshot } from '../src/posture/snapshot-types.js';
import { TransientError } from '../src/probe/errors.js';
import { startSmtpPeer, type SmtpPeer, type SmtpPeerOptions } from './helpers/smtp-peer.js';
import { sampleControl, sampleSnapshot } from './helpers/snapshots.js';
import { createTestPki } from './helpers/tls-certs.js';

const from = 'vigil <vigil@example.com>';
const to = ['security@example.com', 'ciso@example.com'];
const organization = 'Acme';
/** The peer's certificate chain (for 127.0.0.1) and the root the mailer trusts. */
const pki = createTestPki();
const starttls = { key: pki.keyPem, cert: pki.chainPem };

/** A day with a red control; its title has non-ASCII text, and the JSON has a line far over SMTP's 998 limit. */
function snapshot(date = '2026-11-21'): Snapshot {
  return sampleSnapshot(date, [
    sampleControl({ id: 'tls-certificates', title: 'TLS certificates — valid, strong, renewed ≥ 14 days early' }),
    sampleControl({
      id: 'mfa-human-accounts',
      title: 'Human accounts use MFA',
      verdict: 'red',
      streak: 0,
      greenSince: null,
      thirtyDayGreen: false,
      reasons: ['a finding is red'],
      failing: [{ probe: 'aws-iam-user-mfa', target: 'prod', resource: 'zoë', message: 'User zoë has no MFA: enable a hardware key' }],
    }),
  ], 'b'.repeat(64), { diff: { since: '2026-11-20', newReds: ['mfa-human-accounts'], recoveries: [], reachedThirtyDays: [], leftFeed: [] } });
}

/** The archive file's content: pretty JSON with a trailing newline, plus a 5 000-character line. */
function archived(s: Snapshot): string {
  return `${JSON.stringify({ ...s, padding: 'x'.repeat(5000) }, null, 2)}\n`;
}

let peer: SmtpPeer | undefined;
let mailer: Mailer | undefined;
let silent: { server: Server; sockets: Set<Socket> } | undefined;

afterEach(async () => {
  mailer?.close();
  mailer = undefined;
  await peer?.close();
  peer = undefined;
  if (silent !== undefined) {
    for (const s of silent.sockets) s.destroy();
    await new Promise<void>((resolve) => silent!.server.close(() => resolve()));
    silent = undefined;
  }
});

/** A peer that offers STARTTLS with a certificate the mailer trusts: the configuration vigil requires by default. */
async function setup(auth?: { user: string; pass: string }, peerOptions: SmtpPeerOptions = {}): Promise<{ peer: SmtpPeer; mailer: Mailer }> {
  peer = await startSmtpPeer({ tls: starttls, ...peerOptions, ...(auth === undefined ? {} : { auth }) });
  mailer = createMailer({ smtpUrl: peer.url, from, to, organization, ca: pki.caPem });
  return { peer, mailer };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the send to fail');
}

describe('daily snapshot email over real SMTP', () => {
  it('delivers one message: subject, HTML, text alternative, the archived JSON byte for byte, deterministic Message-ID', async () => {
    const { peer, mailer } = await setup();
    const s = snapshot();
    const json = archived(s);
    const result = await mailer.send(s, json);

    const messageId = `<vigil-2026-11-21-${s.hash.slice(0, 16)}@vigil.invalid>`;
    expect(result).toEqual({ messageId, accepted: to, rejected: [] });
    expect(peer.messages).toHaveLength(1);
    const m = peer.messages[0]!;
    expect(m.secure).toBe(true);
    expect(m.mailFrom).toBe('vigil@example.com');
    expect(m.rcptTo).toEqual(to);
    const mail = m.parsed;
    expect(mail.subject).toBe('vigil 2026-11-21: 1 green · 1 red (new)');
    expect(mail.subject).toBe(subjectLine(s));
    expect(mail.messageId).toBe(messageId);
    expect(mail.headers.get('x-vigil-snapshot-date')).toBe('2026-11-21');
    expect(mail.headers.get('x-vigil-snapshot-hash')).toBe(s.hash);
    expect(mail.headers.get('auto-submitted')).toBe('auto-generated');
    expect(mail.html).toBe(renderHtml(s, { organization }));
    expect(mail.text?.trimEnd()).toBe(renderText(s, { organization }).trimEnd());
    expect(mail.text).toContain('zoë [aws-iam-user-mfa / prod]: User zoë has no MFA: enable a hardware key');
    // text/plain and text/html are alternatives of one another, beside the attachment.
    expect(m.raw.toString('latin1')).toMatch(/Content-Type: multipart\/alternative/i);

    expect(mail.attachments).toHaveLength(1);
    const a = mail.attachments[0]!;
    expect(a.filename).toBe('vigil-snapshot-2026-11-21.json');
    expect(a.contentType).toBe('application/json');
    expect(a.contentDisposition).toBe('attachment');
    expect(Buffer.compare(a.content, Buffer.from(json, 'utf8'))).toBe(0);
  });

  it('gives the same snapshot the same Message-ID on every send, and another day another one', async () => {
    const { peer, mailer } = await setup();
    const s = snapshot();
    await mailer.send(s, archived(s));
    await mailer.send(s, archived(s));
    const next = snapshot('2026-11-22');
    await mailer.send(next, archived(next));
    const ids = peer.messages.map((m) => m.parsed.messageId);
    expect(ids[0]).toBe(ids[1]);
    expect(ids[2]).toBe(`<vigil-2026-11-22-${next.hash.slice(0, 16)}@vigil.invalid>`);
    expect(ids[2]).not.toBe(ids[0]);
  });

  it('refuses to attach JSON that is not the snapshot being mailed', async () => {
    const { peer, mailer } = await setup();
    const s = snapshot();
    const err = await rejection(mailer.send(s, archived(snapshot('2026-11-22'))));
    expect(err.message).toContain('hash differs');
    expect(peer.messages).toHaveLength(0);
  });

  it('authenticates with the user and password from the URL', async () => {
    const { peer, mailer } = await setup({ user: 'vigil@example.com', pass: 'p@ss:wörd/with%odd#chars' });
    expect(peer.url).toContain('vigil%40example.com:p%40ss%3Aw%C3%B6rd%2Fwith%25odd%23chars@');
    const s = snapshot();
    await mailer.send(s, archived(s));
    expect(peer.messages).toHaveLength(1);
    expect(peer.messages[0]!.user).toBe('vigil@example.com');
    expect(peer.messages[0]!.secure).toBe(true);
    expect(peer.authFailures).toBe(0);
  });

  it('a wrong password is permanent, and the password is nowhere in the error', async () => {
    const password = 'Wrong-Passw0rd-zq81';
    peer = await startSmtpPeer({ auth: { user: 'vigil', pass: 'the-right-password' }, tls: starttls });
    mailer = createMailer({ smtpUrl: `smtp://vigil:${password}@127.0.0.1:${peer.port}`, from, to, organization, ca: pki.caPem });
    const s = snapshot();
    const err = await rejection(mailer.send(s, archived(s)));
    expect(err).toBeInstanceOf(PermanentEmailError);
    expect(err.name).toBe('PermanentEmailError');
    expect((err as PermanentEmailError).responseCode).toBe(535);
    expect(err.message).toContain('the server refused the credentials');
    expect(err.message).toContain('535');
    expect(err.message).toContain(`127.0.0.1:${peer.port}`);
    // Built without the URL, so nothing needed scrubbing either.
    expect(err.message).not.toContain(password);
    expect(err.message).not.toContain('[REDACTED]');
    expect(inspect(err, { depth: 10 })).not.toContain(password);
    expect(err.cause).toBeInstanceOf(Error);
    expect(peer.authFailures).toBe(1);
    expect(peer.messages).toHaveLength(0);
  });

  it('451 after DATA is transient, and the next attempt goes through', async () => {
    const { peer, mailer } = await setup();
    peer.rejectNext(1, 451, '4.3.0 Mail server temporarily unavailable');
    const s = snapshot();
    const err = await rejection(mailer.send(s, archived(s)));
    expect(err).toBeInstanceOf(TransientError);
    expect(err).not.toBeInstanceOf(PermanentEmailError);
    expect(err.message).toContain('451 4.3.0 Mail server temporarily unavailable');
    expect(err.message).toContain('will be retried');
    expect(peer.messages).toHaveLength(0);
    await mailer.send(s, archived(s));
    expect(peer.messages).toHaveLength(1);
  });

  it('550 after DATA is permanent', async () => {
    const { peer, mailer } = await setup();
    peer.rejectNext(1, 550, '5.7.1 Message rejected by policy');
    const s = snapshot();
    const err = await rejection(mailer.send(s, archived(s)));
    expect(err).toBeInstanceOf(PermanentEmailError);
    expect(err).not.toBeInstanceOf(TransientError);
    expect((err as PermanentEmailError).responseCode).toBe(550);
    expect(err.message).toContain('550 5.7.1 Message rejected by policy');
    expect(err.message).toContain('retrying will not help');
    expect(peer.messages).toHaveLength(0);
  });

  it('every recipient refused with 550 is permanent; with 450 it is transient', async () => {
    const { peer, mailer } = await setup();
    const s = snapshot();
    peer.rejectNext(2, 550, '5.1.1 Mailbox unavailable', 'rcpt');
    const permanent = await rejection(mailer.send(s, archived(s)));
    expect(permanent).toBeInstanceOf(PermanentEmailError);
    expect(permanent.message).toContain('the server refused every recipient');
    expect(permanent.message).toContain('email.to');

    peer.rejectNext(2, 450, '4.2.1 Mailbox busy, try later', 'rcpt');
    const transient = await rejection(mailer.send(s, archived(s)));
    expect(transient).toBeInstanceOf(TransientError);
    expect(peer.messages).toHaveLength(0);
  });

  it('one recipient refused out of two: delivered to the other, the refusal reported', async () => {
    const { peer, mailer } = await setup();
    peer.rejectNext(1, 550, '5.1.1 Mailbox unavailable', 'rcpt');
    const s = snapshot();
    const result = await mailer.send(s, archived(s));
    expect(result.accepted).toEqual(['ciso@example.com']);
    expect(result.rejected).toEqual(['security@example.com']);
    expect(peer.messages.map((m) => m.rcptTo)).toEqual([['ciso@example.com']]);
  });

  it('server down is transient; once it is back the next send succeeds', async () => {
    const { peer, mailer } = await setup();
    const s = snapshot();
    await peer.stop();
    const err = await rejection(mailer.send(s, archived(s)));
    expect(err).toBeInstanceOf(TransientError);
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.message).toContain(`127.0.0.1:${peer.port}`);
    await peer.start();
    const result = await mailer.send(s, archived(s));
    expect(result.accepted).toEqual(to);
    expect(peer.messages).toHaveLength(1);
    expect(peer.messages[0]!.parsed.messageId).toBe(result.messageId);
  });

  it('a server that never greets times out as transient', async () => {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    silent = { server, sockets };
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const { port } = server.address() as { port: number };
    mailer = createMailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from, to, organization, timeoutMs: 300, ca: pki.caPem });
    const s = snapshot();
    const started = Date.now();
    const err = await rejection(mailer.send(s, archived(s)));
    expect(err).toBeInstanceOf(TransientError);
    // Greeting and socket-inactivity timers share the limit, so either may fire first.
    expect(err.message).toMatch(/\(ETIMEDOUT, (GREETING|SOCKET)_TIMEOUT, after CONN\)/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('refuses a server without STARTTLS before AUTH: no credentials, no message, a permanent error that says what to do', async () => {
    const password = 'Plaintext-Passw0rd-q7';
    peer = await startSmtpPeer({ auth: { user: 'vigil', pass: password } });
    mailer = createMailer({ smtpUrl: peer.url, from, to, organization });
    const s = snapshot();
    const err = await rejection(mailer.send(s, archived(s)));
    expect(err).toBeInstanceOf(PermanentEmailError);
    expect(err.message).toContain('the server does not support STARTTLS');
    expect(err.message).toContain('after STARTTLS');
    expect(err.message).toContain('email.allowPlaintext: true');
    expect(err.message).toContain(`127.0.0.1:${peer.port}`);
    expect(inspect(err, { depth: 10 })).not.toContain(password);
    expect(peer.authAttempts).toBe(0);
    expect(peer.messages).toHaveLength(0);
  });

  it('with allowPlaintext (email.allowPlaintext) the same server gets the message, in clear text', async () => {
    peer = await startSmtpPeer({ auth: { user: 'vigil', pass: 'Plaintext-Passw0rd-q7' } });
    mailer = createMailer({ smtpUrl: peer.url, from, to, organization, allowPlaintext: true });
    const s = snapshot();
    const result = await mailer.send(s, archived(s));
    expect(result.accepted).toEqual(to);
    expect(peer.messages.map((m) => [m.user, m.secure])).toEqual([['vigil', false]]);
  });

  it('upgrades with STARTTLS even when EHLO does not advertise it (a stripped capability does not downgrade the session)', async () => {
    const { peer, mailer } = await setup({ user: 'vigil', pass: 'Hidden-Starttls-9x' }, { hideStartTls: true });
    const s = snapshot();
    await mailer.send(s, archived(s));
    expect(peer.messages.map((m) => [m.user, m.secure])).toEqual([['vigil', true]]);
  });

  it('refuses query parameters in the URL (they would override the TLS policy) without echoing it', () => {
    expect(() => createMailer({ smtpUrl: 'smtp://u:Secr3t-value@mail.example.com:587?requireTLS=false', from, to, organization })).toThrow(
      /^email\.smtp must not carry query parameters or a fragment: TLS is configured by vigil \(see email\.allowPlaintext\)$/,
    );
  });

  it('refuses a URL that is not smtp:// or smtps:// without echoing it', () => {
    expect(() => createMailer({ smtpUrl: 'http://u:Secr3t-value@mail.example.com', from, to, organization })).toThrow(/smtp:\/\/ or smtps:\/\/ URL, not http:\/\/$/);
    expect(() => createMailer({ smtpUrl: 'smtp://u:Secr3t value@[bad', from, to, organization })).toThrow(/^email\.smtp is not a valid URL/);
  });
});
