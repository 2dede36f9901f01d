/**
 * What `collect` of github-branch-protection hands to `evaluate`: plain JSON, read from GitHub's
 * GraphQL API (many repositories per request) with REST fallbacks. Every part that the token
 * could not read says so (`readable: false` with the reason and the permission it lacks), so
 * evaluate can answer `unknown` instead of guessing.
 */

/** A classic branch protection rule (GraphQL `BranchProtectionRule`). */
export interface ClassicRule {
  /** fnmatch-style branch name pattern, e.g. `main`, `release/*`. */
  pattern: string;
  requiresApprovingReviews: boolean;
  requiredApprovingReviewCount: number | null;
  dismissesStaleReviews: boolean;
  requiresCodeOwnerReviews: boolean;
  requireLastPushApproval: boolean;
  requiresStatusChecks: boolean;
  /** Required status check contexts. */
  requiredStatusChecks: string[];
  allowsForcePushes: boolean;
  allowsDeletions: boolean;
  /** "Do not allow bypassing the above settings" (admins are bound). */
  isAdminEnforced: boolean;
  requiresCommitSignatures: boolean;
  requiresLinearHistory: boolean;
  /** Actors allowed to bypass pull request requirements / to force push (counts; their identity is not needed). */
  bypassPullRequestActors: number;
  bypassForcePushActors: number;
}

/** One rule of a ruleset, with the parameters vigil judges. Unknown rule types are kept (ignored). */
export type RulesetRule =
  | {
      type: 'pull_request';
      requiredApprovingReviewCount: number;
      dismissStaleReviewsOnPush: boolean;
      requireCodeOwnerReview: boolean;
      requireLastPushApproval: boolean;
    }
  | { type: 'required_status_checks'; contexts: string[] }
  | { type: 'non_fast_forward' }
  | { type: 'deletion' }
  | { type: 'required_signatures' }
  | { type: 'required_linear_history' }
  | { type: 'other'; name: string };

/** A ruleset that may apply to a repository: its own, or its organisation's. */
export interface Ruleset {
  id: number;
  name: string;
  /** Where it is configured: the repository itself or its organisation. */
  source: 'repository' | 'organization';
  /** Raw enforcement as GitHub reports it: only `active` (any case) is enforced; `evaluate`, `disabled` or anything else is not. */
  enforcement: string;
  /** `branch`, `tag`, `push`… (lower case). Only `branch` rulesets protect branches. */
  target: string;
  /** ref_name condition: patterns like `refs/heads/main`, `refs/heads/release/*`, `~DEFAULT_BRANCH`, `~ALL`. */
  refInclude: string[];
  refExclude: string[];
  /** repository_name condition of an organisation ruleset (undefined: applies to every repository). */
  repositoryInclude?: string[];
  repositoryExclude?: string[];
  /**
   * Who may bypass it. `readable: false` when the token may not see bypass actors (then whether
   * admins are bound is unknown). Any actor with mode `always` or `pull_request` means the rules
   * do not bind everyone.
   */
  bypass: { readable: true; actors: Array<{ actorType: string; mode: string }> } | { readable: false; reason: string };
  rules: RulesetRule[];
}

/** Something the token could not read, with the permission it lacks. */
export interface Unreadable {
  readable: false;
  /** e.g. "the token lacks admin rights on acme/api (needs Administration: read)". */
  reason: string;
}

/** One repository, as observed. */
export interface RepoObservation {
  /** `owner/name`. */
  fullName: string;
  defaultBranch: string | null;
  /** True when the repository has no commits (no branch to protect): judged not_applicable. */
  empty: boolean;
  /** Branches to judge: the default branch plus existing branches matching the configured patterns. */
  branches: string[];
  /** Classic protection rules, or why they could not be read. */
  classic: { readable: true; rules: ClassicRule[] } | Unreadable;
  /** Repository and organisation rulesets that may apply, or why they could not be read. */
  rulesets: { readable: true; rulesets: Ruleset[] } | Unreadable;
  /**
   * Set when classic rules are unreadable: GitHub's read-level answer per branch — GraphQL
   * `Ref.refUpdateRule` present, or (fallback) REST `GET branches/{b}` `protected`. `false` proves
   * no classic rule applies; `true` leaves it open.
   */
  branchProtected?: Record<string, boolean>;
}

/** The whole observation of one target. */
export interface BranchProtectionObservation {
  repos: RepoObservation[];
  /** Skipped on purpose and counted: archived and disabled repositories. */
  skipped: { archived: string[]; disabled: string[] };
  /** Repositories selected by the config that could not be read at all (404, no access): reported unknown. */
  unreadableRepos: Array<{ fullName: string; reason: string }>;
}
