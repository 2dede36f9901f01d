import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildDashboard, dashboardExpressions, dashboardJson } from '../deploy/grafana/dashboard.js';
import { family, selectors } from '../deploy/grafana/promql.js';
import { probes } from '../probes/index.js';
import { VigilMetrics, type MetricsSource } from '../src/http/metrics.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The metric families vigil registers (read from a real registry; nothing is collected). */
function vigilFamilies(): Set<string> {
  const unused = new Proxy({}, { get: () => () => Promise.reject(new Error('not read')) }) as unknown as MetricsSource;
  const metrics = new VigilMetrics(unused, probes);
  return new Set(metrics.registry.getMetricsAsArray().map((m) => m.name));
}

describe('Grafana dashboard', () => {
  it('deploy/grafana/vigil.json is exactly what deploy/grafana/dashboard.ts builds (regenerate: node dist/deploy/grafana/dashboard.js)', () => {
    expect(readFileSync(path.join(root, 'deploy/grafana/vigil.json'), 'utf8')).toBe(dashboardJson());
  });

  it('reads only metrics vigil registers (or Prometheus\' own up)', () => {
    const families = vigilFamilies();
    const exprs = dashboardExpressions();
    expect(exprs.length).toBeGreaterThan(15);
    for (const { panel, expr } of exprs) {
      const found = selectors(expr);
      expect(found.length, `${panel}: ${expr} reads a metric`).toBeGreaterThan(0);
      for (const s of found) expect.soft(s.name === 'up' || family(s.name, families) !== undefined, `${panel}: ${s.name}`).toBe(true);
    }
  });

  it('has the panels the issue asks for, every one on the Prometheus datasource variable', () => {
    const model = buildDashboard();
    const panels = (model.panels ?? []).filter((p) => p.type !== 'row') as Array<{ title: string; targets?: Array<{ datasource?: { uid?: string } }> }>;
    expect(panels.map((p) => p.title)).toEqual(
      expect.arrayContaining(['Controls', 'Days to 30', 'Probe health per target', 'TLS certificates', 'GitHub API requests', 'GitHub rate-limit budget left', 'Queue depth', 'Job rates', 'Last snapshot published', 'Snapshot emails and integrity']),
    );
    for (const p of panels) for (const t of p.targets ?? []) expect(t.datasource?.uid, p.title).toBe('${datasource}');
  });

  it('the control grid shows status, streak, 30-day green and on-feed, and links each control to /api/controls/<id>', () => {
    const grid = (buildDashboard().panels ?? []).find((p) => p.type === 'table' && (p as { title?: string }).title === 'Controls') as unknown as {
      targets: Array<{ expr: string }>;
      fieldConfig: { overrides: Array<{ matcher: { options: string }; properties: Array<{ id: string; value: unknown }> }> };
    };
    const exprs = grid.targets.map((t) => t.expr).join('\n');
    for (const m of ['vigil_control_status', 'vigil_control_consecutive_green_days', 'vigil_control_green', 'vigil_control_on_feed']) expect(exprs).toContain(m);
    const control = grid.fieldConfig.overrides.find((o) => o.matcher.options === 'control');
    const links = control?.properties.find((p) => p.id === 'links')?.value as Array<{ url: string }>;
    expect(links[0]!.url).toBe('${admin_url}/api/controls/${__data.fields.control}');
  });
});
