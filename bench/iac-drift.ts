/**
 * iac-drift at scale: parse and evaluate the `show -json` document of a workspace with
 * `resources` managed resources (default 5,000), `drifted` of them (default 200) changed outside
 * the code, built from the shapes OpenTofu records (../shared/testdata/iac/opentofu-show-json/drift):
 * every resource appears in `prior_state`, `planned_values` and `resource_changes` (no-op), the
 * drifted ones also in `resource_drift` with a changed attribute and changed tags, and one in ten
 * of all resources carries a sensitive attribute.
 *
 *   npm run build && node dist/bench/iac-drift.js [resources=5000] [drifted=200] [rounds=5]
 *
 * The document is generated and written to a temp file by this process; a fresh child process
 * then reads it and times `parsePlanJson` + `evaluateIac` for `rounds` rounds. Peak memory is the
 * child's peak RSS (getrusage maxrss: the whole Node process, the document text included).
 * Targets: ≤ 2 s per parse+evaluate, ≤ 200 MB peak. Prints one JSON document; exits 1 when a
 * target is missed or the verdict is wrong.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluateIac, Params } from '../probes/iac-drift/evaluate.js';
import { parsePlanJson } from '../probes/iac-drift/plan-json.js';

const TARGET_SECONDS = 2;
const TARGET_MB = 200;

function attrs(i: number, variant: string): Record<string, unknown> {
  return {
    id: `i-${i.toString(16).padStart(12, '0')}`,
    ami: `ami-${variant}${i % 97}`,
    instance_type: i % 3 === 0 ? 't3.micro' : 'm6i.large',
    arn: `arn:aws:ec2:eu-west-1:111122223333:instance/i-${i.toString(16).padStart(12, '0')}`,
    subnet_id: `subnet-${(i % 16).toString(16).padStart(8, '0')}`,
    vpc_security_group_ids: [`sg-${(i % 7).toString(16).padStart(8, '0')}`, `sg-${(i % 5).toString(16).padStart(8, '0')}`],
    monitoring: i % 2 === 0,
    root_block_device: [{ volume_size: 8 + (i % 50), volume_type: 'gp3', encrypted: true, iops: 3000 }],
    user_data: i % 10 === 0 ? `secret-bootstrap-token-${i}` : null,
    tags: { Name: `web-${i}`, Team: `team-${i % 12}`, Env: 'prod' },
    tags_all: { Name: `web-${i}`, Team: `team-${i % 12}`, Env: 'prod', ManagedBy: 'opentofu' },
  };
}

function sensitive(i: number): Record<string, unknown> {
  return i % 10 === 0 ? { user_data: true, tags: {}, tags_all: {} } : { tags: {}, tags_all: {} };
}

function generate(resources: number, drifted: number): string {
  const every = Math.max(1, Math.floor(resources / drifted));
  const state: unknown[] = [];
  const planned: unknown[] = [];
  const changes: unknown[] = [];
  const drift: unknown[] = [];
  for (let i = 0; i < resources; i++) {
    const address = `module.app${i % 20}.aws_instance.web[${i}]`;
    const base = { address, mode: 'managed', type: 'aws_instance', name: 'web', index: i, provider_name: 'registry.opentofu.org/hashicorp/aws' };
    const now = attrs(i, 'a');
    const isDrifted = i % every === 0 && drift.length < drifted;
    const real = isDrifted ? { ...now, instance_type: 'c7i.xlarge', tags: { ...(now.tags as object), Owner: 'someone' } } : now;
    state.push({ ...base, schema_version: 1, values: now, sensitive_values: sensitive(i) });
    planned.push({ ...base, schema_version: 1, values: real, sensitive_values: sensitive(i) });
    const masks = { after_unknown: {}, before_sensitive: sensitive(i), after_sensitive: sensitive(i) };
    changes.push({ ...base, change: { actions: ['no-op'], before: real, after: real, ...masks } });
    if (isDrifted) drift.push({ ...base, change: { actions: ['update'], before: now, after: real, ...masks } });
  }
  return JSON.stringify({
    format_version: '1.2',
    terraform_version: '1.8.0',
    planned_values: { root_module: { resources: planned } },
    resource_drift: drift,
    resource_changes: changes,
    prior_state: { format_version: '1.0', values: { root_module: { resources: state } } },
    configuration: { root_module: {} },
  });
}

function measure(file: string, rounds: number, expectDrifted: number): void {
  const text = readFileSync(file, 'utf8');
  const params = Params.parse({ confirmRuns: 1 });
  const now = new Date();
  const times: number[] = [];
  let findings = 0;
  let driftItems = -1;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const parsed = parsePlanJson(text);
    if (!parsed.ok) throw new Error(parsed.reason);
    const fs = evaluateIac({ kind: 'workspace', workspace: 'bench', evidence: { tool: 'tofu', mode: 'plan', exitCode: 2 }, plan: parsed.plan, rules: [] }, params, now);
    times.push((performance.now() - t0) / 1000);
    findings = fs.length;
    driftItems = (fs[0]?.details?.counts as { driftItems: number }).driftItems;
  }
  const peakMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify({ secondsPerRound: times, findings, driftItems, expectDrifted, peakRssMb: Math.round(peakMb) }));
}

function main(): void {
  const args = process.argv.slice(2);
  if (args[0] === '--measure') {
    measure(args[1] as string, Number(args[2]), Number(args[3]));
    return;
  }
  const resources = Number(args[0] ?? 5000);
  const drifted = Number(args[1] ?? 200);
  const rounds = Number(args[2] ?? 5);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-iac-'));
  try {
    const file = path.join(dir, 'plan.json');
    const text = generate(resources, drifted);
    writeFileSync(file, text);
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--measure', file, String(rounds), String(drifted)], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    if (child.status !== 0) throw new Error(`measuring child failed: ${child.stderr}`);
    const m = JSON.parse(child.stdout) as { secondsPerRound: number[]; findings: number; driftItems: number; peakRssMb: number };
    const sorted = [...m.secondsPerRound].sort((a, b) => a - b);
    const report = {
      resources,
      drifted,
      documentMb: Math.round((Buffer.byteLength(text) / 1024 / 1024) * 10) / 10,
      rounds,
      parseAndEvaluateSeconds: { first: round3(m.secondsPerRound[0] ?? NaN), median: round3(sorted[Math.floor(sorted.length / 2)] ?? NaN), max: round3(sorted[sorted.length - 1] ?? NaN) },
      peakRssMb: m.peakRssMb,
      findings: m.findings,
      driftItems: m.driftItems,
      node: process.version,
      cpus: os.cpus().length,
      targets: { seconds: TARGET_SECONDS, peakRssMb: TARGET_MB },
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    const ok = report.parseAndEvaluateSeconds.max <= TARGET_SECONDS && m.peakRssMb <= TARGET_MB && m.driftItems === drifted && m.findings === drifted + 1;
    process.exitCode = ok ? 0 : 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

main();
