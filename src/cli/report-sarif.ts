import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { RunOnceReport } from './run-once.js';
import { configUri, reportItems, targetLine, type ReportContext, type ReportItem } from './report-context.js';

/** The `$schema` GitHub code scanning and the SARIF multitool know for 2.1.0. */
const SARIF_SCHEMA = 'https://json.schemastore.org/sarif-2.1.0.json';

/** Key of our own fingerprint in `partialFingerprints`: bump the suffix if what it hashes ever changes. */
const FINGERPRINT_KEY = 'vigilResource/v1';

/** The subset of SARIF 2.1.0 vigil writes. */
interface SarifRule {
  id: string;
  name: string;
  shortDescription: { text: string };
  fullDescription: { text: string };
  help: { text: string; markdown: string };
  defaultConfiguration: { level: 'error' };
  properties: { tags: string[]; precision: 'high'; controls: string[] };
}

interface SarifResult {
  ruleId: string;
  ruleIndex: number;
  level: 'error' | 'warning';
  message: { text: string };
  locations: Array<{
    physicalLocation: { artifactLocation: { uri: string; uriBaseId?: string }; region: { startLine: number } };
    logicalLocations: Array<{ name: string; fullyQualifiedName: string; kind: 'resource' }>;
  }>;
  partialFingerprints: Record<string, string>;
  properties: { probe: string; target: string; resource: string; outcome: string; errorClass?: string };
}

/** A SARIF 2.1.0 log. */
export interface SarifLog {
  $schema: string;
  version: '2.1.0';
  runs: Array<{
    tool: { driver: { name: 'vigil'; version: string; semanticVersion: string; informationUri?: string; rules: SarifRule[] } };
    originalUriBaseIds?: Record<string, { uri: string }>;
    invocations: Array<{ executionSuccessful: boolean; endTimeUtc: string }>;
    results: SarifResult[];
    columnKind: 'utf16CodeUnits';
  }>;
}

/**
 * `vigil run-once --format sarif`: one rule per probe (or per probe requirement, when a finding
 * names one in its details), one result per failing (`error`) or could-not-observe (`warning`)
 * resource, with the finding's remediation as the message. GitHub code scanning requires a
 * physical location: findings are about systems, not source lines, so each points at the config
 * file (the line that names its target) and names the resource as a logical location; a
 * fingerprint over rule, target and resource keeps one alert per resource across runs.
 */
export function formatSarif(report: RunOnceReport, context: ReportContext, now = new Date()): SarifLog {
  const items = reportItems(report.results).filter((i) => i.outcome === 'fail' || i.outcome === 'unknown');
  const rules: SarifRule[] = [];
  const ruleIndex = new Map<string, number>();
  const addRule = (rule: SarifRule) => {
    ruleIndex.set(rule.id, rules.length);
    rules.push(rule);
  };
  for (const probe of context.probes) addRule(probeRule(probe));
  const location = configUri(context);
  const lines = new Map<string, number>();
  const lineOf = (target: string) => lines.get(target) ?? lines.set(target, targetLine(context, target)).get(target) ?? 1;
  const results: SarifResult[] = [];
  for (const item of items) {
    const ruleId = ruleFor(item, context, ruleIndex, addRule);
    results.push({
      ruleId,
      ruleIndex: ruleIndex.get(ruleId) ?? 0,
      level: item.outcome === 'fail' ? 'error' : 'warning',
      message: { text: item.message.includes(item.resource) ? item.message : `${item.resource}: ${item.message}` },
      locations: [
        {
          physicalLocation: {
            artifactLocation: { uri: location.uri, ...(location.relative ? { uriBaseId: '%SRCROOT%' } : {}) },
            region: { startLine: lineOf(item.target) },
          },
          logicalLocations: [{ name: item.resource, fullyQualifiedName: `${item.probe}/${item.target}/${item.resource}`, kind: 'resource' }],
        },
      ],
      partialFingerprints: { [FINGERPRINT_KEY]: fingerprint(ruleId, item) },
      properties: { probe: item.probe, target: item.target, resource: item.resource, outcome: item.outcome, ...(item.errorClass ? { errorClass: item.errorClass } : {}) },
    });
  }
  return {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: 'vigil', version: context.version, semanticVersion: context.version, ...(context.informationUri ? { informationUri: context.informationUri } : {}), rules } },
        ...(location.relative ? { originalUriBaseIds: { '%SRCROOT%': { uri: `${pathToFileURL(context.baseDir).href.replace(/\/?$/, '/')}` } } } : {}),
        invocations: [{ executionSuccessful: true, endTimeUtc: now.toISOString() }],
        results,
        columnKind: 'utf16CodeUnits',
      },
    ],
  };
}

function probeRule(probe: ReportContext['probes'][number]): SarifRule {
  return {
    id: probe.id,
    name: pascal(probe.id),
    shortDescription: { text: probe.title },
    fullDescription: { text: probe.docs.checks },
    help: { text: probe.docs.remediation, markdown: probe.docs.remediation },
    defaultConfiguration: { level: 'error' },
    properties: { tags: ['security', 'compliance', ...probe.controls], precision: 'high', controls: [...probe.controls] },
  };
}

/** The rule of an item: its probe's, or `probe/check` when the finding names a requirement (added on first use). */
function ruleFor(item: ReportItem, context: ReportContext, ruleIndex: Map<string, number>, addRule: (rule: SarifRule) => void): string {
  const probe = context.probes.find((p) => p.id === item.probe) ?? { id: item.probe, title: item.probe, controls: [], docs: { checks: item.probe, permissions: '', remediation: item.probe } };
  if (!ruleIndex.has(probe.id)) addRule(probeRule(probe));
  if (!item.check) return probe.id;
  const id = `${probe.id}/${item.check}`;
  if (!ruleIndex.has(id)) {
    const base = probeRule(probe);
    addRule({ ...base, id, name: `${base.name}${pascal(item.check)}`, shortDescription: { text: `${probe.title}: ${item.check}` } });
  }
  return id;
}

function pascal(id: string): string {
  return id.replace(/(^|[-/])([a-z0-9])/g, (_m, _sep, ch: string) => ch.toUpperCase());
}

function fingerprint(ruleId: string, item: ReportItem): string {
  return createHash('sha256').update(JSON.stringify([ruleId, item.target, item.resource])).digest('hex').slice(0, 32);
}
