/**
 * collect of github-release-sbom: the releases to judge per repository, their SBOM-named assets,
 * each downloaded (size-capped, the storage redirect followed without the credential) and
 * validated against its format's JSON schema. Loaded by probe.ts on the first run only.
 */
import { z } from 'zod';
import {
  githubClient,
  GithubDownloadTooLargeError,
  GithubOriginError,
  GithubPermissionError,
  GithubResponseError,
  NotFoundError,
  type GithubClient,
} from '../../src/clients/github.js';
import type { GithubTarget } from '../../src/config/schema.js';
import type { CollectContext } from '../../src/probe/contract.js';
import type { AssetCheck, AssetObservation, Params, ReleaseObservation, ReleaseSbomObservation, RepoObservation } from './probe.js';
import { checkSbom } from './sbom.js';

/** The subset of GitHub's release-asset this probe reads. */
const Asset = z.looseObject({
  id: z.number(),
  name: z.string().min(1),
  size: z.number().int().min(0),
  /** `uploaded` once complete; `open` while an upload is in progress. */
  state: z.string(),
  created_at: z.string().refine((s) => Number.isFinite(Date.parse(s)), 'expected a date-time'),
});

/** The subset of GitHub's release this probe reads. */
const Release = z.looseObject({
  id: z.number(),
  tag_name: z.string().min(1),
  draft: z.boolean(),
  prerelease: z.boolean(),
  published_at: z.string().nullable(),
  assets: z.array(Asset),
});
type Release = z.infer<typeof Release>;

/** Pages of GET /releases read at most when walking the window (100 releases a page). */
const MAX_RELEASE_PAGES = 10;

/** `*` and `?` globs, case-insensitive. */
function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

const isPublished = (r: Release): r is Release & { published_at: string } => !r.draft && r.published_at !== null && Number.isFinite(Date.parse(r.published_at));

/** Why a refusal left the repository unknown. */
function refusal(err: unknown): string | undefined {
  if (err instanceof NotFoundError) return 'GitHub answered 404: the repository does not exist or the credential may not see it (needs Contents: read)';
  if (err instanceof GithubPermissionError) return err.message;
  return undefined;
}

/** Downloads and checks one asset; a refusal, cap or redirect problem is `unknown` naming it. Transient failures propagate (the run is retried). */
async function checkAsset(gh: GithubClient, owner: string, repo: string, asset: z.infer<typeof Asset>, params: Params): Promise<AssetCheck> {
  if (asset.state !== 'uploaded') return { state: 'unknown', reason: `its upload is not complete (state "${asset.state}")` };
  if (asset.size > params.maxAssetBytes) return { state: 'unknown', reason: `it is ${asset.size} bytes, larger than maxAssetBytes (${params.maxAssetBytes}); not downloaded` };
  let bytes: Buffer;
  try {
    bytes = await gh.download('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', { owner, repo, asset_id: asset.id }, {
      maxBytes: params.maxAssetBytes,
      redirectHosts: params.downloadHosts,
    });
  } catch (err) {
    if (err instanceof GithubDownloadTooLargeError) return { state: 'unknown', reason: `the download is larger than maxAssetBytes (${params.maxAssetBytes}); not read` };
    if (err instanceof GithubOriginError) {
      return { state: 'unknown', reason: `the download redirected to ${err.refusedOrigin}, which is not in downloadHosts (${params.downloadHosts.join(', ')}): add its host if it is GitHub's storage` };
    }
    if (err instanceof GithubPermissionError || err instanceof GithubResponseError) return { state: 'unknown', reason: `the download failed: ${err.message}` };
    throw err;
  }
  const check = checkSbom(bytes);
  return check.valid ? { state: 'valid', format: check.format, version: check.version, packages: check.packages } : { state: 'invalid', problem: check.problem };
}

async function observeRelease(gh: GithubClient, owner: string, repo: string, r: Release & { published_at: string }, latest: boolean, params: Params, patterns: RegExp[]): Promise<ReleaseObservation> {
  const matching = r.assets.filter((a) => patterns.some((p) => p.test(a.name))).sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at) || a.name.localeCompare(b.name));
  const examined = matching.slice(0, params.maxAssetsPerRelease);
  const deadline = Date.parse(r.published_at) + params.maxHoursAfterRelease * 3_600_000;
  const sbomAssets: AssetObservation[] = [];
  // The on-time ones first: once one is valid, the rest need no download.
  const order = [...examined].sort((a, b) => Number(Date.parse(a.created_at) > deadline) - Number(Date.parse(b.created_at) > deadline));
  let settled = false;
  for (const a of order) {
    const check: AssetCheck = settled ? { state: 'unknown', reason: 'not downloaded: another SBOM asset of this release already passed' } : await checkAsset(gh, owner, repo, a, params);
    if (check.state === 'valid' && Date.parse(a.created_at) <= deadline) settled = true;
    sbomAssets.push({ name: a.name, createdAt: a.created_at, size: a.size, check });
  }
  return {
    tag: r.tag_name,
    publishedAt: r.published_at,
    prerelease: r.prerelease,
    latest,
    sbomAssets,
    unexamined: matching.length - examined.length,
    otherAssets: r.assets.filter((a) => !matching.includes(a)).slice(0, 10).map((a) => a.name),
  };
}

/** Lists releases newest first, stopping at the first page that reaches past `since` (or after one page when `since` is undefined). */
async function listReleases(gh: GithubClient, owner: string, repo: string, since: number | undefined): Promise<Release[]> {
  const out: Release[] = [];
  for (let page = 1; page <= MAX_RELEASE_PAGES; page++) {
    const items = await gh.rest('GET /repos/{owner}/{repo}/releases', { owner, repo, per_page: since === undefined ? 10 : 100, page }, z.array(Release));
    out.push(...items);
    if (since === undefined || items.length < 100) break;
    const oldest = items.filter(isPublished).map((r) => Date.parse(r.published_at));
    if (oldest.length > 0 && Math.min(...oldest) < since) break;
  }
  return out;
}

async function observeRepo(gh: GithubClient, fullName: string, params: Params, now: Date): Promise<RepoObservation> {
  const [owner, repo] = fullName.split('/') as [string, string];
  const patterns = params.assetPatterns.map(globToRegExp);
  let latest: Release | undefined;
  try {
    latest = await gh.rest('GET /repos/{owner}/{repo}/releases/latest', { owner, repo }, Release);
  } catch (err) {
    if (!(err instanceof NotFoundError)) {
      const why = refusal(err);
      if (why !== undefined) return { repo: fullName, unreadable: why, releases: [] };
      throw err;
    }
  }
  const since = params.allReleasesInWindow ? now.getTime() - params.windowDays * 86_400_000 : undefined;
  let listed: Release[] = [];
  if (latest === undefined || since !== undefined) {
    try {
      listed = await listReleases(gh, owner, repo, since);
    } catch (err) {
      const why = refusal(err);
      if (why !== undefined) return { repo: fullName, unreadable: why, releases: [] };
      throw err;
    }
  }
  const judged: Array<{ release: Release & { published_at: string }; latest: boolean }> = [];
  if (latest && isPublished(latest)) judged.push({ release: latest, latest: true });
  if (since !== undefined) {
    for (const r of listed) {
      if (!isPublished(r) || Date.parse(r.published_at) < since || (r.prerelease && !params.includePrereleases)) continue;
      if (judged.some((j) => j.release.id === r.id)) continue;
      judged.push({ release: r, latest: false });
    }
  }
  if (judged.length === 0) return { repo: fullName, releases: [], ...(listed.length > 0 ? { onlyDraftsOrPrereleases: true } : {}) };
  const releases: ReleaseObservation[] = [];
  for (const j of judged) releases.push(await observeRelease(gh, owner, repo, j.release, j.latest, params, patterns));
  return { repo: fullName, releases };
}

/** Reads every listed repository of the target, one after the other (the client paces the requests). */
export async function collectReleaseSbom(ctx: CollectContext<GithubTarget, Params>): Promise<ReleaseSbomObservation> {
  const gh = githubClient(ctx.target.spec, { signal: ctx.signal, log: ctx.log, redis: ctx.redis });
  const repos: RepoObservation[] = [];
  for (const fullName of ctx.target.spec.repos) repos.push(await observeRepo(gh, fullName, ctx.params, ctx.now));
  return { target: ctx.target.name, repos };
}
