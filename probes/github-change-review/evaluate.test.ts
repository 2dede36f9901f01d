/** github-change-review's pure verdict, table-driven with a fixed `now`. */
import { describe, expect, it } from 'vitest';
import { evaluateChangeReview, Params, type ChangeReviewObservation, type CommitRecord, type PullRequestRecord } from './evaluate.js';

const NOW = new Date('2026-11-30T12:00:00Z');
const defaults = Params.parse({});
const HEAD = 'head000000000000000000000000000000000000';
const pr = (over: Partial<PullRequestRecord> = {}): PullRequestRecord => ({
  number: 5,
  author: 'alice',
  merged: true,
  baseRefName: 'main',
  headRefOid: HEAD,
  reviews: [{ author: 'bob', state: 'APPROVED', commitOid: HEAD }],
  moreReviews: false,
  ...over,
});
const commit = (over: Partial<CommitRecord> = {}): CommitRecord => ({
  oid: 'c0ffee0000000000000000000000000000000000',
  committedDate: '2026-11-30T10:00:00Z',
  authorLogin: 'alice',
  authorLabel: 'alice',
  pullRequests: [pr()],
  morePullRequests: false,
  ...over,
});
const obs = (commits: CommitRecord[]): ChangeReviewObservation => ({
  scope: 'acme',
  since: '2026-11-23T12:00:00Z',
  repos: [{ repo: 'acme/api', branch: 'main', readable: true, commits, truncated: false }],
  quietRepos: 0,
  skipped: [],
  graphqlPoints: 1,
});

describe('evaluateChangeReview', () => {
  const cases: Array<{ name: string; commits: CommitRecord[]; params?: Partial<Params>; want: string; says?: string }> = [
    { name: 'a merged pull request approved by another person passes', commits: [commit()], want: 'pass' },
    { name: 'no pull request at all is a direct push', commits: [commit({ pullRequests: [] })], want: 'fail', says: 'direct push: commit c0ffee0 by alice reached acme/api@main' },
    {
      name: 'a pull request merged into another branch does not count for main',
      commits: [commit({ pullRequests: [pr({ baseRefName: 'develop' })] })],
      want: 'fail',
      says: 'without a merged pull request into it (merged only through #5 into develop)',
    },
    { name: 'only in an open pull request: a direct push, naming the PR', commits: [commit({ pullRequests: [pr({ merged: false })] })], want: 'fail', says: 'only in unmerged #5' },
    {
      name: 'approval by the pull request author does not count',
      commits: [commit({ authorLogin: 'carol', authorLabel: 'carol', pullRequests: [pr({ reviews: [{ author: 'alice', state: 'APPROVED', commitOid: HEAD }] })] })],
      want: 'fail',
      says: 'self-approved merge',
    },
    {
      name: 'approval by the commit author does not count',
      commits: [commit({ authorLogin: 'bob', authorLabel: 'bob' })],
      want: 'fail',
      says: 'approved only by its own author (bob)',
    },
    { name: 'no approval: unreviewed merge', commits: [commit({ pullRequests: [pr({ reviews: [{ author: 'bob', state: 'CHANGES_REQUESTED', commitOid: HEAD }] })] })], want: 'fail', says: 'unreviewed merge' },
    { name: 'a deleted reviewer (ghost) does not count', commits: [commit({ pullRequests: [pr({ reviews: [{ author: undefined, state: 'APPROVED', commitOid: HEAD }] })] })], want: 'fail', says: 'unreviewed merge' },
    {
      name: 'more reviews than read and too few approvals read: unknown',
      commits: [commit({ pullRequests: [pr({ reviews: [], moreReviews: true })] })],
      want: 'unknown',
      says: 'more reviews than were read',
    },
    { name: 'more pull requests than read and none merged into main: unknown', commits: [commit({ pullRequests: [], morePullRequests: true })], want: 'unknown' },
    {
      name: 'approval on an earlier commit counts by default',
      commits: [commit({ pullRequests: [pr({ reviews: [{ author: 'bob', state: 'APPROVED', commitOid: 'old' }] })] })],
      want: 'pass',
    },
    {
      name: 'approval on an earlier commit fails with requireApprovalAfterLastPush',
      commits: [commit({ pullRequests: [pr({ reviews: [{ author: 'bob', state: 'APPROVED', commitOid: 'old' }] })] })],
      params: { requireApprovalAfterLastPush: true },
      want: 'fail',
      says: 'approval before the last push',
    },
    {
      name: 'two approvals needed, one given: under-reviewed',
      commits: [commit()],
      params: { minApprovals: 2 },
      want: 'fail',
      says: 'with 1 of 2 approvals',
    },
    {
      name: 'a configured bot merged through its own pull request is not applicable, case and [bot] suffix ignored',
      commits: [commit({ authorLogin: 'dependabot', authorLabel: 'dependabot[bot]', pullRequests: [pr({ author: 'dependabot', reviews: [] })] })],
      params: { botAuthors: ['Dependabot[bot]'] },
      want: 'not_applicable',
    },
    // Review R2: a git author is not authenticated — a direct push claiming to be dependabot is not exempt.
    {
      name: 'a direct push whose git author claims a configured bot is unknown, not exempt',
      commits: [commit({ authorLogin: 'dependabot', authorLabel: 'dependabot[bot]', pullRequests: [] })],
      params: { botAuthors: ['dependabot[bot]'] },
      want: 'unknown',
      says: 'a git author is not authenticated',
    },
    {
      name: "a commit claiming a bot author inside a person's unreviewed pull request is judged like theirs",
      commits: [commit({ authorLogin: 'dependabot', authorLabel: 'dependabot[bot]', pullRequests: [pr({ author: 'mallory', reviews: [] })] })],
      params: { botAuthors: ['dependabot[bot]'] },
      want: 'fail',
      says: 'unreviewed merge',
    },
    // Review R2: a merge commit is authored by whoever clicked merge — typically the approver.
    {
      name: "the PR's merge commit authored by the approver who merged it passes",
      commits: [commit({ authorLogin: 'bob', authorLabel: 'bob', pullRequests: [pr({ mergeCommitOid: 'c0ffee0000000000000000000000000000000000' })] })],
      want: 'pass',
    },
    {
      name: "a PR's own commit authored by its approver is still self-approved",
      commits: [commit({ authorLogin: 'bob', authorLabel: 'bob', pullRequests: [pr({ mergeCommitOid: 'feed000000000000000000000000000000000000' })] })],
      want: 'fail',
      says: 'approved only by its own author (bob)',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const findings = evaluateChangeReview(obs(c.commits), { ...defaults, ...c.params }, NOW);
      const own = findings.filter((f) => f.resource !== 'acme');
      expect(own.map((f) => f.outcome)).toEqual([c.want]);
      expect(own[0]?.resource).toBe(c.want === 'pass' ? 'acme/api@main' : 'acme/api@c0ffee0');
      if (c.says) expect(own[0]?.message).toContain(c.says);
      expect(findings.at(-1)).toMatchObject({ resource: 'acme', outcome: 'pass' });
    });
  }

  it('a commit older than lookbackDays is not judged, even if collect handed it over', () => {
    const findings = evaluateChangeReview(obs([commit({ committedDate: '2026-11-20T00:00:00Z', pullRequests: [] })]), defaults, NOW);
    expect(findings.map((f) => f.resource)).toEqual(['acme']);
    expect(findings[0]?.details?.commitsJudged).toBe(0);
  });

  it('an unreadable repository is unknown with the reason; a truncated one is unknown even if what was read passed', () => {
    const o = obs([commit()]);
    o.repos.push({ repo: 'acme/secret', branch: undefined, readable: false, reason: 'FORBIDDEN' });
    o.repos[0] = { ...(o.repos[0] as Extract<(typeof o.repos)[number], { readable: true }>), truncated: true };
    const findings = evaluateChangeReview(o, defaults, NOW);
    expect(findings.map((f) => [f.resource, f.outcome])).toEqual([
      ['acme/api@main', 'unknown'],
      ['acme/secret', 'unknown'],
      ['acme', 'pass'],
    ]);
  });
});
