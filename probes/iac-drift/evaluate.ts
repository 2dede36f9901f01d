import { z } from 'zod';
import type { Finding } from '../../src/probe/contract.js';
import { canonicalJson, diffAttributes, jsonEqual, sha256, type ChangedAttribute } from './diff.js';
import { describeRule, globMatch, ruleEndsAt, type IgnoreRule } from './ignore-rules.js';
import { NOISE_CATALOG, NOISE_IDS } from './noise.js';
import type { ParsedPlan, ResourceChange } from './plan-json.js';

/** The probe's params, validated at config load time. */
export const Params = z.strictObject({
  /**
   * Consecutive runs, at least {@link CONFIRM_GAP_MINUTES} minutes apart, that must show the same
   * drift digest before the workspace goes red; until then it is unknown ("suspected drift").
   * Default 2; `1` reports drift at the first run (a CI gate with `vigil run-once`).
   */
  confirmRuns: z.number().int().min(1).max(20).default(2),
  /** Output-only changes count as code not applied. Default false (exit code 2 fires on them too). */
  countOutputs: z.boolean().default(false),
  /** Built-in noise catalog entries switched off (their changes then count as drift). */
  disableNoise: z.array(z.enum(NOISE_IDS as [string, ...string[]])).default([]),
  /** A `planFile` older than this is unknown (stale). Default 48 hours. */
  planFileMaxAgeHours: z.number().positive().default(48),
});
export type Params = z.output<typeof Params>;

/** Per-address findings listed per run; the rest are counted (the digest covers them all). */
export const MAX_ITEM_FINDINGS = 2_000;

/** Runs closer together than this count once toward `confirmRuns`. */
export const CONFIRM_GAP_MINUTES = 10;

/** The confirmation state carried from one run to the next (in the workspace finding's details). */
export const Confirmation = z.strictObject({
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  runs: z.number().int().min(1),
  lastCountedAt: z.string(),
});
export type Confirmation = z.infer<typeof Confirmation>;

/** An ignore rule with where it was written. */
export interface SourcedRule {
  rule: IgnoreRule;
  source: 'config' | 'vigil.drift-ignore.yaml';
}

/** Evidence of how the plan was obtained: published in the workspace finding's details. */
export interface RunEvidence {
  /** `tofu`, `terraform` or the configured path's base name. */
  tool: string;
  mode: 'plan' | 'refresh-only' | 'planFile';
  exitCode?: number | null;
  durationMs?: number;
  /** Git commit of `dir` when it is a checkout. */
  commit?: string;
  stateSerialBefore?: number;
  stateSerialAfter?: number;
  /** planFile mode: the file read and when it was written. */
  planFile?: { path: string; modifiedAt: string };
}

/** What collect hands to evaluate for one workspace. Holds plan values: never published as is. */
export interface WorkspaceObservation {
  kind: 'workspace';
  workspace: string;
  evidence: RunEvidence;
  /** Why the plan could not be judged (exit 1, timeout, missing binary, access denied…); the plan is absent then. */
  failure?: string;
  plan?: ParsedPlan;
  rules: SourcedRule[];
  /** `vigil.drift-ignore.yaml` exists but is invalid: unknown, never silently ignored. */
  rulesProblem?: string;
  /** The confirmation state of the previous run of this workspace, if any. */
  previous?: Confirmation;
}

/** What collect hands to evaluate for a `discover` root. */
export interface CoverageObservation {
  kind: 'coverage';
  root: string;
  /** Directories under the root with a backend/cloud block, relative to it. */
  found: string[];
  /** Of those, the ones no workspace declares. */
  undeclared: string[];
  failure?: string;
}

export type IacObservation = WorkspaceObservation | CoverageObservation;

type Kind = 'changed-outside-code' | 'code-not-applied';

/** One change of a resource, reduced to what may be published. */
interface ItemChange {
  kind: Kind;
  actions: string[];
  previousAddress?: string;
  actionReason?: string;
  attributes: ChangedAttribute[];
  attributesTotal: number;
}

const KIND_TEXT: Record<Kind, string> = {
  'changed-outside-code': 'changed outside the code',
  'code-not-applied': 'code not applied',
};

const isNoop = (actions: readonly string[]) => actions.every((a) => a === 'no-op' || a === 'read');
/** Only an in-place update may be suppressed or called noise: a delete or replacement never is. */
const isUpdateOnly = (actions: readonly string[]) => actions.length === 1 && actions[0] === 'update';

function reduce(rc: ResourceChange, kind: Kind): ItemChange {
  const { paths, total } = diffAttributes(rc.before, rc.after, { beforeSensitive: rc.beforeSensitive, afterSensitive: rc.afterSensitive, afterUnknown: rc.afterUnknown });
  return {
    kind,
    actions: rc.actions,
    ...(rc.previousAddress ? { previousAddress: cleanAddress(rc.previousAddress) } : {}),
    ...(rc.actionReason ? { actionReason: cleanAddress(rc.actionReason) } : {}),
    attributes: paths,
    attributesTotal: total,
  };
}

/** An address as published: one line, bounded (a hostile plan file could carry anything there). */
function cleanAddress(address: string): string {
  const one = address.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, '?');
  return one.length > 500 ? `${one.slice(0, 500)}…` : one;
}

/** The drift items of a plan before ignore rules: address → its changes. */
export function driftItems(plan: ParsedPlan, countOutputs: boolean): Map<string, { type: string; changes: ItemChange[] }> {
  const items = new Map<string, { type: string; changes: ItemChange[] }>();
  const add = (raw: string, type: string, change: ItemChange) => {
    const address = cleanAddress(raw);
    const item = items.get(address) ?? { type, changes: [] };
    item.changes.push(change);
    items.set(address, item);
  };
  for (const rc of plan.drift) {
    // Data sources are re-read every plan; a move whose object is unchanged is a rename, not drift.
    if (rc.mode !== 'managed' || isNoop(rc.actions)) continue;
    if (jsonEqual(rc.before, rc.after) && !rc.actions.includes('delete')) continue;
    add(rc.address, rc.type, reduce(rc, 'changed-outside-code'));
  }
  for (const rc of plan.changes) {
    if (rc.mode !== 'managed' || isNoop(rc.actions)) continue;
    add(rc.address, rc.type, reduce(rc, 'code-not-applied'));
  }
  if (countOutputs) {
    for (const o of plan.outputChanges) {
      if (isNoop(o.actions)) continue;
      add(`output.${o.name}`, 'output', { kind: 'code-not-applied', actions: o.actions, attributes: [], attributesTotal: 0 });
    }
  }
  return items;
}

/** The canonical hash of what is drifted: equal plans give equal digests whatever their order. */
export function driftDigest(items: ReadonlyArray<{ address: string; changes: readonly ItemChange[] }>): string {
  const canonical = [...items]
    .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0))
    .map((i) => ({
      address: i.address,
      changes: i.changes.map((c) => ({
        kind: c.kind,
        actions: c.actions,
        attributes: c.attributes.map((a) => [a.path, a.beforeSha256 ?? null, a.afterSha256 ?? null, a.sensitive ?? false]),
        total: c.attributesTotal,
      })),
    }));
  return sha256(canonicalJson(canonical));
}

/** Confirmation after this run: counts a run only when it is ≥ 10 minutes after the last counted one. */
export function confirm(previous: Confirmation | undefined, digest: string, now: Date): Confirmation {
  if (previous && previous.digest === digest) {
    const last = Date.parse(previous.lastCountedAt);
    if (Number.isFinite(last) && now.getTime() - last < CONFIRM_GAP_MINUTES * 60_000) return previous;
    return { digest, runs: previous.runs + 1, lastCountedAt: now.toISOString() };
  }
  return { digest, runs: 1, lastCountedAt: now.toISOString() };
}

function evidenceDetails(o: WorkspaceObservation): Record<string, unknown> {
  const e = o.evidence;
  return {
    tool: e.tool,
    toolVersion: o.plan?.toolVersion ?? null,
    mode: e.mode,
    exitCode: e.exitCode ?? null,
    durationMs: e.durationMs ?? null,
    commit: e.commit ?? null,
    stateSerialBefore: e.stateSerialBefore ?? null,
    stateSerialAfter: e.stateSerialAfter ?? null,
    ...(e.planFile ? { planFile: e.planFile } : {}),
    ...(o.plan ? { formatVersion: o.plan.formatVersion } : {}),
  };
}

function evaluateCoverage(o: CoverageObservation): Finding[] {
  if (o.failure) return [{ resource: `discover:${o.root}`, outcome: 'unknown', message: `could not search ${o.root} for root modules: ${o.failure}` }];
  const findings: Finding[] = o.undeclared.map((dir) => ({
    resource: `discover:${o.root}/${dir}`,
    outcome: 'unknown',
    message: `not monitored: ${dir} under ${o.root} has a backend/cloud block but no iac: workspace declares it — add it (dir: ${dir}) so its drift is checked`,
    details: { root: o.root, dir },
  }));
  findings.push({
    resource: `discover:${o.root}`,
    outcome: o.undeclared.length === 0 ? 'pass' : 'unknown',
    message:
      o.undeclared.length === 0
        ? `every root module with a backend under ${o.root} (${o.found.length}) is declared as a workspace`
        : `${o.undeclared.length} of ${o.found.length} root modules with a backend under ${o.root} are not monitored`,
    details: { root: o.root, found: o.found, notMonitored: o.undeclared },
  });
  return findings;
}

/**
 * The pure verdict on one workspace (or discover root); see README.md. One finding for the
 * workspace (resource = its name) carrying the evidence, counts, digest and confirmation state,
 * plus one finding per drifted resource address (`<workspace>/<address>`).
 */
export function evaluateIac(o: IacObservation, params: Params, now: Date): Finding[] {
  if (o.kind === 'coverage') return evaluateCoverage(o);
  const ws = o.workspace;
  const evidence = evidenceDetails(o);
  const unknown = (message: string, extra: Record<string, unknown> = {}): Finding[] => [
    { resource: ws, outcome: 'unknown', message, details: { ...evidence, ...extra } },
  ];
  if (o.failure) return unknown(`could not check workspace ${ws}: ${o.failure}`);
  if (o.rulesProblem) return unknown(`could not check workspace ${ws}: ${o.rulesProblem}`);
  if (o.evidence.planFile) {
    const ageHours = (now.getTime() - Date.parse(o.evidence.planFile.modifiedAt)) / 3_600_000;
    if (!(ageHours <= params.planFileMaxAgeHours)) {
      return unknown(`the plan file of ${ws} is ${Math.round(ageHours)} h old (limit ${params.planFileMaxAgeHours} h): CI has not produced a fresh plan — check the pipeline that writes it`);
    }
  }
  const plan = o.plan;
  if (!plan) return unknown(`could not check workspace ${ws}: no plan was read`);
  if (plan.errored) {
    return unknown(`the plan of ${ws} is partial (errored: true): the tool stopped on an error, so no verdict — fix the error shown by \`plan\` and the next run judges it`);
  }

  const raw = driftItems(plan, params.countOutputs);
  const nowMs = now.getTime();
  const active = o.rules.filter((r) => ruleEndsAt(r.rule) > nowMs);
  const expired = o.rules.filter((r) => ruleEndsAt(r.rule) <= nowMs);
  const noise = NOISE_CATALOG.filter((n) => !params.disableNoise.includes(n.id));
  const suppressed: Array<Record<string, unknown>> = [];
  const noiseSeen: Array<Record<string, unknown>> = [];
  const refused: Array<Record<string, unknown>> = [];
  const items: Array<{ address: string; changes: ItemChange[] }> = [];

  for (const [address, item] of raw) {
    const kept: ItemChange[] = [];
    for (const change of item.changes) {
      if (!isUpdateOnly(change.actions) || change.attributesTotal > change.attributes.length) {
        // Never hide a delete or replacement; nor a change whose paths were not all listed.
        for (const r of active) {
          if (globMatch(r.rule.address, address) && change.attributes.some((a) => globMatch(r.rule.attribute, a.path))) {
            refused.push({ address, actions: change.actions, rule: describeRule(r.rule, r.source) });
          }
        }
        kept.push(change);
        continue;
      }
      const remaining: ChangedAttribute[] = [];
      for (const attr of change.attributes) {
        const n = change.kind === 'changed-outside-code' ? noise.find((e) => e.resourceType === item.type && globMatch(e.attribute, attr.path)) : undefined;
        if (n) {
          noiseSeen.push({ address, attribute: attr.path, noise: n.id, citation: n.citation });
          continue;
        }
        const rule = active.find((r) => globMatch(r.rule.address, address) && globMatch(r.rule.attribute, attr.path));
        if (rule) {
          suppressed.push({ address, kind: change.kind, attribute: attr.path, rule: describeRule(rule.rule, rule.source) });
          continue;
        }
        remaining.push(attr);
      }
      // A change the tool reported but whose values show no difference (write-only or redacted values) is still a change.
      if (remaining.length > 0 || change.attributes.length === 0) kept.push({ ...change, attributes: remaining, attributesTotal: remaining.length });
    }
    if (kept.length > 0) items.push({ address, changes: kept });
  }

  const outputChanges = plan.outputChanges.filter((c) => !isNoop(c.actions)).length;
  const counts = {
    driftItems: items.filter((i) => i.changes.some((c) => c.kind === 'changed-outside-code')).length,
    codeChanges: items.filter((i) => i.changes.some((c) => c.kind === 'code-not-applied')).length,
    outputChanges,
    suppressed: suppressed.length,
    noise: noiseSeen.length,
  };
  const expiredRules = expired.map((r) => describeRule(r.rule, r.source));
  const common = {
    ...evidence,
    counts,
    ...(suppressed.length > 0 ? { suppressed } : {}),
    ...(noiseSeen.length > 0 ? { noise: noiseSeen } : {}),
    ...(refused.length > 0 ? { ignoreRefused: refused } : {}),
    ...(expiredRules.length > 0 ? { expiredRules } : {}),
  };
  const expiredNote =
    expiredRules.length > 0 ? `; ${expiredRules.length} ignore rule(s) expired and no longer match (${expiredRules.map((r) => `${r.address} ${r.attribute}, ${r.expires}`).join('; ')}): remove or renew them` : '';
  const quiet = `${suppressed.length} suppressed by ignore rules, ${noiseSeen.length} known noise`;

  if (items.length === 0) {
    const outputs = outputChanges > 0 ? `; ${outputChanges} output-only change(s) not counted` : '';
    return [
      {
        resource: ws,
        outcome: 'pass',
        message: `workspace ${ws} matches its code (${quiet}${outputs})${expiredNote}`,
        details: { ...common, digest: null },
      },
    ];
  }

  const digest = driftDigest(items);
  const confirmation = confirm(o.previous, digest, now);
  const confirmed = confirmation.runs >= params.confirmRuns;
  const outcome = confirmed ? 'fail' : 'unknown';
  const suspected = confirmed ? '' : `suspected drift (run ${confirmation.runs} of ${params.confirmRuns} with the same drift, at least ${CONFIRM_GAP_MINUTES} minutes apart, before it is reported): `;
  const findings: Finding[] = [
    {
      resource: ws,
      outcome,
      message: `${suspected}workspace ${ws} does not match its code: ${counts.driftItems} resource(s) changed outside the code, ${counts.codeChanges} with code not applied (${quiet})${expiredNote}`,
      details: { ...common, digest, confirmation, confirmRuns: params.confirmRuns, ...(items.length > MAX_ITEM_FINDINGS ? { addressesNotListed: items.length - MAX_ITEM_FINDINGS } : {}) },
    },
  ];
  for (const item of items.slice(0, MAX_ITEM_FINDINGS)) {
    const parts = item.changes.map((c) => {
      const attrs = c.attributes.length > 0 ? `: ${c.attributes.slice(0, 5).map((a) => a.path).join(', ')}${c.attributesTotal > 5 ? `, +${c.attributesTotal - 5} more` : ''}` : '';
      return `${KIND_TEXT[c.kind]} (${c.actions.join('+')}${attrs})`;
    });
    const fix = item.changes.some((c) => c.kind === 'changed-outside-code')
      ? 'revert the change made outside the code, or change the code to match it, review and apply'
      : 'apply the reviewed change (or revert it in the code)';
    findings.push({
      resource: `${ws}/${item.address}`,
      outcome,
      message: `${suspected}${item.address} ${parts.join('; ')} — ${fix}`,
      details: { workspace: ws, address: item.address, changes: item.changes, digest },
    });
  }
  return findings;
}

/** The confirmation state in a previous result's workspace finding, if it has a valid one. */
export function previousConfirmation(findings: ReadonlyArray<{ resource: string; details?: Record<string, unknown> | undefined }>, workspace: string): Confirmation | undefined {
  const f = findings.find((x) => x.resource === workspace);
  const parsed = Confirmation.safeParse(f?.details?.confirmation);
  return parsed.success ? parsed.data : undefined;
}
