/**
 * collect of github-change-review: which repositories were pushed in the window, then the history
 * of their monitored branch since the window start, each commit with its associated pull requests
 * and their reviews — GraphQL, many repositories per query (aliases), cursor pagination.
 *
 * Budget (GitHub charges a query by the nodes it *may* return: every connection counts as many
 * requests as its parents' `first`, ÷ 100): an organisation is listed 100 repositories a point,
 * newest push first, and only as far as the window reaches — in a 5,000-repository org with a few
 * dozen active repositories a week that is one or two points, not fifty. The active repositories'
 * histories are read {@link HISTORY_BATCH} per query with a small first page; only a repository
 * with more commits is read on, in larger pages. Loaded by probe.ts on the first run only.
 */
import { z } from 'zod';
import { GithubResponseError, type GithubClient, type GithubGraphqlError } from '../../src/clients/github.js';
import type { GithubTarget } from '../../src/config/schema.js';
import { MalformedResponseError } from '../../src/probe/errors.js';
import { selectedByGlobs } from '../github-branch-protection/collect.js';
import { normalLogin, type ChangeReviewObservation, type CommitRecord, type Params, type PullRequestRecord, type RepoHistory } from './evaluate.js';

/** Repositories whose history one query reads. */
export const HISTORY_BATCH = 20;
/** Commits of the first page per repository: most active repositories have fewer in a window. */
export const FIRST_PAGE = 10;
/** Commits per page when a repository has more, and repositories per such query. */
const NEXT_PAGE = 50;
const NEXT_BATCH = 5;
/** Pull requests read per commit in the sweep; a commit with more (rare) is read again alone. */
const PRS_PER_COMMIT = 1;
const PRS_FOLLOW_UP = 20;
const COMMITS_PER_FOLLOW_UP = 10;
/** Reviews read per pull request: each reviewer's latest opinion, so 10 is many reviewers. */
const REVIEWS = 10;

const FRAGMENTS = `
fragment vigilPullRequest on PullRequest {
  number merged baseRefName headRefOid author { login } mergeCommit { oid }
  latestOpinionatedReviews(first: ${REVIEWS}, writersOnly: true) { pageInfo { hasNextPage } nodes { state author { login } commit { oid } } }
}`;
const historyFields = (prs: number): string => `
  pageInfo { hasNextPage endCursor }
  nodes {
    oid committedDate author { name email user { login } }
    associatedPullRequests(first: ${prs}) { pageInfo { hasNextPage } nodes { ...vigilPullRequest } }
  }`;

const orgQuery = `
  query vigilChangeReviewOrg($org: String!, $after: String) {
    rateLimit { cost }
    organization(login: $org) {
      repositories(first: 100, after: $after, orderBy: { field: PUSHED_AT, direction: DESC }) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes { name nameWithOwner isEmpty pushedAt }
      }
    }
  }`;

function historyQuery(count: number, first: number, branch: string | undefined): string {
  const vars = Array.from({ length: count }, (_, i) => `$o${i}: String!, $n${i}: String!, $a${i}: String`).join(', ');
  const head = branch === undefined ? 'defaultBranchRef' : 'ref(qualifiedName: $branch)';
  const fields = Array.from(
    { length: count },
    (_, i) => `r${i}: repository(owner: $o${i}, name: $n${i}) { nameWithOwner isEmpty head: ${head} { name target { ... on Commit { history(first: ${first}, since: $since, after: $a${i}) { ${historyFields(PRS_PER_COMMIT)} } } } } }`,
  ).join('\n');
  return `query vigilChangeReviewHistory($since: GitTimestamp!${branch === undefined ? '' : ', $branch: String!'}, ${vars}) {\nrateLimit { cost }\n${fields}\n}\n${FRAGMENTS}`;
}

function pullRequestsQuery(count: number): string {
  const vars = Array.from({ length: count }, (_, i) => `$o${i}: String!, $n${i}: String!, $c${i}: GitObjectID!`).join(', ');
  const fields = Array.from(
    { length: count },
    (_, i) => `c${i}: repository(owner: $o${i}, name: $n${i}) { object(oid: $c${i}) { ... on Commit { oid associatedPullRequests(first: ${PRS_FOLLOW_UP}) { pageInfo { hasNextPage } nodes { ...vigilPullRequest } } } } }`,
  ).join('\n');
  return `query vigilChangeReviewPullRequests(${vars}) {\nrateLimit { cost }\n${fields}\n}\n${FRAGMENTS}`;
}

// ---------------------------------------------------------------------------------------------
// Shapes of the answers; each repository is parsed on its own.

const Cost = z.object({ rateLimit: z.object({ cost: z.number().int().min(0) }).nullable().optional() });
const Login = z.object({ login: z.string() }).nullable();
const PullRequestNode = z.object({
  number: z.number().int(),
  merged: z.boolean(),
  baseRefName: z.string(),
  headRefOid: z.string(),
  author: Login,
  mergeCommit: z.object({ oid: z.string() }).nullable(),
  latestOpinionatedReviews: z
    .object({
      pageInfo: z.object({ hasNextPage: z.boolean() }),
      nodes: z.array(z.object({ state: z.string(), author: Login, commit: z.object({ oid: z.string() }).nullable() }).nullable()),
    })
    .nullable(),
});
const PullRequests = z.object({ pageInfo: z.object({ hasNextPage: z.boolean() }), nodes: z.array(PullRequestNode.nullable()) }).nullable();
const CommitNode = z.object({
  oid: z.string().min(7),
  committedDate: z.string(),
  author: z.object({ name: z.string().nullable(), email: z.string().nullable(), user: Login }).nullable(),
  associatedPullRequests: PullRequests,
});
const History = z.object({ pageInfo: z.object({ hasNextPage: z.boolean(), endCursor: z.string().nullable() }), nodes: z.array(CommitNode) });
const RepoNode = z.object({
  nameWithOwner: z.string(),
  isEmpty: z.boolean(),
  head: z.object({ name: z.string(), target: z.looseObject({ history: History.optional() }).nullable() }).nullable(),
});
const OrgAnswer = Cost.extend({
  organization: z
    .object({
      repositories: z.object({
        totalCount: z.number().int().min(0),
        pageInfo: z.object({ hasNextPage: z.boolean(), endCursor: z.string().nullable() }),
        nodes: z.array(z.object({ name: z.string(), nameWithOwner: z.string(), isEmpty: z.boolean(), pushedAt: z.string().nullable() }).nullable()),
      }),
    })
    .nullable(),
});
const Aliased = z.looseObject({ rateLimit: z.object({ cost: z.number().int().min(0) }).nullable().optional() });

/** The author's login from a GitHub-linked account or a noreply address (bots: `dependabot[bot]`). */
function authorOf(a: z.output<typeof CommitNode>['author']): { login: string | undefined; label: string } {
  if (a?.user?.login) return { login: normalLogin(a.user.login), label: a.user.login };
  const noreply = /^(?:\d+\+)?([^@]+)@users\.noreply\.github\.com$/i.exec(a?.email ?? '');
  if (noreply?.[1]) return { login: normalLogin(noreply[1]), label: noreply[1] };
  return { login: undefined, label: a?.name ? `"${a.name}" (no GitHub account linked)` : 'an unknown author' };
}

function pullRequestOf(n: z.output<typeof PullRequestNode>): PullRequestRecord {
  const reviews = n.latestOpinionatedReviews;
  return {
    number: n.number,
    author: n.author ? normalLogin(n.author.login) : undefined,
    merged: n.merged,
    baseRefName: n.baseRefName,
    headRefOid: n.headRefOid,
    mergeCommitOid: n.mergeCommit?.oid,
    reviews: (reviews?.nodes ?? []).filter((r) => r !== null).map((r) => ({ state: r.state, author: r.author ? normalLogin(r.author.login) : undefined, commitOid: r.commit?.oid })),
    // An unreadable list is not an empty one: it cannot show an approval that is missing.
    moreReviews: reviews === null || reviews.pageInfo.hasNextPage || reviews.nodes.some((r) => r === null),
  };
}

function commitOf(n: z.output<typeof CommitNode>): CommitRecord {
  const author = authorOf(n.author);
  const prs = n.associatedPullRequests;
  return {
    oid: n.oid,
    committedDate: n.committedDate,
    authorLogin: author.login,
    authorLabel: author.label,
    pullRequests: (prs?.nodes ?? []).filter((p) => p !== null).map(pullRequestOf),
    morePullRequests: prs === null || prs.pageInfo.hasNextPage || prs.nodes.some((p) => p === null),
  };
}

function errorText(errors: GithubGraphqlError[], alias: string): string | undefined {
  return errors.find((e) => e.path[0] === alias)?.message;
}

// ---------------------------------------------------------------------------------------------

interface Walk {
  fullName: string;
  branch: string | undefined;
  commits: CommitRecord[];
  cursor: string | null;
  done: boolean;
  failed?: string;
  empty?: string;
}

/** Repositories of the organisation pushed since `since` (newest push first, paged until the window is passed). */
async function activeRepos(gh: GithubClient, org: string, since: number, target: GithubTarget, points: { n: number }): Promise<{ active: string[]; quiet: number; emptyRepos: string[] }> {
  const active: string[] = [];
  const emptyRepos: string[] = [];
  let pushed = 0;
  let after: string | null = null;
  for (let page = 0; ; page++) {
    if (page >= 1000) throw new MalformedResponseError(`GitHub kept paginating the repositories of ${org}; no verdict drawn from a partial list`);
    const data: z.output<typeof OrgAnswer> = await gh.graphql(orgQuery, { org, after }, OrgAnswer);
    points.n += data.rateLimit?.cost ?? 0;
    if (data.organization === null) throw new GithubResponseError(`GitHub could not read the organization ${org}`, { status: 200, route: 'POST /graphql' });
    const list = data.organization.repositories;
    let passed = false;
    for (const r of list.nodes) {
      if (r === null) throw new MalformedResponseError(`GitHub listed an unreadable repository of ${org}; no verdict drawn from a partial list`);
      // Never pushed: nothing to judge, and where GitHub sorts it says nothing of the repositories after it.
      if (r.pushedAt === null) continue;
      // Newest push first: the first repository pushed before the window ends the walk.
      if (Date.parse(r.pushedAt) < since) {
        passed = true;
        break;
      }
      pushed++;
      if (!selectedByGlobs(target, r.name)) continue;
      if (r.isEmpty) emptyRepos.push(`${r.nameWithOwner} (empty)`);
      else active.push(r.nameWithOwner);
    }
    if (passed || !list.pageInfo.hasNextPage) return { active, quiet: Math.max(0, list.totalCount - pushed), emptyRepos };
    if (list.pageInfo.endCursor === null) throw new MalformedResponseError(`GitHub said ${org} has more repositories but gave no cursor to read them`);
    after = list.pageInfo.endCursor;
  }
}

/** One query reading the next page of several repositories' histories. */
async function readHistories(gh: GithubClient, walks: Walk[], first: number, sinceIso: string, branch: string | undefined, points: { n: number }): Promise<void> {
  const variables: Record<string, unknown> = { since: sinceIso, ...(branch === undefined ? {} : { branch: `refs/heads/${branch}` }) };
  walks.forEach((w, i) => {
    const [owner, name] = w.fullName.split('/') as [string, string];
    variables[`o${i}`] = owner;
    variables[`n${i}`] = name;
    variables[`a${i}`] = w.cursor;
  });
  const { data, errors } = await gh.graphqlPartial(historyQuery(walks.length, first, branch), variables, Aliased);
  points.n += data.rateLimit?.cost ?? 0;
  walks.forEach((w, i) => {
    const alias = `r${i}`;
    const raw = data[alias];
    const failure = errorText(errors, alias);
    if (raw === null || raw === undefined) {
      w.failed = `${failure ?? 'GitHub answered nothing for it'} (check it exists and the token or App installation can read it: Contents and Metadata read, Pull requests read)`;
      w.done = true;
      return;
    }
    if (failure !== undefined) {
      w.failed = failure;
      w.done = true;
      return;
    }
    const parsed = RepoNode.safeParse(raw);
    if (!parsed.success) {
      w.failed = `GitHub's answer for it is not understood (${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? 'invalid'})`;
      w.done = true;
      return;
    }
    const repo = parsed.data;
    w.fullName = repo.nameWithOwner;
    if (repo.head === null) {
      w.empty = repo.isEmpty ? `${repo.nameWithOwner} (empty)` : `${repo.nameWithOwner} (no branch ${branch ?? '(default)'})`;
      w.done = true;
      return;
    }
    w.branch = repo.head.name;
    const history = repo.head.target?.history;
    if (!history) {
      w.failed = `the head of ${repo.head.name} is not a commit`;
      w.done = true;
      return;
    }
    w.commits.push(...history.nodes.map(commitOf));
    const previous = w.cursor;
    w.cursor = history.pageInfo.endCursor;
    w.done = !history.pageInfo.hasNextPage;
    if (!w.done && w.cursor === null) {
      w.failed = 'GitHub said the history has more commits but gave no cursor to read them';
      w.done = true;
    } else if (!w.done && (history.nodes.length === 0 || w.cursor === previous)) {
      // Otherwise the walk would ask for the same page for ever.
      w.failed = 'GitHub said the history has more commits but its page held none or did not move on; no verdict drawn from a partial history';
      w.done = true;
    }
  });
}

/** Commits whose first associated pull request does not settle them and GitHub has more: read again with more pull requests. */
async function followUpPullRequests(gh: GithubClient, walks: Walk[], points: { n: number }): Promise<void> {
  const open: Array<{ w: Walk; c: CommitRecord }> = [];
  for (const w of walks) {
    for (const c of w.commits) {
      if (c.morePullRequests && !c.pullRequests.some((p) => p.merged && p.baseRefName === w.branch)) open.push({ w, c });
    }
  }
  const batches: Array<typeof open> = [];
  for (let i = 0; i < open.length; i += COMMITS_PER_FOLLOW_UP) batches.push(open.slice(i, i + COMMITS_PER_FOLLOW_UP));
  await Promise.all(
    batches.map(async (batch) => {
      const variables: Record<string, unknown> = {};
      batch.forEach(({ w, c }, i) => {
        const [owner, name] = w.fullName.split('/') as [string, string];
        Object.assign(variables, { [`o${i}`]: owner, [`n${i}`]: name, [`c${i}`]: c.oid });
      });
      const { data, errors } = await gh.graphqlPartial(pullRequestsQuery(batch.length), variables, Aliased);
      points.n += data.rateLimit?.cost ?? 0;
      batch.forEach(({ c }, i) => {
        if (errorText(errors, `c${i}`) !== undefined) return; // stays "more pull requests than read": unknown
        const prs = z.object({ object: z.object({ associatedPullRequests: PullRequests }).nullable() }).nullable().safeParse(data[`c${i}`]);
        const list = prs.success ? prs.data?.object?.associatedPullRequests : undefined;
        if (!list) return;
        c.pullRequests = list.nodes.filter((p) => p !== null).map(pullRequestOf);
        c.morePullRequests = list.pageInfo.hasNextPage || list.nodes.some((p) => p === null);
      });
    }),
  );
}

/** Reads one target: its organisation's repositories pushed in the window and its explicit repos. */
export async function collectChangeReview(gh: GithubClient, target: GithubTarget, params: Params, now: Date): Promise<ChangeReviewObservation> {
  const since = now.getTime() - params.lookbackDays * 86_400_000;
  // GitTimestamp: ISO 8601 to the second, as GitHub documents it.
  const sinceIso = new Date(since).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const points = { n: 0 };
  const names: string[] = [];
  const skipped: string[] = [];
  let quiet = 0;
  if (target.org !== undefined) {
    const listed = await activeRepos(gh, target.org, since, target, points);
    names.push(...listed.active);
    skipped.push(...listed.emptyRepos);
    quiet = listed.quiet;
  }
  const seen = new Set(names.map((n) => n.toLowerCase()));
  for (const r of target.repos) if (!seen.has(r.toLowerCase())) names.push(r);

  const walks: Walk[] = names.map((fullName) => ({ fullName, branch: params.branch, commits: [], cursor: null, done: false }));
  const batches: Walk[][] = [];
  for (let i = 0; i < walks.length; i += HISTORY_BATCH) batches.push(walks.slice(i, i + HISTORY_BATCH));
  await Promise.all(batches.map((b) => readHistories(gh, b, FIRST_PAGE, sinceIso, params.branch, points)));
  // Repositories with more commits: larger pages, a few repositories a query, until read or over the cap.
  for (;;) {
    const more = walks.filter((w) => !w.done && w.commits.length < params.maxCommitsPerRepo);
    if (more.length === 0) break;
    const next: Walk[][] = [];
    for (let i = 0; i < more.length; i += NEXT_BATCH) next.push(more.slice(i, i + NEXT_BATCH));
    await Promise.all(next.map((b) => readHistories(gh, b, NEXT_PAGE, sinceIso, params.branch, points)));
  }
  await followUpPullRequests(
    gh,
    walks.filter((w) => w.failed === undefined && w.empty === undefined),
    points,
  );

  const repos: RepoHistory[] = [];
  for (const w of walks) {
    if (w.failed !== undefined) repos.push({ repo: w.fullName, branch: w.branch, readable: false, reason: w.failed });
    else if (w.empty !== undefined) skipped.push(w.empty);
    else repos.push({ repo: w.fullName, branch: w.branch ?? '', readable: true, commits: w.commits, truncated: !w.done });
  }
  return { scope: target.org ?? target.name, since: sinceIso, repos, quietRepos: quiet, skipped, graphqlPoints: points.n };
}
