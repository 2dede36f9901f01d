/**
 * The AWS client (src/clients/aws): credentials from the default provider chain, SigV4 refusals,
 * AssumeRole caching, expired sessions, error classification, and that no credential reaches a
 * result or a log line — all through the real SDK clients against the local AWS peer.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DescribeConfigurationRecordersCommand } from '@aws-sdk/client-config-service';
import { awsAccount, classifyAwsError, deniedActionIn, resetAwsClientState, AwsAccessDeniedError, AwsCredentialsError } from '../src/clients/aws/client.js';
import { resetCredentialReportCache } from '../src/clients/aws/credential-report.js';
import { AwsTarget } from '../src/config/schema.js';
import { MalformedResponseError, TransientError } from '../src/probe/errors.js';
import { runProbe } from '../src/probe/runner.js';
import { scrub } from '../src/secrets.js';
import { probe as configRecording } from '../probes/aws-config-recording/probe.js';
import { probe as rootMfa } from '../probes/aws-root-mfa/probe.js';
import { probe as userMfa } from '../probes/aws-iam-user-mfa/probe.js';
import { EXAMPLE_KEY, peerTarget, reportCsv, startAwsPeer, useEnvCredentials, type AwsPeer } from './helpers/aws-peer.js';

const BASE = '111111111111';
const ROLE_ACCOUNT = '222222222222';
const ROLE = `arn:aws:iam::${ROLE_ACCOUNT}:role/vigil-readonly`;
const EXTERNAL_ID = 'ext-3f9c2a71d4';

describe('classifyAwsError', () => {
  const sdkError = (name: string, message: string, status: number) => Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status }, $fault: status >= 500 ? 'server' : 'client' });
  it('names the action AWS says is missing', () => {
    const e = classifyAwsError(sdkError('AccessDenied', 'User: arn:aws:sts::1:assumed-role/r/vigil is not authorized to perform: iam:GenerateCredentialReport on resource: *', 403), 'iam:GetCredentialReport');
    expect(e).toBeInstanceOf(AwsAccessDeniedError);
    expect((e as AwsAccessDeniedError).action).toBe('iam:GenerateCredentialReport');
  });
  it('UnauthorizedOperation without an action in the message falls back to the command action', () => {
    const e = classifyAwsError(sdkError('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403), 'config:DescribeConfigurationRecorders');
    expect((e as AwsAccessDeniedError).action).toBe('config:DescribeConfigurationRecorders');
  });
  it('expired tokens are a credentials error saying so', () => {
    const e = classifyAwsError(sdkError('ExpiredToken', 'The security token included in the request is expired', 403), 'iam:GetAccountSummary');
    expect(e).toBeInstanceOf(AwsCredentialsError);
    expect(e.message).toContain('the AWS credentials have expired');
  });
  it('5xx and throttling are transient; a 200 the SDK could not read is malformed', () => {
    expect(classifyAwsError(sdkError('ServiceFailure', 'oops', 500), 'iam:GetAccountSummary')).toBeInstanceOf(TransientError);
    expect(classifyAwsError(sdkError('ThrottlingException', 'Rate exceeded', 400), 'config:X')).toBeInstanceOf(TransientError);
    expect(classifyAwsError(Object.assign(new Error('Unexpected end of JSON input'), { name: 'SyntaxError', $response: {} }), 'config:X')).toBeInstanceOf(MalformedResponseError);
  });
  it('an access key id quoted in an AWS message does not reach the classified error', () => {
    const e = classifyAwsError(sdkError('InvalidClientTokenId', 'The security token AKIAIOSFODNN7EXAMPLE is invalid; session ASIAY34FZKBOKMUTVV7A', 403), 'iam:GetAccountSummary');
    expect(e.message).not.toMatch(/AKIA|ASIA/);
    expect(e.message).toContain('[access key id]');
  });
  it('deniedActionIn reads both AWS phrasings', () => {
    expect(deniedActionIn('is not authorized to perform: config:DescribeConfigurationRecorders because no identity-based policy allows')).toBe('config:DescribeConfigurationRecorders');
    expect(deniedActionIn('User x is not authorized to perform sts:AssumeRole on resource y')).toBe('sts:AssumeRole');
  });
});

describe('the client against the AWS peer', () => {
  let peer: AwsPeer;
  let peerNow = Date.now();
  const lines: string[] = [];
  const log = pino({ level: 'trace' }, new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) }));

  beforeAll(async () => {
    peer = await startAwsPeer({
      keys: [{ ...EXAMPLE_KEY, account: BASE }],
      roles: [{ arn: ROLE, externalId: EXTERNAL_ID }],
      accounts: {
        [BASE]: { summary: { AccountMFAEnabled: 1, AccountAccessKeysPresent: 0 } },
        [ROLE_ACCOUNT]: { summary: { AccountMFAEnabled: 1, AccountAccessKeysPresent: 0 }, reportPolls: 0, reportCsv: reportCsv([{ user: 'bob', password_enabled: 'true', mfa_active: 'false' }]) },
      },
      now: () => peerNow,
    });
  });
  afterAll(() => peer.close());
  beforeEach(() => {
    useEnvCredentials(EXAMPLE_KEY);
    resetAwsClientState();
    resetCredentialReportCache();
    peer.requests.length = 0;
    peerNow = Date.now();
    lines.length = 0;
  });

  async function run(p: typeof rootMfa | typeof userMfa | typeof configRecording, extra: Record<string, unknown> = {}) {
    const spec = AwsTarget.parse(peerTarget(peer, extra));
    const { result } = await runProbe({ probe: p, target: { name: spec.name, spec }, params: p.params.parse(p === rootMfa ? { requireHardware: false } : {}), runId: 'r1', scheduledFor: new Date(), timeoutMs: 20_000, log });
    return result;
  }
  const viaRole = { roleArn: ROLE, externalId: { env: 'VIGIL_TEST_EXTERNAL_ID' } };

  it('a wrong secret key is refused by the peer as AWS refuses it: a clear run error, for IAM (XML) and Config (JSON 1.1)', async () => {
    useEnvCredentials({ accessKeyId: EXAMPLE_KEY.accessKeyId, secretAccessKey: 'not-the-right-secret-key-0000000000000000' });
    const iam = await run(rootMfa);
    expect(iam.findings).toEqual([]);
    expect(iam.error).toMatchObject({ class: 'AwsCredentialsError', message: expect.stringContaining('SignatureDoesNotMatch') });
    resetAwsClientState();
    const aws = awsAccount(AwsTarget.parse(peerTarget(peer)), { signal: new AbortController().signal, log });
    const cfg = await aws.config('eu-west-1', new DescribeConfigurationRecordersCommand({})).catch((err: unknown) => err);
    aws.close();
    expect(cfg).toBeInstanceOf(AwsCredentialsError);
    expect((cfg as Error).message).toContain('InvalidSignatureException');
    expect(peer.requests.map((r) => [r.service, r.status])).toEqual([
      ['sts', 403],
      ['config', 400],
    ]);
  });

  it('an unknown access key is InvalidClientTokenId, a clear run error', async () => {
    useEnvCredentials({ accessKeyId: 'AKIAI44QH8DHBEXAMPLE', secretAccessKey: 'je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY' });
    const result = await run(rootMfa);
    expect(result.error).toMatchObject({ class: 'AwsCredentialsError', message: expect.stringContaining('InvalidClientTokenId') });
  });

  it('no credentials anywhere in the provider chain: a run error that says where vigil looks', async () => {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    const result = await run(rootMfa);
    expect(result.error).toMatchObject({ class: 'AwsCredentialsError', message: expect.stringContaining('no AWS credentials found') });
    expect(peer.requests).toEqual([]);
  });

  it('AssumeRole with the external id answers as the role account; the role credentials are cached across runs', async () => {
    process.env.VIGIL_TEST_EXTERNAL_ID = EXTERNAL_ID;
    const first = await run(rootMfa, viaRole);
    const second = await run(rootMfa, viaRole);
    expect(first.findings).toMatchObject([{ resource: `${ROLE_ACCOUNT}/root`, outcome: 'pass' }]);
    expect(second.findings).toMatchObject([{ resource: `${ROLE_ACCOUNT}/root`, outcome: 'pass' }]);
    expect(peer.requests.filter((r) => r.action === 'AssumeRole')).toHaveLength(1);
  });

  it('assumed-role credentials are refreshed shortly before they expire (AssumeRole again), not used to the last second', async () => {
    process.env.VIGIL_TEST_EXTERNAL_ID = EXTERNAL_ID;
    let clock = Date.now();
    const spec = AwsTarget.parse(peerTarget(peer, viaRole));
    const identity = async () => {
      const aws = awsAccount(spec, { signal: new AbortController().signal, log, now: () => clock });
      try {
        return await aws.identity();
      } finally {
        aws.close();
      }
    };
    expect((await identity()).account).toBe(ROLE_ACCOUNT);
    clock += 50 * 60_000; // 10 minutes left of the hour: still cached
    await identity();
    expect(peer.requests.filter((r) => r.action === 'AssumeRole')).toHaveLength(1);
    clock += 6 * 60_000; // 4 minutes left: inside the refresh margin
    await identity();
    expect(peer.requests.filter((r) => r.action === 'AssumeRole')).toHaveLength(2);
    const keys = peer.requests.filter((r) => r.action === 'GetCallerIdentity').map((r) => r.accessKeyId);
    expect(new Set(keys).size).toBe(2);
  });

  it('session credentials that expired at AWS (clock skew, revoked session): ExpiredToken is a clear run error', async () => {
    process.env.VIGIL_TEST_EXTERNAL_ID = EXTERNAL_ID;
    await run(rootMfa, viaRole);
    peerNow = Date.now() + 2 * 3_600_000;
    const result = await run(rootMfa, viaRole);
    expect(result.findings).toEqual([]);
    expect(result.error).toMatchObject({ class: 'AwsCredentialsError', message: expect.stringContaining('the AWS credentials have expired') });
  });

  it('nothing credential-like in results or log lines; minted secrets are registered for scrubbing', async () => {
    process.env.VIGIL_TEST_EXTERNAL_ID = EXTERNAL_ID;
    const result = await run(userMfa, viaRole);
    expect(result.findings).toMatchObject([{ resource: `${ROLE_ACCOUNT}/bob`, outcome: 'fail' }]);
    const session = peer.sessions.at(-1);
    expect(session).toBeDefined();
    const text = JSON.stringify(result) + lines.join('');
    expect(lines.length).toBeGreaterThan(0);
    for (const secret of [EXAMPLE_KEY.secretAccessKey, EXTERNAL_ID, session?.secretAccessKey as string, session?.sessionToken as string, session?.accessKeyId as string]) expect(text).not.toContain(secret);
    expect(scrub(`token=${session?.sessionToken}`)).toBe('token=[REDACTED]');
    expect(scrub(`secret ${EXAMPLE_KEY.secretAccessKey}`)).toBe('secret [REDACTED]');
  });

  it('a 5xx that outlasts the SDK retries is a TransientError (BullMQ retries the run later)', async () => {
    peer.failNext('GetAccountSummary', 10);
    const spec = AwsTarget.parse(peerTarget(peer));
    const outcome = await runProbe({ probe: rootMfa, target: { name: 'prod', spec }, params: rootMfa.params.parse({}), runId: 'r', scheduledFor: new Date(), timeoutMs: 20_000, log });
    expect(outcome.transientError).toBeInstanceOf(TransientError);
    expect(outcome.result.error?.class).toBe('TransientError');
    expect(peer.requests.filter((r) => r.action === 'GetAccountSummary').map((r) => r.status)).toEqual([500, 500, 500, 500]);
  });
});
