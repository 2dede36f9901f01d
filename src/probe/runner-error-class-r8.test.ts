import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { registerSecret } from '../secrets.js';
import { defineProbe } from './contract.js';
import { runProbe } from './runner.js';

/**
 * Review R8: a run error's class goes into the result, the ledger (`Class: message`), the snapshot
 * and the email like its message. An SDK names its errors after the peer's error code, so a
 * hostile peer controls `name`: it is scrubbed like the message.
 */
const secret = 'tok_R8_errorNameEcho_0123456789';

const echoing = defineProbe<unknown, unknown, string>({
  id: 'echo-name',
  title: 'echo-name',
  source: 'github',
  controls: [],
  schedule: '* * * * *',
  docs: { checks: '', permissions: '', remediation: '' },
  params: z.unknown(),
  targets: () => [],
  collect: async () => {
    throw Object.assign(new Error('the peer refused'), { name: `Denied_${secret}` });
  },
  evaluate: () => [],
});

describe('runner error class', () => {
  it('is scrubbed of registered secrets', async () => {
    registerSecret(secret);
    const { result } = await runProbe({
      probe: echoing,
      target: { name: 't', spec: {} },
      params: {},
      runId: 'r',
      scheduledFor: new Date('2026-12-01T00:00:00Z'),
      timeoutMs: 5_000,
      log: pino({ level: 'silent' }),
    });
    expect(result.error?.class).toBe('Denied_[REDACTED]');
    expect(JSON.stringify(result)).not.toContain(secret);
  });
});
