import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../config/load.js';
import { probes as registry } from '../../probes/index.js';
import { configuredUnits, splitByConfiguration } from './units.js';

const githubOnly = `
github:
  - name: acme
    org: acme
    auth: { token: { env: VIGIL_TEST_GH_TOKEN } }
`;
const env = { VIGIL_TEST_GH_TOKEN: 'ghp_unitsTestToken000000000000000000' };

function split(text: string) {
  const loaded = loadConfigText(text, '/tmp/vigil-units-test.yaml', registry, env);
  return splitByConfiguration(loaded, configuredUnits(loaded));
}

describe('splitByConfiguration', () => {
  it('judges a control on the probes whose source is configured: GitHub-only MFA leaves the AWS probes out', () => {
    const { measured, notConfigured } = split(githubOnly);
    const mfa = measured.find((c) => c.id === 'mfa-human-accounts');
    expect(mfa?.probes).toEqual(['github-org-2fa']);
    expect(mfa?.notConfiguredProbes).toEqual(['aws-root-mfa', 'aws-iam-user-mfa']);
    expect(notConfigured.map((c) => c.id)).toContain('tls-certificates');
    expect(notConfigured.map((c) => c.id)).toContain('access-key-rotation');
  });

  it('keeps a probe switched off with enabled: false, so the control stays unknown rather than green without it', () => {
    const { measured } = split(`${githubOnly}probes:\n  aws-root-mfa: { enabled: false }\n`);
    const mfa = measured.find((c) => c.id === 'mfa-human-accounts');
    expect(mfa?.probes).toEqual(['github-org-2fa', 'aws-root-mfa']);
    expect(mfa?.notConfiguredProbes).toEqual(['aws-iam-user-mfa']);
  });
});
