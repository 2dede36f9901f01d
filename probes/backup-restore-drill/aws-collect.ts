/**
 * collect of backup-restore-drill's AWS source: per region, the restore testing plans, each plan's
 * selections, and the restore jobs created in the window (one list for all plans). Loaded by
 * probe.ts on the first AWS run only, with the AWS SDK it imports.
 */
import { ListRestoreJobsCommand, ListRestoreTestingPlansCommand, ListRestoreTestingSelectionsCommand } from '@aws-sdk/client-backup';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AwsAccount } from '../../src/clients/aws/client.js';
import { observeAccount, readable } from '../../src/clients/aws/observe.js';
import { allPages } from '../../src/clients/aws/pages.js';
import type { AwsDrillObservation, AwsDrillParams, AwsDrillSpec, PlanView, RestoreJobView } from './aws.js';

const PAGE_SIZE = 1000;
const Time = z.date().transform((d) => d.toISOString());

const PlansAnswer = z.looseObject({
  RestoreTestingPlans: z
    .array(
      z.looseObject({
        RestoreTestingPlanName: z.string().min(1),
        RestoreTestingPlanArn: z.string().min(1),
        ScheduleExpression: z.string().default(''),
        StartWindowHours: z.number().optional(),
        LastExecutionTime: Time.optional(),
        CreationTime: Time.optional(),
      }),
    )
    .default([]),
  NextToken: z.string().optional(),
});
const SelectionsAnswer = z.looseObject({ RestoreTestingSelections: z.array(z.looseObject({ ProtectedResourceType: z.string().min(1) })).default([]), NextToken: z.string().optional() });
const JobsAnswer = z.looseObject({
  RestoreJobs: z
    .array(
      z.looseObject({
        RestoreJobId: z.string().min(1),
        CreatedBy: z.looseObject({ RestoreTestingPlanArn: z.string().optional() }).optional(),
        ResourceType: z.string().optional(),
        Status: z.string().default('UNKNOWN'),
        StatusMessage: z.string().optional(),
        CreationDate: Time.optional(),
        CompletionDate: Time.optional(),
        CreatedResourceArn: z.string().optional(),
        ValidationStatus: z.string().optional(),
        ValidationStatusMessage: z.string().optional(),
        DeletionStatus: z.string().optional(),
        DeletionStatusMessage: z.string().optional(),
      }),
    )
    .default([]),
  NextToken: z.string().optional(),
});


const opt = <K extends string, V>(key: K, value: V | undefined) => (value === undefined ? {} : ({ [key]: value } as Record<K, V>));

async function regionView(aws: AwsAccount, region: string, since: Date) {
  const plans = await readable(async (): Promise<PlanView[]> => {
    const pages = await allPages(`backup:ListRestoreTestingPlans in ${region}`, PlansAnswer, (t) => aws.backup(region, new ListRestoreTestingPlansCommand({ MaxResults: PAGE_SIZE, ...(t ? { NextToken: t } : {}) })));
    const list = pages.flatMap((p) => p.RestoreTestingPlans);
    return Promise.all(
      list.map(async (p) => ({
        name: p.RestoreTestingPlanName,
        arn: p.RestoreTestingPlanArn,
        schedule: p.ScheduleExpression,
        ...opt('startWindowHours', p.StartWindowHours),
        ...opt('lastExecutionTime', p.LastExecutionTime),
        ...opt('creationTime', p.CreationTime),
        selections: await readable(async () => {
          const sel = await allPages(`backup:ListRestoreTestingSelections ${p.RestoreTestingPlanName} in ${region}`, SelectionsAnswer, (t) =>
            aws.backup(region, new ListRestoreTestingSelectionsCommand({ RestoreTestingPlanName: p.RestoreTestingPlanName, MaxResults: PAGE_SIZE, ...(t ? { NextToken: t } : {}) })),
          );
          return sel.flatMap((s) => s.RestoreTestingSelections.map((x) => x.ProtectedResourceType));
        }),
      })),
    );
  });
  const jobs = await readable(async (): Promise<RestoreJobView[]> => {
    const pages = await allPages(`backup:ListRestoreJobs in ${region}`, JobsAnswer, (t) => aws.backup(region, new ListRestoreJobsCommand({ ByCreatedAfter: since, MaxResults: PAGE_SIZE, ...(t ? { NextToken: t } : {}) })));
    return pages.flatMap((p) =>
      p.RestoreJobs.map((j) => ({
        id: j.RestoreJobId,
        ...opt('planArn', j.CreatedBy?.RestoreTestingPlanArn),
        ...opt('resourceType', j.ResourceType),
        status: j.Status,
        ...opt('statusMessage', j.StatusMessage),
        ...opt('creationDate', j.CreationDate),
        ...opt('completionDate', j.CompletionDate),
        ...opt('createdResourceArn', j.CreatedResourceArn),
        ...opt('validationStatus', j.ValidationStatus),
        ...opt('validationStatusMessage', j.ValidationStatusMessage),
        ...opt('deletionStatus', j.DeletionStatus),
        ...opt('deletionStatusMessage', j.DeletionStatusMessage),
      })),
    );
  });
  return { region, plans, jobs };
}

/** Reads restore testing in every configured region of the target's account. */
export async function collectAwsDrills(spec: AwsDrillSpec, target: string, params: AwsDrillParams, ctx: { signal: AbortSignal; log: Logger; now: Date }): Promise<AwsDrillObservation> {
  if (params.targets.length > 0 && !params.targets.includes(spec.aws.name)) return { source: 'aws', target, selected: false, account: spec.aws.name };
  const since = new Date(ctx.now.getTime() - params.maxDaysSinceDrill * 86_400_000);
  const regions = params.regions.length > 0 ? spec.aws.regions.filter((r) => params.regions.includes(r)) : spec.aws.regions;
  const observed = await observeAccount(spec.aws, ctx, async (aws) => ({ since: since.toISOString(), regions: await Promise.all(regions.map((r) => regionView(aws, r, since))) }));
  return { source: 'aws', target, selected: true, ...observed };
}
