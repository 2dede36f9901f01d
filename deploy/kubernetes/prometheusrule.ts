/**
 * Generates base/prometheusrule.yaml (a Prometheus Operator PrometheusRule) from
 * deploy/prometheus/vigil-rules.yml, the one source of truth for vigil's alerts. After changing the
 * rules, from the repository root:
 *
 *   npx tsc -p tsconfig.build.json && node dist/deploy/kubernetes/prometheusrule.js
 *
 * `test/deploy-kubernetes.test.ts` fails when the checked-in resource differs from what this
 * writes, or holds other rules than the file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';

/** The rule groups of a Prometheus rules file, as written. */
export interface RuleGroups {
  groups: Array<{ name: string; rules: Array<Record<string, unknown>> }>;
}

export const RULES_FILE = 'deploy/prometheus/vigil-rules.yml';
export const PROMETHEUS_RULE_FILE = 'deploy/kubernetes/base/prometheusrule.yaml';

/** The PrometheusRule resource holding exactly the groups of `rulesText`. */
export function prometheusRule(rulesText: string): Record<string, unknown> {
  const rules = parse(rulesText) as RuleGroups;
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'vigil', labels: { 'app.kubernetes.io/name': 'vigil' } },
    spec: { groups: rules.groups },
  };
}

/** The generated file's exact text. */
export function prometheusRuleYaml(rulesText: string): string {
  const header = `# GENERATED from ${RULES_FILE} by deploy/kubernetes/prometheusrule.ts: do not edit.\n`;
  return header + stringify(prometheusRule(rulesText), { lineWidth: 0 });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(PROMETHEUS_RULE_FILE, prometheusRuleYaml(readFileSync(RULES_FILE, 'utf8')));
  process.stdout.write(`wrote ${PROMETHEUS_RULE_FILE}\n`);
}
