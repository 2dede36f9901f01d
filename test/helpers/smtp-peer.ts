/**
 * A real SMTP server on loopback for email tests (smtp-server, the Nodemailer project's own
 * server), which parses every message it accepts with mailparser's `simpleParser`.
 *
 * ```ts
 * const peer = await startSmtpPeer({ auth: { user: 'vigil', pass: 's3cret-pass' } });
 * // createMailer({ smtpUrl: peer.url, ... })
 * peer.rejectNext(1, 451, 'Try again later');   // next message deferred
 * await peer.stop();  …  await peer.start();      // an outage, then recovery on the same port
 * await peer.close();
 * ```
 *
 * Plain SMTP by default (STARTTLS not offered), so AUTH runs in clear text: loopback only. With
 * `tls` (a key and certificate, e.g. from `createTestPki()`), STARTTLS is offered — or accepted
 * without being advertised, with `hideStartTls`, as after a downgrade that strips it from EHLO.
 */
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerAddress, type SMTPServerOptions } from 'smtp-server';

/** How the test SMTP server behaves. */
export interface SmtpPeerOptions {
  /** Require AUTH (PLAIN or LOGIN) with exactly these credentials. Default: no AUTH offered, anyone may send. */
  auth?: { user: string; pass: string };
  /** Default 127.0.0.1. */
  host?: string;
  /** Offer STARTTLS with this key and certificate chain (PEM). Default: STARTTLS disabled. */
  tls?: { key: string; cert: string };
  /** With `tls`: accept STARTTLS but leave it out of the EHLO reply. */
  hideStartTls?: boolean;
  /**
   * Called with each accepted message after it is recorded and before the 250 reply is sent (e.g.
   * to SIGKILL the sending process between the server's acceptance and the client learning of it).
   */
  onAccept?: (message: ReceivedMessage) => void | Promise<void>;
}

/** One message the server accepted. */
export interface ReceivedMessage {
  /** SMTP envelope: MAIL FROM and RCPT TO addresses. */
  mailFrom: string | null;
  rcptTo: string[];
  /** The AUTH user of the session, when there was one. */
  user: string | undefined;
  /** The message exactly as received after DATA. */
  raw: Buffer;
  /** Whether the session was upgraded to TLS (STARTTLS) before the message. */
  secure: boolean;
  parsed: ParsedMail;
}

/** Where a scheduled rejection applies. */
export type RejectStage = 'data' | 'rcpt';

/** A running SMTP server. */
export interface SmtpPeer {
  host: string;
  port: number;
  /** `smtp://user:pass@127.0.0.1:port` with auth (both URL-encoded), else `smtp://127.0.0.1:port`. */
  url: string;
  /** Every accepted message, in order; survives stop()/start(). */
  readonly messages: ReceivedMessage[];
  /** Failed AUTH attempts, for asserting that a client tried. */
  readonly authFailures: number;
  /** Every AUTH attempt, failed or not, for asserting that a client sent no credentials. */
  readonly authAttempts: number;
  /**
   * Rejects the next `n` messages with `code` and `message` — after DATA (`'data'`, default: the
   * whole message refused) or at RCPT TO (`'rcpt'`: the next `n` recipients refused).
   */
  rejectNext(n: number, code: number, message: string, stage?: RejectStage): void;
  /** Stops listening and drops open sessions: clients now get ECONNREFUSED. */
  stop(): Promise<void>;
  /** Listens again on the same port. No-op when running. */
  start(): Promise<void>;
  /** Stops for good. */
  close(): Promise<void>;
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

/** Starts an SMTP server on a free loopback port. */
export async function startSmtpPeer(opts: SmtpPeerOptions = {}): Promise<SmtpPeer> {
  const host = opts.host ?? '127.0.0.1';
  const messages: ReceivedMessage[] = [];
  const pending: Record<RejectStage, Array<{ code: number; message: string }>> = { data: [], rcpt: [] };
  let authFailures = 0;
  let authAttempts = 0;
  let server: SMTPServer | undefined;
  let port = 0;

  const options: SMTPServerOptions = {
    secure: false,
    disabledCommands: [...(opts.tls === undefined ? ['STARTTLS'] : []), ...(opts.auth === undefined ? ['AUTH'] : [])],
    ...(opts.tls === undefined ? {} : { key: opts.tls.key, cert: opts.tls.cert, hideSTARTTLS: opts.hideStartTls ?? false }),
    authOptional: opts.auth === undefined,
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: true,
    logger: false,
    // A stopped peer drops its sessions at once, like a crashed server would.
    closeTimeout: 100,
    size: 25 * 1024 * 1024,
    onAuth(auth, _session, callback) {
      authAttempts++;
      if (opts.auth !== undefined && auth.username === opts.auth.user && auth.password === opts.auth.pass) {
        callback(null, { user: auth.username });
        return;
      }
      authFailures++;
      callback(smtpError(535, '5.7.8 Authentication credentials invalid'));
    },
    onRcptTo(_address: SMTPServerAddress, _session, callback) {
      const reject = pending.rcpt.shift();
      callback(reject === undefined ? null : smtpError(reject.code, reject.message));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (err) => callback(err));
      stream.on('end', () => {
        const reject = pending.data.shift();
        if (reject !== undefined) {
          callback(smtpError(reject.code, reject.message));
          return;
        }
        const raw = Buffer.concat(chunks);
        simpleParser(raw).then(
          (parsed) => {
            const message: ReceivedMessage = {
              mailFrom: session.envelope.mailFrom === false ? null : session.envelope.mailFrom.address,
              rcptTo: session.envelope.rcptTo.map((r) => r.address),
              user: typeof session.user === 'string' ? session.user : undefined,
              raw,
              secure: session.secure === true,
              parsed,
            };
            messages.push(message);
            Promise.resolve(opts.onAccept?.(message)).then(
              () => callback(null, 'Queued'),
              () => callback(null, 'Queued'),
            );
          },
          (err: unknown) => callback(smtpError(554, `test peer could not parse the message: ${String(err)}`)),
        );
      });
    },
  };

  async function start(): Promise<void> {
    if (server !== undefined) return;
    const s = new SMTPServer(options);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, host, () => {
        s.off('error', reject);
        resolve();
      });
    });
    // Later errors (a client vanishing mid-session) are the client's business in these tests.
    s.on('error', () => {});
    port = (s.server.address() as AddressInfo).port;
    server = s;
  }

  async function stop(): Promise<void> {
    const s = server;
    if (s === undefined) return;
    server = undefined;
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  await start();
  const auth = opts.auth === undefined ? '' : `${encodeURIComponent(opts.auth.user)}:${encodeURIComponent(opts.auth.pass)}@`;
  return {
    host,
    port,
    url: `smtp://${auth}${host}:${port}`,
    messages,
    get authFailures() {
      return authFailures;
    },
    get authAttempts() {
      return authAttempts;
    },
    rejectNext(n, code, message, stage = 'data') {
      for (let i = 0; i < n; i++) pending[stage].push({ code, message });
    },
    stop,
    start,
    close: stop,
  };
}
