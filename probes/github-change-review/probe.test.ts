/**
 * github-change-review: collect → evaluate through the real Octokit client against the local
 * GitHub peer (GraphQL validated against GitHub's public schema, points charged by GitHub's formula).
 */
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resetGithubClientState } from '../../src/clients/github.js';
import { GithubTarget } from '../../src/config/schema.js';
import type { Finding } from '../../src/probe/contract.js';
import { runProbe } from '../../src/probe/runner.js';
import { startGithubPeer, type GithubPeer, type PeerCommit, type PeerOrg, type PeerPullRequest, type PeerRepo } from '../../test/helpers/github-peer.js';
import { probe, type Params } from './probe.js';

const log = pino({ level: 'silent' });
const TOKEN = 'ghp_change_review_token_01';
const NOW = new Date('2026-11-30T12:00:00Z');
const ago = (hours: number): string => new Date(NOW.getTime() - hours * 3_600_000).toISOString();
const approved = (author: string, extra: Partial<NonNullable<PeerPullRequest['reviews']>[number]> = {}) => ({ author, state: 'APPROVED' as const, ...extra });

/** A repository whose history is `n` reviewed squash merges, one an hour. */
function reviewedRepo(name: string, n: number, startHoursAgo = 1): PeerRepo {
  const commits: PeerCommit[] = [];
  const pullRequests: PeerPullRequest[] = [];
  for (let i = 0; i < n; i++) {
    commits.push({ message: `${name} change ${i}`, author: 'alice', committedDate: ago(startHoursAgo + i), pullRequests: [100 + i] });
    pullRequests.push({ number: 100 + i, author: 'alice', mergedAt: ago(startHoursAgo + i), reviews: [approved('bob')] });
  }
  return { name, commits, pullRequests };
}

const acme: PeerOrg = {
  login: 'acme',
  repos: [
    reviewedRepo('api', 2),
    {
      name: 'web',
      commits: [
        { oid: 'd1ec7e5a00000000000000000000000000000001', message: 'hotfix', author: 'mallory', committedDate: ago(3) },
        { oid: '5e1f0000000000000000000000000000000000a2', message: 'self', author: 'carol', committedDate: ago(5), pullRequests: [7] },
        { oid: 'b07c000000000000000000000000000000000003', message: 'bump lodash', author: 'dependabot[bot]', committedDate: ago(6), pullRequests: [8] },
        { oid: 'ace0000000000000000000000000000000000004', message: 'reviewed', author: 'dave', committedDate: ago(7), pullRequests: [9] },
        { oid: '01d0000000000000000000000000000000000005', message: 'last week', author: 'mallory', committedDate: ago(24 * 9) },
      ],
      pullRequests: [
        // Opened by erin with carol's commit, approved by carol: self-approval of carol's code.
        { number: 7, author: 'erin', reviews: [approved('carol')] },
        { number: 8, author: 'dependabot[bot]', reviews: [] },
        { number: 9, author: 'dave', reviews: [approved('bob'), { author: 'frank', state: 'COMMENTED' }] },
      ],
    },
    {
      name: 'late',
      commits: [{ oid: 'fa11000000000000000000000000000000000006', message: 'x', author: 'alice', committedDate: ago(2), pullRequests: [1] }],
      pullRequests: [{ number: 1, author: 'alice', headRefOid: 'ead0000000000000000000000000000000000001', reviews: [approved('bob', { commitOid: '01de000000000000000000000000000000000001' })] }],
    },
    {
      name: 'many-prs',
      // The first associated pull request is an unmerged one: the merged one is found in a follow-up.
      commits: [{ oid: 'aa00000000000000000000000000000000000007', message: 'y', author: 'alice', committedDate: ago(2), pullRequests: [2, 3] }],
      pullRequests: [
        { number: 2, author: 'zoe', state: 'OPEN', reviews: [] },
        { number: 3, author: 'alice', reviews: [approved('bob')] },
      ],
    },
    reviewedRepo('busy', 65),
    // Quiet repositories: pushed before the window, never read.
    ...Array.from({ length: 150 }, (_, i) => ({ ...reviewedRepo(`old-${String(i).padStart(3, '0')}`, 1, 24 * 30 + i), pushedAt: ago(24 * 30 + i) })),
    { name: 'empty', defaultBranch: null, pushedAt: ago(1) },
  ],
};

describe('github-change-review against the GitHub peer', () => {
  let peer: GithubPeer;

  function target(over: Record<string, unknown> = {}): GithubTarget {
    return GithubTarget.parse({ name: 'acme', org: 'acme', apiUrl: peer.apiUrl, allowInsecureHttp: true, auth: { token: { env: 'GH_CR_TOKEN' } }, ...over });
  }
  async function run(params: Partial<Params> = {}, spec = target()) {
    process.env.GH_CR_TOKEN = TOKEN;
    const outcome = await runProbe({
      probe,
      target: { name: spec.name, spec },
      params: probe.params.parse(params),
      runId: 'run-cr',
      scheduledFor: NOW,
      timeoutMs: 20_000,
      log,
      now: () => NOW,
    });
    expect(peer.invalidQueries).toEqual([]);
    return outcome.result;
  }
  const byResource = (fs: Finding[]) => Object.fromEntries(fs.map((f) => [f.resource, f.outcome]));

  beforeAll(async () => {
    peer = await startGithubPeer();
    peer.addToken(TOKEN, { login: 'vigil', orgRoles: { acme: 'member' }, repoPermission: 'read' });
    peer.addOrg(acme);
  });
  afterAll(async () => {
    delete process.env.GH_CR_TOKEN;
    await peer?.close();
  });
  beforeEach(() => {
    peer.reset();
    resetGithubClientState();
  });

  it('judges every commit of the window: reviewed merge, direct push, self-approval, bot, history across pages', async () => {
    const result = await run({ botAuthors: ['dependabot[bot]'] });
    expect(result.error).toBeUndefined();
    expect(byResource(result.findings)).toEqual({
      'acme/api@main': 'pass',
      'acme/busy@main': 'pass',
      'acme/late@main': 'pass',
      'acme/many-prs@main': 'pass',
      'acme/web@d1ec7e5': 'fail',
      'acme/web@5e1f000': 'fail',
      'acme/web@b07c000': 'not_applicable',
      'acme/web@main': 'pass',
      acme: 'pass',
    });
    const msg = (r: string) => result.findings.find((f) => f.resource === r)?.message ?? '';
    expect(msg('acme/web@d1ec7e5')).toContain('direct push: commit d1ec7e5 by mallory reached acme/web@main without a merged pull request');
    expect(msg('acme/web@5e1f000')).toContain('self-approved merge: commit 5e1f000 by carol reached acme/web@main through #7, approved only by its own author (carol)');
    expect(msg('acme/web@b07c000')).toContain('by dependabot[bot], a configured bot author (botAuthors)');
    // The commit of last week (9 days ago) is outside the 7-day window: not judged.
    expect(JSON.stringify(result.findings)).not.toContain('01d0000');
    const busy = result.findings.find((f) => f.resource === 'acme/busy@main');
    expect(busy?.details?.commitCount).toBe(65);
    expect(busy?.details?.commits).toHaveLength(65);
    expect(msg('acme')).toContain('150 repositories had no push in the window');
    const summary = result.findings.find((f) => f.resource === 'acme')?.details;
    expect(summary?.skipped).toEqual(['acme/empty (empty)']);
    // One listing page (pushed repositories come first), one history batch, two more pages of busy, one PR follow-up.
    expect(peer.count('graphql')).toBe(5);
    expect(summary?.graphqlPoints).toBe(peer.graphqlPoints);
  });

  it('without botAuthors a bot commit is judged like any other: its unreviewed merge fails', async () => {
    const result = await run();
    expect(byResource(result.findings)['acme/web@b07c000']).toBe('fail');
    expect(result.findings.find((f) => f.resource === 'acme/web@b07c000')?.message).toContain('unreviewed merge: commit b07c000 by dependabot[bot]');
  });

  it('requireApprovalAfterLastPush: an approval given on an earlier commit does not count', async () => {
    const result = await run({ requireApprovalAfterLastPush: true, botAuthors: ['dependabot'] });
    expect(byResource(result.findings)['acme/late@fa11000']).toBe('fail');
    expect(result.findings.find((f) => f.resource === 'acme/late@fa11000')?.message).toContain('approval before the last push');
    expect(byResource(result.findings)['acme/api@main']).toBe('pass');
  });

  it('minApprovals 2: a merge with one approval fails as under-reviewed', async () => {
    const result = await run({ minApprovals: 2, botAuthors: ['dependabot[bot]'] });
    expect(byResource(result.findings)['acme/web@ace0000']).toBe('fail');
    expect(result.findings.find((f) => f.resource === 'acme/web@ace0000')?.message).toContain('with 1 of 2 approvals');
  });

  it('maxCommitsPerRepo: a history longer than the cap is unknown, never judged on part of it', async () => {
    const result = await run({ maxCommitsPerRepo: 20 });
    expect(byResource(result.findings)['acme/busy@main']).toBe('unknown');
    expect(result.findings.find((f) => f.resource === 'acme/busy@main')?.message).toContain('more than 20 commits in the window');
  });

  it('an explicit repository that does not exist is unknown naming it; the others are still judged', async () => {
    const result = await run({}, GithubTarget.parse({ name: 'explicit', repos: ['acme/api', 'acme/gone'], apiUrl: peer.apiUrl, allowInsecureHttp: true, auth: { token: { env: 'GH_CR_TOKEN' } } }));
    expect(byResource(result.findings)).toEqual({ 'acme/api@main': 'pass', 'acme/gone': 'unknown', explicit: 'pass' });
    expect(result.findings.find((f) => f.resource === 'acme/gone')?.message).toContain("Could not resolve to a Repository with the name 'acme/gone'");
    expect(peer.count('graphql')).toBe(1);
  });

  it('a configured branch that a repository lacks is counted as skipped, not judged', async () => {
    const result = await run({ branch: 'release' }, GithubTarget.parse({ name: 'explicit', repos: ['acme/api'], apiUrl: peer.apiUrl, allowInsecureHttp: true, auth: { token: { env: 'GH_CR_TOKEN' } } }));
    expect(byResource(result.findings)).toEqual({ explicit: 'pass' });
    expect(result.findings[0]?.details?.skipped).toEqual(['acme/api (no branch release)']);
  });

  it('an organisation that does not exist is a run error, never a pass', async () => {
    const result = await run({}, target({ name: 'nope', org: 'nope' }));
    expect(result.error?.class).toBe('NotFoundError');
    expect(result.findings).toEqual([]);
  });

  it('a 502 on the listing is retried inline: same verdicts', async () => {
    peer.failNext(1, 502);
    const ok = await run({ botAuthors: ['dependabot[bot]'] });
    expect(ok.error).toBeUndefined();
    expect(peer.requests[0]?.status).toBe(502);
    expect(byResource(ok.findings)['acme/web@d1ec7e5']).toBe('fail');
  });

  it('a malformed listing is a MalformedResponseError run error, never pass or fail', async () => {
    peer.respondNext(/\/graphql$/, { status: 200, body: { data: { rateLimit: { cost: 1 }, organization: { repositories: { totalCount: 'many', pageInfo: {}, nodes: [] } } } } });
    const result = await run();
    expect(result.error?.class).toBe('MalformedResponseError');
    expect(result.findings).toEqual([]);
  });

  // Review R2: findings fixed after H6 — each of these failed before its fix.
  it('a merge commit authored by the approver who merged it passes; a direct push claiming a bot author is unknown, not exempt', async () => {
    peer.addToken(TOKEN, { login: 'vigil', orgRoles: { acme: 'member', beta: 'member' }, repoPermission: 'read' });
    peer.addOrg({
      login: 'beta',
      repos: [
        {
          name: 'app',
          commits: [
            // "Merge pull request #11": authored by bob, who approved and clicked merge.
            { oid: 'e0e0000000000000000000000000000000000001', message: 'Merge pull request #11', author: 'bob', committedDate: ago(1), pullRequests: [11] },
            // A direct push whose git author email claims dependabot: git authorship is not authenticated.
            { oid: 'f0f0000000000000000000000000000000000002', message: 'bump', author: 'dependabot[bot]', committedDate: ago(2) },
            { oid: 'd0d0000000000000000000000000000000000003', message: 'bump lodash', author: 'dependabot[bot]', committedDate: ago(3), pullRequests: [12] },
          ],
          pullRequests: [
            { number: 11, author: 'alice', mergeCommitOid: 'e0e0000000000000000000000000000000000001', reviews: [approved('bob')] },
            { number: 12, author: 'dependabot[bot]', reviews: [] },
          ],
        },
      ],
    });
    const result = await run({ botAuthors: ['dependabot[bot]'] }, target({ name: 'beta', org: 'beta' }));
    expect(result.error).toBeUndefined();
    expect(byResource(result.findings)).toEqual({ 'beta/app@main': 'pass', 'beta/app@f0f0000': 'unknown', 'beta/app@d0d0000': 'not_applicable', beta: 'pass' });
    expect(result.findings.find((f) => f.resource === 'beta/app@f0f0000')?.message).toContain('reached the branch without a pull request by that bot');
  });

  it('a history page that says "more" but holds no commits is unknown at once, not asked for again and again', async () => {
    const stuck = { pageInfo: { hasNextPage: true, endCursor: 'Y3Vyc29yOjA=' }, nodes: [] };
    peer.respondNext(/\/graphql$/, { status: 200, body: { data: { rateLimit: { cost: 1 }, r0: { nameWithOwner: 'acme/api', isEmpty: false, head: { name: 'main', target: { history: stuck } } } } } });
    const result = await run({}, GithubTarget.parse({ name: 'explicit', repos: ['acme/api'], apiUrl: peer.apiUrl, allowInsecureHttp: true, auth: { token: { env: 'GH_CR_TOKEN' } } }));
    expect(byResource(result.findings)).toEqual({ 'acme/api@main': 'unknown', explicit: 'pass' });
    expect(result.findings[0]?.message).toContain('held none or did not move on');
    expect(peer.count('graphql')).toBe(1);
  });

  it('a never-pushed repository (pushedAt null) listed first does not end the walk: the pushed ones after it are read', async () => {
    peer.respondNext(/\/graphql$/, {
      status: 200,
      body: {
        data: {
          rateLimit: { cost: 1 },
          organization: {
            repositories: {
              totalCount: 2,
              pageInfo: { hasNextPage: false, endCursor: 'Y3Vyc29yOjE=' },
              nodes: [
                { name: 'ghost', nameWithOwner: 'acme/ghost', isEmpty: true, pushedAt: null },
                { name: 'api', nameWithOwner: 'acme/api', isEmpty: false, pushedAt: ago(1) },
              ],
            },
          },
        },
      },
    });
    const result = await run();
    expect(byResource(result.findings)).toEqual({ 'acme/api@main': 'pass', acme: 'pass' });
    expect(result.findings.find((f) => f.resource === 'acme')?.details?.quietRepos).toBe(1);
  });

  it("points by GitHub's formula: 1 for the listing, 1 per query of the rest (each under 150 requests)", async () => {
    await run({ botAuthors: ['dependabot[bot]'] });
    // listing: 1 connection; history of 5 repositories: 5 × (1 + 10 + 10) = 105; busy's next pages: 1 + 50 + 50 = 101
    // each; the follow-up of one commit: 1 + 20 = 21 — every query rounds to 1 point.
    expect(peer.count('graphql')).toBe(5);
    expect(peer.graphqlPoints).toBe(5);
  });
});
