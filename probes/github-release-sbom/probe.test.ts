/**
 * github-release-sbom: the pure verdict table-driven, the SBOM validator on real-world-shaped
 * documents, then collect → evaluate through the real Octokit client against the local GitHub
 * peer (GitHub's published release / release-asset payloads; downloads redirected to a separate
 * storage host, as github.com does).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resetGithubClientState } from '../../src/clients/github.js';
import { GithubTarget, VigilConfig } from '../../src/config/schema.js';
import type { Finding } from '../../src/probe/contract.js';
import { runProbe } from '../../src/probe/runner.js';
import { startGithubPeer, type GithubPeer, type PeerOrg } from '../../test/helpers/github-peer.js';
import { evaluateReleaseSbom, probe, type AssetObservation, type Params, type ReleaseObservation, type ReleaseSbomObservation } from './probe.js';
import { checkSbom } from './sbom.js';

const log = pino({ level: 'silent' });
const defaults: Params = probe.params.parse({});
const NOW = new Date('2026-11-25T12:00:00Z');
const TOKEN = 'ghp_release_sbom_token_01';
const env = { GH_SBOM: TOKEN };
const brief = (fs: Finding[]) => fs.map((f) => ({ resource: f.resource, outcome: f.outcome }));

const require = createRequire(import.meta.url);
/** GitHub's own SPDX 2.3 export (GET /repos/{o}/{r}/dependency-graph/sbom), from its published example. */
const githubSpdx = (): Record<string, unknown> =>
  (JSON.parse(readFileSync(require.resolve('@octokit/openapi/generated/api.github.com.json'), 'utf8')) as {
    components: { examples: Record<string, { value: { sbom: Record<string, unknown> } }> };
  }).components.examples['dependency-graph-export-sbom-response']!.value.sbom;
const cyclonedx15 = (): Record<string, unknown> => JSON.parse(readFileSync(new URL('./fixtures/webapp-1.4.0.cdx.json', import.meta.url), 'utf8')) as Record<string, unknown>;

describe('checkSbom', () => {
  it("GitHub's dependency-graph SPDX 2.3 export is valid and names its packages", () => {
    expect(checkSbom(Buffer.from(JSON.stringify(githubSpdx())))).toEqual({ valid: true, format: 'SPDX', version: '2.3', packages: 1 }); // rails; the described repository itself is not counted
  });
  it('a cyclonedx-npm CycloneDX 1.5 BOM is valid; nested components count', () => {
    expect(checkSbom(Buffer.from(JSON.stringify(cyclonedx15())))).toEqual({ valid: true, format: 'CycloneDX', version: '1.5', packages: 3 });
  });
  it('the same BOM as CycloneDX 1.6 validates against the 1.6 schema', () => {
    expect(checkSbom(Buffer.from(JSON.stringify({ ...cyclonedx15(), $schema: undefined, specVersion: '1.6' })))).toMatchObject({ valid: true, version: '1.6' });
  });
  const bad: Array<{ name: string; doc: unknown; says: string }> = [
    { name: 'a package without SPDXID', doc: { ...githubSpdx(), packages: [{ name: 'rails', downloadLocation: 'NOASSERTION' }] }, says: "/packages/0: must have required property 'SPDXID'" },
    { name: 'SPDX 2.2', doc: { ...githubSpdx(), spdxVersion: 'SPDX-2.2' }, says: 'only SPDX-2.3 JSON is accepted' },
    { name: 'SPDX with no package', doc: { ...githubSpdx(), packages: [] }, says: 'names no package' },
    { name: 'an unknown top-level SPDX field', doc: { ...githubSpdx(), vendorField: 1 }, says: 'must NOT have additional properties "vendorField"' },
    { name: 'CycloneDX 1.4', doc: { ...cyclonedx15(), specVersion: '1.4' }, says: 'CycloneDX 1.5, 1.6, 1.7 JSON is accepted' },
    { name: 'a CycloneDX component of an unknown type', doc: { ...cyclonedx15(), components: [{ type: 'gadget', name: 'x' }] }, says: '/components/0/type: must be equal to one of the allowed values' },
    { name: 'CycloneDX without components', doc: { ...cyclonedx15(), components: [] }, says: 'names no component' },
    { name: 'not JSON', doc: '<html>', says: 'not JSON' },
    { name: 'some other JSON', doc: { name: 'x' }, says: 'neither SPDX' },
  ];
  it('duplicate components are refused (uniqueItems, checked in linear time)', () => {
    const c = cyclonedx15() as { components: unknown[] };
    const got = checkSbom(Buffer.from(JSON.stringify({ ...c, components: [c.components[1], c.components[1]] })));
    expect(got.valid ? '' : got.problem).toBe('not valid CycloneDX 1.5: /components: must NOT have duplicate items');
  });
  it('a 20 000-component BOM validates in well under the run budget (Ajv uniqueItems would take minutes)', () => {
    const components = Array.from({ length: 20_000 }, (_, i) => ({ type: 'library', name: `pkg${i}`, version: `1.0.${i}`, 'bom-ref': `pkg${i}@1`, purl: `pkg:npm/pkg${i}@1.0.${i}` }));
    const t0 = performance.now();
    expect(checkSbom(Buffer.from(JSON.stringify({ ...cyclonedx15(), components, dependencies: [] })))).toMatchObject({ valid: true, packages: 20_000 });
    expect(performance.now() - t0).toBeLessThan(10_000);
  });
  it('a hostile, deeply nested CycloneDX document is invalid, not a crash', () => {
    // Built as text: JSON.stringify itself cannot nest this deep.
    const depth = 100_000;
    const nested = `${'[{"type":"library","name":"c","components":'.repeat(depth)}[]${'}]'.repeat(depth)}`;
    const text = JSON.stringify({ ...cyclonedx15(), components: 'HOLE' }).replace('"HOLE"', nested);
    const got = checkSbom(Buffer.from(text));
    expect(got).toMatchObject({ valid: false });
    expect(got.valid ? '' : got.problem).toMatch(/nested too deeply|not JSON/);
  });
  for (const c of bad) {
    it(`rejects ${c.name}`, () => {
      const got = checkSbom(Buffer.from(typeof c.doc === 'string' ? c.doc : JSON.stringify(c.doc)));
      expect(got.valid).toBe(false);
      expect(got.valid ? '' : got.problem).toContain(c.says);
    });
  }
});

describe('evaluate', () => {
  const asset = (over: Partial<AssetObservation> = {}): AssetObservation => ({
    name: 'app.spdx.json',
    createdAt: '2026-11-20T13:00:00Z',
    size: 1000,
    check: { state: 'valid', format: 'SPDX', version: '2.3', packages: 12 },
    ...over,
  });
  const release = (over: Partial<ReleaseObservation> = {}): ReleaseObservation => ({
    tag: 'v1.0.0',
    publishedAt: '2026-11-20T10:00:00Z',
    prerelease: false,
    latest: true,
    sbomAssets: [asset()],
    unexamined: 0,
    otherAssets: [],
    ...over,
  });
  const obs = (...releases: ReleaseObservation[]): ReleaseSbomObservation => ({ target: 't', repos: [{ repo: 'acme/app', releases }] });
  const cases: Array<{ name: string; o: ReleaseSbomObservation; params?: Partial<Params>; want: Array<Pick<Finding, 'resource' | 'outcome'>>; says?: string }> = [
    { name: 'valid SBOM uploaded 3 h after the release passes', o: obs(release()), want: [{ resource: 'acme/app@v1.0.0', outcome: 'pass' }], says: 'SPDX 2.3, 12 packages), uploaded 3.0 h after the release' },
    {
      name: 'valid SBOM uploaded 72 h after the release fails with the hours',
      o: obs(release({ sbomAssets: [asset({ createdAt: '2026-11-23T10:00:00Z' })] })),
      want: [{ resource: 'acme/app@v1.0.0', outcome: 'fail' }],
      says: 'uploaded 72 h after the release, later than 48 h',
    },
    { name: 'the deadline is a parameter', o: obs(release({ sbomAssets: [asset({ createdAt: '2026-11-23T10:00:00Z' })] })), params: { maxHoursAfterRelease: 96 }, want: [{ resource: 'acme/app@v1.0.0', outcome: 'pass' }] },
    {
      name: 'an invalid SBOM fails naming the schema error',
      o: obs(release({ sbomAssets: [asset({ check: { state: 'invalid', problem: "not valid SPDX 2.3: /packages/0: must have required property 'SPDXID'" } })] })),
      want: [{ resource: 'acme/app@v1.0.0', outcome: 'fail' }],
      says: "rejected: not valid SPDX 2.3: /packages/0: must have required property 'SPDXID'",
    },
    {
      name: 'no SBOM asset past the deadline fails naming the patterns and the assets',
      o: obs(release({ sbomAssets: [], otherAssets: ['app.tar.gz'] })),
      want: [{ resource: 'acme/app@v1.0.0', outcome: 'fail' }],
      says: 'has no SBOM asset matching *.spdx.json, *.cdx.json, *.bom.json (assets: app.tar.gz)',
    },
    {
      name: 'no SBOM asset yet, inside the deadline: not applicable, saying when it is due',
      o: obs(release({ publishedAt: '2026-11-25T02:00:00Z', sbomAssets: [] })),
      want: [{ resource: 'acme/app@v1.0.0', outcome: 'not_applicable' }],
      says: 'published 10 h ago and has no SBOM asset yet',
    },
    {
      name: 'a valid on-time SBOM beside an invalid one passes',
      o: obs(release({ sbomAssets: [asset({ name: 'a.cdx.json', check: { state: 'invalid', problem: 'not JSON' } }), asset()] })),
      want: [{ resource: 'acme/app@v1.0.0', outcome: 'pass' }],
    },
    {
      name: 'an asset that could not be downloaded is unknown, never pass or fail',
      o: obs(release({ sbomAssets: [asset({ check: { state: 'unknown', reason: 'the download is larger than maxAssetBytes (1024); not read' } })] })),
      want: [{ resource: 'acme/app@v1.0.0', outcome: 'unknown' }],
      says: 'maxAssetBytes',
    },
    {
      name: 'an unreadable asset beside a late valid one is unknown (it may be the on-time SBOM)',
      o: obs(release({ sbomAssets: [asset({ createdAt: '2026-11-23T10:00:00Z' }), asset({ name: 'b.cdx.json', check: { state: 'unknown', reason: 'download failed' } })] })),
      want: [{ resource: 'acme/app@v1.0.0', outcome: 'unknown' }],
    },
    {
      name: 'no release: not applicable by default, saying why',
      o: { target: 't', repos: [{ repo: 'acme/lib', releases: [] }] },
      want: [{ resource: 'acme/lib', outcome: 'not_applicable' }],
      says: 'acme/lib has no published release, so there is no SBOM to check',
    },
    { name: 'no release: unknown when noRelease says so', o: { target: 't', repos: [{ repo: 'acme/lib', releases: [] }] }, params: { noRelease: 'unknown' }, want: [{ resource: 'acme/lib', outcome: 'unknown' }] },
    { name: 'releases unreadable: unknown naming the reason', o: { target: 't', repos: [{ repo: 'acme/x', unreadable: 'GitHub answered 404', releases: [] }] }, want: [{ resource: 'acme/x', outcome: 'unknown' }], says: 'cannot list the releases of acme/x: GitHub answered 404' },
    { name: 'every judged release gets its own finding', o: obs(release(), release({ tag: 'v0.9.0', latest: false, sbomAssets: [] })), want: [{ resource: 'acme/app@v1.0.0', outcome: 'pass' }, { resource: 'acme/app@v0.9.0', outcome: 'fail' }] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = evaluateReleaseSbom(c.o, { ...defaults, ...c.params }, NOW);
      expect(brief(got)).toEqual(c.want);
      if (c.says) expect(got.map((f) => f.message).join('\n')).toContain(c.says);
    });
  }
});

describe('collect → evaluate against the GitHub peer', () => {
  let peer: GithubPeer;
  const spdx = JSON.stringify(githubSpdx());
  const cdx = JSON.stringify(cyclonedx15());
  const invalidSpdx = JSON.stringify({ ...githubSpdx(), packages: [{ name: 'rails', downloadLocation: 'NOASSERTION' }] });
  const tarball = { name: 'app-1.0.0.tar.gz', createdAt: '2026-11-20T10:05:00Z', body: 'not really a tarball', contentType: 'application/gzip' };
  const org: PeerOrg = {
    login: 'acme',
    repos: [
      { name: 'webapp', releases: [{ tag: 'v1.4.0', publishedAt: '2026-11-20T10:00:00Z', assets: [tarball, { name: 'webapp-1.4.0.spdx.json', createdAt: '2026-11-20T13:00:00Z', body: spdx }] }] },
      { name: 'api', releases: [{ tag: 'v2.0.0', publishedAt: '2026-11-21T08:00:00Z', assets: [{ name: 'api-2.0.0.cdx.json', createdAt: '2026-11-21T08:20:00Z', body: cdx }] }] },
      { name: 'broken', releases: [{ tag: 'v3.1.0', publishedAt: '2026-11-21T08:00:00Z', assets: [{ name: 'broken.spdx.json', createdAt: '2026-11-21T09:00:00Z', body: invalidSpdx }] }] },
      { name: 'nosbom', releases: [{ tag: 'v0.3.0', publishedAt: '2026-11-15T08:00:00Z', assets: [tarball] }] },
      { name: 'late', releases: [{ tag: 'v5.0.0', publishedAt: '2026-11-18T08:00:00Z', assets: [{ name: 'late.spdx.json', createdAt: '2026-11-21T08:00:00Z', body: spdx }] }] },
      { name: 'norelease' },
      { name: 'drafts', releases: [{ tag: 'v9.0.0-draft', publishedAt: null, assets: [] }] },
      {
        name: 'window',
        releases: [
          { tag: 'v1.2.0', publishedAt: '2026-11-24T08:00:00Z', assets: [{ name: 'w.cdx.json', createdAt: '2026-11-24T09:00:00Z', body: cdx }] },
          { tag: 'v1.1.0', publishedAt: '2026-11-10T08:00:00Z', assets: [tarball] },
          { tag: 'v1.0.0', publishedAt: '2026-08-01T08:00:00Z', assets: [tarball] },
        ],
      },
      { name: 'uploading', releases: [{ tag: 'v1.0.0', publishedAt: '2026-11-20T10:00:00Z', assets: [{ name: 'u.spdx.json', createdAt: '2026-11-20T11:00:00Z', body: '', state: 'open' }] }] },
      { name: 'huge', releases: [{ tag: 'v1.0.0', publishedAt: '2026-11-20T10:00:00Z', assets: [{ name: 'huge.spdx.json', createdAt: '2026-11-20T11:00:00Z', body: spdx, size: 500 }] }] },
    ],
  };
  const target = (repos: string[], apiUrl: string): GithubTarget =>
    GithubTarget.parse({ name: 'acme-releases', repos, apiUrl, allowInsecureHttp: true, auth: { token: { env: 'GH_SBOM' } } });
  async function run(repos: string[], params: Partial<Params> = {}, apiUrl = peer.apiUrl) {
    const spec = target(repos, apiUrl);
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      const outcome = await runProbe({
        probe,
        target: { name: spec.name, spec },
        params: { ...defaults, downloadHosts: [peer.assetHost.host], ...params },
        runId: 'run-sbom',
        scheduledFor: NOW,
        timeoutMs: 20_000,
        log,
        now: () => NOW,
      });
      return outcome.result;
    } finally {
      for (const k of Object.keys(env)) if (!(k in saved)) delete process.env[k];
    }
  }

  beforeAll(async () => {
    peer = await startGithubPeer();
    peer.addToken(TOKEN, { login: 'release-bot', repoPermission: 'read', scopes: 'repo' });
    peer.addOrg(org);
  });
  afterAll(async () => {
    await peer?.close();
  });
  beforeEach(() => {
    peer.reset();
    peer.assetHost.downloads.length = 0;
    resetGithubClientState();
  });

  it('a release with a valid SPDX 2.3 SBOM passes; the download went to the storage host without the token', async () => {
    const result = await run(['acme/webapp']);
    expect(result.error).toBeUndefined();
    expect(brief(result.findings)).toEqual([{ resource: 'acme/webapp@v1.4.0', outcome: 'pass' }]);
    expect(result.findings[0]?.message).toBe('acme/webapp@v1.4.0 has SBOM webapp-1.4.0.spdx.json (SPDX 2.3, 1 package), uploaded 3.0 h after the release');
    expect(peer.requests.map((r) => `${r.status} ${r.path}`)).toEqual(['200 /repos/acme/webapp/releases/latest', `302 /repos/acme/webapp/releases/assets/${/\d+$/.exec(peer.requests[1]?.path ?? '')?.[0]}`]);
    expect(peer.assetHost.downloads).toHaveLength(1);
    expect(peer.assetHost.downloads[0]?.authorization).toBe(false);
  });

  it('a release with a valid CycloneDX 1.5 SBOM passes', async () => {
    const result = await run(['acme/api']);
    expect(result.findings).toMatchObject([{ resource: 'acme/api@v2.0.0', outcome: 'pass', message: expect.stringContaining('(CycloneDX 1.5, 3 packages)') }]);
  });

  it('an invalid SBOM fails naming the first schema error', async () => {
    const result = await run(['acme/broken']);
    expect(result.findings).toMatchObject([{ resource: 'acme/broken@v3.1.0', outcome: 'fail', message: expect.stringContaining("/packages/0: must have required property 'SPDXID'") }]);
  });

  it('a release without an SBOM fails; one uploaded too late fails with the hours', async () => {
    const result = await run(['acme/nosbom', 'acme/late']);
    expect(brief(result.findings)).toEqual([
      { resource: 'acme/nosbom@v0.3.0', outcome: 'fail' },
      { resource: 'acme/late@v5.0.0', outcome: 'fail' },
    ]);
    expect(result.findings[0]?.message).toContain('has no SBOM asset matching *.spdx.json, *.cdx.json, *.bom.json (assets: app-1.0.0.tar.gz)');
    expect(result.findings[1]?.message).toContain('uploaded 72 h after the release, later than 48 h');
    // The tarball is never downloaded: only the SBOM-named asset of the late release.
    expect(peer.assetHost.downloads).toHaveLength(1);
  });

  it('no release, or drafts only: not applicable, saying why', async () => {
    const result = await run(['acme/norelease', 'acme/drafts']);
    expect(result.findings).toEqual([
      { resource: 'acme/norelease', outcome: 'not_applicable', message: 'acme/norelease has no published release, so there is no SBOM to check' },
      { resource: 'acme/drafts', outcome: 'not_applicable', message: 'acme/drafts has only draft or prerelease releases, no published release to check' },
    ]);
  });

  it('allReleasesInWindow judges every release published in the window, not older ones', async () => {
    const only = await run(['acme/window']);
    expect(brief(only.findings)).toEqual([{ resource: 'acme/window@v1.2.0', outcome: 'pass' }]);
    const all = await run(['acme/window'], { allReleasesInWindow: true, windowDays: 30 });
    expect(brief(all.findings)).toEqual([
      { resource: 'acme/window@v1.2.0', outcome: 'pass' },
      { resource: 'acme/window@v1.1.0', outcome: 'fail' },
    ]);
  });

  it('a redirect to a host outside downloadHosts is refused: unknown naming the host, the storage host never reached', async () => {
    const result = await run(['acme/webapp'], { downloadHosts: ['objects.githubusercontent.com'] });
    expect(result.findings).toMatchObject([{ resource: 'acme/webapp@v1.4.0', outcome: 'unknown', message: expect.stringContaining(`redirected to ${peer.assetHost.origin}, which is not in downloadHosts`) }]);
    expect(peer.assetHost.downloads).toHaveLength(0);
  });

  it('an asset larger than the cap is unknown naming the cap — by its declared size, and by what actually arrives', async () => {
    const declared = await run(['acme/webapp'], { maxAssetBytes: 1024 });
    expect(declared.findings).toMatchObject([{ outcome: 'unknown', message: expect.stringContaining('larger than maxAssetBytes (1024); not downloaded') }]);
    expect(peer.assetHost.downloads).toHaveLength(0);
    // huge.spdx.json claims 500 bytes but serves the whole document.
    const lying = await run(['acme/huge'], { maxAssetBytes: 1024 });
    expect(lying.findings).toMatchObject([{ outcome: 'unknown', message: expect.stringContaining('the download is larger than maxAssetBytes (1024); not read') }]);
  });

  it('an asset still uploading is unknown, and not downloaded', async () => {
    const result = await run(['acme/uploading']);
    expect(result.findings).toMatchObject([{ resource: 'acme/uploading@v1.0.0', outcome: 'unknown', message: expect.stringContaining('its upload is not complete (state "open")') }]);
    expect(peer.assetHost.downloads).toHaveLength(0);
  });

  it('GitHub Enterprise Server layout (/api/v3): same verdict', async () => {
    const result = await run(['acme/api'], {}, peer.ghesApiUrl);
    expect(brief(result.findings)).toEqual([{ resource: 'acme/api@v2.0.0', outcome: 'pass' }]);
    expect(peer.requests.every((r) => r.path.startsWith('/api/v3/repos/acme/api/releases'))).toBe(true);
  });

  it('a repository the token cannot see is unknown, the others still judged', async () => {
    const result = await run(['acme/missing', 'acme/api']);
    expect(brief(result.findings)).toEqual([
      { resource: 'acme/missing', outcome: 'unknown' },
      { resource: 'acme/api@v2.0.0', outcome: 'pass' },
    ]);
    expect(result.findings[0]?.message).toContain('GitHub answered 404');
  });

  it('a malformed release payload is a run error, never a verdict', async () => {
    peer.respondNext(/\/releases\/latest$/, { status: 200, body: { tag_name: 'v1', assets: 'none' } });
    const result = await run(['acme/webapp']);
    expect(result.error?.class).toBe('MalformedResponseError');
    expect(result.findings).toEqual([]);
  });

  it('targets: github entries that list repos', () => {
    const config = VigilConfig.parse({
      github: [
        { name: 'a', org: 'acme', auth: { token: { env: 'T' } } },
        { name: 'b', repos: ['acme/api'], auth: { token: { env: 'T' } } },
      ],
    });
    expect(probe.targets(config).map((t) => t.name)).toEqual(['b']);
  });
});
