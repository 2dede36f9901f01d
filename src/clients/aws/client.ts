/**
 * The AWS client every AWS probe uses: the real SDK v3 clients (`@aws-sdk/client-iam`,
 * `@aws-sdk/client-config-service`, `@aws-sdk/client-sts`) for one configured account, with
 * vigil's rules kept around them:
 *
 * - **credentials**: the base credentials come from the SDK's default provider chain
 *   (`fromNodeProviderChain`: environment, shared config/profile, web identity, ECS/EC2
 *   metadata) — never from YAML. With `roleArn`, `sts:AssumeRole` (session name `vigil`, the
 *   external id when configured) through `endpoints.sts`; the assumed-role credentials are cached
 *   per process until {@link ROLE_REFRESH_MARGIN_MS} before they expire. Every secret key and
 *   session token is registered for scrubbing, and none ever enters job data or a result;
 * - **regions**: IAM is global and signed for `us-east-1` whatever the target's regions; Config
 *   gets one client per configured region;
 * - **retries**: SDK retry mode `standard` (see {@link RETRY_MODE}) with
 *   {@link MAX_ATTEMPTS} attempts for throttling, 5xx and network faults; what still fails is a
 *   TransientError, and BullMQ retries the run later with backoff;
 * - **classification** ({@link classifyAwsError}): `AccessDenied`/`UnauthorizedOperation` →
 *   {@link AwsAccessDeniedError} naming the missing IAM action (probes turn it into an `unknown`
 *   finding); an expired, invalid or unsigned credential → {@link AwsCredentialsError} (a clear
 *   run error); a body the SDK cannot parse or that fails vigil's schema → MalformedResponseError;
 * - **least privilege**: only the commands listed in `actions.ts` are sent (the shipped policy is
 *   tested against that list).
 */
import { createHash } from 'node:crypto';
import { BackupClient } from '@aws-sdk/client-backup';
import { ConfigServiceClient } from '@aws-sdk/client-config-service';
import { IAMClient } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import type { Logger } from 'pino';
import type { AwsTarget } from '../../config/schema.js';
import { MalformedResponseError, PermissionError, TransientError } from '../../probe/errors.js';
import { forgetSecret, readSecret, registerSecret, scrub } from '../../secrets.js';
import { actionOf } from './actions.js';

/**
 * `standard`, not `adaptive`: adaptive mode adds a client-side rate limiter that learns the
 * sending rate *within one client instance*, and vigil builds its clients per run and sends a
 * handful of calls per account (one credential report, not one call per user) — the limiter
 * would never warm up and would only add delay. Standard mode retries throttling, 5xx and
 * transient network errors with jittered exponential backoff and a retry quota; longer outages
 * become a TransientError and BullMQ's run-level backoff takes over.
 */
export const RETRY_MODE = 'standard';

/** Attempts per call in the SDK (1 + 3 retries). */
export const MAX_ATTEMPTS = 4;

/** Assumed-role credentials are refreshed when they expire within this many ms. */
export const ROLE_REFRESH_MARGIN_MS = 5 * 60_000;

/** IAM is a global service, signed for this region. */
export const IAM_SIGNING_REGION = 'us-east-1';

/** Session name of every AssumeRole (visible in the account's CloudTrail). */
export const ROLE_SESSION_NAME = 'vigil';

/** What a client needs besides its target. */
export interface AwsClientOptions {
  /** The run's signal: aborts requests in flight. */
  signal: AbortSignal;
  log: Logger;
  /** Environment the external id is read from. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Time budget of one HTTP exchange, ms. Default 30 000. */
  requestTimeoutMs?: number;
  /** Clock for credential expiry. Default `Date.now`. */
  now?: () => number;
}

/** AWS refused an action: the credentials lack the IAM permission. Not retried; probes report it as `unknown`. */
export class AwsAccessDeniedError extends PermissionError {
  override name = 'AwsAccessDeniedError';
  /** The IAM action AWS named (or, when its message names none, the action of the refused command). */
  readonly action: string;
  /** AWS's error code (`AccessDenied`, `AccessDeniedException`, `UnauthorizedOperation`…). */
  readonly code: string;
  constructor(message: string, info: { action: string; code: string; cause?: unknown }) {
    super(message, { cause: info.cause });
    this.action = info.action;
    this.code = info.code;
  }
}

/** The credentials themselves were refused (expired, unknown key, bad signature) or none were found. Not retried. */
export class AwsCredentialsError extends PermissionError {
  override name = 'AwsCredentialsError';
  readonly code: string;
  constructor(message: string, info: { code: string; cause?: unknown }) {
    super(message, { cause: info.cause });
    this.code = info.code;
  }
}

/** Any other error answer from an AWS service (a 4xx vigil did not expect). Not retried. */
export class AwsServiceError extends Error {
  override name = 'AwsServiceError';
  /** AWS's error code, e.g. `NoSuchEntity`, `ReportInProgress`. */
  readonly code: string;
  readonly status: number | undefined;
  constructor(message: string, info: { code: string; status: number | undefined; cause?: unknown }) {
    super(message, { cause: info.cause });
    this.code = info.code;
    this.status = info.status;
  }
}

const deniedCodes = new Set(['AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation', 'AuthorizationError', 'UnauthorizedAccess']);
const credentialCodes = new Set([
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidSignatureException',
  'IncompleteSignature',
  'IncompleteSignatureException',
  'MissingAuthenticationToken',
  'MissingAuthenticationTokenException',
  'UnrecognizedClientException',
  'InvalidToken',
  'RequestExpired',
]);
const throttlingCodes = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'ProvisionedThroughputExceededException',
  'SlowDown',
  'PriorRequestNotComplete',
]);
const networkCodes = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET']);

/** The IAM action AWS names in an AccessDenied message ("… is not authorized to perform: iam:X on resource …"). */
export function deniedActionIn(message: string): string | undefined {
  return /not authorized to perform:?\s+([a-z0-9-]+:[A-Za-z0-9*]+)/.exec(message)?.[1];
}

/**
 * Turns whatever an SDK call threw into one of vigil's error classes. `action` is the IAM action
 * of the command that failed, named in messages (never a credential).
 */
export function classifyAwsError(err: unknown, action: string, signal?: AbortSignal): Error {
  if (signal?.aborted) return signal.reason instanceof Error ? signal.reason : new Error('aborted');
  if (!(err instanceof Error)) return new Error(`${action} failed: ${String(err)}`);
  const e = err as Error & { $metadata?: { httpStatusCode?: number }; $fault?: string; code?: string; $response?: unknown; Code?: string };
  // Modelled IAM errors carry AWS's code in `Code` (`LimitExceeded`) and a class name in `name` (`LimitExceededException`).
  const code = (typeof e.Code === 'string' && e.Code !== '' ? e.Code : undefined) ?? (e.name || e.code || 'Error');
  const status = e.$metadata?.httpStatusCode;
  // Access key ids are not secret, but they are credential-like: keep them out of results and logs.
  // Scrubbed before the cut: a secret echoed across the cut would otherwise survive as a prefix (R8).
  const awsMessage = scrub(e.message || '').slice(0, 400).replace(/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, '[access key id]');
  if (code === 'CredentialsProviderError' || code === 'ProviderError') {
    return new AwsCredentialsError(
      `no AWS credentials found for ${action}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, a web identity, or run with an instance/task role (${awsMessage})`,
      { code, cause: err },
    );
  }
  if (deniedCodes.has(code)) {
    const named = deniedActionIn(awsMessage) ?? action;
    return new AwsAccessDeniedError(`AWS refused ${named} (${code}): grant ${named} to vigil's role (deploy/aws/vigil-readonly-policy.json). AWS said: ${awsMessage}`, {
      action: named,
      code,
      cause: err,
    });
  }
  if (credentialCodes.has(code)) {
    const fix = /Expired|RequestExpired/.test(code)
      ? 'the AWS credentials have expired: refresh them (or the session) and check the clock'
      : 'AWS refused the credentials: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the profile/role) vigil runs with';
    return new AwsCredentialsError(`${action}: ${fix} (${code}: ${awsMessage})`, { code, cause: err });
  }
  if (throttlingCodes.has(code) || (status !== undefined && status >= 500) || e.$fault === 'server' && status === undefined) {
    return new TransientError(`${action}: AWS answered ${code}${status ? ` (${status})` : ''} after ${MAX_ATTEMPTS} attempts: will retry later`, { cause: err });
  }
  if (code === 'TimeoutError' || code === 'RequestTimeout' || networkCodes.has(e.code ?? '') || networkCodes.has(code)) {
    return new TransientError(`${action}: no answer from AWS (${e.code ?? code}): will retry later`, { cause: err });
  }
  // The SDK could not parse the body (truncated XML, HTML from a proxy, invalid JSON).
  // ($response alone says nothing: the SDK attaches it to every service error it deserialised, LimitExceeded included.)
  if (code === 'SyntaxError' || (/Deserialization error|Unexpected|not valid JSON|XML/i.test(awsMessage) && (status === undefined || status < 300))) {
    return new MalformedResponseError(`${action}: AWS's answer could not be read (${code}): ${awsMessage.slice(0, 200)}`, { cause: err });
  }
  if (status !== undefined && status >= 200 && status < 300) {
    return new MalformedResponseError(`${action}: AWS's answer could not be read (${code}): ${awsMessage.slice(0, 200)}`, { cause: err });
  }
  return new AwsServiceError(`${action}: AWS answered ${code}${status ? ` (${status})` : ''}: ${awsMessage}`, { code, status, cause: err });
}

// ---------------------------------------------------------------------------------------------
// Process-wide credential state: the default chain (it may call instance metadata: resolve once),
// and one cache entry per role × external id × STS endpoint.

/** The credentials an SDK client signs with (structurally the SDK's AwsCredentialIdentity). */
interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}
type CredentialProvider = () => Promise<Credentials>;

let baseChain: CredentialProvider | undefined;
const roleCache = new Map<string, { credentials: Credentials; expiresAt: number } | { pending: Promise<Credentials> }>();

/** Forgets cached credentials (tests that change the environment's keys). */
export function resetAwsClientState(): void {
  baseChain = undefined;
  for (const entry of roleCache.values()) if ('credentials' in entry) forgetCredentials(entry.credentials);
  roleCache.clear();
}

function rememberCredentials(c: Credentials): void {
  registerSecret(c.secretAccessKey);
  if (c.sessionToken) registerSecret(c.sessionToken);
}

function forgetCredentials(c: Credentials): void {
  forgetSecret(c.secretAccessKey);
  if (c.sessionToken) forgetSecret(c.sessionToken);
}

function baseCredentials(): CredentialProvider {
  if (!baseChain) {
    const chain = fromNodeProviderChain();
    baseChain = async () => {
      const c = (await chain()) as Credentials;
      rememberCredentials(c);
      return c;
    };
  }
  return baseChain;
}

function requestHandler(opts: AwsClientOptions): { requestTimeout: number; connectionTimeout: number } {
  const requestTimeout = opts.requestTimeoutMs ?? 30_000;
  return { requestTimeout, connectionTimeout: Math.min(requestTimeout, 10_000) };
}

function roleCredentials(target: AwsTarget, opts: AwsClientOptions): CredentialProvider {
  const roleArn = target.roleArn as string;
  const externalId = target.externalId ? readSecret(target.externalId, opts.env ?? process.env) : undefined;
  if (target.externalId && externalId === undefined) {
    const ref = target.externalId;
    throw new AwsCredentialsError(`the external id of ${target.name} is not available (${'env' in ref ? `environment variable ${ref.env} is not set` : `file ${ref.file}`})`, {
      code: 'MissingExternalId',
    });
  }
  const now = opts.now ?? Date.now;
  // The key names the role, a hash of the external id and the endpoint: never the secret itself.
  const key = createHash('sha256')
    .update([roleArn, externalId ?? '', target.endpoints.sts ?? ''].join('\u0000'))
    .digest('hex');
  return async () => {
    const cached = roleCache.get(key);
    if (cached && 'credentials' in cached && cached.expiresAt - ROLE_REFRESH_MARGIN_MS > now()) return cached.credentials;
    if (cached && 'pending' in cached) return cached.pending;
    const sts = new STSClient({
      region: IAM_SIGNING_REGION,
      ...(target.endpoints.sts ? { endpoint: target.endpoints.sts } : {}),
      credentials: baseCredentials(),
      retryMode: RETRY_MODE,
      maxAttempts: MAX_ATTEMPTS,
      requestHandler: requestHandler(opts),
    });
    const pending = (async () => {
      try {
        const out = await sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: ROLE_SESSION_NAME, ...(externalId ? { ExternalId: externalId } : {}) }), {
          abortSignal: opts.signal,
        });
        const c = out.Credentials;
        if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !(c.Expiration instanceof Date) || Number.isNaN(c.Expiration.getTime())) {
          throw new MalformedResponseError(`sts:AssumeRole of ${roleArn} answered without complete credentials`);
        }
        const credentials: Credentials = { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiration: c.Expiration };
        rememberCredentials(credentials);
        const previous = roleCache.get(key);
        if (previous && 'credentials' in previous) forgetCredentials(previous.credentials);
        roleCache.set(key, { credentials, expiresAt: c.Expiration.getTime() });
        opts.log.debug({ target: target.name, expiresAt: c.Expiration.toISOString() }, 'assumed AWS role');
        return credentials;
      } catch (err) {
        roleCache.delete(key);
        throw err instanceof MalformedResponseError ? err : classifyAwsError(err, 'sts:AssumeRole', opts.signal);
      } finally {
        sts.destroy();
      }
    })();
    roleCache.set(key, { pending });
    return pending;
  };
}

// ---------------------------------------------------------------------------------------------
// One account, for one run.

/** The part of an SDK command vigil relies on: its class name (for the action table) and its input. */
interface AnyCommand {
  readonly input: object;
}

/** Where the run's calls went: the account id AWS confirmed, and the caller it saw. */
export interface AwsIdentity {
  account: string;
  arn: string;
}

/** The AWS clients of one configured target, for one run. Call {@link AwsAccount.close} when done. */
export interface AwsAccount {
  /** The configured target name. */
  readonly target: string;
  /** `sts:GetCallerIdentity`, once per run: the account this target reaches (checked against `roleArn`). */
  identity(): Promise<AwsIdentity>;
  /** Sends one IAM command (global, signed for us-east-1). Errors are classified. */
  iam<O>(command: AnyCommand): Promise<O>;
  /** Sends one AWS Config command to `region`. Errors are classified. */
  config<O>(region: string, command: AnyCommand): Promise<O>;
  /** Sends one AWS Backup command to `region`. Errors are classified. */
  backup<O>(region: string, command: AnyCommand): Promise<O>;
  /** Frees the clients' sockets. */
  close(): void;
}

/** Builds the clients of one AWS target. Reads the external id now; credentials are resolved on the first call. */
export function awsAccount(target: AwsTarget, opts: AwsClientOptions): AwsAccount {
  const credentials = target.roleArn ? roleCredentials(target, opts) : baseCredentials();
  const common = { credentials, retryMode: RETRY_MODE, maxAttempts: MAX_ATTEMPTS, requestHandler: requestHandler(opts) };
  let iamClient: IAMClient | undefined;
  let stsClient: STSClient | undefined;
  const configClients = new Map<string, ConfigServiceClient>();
  const backupClients = new Map<string, BackupClient>();
  let identity: Promise<AwsIdentity> | undefined;

  const send = async <O>(client: { send(command: never, options: { abortSignal: AbortSignal }): Promise<unknown> }, command: AnyCommand): Promise<O> => {
    const name = command.constructor.name;
    const action = actionOf(name);
    if (action === undefined) throw new Error(`vigil does not send ${name}: add it to src/clients/aws/actions.ts and deploy/aws/vigil-readonly-policy.json`);
    try {
      return (await client.send(command as never, { abortSignal: opts.signal })) as O;
    } catch (err) {
      // vigil's own classified errors (a throttled AssumeRole inside the credential provider is a TransientError) pass as they are.
      if (err instanceof AwsCredentialsError || err instanceof AwsAccessDeniedError || err instanceof MalformedResponseError || err instanceof TransientError) throw err;
      throw classifyAwsError(err, action, opts.signal);
    }
  };

  return {
    target: target.name,
    identity() {
      identity ??= (async () => {
        stsClient ??= new STSClient({ region: IAM_SIGNING_REGION, ...(target.endpoints.sts ? { endpoint: target.endpoints.sts } : {}), ...common });
        const out = await send<{ Account?: string; Arn?: string }>(stsClient, new GetCallerIdentityCommand({}));
        if (!out.Account || !/^\d{12}$/.test(out.Account) || !out.Arn) throw new MalformedResponseError('sts:GetCallerIdentity answered without an account id and ARN');
        const expected = target.roleArn ? /^arn:[^:]+:iam::(\d{12}):/.exec(target.roleArn)?.[1] : undefined;
        if (expected !== undefined && expected !== out.Account) {
          throw new AwsCredentialsError(`target ${target.name} reached account ${out.Account}, but its roleArn is in ${expected}: check roleArn and endpoints.sts`, { code: 'AccountMismatch' });
        }
        return { account: out.Account, arn: out.Arn };
      })();
      return identity;
    },
    iam<O>(command: AnyCommand) {
      iamClient ??= new IAMClient({ region: IAM_SIGNING_REGION, ...(target.endpoints.iam ? { endpoint: target.endpoints.iam } : {}), ...common });
      return send<O>(iamClient, command);
    },
    config<O>(region: string, command: AnyCommand) {
      let client = configClients.get(region);
      if (!client) {
        client = new ConfigServiceClient({ region, ...(target.endpoints.config ? { endpoint: target.endpoints.config } : {}), ...common });
        configClients.set(region, client);
      }
      return send<O>(client, command);
    },
    backup<O>(region: string, command: AnyCommand) {
      let client = backupClients.get(region);
      if (!client) {
        client = new BackupClient({ region, ...(target.endpoints.backup ? { endpoint: target.endpoints.backup } : {}), ...common });
        backupClients.set(region, client);
      }
      return send<O>(client, command);
    },
    close() {
      iamClient?.destroy();
      stsClient?.destroy();
      for (const c of configClients.values()) c.destroy();
      for (const c of backupClients.values()) c.destroy();
    },
  };
}

/** Runs `fn` with the clients of one target, and closes them whatever happens. */
export async function withAwsAccount<T>(target: AwsTarget, opts: AwsClientOptions, fn: (account: AwsAccount) => Promise<T>): Promise<T> {
  const account = awsAccount(target, opts);
  try {
    return await fn(account);
  } finally {
    account.close();
  }
}
