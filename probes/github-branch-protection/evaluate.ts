/**
 * The verdict on each branch: pure and synchronous. One finding per repository and branch, whose
 * one-line message lists every unmet requirement and where to fix it. A requirement that the
 * token could not read enough to decide is `unknown`, never pass and never fail.
 */
import { z } from 'zod';
import type { Finding } from '../../src/probe/contract.js';
import type { BranchProtectionObservation, RepoObservation } from './observation.js';
import {
  adminsBound,
  effectivePolicy,
  hasUnreadableSource,
  isProtected,
  providers,
  requirementIds,
  type EffectivePolicy,
  type RequirementId,
  type UnknownPart,
} from './policy.js';

/** What each branch must have. Validated at config load time. */
export const Params = z.strictObject({
  /** Changes reach the branch through a pull request. Default true. */
  requirePullRequest: z.boolean().default(true),
  /** Approving reviews a pull request needs (most restrictive source counts); ignored without `requirePullRequest`. Default 1. */
  minApprovals: z.number().int().min(0).default(1),
  /** At least one required status check. Default true. */
  requireStatusChecks: z.boolean().default(true),
  /** Force pushes blocked (classic: not allowed, for nobody; ruleset: `non_fast_forward`). Default true. */
  blockForcePushes: z.boolean().default(true),
  /** Branch deletion blocked. Default true. */
  blockDeletion: z.boolean().default(true),
  /** Every requirement above binds administrators too: no bypass list, admins not exempt. Default true. */
  forbidAdminBypass: z.boolean().default(true),
  /** New pushes dismiss stale approvals. Default false. */
  requireStaleReviewDismissal: z.boolean().default(false),
  /** Code owners must review. Default false. */
  requireCodeOwnerReview: z.boolean().default(false),
  /** The most recent push must be approved by someone other than its author. Default false. */
  requireLastPushApproval: z.boolean().default(false),
  /** Commits must be signed. Default false. */
  requireSignedCommits: z.boolean().default(false),
  /** No merge commits. Default false. */
  requireLinearHistory: z.boolean().default(false),
});
export type Params = z.output<typeof Params>;

/** What a finding's details say of each required setting. */
export type Verdict = 'met' | 'unmet' | 'unknown';

/** A requirement as judged: the params' requirements, "admins bound", and "any protection at all". */
type Judged = RequirementId | 'adminBypass' | 'protected';

const settingsPath = {
  repository: 'Settings › Rules › Rulesets',
  organization: 'organization Settings › Repository › Rulesets',
  classic: 'Settings › Branches',
} as const;

/** The requirements `params` asks for, in message order. */
function requiredIds(params: Params): RequirementId[] {
  const on: Record<RequirementId, boolean> = {
    pullRequest: params.requirePullRequest,
    approvals: params.requirePullRequest && params.minApprovals > 0,
    statusChecks: params.requireStatusChecks,
    forcePushesBlocked: params.blockForcePushes,
    deletionBlocked: params.blockDeletion,
    staleReviewDismissal: params.requireStaleReviewDismissal,
    codeOwnerReview: params.requireCodeOwnerReview,
    lastPushApproval: params.requireLastPushApproval,
    signedCommits: params.requireSignedCommits,
    linearHistory: params.requireLinearHistory,
  };
  return requirementIds.filter((id) => on[id]);
}

const approvalsText = (n: number): string => `≥ ${n} ${n === 1 ? 'approval' : 'approvals'}`;

/** Short name of a requirement, for pass and unknown messages. */
function requirementName(id: Judged, params: Params): string {
  switch (id) {
    case 'pullRequest':
      return 'pull request required';
    case 'approvals':
      return approvalsText(params.minApprovals);
    case 'statusChecks':
      return 'status checks';
    case 'forcePushesBlocked':
      return 'force pushes blocked';
    case 'deletionBlocked':
      return 'deletion blocked';
    case 'staleReviewDismissal':
      return 'stale reviews dismissed';
    case 'codeOwnerReview':
      return 'code-owner review';
    case 'lastPushApproval':
      return 'last-push approval';
    case 'signedCommits':
      return 'signed commits';
    case 'linearHistory':
      return 'linear history';
    case 'adminBypass':
      return 'admins bound';
    case 'protected':
      return 'whether any protection applies';
  }
}

/** What is wrong, for a fail message. */
function unmetText(id: Judged, policy: EffectivePolicy, params: Params, verdicts: Map<Judged, Verdict>): string | null {
  switch (id) {
    case 'pullRequest':
      return verdicts.get('approvals') === 'unmet'
        ? `pull requests not required (need ${approvalsText(params.minApprovals)})`
        : 'pull requests not required';
    case 'approvals':
      // Folded into the pull-request item when pull requests are not required at all.
      if (verdicts.get('pullRequest') === 'unmet') return null;
      return `pull requests need ${policy.approvals} approving ${policy.approvals === 1 ? 'review' : 'reviews'}, ${approvalsText(params.minApprovals)} required`;
    case 'statusChecks':
      return 'no required status checks';
    case 'forcePushesBlocked': {
      const c = policy.classic;
      if (c.state === 'rule' && c.allowsForcePushes) return `force pushes allowed (${c.source} allows them)`;
      if (c.state === 'rule' && c.bypassForcePushActors > 0)
        return `force pushes allowed for ${c.bypassForcePushActors} ${c.bypassForcePushActors === 1 ? 'actor' : 'actors'} (${c.source})`;
      return 'force pushes allowed';
    }
    case 'deletionBlocked':
      return 'branch deletion allowed';
    case 'staleReviewDismissal':
      return 'stale approvals not dismissed on new pushes';
    case 'codeOwnerReview':
      return 'code-owner review not required';
    case 'lastPushApproval':
      return 'approval of the most recent push not required';
    case 'signedCommits':
      return 'signed commits not required';
    case 'linearHistory':
      return 'linear history not required';
    case 'adminBypass':
    case 'protected':
      return null; // built by the caller
  }
}

/** The reason an unknown part could not be read, naming the permission when collect did not. */
function unknownReason(u: UnknownPart): string {
  const hint =
    u.part === 'rulesets'
      ? 'needs Metadata: read'
      : u.part === 'bypass' && u.source?.endsWith('(organization)')
        ? 'needs the organization Administration permission'
        : 'needs Administration: read';
  const reason = /needs |permission|Administration|Metadata/i.test(u.reason) ? u.reason : `${u.reason} (${hint})`;
  switch (u.part) {
    case 'classic':
      return `classic branch protection unreadable: ${reason}`;
    case 'rulesets':
      return `rulesets unreadable: ${reason}`;
    case 'bypass':
      return `bypass actors of ${u.source ?? 'a ruleset'} unreadable: ${reason}`;
  }
}

/** `ruleset "X" (repository) is in evaluate mode: set enforcement to Active`, one per not-enforced ruleset. */
function notEnforcedNotes(policy: EffectivePolicy): string[] {
  return policy.notEnforced.map((r) => {
    const state =
      r.kind === 'evaluate'
        ? 'is in evaluate mode'
        : r.kind === 'disabled'
          ? 'is disabled'
          : `has enforcement ${JSON.stringify(r.enforcement)}, which GitHub does not enforce`;
    return `${r.label} ${state}: set enforcement to Active`;
  });
}

/** Where the unmet requirements can be fixed: every source that applies, or where to add one. */
function fixWhere(policy: EffectivePolicy): string {
  const places: string[] = [];
  if (policy.classic.state === 'rule') places.push(`the ${policy.classic.source} (${settingsPath.classic})`);
  for (const r of policy.rulesets ?? []) places.push(`${r.label} (${settingsPath[r.source]})`);
  if (places.length > 0) return `fix in ${places.join(' or ')}`;
  return `add a ruleset targeting ${policy.branch} in ${settingsPath.repository} (or a classic rule in ${settingsPath.classic})`;
}

/** The sources letting someone bypass a requirement that nothing else binds admins to. */
function bypassOffenders(policy: EffectivePolicy, ids: RequirementId[], minApprovals: number): string[] {
  const out: string[] = [];
  for (const id of ids) {
    if (adminsBound(policy, id, minApprovals) !== false) continue;
    for (const p of providers(policy, id, minApprovals)) if (p.bypass !== null && !out.includes(p.bypass)) out.push(p.bypass);
  }
  return out;
}

/** The verdict on one branch of one repository. */
function judgeBranch(repo: RepoObservation, branch: string, params: Params): Finding {
  const resource = `${repo.fullName}@${branch}`;
  const policy = effectivePolicy(repo, branch);
  const unreadable = hasUnreadableSource(policy);
  const required = requiredIds(params);
  const verdicts = new Map<Judged, Verdict>();

  // Any protection at all: a branch with none fails whatever the params, unless unreadable parts may hold some.
  verdicts.set('protected', isProtected(policy) ? 'met' : unreadable ? 'unknown' : 'unmet');
  for (const id of required) {
    const met = id === 'approvals' ? policy.approvals >= params.minApprovals : policy.requirements[id].met;
    // Unmet by every readable source: a fail only if nothing unreadable could still provide it.
    verdicts.set(id, met ? 'met' : unreadable ? 'unknown' : 'unmet');
  }

  let offenders: string[] = [];
  if (params.forbidAdminBypass) {
    // Judged over the requirements the branch relies on; with none asked for, over all it has.
    const basis =
      required.length > 0 ? required.filter((id) => verdicts.get(id) === 'met') : requirementIds.filter((id) => policy.requirements[id].met);
    const bound = basis.map((id) => adminsBound(policy, id, params.minApprovals));
    const verdict: Verdict =
      bound.includes(false) ? 'unmet' : bound.includes('unknown') || (basis.length === 0 && unreadable) ? 'unknown' : 'met';
    verdicts.set('adminBypass', verdict);
    if (verdict === 'unmet') offenders = bypassOffenders(policy, basis, params.minApprovals);
  }

  const all = [...verdicts.entries()];
  const unmet = all.filter(([, v]) => v === 'unmet').map(([id]) => id);
  const unknown = all.filter(([, v]) => v === 'unknown').map(([id]) => id);
  const details: Record<string, unknown> = { verdicts: Object.fromEntries(all), policy };
  const notes = notEnforcedNotes(policy);
  const unknownReasons = policy.unknowns.filter((u) => u.affects === 'all' || unknown.includes('adminBypass')).map(unknownReason);
  // When it is open whether anything protects the branch, that is the one thing to say.
  const open = unknown.includes('protected') ? (['protected'] as Judged[]) : unknown;
  const couldNotTell = (): string => `could not tell ${open.map((id) => requirementName(id, params)).join(', ')}: ${unknownReasons.join('; ')}`;

  if (verdicts.get('protected') === 'unmet') {
    const parts = ['no branch protection rule or active ruleset applies', ...notes];
    return { resource, outcome: 'fail', message: `${resource}: ${parts.join('; ')} — ${fixWhere(policy)}`, details };
  }

  if (unmet.length > 0) {
    const items = unmet
      .map((id) => (id === 'adminBypass' ? `admins can bypass: ${offenders.join(', ')}` : unmetText(id, policy, params, verdicts)))
      .filter((t): t is string => t !== null);
    let message = `${resource}: ${items.join('; ')} — ${fixWhere(policy)}`;
    if (notes.length > 0) message += `; ${notes.join('; ')}`;
    if (unknown.length > 0) message += `; ${couldNotTell()}`;
    return { resource, outcome: 'fail', message, details };
  }

  if (unknown.length > 0) {
    let message = `${resource}: ${couldNotTell()}`;
    if (notes.length > 0) message += `; ${notes.join('; ')}`;
    return { resource, outcome: 'unknown', message, details };
  }

  const sources = [
    ...(policy.classic.state === 'rule' ? [policy.classic.source] : []),
    ...(policy.rulesets ?? []).map((r) => r.label),
  ];
  const met = all.filter(([id]) => id !== 'protected').map(([id]) => requirementName(id, params));
  const what = met.length > 0 ? met.join(', ') : 'protected';
  return { resource, outcome: 'pass', message: `${resource}: ${what} (${sources.join(', ')})`, details };
}

/**
 * Findings for one observation: one per repository and branch (`owner/name@branch`); one
 * `not_applicable` per empty repository and per skipped (archived or disabled) repository, so the
 * count of skipped repositories stays visible; one `unknown` per repository that could not be read.
 */
export function evaluateBranchProtection(obs: BranchProtectionObservation, params: Params): Finding[] {
  const findings: Finding[] = [];
  for (const repo of obs.repos) {
    if (repo.empty) {
      findings.push({
        resource: repo.defaultBranch ? `${repo.fullName}@${repo.defaultBranch}` : repo.fullName,
        outcome: 'not_applicable',
        message: `${repo.fullName}: empty repository (no commits): no branch to protect yet`,
        details: { empty: true },
      });
      continue;
    }
    if (repo.branches.length === 0) {
      findings.push({
        resource: repo.fullName,
        outcome: 'unknown',
        message: `${repo.fullName}: no branch to judge: the default branch could not be read`,
        details: { defaultBranch: repo.defaultBranch },
      });
      continue;
    }
    for (const branch of repo.branches) findings.push(judgeBranch(repo, branch, params));
  }
  for (const r of obs.unreadableRepos) {
    findings.push({
      resource: r.fullName,
      outcome: 'unknown',
      message: `${r.fullName}: could not be read: ${r.reason}`,
      details: { reason: r.reason },
    });
  }
  for (const name of obs.skipped.archived) {
    findings.push({ resource: name, outcome: 'not_applicable', message: `${name}: archived: not judged`, details: { skipped: 'archived' } });
  }
  for (const name of obs.skipped.disabled) {
    findings.push({ resource: name, outcome: 'not_applicable', message: `${name}: disabled: not judged`, details: { skipped: 'disabled' } });
  }
  return findings;
}
