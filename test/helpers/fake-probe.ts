import { z } from 'zod';
import { defineProbe, type Finding } from '../../src/probe/contract.js';
import { TransientError } from '../../src/probe/errors.js';

/**
 * A probe for pipeline tests whose collect behaviour is scripted per target name. It exercises the
 * real runner, queues and recorder; only the observed system is replaced.
 */
export const fakeBehaviour = new Map<string, () => Promise<Finding[]>>();

export const fakeProbe = defineProbe({
  id: 'fake-check',
  title: 'Fake check for pipeline tests',
  source: 'tls',
  controls: ['fake-control'],
  schedule: '*/5 * * * *',
  docs: { checks: 'nothing', permissions: 'none', remediation: 'none' },
  params: z.strictObject({ level: z.number().int().min(1).max(3).default(1) }),
  targets: () => [{ name: 'alpha', spec: {} }, { name: 'beta', spec: {} }],
  async collect(ctx) {
    const behaviour = fakeBehaviour.get(ctx.target.name);
    if (!behaviour) throw new TransientError('no behaviour scripted');
    return behaviour();
  },
  evaluate: (findings: Finding[]) => findings,
});
