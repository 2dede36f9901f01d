import { z } from 'zod';
import { deniedFinding, type AccountObservation, type Readable } from '../../src/clients/aws/denied.js';
import type { AwsTarget } from '../../src/config/schema.js';
import { defineProbe, type Finding } from '../../src/probe/contract.js';

/** The probe's params, validated at config load time. */
export const Params = z.strictObject({
  /**
   * Resource types (e.g. `AWS::EC2::Instance`) the recorder must record. Default: none listed,
   * which means the recorder must record all supported resource types.
   */
  resourceTypes: z.array(z.string().regex(/^AWS::[A-Za-z0-9]+::[A-Za-z0-9]+$/, 'expected a resource type such as AWS::EC2::Instance')).default([]),
});
export type Params = z.output<typeof Params>;

/** One customer-managed configuration recorder and its status, as AWS Config describes them. */
export interface RecorderView {
  name: string;
  allSupported: boolean;
  /** `recordingStrategy.useOnly`, when AWS gives it. */
  strategy: string | undefined;
  resourceTypes: string[];
  excludedTypes: string[];
  /** From DescribeConfigurationRecorderStatus; undefined when AWS gave no status for this recorder. */
  recording: boolean | undefined;
  lastStatus: string | undefined;
  lastErrorCode: string | undefined;
}

/** What collect hands to evaluate: per configured region, the recorders or why they could not be read. */
export type RecordingObservation = AccountObservation<{ regions: Array<{ region: string; recorders: Readable<RecorderView[]> }> }>;

/** The pure verdict for one recorder: the problems that keep it from counting, empty when it is fine. */
function recorderProblems(r: RecorderView, params: Params): string[] {
  const problems: string[] = [];
  if (r.recording !== true) problems.push(r.recording === undefined ? 'has no status' : 'is not recording');
  // AWS shows both `SUCCESS` and `Success`.
  if (r.recording === true && (r.lastStatus ?? '').toLowerCase() !== 'success') problems.push(`last status is ${r.lastStatus ?? 'unknown'}${r.lastErrorCode ? ` (${r.lastErrorCode})` : ''}`);
  if (params.resourceTypes.length === 0) {
    if (!r.allSupported || (r.strategy !== undefined && r.strategy !== 'ALL_SUPPORTED_RESOURCE_TYPES')) problems.push('does not record all supported resource types');
  } else if (!r.allSupported) {
    const recorded = new Set(r.strategy === 'EXCLUSION_BY_RESOURCE_TYPES' ? [] : r.resourceTypes);
    const missing = r.strategy === 'EXCLUSION_BY_RESOURCE_TYPES' ? params.resourceTypes.filter((t) => r.excludedTypes.includes(t)) : params.resourceTypes.filter((t) => !recorded.has(t));
    if (missing.length > 0) problems.push(`does not record ${missing.join(', ')}`);
  }
  return problems;
}

/** The pure verdict: see README.md. One finding per configured region, resource `<account>/<region>`. */
export function evaluateRecording(o: RecordingObservation, params: Params): Finding[] {
  if (o.denied) return [deniedFinding(o.account, `AWS Config in ${o.account} (the role could not be assumed)`, o.denied)];
  return (o.data?.regions ?? []).map(({ region, recorders }): Finding => {
    const resource = `${o.account}/${region}`;
    if (!recorders.readable) return deniedFinding(resource, `the AWS Config recorders of ${o.account} in ${region}`, recorders);
    if (recorders.value.length === 0) {
      return { resource, outcome: 'fail', message: `no AWS Config configuration recorder in ${region}: set up AWS Config (console > AWS Config > Set up, or aws configservice put-configuration-recorder) recording all resource types` };
    }
    const judged = recorders.value.map((r) => ({ r, problems: recorderProblems(r, params) }));
    const good = judged.find((j) => j.problems.length === 0);
    if (good) return { resource, outcome: 'pass', message: `recorder ${good.r.name} in ${region} is recording ${params.resourceTypes.length > 0 ? 'the required resource types' : 'all supported resource types'}, last status ${good.r.lastStatus}` };
    const { r, problems } = judged[0] as { r: RecorderView; problems: string[] };
    const fix = problems.some((p) => p.startsWith('last status'))
      ? 'check the recorder role and the delivery channel (S3 bucket policy) — aws configservice describe-configuration-recorder-status shows the error'
      : problems.some((p) => p.includes('recording'))
        ? `start it: aws configservice start-configuration-recorder --configuration-recorder-name ${r.name} --region ${region}`
        : 'set the recording group to all supported resource types (AWS Config > Settings > Recording strategy)';
    return { resource, outcome: 'fail', message: `AWS Config recorder ${r.name} in ${region} ${problems.join(', ')}: ${fix}`, details: { problems } };
  });
}

export const probe = defineProbe<AwsTarget, Params, RecordingObservation>({
  id: 'aws-config-recording',
  title: 'AWS Config records every configured region',
  source: 'aws',
  controls: ['configuration-monitoring'],
  schedule: '47 */6 * * *',
  actions: ['config:DescribeConfigurationRecorders', 'config:DescribeConfigurationRecorderStatus'],
  docs: {
    checks:
      'In every configured region of each `aws[]` account: a configuration recorder exists (`DescribeConfigurationRecorders`), is recording, records all supported resource types (or every type listed in `resourceTypes`), ' +
      'and its last status is success (`DescribeConfigurationRecorderStatus`; `SUCCESS` and `Success` both count). Service-linked recorders are not counted. One finding per region, resource `<account>/<region>`.',
    permissions: '`config:DescribeConfigurationRecorders`, `config:DescribeConfigurationRecorderStatus` in each region (and `sts:AssumeRole` on the role when `roleArn` is set).',
    remediation:
      'Set up AWS Config in the region with a recorder for all resource types and a delivery channel; start a stopped recorder (`aws configservice start-configuration-recorder`); a failing last status usually means the recorder role or the S3 bucket policy is wrong. ' +
      'See probes/aws-config-recording/README.md.',
  },
  params: Params,
  targets(config) {
    return config.aws.map((t) => ({ name: t.name, spec: t }));
  },
  // The I/O and the AWS SDK load on the first run, not at start-up (collect.ts).
  async collect(ctx) {
    return (await import('./collect.js')).collectRecording(ctx);
  },
  evaluate(observation, params) {
    return evaluateRecording(observation, params);
  },
});
