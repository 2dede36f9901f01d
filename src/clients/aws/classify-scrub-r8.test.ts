import { describe, expect, it } from 'vitest';
import { registerSecret } from '../../secrets.js';
import { classifyAwsError } from './client.js';

/**
 * Review R8: AWS's error message is cut to 400 characters. A secret vigil sent (an external id)
 * echoed back across that cut must not survive as a prefix the later scrub no longer recognises.
 */
const externalId = 'ext-R8-echoed-0123456789abcdef';

describe('classifyAwsError', () => {
  it('scrubs the peer message before cutting it', () => {
    registerSecret(externalId);
    for (const code of ['AccessDenied', 'ValidationError', 'InvalidClientTokenId']) {
      const err = Object.assign(new Error(`${'x'.repeat(390)}${externalId} was not accepted`), { name: code, $metadata: { httpStatusCode: 400 } });
      const message = classifyAwsError(err, 'sts:AssumeRole').message;
      expect(message).toContain('x'.repeat(50));
      expect(message).not.toContain(externalId.slice(0, 8));
    }
  });
});
