import { createHash } from 'node:crypto';

/**
 * The deep diff of a resource's `before`/`after`, reduced to what may leave the probe: attribute
 * paths, a SHA-256 of each changed value, and plain values only for an allow-list of harmless
 * attributes. Values marked in `before_sensitive`/`after_sensitive` get neither a value nor a hash
 * (a hash of a short password can be brute-forced).
 */

/** One changed attribute, safe to publish. */
export interface ChangedAttribute {
  /** e.g. `tags.Owner`, `ingress[0].cidr_blocks[1]`; `(resource)` for a whole-object change beyond the depth limit. */
  path: string;
  /** Sensitive on either side: no value and no hash. */
  sensitive?: true;
  /** SHA-256 (hex) of the canonical JSON of the value before; absent when the attribute was absent or sensitive. */
  beforeSha256?: string;
  afterSha256?: string;
  /** The value will be known after apply (after_unknown). */
  knownAfterApply?: true;
  /** Plain values: only for allow-listed, non-sensitive attributes (tags), strings cut at 256 characters. */
  before?: unknown;
  after?: unknown;
}

/** Top-level attributes whose values are shown in clear (never when marked sensitive). */
export const PLAIN_VALUE_ATTRIBUTES: ReadonlySet<string> = new Set(['tags', 'tags_all', 'labels']);

/** Paths listed per resource; the rest are counted. */
export const MAX_PATHS_PER_RESOURCE = 100;

/** Nesting followed by the diff; deeper documents are compared as whole values (hostile input cannot blow the stack). */
const MAX_DEPTH = 32;

type Segment = string | number;

/** Canonical JSON: object keys sorted, so equal values hash equally whatever order the tool wrote. */
export function canonicalJson(value: unknown, depth = 0): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (depth > 256) return '"(too deep)"';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v, depth + 1)).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k], depth + 1)}`).join(',')}}`;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Deep equality of two JSON values (key order ignored). */
export function jsonEqual(a: unknown, b: unknown, depth = 0): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (depth > MAX_DEPTH) return canonicalJson(a) === canonicalJson(b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => jsonEqual(v, bb[i], depth + 1));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao);
  if (ak.length !== Object.keys(bo).length) return false;
  return ak.every((k) => Object.hasOwn(bo, k) && jsonEqual(ao[k], bo[k], depth + 1));
}

/** `a.b[0]["x y"]` from segments. */
export function formatPath(segments: readonly Segment[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out === '' ? '(resource)' : out;
}

/** The mask (a `*_sensitive` or `after_unknown` value) under one path step. */
function child(mask: unknown, key: Segment): unknown {
  if (mask === true) return true;
  if (mask === null || typeof mask !== 'object') return undefined;
  return (mask as Record<string, unknown>)[key as string];
}

/** True when the mask marks this node or anything below it. */
function marks(mask: unknown, depth = 0): boolean {
  if (mask === true) return true;
  if (mask === null || typeof mask !== 'object' || depth > MAX_DEPTH) return false;
  return Object.values(mask as Record<string, unknown>).some((m) => marks(m, depth + 1));
}

const isContainer = (v: unknown): v is Record<string, unknown> | unknown[] => v !== null && typeof v === 'object';

/** A plain value for an allow-listed attribute: primitives only (the diff walks tags down to their strings). */
function plain(value: unknown): unknown {
  if (typeof value === 'string') return value.length > 256 ? `${value.slice(0, 256)}…` : value;
  if (isContainer(value)) return '(object)';
  return value;
}

interface Masks {
  beforeSensitive: unknown;
  afterSensitive: unknown;
  afterUnknown: unknown;
}

/**
 * The changed leaf attributes between `before` and `after`, with sensitivity applied. A value that
 * appears, disappears or changes type is one path; containers are followed key by key and index by
 * index. At most {@link MAX_PATHS_PER_RESOURCE} paths are returned, `total` counts them all.
 */
export function diffAttributes(before: unknown, after: unknown, masks: Masks): { paths: ChangedAttribute[]; total: number } {
  const paths: ChangedAttribute[] = [];
  let total = 0;
  const emit = (segments: Segment[], b: unknown, a: unknown, m: Masks, bPresent: boolean, aPresent: boolean): void => {
    total++;
    if (paths.length >= MAX_PATHS_PER_RESOURCE) return;
    const entry: ChangedAttribute = { path: formatPath(segments) };
    const sensitive = marks(m.beforeSensitive) || marks(m.afterSensitive);
    const unknownAfter = m.afterUnknown === true;
    if (unknownAfter) entry.knownAfterApply = true;
    if (sensitive) entry.sensitive = true;
    else {
      if (bPresent && b !== null) entry.beforeSha256 = sha256(canonicalJson(b));
      if (aPresent && a !== null && !unknownAfter) entry.afterSha256 = sha256(canonicalJson(a));
      if (typeof segments[0] === 'string' && PLAIN_VALUE_ATTRIBUTES.has(segments[0])) {
        if (bPresent) entry.before = plain(b);
        if (aPresent && !unknownAfter) entry.after = plain(a);
      }
    }
    paths.push(entry);
  };
  const walk = (segments: Segment[], b: unknown, a: unknown, m: Masks, bPresent: boolean, aPresent: boolean, depth: number): void => {
    if (m.afterUnknown === true && !isContainer(a)) {
      emit(segments, b, a, m, bPresent, aPresent);
      return;
    }
    if (bPresent && aPresent && jsonEqual(b, a)) {
      // A value equal on both sides but unknown below (a list element to be computed) still changes.
      if (!marks(m.afterUnknown)) return;
    }
    const bothObjects = isContainer(b) && isContainer(a) && Array.isArray(b) === Array.isArray(a);
    if (!bothObjects || depth >= MAX_DEPTH) {
      // The whole resource created or deleted: list its top-level attributes, not one "(resource)" line.
      if (segments.length === 0 && (isContainer(b) || isContainer(a)) && !(isContainer(b) && isContainer(a))) {
        const side = (isContainer(b) ? b : a) as Record<string, unknown>;
        const keys = new Set([...Object.keys(side), ...(isContainer(m.afterUnknown) ? Object.keys(m.afterUnknown as object) : [])]);
        for (const k of [...keys].sort()) {
          const sub = { beforeSensitive: child(m.beforeSensitive, k), afterSensitive: child(m.afterSensitive, k), afterUnknown: child(m.afterUnknown, k) };
          emit([k], isContainer(b) ? side[k] : undefined, isContainer(a) ? side[k] : undefined, sub, isContainer(b) && k in side, isContainer(a) && k in side);
        }
        if (keys.size === 0) emit(segments, b, a, m, bPresent, aPresent);
        return;
      }
      emit(segments, b, a, m, bPresent, aPresent);
      return;
    }
    if (Array.isArray(b) && Array.isArray(a)) {
      const n = Math.max(b.length, a.length);
      for (let i = 0; i < n; i++) {
        const sub = { beforeSensitive: child(m.beforeSensitive, i), afterSensitive: child(m.afterSensitive, i), afterUnknown: child(m.afterUnknown, i) };
        walk([...segments, i], b[i], a[i], sub, i < b.length, i < a.length, depth + 1);
      }
      return;
    }
    const bo = b as Record<string, unknown>;
    const ao = a as Record<string, unknown>;
    const unknownKeys = isContainer(m.afterUnknown) && !Array.isArray(m.afterUnknown) ? Object.keys(m.afterUnknown as object) : [];
    const keys = [...new Set([...Object.keys(bo), ...Object.keys(ao), ...unknownKeys])].sort();
    for (const k of keys) {
      const sub = { beforeSensitive: child(m.beforeSensitive, k), afterSensitive: child(m.afterSensitive, k), afterUnknown: child(m.afterUnknown, k) };
      const bp = Object.hasOwn(bo, k);
      const ap = Object.hasOwn(ao, k);
      if (!bp && !ap && sub.afterUnknown !== true) continue;
      walk([...segments, k], bo[k], ao[k], sub, bp, ap, depth + 1);
    }
  };
  walk([], before, after, masks, before !== null && before !== undefined, after !== null && after !== undefined, 0);
  return { paths, total };
}
