import { z } from 'zod';
import { deniedFinding, type AccountObservation, type Readable } from '../../src/clients/aws/denied.js';
import type { AwsTarget } from '../../src/config/schema.js';
import { defineProbe, type Finding, type ProbeResult } from '../../src/probe/contract.js';

const ResourceType = z.string().regex(/^[a-zA-Z0-9._ -]{1,50}$/, 'expected an AWS Backup resource type such as EBS, RDS, DynamoDB');

/**
 * AWS Backup resource types whose inventory the coverage check reads from AWS Config, with the
 * Config resource type and how the resource's ARN is formed from what `ListDiscoveredResources`
 * gives (`resourceId`, `resourceName`). Only types whose ARN is known from those two fields.
 */
export const COVERAGE_TYPES = {
  EBS: { configType: 'AWS::EC2::Volume', arn: (p: ArnParts) => `arn:${p.partition}:ec2:${p.region}:${p.account}:volume/${p.id}` },
  EC2: { configType: 'AWS::EC2::Instance', arn: (p: ArnParts) => `arn:${p.partition}:ec2:${p.region}:${p.account}:instance/${p.id}` },
  // Config's resourceId of an RDS instance or cluster is its resource id (db-…, cluster-…); the ARN uses the name.
  RDS: { configType: 'AWS::RDS::DBInstance', arn: (p: ArnParts) => `arn:${p.partition}:rds:${p.region}:${p.account}:db:${p.name ?? p.id}` },
  Aurora: { configType: 'AWS::RDS::DBCluster', arn: (p: ArnParts) => `arn:${p.partition}:rds:${p.region}:${p.account}:cluster:${p.name ?? p.id}` },
  DynamoDB: { configType: 'AWS::DynamoDB::Table', arn: (p: ArnParts) => `arn:${p.partition}:dynamodb:${p.region}:${p.account}:table/${p.name ?? p.id}` },
  EFS: { configType: 'AWS::EFS::FileSystem', arn: (p: ArnParts) => `arn:${p.partition}:elasticfilesystem:${p.region}:${p.account}:file-system/${p.id}` },
  S3: { configType: 'AWS::S3::Bucket', arn: (p: ArnParts) => `arn:${p.partition}:s3:::${p.name ?? p.id}` },
} as const satisfies Record<string, { configType: string; arn: (p: ArnParts) => string }>;
export type CoverageType = keyof typeof COVERAGE_TYPES;

/** What an ARN of a discovered resource is built from. */
interface ArnParts {
  partition: string;
  region: string;
  account: string;
  id: string;
  name: string | undefined;
}

/** The probe's params, validated at config load time. */
export const Params = z.strictObject({
  /** Recovery point objective: the newest good recovery point must be younger than this. Default 26 h (a daily plan plus its start window). */
  rpoHours: z.number().positive().max(24 * 366).default(26),
  /** Per AWS Backup resource type (`EBS`, `RDS`, `DynamoDB`…), an RPO overriding `rpoHours`. */
  rpoHoursByType: z.record(ResourceType, z.number().positive().max(24 * 366)).default({}),
  /** Only these resource types (empty: every type). */
  resourceTypes: z.array(ResourceType).default([]),
  /** ARNs that must each be protected: one missing from ListProtectedResources fails. Empty: every protected resource is judged. */
  resources: z.array(z.string().regex(/^arn:aws[a-z-]*:/, 'expected an ARN')).default([]),
  /** Only these of the target's regions (empty: all of them). */
  regions: z.array(z.string()).default([]),
  /** How far back recovery points and jobs are listed. Default: twice the largest RPO (so the point before the newest is seen too). */
  lookbackHours: z.number().positive().max(24 * 400).optional(),
  /** L2: an unencrypted recovery point fails. Default true. */
  requireEncryption: z.boolean().default(true),
  /** L2: a recovery point not encrypted with a customer-managed KMS key fails. Default false. */
  requireCustomerManagedKey: z.boolean().default(false),
  /** L2: a recovery point AWS will delete sooner than this many days after it was taken fails (CalculatedLifecycle.DeleteAt). 0: no check. Default 7. */
  minRetentionDays: z.number().int().min(0).max(36_500).default(7),
  /** L2: the vault holding the newest recovery point must be locked (Vault Lock) with MinRetentionDays ≥ minRetentionDays. Default false. */
  requireVaultLock: z.boolean().default(false),
  /** L2: a copy of the newest recovery point must exist in another vault (another region of the target; a recovery point whose SourceBackupVaultArn is the source vault). Default false. */
  requireCopy: z.boolean().default(false),
  /** A configured region where AWS Backup protects nothing fails. Default true. */
  requireProtectedResources: z.boolean().default(true),
  /**
   * Coverage: AWS Backup resource types (EBS, EC2, RDS, Aurora, DynamoDB, EFS, S3) whose resources AWS Config
   * records; each one no backup plan protects fails. Needs AWS Config recording those types in the region
   * (else coverage is unknown, with the reason). Empty (default): coverage is not checked, and the findings say so.
   */
  coverageTypes: z
    .array(z.enum(Object.keys(COVERAGE_TYPES) as [CoverageType, ...CoverageType[]], { error: `expected one of ${Object.keys(COVERAGE_TYPES).join(', ')}` }))
    .default([]),
});
export type Params = z.output<typeof Params>;

/** A resource AWS Backup protects (ListProtectedResources). */
export interface ProtectedView {
  arn: string;
  type: string;
  name?: string;
  lastBackupTime?: string;
}

/** A backup vault (ListBackupVaults). */
export interface VaultView {
  name: string;
  arn: string;
  locked: boolean;
  minRetentionDays?: number;
}

/** A recovery point (ListRecoveryPointsByBackupVault). Times ISO. */
export interface PointView {
  arn: string;
  vaultArn: string;
  sourceVaultArn?: string;
  resourceArn: string;
  resourceType?: string;
  status: string;
  statusMessage?: string;
  creationDate?: string;
  completionDate?: string;
  deleteAt?: string;
  encrypted?: boolean;
  keyType?: string;
}

/** A backup job (ListBackupJobs). */
export interface JobView {
  id: string;
  resourceArn: string;
  state: string;
  statusMessage?: string;
  messageCategory?: string;
  creationDate?: string;
}

/** A customer-managed AWS Config recorder and its status (DescribeConfigurationRecorders / …Status). */
export interface CoverageRecorderView {
  name: string;
  allSupported: boolean;
  /** `recordingStrategy.useOnly`, when AWS gives it. */
  strategy: string | undefined;
  resourceTypes: string[];
  excludedTypes: string[];
  recording: boolean | undefined;
  lastStatus: string | undefined;
  lastErrorCode: string | undefined;
}

/** A resource AWS Config lists (ListDiscoveredResources; deleted resources are not listed). */
export interface DiscoveredView {
  id: string;
  name?: string;
}

/** The AWS Config side of the coverage check in one region (only read when `coverageTypes` is set). */
export interface CoverageRegionView {
  recorders: Readable<CoverageRecorderView[]>;
  /** Per coverage type, what Config lists of its Config resource type. */
  discovered: Array<{ type: CoverageType; resources: Readable<DiscoveredView[]> }>;
}

/** One region's AWS Backup state, each part readable or refused. */
export interface BackupRegionView {
  region: string;
  protectedResources: Readable<ProtectedView[]>;
  vaults: Readable<VaultView[]>;
  /** Recovery points of every vault created since `since` (denied when ListBackupVaults or ListRecoveryPointsByBackupVault is). */
  points: Readable<PointView[]>;
  jobs: Readable<JobView[]>;
  /** AWS Config's inventory for the coverage check; absent when `coverageTypes` is empty. */
  coverage?: CoverageRegionView;
}

/** What collect hands to evaluate. `since`: start of the listing window (ISO). */
export type FreshnessObservation = AccountObservation<{ since: string; regions: BackupRegionView[] }>;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const GOOD_POINT = new Set(['COMPLETED', 'AVAILABLE']);
const BAD_POINT = new Set(['PARTIAL', 'EXPIRED', 'STOPPED']);
const BAD_JOB = new Set(['FAILED', 'ABORTED', 'EXPIRED', 'PARTIAL']);

/** The listing window: `lookbackHours`, or twice the largest RPO configured. */
export function lookbackHours(params: Params): number {
  return params.lookbackHours ?? 2 * Math.max(params.rpoHours, ...Object.values(params.rpoHoursByType));
}

/** The evidence-ladder rungs this probe can reach (L3+ need a restore: backup-restore-drill). */
export const levelMeaning = { 0: 'no level met', 1: 'L1 backups succeed on schedule', 2: 'L2 backups are protected' } as const;

const hoursOld = (now: Date, iso: string) => Math.round(((now.getTime() - Date.parse(iso)) / HOUR) * 10) / 10;
const when = (p: PointView) => p.completionDate ?? p.creationDate;
const byNewest = <T>(time: (x: T) => string | undefined) => (a: T, b: T) => Date.parse(time(b) ?? '') - Date.parse(time(a) ?? '');
const said = (m: string | undefined) => (m ? `: "${m.slice(0, 200)}"` : '');

/** The region in an ARN (`arn:aws:ec2:us-east-1:…`), if any. */
function arnRegion(arn: string): string | undefined {
  return arn.split(':')[3] || undefined;
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

function judgeResource(
  o: FreshnessObservation,
  view: BackupRegionView,
  res: ProtectedView,
  all: { points: Map<string, PointView[]>; vaults: VaultView[]; regionPoints: Map<string, PointView[]>; regionJobs: Map<string, JobView[]> },
  params: Params,
  now: Date,
): Finding {
  const resource = `${o.account}/${view.region}/${res.arn}`;
  const base = { resourceType: res.type, region: view.region };
  if (!view.points.readable) return { ...deniedFinding(resource, `the recovery points of ${res.arn}`, view.points), details: { ...base, level: 0, missingAction: view.points.action } };
  const rpo = params.rpoHoursByType[res.type] ?? params.rpoHours;
  const own = (all.regionPoints.get(res.arn) ?? []).filter((p) => p.sourceVaultArn === undefined && when(p) !== undefined).sort(byNewest(when));
  const good = own.filter((p) => GOOD_POINT.has(p.status));
  const newest = good[0];
  const newestAt = newest ? (when(newest) as string) : undefined;
  const problems: string[] = [];
  const notes: string[] = [];

  // L1: a good recovery point within the RPO, and no failure since it.
  if (!newest) {
    const last = res.lastBackupTime ? `; AWS's last backup of it: ${res.lastBackupTime} (${hoursOld(now, res.lastBackupTime)} h ago)` : '';
    problems.push(`no COMPLETED or AVAILABLE recovery point of ${res.name ?? res.arn} since ${o.data?.since} (RPO ${rpo} h)${last}: check the backup plan's rules and the jobs in AWS Backup > Jobs`);
  } else if (hoursOld(now, newestAt as string) > rpo) {
    problems.push(`newest good recovery point of ${res.name ?? res.arn} is ${hoursOld(now, newestAt as string)} h old (RPO ${rpo} h, ${newest.status} ${newestAt}): the backup plan has not succeeded since; check its schedule and jobs`);
  }
  if (newest && newest.completionDate === undefined) notes.push(`recovery point ${newest.arn} has no CompletionDate: aged from its CreationDate`);
  const afterGood = (t: string | undefined) => !newestAt || (t !== undefined && Date.parse(t) > Date.parse(newestAt));
  const badPoints = own.filter((p) => BAD_POINT.has(p.status));
  for (const p of badPoints) {
    const text = `recovery point ${p.arn} is ${p.status}${said(p.statusMessage)}`;
    if (afterGood(when(p))) problems.push(`${text} and no good one since`);
    else notes.push(`${text} (a later one is good)`);
  }
  const jobs = [...(all.regionJobs.get(res.arn) ?? [])].sort(byNewest((j) => j.creationDate));
  const badJobs = jobs.filter((j) => BAD_JOB.has(j.state));
  for (const j of badJobs) {
    const text = `backup job ${j.id} (${j.creationDate}) ${j.state}${said(j.statusMessage)}`;
    if (afterGood(j.creationDate)) problems.push(`${text} and no good recovery point since`);
    else notes.push(`${text} (a later recovery point is good)`);
  }
  const withIssues = jobs.filter((j) => j.state === 'COMPLETED' && (j.statusMessage !== undefined || (j.messageCategory !== undefined && j.messageCategory !== 'SUCCESS')));
  for (const j of withIssues) notes.push(`backup job ${j.id} (${j.creationDate}) completed with issues${said(j.statusMessage ?? j.messageCategory)}`);
  const fresh = problems.length === 0;

  // L2: how the newest good recovery point is protected.
  const protection: Record<string, unknown> = {};
  const l2: string[] = [];
  // Unencrypted but not enforced: reported, and level 2 is not met.
  let unprotected = false;
  if (newest) {
    protection.encrypted = newest.encrypted === true;
    protection.customerManagedKey = newest.keyType === 'CUSTOMER_MANAGED_KMS_KEY';
    if (newest.encrypted !== true) {
      const text = `recovery point ${newest.arn} is not encrypted: use a vault with a KMS key (a resource type that inherits the source's encryption must be encrypted at the source)`;
      if (params.requireEncryption) l2.push(text);
      else {
        notes.push(text);
        unprotected = true;
      }
    } else if (params.requireCustomerManagedKey && newest.keyType !== 'CUSTOMER_MANAGED_KMS_KEY') l2.push(`recovery point ${newest.arn} is encrypted with an AWS-owned key, not a customer-managed KMS key`);
    const retentionDays = newest.deleteAt ? Math.floor((Date.parse(newest.deleteAt) - Date.parse(newestAt as string)) / DAY) : undefined;
    protection.retentionDays = retentionDays ?? 'indefinite';
    if (retentionDays !== undefined && retentionDays < params.minRetentionDays) {
      l2.push(`recovery point ${newest.arn} is kept ${retentionDays} days (deleted ${newest.deleteAt}), less than minRetentionDays ${params.minRetentionDays}: raise the rule's lifecycle DeleteAfterDays`);
    }
    const vault = all.vaults.find((v) => v.arn === newest.vaultArn);
    protection.vault = vault?.name ?? newest.vaultArn;
    protection.vaultLocked = vault?.locked === true;
    if (vault?.minRetentionDays !== undefined) protection.vaultMinRetentionDays = vault.minRetentionDays;
    if (params.requireVaultLock) {
      if (vault?.locked !== true) l2.push(`vault ${vault?.name ?? newest.vaultArn} is not locked: apply AWS Backup Vault Lock (PutBackupVaultLockConfiguration) with MinRetentionDays`);
      else if ((vault.minRetentionDays ?? 0) < params.minRetentionDays) l2.push(`vault ${vault.name} is locked with MinRetentionDays ${vault.minRetentionDays ?? 'unset'}, less than ${params.minRetentionDays}`);
    }
    const copies = (all.points.get(res.arn) ?? []).filter((p) => p.sourceVaultArn === newest.vaultArn && GOOD_POINT.has(p.status)).sort(byNewest(when));
    protection.copy = copies[0] ? { vault: copies[0].vaultArn, at: when(copies[0]) } : 'none seen';
    if (params.requireCopy && !copies[0]) {
      l2.push(`no copy of ${res.name ?? res.arn}'s recovery points from vault ${vault?.name ?? newest.vaultArn} in another vault of the target's regions since ${o.data?.since}: add a copy action to the backup rule (another region or account; copies into another account are only visible there)`);
    }
  }
  const level = !fresh ? 0 : newest && l2.length === 0 && !unprotected ? 2 : 1;
  const failures = [...problems, ...l2];
  const outcome: Finding['outcome'] = failures.length > 0 ? 'fail' : 'pass';
  const message =
    outcome === 'fail'
      ? failures.join('; ')
      : `newest recovery point of ${res.name ?? res.arn} is ${hoursOld(now, newestAt as string)} h old (RPO ${rpo} h, ${newest?.status})${notes.length > 0 ? `; ${notes.join('; ')}` : ''}; ${levelMeaning[level as 0 | 1 | 2]}`;
  return {
    resource,
    outcome,
    message,
    details: {
      ...base,
      level,
      rpoHours: rpo,
      ...(newest ? { newestRecoveryPoint: newest.arn, newestRecoveryPointAt: newestAt, newestStatus: newest.status, agedFrom: newest.completionDate ? 'CompletionDate' : 'CreationDate', ageHours: hoursOld(now, newestAt as string) } : {}),
      ...(res.lastBackupTime ? { lastBackupTime: res.lastBackupTime } : {}),
      recoveryPointsInWindow: own.length,
      protection,
      ...(badPoints.length > 0 ? { badRecoveryPoints: badPoints.map((p) => ({ arn: p.arn, status: p.status, message: p.statusMessage })) } : {}),
      ...(badJobs.length > 0 ? { failedJobs: badJobs.map((j) => ({ id: j.id, state: j.state, message: j.statusMessage })) } : {}),
      ...(withIssues.length > 0 ? { completedWithIssues: withIssues.map((j) => ({ id: j.id, message: j.statusMessage ?? j.messageCategory })) } : {}),
      ...(!view.jobs.readable ? { jobsUnread: view.jobs.action } : {}),
      ...(notes.length > 0 ? { notes } : {}),
      coverage: params.coverageTypes.includes(res.type as CoverageType)
        ? `checked against AWS Config's inventory of ${COVERAGE_TYPES[res.type as CoverageType].configType} (coverageTypes)`
        : 'unknown: resources no backup plan selects are not listed for this type (not in coverageTypes)',
    },
  };
}

/** Whether a recorder counts for `configType`: customer-managed, recording, last status success, and its recording group includes the type. */
function recorderProblem(r: CoverageRecorderView, configType: string): string | undefined {
  if (r.recording !== true) return `recorder ${r.name} ${r.recording === undefined ? 'has no status' : 'is not recording'}`;
  // AWS shows both `SUCCESS` and `Success`.
  if ((r.lastStatus ?? '').toLowerCase() !== 'success') return `recorder ${r.name}'s last status is ${r.lastStatus ?? 'unknown'}${r.lastErrorCode ? ` (${r.lastErrorCode})` : ''}`;
  if (r.strategy === 'EXCLUSION_BY_RESOURCE_TYPES') return r.excludedTypes.includes(configType) ? `recorder ${r.name} excludes ${configType}` : undefined;
  if (r.allSupported || r.resourceTypes.includes(configType)) return undefined;
  return `recorder ${r.name} does not record ${configType}`;
}

/** The last part of an ARN: the resource id or name (`vol-…`, `orders`, `mydb`, a bucket). */
function arnTail(arn: string): string {
  const rest = arn.split(':').slice(5).join(':');
  return rest.slice(Math.max(rest.lastIndexOf('/'), rest.lastIndexOf(':')) + 1);
}

/**
 * Coverage, per region × `coverageTypes` entry: every resource of the type that AWS Config lists and no
 * AWS Backup plan protects is a `fail` finding naming it (`<account>/<region>/<ARN>`, level 0); all of them
 * protected is one `pass` finding `<account>/<region>/coverage/<type>` (`not_applicable` when Config lists
 * none). Whenever Config or Backup cannot tell — recorders or inventory refused, no recorder recording the
 * type, ListProtectedResources refused — that finding is `unknown` with the reason, never a pass.
 */
function coverageFindings(o: FreshnessObservation, regions: readonly BackupRegionView[], params: Params): Finding[] {
  const findings: Finding[] = [];
  // Protected anywhere the target reads (a copy can list a resource in another region): by ARN, and by
  // (type, the region its ARN names, id or name). The region is part of the key: names of RDS instances,
  // clusters and DynamoDB tables are unique per region only, so `orders` protected in one region must not
  // cover an unprotected `orders` in another (S3 ARNs name no region; bucket names are global).
  const protectedArns = new Set<string>();
  const protectedKeys = new Set<string>();
  for (const r of regions) if (r.protectedResources.readable) for (const p of r.protectedResources.value) {
    protectedArns.add(p.arn);
    const at = arnRegion(p.arn) ?? '';
    protectedKeys.add(`${p.type}|${at}|${arnTail(p.arn)}`);
    if (p.name) protectedKeys.add(`${p.type}|${at}|${p.name}`);
  }
  for (const view of regions) {
    const partition = view.region.startsWith('cn-') ? 'aws-cn' : view.region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';
    for (const type of params.coverageTypes) {
      const { configType, arn } = COVERAGE_TYPES[type];
      const resource = `${o.account}/${view.region}/coverage/${type}`;
      const what = `which ${type} resources (${configType}) in ${o.account} ${view.region} no backup plan protects`;
      const cov = view.coverage;
      if (!cov) {
        findings.push({ resource, outcome: 'unknown', message: `could not tell ${what}: AWS Config was not read`, details: { region: view.region, resourceType: type } });
        continue;
      }
      if (!cov.recorders.readable) {
        findings.push({ ...deniedFinding(resource, `the AWS Config recorders of ${o.account} in ${view.region}, so could not tell ${what}`, cov.recorders) });
        continue;
      }
      const recorders = cov.recorders.value;
      const problems = recorders.map((r) => recorderProblem(r, configType));
      if (!problems.some((p) => p === undefined)) {
        const why = recorders.length === 0 ? `no AWS Config recorder in ${view.region}` : problems.join('; ');
        findings.push({
          resource,
          outcome: 'unknown',
          message: `could not tell ${what}: ${why} — record ${configType} with AWS Config in ${view.region} (or remove ${type} from coverageTypes)`,
          details: { region: view.region, resourceType: type, configResourceType: configType, recorders: problems.filter(Boolean) },
        });
        continue;
      }
      const listed = cov.discovered.find((d) => d.type === type)?.resources;
      if (!listed) {
        findings.push({ resource, outcome: 'unknown', message: `could not tell ${what}: AWS Config's inventory of ${configType} was not read`, details: { region: view.region, resourceType: type } });
        continue;
      }
      if (!listed.readable) {
        findings.push(deniedFinding(resource, `AWS Config's inventory of ${configType} in ${o.account} ${view.region}, so could not tell ${what}`, listed));
        continue;
      }
      if (!view.protectedResources.readable) {
        findings.push({ resource, outcome: 'unknown', message: `could not tell ${what}: ListProtectedResources was refused in ${view.region} (see that finding)`, details: { region: view.region, resourceType: type, missingAction: view.protectedResources.action } });
        continue;
      }
      let unprotected = 0;
      for (const d of listed.value) {
        const built = arn({ partition, region: view.region, account: o.account, id: d.id, name: d.name });
        const at = arnRegion(built) ?? '';
        const covered = protectedArns.has(built) || protectedKeys.has(`${type}|${at}|${d.id}`) || (d.name !== undefined && protectedKeys.has(`${type}|${at}|${d.name}`));
        if (covered) continue;
        unprotected++;
        findings.push({
          resource: `${o.account}/${view.region}/${built}`,
          outcome: 'fail',
          message: `${d.name && d.name !== d.id ? `${d.name} (${d.id})` : d.id}, a ${configType} AWS Config records in ${view.region}, has no AWS Backup recovery point (ListProtectedResources does not list it): no backup plan selects it, or its first backup has not completed — add it to a backup plan's resource assignment (by tag or ARN), or check its backup jobs`,
          details: { level: 0, region: view.region, resourceType: type, coverage: 'aws-config', configResourceType: configType, configResourceId: d.id, ...(d.name ? { configResourceName: d.name } : {}) },
        });
      }
      if (unprotected === 0)
        findings.push(
          listed.value.length === 0
            ? { resource, outcome: 'not_applicable', message: `AWS Config records no ${configType} in ${view.region}`, details: { region: view.region, resourceType: type, discovered: 0 } }
            : { resource, outcome: 'pass', message: `all ${listed.value.length} ${configType} resources AWS Config records in ${view.region} are protected by AWS Backup`, details: { region: view.region, resourceType: type, discovered: listed.value.length } },
        );
    }
  }
  return findings;
}

/** The pure verdict: one finding per protected resource (resource `<account>/<region>/<ARN>`); see README.md. */
export function evaluateFreshness(o: FreshnessObservation, params: Params, now: Date): Finding[] {
  if (o.denied) return [deniedFinding(o.account, `AWS Backup in ${o.account} (the role could not be assumed)`, o.denied)];
  const findings: Finding[] = [];
  const regions = o.data?.regions ?? [];
  // Indexed by resource ARN once: a run judges thousands of resources against tens of thousands of points.
  const points = groupBy(regions.flatMap((r) => (r.points.readable ? r.points.value : [])), (p) => p.resourceArn);
  const vaults = regions.flatMap((r) => (r.vaults.readable ? r.vaults.value : []));
  const seen = new Set<string>();
  // A copy into another region can make AWS list the resource there too: judge it in its own region (the one its ARN names) when that is read.
  const home = (arn: string, region: string) => arnRegion(arn) === region || !regions.some((r) => r.region === arnRegion(arn) && r.protectedResources.readable);
  for (const view of regions) {
    const where = `${o.account}/${view.region}`;
    if (!view.protectedResources.readable) {
      findings.push(deniedFinding(where, `the resources AWS Backup protects in ${o.account} ${view.region}`, view.protectedResources));
      continue;
    }
    if (!view.jobs.readable) findings.push(deniedFinding(`${where}/backup-jobs`, `the backup jobs of ${o.account} in ${view.region} (failed and completed-with-issues jobs are not seen)`, view.jobs));
    let list = view.protectedResources.value.filter((r) => home(r.arn, view.region) && !seen.has(r.arn));
    if (params.resourceTypes.length > 0) list = list.filter((r) => params.resourceTypes.includes(r.type));
    if (params.resources.length > 0) list = list.filter((r) => params.resources.includes(r.arn));
    for (const r of list) seen.add(r.arn);
    if (list.length === 0 && params.resources.length === 0) {
      const which = params.resourceTypes.length > 0 ? ` of type ${params.resourceTypes.join(', ')}` : '';
      findings.push(
        params.requireProtectedResources
          ? { resource: where, outcome: 'fail', message: `AWS Backup protects no resource${which} in ${view.region}: assign resources to a backup plan (or leave the region out of this probe's regions)`, details: { level: 0, region: view.region } }
          : { resource: where, outcome: 'not_applicable', message: `AWS Backup protects no resource${which} in ${view.region}`, details: { region: view.region } },
      );
    }
    const all = { points, vaults, regionPoints: groupBy(view.points.readable ? view.points.value : [], (p) => p.resourceArn), regionJobs: groupBy(view.jobs.readable ? view.jobs.value : [], (j) => j.resourceArn) };
    for (const r of list) findings.push(judgeResource(o, view, r, all, params, now));
  }
  const unreadable = regions.some((r) => !r.protectedResources.readable);
  for (const arn of params.resources) {
    if (seen.has(arn)) continue;
    const region = arnRegion(arn) ?? regions[0]?.region ?? '?';
    findings.push(
      unreadable
        ? { resource: `${o.account}/${region}/${arn}`, outcome: 'unknown', message: `could not tell whether ${arn} is protected: ListProtectedResources was refused in some region` }
        : { resource: `${o.account}/${region}/${arn}`, outcome: 'fail', message: `${arn} is not protected by AWS Backup in ${regions.map((r) => r.region).join(', ')}: assign it to a backup plan's resource selection`, details: { level: 0 } },
    );
  }
  if (params.coverageTypes.length > 0) {
    // A resource named twice (a configured ARN no plan protects is also in Config's inventory) gets one finding.
    const named = new Set(findings.map((f) => f.resource));
    for (const f of coverageFindings(o, regions, params)) if (!named.has(f.resource)) findings.push(f);
  }
  return findings;
}

/**
 * `vigil_backup_last_recovery_point_timestamp_seconds{target,resource_type}`: per configured target and
 * AWS Backup resource type, the oldest of the resources' newest good recovery points — the one an RPO
 * alert is about. Labelled by type, not by the discovered ARN, to keep cardinality bounded.
 */
export function lastRecoveryPointSamples(result: ProbeResult): Array<{ labels: Record<string, string>; value: number }> {
  const oldest = new Map<string, number>();
  for (const f of result.findings) {
    const d = f.details;
    if (typeof d?.resourceType !== 'string' || typeof d.newestRecoveryPointAt !== 'string') continue;
    const t = Date.parse(d.newestRecoveryPointAt) / 1000;
    if (!Number.isFinite(t)) continue;
    const key = d.resourceType.slice(0, 50);
    oldest.set(key, Math.min(oldest.get(key) ?? Infinity, t));
  }
  return [...oldest].map(([type, value]) => ({ labels: { target: result.target, resource_type: type }, value }));
}

export const probe = defineProbe<AwsTarget, Params, FreshnessObservation>({
  id: 'aws-backup-freshness',
  title: 'AWS Backup holds a fresh, protected recovery point of every protected resource',
  source: 'aws',
  controls: ['backups'],
  schedule: '23 */4 * * *',
  actions: [
    'backup:ListProtectedResources',
    'backup:ListBackupVaults',
    'backup:ListRecoveryPointsByBackupVault',
    'backup:ListBackupJobs',
    // Coverage (only with coverageTypes).
    'config:DescribeConfigurationRecorders',
    'config:DescribeConfigurationRecorderStatus',
    'config:ListDiscoveredResources',
  ],
  docs: {
    checks:
      'In every configured region of each `aws[]` account, for each resource AWS Backup protects (`ListProtectedResources`; optionally only `resourceTypes` or the listed `resources` ARNs, a listed ARN that is not protected fails): ' +
      'the newest recovery point with status COMPLETED or AVAILABLE, aged from CompletionDate (CreationDate when AWS gives none, said so), is younger than `rpoHours` (default 26, per type `rpoHoursByType`). ' +
      'Recovery points are listed per vault (`ListRecoveryPointsByBackupVault`, created in the last `lookbackHours`, every page), not per resource. PARTIAL/EXPIRED/STOPPED points and FAILED/ABORTED/EXPIRED/PARTIAL jobs (`ListBackupJobs`) ' +
      'with no good point since fail with AWS\'s message; older ones and COMPLETED jobs with a status message ("completed with issues") are noted. L2 (details.protection, level 2): encrypted (`requireEncryption`, optionally a customer-managed key), ' +
      'retained at least `minRetentionDays` (CalculatedLifecycle.DeleteAt), vault locked (`requireVaultLock`), a copy in another vault (`requireCopy`: a recovery point whose SourceBackupVaultArn is the source vault). ' +
      'Coverage (`coverageTypes`, e.g. [EBS, RDS]): with AWS Config recording those types in the region (`DescribeConfigurationRecorders`/`…Status`), every resource AWS Config lists (`ListDiscoveredResources`, 100 a page) that AWS Backup has no recovery point of (`ListProtectedResources`: no plan selects it, or its first backup has not completed) fails, naming it; without recording, or refused, coverage is unknown with the reason. Without coverageTypes, coverage is not checked.',
    permissions:
      '`backup:ListProtectedResources`, `backup:ListBackupVaults`, `backup:ListRecoveryPointsByBackupVault`, `backup:ListBackupJobs` in each region; with `coverageTypes` also `config:DescribeConfigurationRecorders`, `config:DescribeConfigurationRecorderStatus`, `config:ListDiscoveredResources` (and `sts:AssumeRole` on the role when `roleArn` is set).',
    remediation:
      'Stale or failed: open AWS Backup > Jobs, read the failed job\'s message (permissions of the backup role, a resource in a bad state, the start window too short), fix it and run an on-demand backup. ' +
      'Unprotected: give the vault a KMS key, raise the lifecycle DeleteAfterDays, apply Vault Lock, add a copy action to another region or account. See probes/aws-backup-freshness/README.md.',
  },
  params: Params,
  targets(config) {
    return config.aws.map((t) => ({ name: t.name, spec: t }));
  },
  // The I/O and the AWS SDK load on the first run, not at start-up (collect.ts).
  async collect(ctx) {
    return (await import('./collect.js')).collectFreshness(ctx);
  },
  evaluate(observation, params, now) {
    return evaluateFreshness(observation, params, now);
  },
  gauges: [
    {
      name: 'vigil_backup_last_recovery_point_timestamp_seconds',
      help: 'Per AWS target and AWS Backup resource type: the oldest of the resources\' newest COMPLETED/AVAILABLE recovery points, unix seconds',
      labelNames: ['target', 'resource_type'],
      fromResult: lastRecoveryPointSamples,
    },
  ],
});
