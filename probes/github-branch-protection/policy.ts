/**
 * The effective protection of one branch, computed the way GitHub enforces it: the one classic
 * branch protection rule that applies, layered with every enforced repository and organisation
 * ruleset whose conditions target the branch. Pure: no I/O, no clock.
 *
 * GitHub semantics this follows (docs.github.com, "About protected branches", "About rulesets",
 * "Creating rulesets for a repository"):
 * - Patterns are Ruby `File.fnmatch` with `File::FNM_PATHNAME`: `*` and `?` never match `/`,
 *   `**` followed by `/` matches zero or more whole directories, `[...]` is a character class.
 * - Of several classic rules matching a branch, one applies: a rule naming the branch exactly
 *   (no `*`, `?`, `[`, `]`) wins over wildcard rules; otherwise the oldest matching rule wins.
 * - Rulesets have no priority: all that target the branch are aggregated, and where the same
 *   rule is set differently the most restrictive version applies. They layer with the classic rule.
 * - Only `active` enforcement is enforced; `evaluate`, `disabled` and anything else are not.
 */
import type { ClassicRule, RepoObservation, Ruleset } from './observation.js';

/** Everything vigil can require of a branch, except "no admin bypass", which is judged over these. */
export type RequirementId =
  | 'pullRequest'
  | 'approvals'
  | 'statusChecks'
  | 'forcePushesBlocked'
  | 'deletionBlocked'
  | 'staleReviewDismissal'
  | 'codeOwnerReview'
  | 'lastPushApproval'
  | 'signedCommits'
  | 'linearHistory';

/** In the order findings list them. */
export const requirementIds: readonly RequirementId[] = [
  'pullRequest',
  'approvals',
  'statusChecks',
  'forcePushesBlocked',
  'deletionBlocked',
  'staleReviewDismissal',
  'codeOwnerReview',
  'lastPushApproval',
  'signedCommits',
  'linearHistory',
];

/** Pull-request settings: a classic rule's pull-request bypass allowances exempt their actors from these. */
const pullRequestRequirements: ReadonlySet<RequirementId> = new Set([
  'pullRequest',
  'approvals',
  'staleReviewDismissal',
  'codeOwnerReview',
  'lastPushApproval',
]);

/** One source providing one requirement. */
export interface Provision {
  /** `classic rule "main"` or `ruleset "Protect main" (organization)`. */
  source: string;
  /** `true`: nobody may bypass it, admins included; `false`: someone may; `'unknown'`: bypass actors unreadable. */
  bindsAdmins: boolean | 'unknown';
  /** Who may bypass it and how to stop that, when `bindsAdmins` is not `true`; else null. */
  bypass: string | null;
  /** Approvals only: the number of approving reviews this source requires. */
  count: number | null;
}

/** One requirement: which sources provide it. */
export interface RequirementState {
  /** Provided by at least one readable, enforced source (approvals: at least one approval required). */
  met: boolean;
  /** Every source that provides it (approvals: every source requiring a pull request, with its count). */
  by: Provision[];
}

/** Which classic rule applies to the branch, as far as the token could tell. */
export type ClassicState =
  | {
      state: 'rule';
      pattern: string;
      source: string;
      /** Force pushes allowed to everyone who can push. */
      allowsForcePushes: boolean;
      /** Actors named as allowed to force push. */
      bypassForcePushActors: number;
    }
  /** Classic rules were read and none matches the branch. */
  | { state: 'none' }
  /** Classic rules could not be read, but GitHub's read-level answer (GraphQL `refUpdateRule`, or REST `protected`) says none applies. */
  | { state: 'none-reported' }
  | { state: 'unreadable'; reason: string };

/** An enforced ruleset that applies to the branch. */
export interface AppliedRuleset {
  id: number;
  name: string;
  source: 'repository' | 'organization';
  /** `ruleset "Protect main" (organization)`. */
  label: string;
  /** Bypass actors as `actorType:mode`, or null when they could not be read. */
  bypassActors: string[] | null;
}

/** A ruleset whose conditions target the branch but whose enforcement is not `active`. */
export interface NotEnforcedRuleset {
  id: number;
  name: string;
  source: 'repository' | 'organization';
  label: string;
  /** Raw, as GitHub reported it. */
  enforcement: string;
  /** `evaluate`, `disabled`, or `unknown` for any value outside GitHub's documented enum. */
  kind: 'evaluate' | 'disabled' | 'unknown';
}

/** Something the token could not read, and what it leaves undecided. */
export interface UnknownPart {
  part: 'classic' | 'rulesets' | 'bypass';
  /** For `bypass`: the ruleset whose bypass actors are unreadable. */
  source: string | null;
  /** Why, naming the permission the token lacks. */
  reason: string;
  /** `all`: an unreadable source could provide any requirement; `adminBypass`: only whether admins are bound is open. */
  affects: 'all' | 'adminBypass';
}

/** The combined policy of one branch: plain JSON, stored in a finding's details. */
export interface EffectivePolicy {
  repository: string;
  branch: string;
  isDefaultBranch: boolean;
  classic: ClassicState;
  /** Enforced rulesets that apply, or null when rulesets could not be read. */
  rulesets: AppliedRuleset[] | null;
  requirements: Record<RequirementId, RequirementState>;
  /** Most approving reviews any source requires (GitHub applies the most restrictive). */
  approvals: number;
  /** Union of the required status check contexts of every source. */
  statusCheckContexts: string[];
  /** Rulesets that would apply but are not enforced. */
  notEnforced: NotEnforcedRuleset[];
  unknowns: UnknownPart[];
}

// ---------------------------------------------------------------------------------------------
// fnmatch (Ruby File.fnmatch with FNM_PATHNAME, as GitHub documents it)

/** Whether one path segment matches one pattern segment (no `/` on either side). */
function matchSegment(pattern: string[], text: string[]): boolean {
  // FNM_PATHNAME without FNM_DOTMATCH: a leading period is only matched by a literal period.
  if (text[0] === '.' && pattern[0] !== '.') return false;
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const c = pattern[p];
    if (c === '*') {
      starP = p++;
      starT = t;
      continue;
    }
    if (c !== undefined) {
      if (c === '?') {
        p++;
        t++;
        continue;
      }
      if (c === '[') {
        const next = matchClass(pattern, p, text[t] as string);
        if (next !== null) {
          p = next;
          t++;
          continue;
        }
      } else if (c === '\\' && pattern[p + 1] !== undefined) {
        if (pattern[p + 1] === text[t]) {
          p += 2;
          t++;
          continue;
        }
      } else if (c === text[t]) {
        p++;
        t++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP + 1;
    t = ++starT;
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/** Matches `ch` against the bracket expression at `pattern[open]`; the index after `]`, or null (no match, or unterminated). */
function matchClass(pattern: string[], open: number, ch: string): number | null {
  let i = open + 1;
  const negate = pattern[i] === '!' || pattern[i] === '^';
  if (negate) i++;
  let matched = false;
  let first = true;
  for (;;) {
    let c = pattern[i];
    if (c === undefined) return null;
    if (c === ']' && !first) break;
    first = false;
    if (c === '\\' && pattern[i + 1] !== undefined) c = pattern[++i] as string;
    let hi = c;
    if (pattern[i + 1] === '-' && pattern[i + 2] !== undefined && pattern[i + 2] !== ']') {
      hi = pattern[i + 2] === '\\' && pattern[i + 3] !== undefined ? (pattern[i + 3] as string) : (pattern[i + 2] as string);
      i += pattern[i + 2] === '\\' ? 3 : 2;
    }
    if (c <= ch && ch <= hi) matched = true;
    i++;
  }
  return matched !== negate ? i + 1 : null;
}

function fnmatchPath(pattern: string, path: string): boolean {
  const pat = pattern.split('/').map((s) => Array.from(s));
  const str = path.split('/').map((s) => Array.from(s));
  const go = (pi: number, si: number): boolean => {
    if (pi === pat.length) return si === str.length;
    const seg = pat[pi] as string[];
    if (seg.length === 2 && seg[0] === '*' && seg[1] === '*' && pi + 1 < pat.length) {
      // `**/`: zero or more whole directories (never one starting with a period).
      let next = pi + 1;
      while (next + 1 < pat.length && pat[next]?.join('') === '**') next++;
      for (let k = si; k < str.length; k++) {
        if (go(next, k)) return true;
        if (str[k]?.[0] === '.') return false;
      }
      return false;
    }
    const text = str[si];
    return text !== undefined && matchSegment(seg, text) && go(pi + 1, si + 1);
  };
  return go(0, 0);
}

/**
 * Whether a branch name matches a GitHub branch pattern (classic rule or ruleset), with the
 * semantics of Ruby's `File.fnmatch(pattern, branch, File::FNM_PATHNAME)`: `release/*` matches
 * `release/1.0` but not `release/1.0/hotfix`; `release/**` + `/*` matches both. Case-sensitive, as
 * Git refs are.
 */
export function fnmatchBranch(pattern: string, branch: string): boolean {
  return fnmatchPath(pattern, branch);
}

// ---------------------------------------------------------------------------------------------
// Which rules apply

/** Characters that make a classic rule pattern a wildcard pattern (GitHub's precedence rule). */
const wildcardChars = /[*?[\]]/;

/**
 * The classic protection rule GitHub applies to `branch`, or null. A rule naming the branch exactly
 * wins; otherwise the first matching wildcard rule. `rules` must be in creation order (GitHub
 * applies the older of two matching wildcard rules), which is the order GitHub lists them.
 */
export function matchingClassicRule(rules: readonly ClassicRule[], branch: string): ClassicRule | null {
  const exact = rules.find((r) => !wildcardChars.test(r.pattern) && r.pattern === branch);
  if (exact) return exact;
  return rules.find((r) => wildcardChars.test(r.pattern) && fnmatchBranch(r.pattern, branch)) ?? null;
}

/** One pattern of a ruleset's `ref_name` condition against a branch. */
function refPatternMatches(pattern: string, branch: string, defaultBranch: string | null): boolean {
  if (pattern === '~ALL') return true;
  if (pattern === '~DEFAULT_BRANCH') return defaultBranch !== null && branch === defaultBranch;
  // GitHub stores full refs (`refs/heads/main`, `refs/heads/release/**/*`); a pattern naming another
  // namespace (`refs/tags/...`) never targets a branch. A bare pattern is read as a branch name.
  if (pattern.startsWith('refs/')) return fnmatchPath(pattern, `refs/heads/${branch}`);
  return fnmatchPath(pattern, branch);
}

/** One pattern of an organisation ruleset's `repository_name` condition (repository names are case-insensitive). */
function repoPatternMatches(pattern: string, name: string): boolean {
  if (pattern === '~ALL') return true;
  return fnmatchPath(pattern.toLowerCase(), name.toLowerCase());
}

/**
 * Whether a ruleset's conditions target `branch` of repository `repoName` (`name` or `owner/name`),
 * whatever its enforcement: it must target branches; one `ref_name` include must match and no
 * exclude; for an organisation ruleset with a `repository_name` condition, likewise for the name.
 */
export function rulesetApplies(ruleset: Ruleset, repoName: string, branch: string, defaultBranch: string | null): boolean {
  if (ruleset.target.toLowerCase() !== 'branch') return false;
  if (ruleset.source === 'organization') {
    const name = repoName.slice(repoName.lastIndexOf('/') + 1);
    const include = ruleset.repositoryInclude;
    if (include !== undefined && !include.some((p) => repoPatternMatches(p, name))) return false;
    if ((ruleset.repositoryExclude ?? []).some((p) => repoPatternMatches(p, name))) return false;
  }
  if (!ruleset.refInclude.some((p) => refPatternMatches(p, branch, defaultBranch))) return false;
  return !ruleset.refExclude.some((p) => refPatternMatches(p, branch, defaultBranch));
}

/** Only `active`, in any case, is enforced; anything else (even `"Active "`) is not. */
export function isEnforced(ruleset: Ruleset): boolean {
  return ruleset.enforcement.toLowerCase() === 'active';
}

export function rulesetLabel(ruleset: Pick<Ruleset, 'name' | 'source'>): string {
  return `ruleset "${ruleset.name}" (${ruleset.source})`;
}

export function classicLabel(rule: Pick<ClassicRule, 'pattern'>): string {
  return `classic rule "${rule.pattern}"`;
}

function notEnforcedKind(enforcement: string): NotEnforcedRuleset['kind'] {
  const e = enforcement.toLowerCase();
  return e === 'evaluate' ? 'evaluate' : e === 'disabled' ? 'disabled' : 'unknown';
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

// ---------------------------------------------------------------------------------------------
// The effective policy

/**
 * The combined policy of `branch` in `repo`: the classic rule that applies plus every enforced
 * ruleset that applies, requirement by requirement, with the sources that provide each, whether
 * they bind admins, the rulesets that would apply but are not enforced, and what could not be read.
 */
export function effectivePolicy(repo: RepoObservation, branch: string): EffectivePolicy {
  const requirements = Object.fromEntries(requirementIds.map((id) => [id, { met: false, by: [] as Provision[] }])) as Record<
    RequirementId,
    RequirementState
  >;
  const contexts: string[] = [];
  const unknowns: UnknownPart[] = [];
  const notEnforced: NotEnforcedRuleset[] = [];

  const provide = (id: RequirementId, provision: Provision): void => {
    const state = requirements[id];
    const same = state.by.find((p) => p.source === provision.source);
    if (!same) state.by.push(provision);
    else if (provision.count !== null && (same.count ?? 0) < provision.count) same.count = provision.count;
  };
  const addContexts = (list: readonly string[]): void => {
    for (const c of list) if (!contexts.includes(c)) contexts.push(c);
  };

  // Classic protection: one rule at most.
  let classic: ClassicState;
  if (repo.classic.readable) {
    const rule = matchingClassicRule(repo.classic.rules, branch);
    classic = rule
      ? {
          state: 'rule',
          pattern: rule.pattern,
          source: classicLabel(rule),
          allowsForcePushes: rule.allowsForcePushes,
          bypassForcePushActors: rule.bypassForcePushActors,
        }
      : { state: 'none' };
    if (rule) {
      const source = classicLabel(rule);
      const admins = rule.isAdminEnforced;
      const adminText = admins ? null : `${source} exempts administrators (tick "Do not allow bypassing the above settings")`;
      const prBinds = admins && rule.bypassPullRequestActors === 0;
      const prBypass =
        adminText ??
        (prBinds
          ? null
          : `${source} lets ${plural(rule.bypassPullRequestActors, 'actor')} bypass pull requests (clear "Allow specified actors to bypass required pull requests")`);
      const give = (id: RequirementId, count: number | null = null): void => {
        const pr = pullRequestRequirements.has(id);
        provide(id, { source, bindsAdmins: pr ? prBinds : admins, bypass: pr ? prBypass : adminText, count });
      };
      if (rule.requiresApprovingReviews) {
        give('pullRequest');
        give('approvals', rule.requiredApprovingReviewCount ?? 0);
        if (rule.dismissesStaleReviews) give('staleReviewDismissal');
        if (rule.requiresCodeOwnerReviews) give('codeOwnerReview');
        if (rule.requireLastPushApproval) give('lastPushApproval');
      }
      if (rule.requiresStatusChecks && rule.requiredStatusChecks.length > 0) {
        give('statusChecks');
        addContexts(rule.requiredStatusChecks);
      }
      // Named force-pushers are a hole in the block, not a bypass of it.
      if (!rule.allowsForcePushes && rule.bypassForcePushActors === 0) give('forcePushesBlocked');
      if (!rule.allowsDeletions) give('deletionBlocked');
      if (rule.requiresCommitSignatures) give('signedCommits');
      if (rule.requiresLinearHistory) give('linearHistory');
    }
  } else if (repo.branchProtected?.[branch] === false) {
    classic = { state: 'none-reported' };
  } else {
    classic = { state: 'unreadable', reason: repo.classic.reason };
    unknowns.push({ part: 'classic', source: null, reason: repo.classic.reason, affects: 'all' });
  }

  // Rulesets: every enforced one that targets the branch.
  let applied: AppliedRuleset[] | null = null;
  if (repo.rulesets.readable) {
    applied = [];
    for (const rs of repo.rulesets.rulesets) {
      if (!rulesetApplies(rs, repo.fullName, branch, repo.defaultBranch)) continue;
      const label = rulesetLabel(rs);
      if (!isEnforced(rs)) {
        notEnforced.push({ id: rs.id, name: rs.name, source: rs.source, label, enforcement: rs.enforcement, kind: notEnforcedKind(rs.enforcement) });
        continue;
      }
      let bindsAdmins: boolean | 'unknown';
      let bypass: string | null;
      if (rs.bypass.readable) {
        const actors = rs.bypass.actors;
        applied.push({ id: rs.id, name: rs.name, source: rs.source, label, bypassActors: actors.map((a) => `${a.actorType}:${a.mode}`) });
        // Any bypass mode (always, pull_request, exempt) leaves someone unbound by this ruleset.
        bindsAdmins = actors.length === 0;
        bypass = bindsAdmins ? null : `${label} has ${plural(actors.length, 'bypass actor')} (empty its bypass list)`;
      } else {
        applied.push({ id: rs.id, name: rs.name, source: rs.source, label, bypassActors: null });
        bindsAdmins = 'unknown';
        bypass = `bypass actors of ${label} unreadable`;
        unknowns.push({ part: 'bypass', source: label, reason: rs.bypass.reason, affects: 'adminBypass' });
      }
      const give = (id: RequirementId, count: number | null = null): void =>
        provide(id, { source: label, bindsAdmins, bypass, count });
      for (const rule of rs.rules) {
        switch (rule.type) {
          case 'pull_request':
            give('pullRequest');
            give('approvals', rule.requiredApprovingReviewCount);
            if (rule.dismissStaleReviewsOnPush) give('staleReviewDismissal');
            if (rule.requireCodeOwnerReview) give('codeOwnerReview');
            if (rule.requireLastPushApproval) give('lastPushApproval');
            break;
          case 'required_status_checks':
            if (rule.contexts.length > 0) {
              give('statusChecks');
              addContexts(rule.contexts);
            }
            break;
          case 'non_fast_forward':
            give('forcePushesBlocked');
            break;
          case 'deletion':
            give('deletionBlocked');
            break;
          case 'required_signatures':
            give('signedCommits');
            break;
          case 'required_linear_history':
            give('linearHistory');
            break;
          case 'other':
            break;
        }
      }
    }
  } else {
    unknowns.push({ part: 'rulesets', source: null, reason: repo.rulesets.reason, affects: 'all' });
  }

  const approvals = Math.max(0, ...requirements.approvals.by.map((p) => p.count ?? 0));
  for (const id of requirementIds) requirements[id].met = id === 'approvals' ? approvals > 0 : requirements[id].by.length > 0;

  return {
    repository: repo.fullName,
    branch,
    isDefaultBranch: repo.defaultBranch === branch,
    classic,
    rulesets: applied,
    requirements,
    approvals,
    statusCheckContexts: contexts,
    notEnforced,
    unknowns,
  };
}

/** Whether something unreadable (classic protection, rulesets) could still provide any requirement. */
export function hasUnreadableSource(policy: EffectivePolicy): boolean {
  return policy.unknowns.some((u) => u.affects === 'all');
}

/** Whether any readable source protects the branch at all (a classic rule or an enforced ruleset). */
export function isProtected(policy: EffectivePolicy): boolean {
  return policy.classic.state === 'rule' || (policy.rulesets?.length ?? 0) > 0;
}

/**
 * The sources that provide requirement `id` — for approvals, those requiring at least `minApprovals`.
 */
export function providers(policy: EffectivePolicy, id: RequirementId, minApprovals = 1): Provision[] {
  const by = policy.requirements[id].by;
  return id === 'approvals' ? by.filter((p) => (p.count ?? 0) >= minApprovals) : by;
}

/**
 * Whether admins are bound by requirement `id`: `true` when at least one source providing it lets
 * nobody bypass (a classic rule that binds admins still binds them when a layered ruleset has a
 * bypass list); `'unknown'` when none does for sure but one might (bypass actors unreadable, or an
 * unreadable source that could also provide it); else `false`.
 */
export function adminsBound(policy: EffectivePolicy, id: RequirementId, minApprovals = 1): boolean | 'unknown' {
  const by = providers(policy, id, minApprovals);
  if (by.some((p) => p.bindsAdmins === true)) return true;
  if (by.some((p) => p.bindsAdmins === 'unknown') || hasUnreadableSource(policy)) return 'unknown';
  return false;
}
