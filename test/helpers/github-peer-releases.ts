/**
 * Releases, release assets and repository contents for the local GitHub peer (github-peer.ts),
 * as the probes github-release-sbom and evidence-cadence read them through the real Octokit:
 *
 * - `GET /repos/{o}/{r}/releases`, `/releases/latest`, `/releases/assets/{id}` — payloads are
 *   GitHub's published `release` / `release-asset` examples (`@octokit/openapi`) reshaped per
 *   case. `latest` is GitHub's: the newest published release that is not a draft or prerelease.
 * - an asset download (`Accept: application/octet-stream`) answers 302 to a signed URL on a
 *   separate **storage host** (another loopback port, so another origin), as github.com
 *   redirects to objects.githubusercontent.com; the storage host logs whether a credential
 *   reached it.
 * - `GET /repos/{o}/{r}/contents/{path}` — a directory listing or a base64 file, shaped from the
 *   `content-file` / `content-file-response-if-content-is-a-directory` examples; `?ref=` must name
 *   a branch of the repository.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A release asset as a test describes it. */
export interface PeerAsset {
  name: string;
  /** Upload time (`created_at`). */
  createdAt: string;
  body: string | Buffer;
  /** Default `uploaded`. */
  state?: 'uploaded' | 'open';
  /** `size` as GitHub reports it; default the body's length. */
  size?: number;
  contentType?: string;
}

/** A release as a test describes it; list them newest first. */
export interface PeerRelease {
  tag: string;
  /** `null` for a draft. */
  publishedAt: string | null;
  prerelease?: boolean;
  assets?: PeerAsset[];
}

/** What the peer's repository model holds for these endpoints. */
export interface ReleaseRepoModel {
  releases?: PeerRelease[];
  /** Files by path (`reviews/2026-q3.md` → content); directories are implied by the paths. */
  files?: Record<string, string | Buffer>;
}

/** The storage host asset downloads are redirected to. */
export interface AssetHost {
  /** `127.0.0.1:PORT` — what `downloadHosts` must list. */
  readonly host: string;
  readonly origin: string;
  /** Every download served: path, and whether an Authorization header reached the host. */
  readonly downloads: Array<{ path: string; authorization: boolean }>;
  /** A signed URL serving `body`. */
  sign(body: Buffer, contentType: string): string;
  close(): Promise<void>;
}

export async function startAssetHost(): Promise<AssetHost> {
  const blobs = new Map<string, { body: Buffer; contentType: string }>();
  const downloads: Array<{ path: string; authorization: boolean }> = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://storage');
    downloads.push({ path: url.pathname, authorization: req.headers.authorization !== undefined });
    const blob = blobs.get(url.searchParams.get('sig') ?? '');
    if (!blob) {
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AuthenticationFailed</Code></Error>');
      return;
    }
    res.writeHead(200, { 'content-type': blob.contentType, 'content-length': String(blob.body.length) });
    res.end(blob.body);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const origin = `http://127.0.0.1:${port}`;
  return {
    host: `127.0.0.1:${port}`,
    origin,
    downloads,
    sign(body, contentType) {
      const sig = randomBytes(12).toString('hex');
      blobs.set(sig, { body, contentType });
      return `${origin}/github-production-release-asset/${sig.slice(0, 6)}?sig=${sig}&X-Amz-Expires=300`;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** What the peer lends these handlers. */
export interface ReleaseContext {
  base: string;
  fullName: string;
  branches: string[];
  defaultBranch: string;
  numericId(key: string): number;
  example(name: string): unknown;
  assetHost: AssetHost;
}

export interface RestAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const notFound: RestAnswer = { status: 404, body: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest', status: '404' } };

const assetBytes = (a: PeerAsset): Buffer => (typeof a.body === 'string' ? Buffer.from(a.body, 'utf8') : a.body);

function assetPayload(ctx: ReleaseContext, r: PeerRelease, a: PeerAsset): Record<string, unknown> {
  const t = ctx.example('release-asset') as Record<string, unknown>;
  const id = ctx.numericId(`asset:${ctx.fullName}:${r.tag}:${a.name}`);
  return {
    ...t,
    id,
    url: `${ctx.base}/repos/${ctx.fullName}/releases/assets/${id}`,
    browser_download_url: `https://github.com/${ctx.fullName}/releases/download/${r.tag}/${a.name}`,
    name: a.name,
    label: null,
    state: a.state ?? 'uploaded',
    content_type: a.contentType ?? 'application/json',
    size: a.size ?? assetBytes(a).length,
    created_at: a.createdAt,
    updated_at: a.createdAt,
  };
}

function releasePayload(ctx: ReleaseContext, r: PeerRelease): Record<string, unknown> {
  const t = ctx.example('release') as Record<string, unknown>;
  const id = ctx.numericId(`release:${ctx.fullName}:${r.tag}`);
  return {
    ...t,
    id,
    url: `${ctx.base}/repos/${ctx.fullName}/releases/${id}`,
    html_url: `https://github.com/${ctx.fullName}/releases/tag/${r.tag}`,
    assets_url: `${ctx.base}/repos/${ctx.fullName}/releases/${id}/assets`,
    tag_name: r.tag,
    name: r.tag,
    draft: r.publishedAt === null,
    prerelease: r.prerelease ?? false,
    created_at: r.publishedAt ?? '2026-01-01T00:00:00Z',
    published_at: r.publishedAt,
    assets: (r.assets ?? []).map((a) => assetPayload(ctx, r, a)),
  };
}

function page<T>(items: T[], url: URL, ctx: ReleaseContext, path: string): { items: T[]; link?: string } {
  const perPage = Math.min(100, Math.max(1, Number(url.searchParams.get('per_page') ?? 30) || 30));
  const n = Math.max(1, Number(url.searchParams.get('page') ?? 1) || 1);
  const slice = items.slice((n - 1) * perPage, n * perPage);
  if (n * perPage >= items.length) return { items: slice };
  return { items: slice, link: `<${ctx.base}${path}?per_page=${perPage}&page=${n + 1}>; rel="next"` };
}

/**
 * Answers the release and contents routes of one repository (`rest` is the path after
 * `/repos/{o}/{r}`), or `undefined` when the route is not one of them. `accept` is the request's
 * Accept header: an octet-stream asset request is redirected to the storage host.
 */
export function releasesAndContents(rest: string, url: URL, accept: string, repo: ReleaseRepoModel, ctx: ReleaseContext, fullPath: string): RestAnswer | undefined {
  let m: RegExpExecArray | null;
  const releases = repo.releases ?? [];
  if (rest === '/releases') {
    const { items, link } = page(releases, url, ctx, fullPath);
    return { status: 200, body: items.map((r) => releasePayload(ctx, r)), headers: link ? { link } : {} };
  }
  if (rest === '/releases/latest') {
    const latest = releases.find((r) => r.publishedAt !== null && !r.prerelease);
    return latest ? { status: 200, body: releasePayload(ctx, latest) } : notFound;
  }
  if ((m = /^\/releases\/assets\/(\d+)$/.exec(rest))) {
    const id = Number(m[1]);
    for (const r of releases) {
      for (const a of r.assets ?? []) {
        if (ctx.numericId(`asset:${ctx.fullName}:${r.tag}:${a.name}`) !== id) continue;
        if (/application\/octet-stream/i.test(accept)) {
          return { status: 302, body: '', headers: { location: ctx.assetHost.sign(assetBytes(a), a.contentType ?? 'application/octet-stream') } };
        }
        return { status: 200, body: assetPayload(ctx, r, a) };
      }
    }
    return notFound;
  }
  if ((m = /^\/contents(?:\/(.*))?$/.exec(rest))) {
    const ref = url.searchParams.get('ref');
    if (ref !== null && !ctx.branches.includes(ref)) {
      return { status: 404, body: { message: `No commit found for the ref ${ref}`, documentation_url: 'https://docs.github.com/rest/repos/contents#get-repository-content', status: '404' } };
    }
    const want = decodeURIComponent(m[1] ?? '').replace(/^\/+|\/+$/g, '');
    const files = repo.files ?? {};
    const links = (p: string, kind: 'blob' | 'tree'): Record<string, unknown> => ({
      url: `${ctx.base}/repos/${ctx.fullName}/contents/${p}`,
      html_url: `https://github.com/${ctx.fullName}/${kind}/${ref ?? ctx.defaultBranch}/${p}`,
      git_url: `${ctx.base}/repos/${ctx.fullName}/git/${kind === 'blob' ? 'blobs' : 'trees'}/${ctx.numericId(`sha:${p}`).toString(16).padStart(40, '0')}`,
    });
    const sha = (p: string): string => ctx.numericId(`sha:${p}`).toString(16).padStart(40, '0');
    const file = files[want];
    if (file !== undefined) {
      const bytes = typeof file === 'string' ? Buffer.from(file, 'utf8') : file;
      const t = ctx.example('content-file') as Record<string, unknown>;
      const l = links(want, 'blob');
      return {
        status: 200,
        body: {
          ...t,
          ...l,
          name: want.split('/').pop(),
          path: want,
          sha: sha(want),
          size: bytes.length,
          encoding: 'base64',
          // GitHub wraps the base64 at 60 characters.
          content: (bytes.toString('base64').match(/.{1,60}/g) ?? []).join('\n') + '\n',
          download_url: `https://raw.githubusercontent.com/${ctx.fullName}/${ref ?? ctx.defaultBranch}/${want}`,
          _links: { self: l.url, git: l.git_url, html: l.html_url },
        },
      };
    }
    const prefix = want === '' ? '' : `${want}/`;
    const children = new Map<string, { type: 'file' | 'dir'; size: number }>();
    for (const [p, content] of Object.entries(files)) {
      if (!p.startsWith(prefix)) continue;
      const restOf = p.slice(prefix.length);
      const [head, ...tail] = restOf.split('/');
      if (!head) continue;
      children.set(head, tail.length > 0 ? { type: 'dir', size: 0 } : { type: 'file', size: (typeof content === 'string' ? Buffer.from(content, 'utf8') : content).length });
    }
    if (children.size === 0) return notFound;
    const template = (ctx.example('content-file-response-if-content-is-a-directory') as Array<Record<string, unknown>>)[0] as Record<string, unknown>;
    const body = [...children].sort(([a], [b]) => a.localeCompare(b)).map(([name, c]) => {
      const p = `${prefix}${name}`;
      const l = links(p, c.type === 'file' ? 'blob' : 'tree');
      return {
        ...template,
        ...l,
        type: c.type,
        size: c.size,
        name,
        path: p,
        sha: sha(p),
        download_url: c.type === 'file' ? `https://raw.githubusercontent.com/${ctx.fullName}/${ref ?? ctx.defaultBranch}/${p}` : null,
        _links: { self: l.url, git: l.git_url, html: l.html_url },
      };
    });
    return { status: 200, body };
  }
  return undefined;
}
