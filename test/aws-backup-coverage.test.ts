/**
 * aws-backup-freshness coverage: resources AWS Config records that no AWS Backup plan protects.
 * collect → evaluate through the real @aws-sdk/client-config-service (JSON 1.1, SigV4) and
 * @aws-sdk/client-backup (REST-JSON) against the local AWS peer; every Config answer is serialised
 * from botocore's Config model (a member or ResourceType the model lacks fails the test). The
 * recorders are the AWS CLI's describe-configuration-recorders / …-status examples; the inventory
 * items have the shape of the AWS CLI's list-discovered-resources example (resourceType,
 * resourceId, resourceName — not in the shared test data, so written here).
 */
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resetAwsClientState } from '../src/clients/aws/client.js';
import { AwsTarget } from '../src/config/schema.js';
import { runProbe } from '../src/probe/runner.js';
import { probe, type Params } from '../probes/aws-backup-freshness/probe.js';
import { backupCliExample, cliExample, EXAMPLE_KEY, peerTarget, startAwsPeer, useEnvCredentials, type AwsPeer, type PeerAccount, type PeerConfigRegion } from './helpers/aws-peer.js';

const log = pino({ level: 'silent' });
const HOUR = 3_600_000;
type Item = Record<string, unknown>;

/** The CLI example's EFS backup job: its account, region, vault and file system. */
const job = backupCliExample<{ BackupJobs: Item[] }>('list-backup-jobs').BackupJobs[1] as Record<string, string>;
const ACCOUNT = (job.BackupVaultArn as string).split(':')[4] as string;
const REGION = (job.BackupVaultArn as string).split(':')[3] as string;
const VAULT_ARN = job.BackupVaultArn as string;
const EFS = job.ResourceArn as string;
const EFS_ID = EFS.split('/').pop() as string;
const RDS_ARN = `arn:aws:rds:${REGION}:${ACCOUNT}:db:billing`;
const ago = (hours: number) => new Date(Date.now() - hours * HOUR).toISOString();

function point(resourceArn: string, type: string, hoursAgo = 3): Item {
  return {
    RecoveryPointArn: `arn:aws:backup:${REGION}:${ACCOUNT}:recovery-point:${type}-${hoursAgo}-${Math.random().toString(16).slice(2, 10)}`,
    BackupVaultName: 'Default',
    BackupVaultArn: VAULT_ARN,
    ResourceArn: resourceArn,
    ResourceType: type,
    Status: 'COMPLETED',
    CreationDate: ago(hoursAgo + 0.1),
    CompletionDate: ago(hoursAgo),
    IsEncrypted: true,
    CalculatedLifecycle: { DeleteAt: new Date(Date.now() + 30 * 24 * HOUR).toISOString() },
  };
}

/** AWS Backup protects the CLI example's EFS file system and the RDS instance `billing`. */
const backup = {
  [REGION]: {
    protectedResources: [
      { ResourceArn: EFS, ResourceType: 'EFS', ResourceName: EFS_ID, LastBackupTime: ago(3) },
      { ResourceArn: RDS_ARN, ResourceType: 'RDS', ResourceName: 'billing', LastBackupTime: ago(3) },
    ],
    vaults: [{ BackupVaultName: 'Default', BackupVaultArn: VAULT_ARN, Locked: false }],
    recoveryPoints: [point(EFS, 'EFS'), point(RDS_ARN, 'RDS')],
    backupJobs: [],
  },
};

const recorders = () => cliExample<{ ConfigurationRecorders: Item[] }>('describe-configuration-recorders').ConfigurationRecorders;
const statuses = () => cliExample<{ ConfigurationRecordersStatus: Item[] }>('describe-configuration-recorder-status').ConfigurationRecordersStatus;

/** Config in the region: the CLI example recorder (all supported types, recording, SUCCESS) unless overridden, and its inventory. */
function config(discovered: Item[], over: { recorder?: Item; status?: Item; none?: boolean } = {}): Record<string, PeerConfigRegion> {
  return {
    [REGION]: {
      recorders: over.none ? [] : recorders().map((r) => ({ ...r, ...over.recorder })),
      statuses: over.none ? [] : statuses().map((s) => ({ ...s, ...over.status })),
      discovered,
    },
  };
}

/** Inventory items, list-discovered-resources shaped. */
const inventory: Item[] = [
  { resourceType: 'AWS::EFS::FileSystem', resourceId: EFS_ID },
  // RDS: Config's resourceId is the instance's resource id; the ARN carries the name.
  { resourceType: 'AWS::RDS::DBInstance', resourceId: 'db-ABCDEFGHIJKLMNOPQRSTU1', resourceName: 'billing' },
  { resourceType: 'AWS::RDS::DBInstance', resourceId: 'db-ZYXWVUTSRQPONMLKJIHGF2', resourceName: 'analytics' },
  { resourceType: 'AWS::EC2::Volume', resourceId: 'vol-0a1b2c3d4e5f67890' },
  // Deleted: Config lists it only with includeDeletedResources, which vigil does not ask for.
  { resourceType: 'AWS::EC2::Volume', resourceId: 'vol-0deleted000000001', resourceDeletionTime: 1700000000 },
  // Not a coverage type here: never asked for.
  { resourceType: 'AWS::EC2::Instance', resourceId: 'i-1a2b3c4d' },
];

describe('aws-backup-freshness coverage from AWS Config', () => {
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

  async function run(account: PeerAccount, params: Partial<Params> = { coverageTypes: ['EFS', 'RDS', 'EBS'] }) {
    peer.accounts[ACCOUNT] = account;
    const spec = AwsTarget.parse(peerTarget(peer, { regions: [REGION] }));
    const { result } = await runProbe({ probe, target: { name: spec.name, spec }, params: probe.params.parse(params), runId: 'r1', scheduledFor: new Date(), timeoutMs: 20_000, log });
    return result;
  }
  const at = (suffix: string) => `${ACCOUNT}/${REGION}/${suffix}`;

  it('each resource Config records that no backup plan protects fails, naming it; protected and deleted ones do not', async () => {
    const result = await run({ backup, regions: config(inventory) });
    expect(result.error).toBeUndefined();
    expect(result.findings.map((f) => [f.resource, f.outcome])).toEqual([
      [at(EFS), 'pass'],
      [at(RDS_ARN), 'pass'],
      [at('coverage/EFS'), 'pass'],
      [at(`arn:aws:rds:${REGION}:${ACCOUNT}:db:analytics`), 'fail'],
      [at(`arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-0a1b2c3d4e5f67890`), 'fail'],
    ]);
    const analytics = result.findings[3];
    expect(analytics?.message).toBe(
      `analytics (db-ZYXWVUTSRQPONMLKJIHGF2), a AWS::RDS::DBInstance AWS Config records in ${REGION}, has no AWS Backup recovery point (ListProtectedResources does not list it): no backup plan selects it, or its first backup has not completed — add it to a backup plan's resource assignment (by tag or ARN), or check its backup jobs`,
    );
    expect(analytics?.details).toMatchObject({ level: 0, resourceType: 'RDS', coverage: 'aws-config', configResourceType: 'AWS::RDS::DBInstance', configResourceId: 'db-ZYXWVUTSRQPONMLKJIHGF2' });
    expect(result.findings[2]?.message).toBe(`all 1 AWS::EFS::FileSystem resources AWS Config records in ${REGION} are protected by AWS Backup`);
    expect(result.findings[0]?.details?.coverage).toBe("checked against AWS Config's inventory of AWS::EFS::FileSystem (coverageTypes)");
    // Config calls signed for config in the region, one inventory list per coverage type, with Config's largest page.
    const configCalls = peer.requests.filter((r) => r.service === 'config');
    expect(new Set(configCalls.map((r) => `${r.signingService} ${r.signingRegion} ${r.status}`))).toEqual(new Set([`config ${REGION} 200`]));
    expect(configCalls.map((r) => r.action).sort()).toEqual(['DescribeConfigurationRecorderStatus', 'DescribeConfigurationRecorders', 'ListDiscoveredResources', 'ListDiscoveredResources', 'ListDiscoveredResources']);
    expect(configCalls.filter((r) => r.action === 'ListDiscoveredResources').map((r) => r.params).sort((a, b) => String(a.resourceType).localeCompare(String(b.resourceType)))).toEqual([
      { resourceType: 'AWS::EC2::Volume', limit: 100 },
      { resourceType: 'AWS::EFS::FileSystem', limit: 100 },
      { resourceType: 'AWS::RDS::DBInstance', limit: 100 },
    ]);
  });

  it('250 volumes over 3 pages: every page is read, every unprotected volume is its own finding', async () => {
    const volumes = Array.from({ length: 250 }, (_, i) => ({ resourceType: 'AWS::EC2::Volume', resourceId: `vol-${String(i).padStart(17, '0')}` }));
    const protectedVolume = `arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-${String(7).padStart(17, '0')}`;
    const base = backup[REGION]!;
    const withVolume = {
      [REGION]: {
        ...base,
        protectedResources: [...base.protectedResources, { ResourceArn: protectedVolume, ResourceType: 'EBS', LastBackupTime: ago(3) }],
        recoveryPoints: [...base.recoveryPoints, point(protectedVolume, 'EBS')],
      },
    };
    const result = await run({ backup: withVolume, regions: config(volumes) }, { coverageTypes: ['EBS'] });
    expect(peer.requests.filter((r) => r.action === 'ListDiscoveredResources')).toHaveLength(3);
    const fails = result.findings.filter((f) => f.details?.coverage === 'aws-config');
    expect(fails).toHaveLength(249);
    expect(fails.every((f) => f.outcome === 'fail')).toBe(true);
    expect(fails.some((f) => f.resource === at(protectedVolume))).toBe(false);
    expect(result.findings.find((f) => f.resource === at(protectedVolume))?.outcome).toBe('pass');
  });

  it.each([
    ['a stopped recorder', { status: { recording: false } }, 'recorder default is not recording'],
    ['a failing recorder', { status: { lastStatus: 'FAILURE', lastErrorCode: 'AccessDenied' } }, "recorder default's last status is FAILURE (AccessDenied)"],
    ['a recorder of other types', { recorder: { recordingGroup: { allSupported: false, resourceTypes: ['AWS::EC2::Instance'] } } }, 'recorder default does not record AWS::EC2::Volume'],
    [
      'a recorder excluding the type',
      { recorder: { recordingGroup: { allSupported: false, exclusionByResourceTypes: { resourceTypes: ['AWS::EC2::Volume'] }, recordingStrategy: { useOnly: 'EXCLUSION_BY_RESOURCE_TYPES' } } } },
      'recorder default excludes AWS::EC2::Volume',
    ],
    ['no recorder', { none: true }, `no AWS Config recorder in ${REGION}`],
  ])('%s: coverage is unknown with the reason, and no unprotected resource is claimed', async (_name, over, reason) => {
    const result = await run({ backup, regions: config(inventory, over) }, { coverageTypes: ['EBS'] });
    const coverage = result.findings.find((f) => f.resource === at('coverage/EBS'));
    expect(coverage?.outcome).toBe('unknown');
    expect(coverage?.message).toBe(
      `could not tell which EBS resources (AWS::EC2::Volume) in ${ACCOUNT} ${REGION} no backup plan protects: ${reason} — record AWS::EC2::Volume with AWS Config in ${REGION} (or remove EBS from coverageTypes)`,
    );
    expect(result.findings.filter((f) => f.details?.coverage === 'aws-config')).toEqual([]);
  });

  it('a recorder that records only some types still covers those', async () => {
    const result = await run({ backup, regions: config(inventory, { recorder: { recordingGroup: { allSupported: false, resourceTypes: ['AWS::EFS::FileSystem'] } } }) }, { coverageTypes: ['EFS', 'EBS'] });
    expect(result.findings.find((f) => f.resource === at('coverage/EFS'))?.outcome).toBe('pass');
    expect(result.findings.find((f) => f.resource === at('coverage/EBS'))?.outcome).toBe('unknown');
  });

  it.each([['config:ListDiscoveredResources'], ['config:DescribeConfigurationRecorders']])('AccessDenied on %s: coverage unknown naming the action, freshness still judged', async (action) => {
    const result = await run({ backup, regions: config(inventory), deny: [action] }, { coverageTypes: ['RDS'] });
    expect(result.error).toBeUndefined();
    const coverage = result.findings.find((f) => f.resource === at('coverage/RDS'));
    expect(coverage?.outcome).toBe('unknown');
    expect(coverage?.details?.missingAction).toBe(action);
    expect(coverage?.message).toContain(`vigil may not call ${action}`);
    expect(result.findings.find((f) => f.resource === at(RDS_ARN))?.outcome).toBe('pass');
    expect(result.findings.filter((f) => f.details?.coverage === 'aws-config')).toEqual([]);
  });

  it('no resource of the type in Config is not_applicable, not a pass', async () => {
    const result = await run({ backup, regions: config([]) }, { coverageTypes: ['DynamoDB'] });
    expect(result.findings.find((f) => f.resource === at('coverage/DynamoDB'))).toMatchObject({ outcome: 'not_applicable', message: `AWS Config records no AWS::DynamoDB::Table in ${REGION}` });
  });

  it('without coverageTypes AWS Config is not called and the findings say coverage was not checked', async () => {
    const result = await run({ backup, regions: config(inventory) }, {});
    expect(peer.requests.filter((r) => r.service === 'config')).toEqual([]);
    expect(result.findings.map((f) => f.outcome)).toEqual(['pass', 'pass']);
    expect(result.findings[0]?.details?.coverage).toBe('unknown: resources no backup plan selects are not listed for this type (not in coverageTypes)');
  });

  it('a malformed inventory answer is a run error, never a verdict', async () => {
    peer.accounts[ACCOUNT] = { backup, regions: config(inventory) };
    peer.respondNext('ListDiscoveredResources', { status: 200, contentType: 'application/x-amz-json-1.1', body: '{"resourceIdentifiers":[{"resourceId":7}]}' });
    const spec = AwsTarget.parse(peerTarget(peer, { regions: [REGION] }));
    const { result } = await runProbe({ probe, target: { name: spec.name, spec }, params: probe.params.parse({ coverageTypes: ['EBS'] }), runId: 'r1', scheduledFor: new Date(), timeoutMs: 20_000, log });
    expect(result.findings).toEqual([]);
    expect(result.error?.message).toContain('config:ListDiscoveredResources AWS::EC2::Volume');
  });

  it('a coverage type vigil cannot map to AWS Config is refused at config load, naming the supported ones', () => {
    const parsed = probe.params.safeParse({ coverageTypes: ['FSx'] });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['coverageTypes', 0]);
    expect(parsed.error?.issues[0]?.message).toBe('expected one of EBS, EC2, RDS, Aurora, DynamoDB, EFS, S3');
  });
});
