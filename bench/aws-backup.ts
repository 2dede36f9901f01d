/**
 * AWS Backup freshness: the real aws-backup-freshness probe (collect, then evaluate) over one
 * emulated account with many protected resources, every answer of the local AWS peer (REST-JSON,
 * SigV4 verified, answers validated against botocore's Backup model) delayed by 30 ms.
 *
 *   npm run build && node dist/bench/aws-backup.js [resources=2000] [latencyMs=30] [vaults=4] [coverage]
 *
 * The account: `resources` EFS/EBS/RDS/DynamoDB resources spread over `vaults` vaults, each with a
 * daily recovery point for the last 7 days (the probe lists only its window: twice the RPO) and a
 * backup job per point; every 10th resource's newest point is 30 h old (stale), every 25th has a
 * FAILED job after its newest good point. Every verdict is checked against that.
 *
 * With `coverage`, the probe also checks coverage from AWS Config (`coverageTypes` EFS, EBS, RDS,
 * DynamoDB): Config's inventory lists every protected resource plus one unprotected resource per
 * 50, each of which must be its own fail finding.
 *
 * Targets: ≤ 10 s wall time and ≤ 1 request per 20 resources. Exits 1 when one is missed or a
 * verdict is wrong.
 */
import pino from 'pino';
import { resetAwsClientState } from '../src/clients/aws/client.js';
import { AwsTarget } from '../src/config/schema.js';
import { runProbe } from '../src/probe/runner.js';
import { probe } from '../probes/aws-backup-freshness/probe.js';
import { EXAMPLE_KEY, startAwsPeer, useEnvCredentials } from '../test/helpers/aws-peer.js';

const resourceCount = Number(process.argv[2] ?? 2000);
const latencyMs = Number(process.argv[3] ?? 30);
const vaultCount = Number(process.argv[4] ?? 4);
const coverage = process.argv[5] === 'coverage';
const targets = { seconds: 10, resourcesPerRequest: 20 };
const ACCOUNT = '123456789012';
const REGION = 'us-west-2';
const HOUR = 3_600_000;
const types = ['EFS', 'EBS', 'RDS', 'DynamoDB'] as const;
/** Per type: the resource's ARN (as AWS Backup lists it) and its AWS Config inventory item. */
const shapes = {
  EFS: (id: string) => ({ arn: `arn:aws:elasticfilesystem:${REGION}:${ACCOUNT}:file-system/fs-${id}`, item: { resourceType: 'AWS::EFS::FileSystem', resourceId: `fs-${id}` } }),
  EBS: (id: string) => ({ arn: `arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-${id}`, item: { resourceType: 'AWS::EC2::Volume', resourceId: `vol-${id}` } }),
  RDS: (id: string) => ({ arn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:db-${id}`, item: { resourceType: 'AWS::RDS::DBInstance', resourceId: `db-RESOURCEID${id}`, resourceName: `db-${id}` } }),
  DynamoDB: (id: string) => ({ arn: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/table-${id}`, item: { resourceType: 'AWS::DynamoDB::Table', resourceId: `table-${id}`, resourceName: `table-${id}` } }),
} as const;
const discovered: Array<Record<string, unknown>> = [];
let failed = false;

function check(ok: boolean, what: string): void {
  if (!ok) {
    failed = true;
    console.log(`  FAIL: ${what}`);
  }
}

const now = Date.now();
const iso = (hoursAgo: number) => new Date(now - hoursAgo * HOUR).toISOString();
const vaults = Array.from({ length: vaultCount }, (_, i) => ({ BackupVaultName: `vault-${i}`, BackupVaultArn: `arn:aws:backup:${REGION}:${ACCOUNT}:backup-vault:vault-${i}`, Locked: i % 2 === 0 }));
const protectedResources: Array<Record<string, unknown>> = [];
const recoveryPoints: Array<Record<string, unknown>> = [];
const backupJobs: Array<Record<string, unknown>> = [];
const expected = { pass: 0, fail: 0 };
for (let i = 0; i < resourceCount; i++) {
  const type = types[i % types.length] as string;
  const { arn, item } = shapes[type as (typeof types)[number]](String(i).padStart(5, '0'));
  discovered.push(item);
  const vault = vaults[i % vaultCount] as (typeof vaults)[number];
  const stale = i % 10 === 0;
  const failedJob = !stale && i % 25 === 1;
  const newestHours = stale ? 30 : 3 + (i % 7);
  protectedResources.push({ ResourceArn: arn, ResourceType: type, ResourceName: `r-${i}`, LastBackupTime: iso(newestHours) });
  for (let d = 0; d < 7; d++) {
    const hoursAgo = newestHours + d * 24;
    const done = iso(hoursAgo);
    recoveryPoints.push({
      RecoveryPointArn: `arn:aws:backup:${REGION}:${ACCOUNT}:recovery-point:${i}-${d}`,
      BackupVaultName: vault.BackupVaultName,
      BackupVaultArn: vault.BackupVaultArn,
      ResourceArn: arn,
      ResourceType: type,
      Status: 'COMPLETED',
      CreationDate: iso(hoursAgo + 0.5),
      CompletionDate: done,
      IsEncrypted: true,
      CalculatedLifecycle: { DeleteAt: new Date(Date.parse(done) + 35 * 24 * HOUR).toISOString() },
    });
    backupJobs.push({ BackupJobId: `job-${i}-${d}`, ResourceArn: arn, ResourceType: type, BackupVaultName: vault.BackupVaultName, BackupVaultArn: vault.BackupVaultArn, CreationDate: iso(hoursAgo + 0.5), CompletionDate: done, State: 'COMPLETED' });
  }
  if (failedJob) backupJobs.push({ BackupJobId: `job-${i}-failed`, ResourceArn: arn, ResourceType: type, CreationDate: iso(1), State: 'FAILED', StatusMessage: 'The backup job failed because the resource is being modified' });
  if (stale || failedJob) expected.fail++;
  else expected.pass++;
}
const unprotected = coverage ? Math.floor(resourceCount / 50) : 0;
for (let i = 0; i < unprotected; i++) discovered.push(shapes[types[i % types.length] as (typeof types)[number]](`u${String(i).padStart(5, '0')}`).item);
expected.fail += unprotected;

useEnvCredentials(EXAMPLE_KEY);
const peer = await startAwsPeer({
  keys: [{ ...EXAMPLE_KEY, account: ACCOUNT }],
  accounts: {
    [ACCOUNT]: {
      backup: { [REGION]: { protectedResources, vaults, recoveryPoints, backupJobs } },
      regions: { [REGION]: { recorders: [{ name: 'default', recordingGroup: { allSupported: true } }], statuses: [{ name: 'default', recording: true, lastStatus: 'SUCCESS' }], discovered } },
    },
  },
  latencyMs,
});
const spec = AwsTarget.parse({ name: 'prod', regions: [REGION], endpoints: { sts: peer.url, backup: peer.url, config: peer.url } });
console.log(
  `aws-backup: ${resourceCount} protected resources, ${vaultCount} vaults, ${recoveryPoints.length} recovery points (7 days), ${backupJobs.length} jobs, ${latencyMs} ms per answer` +
    `${coverage ? `, coverage from AWS Config (${discovered.length} recorded, ${unprotected} unprotected)` : ''} (node ${process.version})`,
);

resetAwsClientState();
const t0 = performance.now();
const { result } = await runProbe({ probe, target: { name: 'prod', spec }, params: probe.params.parse(coverage ? { coverageTypes: [...types] } : {}), runId: 'bench', scheduledFor: new Date(now), timeoutMs: 120_000, log: pino({ level: 'silent' }) });
const seconds = (performance.now() - t0) / 1000;
const backupRequests = peer.requests.filter((r) => r.service === 'backup' || r.service === 'config');
const byAction = new Map<string, number>();
for (const r of backupRequests) byAction.set(r.action, (byAction.get(r.action) ?? 0) + 1);
const counts: Record<string, number> = { pass: 0, fail: 0, not_applicable: 0, unknown: 0 };
for (const f of result.findings) counts[f.outcome] = (counts[f.outcome] ?? 0) + 1;
const perRequest = resourceCount / peer.requests.length;
console.log(`probe: ${peer.requests.length} requests (${[...byAction].map(([a, n]) => `${a} ×${n}`).join(', ')}, sts ×${peer.requests.length - backupRequests.length}), ${seconds.toFixed(2)} s, ${result.findings.length} findings ${JSON.stringify(counts)}`);
console.log(`       ${perRequest.toFixed(0)} resources per request (target ≥ ${targets.resourcesPerRequest}), ${seconds.toFixed(2)} s (target ≤ ${targets.seconds} s)`);
check(result.error === undefined, `run error ${JSON.stringify(result.error)}`);
check(counts.pass === expected.pass && counts.fail === expected.fail && result.findings.length === resourceCount + unprotected, `verdicts ${JSON.stringify(counts)} != ${JSON.stringify(expected)}`);
check(perRequest >= targets.resourcesPerRequest, `${peer.requests.length} requests for ${resourceCount} resources: more than 1 per ${targets.resourcesPerRequest}`);
check(seconds <= targets.seconds, `${seconds.toFixed(2)} s > ${targets.seconds} s`);

await peer.close();
console.log(failed ? 'aws-backup: FAILED' : 'aws-backup: all targets met');
process.exit(failed ? 1 : 0);
