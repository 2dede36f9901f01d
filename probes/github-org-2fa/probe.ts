import { z } from 'zod';
import type { GithubTarget } from '../../src/config/schema.js';
import { defineProbe, type Finding } from '../../src/probe/contract.js';

/** The probe's params, validated at config load time. */
export const Params = z.strictObject({
  /** The org's "Require two-factor authentication" setting must be on. Default true. */
  requireOrgSetting: z.boolean().default(true),
  /** Outside collaborators are checked too. Default true. */
  checkOutsideCollaborators: z.boolean().default(true),
});
export type Params = z.output<typeof Params>;

/** A list of accounts GitHub returned for a 2FA filter, or why it could not be read. */
export type AccountList =
  | { readable: true; logins: string[] }
  /** The credential may not read it (the reason names the permission). */
  | { readable: false; reason: string }
  /** This GitHub does not report it (e.g. `2fa_insecure` on an older Enterprise Server). */
  | { readable: 'not_reported'; reason: string };

/** What collect hands to evaluate: plain JSON. */
export interface Org2faObservation {
  org: string;
  /**
   * `two_factor_requirement_enabled` of GET /orgs/{org}. GitHub returns it to owners only, so
   * `null` means the credential is not an owner and nothing about 2FA can be told.
   */
  twoFactorRequired: boolean | null;
  members2faDisabled?: AccountList;
  membersInsecure2fa?: AccountList;
  /** Absent when `checkOutsideCollaborators` is off. */
  collaborators2faDisabled?: AccountList;
  collaboratorsInsecure2fa?: AccountList;
}

/** Why nothing about 2FA can be told when the credential is not an org owner (shared with collect.ts). */
export function notOwner(org: string): string {
  return `the token is not an owner of ${org}: GitHub only shows 2FA status to owners (needs admin:org read / Organization Members: read as an owner)`;
}

/** The pure verdict: see README.md. */
export function evaluateOrg2fa(o: Org2faObservation, params: Params): Finding[] {
  if (o.twoFactorRequired === null) return [{ resource: o.org, outcome: 'unknown', message: notOwner(o.org) }];
  const findings: Finding[] = [];
  const unknowns: string[] = [];
  const notReported: string[] = [];
  /** Per account (case-insensitive login): the spelling first seen, its roles and its problems. */
  const fails = new Map<string, { login: string; roles: Set<string>; problems: Set<string> }>();
  const read = (list: AccountList | undefined, role: string, problem: string): void => {
    if (!list) return;
    if (list.readable === true) {
      for (const login of list.logins) {
        const entry = fails.get(login.toLowerCase()) ?? { login, roles: new Set<string>(), problems: new Set<string>() };
        entry.roles.add(role);
        entry.problems.add(problem);
        fails.set(login.toLowerCase(), entry);
      }
    } else if (list.readable === false) unknowns.push(list.reason);
    else notReported.push(list.reason);
  };
  const disabled = 'has 2FA disabled';
  const insecure = 'uses an insecure 2FA method (SMS)';
  read(o.members2faDisabled ?? { readable: false, reason: `members of ${o.org} were not read` }, 'member', disabled);
  read(o.membersInsecure2fa, 'member', insecure);
  if (params.checkOutsideCollaborators) {
    read(o.collaborators2faDisabled ?? { readable: false, reason: `outside collaborators of ${o.org} were not read` }, 'outside collaborator', disabled);
    read(o.collaboratorsInsecure2fa, 'outside collaborator', insecure);
  }

  const settingOff = params.requireOrgSetting && o.twoFactorRequired === false;
  const details = { twoFactorRequired: o.twoFactorRequired, accountsWithout2fa: fails.size, ...(notReported.length > 0 ? { notReported } : {}) };
  if (settingOff) {
    findings.push({
      resource: o.org,
      outcome: 'fail',
      message: `${o.org} does not require two-factor authentication: turn on Settings > Authentication security > "Require two-factor authentication for everyone in the ${o.org} organization"${unknowns.length > 0 ? `; also could not tell: ${unknowns.join('; ')}` : ''}`,
      details,
    });
  } else if (unknowns.length > 0) {
    findings.push({ resource: o.org, outcome: 'unknown', message: unknowns.join('; '), details });
  } else if (fails.size === 0) {
    const setting = o.twoFactorRequired ? 'requires 2FA' : 'does not require 2FA (not demanded by params)';
    const scope = params.checkOutsideCollaborators ? 'member or outside collaborator' : 'member';
    findings.push({
      resource: o.org,
      outcome: 'pass',
      message: `${o.org} ${setting}; no ${scope} has 2FA disabled${notReported.length > 0 ? ' (insecure 2FA methods not reported by this GitHub)' : ' or uses an insecure method'}`,
      details,
    });
  }
  for (const [, { login, roles, problems }] of [...fails].sort(([a], [b]) => a.localeCompare(b))) {
    const fix = problems.has(disabled)
      ? `ask ${login} to enable 2FA at github.com/settings/security, or remove them from ${o.org}${o.twoFactorRequired ? '' : ' (requiring 2FA for the org removes accounts without it)'}`
      : `ask ${login} to register a security key, passkey or TOTP app and remove SMS at github.com/settings/security`;
    findings.push({
      resource: `${o.org}/${login}`,
      outcome: 'fail',
      message: `${login}, ${[...roles].join(' and ')} of ${o.org}, ${[...problems].join(' and ')}: ${fix}`,
      details: { roles: [...roles], problems: [...problems] },
    });
  }
  return findings;
}

export const probe = defineProbe<GithubTarget, Params, Org2faObservation>({
  id: 'github-org-2fa',
  title: 'GitHub organisations require 2FA, and every member and outside collaborator has it',
  source: 'github',
  controls: ['mfa-human-accounts'],
  schedule: '23 */6 * * *',
  docs: {
    checks:
      'For each `github[]` target with an `org`: the organisation\'s "Require two-factor authentication" setting is on (`requireOrgSetting`); ' +
      'no member has 2FA disabled (`GET /orgs/{org}/members?filter=2fa_disabled`) or uses an insecure method such as SMS (`filter=2fa_insecure`, where GitHub reports it); ' +
      'and, with `checkOutsideCollaborators`, the same for outside collaborators. One `fail` finding per account (resource `org/login`); a `pass` for the org when everyone is fine. ' +
      'GitHub shows 2FA status to organisation owners only: a credential that is not an owner gives a single `unknown` finding, never pass or fail.',
    permissions:
      'Read-only, but as an organisation **owner**. Classic token: scope `read:org` (or `admin:org`) of a user who is an owner of the org. ' +
      'Fine-grained token: organisation permission "Members: read" (and "Administration: read"), created by an owner. ' +
      'GitHub App: organisation permissions "Members: read" and "Administration: read". Nothing is written.',
    remediation:
      'Turn on Settings > Authentication security > "Require two-factor authentication" (GitHub then removes members without 2FA, so warn them first). ' +
      'Ask each listed account to enable 2FA — preferably a security key, passkey or TOTP app, not SMS — at github.com/settings/security, or remove the account. ' +
      'See probes/github-org-2fa/README.md.',
  },
  params: Params,
  targets(config) {
    return config.github.filter((t) => t.org !== undefined).map((t) => ({ name: t.name, spec: t }));
  },
  // The I/O and the GitHub client stack (Octokit, Bottleneck, prom-client) load on the first run, not at start-up (collect.ts).
  async collect(ctx) {
    return (await import('./collect.js')).collectOrg2fa(ctx);
  },
  evaluate(observation, params) {
    return evaluateOrg2fa(observation, params);
  },
});
