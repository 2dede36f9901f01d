import { z } from 'zod';
import { deniedFinding, type AccountObservation, type Readable } from '../../src/clients/aws/denied.js';
import type { AwsTarget } from '../../src/config/schema.js';
import { defineProbe, type Finding } from '../../src/probe/contract.js';

/** The probe's params, validated at config load time. */
export const Params = z.strictObject({
  /** A virtual (authenticator-app) MFA device on root fails: root needs a hardware key or passkey. Default true. */
  requireHardware: z.boolean().default(true),
});
export type Params = z.output<typeof Params>;

/** What GetAccountSummary says about root (AWS's 0/1 flags; undefined when AWS left the key out). */
export interface RootSummary {
  mfaEnabled: boolean;
  accessKeysPresent: boolean | undefined;
  passwordPresent: boolean | undefined;
  signingCertificatesPresent: boolean | undefined;
}

/** What collect hands to evaluate: plain JSON. */
export interface RootMfaData {
  summary: Readable<RootSummary>;
  /** Serial numbers of virtual MFA devices assigned to root; absent when not needed (no MFA, or requireHardware off). */
  rootVirtualDevices?: Readable<string[]>;
}
export type RootMfaObservation = AccountObservation<RootMfaData>;

/** The pure verdict: see README.md. One finding, resource `<account>/root`. */
export function evaluateRootMfa(o: RootMfaObservation, params: Params): Finding[] {
  const resource = `${o.account}/root`;
  if (o.denied) return [deniedFinding(resource, `the root user of account ${o.account} (the role could not be assumed)`, o.denied)];
  const data = o.data as RootMfaData;
  if (!data.summary.readable) return [deniedFinding(resource, `the account summary of ${o.account}`, data.summary)];
  const s = data.summary.value;
  const problems: string[] = [];
  const fixes: string[] = [];
  if (!s.mfaEnabled) {
    // Root credentials removed (AWS Organizations centralised root access): nothing to sign in with, nothing to protect.
    if (s.passwordPresent === false && s.accessKeysPresent === false && s.signingCertificatesPresent === false) {
      return [
        {
          resource,
          outcome: 'pass',
          message: `root of ${o.account} has no password, access keys or signing certificates (root credentials removed, e.g. managed centrally by AWS Organizations): no MFA needed`,
          details: { ...s },
        },
      ];
    }
    problems.push('has no MFA');
    fixes.push('sign in as root and assign a hardware security key or passkey in IAM > Security credentials > Multi-factor authentication');
  }
  if (s.accessKeysPresent) {
    problems.push('has access keys');
    fixes.push('delete the root access keys (IAM > Security credentials > Access keys) and use IAM roles instead');
  }
  let unknown: Finding | undefined;
  if (s.mfaEnabled && params.requireHardware) {
    const devices = data.rootVirtualDevices;
    if (!devices || !devices.readable) {
      unknown = devices
        ? deniedFinding(resource, `whether root's MFA device in ${o.account} is virtual`, devices)
        : { resource, outcome: 'unknown', message: `root's MFA devices in ${o.account} were not read` };
    } else if (devices.value.length > 0) {
      problems.push(`uses a virtual MFA device (${devices.value.join(', ')})`);
      fixes.push('register a hardware security key or passkey for root, then deactivate and delete the virtual device');
    }
  }
  if (problems.length > 0) {
    return [{ resource, outcome: 'fail', message: `root of ${o.account} ${problems.join(' and ')}: ${fixes.join('; ')}`, details: { ...s, problems } }];
  }
  if (unknown) return [unknown];
  // A summary that does not say whether root holds access keys cannot pass "no access keys".
  if (s.accessKeysPresent === undefined) {
    return [{ resource, outcome: 'unknown', message: `iam:GetAccountSummary of ${o.account} did not say whether root has access keys (AccountAccessKeysPresent missing)`, details: { ...s } }];
  }
  const kind = params.requireHardware ? 'hardware MFA (no virtual device assigned)' : 'MFA';
  return [{ resource, outcome: 'pass', message: `root of ${o.account} has ${kind} and no access keys`, details: { ...s } }];
}

export const probe = defineProbe<AwsTarget, Params, RootMfaObservation>({
  id: 'aws-root-mfa',
  title: 'AWS root user has hardware MFA and no access keys',
  source: 'aws',
  controls: ['mfa-human-accounts'],
  schedule: '17 */4 * * *',
  actions: ['iam:GetAccountSummary', 'iam:ListVirtualMFADevices'],
  docs: {
    checks:
      'For each `aws[]` account: `GetAccountSummary` says root has MFA (`AccountMFAEnabled`) and no access keys (`AccountAccessKeysPresent`); ' +
      'with `requireHardware` (default) no **virtual** MFA device is assigned to root (`ListVirtualMFADevices`, the device whose user is `arn:aws:iam::<account>:root`). ' +
      'An account whose root has no password, access keys or signing certificates at all (root credentials removed, e.g. centrally managed by AWS Organizations) passes with that reason. One finding, resource `<account>/root`.',
    permissions: '`iam:GetAccountSummary`, `iam:ListVirtualMFADevices` (and `sts:AssumeRole` on the role when `roleArn` is set). Nothing is written.',
    remediation:
      'Sign in as root, open IAM > Security credentials, assign a hardware security key or passkey, then remove any virtual (authenticator-app) device; delete root access keys. ' +
      'See probes/aws-root-mfa/README.md.',
  },
  params: Params,
  targets(config) {
    return config.aws.map((t) => ({ name: t.name, spec: t }));
  },
  // The I/O and the AWS SDK load on the first run, not at start-up (collect.ts).
  async collect(ctx) {
    return (await import('./collect.js')).collectRootMfa(ctx);
  },
  evaluate(observation, params) {
    return evaluateRootMfa(observation, params);
  },
});
