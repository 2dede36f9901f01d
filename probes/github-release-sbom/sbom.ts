/**
 * SBOM validation of github-release-sbom: a downloaded asset is SPDX 2.3 JSON or CycloneDX
 * 1.5/1.6/1.7 JSON, valid against the published JSON schema of its format and version, and names
 * at least one package. Pure (no I/O after the schemas are loaded); loaded by collect.ts only.
 *
 * - SPDX 2.3: `schemas/spdx-schema.json`, vendored from spdx/spdx-spec (see schemas/README.md),
 *   JSON Schema draft 2019-09 (Ajv2019).
 * - CycloneDX: the schemas shipped by `@cyclonedx/cyclonedx-library` (res/schema/bom-1.x.SNAPSHOT.schema.json
 *   and the spdx / jsf / cryptography-defs schemas they `$ref`), draft-07 (Ajv).
 *
 * Formats: `date-time`, `date`, `uri`… come from ajv-formats. The CycloneDX schemas also use
 * `iri-reference` and `idn-email`, which ajv-formats does not define: they are checked loosely
 * (no whitespace or control characters; one `@` with text on both sides), as CycloneDX's own
 * library does when its optional draft-2019 formats package is absent.
 *
 * `uniqueItems`: Ajv checks it by pairwise deep comparison, quadratic in the array's length — a
 * 20 000-component BOM would hold the event loop for minutes. The CycloneDX schemas' 45+
 * `uniqueItems: true` are rewritten to {@link UNIQUE_KEYWORD}, checked in linear time on each
 * item's JSON text (so two objects equal but for key order count as distinct: laxer than the
 * schema, never stricter).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import addFormatsModule from 'ajv-formats';
import spdxSchema from './schemas/spdx-schema.json' with { type: 'json' };

/** The verdict on one SBOM document. */
export type SbomCheck =
  | { valid: true; format: 'SPDX' | 'CycloneDX'; version: string; packages: number }
  | { valid: false; format?: 'SPDX' | 'CycloneDX'; version?: string; problem: string };

/** CycloneDX versions accepted (1.5 and later, as shipped by the library). */
export const CYCLONEDX_VERSIONS = ['1.5', '1.6', '1.7'] as const;

// ajv-formats is CommonJS: its default export is the plugin function (or an object holding it).
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

const looseIri = (s: string): boolean => s.length > 0 && !/[\s\u0000-\u001f\u007f]/.test(s);
const looseEmail = (s: string): boolean => /^[^\s@]+@[^\s@]+$/.test(s);

/** The linear-time stand-in for `uniqueItems: true`. */
export const UNIQUE_KEYWORD = 'x-vigil-unique-items';

/** A copy of `schema` with every `uniqueItems: true` replaced by {@link UNIQUE_KEYWORD}. */
function linearUnique(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(linearUnique);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'uniqueItems' && v === true) out[UNIQUE_KEYWORD] = true;
    // Only the keyword's `true` is rewritten: a property named uniqueItems maps to a schema object, never `true`.
    else out[k] = linearUnique(v);
  }
  return out;
}

function addLinearUnique(ajv: Ajv): void {
  ajv.addKeyword({
    keyword: UNIQUE_KEYWORD,
    type: 'array',
    schemaType: 'boolean',
    error: { message: 'must NOT have duplicate items' },
    validate: (on: boolean, data: unknown[]) => {
      if (!on) return true;
      const seen = new Set<string>();
      for (const item of data) {
        const key = typeof item === 'string' ? `s${item}` : `j${JSON.stringify(item)}`;
        if (seen.has(key)) return false;
        seen.add(key);
      }
      return true;
    },
  });
}

let spdxValidator: ValidateFunction | undefined;
const cyclonedxValidators = new Map<string, ValidateFunction>();
let cyclonedxAjv: Ajv | undefined;

function spdx(): ValidateFunction {
  if (!spdxValidator) {
    const ajv = new Ajv2019({ allErrors: false, strict: false });
    addFormats(ajv as unknown as Ajv);
    spdxValidator = ajv.compile(spdxSchema);
  }
  return spdxValidator;
}

function cyclonedx(version: string): ValidateFunction {
  let v = cyclonedxValidators.get(version);
  if (v) return v;
  const dir = path.join(path.dirname(createRequire(import.meta.url).resolve('@cyclonedx/cyclonedx-library/package.json')), 'res', 'schema');
  const load = (file: string): Record<string, unknown> => linearUnique(JSON.parse(readFileSync(path.join(dir, file), 'utf8'))) as Record<string, unknown>;
  if (!cyclonedxAjv) {
    // strict off: the schemas carry annotations (`meta:enum`, `deprecated`) Ajv's strict mode refuses.
    const ajv = new Ajv({ allErrors: false, strict: false });
    addFormats(ajv);
    ajv.addFormat('iri-reference', looseIri);
    ajv.addFormat('idn-email', looseEmail);
    addLinearUnique(ajv);
    // The bom schemas `$ref` these by their file names, relative to http://cyclonedx.org/schema/.
    for (const file of ['spdx.SNAPSHOT.schema.json', 'jsf-0.82.SNAPSHOT.schema.json', 'cryptography-defs.SNAPSHOT.schema.json']) {
      ajv.addSchema({ ...load(file), $id: `http://cyclonedx.org/schema/${file}` });
    }
    cyclonedxAjv = ajv;
  }
  v = cyclonedxAjv.compile(load(`bom-${version}.SNAPSHOT.schema.json`));
  cyclonedxValidators.set(version, v);
  return v;
}

/** `s` without control characters, cut to `max` characters (`…` marks the cut). */
function clip(s: string, max: number): string {
  const t = s.replace(/[\u0000-\u001f\u007f]/g, '?');
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

/** The first schema errors, one line: `/packages/0: must have required property 'SPDXID'`. */
function describe(errors: ErrorObject[] | null | undefined): string {
  const list = (errors ?? []).slice(0, 3).map((e) => {
    // Paths and property names come from the document: bounded and printable in a finding.
    const where = e.instancePath === '' ? '(document)' : clip(e.instancePath, 120);
    const extra = e.keyword === 'additionalProperties' ? ` "${clip(String((e.params as { additionalProperty?: unknown }).additionalProperty), 80)}"` : e.keyword === 'enum' ? ` (${((e.params as { allowedValues?: unknown[] }).allowedValues ?? []).slice(0, 5).join(', ')}…)` : '';
    return `${where}: ${e.message ?? 'invalid'}${extra}`;
  });
  return list.length > 0 ? list.join('; ') : 'invalid';
}

/** CycloneDX components, nested ones included. */
function countComponents(list: unknown, depth = 0): number {
  if (!Array.isArray(list) || depth > 32) return 0;
  let n = 0;
  for (const c of list) {
    n++;
    if (c && typeof c === 'object') n += countComponents((c as { components?: unknown }).components, depth + 1);
  }
  return n;
}

/**
 * SPDX packages that make up the inventory. When the document DESCRIBES exactly one package (its
 * subject: GitHub's export describes the repository itself), that one is not counted, as
 * CycloneDX's `metadata.component` is not: an SBOM naming only its own subject lists nothing.
 */
function spdxInventory(o: Record<string, unknown>): { packages: number; subject?: string } {
  const packages = Array.isArray(o.packages) ? (o.packages as unknown[]) : [];
  const docId = typeof o.SPDXID === 'string' ? o.SPDXID : 'SPDXRef-DOCUMENT';
  const described = new Set<string>();
  if (Array.isArray(o.documentDescribes)) for (const id of o.documentDescribes) if (typeof id === 'string') described.add(id);
  if (Array.isArray(o.relationships)) {
    for (const r of o.relationships as Array<Record<string, unknown> | null>) {
      if (!r || typeof r !== 'object') continue;
      if (r.relationshipType === 'DESCRIBES' && r.spdxElementId === docId && typeof r.relatedSpdxElement === 'string') described.add(r.relatedSpdxElement);
      if (r.relationshipType === 'DESCRIBED_BY' && r.relatedSpdxElement === docId && typeof r.spdxElementId === 'string') described.add(r.spdxElementId);
    }
  }
  const [subject] = described;
  if (described.size !== 1 || subject === undefined) return { packages: packages.length };
  const isSubject = (p: unknown): boolean => !!p && typeof p === 'object' && (p as { SPDXID?: unknown }).SPDXID === subject;
  if (!packages.some(isSubject)) return { packages: packages.length };
  return { packages: packages.filter((p) => !isSubject(p)).length, subject };
}

/** Checks one downloaded asset. Never throws on its content. */
export function checkSbom(bytes: Buffer): SbomCheck {
  try {
    return checkParsed(bytes);
  } catch (err) {
    // A document nested deep enough to exhaust the stack in the schema walk.
    if (err instanceof RangeError) return { valid: false, problem: 'nested too deeply to validate' };
    throw err;
  }
}

function checkParsed(bytes: Buffer): SbomCheck {
  let text = bytes.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { valid: false, problem: `not JSON (${(err as Error).message.slice(0, 80)})` };
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return { valid: false, problem: 'not a JSON object: neither SPDX nor CycloneDX' };
  const o = doc as Record<string, unknown>;
  if (typeof o.spdxVersion === 'string') {
    const version = o.spdxVersion.replace(/^SPDX-/, '');
    if (o.spdxVersion !== 'SPDX-2.3') return { valid: false, format: 'SPDX', version, problem: `spdxVersion is "${o.spdxVersion.slice(0, 20)}": only SPDX-2.3 JSON is accepted` };
    const validate = spdx();
    if (!validate(doc)) return { valid: false, format: 'SPDX', version, problem: `not valid SPDX 2.3: ${describe(validate.errors)}` };
    const { packages, subject } = spdxInventory(o);
    if (packages === 0) {
      const only = subject !== undefined ? ` besides the one it describes (${subject.slice(0, 80)})` : '';
      return { valid: false, format: 'SPDX', version, problem: `valid SPDX 2.3 but names no package${only}` };
    }
    return { valid: true, format: 'SPDX', version, packages };
  }
  if (o.bomFormat === 'CycloneDX') {
    const version = typeof o.specVersion === 'string' ? o.specVersion : '';
    if (!(CYCLONEDX_VERSIONS as readonly string[]).includes(version)) {
      return { valid: false, format: 'CycloneDX', version, problem: `specVersion is "${version.slice(0, 20)}": CycloneDX ${CYCLONEDX_VERSIONS.join(', ')} JSON is accepted` };
    }
    const validate = cyclonedx(version);
    if (!validate(doc)) return { valid: false, format: 'CycloneDX', version, problem: `not valid CycloneDX ${version}: ${describe(validate.errors)}` };
    const packages = countComponents(o.components);
    if (packages === 0) return { valid: false, format: 'CycloneDX', version, problem: `valid CycloneDX ${version} but names no component` };
    return { valid: true, format: 'CycloneDX', version, packages };
  }
  return { valid: false, problem: 'neither SPDX (no spdxVersion) nor CycloneDX (no bomFormat: "CycloneDX") JSON' };
}
