/**
 * `vigil email test`: sends one real message through the configured SMTP server — the same
 * transport and TLS rules as the daily snapshot email — so an operator knows on day one that the
 * email will arrive, rather than on the morning after the first day closes.
 */
import { randomBytes } from 'node:crypto';
import type { LoadedConfig } from '../config/load.js';
import { EXIT_CONFIG } from '../config/errors.js';
import { TransientError } from '../probe/errors.js';
import type { CliIo } from './main.js';

/** The server refused the message for good (credentials, every recipient, no STARTTLS): retrying will not help. */
export const EXIT_EMAIL_REFUSED = 1;
/** sysexits EX_TEMPFAIL: the server could not be reached, dropped the connection, or deferred the message (4xx). */
export const EXIT_EMAIL_TEMPFAIL = 75;

/** Options of {@link emailTestCommand}; tests shorten the timeout. */
export interface EmailTestOptions {
  timeoutMs?: number;
  /** Extra trusted roots (PEM) for the server certificate, as the daemon would use. Default: system roots. */
  ca?: string;
  now?: () => Date;
}

/** The test message: says what it is, who sent it and what will follow; carries no secret and no posture data. */
export function testMessage(loaded: LoadedConfig, now: Date): { subject: string; text: string; html: string } {
  const { config } = loaded;
  const email = config.email;
  const org = config.trust.organization;
  const subject = `vigil test message — ${org}`;
  const lines = [
    `This is a test message from vigil for ${org}, sent by "vigil email test" at ${now.toISOString()}.`,
    '',
    `It went through the SMTP server configured in email.smtp, with the same TLS rules as the daily snapshot email${email?.allowPlaintext ? ' (email.allowPlaintext is on: a session without TLS is allowed)' : ' (TLS required)'}.`,
    `The daily snapshot email will be sent from ${email?.from ?? '—'} to ${email?.to.join(', ') ?? '—'} after each day closes at ${config.dayClose.at} (${config.timezone}).`,
    '',
    'No action is needed.',
  ];
  const text = `${lines.join('\n')}\n`;
  const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  const html =
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">' +
    `<title>${esc(subject)}</title></head><body style="margin:0;padding:16px;font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:14px;color:#24292f;">` +
    lines.filter((l) => l !== '').map((l) => `<p style="margin:0 0 8px 0;">${esc(l)}</p>`).join('') +
    '</body></html>\n';
  return { subject, text, html };
}

/**
 * Sends the test message. Exit 0 when the server accepted it (the accepted recipients are
 * printed), {@link EXIT_EMAIL_REFUSED} when it refused for good, {@link EXIT_EMAIL_TEMPFAIL} when
 * it could not be reached or deferred, {@link EXIT_CONFIG} when no `email:` section is configured.
 * The reason printed is the SMTP code and reply, never the URL or the password.
 */
export async function emailTestCommand(loaded: LoadedConfig, io: CliIo, opts: EmailTestOptions = {}): Promise<number> {
  const email = loaded.config.email;
  const smtpUrl = loaded.secrets.smtpUrl;
  if (email === undefined || smtpUrl === undefined) {
    io.err(`${loaded.file}: email: no email section is configured: add email.smtp, email.from and email.to (see config/vigil.example.yaml)\n`);
    return EXIT_CONFIG;
  }
  const { sendTestMessage } = await import('../notify/email.js');
  const now = (opts.now ?? (() => new Date()))();
  const messageId = `<vigil-test-${now.getTime()}-${randomBytes(6).toString('hex')}@vigil.invalid>`;
  try {
    const result = await sendTestMessage(
      {
        smtpUrl,
        from: email.from,
        to: email.to,
        organization: loaded.config.trust.organization,
        allowPlaintext: email.allowPlaintext,
        ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
        ...(opts.ca === undefined ? {} : { ca: opts.ca }),
      },
      testMessage(loaded, now),
      messageId,
    );
    io.out(`test message accepted for ${result.accepted.join(', ')}${result.rejected.length > 0 ? `; refused for ${result.rejected.join(', ')}` : ''} (Message-ID ${result.messageId})\n`);
    return 0;
  } catch (err) {
    // The classified message is the daemon's; here nothing retries by itself.
    const message = (err instanceof Error ? err.message : String(err)).replace(/; it will be retried$/, '; try again later');
    io.err(`vigil: ${message}\n`);
    return err instanceof TransientError ? EXIT_EMAIL_TEMPFAIL : EXIT_EMAIL_REFUSED;
  }
}
