/**
 * github-change-review, the pure part: its params, the observation collect hands over, and the
 * verdict on every commit that reached a monitored branch in the window.
 */
import { z } from 'zod';
import type { Finding } from '../../src/probe/contract.js';

/** The probe's params, validated at config load time (`probes.github-change-review.params`). */
export const Params = z.strictObject({
  /** How far back commits are judged, days. Default 7. */
  lookbackDays: z.number().int().min(1).max(90).default(7),
  /** APPROVED reviews needed, from someone other than the commit's and the pull request's author. Default 1. */
  minApprovals: z.number().int().min(1).max(10).default(1),
  /** Only approvals given on the pull request's last commit count (GitHub's "approval of the most recent reviewable push"). Default false. */
  requireApprovalAfterLastPush: z.boolean().default(false),
  /**
   * Commit authors that are automation, not people (e.g. `dependabot[bot]`, `renovate[bot]`): their
   * commits are `not_applicable`, named. Case-insensitive; the `[bot]` suffix is optional. Default: none.
   */
  botAuthors: z.array(z.string().min(1)).default([]),
  /** Branch judged in every repository. Default: each repository's default branch. */
  branch: z.string().min(1).optional(),
  /** Commits read per repository and run at most; beyond it the repository is `unknown` (never judged on part of its history). Default 1000. */
  maxCommitsPerRepo: z.number().int().min(10).max(10_000).default(1000),
});
export type Params = z.output<typeof Params>;

/** A review as GitHub's `latestOpinionatedReviews(writersOnly: true)` lists it: each reviewer's latest approval or change request. */
export interface ReviewRecord {
  /** Login, lower-cased and without a `[bot]` suffix; undefined for a deleted account ("ghost"). */
  author: string | undefined;
  state: string;
  /** The commit the review was given on. */
  commitOid: string | undefined;
}

export interface PullRequestRecord {
  number: number;
  /** Login, as {@link ReviewRecord.author}. */
  author: string | undefined;
  merged: boolean;
  baseRefName: string;
  /** The PR's last commit when it was merged. */
  headRefOid: string;
  /**
   * The commit GitHub created when it merged the PR (`mergeCommit`): a merge commit is authored by
   * whoever clicked merge, usually the approver, who wrote none of it. Optional: older observations lack it.
   */
  mergeCommitOid?: string | undefined;
  reviews: ReviewRecord[];
  /** GitHub listed more reviews than were read. */
  moreReviews: boolean;
}

export interface CommitRecord {
  oid: string;
  committedDate: string;
  /** The author's GitHub login (lower-cased, without `[bot]`) when GitHub links the commit to an account or a bot's noreply address. */
  authorLogin: string | undefined;
  /** What names the author in a message: the login as GitHub shows it (`dependabot[bot]`), else the git author name. */
  authorLabel: string;
  pullRequests: PullRequestRecord[];
  /** GitHub associated more pull requests with the commit than were read. */
  morePullRequests: boolean;
}

export type RepoHistory =
  | { repo: string; branch: string; readable: true; commits: CommitRecord[]; truncated: boolean }
  | { repo: string; branch: string | undefined; readable: false; reason: string };

/** What collect hands to evaluate: plain JSON. */
export interface ChangeReviewObservation {
  /** The target's organisation, or its name when it lists repositories only. */
  scope: string;
  /** Start of the window read (ISO). */
  since: string;
  /** Repositories whose monitored branch was read, one entry each. */
  repos: RepoHistory[];
  /** Repositories of the organisation not pushed since the window start: nothing to judge. */
  quietRepos: number;
  /** Archived or empty repositories pushed in the window (not read: nothing can land on them). */
  skipped: string[];
  /** GraphQL points GitHub charged for the run (`rateLimit.cost`, summed). */
  graphqlPoints: number;
}

/** Lower-cased login without GitHub's `[bot]` suffix: REST says `dependabot[bot]`, GraphQL's Bot actor `dependabot`. */
export function normalLogin(login: string): string {
  return login.toLowerCase().replace(/\[bot\]$/, '');
}

/** The approvals of one pull request that count for one commit, and why the others do not. */
function approvalsOf(pr: PullRequestRecord, commit: CommitRecord, params: Params): { counted: string[]; self: string[]; stale: string[] } {
  const counted = new Set<string>();
  const self = new Set<string>();
  const stale = new Set<string>();
  // The PR's merge commit is "authored" by the person who merged it: their approval is not of their own code.
  const isMergeCommit = pr.mergeCommitOid !== undefined && pr.mergeCommitOid === commit.oid;
  for (const r of pr.reviews) {
    if (r.state !== 'APPROVED' || r.author === undefined) continue;
    if (r.author === pr.author || (!isMergeCommit && r.author === commit.authorLogin)) self.add(r.author);
    else if (params.requireApprovalAfterLastPush && r.commitOid !== pr.headRefOid) stale.add(r.author);
    else counted.add(r.author);
  }
  return { counted: [...counted], self: [...self], stale: [...stale] };
}

type CommitVerdict =
  | { outcome: 'pass'; pr: number; approvers: string[] }
  | { outcome: 'not_applicable'; message: string }
  | { outcome: 'fail' | 'unknown'; message: string; details: Record<string, unknown> };

function judgeCommit(repo: string, branch: string, c: CommitRecord, params: Params, bots: Set<string>): CommitVerdict {
  const sha = c.oid.slice(0, 7);
  const who = c.authorLabel;
  const merged = c.pullRequests.filter((p) => p.merged && p.baseRefName === branch);
  if (c.authorLogin !== undefined && bots.has(c.authorLogin)) {
    // A git author is whatever the pusher wrote (any push can claim `…+dependabot[bot]@users.noreply.github.com`):
    // only a merged pull request the bot itself opened (GitHub authenticates that author) shows the bot made the change.
    if (merged.some((p) => p.author === c.authorLogin)) {
      return { outcome: 'not_applicable', message: `commit ${sha} on ${repo}@${branch} is by ${who}, a configured bot author (botAuthors), merged through its own pull request: not judged for human review` };
    }
    if (merged.length === 0 && !c.morePullRequests) {
      return {
        outcome: 'unknown',
        message:
          `commit ${sha} on ${repo}@${branch} names the bot ${who} (botAuthors) as its author but reached the branch without a pull request by that bot; ` +
          'a git author is not authenticated, so whether the bot or a person pushed it cannot be told: have the bot open pull requests, or review the commit',
        details: { commit: c.oid, kind: 'unverified-bot-author', author: who },
      };
    }
    // In someone else's merged pull request: judged like that person's change.
  }
  if (merged.length === 0) {
    if (c.morePullRequests) {
      return { outcome: 'unknown', message: `commit ${sha} by ${who} on ${repo}@${branch}: GitHub associates more pull requests with it than were read; could not tell whether one merged it`, details: { commit: c.oid } };
    }
    const open = c.pullRequests.filter((p) => !p.merged).map((p) => `#${p.number}`);
    // E.g. merged into develop, then develop fast-forwarded or pushed onto this branch: not reviewed into it.
    const elsewhere = c.pullRequests.filter((p) => p.merged).map((p) => `#${p.number} into ${p.baseRefName}`);
    const where = [...(open.length > 0 ? [`it is only in unmerged ${open.join(', ')}`] : []), ...(elsewhere.length > 0 ? [`merged only through ${elsewhere.join(', ')}`] : [])];
    return {
      outcome: 'fail',
      message:
        `direct push: commit ${sha} by ${who} reached ${repo}@${branch} without a merged pull request into it${where.length > 0 ? ` (${where.join('; ')})` : ''}; ` +
        'require pull requests on the branch (github-branch-protection) and have the change reviewed after the fact',
      details: { commit: c.oid, kind: 'direct-push', author: who },
    };
  }
  let best: { pr: PullRequestRecord; a: ReturnType<typeof approvalsOf> } | undefined;
  for (const pr of merged) {
    const a = approvalsOf(pr, c, params);
    if (a.counted.length >= params.minApprovals) return { outcome: 'pass', pr: pr.number, approvers: a.counted.sort() };
    if (!best || a.counted.length > best.a.counted.length || (a.counted.length === best.a.counted.length && a.self.length + a.stale.length > best.a.self.length + best.a.stale.length)) best = { pr, a };
  }
  const { pr, a } = best as NonNullable<typeof best>;
  const need = `${params.minApprovals} approval${params.minApprovals === 1 ? '' : 's'}`;
  const base = { commit: c.oid, pullRequest: pr.number, author: who, approvals: a.counted.length, required: params.minApprovals };
  if (merged.some((p) => p.moreReviews)) {
    return { outcome: 'unknown', message: `commit ${sha} by ${who} on ${repo}@${branch}: pull request #${pr.number} has more reviews than were read and those read hold fewer than ${need}`, details: base };
  }
  const fix = `merge only after ${need} from someone other than the author (require it in the branch's ruleset or rule)`;
  if (a.self.length > 0 && a.counted.length === 0) {
    return {
      outcome: 'fail',
      message: `self-approved merge: commit ${sha} by ${who} reached ${repo}@${branch} through #${pr.number}, approved only by its own author (${a.self.join(', ')}); ${fix}`,
      details: { ...base, kind: 'self-approved', selfApprovers: a.self },
    };
  }
  if (a.stale.length > 0) {
    return {
      outcome: 'fail',
      message: `approval before the last push: commit ${sha} by ${who} reached ${repo}@${branch} through #${pr.number}, whose approvals (${a.stale.join(', ')}) predate its last commit; ${fix}, on the final commit`,
      details: { ...base, kind: 'approved-before-last-push', staleApprovers: a.stale },
    };
  }
  return {
    outcome: 'fail',
    message:
      a.counted.length === 0
        ? `unreviewed merge: commit ${sha} by ${who} reached ${repo}@${branch} through #${pr.number}, merged without an approval; ${fix}`
        : `under-reviewed merge: commit ${sha} by ${who} reached ${repo}@${branch} through #${pr.number} with ${a.counted.length} of ${need}; ${fix}`,
    details: { ...base, kind: 'unreviewed' },
  };
}

/** The pure verdict: see README.md. `now` bounds the window (commits older than `lookbackDays` are not judged). */
export function evaluateChangeReview(o: ChangeReviewObservation, params: Params, now: Date): Finding[] {
  const windowStart = Math.max(Date.parse(o.since), now.getTime() - params.lookbackDays * 86_400_000);
  const bots = new Set(params.botAuthors.map(normalLogin));
  const findings: Finding[] = [];
  let judged = 0;
  let reviewed = 0;
  for (const r of [...o.repos].sort((a, b) => a.repo.localeCompare(b.repo))) {
    if (!r.readable) {
      findings.push({ resource: r.branch ? `${r.repo}@${r.branch}` : r.repo, outcome: 'unknown', message: `${r.repo}: its history could not be read: ${r.reason}` });
      continue;
    }
    const resource = `${r.repo}@${r.branch}`;
    const passed: Array<{ sha: string; pr: number }> = [];
    for (const c of r.commits) {
      if (Date.parse(c.committedDate) < windowStart) continue;
      judged++;
      const v = judgeCommit(r.repo, r.branch, c, params, bots);
      if (v.outcome === 'pass') {
        passed.push({ sha: c.oid.slice(0, 7), pr: v.pr });
        continue;
      }
      const res = `${r.repo}@${c.oid.slice(0, 7)}`;
      if (v.outcome === 'not_applicable') findings.push({ resource: res, outcome: 'not_applicable', message: v.message, details: { commit: c.oid, author: c.authorLabel } });
      else findings.push({ resource: res, outcome: v.outcome, message: v.message, details: v.details });
    }
    reviewed += passed.length;
    if (r.truncated) {
      findings.push({
        resource,
        outcome: 'unknown',
        message: `${resource}: more than ${params.maxCommitsPerRepo} commits in the window, only those read were judged; raise maxCommitsPerRepo or shorten lookbackDays`,
      });
    } else if (passed.length > 0) {
      const prs = [...new Set(passed.map((p) => p.pr))].sort((a, b) => a - b);
      findings.push({
        resource,
        outcome: 'pass',
        message: `${passed.length} commit${passed.length === 1 ? '' : 's'} reached ${resource} in the last ${params.lookbackDays} days, each through a merged pull request with ≥ ${params.minApprovals} independent approval${params.minApprovals === 1 ? '' : 's'}`,
        // Bounded: a busy repository must not bloat every snapshot.
        details: { commitCount: passed.length, commits: passed.slice(0, 100).map((p) => p.sha), pullRequests: prs.slice(0, 100) },
      });
    }
  }
  findings.push({
    resource: o.scope,
    outcome: 'pass',
    message:
      `${o.scope}: ${judged} commit${judged === 1 ? '' : 's'} since ${new Date(windowStart).toISOString()} judged in ${o.repos.length} repositor${o.repos.length === 1 ? 'y' : 'ies'} pushed in the window` +
      ` (${reviewed} through reviewed pull requests); ${o.quietRepos} repositor${o.quietRepos === 1 ? 'y' : 'ies'} had no push in the window`,
    details: { since: new Date(windowStart).toISOString(), commitsJudged: judged, reposRead: o.repos.length, quietRepos: o.quietRepos, skipped: o.skipped, graphqlPoints: o.graphqlPoints },
  });
  return findings;
}
