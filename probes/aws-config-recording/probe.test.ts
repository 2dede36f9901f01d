/**
 * aws-config-recording: collect → evaluate through the real Config SDK client (JSON 1.1,
 * X-Amz-Target, one client per region) against the local AWS peer, fed with the AWS CLI's
 * DescribeConfigurationRecorders / ...Status examples reshaped per region.
 */
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resetAwsClientState } from '../../src/clients/aws/client.js';
import { AwsTarget } from '../../src/config/schema.js';
import { runProbe } from '../../src/probe/runner.js';
import { cliExample, EXAMPLE_KEY, peerTarget, startAwsPeer, useEnvCredentials, type AwsPeer, type PeerConfigRegion } from '../../test/helpers/aws-peer.js';
import { probe, type Params } from './probe.js';

const log = pino({ level: 'silent' });
const ACCOUNT = '111111111111';
type Item = Record<string, unknown>;
const recorders = () => cliExample<{ ConfigurationRecorders: Item[] }>('describe-configuration-recorders').ConfigurationRecorders;
const statuses = () => cliExample<{ ConfigurationRecordersStatus: Item[] }>('describe-configuration-recorder-status').ConfigurationRecordersStatus;
/** The CLI example region, with the status fields overridden. */
const region = (status: Item = {}, recorder: Item = {}): PeerConfigRegion => ({
  recorders: recorders().map((r) => ({ ...r, ...recorder })),
  statuses: statuses().map((s) => ({ ...s, ...status })),
});

describe('aws-config-recording against the AWS peer', () => {
  let peer: AwsPeer;
  beforeAll(async () => {
    peer = await startAwsPeer({ keys: [{ ...EXAMPLE_KEY, account: ACCOUNT }], accounts: { [ACCOUNT]: {} } });
    useEnvCredentials(EXAMPLE_KEY);
  });
  afterAll(() => peer.close());
  beforeEach(() => {
    resetAwsClientState();
    peer.requests.length = 0;
  });

  async function run(regions: string[], params: Partial<Params> = {}) {
    const spec = AwsTarget.parse(peerTarget(peer, { regions }));
    const { result } = await runProbe({ probe, target: { name: spec.name, spec }, params: probe.params.parse(params), runId: 'r1', scheduledFor: new Date(), timeoutMs: 20_000, log });
    return result;
  }

  it('one finding per region: SUCCESS and Success both pass, the recorder that is off fails, a region without a recorder fails', async () => {
    peer.accounts[ACCOUNT] = {
      regions: {
        'us-east-1': region(),
        'eu-west-1': region({ lastStatus: 'Success' }),
        'eu-central-1': region({ recording: false, lastStatus: 'Success' }),
      },
    };
    const result = await run(['us-east-1', 'eu-west-1', 'eu-central-1', 'ap-southeast-2']);
    expect(result.error).toBeUndefined();
    expect(result.findings.map((f) => [f.resource, f.outcome])).toEqual([
      [`${ACCOUNT}/us-east-1`, 'pass'],
      [`${ACCOUNT}/eu-west-1`, 'pass'],
      [`${ACCOUNT}/eu-central-1`, 'fail'],
      [`${ACCOUNT}/ap-southeast-2`, 'fail'],
    ]);
    expect(result.findings[2]?.message).toBe(
      'AWS Config recorder default in eu-central-1 is not recording: start it: aws configservice start-configuration-recorder --configuration-recorder-name default --region eu-central-1',
    );
    expect(result.findings[3]?.message).toContain('no AWS Config configuration recorder in ap-southeast-2');
    // One Config client per region: each call signed for its own region.
    expect(new Set(peer.requests.filter((r) => r.service === 'config').map((r) => r.signingRegion))).toEqual(new Set(['us-east-1', 'eu-west-1', 'eu-central-1', 'ap-southeast-2']));
  });

  it('a failed last status and a partial recording group fail with their fixes', async () => {
    peer.accounts[ACCOUNT] = {
      regions: {
        'us-east-1': region({ lastStatus: 'Failure', lastErrorCode: 'AccessDenied' }),
        'eu-west-1': region({}, { recordingGroup: { allSupported: false, includeGlobalResourceTypes: false, resourceTypes: ['AWS::EC2::Instance'], recordingStrategy: { useOnly: 'INCLUSION_BY_RESOURCE_TYPES' } } }),
      },
    };
    const result = await run(['us-east-1', 'eu-west-1']);
    expect(result.findings.map((f) => f.outcome)).toEqual(['fail', 'fail']);
    expect(result.findings[0]?.message).toContain('last status is Failure (AccessDenied)');
    expect(result.findings[1]?.message).toContain('does not record all supported resource types');
    // With an explicit list that the recorder covers, the same region passes.
    const listed = await run(['eu-west-1'], { resourceTypes: ['AWS::EC2::Instance'] });
    expect(listed.findings.map((f) => f.outcome)).toEqual(['pass']);
  });

  it('a refused DescribeConfigurationRecorders is unknown for each region, naming the action', async () => {
    peer.accounts[ACCOUNT] = { deny: ['config:DescribeConfigurationRecorders'], regions: { 'us-east-1': region() } };
    const result = await run(['us-east-1', 'eu-west-1']);
    expect(result.error).toBeUndefined();
    expect(result.findings).toMatchObject([
      { resource: `${ACCOUNT}/us-east-1`, outcome: 'unknown', details: { missingAction: 'config:DescribeConfigurationRecorders' } },
      { resource: `${ACCOUNT}/eu-west-1`, outcome: 'unknown', details: { missingAction: 'config:DescribeConfigurationRecorders' } },
    ]);
  });

  it('malformed JSON is a run error, never a verdict', async () => {
    peer.accounts[ACCOUNT] = { regions: { 'us-east-1': region() } };
    peer.respondNext('DescribeConfigurationRecorderStatus', { status: 200, contentType: 'application/x-amz-json-1.1', body: '{"ConfigurationRecordersStatus": [{"name": "default", "recording": tr' });
    const result = await run(['us-east-1']);
    expect(result.findings).toEqual([]);
    expect(result.error?.class).toBe('MalformedResponseError');
  });

  it('a well-formed answer without the recorder list is a run error, not "no recorder"', async () => {
    peer.accounts[ACCOUNT] = { regions: { 'us-east-1': region() } };
    peer.respondNext('DescribeConfigurationRecorders', { status: 200, contentType: 'application/x-amz-json-1.1', body: '{}' });
    const result = await run(['us-east-1']);
    expect(result.findings).toEqual([]);
    expect(result.error?.class).toBe('MalformedResponseError');
  });

  it('the peer refuses to answer outside the Config model (a member the model lacks), so a test cannot pass on an invented payload', async () => {
    peer.accounts[ACCOUNT] = { regions: { 'us-east-1': region({}, { recordingGroup: { allSupported: true, everything: true } }) } };
    const result = await run(['us-east-1']);
    expect(result.findings).toEqual([]);
    expect(result.error?.message).toContain('PeerModelViolation');
    expect(peer.requests.find((r) => r.action === 'DescribeConfigurationRecorders')?.status).toBe(500);
  });

  it('throttling, then success', async () => {
    peer.accounts[ACCOUNT] = { regions: { 'us-east-1': region() } };
    peer.throttleNext('DescribeConfigurationRecorders', 1);
    const result = await run(['us-east-1']);
    expect(result.findings.map((f) => f.outcome)).toEqual(['pass']);
    expect(peer.requests.filter((r) => r.action === 'DescribeConfigurationRecorders').map((r) => r.status)).toEqual([400, 200]);
  });
});
