/**
 * aws-iam-access-key-age: the pure verdict on credential reports in both AWS layouts, and the
 * collect through the SDK against the local AWS peer.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetAwsClientState } from '../../src/clients/aws/client.js';
import { parseCredentialReport, resetCredentialReportCache } from '../../src/clients/aws/credential-report.js';
import { AwsTarget } from '../../src/config/schema.js';
import { runProbe } from '../../src/probe/runner.js';
import { EXAMPLE_KEY, legacyReport, peerTarget, reportCsv, startAwsPeer, useEnvCredentials, type AwsPeer } from '../../test/helpers/aws-peer.js';
import { evaluateAccessKeyAge, probe, type Params } from './probe.js';

const log = pino({ level: 'silent' });
const defaults: Params = probe.params.parse({});
const ACCOUNT = '111111111111';
const NOW = new Date('2026-11-20T12:00:00Z');
const daysAgo = (d: number) => new Date(NOW.getTime() - d * 86_400_000).toISOString().replace('.000Z', '+00:00');
const observe = (csv: string) => ({ account: ACCOUNT, data: { report: { readable: true as const, value: parseCredentialReport(csv, NOW.toISOString()) } } });

describe('evaluate', () => {
  const cases: Array<{ name: string; row: Record<string, string>; params?: Partial<Params>; want: string; says?: string }> = [
    {
      name: 'a 200-day-old active key fails, naming the user, the key position and its age',
      row: { user: 'deploy', access_key_2_active: 'true', access_key_2_last_rotated: daysAgo(200) },
      want: 'fail',
      says: 'deploy: active access key 2 is 200 days old (created 2026-05-04), over 90 days: create a new key',
    },
    { name: 'an 89-day-old active key passes', row: { user: 'deploy', access_key_1_active: 'true', access_key_1_last_rotated: daysAgo(89) }, want: 'pass' },
    { name: 'an old but inactive key does not count', row: { user: 'deploy', access_key_1_active: 'false', access_key_1_last_rotated: daysAgo(400) }, want: 'not_applicable' },
    { name: 'maxAgeDays is honoured', row: { user: 'deploy', access_key_1_active: 'TRUE', access_key_1_last_rotated: daysAgo(40) }, params: { maxAgeDays: 30 }, want: 'fail', says: 'key 1 is 40 days old' },
    { name: 'an active key without a rotation date is unknown, not pass', row: { user: 'deploy', access_key_1_active: 'true', access_key_1_last_rotated: 'N/A' }, want: 'unknown' },
    { name: 'an unreadable active flag is unknown', row: { user: 'deploy', access_key_1_active: 'yes', access_key_1_last_rotated: daysAgo(1) }, want: 'unknown' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const findings = evaluateAccessKeyAge(observe(reportCsv([{ user: '<root_account>', password_enabled: 'not_supported' }, c.row])), { ...defaults, ...c.params }, NOW);
      expect(findings).toHaveLength(1);
      expect(findings[0]).toMatchObject({ resource: `${ACCOUNT}/deploy`, outcome: c.want });
      if (c.says) expect(findings[0]?.message).toContain(c.says);
    });
  }

  it("AWS's published 16-column report: Administrator's two keys (2014, 2015) both named", () => {
    const { columns, rows } = legacyReport();
    const findings = evaluateAccessKeyAge(observe([columns.join(','), ...rows.map((r) => r.join(','))].join('\n')), defaults, NOW);
    expect(findings.map((f) => [f.resource, f.outcome])).toEqual([
      [`${ACCOUNT}/Administrator`, 'fail'],
      [`${ACCOUNT}/Bill`, 'not_applicable'],
    ]);
    expect(findings[0]?.message).toMatch(/key 1 is \d+ days old \(created 2014-12-03\) and key 2 is \d+ days old \(created 2015-03-25\)/);
  });
});

describe('collect through the SDK against the AWS peer', () => {
  let peer: AwsPeer;
  beforeAll(async () => {
    peer = await startAwsPeer({
      keys: [{ ...EXAMPLE_KEY, account: ACCOUNT }],
      accounts: { [ACCOUNT]: { reportPolls: 0, reportCsv: reportCsv([{ user: 'deploy', access_key_1_active: 'true', access_key_1_last_rotated: new Date(Date.now() - 200 * 86_400_000).toISOString() }]) } },
    });
    useEnvCredentials(EXAMPLE_KEY);
    resetAwsClientState();
    resetCredentialReportCache();
  });
  afterAll(() => peer.close());

  it('reads one credential report and fails the 200-day-old key', async () => {
    const spec = AwsTarget.parse(peerTarget(peer));
    const { result } = await runProbe({ probe, target: { name: spec.name, spec }, params: defaults, runId: 'r1', scheduledFor: new Date(), timeoutMs: 20_000, log });
    expect(result.error).toBeUndefined();
    expect(result.findings).toMatchObject([{ resource: `${ACCOUNT}/deploy`, outcome: 'fail', message: expect.stringContaining('key 1 is 200 days old') }]);
    expect(peer.requests.map((r) => r.action)).toEqual(['GetCallerIdentity', 'GenerateCredentialReport', 'GetCredentialReport']);
  });
});
