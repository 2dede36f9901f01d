/**
 * backup-restore-drill's AWS source: AWS Backup restore testing through the real
 * @aws-sdk/client-backup against the local AWS peer (REST-JSON, SigV4 checked, answers validated
 * against botocore's Backup model).
 */
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resetAwsClientState } from '../src/clients/aws/client.js';
import { AwsTarget, VigilConfig } from '../src/config/schema.js';
import { runProbe } from '../src/probe/runner.js';
import { schedulePeriodHours } from '../probes/backup-restore-drill/aws.js';
import { probe } from '../probes/backup-restore-drill/probe.js';
import { EXAMPLE_KEY, peerTarget, startAwsPeer, useEnvCredentials, type AwsPeer, type PeerBackupRegion } from './helpers/aws-peer.js';

const log = pino({ level: 'silent' });
const ACCOUNT = '123456789012';
const REGION = 'us-west-2';
const HOUR = 3_600_000;
const PLAN = 'weekly-restore-test';
const PLAN_ARN = `arn:aws:backup:${REGION}:${ACCOUNT}:restore-testing-plan:${PLAN}-abc123`;
const ago = (hours: number) => new Date(Date.now() - hours * HOUR).toISOString();

function restoreJob(hoursAgo: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    AccountId: ACCOUNT,
    RestoreJobId: `restore-${hoursAgo}`,
    RecoveryPointArn: `arn:aws:ec2:${REGION}::snapshot/snap-0123456789abcdef0`,
    CreationDate: ago(hoursAgo),
    CompletionDate: ago(hoursAgo - 0.5),
    Status: 'COMPLETED',
    ResourceType: 'EBS',
    CreatedResourceArn: `arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-${hoursAgo}`,
    CreatedBy: { RestoreTestingPlanArn: PLAN_ARN },
    DeletionStatus: 'SUCCESSFUL',
    IamRoleArn: `arn:aws:iam::${ACCOUNT}:role/service-role/AWSBackupDefaultServiceRole`,
    ...extra,
  };
}

function region(jobs: Array<Record<string, unknown>>, plan: Record<string, unknown> = {}): PeerBackupRegion {
  return {
    restoreTestingPlans: [{ RestoreTestingPlanName: PLAN, RestoreTestingPlanArn: PLAN_ARN, ScheduleExpression: 'cron(0 1 ? * SUN *)', StartWindowHours: 24, CreationTime: ago(24 * 200), LastExecutionTime: ago(30), ...plan }],
    restoreTestingSelections: [
      { RestoreTestingPlanName: PLAN, RestoreTestingSelectionName: 'ebs', ProtectedResourceType: 'EBS', IamRoleArn: `arn:aws:iam::${ACCOUNT}:role/restore`, CreationTime: ago(24 * 200), ValidationWindowHours: 1 },
    ],
    restoreJobs: jobs,
  };
}

describe('backup-restore-drill on AWS Backup restore testing', () => {
  let peer: AwsPeer;
  beforeAll(async () => {
    peer = await startAwsPeer({ keys: [{ ...EXAMPLE_KEY, account: ACCOUNT }], accounts: { [ACCOUNT]: {} }, backupPageCap: 2 });
    useEnvCredentials(EXAMPLE_KEY);
  });
  afterAll(() => peer.close());
  beforeEach(() => {
    resetAwsClientState();
    peer.requests.length = 0;
  });

  async function run(backup: PeerBackupRegion, params: Record<string, unknown> = {}, deny: string[] = []) {
    peer.accounts[ACCOUNT] = { backup: { [REGION]: backup }, deny };
    const aws = AwsTarget.parse(peerTarget(peer, { regions: [REGION] }));
    const { result } = await runProbe({ probe, target: { name: 'aws.prod', spec: { source: 'aws', aws } }, params: probe.params.parse({ aws: params }), runId: 'r1', scheduledFor: new Date(), timeoutMs: 20_000, log });
    expect(result.error).toBeUndefined();
    return result;
  }
  const ebs = `${ACCOUNT}/${REGION}/${PLAN}/EBS`;
  const outcomes = (r: Awaited<ReturnType<typeof run>>) => r.findings.map((f) => [f.resource, f.outcome]);

  it('every aws: target is a target of the probe, beside the drill directories', () => {
    const config = VigilConfig.parse({ aws: [{ name: 'prod', regions: [REGION] }], backups: [{ name: 'dc', kind: 'drills', dir: '/tmp' }] });
    expect(probe.targets(config).map((t) => [t.name, (t.spec as { source: string }).source])).toEqual([['dc', 'records'], ['aws.prod', 'aws']]);
  });

  it('a completed, cleaned-up restore test within the RTO passes at L4, validated at L5; jobs are read across pages', async () => {
    const passed = await run(region([restoreJob(40), restoreJob(200, { RestoreJobId: 'other-plan', CreatedBy: { RestoreTestingPlanArn: 'arn:aws:backup:x' } }), restoreJob(300)]));
    expect(outcomes(passed)).toEqual([[ebs, 'pass']]);
    expect(passed.findings[0]?.details).toMatchObject({ level: 4, restoreJobId: 'restore-40', durationMinutes: 30 });
    expect(peer.requests.filter((r) => r.action === 'ListRestoreJobs').length).toBe(2);
    const validated = await run(region([restoreJob(40, { ValidationStatus: 'SUCCESSFUL' })]));
    expect(validated.findings[0]?.outcome).toBe('pass');
    expect(validated.findings[0]?.details?.level).toBe(5);
    expect(validated.findings[0]?.message).toContain('L5 the restored data was validated');
  });

  it('a failed restore job in the window fails, even after a later success', async () => {
    const result = await run(region([restoreJob(20), restoreJob(100, { Status: 'FAILED', StatusMessage: 'Insufficient capacity', DeletionStatus: undefined, CompletionDate: undefined })]));
    expect(outcomes(result)).toEqual([[ebs, 'fail']]);
    expect(result.findings[0]?.message).toMatch(/restore test job restore-100 .* FAILED: "Insufficient capacity"/);
  });

  it('a job older than maxDaysSinceDrill does not count, and none in the window fails', async () => {
    const old = await run(region([restoreJob(24 * 40)]), { maxDaysSinceDrill: 30 });
    expect(outcomes(old)).toEqual([[ebs, 'fail']]);
    expect(old.findings[0]?.message).toContain('in the last 30 days (0 job(s) in the window)');
    const none = await run(region([]));
    expect(outcomes(none)).toEqual([[ebs, 'fail']]);
  });

  it('validation FAILED or TIMED_OUT fails; a restore slower than the RTO fails', async () => {
    const invalid = await run(region([restoreJob(40, { ValidationStatus: 'FAILED', ValidationStatusMessage: 'row count mismatch' })]));
    expect(outcomes(invalid)).toEqual([[ebs, 'fail']]);
    expect(invalid.findings[0]?.message).toContain('validation FAILED: "row count mismatch"');
    const timedOut = await run(region([restoreJob(40, { ValidationStatus: 'TIMED_OUT' })]));
    expect(timedOut.findings[0]?.outcome).toBe('fail');
    const slow = await run(region([restoreJob(40)]), { maxRestoreMinutes: 10 });
    expect(slow.findings[0]?.message).toContain('took at least 30 min, over the 10-minute RTO');
  });

  it('a restored resource AWS failed to delete is its own failing finding', async () => {
    const result = await run(region([restoreJob(20), restoreJob(40, { DeletionStatus: 'FAILED', DeletionStatusMessage: 'volume is attached' })]));
    expect(outcomes(result)).toEqual([
      [`${ebs}/cleanup:restore-40`, 'fail'],
      [ebs, 'pass'],
    ]);
    expect(result.findings[0]?.message).toContain(`AWS could not delete arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-40 restored by test job restore-40: "volume is attached"`);
  });

  it('a plan that has not run within its schedule fails; no plan in a region fails', async () => {
    const late = await run(region([restoreJob(40)], { LastExecutionTime: ago(24 * 12) }));
    expect(outcomes(late)).toEqual([
      [`${ACCOUNT}/${REGION}/${PLAN}`, 'fail'],
      [ebs, 'pass'],
    ]);
    expect(late.findings[0]?.message).toContain(`restore testing plan ${PLAN} (cron(0 1 ? * SUN *)) has not run since`);
    const empty = await run({ restoreTestingPlans: [], restoreJobs: [] });
    expect(outcomes(empty)).toEqual([[`${ACCOUNT}/${REGION}`, 'fail']]);
  });

  it('AccessDenied is an unknown finding naming the action', async () => {
    const result = await run(region([restoreJob(40)]), {}, ['backup:ListRestoreJobs']);
    expect(result.findings).toEqual([expect.objectContaining({ resource: `${ACCOUNT}/${REGION}/${PLAN}`, outcome: 'unknown', details: expect.objectContaining({ missingAction: 'backup:ListRestoreJobs' }) })]);
  });

  it('schedule periods: cron daily, weekly, monthly; rate', () => {
    expect([schedulePeriodHours('cron(0 5 ? * * *)'), schedulePeriodHours('cron(0 1 ? * SUN *)'), schedulePeriodHours('cron(0 1 1 * ? *)'), schedulePeriodHours('rate(12 hours)'), schedulePeriodHours('at noon')]).toEqual([24, 168, 744, 12, undefined]);
    // First Monday / last Friday of the month: monthly, not weekly.
    expect([schedulePeriodHours('cron(0 5 ? * 2#1 *)'), schedulePeriodHours('cron(0 5 ? * 6L *)')]).toEqual([744, 744]);
  });
});
