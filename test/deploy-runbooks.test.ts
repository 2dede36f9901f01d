import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * Every alert in deploy/prometheus/vigil-rules.yml carries what the person paged needs (summary,
 * a description naming the control or endpoint, severity, runbook_url), its runbook exists with
 * every section, and it has promtool unit tests. Derived from the files: an alert added later
 * without these fails here.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rulesText = readFileSync(path.join(root, 'deploy/prometheus/vigil-rules.yml'), 'utf8');
const unitTests = readFileSync(path.join(root, 'deploy/prometheus/vigil-rules.test.yml'), 'utf8');

interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules = (parse(rulesText) as { groups: Array<{ name: string; rules: AlertRule[] }> }).groups.flatMap((g) => g.rules);
const alerts = rules.filter((r): r is AlertRule & { alert: string } => typeof r.alert === 'string');
const SECTIONS = ['## Meaning', '## Confirm', '## Usual causes', '## Fix', '## Escalate'];

describe('alert annotations and runbooks', () => {
  it('finds the alerts, including the availability, readiness and GitHub budget alerts', () => {
    const names = alerts.map((a) => a.alert);
    for (const name of ['VigilControlRed', 'VigilDown', 'VigilNotScraped', 'VigilNotReady', 'VigilGithubRateLimitLow']) expect(names).toContain(name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('every alert has a severity, a summary, a description and a runbook_url under one base', () => {
    const bases = new Set<string>();
    for (const a of alerts) {
      expect.soft(['page', 'critical', 'warn'], `${a.alert} severity`).toContain(a.labels?.severity);
      expect.soft(a.annotations?.summary, `${a.alert} summary`).toMatch(/\S/);
      expect.soft(a.annotations?.description, `${a.alert} description`).toMatch(/\S{10}/);
      const url = a.annotations?.runbook_url ?? '';
      expect.soft(url, `${a.alert} runbook_url`).toMatch(new RegExp(`^https://.+/deploy/runbooks/${a.alert}\\.md$`));
      bases.add(url.slice(0, url.length - `${a.alert}.md`.length));
    }
    expect(bases.size).toBe(1);
  });

  it('a description names the control or endpoint its alert is about (a label of the series it fires on)', () => {
    for (const a of alerts) {
      const d = a.annotations?.description ?? '';
      for (const label of ['control', 'endpoint', 'probe', 'target', 'instance']) {
        if (new RegExp(`\\b${label}\\b`).test(a.expr.replace(/by \(([^)]*)\)/g, ' by ($1) '))) {
          // Only labels that survive the expression's aggregation appear in the alert.
          const kept = !/\b(max|min|sum|avg|count)\b/.test(a.expr) || new RegExp(`(by|on) \\([^)]*\\b${label}\\b`).test(a.expr);
          if (kept) expect.soft(d, `${a.alert} description names its ${label}`).toContain(`$labels.${label}`);
        }
      }
    }
  });

  it('every alert has a runbook with every section', () => {
    for (const a of alerts) {
      const file = path.join(root, 'deploy/runbooks', `${a.alert}.md`);
      expect.soft(existsSync(file), `${file} exists`).toBe(true);
      if (!existsSync(file)) continue;
      const text = readFileSync(file, 'utf8');
      expect.soft(text.startsWith(`# ${a.alert}\n`), `${a.alert}.md title`).toBe(true);
      for (const section of SECTIONS) expect.soft(text, `${a.alert}.md ${section}`).toContain(`\n${section}\n`);
      // Confirming uses vigil's own API or CLI.
      expect.soft(text, `${a.alert}.md confirms with vigil`).toMatch(/\$VIGIL\/|\bvigil (run-once|snapshot|verify-archive|config check|probes)\b/);
    }
    const index = readFileSync(path.join(root, 'deploy/runbooks/README.md'), 'utf8');
    for (const a of alerts) expect.soft(index, `runbooks/README.md lists ${a.alert}`).toContain(`(${a.alert}.md)`);
  });

  it('every alert has promtool unit tests', () => {
    for (const a of alerts) expect.soft(unitTests, `${a.alert} is tested`).toMatch(new RegExp(`alertname: ${a.alert}\\n`));
  });
});
