import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { evaluateIac, Params, type SourcedRule, type WorkspaceObservation } from '../probes/iac-drift/evaluate.js';
import { parsePlanJson, type ParsedPlan } from '../probes/iac-drift/plan-json.js';
import { IgnoreRule } from '../probes/iac-drift/ignore-rules.js';

/** Real `show -json` documents: OpenTofu's own tests and real Terraform runs (see test/fixtures/testdata/README.md). */
const IAC = path.resolve(import.meta.dirname, 'fixtures/testdata/iac');
const read = (rel: string) => readFileSync(path.join(IAC, rel), 'utf8');
const now = new Date('2026-12-01T09:00:00Z');

function plan(rel: string): ParsedPlan {
  const p = parsePlanJson(read(rel));
  if (!p.ok) throw new Error(`${rel}: ${p.reason}`);
  return p.plan;
}

function observe(p: ParsedPlan, extra: Partial<WorkspaceObservation> = {}): WorkspaceObservation {
  return { kind: 'workspace', workspace: 'prod', evidence: { tool: 'tofu', mode: 'plan', exitCode: 2 }, plan: p, rules: [], ...extra };
}

const params = (p: Partial<Params> = {}): Params => Params.parse({ confirmRuns: 1, ...p });
const outcomes = (fs: ReturnType<typeof evaluateIac>) => Object.fromEntries(fs.map((f) => [f.resource, f.outcome]));
const ws = (fs: ReturnType<typeof evaluateIac>) => fs.find((f) => f.resource === 'prod')!;

describe('plan JSON parsing on real material', () => {
  it.each([
    ['terraform-json-plans/basic/plan.json', '0.1'],
    ['terraform-json-plans/basic/plan-0.15.json', '0.1'],
    ['terraform-json-plans/110_sensitive_values/plan.json', '0.2'],
    ['opentofu-show-json/drift/output.json', '1.0'],
    ['terraform-json-plans/120_basic/plan.json', '1.1'],
    ['terraform-json-plans/identity/plan.json', '1.2'],
    ['terraform-json-plans/action_reason/plan.json', '1.2'],
    ['opentofu-show-json/plan-error/output.json', '1.2'],
  ])('%s parses (format_version %s)', (rel, version) => {
    expect(plan(rel).formatVersion).toBe(version);
  });

  it('the invalid Terraform plan (trailing garbage) is not valid JSON', () => {
    expect(parsePlanJson(read('terraform-json-plans/invalid/plan.json'))).toEqual({ ok: false, reason: 'the plan output is not valid JSON' });
  });

  it('an unknown format_version major is refused without echoing it', () => {
    const doc = JSON.parse(read('opentofu-show-json/drift/output.json'));
    doc.format_version = '2.0';
    const r = parsePlanJson(JSON.stringify(doc));
    expect(r.ok).toBe(false);
    expect(JSON.stringify(r)).not.toContain('2.0');
  });

  it.each([['[]'], ['null'], ['{"format_version": 1}'], ['{"format_version": "1.0", "resource_changes": [{"address": 5}]}'], ['{'.repeat(100_000)]])(
    'hostile document %#: unknown, no throw',
    (text) => {
      expect(parsePlanJson(text).ok).toBe(false);
    },
  );

  it('a deeply nested attribute value neither crashes nor hangs the evaluation', () => {
    const doc = JSON.parse(read('opentofu-show-json/drift/output.json'));
    // Built as text: JSON.stringify itself would run out of stack on it.
    const deep = `${'{"a":['.repeat(3000)}"x"${']}'.repeat(3000)}`;
    doc.resource_drift[0].change.after.ami = '@DEEP@';
    doc.resource_drift[0].change.after_sensitive = { ami: '@DEEP@' };
    const p = parsePlanJson(JSON.stringify(doc).replaceAll('"@DEEP@"', deep));
    const fs = p.ok ? evaluateIac(observe(p.plan), params(), now) : [];
    expect(fs.find((f) => f.resource === 'prod/test_instance.should_refresh')?.outcome).toBe('fail');
  });

  it('a hostile address cannot break the one-line message', () => {
    const doc = JSON.parse(read('opentofu-show-json/drift/output.json'));
    doc.resource_drift[0].address = `evil\nFAKE: all green${'x'.repeat(2000)}`;
    const p = parsePlanJson(JSON.stringify(doc));
    const fs = p.ok ? evaluateIac(observe(p.plan), params(), now) : [];
    const evil = fs.find((f) => f.resource.startsWith('prod/evil'))!;
    expect(evil.message).not.toContain('\n');
    expect(evil.resource.length).toBeLessThan(600);
  });

  it('OpenTofu leaves out errored/applyable/complete: read as not errored', () => {
    expect(plan('opentofu-show-json/drift/output.json').errored).toBe(false);
    expect(plan('opentofu-show-json/plan-error/output.json').errored).toBe(true);
  });
});

describe('evaluate: the verdict comes from the JSON', () => {
  it('in sync: Terraform no_changes (every resource no-op, outputs only) passes', () => {
    const fs = evaluateIac(observe(plan('terraform-json-plans/no_changes/plan.json')), params(), now);
    expect(outcomes(fs)).toEqual({ prod: 'pass' });
    expect(ws(fs).details).toMatchObject({ counts: { driftItems: 0, codeChanges: 0, outputChanges: 8 }, digest: null });
  });

  it('in sync: OpenTofu basic-update (a no-op) passes', () => {
    expect(outcomes(evaluateIac(observe(plan('opentofu-show-json/basic-update/output.json')), params(), now))).toEqual({ prod: 'pass' });
  });

  it('output-only change does not count (exit code 2 would say "changes")', () => {
    const fs = evaluateIac(observe(plan('opentofu-show-json/unknown-output/output.json')), params(), now);
    expect(outcomes(fs)).toEqual({ prod: 'pass' });
  });

  it('output-only change counts with countOutputs: true', () => {
    const fs = evaluateIac(observe(plan('opentofu-show-json/unknown-output/output.json')), params({ countOutputs: true }), now);
    expect(outcomes(fs)).toEqual({ prod: 'fail', 'prod/output.bar': 'fail', 'prod/output.baz': 'fail', 'prod/output.foo': 'fail' });
  });

  it('out-of-band change beside a code change: one finding per address naming both kinds and the attribute', () => {
    const fs = evaluateIac(observe(plan('opentofu-show-json/drift/output.json')), params(), now);
    expect(outcomes(fs)).toEqual({ prod: 'fail', 'prod/test_instance.should_refresh': 'fail', 'prod/test_instance.no_refresh': 'fail' });
    const f = fs.find((x) => x.resource === 'prod/test_instance.should_refresh')!;
    expect(f.message).toContain('changed outside the code (update: ami)');
    expect(f.message).toContain('code not applied (update: ami)');
    expect(fs.find((x) => x.resource === 'prod/test_instance.no_refresh')!.message).not.toContain('changed outside');
    expect(ws(fs).details).toMatchObject({ counts: { driftItems: 1, codeChanges: 2 } });
  });

  it('code not applied: a delete and an update, action reason kept', () => {
    const fs = evaluateIac(observe(plan('opentofu-show-json/basic-delete/output.json')), params(), now);
    expect(outcomes(fs)).toEqual({ prod: 'fail', 'prod/test_instance.test': 'fail', 'prod/test_instance.test-delete': 'fail' });
    const del = fs.find((x) => x.resource === 'prod/test_instance.test-delete')!;
    expect(del.details).toMatchObject({ changes: [{ kind: 'code-not-applied', actions: ['delete'], actionReason: 'delete_because_no_resource_config' }] });
  });

  it('moved with drift: the drift under the new address counts', () => {
    const fs = evaluateIac(observe(plan('opentofu-show-json/moved-drift/output.json')), params(), now);
    const f = fs.find((x) => x.resource === 'prod/test_instance.should_refresh_with_move')!;
    expect(f.outcome).toBe('fail');
    expect(f.details).toMatchObject({ changes: [{ kind: 'changed-outside-code', previousAddress: 'test_instance.should_refresh' }, { kind: 'code-not-applied' }] });
  });

  it('move without change (Terraform moved_block) is in sync', () => {
    expect(outcomes(evaluateIac(observe(plan('terraform-json-plans/moved_block/plan.json')), params(), now))).toEqual({ prod: 'pass' });
  });

  it('a move whose before equals after in resource_drift is not drift', () => {
    const doc = JSON.parse(read('opentofu-show-json/moved-drift/output.json'));
    doc.resource_drift[0].change.after = doc.resource_drift[0].change.before;
    doc.resource_changes = [];
    const p = parsePlanJson(JSON.stringify(doc));
    expect(p.ok && outcomes(evaluateIac(observe(p.plan), params(), now))).toEqual({ prod: 'pass' });
  });

  it('replacement (delete+create) and identities are read', () => {
    const fs = evaluateIac(observe(plan('opentofu-show-json/requires-replace/output.json')), params(), now);
    expect(fs.find((x) => x.resource === 'prod/test_instance.test')!.message).toContain('code not applied (delete+create: ami, id)');
    const id = evaluateIac(observe(plan('terraform-json-plans/identity/plan.json')), params(), now);
    expect(id.find((x) => x.resource === 'prod/corner_user_identity.user')!.message).toContain('age, name');
  });

  it('per-address findings are capped at 2,000; the rest are counted', () => {
    const doc = JSON.parse(read('opentofu-show-json/drift/output.json'));
    const entry = doc.resource_drift[0];
    doc.resource_drift = Array.from({ length: 2_100 }, (_, i) => ({ ...entry, address: `test_instance.r[${i}]` }));
    doc.resource_changes = [];
    const p = parsePlanJson(JSON.stringify(doc));
    const fs = p.ok ? evaluateIac(observe(p.plan), params(), now) : [];
    expect(fs).toHaveLength(2_001);
    expect(ws(fs).details).toMatchObject({ counts: { driftItems: 2_100 }, addressesNotListed: 100 });
  });

  it('errored partial plan is unknown, never a verdict', () => {
    const fs = evaluateIac(observe(plan('opentofu-show-json/plan-error/output.json')), params(), now);
    expect(outcomes(fs)).toEqual({ prod: 'unknown' });
    expect(fs[0]!.message).toContain('partial (errored: true)');
  });

  it('refresh-only output with an output change only passes', () => {
    expect(outcomes(evaluateIac(observe(plan('opentofu-show-json/conditions/output-refresh-only.json')), params(), now))).toEqual({ prod: 'pass' });
  });

  it('a failure to observe is unknown with the reason', () => {
    const fs = evaluateIac({ kind: 'workspace', workspace: 'prod', evidence: { tool: 'tofu', mode: 'plan', exitCode: 1 }, failure: 'plan exited 1', rules: [] }, params(), now);
    expect(fs).toMatchObject([{ resource: 'prod', outcome: 'unknown', message: 'could not check workspace prod: plan exited 1', details: { exitCode: 1 } }]);
  });

  it('a stale plan file is unknown', () => {
    const p = plan('terraform-json-plans/no_changes/plan.json');
    const fresh = { path: '/ci/plan.json', modifiedAt: '2026-12-01T08:00:00Z' };
    expect(outcomes(evaluateIac(observe(p, { evidence: { tool: 'tofu', mode: 'planFile', planFile: fresh } }), params(), now))).toEqual({ prod: 'pass' });
    const old = { path: '/ci/plan.json', modifiedAt: '2026-11-28T08:00:00Z' };
    const fs = evaluateIac(observe(p, { evidence: { tool: 'tofu', mode: 'planFile', planFile: old } }), params(), now);
    expect(fs).toMatchObject([{ outcome: 'unknown', message: expect.stringContaining('73 h old') }]);
  });
});

describe('evaluate: confirmation before alarm', () => {
  const p = () => plan('opentofu-show-json/drift/output.json');
  it('a single drift run is suspected (unknown), two runs ≥ 10 minutes apart are red', () => {
    const first = evaluateIac(observe(p()), params({ confirmRuns: 2 }), now);
    expect(new Set(first.map((f) => f.outcome))).toEqual(new Set(['unknown']));
    expect(ws(first).message).toMatch(/^suspected drift \(run 1 of 2/);
    const confirmation = ws(first).details!.confirmation as WorkspaceObservation['previous'];

    const soon = evaluateIac(observe(p(), { previous: confirmation }), params({ confirmRuns: 2 }), new Date(now.getTime() + 5 * 60_000));
    expect(ws(soon).outcome).toBe('unknown');

    const later = evaluateIac(observe(p(), { previous: confirmation }), params({ confirmRuns: 2 }), new Date(now.getTime() + 11 * 60_000));
    expect(new Set(later.map((f) => f.outcome))).toEqual(new Set(['fail']));
  });

  it('a different drift digest starts over', () => {
    const first = evaluateIac(observe(p()), params({ confirmRuns: 2 }), now);
    const other = evaluateIac(observe(plan('opentofu-show-json/basic-delete/output.json'), { previous: ws(first).details!.confirmation as never }), params({ confirmRuns: 2 }), new Date(now.getTime() + 3_600_000));
    expect(ws(other).outcome).toBe('unknown');
    expect(ws(other).details).toMatchObject({ confirmation: { runs: 1 } });
  });

  it('the digest ignores the order of entries', () => {
    const doc = JSON.parse(read('opentofu-show-json/drift/output.json'));
    doc.resource_changes.reverse();
    const q = parsePlanJson(JSON.stringify(doc));
    const a = ws(evaluateIac(observe(p()), params(), now)).details!.digest;
    const b = q.ok && ws(evaluateIac(observe(q.plan), params(), now)).details!.digest;
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(b).toBe(a);
  });
});

describe('evaluate: ignore rules and noise', () => {
  const rule = (r: Partial<IgnoreRule>): SourcedRule => ({
    rule: IgnoreRule.parse({ address: '**', attribute: 'ami', reason: 'AMI rolled by the platform team', owner: 'platform', approvedBy: 'ciso', expires: '2027-01-31', ...r }),
    source: 'config',
  });

  it('a rule hides an attribute change, counted and listed', () => {
    const fs = evaluateIac(observe(plan('opentofu-show-json/drift/output.json'), { rules: [rule({ address: 'test_instance.*' })] }), params(), now);
    expect(outcomes(fs)).toEqual({ prod: 'pass' });
    expect(ws(fs).details).toMatchObject({ counts: { suppressed: 3, driftItems: 0 } });
    expect((ws(fs).details!.suppressed as unknown[])[0]).toMatchObject({ address: 'test_instance.should_refresh', kind: 'changed-outside-code', attribute: 'ami', rule: { approvedBy: 'ciso', expires: '2027-01-31' } });
  });

  it('a rule never hides a delete', () => {
    const fs = evaluateIac(observe(plan('opentofu-show-json/basic-delete/output.json'), { rules: [rule({})] }), params(), now);
    expect(outcomes(fs)).toEqual({ prod: 'fail', 'prod/test_instance.test-delete': 'fail' });
    expect(ws(fs).details).toMatchObject({ counts: { suppressed: 1 }, ignoreRefused: [{ address: 'test_instance.test-delete', actions: ['delete'] }] });
  });

  it('a rule never hides a replacement', () => {
    const fs = evaluateIac(observe(plan('opentofu-show-json/requires-replace/output.json'), { rules: [rule({ attribute: '*' })] }), params(), now);
    expect(outcomes(fs)['prod/test_instance.test']).toBe('fail');
  });

  it('an expired rule stops matching and is reported', () => {
    const fs = evaluateIac(observe(plan('opentofu-show-json/drift/output.json'), { rules: [rule({ expires: '2026-11-30' })] }), params(), now);
    expect(outcomes(fs)).toEqual({ prod: 'fail', 'prod/test_instance.should_refresh': 'fail', 'prod/test_instance.no_refresh': 'fail' });
    expect(ws(fs).message).toContain('1 ignore rule(s) expired');
    expect(ws(fs).details).toMatchObject({ expiredRules: [{ expires: '2026-11-30' }] });
  });

  it('a rule on its last day still matches', () => {
    const fs = evaluateIac(observe(plan('opentofu-show-json/drift/output.json'), { rules: [rule({ expires: '2026-12-01' })] }), params(), now);
    expect(outcomes(fs)).toEqual({ prod: 'pass' });
  });

  const rdsPlan = (): ParsedPlan => {
    const doc = JSON.parse(read('opentofu-show-json/drift/output.json'));
    const d = doc.resource_drift[0];
    Object.assign(d, { address: 'aws_db_instance.main', type: 'aws_db_instance', name: 'main' });
    d.change.before = { id: 'db-1', latest_restorable_time: '2026-12-01T08:55:00Z' };
    d.change.after = { id: 'db-1', latest_restorable_time: '2026-12-01T09:00:00Z' };
    doc.resource_changes = [];
    const p = parsePlanJson(JSON.stringify(doc));
    if (!p.ok) throw new Error(p.reason);
    return p.plan;
  };

  it('known provider noise is reported as noise, separately, with its citation', () => {
    const fs = evaluateIac(observe(rdsPlan()), params(), now);
    expect(outcomes(fs)).toEqual({ prod: 'pass' });
    expect(ws(fs).details).toMatchObject({ counts: { noise: 1, suppressed: 0 }, noise: [{ noise: 'aws_db_instance.latest_restorable_time', citation: expect.stringContaining('https://') }] });
  });

  it('a noise entry switched off counts as drift', () => {
    const fs = evaluateIac(observe(rdsPlan()), params({ disableNoise: ['aws_db_instance.latest_restorable_time'] }), now);
    expect(outcomes(fs)['prod/aws_db_instance.main']).toBe('fail');
  });
});

describe('evaluate: no secret leaves the probe', () => {
  const SECRETS = ['Tr0ub4dor-and-Correct-Horse-93xq', 'Old-Secret-Value-77kz-Qp', 'Code-Secret-Value-55mw-Zr'];
  it('sensitive values, variables and outputs: no substring and no hash of a secret in the findings', async () => {
    const { sha256 } = await import('../probes/iac-drift/diff.js');
    const text = readFileSync(path.resolve(import.meta.dirname, '../probes/iac-drift/fixtures/sensitive-drift.json'), 'utf8');
    const p = parsePlanJson(text);
    if (!p.ok) throw new Error(p.reason);
    const fs = evaluateIac(observe(p.plan), params({ countOutputs: true }), now);
    const written = JSON.stringify(fs);
    for (const secret of SECRETS) {
      for (let i = 0; i + 6 <= secret.length; i++) expect(written).not.toContain(secret.slice(i, i + 6));
      expect(written).not.toContain(sha256(JSON.stringify(secret)));
    }
    expect(written).toContain('"path":"password","sensitive":true');
    expect(written).toContain('"before":"team-a","after":"team-b"');
  });
});

describe('what the plan leaves unsaid', () => {
  const doc = (change: Record<string, unknown>) =>
    JSON.stringify({
      format_version: '1.2',
      terraform_version: '1.9.0',
      resource_changes: [{ address: 'aws_db_instance.main', mode: 'managed', type: 'aws_db_instance', name: 'main', change }],
    });

  it('an update whose before and after show no difference (write-only or redacted values) is still code not applied, never a pass', () => {
    const p = parsePlanJson(doc({ actions: ['update'], before: { password: null }, after: { password: null }, before_sensitive: false, after_sensitive: false }));
    if (!p.ok) throw new Error(p.reason);
    const fs = evaluateIac(observe(p.plan), params(), now);
    expect(ws(fs).outcome).toBe('fail');
    expect(outcomes(fs)['prod/aws_db_instance.main']).toBe('fail');
  });

  it('a plan without sensitivity masks (format 0.x) publishes no hash of any value', async () => {
    const { sha256 } = await import('../probes/iac-drift/diff.js');
    const p = parsePlanJson(doc({ actions: ['update'], before: { password: 'old-Secret-9x7' }, after: { password: 'new-Secret-9x7' } }));
    if (!p.ok) throw new Error(p.reason);
    const written = JSON.stringify(evaluateIac(observe(p.plan), params(), now));
    expect(written).toContain('password');
    expect(written).not.toContain(sha256(JSON.stringify('old-Secret-9x7')));
    expect(written).not.toContain(sha256(JSON.stringify('new-Secret-9x7')));
    expect(written).not.toContain('Secret-9x7');
  });
});
