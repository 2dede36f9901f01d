/**
 * aws-iam-user-mfa: the credential-report parser on both AWS layouts, the pure verdict, then
 * collect → evaluate through the real SDK clients against the local AWS peer (report generation
 * polled, AssumeRole with an external id into two accounts, SigV4 verified).
 */
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resetAwsClientState } from '../../src/clients/aws/client.js';
import { parseCredentialReport, parseCsv, resetCredentialReportCache } from '../../src/clients/aws/credential-report.js';
import { AwsTarget } from '../../src/config/schema.js';
import { runProbe } from '../../src/probe/runner.js';
import { EXAMPLE_KEY, legacyReport, peerTarget, reportCsv, startAwsPeer, useEnvCredentials, type AwsPeer } from '../../test/helpers/aws-peer.js';
import { probe as accessKeyAge } from '../aws-iam-access-key-age/probe.js';
import { evaluateUserMfa, probe, type Params } from './probe.js';

const log = pino({ level: 'silent' });
const defaults: Params = probe.params.parse({});
const BASE = '111111111111';
const A = '222222222222';
const B = '333333333333';
const NOW = new Date('2026-11-20T12:00:00Z');
const observation = (csv: string, generatedTime = '2026-11-20T10:00:00.000Z') => ({ account: BASE, data: { report: { readable: true as const, value: parseCredentialReport(csv, generatedTime) } } });

describe('credential report parsing', () => {
  it("AWS's published 16-column report: columns by header name, root_account row recognised", () => {
    const { columns, rows } = legacyReport();
    const report = parseCredentialReport([columns.join(','), ...rows.map((r) => r.join(','))].join('\n'), NOW.toISOString());
    expect(report.columns).toHaveLength(16);
    expect(report.users.map((u) => [u.user, u.isRoot, u.passwordEnabled, u.mfaActive])).toEqual([
      ['root_account', true, 'not_supported', true],
      ['Administrator', false, true, false],
      ['Bill', false, false, false],
    ]);
    expect(report.users[1]?.keys).toEqual([
      { active: true, lastRotated: '2014-12-03T18:53:41.000Z' },
      { active: true, lastRotated: '2015-03-25T20:38:14.000Z' },
    ]);
  });

  it('the current 22-column layout, with upper-case TRUE, no_information and N/A', () => {
    const csv = reportCsv([{ user: '<root_account>', password_enabled: 'not_supported', mfa_active: 'TRUE' }, { user: 'alice', password_enabled: 'TRUE', mfa_active: 'TRUE', password_last_used: 'no_information' }]);
    const report = parseCredentialReport(csv, NOW.toISOString());
    expect(report.columns).toHaveLength(22);
    expect(report.users.map((u) => [u.user, u.isRoot, u.passwordEnabled, u.mfaActive])).toEqual([
      ['<root_account>', true, 'not_supported', true],
      ['alice', false, true, true],
    ]);
    expect(report.users[1]?.keys[0]).toEqual({ active: false, lastRotated: null });
  });

  it('quoted fields (IAM names may contain commas) are one cell', () => {
    expect(parseCsv('a,b\n"x,y",z\n')).toEqual([
      ['a', 'b'],
      ['x,y', 'z'],
    ]);
  });

  it('a report without the needed columns is malformed, naming them', () => {
    expect(() => parseCredentialReport('user,arn\nbob,arn:aws:iam::1:user/bob\n', NOW.toISOString())).toThrow(/lacks the column\(s\) password_enabled, mfa_active/);
  });

  it('a row with a missing field is malformed, not read as false', () => {
    const csv = reportCsv([{ user: 'alice', password_enabled: 'true', mfa_active: 'true' }]).replace(/,N\/A\n$/, '\n');
    expect(() => parseCredentialReport(csv, NOW.toISOString())).toThrow(/row 2 has 21 fields/);
  });
});

describe('evaluate', () => {
  it('a console user without MFA fails, a user without a console password is not applicable, root is left to aws-root-mfa', () => {
    const csv = reportCsv([
      { user: '<root_account>', password_enabled: 'not_supported', mfa_active: 'false' },
      { user: 'alice', password_enabled: 'true', mfa_active: 'TRUE' },
      { user: 'bob', password_enabled: 'true', mfa_active: 'false' },
      { user: 'ci-bot', password_enabled: 'false', mfa_active: 'false' },
      { user: 'odd', password_enabled: 'true', mfa_active: 'maybe' },
    ]);
    expect(evaluateUserMfa(observation(csv), defaults, NOW).map((f) => [f.resource, f.outcome])).toEqual([
      [`${BASE}/alice`, 'pass'],
      [`${BASE}/bob`, 'fail'],
      [`${BASE}/ci-bot`, 'not_applicable'],
      [`${BASE}/odd`, 'unknown'],
    ]);
    expect(evaluateUserMfa(observation(csv), defaults, NOW)[1]?.message).toBe(
      'bob has a console password and no active MFA device: assign an MFA device (security key or passkey preferred) in IAM > Users > bob > Security credentials, or remove the console password',
    );
  });

  it('a report older than maxReportAgeHours is unknown for the account, never judged', () => {
    const csv = reportCsv([{ user: 'bob', password_enabled: 'true', mfa_active: 'false' }]);
    const findings = evaluateUserMfa(observation(csv, '2026-11-18T12:00:00.000Z'), defaults, NOW);
    expect(findings).toMatchObject([{ resource: BASE, outcome: 'unknown' }]);
    expect(findings[0]?.message).toContain('generated 48 h ago');
  });

  it('an account with only root gives one not-applicable finding, not an empty result', () => {
    const csv = reportCsv([{ user: '<root_account>', password_enabled: 'not_supported', mfa_active: 'true' }]);
    expect(evaluateUserMfa(observation(csv), defaults, NOW)).toMatchObject([{ resource: BASE, outcome: 'not_applicable' }]);
  });
});

describe('collect through the SDK against the AWS peer', () => {
  let peer: AwsPeer;
  const roleA = `arn:aws:iam::${A}:role/vigil-readonly`;
  const roleB = `arn:aws:iam::${B}:role/vigil-readonly`;
  const users = reportCsv([
    { user: '<root_account>', password_enabled: 'not_supported', mfa_active: 'true' },
    { user: 'alice', password_enabled: 'TRUE', mfa_active: 'TRUE' },
    { user: 'bob', password_enabled: 'true', mfa_active: 'false' },
    { user: 'deploy', password_enabled: 'false', mfa_active: 'false', access_key_2_active: 'true', access_key_2_last_rotated: '2026-05-04T12:00:00+00:00' },
  ]);
  beforeAll(async () => {
    peer = await startAwsPeer({
      keys: [{ ...EXAMPLE_KEY, account: BASE }],
      roles: [
        { arn: roleA, externalId: 'vigil-ext-7f3a91' },
        { arn: roleB, externalId: 'vigil-ext-7f3a91' },
      ],
      accounts: { [BASE]: {}, [A]: {}, [B]: {} },
    });
    useEnvCredentials(EXAMPLE_KEY);
  });
  afterAll(() => peer.close());
  beforeEach(() => {
    resetAwsClientState();
    resetCredentialReportCache();
    peer.requests.length = 0;
    peer.accounts[BASE] = { reportCsv: users, reportPolls: 2 };
    peer.accounts[A] = { reportCsv: users, reportPolls: 0 };
    peer.accounts[B] = { reportCsv: users, reportPolls: 0, deny: ['iam:GenerateCredentialReport'] };
  });

  async function run(p: typeof probe | typeof accessKeyAge, extra: Record<string, unknown> = {}, params: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}) {
    const spec = AwsTarget.parse(peerTarget(peer, extra));
    Object.assign(process.env, env);
    const { result } = await runProbe({ probe: p, target: { name: spec.name, spec }, params: p.params.parse(params), runId: 'r1', scheduledFor: new Date(), timeoutMs: 20_000, log });
    return result;
  }

  it('report still generating, then ready: Generate is polled until COMPLETE, then one Get; GeneratedTime is the source freshness', async () => {
    const before = Date.now();
    const result = await run(probe);
    expect(result.error).toBeUndefined();
    expect(result.findings.map((f) => [f.resource, f.outcome])).toEqual([
      [`${BASE}/alice`, 'pass'],
      [`${BASE}/bob`, 'fail'],
      [`${BASE}/deploy`, 'not_applicable'],
    ]);
    expect(peer.requests.map((r) => r.action)).toEqual(['GetCallerIdentity', 'GenerateCredentialReport', 'GenerateCredentialReport', 'GenerateCredentialReport', 'GetCredentialReport']);
    const generated = peer.accounts[BASE]?.reportGeneratedAt as Date;
    expect(result.sourceFreshness).toBe(new Date(Math.floor(generated.getTime() / 1000) * 1000).toISOString());
    expect(Date.parse(result.sourceFreshness as string)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
  });

  it('aws-iam-access-key-age reuses the cached report: no IAM call at all', async () => {
    peer.accounts[BASE] = { reportCsv: users, reportPolls: 0 };
    await run(probe);
    peer.requests.length = 0;
    const result = await run(accessKeyAge, {}, {}, {});
    expect(result.error).toBeUndefined();
    expect(peer.requests.map((r) => r.action)).toEqual(['GetCallerIdentity']);
    expect(result.findings.find((f) => f.resource === `${BASE}/deploy`)?.outcome).toBe('fail');
  });

  it('a report older than 4 hours is regenerated once; one younger than 4 h but older than maxReportAgeHours is not looped on', async () => {
    peer.accounts[BASE] = { reportCsv: users, reportPolls: 0, reportGeneratedAt: new Date(Date.now() - 30 * 3_600_000) };
    const fresh = await run(probe);
    expect(Date.now() - Date.parse(fresh.sourceFreshness as string)).toBeLessThan(60_000);
    expect(peer.requests.map((r) => r.action)).toEqual(['GetCallerIdentity', 'GenerateCredentialReport', 'GetCredentialReport']);

    resetCredentialReportCache();
    peer.requests.length = 0;
    peer.accounts[BASE] = { reportCsv: users, reportPolls: 0, reportGeneratedAt: new Date(Date.now() - 2 * 3_600_000) };
    const stale = await run(probe, {}, { maxReportAgeHours: 1 });
    expect(peer.requests.map((r) => r.action)).toEqual(['GetCallerIdentity', 'GenerateCredentialReport', 'GetCredentialReport']);
    expect(stale.findings).toMatchObject([{ resource: BASE, outcome: 'unknown' }]);
  });

  it('two accounts through AssumeRole with an external id: one is judged, the one denying iam:GenerateCredentialReport is unknown naming it', async () => {
    const env = { VIGIL_TEST_EXTERNAL_ID: 'vigil-ext-7f3a91' };
    const a = await run(probe, { name: 'a', roleArn: roleA, externalId: { env: 'VIGIL_TEST_EXTERNAL_ID' } }, {}, env);
    const b = await run(probe, { name: 'b', roleArn: roleB, externalId: { env: 'VIGIL_TEST_EXTERNAL_ID' } }, {}, env);
    expect(a.error).toBeUndefined();
    expect(a.findings.map((f) => f.resource)).toEqual([`${A}/alice`, `${A}/bob`, `${A}/deploy`]);
    expect(b.error).toBeUndefined();
    expect(b.findings).toMatchObject([{ resource: B, outcome: 'unknown', details: { missingAction: 'iam:GenerateCredentialReport' } }]);
    expect(b.findings[0]?.message).toContain('vigil may not call iam:GenerateCredentialReport');
    // AssumeRole was signed with the base key; everything else with each role's session key, as that account.
    const assume = peer.requests.filter((r) => r.action === 'AssumeRole');
    expect(assume.map((r) => [r.accessKeyId, r.params.RoleSessionName, r.params.ExternalId])).toEqual([
      [EXAMPLE_KEY.accessKeyId, 'vigil', 'vigil-ext-7f3a91'],
      [EXAMPLE_KEY.accessKeyId, 'vigil', 'vigil-ext-7f3a91'],
    ]);
    const rest = peer.requests.filter((r) => r.action !== 'AssumeRole');
    expect(new Set(rest.map((r) => r.account))).toEqual(new Set([A, B]));
    expect(rest.every((r) => r.accessKeyId.startsWith('ASIA'))).toBe(true);
    // Nothing credential-like in the results.
    const text = JSON.stringify([a, b]);
    expect(text).not.toContain(EXAMPLE_KEY.secretAccessKey);
    expect(text).not.toContain('vigil-ext-7f3a91');
    expect(text).not.toMatch(/ASIA[0-9A-F]{16}/);
  });

  it('a wrong external id: AssumeRole refused → unknown for the account naming sts:AssumeRole', async () => {
    const result = await run(probe, { name: 'a', roleArn: roleA, externalId: { env: 'VIGIL_TEST_EXTERNAL_ID' } }, {}, { VIGIL_TEST_EXTERNAL_ID: 'wrong-external-id' });
    expect(result.findings).toMatchObject([{ resource: A, outcome: 'unknown', details: { missingAction: 'sts:AssumeRole' } }]);
  });

  it('the older 16-column layout through the whole path: same verdicts, by header name', async () => {
    peer.accounts[BASE] = {
      reportPolls: 0,
      reportCsv: reportCsv(
        [
          { user: 'root_account', password_enabled: 'not_supported', mfa_active: 'true' },
          { user: 'Administrator', password_enabled: 'true', mfa_active: 'false' },
          { user: 'Bill', password_enabled: 'false', mfa_active: 'false' },
        ],
        16,
      ),
    };
    const result = await run(probe);
    expect(result.findings.map((f) => [f.resource, f.outcome])).toEqual([
      [`${BASE}/Administrator`, 'fail'],
      [`${BASE}/Bill`, 'not_applicable'],
    ]);
  });

  it("LimitExceeded from GenerateCredentialReport (AWS's 409) is waited out and polled, not a run error", async () => {
    peer.accounts[BASE] = { reportCsv: users, reportPolls: 0 };
    peer.respondNext('GenerateCredentialReport', {
      status: 409,
      contentType: 'text/xml',
      body: '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>LimitExceeded</Code><Message>Cannot exceed quota for generating credential reports.</Message></Error><RequestId>1</RequestId></ErrorResponse>',
    });
    const result = await run(probe);
    expect(result.error).toBeUndefined();
    expect(result.findings).toHaveLength(3);
    expect(peer.requests.map((r) => [r.action, r.status])).toEqual([
      ['GetCallerIdentity', 200],
      ['GenerateCredentialReport', 409],
      ['GenerateCredentialReport', 200],
      ['GetCredentialReport', 200],
    ]);
  });

  it('a malformed report (not CSV of the known columns) is a run error, never a verdict', async () => {
    peer.accounts[BASE] = { reportCsv: '<html>Service Unavailable</html>\n', reportPolls: 0 };
    const result = await run(probe);
    expect(result.findings).toEqual([]);
    expect(result.error).toMatchObject({ class: 'MalformedResponseError', message: expect.stringContaining('lacks the column(s)') });
  });
});
