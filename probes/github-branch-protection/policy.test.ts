/**
 * The pure policy layer: GitHub's pattern matching, which classic rule and which rulesets apply,
 * and how their requirements combine. Fixtures are hand-built in the observation's shape, with
 * values as GitHub reports them (GraphQL BranchProtectionRule fields, REST ruleset payloads).
 */
import { describe, expect, it } from 'vitest';
import type { RepoObservation, Ruleset } from './observation.js';
import { classic, ruleset } from './fixtures/builders.js';
import {
  adminsBound,
  effectivePolicy,
  fnmatchBranch,
  isEnforced,
  matchingClassicRule,
  rulesetApplies,
} from './policy.js';



function repo(over: Partial<RepoObservation> = {}): RepoObservation {
  return {
    fullName: 'acme/api',
    defaultBranch: 'main',
    empty: false,
    branches: ['main'],
    classic: { readable: true, rules: [] },
    rulesets: { readable: true, rulesets: [] },
    ...over,
  };
}

describe('fnmatchBranch (Ruby File.fnmatch with FNM_PATHNAME)', () => {
  const cases: Array<[pattern: string, branch: string, expected: boolean, why: string]> = [
    ['main', 'main', true, 'a literal name matches itself'],
    ['main', 'main2', false, 'a literal name matches nothing longer'],
    ['Main', 'main', false, 'matching is case-sensitive, as Git refs are'],
    ['*', 'main', true, '* matches a name without slashes'],
    ['*', 'feature/login', false, '* does not match a directory separator'],
    ['*release*', 'pre-release-1', true, 'the docs example: any branch containing "release"'],
    ['qa/*', 'qa/foo', true, 'qa/* matches one level under qa/'],
    ['qa/*', 'qa/foo/bar', false, 'qa/* does not match two levels (the docs example)'],
    ['release/*', 'release/1.0/hotfix', false, 'release/* does not reach release/1.0/hotfix'],
    ['release/*', 'release/1.0', true, 'release/* matches release/1.0'],
    ['qa/**/*', 'qa/foo/bar/foobar/hello-world', true, '**/ matches any number of directories (the docs example)'],
    ['qa/**/*', 'qa/foo', true, '**/ also matches zero directories'],
    ['qa**/**/*', 'qa-team/foo/bar', true, 'qa**/**/* widens the qa prefix (the docs example)'],
    ['qa**/**/*', 'qa', false, 'qa**/**/* still needs something after a slash'],
    ['releases/**/*', 'releases/v1/rc', true, 'the rulesets docs example'],
    ['release/**', 'release/1.0/hotfix', false, 'a trailing ** is one segment, like *'],
    ['release/**', 'release/1.0', true, 'a trailing ** matches one segment'],
    ['?ain', 'main', true, '? matches one character'],
    ['?', 'a/', false, '? never matches a slash'],
    ['v[0-9]*', 'v2.1', true, 'character ranges'],
    ['v[0-9]*', 'vx', false, 'a range that does not contain the character'],
    ['v[!0-9]*', 'vx', true, 'a complemented class (fnmatch !)'],
    ['hotfix-[abc]', 'hotfix-b', true, 'a character set'],
    ['feat[', 'feat[', false, 'an unterminated class never matches'],
    ['*', '.hidden', false, 'a leading period is only matched literally (no FNM_DOTMATCH)'],
  ];
  it.each(cases)('%s vs %s → %s (%s)', (pattern, branch, expected) => {
    expect(fnmatchBranch(pattern, branch)).toBe(expected);
  });
});

describe('matchingClassicRule', () => {
  it('a rule naming the branch wins over an older wildcard rule', () => {
    const rules = [classic('*', { requiredApprovingReviewCount: 3 }), classic('main', { requiredApprovingReviewCount: 1 })];
    expect(matchingClassicRule(rules, 'main')?.pattern).toBe('main');
  });
  it('of two matching wildcard rules, the first listed (oldest) wins', () => {
    const rules = [classic('rel*'), classic('release/*'), classic('*')];
    expect(matchingClassicRule(rules, 'release-2')?.pattern).toBe('rel*');
    expect(matchingClassicRule(rules, 'release/2')?.pattern).toBe('release/*');
  });
  it('no rule when no pattern matches', () => {
    expect(matchingClassicRule([classic('release/*')], 'release/1.0/hotfix')).toBeNull();
  });
});

describe('rulesetApplies', () => {
  const cases: Array<{ name: string; rs: Partial<Ruleset>; repo?: string; branch: string; def?: string | null; expected: boolean }> = [
    { name: '~DEFAULT_BRANCH targets the default branch', rs: {}, branch: 'main', expected: true },
    { name: '~DEFAULT_BRANCH does not target another branch', rs: {}, branch: 'develop', expected: false },
    { name: '~DEFAULT_BRANCH targets nothing when the default branch is unknown', rs: {}, branch: 'main', def: null, expected: false },
    { name: 'a full ref names the branch', rs: { refInclude: ['refs/heads/main'] }, branch: 'main', expected: true },
    { name: 'a full ref pattern uses fnmatch', rs: { refInclude: ['refs/heads/release/*'] }, branch: 'release/1.0', expected: true },
    { name: 'a full ref pattern keeps FNM_PATHNAME', rs: { refInclude: ['refs/heads/release/*'] }, branch: 'release/1.0/hotfix', expected: false },
    { name: 'a tag ref never targets a branch', rs: { refInclude: ['refs/tags/main'] }, branch: 'main', expected: false },
    { name: 'a bare pattern is read as a branch name', rs: { refInclude: ['main'] }, branch: 'main', expected: true },
    { name: '~ALL targets every branch', rs: { refInclude: ['~ALL'] }, branch: 'feature/x', expected: true },
    { name: '~ALL with an exclude leaves the excluded branch out', rs: { refInclude: ['~ALL'], refExclude: ['refs/heads/feature/**/*'] }, branch: 'feature/x/y', expected: false },
    { name: '~ALL with an exclude keeps the others', rs: { refInclude: ['~ALL'], refExclude: ['refs/heads/feature/**/*'] }, branch: 'main', expected: true },
    { name: 'an exclude of ~DEFAULT_BRANCH wins over the include', rs: { refInclude: ['~ALL'], refExclude: ['~DEFAULT_BRANCH'] }, branch: 'main', expected: false },
    { name: 'an empty include targets nothing', rs: { refInclude: [] }, branch: 'main', expected: false },
    { name: 'a tag ruleset does not protect branches', rs: { target: 'tag', refInclude: ['~ALL'] }, branch: 'main', expected: false },
    { name: 'a push ruleset does not protect branches', rs: { target: 'push', refInclude: ['~ALL'] }, branch: 'main', expected: false },
    { name: 'an org ruleset with no repository condition applies everywhere', rs: { source: 'organization' }, branch: 'main', expected: true },
    { name: 'an org ruleset including ~ALL repositories applies', rs: { source: 'organization', repositoryInclude: ['~ALL'] }, branch: 'main', expected: true },
    { name: 'an org ruleset excluding the repository does not apply', rs: { source: 'organization', repositoryInclude: ['~ALL'], repositoryExclude: ['api'] }, branch: 'main', expected: false },
    { name: 'repository names match case-insensitively', rs: { source: 'organization', repositoryInclude: ['API'] }, branch: 'main', expected: true },
    { name: 'an org ruleset including other repositories does not apply', rs: { source: 'organization', repositoryInclude: ['web-*'] }, branch: 'main', expected: false },
    { name: 'an org repository pattern uses fnmatch', rs: { source: 'organization', repositoryInclude: ['a*'] }, repo: 'acme/api', branch: 'main', expected: true },
  ];
  it.each(cases)('$name', ({ rs, repo: name = 'acme/api', branch, def, expected }) => {
    expect(rulesetApplies(ruleset(rs), name, branch, def === undefined ? 'main' : def)).toBe(expected);
  });

  it('applies whatever its enforcement (enforcement is judged separately)', () => {
    expect(rulesetApplies(ruleset({ enforcement: 'evaluate' }), 'acme/api', 'main', 'main')).toBe(true);
  });
});

describe('isEnforced', () => {
  it.each([
    ['active', true],
    ['ACTIVE', true],
    ['evaluate', false],
    ['disabled', false],
    ['Active ', false],
    ['enabled', false],
    ['', false],
  ])('enforcement %j → %s', (enforcement, expected) => {
    expect(isEnforced(ruleset({ enforcement }))).toBe(expected);
  });
});

describe('effectivePolicy', () => {
  it('records each requirement with every source providing it', () => {
    const policy = effectivePolicy(
      repo({
        classic: { readable: true, rules: [classic('main', { requiresStatusChecks: false, requiredStatusChecks: [] })] },
        rulesets: { readable: true, rulesets: [ruleset({ source: 'organization', name: 'Org baseline', rules: [{ type: 'deletion' }, { type: 'required_signatures' }] })] },
      }),
      'main',
    );
    expect(policy.classic).toMatchObject({ state: 'rule', pattern: 'main', source: 'classic rule "main"' });
    expect(policy.requirements.pullRequest.by.map((p) => p.source)).toEqual(['classic rule "main"']);
    expect(policy.requirements.deletionBlocked.by.map((p) => p.source)).toEqual([
      'classic rule "main"',
      'ruleset "Org baseline" (organization)',
    ]);
    expect(policy.requirements.signedCommits).toMatchObject({ met: true, by: [{ source: 'ruleset "Org baseline" (organization)' }] });
    expect(policy.requirements.statusChecks).toEqual({ met: false, by: [] });
    expect(policy.rulesets).toEqual([
      { id: 42, name: 'Org baseline', source: 'organization', label: 'ruleset "Org baseline" (organization)', bypassActors: [] },
    ]);
    expect(policy.unknowns).toEqual([]);
  });

  it('approvals are the most any source requires', () => {
    const policy = effectivePolicy(
      repo({
        classic: { readable: true, rules: [classic('main', { requiredApprovingReviewCount: 1 })] },
        rulesets: {
          readable: true,
          rulesets: [
            ruleset({ id: 1, rules: [{ type: 'pull_request', requiredApprovingReviewCount: 3, dismissStaleReviewsOnPush: false, requireCodeOwnerReview: false, requireLastPushApproval: false }] }),
            ruleset({ id: 2, name: 'Two', rules: [{ type: 'pull_request', requiredApprovingReviewCount: 2, dismissStaleReviewsOnPush: true, requireCodeOwnerReview: false, requireLastPushApproval: false }] }),
          ],
        },
      }),
      'main',
    );
    expect(policy.approvals).toBe(3);
    expect(policy.requirements.approvals.by.map((p) => [p.source, p.count])).toEqual([
      ['classic rule "main"', 1],
      ['ruleset "Protect main" (repository)', 3],
      ['ruleset "Two" (repository)', 2],
    ]);
    expect(policy.requirements.staleReviewDismissal.by.map((p) => p.source)).toEqual(['ruleset "Two" (repository)']);
  });

  it('status check contexts are the union of all sources', () => {
    const policy = effectivePolicy(
      repo({
        classic: { readable: true, rules: [classic('main', { requiredStatusChecks: ['ci/build', 'lint'] })] },
        rulesets: { readable: true, rulesets: [ruleset({ rules: [{ type: 'required_status_checks', contexts: ['lint', 'e2e'] }] })] },
      }),
      'main',
    );
    expect(policy.statusCheckContexts).toEqual(['ci/build', 'lint', 'e2e']);
  });

  it('a required_status_checks rule with no context does not count', () => {
    const policy = effectivePolicy(repo({ rulesets: { readable: true, rulesets: [ruleset({ rules: [{ type: 'required_status_checks', contexts: [] }] })] } }), 'main');
    expect(policy.requirements.statusChecks.met).toBe(false);
  });

  it('rulesets that apply but are not enforced are listed with their raw enforcement, and provide nothing', () => {
    const policy = effectivePolicy(
      repo({
        rulesets: {
          readable: true,
          rulesets: [
            ruleset({ id: 1, name: 'Trial', enforcement: 'evaluate' }),
            ruleset({ id: 2, name: 'Off', enforcement: 'disabled' }),
            ruleset({ id: 3, name: 'Odd', enforcement: 'Active ' }),
            ruleset({ id: 4, name: 'Elsewhere', enforcement: 'evaluate', refInclude: ['refs/heads/other'] }),
          ],
        },
      }),
      'main',
    );
    expect(policy.notEnforced.map((r) => [r.name, r.enforcement, r.kind])).toEqual([
      ['Trial', 'evaluate', 'evaluate'],
      ['Off', 'disabled', 'disabled'],
      ['Odd', 'Active ', 'unknown'],
    ]);
    expect(policy.rulesets).toEqual([]);
    expect(policy.requirements.pullRequest.met).toBe(false);
  });

  it('a classic rule that lets named actors force push does not block force pushes', () => {
    const policy = effectivePolicy(repo({ classic: { readable: true, rules: [classic('main', { bypassForcePushActors: 2 })] } }), 'main');
    expect(policy.requirements.forcePushesBlocked.met).toBe(false);
    expect(policy.requirements.deletionBlocked.met).toBe(true);
  });

  it('unreadable classic protection is an unknown that could provide anything', () => {
    const policy = effectivePolicy(repo({ classic: { readable: false, reason: 'the token lacks admin rights on acme/api (needs Administration: read)' } }), 'main');
    expect(policy.classic).toEqual({ state: 'unreadable', reason: 'the token lacks admin rights on acme/api (needs Administration: read)' });
    expect(policy.unknowns).toEqual([
      { part: 'classic', source: null, reason: 'the token lacks admin rights on acme/api (needs Administration: read)', affects: 'all' },
    ]);
  });

  it('REST reporting the branch unprotected settles unreadable classic protection as none', () => {
    const policy = effectivePolicy(
      repo({ classic: { readable: false, reason: 'no admin' }, branchProtected: { main: false } }),
      'main',
    );
    expect(policy.classic).toEqual({ state: 'none-reported' });
    expect(policy.unknowns).toEqual([]);
  });

  it('REST reporting the branch protected does not settle it (rulesets also make it protected)', () => {
    const policy = effectivePolicy(repo({ classic: { readable: false, reason: 'no admin' }, branchProtected: { main: true } }), 'main');
    expect(policy.classic.state).toBe('unreadable');
  });

  it('unreadable bypass actors leave only whether admins are bound open', () => {
    const policy = effectivePolicy(
      repo({ rulesets: { readable: true, rulesets: [ruleset({ bypass: { readable: false, reason: 'needs Administration: read' } })] } }),
      'main',
    );
    expect(policy.requirements.pullRequest.met).toBe(true);
    expect(policy.unknowns).toEqual([
      { part: 'bypass', source: 'ruleset "Protect main" (repository)', reason: 'needs Administration: read', affects: 'adminBypass' },
    ]);
    expect(adminsBound(policy, 'pullRequest')).toBe('unknown');
  });
});

describe('adminsBound', () => {
  const bypassing = ruleset({ bypass: { readable: true, actors: [{ actorType: 'RepositoryRole', mode: 'always' }] } });
  it('a classic rule that binds admins still binds them when a layered ruleset has a bypass list', () => {
    const policy = effectivePolicy(repo({ classic: { readable: true, rules: [classic('main')] }, rulesets: { readable: true, rulesets: [bypassing] } }), 'main');
    expect(adminsBound(policy, 'pullRequest')).toBe(true);
    expect(adminsBound(policy, 'forcePushesBlocked')).toBe(true);
  });
  it('a ruleset with any bypass actor does not bind admins', () => {
    for (const mode of ['always', 'pull_request', 'exempt']) {
      const rs = ruleset({ bypass: { readable: true, actors: [{ actorType: 'Team', mode }] } });
      const policy = effectivePolicy(repo({ rulesets: { readable: true, rulesets: [rs] } }), 'main');
      expect(adminsBound(policy, 'deletionBlocked'), mode).toBe(false);
    }
  });
  it('a classic rule that exempts administrators does not bind them', () => {
    const policy = effectivePolicy(repo({ classic: { readable: true, rules: [classic('main', { isAdminEnforced: false })] } }), 'main');
    expect(adminsBound(policy, 'statusChecks')).toBe(false);
  });
  it('classic pull-request bypass allowances unbind pull-request settings only', () => {
    const policy = effectivePolicy(repo({ classic: { readable: true, rules: [classic('main', { bypassPullRequestActors: 1 })] } }), 'main');
    expect(adminsBound(policy, 'pullRequest')).toBe(false);
    expect(adminsBound(policy, 'approvals')).toBe(false);
    expect(adminsBound(policy, 'deletionBlocked')).toBe(true);
  });
  it('for approvals, only sources requiring enough approvals count', () => {
    const twoWithBypass = ruleset({
      bypass: { readable: true, actors: [{ actorType: 'OrganizationAdmin', mode: 'always' }] },
      rules: [{ type: 'pull_request', requiredApprovingReviewCount: 2, dismissStaleReviewsOnPush: false, requireCodeOwnerReview: false, requireLastPushApproval: false }],
    });
    const policy = effectivePolicy(repo({ classic: { readable: true, rules: [classic('main')] }, rulesets: { readable: true, rulesets: [twoWithBypass] } }), 'main');
    expect(adminsBound(policy, 'approvals', 1)).toBe(true);
    expect(adminsBound(policy, 'approvals', 2)).toBe(false);
  });
});
