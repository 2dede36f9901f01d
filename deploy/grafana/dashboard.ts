/**
 * vigil's Grafana dashboard, built from code with the Grafana Foundation SDK and checked in as
 * deploy/grafana/vigil.json. Regenerate after a change (from the repository root):
 *
 *   npx tsc -p tsconfig.build.json && node dist/deploy/grafana/dashboard.js
 *
 * `test/deploy-grafana.test.ts` fails when the checked-in JSON differs from what this builds, and
 * `test/prometheus-live.test.ts` runs every query below against a real Prometheus scraping vigil.
 *
 * Metric names come from the modules that register them (METRIC in src/http/metrics.ts, the TLS
 * probe's gauge definitions, the GitHub client's registry), never from literals here: a renamed
 * metric breaks the build of this dashboard instead of leaving a panel silently empty.
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import { Registry } from 'prom-client';
import { METRIC } from '../../src/http/metrics.js';
import { registerGithubMetrics } from '../../src/clients/github.js';
import { probe as tlsProbe } from '../../probes/tls-certificate-posture/probe.js';

/** Dashboard uid: stable, so links and provisioning keep pointing at it. */
export const DASHBOARD_UID = 'vigil-overview';

/** Days of green in a row before a control is 30-day green (trust.minGreenDays is never below it). */
const GREEN_DAYS = 30;

/** The TLS gauge names, read from the probe that registers them. */
function tlsGauge(name: string): string {
  const found = tlsProbe.gauges?.find((g) => g.name === name);
  if (!found) throw new Error(`tls-certificate-posture registers no gauge ${name}`);
  return found.name;
}

/** The GitHub metric names, checked against the registry the GitHub client fills. */
function githubMetric(name: string): string {
  const registry = new Registry();
  registerGithubMetrics(registry);
  if (!registry.getSingleMetric(name)) throw new Error(`the GitHub client registers no metric ${name}`);
  return name;
}

const M = {
  ...METRIC,
  tlsExpiry: tlsGauge('vigil_tls_certificate_expiry_timestamp_seconds'),
  tlsChainExpiry: tlsGauge('vigil_tls_chain_expiry_timestamp_seconds'),
  tlsVerifyOk: tlsGauge('vigil_tls_verify_ok'),
  githubRequests: githubMetric('vigil_github_api_requests_total'),
  githubRemaining: githubMetric('vigil_github_rate_limit_remaining'),
} as const;

const datasource: common.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

/** One Prometheus query; `instant` for tables and stats (one value per series, now). */
function query(expr: string, opts: { legend?: string; instant?: boolean; refId?: string } = {}): prometheus.DataqueryBuilder {
  const q = new prometheus.DataqueryBuilder().expr(expr).datasource(datasource);
  if (opts.legend) q.legendFormat(opts.legend);
  if (opts.refId) q.refId(opts.refId);
  if (opts.instant) q.instant().format(prometheus.PromQueryFormat.Table);
  return q;
}

function thresholds(steps: Array<[number | null, string]>): dashboard.ThresholdsConfigBuilder {
  return new dashboard.ThresholdsConfigBuilder()
    .mode(dashboard.ThresholdsMode.Absolute)
    .steps(steps.map(([value, color]) => ({ value, color })));
}

const statusMapping: dashboard.ValueMapping = {
  type: dashboard.MappingType.ValueToText,
  options: {
    '1': { text: 'green', color: 'green', index: 0 },
    '0': { text: 'red', color: 'red', index: 1 },
    '-1': { text: 'unknown', color: 'orange', index: 2 },
  },
};
const yesNoMapping: dashboard.ValueMapping = {
  type: dashboard.MappingType.ValueToText,
  options: { '1': { text: 'yes', color: 'green', index: 0 }, '0': { text: 'no', color: 'text', index: 1 } },
};
const colored = (): dashboard.DynamicConfigValue => ({ id: 'custom.cellOptions', value: { type: common.TableCellDisplayMode.ColorBackground } });

/** Link from a control to its API page on the admin listener (needs the admin token). */
const controlLink = new dashboard.DashboardLinkBuilder('GET /api/controls/${__data.fields.control}')
  .url('${admin_url}/api/controls/${__data.fields.control}')
  .targetBlank(true);

/** Joins instant queries on their labels and hides Prometheus' Time column. */
function joinByLabels(rename: Record<string, string>): dashboard.DataTransformerConfig[] {
  return [
    { id: 'merge', options: {} },
    { id: 'organize', options: { excludeByName: { Time: true }, renameByName: rename } },
  ];
}

function controlGrid(): table.PanelBuilder {
  const byControl = (metric: string) => `max by (control) (${metric})`;
  return new table.PanelBuilder()
    .title('Controls')
    .description(
      `Each control now (green, red, unknown), its streak of green days as of the last closed day, whether it is ${GREEN_DAYS}-day green, and whether it is on the public trust feed. Click a control for GET /api/controls/<id> on the admin listener (bearer token).`,
    )
    .datasource(datasource)
    .withTarget(query(byControl(M.controlStatus), { instant: true, refId: 'status' }))
    .withTarget(query(byControl(M.controlConsecutiveGreenDays), { instant: true, refId: 'streak' }))
    .withTarget(query(byControl(M.controlGreen), { instant: true, refId: 'green30' }))
    .withTarget(query(byControl(M.controlOnFeed), { instant: true, refId: 'feed' }))
    .transformations(joinByLabels({ control: 'control', 'Value #status': 'status', 'Value #streak': 'streak days', 'Value #green30': `${GREEN_DAYS}-day green`, 'Value #feed': 'on trust feed' }))
    .overrideByName('control', [{ id: 'links', value: [controlLink.build()] }])
    .overrideByName('status', [{ id: 'mappings', value: [statusMapping] }, colored()])
    .overrideByName(`${GREEN_DAYS}-day green`, [{ id: 'mappings', value: [yesNoMapping] }, colored()])
    .overrideByName('on trust feed', [{ id: 'mappings', value: [yesNoMapping] }, colored()])
    .overrideByName('streak days', [{ id: 'unit', value: 'd' }, { id: 'decimals', value: 0 }])
    .noValue('no control measured yet')
    .gridPos({ h: 10, w: 14, x: 0, y: 1 });
}

function daysTo30(): bargauge.PanelBuilder {
  return new bargauge.PanelBuilder()
    .title(`Days to ${GREEN_DAYS}`)
    .description(`Controls with a streak under way (1 to ${GREEN_DAYS - 1} green days): how many more green days until they are ${GREEN_DAYS}-day green and, if public, on the trust feed.`)
    .datasource(datasource)
    .withTarget(query(`${GREEN_DAYS} - (max by (control) (${M.controlConsecutiveGreenDays}) > 0 < ${GREEN_DAYS})`, { legend: '{{control}}', instant: true }))
    .unit('d')
    .min(0)
    .max(GREEN_DAYS)
    .decimals(0)
    .thresholds(thresholds([[null, 'green'], [20, 'yellow']]))
    .orientation(common.VizOrientation.Horizontal)
    .displayMode(common.BarGaugeDisplayMode.Basic)
    .noValue('no control on its way')
    .gridPos({ h: 10, w: 10, x: 14, y: 1 });
}

function statusHistory(): statetimeline.PanelBuilder {
  return new statetimeline.PanelBuilder()
    .title('Control status over time')
    .datasource(datasource)
    .withTarget(query(`max by (control) (${M.controlStatus})`, { legend: '{{control}}' }))
    .mappings([statusMapping])
    .thresholds(thresholds([[null, 'orange'], [0, 'red'], [1, 'green']]))
    .showValue(common.VisibilityMode.Never)
    .gridPos({ h: 8, w: 24, x: 0, y: 11 });
}

function probeHealth(): table.PanelBuilder {
  return new table.PanelBuilder()
    .title('Probe health per target')
    .description('Time since the last run that judged every resource (no error, nothing unknown), and the age of the source\'s own data where the source says (e.g. an AWS credential report).')
    .datasource(datasource)
    .withTarget(query(`time() - max by (probe, target) (${M.probeLastJudgedTimestampSeconds})`, { instant: true, refId: 'since' }))
    .withTarget(query(`max by (probe, target) (${M.sourceFreshnessSeconds})`, { instant: true, refId: 'fresh' }))
    .transformations(joinByLabels({ 'Value #since': 'since last judged run', 'Value #fresh': 'source data age' }))
    .unit('s')
    .thresholds(thresholds([[null, 'green'], [3 * 3600, 'yellow'], [6 * 3600, 'red']]))
    .overrideByName('since last judged run', [colored()])
    .noValue('no probe has completed a judged run')
    .gridPos({ h: 8, w: 12, x: 0, y: 20 });
}

function probeRuns(): timeseries.PanelBuilder {
  return new timeseries.PanelBuilder()
    .title('Probe runs by outcome')
    .description('Recorded runs per second (shared across replicas).')
    .datasource(datasource)
    .withTarget(query(`max by (probe, outcome) (rate(${M.probeRunsTotal}[$__rate_interval]))`, { legend: '{{probe}} {{outcome}}' }))
    .withTarget(query(`histogram_quantile(0.95, sum by (probe, le) (rate(${M.probeDurationSeconds}_bucket[$__rate_interval])))`, { legend: 'p95 duration {{probe}}' }))
    .overrideByRegexp('^p95 duration', [{ id: 'unit', value: 's' }, { id: 'custom.axisPlacement', value: 'right' }])
    .unit('ops')
    .gridPos({ h: 8, w: 12, x: 12, y: 20 });
}

function certificates(): table.PanelBuilder {
  return new table.PanelBuilder()
    .title('TLS certificates')
    .description('Per configured endpoint: time left on the leaf certificate and on the first certificate of its chain to expire, and whether the chain verifies and names the endpoint.')
    .datasource(datasource)
    .withTarget(query(`min by (endpoint) (${M.tlsExpiry}) - time()`, { instant: true, refId: 'leaf' }))
    .withTarget(query(`min by (endpoint) (${M.tlsChainExpiry}) - time()`, { instant: true, refId: 'chain' }))
    .withTarget(query(`min by (endpoint) (${M.tlsVerifyOk})`, { instant: true, refId: 'verify' }))
    .transformations(joinByLabels({ 'Value #leaf': 'leaf expires in', 'Value #chain': 'chain expires in', 'Value #verify': 'verifies' }))
    .unit('s')
    .thresholds(thresholds([[null, 'red'], [14 * 86400, 'yellow'], [30 * 86400, 'green']]))
    .overrideByName('leaf expires in', [colored()])
    .overrideByName('chain expires in', [colored()])
    .overrideByName('verifies', [{ id: 'unit', value: 'none' }, { id: 'mappings', value: [yesNoMapping] }, colored()])
    .sortBy([new common.TableSortByFieldStateBuilder().displayName('leaf expires in')])
    .noValue('no TLS endpoint measured')
    .gridPos({ h: 8, w: 24, x: 0, y: 29 });
}

function githubRequests(): timeseries.PanelBuilder {
  return new timeseries.PanelBuilder()
    .title('GitHub API requests')
    .description('Requests per second sent by each replica, by target and HTTP status (network and timeout when no answer came back).')
    .datasource(datasource)
    .withTarget(query(`sum by (target, status) (rate(${M.githubRequests}[$__rate_interval]))`, { legend: '{{target}} {{status}}' }))
    .unit('reqps')
    .gridPos({ h: 8, w: 12, x: 0, y: 38 });
}

function githubBudget(): timeseries.PanelBuilder {
  return new timeseries.PanelBuilder()
    .title('GitHub rate-limit budget left')
    .description('The last x-ratelimit-remaining seen per target and resource (core, graphql). VigilGithubRateLimitLow fires under 500 while requests are being sent.')
    .datasource(datasource)
    .withTarget(query(`min by (target, resource) (${M.githubRemaining})`, { legend: '{{target}} {{resource}}' }))
    .min(0)
    .thresholds(thresholds([[null, 'red'], [500, 'green']]))
    .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Line))
    .gridPos({ h: 8, w: 12, x: 12, y: 38 });
}

function queueDepth(): timeseries.PanelBuilder {
  return new timeseries.PanelBuilder()
    .title('Queue depth')
    .description('Jobs per BullMQ queue and state. VigilQueueBacklog fires past 100 waiting for 15 minutes.')
    .datasource(datasource)
    .withTarget(query(`max by (queue, state) (${M.queueJobs}{state=~"waiting|active|delayed|prioritized|failed"})`, { legend: '{{queue}} {{state}}' }))
    .min(0)
    .gridPos({ h: 8, w: 12, x: 0, y: 47 });
}

function jobRates(): timeseries.PanelBuilder {
  return new timeseries.PanelBuilder()
    .title('Job rates')
    .description('Probe jobs recorded per second by outcome, and jobs completed per second per queue.')
    .datasource(datasource)
    .withTarget(query(`sum by (outcome) (max by (probe, outcome) (rate(${M.probeRunsTotal}[$__rate_interval])))`, { legend: 'runs {{outcome}}' }))
    .withTarget(query(`max by (queue) (deriv(${M.queueJobs}{state="completed"}[$__rate_interval])) > 0`, { legend: 'completed {{queue}}' }))
    .unit('ops')
    .min(0)
    .gridPos({ h: 8, w: 12, x: 12, y: 47 });
}

function snapshotAge(): stat.PanelBuilder {
  return new stat.PanelBuilder()
    .title('Last snapshot published')
    .description('Time since the last daily snapshot (after vigil rebuild: since the newest restored day became closable). VigilSnapshotOverdue fires past 26 hours.')
    .datasource(datasource)
    .withTarget(query(`time() - max(${M.snapshotLastPublishedTimestampSeconds})`, { instant: true }))
    .unit('s')
    .thresholds(thresholds([[null, 'green'], [25 * 3600, 'yellow'], [26 * 3600, 'red']]))
    .noValue('no snapshot yet')
    .gridPos({ h: 6, w: 6, x: 0, y: 56 });
}

function feedSize(): stat.PanelBuilder {
  return new stat.PanelBuilder()
    .title('Controls on the trust feed')
    .datasource(datasource)
    .withTarget(query(`max(${M.trustFeedControls})`, { instant: true }))
    .thresholds(thresholds([[null, 'blue']]))
    .gridPos({ h: 6, w: 6, x: 6, y: 56 });
}

function emails(): timeseries.PanelBuilder {
  return new timeseries.PanelBuilder()
    .title('Snapshot emails and integrity')
    .description('Daily snapshot emails by result over the last day (sent, rejected, failed = given up, resent), stored snapshots withheld for failing their integrity check, and failed attempts to close a due day (GET /readyz names the day and the reason).')
    .datasource(datasource)
    .withTarget(query(`max by (result) (increase(${M.emailSentTotal}[1d]))`, { legend: 'email {{result}}' }))
    .withTarget(query(`sum by (source) (increase(${M.snapshotIntegrityFailuresTotal}[1d]))`, { legend: 'integrity failures {{source}}' }))
    .withTarget(query(`sum by (instance) (increase(${M.dayCloseFailuresTotal}[1d]))`, { legend: 'day close failures {{instance}}' }))
    .min(0)
    .decimals(0)
    .gridPos({ h: 6, w: 12, x: 12, y: 56 });
}

function replicas(): timeseries.PanelBuilder {
  return new timeseries.PanelBuilder()
    .title('Replicas: scraped and ready')
    .description('up: Prometheus scraped the replica\'s /metrics. ready: its GET /readyz passes (Redis answers, probe worker and recorder running, the last day close did not fail, dataDir and archive.dir writable).')
    .datasource(datasource)
    .withTarget(query('up{job="vigil"}', { legend: 'up {{instance}}' }))
    .withTarget(query(`${M.ready}`, { legend: 'ready {{instance}}' }))
    .min(0)
    .max(1)
    .decimals(0)
    .gridPos({ h: 6, w: 24, x: 0, y: 62 });
}

/** The dashboard as the Grafana JSON model. */
export function buildDashboard(): dashboard.Dashboard {
  const builder = new dashboard.DashboardBuilder('vigil')
    .uid(DASHBOARD_UID)
    .description('Controls measured by vigil: status, streaks, the public trust feed, and the health of its probes, queues, snapshots and email.')
    .tags(['vigil', 'compliance', 'generated'])
    .editable()
    .refresh('1m')
    .time({ from: 'now-24h', to: 'now' })
    .timezone('browser')
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .withVariable(new dashboard.DatasourceVariableBuilder('datasource').label('Prometheus').type('prometheus'))
    .withVariable(
      new dashboard.TextBoxVariableBuilder('admin_url')
        .label('vigil admin URL')
        .description('Base URL of vigil\'s admin listener, for the links to /api/controls/<id>')
        .defaultValue('http://localhost:9464'),
    )
    .link(new dashboard.DashboardLinkBuilder('Runbooks').type(dashboard.DashboardLinkType.Link).url('https://github.com/vigil-monitoring/vigil/tree/main/deploy/runbooks').targetBlank(true))
    .withRow(new dashboard.RowBuilder('Controls'))
    .withPanel(controlGrid())
    .withPanel(daysTo30())
    .withPanel(statusHistory())
    .withRow(new dashboard.RowBuilder('Probes'))
    .withPanel(probeHealth())
    .withPanel(probeRuns())
    .withRow(new dashboard.RowBuilder('TLS certificates'))
    .withPanel(certificates())
    .withRow(new dashboard.RowBuilder('GitHub'))
    .withPanel(githubRequests())
    .withPanel(githubBudget())
    .withRow(new dashboard.RowBuilder('Queues'))
    .withPanel(queueDepth())
    .withPanel(jobRates())
    .withRow(new dashboard.RowBuilder('Snapshots, email and replicas'))
    .withPanel(snapshotAge())
    .withPanel(feedSize())
    .withPanel(emails())
    .withPanel(replicas());
  return builder.build();
}

/** The checked-in file's exact text. */
export function dashboardJson(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}

/** Every PromQL expression of the dashboard's panels, with the panel title. */
export function dashboardExpressions(model: dashboard.Dashboard = buildDashboard()): Array<{ panel: string; expr: string }> {
  const out: Array<{ panel: string; expr: string }> = [];
  for (const panel of model.panels ?? []) {
    if (panel.type === 'row') continue;
    for (const target of (panel as dashboard.Panel).targets ?? []) {
      const expr = (target as { expr?: string }).expr;
      if (expr) out.push({ panel: (panel as dashboard.Panel).title ?? '', expr });
    }
  }
  return out;
}

// Run directly: write deploy/grafana/vigil.json (relative to the working directory, the repository root).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = process.argv[2] ?? 'deploy/grafana/vigil.json';
  writeFileSync(out, dashboardJson());
  process.stdout.write(`wrote ${out}\n`);
}
