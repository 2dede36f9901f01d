/**
 * The `aws:` config section: its exact shape, refusals that say what to write instead, the
 * external id as a secret reference (relative files anchored at the config file), and the
 * default catalog's AWS controls loading against the probe registry and framework lists.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { probes } from '../probes/index.js';
import { loadConfigText } from '../src/config/load.js';
import { AwsTarget, VigilConfig } from '../src/config/schema.js';

const issues = (value: unknown) => {
  const r = VigilConfig.safeParse(value);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('aws targets', () => {
  it("the issue's example parses, with IAM-only defaults", () => {
    const t = AwsTarget.parse({
      name: 'prod',
      regions: ['us-east-1', 'eu-west-1'],
      roleArn: 'arn:aws:iam::222222222222:role/vigil-readonly',
      externalId: { env: 'VIGIL_AWS_EXTERNAL_ID' },
      endpoints: { iam: 'https://iam.amazonaws.com', sts: 'https://sts.us-east-1.amazonaws.com', config: 'https://vpce-1.config.eu-west-1.vpce.amazonaws.com', backup: 'https://backup.eu-west-1.amazonaws.com' },
    });
    expect(t.regions).toEqual(['us-east-1', 'eu-west-1']);
    expect(AwsTarget.parse({ name: 'dev', regions: ['us-east-1'] }).endpoints).toEqual({});
    expect(VigilConfig.parse({}).aws).toEqual([]);
  });

  it('refuses an external id written as a value, an external id without a role, bad regions and ARNs, duplicate names', () => {
    expect(issues({ aws: [{ name: 'p', regions: ['us-east-1'], roleArn: 'arn:aws:iam::222222222222:role/r', externalId: 'plain-text' }] })).toEqual([
      'aws.0.externalId: secrets are never values in YAML: write { env: VAR_NAME } or { file: /path/to/secret }',
    ]);
    expect(issues({ aws: [{ name: 'p', regions: ['us-east-1'], externalId: { env: 'X' } }] })).toEqual(['aws.0.externalId: externalId needs a roleArn to assume']);
    expect(issues({ aws: [{ name: 'p', regions: ['useast1'] }] })).toEqual(['aws.0.regions.0: expected an AWS region such as us-east-1']);
    expect(issues({ aws: [{ name: 'p', regions: [] }] })).toEqual(['aws.0.regions: list at least one region']);
    expect(issues({ aws: [{ name: 'p', regions: ['us-east-1'], roleArn: 'vigil-readonly' }] })[0]).toContain('expected a role ARN');
    expect(
      issues({
        aws: [
          { name: 'p', regions: ['us-east-1'] },
          { name: 'p', regions: ['eu-west-1'] },
        ],
      }),
    ).toEqual(['aws.1.name: duplicate target name "p"']);
    expect(issues({ aws: [{ name: 'p', regions: ['us-east-1'], accessKeyId: 'AKIA…' }] })[0]).toContain('Unrecognized key');
  });

  it('endpoints: https anywhere, http only to this machine (the session token travels in a header)', () => {
    expect(issues({ aws: [{ name: 'p', regions: ['us-east-1'], endpoints: { iam: 'http://127.0.0.1:4566' } }] })).toEqual([]);
    expect(issues({ aws: [{ name: 'p', regions: ['us-east-1'], endpoints: { sts: 'http://sts.internal:80' } }] })).toEqual([
      'aws.0.endpoints.sts: expected an https:// URL (http:// only to 127.0.0.1, [::1] or localhost)',
    ]);
  });
});

describe('loading a config with aws targets', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vigil-aws-config-'));
  const file = path.join(dir, 'vigil.yaml');

  it('a relative externalId file is read relative to the config file; a missing env var is a load problem', () => {
    writeFileSync(path.join(dir, 'external-id'), 'ext-from-file-1234\n', { mode: 0o600 });
    const text = `aws:\n  - name: prod\n    regions: [us-east-1]\n    roleArn: arn:aws:iam::222222222222:role/vigil-readonly\n    externalId: { file: external-id }\n`;
    const loaded = loadConfigText(text, file, probes, {});
    expect(loaded.config.aws[0]?.externalId).toEqual({ file: path.join(dir, 'external-id') });
    // The AWS probes have the target; the default catalog's AWS controls load against the registry and framework lists.
    expect(loaded.catalog.controls.find((c) => c.id === 'mfa-human-accounts')?.probes).toEqual(['github-org-2fa', 'aws-root-mfa', 'aws-iam-user-mfa']);
    expect(loaded.catalog.controls.find((c) => c.id === 'access-key-rotation')?.frameworks).toEqual({ soc2: ['CC6.1', 'CC6.2'], iso27001: ['A.5.17', 'A.8.5'] });
    expect(loaded.catalog.controls.find((c) => c.id === 'configuration-monitoring')?.probes).toEqual(['aws-config-recording', 'aws-config-rules-compliant']);

    const missing = `aws:\n  - name: prod\n    regions: [us-east-1]\n    roleArn: arn:aws:iam::222222222222:role/vigil-readonly\n    externalId: { env: VIGIL_AWS_EXTERNAL_ID }\n`;
    expect(() => loadConfigText(missing, file, probes, {})).toThrow(/aws\[0\]\.externalId: environment variable VIGIL_AWS_EXTERNAL_ID is not set/);
  });
});
