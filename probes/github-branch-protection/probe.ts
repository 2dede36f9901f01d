import type { GithubTarget } from '../../src/config/schema.js';
import { defineProbe } from '../../src/probe/contract.js';
import { evaluateBranchProtection, Params } from './evaluate.js';
import type { BranchProtectionObservation } from './observation.js';

export { Params } from './evaluate.js';

export const probe = defineProbe<GithubTarget, Params, BranchProtectionObservation>({
  id: 'github-branch-protection',
  title: 'Default and release branches are protected: reviewed pull requests, status checks, no force push or deletion, no admin bypass',
  source: 'github',
  controls: ['protected-default-branches'],
  schedule: '41 */4 * * *',
  docs: {
    checks:
      'For each repository of each `github[]` target (an `org` filtered by `include`/`exclude` globs, and explicit `repos`; archived and disabled repositories skipped and counted): ' +
      'the default branch and the branches matching `branches` patterns. For each branch vigil computes the effective policy from classic branch protection (the one rule GitHub applies: exact name first, else the oldest wildcard rule), ' +
      'repository rulesets and organisation rulesets (only `active` enforcement counts; `evaluate`, `disabled` and unknown values are named as configured but not enforced; `ref_name` conditions with `~DEFAULT_BRANCH` and `~ALL`), ' +
      'then requires, by default: a pull request with ≥ 1 approval, ≥ 1 required status check, force pushes and deletion blocked, and no admin bypass (no bypass list, admins not exempt); optionally stale-review dismissal, code-owner review, last-push approval, signed commits, linear history. ' +
      'One finding per repository and branch (`owner/name@branch`) listing every unmet requirement and where to fix it. A branch without any protection fails. What the token may not read is `unknown` naming the permission — never pass or fail. ' +
      'Repositories are read 100 per GraphQL request, an organisation from both ends of the name order at once; "no protection at all" is confirmed from the same answer (each branch\'s refUpdateRule and active ruleset rules), REST only where GraphQL cannot answer. ' +
      'A bypass list GitHub shows is trusted even when empty and the token only reads the repository; one it withholds leaves "admins bound" unknown. See probes/github-branch-protection/README.md.',
    permissions:
      'Read-only; nothing is written. Fine-grained token or GitHub App: repository permissions Administration: read (classic protection and bypass lists), Metadata: read, Contents: read, on all repositories of the organisation; ' +
      'the organisation Administration permission to see organisation rulesets\' bypass lists. Classic token: `repo` (or `public_repo`), from a user who is admin of each repository. ' +
      'Without Administration, a branch passes only where rulesets alone meet every requirement, fails where GitHub shows no classic rule on it and the rulesets fall short, and is unknown otherwise.',
    remediation:
      'Fix in the ruleset or classic rule the message names: repository rulesets in Settings › Rules › Rulesets, organisation rulesets in the organisation\'s Settings › Repository › Rulesets, classic rules in Settings › Branches. ' +
      'Add a ruleset targeting the default branch if nothing applies; set a ruleset in evaluate mode to Active; require pull requests with approvals and status checks; block force pushes and deletions; empty bypass lists and tick "Do not allow bypassing the above settings". ' +
      'For unknown findings, grant the permission named. See probes/github-branch-protection/README.md.',
  },
  params: Params,
  targets(config) {
    return config.github.map((t) => ({ name: t.name, spec: t }));
  },
  // The I/O and the GitHub client stack (Octokit, Bottleneck, prom-client) load on the first run, not at start-up.
  async collect(ctx) {
    const [{ githubClient }, { collectBranchProtection }] = await Promise.all([import('../../src/clients/github.js'), import('./collect.js')]);
    const gh = githubClient(ctx.target.spec, { signal: ctx.signal, log: ctx.log, redis: ctx.redis });
    return collectBranchProtection(gh, ctx.target.spec, ctx.params);
  },
  evaluate(observation, params) {
    return evaluateBranchProtection(observation, params);
  },
});
