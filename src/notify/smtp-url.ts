// Kept apart from email.ts so that loading a config does not load nodemailer and the renderer.

/**
 * What is wrong with an SMTP URL, as the end of a sentence starting "email.smtp …", or undefined
 * when it is usable. Never quotes the URL: it carries the password. Checked at config load too.
 */
export function smtpUrlProblem(smtpUrl: string): string | undefined {
  let url: URL;
  try {
    url = new URL(smtpUrl);
  } catch {
    return 'is not a valid URL: expected smtp://user:password@host:port or smtps://…';
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') return `must be an smtp:// or smtps:// URL, not ${url.protocol.slice(0, 16)}//`;
  // nodemailer lets URL query parameters override any option (?requireTLS=false, ?tls.rejectUnauthorized=false):
  // the TLS policy is vigil's, so the URL is taken apart in createMailer and a query string is refused.
  if (url.search !== '' || url.hash !== '') return 'must not carry query parameters or a fragment: TLS is configured by vigil (see email.allowPlaintext)';
  if (url.hostname === '') return 'names no host: expected smtp://user:password@host:port or smtps://…';
  return undefined;
}
