import { describe, expect, it } from 'vitest';
import { LogCapture } from '../test/helpers/daemon.js';
import { createLogger, scrubbingWriter } from './log.js';
import { readSecret, REDACTED } from './secrets.js';

describe('logging keeps secrets out', () => {
  it('redacts secret paths and scrubs registered values anywhere in a line', () => {
    const secret = readSecret({ env: 'T' }, { T: 'ghp_exampleTokenValue0123456789' }) as string;
    const out = new LogCapture();
    const log = createLogger('info', out);
    log.info({ token: 'literal-token-in-field', headers: { authorization: 'Bearer abcdefgh' }, password: 'pw-field-value' }, 'request');
    log.error({ err: new Error(`auth failed for ${secret}`), url: `https://x-access-token:${secret}@github.example/org` }, 'call failed');
    log.child({ job: 1 }).warn(`message text with ${secret}`);
    const text = out.text;
    expect(out.lines).toHaveLength(3);
    for (const leaked of [secret, 'literal-token-in-field', 'abcdefgh', 'pw-field-value']) expect(text).not.toContain(leaked);
    expect(text.match(/\[REDACTED\]/g)?.length).toBeGreaterThanOrEqual(6);
  });

  it('scrubs secrets whose JSON form differs from the raw value, base64 echoes, and short secrets as whole values', () => {
    const quoted = readSecret({ env: 'Q' }, { Q: 'sm"tp\\pass\tw0rd\u0000-Lx' }) as string;
    const short = readSecret({ env: 'S' }, { S: 'r7' }) as string;
    const out = new LogCapture();
    const log = createLogger('info', out);
    log.warn({ reply: `535 bad credentials for ${quoted}` }, 'smtp refused');
    log.warn({ echoed: Buffer.from(`vigil:${quoted}`).toString('base64'), raw: Buffer.from(quoted).toString('base64url') }, 'server echoed the header');
    log.error({ err: new Error(`request body ${JSON.stringify({ pass: quoted })}`) }, 'request failed');
    log.info({ redisPassword: short, note: 'mirror r7 is up' }, 'connected');
    expect(out.lines).toHaveLength(4);
    const text = out.text;
    for (const form of [quoted, JSON.stringify(quoted).slice(1, -1), Buffer.from(quoted).toString('base64url')]) expect(text).not.toContain(form);
    // Decoding every base64 run of the output recovers no part of the secret.
    const decoded = Array.from(text.matchAll(/[A-Za-z0-9+/_-]{8,}/g), (m) => Buffer.from(m[0], 'base64').toString('latin1')).join('\n');
    expect(decoded).not.toContain('pass\tw0rd');
    expect(JSON.parse(out.lines[3]!)).toMatchObject({ redisPassword: REDACTED, note: 'mirror r7 is up' });
    // Still one JSON object per line.
    for (const line of out.lines) expect(() => JSON.parse(line)).not.toThrow();
  });

  it('the stderr writer scrubs what the CLI prints', () => {
    const secret = readSecret({ env: 'E' }, { E: 'cli-echoed-secret-"value"' }) as string;
    const out = new LogCapture();
    const write = scrubbingWriter(out);
    write(`vigil: cannot reach https://user:${encodeURIComponent(secret)}@host/ (${secret})\n`);
    expect(out.text).toBe(`vigil: cannot reach https://user:${REDACTED}@host/ (${REDACTED})`);
  });
});
