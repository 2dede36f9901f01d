/**
 * aws-root-mfa: the pure verdict table-driven, then collect → evaluate through the real IAM and
 * STS SDK clients against the local AWS peer (botocore's recorded GetAccountSummary and
 * ListVirtualMFADevices bodies, reshaped per case; SigV4 verified).
 */
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resetAwsClientState } from '../../src/clients/aws/client.js';
import { AwsTarget } from '../../src/config/schema.js';
import type { Finding } from '../../src/probe/contract.js';
import { runProbe } from '../../src/probe/runner.js';
import { EXAMPLE_KEY, peerTarget, startAwsPeer, useEnvCredentials, type AwsPeer } from '../../test/helpers/aws-peer.js';
import { evaluateRootMfa, probe, type Params, type RootMfaObservation } from './probe.js';

const log = pino({ level: 'silent' });
const defaults: Params = probe.params.parse({});
const ACCOUNT = '111111111111';
const summary = (s: Partial<{ mfaEnabled: boolean; accessKeysPresent: boolean; passwordPresent: boolean; signingCertificatesPresent: boolean }>) => ({
  readable: true as const,
  value: { mfaEnabled: false, accessKeysPresent: false, passwordPresent: undefined, signingCertificatesPresent: undefined, ...s },
});

describe('evaluate', () => {
  const cases: Array<{ name: string; o: RootMfaObservation; params?: Partial<Params>; want: Finding['outcome']; says: string }> = [
    {
      name: 'root without MFA fails and says how to add a hardware key',
      o: { account: ACCOUNT, data: { summary: summary({ mfaEnabled: false, passwordPresent: true }) } },
      want: 'fail',
      says: 'root of 111111111111 has no MFA: sign in as root and assign a hardware security key or passkey',
    },
    {
      name: 'root with only a virtual device fails with the hardware-key fix',
      o: { account: ACCOUNT, data: { summary: summary({ mfaEnabled: true }), rootVirtualDevices: { readable: true, value: ['arn:aws:iam::111111111111:mfa/root-account-mfa-device'] } } },
      want: 'fail',
      says: 'uses a virtual MFA device (arn:aws:iam::111111111111:mfa/root-account-mfa-device): register a hardware security key or passkey for root',
    },
    {
      name: 'a virtual device is accepted when requireHardware is off',
      o: { account: ACCOUNT, data: { summary: summary({ mfaEnabled: true }) } },
      params: { requireHardware: false },
      want: 'pass',
      says: 'root of 111111111111 has MFA and no access keys',
    },
    {
      name: 'root access keys fail even with hardware MFA',
      o: { account: ACCOUNT, data: { summary: summary({ mfaEnabled: true, accessKeysPresent: true }), rootVirtualDevices: { readable: true, value: [] } } },
      want: 'fail',
      says: 'has access keys: delete the root access keys',
    },
    {
      name: 'hardware MFA and no keys pass',
      o: { account: ACCOUNT, data: { summary: summary({ mfaEnabled: true }), rootVirtualDevices: { readable: true, value: [] } } },
      want: 'pass',
      says: 'has hardware MFA (no virtual device assigned) and no access keys',
    },
    {
      name: 'root with no credentials at all (centrally managed) passes with that reason',
      o: { account: ACCOUNT, data: { summary: summary({ mfaEnabled: false, accessKeysPresent: false, passwordPresent: false, signingCertificatesPresent: false }) } },
      want: 'pass',
      says: 'root credentials removed, e.g. managed centrally by AWS Organizations',
    },
    {
      name: 'no MFA and AWS does not say whether a password exists: fail, never the centrally-managed pass',
      o: { account: ACCOUNT, data: { summary: summary({ mfaEnabled: false, accessKeysPresent: false }) } },
      want: 'fail',
      says: 'has no MFA',
    },
    {
      name: 'MFA on but the summary does not say whether root has access keys: unknown, not pass',
      o: { account: ACCOUNT, data: { summary: summary({ mfaEnabled: true, accessKeysPresent: undefined as unknown as boolean }), rootVirtualDevices: { readable: true, value: [] } } },
      want: 'unknown',
      says: 'AccountAccessKeysPresent missing',
    },
    {
      name: 'no password and no keys, but AWS does not say whether signing certificates exist: fail, not the credentials-removed pass',
      o: { account: ACCOUNT, data: { summary: summary({ mfaEnabled: false, accessKeysPresent: false, passwordPresent: false }) } },
      want: 'fail',
      says: 'has no MFA',
    },
    {
      name: 'a refused GetAccountSummary is unknown naming the action',
      o: { account: ACCOUNT, data: { summary: { readable: false, action: 'iam:GetAccountSummary', reason: 'AccessDenied' } } },
      want: 'unknown',
      says: 'vigil may not call iam:GetAccountSummary',
    },
    {
      name: 'a refused ListVirtualMFADevices is unknown, not pass',
      o: { account: ACCOUNT, data: { summary: summary({ mfaEnabled: true }), rootVirtualDevices: { readable: false, action: 'iam:ListVirtualMFADevices', reason: 'AccessDenied' } } },
      want: 'unknown',
      says: 'vigil may not call iam:ListVirtualMFADevices',
    },
    {
      name: 'a refused AssumeRole is unknown for the account',
      o: { account: ACCOUNT, denied: { readable: false, action: 'sts:AssumeRole', reason: 'AccessDenied' } },
      want: 'unknown',
      says: 'vigil may not call sts:AssumeRole',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const findings = evaluateRootMfa(c.o, { ...defaults, ...c.params });
      expect(findings).toHaveLength(1);
      expect(findings[0]).toMatchObject({ resource: `${ACCOUNT}/root`, outcome: c.want });
      expect(findings[0]?.message).toContain(c.says);
    });
  }
});

describe('collect through the SDK against the AWS peer', () => {
  let peer: AwsPeer;
  beforeAll(async () => {
    peer = await startAwsPeer({ keys: [{ ...EXAMPLE_KEY, account: ACCOUNT }], accounts: { [ACCOUNT]: {} } });
    useEnvCredentials(EXAMPLE_KEY);
  });
  afterAll(() => peer.close());
  beforeEach(() => {
    resetAwsClientState();
    peer.requests.length = 0;
    peer.accounts[ACCOUNT] = {};
  });

  async function run(params: Partial<Params> = {}) {
    const spec = AwsTarget.parse(peerTarget(peer, { regions: ['eu-west-1'] }));
    const { result } = await runProbe({ probe, target: { name: 'prod', spec }, params: { ...defaults, ...params }, runId: 'r1', scheduledFor: new Date(), timeoutMs: 20_000, log });
    return result;
  }

  it("botocore's recorded summary (AccountMFAEnabled 0) fails root, signed for us-east-1 although the target's region is eu-west-1", async () => {
    const result = await run();
    expect(result.error).toBeUndefined();
    expect(result.findings).toMatchObject([{ resource: `${ACCOUNT}/root`, outcome: 'fail' }]);
    expect(peer.requests.map((r) => [r.action, r.signingRegion, r.signingService])).toEqual([
      ['GetCallerIdentity', 'us-east-1', 'sts'],
      ['GetAccountSummary', 'us-east-1', 'iam'],
    ]);
  });

  it('root with only a virtual device (assigned to arn:…:root) fails; the unassigned and user devices do not count', async () => {
    peer.accounts[ACCOUNT] = {
      summary: { AccountMFAEnabled: 1, AccountAccessKeysPresent: 0 },
      virtualMfa: [
        { SerialNumber: `arn:aws:iam::${ACCOUNT}:mfa/MFAdeviceName` },
        { SerialNumber: `arn:aws:iam::${ACCOUNT}:mfa/RootMFAdeviceName`, EnableDate: '2011-10-20T20:49:03Z', userArn: `arn:aws:iam::${ACCOUNT}:root` },
        { SerialNumber: `arn:aws:iam::${ACCOUNT}:mfa/ExampleUserMFAdeviceName`, EnableDate: '2011-10-31T20:45:02Z', userArn: `arn:aws:iam::${ACCOUNT}:user/ExampleUser` },
      ],
    };
    const result = await run();
    expect(result.findings).toMatchObject([{ outcome: 'fail' }]);
    expect(result.findings[0]?.message).toContain(`uses a virtual MFA device (arn:aws:iam::${ACCOUNT}:mfa/RootMFAdeviceName)`);
    expect(result.findings[0]?.message).not.toContain('ExampleUser');
  });

  it('hardware MFA (no virtual device on root) and no keys pass', async () => {
    peer.accounts[ACCOUNT] = { summary: { AccountMFAEnabled: 1, AccountAccessKeysPresent: 0 }, virtualMfa: [{ SerialNumber: `arn:aws:iam::${ACCOUNT}:mfa/u`, userArn: `arn:aws:iam::${ACCOUNT}:user/u` }] };
    const result = await run();
    expect(result.findings).toMatchObject([{ outcome: 'pass' }]);
  });

  it('root access keys present fail', async () => {
    peer.accounts[ACCOUNT] = { summary: { AccountMFAEnabled: 1, AccountAccessKeysPresent: 1 } };
    const result = await run();
    expect(result.findings[0]).toMatchObject({ outcome: 'fail' });
    expect(result.findings[0]?.message).toContain('has access keys');
  });

  it('a refused GetAccountSummary gives an unknown finding naming iam:GetAccountSummary, not a run error', async () => {
    peer.accounts[ACCOUNT] = { deny: ['iam:GetAccountSummary'] };
    const result = await run();
    expect(result.error).toBeUndefined();
    expect(result.findings).toMatchObject([{ outcome: 'unknown', details: { missingAction: 'iam:GetAccountSummary' } }]);
  });

  it('throttling, then success: retried by the SDK within the run', async () => {
    peer.accounts[ACCOUNT] = { summary: { AccountMFAEnabled: 1, AccountAccessKeysPresent: 0 } };
    peer.throttleNext('GetAccountSummary', 2);
    const result = await run({ requireHardware: false });
    expect(result.error).toBeUndefined();
    expect(result.findings).toMatchObject([{ outcome: 'pass' }]);
    expect(peer.requests.filter((r) => r.action === 'GetAccountSummary').map((r) => r.status)).toEqual([400, 400, 200]);
  });

  it('malformed XML is a run error, never a verdict', async () => {
    peer.respondNext('GetAccountSummary', { status: 200, contentType: 'text/xml', body: '<GetAccountSummaryResponse><GetAccountSummaryResult><SummaryMap><entry><key>AccountMFAEnab' });
    const result = await run();
    expect(result.findings).toEqual([]);
    expect(result.error?.class).toBe('MalformedResponseError');
  });

  it('a well-formed answer without AccountMFAEnabled is a run error, not a pass', async () => {
    peer.respondNext('GetAccountSummary', {
      status: 200,
      contentType: 'text/xml',
      body: '<GetAccountSummaryResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><GetAccountSummaryResult><SummaryMap><entry><key>Users</key><value>1</value></entry></SummaryMap></GetAccountSummaryResult></GetAccountSummaryResponse>',
    });
    const result = await run();
    expect(result.findings).toEqual([]);
    expect(result.error).toMatchObject({ class: 'MalformedResponseError', message: expect.stringContaining('AccountMFAEnabled') });
  });
});
