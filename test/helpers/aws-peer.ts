/**
 * A local AWS on loopback (node:http, port 0) that speaks the wire protocols the real SDK v3
 * clients use, for the AWS probes' tests and benchmark:
 *
 * - **IAM and STS**: the query protocol — form-encoded `Action=…&Version=…` POSTs, XML answers
 *   (`<XResponse><XResult>…</XResult><ResponseMetadata>`), and the XML error envelope
 *   (`<ErrorResponse><Error><Type>Sender</Type><Code>…`), as in botocore's recorded IAM bodies.
 * - **AWS Config**: JSON 1.1 — `X-Amz-Target: StarlingDoveService.<Operation>`,
 *   `application/x-amz-json-1.1`, errors as `{"__type": …, "message": …}`.
 * - **AWS Backup**: REST-JSON — the operation from the HTTP method and path (the model's
 *   `requestUri` templates), its input from the path and query string by the members' locations
 *   (an unknown or out-of-range parameter is refused), JSON answers paginated by `NextToken` /
 *   `MaxResults` as the paginators file says.
 * - **SigV4**: every request's signature is recomputed with the secret key the test registered
 *   (canonical request, string to sign, HMAC key chain, over the body's SHA-256); a wrong secret
 *   is refused as AWS refuses it (`SignatureDoesNotMatch` / `InvalidSignatureException`), an
 *   unknown key with `InvalidClientTokenId` / `UnrecognizedClientException`, expired session
 *   credentials with `ExpiredToken`. The signing region and service are recorded, so a test can
 *   check IAM was signed for us-east-1.
 * - **AssumeRole**: mints session credentials for a configured role (external id checked) that
 *   answer as the role's account from then on.
 *
 * Every IAM and Config answer is serialised **from the botocore API models** in
 * `../shared/testdata/aws/models/` (a member, enum value or type the model does not have throws
 * in the peer, failing the test), and the default payloads are AWS's own: botocore's recorded
 * GetAccountSummary and ListVirtualMFADevices bodies, the AWS CLI examples for Config, the two
 * credential-report layouts. STS has no model in the test data; its two answers follow the
 * STS API reference.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';

/** The repository root (the nearest directory with a package.json), whether run from test/ or from dist/. */
function repoRoot(): string {
  for (let dir = import.meta.dirname; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return import.meta.dirname;
  }
}

/** Where the AWS test material lives: the copy in test/fixtures/testdata/aws (see its README; VIGIL_AWS_TESTDATA overrides). */
export const AWS_TESTDATA = process.env.VIGIL_AWS_TESTDATA ?? path.resolve(repoRoot(), 'test/fixtures/testdata/aws');

function testdata(file: string): string {
  return readFileSync(path.join(AWS_TESTDATA, file), 'utf8');
}

// ---------------------------------------------------------------------------------------------
// Models.

interface ShapeRef {
  shape: string;
  locationName?: string;
  flattened?: boolean;
  /** REST protocols: where an input member travels (`uri`, `querystring`, `header`). */
  location?: string;
}
interface Shape {
  type: string;
  members?: Record<string, ShapeRef>;
  required?: string[];
  member?: ShapeRef;
  key?: ShapeRef;
  value?: ShapeRef;
  enum?: string[];
  flattened?: boolean;
  locationName?: string;
  min?: number;
  max?: number;
}
interface Model {
  metadata: { xmlNamespace?: string; targetPrefix?: string };
  operations: Record<string, { http?: { method: string; requestUri: string }; input?: { shape: string }; output?: { shape: string; resultWrapper?: string } }>;
  shapes: Record<string, Shape>;
}

let models: { iam: Model; config: Model; backup: Model } | undefined;
function loadModels(): { iam: Model; config: Model; backup: Model } {
  models ??= {
    iam: JSON.parse(testdata('models/botocore.iam.2010-05-08.service-2.json')) as Model,
    config: JSON.parse(testdata('models/botocore.config.2014-11-12.service-2.json')) as Model,
    backup: JSON.parse(testdata('models/botocore.backup.2018-11-15.service-2.json')) as Model,
  };
  return models;
}

/** Thrown when the peer would answer something the AWS model does not allow: a bug in the test or peer. */
export class ModelViolation extends Error {
  override name = 'ModelViolation';
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function checkEnum(shape: Shape, value: string, where: string): void {
  // Case-insensitive: AWS itself answers outside its enums' case (Config's lastStatus `SUCCESS` vs `Success`).
  if (shape.enum && !shape.enum.some((e) => e.toLowerCase() === value.toLowerCase())) throw new ModelViolation(`${where}: ${value} is not one of ${shape.enum.join(', ')}`);
}

function toDate(value: unknown, where: string): Date {
  const d = value instanceof Date ? value : new Date(value as string);
  if (Number.isNaN(d.getTime())) throw new ModelViolation(`${where}: not a timestamp`);
  return d;
}

/** Serialises `value` as the query protocol's XML for `shapeName`, refusing anything the model does not have. */
function toXml(model: Model, shapeName: string, value: unknown, where: string): string {
  const shape = model.shapes[shapeName];
  if (!shape) throw new ModelViolation(`${where}: no shape ${shapeName}`);
  switch (shape.type) {
    case 'structure': {
      if (typeof value !== 'object' || value === null) throw new ModelViolation(`${where}: expected an object for ${shapeName}`);
      const obj = value as Record<string, unknown>;
      for (const k of Object.keys(obj)) if (!shape.members?.[k]) throw new ModelViolation(`${where}: ${shapeName} has no member ${k}`);
      for (const r of shape.required ?? []) if (obj[r] === undefined) throw new ModelViolation(`${where}: ${shapeName}.${r} is required`);
      let out = '';
      for (const [name, ref] of Object.entries(shape.members ?? {})) {
        const v = obj[name];
        if (v === undefined) continue;
        const tag = ref.locationName ?? name;
        const inner = model.shapes[ref.shape];
        if (inner?.type === 'list' && (inner.flattened || ref.flattened)) {
          for (const item of v as unknown[]) out += `<${tag}>${toXml(model, inner.member!.shape, item, `${where}.${name}`)}</${tag}>`;
        } else out += `<${tag}>${toXml(model, ref.shape, v, `${where}.${name}`)}</${tag}>`;
      }
      return out;
    }
    case 'list': {
      if (!Array.isArray(value)) throw new ModelViolation(`${where}: expected a list for ${shapeName}`);
      const tag = shape.member!.locationName ?? 'member';
      return value.map((item, i) => `<${tag}>${toXml(model, shape.member!.shape, item, `${where}[${i}]`)}</${tag}>`).join('');
    }
    case 'map': {
      if (typeof value !== 'object' || value === null) throw new ModelViolation(`${where}: expected a map`);
      return Object.entries(value as Record<string, unknown>)
        .map(([k, v]) => `<entry><key>${toXml(model, shape.key!.shape, k, `${where}.key`)}</key><value>${toXml(model, shape.value!.shape, v, `${where}.${k}`)}</value></entry>`)
        .join('');
    }
    case 'string':
      if (typeof value !== 'string') throw new ModelViolation(`${where}: expected a string`);
      checkEnum(shape, value, where);
      return escapeXml(value);
    case 'timestamp':
      return toDate(value, where).toISOString().replace(/\.\d{3}Z$/, 'Z');
    case 'blob':
      if (!(value instanceof Uint8Array)) throw new ModelViolation(`${where}: expected bytes`);
      return Buffer.from(value).toString('base64');
    case 'boolean':
      if (typeof value !== 'boolean') throw new ModelViolation(`${where}: expected a boolean`);
      return String(value);
    case 'integer':
    case 'long':
      if (!Number.isInteger(value)) throw new ModelViolation(`${where}: expected an integer`);
      return String(value);
    default:
      throw new ModelViolation(`${where}: shape type ${shape.type} not supported by the peer`);
  }
}

/** Checks `value` against `shapeName` and converts it to JSON 1.1 (timestamps as epoch seconds). */
function toJson(model: Model, shapeName: string, value: unknown, where: string): unknown {
  const shape = model.shapes[shapeName];
  if (!shape) throw new ModelViolation(`${where}: no shape ${shapeName}`);
  switch (shape.type) {
    case 'structure': {
      if (typeof value !== 'object' || value === null) throw new ModelViolation(`${where}: expected an object for ${shapeName}`);
      const obj = value as Record<string, unknown>;
      for (const r of shape.required ?? []) if (obj[r] === undefined) throw new ModelViolation(`${where}: ${shapeName}.${r} is required`);
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(obj)) {
        const ref = shape.members?.[k];
        if (!ref) throw new ModelViolation(`${where}: ${shapeName} has no member ${k}`);
        if (v !== undefined) out[k] = toJson(model, ref.shape, v, `${where}.${k}`);
      }
      return out;
    }
    case 'list':
      if (!Array.isArray(value)) throw new ModelViolation(`${where}: expected a list`);
      return value.map((item, i) => toJson(model, shape.member!.shape, item, `${where}[${i}]`));
    case 'map':
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, toJson(model, shape.value!.shape, v, `${where}.${k}`)]));
    case 'string':
      if (typeof value !== 'string') throw new ModelViolation(`${where}: expected a string`);
      checkEnum(shape, value, where);
      return value;
    case 'timestamp':
      return toDate(typeof value === 'number' ? value * 1000 : value, where).getTime() / 1000;
    case 'boolean':
      if (typeof value !== 'boolean') throw new ModelViolation(`${where}: expected a boolean`);
      return value;
    case 'integer':
    case 'long':
      if (!Number.isInteger(value)) throw new ModelViolation(`${where}: expected an integer`);
      return value;
    default:
      throw new ModelViolation(`${where}: shape type ${shape.type} not supported by the peer`);
  }
}

// ---------------------------------------------------------------------------------------------
// AWS-published payloads.

/** botocore's recorded GetAccountSummary SummaryMap (tests/unit/response_parsing/xml), as numbers. */
export function botocoreSummaryMap(): Record<string, number> {
  const xml = testdata('botocore-response-parsing/iam-get-account-summary.xml');
  const out: Record<string, number> = {};
  for (const m of xml.matchAll(/<entry>\s*<key>(\w+)<\/key>\s*<value>(\d+)<\/value>\s*<\/entry>/g)) out[m[1] as string] = Number(m[2]);
  return out;
}

/** The 22 columns of the current credential report, in AWS's order (IAM User Guide). */
export function currentReportColumns(): string[] {
  return testdata('iam-credential-report/columns-current.txt').split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
}

/** The AWS-published 16-column report (IAM User Guide PowerShell example): its header and rows. */
export function legacyReport(): { columns: string[]; rows: string[][] } {
  const lines = testdata('iam-credential-report/aws-docs-powershell-example.legacy16col.csv').split(/\r?\n/).filter(Boolean);
  return { columns: (lines[0] as string).split(','), rows: lines.slice(1).map((l) => l.split(',')) };
}

/** One row of a report a test describes: column name → cell; missing cells are `N/A` (or `false` for the `_active`/`_enabled` ones). */
export type ReportRow = Record<string, string>;

/** Builds a credential report CSV in the current 22-column layout or AWS's older 16-column one. */
export function reportCsv(rows: readonly ReportRow[], layout: 22 | 16 = 22): string {
  const columns = layout === 22 ? currentReportColumns() : legacyReport().columns;
  const cell = (row: ReportRow, c: string): string => {
    const key = c.toLowerCase();
    const v = row[key];
    if (v !== undefined) return /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
    if (/_active$|password_enabled$/.test(key)) return 'false';
    return 'N/A';
  };
  return [columns.join(','), ...rows.map((r) => columns.map((c) => cell(r, c)).join(','))].join('\n') + '\n';
}

/** The AWS CLI example answers for Backup (awscli/examples/backup), e.g. `list-backup-jobs`. */
export function backupCliExample<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(testdata(`awscli-examples/json/backup.${name}.output1.json`)) as T;
}

/** The AWS CLI example answers for Config (awscli/examples/configservice). */
export function cliExample<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(testdata(`awscli-examples/json/configservice.${name}.output1.json`)) as T;
}

// ---------------------------------------------------------------------------------------------
// The model a test describes.

/** An IAM user of the emulated account: the credential report and the per-user calls (benchmark baseline) are derived from it. */
export interface PeerIamUser {
  name: string;
  /** Has a console password (login profile). */
  password: boolean;
  /** Has an MFA device. */
  mfa: boolean;
  /** Access key 1 active since (ISO), if any. */
  key1Since?: string;
}

/** A rule of AWS Config in one region. */
export interface PeerConfigRule {
  name: string;
  compliance: 'COMPLIANT' | 'NON_COMPLIANT' | 'NOT_APPLICABLE' | 'INSUFFICIENT_DATA';
  /** Non-compliant resources. */
  resources?: Array<{ type: string; id: string }>;
}

/** AWS Config in one region: the DescribeConfigurationRecorders / ...Status items (model shapes, JSON 1.1 names) and the rules. */
export interface PeerConfigRegion {
  recorders: Array<Record<string, unknown>>;
  statuses: Array<Record<string, unknown>>;
  rules?: PeerConfigRule[];
  /**
   * The inventory ListDiscoveredResources lists (ResourceIdentifier members: resourceType,
   * resourceId, resourceName, resourceDeletionTime); filtered by resourceType, deleted ones only
   * with includeDeletedResources, paginated by nextToken / limit (≤ 100) as AWS does.
   */
  discovered?: Array<Record<string, unknown>>;
}

/**
 * AWS Backup in one region: the items of the List* answers, as the botocore model's shapes
 * (REST-JSON member names; timestamps as ISO strings, Dates or epoch seconds). The peer filters
 * (`createdAfter`, `resourceType`, `state`, `status`, `restoreTestingPlanArn`, the vault in the
 * path) and paginates them (`NextToken`, `MaxResults`) as AWS does.
 */
export interface PeerBackupRegion {
  /** ListProtectedResources `Results` members. */
  protectedResources?: Array<Record<string, unknown>>;
  /** ListBackupVaults `BackupVaultList` members (`BackupVaultName` routes the recovery points). */
  vaults?: Array<Record<string, unknown>>;
  /** RecoveryPointByBackupVault members; each must name its `BackupVaultName`. */
  recoveryPoints?: Array<Record<string, unknown>>;
  /** ListBackupJobs `BackupJobs` members. */
  backupJobs?: Array<Record<string, unknown>>;
  /** ListRestoreTestingPlans `RestoreTestingPlans` members. */
  restoreTestingPlans?: Array<Record<string, unknown>>;
  /** ListRestoreTestingSelections members (routed by `RestoreTestingPlanName`). */
  restoreTestingSelections?: Array<Record<string, unknown>>;
  /** ListRestoreJobs `RestoreJobs` members. */
  restoreJobs?: Array<Record<string, unknown>>;
}

/** One emulated AWS account. */
export interface PeerAccount {
  /** Entries over botocore's recorded SummaryMap. */
  summary?: Record<string, number>;
  /** Virtual MFA devices (ListVirtualMFADevices `VirtualMFADevice` members); `User` may be given as an ARN string shortcut. */
  virtualMfa?: Array<{ SerialNumber: string; EnableDate?: string; userArn?: string }>;
  /** The report content (CSV). Default: built from `users`. */
  reportCsv?: string;
  /** When the account's current report was generated; undefined → none exists yet. */
  reportGeneratedAt?: Date;
  /** Non-COMPLETE answers GenerateCredentialReport gives before a new report is ready. Default 1 (`STARTED`). */
  reportPolls?: number;
  /** For the benchmark baseline and the default report. */
  users?: PeerIamUser[];
  /** IAM actions the account's principals are refused (`iam:GenerateCredentialReport`, `config:…`). */
  deny?: string[];
  /** Config per region. */
  regions?: Record<string, PeerConfigRegion>;
  /** AWS Backup per region. */
  backup?: Record<string, PeerBackupRegion>;
}

/** A long-lived access key (an IAM user of some account). */
export interface PeerKey {
  accessKeyId: string;
  secretAccessKey: string;
  account: string;
  /** Default `arn:aws:iam::<account>:user/vigil`. */
  arn?: string;
}

/** A role AssumeRole may assume. */
export interface PeerRole {
  arn: string;
  externalId?: string;
}

/** One request the peer answered. */
export interface PeerRequest {
  service: 'iam' | 'sts' | 'config' | 'backup';
  action: string;
  /** Region and service of the SigV4 credential scope. */
  signingRegion: string;
  signingService: string;
  accessKeyId: string;
  account: string | undefined;
  status: number;
  params: Record<string, unknown>;
}

export interface AwsPeerOptions {
  keys: PeerKey[];
  roles?: PeerRole[];
  accounts: Record<string, PeerAccount>;
  /** Delay before every answer, ms. */
  latencyMs?: number;
  /** Lifetime of AssumeRole credentials, seconds. Default 3600. */
  sessionSeconds?: number;
  /** AWS Backup answers at most this many items per page whatever MaxResults asks (AWS may return fewer). Default: MaxResults. */
  backupPageCap?: number;
  /** Peer clock. Default Date.now. */
  now?: () => number;
}

export interface AwsPeer {
  /** Base URL, e.g. http://127.0.0.1:PORT — use it for every `endpoints` entry. */
  readonly url: string;
  readonly requests: PeerRequest[];
  readonly accounts: Record<string, PeerAccount>;
  /** The next `count` calls of `action` (e.g. `GetAccountSummary`) get a throttling error. */
  throttleNext(action: string, count?: number): void;
  /** The next `count` calls of `action` get a 500 (`ServiceFailure` / `InternalFailure`). */
  failNext(action: string, count?: number): void;
  /** The next call of `action` gets this raw answer (malformed bodies). */
  respondNext(action: string, answer: { status: number; contentType: string; body: string }): void;
  /** Credentials minted by AssumeRole so far (to expire them). */
  readonly sessions: Array<{ accessKeyId: string; secretAccessKey: string; sessionToken: string; account: string; expiresAt: number }>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// The server.

interface Principal {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  account: string;
  arn: string;
  expiresAt?: number;
}

class PeerError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const STS_NS = 'https://sts.amazonaws.com/doc/2011-06-15/';
const IAM_NS = 'https://iam.amazonaws.com/doc/2010-05-08/';
const REPORT_REGENERATION_MS = 4 * 3_600_000;

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** RFC 3986 encoding as SigV4 wants it. */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Recomputes the request's SigV4 signature; throws the AWS error a wrong one gets. */
function verifySignature(req: IncomingMessage, body: Buffer, principals: Map<string, Principal>, json: boolean, now: number): { principal: Principal; region: string; service: string } {
  const auth = req.headers.authorization ?? '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) throw new PeerError(json ? 400 : 403, json ? 'MissingAuthenticationTokenException' : 'MissingAuthenticationToken', 'Request is missing Authentication Token');
  const [, keyId, day, region, service, signedHeaders, signature] = m as unknown as [string, string, string, string, string, string, string];
  const principal = principals.get(keyId);
  if (!principal) {
    throw new PeerError(json ? 400 : 403, json ? 'UnrecognizedClientException' : 'InvalidClientTokenId', 'The security token included in the request is invalid.');
  }
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== day) throw new PeerError(400, 'IncompleteSignature', 'Date must be in ISO-8601 basic format and match the credential scope');
  const url = new URL(req.url ?? '/', 'http://peer');
  const query = [...url.searchParams].map(([k, v]) => [uriEncode(k), uriEncode(v)] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const names = signedHeaders.split(';');
  if (!names.includes('host')) throw new PeerError(403, 'SignatureDoesNotMatch', 'host must be a signed header');
  const canonicalHeaders = names
    .map((n) => {
      const raw = req.headers[n];
      const v = Array.isArray(raw) ? raw.join(',') : (raw ?? '');
      return `${n}:${String(v).trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const canonical = ['POST' === req.method ? 'POST' : (req.method ?? 'GET'), url.pathname.split('/').map((s) => uriEncode(decodeURIComponent(s))).join('/') || '/', query.map(([k, v]) => `${k}=${v}`).join('&'), canonicalHeaders, signedHeaders, sha256(body)].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${principal.secretAccessKey}`, day), region), service), 'aws4_request');
  const expected = hmac(key, toSign);
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
    throw json
      ? new PeerError(400, 'InvalidSignatureException', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.')
      : new PeerError(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.');
  }
  if (principal.sessionToken !== undefined) {
    if (req.headers['x-amz-security-token'] !== principal.sessionToken || !names.includes('x-amz-security-token')) {
      throw new PeerError(json ? 400 : 403, json ? 'UnrecognizedClientException' : 'InvalidClientTokenId', 'The security token included in the request is invalid.');
    }
    if (principal.expiresAt !== undefined && principal.expiresAt <= now) {
      throw new PeerError(json ? 400 : 403, json ? 'ExpiredTokenException' : 'ExpiredToken', 'The security token included in the request is expired');
    }
  }
  return { principal, region, service };
}

function xmlError(status: number, code: string, message: string, ns: string): { status: number; contentType: string; body: string } {
  const type = status >= 500 ? 'Receiver' : 'Sender';
  return {
    status,
    contentType: 'text/xml',
    body: `<ErrorResponse xmlns="${ns}">\n  <Error>\n    <Type>${type}</Type>\n    <Code>${code}</Code>\n    <Message>${escapeXml(message)}</Message>\n  </Error>\n  <RequestId>${randomBytes(16).toString('hex')}</RequestId>\n</ErrorResponse>\n`,
  };
}

function jsonError(status: number, code: string, message: string): { status: number; contentType: string; body: string } {
  return { status, contentType: 'application/x-amz-json-1.1', body: JSON.stringify({ __type: code, message }) };
}

function queryResponse(model: Model | undefined, action: string, result: Record<string, unknown>, ns: string): string {
  const outputShape = model?.operations[action]?.output?.shape;
  const inner = model && outputShape ? toXml(model, outputShape, result, action) : Object.entries(result).map(([k, v]) => `<${k}>${v as string}</${k}>`).join('');
  return `<${action}Response xmlns="${ns}">\n  <${action}Result>${inner}</${action}Result>\n  <ResponseMetadata>\n    <RequestId>${randomBytes(16).toString('hex')}</RequestId>\n  </ResponseMetadata>\n</${action}Response>\n`;
}

function page<T>(items: readonly T[], marker: unknown, size: number): { items: T[]; next: string | undefined } {
  const start = typeof marker === 'string' && marker !== '' ? Number(Buffer.from(marker, 'base64').toString()) : 0;
  if (!Number.isInteger(start) || start < 0) throw new PeerError(400, 'InvalidInput', 'Invalid Marker');
  const slice = items.slice(start, start + size);
  return { items: slice, next: start + size < items.length ? Buffer.from(String(start + size)).toString('base64') : undefined };
}

/** Starts the peer on 127.0.0.1 with a free port. */
export async function startAwsPeer(options: AwsPeerOptions): Promise<AwsPeer> {
  const { iam: iamModel, config: configModel, backup: backupModel } = loadModels();
  const backupPaginators = (JSON.parse(testdata('models/botocore.backup.2018-11-15.paginators-1.json')) as { pagination: Record<string, { input_token: string; output_token: string; limit_key: string; result_key: string }> }).pagination;
  const now = options.now ?? Date.now;
  const principals = new Map<string, Principal>();
  for (const k of options.keys) principals.set(k.accessKeyId, { ...k, arn: k.arn ?? `arn:aws:iam::${k.account}:user/vigil` });
  const roles = new Map((options.roles ?? []).map((r) => [r.arn, r]));
  const requests: PeerRequest[] = [];
  const throttles = new Map<string, number>();
  const failures = new Map<string, number>();
  const raw = new Map<string, { status: number; contentType: string; body: string }>();
  const sessions: AwsPeer['sessions'] = [];
  const generating = new Map<string, number>();
  const sockets = new Set<Socket>();

  const account = (id: string): PeerAccount => {
    const a = options.accounts[id];
    if (!a) throw new PeerError(500, 'ServiceFailure', `peer has no account ${id}`);
    return a;
  };
  const denied = (p: Principal, action: string, json: boolean): PeerError | undefined => {
    if (!account(p.account).deny?.includes(action)) return undefined;
    const message = `User: ${p.arn} is not authorized to perform: ${action} on resource: ${action.startsWith('iam:') ? '*' : `arn:aws:${action.split(':')[0]}:*:${p.account}:*`} because no identity-based policy allows the ${action} action`;
    return json ? new PeerError(400, 'AccessDeniedException', message) : new PeerError(403, 'AccessDenied', message);
  };
  const reportContent = (a: PeerAccount): string =>
    a.reportCsv ??
    reportCsv([
      { user: '<root_account>', arn: `arn:aws:iam::000000000000:root`, password_enabled: 'not_supported', mfa_active: 'true' },
      ...(a.users ?? []).map((u) => ({
        user: u.name,
        arn: `arn:aws:iam::000000000000:user/${u.name}`,
        password_enabled: String(u.password),
        mfa_active: String(u.mfa),
        ...(u.key1Since ? { access_key_1_active: 'true', access_key_1_last_rotated: u.key1Since } : {}),
      })),
    ]);

  const iamAction = (p: Principal, action: string, params: Record<string, string>): Record<string, unknown> => {
    const a = account(p.account);
    switch (action) {
      case 'GetAccountSummary':
        return { SummaryMap: { ...botocoreSummaryMap(), ...a.summary } };
      case 'ListVirtualMFADevices': {
        const status = params.AssignmentStatus ?? 'Any';
        const all = (a.virtualMfa ?? []).filter((d) => status === 'Any' || (status === 'Assigned') === (d.userArn !== undefined));
        const { items, next } = page(all, params.Marker, Math.min(Number(params.MaxItems ?? 100), 1000));
        return {
          VirtualMFADevices: items.map((d) => ({
            SerialNumber: d.SerialNumber,
            ...(d.EnableDate ? { EnableDate: d.EnableDate } : {}),
            ...(d.userArn
              ? { User: d.userArn.endsWith(':root') ? { Path: '/', UserName: '', UserId: p.account, Arn: d.userArn, CreateDate: '2009-10-13T22:00:36Z' } : { Path: '/', UserName: d.userArn.split('/').pop(), UserId: 'AIDEXAMPLE4EXAMPLEXYZ', Arn: d.userArn, CreateDate: '2011-07-01T17:23:07Z' } }
              : {}),
          })),
          IsTruncated: next !== undefined,
          ...(next ? { Marker: next } : {}),
        };
      }
      case 'GenerateCredentialReport': {
        const left = generating.get(p.account);
        if (left !== undefined) {
          if (left <= 0) {
            generating.delete(p.account);
            a.reportGeneratedAt = new Date(now());
            return { State: 'COMPLETE' };
          }
          generating.set(p.account, left - 1);
          return { State: 'INPROGRESS' };
        }
        if (a.reportGeneratedAt && now() - a.reportGeneratedAt.getTime() < REPORT_REGENERATION_MS) return { State: 'COMPLETE' };
        const polls = a.reportPolls ?? 1;
        if (polls <= 0) {
          a.reportGeneratedAt = new Date(now());
          return { State: 'COMPLETE', Description: 'No report exists. Starting a new report generation task' };
        }
        generating.set(p.account, polls - 1);
        return { State: 'STARTED', Description: 'No report exists. Starting a new report generation task' };
      }
      case 'GetCredentialReport':
        if (generating.has(p.account)) throw new PeerError(404, 'ReportInProgress', 'Report generation in progress');
        if (!a.reportGeneratedAt) throw new PeerError(410, 'ReportNotPresent', 'Credential report not present');
        return { Content: Buffer.from(reportContent(a)), ReportFormat: 'text/csv', GeneratedTime: a.reportGeneratedAt };
      // The per-user calls of the benchmark's baseline (as several tools sweep MFA).
      case 'ListUsers': {
        const { items, next } = page(a.users ?? [], params.Marker, Math.min(Number(params.MaxItems ?? 100), 1000));
        return {
          Users: items.map((u, i) => ({ Path: '/', UserName: u.name, UserId: `AIDA${String(i).padStart(17, '0')}`, Arn: `arn:aws:iam::${p.account}:user/${u.name}`, CreateDate: '2020-01-01T00:00:00Z' })),
          IsTruncated: next !== undefined,
          ...(next ? { Marker: next } : {}),
        };
      }
      case 'ListMFADevices': {
        const u = (a.users ?? []).find((x) => x.name === params.UserName);
        if (!u) throw new PeerError(404, 'NoSuchEntity', `The user with name ${params.UserName} cannot be found.`);
        return { MFADevices: u.mfa ? [{ UserName: u.name, SerialNumber: `arn:aws:iam::${p.account}:mfa/${u.name}`, EnableDate: '2021-01-01T00:00:00Z' }] : [], IsTruncated: false };
      }
      case 'GetLoginProfile': {
        const u = (a.users ?? []).find((x) => x.name === params.UserName);
        if (!u || !u.password) throw new PeerError(404, 'NoSuchEntity', `Login Profile for User ${params.UserName} cannot be found.`);
        return { LoginProfile: { UserName: u.name, CreateDate: '2020-01-01T00:00:00Z', PasswordResetRequired: false } };
      }
      default:
        throw new PeerError(400, 'InvalidAction', `Could not find operation ${action} for version 2010-05-08`);
    }
  };

  const stsAction = (p: Principal, action: string, params: Record<string, string>): string => {
    if (action === 'GetCallerIdentity') {
      return `<Arn>${escapeXml(p.arn)}</Arn><UserId>AIDA${p.account}</UserId><Account>${p.account}</Account>`;
    }
    if (action === 'AssumeRole') {
      const role = roles.get(params.RoleArn ?? '');
      const refuse = () => new PeerError(403, 'AccessDenied', `User: ${p.arn} is not authorized to perform: sts:AssumeRole on resource: ${params.RoleArn}`);
      if (!role || p.sessionToken !== undefined) throw refuse();
      if ((role.externalId ?? undefined) !== (params.ExternalId ?? undefined)) throw refuse();
      if (!/^[\w+=,.@-]{2,64}$/.test(params.RoleSessionName ?? '')) throw new PeerError(400, 'ValidationError', 'RoleSessionName is invalid');
      const roleAccount = /^arn:aws:iam::(\d{12}):role\/(.+)$/.exec(role.arn);
      if (!roleAccount) throw new PeerError(400, 'ValidationError', 'RoleArn is invalid');
      const expiresAt = now() + (options.sessionSeconds ?? 3600) * 1000;
      const minted: Principal = {
        accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
        secretAccessKey: randomBytes(30).toString('base64'),
        sessionToken: randomBytes(64).toString('base64'),
        account: roleAccount[1] as string,
        arn: `arn:aws:sts::${roleAccount[1]}:assumed-role/${(roleAccount[2] as string).split('/').pop()}/${params.RoleSessionName}`,
        expiresAt,
      };
      principals.set(minted.accessKeyId, minted);
      sessions.push({ accessKeyId: minted.accessKeyId, secretAccessKey: minted.secretAccessKey, sessionToken: minted.sessionToken as string, account: minted.account, expiresAt });
      return (
        `<Credentials><AccessKeyId>${minted.accessKeyId}</AccessKeyId><SecretAccessKey>${escapeXml(minted.secretAccessKey)}</SecretAccessKey>` +
        `<SessionToken>${escapeXml(minted.sessionToken as string)}</SessionToken><Expiration>${new Date(expiresAt).toISOString()}</Expiration></Credentials>` +
        `<AssumedRoleUser><AssumedRoleId>AROA${minted.account}:${params.RoleSessionName}</AssumedRoleId><Arn>${escapeXml(minted.arn)}</Arn></AssumedRoleUser>`
      );
    }
    throw new PeerError(400, 'InvalidAction', `Could not find operation ${action} for version 2011-06-15`);
  };

  const configAction = (p: Principal, region: string, action: string, input: Record<string, unknown>): Record<string, unknown> => {
    const r = account(p.account).regions?.[region] ?? { recorders: [], statuses: [], rules: [] };
    const rules = r.rules ?? [];
    switch (action) {
      case 'DescribeConfigurationRecorders':
        return { ConfigurationRecorders: r.recorders };
      case 'DescribeConfigurationRecorderStatus':
        return { ConfigurationRecordersStatus: r.statuses };
      case 'DescribeComplianceByConfigRule': {
        const names = input.ConfigRuleNames as string[] | undefined;
        const types = input.ComplianceTypes as string[] | undefined;
        const matching = rules.filter((x) => (!names || names.includes(x.name)) && (!types || types.includes(x.compliance)));
        const { items, next } = page(matching, input.NextToken, 25);
        return {
          ComplianceByConfigRules: items.map((x) => ({
            ConfigRuleName: x.name,
            Compliance:
              x.compliance === 'NON_COMPLIANT'
                ? { ComplianceType: x.compliance, ComplianceContributorCount: { CappedCount: Math.min((x.resources ?? []).length, 100), CapExceeded: (x.resources ?? []).length > 100 } }
                : { ComplianceType: x.compliance },
          })),
          ...(next ? { NextToken: next } : {}),
        };
      }
      case 'GetComplianceDetailsByConfigRule': {
        const rule = rules.find((x) => x.name === input.ConfigRuleName);
        if (!rule) throw new PeerError(400, 'NoSuchConfigRuleException', `The ConfigRule '${String(input.ConfigRuleName)}' provided in the request is invalid. Please check the configRule name.`);
        const limit = Number(input.Limit ?? 100);
        if (!Number.isInteger(limit) || limit < 0 || limit > 100) throw new PeerError(400, 'InvalidLimitException', 'Limit must be 0-100');
        const types = (input.ComplianceTypes as string[] | undefined) ?? ['NON_COMPLIANT'];
        const all = types.includes('NON_COMPLIANT') ? (rule.resources ?? []) : [];
        const { items, next } = page(all, input.NextToken, limit === 0 ? 100 : limit);
        const stamp = 1450314635.065;
        return {
          EvaluationResults: items.map((res) => ({
            EvaluationResultIdentifier: { OrderingTimestamp: stamp, EvaluationResultQualifier: { ResourceType: res.type, ResourceId: res.id, ConfigRuleName: rule.name } },
            ResultRecordedTime: stamp + 10,
            ConfigRuleInvokedTime: stamp + 7,
            ComplianceType: 'NON_COMPLIANT',
          })),
          ...(next ? { NextToken: next } : {}),
        };
      }
      case 'ListDiscoveredResources': {
        const type = input.resourceType;
        if (typeof type !== 'string') throw new PeerError(400, 'ValidationException', "1 validation error detected: Value null at 'resourceType' failed to satisfy constraint: Member must not be null");
        const limit = input.limit === undefined ? 100 : Number(input.limit);
        if (!Number.isInteger(limit) || limit < 0 || limit > 100) throw new PeerError(400, 'InvalidLimitException', 'Limit must be 0-100');
        const all = (r.discovered ?? []).filter((x) => x.resourceType === type && (input.includeDeletedResources === true || x.resourceDeletionTime === undefined));
        const { items, next } = page(all, input.nextToken, limit === 0 ? 100 : limit);
        return { resourceIdentifiers: items, ...(next ? { nextToken: next } : {}) };
      }
      default:
        throw new PeerError(400, 'UnknownOperationException', '');
    }
  };

  /** Matches a REST request to a Backup operation by the model's `http` (method and URI template). */
  const backupRoute = (method: string, pathname: string): { action: string; uri: Record<string, string> } | undefined => {
    for (const [action, op] of Object.entries(backupModel.operations)) {
      if (!op.http || op.http.method !== method) continue;
      const template = op.http.requestUri.split('?')[0] as string;
      const names: string[] = [];
      const re = new RegExp(`^${template.replace(/\/$/, '').replace(/\{(\w+)\+?\}/g, (_m, n: string) => (names.push(n), '([^/]+)'))}/?$`);
      const m = re.exec(pathname);
      if (m) return { action, uri: Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1] as string)])) };
    }
    return undefined;
  };

  /** The operation's input from the path and query string, by the model's member locations; unknown or out-of-range parameters are refused. */
  const backupInput = (action: string, uri: Record<string, string>, query: URLSearchParams): Record<string, unknown> => {
    const shape = backupModel.shapes[backupModel.operations[action]?.input?.shape ?? ''];
    const input: Record<string, unknown> = {};
    const byLocation = new Map(Object.entries(shape?.members ?? {}).map(([name, ref]) => [`${ref.location}:${ref.locationName ?? name}`, [name, ref] as const]));
    for (const [k, v] of Object.entries(uri)) {
      const found = byLocation.get(`uri:${k}`);
      if (found) input[found[0]] = v;
    }
    for (const [k, v] of query) {
      const found = byLocation.get(`querystring:${k}`);
      if (!found) throw new PeerError(400, 'InvalidParameterValueException', `Unknown query parameter ${k}`);
      const [name, ref] = found;
      const type = backupModel.shapes[ref.shape];
      if (type?.type === 'integer' || type?.type === 'long') {
        const n = Number(v);
        if (!Number.isInteger(n) || (type.min !== undefined && n < type.min) || (type.max !== undefined && n > type.max)) throw new PeerError(400, 'InvalidParameterValueException', `${k} must be an integer in ${type.min}-${type.max}`);
        input[name] = n;
      } else if (type?.type === 'timestamp') {
        const t = Date.parse(v);
        if (Number.isNaN(t)) throw new PeerError(400, 'InvalidParameterValueException', `${k} is not a timestamp`);
        input[name] = t;
      } else input[name] = v;
    }
    return input;
  };

  const backupAction = (p: Principal, region: string, action: string, input: Record<string, unknown>): Record<string, unknown> => {
    const r = account(p.account).backup?.[region] ?? {};
    const ms = (v: unknown): number => (v instanceof Date ? v.getTime() : typeof v === 'number' ? v * 1000 : Date.parse(String(v)));
    const after = (items: Array<Record<string, unknown>>, field: string, key: string) => (input[key] === undefined ? items : items.filter((x) => ms(x[field]) >= (input[key] as number)));
    const eq = (items: Array<Record<string, unknown>>, field: string, key: string) => (input[key] === undefined ? items : items.filter((x) => x[field] === input[key]));
    const paged = (items: Array<Record<string, unknown>>, resultKey: string) => {
      // Paginated as botocore's paginators file says for the operation (tokens, limit and result keys).
      const pager = backupPaginators[action];
      if (!pager || pager.result_key !== resultKey || pager.input_token !== 'NextToken' || pager.output_token !== 'NextToken' || pager.limit_key !== 'MaxResults') throw new ModelViolation(`${action}: not paginated by NextToken/MaxResults/${resultKey}`);
      const { items: slice, next } = page(items, input.NextToken, Math.min((input.MaxResults as number | undefined) ?? 100, options.backupPageCap ?? Infinity));
      return { [resultKey]: slice, ...(next ? { NextToken: next } : {}) };
    };
    switch (action) {
      case 'ListProtectedResources':
        return paged(r.protectedResources ?? [], 'Results');
      case 'ListBackupVaults':
        return paged(r.vaults ?? [], 'BackupVaultList');
      case 'ListRecoveryPointsByBackupVault': {
        const name = input.BackupVaultName as string;
        if (!(r.vaults ?? []).some((v) => v.BackupVaultName === name)) throw new PeerError(404, 'ResourceNotFoundException', `Backup vault ${name} does not exist`);
        let items = (r.recoveryPoints ?? []).filter((x) => x.BackupVaultName === name);
        items = eq(eq(after(items, 'CreationDate', 'ByCreatedAfter'), 'ResourceType', 'ByResourceType'), 'ResourceArn', 'ByResourceArn');
        return paged(items, 'RecoveryPoints');
      }
      case 'ListBackupJobs':
        return paged(eq(eq(after(r.backupJobs ?? [], 'CreationDate', 'ByCreatedAfter'), 'State', 'ByState'), 'ResourceType', 'ByResourceType'), 'BackupJobs');
      case 'ListRestoreTestingPlans':
        return paged(r.restoreTestingPlans ?? [], 'RestoreTestingPlans');
      case 'ListRestoreTestingSelections': {
        const name = input.RestoreTestingPlanName as string;
        if (!(r.restoreTestingPlans ?? []).some((x) => x.RestoreTestingPlanName === name)) throw new PeerError(404, 'ResourceNotFoundException', `Restore testing plan ${name} does not exist`);
        return paged((r.restoreTestingSelections ?? []).filter((x) => x.RestoreTestingPlanName === name), 'RestoreTestingSelections');
      }
      case 'ListRestoreJobs': {
        const items = eq(eq(after(r.restoreJobs ?? [], 'CreationDate', 'ByCreatedAfter'), 'Status', 'ByStatus'), 'ResourceType', 'ByResourceType');
        return paged(input.ByRestoreTestingPlanArn === undefined ? items : items.filter((x) => (x.CreatedBy as Record<string, unknown> | undefined)?.RestoreTestingPlanArn === input.ByRestoreTestingPlanArn), 'RestoreJobs');
      }
      default:
        throw new PeerError(400, 'UnknownOperationException', `the peer does not emulate ${action}`);
    }
  };

  /** AWS Backup's REST-JSON: the operation from method and path, the input from path and query, a JSON body. */
  const handleBackup = (req: IncomingMessage, body: Buffer): { status: number; contentType: string; body: string; log?: PeerRequest } => {
    const url = new URL(req.url ?? '/', 'http://peer');
    const route = backupRoute(req.method ?? 'GET', url.pathname);
    const log: PeerRequest = { service: 'backup', action: route?.action ?? '', signingRegion: '', signingService: '', accessKeyId: '', account: undefined, status: 200, params: {} };
    const fail = (e: PeerError) => ({ ...jsonError(e.status, e.code, e.message), contentType: 'application/json', log: { ...log, status: e.status } });
    try {
      const { principal, region, service: signedFor } = verifySignature(req, body, principals, true, now());
      Object.assign(log, { signingRegion: region, signingService: signedFor, accessKeyId: principal.accessKeyId, account: principal.account });
      if (signedFor !== 'backup') throw new PeerError(403, 'InvalidSignatureException', `Credential should be scoped to correct service: 'backup'.`);
      if (!route) throw new PeerError(404, 'UnknownOperationException', `no AWS Backup operation at ${req.method} ${url.pathname}`);
      const input = backupInput(route.action, route.uri, url.searchParams);
      log.params = input;
      const rawAnswer = raw.get(route.action);
      if (rawAnswer) {
        raw.delete(route.action);
        return { ...rawAnswer, log: { ...log, status: rawAnswer.status } };
      }
      const failing = failures.get(route.action) ?? 0;
      if (failing > 0) {
        failures.set(route.action, failing - 1);
        throw new PeerError(500, 'ServiceUnavailableException', 'The request failed due to a temporary failure of the server.');
      }
      const throttled = throttles.get(route.action) ?? 0;
      if (throttled > 0) {
        throttles.set(route.action, throttled - 1);
        throw new PeerError(429, 'ThrottlingException', 'Rate exceeded');
      }
      const refusal = denied(principal, `backup:${route.action}`, true);
      if (refusal) throw new PeerError(403, 'AccessDeniedException', refusal.message);
      const out = backupAction(principal, region, route.action, input);
      const shape = backupModel.operations[route.action]?.output?.shape as string;
      return { status: 200, contentType: 'application/json', body: JSON.stringify(toJson(backupModel, shape, out, route.action)), log };
    } catch (err) {
      if (err instanceof PeerError) return fail(err);
      if (err instanceof ModelViolation) return fail(new PeerError(500, 'PeerModelViolation', err.message));
      throw err;
    }
  };

  const handle = async (req: IncomingMessage, body: Buffer): Promise<{ status: number; contentType: string; body: string; log?: PeerRequest }> => {
    // The query protocol (IAM, STS) and JSON 1.1 (Config) always POST; AWS Backup's REST-JSON reads are GETs.
    if (req.method !== 'POST') return handleBackup(req, body);
    const target = req.headers['x-amz-target'];
    const json = typeof target === 'string';
    let service: PeerRequest['service'] = json ? 'config' : 'iam';
    let action = '';
    let params: Record<string, unknown> = {};
    let ns = IAM_NS;
    if (json) {
      const m = /^StarlingDoveService\.(\w+)$/.exec(target);
      if (!m) return jsonError(400, 'UnknownOperationException', '');
      action = m[1] as string;
      try {
        params = (JSON.parse(body.toString('utf8') || '{}') ?? {}) as Record<string, unknown>;
      } catch {
        return jsonError(400, 'SerializationException', 'Start of structure or map found where not expected.');
      }
    } else {
      const form = new URLSearchParams(body.toString('utf8'));
      action = form.get('Action') ?? '';
      const version = form.get('Version');
      if (version === '2011-06-15') {
        service = 'sts';
        ns = STS_NS;
      } else if (version !== '2010-05-08') return xmlError(400, 'InvalidAction', `unknown Version ${version}`, IAM_NS);
      params = Object.fromEntries(form);
    }
    const log: PeerRequest = { service, action, signingRegion: '', signingService: '', accessKeyId: '', account: undefined, status: 200, params };
    const fail = (e: PeerError) => ({ ...(json ? jsonError(e.status, e.code, e.message) : xmlError(e.status, e.code, e.message, ns)), log: { ...log, status: e.status } });
    try {
      const { principal, region, service: signedFor } = verifySignature(req, body, principals, json, now());
      Object.assign(log, { signingRegion: region, signingService: signedFor, accessKeyId: principal.accessKeyId, account: principal.account });
      if (signedFor !== service) throw new PeerError(403, json ? 'InvalidSignatureException' : 'SignatureDoesNotMatch', `Credential should be scoped to correct service: '${service}'.`);
      const rawAnswer = raw.get(action);
      if (rawAnswer) {
        raw.delete(action);
        return { ...rawAnswer, log: { ...log, status: rawAnswer.status } };
      }
      const failing = failures.get(action) ?? 0;
      if (failing > 0) {
        failures.set(action, failing - 1);
        throw json ? new PeerError(500, 'InternalFailure', 'We encountered an internal error. Please try again.') : new PeerError(500, 'ServiceFailure', 'Request processing has failed because of an unknown error, exception or failure.');
      }
      const throttled = throttles.get(action) ?? 0;
      if (throttled > 0) {
        throttles.set(action, throttled - 1);
        throw json ? new PeerError(400, 'ThrottlingException', 'Rate exceeded') : new PeerError(400, 'Throttling', 'Rate exceeded');
      }
      if (service === 'sts') return { status: 200, contentType: 'text/xml', body: queryResponse(undefined, action, {}, ns).replace(`<${action}Result></${action}Result>`, `<${action}Result>${stsAction(principal, action, params as Record<string, string>)}</${action}Result>`), log };
      const refusal = denied(principal, `${service}:${action}`, json);
      if (refusal) throw refusal;
      if (service === 'iam') {
        if (region !== 'us-east-1') throw new PeerError(403, 'SignatureDoesNotMatch', `Credential should be scoped to a valid region. `);
        return { status: 200, contentType: 'text/xml', body: queryResponse(iamModel, action, iamAction(principal, action, params as Record<string, string>), IAM_NS), log };
      }
      const out = configAction(principal, region, action, params);
      const shape = configModel.operations[action]?.output?.shape as string;
      return { status: 200, contentType: 'application/x-amz-json-1.1', body: JSON.stringify(toJson(configModel, shape, out, action)), log };
    } catch (err) {
      if (err instanceof PeerError) return fail(err);
      if (err instanceof ModelViolation) return fail(new PeerError(500, 'PeerModelViolation', err.message));
      throw err;
    }
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 1_000_000) chunks.push(c);
    });
    req.on('end', () => {
      void (async () => {
        if (options.latencyMs) await new Promise((r) => setTimeout(r, options.latencyMs));
        const answer = await handle(req, Buffer.concat(chunks));
        if (answer.log) requests.push(answer.log);
        res.writeHead(answer.status, { 'content-type': answer.contentType, 'x-amzn-requestid': randomBytes(16).toString('hex'), date: new Date(now()).toUTCString() });
        res.end(answer.body);
      })().catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      });
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    accounts: options.accounts,
    sessions,
    throttleNext(action, count = 1) {
      throttles.set(action, (throttles.get(action) ?? 0) + count);
    },
    failNext(action, count = 1) {
      failures.set(action, (failures.get(action) ?? 0) + count);
    },
    respondNext(action, answer) {
      raw.set(action, answer);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Test conveniences.

/** AWS's documented example key pair (IAM User Guide): what the tests sign with. */
export const EXAMPLE_KEY = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' } as const;

/**
 * Points the SDK's default provider chain at `key` through the environment (as in production:
 * never through YAML), with instance metadata and shared files out of the way.
 */
export function useEnvCredentials(key: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }): void {
  process.env.AWS_ACCESS_KEY_ID = key.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = key.secretAccessKey;
  if (key.sessionToken) process.env.AWS_SESSION_TOKEN = key.sessionToken;
  else delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  process.env.AWS_CONFIG_FILE = '/nonexistent/vigil-test-aws-config';
  process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/vigil-test-aws-credentials';
}

/** A validated `aws:` target whose every endpoint is the peer. */
export function peerTarget(peer: AwsPeer, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'prod', regions: ['us-east-1'], endpoints: { iam: peer.url, sts: peer.url, config: peer.url, backup: peer.url }, ...extra };
}
