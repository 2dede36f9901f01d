/**
 * What the AWS probes share around their collect: opening the account (credentials, AssumeRole,
 * GetCallerIdentity), and turning an AccessDenied into data — an `unknown` finding that names
 * the missing IAM action — instead of a crash or a silent skip. This module loads the AWS SDK
 * (through client.ts): only collect modules import it; the pure shapes and the `unknown`
 * finding live in denied.ts.
 */
import type { Logger } from 'pino';
import type { AwsTarget } from '../../config/schema.js';
import { AwsAccessDeniedError, withAwsAccount, type AwsAccount } from './client.js';
import type { AccountObservation, Readable } from './denied.js';

export type { AccountObservation, Denied, Readable } from './denied.js';

/** Runs `read`; an AccessDenied becomes `{ readable: false }` naming the action, anything else propagates. */
export async function readable<T>(read: () => Promise<T>): Promise<Readable<T>> {
  try {
    return { readable: true, value: await read() };
  } catch (err) {
    if (err instanceof AwsAccessDeniedError) return { readable: false, action: err.action, reason: err.message };
    throw err;
  }
}

/**
 * Opens the target's account, confirms it with GetCallerIdentity, and runs `read` with the
 * clients and the account id. A refused AssumeRole yields `denied` (one `unknown` finding for the
 * account); expired or invalid credentials and transport failures propagate as run errors.
 */
export async function observeAccount<T>(
  target: AwsTarget,
  ctx: { signal: AbortSignal; log: Logger },
  read: (aws: AwsAccount, account: string) => Promise<T>,
): Promise<AccountObservation<T>> {
  return withAwsAccount(target, { signal: ctx.signal, log: ctx.log }, async (aws) => {
    let account: string;
    try {
      account = (await aws.identity()).account;
    } catch (err) {
      if (!(err instanceof AwsAccessDeniedError)) throw err;
      const fromRole = target.roleArn ? /^arn:[^:]+:iam::(\d{12}):/.exec(target.roleArn)?.[1] : undefined;
      return { account: fromRole ?? target.name, denied: { readable: false, action: err.action, reason: err.message } };
    }
    return { account, data: await read(aws, account) };
  });
}
