/**
 * Least privilege, kept honest: every AWS command class vigil's code can send is in the action
 * table the client enforces, every action of that table is in the shipped policies
 * (deploy/aws/), the policies hold nothing else and no wildcard, and the CloudFormation role
 * carries the same statements behind an external-id condition.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ListUsersCommand } from '@aws-sdk/client-iam';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { probes } from '../probes/index.js';
import { AWS_COMMAND_ACTIONS } from '../src/clients/aws/actions.js';
import { awsAccount } from '../src/clients/aws/client.js';
import { AwsTarget } from '../src/config/schema.js';

const root = path.resolve(import.meta.dirname, '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string[];
  Resource: string | string[];
}
const policy = JSON.parse(read('deploy/aws/vigil-readonly-policy.json')) as { Version: string; Statement: Statement[] };
const assume = JSON.parse(read('deploy/aws/vigil-assume-role-policy.json')) as { Version: string; Statement: Statement[] };
const actionsOf = (p: { Statement: Statement[] }) => p.Statement.flatMap((s) => s.Action);

/** Every .ts file (not a test) of the AWS client and the AWS probes: the code that can send AWS commands. */
function awsSources(): string[] {
  const files = readdirSync(path.join(root, 'src/clients/aws')).map((f) => `src/clients/aws/${f}`);
  for (const dir of readdirSync(path.join(root, 'probes'))) {
    if (!dir.startsWith('aws-')) continue;
    for (const f of readdirSync(path.join(root, 'probes', dir))) files.push(`probes/${dir}/${f}`);
  }
  // backup-restore-drill's AWS source (restore testing).
  files.push('probes/backup-restore-drill/aws-collect.ts');
  return files.filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
}

describe('the AWS least-privilege policy', () => {
  it('every command class the code constructs or imports from an AWS SDK client is in the action table, and every table entry is used', () => {
    const used = new Set<string>();
    for (const file of awsSources()) {
      const text = read(file);
      for (const m of text.matchAll(/new\s+(\w+Command)\s*\(/g)) used.add(m[1] as string);
      for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'@aws-sdk\/client-[a-z-]+'/g)) {
        for (const name of (m[1] as string).split(',').map((s) => s.trim().replace(/^type\s+/, ''))) if (name.endsWith('Command')) used.add(name);
      }
    }
    expect(used.size).toBeGreaterThanOrEqual(10);
    expect([...used].filter((c) => !Object.hasOwn(AWS_COMMAND_ACTIONS, c))).toEqual([]);
    expect(Object.keys(AWS_COMMAND_ACTIONS).filter((c) => !used.has(c))).toEqual([]);
  });

  it('the policies hold exactly the actions of the table — no more, no wildcard, allow only', () => {
    const shipped = [...actionsOf(policy), ...actionsOf(assume)];
    expect(new Set(shipped).size).toBe(shipped.length);
    expect(new Set(shipped)).toEqual(new Set(Object.values(AWS_COMMAND_ACTIONS)));
    expect(shipped.filter((a) => a.includes('*'))).toEqual([]);
    for (const s of [...policy.Statement, ...assume.Statement]) expect(s.Effect).toBe('Allow');
    // The role's own policy never lets it assume further roles.
    expect(actionsOf(policy)).not.toContain('sts:AssumeRole');
  });

  it("each AWS probe's declared actions are in the policy, and together with STS they are the whole table", () => {
    const aws = probes.filter((p) => p.source === 'aws');
    expect(aws.map((p) => p.id).sort()).toEqual(['aws-backup-freshness', 'aws-config-recording', 'aws-config-rules-compliant', 'aws-iam-access-key-age', 'aws-iam-user-mfa', 'aws-root-mfa']);
    const inPolicy = new Set(actionsOf(policy));
    for (const p of aws) {
      expect(p.actions?.length, p.id).toBeGreaterThan(0);
      for (const a of p.actions ?? []) expect(inPolicy.has(a), `${p.id}: ${a}`).toBe(true);
    }
    // Probes of other sources that also read AWS (backup-restore-drill's restore testing) declare their actions too.
    const alsoAws = probes.filter((p) => p.source !== 'aws' && (p.actions ?? []).length > 0);
    expect(alsoAws.map((p) => p.id)).toEqual(['backup-restore-drill']);
    for (const p of alsoAws) for (const a of p.actions ?? []) expect(inPolicy.has(a), `${p.id}: ${a}`).toBe(true);
    const declared = new Set([...aws.flatMap((p) => p.actions ?? []), ...alsoAws.flatMap((p) => p.actions ?? []), 'sts:AssumeRole', 'sts:GetCallerIdentity']);
    expect(declared).toEqual(new Set(Object.values(AWS_COMMAND_ACTIONS)));
  });

  it('the CloudFormation role has the same statements and trusts only the vigil principal with the external id', () => {
    const tags = ['!Ref', '!GetAtt', '!Sub'].map((tag) => ({ tag, resolve: (value: string) => ({ [tag.slice(1)]: value }) }));
    const template = YAML.parse(read('deploy/aws/vigil-readonly-role.cfn.yaml'), { customTags: tags }) as {
      Resources: { VigilReadonlyRole: { Properties: { AssumeRolePolicyDocument: { Statement: Array<Record<string, unknown>> }; Policies: Array<{ PolicyDocument: { Statement: Statement[] } }> } } };
    };
    const role = template.Resources.VigilReadonlyRole.Properties;
    expect(role.Policies).toHaveLength(1);
    expect(role.Policies[0]?.PolicyDocument.Statement).toEqual(policy.Statement);
    expect(role.AssumeRolePolicyDocument.Statement).toEqual([
      { Effect: 'Allow', Principal: { AWS: { Ref: 'VigilPrincipalArn' } }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'sts:ExternalId': { Ref: 'ExternalId' } } } },
    ]);
  });

  it('the client refuses to send a command that is not in the table (and so not in the policy)', async () => {
    const aws = awsAccount(AwsTarget.parse({ name: 'x', regions: ['us-east-1'], endpoints: { iam: 'http://127.0.0.1:9' } }), { signal: new AbortController().signal, log: pino({ level: 'silent' }) });
    await expect(aws.iam(new ListUsersCommand({}))).rejects.toThrow('vigil does not send ListUsersCommand');
    aws.close();
  });
});
