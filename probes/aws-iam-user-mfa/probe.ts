import { z } from 'zod';
import type { CredentialReport, Flag } from '../../src/clients/aws/credential-report-csv.js';
import { deniedFinding, type AccountObservation, type Readable } from '../../src/clients/aws/denied.js';
import type { AwsTarget } from '../../src/config/schema.js';
import { defineProbe, type Finding } from '../../src/probe/contract.js';

/** The probe's params, validated at config load time. */
export const Params = z.strictObject({
  /** A credential report older than this is regenerated (AWS makes a new one at most every 4 hours). Default 24. */
  maxReportAgeHours: z.number().positive().max(24 * 30).default(24),
});
export type Params = z.output<typeof Params>;

/** What collect hands to evaluate: the account's credential report, or why it could not be read. */
export type UserMfaObservation = AccountObservation<{ report: Readable<CredentialReport> }>;

const said = (f: Flag): string => (typeof f === 'boolean' ? String(f) : f);

/**
 * The verdicts shared by the credential-report probes for what prevents judging any user: a
 * refused AssumeRole or report, or a report older than the probe accepts. Undefined when the
 * report can be judged.
 */
export function reportProblems(o: AccountObservation<{ report: Readable<CredentialReport> }>, maxReportAgeHours: number, now: Date): Finding[] | undefined {
  if (o.denied) return [deniedFinding(o.account, `the IAM credential report of ${o.account} (the role could not be assumed)`, o.denied)];
  const report = o.data?.report;
  if (!report) return [{ resource: o.account, outcome: 'unknown', message: `the IAM credential report of ${o.account} was not read` }];
  if (!report.readable) return [deniedFinding(o.account, `the IAM credential report of ${o.account}`, report)];
  const ageHours = (now.getTime() - Date.parse(report.value.generatedTime)) / 3_600_000;
  if (ageHours > maxReportAgeHours) {
    return [
      {
        resource: o.account,
        outcome: 'unknown',
        message: `the IAM credential report of ${o.account} was generated ${Math.floor(ageHours)} h ago (${report.value.generatedTime}), more than maxReportAgeHours (${maxReportAgeHours}): AWS did not regenerate it; the next run asks again`,
        details: { generatedTime: report.value.generatedTime },
      },
    ];
  }
  return undefined;
}

/** The pure verdict: see README.md. One finding per IAM user, resource `<account>/<user>`. */
export function evaluateUserMfa(o: UserMfaObservation, params: Params, now: Date): Finding[] {
  const problems = reportProblems(o, params.maxReportAgeHours, now);
  if (problems) return problems;
  const report = (o.data?.report as { readable: true; value: CredentialReport }).value;
  const findings: Finding[] = [];
  for (const u of report.users) {
    // Root is aws-root-mfa's (GetAccountSummary): its report row says password `not_supported`.
    if (u.isRoot) continue;
    const resource = `${o.account}/${u.user}`;
    if (u.passwordEnabled === false) {
      findings.push({ resource, outcome: 'not_applicable', message: `${u.user} has no console password (programmatic access only)` });
    } else if (u.passwordEnabled !== true) {
      findings.push({ resource, outcome: 'unknown', message: `the credential report gives password_enabled = ${said(u.passwordEnabled)} for ${u.user}: cannot tell whether it signs in to the console` });
    } else if (u.mfaActive === true) {
      findings.push({ resource, outcome: 'pass', message: `${u.user} signs in to the console with MFA` });
    } else if (u.mfaActive === false) {
      findings.push({
        resource,
        outcome: 'fail',
        message: `${u.user} has a console password and no active MFA device: assign an MFA device (security key or passkey preferred) in IAM > Users > ${u.user} > Security credentials, or remove the console password`,
      });
    } else {
      findings.push({ resource, outcome: 'unknown', message: `the credential report gives mfa_active = ${said(u.mfaActive)} for ${u.user}, who has a console password` });
    }
  }
  if (findings.length === 0) findings.push({ resource: o.account, outcome: 'not_applicable', message: `account ${o.account} has no IAM users (root is judged by aws-root-mfa)` });
  return findings;
}

export const probe = defineProbe<AwsTarget, Params, UserMfaObservation>({
  id: 'aws-iam-user-mfa',
  title: 'Every AWS IAM user with a console password has MFA',
  source: 'aws',
  controls: ['mfa-human-accounts'],
  schedule: '27 */4 * * *',
  actions: ['iam:GenerateCredentialReport', 'iam:GetCredentialReport'],
  docs: {
    checks:
      'For each `aws[]` account, one IAM credential report (`GenerateCredentialReport`, polled until complete, then `GetCredentialReport`) — not one call per user. ' +
      'A user with a console password (`password_enabled`) and no active MFA device (`mfa_active`) fails; a user without a console password is not applicable. ' +
      'One finding per user, resource `<account>/<user>`; root is judged by aws-root-mfa. The report\'s generation time is the result\'s source freshness; a report older than `maxReportAgeHours` is regenerated (AWS makes a new one at most every 4 hours).',
    permissions: '`iam:GenerateCredentialReport`, `iam:GetCredentialReport` (and `sts:AssumeRole` on the role when `roleArn` is set). The report is read, never stored.',
    remediation:
      'Assign an MFA device to each listed user (IAM > Users > user > Security credentials > Assign MFA device; a security key or passkey is strongest), or remove the console password of users who do not need the console. ' +
      'An IAM policy that denies actions without `aws:MultiFactorAuthPresent` keeps new users from working without MFA. See probes/aws-iam-user-mfa/README.md.',
  },
  params: Params,
  targets(config) {
    return config.aws.map((t) => ({ name: t.name, spec: t }));
  },
  // The I/O and the AWS SDK load on the first run, not at start-up (collect.ts).
  async collect(ctx) {
    return (await import('./collect.js')).collectCredentialReport(ctx.target.spec, ctx, ctx.params.maxReportAgeHours);
  },
  evaluate(observation, params, now) {
    return evaluateUserMfa(observation, params, now);
  },
  sourceFreshness(observation) {
    const report = observation.data?.report;
    return report?.readable ? new Date(report.value.generatedTime) : undefined;
  },
});
