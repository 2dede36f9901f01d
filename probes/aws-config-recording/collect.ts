/**
 * collect of aws-config-recording: per configured region, the customer-managed configuration
 * recorders and their status. Loaded by probe.ts on the first run only, with the AWS SDK it imports.
 */
import { DescribeConfigurationRecordersCommand, DescribeConfigurationRecorderStatusCommand } from '@aws-sdk/client-config-service';
import { observeAccount, readable } from '../../src/clients/aws/observe.js';
import type { AwsTarget } from '../../src/config/schema.js';
import type { CollectContext } from '../../src/probe/contract.js';
import { MalformedResponseError } from '../../src/probe/errors.js';
import type { Params, RecorderView, RecordingObservation } from './probe.js';
import { RecordersAnswer, StatusAnswer } from '../../src/clients/aws/config-recorders.js';

/** Reads the recorders and their status in every configured region of the target's account. */
export function collectRecording(ctx: CollectContext<AwsTarget, Params>): Promise<RecordingObservation> {
  return observeAccount(ctx.target.spec, ctx, async (aws) => ({
    regions: await Promise.all(
      ctx.target.spec.regions.map(async (region) => ({
        region,
        recorders: await readable(async () => {
          const recorders = RecordersAnswer.safeParse(await aws.config(region, new DescribeConfigurationRecordersCommand({})));
          if (!recorders.success) throw new MalformedResponseError(`config:DescribeConfigurationRecorders in ${region} answered something else than ConfigurationRecorders`);
          const statuses = StatusAnswer.safeParse(await aws.config(region, new DescribeConfigurationRecorderStatusCommand({})));
          if (!statuses.success) throw new MalformedResponseError(`config:DescribeConfigurationRecorderStatus in ${region} answered something else than ConfigurationRecordersStatus`);
          return recorders.data.ConfigurationRecorders.filter((r) => r.servicePrincipal === undefined).map((r): RecorderView => {
            const status = statuses.data.ConfigurationRecordersStatus.find((s) => s.name === r.name && s.servicePrincipal === undefined);
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
        }),
      })),
    ),
  }));
}
