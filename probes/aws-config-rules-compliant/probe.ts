import { z } from 'zod';
import { deniedFinding, type AccountObservation, type Readable } from '../../src/clients/aws/denied.js';
import type { AwsTarget } from '../../src/config/schema.js';
import { defineProbe, type Finding } from '../../src/probe/contract.js';

/** The probe's params, validated at config load time. */
export const Params = z.strictObject({
  /** Non-compliant resources named per rule finding (the count is always given). Default 10. */
  maxResourcesNamed: z.number().int().min(0).max(100).default(10),
  /** Only rules whose name starts with one of these (e.g. a conformance pack's prefix). Default: all rules. */
  rulePrefixes: z.array(z.string().min(1)).default([]),
  /** A region with no (matching) rule fails: nothing is being evaluated there. Default true. */
  requireRules: z.boolean().default(true),
});
export type Params = z.output<typeof Params>;

/** One rule's compliance, and for a non-compliant one the resources AWS named. */
export interface RuleView {
  name: string;
  /** COMPLIANT, NON_COMPLIANT, NOT_APPLICABLE, INSUFFICIENT_DATA — or whatever else AWS said (judged unknown). */
  compliance: string;
  /** Non-compliant resources (ComplianceContributorCount), `capped` when AWS's count hit its cap. */
  count?: { value: number; capped: boolean };
  /** `type/id` of the first non-compliant resources. */
  resources?: Readable<string[]>;
}

/** What collect hands to evaluate: per configured region, the rules or why they could not be read. */
export type RulesObservation = AccountObservation<{ regions: Array<{ region: string; rules: Readable<RuleView[]> }> }>;

/** The pure verdict: see README.md. One finding per rule, resource `<account>/<region>/<rule>`. */
export function evaluateRules(o: RulesObservation, params: Params): Finding[] {
  if (o.denied) return [deniedFinding(o.account, `AWS Config rules in ${o.account} (the role could not be assumed)`, o.denied)];
  const findings: Finding[] = [];
  for (const { region, rules } of o.data?.regions ?? []) {
    const where = `${o.account}/${region}`;
    if (!rules.readable) {
      findings.push(deniedFinding(where, `the AWS Config rule compliance of ${o.account} in ${region}`, rules));
      continue;
    }
    if (rules.value.length === 0) {
      const which = params.rulePrefixes.length > 0 ? ` starting with ${params.rulePrefixes.join(' or ')}` : '';
      findings.push(
        params.requireRules
          ? { resource: where, outcome: 'fail', message: `no AWS Config rule${which} in ${region}: deploy the rules you are audited on (e.g. a conformance pack such as Operational Best Practices for SOC 2)` }
          : { resource: where, outcome: 'not_applicable', message: `no AWS Config rule${which} in ${region}` },
      );
      continue;
    }
    for (const rule of rules.value) {
      const resource = `${where}/${rule.name}`;
      switch (rule.compliance) {
        case 'COMPLIANT':
          findings.push({ resource, outcome: 'pass', message: `AWS Config rule ${rule.name} in ${region}: compliant` });
          break;
        case 'NOT_APPLICABLE':
          findings.push({ resource, outcome: 'not_applicable', message: `AWS Config rule ${rule.name} in ${region} applies to no resource` });
          break;
        case 'NON_COMPLIANT': {
          const count = rule.count ? `${rule.count.value}${rule.count.capped ? '+' : ''}` : 'some';
          const names = rule.resources?.readable ? rule.resources.value : [];
          const named = names.length > 0 ? `: ${names.join(', ')}${rule.count && rule.count.value > names.length ? ', …' : ''}` : '';
          const unnamed = rule.resources && !rule.resources.readable ? ` (resources not listed: vigil may not call ${rule.resources.action})` : '';
          findings.push({
            resource,
            outcome: 'fail',
            message: `AWS Config rule ${rule.name} in ${region}: ${count} non-compliant resource(s)${named}${unnamed} — fix them or document an exception (AWS Config > Rules > ${rule.name})`,
            details: { nonCompliantCount: rule.count?.value, capped: rule.count?.capped, resources: names },
          });
          break;
        }
        case 'INSUFFICIENT_DATA':
          findings.push({ resource, outcome: 'unknown', message: `AWS Config rule ${rule.name} in ${region} has insufficient data (not evaluated yet, or its evaluation fails): check the rule's evaluation status` });
          break;
        default:
          findings.push({ resource, outcome: 'unknown', message: `AWS Config rule ${rule.name} in ${region} reports compliance "${rule.compliance.slice(0, 40)}", which vigil does not know` });
      }
    }
  }
  return findings;
}

export const probe = defineProbe<AwsTarget, Params, RulesObservation>({
  id: 'aws-config-rules-compliant',
  title: 'AWS Config rules are compliant',
  source: 'aws',
  controls: ['configuration-monitoring'],
  schedule: '57 */6 * * *',
  actions: ['config:DescribeComplianceByConfigRule', 'config:GetComplianceDetailsByConfigRule'],
  docs: {
    checks:
      'In every configured region of each `aws[]` account: every AWS Config rule (optionally only those whose name starts with one of `rulePrefixes`) is compliant (`DescribeComplianceByConfigRule`, every page). ' +
      'A non-compliant rule fails, naming up to `maxResourcesNamed` resources (`GetComplianceDetailsByConfigRule`, one call per non-compliant rule) and the count; `INSUFFICIENT_DATA` is unknown; `NOT_APPLICABLE` is not applicable. ' +
      'With `requireRules` (default) a region without a rule fails. One finding per rule, resource `<account>/<region>/<rule>`.',
    permissions: '`config:DescribeComplianceByConfigRule`, `config:GetComplianceDetailsByConfigRule` in each region (and `sts:AssumeRole` on the role when `roleArn` is set).',
    remediation: 'Fix the listed resources (AWS Config > Rules > rule > Resources in scope shows each one and why), or remediate automatically with the rule\'s SSM remediation; re-evaluate the rule. See probes/aws-config-rules-compliant/README.md.',
  },
  params: Params,
  targets(config) {
    return config.aws.map((t) => ({ name: t.name, spec: t }));
  },
  // The I/O and the AWS SDK load on the first run, not at start-up (collect.ts).
  async collect(ctx) {
    return (await import('./collect.js')).collectRules(ctx);
  },
  evaluate(observation, params) {
    return evaluateRules(observation, params);
  },
});
