/**
 * collect of aws-root-mfa: GetAccountSummary, and ListVirtualMFADevices when root has MFA and
 * hardware is required. Loaded by probe.ts on the first run only, with the AWS SDK it imports.
 */
import { GetAccountSummaryCommand, ListVirtualMFADevicesCommand } from '@aws-sdk/client-iam';
import { z } from 'zod';
import { observeAccount, readable } from '../../src/clients/aws/observe.js';
import type { AwsTarget } from '../../src/config/schema.js';
import type { CollectContext } from '../../src/probe/contract.js';
import { MalformedResponseError } from '../../src/probe/errors.js';
import type { Params, RootMfaData, RootMfaObservation, RootSummary } from './probe.js';

/** GetAccountSummary's SummaryMap: AWS's summaryKeyType → integer. */
const SummaryAnswer = z.looseObject({ SummaryMap: z.record(z.string(), z.number().int()) });
const VirtualDevicesAnswer = z.looseObject({
  VirtualMFADevices: z.array(z.looseObject({ SerialNumber: z.string(), User: z.looseObject({ Arn: z.string() }).optional() })),
  IsTruncated: z.boolean().optional(),
  Marker: z.string().optional(),
});

const flag = (map: Record<string, number>, key: string): boolean | undefined => (map[key] === undefined ? undefined : map[key] !== 0);

/** Reads root's summary flags and, when needed, the virtual MFA devices assigned to root. */
export async function collectRootMfa(ctx: CollectContext<AwsTarget, Params>): Promise<RootMfaObservation> {
  return observeAccount(ctx.target.spec, ctx, async (aws, account) => {
    const summary = await readable(async () => {
      const answer = SummaryAnswer.safeParse(await aws.iam(new GetAccountSummaryCommand({})));
      if (!answer.success || answer.data.SummaryMap.AccountMFAEnabled === undefined) {
        throw new MalformedResponseError('iam:GetAccountSummary answered without SummaryMap.AccountMFAEnabled');
      }
      const map = answer.data.SummaryMap;
      return {
        mfaEnabled: map.AccountMFAEnabled !== 0,
        accessKeysPresent: flag(map, 'AccountAccessKeysPresent'),
        passwordPresent: flag(map, 'AccountPasswordPresent'),
        signingCertificatesPresent: flag(map, 'AccountSigningCertificatesPresent'),
      } satisfies RootSummary;
    });
    const data: RootMfaData = { summary };
    if (summary.readable && summary.value.mfaEnabled && ctx.params.requireHardware) {
      data.rootVirtualDevices = await readable(async () => {
        const serials: string[] = [];
        let marker: string | undefined;
        for (let pages = 0; ; pages++) {
          if (pages >= 100) throw new MalformedResponseError('iam:ListVirtualMFADevices returned more than 100 pages');
          const answer = VirtualDevicesAnswer.safeParse(await aws.iam(new ListVirtualMFADevicesCommand({ AssignmentStatus: 'Assigned', MaxItems: 1000, ...(marker ? { Marker: marker } : {}) })));
          if (!answer.success) throw new MalformedResponseError('iam:ListVirtualMFADevices answered without VirtualMFADevices');
          // Old answers carry whitespace inside ARNs.
          for (const d of answer.data.VirtualMFADevices) {
            const arn = d.User?.Arn.replace(/\s+/g, '');
            if (arn !== undefined && new RegExp(`^arn:[a-z-]+:iam::${account}:root$`).test(arn)) serials.push(d.SerialNumber.replace(/\s+/g, ''));
          }
          if (!answer.data.IsTruncated) break;
          if (!answer.data.Marker) throw new MalformedResponseError('iam:ListVirtualMFADevices is truncated but has no Marker');
          marker = answer.data.Marker;
        }
        return serials;
      });
    }
    return data;
  });
}
