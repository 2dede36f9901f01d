/**
 * collect of github-branch-protection: reads a target's repositories **many per request** with
 * GitHub's GraphQL API — one query per 100 repositories of an organisation (cursor pagination),
 * explicit `repos` batched as aliased `repository(owner, name)` fields — fetching each
 * repository's default branch, classic branch protection rules, rulesets (its own and its
 * organisation's) and the branches matching the configured patterns. REST is used only where
 * GraphQL cannot answer: a branch's `protected` flag for repositories the token is not admin of
 * (and only when the rulesets alone do not settle the verdict), and a repository's rulesets when
 * GraphQL could not represent them (e.g. an enforcement value outside GitHub's enum).
 *
 * Nothing partial is used silently: a repository whose GraphQL answer carries errors is read
 * again through REST (rulesets) or reported in `unreadableRepos` with the reason.
 */
import { z } from 'zod';
import { MalformedResponseError } from '../../src/probe/errors.js';
import { GithubPermissionError, GithubResponseError, type GithubClient, type GithubGraphqlError } from '../../src/clients/github.js';
import type { GithubTarget } from '../../src/config/schema.js';
import { evaluateBranchProtection, type Params } from './evaluate.js';
import type { BranchProtectionObservation, ClassicRule, RepoObservation, Ruleset, RulesetRule } from './observation.js';
import { effectivePolicy, fnmatchBranch, isProtected } from './policy.js';

/** Nested page sizes of the sweep: small enough to stay far under GitHub's 500,000-node and cost limits with 100 repositories a page. */
const SWEEP = { repos: 100, rules: 10, rulesets: 10, rulesetRules: 25, bypass: 10, refs: 20 } as const;
/** Page sizes of the follow-up query for one repository whose nested lists overflowed the sweep's. */
const FULL = { repos: 1, rules: 100, rulesets: 100, rulesetRules: 100, bypass: 100, refs: 100 } as const;
type Sizes = { readonly [K in keyof typeof SWEEP]: number };
/** Explicit repositories read per GraphQL request. */
const REPOS_PER_BATCH = 50;

// ---------------------------------------------------------------------------------------------
// GraphQL: the fields read of each repository. Every name here is GitHub's (validated against
// its public schema in the tests).

/** `refs(…)` aliases, one per configured branch pattern, searching by the pattern's literal prefix. */
function refsFields(patterns: readonly string[], n: number): string {
  return patterns
    .map((p, i) => {
      const prefix = /^[^*?[\]{}\\]*/.exec(p)?.[0] ?? '';
      const query = prefix === '' ? '' : `, query: ${JSON.stringify(prefix)}`;
      return `refs${i}: refs(refPrefix: "refs/heads/"${query}, first: ${n}) { pageInfo { hasNextPage } nodes { name } }`;
    })
    .join('\n');
}

function repoFields(s: Sizes, patterns: readonly string[]): string {
  return `
    name nameWithOwner isArchived isDisabled isEmpty viewerPermission
    defaultBranchRef { name }
    branchProtectionRules(first: ${s.rules}) {
      pageInfo { hasNextPage }
      nodes {
        databaseId pattern requiresApprovingReviews requiredApprovingReviewCount dismissesStaleReviews
        requiresCodeOwnerReviews requireLastPushApproval requiresStatusChecks requiredStatusCheckContexts
        allowsForcePushes allowsDeletions isAdminEnforced requiresCommitSignatures requiresLinearHistory
        bypassPullRequestAllowances(first: 1) { totalCount }
        bypassForcePushAllowances(first: 1) { totalCount }
      }
    }
    rulesets(first: ${s.rulesets}, includeParents: true) {
      pageInfo { hasNextPage }
      nodes {
        databaseId name enforcement target
        source { __typename }
        conditions { refName { include exclude } repositoryName { include exclude } }
        rules(first: ${s.rulesetRules}) {
          pageInfo { hasNextPage }
          nodes {
            type
            parameters {
              __typename
              ... on PullRequestParameters { requiredApprovingReviewCount dismissStaleReviewsOnPush requireCodeOwnerReview requireLastPushApproval }
              ... on RequiredStatusChecksParameters { requiredStatusChecks { context } }
            }
          }
        }
        bypassActors(first: ${s.bypass}) {
          pageInfo { hasNextPage }
          nodes { bypassMode organizationAdmin deployKey repositoryRoleName actor { __typename } }
        }
      }
    }
    ${refsFields(patterns, s.refs)}`;
}

const orgQuery = (s: Sizes, patterns: readonly string[]): string => `
  query vigilBranchProtectionOrg($org: String!, $after: String) {
    organization(login: $org) {
      repositories(first: ${s.repos}, after: $after, orderBy: { field: NAME, direction: ASC }) {
        pageInfo { hasNextPage endCursor }
        nodes { ${repoFields(s, patterns)} }
      }
    }
  }`;

function reposQuery(count: number, s: Sizes, patterns: readonly string[]): string {
  const vars = Array.from({ length: count }, (_, i) => `$o${i}: String!, $n${i}: String!`).join(', ');
  const fields = Array.from({ length: count }, (_, i) => `r${i}: repository(owner: $o${i}, name: $n${i}) { ${repoFields(s, patterns)} }`).join('\n');
  return `query vigilBranchProtectionRepos(${vars}) {\n${fields}\n}`;
}

// ---------------------------------------------------------------------------------------------
// Shapes of the answer. Each repository is parsed on its own: one malformed repository is
// reported unreadable, never guessed at, and never spoils the others.

const Page = z.object({ hasNextPage: z.boolean() });
const Connection = <T extends z.ZodType>(node: T) => z.object({ pageInfo: Page, nodes: z.array(node.nullable()) });
const Count = z.object({ totalCount: z.number().int().min(0) });

const ClassicNode = z.object({
  databaseId: z.number().int().nullable().optional(),
  pattern: z.string(),
  requiresApprovingReviews: z.boolean(),
  requiredApprovingReviewCount: z.number().int().nullable(),
  dismissesStaleReviews: z.boolean(),
  requiresCodeOwnerReviews: z.boolean(),
  requireLastPushApproval: z.boolean(),
  requiresStatusChecks: z.boolean(),
  requiredStatusCheckContexts: z.array(z.string()).nullable(),
  allowsForcePushes: z.boolean(),
  allowsDeletions: z.boolean(),
  isAdminEnforced: z.boolean(),
  requiresCommitSignatures: z.boolean(),
  requiresLinearHistory: z.boolean(),
  bypassPullRequestAllowances: Count,
  bypassForcePushAllowances: Count,
});

const RuleNode = z.object({
  type: z.string(),
  parameters: z
    .object({
      __typename: z.string(),
      requiredApprovingReviewCount: z.number().int().optional(),
      dismissStaleReviewsOnPush: z.boolean().optional(),
      requireCodeOwnerReview: z.boolean().optional(),
      requireLastPushApproval: z.boolean().optional(),
      requiredStatusChecks: z.array(z.object({ context: z.string() })).optional(),
    })
    .nullable(),
});

const BypassNode = z.object({
  bypassMode: z.string().nullable(),
  organizationAdmin: z.boolean(),
  deployKey: z.boolean(),
  repositoryRoleName: z.string().nullable(),
  actor: z.object({ __typename: z.string() }).nullable(),
});

const Patterns = z.object({ include: z.array(z.string()), exclude: z.array(z.string()) });
const RulesetNode = z.object({
  databaseId: z.number().int().nullable(),
  name: z.string(),
  enforcement: z.string(),
  target: z.string().nullable(),
  source: z.object({ __typename: z.string() }),
  conditions: z.object({ refName: Patterns.nullable(), repositoryName: Patterns.nullable() }),
  rules: Connection(RuleNode).nullable(),
  bypassActors: Connection(BypassNode).nullable(),
});

const RepoNode = z.looseObject({
  name: z.string(),
  nameWithOwner: z.string(),
  isArchived: z.boolean(),
  isDisabled: z.boolean(),
  isEmpty: z.boolean(),
  viewerPermission: z.string().nullable(),
  defaultBranchRef: z.object({ name: z.string() }).nullable(),
  branchProtectionRules: Connection(ClassicNode),
  rulesets: Connection(RulesetNode).nullable(),
});
type RepoNode = z.output<typeof RepoNode>;
const RefsNode = Connection(z.object({ name: z.string() }));

const OrgAnswer = z.object({
  organization: z
    .object({
      repositories: z.object({
        pageInfo: z.object({ hasNextPage: z.boolean(), endCursor: z.string().nullable() }),
        nodes: z.array(z.unknown()),
      }),
    })
    .nullable(),
});
const ReposAnswer = z.record(z.string(), z.unknown());

// ---------------------------------------------------------------------------------------------
// From GraphQL to the observation.

/**
 * Classic rules in creation order (GitHub: among wildcard rules matching a branch, the oldest
 * applies). GraphQL does not document its list order, so sort by database id when every rule has one.
 */
function byCreation<T extends { databaseId?: number | null }>(rules: T[]): T[] {
  if (rules.some((r) => typeof r.databaseId !== 'number')) return rules;
  return [...rules].sort((a, b) => (a.databaseId as number) - (b.databaseId as number));
}

function classicRule(n: z.output<typeof ClassicNode>): ClassicRule {
  return {
    pattern: n.pattern,
    requiresApprovingReviews: n.requiresApprovingReviews,
    requiredApprovingReviewCount: n.requiredApprovingReviewCount,
    dismissesStaleReviews: n.dismissesStaleReviews,
    requiresCodeOwnerReviews: n.requiresCodeOwnerReviews,
    requireLastPushApproval: n.requireLastPushApproval,
    requiresStatusChecks: n.requiresStatusChecks,
    requiredStatusChecks: n.requiredStatusCheckContexts ?? [],
    allowsForcePushes: n.allowsForcePushes,
    allowsDeletions: n.allowsDeletions,
    isAdminEnforced: n.isAdminEnforced,
    requiresCommitSignatures: n.requiresCommitSignatures,
    requiresLinearHistory: n.requiresLinearHistory,
    bypassPullRequestActors: n.bypassPullRequestAllowances.totalCount,
    bypassForcePushActors: n.bypassForcePushAllowances.totalCount,
  };
}

/** A ruleset rule from its REST-style type and parameters (GraphQL's are converted to these). */
function rulesetRule(type: string, p: Record<string, unknown> | null | undefined): RulesetRule | string {
  switch (type) {
    case 'pull_request': {
      const count = p?.required_approving_review_count;
      if (typeof count !== 'number') return 'a pull_request rule without its parameters';
      return {
        type,
        requiredApprovingReviewCount: count,
        dismissStaleReviewsOnPush: p?.dismiss_stale_reviews_on_push === true,
        requireCodeOwnerReview: p?.require_code_owner_review === true,
        requireLastPushApproval: p?.require_last_push_approval === true,
      };
    }
    case 'required_status_checks': {
      const checks = p?.required_status_checks;
      if (!Array.isArray(checks)) return 'a required_status_checks rule without its checks';
      return { type, contexts: checks.map((c) => (c as { context?: unknown }).context).filter((c): c is string => typeof c === 'string') };
    }
    case 'non_fast_forward':
    case 'deletion':
    case 'required_signatures':
    case 'required_linear_history':
      return { type };
    default:
      return { type: 'other', name: type };
  }
}

/** Why the token may not see a ruleset's bypass list. */
function bypassReason(fullName: string, source: Ruleset['source'], name: string): string {
  return source === 'organization'
    ? `the token may not see the bypass list of organization ruleset "${name}" (needs the organization Administration permission)`
    : `the token lacks admin rights on ${fullName} (needs Administration: read)`;
}

function actorType(a: z.output<typeof BypassNode>): string {
  if (a.organizationAdmin) return 'OrganizationAdmin';
  if (a.deployKey) return 'DeployKey';
  if (a.repositoryRoleName !== null) return 'RepositoryRole';
  if (a.actor?.__typename === 'App') return 'Integration';
  return a.actor?.__typename ?? 'unknown';
}

/** A GraphQL ruleset as the observation holds it, or why it cannot be used. */
function rulesetFromGraphql(fullName: string, n: z.output<typeof RulesetNode>, admin: boolean): Ruleset | string {
  const source: Ruleset['source'] = n.source.__typename === 'Repository' ? 'repository' : 'organization';
  if (n.databaseId === null) return `ruleset "${n.name}" has no id`;
  if (n.rules === null || n.rules.nodes.some((r) => r === null)) return `the rules of ruleset "${n.name}" could not be read`;
  const rules: RulesetRule[] = [];
  for (const r of n.rules.nodes) {
    if (!r) continue;
    const p = r.parameters;
    const rest: Record<string, unknown> | null = p
      ? {
          required_approving_review_count: p.requiredApprovingReviewCount,
          dismiss_stale_reviews_on_push: p.dismissStaleReviewsOnPush,
          require_code_owner_review: p.requireCodeOwnerReview,
          require_last_push_approval: p.requireLastPushApproval,
          required_status_checks: p.requiredStatusChecks,
        }
      : null;
    const rule = rulesetRule(r.type.toLowerCase(), rest);
    if (typeof rule === 'string') return `ruleset "${n.name}" has ${rule}`;
    rules.push(rule);
  }
  const bypass: Ruleset['bypass'] =
    // An empty list is only trusted from a token that administers the repository: GitHub may hide
    // bypass actors from others without an error, and an unseen bypass must not pass as "admins bound".
    n.bypassActors === null || n.bypassActors.nodes.some((a) => a === null) || (!admin && n.bypassActors.nodes.length === 0)
      ? { readable: false, reason: bypassReason(fullName, source, n.name) }
      : {
          readable: true,
          actors: n.bypassActors.nodes.filter((a) => a !== null).map((a) => ({ actorType: actorType(a), mode: (a.bypassMode ?? 'unknown').toLowerCase() })),
        };
  return {
    id: n.databaseId,
    name: n.name,
    source,
    enforcement: n.enforcement.toLowerCase(),
    target: (n.target ?? 'branch').toLowerCase(),
    refInclude: n.conditions.refName?.include ?? [],
    refExclude: n.conditions.refName?.exclude ?? [],
    ...(n.conditions.repositoryName
      ? { repositoryInclude: n.conditions.repositoryName.include, repositoryExclude: n.conditions.repositoryName.exclude }
      : {}),
    bypass,
    rules,
  };
}

/** Whether some nested list of the repository was cut at the sweep's page size. */
function overflows(raw: Record<string, unknown>, n: RepoNode, patterns: readonly string[]): boolean {
  if (n.branchProtectionRules.pageInfo.hasNextPage || n.rulesets?.pageInfo.hasNextPage) return true;
  if ((n.rulesets?.nodes ?? []).some((r) => r?.rules?.pageInfo.hasNextPage || r?.bypassActors?.pageInfo.hasNextPage)) return true;
  return patterns.some((_, i) => RefsNode.safeParse(raw[`refs${i}`]).data?.pageInfo.hasNextPage === true);
}

/** What the sweep read of one repository, before the REST fallbacks. */
type Read =
  | { kind: 'skip'; why: 'archived' | 'disabled'; fullName: string }
  | { kind: 'repo'; repo: RepoObservation; rulesetsViaRest: boolean; admin: boolean }
  | { kind: 'overflow'; fullName: string }
  | { kind: 'unreadable'; fullName: string; reason: string };

/**
 * One repository of a GraphQL answer. `errors` are those whose path lies inside it (relative to
 * the repository node). Errors inside `rulesets` send the rulesets to REST; any other error makes
 * the repository unreadable.
 */
function readRepo(raw: unknown, errors: GithubGraphqlError[], patterns: readonly string[], fallbackName: string, allowOverflow: boolean): Read {
  const relPaths = errors.map((e) => e.path);
  const name = (raw as { nameWithOwner?: unknown } | null)?.nameWithOwner;
  const fullName = typeof name === 'string' ? name : fallbackName;
  const outsideRulesets = errors.filter((_, i) => relPaths[i]?.[0] !== 'rulesets');
  if (raw === null || raw === undefined || outsideRulesets.length > 0) {
    const why = (outsideRulesets[0] ?? errors[0])?.message ?? 'GitHub answered nothing for it';
    return { kind: 'unreadable', fullName, reason: `GitHub answered with an error: ${why}` };
  }
  const rulesetsViaRest = errors.length > 0;
  const parsed = RepoNode.safeParse(rulesetsViaRest ? { ...(raw as object), rulesets: null } : raw);
  if (!parsed.success) return { kind: 'unreadable', fullName, reason: `GitHub's answer for it was malformed (${parsed.error.issues[0]?.message ?? 'unexpected shape'})` };
  const n = parsed.data;
  if (n.isArchived) return { kind: 'skip', why: 'archived', fullName: n.nameWithOwner };
  if (n.isDisabled) return { kind: 'skip', why: 'disabled', fullName: n.nameWithOwner };
  if (!allowOverflow && overflows(raw as Record<string, unknown>, n, patterns)) return { kind: 'overflow', fullName: n.nameWithOwner };
  if (allowOverflow && overflows(raw as Record<string, unknown>, n, patterns)) {
    return { kind: 'unreadable', fullName: n.nameWithOwner, reason: 'it has more than 100 protection rules, rulesets, ruleset rules, bypass actors or matching branches; vigil does not judge from a partial list' };
  }

  const admin = n.viewerPermission === 'ADMIN';
  const classic: RepoObservation['classic'] = admin
    ? { readable: true, rules: byCreation(n.branchProtectionRules.nodes.filter((r) => r !== null)).map(classicRule) }
    : { readable: false, reason: `the token lacks admin rights on ${n.nameWithOwner} (needs Administration: read)` };
  if (admin && n.branchProtectionRules.nodes.some((r) => r === null)) {
    return { kind: 'unreadable', fullName: n.nameWithOwner, reason: 'a classic branch protection rule could not be read' };
  }

  let rulesets: RepoObservation['rulesets'] = { readable: true, rulesets: [] };
  if (!rulesetsViaRest) {
    if (n.rulesets === null) return { kind: 'unreadable', fullName: n.nameWithOwner, reason: 'its rulesets could not be read' };
    const list: Ruleset[] = [];
    for (const r of n.rulesets.nodes) {
      const rs = r === null ? 'a ruleset could not be read' : rulesetFromGraphql(n.nameWithOwner, r, admin);
      if (typeof rs === 'string') return { kind: 'unreadable', fullName: n.nameWithOwner, reason: rs };
      list.push(rs);
    }
    rulesets = { readable: true, rulesets: list };
  }

  const defaultBranch = n.defaultBranchRef?.name ?? null;
  const branches: string[] = [];
  if (!n.isEmpty && defaultBranch !== null) {
    branches.push(defaultBranch);
    const parsedRefs = patterns.map((_, i) => RefsNode.safeParse((raw as Record<string, unknown>)[`refs${i}`]));
    // Branches matching a configured pattern are never dropped silently: an unreadable list makes the repository unreadable.
    if (parsedRefs.some((r) => !r.success || r.data === null || r.data === undefined)) {
      return { kind: 'unreadable', fullName: n.nameWithOwner, reason: 'its branches matching the configured patterns could not be listed' };
    }
    const refs = parsedRefs.flatMap((r) => r.data?.nodes ?? []);
    for (const ref of refs) {
      if (ref && !branches.includes(ref.name) && patterns.some((p) => fnmatchBranch(p, ref.name))) branches.push(ref.name);
    }
  }
  return {
    kind: 'repo',
    admin,
    rulesetsViaRest,
    repo: { fullName: n.nameWithOwner, defaultBranch, empty: n.isEmpty, branches, classic, rulesets },
  };
}

/** Errors of a GraphQL answer under `prefix`, with paths made relative to it. */
function errorsUnder(errors: GithubGraphqlError[], prefix: Array<string | number>): GithubGraphqlError[] {
  return errors
    .filter((e) => prefix.every((p, i) => e.path[i] === p) && e.path.length > prefix.length)
    .map((e) => ({ ...e, path: e.path.slice(prefix.length) }));
}

// ---------------------------------------------------------------------------------------------
// REST fallbacks.

const RestRulesetSummary = z.looseObject({ id: z.number().int() });
const RestRuleset = z.looseObject({
  id: z.number().int(),
  name: z.string(),
  target: z.string().nullish(),
  source_type: z.string().nullish(),
  enforcement: z.string(),
  conditions: z
    .looseObject({
      ref_name: z.looseObject({ include: z.array(z.string()).default([]), exclude: z.array(z.string()).default([]) }).nullish(),
      repository_name: z.looseObject({ include: z.array(z.string()).default([]), exclude: z.array(z.string()).default([]) }).nullish(),
    })
    .nullish(),
  rules: z.array(z.looseObject({ type: z.string(), parameters: z.record(z.string(), z.unknown()).nullish() })).default([]),
  bypass_actors: z.array(z.looseObject({ actor_type: z.string(), bypass_mode: z.string() })).optional(),
});

/**
 * A repository's rulesets through REST (which passes every enforcement value through, where
 * GraphQL's enum cannot). The list, then each ruleset (its conditions, rules and bypass actors).
 */
async function rulesetsViaRest(gh: GithubClient, fullName: string): Promise<RepoObservation['rulesets'] | string> {
  const [owner, repo] = fullName.split('/') as [string, string];
  try {
    const list = await gh.restPages('GET /repos/{owner}/{repo}/rulesets', { owner, repo, includes_parents: true }, RestRulesetSummary);
    const out: Ruleset[] = [];
    for (const { id } of list) {
      const r = await gh.rest('GET /repos/{owner}/{repo}/rulesets/{ruleset_id}', { owner, repo, ruleset_id: id }, RestRuleset);
      const source: Ruleset['source'] = r.source_type === 'Repository' ? 'repository' : 'organization';
      const rules: RulesetRule[] = [];
      for (const rule of r.rules) {
        const parsed = rulesetRule(rule.type, rule.parameters);
        if (typeof parsed === 'string') return `ruleset "${r.name}" has ${parsed}`;
        rules.push(parsed);
      }
      out.push({
        id: r.id,
        name: r.name,
        source,
        enforcement: r.enforcement,
        target: (r.target ?? 'branch').toLowerCase(),
        refInclude: r.conditions?.ref_name?.include ?? [],
        refExclude: r.conditions?.ref_name?.exclude ?? [],
        ...(r.conditions?.repository_name
          ? { repositoryInclude: r.conditions.repository_name.include, repositoryExclude: r.conditions.repository_name.exclude }
          : {}),
        bypass: r.bypass_actors
          ? { readable: true, actors: r.bypass_actors.map((a) => ({ actorType: a.actor_type, mode: a.bypass_mode })) }
          : { readable: false, reason: bypassReason(fullName, source, r.name) },
        rules,
      });
    }
    return { readable: true, rulesets: out };
  } catch (err) {
    if (err instanceof GithubPermissionError) return { readable: false, reason: `rulesets of ${fullName}: ${err.message}` };
    if (err instanceof GithubResponseError) return `its rulesets could not be read: ${err.message}`;
    throw err;
  }
}

const RestBranch = z.looseObject({ name: z.string(), protected: z.boolean() });

/**
 * For a repository whose classic protection the token may not read: GitHub's `protected` flag of
 * each branch the rulesets alone do not settle (`GET /repos/{o}/{r}/branches/{b}`, read access).
 * `protected: false` proves there is no classic rule; `true` leaves it open.
 */
async function fillRestProtected(gh: GithubClient, repo: RepoObservation, params: Params): Promise<void> {
  const findings = evaluateBranchProtection({ repos: [repo], skipped: { archived: [], disabled: [] }, unreadableRepos: [] }, params);
  const open = repo.branches.filter((b) => findings.find((f) => f.resource === `${repo.fullName}@${b}`)?.outcome === 'unknown');
  if (open.length === 0) return;
  const [owner, name] = repo.fullName.split('/') as [string, string];
  for (const branch of open) {
    try {
      const b = await gh.rest('GET /repos/{owner}/{repo}/branches/{branch}', { owner, repo: name, branch }, RestBranch);
      (repo.restProtected ??= {})[branch] = b.protected;
    } catch (err) {
      // Unreadable here too: the branch stays unknown, with the classic reason already recorded.
      if (!(err instanceof GithubResponseError) && !(err instanceof GithubPermissionError)) throw err;
    }
  }
}

/**
 * For a token that reads classic rules: before a branch is failed as having no protection at all,
 * ask GitHub's read-level branch endpoint. If GitHub says the branch is protected, the rule list
 * the token got was incomplete (e.g. a fine-grained token without Administration: read): classic
 * protection becomes unreadable and the branch unknown — never a wrong fail.
 */
async function confirmUnprotected(gh: GithubClient, repo: RepoObservation): Promise<void> {
  if (!repo.classic.readable || repo.empty) return;
  const [owner, name] = repo.fullName.split('/') as [string, string];
  for (const branch of repo.branches) {
    if (isProtected(effectivePolicy(repo, branch))) continue;
    let reported: boolean;
    try {
      reported = (await gh.rest('GET /repos/{owner}/{repo}/branches/{branch}', { owner, repo: name, branch }, RestBranch)).protected;
    } catch (err) {
      if (!(err instanceof GithubResponseError) && !(err instanceof GithubPermissionError)) throw err;
      continue;
    }
    (repo.restProtected ??= {})[branch] = reported;
    if (reported) {
      repo.classic = { readable: false, reason: `GitHub reports ${repo.fullName}@${branch} protected but the token sees no rule for it (needs Administration: read)` };
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The sweep.

/** `*` and `?` name globs, case-insensitive as GitHub's repository names are. */
function globMatches(glob: string, name: string): boolean {
  const re = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i').test(name);
}

export function selectedByGlobs(target: Pick<GithubTarget, 'include' | 'exclude'>, name: string): boolean {
  return target.include.some((g) => globMatches(g, name)) && !target.exclude.some((g) => globMatches(g, name));
}

/** Reads one target: its organisation's repositories (filtered by the globs) and its explicit repos. */
export async function collectBranchProtection(gh: GithubClient, target: GithubTarget, params: Params): Promise<BranchProtectionObservation> {
  const patterns = target.branches;
  const obs: BranchProtectionObservation = { repos: [], skipped: { archived: [], disabled: [] }, unreadableRepos: [] };
  const reads: Read[] = [];
  const seen = new Set<string>();

  if (target.org !== undefined) {
    const query = orgQuery(SWEEP, patterns);
    let after: string | null = null;
    for (;;) {
      const answer: { data: z.output<typeof OrgAnswer>; errors: GithubGraphqlError[] } = await gh.graphqlPartial(query, { org: target.org, after }, OrgAnswer);
      const { data, errors } = answer;
      if (data.organization === null) {
        const why = errorsUnder(errors, [])[0]?.message ?? errors[0]?.message ?? 'not found';
        obs.unreadableRepos.push({ fullName: target.org, reason: `the organization could not be read: ${why}` });
        break;
      }
      const page = data.organization.repositories;
      // An error on the list itself (not on one repository) leaves the page incomplete: nothing is judged from it.
      const listErrors = errors.filter((e) => e.path.length <= 3 || e.path[2] !== 'nodes' || typeof e.path[3] !== 'number');
      if (listErrors.length > 0) {
        throw new GithubResponseError(`GitHub could not list the repositories of ${target.org}: ${listErrors[0]?.message ?? ''}`, { status: 200, route: 'POST /graphql' });
      }
      page.nodes.forEach((raw, i) => {
        const name = (raw as { name?: unknown } | null)?.name;
        if (typeof name === 'string' && !selectedByGlobs(target, name)) return;
        const read = readRepo(raw, errorsUnder(errors, ['organization', 'repositories', 'nodes', i]), patterns, `${target.org}/(repository ${i + 1} of a page)`, false);
        seen.add((read.kind === 'repo' ? read.repo.fullName : read.fullName).toLowerCase());
        reads.push(read);
      });
      if (!page.pageInfo.hasNextPage) break;
      // More pages without a cursor to reach them: the list is incomplete, so no verdict at all.
      if (page.pageInfo.endCursor === null) throw new MalformedResponseError(`GitHub said ${target.org} has more repositories but gave no cursor to read them`);
      after = page.pageInfo.endCursor;
    }
  }

  const explicit = target.repos.filter((r) => !seen.has(r.toLowerCase()));
  for (let i = 0; i < explicit.length; i += REPOS_PER_BATCH) reads.push(...(await readExplicit(gh, explicit.slice(i, i + REPOS_PER_BATCH), SWEEP, patterns, false)));

  for (const read of reads) {
    if (read.kind === 'skip') obs.skipped[read.why].push(read.fullName);
    else if (read.kind === 'unreadable') obs.unreadableRepos.push({ fullName: read.fullName, reason: read.reason });
    else {
      const full = read.kind === 'overflow' ? (await readExplicit(gh, [read.fullName], FULL, patterns, true))[0] : read;
      if (full === undefined) continue;
      if (full.kind === 'skip') obs.skipped[full.why].push(full.fullName);
      else if (full.kind === 'repo') {
        const repo = full.repo;
        if (full.rulesetsViaRest) {
          const rs = await rulesetsViaRest(gh, repo.fullName);
          if (typeof rs === 'string') {
            obs.unreadableRepos.push({ fullName: repo.fullName, reason: rs });
            continue;
          }
          repo.rulesets = rs;
        }
        if (!full.admin && !repo.empty) await fillRestProtected(gh, repo, params);
        else await confirmUnprotected(gh, repo);
        obs.repos.push(repo);
      } else if (full.kind === 'unreadable' || full.kind === 'overflow') {
        obs.unreadableRepos.push({ fullName: full.fullName, reason: full.kind === 'unreadable' ? full.reason : 'its lists overflowed' });
      }
    }
  }
  return obs;
}

/** Explicit repositories (`owner/name`), read as aliased `repository` fields of one query. */
async function readExplicit(gh: GithubClient, names: string[], sizes: Sizes, patterns: readonly string[], allowOverflow: boolean): Promise<Read[]> {
  const variables: Record<string, string> = {};
  names.forEach((full, i) => {
    const [owner, name] = full.split('/') as [string, string];
    variables[`o${i}`] = owner;
    variables[`n${i}`] = name;
  });
  const { data, errors } = await gh.graphqlPartial(reposQuery(names.length, sizes, patterns), variables, ReposAnswer);
  return names.map((full, i) => {
    const errs = errors.filter((e) => e.path[0] === `r${i}`);
    const raw = data[`r${i}`] ?? null;
    if (raw === null) {
      const why = errs[0]?.message ?? 'GitHub answered nothing for it';
      return { kind: 'unreadable' as const, fullName: full, reason: `${why} (check it exists and the token or App installation can see it)` };
    }
    return readRepo(raw, errorsUnder(errors, [`r${i}`]), patterns, full, allowOverflow);
  });
}
