import { z } from 'zod';

/**
 * Reading `tofu show -json` / `terraform show -json` plan documents.
 *
 * Only the fields the verdict needs are read, each through a zod schema, everything else is
 * ignored: the plan JSON has grown over releases (`format_version` 0.1 to 1.2) and OpenTofu
 * leaves out fields Terraform writes (`errored`, `applyable`, `complete`, identities). A minor
 * version bump is additive by the format's own rules, so any 0.x and 1.x parses; another major
 * is refused, because its meaning is unknown.
 */

/** The `format_version` majors this parser understands. */
export const SUPPORTED_FORMAT_MAJORS: readonly number[] = [0, 1];

/** Largest plan document read, in bytes: a plan of 5,000 resources is a few MB. */
export const MAX_PLAN_BYTES = 256 * 1024 * 1024;

const Change = z.looseObject({
  actions: z.array(z.string()).min(1),
  before: z.unknown().optional(),
  after: z.unknown().optional(),
  after_unknown: z.unknown().optional(),
  before_sensitive: z.unknown().optional(),
  after_sensitive: z.unknown().optional(),
});

const ResourceChangeJson = z.looseObject({
  address: z.string().min(1),
  previous_address: z.string().optional(),
  /** Absent in some 0.1 documents for managed resources. */
  mode: z.string().optional(),
  type: z.string().optional(),
  action_reason: z.string().optional(),
  change: Change,
});

const PlanJson = z.looseObject({
  format_version: z.string(),
  terraform_version: z.string().optional(),
  /** Terraform ≥ 1.6 writes it; OpenTofu only when true (plan-error). */
  errored: z.boolean().optional(),
  resource_drift: z.array(ResourceChangeJson).optional(),
  resource_changes: z.array(ResourceChangeJson).optional(),
  output_changes: z.record(z.string(), z.looseObject({ actions: z.array(z.string()).min(1) })).optional(),
});

/** One entry of `resource_drift` or `resource_changes`, as the evaluation needs it. */
export interface ResourceChange {
  address: string;
  previousAddress: string | undefined;
  mode: string;
  type: string;
  actions: string[];
  actionReason: string | undefined;
  before: unknown;
  after: unknown;
  afterUnknown: unknown;
  beforeSensitive: unknown;
  afterSensitive: unknown;
}

/** A plan document reduced to what the verdict reads. Holds values: never leaves the probe as is. */
export interface ParsedPlan {
  formatVersion: string;
  /** `terraform_version` (OpenTofu writes its own version there too); undefined when absent. */
  toolVersion: string | undefined;
  errored: boolean;
  drift: ResourceChange[];
  changes: ResourceChange[];
  /** Output names with their actions; values are never kept (outputs may be sensitive). */
  outputChanges: Array<{ name: string; actions: string[] }>;
}

/** The outcome of parsing: a plan, or why it could not be read (a reason safe to publish). */
export type PlanParse = { ok: true; plan: ParsedPlan } | { ok: false; reason: string };

function toChange(r: z.output<typeof ResourceChangeJson>): ResourceChange {
  return {
    address: r.address,
    previousAddress: r.previous_address,
    mode: r.mode ?? 'managed',
    type: r.type ?? typeFromAddress(r.address),
    actions: r.change.actions,
    actionReason: r.action_reason,
    before: r.change.before ?? null,
    after: r.change.after ?? null,
    afterUnknown: r.change.after_unknown ?? false,
    // A plan without sensitivity masks (format 0.x) says nothing about what is secret: treat every value as sensitive
    // (paths only, no hashes) rather than hash a password as if it were ordinary.
    beforeSensitive: r.change.before_sensitive ?? true,
    afterSensitive: r.change.after_sensitive ?? true,
  };
}

/** `module.a.aws_x.name[0]` → `aws_x`; used only when an old document leaves `type` out. */
function typeFromAddress(address: string): string {
  const parts = address.replace(/\[[^\]]*\]/g, '').split('.');
  const data = parts[parts.length - 3] === 'data';
  return parts[parts.length - 2] ?? (data ? 'data' : '');
}

/** Parses a plan document from text. Never throws: hostile input gives `{ ok: false }`. */
export function parsePlanJson(text: string): PlanParse {
  if (text.length > MAX_PLAN_BYTES) return { ok: false, reason: `the plan JSON is larger than ${MAX_PLAN_BYTES / 1024 / 1024} MB` };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'the plan output is not valid JSON' };
  }
  return parsePlanValue(raw);
}

/** As {@link parsePlanJson}, from a value already parsed. */
export function parsePlanValue(raw: unknown): PlanParse {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, reason: 'the plan JSON is not an object' };
  const version = (raw as { format_version?: unknown }).format_version;
  if (typeof version !== 'string') return { ok: false, reason: 'the plan JSON has no format_version: is it a `show -json` of a plan file?' };
  const m = /^(\d+)\.(\d+)$/.exec(version);
  if (!m || !SUPPORTED_FORMAT_MAJORS.includes(Number(m[1]))) {
    // Not echoing the value: it is attacker-controlled text.
    return { ok: false, reason: 'the plan JSON has a format_version this vigil does not know (it reads 0.x and 1.x)' };
  }
  const parsed = PlanJson.safeParse(raw);
  if (!parsed.success) {
    const where = parsed.error.issues[0]?.path.slice(0, 3).map(String).join('.') ?? '';
    return { ok: false, reason: `the plan JSON does not have the expected shape${where ? ` (at ${where})` : ''}` };
  }
  const p = parsed.data;
  return {
    ok: true,
    plan: {
      formatVersion: version,
      toolVersion: p.terraform_version,
      errored: p.errored === true,
      drift: (p.resource_drift ?? []).map(toChange),
      changes: (p.resource_changes ?? []).map(toChange),
      outputChanges: Object.entries(p.output_changes ?? {}).map(([name, c]) => ({ name, actions: c.actions })),
    },
  };
}
