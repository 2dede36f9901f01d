import { describe, expect, it } from 'vitest';
import { registerSecret } from '../../src/secrets.js';
import { firstLines } from './run-tool.js';

/** Review R8: a backup tool's output echoing its repository password across the 300-character cut. */
const password = 'R8-repo-password-0123456789';

describe('firstLines', () => {
  it('scrubs before cutting, so no prefix of an echoed secret survives', () => {
    registerSecret(password);
    const line = firstLines(`fatal: ${'x'.repeat(280)} ${password} rejected\nsecond line`);
    expect(line).toContain('x'.repeat(100));
    expect(line.length).toBeLessThanOrEqual(300);
    expect(line).not.toContain(password.slice(0, 6));
  });
});
