/**
 * aws-backup-freshness: collect → evaluate through the real @aws-sdk/client-backup against the
 * local AWS peer speaking AWS Backup's REST-JSON (SigV4 checked, answers validated against the
 * botocore model), with the account, vault and EFS resource of the AWS CLI's list-backup-jobs example.
 */
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resetAwsClientState } from '../src/clients/aws/client.js';
import { AwsTarget } from '../src/config/schema.js';
import { runProbe } from '../src/probe/runner.js';
import { lastRecoveryPointSamples, probe, type Params } from '../probes/aws-backup-freshness/probe.js';
import { backupCliExample, EXAMPLE_KEY, peerTarget, startAwsPeer, useEnvCredentials, type AwsPeer, type PeerBackupRegion } from './helpers/aws-peer.js';

const log = pino({ level: 'silent' });
const HOUR = 3_600_000;

/** The CLI example's completed EFS job: its account, region, vault and resource. */
const job = backupCliExample<{ BackupJobs: Array<Record<string, unknown>> }>('list-backup-jobs').BackupJobs[1] as Record<string, string>;
const ACCOUNT = (job.BackupVaultArn as string).split(':')[4] as string;
const REGION = (job.BackupVaultArn as string).split(':')[3] as string;
const VAULT_ARN = job.BackupVaultArn as string;
const EFS = job.ResourceArn as string;
const COPY_VAULT_ARN = `arn:aws:backup:us-east-1:${ACCOUNT}:backup-vault:dr-copies`;

const ago = (hours: number) => new Date(Date.now() - hours * HOUR).toISOString();
const later = (iso: string, days: number) => new Date(Date.parse(iso) + days * 24 * HOUR).toISOString();

/** A recovery point of the EFS file system in the Default vault, in the model's shape. */
function point(hoursAgo: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const completed = ago(hoursAgo);
  return {
    RecoveryPointArn: `arn:aws:backup:${REGION}:${ACCOUNT}:recovery-point:${hoursAgo}-${Math.random().toString(16).slice(2, 10)}`,
    BackupVaultName: 'Default',
    BackupVaultArn: VAULT_ARN,
    ResourceArn: EFS,
    ResourceType: 'EFS',
    Status: 'COMPLETED',
    CreationDate: ago(hoursAgo + 0.1),
    CompletionDate: completed,
    IsEncrypted: true,
    EncryptionKeyType: 'AWS_OWNED_KMS_KEY',
    CalculatedLifecycle: { DeleteAt: later(completed, 35) },
    ...extra,
  };
}

function region(points: Array<Record<string, unknown>>, extra: Partial<PeerBackupRegion> = {}): PeerBackupRegion {
  return {
    protectedResources: [{ ResourceArn: EFS, ResourceType: 'EFS', ResourceName: 'fs-12345678', LastBackupTime: ago(1) }],
    vaults: [{ BackupVaultName: 'Default', BackupVaultArn: VAULT_ARN, Locked: false, NumberOfRecoveryPoints: points.length }],
    recoveryPoints: points,
    backupJobs: [],
    ...extra,
  };
}

/** The CLI example's job, moved into the window with a state and message. */
function backupJob(hoursAgo: number, State: string, StatusMessage?: string): Record<string, unknown> {
  return { ...job, BackupJobId: `job-${hoursAgo}-${State}`, CreationDate: ago(hoursAgo), CompletionDate: ago(hoursAgo - 0.05), StartBy: ago(hoursAgo - 1), State, ...(StatusMessage ? { StatusMessage } : {}) };
}

describe('aws-backup-freshness against the AWS peer (REST-JSON)', () => {
  let peer: AwsPeer;
  beforeAll(async () => {
    peer = await startAwsPeer({ keys: [{ ...EXAMPLE_KEY, account: ACCOUNT }], accounts: { [ACCOUNT]: {} }, backupPageCap: 100 });
    useEnvCredentials(EXAMPLE_KEY);
  });
  afterAll(() => peer.close());
  beforeEach(() => {
    resetAwsClientState();
    peer.requests.length = 0;
  });

  async function run(backup: Record<string, PeerBackupRegion>, params: Partial<Params> = {}, deny: string[] = []) {
    peer.accounts[ACCOUNT] = { backup, deny };
    const spec = AwsTarget.parse(peerTarget(peer, { regions: Object.keys(backup) }));
    const { result } = await runProbe({ probe, target: { name: spec.name, spec }, params: probe.params.parse(params), runId: 'r1', scheduledFor: new Date(), timeoutMs: 20_000, log });
    expect(result.error).toBeUndefined();
    return result;
  }
  const efs = (result: Awaited<ReturnType<typeof run>>) => result.findings.find((f) => f.resource === `${ACCOUNT}/${REGION}/${EFS}`);

  it('a fresh, encrypted, 35-day point passes at L2, aged from CompletionDate, with every call SigV4-signed for backup in its region', async () => {
    const result = await run({ [REGION]: region([point(5)]) });
    expect(result.findings).toHaveLength(1);
    const f = efs(result);
    expect(f?.outcome).toBe('pass');
    expect(f?.message).toMatch(/^newest recovery point of fs-12345678 is 5 h old \(RPO 26 h, COMPLETED\); L2 backups are protected$/);
    expect(f?.details).toMatchObject({ level: 2, agedFrom: 'CompletionDate', resourceType: 'EFS', protection: { encrypted: true, retentionDays: 35, vaultLocked: false, copy: 'none seen' } });
    expect(new Set(peer.requests.map((r) => `${r.service} ${r.signingService} ${r.signingRegion} ${r.status}`))).toEqual(new Set([`backup backup ${REGION} 200`, 'sts sts us-east-1 200']));
    expect(peer.requests.filter((r) => r.service === 'backup').map((r) => r.action).sort()).toEqual(['ListBackupJobs', 'ListBackupVaults', 'ListProtectedResources', 'ListRecoveryPointsByBackupVault']);
    // Listed per vault, with the window and AWS's largest page.
    expect(peer.requests.find((r) => r.action === 'ListRecoveryPointsByBackupVault')?.params).toMatchObject({ BackupVaultName: 'Default', MaxResults: 1000 });
    expect(lastRecoveryPointSamples(result)).toEqual([{ labels: { target: 'prod', resource_type: 'EFS' }, value: Date.parse(f?.details?.newestRecoveryPointAt as string) / 1000 }]);
  });

  it('a point older than the RPO fails; a per-type RPO overrides it', async () => {
    const stale = await run({ [REGION]: region([point(30)]) });
    expect(efs(stale)?.outcome).toBe('fail');
    expect(efs(stale)?.message).toMatch(/newest good recovery point of fs-12345678 is 30 h old \(RPO 26 h, COMPLETED/);
    expect(efs(stale)?.details?.level).toBe(0);
    expect(efs(await run({ [REGION]: region([point(30)]) }, { rpoHoursByType: { EFS: 36 } }))?.outcome).toBe('pass');
  });

  it('nothing in the window fails, naming AWS\'s last backup time; a point without CompletionDate is aged from CreationDate, said so', async () => {
    const none = await run({ [REGION]: region([point(80)], { protectedResources: [{ ResourceArn: EFS, ResourceType: 'EFS', ResourceName: 'fs-12345678', LastBackupTime: ago(80) }] }) });
    expect(efs(none)?.outcome).toBe('fail');
    expect(efs(none)?.message).toMatch(/no COMPLETED or AVAILABLE recovery point of fs-12345678 since .* AWS's last backup of it: .* \(80 h ago\)/);
    const p = point(3);
    delete p.CompletionDate;
    const created = await run({ [REGION]: region([p]) });
    expect(efs(created)?.outcome).toBe('pass');
    expect(efs(created)?.details?.agedFrom).toBe('CreationDate');
    expect(efs(created)?.message).toContain('has no CompletionDate: aged from its CreationDate');
  });

  it('the newest point PARTIAL with an older good one fails with AWS\'s message; an older PARTIAL superseded by a good point is only noted', async () => {
    const partialNewest = await run({ [REGION]: region([point(20), point(2, { Status: 'PARTIAL', StatusMessage: 'Some files could not be backed up' })]) });
    expect(efs(partialNewest)?.outcome).toBe('fail');
    expect(efs(partialNewest)?.message).toMatch(/is PARTIAL: "Some files could not be backed up" and no good one since/);
    const superseded = await run({ [REGION]: region([point(20, { Status: 'PARTIAL', StatusMessage: 'Some files could not be backed up' }), point(2)]) });
    expect(efs(superseded)?.outcome).toBe('pass');
    expect(efs(superseded)?.message).toContain('(a later one is good)');
  });

  it('AVAILABLE is success too', async () => {
    const result = await run({ [REGION]: region([point(4, { Status: 'AVAILABLE' })]) });
    expect(efs(result)?.outcome).toBe('pass');
    expect(efs(result)?.details?.newestStatus).toBe('AVAILABLE');
  });

  it('250 recovery points over 3 pages: every page is read and the newest (on the last page) is found', async () => {
    const points = Array.from({ length: 250 }, (_, i) => point(50 - i * 0.19));
    const result = await run({ [REGION]: region(points) }, { lookbackHours: 60 });
    expect(peer.requests.filter((r) => r.action === 'ListRecoveryPointsByBackupVault')).toHaveLength(3);
    expect(efs(result)?.details?.recoveryPointsInWindow).toBe(250);
    expect(efs(result)?.outcome).toBe('pass');
    expect(efs(result)?.details?.ageHours).toBeLessThan(3);
  });

  it('a FAILED job after the newest good point fails with its message; a COMPLETED job with a message is "completed with issues"', async () => {
    const failed = await run({ [REGION]: region([point(10)], { backupJobs: [backupJob(1, 'FAILED', 'Access denied to KMS key')] }) });
    expect(efs(failed)?.outcome).toBe('fail');
    expect(efs(failed)?.message).toMatch(/backup job job-1-FAILED .* FAILED: "Access denied to KMS key" and no good recovery point since/);
    const issues = await run({ [REGION]: region([point(1)], { backupJobs: [backupJob(1.2, 'COMPLETED', 'Backup completed, but 12 files were skipped')] }) });
    expect(efs(issues)?.outcome).toBe('pass');
    expect(efs(issues)?.message).toContain('completed with issues: "Backup completed, but 12 files were skipped"');
    expect(efs(issues)?.details?.completedWithIssues).toHaveLength(1);
  });

  it('L2: unencrypted fails, a short retention fails, an unlocked vault fails with requireVaultLock', async () => {
    const plain = await run({ [REGION]: region([point(2, { IsEncrypted: false })]) });
    expect(efs(plain)?.outcome).toBe('fail');
    expect(efs(plain)?.message).toContain('is not encrypted');
    const short = point(2);
    short.CalculatedLifecycle = { DeleteAt: later(short.CompletionDate as string, 3) };
    const brief = await run({ [REGION]: region([short]) });
    expect(efs(brief)?.outcome).toBe('fail');
    expect(efs(brief)?.message).toContain('is kept 3 days');
    const unlocked = await run({ [REGION]: region([point(2)]) }, { requireVaultLock: true });
    expect(efs(unlocked)?.outcome).toBe('fail');
    expect(efs(unlocked)?.message).toContain('vault Default is not locked');
    const locked = await run({ [REGION]: region([point(2)], { vaults: [{ BackupVaultName: 'Default', BackupVaultArn: VAULT_ARN, Locked: true, MinRetentionDays: 7 }] }) }, { requireVaultLock: true });
    expect(efs(locked)?.outcome).toBe('pass');
    expect(efs(locked)?.details?.protection).toMatchObject({ vaultLocked: true, vaultMinRetentionDays: 7 });
  });

  it('requireCopy: a copy in another region (SourceBackupVaultArn = the source vault) passes; none fails', async () => {
    const copyRegion = (points: Array<Record<string, unknown>>): PeerBackupRegion => ({ protectedResources: [], vaults: [{ BackupVaultName: 'dr-copies', BackupVaultArn: COPY_VAULT_ARN }], recoveryPoints: points });
    const copy = point(1, { BackupVaultName: 'dr-copies', BackupVaultArn: COPY_VAULT_ARN, SourceBackupVaultArn: VAULT_ARN, RecoveryPointArn: `arn:aws:backup:us-east-1:${ACCOUNT}:recovery-point:copy-1` });
    const present = await run({ [REGION]: region([point(2)]), 'us-east-1': copyRegion([copy]) }, { requireCopy: true, requireProtectedResources: false });
    expect(efs(present)?.outcome).toBe('pass');
    expect(efs(present)?.details?.protection).toMatchObject({ copy: { vault: COPY_VAULT_ARN } });
    const absent = await run({ [REGION]: region([point(2)]), 'us-east-1': copyRegion([]) }, { requireCopy: true, requireProtectedResources: false });
    expect(efs(absent)?.outcome).toBe('fail');
    expect(efs(absent)?.message).toContain('no copy of fs-12345678');
  });

  it('a configured ARN no backup protects fails; a region with nothing protected fails', async () => {
    const rds = `arn:aws:rds:${REGION}:${ACCOUNT}:db:billing`;
    const result = await run({ [REGION]: region([point(2)]) }, { resources: [EFS, rds] });
    expect(result.findings.map((f) => [f.resource, f.outcome])).toEqual([
      [`${ACCOUNT}/${REGION}/${EFS}`, 'pass'],
      [`${ACCOUNT}/${REGION}/${rds}`, 'fail'],
    ]);
    expect(result.findings[1]?.message).toContain('is not protected by AWS Backup');
    const empty = await run({ [REGION]: region([], { protectedResources: [] }) });
    expect(empty.findings.map((f) => [f.resource, f.outcome])).toEqual([[`${ACCOUNT}/${REGION}`, 'fail']]);
  });

  it('a body that fails the schema, or a wrong secret key, is a run error, never a verdict', async () => {
    peer.accounts[ACCOUNT] = { backup: { [REGION]: region([point(2)]) } };
    const spec = AwsTarget.parse(peerTarget(peer, { regions: [REGION] }));
    const go = () => runProbe({ probe, target: { name: spec.name, spec }, params: probe.params.parse({}), runId: 'r1', scheduledFor: new Date(), timeoutMs: 20_000, log });
    peer.respondNext('ListRecoveryPointsByBackupVault', { status: 200, contentType: 'application/json', body: '{"RecoveryPoints":[{"RecoveryPointArn":7}]}' });
    const malformed = (await go()).result;
    expect(malformed.findings).toEqual([]);
    expect(malformed.error?.message).toMatch(/ListRecoveryPointsByBackupVault/);
    useEnvCredentials({ accessKeyId: EXAMPLE_KEY.accessKeyId, secretAccessKey: 'not-the-secret' });
    resetAwsClientState();
    try {
      const wrong = (await go()).result;
      expect(wrong.findings).toEqual([]);
      expect(wrong.error?.class).toBe('AwsCredentialsError');
    } finally {
      useEnvCredentials(EXAMPLE_KEY);
      resetAwsClientState();
    }
  });

  it('AccessDenied is an unknown finding naming the action, never a pass', async () => {
    const points = await run({ [REGION]: region([point(2)]) }, {}, ['backup:ListRecoveryPointsByBackupVault']);
    expect(efs(points)?.outcome).toBe('unknown');
    expect(efs(points)?.details?.missingAction).toBe('backup:ListRecoveryPointsByBackupVault');
    expect(efs(points)?.message).toContain('vigil may not call backup:ListRecoveryPointsByBackupVault');
    const jobs = await run({ [REGION]: region([point(2)]) }, {}, ['backup:ListBackupJobs']);
    expect(jobs.findings.find((f) => f.resource === `${ACCOUNT}/${REGION}/backup-jobs`)).toMatchObject({ outcome: 'unknown', details: { missingAction: 'backup:ListBackupJobs' } });
    const all = await run({ [REGION]: region([point(2)]) }, {}, ['backup:ListProtectedResources']);
    expect(all.findings).toEqual([expect.objectContaining({ resource: `${ACCOUNT}/${REGION}`, outcome: 'unknown', details: expect.objectContaining({ missingAction: 'backup:ListProtectedResources' }) })]);
  });
});
