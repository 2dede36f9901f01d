import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { z } from 'zod';
import { registerSecret } from '../secrets.js';
import { defineProbe } from './contract.js';
import { runProbe } from './runner.js';

const secret = 'ghp_runnerTestSecret"with\\quote';

/** A probe whose source echoes the credential back: in a message, a resource name and details. */
const echoing = defineProbe<unknown, unknown, string>({
  id: 'echo',
  title: 'echo',
  source: 'tls',
  controls: [],
  schedule: '* * * * *',
  docs: { checks: '', permissions: '', remediation: '' },
  params: z.unknown(),
  targets: () => [],
  collect: async () => secret,
  evaluate: (echoed) => [
    { resource: `repo-${echoed}`, outcome: 'fail', message: `server said: token ${echoed} rejected`, details: { echoed, b64: Buffer.from(echoed).toString('base64') } },
  ],
});

describe('runProbe', () => {
  it('scrubs registered secrets from findings (message, resource, details, encoded forms) before they are stored', async () => {
    registerSecret(secret);
    const { result } = await runProbe({
      probe: echoing,
      target: { name: 't', spec: {} },
      params: {},
      runId: 'r1',
      scheduledFor: new Date('2026-12-01T00:00:00Z'),
      timeoutMs: 5_000,
      log: pino({ level: 'silent' }),
    });
    const text = JSON.stringify(result);
    expect(result.findings).toHaveLength(1);
    expect(result.findings?.[0]?.outcome).toBe('fail');
    expect(text).not.toContain('ghp_runnerTestSecret');
    expect(text).not.toContain(Buffer.from(secret).toString('base64'));
    expect(result.findings?.[0]?.message).toBe('server said: token [REDACTED] rejected');
  });
});
