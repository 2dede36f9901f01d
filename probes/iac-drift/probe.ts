import { defineProbe, type ProbeGauge, type ProbeResult } from '../../src/probe/contract.js';
import { collectCoverage, collectWorkspace, type IacSpec } from './collect.js';
import { evaluateIac, Params, previousConfirmation, type IacObservation } from './evaluate.js';

export { Params } from './evaluate.js';

/** Kept between the tool's deadline and the runner's: time to stop the tool (SIGTERM, SIGKILL after 5 s) and delete the plan file. */
const RUNNER_MARGIN_MS = 10_000;

/**
 * iac-drift: does the infrastructure still match its OpenTofu/Terraform code? Judged from the
 * plan's JSON (`show -json`), never from the exit code alone. See README.md.
 */
/**
 * Resources left drifted after ignore rules and noise, per workspace and kind (suspected drift
 * included, so ops see it before it is confirmed). Labels are the configured workspace names.
 */
const driftGauge: ProbeGauge = {
  name: 'vigil_iac_drift_resources',
  help: 'Resources of an OpenTofu/Terraform workspace that do not match their code, by kind (changed_outside_code, code_not_applied), from the newest iac-drift result.',
  labelNames: ['workspace', 'kind'],
  fromResult(result: ProbeResult) {
    const f = result.findings.find((x) => x.resource === result.target);
    const counts = f?.details?.counts as { driftItems?: unknown; codeChanges?: unknown } | undefined;
    if (!counts || typeof counts.driftItems !== 'number' || typeof counts.codeChanges !== 'number') return [];
    return [
      { labels: { workspace: result.target, kind: 'changed_outside_code' }, value: counts.driftItems },
      { labels: { workspace: result.target, kind: 'code_not_applied' }, value: counts.codeChanges },
    ];
  },
};

export const probe = defineProbe<IacSpec, Params, IacObservation>({
  id: 'iac-drift',
  title: 'Infrastructure matches its OpenTofu/Terraform code',
  source: 'iac',
  controls: ['infrastructure-matches-code'],
  schedule: '41 4 * * *',
  docs: {
    checks:
      'For each `iac:` workspace: `init -input=false -lockfile=readonly`, `state pull` (serial), ' +
      '`plan -input=false -no-color -detailed-exitcode -lock=false -out=<private temp file>`, `show -json <file>`, `state pull` again; ' +
      'or the newest `planFile` CI produced. Fails on resources changed outside the code (`resource_drift`) and code not applied ' +
      '(`resource_changes` other than no-op/read), after signed ignore rules and known provider noise, once `confirmRuns` runs ' +
      'at least 10 minutes apart show the same drift. Exit 1, timeouts, errored plans, unparseable JSON, access denied, a changed state ' +
      'serial: unknown. `discover` roots list root modules with a backend that no workspace declares ("not monitored").',
    permissions:
      'Runs, in `dir`, with no shell: `<binary> init -input=false -lockfile=readonly`, `state pull` (serial only, before and after), ' +
      '`plan -input=false -no-color -detailed-exitcode -lock=false -out=<private tmp>`, `show -json <plan>` (or reads `planFile`). ' +
      'Read-only cloud credentials passed by name in `env` (AWS: a role with ReadOnlyAccess plus explicit denies on secretsmanager:GetSecretValue, ' +
      'ssm:GetParameter*, ec2:GetPasswordData, and on s3/dynamodb/kms reads except the state bucket, lock table and state key); read access to the state backend. ' +
      'vigil never takes, waits on or clears a state lock.',
    remediation:
      'Revert the change made outside the code, or change the code to match and apply it through review; apply reviewed code that is not applied. ' +
      'For accepted, temporary differences add an ignore rule with reason, owner, approvedBy and an expiry ≤ 180 days. See probes/iac-drift/README.md.',
  },
  params: Params,
  targets(config) {
    const declaredDirs = config.iac.flatMap((w) => (w.dir && w.discover === undefined ? [w.dir] : []));
    // Each workspace gets its own collect budget (timeoutMinutes plus a margin), independent of
    // worker.timeoutSeconds; the tool is stopped at timeoutMinutes, before the runner would abort,
    // so the result says "timed out" and the plan file is deleted.
    // A workspace's own `schedule` (validated at load) overrides the probe's for it alone.
    return config.iac.map((entry) => ({
      name: entry.name,
      timeoutMs: entry.timeoutMinutes * 60_000 + RUNNER_MARGIN_MS,
      ...(entry.schedule !== undefined && { schedule: entry.schedule }),
      spec: {
        entry,
        declaredDirs,
        inflightKey: `${config.redis.prefix}:iac-drift:in-flight:${entry.name}`,
        timeoutMs: entry.timeoutMinutes * 60_000,
      },
    }));
  },
  async collect(ctx) {
    ctx.signal.throwIfAborted();
    const { entry, declaredDirs, inflightKey, timeoutMs } = ctx.target.spec;
    if (entry.discover !== undefined) return collectCoverage(entry.discover, declaredDirs);
    const previous = ctx.previous ? previousConfirmation(ctx.previous.findings, ctx.target.name) : undefined;
    return collectWorkspace({ entry, timeoutMs, redis: ctx.redis, inflightKey, signal: ctx.signal, log: ctx.log, now: ctx.now, previous }, ctx.target.name);
  },
  evaluate: evaluateIac,
  gauges: [driftGauge],
  sourceFreshness(o) {
    return o.kind === 'workspace' && o.evidence.planFile ? new Date(o.evidence.planFile.modifiedAt) : undefined;
  },
});
