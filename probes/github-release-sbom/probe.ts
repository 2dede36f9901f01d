import { z } from 'zod';
import type { GithubTarget } from '../../src/config/schema.js';
import { defineProbe, type Finding } from '../../src/probe/contract.js';

/** Default storage hosts GitHub.com redirects release-asset downloads to (signed URLs). */
export const GITHUB_ASSET_HOSTS = ['objects.githubusercontent.com', 'release-assets.githubusercontent.com', 'github-releases.githubusercontent.com'] as const;

/** The probe's params, validated at config load time. */
export const Params = z.strictObject({
  /** Asset name globs (`*`, `?`, case-insensitive) that count as an SBOM. */
  assetPatterns: z.array(z.string().min(1)).min(1, 'list at least one asset name pattern').default(['*.spdx.json', '*.cdx.json', '*.bom.json']),
  /** Hours after the release's `published_at` by which the SBOM asset must be uploaded (its `created_at`). Default 48. */
  maxHoursAfterRelease: z.number().positive().default(48),
  /** Judge every release published in the last `windowDays`, not only the latest. Default false. */
  allReleasesInWindow: z.boolean().default(false),
  /** The window of `allReleasesInWindow`, days. Default 30. */
  windowDays: z.number().int().min(1).max(366).default(30),
  /** Prereleases count as releases (in the window; GitHub's "latest" never is one). Default false. */
  includePrereleases: z.boolean().default(false),
  /** A repository with no published release: `not_applicable` (default) or `unknown`. */
  noRelease: z.enum(['not_applicable', 'unknown']).default('not_applicable'),
  /** Largest SBOM asset downloaded, bytes. Default 20 MiB. */
  maxAssetBytes: z.number().int().min(1024).max(200 * 1024 * 1024).default(20 * 1024 * 1024),
  /** Matching assets examined per release (the newest first). Default 5. */
  maxAssetsPerRelease: z.number().int().min(1).max(20).default(5),
  /**
   * Hosts (`host` or `host:port`) a download redirect may go to: GitHub's signed storage URLs. The
   * credential is never sent there. GitHub Enterprise Server: add its storage host if it is not the API host.
   */
  downloadHosts: z.array(z.string().regex(/^[a-z0-9.-]+(:\d{1,5})?$/i, 'expected a host name, optionally with :port')).default([...GITHUB_ASSET_HOSTS]),
});
export type Params = z.output<typeof Params>;

/** What one matching asset turned out to be. */
export type AssetCheck =
  | { state: 'valid'; format: 'SPDX' | 'CycloneDX'; version: string; packages: number }
  | { state: 'invalid'; problem: string }
  /** Could not be read (too large, download refused or failed, not fully uploaded). */
  | { state: 'unknown'; reason: string };

export interface AssetObservation {
  name: string;
  /** Upload time (the asset's `created_at`). */
  createdAt: string;
  size: number;
  check: AssetCheck;
}

export interface ReleaseObservation {
  tag: string;
  publishedAt: string;
  prerelease: boolean;
  /** Whether this is GitHub's "latest" release of the repository. */
  latest: boolean;
  /** Assets whose name matches `assetPatterns`, newest first (at most `maxAssetsPerRelease` examined). */
  sbomAssets: AssetObservation[];
  /** Matching assets beyond `maxAssetsPerRelease`, not examined. */
  unexamined: number;
  /** Names of the other assets (for the message), at most 10. */
  otherAssets: string[];
}

export interface RepoObservation {
  repo: string;
  /** Why the releases could not be listed (the repository is then unknown). */
  unreadable?: string;
  /** Published, non-draft releases to judge: the latest, and with `allReleasesInWindow` those in the window. */
  releases: ReleaseObservation[];
  /** Releases exist but none is published as a full release (drafts or prereleases only). */
  onlyDraftsOrPrereleases?: boolean;
}

/** What collect hands to evaluate: plain JSON. */
export interface ReleaseSbomObservation {
  target: string;
  repos: RepoObservation[];
}

const HOUR = 3_600_000;

function hours(ms: number): string {
  const h = ms / HOUR;
  return h >= 10 ? `${Math.round(h)} h` : `${h.toFixed(1)} h`;
}

/** The verdict on one release: see README.md. */
function judgeRelease(repo: string, r: ReleaseObservation, params: Params, now: Date): Finding {
  const resource = `${repo}@${r.tag}`;
  const published = Date.parse(r.publishedAt);
  const deadline = published + params.maxHoursAfterRelease * HOUR;
  const details: Record<string, unknown> = { publishedAt: r.publishedAt, latest: r.latest, sbomAssets: r.sbomAssets.map((a) => ({ name: a.name, createdAt: a.createdAt, state: a.check.state })) };
  const onTime = (a: AssetObservation): boolean => Date.parse(a.createdAt) <= deadline;
  const valid = r.sbomAssets.filter((a) => a.check.state === 'valid');
  const good = valid.find(onTime);
  if (good && good.check.state === 'valid') {
    return {
      resource,
      outcome: 'pass',
      message: `${resource} has SBOM ${good.name} (${good.check.format} ${good.check.version}, ${good.check.packages} package${good.check.packages === 1 ? '' : 's'}), uploaded ${hours(Math.max(0, Date.parse(good.createdAt) - published))} after the release`,
      details,
    };
  }
  const unknown = r.sbomAssets.find((a) => a.check.state === 'unknown');
  if (unknown && unknown.check.state === 'unknown') {
    return { resource, outcome: 'unknown', message: `${resource}: could not check SBOM asset ${unknown.name}: ${unknown.check.reason}`, details };
  }
  const late = valid[0];
  if (late) {
    return {
      resource,
      outcome: 'fail',
      message: `${resource}: SBOM ${late.name} was uploaded ${hours(Date.parse(late.createdAt) - published)} after the release, later than ${params.maxHoursAfterRelease} h: generate and attach the SBOM in the release workflow`,
      details,
    };
  }
  const invalid = r.sbomAssets.find((a) => a.check.state === 'invalid');
  if (invalid && invalid.check.state === 'invalid') {
    return { resource, outcome: 'fail', message: `${resource}: SBOM asset ${invalid.name} rejected: ${invalid.check.problem}; regenerate it as SPDX 2.3 or CycloneDX 1.5+ JSON`, details };
  }
  if (r.unexamined > 0) {
    return { resource, outcome: 'unknown', message: `${resource}: ${r.unexamined} more SBOM-named assets were not examined (maxAssetsPerRelease)`, details };
  }
  // No SBOM asset at all: not late while the deadline has not passed.
  if (now.getTime() < deadline) {
    return {
      resource,
      outcome: 'not_applicable',
      message: `${resource} was published ${hours(now.getTime() - published)} ago and has no SBOM asset yet; it is due within ${params.maxHoursAfterRelease} h of the release`,
      details,
    };
  }
  const others = r.otherAssets.length > 0 ? ` (assets: ${r.otherAssets.join(', ')})` : ' (no assets)';
  return {
    resource,
    outcome: 'fail',
    message: `${resource} has no SBOM asset matching ${params.assetPatterns.join(', ')}${others}: attach an SPDX 2.3 or CycloneDX 1.5+ JSON SBOM to the release`,
    details,
  };
}

/** The pure verdict: one finding per judged release, or per repository when there is nothing to judge. */
export function evaluateReleaseSbom(o: ReleaseSbomObservation, params: Params, now: Date): Finding[] {
  const findings: Finding[] = [];
  for (const repo of o.repos) {
    if (repo.unreadable !== undefined) {
      findings.push({ resource: repo.repo, outcome: 'unknown', message: `cannot list the releases of ${repo.repo}: ${repo.unreadable}` });
      continue;
    }
    if (repo.releases.length === 0) {
      const why = repo.onlyDraftsOrPrereleases
        ? `${repo.repo} has only draft${params.includePrereleases ? '' : ' or prerelease'} releases, no published release to check`
        : `${repo.repo} has no published release, so there is no SBOM to check`;
      findings.push({ resource: repo.repo, outcome: params.noRelease, message: why });
      continue;
    }
    for (const r of repo.releases) findings.push(judgeRelease(repo.repo, r, params, now));
  }
  if (o.repos.length === 0) findings.push({ resource: o.target, outcome: 'unknown', message: `target ${o.target} lists no repositories: list the released repositories under repos` });
  return findings;
}

export const probe = defineProbe<GithubTarget, Params, ReleaseSbomObservation>({
  id: 'github-release-sbom',
  title: 'Every GitHub release carries a valid SBOM, uploaded on time',
  source: 'github',
  controls: ['release-sbom'],
  schedule: '41 */6 * * *',
  docs: {
    checks:
      "For each repository listed under a `github[]` target's `repos`: GitHub's latest release (and, with `allReleasesInWindow`, every release published in the last `windowDays`) " +
      'has an asset matching `assetPatterns` (default `*.spdx.json`, `*.cdx.json`, `*.bom.json`), uploaded within `maxHoursAfterRelease` (default 48) of the release, ' +
      'that is SPDX 2.3 JSON or CycloneDX 1.5/1.6/1.7 JSON valid against the published JSON schema and names at least one package. ' +
      'One finding per release (`owner/repo@tag`); a repository without releases is `not_applicable` (or `unknown`, per `noRelease`); an asset that could not be downloaded is `unknown`.',
    permissions:
      'Read-only. Classic token: `repo` (private repositories) or none beyond public access. Fine-grained token or GitHub App: repository permission "Contents: read". ' +
      'Asset downloads follow GitHub\'s redirect to its storage host (`downloadHosts`) without the credential. Nothing is written.',
    remediation:
      'Generate the SBOM in the release workflow (e.g. `anchore/sbom-action`, `syft`, `cyclonedx-npm`, or GitHub\'s dependency-graph SBOM export) and upload it as a release asset named `*.spdx.json` or `*.cdx.json` within 48 hours. ' +
      'See probes/github-release-sbom/README.md.',
  },
  params: Params,
  targets(config) {
    return config.github.filter((t) => t.repos.length > 0).map((t) => ({ name: t.name, spec: t }));
  },
  // The I/O, the GitHub client stack and the JSON-schema validators load on the first run (collect.ts).
  async collect(ctx) {
    return (await import('./collect.js')).collectReleaseSbom(ctx);
  },
  evaluate(observation, params, now) {
    return evaluateReleaseSbom(observation, params, now);
  },
});
