import type { GithubTarget } from '../../src/config/schema.js';
import { defineProbe } from '../../src/probe/contract.js';
import { evaluateChangeReview, Params, type ChangeReviewObservation } from './evaluate.js';

export { Params } from './evaluate.js';

export const probe = defineProbe<GithubTarget, Params, ChangeReviewObservation>({
  id: 'github-change-review',
  title: 'Every change that reached a monitored branch came through a merged pull request approved by someone other than its author',
  source: 'github',
  controls: ['reviewed-changes'],
  schedule: '29 */6 * * *',
  docs: {
    checks:
      'For each `github[]` target: the repositories of its `org` pushed within the last `lookbackDays` (listed newest push first, filtered by `include`/`exclude`) and its explicit `repos`. ' +
      'Every commit on the default branch (or `branch`) committed in the window must have arrived through a merged pull request into that branch with ≥ `minApprovals` APPROVED reviews (each reviewer\'s latest opinion, reviewers with write access) from someone other than the pull request\'s author and the commit\'s author — ' +
      'with `requireApprovalAfterLastPush`, given on the pull request\'s last commit. Direct pushes, self-approved and unreviewed merges fail, one finding per commit (`owner/repo@sha`) naming the author; the PR\'s merge commit is not judged against its own author (whoever clicked merge). ' +
      'Commits by `botAuthors` that arrived through a merged pull request the bot opened are `not_applicable`, named; a commit that merely names a bot as its git author without such a pull request is `unknown` (a git author is not authenticated). ' +
      'One `pass` per repository whose commits were all reviewed and one summary `pass` for the target (counts, GraphQL points used). What could not be read is `unknown`, never pass or fail. ' +
      'The window is the last `lookbackDays` on each run, not "since the previous run": a failing commit keeps the control red until it ages out of the window. ' +
      'GitHub selects the window by committer date: a commit whose committer date was set before the window is not seen. See probes/github-change-review/README.md.',
    permissions:
      'Read-only; nothing is written. Fine-grained token or GitHub App: repository permissions Contents: read, Pull requests: read and Metadata: read on the repositories. Classic token: `repo` (or `public_repo` for public repositories only).',
    remediation:
      'A direct push or an unreviewed merge cannot be undone by settings: have the change reviewed after the fact (and record it), then prevent the next one — require pull requests with approvals in the branch\'s ruleset or classic rule, empty its bypass list (see github-branch-protection), ' +
      'enable "Require approval of the most recent reviewable push" when `requireApprovalAfterLastPush` is on. Automation accounts that legitimately commit go in `botAuthors`. See probes/github-change-review/README.md.',
  },
  params: Params,
  targets(config) {
    return config.github.map((t) => ({ name: t.name, spec: t }));
  },
  // The I/O and the GitHub client stack (Octokit, Bottleneck, prom-client) load on the first run, not at start-up.
  async collect(ctx) {
    const [{ githubClient }, { collectChangeReview }] = await Promise.all([import('../../src/clients/github.js'), import('./collect.js')]);
    const gh = githubClient(ctx.target.spec, { signal: ctx.signal, log: ctx.log, redis: ctx.redis });
    return collectChangeReview(gh, ctx.target.spec, ctx.params, ctx.now);
  },
  evaluate(observation, params, now) {
    return evaluateChangeReview(observation, params, now);
  },
});
