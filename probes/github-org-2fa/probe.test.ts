/**
 * github-org-2fa: the pure verdict table-driven, then collect → evaluate through the real
 * Octokit client against the local GitHub peer (GitHub's published payloads, reshaped per case).
 */
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resetGithubClientState } from '../../src/clients/github.js';
import { GithubTarget, VigilConfig } from '../../src/config/schema.js';
import type { Finding } from '../../src/probe/contract.js';
import { runProbe } from '../../src/probe/runner.js';
import { startGithubPeer, type GithubPeer, type PeerOrg } from '../../test/helpers/github-peer.js';
import { evaluateOrg2fa, probe, type Org2faObservation, type Params } from './probe.js';

const log = pino({ level: 'silent' });
const defaults: Params = probe.params.parse({});
const OWNER = 'ghp_2fa_owner_token_01';
const MEMBER = 'ghp_2fa_member_token_02';
const env = { GH_OWNER: OWNER, GH_MEMBER: MEMBER };
const none = { readable: true as const, logins: [] as string[] };

describe('evaluate', () => {
  const cases: Array<{ name: string; o: Org2faObservation; params?: Partial<Params>; want: Array<Pick<Finding, 'resource' | 'outcome'>>; says?: string }> = [
    {
      name: 'setting on and nobody without 2FA: one pass for the org',
      o: { org: 'acme', twoFactorRequired: true, members2faDisabled: none, membersInsecure2fa: none, collaborators2faDisabled: none, collaboratorsInsecure2fa: none },
      want: [{ resource: 'acme', outcome: 'pass' }],
      says: 'acme requires 2FA; no member or outside collaborator has 2FA disabled or uses an insecure method',
    },
    {
      name: 'setting off fails the org even when every member has 2FA',
      o: { org: 'acme', twoFactorRequired: false, members2faDisabled: none, membersInsecure2fa: none, collaborators2faDisabled: none, collaboratorsInsecure2fa: none },
      want: [{ resource: 'acme', outcome: 'fail' }],
      says: 'Require two-factor authentication',
    },
    {
      name: 'setting off is accepted when requireOrgSetting is false',
      o: { org: 'acme', twoFactorRequired: false, members2faDisabled: none, membersInsecure2fa: none, collaborators2faDisabled: none, collaboratorsInsecure2fa: none },
      params: { requireOrgSetting: false },
      want: [{ resource: 'acme', outcome: 'pass' }],
    },
    {
      name: 'one member without 2FA: one fail for that member, no pass for the org',
      o: { org: 'acme', twoFactorRequired: true, members2faDisabled: { readable: true, logins: ['bob'] }, membersInsecure2fa: none, collaborators2faDisabled: none, collaboratorsInsecure2fa: none },
      want: [{ resource: 'acme/bob', outcome: 'fail' }],
      says: 'bob, member of acme, has 2FA disabled: ask bob to enable 2FA at github.com/settings/security',
    },
    {
      name: 'a member with SMS 2FA fails with the insecure-method fix',
      o: { org: 'acme', twoFactorRequired: true, members2faDisabled: none, membersInsecure2fa: { readable: true, logins: ['sam'] }, collaborators2faDisabled: none, collaboratorsInsecure2fa: none },
      want: [{ resource: 'acme/sam', outcome: 'fail' }],
      says: 'sam, member of acme, uses an insecure 2FA method (SMS): ask sam to register a security key',
    },
    {
      name: 'insecure methods not reported by this GitHub: still a pass, and says so',
      o: {
        org: 'acme',
        twoFactorRequired: true,
        members2faDisabled: none,
        membersInsecure2fa: { readable: 'not_reported', reason: 'not supported' },
        collaborators2faDisabled: none,
        collaboratorsInsecure2fa: { readable: 'not_reported', reason: 'not supported' },
      },
      want: [{ resource: 'acme', outcome: 'pass' }],
      says: 'insecure 2FA methods not reported by this GitHub',
    },
    {
      name: 'the token is not an owner: a single unknown, never pass or fail',
      o: { org: 'acme', twoFactorRequired: null },
      want: [{ resource: 'acme', outcome: 'unknown' }],
      says: 'the token is not an owner of acme: GitHub only shows 2FA status to owners',
    },
    {
      name: 'outside collaborators unreadable: unknown for the org, members still judged',
      o: { org: 'acme', twoFactorRequired: true, members2faDisabled: { readable: true, logins: ['bob'] }, membersInsecure2fa: none, collaborators2faDisabled: { readable: false, reason: 'cannot list outside collaborators' } },
      want: [
        { resource: 'acme', outcome: 'unknown' },
        { resource: 'acme/bob', outcome: 'fail' },
      ],
    },
    {
      name: 'outside collaborators ignored when checkOutsideCollaborators is false',
      o: { org: 'acme', twoFactorRequired: true, members2faDisabled: none, membersInsecure2fa: none },
      params: { checkOutsideCollaborators: false },
      want: [{ resource: 'acme', outcome: 'pass' }],
    },
    {
      name: 'an account listed as disabled and insecure gets one finding naming both',
      o: { org: 'acme', twoFactorRequired: true, members2faDisabled: { readable: true, logins: ['Bob'] }, membersInsecure2fa: none, collaborators2faDisabled: { readable: true, logins: ['bob'] }, collaboratorsInsecure2fa: none },
      want: [{ resource: 'acme/Bob', outcome: 'fail' }],
      says: 'Bob, member and outside collaborator of acme, has 2FA disabled: ask Bob',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const findings = evaluateOrg2fa(c.o, { ...defaults, ...c.params });
      expect(findings.map((f) => ({ resource: f.resource, outcome: f.outcome }))).toEqual(c.want);
      if (c.says) expect(findings.map((f) => f.message).join('\n')).toContain(c.says);
    });
  }
});

describe('collect → evaluate against the GitHub peer', () => {
  let peer: GithubPeer;
  const orgs: PeerOrg[] = [
    {
      login: 'acme',
      twoFactorRequired: true,
      members: [{ login: 'alice', role: 'admin' }, { login: 'bob', twoFactor: 'disabled' }, { login: 'carol' }],
      outsideCollaborators: [{ login: 'dave' }],
    },
    { login: 'clean', twoFactorRequired: true, members: [{ login: 'alice' }, { login: 'erin' }], outsideCollaborators: [] },
    { login: 'lax', twoFactorRequired: false, members: [{ login: 'alice' }], outsideCollaborators: [{ login: 'sms-sam', twoFactor: 'insecure' }] },
    { login: 'old-ghes', twoFactorRequired: true, members: [{ login: 'alice' }], outsideCollaborators: [], reportsInsecure2fa: false },
    { login: 'big', twoFactorRequired: true, members: Array.from({ length: 250 }, (_, i) => ({ login: `u${String(i).padStart(3, '0')}`, twoFactor: 'disabled' as const })) },
  ];

  function target(org: string, token = 'GH_OWNER', apiUrl = peer.apiUrl): GithubTarget {
    return GithubTarget.parse({ name: `t-${org}`, org, apiUrl, allowInsecureHttp: true, auth: { token: { env: token } } });
  }
  async function run(org: string, token?: string, apiUrl?: string) {
    const spec = target(org, token, apiUrl);
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      const outcome = await runProbe({
        probe,
        target: { name: spec.name, spec },
        params: defaults,
        runId: `run-${org}`,
        scheduledFor: new Date(),
        timeoutMs: 10_000,
        log,
      });
      return outcome.result;
    } finally {
      for (const k of Object.keys(env)) if (!(k in saved)) delete process.env[k];
    }
  }
  const brief = (fs: Finding[]) => fs.map((f) => ({ resource: f.resource, outcome: f.outcome }));

  beforeAll(async () => {
    peer = await startGithubPeer();
    const owner = Object.fromEntries(orgs.map((o) => [o.login, 'owner' as const]));
    peer.addToken(OWNER, { login: 'alice', orgRoles: owner, scopes: 'admin:org, repo' });
    peer.addToken(MEMBER, { login: 'carol', orgRoles: { acme: 'member' }, scopes: 'read:org, repo' });
    for (const o of orgs) peer.addOrg(o);
  });
  afterAll(async () => {
    await peer?.close();
  });
  beforeEach(() => {
    peer.reset();
    resetGithubClientState();
  });

  it('org with 2FA required and one member without it: that member fails, nothing else', async () => {
    const result = await run('acme');
    expect(result.error).toBeUndefined();
    expect(brief(result.findings)).toEqual([{ resource: 'acme/bob', outcome: 'fail' }]);
    expect(result.findings[0]?.message).toContain('bob, member of acme, has 2FA disabled');
    expect(peer.requests.map((r) => `${r.path}${r.query}`)).toEqual([
      '/orgs/acme',
      '/orgs/acme/members?per_page=100&filter=2fa_disabled',
      '/orgs/acme/members?per_page=100&filter=2fa_insecure',
      '/orgs/acme/outside_collaborators?per_page=100&filter=2fa_disabled',
      '/orgs/acme/outside_collaborators?per_page=100&filter=2fa_insecure',
    ]);
  });

  it('everyone has 2FA: one pass for the org', async () => {
    const result = await run('clean');
    expect(brief(result.findings)).toEqual([{ resource: 'clean', outcome: 'pass' }]);
  });

  it('setting off and an outside collaborator on SMS: the org fails and so does the collaborator', async () => {
    const result = await run('lax');
    expect(brief(result.findings)).toEqual([
      { resource: 'lax', outcome: 'fail' },
      { resource: 'lax/sms-sam', outcome: 'fail' },
    ]);
    expect(result.findings[1]?.message).toContain('sms-sam, outside collaborator of lax, uses an insecure 2FA method (SMS)');
  });

  it('a non-owner token gives a single unknown naming the reason, after one request', async () => {
    const result = await run('acme', 'GH_MEMBER');
    expect(result.error).toBeUndefined();
    expect(result.findings).toEqual([
      {
        resource: 'acme',
        outcome: 'unknown',
        message: 'the token is not an owner of acme: GitHub only shows 2FA status to owners (needs admin:org read / Organization Members: read as an owner)',
      },
    ]);
    expect(peer.count()).toBe(1);
  });

  it('a GitHub that does not know filter=2fa_insecure: recorded as not reported, still judged on 2FA disabled', async () => {
    const result = await run('old-ghes', 'GH_OWNER', peer.ghesApiUrl);
    expect(brief(result.findings)).toEqual([{ resource: 'old-ghes', outcome: 'pass' }]);
    expect(result.findings[0]?.details?.notReported).toHaveLength(2);
    expect(peer.requests.every((r) => r.path.startsWith('/api/v3/orgs/old-ghes'))).toBe(true);
    expect(peer.requests.filter((r) => r.status === 422)).toHaveLength(2);
  });

  it('250 members without 2FA across three pages: 250 fails', async () => {
    const result = await run('big');
    expect(result.findings.filter((f) => f.outcome === 'fail')).toHaveLength(250);
    expect(peer.count('rest', /\/members$/)).toBe(3 + 1);
  });

  it('a secondary rate limit mid-run is waited out: same findings, one more request', async () => {
    peer.retryAfterNext(1, 403);
    const result = await run('acme');
    expect(brief(result.findings)).toEqual([{ resource: 'acme/bob', outcome: 'fail' }]);
    expect(peer.requests.map((r) => r.status)).toEqual([403, 200, 200, 200, 200, 200]);
  });

  it('a 502 then success: same findings', async () => {
    peer.failNext(1, 502);
    const result = await run('acme');
    expect(brief(result.findings)).toEqual([{ resource: 'acme/bob', outcome: 'fail' }]);
    expect(peer.requests[0]?.status).toBe(502);
  });

  it('a malformed member list is a MalformedResponseError run error, never pass or fail', async () => {
    peer.respondNext(/\/orgs\/clean\/members$/, { status: 200, body: [{ id: 1 }] });
    const result = await run('clean');
    expect(result.error?.class).toBe('MalformedResponseError');
    expect(result.findings).toEqual([]);
  });

  it('a malformed org payload (setting as a string) is a run error, not a verdict', async () => {
    peer.respondNext(/\/orgs\/lax$/, { status: 200, body: { login: 'lax', two_factor_requirement_enabled: 'no' } });
    const result = await run('lax');
    expect(result.error?.class).toBe('MalformedResponseError');
    expect(result.findings).toEqual([]);
  });

  it('targets: only github entries with an org', () => {
    const config = VigilConfig.parse({
      github: [
        { name: 'a', org: 'acme', auth: { token: { env: 'T' } } },
        { name: 'b', repos: ['acme/api'], auth: { token: { env: 'T' } } },
      ],
    });
    expect(probe.targets(config).map((t) => t.name)).toEqual(['a']);
  });
});
