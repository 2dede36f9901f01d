import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentEmailError, sendTestMessage } from '../src/notify/email.js';

/**
 * Review R8: a hostile (or merely chatty) SMTP server that echoes the password back in its 535
 * reply. The reply is cut to 300 characters for messages; cut before the scrub, a password
 * straddling the cut survived as a prefix in the error (stderr of `vigil email test`, the email
 * queue's logs and job failure). A C1 control (U+009B, CSI to some terminals) is not printed either.
 */
const PASSWORD = 'R8-echoed-password-0123456789';
let server: Server;
let port = 0;

beforeAll(async () => {
  // A real SMTP dialogue over TCP, plaintext (allowPlaintext), AUTH PLAIN answered with the echo.
  server = createServer((socket) => {
    socket.setEncoding('latin1');
    socket.write('220 r8.test ESMTP\r\n');
    let buffer = '';
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let i = buffer.indexOf('\r\n'); i >= 0; i = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        if (/^EHLO/i.test(line)) socket.write('250-r8.test\r\n250 AUTH PLAIN\r\n');
        else if (/^AUTH PLAIN/i.test(line)) {
          const parts = Buffer.from(line.split(' ')[2] ?? '', 'base64').toString('utf8').split('\0');
          socket.write(`535 ${'x'.repeat(280)}\u009b31m ${parts[2] ?? ''} is wrong\r\n`);
        } else if (/^QUIT/i.test(line)) socket.end('221 bye\r\n');
        else socket.write('502 no\r\n');
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('an SMTP reply echoing the password', () => {
  it('never carries any part of it, nor a C1 control, into the error', async () => {
    const err = await sendTestMessage(
      { smtpUrl: `smtp://vigil:${PASSWORD}@127.0.0.1:${port}`, from: 'vigil@r8.test', to: ['sec@r8.test'], organization: 'R8', allowPlaintext: true, timeoutMs: 5_000 },
      { subject: 's', text: 't' },
      '<r8@vigil.invalid>',
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PermanentEmailError);
    const message = (err as Error).message;
    expect(message).toContain('x'.repeat(100));
    expect(message).not.toContain(PASSWORD.slice(0, 6));
    expect(message).not.toContain('\u009b');
  });
});
