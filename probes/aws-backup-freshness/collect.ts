/**
 * collect of aws-backup-freshness: per configured region, the protected resources, the vaults,
 * every vault's recovery points of the listing window (per vault, not per resource: one call per
 * 1,000 points) and the backup jobs of the window. Loaded by probe.ts on the first run only, with
 * the AWS SDK it imports.
 */
import { ListBackupJobsCommand, ListBackupVaultsCommand, ListProtectedResourcesCommand, ListRecoveryPointsByBackupVaultCommand } from '@aws-sdk/client-backup';
import { DescribeConfigurationRecordersCommand, DescribeConfigurationRecorderStatusCommand, ListDiscoveredResourcesCommand } from '@aws-sdk/client-config-service';
import { z } from 'zod';
import type { AwsAccount } from '../../src/clients/aws/client.js';
import { observeAccount, readable } from '../../src/clients/aws/observe.js';
import { allPages } from '../../src/clients/aws/pages.js';
import type { AwsTarget } from '../../src/config/schema.js';
import type { CollectContext } from '../../src/probe/contract.js';
import { MalformedResponseError } from '../../src/probe/errors.js';
import { RecordersAnswer, StatusAnswer } from '../../src/clients/aws/config-recorders.js';
import {
  COVERAGE_TYPES,
  lookbackHours,
  type BackupRegionView,
  type CoverageRecorderView,
  type CoverageRegionView,
  type FreshnessObservation,
  type JobView,
  type Params,
  type PointView,
  type ProtectedView,
  type VaultView,
} from './probe.js';

/** AWS's largest page for these lists. */
const PAGE_SIZE = 1000;
/** Vaults listed at once per region. */
const VAULT_CONCURRENCY = 4;

const Time = z.date().transform((d) => d.toISOString());
const ProtectedAnswer = z.looseObject({
  Results: z.array(z.looseObject({ ResourceArn: z.string().min(1), ResourceType: z.string().default('unknown'), ResourceName: z.string().optional(), LastBackupTime: Time.optional() })).default([]),
  NextToken: z.string().optional(),
});
const VaultsAnswer = z.looseObject({
  BackupVaultList: z.array(z.looseObject({ BackupVaultName: z.string().min(1), BackupVaultArn: z.string().min(1), Locked: z.boolean().optional(), MinRetentionDays: z.number().optional() })).default([]),
  NextToken: z.string().optional(),
});
const PointsAnswer = z.looseObject({
  RecoveryPoints: z
    .array(
      z.looseObject({
        RecoveryPointArn: z.string().min(1),
        BackupVaultArn: z.string().min(1),
        SourceBackupVaultArn: z.string().optional(),
        ResourceArn: z.string().min(1),
        ResourceType: z.string().optional(),
        Status: z.string().default('UNKNOWN'),
        StatusMessage: z.string().optional(),
        CreationDate: Time.optional(),
        CompletionDate: Time.optional(),
        CalculatedLifecycle: z.looseObject({ DeleteAt: Time.optional() }).optional(),
        IsEncrypted: z.boolean().optional(),
        EncryptionKeyType: z.string().optional(),
      }),
    )
    .default([]),
  NextToken: z.string().optional(),
});
const JobsAnswer = z.looseObject({
  BackupJobs: z
    .array(
      z.looseObject({
        BackupJobId: z.string().min(1),
        ResourceArn: z.string().default(''),
        State: z.string().default('UNKNOWN'),
        StatusMessage: z.string().optional(),
        MessageCategory: z.string().optional(),
        CreationDate: Time.optional(),
      }),
    )
    .default([]),
  NextToken: z.string().optional(),
});

/** ListDiscoveredResources pages by `nextToken`; renamed for allPages. */
const DiscoveredAnswer = z
  .looseObject({
    resourceIdentifiers: z.array(z.looseObject({ resourceType: z.string().optional(), resourceId: z.string().min(1), resourceName: z.string().optional() })),
    nextToken: z.string().optional(),
  })
  .transform((d) => ({ ...d, NextToken: d.nextToken }));
/** Config's largest page for ListDiscoveredResources. */
const DISCOVERED_PAGE = 100;

/** The AWS Config side of the coverage check: the recorders, and the inventory of each coverage type (one list per type, 100 a page). */
async function coverageView(aws: AwsAccount, region: string, params: Params): Promise<CoverageRegionView> {
  const recorders = readable(async (): Promise<CoverageRecorderView[]> => {
    const list = RecordersAnswer.safeParse(await aws.config(region, new DescribeConfigurationRecordersCommand({})));
    if (!list.success) throw new MalformedResponseError(`config:DescribeConfigurationRecorders in ${region} answered something else than ConfigurationRecorders`);
    const statuses = StatusAnswer.safeParse(await aws.config(region, new DescribeConfigurationRecorderStatusCommand({})));
    if (!statuses.success) throw new MalformedResponseError(`config:DescribeConfigurationRecorderStatus in ${region} answered something else than ConfigurationRecordersStatus`);
    // Service-linked recorders record for their service only: they do not count.
    return list.data.ConfigurationRecorders.filter((r) => r.servicePrincipal === undefined).map((r) => {
      const status = statuses.data.ConfigurationRecordersStatus.find((x) => x.name === r.name && x.servicePrincipal === undefined);
      return {
        name: r.name ?? '(unnamed)',
        allSupported: r.recordingGroup?.allSupported === true,
        strategy: r.recordingGroup?.recordingStrategy?.useOnly,
        resourceTypes: r.recordingGroup?.resourceTypes ?? [],
        excludedTypes: r.recordingGroup?.exclusionByResourceTypes?.resourceTypes ?? [],
        recording: status?.recording,
        lastStatus: status?.lastStatus,
        lastErrorCode: status?.lastErrorCode,
      };
    });
  });
  // One type after the other: the walk runs beside the Backup reads, and keeps the requests in flight (and abort listeners) bounded.
  const discovered: CoverageRegionView['discovered'] = [];
  for (const type of params.coverageTypes) {
    const configType = COVERAGE_TYPES[type].configType;
    const resources = await readable(async () => {
      const pages = await allPages(`config:ListDiscoveredResources ${configType} in ${region}`, DiscoveredAnswer, (t) =>
        aws.config(region, new ListDiscoveredResourcesCommand({ resourceType: configType, limit: DISCOVERED_PAGE, ...(t ? { nextToken: t } : {}) })),
      );
      return pages.flatMap((p) => p.resourceIdentifiers.filter((r) => r.resourceType === undefined || r.resourceType === configType).map((r) => ({ id: r.resourceId, ...(r.resourceName ? { name: r.resourceName } : {}) })));
    });
    discovered.push({ type, resources });
  }
  return { recorders: await recorders, discovered };
}

/** Runs `fn` over `items`, at most `limit` at a time, in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T);
      }
    }),
  );
  return out;
}

async function regionView(aws: AwsAccount, region: string, since: Date, params: Params): Promise<BackupRegionView> {
  const coverage = params.coverageTypes.length > 0 ? coverageView(aws, region, params) : undefined;
  // Rejections are awaited below; keep an early one from being reported as unhandled meanwhile.
  coverage?.catch(() => undefined);
  const protectedResources = readable(async (): Promise<ProtectedView[]> => {
    const pages = await allPages(`backup:ListProtectedResources in ${region}`, ProtectedAnswer, (t) => aws.backup(region, new ListProtectedResourcesCommand({ MaxResults: PAGE_SIZE, ...(t ? { NextToken: t } : {}) })));
    return pages.flatMap((p) => p.Results.map((r) => ({ arn: r.ResourceArn, type: r.ResourceType, ...(r.ResourceName ? { name: r.ResourceName } : {}), ...(r.LastBackupTime ? { lastBackupTime: r.LastBackupTime } : {}) })));
  });
  const vaultList = (async (): Promise<VaultView[]> => {
    const pages = await allPages(`backup:ListBackupVaults in ${region}`, VaultsAnswer, (t) => aws.backup(region, new ListBackupVaultsCommand({ MaxResults: PAGE_SIZE, ...(t ? { NextToken: t } : {}) })));
    return pages.flatMap((p) => p.BackupVaultList.map((v) => ({ name: v.BackupVaultName, arn: v.BackupVaultArn, locked: v.Locked === true, ...(v.MinRetentionDays !== undefined ? { minRetentionDays: v.MinRetentionDays } : {}) })));
  })();
  const vaults = readable(() => vaultList);
  const points = readable(async (): Promise<PointView[]> => {
    const list = await vaultList;
    const perVault = await mapLimit(list, VAULT_CONCURRENCY, async (v) => {
      const pages = await allPages(`backup:ListRecoveryPointsByBackupVault ${v.name} in ${region}`, PointsAnswer, (t) =>
        aws.backup(region, new ListRecoveryPointsByBackupVaultCommand({ BackupVaultName: v.name, ByCreatedAfter: since, MaxResults: PAGE_SIZE, ...(t ? { NextToken: t } : {}) })),
      );
      return pages.flatMap((p) =>
        p.RecoveryPoints.map(
          (r): PointView => ({
            arn: r.RecoveryPointArn,
            vaultArn: r.BackupVaultArn,
            ...(r.SourceBackupVaultArn ? { sourceVaultArn: r.SourceBackupVaultArn } : {}),
            resourceArn: r.ResourceArn,
            ...(r.ResourceType ? { resourceType: r.ResourceType } : {}),
            status: r.Status,
            ...(r.StatusMessage ? { statusMessage: r.StatusMessage } : {}),
            ...(r.CreationDate ? { creationDate: r.CreationDate } : {}),
            ...(r.CompletionDate ? { completionDate: r.CompletionDate } : {}),
            ...(r.CalculatedLifecycle?.DeleteAt ? { deleteAt: r.CalculatedLifecycle.DeleteAt } : {}),
            ...(r.IsEncrypted !== undefined ? { encrypted: r.IsEncrypted } : {}),
            ...(r.EncryptionKeyType ? { keyType: r.EncryptionKeyType } : {}),
          }),
        ),
      );
    });
    return perVault.flat();
  });
  const jobs = readable(async (): Promise<JobView[]> => {
    const pages = await allPages(`backup:ListBackupJobs in ${region}`, JobsAnswer, (t) => aws.backup(region, new ListBackupJobsCommand({ ByCreatedAfter: since, MaxResults: PAGE_SIZE, ...(t ? { NextToken: t } : {}) })));
    return pages.flatMap((p) =>
      p.BackupJobs.map((j) => ({
        id: j.BackupJobId,
        resourceArn: j.ResourceArn,
        state: j.State,
        ...(j.StatusMessage ? { statusMessage: j.StatusMessage } : {}),
        ...(j.MessageCategory ? { messageCategory: j.MessageCategory } : {}),
        ...(j.CreationDate ? { creationDate: j.CreationDate } : {}),
      })),
    );
  });
  // A refused ListBackupVaults also makes the recovery points unreadable; the rejection is handled by both readables.
  vaultList.catch(() => undefined);
  return {
    region,
    protectedResources: await protectedResources,
    vaults: await vaults,
    points: await points,
    jobs: await jobs,
    ...(coverage ? { coverage: await coverage } : {}),
  };
}

/** Reads AWS Backup's state in every configured region (or the probe's `regions`) of the target's account. */
export function collectFreshness(ctx: CollectContext<AwsTarget, Params>): Promise<FreshnessObservation> {
  const since = new Date(ctx.now.getTime() - lookbackHours(ctx.params) * 3_600_000);
  const regions = ctx.params.regions.length > 0 ? ctx.target.spec.regions.filter((r) => ctx.params.regions.includes(r)) : ctx.target.spec.regions;
  return observeAccount(ctx.target.spec, ctx, async (aws) => ({
    since: since.toISOString(),
    regions: await Promise.all(regions.map((region) => regionView(aws, region, since, ctx.params))),
  }));
}
