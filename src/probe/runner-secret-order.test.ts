import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { hasSecrets, registerSecret } from '../secrets.js';
import { defineProbe } from './contract.js';
import { runProbe } from './runner.js';

/**
 * Review R5: the runner skips its JSON scrub when no secret is registered (hasSecrets). A secret
 * that first appears during the run — a GitHub App installation token minted inside collect —
 * must still be scrubbed from that same run's findings. (This file runs in its own module
 * registry, so it starts with no secret registered.)
 */
const minted = 'ghs_mintedDuringCollect_0123456789';

const minting = defineProbe<unknown, unknown, string>({
  id: 'mint',
  title: 'mint',
  source: 'github',
  controls: [],
  schedule: '* * * * *',
  docs: { checks: '', permissions: '', remediation: '' },
  params: z.unknown(),
  targets: () => [],
  collect: async () => {
    await new Promise((r) => setTimeout(r, 5));
    registerSecret(minted);
    return minted;
  },
  evaluate: (echoed) => [{ resource: 'org', outcome: 'fail', message: `the API echoed ${echoed}`, details: { echoed } }],
});

const run = () =>
  runProbe({
    probe: minting,
    target: { name: 't', spec: {} },
    params: {},
    runId: 'r',
    scheduledFor: new Date('2026-12-01T00:00:00Z'),
    timeoutMs: 5_000,
    log: pino({ level: 'silent' }),
  });

describe('runner scrub with a secret registered during the run', () => {
  it('scrubs a secret that collect registered, although none was registered when the run began', async () => {
    expect(hasSecrets()).toBe(false);
    const { result } = await run();
    expect(hasSecrets()).toBe(true);
    expect(result.findings?.[0]?.message).toBe('the API echoed [REDACTED]');
    expect(JSON.stringify(result)).not.toContain(minted);
  });
});
