/**
 * Every AWS command vigil can send, by SDK command class name, with the IAM action it needs.
 * The AWS client refuses to send a command that is not listed here, and a test checks that this
 * table, the commands the source code constructs, and `deploy/aws/*.json` agree — so the
 * least-privilege policy vigil ships cannot drift from what the code calls.
 */
export const AWS_COMMAND_ACTIONS = {
  // STS: the base principal's own calls (AssumeRole needs sts:AssumeRole on the role; GetCallerIdentity needs no permission).
  AssumeRoleCommand: 'sts:AssumeRole',
  GetCallerIdentityCommand: 'sts:GetCallerIdentity',
  // IAM (global).
  GenerateCredentialReportCommand: 'iam:GenerateCredentialReport',
  GetCredentialReportCommand: 'iam:GetCredentialReport',
  GetAccountSummaryCommand: 'iam:GetAccountSummary',
  ListVirtualMFADevicesCommand: 'iam:ListVirtualMFADevices',
  // AWS Config (regional).
  DescribeConfigurationRecordersCommand: 'config:DescribeConfigurationRecorders',
  DescribeConfigurationRecorderStatusCommand: 'config:DescribeConfigurationRecorderStatus',
  DescribeComplianceByConfigRuleCommand: 'config:DescribeComplianceByConfigRule',
  GetComplianceDetailsByConfigRuleCommand: 'config:GetComplianceDetailsByConfigRule',
  // AWS Config inventory: aws-backup-freshness coverage (resources no backup plan protects).
  ListDiscoveredResourcesCommand: 'config:ListDiscoveredResources',
  // AWS Backup (regional): recovery points and jobs (aws-backup-freshness).
  ListProtectedResourcesCommand: 'backup:ListProtectedResources',
  ListBackupVaultsCommand: 'backup:ListBackupVaults',
  ListRecoveryPointsByBackupVaultCommand: 'backup:ListRecoveryPointsByBackupVault',
  ListBackupJobsCommand: 'backup:ListBackupJobs',
  // AWS Backup restore testing (backup-restore-drill).
  ListRestoreTestingPlansCommand: 'backup:ListRestoreTestingPlans',
  ListRestoreTestingSelectionsCommand: 'backup:ListRestoreTestingSelections',
  ListRestoreJobsCommand: 'backup:ListRestoreJobs',
} as const satisfies Record<string, `${'sts' | 'iam' | 'config' | 'backup'}:${string}`>;

/** An SDK command class vigil sends. */
export type AwsCommandName = keyof typeof AWS_COMMAND_ACTIONS;

/** The IAM action an SDK command needs, or undefined when vigil does not send that command. */
export function actionOf(commandName: string): string | undefined {
  return Object.hasOwn(AWS_COMMAND_ACTIONS, commandName) ? AWS_COMMAND_ACTIONS[commandName as AwsCommandName] : undefined;
}
