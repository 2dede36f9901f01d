/**
 * The security officer's daily email: the snapshot rendered as HTML with a plain-text
 * alternative, the archived JSON attached byte for byte, over SMTP with nodemailer.
 *
 * SMTP failures are classified once, here: what may go through on a later attempt is a
 * {@link TransientError} (the email job retries it with backoff), what the server refused for
 * good is a {@link PermanentEmailError} (logged and counted, not retried). Error messages are
 * built from the SMTP code and reply only, never from the URL, and pass through `scrub`.
 *
 * TLS is required: `smtps://` is TLS from the first byte, and over `smtp://` the session must
 * upgrade with STARTTLS before AUTH or MAIL (nodemailer `requireTLS`), whether or not the server
 * advertises it — so a server without STARTTLS, or a man in the middle who strips it from the
 * EHLO reply, never receives the password or the snapshot in clear text. Only
 * `email.allowPlaintext: true` allows a plaintext session (STARTTLS is still used when offered).
 */
import { createTransport, type NodemailerError, type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';
import { renderHtml, renderText, subjectLine } from '../posture/render.js';
import type { Snapshot } from '../posture/snapshot-types.js';
import { TransientError } from '../probe/errors.js';
import { registerSecret, scrub } from '../secrets.js';
import { smtpUrlProblem } from './smtp-url.js';
import { snapshotAttachment } from './email-attachment.js';

export { smtpUrlProblem };

/** Options of {@link createMailer}. */
export interface MailerOptions {
  /** `smtp://user:password@host:587` or `smtps://…:465`. A secret: never logged, never in an error message. */
  smtpUrl: string;
  /** Sender address, e.g. `vigil <vigil@example.com>`. */
  from: string;
  /** Recipients; one message goes to all of them. */
  to: string[];
  /** Organisation named in the email's heading. */
  organization: string;
  /** Connection, greeting and socket-inactivity timeout in ms. Default 30 000. */
  timeoutMs?: number;
  /**
   * Allow a session without TLS when an `smtp://` server offers no STARTTLS (`email.allowPlaintext`).
   * Default false: such a session is refused before AUTH, as a {@link PermanentEmailError}.
   */
  allowPlaintext?: boolean;
  /** Extra trusted roots (PEM) for the server's certificate, besides the system's. Default: system roots only. */
  ca?: string;
}

/** What the SMTP server accepted. */
export interface SendResult {
  /** The Message-ID sent, see {@link snapshotMessageId}. */
  messageId: string;
  accepted: string[];
  /** Recipients refused while others were accepted (when every one is refused, send throws). */
  rejected: string[];
}

/** Sends daily snapshot emails. */
export interface Mailer {
  /**
   * Sends the day's email. `archivedJson` is the archive file's content, attached unchanged.
   * Throws {@link TransientError} (retry later) or {@link PermanentEmailError} (do not retry).
   */
  send(snapshot: Snapshot, archivedJson: string): Promise<SendResult>;
  /** Closes the transport. */
  close(): void;
}

/** The SMTP server refused the message for good (5xx, every recipient refused, bad credentials). Not retried. */
export class PermanentEmailError extends Error {
  override name = 'PermanentEmailError';
  /** The SMTP reply code, when the server gave one. */
  readonly responseCode: number | undefined;
  constructor(message: string, options?: { cause?: unknown; responseCode?: number }) {
    super(message, { cause: options?.cause });
    this.responseCode = options?.responseCode;
  }
}

/**
 * The Message-ID of a day's email: the same snapshot always gets the same id, so a duplicate
 * sent by a second replica or a retry can be recognised (and deduplicated by mail systems).
 */
export function snapshotMessageId(snapshot: Pick<Snapshot, 'date' | 'hash'>): string {
  return `<vigil-${snapshot.date}-${snapshot.hash.slice(0, 16)}@vigil.invalid>`;
}

/** The attachment's file name. */
export function snapshotAttachmentName(date: string): string {
  return `vigil-snapshot-${date}.json`;
}

/** Connection-level failures (nodemailer codes and the system codes underneath them): the server may be back later. */
const transientCodes = new Set([
  'ECONNECTION',
  'ESOCKET',
  'ETIMEDOUT',
  'EDNS',
  'ETLS',
  'EPROXY',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
]);

/** The server's reply on one line, bounded. */
function reply(text: string): string {
  // Scrubbed before the cut (a secret echoed across it would survive as a prefix), and C1 controls
  // too (U+009B is a CSI to some terminals: `vigil email test` prints this reply) (R8).
  // eslint-disable-next-line no-control-regex
  return scrub(text).replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim().slice(0, 300);
}

/**
 * Turns whatever nodemailer threw into a {@link TransientError} or a {@link PermanentEmailError}.
 * `server` is `host:port` (no credentials), `date` the snapshot's day.
 */
export function classifySmtpError(err: unknown, server: string, date: string, what = `the ${date} snapshot email`): TransientError | PermanentEmailError {
  if (err instanceof TransientError || err instanceof PermanentEmailError) return err;
  const e = (err ?? {}) as NodemailerError;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const originalCode = typeof e.originalCode === 'string' ? e.originalCode : undefined;
  const responseCode = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const facts = [
    code,
    originalCode,
    typeof e.timeoutType === 'string' ? e.timeoutType : undefined,
    typeof e.command === 'string' ? `after ${e.command.split(' ')[0]}` : undefined,
    typeof e.response === 'string' ? `"${reply(e.response)}"` : undefined,
  ].filter((f): f is string => f !== undefined);
  const detail = scrub(facts.length > 0 ? facts.join(', ') : 'no error code');
  const transient = (why: string) => new TransientError(scrub(`Could not deliver ${what} via ${server}: ${why} (${detail}); it will be retried`), { cause: err });
  const permanent = (why: string, next: string) =>
    new PermanentEmailError(scrub(`${what.charAt(0).toUpperCase()}${what.slice(1)} cannot be delivered via ${server}: ${why} (${detail}); ${next}`), {
      cause: err,
      ...(responseCode === undefined ? {} : { responseCode }),
    });

  // requireTLS sends STARTTLS even when EHLO did not offer it; a server without it answers 5xx.
  if (code === 'ETLS' && e.command === 'STARTTLS' && responseCode !== undefined && responseCode >= 500) {
    return permanent(
      'the server does not support STARTTLS, and vigil sends neither the SMTP password nor the snapshot over a connection without TLS',
      'use smtps:// (port 465) or enable STARTTLS on the server; set email.allowPlaintext: true only if the network path to the server is trusted',
    );
  }
  if (responseCode !== undefined) {
    if (responseCode >= 500 && responseCode <= 599) {
      if (code === 'EAUTH') return permanent('the server refused the credentials', 'check the user and password in email.smtp; retrying will not help');
      if (code === 'EENVELOPE' && e.command === 'RCPT TO')
        return permanent('the server refused every recipient', 'check the addresses in email.to; retrying will not help');
      return permanent('the server rejected the message', 'check email.from, email.to and the server policy; retrying will not help');
    }
    // 4xx is a deferral by definition (RFC 5321 §4.2.1); a 2xx/3xx where another reply was due is a confused session.
    return transient(responseCode >= 400 ? 'the server deferred it' : 'the server answered out of sequence');
  }
  if ((code !== undefined && transientCodes.has(code)) || (originalCode !== undefined && transientCodes.has(originalCode))) {
    return transient('the server could not be reached or dropped the connection');
  }
  if (code === 'EAUTH' || code === 'ENOAUTH') return permanent('no usable credentials', 'check the user and password in email.smtp; retrying will not help');
  return permanent('the message could not be handed over', 'check the email settings; retrying will not help');
}

/** `decodeURIComponent` that keeps a malformed escape as written rather than throwing (and echoing it). */
function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * The SMTP transport of `opts` with vigil's TLS rules (see the module comment), and `host:port`
 * for messages. Shared by the daily mailer and {@link sendTestMessage}.
 */
function smtpTransport(opts: MailerOptions): { transport: Transporter<SMTPTransport.SentMessageInfo>; server: string } {
  const problem = smtpUrlProblem(opts.smtpUrl);
  if (problem !== undefined) throw new Error(`email.smtp ${problem}`);
  const url = new URL(opts.smtpUrl);
  const user = decodeComponent(url.username);
  const pass = decodeComponent(url.password);
  // The whole URL is registered when read from config; the password alone must be scrubbed too.
  if (url.password !== '') {
    registerSecret(url.password);
    registerSecret(pass);
  }
  const secure = url.protocol === 'smtps:';
  const port = url.port === '' ? (secure ? 465 : 25) : Number(url.port);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const server = `${url.hostname}:${port}`;
  const timeout = opts.timeoutMs ?? 30_000;
  const options: SMTPTransport.Options = {
    host,
    port,
    secure,
    ...(user !== '' || pass !== '' ? { auth: { user, pass } } : {}),
    // Over smtp://, STARTTLS before anything else, offered or not, unless plaintext is explicitly allowed.
    requireTLS: !secure && opts.allowPlaintext !== true,
    tls: { minVersion: 'TLSv1.2', ...(opts.ca === undefined ? {} : { ca: opts.ca }) },
    pool: false,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    dnsTimeout: timeout,
    // Nothing in a snapshot email is fetched from disk or the network.
    disableFileAccess: true,
    disableUrlAccess: true,
  };
  return { transport: createTransport(options), server };
}

/** A message that is not a day's snapshot (`vigil email test`). */
export interface TestMessage {
  subject: string;
  text: string;
  html?: string;
}

/**
 * Sends one message through the configured SMTP server, with the same transport and TLS rules as
 * the daily email, to `opts.to`. Throws {@link TransientError} or {@link PermanentEmailError}, as
 * {@link Mailer.send} does, with the server's reason.
 */
export async function sendTestMessage(opts: MailerOptions, message: TestMessage, messageId: string): Promise<SendResult> {
  const { transport, server } = smtpTransport(opts);
  const what = 'the test message';
  try {
    let info: { accepted: unknown[]; rejected: unknown[] };
    try {
      info = await transport.sendMail({
        from: opts.from,
        to: opts.to,
        subject: message.subject,
        text: message.text,
        ...(message.html === undefined ? {} : { html: message.html }),
        messageId,
        headers: { 'Auto-Submitted': 'auto-generated', 'X-Vigil-Test': 'yes' },
      });
    } catch (err) {
      throw classifySmtpError(err, server, '', what);
    }
    const accepted = addressesOf(info.accepted);
    if (accepted.length === 0) throw new PermanentEmailError(scrub(`The test message cannot be delivered via ${server}: the server accepted no recipient; check the addresses in email.to`));
    return { messageId, accepted, rejected: addressesOf(info.rejected) };
  } finally {
    transport.close();
  }
}

function addressesOf(list: unknown[]): string[] {
  return list.map((a) => (typeof a === 'string' ? a : String((a as { address?: unknown }).address)));
}

/**
 * Creates the daily-email sender. One connection per send (no pool): a daily message does not
 * justify a connection held open all day, and every attempt starts from a clean session.
 */
export function createMailer(opts: MailerOptions): Mailer {
  const { transport, server } = smtpTransport(opts);

  return {
    async send(snapshot, archivedJson) {
      let archived: unknown;
      try {
        archived = JSON.parse(archivedJson);
      } catch {
        throw new Error(`the archived JSON of ${snapshot.date} does not parse: refusing to attach it`);
      }
      if ((archived as { hash?: unknown } | null)?.hash !== snapshot.hash) {
        throw new Error(`the archived JSON of ${snapshot.date} is not the snapshot being mailed (hash differs): refusing to send a body and attachment that disagree`);
      }
      const messageId = snapshotMessageId(snapshot);
      let info: { messageId: string; accepted: unknown[]; rejected: unknown[] };
      try {
        info = await transport.sendMail({
          from: opts.from,
          to: opts.to,
          subject: subjectLine(snapshot),
          text: renderText(snapshot, { organization: opts.organization }),
          html: renderHtml(snapshot, { organization: opts.organization }),
          messageId,
          headers: {
            'X-Vigil-Snapshot-Date': snapshot.date,
            'X-Vigil-Snapshot-Hash': snapshot.hash,
            // RFC 3834: machine-generated, so out-of-office replies stay away.
            'Auto-Submitted': 'auto-generated',
          },
          // The archived bytes, gzip-compressed when the day file is large (a big org's population).
          attachments: [snapshotAttachment(snapshot.date, archivedJson)],
        });
      } catch (err) {
        throw classifySmtpError(err, server, snapshot.date);
      }
      const addresses = (list: unknown[]) => list.map((a) => (typeof a === 'string' ? a : String((a as { address?: unknown }).address)));
      const accepted = addresses(info.accepted);
      if (accepted.length === 0) {
        throw new PermanentEmailError(scrub(`The ${snapshot.date} snapshot email cannot be delivered via ${server}: the server accepted no recipient; check the addresses in email.to`));
      }
      return { messageId, accepted, rejected: addresses(info.rejected) };
    },
    close() {
      transport.close();
    },
  };
}
