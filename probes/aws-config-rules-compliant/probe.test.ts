/**
 * aws-config-rules-compliant: collect → evaluate through the real Config SDK client against the
 * local AWS peer, with the rule and resources of the AWS CLI's DescribeComplianceByConfigRule /
 * GetComplianceDetailsByConfigRule examples.
 */
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resetAwsClientState } from '../../src/clients/aws/client.js';
import { AwsTarget } from '../../src/config/schema.js';
import { runProbe } from '../../src/probe/runner.js';
import { cliExample, EXAMPLE_KEY, peerTarget, startAwsPeer, useEnvCredentials, type AwsPeer, type PeerConfigRule } from '../../test/helpers/aws-peer.js';
import { probe, type Params } from './probe.js';

const log = pino({ level: 'silent' });
const ACCOUNT = '111111111111';

/** The CLI example's non-compliant rule with its three EC2 instances. */
function exampleRule(): PeerConfigRule {
  const details = cliExample<{ EvaluationResults: Array<{ EvaluationResultIdentifier: { EvaluationResultQualifier: { ResourceType: string; ResourceId: string; ConfigRuleName: string } } }> }>(
    'get-compliance-details-by-config-rule',
  ).EvaluationResults;
  const q = details.map((d) => d.EvaluationResultIdentifier.EvaluationResultQualifier);
  return { name: q[0]?.ConfigRuleName as string, compliance: 'NON_COMPLIANT', resources: q.map((x) => ({ type: x.ResourceType, id: x.ResourceId })) };
}

describe('aws-config-rules-compliant against the AWS peer', () => {
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

  async function run(params: Partial<Params> = {}, regions = ['us-east-1']) {
    const spec = AwsTarget.parse(peerTarget(peer, { regions }));
    const { result } = await runProbe({ probe, target: { name: spec.name, spec }, params: probe.params.parse(params), runId: 'r1', scheduledFor: new Date(), timeoutMs: 20_000, log });
    return result;
  }

  it('a non-compliant rule with 3 resources fails naming them and the count; INSUFFICIENT_DATA is unknown; compliant passes', async () => {
    peer.accounts[ACCOUNT] = {
      regions: {
        'us-east-1': {
          recorders: [],
          statuses: [],
          rules: [exampleRule(), { name: 'NewRule', compliance: 'INSUFFICIENT_DATA' }, { name: 'S3Encrypted', compliance: 'COMPLIANT' }, { name: 'NoLambdas', compliance: 'NOT_APPLICABLE' }],
        },
      },
    };
    const result = await run();
    expect(result.error).toBeUndefined();
    expect(result.findings.map((f) => [f.resource, f.outcome])).toEqual([
      [`${ACCOUNT}/us-east-1/InstanceTypesAreT2micro`, 'fail'],
      [`${ACCOUNT}/us-east-1/NewRule`, 'unknown'],
      [`${ACCOUNT}/us-east-1/S3Encrypted`, 'pass'],
      [`${ACCOUNT}/us-east-1/NoLambdas`, 'not_applicable'],
    ]);
    expect(result.findings[0]?.message).toBe(
      'AWS Config rule InstanceTypesAreT2micro in us-east-1: 3 non-compliant resource(s): AWS::EC2::Instance/i-1a2b3c4d, AWS::EC2::Instance/i-2a2b3c4d, AWS::EC2::Instance/i-3a2b3c4d — fix them or document an exception (AWS Config > Rules > InstanceTypesAreT2micro)',
    );
    expect(result.findings[0]?.details).toMatchObject({ nonCompliantCount: 3 });
    // One details call, for the one non-compliant rule.
    expect(peer.requests.filter((r) => r.action === 'GetComplianceDetailsByConfigRule').map((r) => r.params)).toEqual([
      { ConfigRuleName: 'InstanceTypesAreT2micro', ComplianceTypes: ['NON_COMPLIANT'], Limit: 10 },
    ]);
  });

  it('maxResourcesNamed caps the names, never the count', async () => {
    peer.accounts[ACCOUNT] = { regions: { 'us-east-1': { recorders: [], statuses: [], rules: [exampleRule()] } } };
    const result = await run({ maxResourcesNamed: 2 });
    expect(result.findings[0]?.message).toContain('3 non-compliant resource(s): AWS::EC2::Instance/i-1a2b3c4d, AWS::EC2::Instance/i-2a2b3c4d, …');
  });

  it('every page is read (60 rules), and rulePrefixes filters by name', async () => {
    const rules: PeerConfigRule[] = Array.from({ length: 60 }, (_, i) => ({ name: `${i % 2 ? 'soc2-' : 'other-'}${String(i).padStart(2, '0')}`, compliance: 'COMPLIANT' }));
    peer.accounts[ACCOUNT] = { regions: { 'us-east-1': { recorders: [], statuses: [], rules } } };
    const all = await run();
    expect(all.findings).toHaveLength(60);
    expect(peer.requests.filter((r) => r.action === 'DescribeComplianceByConfigRule')).toHaveLength(3);
    const soc2 = await run({ rulePrefixes: ['soc2-'] });
    expect(soc2.findings).toHaveLength(30);
    expect(soc2.findings.every((f) => f.resource.includes('/soc2-'))).toBe(true);
  });

  it('a region without rules fails (requireRules), or is not applicable when rules are not required', async () => {
    peer.accounts[ACCOUNT] = { regions: {} };
    expect((await run()).findings).toMatchObject([{ resource: `${ACCOUNT}/us-east-1`, outcome: 'fail' }]);
    expect((await run({ requireRules: false })).findings).toMatchObject([{ resource: `${ACCOUNT}/us-east-1`, outcome: 'not_applicable' }]);
  });

  it('refused details still fail the rule, saying which action would name the resources', async () => {
    peer.accounts[ACCOUNT] = { deny: ['config:GetComplianceDetailsByConfigRule'], regions: { 'us-east-1': { recorders: [], statuses: [], rules: [exampleRule()] } } };
    const result = await run();
    expect(result.findings[0]).toMatchObject({ outcome: 'fail' });
    expect(result.findings[0]?.message).toContain('3 non-compliant resource(s) (resources not listed: vigil may not call config:GetComplianceDetailsByConfigRule)');
  });

  it('malformed JSON is a run error, never a verdict', async () => {
    peer.accounts[ACCOUNT] = { regions: { 'us-east-1': { recorders: [], statuses: [], rules: [exampleRule()] } } };
    peer.respondNext('DescribeComplianceByConfigRule', { status: 200, contentType: 'application/x-amz-json-1.1', body: '<html>bad gateway</html>' });
    const result = await run();
    expect(result.findings).toEqual([]);
    expect(result.error?.class).toBe('MalformedResponseError');
  });
});
