/**
 * The pure half of what the AWS probes share: the shapes of an account's observation and of a
 * part AWS refused to show, and the `unknown` finding for a refusal. No SDK here — the probes'
 * evaluate imports this module at start-up, while the I/O half (observe.ts, which loads the AWS
 * SDK clients) is loaded only when a collect runs.
 */
import type { Finding } from '../../probe/contract.js';

/** A part of an observation AWS refused to show: the action and AWS's own words. */
export interface Denied {
  readable: false;
  action: string;
  reason: string;
}

/** A value, or why it could not be read. */
export type Readable<T> = { readable: true; value: T } | Denied;

/** One account's observation: the account id AWS confirmed (or the one the roleArn names), and the probe's data — or why none. */
export interface AccountObservation<T> {
  /** 12-digit account id (from sts:GetCallerIdentity; from `roleArn` when AssumeRole itself was refused). */
  account: string;
  /** The role could not be assumed: nothing in the account could be judged. */
  denied?: Denied;
  data?: T;
}

/** The `unknown` finding for something AWS refused to show. */
export function deniedFinding(resource: string, what: string, denied: Denied): Finding {
  return {
    resource,
    outcome: 'unknown',
    message: `could not read ${what}: vigil may not call ${denied.action} — grant it to vigil's role (deploy/aws/vigil-readonly-policy.json)`,
    details: { missingAction: denied.action, aws: denied.reason.slice(0, 300) },
  };
}
