import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { dashboardExpressions } from '../deploy/grafana/dashboard.js';
import { family, selectors } from '../deploy/grafana/promql.js';
import { probes } from '../probes/index.js';
import type { Daemon } from '../src/daemon.js';
import { forceKill, spawnTiedToParent } from '../src/store/embedded-redis.js';
import { get, metricValue, startTestDaemon, testConfig, waitFor } from './helpers/daemon.js';
import { startRedisServer, uniquePrefix, type TestRedisServer } from './helpers/redis-server.js';
import { startValidTlsPeer, type ValidTlsPeer } from './helpers/tls-peer.js';

/**
 * A real Prometheus (Debian's `prometheus`, the package promtool comes from) scrapes a running
 * vigil on loopback every second and loads vigil's rules. Through Prometheus' HTTP API: the
 * control metrics arrive, every expression of the rules and of the Grafana dashboard parses and
 * evaluates, every metric they read is one vigil exports (and, where vigil has samples of it,
 * their selectors match series), and an alert reaches `firing` on what the daemon measures.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const prometheusBin = process.env.VIGIL_PROMETHEUS ?? 'prometheus';
const rulesText = readFileSync(path.join(root, 'deploy/prometheus/vigil-rules.yml'), 'utf8');
const token = 'live-prometheus-admin-token-0123456789';

let redis: TestRedisServer;
let peer: ValidTlsPeer;
let daemon: Daemon;
let prometheus: ChildProcess;
let promUrl: string;
let workDir: string;
let prometheusLog = '';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface PromAnswer<T> {
  status: 'success' | 'error';
  error?: string;
  data: T;
}
type Vector = { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };

async function promQuery(expr: string): Promise<PromAnswer<Vector>> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  return (await res.json()) as PromAnswer<Vector>;
}

/** Dashboard template variables replaced as Grafana would (a rate window of several scrapes). */
const concrete = (expr: string) => expr.replaceAll('$__rate_interval', '10s');

beforeAll(async () => {
  [redis, peer] = await Promise.all([startRedisServer({ appendonly: true }), startValidTlsPeer()]);
  // The peer's certificate is valid 90 days: requiring 120 makes control tls-certificates red.
  const loaded = testConfig(
    `redis: { url: "${redis.url}", prefix: ${uniquePrefix('prom-live')} }
http: { public: { listen: 127.0.0.1:0 }, admin: { listen: 127.0.0.1:0, token: { env: ADMIN } } }
worker: { concurrency: 2, attempts: 1, timeoutSeconds: 10 }
shutdown: { graceSeconds: 2 }
tls:
  - name: local
    caFile: ${peer.caFile}
    endpoints: [{ host: 127.0.0.1, port: ${peer.port}, servername: localhost }]
probes:
  tls-certificate-posture:
    schedule: "* * * * * *"
    params: { minDaysValid: 120 }
`,
    probes,
    undefined,
    { ADMIN: token },
  );
  ({ daemon } = await startTestDaemon(loaded));

  workDir = mkdtempSync(path.join(tmpdir(), 'vigil-prometheus-'));
  // The test copy of the rules: every `for` shortened to 1 s, so alerts fire within the test.
  writeFileSync(path.join(workDir, 'rules.yml'), rulesText.replace(/^(\s+)for: \S+$/gm, '$1for: 1s'));
  const target = new URL(daemon.adminUrl).host;
  writeFileSync(
    path.join(workDir, 'prometheus.yml'),
    `global: { scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s }
rule_files: [${path.join(workDir, 'rules.yml')}]
scrape_configs:
  - job_name: vigil
    static_configs: [{ targets: ["${target}"] }]
  # With Redis lost a scrape takes up to 2 s (each Redis read is bounded at 2 s, well within the
  # default scrape_timeout of 10 s): a 1 s scrape times out then, this one does not.
  - job_name: vigil-slow
    scrape_interval: 4s
    scrape_timeout: 3500ms
    static_configs: [{ targets: ["${target}"] }]
`,
  );
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  prometheus = spawnTiedToParent(
    prometheusBin,
    [`--config.file=${path.join(workDir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(workDir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdout: 'pipe' },
  );
  prometheus.stdout?.on('data', (d: Buffer) => (prometheusLog += d.toString()));
  prometheus.stderr?.on('data', (d: Buffer) => (prometheusLog += d.toString()));
  await waitFor(
    async () => {
      if (prometheus.exitCode !== null) throw new Error(`prometheus exited ${prometheus.exitCode}: ${prometheusLog}`);
      return (await fetch(`${promUrl}/-/ready`).catch(() => undefined))?.ok;
    },
    15_000,
    'prometheus ready',
  );
}, 30_000);

afterAll(async () => {
  if (prometheus) forceKill(prometheus);
  await daemon?.stop();
  await Promise.all([redis?.stop(), peer?.close()]);
  if (workDir) rmSync(workDir, { recursive: true, force: true });
}, 30_000);

describe('a real Prometheus scraping vigil', () => {
  it('loads all of vigil\'s rules and gets vigil_control_status for the configured control', async () => {
    const groups = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as PromAnswer<{ groups: Array<{ rules: Array<{ name: string }> }> }>;
    const loaded = groups.data.groups.flatMap((g) => g.rules.map((r) => r.name)).sort();
    const inFile = (parse(rulesText) as { groups: Array<{ rules: Array<{ alert?: string; record?: string }> }> }).groups.flatMap((g) => g.rules.map((r) => r.alert ?? r.record ?? '')).sort();
    expect(loaded).toEqual(inFile);

    const status = await waitFor(
      async () => {
        const r = await promQuery('vigil_control_status{job="vigil"}');
        return r.data.result.find((s) => s.metric.control === 'tls-certificates' && s.value[1] === '0');
      },
      15_000,
      'vigil_control_status{control="tls-certificates"} 0 in Prometheus',
    );
    expect(status.metric.instance).toBe(new URL(daemon.adminUrl).host);
    const ready = await promQuery('vigil_ready{job="vigil"}');
    expect(ready.data.result.map((s) => s.value[1])).toEqual(['1']);
  }, 20_000);

  it('every expression of the rules and the dashboard parses and evaluates, and reads only metrics vigil exports', async () => {
    const rules = (parse(rulesText) as { groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }> }).groups.flatMap((g) => g.rules);
    const exprs = [...rules.map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: r.expr })), ...dashboardExpressions().map((d) => ({ where: `panel ${d.panel}`, expr: concrete(d.expr) }))];
    expect(exprs.length).toBeGreaterThan(rules.length);

    // What vigil exports: every family (HELP line), and those with samples now.
    await waitFor(async () => metricValue((await get(`${daemon.adminUrl}/metrics`)).text, 'vigil_probe_duration_seconds_count{probe="tls-certificate-posture"}'), 10_000, 'a probe run observed');
    const exposition = (await get(`${daemon.adminUrl}/metrics`)).text;
    const families = new Set([...exposition.matchAll(/^# HELP (\S+)/gm)].map((m) => m[1]!));
    const withSamples = new Set(
      exposition
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => family(/^[^{ ]+/.exec(l)![0], families))
        .filter((f): f is string => f !== undefined),
    );
    // Prometheus adds these for every target.
    families.add('up');
    withSamples.add('up');

    const failures: string[] = [];
    for (const { where, expr } of exprs) {
      const answer = await promQuery(expr);
      if (answer.status !== 'success') failures.push(`${where}: ${expr}: ${answer.error}`);
      for (const s of selectors(expr)) {
        const fam = family(s.name, families);
        if (!fam) {
          failures.push(`${where}: ${s.name} is not a metric vigil exports`);
          continue;
        }
        if (!withSamples.has(fam)) continue; // e.g. streak gauges before the first day close: no series yet, legitimately
        // vigil has samples of it: the selector, matchers included, must find them.
        const selector = `${s.name}${s.matchers}`;
        const found = await waitFor(async () => ((await promQuery(selector)).data.result.length > 0 ? true : undefined), 5_000, selector).catch(() => false);
        if (!found) failures.push(`${where}: ${selector} matches no series although vigil exports ${fam}`);
      }
    }
    expect(failures).toEqual([]);
  }, 60_000);

  it('VigilControlRed reaches firing for the red control (for shortened in the test copy)', async () => {
    const alert = await waitFor(
      async () => {
        const answer = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as PromAnswer<{ alerts: Array<{ labels: Record<string, string>; state: string; annotations: Record<string, string> }> }>;
        return answer.data.alerts.find((a) => a.labels.alertname === 'VigilControlRed' && a.labels.control === 'tls-certificates' && a.state === 'firing');
      },
      15_000,
      'VigilControlRed firing',
    );
    expect(alert.labels.severity).toBe('page');
    expect(alert.annotations.description).toContain('GET /api/controls/tls-certificates');
    expect(alert.annotations.runbook_url).toMatch(/\/deploy\/runbooks\/VigilControlRed\.md$/);
  }, 20_000);

  it('the Kubernetes probe paths and the ServiceMonitor path answer on the listeners the manifests name', async () => {
    const dep = parse(readFileSync(path.join(root, 'deploy/kubernetes/base/deployment.yaml'), 'utf8')) as {
      spec: { template: { spec: { containers: Array<{ livenessProbe: { httpGet: { path: string; port: string } }; readinessProbe: { httpGet: { path: string; port: string } } }> } } };
    };
    const c = dep.spec.template.spec.containers[0]!;
    const base = (port: string) => (port === 'admin' ? daemon.adminUrl : daemon.publicUrl);
    expect((await get(`${base(c.livenessProbe.httpGet.port)}${c.livenessProbe.httpGet.path}`)).status).toBe(200);
    expect((await get(`${base(c.readinessProbe.httpGet.port)}${c.readinessProbe.httpGet.path}`)).status).toBe(200);
    const sm = parse(readFileSync(path.join(root, 'deploy/kubernetes/base/servicemonitor.yaml'), 'utf8')) as { spec: { endpoints: Array<{ port: string; path: string }> } };
    const ep = sm.spec.endpoints[0]!;
    expect((await get(`${base(ep.port)}${ep.path}`)).text).toContain('vigil_control_status');
  });

  // Last: it stops Redis.
  it('with Redis lost, the scrape still answers: vigil_ready 0, the state series absent, and VigilNotReady fires', async () => {
    await redis.stop();
    const text = await waitFor(
      async () => {
        const r = await get(`${daemon.adminUrl}/metrics`);
        // The first scrapes after the loss may still use the state read just before it (cached 1 s).
        return r.status === 200 && metricValue(r.text, 'vigil_ready') === 0 && !/^vigil_control_status\{/m.test(r.text) ? r.text : undefined;
      },
      15_000,
      'vigil_ready 0 and no state series in /metrics',
    );
    // Process-local series are still there.
    expect(text).toMatch(/^vigil_probe_duration_seconds_count\{/m);
    expect(text).not.toMatch(/^vigil_probe_runs_total\{/m);
    const alert = await waitFor(
      async () => {
        const answer = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as PromAnswer<{ alerts: Array<{ labels: Record<string, string>; state: string }> }>;
        return answer.data.alerts.find((a) => a.labels.alertname === 'VigilNotReady' && a.labels.job === 'vigil-slow' && a.state === 'firing');
      },
      20_000,
      'VigilNotReady firing',
    );
    expect(alert.labels.instance).toBe(new URL(daemon.adminUrl).host);
    expect((await promQuery('up{job="vigil-slow"}')).data.result.map((s) => s.value[1])).toEqual(['1']);
  }, 40_000);
});
