/**
 * collect of github-org-2fa: the org's 2FA requirement and the members / outside collaborators
 * GitHub lists by 2FA filter. Loaded by probe.ts on the first run only, with the GitHub client
 * stack it imports.
 */
import { z } from 'zod';
import { githubClient, GithubPermissionError, GithubResponseError, NotFoundError, type GithubClient } from '../../src/clients/github.js';
import type { GithubTarget } from '../../src/config/schema.js';
import type { CollectContext } from '../../src/probe/contract.js';
import { notOwner, type AccountList, type Org2faObservation, type Params } from './probe.js';

/** The subset of GET /orgs/{org} this probe reads; GitHub's payload has many more fields. */
const OrgPayload = z.looseObject({
  login: z.string(),
  two_factor_requirement_enabled: z.boolean().nullable().optional(),
});

/** One account of a members / outside collaborators list (GitHub's simple-user). */
const Account = z.looseObject({ login: z.string().min(1), id: z.number(), type: z.string().optional() });

/**
 * Lists the accounts of one 2FA filter. A refusal becomes `readable: false` with GitHub's reason;
 * for `2fa_insecure`, a 422/404 means this GitHub does not support the filter. Transient and
 * malformed answers propagate: the run fails rather than judging half a list.
 */
async function listFiltered(gh: GithubClient, org: string, list: 'members' | 'outside_collaborators', filter: '2fa_disabled' | '2fa_insecure'): Promise<AccountList> {
  try {
    const accounts = await gh.restPages(`GET /orgs/{org}/${list}`, { org, filter }, Account);
    return { readable: true, logins: accounts.map((a) => a.login).sort() };
  } catch (err) {
    const what = list === 'members' ? 'members' : 'outside collaborators';
    if (filter === '2fa_insecure' && err instanceof GithubResponseError && (err.status === 422 || err.status === 404) && !/owner/i.test(err.githubMessage ?? '')) {
      return { readable: 'not_reported', reason: `this GitHub does not report ${what} with insecure 2FA methods (filter=2fa_insecure answered ${err.status})` };
    }
    if (err instanceof GithubPermissionError) return { readable: false, reason: `cannot list ${what} of ${org} by 2FA status: ${err.message}` };
    if (err instanceof GithubResponseError && !(err instanceof NotFoundError) && err.status === 422) {
      return { readable: false, reason: `cannot list ${what} of ${org} by 2FA status: GitHub answered 422 ("${err.githubMessage ?? ''}"); ${notOwner(org)}` };
    }
    throw err;
  }
}

/** Reads the org's setting, then the four filtered lists at once. */
export async function collectOrg2fa(ctx: CollectContext<GithubTarget, Params>): Promise<Org2faObservation> {
  const org = ctx.target.spec.org;
  if (org === undefined) throw new Error(`target ${ctx.target.name} has no org`);
  const gh = githubClient(ctx.target.spec, { signal: ctx.signal, log: ctx.log, redis: ctx.redis });
  const payload = await gh.rest('GET /orgs/{org}', { org }, OrgPayload);
  const required = payload.two_factor_requirement_enabled;
  if (required === undefined || required === null) return { org: payload.login, twoFactorRequired: null };
  const observation: Org2faObservation = { org: payload.login, twoFactorRequired: required };
  // The lists are independent: read at once, within the client's per-credential limit.
  const collaborators = ctx.params.checkOutsideCollaborators;
  const [membersDisabled, membersInsecure, collaboratorsDisabled, collaboratorsInsecure] = await Promise.all([
    listFiltered(gh, org, 'members', '2fa_disabled'),
    listFiltered(gh, org, 'members', '2fa_insecure'),
    collaborators ? listFiltered(gh, org, 'outside_collaborators', '2fa_disabled') : undefined,
    collaborators ? listFiltered(gh, org, 'outside_collaborators', '2fa_insecure') : undefined,
  ]);
  observation.members2faDisabled = membersDisabled;
  observation.membersInsecure2fa = membersInsecure;
  if (collaborators) {
    observation.collaborators2faDisabled = collaboratorsDisabled;
    observation.collaboratorsInsecure2fa = collaboratorsInsecure;
  }
  return observation;
}
