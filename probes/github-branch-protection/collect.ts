/**
 * collect of github-branch-protection: reads a target's repositories **many per request** with
 * GitHub's GraphQL API — one query per 100 repositories of an organisation (cursor pagination),
 * explicit `repos` batched as aliased `repository(owner, name)` fields — fetching each
 * repository's default branch, classic branch protection rules, rulesets (its own and its
 * organisation's), the branches matching the configured patterns and, for every judged branch,
 * GitHub's read-level view of it: `Ref.refUpdateRule` (the classic rule that applies, shown to
 * anyone with read access) and `Ref.rules` (rules of the active rulesets that apply). That view
 * settles "no protection at all" and a read-only token's "no classic rule" without a request per
 * branch. REST is used only where GraphQL cannot answer: a branch whose read-level view came back
 * with an error (`GET branches/{b}`), and a repository's rulesets when GraphQL could not
 * represent them (e.g. an enforcement value outside GitHub's enum).
 *
 * An organisation is read from both ends at once (names ascending and descending, until the two
 * walks meet), explicit repositories in concurrent batches, and the per-repository follow-ups
 * concurrently: the client's per-credential limit is what bounds requests in flight.
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

/** What is read of each judged branch: GitHub's read-level view of its protection. */
const REF_FIELDS = 'name refUpdateRule { pattern } rules(first: 1) { totalCount }';

/** `refs(…)` aliases, one per configured branch pattern, searching by the pattern's literal prefix. */
function refsFields(patterns: readonly string[], n: number): string {
  return patterns
    .map((p, i) => {
      const prefix = /^[^*?[\]{}\\]*/.exec(p)?.[0] ?? '';
      const query = prefix === '' ? '' : `, query: ${JSON.stringify(prefix)}`;
      return `refs${i}: refs(refPrefix: "refs/heads/"${query}, first: ${n}) { pageInfo { hasNextPage } nodes { ${REF_FIELDS} } }`;
    })
    .join('\n');
}

function repoFields(s: Sizes, patterns: readonly string[]): string {
  return `
    name nameWithOwner isArchived isDisabled isEmpty viewerPermission
    defaultBranchRef { ${REF_FIELDS} }
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
  query vigilBranchProtectionOrg($org: String!, $after: String, $direction: OrderDirection!) {
    organization(login: $org) {
      repositories(first: ${s.repos}, after: $after, orderBy: { field: NAME, direction: $direction }) {
        totalCount
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
  defaultBranchRef: z.looseObject({ name: z.string() }).nullable(),
  branchProtectionRules: Connection(ClassicNode),
  rulesets: Connection(RulesetNode).nullable(),
});
type RepoNode = z.output<typeof RepoNode>;
const RefsNode = Connection(z.looseObject({ name: z.string() }));
/** A ref's read-level view: `null` where GitHub answered with an error (checked against the errors). */
const RefView = z.object({
  refUpdateRule: z.object({ pattern: z.string() }).nullable(),
  rules: z.object({ totalCount: z.number().int().min(0) }).nullable(),
});

const OrgAnswer = z.object({
  organization: z
    .object({
      repositories: z.object({
        totalCount: z.number().int().min(0),
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
function rulesetFromGraphql(fullName: string, n: z.output<typeof RulesetNode>): Ruleset | string {
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
    // GitHub withholds bypass actors from tokens that may not edit the ruleset by answering null
    // (REST: no `bypass_actors` field). A list it did show is its answer, even empty, whoever asked.
    n.bypassActors === null || n.bypassActors.nodes.some((a) => a === null)
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

/** GitHub's read-level view of one branch: whether a classic rule applies, and how many active ruleset rules do. */
interface BranchView {
  classicRule: boolean;
  rulesetRules: number;
}

/** What the sweep read of one repository, before the REST fallbacks. */
type Read =
  | { kind: 'skip'; why: 'archived' | 'disabled'; fullName: string }
  | {
      kind: 'repo';
      repo: RepoObservation;
      rulesetsViaRest: boolean;
      /** Per judged branch; absent where GraphQL answered the view with an error (REST decides then). */
      views: Record<string, BranchView>;
    }
  | { kind: 'overflow'; fullName: string }
  | { kind: 'unreadable'; fullName: string; reason: string };

/** Whether an error sits inside a ref's read-level view (`…refUpdateRule…` or `…rules…` of a judged ref). */
function inRefView(path: Array<string | number>): boolean {
  if (path[0] === 'defaultBranchRef') return path[1] === 'refUpdateRule' || path[1] === 'rules';
  return typeof path[0] === 'string' && /^refs\d+$/.test(path[0]) && path[1] === 'nodes' && typeof path[2] === 'number' && (path[3] === 'refUpdateRule' || path[3] === 'rules');
}

/** A ref's view, or undefined when GitHub answered it with an error or without the fields. */
function branchView(ref: unknown, errors: GithubGraphqlError[], prefix: Array<string | number>): BranchView | undefined {
  if (errorsUnder(errors, prefix).length > 0) return undefined;
  const parsed = RefView.safeParse(ref);
  if (!parsed.success || parsed.data.rules === null) return undefined;
  return { classicRule: parsed.data.refUpdateRule !== null, rulesetRules: parsed.data.rules.totalCount };
}

/**
 * One repository of a GraphQL answer. `errors` are those whose path lies inside it (relative to
 * the repository node). Errors inside `rulesets` send the rulesets to REST; errors inside a
 * branch's read-level view leave that branch to REST; any other error makes the repository
 * unreadable.
 */
function readRepo(raw: unknown, errors: GithubGraphqlError[], patterns: readonly string[], fallbackName: string, allowOverflow: boolean): Read {
  const name = (raw as { nameWithOwner?: unknown } | null)?.nameWithOwner;
  const fullName = typeof name === 'string' ? name : fallbackName;
  const rulesetErrors = errors.filter((e) => e.path[0] === 'rulesets');
  const elsewhere = errors.filter((e) => e.path[0] !== 'rulesets' && !inRefView(e.path));
  if (raw === null || raw === undefined || elsewhere.length > 0) {
    const why = (elsewhere[0] ?? errors[0])?.message ?? 'GitHub answered nothing for it';
    return { kind: 'unreadable', fullName, reason: `GitHub answered with an error: ${why}` };
  }
  const rulesetsViaRest = rulesetErrors.length > 0;
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
      const rs = r === null ? 'a ruleset could not be read' : rulesetFromGraphql(n.nameWithOwner, r);
      if (typeof rs === 'string') return { kind: 'unreadable', fullName: n.nameWithOwner, reason: rs };
      list.push(rs);
    }
    rulesets = { readable: true, rulesets: list };
  }

  const defaultBranch = n.defaultBranchRef?.name ?? null;
  const branches: string[] = [];
  const views: Record<string, BranchView> = {};
  if (!n.isEmpty && defaultBranch !== null) {
    branches.push(defaultBranch);
    const view = branchView(n.defaultBranchRef, errors, ['defaultBranchRef']);
    if (view) views[defaultBranch] = view;
    const parsedRefs = patterns.map((_, i) => RefsNode.safeParse((raw as Record<string, unknown>)[`refs${i}`]));
    // Branches matching a configured pattern are never dropped silently: an unreadable list makes the repository unreadable.
    if (parsedRefs.some((r) => !r.success || r.data === null || r.data === undefined)) {
      return { kind: 'unreadable', fullName: n.nameWithOwner, reason: 'its branches matching the configured patterns could not be listed' };
    }
    parsedRefs.forEach((r, i) => {
      r.data?.nodes.forEach((ref, j) => {
        if (!ref || branches.includes(ref.name) || !patterns.some((p) => fnmatchBranch(p, ref.name))) return;
        branches.push(ref.name);
        const v = branchView(ref, errors, [`refs${i}`, 'nodes', j]);
        if (v) views[ref.name] = v;
      });
    });
  }
  return {
    kind: 'repo',
    rulesetsViaRest,
    views,
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

/** GitHub's REST read-level answer for one branch (`protected`: by a classic rule or a ruleset), or undefined when unreadable. */
async function restBranchProtected(gh: GithubClient, fullName: string, branch: string): Promise<boolean | undefined> {
  const [owner, repo] = fullName.split('/') as [string, string];
  try {
    return (await gh.rest('GET /repos/{owner}/{repo}/branches/{branch}', { owner, repo, branch }, RestBranch)).protected;
  } catch (err) {
    // Unreadable here too: the branch stays as the rest of the observation leaves it.
    if (!(err instanceof GithubResponseError) && !(err instanceof GithubPermissionError)) throw err;
    return undefined;
  }
}

/**
 * Applies GitHub's read-level view of each judged branch (read in the sweep's GraphQL query;
 * `GET branches/{b}` only for a branch whose view GraphQL answered with an error):
 *
 * - classic rules unreadable (the token does not administer the repository): a branch GitHub
 *   shows no classic rule on (`refUpdateRule: null`, or REST `protected: false`) is judged on its
 *   rulesets alone;
 * - a branch that what the token read leaves wholly unprotected fails only if GitHub's view
 *   agrees. If GitHub reports a classic rule or active ruleset rules on it, the token's read was
 *   incomplete (e.g. a fine-grained token without Administration: read): that part becomes
 *   unreadable and the branch unknown — never a wrong fail.
 */
async function settleWithBranchViews(gh: GithubClient, read: Extract<Read, { kind: 'repo' }>, params: Params): Promise<void> {
  const { repo, views } = read;
  if (repo.empty) return;
  if (!repo.classic.readable) {
    for (const b of repo.branches) {
      const v = views[b];
      if (v) (repo.branchProtected ??= {})[b] = v.classicRule;
    }
    const missing = repo.branches.filter((b) => !views[b]);
    if (missing.length > 0) {
      // REST only where GraphQL gave no view and the verdict stays open without one.
      const findings = evaluateBranchProtection({ repos: [repo], skipped: { archived: [], disabled: [] }, unreadableRepos: [] }, params);
      const open = missing.filter((b) => findings.find((f) => f.resource === `${repo.fullName}@${b}`)?.outcome === 'unknown');
      const answers = await Promise.all(open.map((b) => restBranchProtected(gh, repo.fullName, b)));
      open.forEach((b, i) => {
        const p = answers[i];
        if (p !== undefined) (repo.branchProtected ??= {})[b] = p;
      });
    }
  }
  for (const branch of repo.branches) {
    if (isProtected(effectivePolicy(repo, branch))) continue;
    let view = views[branch];
    if (!view && repo.classic.readable) {
      const p = await restBranchProtected(gh, repo.fullName, branch);
      // REST does not say by what: "protected" is taken as a classic rule the token cannot see.
      if (p !== undefined) view = { classicRule: p, rulesetRules: 0 };
    }
    if (!view) continue;
    if (view.classicRule && repo.classic.readable) {
      repo.classic = { readable: false, reason: `GitHub reports ${repo.fullName}@${branch} protected by a classic rule but the token sees none (needs Administration: read)` };
      return;
    }
    if (view.rulesetRules > 0 && repo.rulesets.readable) {
      repo.rulesets = { readable: false, reason: `GitHub reports active ruleset rules on ${repo.fullName}@${branch} that the rulesets the token read do not account for` };
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

type Direction = 'ASC' | 'DESC';

/**
 * Every repository of an organisation, read from both ends of the name order at once: one walk
 * ascending, one descending (started once the first page says there is more than one), each
 * following its own cursors, until the walks meet — a repository seen by both, or a walk reaching
 * the end of the list; counts are never trusted to end a walk, so a repository created or deleted
 * mid-sweep cannot make one go unread. Up to three pages are read by one walk. Costs one request
 * per 100 repositories plus at most one (where the walks meet), in about half the time of one
 * walk. Returns the reads in ascending order.
 */
async function sweepOrg(gh: GithubClient, target: GithubTarget, org: string, patterns: readonly string[]): Promise<{ reads: Read[]; unreadable?: string }> {
  const query = orgQuery(SWEEP, patterns);
  const seen = new Map<string, Direction>();
  const reads: Record<Direction, Read[]> = { ASC: [], DESC: [] };
  const inFlight: Record<Direction, Promise<unknown> | undefined> = { ASC: undefined, DESC: undefined };
  let met = false;
  let total = 0;

  /** One page of one walk; false when the organization itself could not be read. */
  async function page(direction: Direction, after: string | null): Promise<{ next: string | null } | { missing: string }> {
    const request = gh.graphqlPartial(query, { org, after, direction }, OrgAnswer);
    inFlight[direction] = request.catch(() => undefined);
    const { data, errors } = await request;
    inFlight[direction] = undefined;
    if (data.organization === null) return { missing: errorsUnder(errors, [])[0]?.message ?? errors[0]?.message ?? 'not found' };
    const list = data.organization.repositories;
    total = Math.max(total, list.totalCount);
    // An error on the list itself (not on one repository) leaves the page incomplete: nothing is judged from it.
    const listErrors = errors.filter((e) => e.path.length <= 3 || e.path[2] !== 'nodes' || typeof e.path[3] !== 'number');
    if (listErrors.length > 0) {
      throw new GithubResponseError(`GitHub could not list the repositories of ${org}: ${listErrors[0]?.message ?? ''}`, { status: 200, route: 'POST /graphql' });
    }
    list.nodes.forEach((raw, i) => {
      const name = (raw as { name?: unknown } | null)?.name;
      const key = typeof name === 'string' ? name.toLowerCase() : `${direction}:${after ?? ''}:${i}`;
      const by = seen.get(key);
      if (by !== undefined) {
        if (by !== direction) met = true;
        return;
      }
      seen.set(key, direction);
      if (typeof name === 'string' && !selectedByGlobs(target, name)) return;
      reads[direction].push(readRepo(raw, errorsUnder(errors, ['organization', 'repositories', 'nodes', i]), patterns, `${org}/(repository ${i + 1} of a page)`, false));
    });
    if (!list.pageInfo.hasNextPage) {
      met = true;
      return { next: null };
    }
    // More pages without a cursor to reach them: the list is incomplete, so no verdict at all.
    if (list.pageInfo.endCursor === null) throw new MalformedResponseError(`GitHub said ${org} has more repositories but gave no cursor to read them`);
    return { next: list.pageInfo.endCursor };
  }

  async function walk(direction: Direction, after: string): Promise<void> {
    const other: Direction = direction === 'ASC' ? 'DESC' : 'ASC';
    let cursor: string | null = after;
    while (!met && cursor !== null) {
      // Close to meeting: let the other walk's page land first, it may be the one that meets.
      const pending = inFlight[other];
      if (pending && total - seen.size <= SWEEP.repos) {
        await pending;
        continue;
      }
      const r = await page(direction, cursor);
      if ('missing' in r) throw new GithubResponseError(`GitHub could not read ${org} mid-sweep: ${r.missing}`, { status: 200, route: 'POST /graphql' });
      cursor = r.next;
    }
  }

  const first = await page('ASC', null);
  if ('missing' in first) return { reads: [], unreadable: `the organization could not be read: ${first.missing}` };
  // A second walk pays off from four pages on; below that it would only add a request.
  if (first.next !== null && total <= 3 * SWEEP.repos) await walk('ASC', first.next);
  else if (first.next !== null) {
    const descending = (async () => {
      const r = await page('DESC', null);
      if ('missing' in r) throw new GithubResponseError(`GitHub could not read ${org} mid-sweep: ${r.missing}`, { status: 200, route: 'POST /graphql' });
      if (r.next !== null) await walk('DESC', r.next);
    })();
    await Promise.all([walk('ASC', first.next), descending]);
  }
  return { reads: [...reads.ASC, ...reads.DESC.reverse()] };
}

/** The follow-ups of one read: a full re-read of an overflowing repository, REST rulesets, branch views. */
async function settle(gh: GithubClient, read: Read, patterns: readonly string[], params: Params): Promise<Read> {
  const full = read.kind === 'overflow' ? ((await readExplicit(gh, [read.fullName], FULL, patterns, true))[0] ?? read) : read;
  if (full.kind !== 'repo') return full;
  const repo = full.repo;
  if (full.rulesetsViaRest) {
    const rs = await rulesetsViaRest(gh, repo.fullName);
    if (typeof rs === 'string') return { kind: 'unreadable', fullName: repo.fullName, reason: rs };
    repo.rulesets = rs;
  }
  await settleWithBranchViews(gh, full, params);
  return full;
}

/** Reads one target: its organisation's repositories (filtered by the globs) and its explicit repos. */
export async function collectBranchProtection(gh: GithubClient, target: GithubTarget, params: Params): Promise<BranchProtectionObservation> {
  const patterns = target.branches;
  const obs: BranchProtectionObservation = { repos: [], skipped: { archived: [], disabled: [] }, unreadableRepos: [] };
  const reads: Read[] = [];

  if (target.org !== undefined) {
    const swept = await sweepOrg(gh, target, target.org, patterns);
    if (swept.unreadable !== undefined) obs.unreadableRepos.push({ fullName: target.org, reason: swept.unreadable });
    reads.push(...swept.reads);
  }
  const seen = new Set(reads.map((r) => (r.kind === 'repo' ? r.repo.fullName : r.fullName).toLowerCase()));
  const explicit = target.repos.filter((r) => !seen.has(r.toLowerCase()));
  const batches: string[][] = [];
  for (let i = 0; i < explicit.length; i += REPOS_PER_BATCH) batches.push(explicit.slice(i, i + REPOS_PER_BATCH));
  for (const batch of await Promise.all(batches.map((b) => readExplicit(gh, b, SWEEP, patterns, false)))) reads.push(...batch);

  // Follow-ups of every repository at once; the client's per-credential limit paces them.
  const settled = await Promise.all(reads.map((read) => settle(gh, read, patterns, params)));
  for (const read of settled) {
    if (read.kind === 'skip') obs.skipped[read.why].push(read.fullName);
    else if (read.kind === 'unreadable') obs.unreadableRepos.push({ fullName: read.fullName, reason: read.reason });
    else if (read.kind === 'overflow') obs.unreadableRepos.push({ fullName: read.fullName, reason: 'its lists overflowed' });
    else obs.repos.push(read.repo);
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
