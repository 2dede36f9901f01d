/**
 * evaluate, table-driven: one repository per case, hand-built in the observation's shape with
 * values as GitHub reports them (GraphQL BranchProtectionRule fields; REST ruleset payloads:
 * `enforcement`, `target`, `conditions.ref_name`, `conditions.repository_name`, `bypass_actors`).
 */
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../src/probe/contract.js';
import { evaluateBranchProtection, Params } from './evaluate.js';
import type { BranchProtectionObservation, ClassicRule, RepoObservation, Ruleset } from './observation.js';
import { classic, fullRules, pr, ruleset } from './fixtures/builders.js';

const defaults = Params.parse({});

/** A classic rule that meets every default requirement and binds admins. */



const orgRuleset = (over: Partial<Ruleset> = {}): Ruleset =>
  ruleset({ id: 7, name: 'Org baseline', source: 'organization', repositoryInclude: ['~ALL'], repositoryExclude: [], ...over });

const adminRole = { actorType: 'RepositoryRole', mode: 'always' }; // actor_id 5: the repository admin role
const noAdmin = 'the token lacks admin rights on acme/api (needs Administration: read)';

function repo(over: { classic?: ClassicRule[] | string; rulesets?: Ruleset[] | string } & Partial<Omit<RepoObservation, 'classic' | 'rulesets'>> = {}): RepoObservation {
  const { classic: c = [], rulesets: r = [], ...rest } = over;
  return {
    fullName: 'acme/api',
    defaultBranch: 'main',
    empty: false,
    branches: ['main'],
    classic: typeof c === 'string' ? { readable: false, reason: c } : { readable: true, rules: c },
    rulesets: typeof r === 'string' ? { readable: false, reason: r } : { readable: true, rulesets: r },
    ...rest,
  };
}

function observe(...repos: RepoObservation[]): BranchProtectionObservation {
  return { repos, skipped: { archived: [], disabled: [] }, unreadableRepos: [] };
}

interface Case {
  name: string;
  repo: RepoObservation;
  params?: Partial<Params>;
  /** The finding for this resource (default `acme/api@main`). */
  resource?: string;
  outcome: Finding['outcome'];
  /** The whole message, when given; else each fragment must appear in it. */
  message?: string;
  contains?: string[];
  absent?: string[];
}

const cases: Case[] = [
  // Sources
  {
    name: 'protected by classic rules only',
    repo: repo({ classic: [classic('main')] }),
    outcome: 'pass',
    message: 'acme/api@main: pull request required, ≥ 1 approval, status checks, force pushes blocked, deletion blocked, admins bound (classic rule "main")',
  },
  {
    name: 'protected by a repository ruleset only',
    repo: repo({ rulesets: [ruleset()] }),
    outcome: 'pass',
    contains: ['(ruleset "Protect main" (repository))'],
  },
  {
    name: 'protected by an organisation ruleset only',
    repo: repo({ rulesets: [orgRuleset()] }),
    outcome: 'pass',
    contains: ['(ruleset "Org baseline" (organization))'],
  },
  {
    name: 'requirements split across classic rule and rulesets combine',
    repo: repo({
      classic: [classic('main', { requiresStatusChecks: false, requiredStatusChecks: [], allowsDeletions: true })],
      rulesets: [orgRuleset({ rules: [{ type: 'required_status_checks', contexts: ['ci/build'] }, { type: 'deletion' }] })],
    }),
    outcome: 'pass',
    contains: ['(classic rule "main", ruleset "Org baseline" (organization))'],
  },
  {
    name: 'no protection at all fails',
    repo: repo(),
    outcome: 'fail',
    message:
      'acme/api@main: no branch protection rule or active ruleset applies — add a ruleset targeting main in Settings › Rules › Rulesets (or a classic rule in Settings › Branches)',
  },

  // Enforcement
  {
    name: 'ruleset in evaluate mode does not count and is named',
    repo: repo({ rulesets: [ruleset({ enforcement: 'evaluate' })] }),
    outcome: 'fail',
    contains: [
      'no branch protection rule or active ruleset applies',
      'ruleset "Protect main" (repository) is in evaluate mode: set enforcement to Active',
    ],
  },
  {
    name: 'ruleset in evaluate mode beside a weak classic rule is named with the unmet requirements',
    repo: repo({ classic: [classic('main', { allowsForcePushes: true })], rulesets: [ruleset({ enforcement: 'evaluate' })] }),
    outcome: 'fail',
    message:
      'acme/api@main: force pushes allowed (classic rule "main" allows them) — fix in the classic rule "main" (Settings › Branches); ruleset "Protect main" (repository) is in evaluate mode: set enforcement to Active',
  },
  {
    name: 'disabled ruleset does not count',
    repo: repo({ rulesets: [ruleset({ enforcement: 'disabled' })] }),
    outcome: 'fail',
    contains: ['ruleset "Protect main" (repository) is disabled: set enforcement to Active'],
  },
  {
    name: 'unknown enforcement value "Active " (trailing space) is not enforced',
    repo: repo({ rulesets: [ruleset({ enforcement: 'Active ' })] }),
    outcome: 'fail',
    contains: ['ruleset "Protect main" (repository) has enforcement "Active ", which GitHub does not enforce: set enforcement to Active'],
  },
  {
    name: 'unknown enforcement value "enabled" is not enforced',
    repo: repo({ rulesets: [orgRuleset({ enforcement: 'enabled' })] }),
    outcome: 'fail',
    contains: ['ruleset "Org baseline" (organization) has enforcement "enabled", which GitHub does not enforce'],
  },
  {
    name: 'enforcement "ACTIVE" in another case is enforced',
    repo: repo({ rulesets: [ruleset({ enforcement: 'ACTIVE' })] }),
    outcome: 'pass',
  },

  // Bypass
  {
    name: 'a bypass actor means admins are not bound',
    repo: repo({ rulesets: [ruleset({ bypass: { readable: true, actors: [adminRole] } })] }),
    outcome: 'fail',
    message:
      'acme/api@main: admins can bypass: ruleset "Protect main" (repository) has 1 bypass actor (empty its bypass list) — fix in ruleset "Protect main" (repository) (Settings › Rules › Rulesets)',
  },
  {
    name: 'a bypass actor passes when admin bypass is allowed',
    repo: repo({ rulesets: [ruleset({ bypass: { readable: true, actors: [adminRole] } })] }),
    params: { forbidAdminBypass: false },
    outcome: 'pass',
    absent: ['admins bound'],
  },
  {
    name: 'a pull_request-mode bypass actor also unbinds admins',
    repo: repo({ rulesets: [orgRuleset({ bypass: { readable: true, actors: [{ actorType: 'OrganizationAdmin', mode: 'pull_request' }] } })] }),
    outcome: 'fail',
    contains: ['admins can bypass: ruleset "Org baseline" (organization) has 1 bypass actor'],
  },
  {
    name: 'a classic rule binding admins keeps them bound beside a ruleset with a bypass list',
    repo: repo({ classic: [classic('main')], rulesets: [orgRuleset({ bypass: { readable: true, actors: [adminRole] } })] }),
    outcome: 'pass',
  },
  {
    name: 'a requirement only a bypassable ruleset provides leaves admins unbound',
    repo: repo({
      classic: [classic('main', { requiresStatusChecks: false, requiredStatusChecks: [] })],
      rulesets: [orgRuleset({ bypass: { readable: true, actors: [adminRole, { actorType: 'Team', mode: 'exempt' }] } })],
    }),
    outcome: 'fail',
    contains: ['admins can bypass: ruleset "Org baseline" (organization) has 2 bypass actors'],
    absent: ['classic rule "main" exempts'],
  },
  {
    name: 'a classic rule exempting administrators fails admin bypass',
    repo: repo({ classic: [classic('main', { isAdminEnforced: false })] }),
    outcome: 'fail',
    contains: ['admins can bypass: classic rule "main" exempts administrators (tick "Do not allow bypassing the above settings")'],
  },
  {
    name: 'classic pull-request bypass allowances fail admin bypass',
    repo: repo({ classic: [classic('main', { bypassPullRequestActors: 2 })] }),
    outcome: 'fail',
    contains: ['admins can bypass: classic rule "main" lets 2 actors bypass pull requests'],
  },
  {
    name: 'classic actors allowed to force push leave force pushes allowed',
    repo: repo({ classic: [classic('main', { bypassForcePushActors: 2 })] }),
    outcome: 'fail',
    contains: ['force pushes allowed for 2 actors (classic rule "main")'],
  },

  // Conditions
  {
    name: 'a branch excluded by a ruleset pattern is not protected by it',
    repo: repo({ rulesets: [ruleset({ refInclude: ['~ALL'], refExclude: ['refs/heads/main'] })] }),
    outcome: 'fail',
    contains: ['no branch protection rule or active ruleset applies'],
  },
  {
    name: '~DEFAULT_BRANCH protects the default branch',
    repo: repo({ branches: ['main', 'release/1.0'], rulesets: [ruleset()] }),
    outcome: 'pass',
  },
  {
    name: '~DEFAULT_BRANCH does not protect another branch',
    repo: repo({ branches: ['main', 'release/1.0'], rulesets: [ruleset()] }),
    resource: 'acme/api@release/1.0',
    outcome: 'fail',
    contains: ['acme/api@release/1.0: no branch protection rule or active ruleset applies'],
  },
  {
    name: '~ALL with an exclude protects the other branches',
    repo: repo({ branches: ['main', 'release/1.0'], rulesets: [ruleset({ refInclude: ['~ALL'], refExclude: ['refs/heads/release/**/*'] })] }),
    outcome: 'pass',
  },
  {
    name: '~ALL with an exclude leaves the excluded branch unprotected',
    repo: repo({ branches: ['main', 'release/1.0'], rulesets: [ruleset({ refInclude: ['~ALL'], refExclude: ['refs/heads/release/**/*'] })] }),
    resource: 'acme/api@release/1.0',
    outcome: 'fail',
    contains: ['no branch protection rule or active ruleset applies'],
  },
  {
    name: 'an org ruleset excluding the repository by name does not apply',
    repo: repo({ rulesets: [orgRuleset({ repositoryExclude: ['api', 'legacy-*'] })] }),
    outcome: 'fail',
    contains: ['no branch protection rule or active ruleset applies'],
  },
  {
    name: 'an org ruleset including the repository by pattern applies',
    repo: repo({ rulesets: [orgRuleset({ repositoryInclude: ['a*'] })] }),
    outcome: 'pass',
  },
  {
    name: 'a tag ruleset does not protect a branch',
    repo: repo({ rulesets: [ruleset({ target: 'tag', refInclude: ['~ALL'] })] }),
    outcome: 'fail',
    contains: ['no branch protection rule or active ruleset applies'],
  },
  {
    name: 'classic pattern release/* does not match release/1.0/hotfix',
    repo: repo({ branches: ['release/1.0/hotfix'], classic: [classic('release/*')] }),
    resource: 'acme/api@release/1.0/hotfix',
    outcome: 'fail',
    contains: ['no branch protection rule or active ruleset applies'],
  },
  {
    name: 'classic pattern release/* matches release/1.0',
    repo: repo({ branches: ['release/1.0'], classic: [classic('release/*')] }),
    resource: 'acme/api@release/1.0',
    outcome: 'pass',
    contains: ['(classic rule "release/*")'],
  },
  {
    name: 'the classic rule naming the branch wins over an older, stronger wildcard rule',
    repo: repo({ classic: [classic('*'), classic('main', { allowsDeletions: true })] }),
    outcome: 'fail',
    message: 'acme/api@main: branch deletion allowed — fix in the classic rule "main" (Settings › Branches)',
  },
  {
    name: 'the classic rule naming the branch wins over a weaker wildcard rule',
    repo: repo({ classic: [classic('*', { allowsDeletions: true }), classic('main')] }),
    outcome: 'pass',
    contains: ['(classic rule "main")'],
  },

  // Approvals
  {
    name: 'approvals are the most any source requires',
    repo: repo({ classic: [classic('main', { requiredApprovingReviewCount: 1 })], rulesets: [orgRuleset({ rules: [pr(2)] })] }),
    params: { minApprovals: 2 },
    outcome: 'pass',
    contains: ['≥ 2 approvals'],
  },
  {
    name: 'too few approvals fail with the count found',
    repo: repo({ classic: [classic('main', { requiredApprovingReviewCount: 1 })], rulesets: [orgRuleset({ rules: [pr(2)] })] }),
    params: { minApprovals: 3 },
    outcome: 'fail',
    contains: ['pull requests need 2 approving reviews, ≥ 3 approvals required'],
  },
  {
    name: 'a pull request with zero approvals fails the default minimum',
    repo: repo({ rulesets: [ruleset({ rules: [pr(0), ...fullRules.slice(1)] })] }),
    outcome: 'fail',
    message:
      'acme/api@main: pull requests need 0 approving reviews, ≥ 1 approval required — fix in ruleset "Protect main" (repository) (Settings › Rules › Rulesets)',
  },
  {
    name: 'minApprovals 0 accepts a pull request without approvals',
    repo: repo({ rulesets: [ruleset({ rules: [pr(0), ...fullRules.slice(1)] })] }),
    params: { minApprovals: 0 },
    outcome: 'pass',
  },
  {
    name: 'admins must be bound by a source requiring enough approvals',
    repo: repo({ classic: [classic('main')], rulesets: [orgRuleset({ rules: [pr(2)], bypass: { readable: true, actors: [adminRole] } })] }),
    params: { minApprovals: 2 },
    outcome: 'fail',
    contains: ['admins can bypass: ruleset "Org baseline" (organization) has 1 bypass actor'],
  },

  // What the token could not read
  {
    name: 'classic unreadable but rulesets fully satisfy passes',
    repo: repo({ classic: noAdmin, rulesets: [ruleset()] }),
    outcome: 'pass',
  },
  {
    name: 'classic unreadable and rulesets insufficient is unknown naming the permission',
    repo: repo({ classic: noAdmin, rulesets: [ruleset({ rules: [pr(1)] })] }),
    outcome: 'unknown',
    message:
      'acme/api@main: could not tell status checks, force pushes blocked, deletion blocked: classic branch protection unreadable: the token lacks admin rights on acme/api (needs Administration: read)',
  },
  {
    name: 'classic unreadable and no ruleset is unknown, not fail',
    repo: repo({ classic: 'Resource not accessible by integration' }),
    outcome: 'unknown',
    message:
      'acme/api@main: could not tell whether any protection applies: classic branch protection unreadable: Resource not accessible by integration (needs Administration: read)',
  },
  {
    name: 'classic unreadable, a bypassable ruleset: admin binding is unknown (the classic rule might bind)',
    repo: repo({ classic: noAdmin, rulesets: [ruleset({ bypass: { readable: true, actors: [adminRole] } })] }),
    outcome: 'unknown',
    contains: ['could not tell admins bound: classic branch protection unreadable'],
  },
  {
    name: 'classic unreadable but REST says unprotected and rulesets insufficient fails',
    repo: repo({ classic: noAdmin, branchProtected: { main: false }, rulesets: [ruleset({ rules: [pr(1)] })] }),
    outcome: 'fail',
    message:
      'acme/api@main: no required status checks; force pushes allowed; branch deletion allowed — fix in ruleset "Protect main" (repository) (Settings › Rules › Rulesets)',
  },
  {
    name: 'classic unreadable, REST says unprotected, no ruleset: no protection fails',
    repo: repo({ classic: noAdmin, branchProtected: { main: false } }),
    outcome: 'fail',
    contains: ['no branch protection rule or active ruleset applies'],
  },
  {
    name: 'classic unreadable and REST says protected stays unknown',
    repo: repo({ classic: noAdmin, branchProtected: { main: true }, rulesets: [ruleset({ rules: [pr(1)] })] }),
    outcome: 'unknown',
  },
  {
    name: 'rulesets unreadable but the classic rule fully satisfies passes',
    repo: repo({ classic: [classic('main')], rulesets: 'rulesets endpoint returned 403' }),
    outcome: 'pass',
  },
  {
    name: 'rulesets unreadable and the classic rule insufficient is unknown',
    repo: repo({ classic: [classic('main', { allowsForcePushes: true })], rulesets: 'rulesets endpoint returned 403' }),
    outcome: 'unknown',
    message: 'acme/api@main: could not tell force pushes blocked: rulesets unreadable: rulesets endpoint returned 403 (needs Metadata: read)',
  },
  {
    name: 'bypass actors unreadable is unknown for admin bypass only',
    repo: repo({ rulesets: [orgRuleset({ bypass: { readable: false, reason: 'bypass_actors not returned: needs organization Administration: read' } })] }),
    outcome: 'unknown',
    message:
      'acme/api@main: could not tell admins bound: bypass actors of ruleset "Org baseline" (organization) unreadable: bypass_actors not returned: needs organization Administration: read',
  },
  {
    name: 'bypass actors unreadable passes when admin bypass is allowed',
    repo: repo({ rulesets: [orgRuleset({ bypass: { readable: false, reason: 'needs Administration: read' } })] }),
    params: { forbidAdminBypass: false },
    outcome: 'pass',
  },
  {
    name: 'bypass actors unreadable do not hide a requirement that is certainly unmet',
    repo: repo({ rulesets: [orgRuleset({ rules: [pr(1), { type: 'deletion' }], bypass: { readable: false, reason: 'needs Administration: read' } })] }),
    outcome: 'fail',
    contains: ['no required status checks; force pushes allowed', 'could not tell admins bound: bypass actors of ruleset "Org baseline" (organization) unreadable'],
  },
  {
    name: 'bypass actors unreadable do not matter when a classic rule binds admins',
    repo: repo({ classic: [classic('main')], rulesets: [orgRuleset({ bypass: { readable: false, reason: 'needs Administration: read' } })] }),
    outcome: 'pass',
  },

  // Optional requirements
  ...(
    [
      ['requireStaleReviewDismissal', 'stale approvals not dismissed on new pushes', { dismissesStaleReviews: true }],
      ['requireCodeOwnerReview', 'code-owner review not required', { requiresCodeOwnerReviews: true }],
      ['requireLastPushApproval', 'approval of the most recent push not required', { requireLastPushApproval: true }],
      ['requireSignedCommits', 'signed commits not required', { requiresCommitSignatures: true }],
      ['requireLinearHistory', 'linear history not required', { requiresLinearHistory: true }],
    ] as const
  ).flatMap(([param, text, setting]): Case[] => [
    { name: `${param} off: a rule without it passes`, repo: repo({ classic: [classic('main')] }), outcome: 'pass' },
    {
      name: `${param} on: a rule without it fails`,
      repo: repo({ classic: [classic('main')] }),
      params: { [param]: true },
      outcome: 'fail',
      message: `acme/api@main: ${text} — fix in the classic rule "main" (Settings › Branches)`,
    },
    { name: `${param} on: a rule with it passes`, repo: repo({ classic: [classic('main', setting)] }), params: { [param]: true }, outcome: 'pass' },
  ]),
  {
    name: 'optional requirements are met by ruleset rules too',
    repo: repo({
      rulesets: [
        ruleset({
          rules: [
            pr(1, { dismissStaleReviewsOnPush: true, requireCodeOwnerReview: true, requireLastPushApproval: true }),
            ...fullRules.slice(1),
            { type: 'required_signatures' },
            { type: 'required_linear_history' },
          ],
        }),
      ],
    }),
    params: {
      requireStaleReviewDismissal: true,
      requireCodeOwnerReview: true,
      requireLastPushApproval: true,
      requireSignedCommits: true,
      requireLinearHistory: true,
    },
    outcome: 'pass',
    contains: ['stale reviews dismissed, code-owner review, last-push approval, signed commits, linear history'],
  },
  {
    name: 'default requirements switched off are not judged',
    repo: repo({ rulesets: [ruleset({ rules: [{ type: 'deletion' }] })] }),
    params: { requirePullRequest: false, requireStatusChecks: false, blockForcePushes: false },
    outcome: 'pass',
    message: 'acme/api@main: deletion blocked, admins bound (ruleset "Protect main" (repository))',
  },
];

describe('evaluateBranchProtection', () => {
  it.each(cases)('$name', (c) => {
    const findings = evaluateBranchProtection(observe(c.repo), { ...defaults, ...c.params });
    expect(findings).toHaveLength(c.repo.branches.length);
    const resource = c.resource ?? 'acme/api@main';
    const finding = findings.find((f) => f.resource === resource);
    expect(finding, resource).toBeDefined();
    const f = finding as Finding;
    expect({ outcome: f.outcome, message: f.message }).toMatchObject({ outcome: c.outcome, ...(c.message ? { message: c.message } : {}) });
    for (const fragment of c.contains ?? []) expect(f.message).toContain(fragment);
    for (const fragment of c.absent ?? []) expect(f.message).not.toContain(fragment);
    expect(f.message).not.toContain('\n');
  });

  it('the message names every unmet requirement', () => {
    const weak = ruleset({ rules: [{ type: 'other', name: 'commit_message_pattern' }] });
    const params: Params = {
      ...defaults,
      requireStaleReviewDismissal: true,
      requireCodeOwnerReview: true,
      requireLastPushApproval: true,
      requireSignedCommits: true,
      requireLinearHistory: true,
    };
    const [f] = evaluateBranchProtection(observe(repo({ rulesets: [weak] })), params);
    expect(f?.outcome).toBe('fail');
    expect(f?.message).toBe(
      'acme/api@main: pull requests not required (need ≥ 1 approval); no required status checks; force pushes allowed; branch deletion allowed; ' +
        'stale approvals not dismissed on new pushes; code-owner review not required; approval of the most recent push not required; ' +
        'signed commits not required; linear history not required — fix in ruleset "Protect main" (repository) (Settings › Rules › Rulesets)',
    );
    expect(f?.details?.verdicts).toEqual({
      protected: 'met',
      pullRequest: 'unmet',
      approvals: 'unmet',
      statusChecks: 'unmet',
      forcePushesBlocked: 'unmet',
      deletionBlocked: 'unmet',
      staleReviewDismissal: 'unmet',
      codeOwnerReview: 'unmet',
      lastPushApproval: 'unmet',
      signedCommits: 'unmet',
      linearHistory: 'unmet',
      adminBypass: 'met',
    });
  });

  it('details carry the effective policy: sources per requirement, not-enforced rulesets, unknowns', () => {
    const r = repo({
      classic: [classic('main', { requiresStatusChecks: false, requiredStatusChecks: [] })],
      rulesets: [
        orgRuleset({ rules: [{ type: 'required_status_checks', contexts: ['ci/build'] }], bypass: { readable: false, reason: 'needs Administration: read' } }),
        ruleset({ id: 9, name: 'Trial', enforcement: 'evaluate' }),
      ],
    });
    const [f] = evaluateBranchProtection(observe(r), defaults);
    expect(f?.outcome).toBe('unknown'); // status checks come only from a ruleset whose bypass list is unreadable
    const policy = f?.details?.policy as Record<string, unknown> & { requirements: Record<string, { by: Array<{ source: string }> }> };
    expect(policy.requirements.statusChecks?.by.map((p) => p.source)).toEqual(['ruleset "Org baseline" (organization)']);
    expect(policy.requirements.pullRequest?.by.map((p) => p.source)).toEqual(['classic rule "main"']);
    expect(policy.notEnforced).toEqual([
      { id: 9, name: 'Trial', source: 'repository', label: 'ruleset "Trial" (repository)', enforcement: 'evaluate', kind: 'evaluate' },
    ]);
    expect(policy.unknowns).toEqual([
      { part: 'bypass', source: 'ruleset "Org baseline" (organization)', reason: 'needs Administration: read', affects: 'adminBypass' },
    ]);
    expect(f?.message).toContain('ruleset "Trial" (repository) is in evaluate mode: set enforcement to Active');
    // The details are plain JSON: what the recorder stores is what evaluate produced.
    expect(JSON.parse(JSON.stringify(f?.details))).toEqual(f?.details);
  });

  it('one finding per repository and branch, in order', () => {
    const findings = evaluateBranchProtection(
      observe(repo({ branches: ['main', 'release/1.0'], classic: [classic('main')] }), repo({ fullName: 'acme/web', rulesets: [orgRuleset()] })),
      defaults,
    );
    expect(findings.map((f) => [f.resource, f.outcome])).toEqual([
      ['acme/api@main', 'pass'],
      ['acme/api@release/1.0', 'fail'],
      ['acme/web@main', 'pass'],
    ]);
  });

  it('an empty repository is not applicable', () => {
    const findings = evaluateBranchProtection(observe(repo({ fullName: 'acme/empty', empty: true, defaultBranch: null, branches: [] })), defaults);
    expect(findings).toEqual([
      { resource: 'acme/empty', outcome: 'not_applicable', message: 'acme/empty: empty repository (no commits): no branch to protect yet', details: { empty: true } },
    ]);
  });

  it('a non-empty repository without a branch to judge is unknown, not skipped', () => {
    const findings = evaluateBranchProtection(observe(repo({ defaultBranch: null, branches: [] })), defaults);
    expect(findings.map((f) => [f.resource, f.outcome])).toEqual([['acme/api', 'unknown']]);
  });

  it('unreadable repositories are unknown; archived and disabled ones are counted as not applicable', () => {
    const obs: BranchProtectionObservation = {
      repos: [repo({ classic: [classic('main')] })],
      skipped: { archived: ['acme/old', 'acme/older'], disabled: ['acme/frozen'] },
      unreadableRepos: [{ fullName: 'acme/secret', reason: 'Not Found (404): the token cannot see acme/secret' }],
    };
    expect(evaluateBranchProtection(obs, defaults).map((f) => [f.resource, f.outcome, f.message])).toEqual([
      ['acme/api@main', 'pass', expect.any(String)],
      ['acme/secret', 'unknown', 'acme/secret: could not be read: Not Found (404): the token cannot see acme/secret'],
      ['acme/old', 'not_applicable', 'acme/old: archived: not judged'],
      ['acme/older', 'not_applicable', 'acme/older: archived: not judged'],
      ['acme/frozen', 'not_applicable', 'acme/frozen: disabled: not judged'],
    ]);
  });
});

describe('Params', () => {
  it('defaults: pull request with 1 approval, status checks, no force push, no deletion, no admin bypass; optional ones off', () => {
    expect(defaults).toEqual({
      requirePullRequest: true,
      minApprovals: 1,
      requireStatusChecks: true,
      blockForcePushes: true,
      blockDeletion: true,
      forbidAdminBypass: true,
      requireStaleReviewDismissal: false,
      requireCodeOwnerReview: false,
      requireLastPushApproval: false,
      requireSignedCommits: false,
      requireLinearHistory: false,
    });
  });
  it('rejects unknown keys and negative or fractional approvals', () => {
    expect(Params.safeParse({ requirePR: true }).success).toBe(false);
    expect(Params.safeParse({ minApprovals: -1 }).success).toBe(false);
    expect(Params.safeParse({ minApprovals: 1.5 }).success).toBe(false);
  });
});
