import { describe, expect, it } from 'vitest';
import { LogCapture } from '../test/helpers/daemon.js';
import { createLogger } from './log.js';
import { readSecret } from './secrets.js';

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
});
