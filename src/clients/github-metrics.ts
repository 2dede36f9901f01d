/**
 * This process's GitHub request counters and last-seen rate-limit headroom. The GitHub client
 * (src/clients/github.ts) writes them; the metrics endpoint (src/http/metrics.ts) reads them.
 * Kept apart from the client so that every daemon's metrics registry does not load Octokit,
 * Bottleneck and the client's schemas just to expose two series — only a GitHub run loads them.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** The kind of a GitHub API exchange. */
export type RequestKind = 'rest' | 'graphql';

const requestCounts = new Map<string, number>();
const rateRemaining = new Map<string, number>();
const sep = '\u0000';

/** Counts one HTTP exchange of `target` (status: the HTTP status, or `network`, `timeout`). */
export function countGithubRequest(target: string, kind: RequestKind, status: string): void {
  const key = [target, kind, status].join(sep);
  requestCounts.set(key, (requestCounts.get(key) ?? 0) + 1);
}

/** Records the last `x-ratelimit-remaining` seen for `target` and rate-limit `resource`. */
export function noteGithubRateRemaining(target: string, resource: string, remaining: number): void {
  rateRemaining.set([target, resource].join(sep), remaining);
}

/** A snapshot of this process's GitHub request counters and last-seen rate-limit headroom. */
export function githubApiStats(): {
  requests: Array<{ target: string; kind: RequestKind; status: string; count: number }>;
  rateLimitRemaining: Array<{ target: string; resource: string; remaining: number }>;
} {
  return {
    requests: [...requestCounts].map(([key, count]) => {
      const [target = '', kind = 'rest', status = ''] = key.split(sep);
      return { target, kind: kind as RequestKind, status, count };
    }),
    rateLimitRemaining: [...rateRemaining].map(([key, remaining]) => {
      const [target = '', resource = ''] = key.split(sep);
      return { target, resource, remaining };
    }),
  };
}

/**
 * Registers `vigil_github_api_requests_total{target,kind,status}` and
 * `vigil_github_rate_limit_remaining{target,resource}` on `registry`, both read at scrape time
 * from this process's counters. Labels are bounded: configured target names, `rest`/`graphql`,
 * HTTP status codes (or `network`, `timeout`), GitHub's rate-limit resources (`core`, `graphql`…).
 */
export function registerGithubMetrics(registry: Registry): void {
  new Counter({
    name: 'vigil_github_api_requests_total',
    help: 'GitHub API requests sent by this process, by configured target, kind (rest, graphql) and HTTP status (network, timeout when none came back).',
    labelNames: ['target', 'kind', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of githubApiStats().requests) this.inc({ target: r.target, kind: r.kind, status: r.status }, r.count);
    },
  });
  new Gauge({
    name: 'vigil_github_rate_limit_remaining',
    help: 'Requests left in the current GitHub primary rate-limit window (last x-ratelimit-remaining seen), by configured target and rate-limit resource (core, graphql…).',
    labelNames: ['target', 'resource'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of githubApiStats().rateLimitRemaining) this.set({ target: r.target, resource: r.resource }, r.remaining);
    },
  });
}
