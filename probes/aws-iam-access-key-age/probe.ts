import { z } from 'zod';
import type { CredentialReport } from '../../src/clients/aws/credential-report-csv.js';
import type { AccountObservation, Readable } from '../../src/clients/aws/denied.js';
import type { AwsTarget } from '../../src/config/schema.js';
import { defineProbe, type Finding } from '../../src/probe/contract.js';
import { reportProblems } from '../aws-iam-user-mfa/probe.js';

/** The probe's params, validated at config load time. */
export const Params = z.strictObject({
  /** An active access key older than this many days fails. Default 90. */
  maxAgeDays: z.number().int().positive().max(3650).default(90),
  /** A credential report older than this is regenerated (shared with aws-iam-user-mfa). Default 24. */
  maxReportAgeHours: z.number().positive().max(24 * 30).default(24),
});
export type Params = z.output<typeof Params>;

/** What collect hands to evaluate: the account's credential report (the same cached one aws-iam-user-mfa reads). */
export type AccessKeyAgeObservation = AccountObservation<{ report: Readable<CredentialReport> }>;

const DAY_MS = 86_400_000;

/** The pure verdict: see README.md. One finding per IAM user with an active key, resource `<account>/<user>`. */
export function evaluateAccessKeyAge(o: AccessKeyAgeObservation, params: Params, now: Date): Finding[] {
  const problems = reportProblems(o, params.maxReportAgeHours, now);
  if (problems) return problems;
  const report = (o.data?.report as { readable: true; value: CredentialReport }).value;
  const findings: Finding[] = [];
  for (const u of report.users) {
    // Root access keys are aws-root-mfa's: any root key fails there, whatever its age.
    if (u.isRoot) continue;
    const resource = `${o.account}/${u.user}`;
    const old: string[] = [];
    const young: string[] = [];
    const unclear: string[] = [];
    u.keys.forEach((k, i) => {
      const slot = `key ${i + 1}`;
      if (k.active === false || k.active === 'not_applicable') return;
      if (k.active !== true) return unclear.push(`${slot} (access_key_${i + 1}_active = ${String(k.active)})`);
      if (k.lastRotated === null) return unclear.push(`${slot} (active, no last-rotated date)`);
      const days = Math.floor((now.getTime() - Date.parse(k.lastRotated)) / DAY_MS);
      (days > params.maxAgeDays ? old : young).push(`${slot} is ${days} days old (created ${k.lastRotated.slice(0, 10)})`);
    });
    if (old.length > 0) {
      findings.push({
        resource,
        outcome: 'fail',
        message: `${u.user}: active access ${old.join(' and ')}, over ${params.maxAgeDays} days: create a new key, move its users to it, then deactivate and delete the old one (IAM > Users > ${u.user} > Security credentials)`,
        details: { old, ...(unclear.length > 0 ? { unclear } : {}) },
      });
    } else if (unclear.length > 0) {
      findings.push({ resource, outcome: 'unknown', message: `${u.user}: cannot tell the age of access ${unclear.join(' and ')}` });
    } else if (young.length > 0) {
      findings.push({ resource, outcome: 'pass', message: `${u.user}: every active access key is at most ${params.maxAgeDays} days old (${young.join(', ')})` });
    } else {
      findings.push({ resource, outcome: 'not_applicable', message: `${u.user} has no active access key` });
    }
  }
  if (findings.length === 0) findings.push({ resource: o.account, outcome: 'not_applicable', message: `account ${o.account} has no IAM users (root keys are judged by aws-root-mfa)` });
  return findings;
}

export const probe = defineProbe<AwsTarget, Params, AccessKeyAgeObservation>({
  id: 'aws-iam-access-key-age',
  title: 'AWS IAM access keys are rotated',
  source: 'aws',
  controls: ['access-key-rotation'],
  schedule: '37 */4 * * *',
  actions: ['iam:GenerateCredentialReport', 'iam:GetCredentialReport'],
  docs: {
    checks:
      'For each `aws[]` account, from the IAM credential report (the same one aws-iam-user-mfa reads, cached per process — no extra calls): ' +
      'every **active** access key (`access_key_N_active`) is at most `maxAgeDays` (default 90) old by `access_key_N_last_rotated`. ' +
      'One finding per user, resource `<account>/<user>`, naming the key (key 1 / key 2) and its age; users without an active key are not applicable.',
    permissions: '`iam:GenerateCredentialReport`, `iam:GetCredentialReport` (and `sts:AssumeRole` on the role when `roleArn` is set).',
    remediation:
      'Rotate the key: create a second key, switch every caller to it, deactivate the old one, watch for failures, then delete it. Better, replace long-lived keys with IAM roles (SSO, OIDC federation, instance/task roles). ' +
      'See probes/aws-iam-access-key-age/README.md.',
  },
  params: Params,
  targets(config) {
    return config.aws.map((t) => ({ name: t.name, spec: t }));
  },
  // The same collect as aws-iam-user-mfa (one cached report per account); it and the AWS SDK load on the first run.
  async collect(ctx) {
    return (await import('../aws-iam-user-mfa/collect.js')).collectCredentialReport(ctx.target.spec, ctx, ctx.params.maxReportAgeHours);
  },
  evaluate(observation, params, now) {
    return evaluateAccessKeyAge(observation, params, now);
  },
  sourceFreshness(observation) {
    const report = observation.data?.report;
    return report?.readable ? new Date(report.value.generatedTime) : undefined;
  },
});
