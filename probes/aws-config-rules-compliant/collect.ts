/**
 * collect of aws-config-rules-compliant: per configured region, every AWS Config rule's compliance
 * and, for a non-compliant rule, the first resources AWS names. Loaded by probe.ts on the first
 * run only, with the AWS SDK it imports.
 */
import { DescribeComplianceByConfigRuleCommand, GetComplianceDetailsByConfigRuleCommand } from '@aws-sdk/client-config-service';
import { z } from 'zod';
import type { AwsAccount } from '../../src/clients/aws/client.js';
import { observeAccount, readable } from '../../src/clients/aws/observe.js';
import type { AwsTarget } from '../../src/config/schema.js';
import type { CollectContext } from '../../src/probe/contract.js';
import { MalformedResponseError } from '../../src/probe/errors.js';
import type { Params, RulesObservation, RuleView } from './probe.js';

// ComplianceByConfigRules is required: an answer without it is malformed, not "no rules".
const ComplianceAnswer = z.looseObject({
  ComplianceByConfigRules: z
    .array(
      z.looseObject({
        ConfigRuleName: z.string().min(1),
        Compliance: z
          .looseObject({
            ComplianceType: z.string().optional(),
            ComplianceContributorCount: z.looseObject({ CappedCount: z.number().int().optional(), CapExceeded: z.boolean().optional() }).optional(),
          })
          .optional(),
      }),
    ),
  NextToken: z.string().optional(),
});
const DetailsAnswer = z.looseObject({
  EvaluationResults: z
    .array(
      z.looseObject({
        EvaluationResultIdentifier: z
          .looseObject({ EvaluationResultQualifier: z.looseObject({ ResourceType: z.string().optional(), ResourceId: z.string().optional() }).optional() })
          .optional(),
      }),
    )
    .default([]),
  NextToken: z.string().optional(),
});

const MAX_PAGES = 200;

async function rulesIn(aws: AwsAccount, region: string, params: Params): Promise<RuleView[]> {
  const rules: RuleView[] = [];
  let token: string | undefined;
  for (let pages = 0; ; pages++) {
    if (pages >= MAX_PAGES) throw new MalformedResponseError(`config:DescribeComplianceByConfigRule in ${region} returned more than ${MAX_PAGES} pages`);
    const answer = ComplianceAnswer.safeParse(await aws.config(region, new DescribeComplianceByConfigRuleCommand(token ? { NextToken: token } : {})));
    if (!answer.success) throw new MalformedResponseError(`config:DescribeComplianceByConfigRule in ${region} answered something else than ComplianceByConfigRules`);
    for (const r of answer.data.ComplianceByConfigRules) {
      if (params.rulePrefixes.length > 0 && !params.rulePrefixes.some((p) => r.ConfigRuleName.startsWith(p))) continue;
      const count = r.Compliance?.ComplianceContributorCount;
      rules.push({
        name: r.ConfigRuleName,
        compliance: r.Compliance?.ComplianceType ?? 'INSUFFICIENT_DATA',
        ...(count?.CappedCount !== undefined ? { count: { value: count.CappedCount, capped: count.CapExceeded === true } } : {}),
      });
    }
    if (!answer.data.NextToken) break;
    token = answer.data.NextToken;
  }
  // One call per non-compliant rule, at most maxResourcesNamed results: the names, not the whole list.
  for (const rule of rules) {
    if (rule.compliance !== 'NON_COMPLIANT' || params.maxResourcesNamed === 0) continue;
    rule.resources = await readable(async () => {
      const answer = DetailsAnswer.safeParse(
        await aws.config(region, new GetComplianceDetailsByConfigRuleCommand({ ConfigRuleName: rule.name, ComplianceTypes: ['NON_COMPLIANT'], Limit: params.maxResourcesNamed })),
      );
      if (!answer.success) throw new MalformedResponseError(`config:GetComplianceDetailsByConfigRule for ${rule.name} in ${region} answered something else than EvaluationResults`);
      return answer.data.EvaluationResults.slice(0, params.maxResourcesNamed).map((e) => {
        const q = e.EvaluationResultIdentifier?.EvaluationResultQualifier;
        return `${q?.ResourceType ?? '?'}/${(q?.ResourceId ?? '?').trim()}`;
      });
    });
  }
  return rules;
}

/** Reads the rules' compliance in every configured region of the target's account. */
export function collectRules(ctx: CollectContext<AwsTarget, Params>): Promise<RulesObservation> {
  return observeAccount(ctx.target.spec, ctx, async (aws) => ({
    regions: await Promise.all(ctx.target.spec.regions.map(async (region) => ({ region, rules: await readable(() => rulesIn(aws, region, ctx.params)) }))),
  }));
}
