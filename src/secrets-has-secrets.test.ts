import { describe, expect, it } from 'vitest';
import { forgetSecret, hasSecrets, REDACTED, registerSecret, scrub } from './secrets.js';

// A fresh module per test file (vitest isolates files): no secret is registered at the start.
describe('hasSecrets (the runner skips its JSON scrub of findings when it is false)', () => {
  it('is false until a secret is registered, and false again once every secret is forgotten', () => {
    expect(hasSecrets()).toBe(false);
    expect(scrub('"nothing to hide"')).toBe('"nothing to hide"');
    registerSecret('s3cr3t-value-123');
    registerSecret('ab');
    expect(hasSecrets()).toBe(true);
    expect(scrub('x s3cr3t-value-123 "ab"')).toBe(`x ${REDACTED} "${REDACTED}"`);
    forgetSecret('s3cr3t-value-123');
    expect(hasSecrets()).toBe(true);
    forgetSecret('ab');
    expect(hasSecrets()).toBe(false);
    registerSecret('');
    expect(hasSecrets()).toBe(false);
  });
});
