/**
 * collect of aws-iam-user-mfa, shared with aws-iam-access-key-age: the account's IAM credential
 * report. Loaded by the probes on their first run only, with the AWS SDK it imports.
 */
import type { Logger } from 'pino';
import type { AccountObservation, Readable } from '../../src/clients/aws/denied.js';
import { credentialReport, type CredentialReport } from '../../src/clients/aws/credential-report.js';
import { observeAccount, readable } from '../../src/clients/aws/observe.js';
import type { AwsTarget } from '../../src/config/schema.js';

/** The account's credential report (cached per process, see credential-report.ts), or why it could not be read. */
export function collectCredentialReport(target: AwsTarget, ctx: { signal: AbortSignal; log: Logger; now: Date }, maxReportAgeHours: number): Promise<AccountObservation<{ report: Readable<CredentialReport> }>> {
  return observeAccount(target, ctx, async (aws, account) => ({
    report: await readable(() => credentialReport(aws, account, { maxAgeHours: maxReportAgeHours, now: ctx.now, signal: ctx.signal })),
  }));
}
