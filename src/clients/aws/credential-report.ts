/**
 * Fetching the IAM credential report (Generate, poll, Get) through the AWS SDK, and a per-process
 * cache so the probes that read it (user MFA, access-key age) share one report per account. The
 * format — types and the CSV parser — is credential-report-csv.ts, which loads no SDK.
 */
import { GenerateCredentialReportCommand, GetCredentialReportCommand } from '@aws-sdk/client-iam';
import { z } from 'zod';
import { MalformedResponseError, TransientError } from '../../probe/errors.js';
import { AwsServiceError, type AwsAccount } from './client.js';
import { parseCredentialReport, type CredentialReport } from './credential-report-csv.js';

export { parseCredentialReport, parseCsv, REQUIRED_COLUMNS } from './credential-report-csv.js';
export type { CredentialReport, Flag, ReportKey, ReportUser } from './credential-report-csv.js';

/** How the report is fetched. */
export interface CredentialReportOptions {
  /** A report older than this is regenerated (once per run: AWS regenerates at most every 4 hours). */
  maxAgeHours: number;
  /** The run's start. */
  now: Date;
  signal: AbortSignal;
  /** Delays between "still generating" polls, ms. Default 500, 1000, 2000, 4000, then 5000 until {@link CredentialReportOptions.pollBudgetMs}. */
  pollDelaysMs?: readonly number[];
  /** Longest total wait for a report to be generated. Default 60 000. */
  pollBudgetMs?: number;
}

/** AWS regenerates a report at most this often: within it, GenerateCredentialReport returns the one it has. */
export const AWS_REPORT_REGENERATION_MS = 4 * 3_600_000;

const GenerateAnswer = z.looseObject({ State: z.enum(['STARTED', 'INPROGRESS', 'COMPLETE']).optional(), Description: z.string().optional() });
const GetAnswer = z.looseObject({ Content: z.instanceof(Uint8Array), ReportFormat: z.literal('text/csv').optional(), GeneratedTime: z.date() });

/** Per account id: the newest report this process read (or is reading), shared by the probes that use it. */
const cache = new Map<string, { report: CredentialReport } | { pending: Promise<CredentialReport> }>();

/** Forgets cached reports (tests). */
export function resetCredentialReportCache(): void {
  cache.clear();
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * `GenerateCredentialReport` until it says `COMPLETE` (polling with backoff through `STARTED`
 * / `INPROGRESS` and `LimitExceeded`), then `GetCredentialReport`. Generating first is what AWS
 * documents: when the account has a report younger than 4 hours, Generate answers `COMPLETE` at
 * once and the same report is returned — so a run costs two IAM calls, and never loops trying to
 * get a newer report than AWS will make.
 */
async function fetchReport(account: AwsAccount, opts: CredentialReportOptions): Promise<CredentialReport> {
  const delays = opts.pollDelaysMs ?? [500, 1000, 2000, 4000];
  const budget = opts.pollBudgetMs ?? 60_000;
  let waited = 0;
  for (let attempt = 0; ; attempt++) {
    let state: string | undefined;
    try {
      const answer = GenerateAnswer.safeParse(await account.iam(new GenerateCredentialReportCommand({})));
      if (!answer.success) throw new MalformedResponseError('iam:GenerateCredentialReport answered with an unknown State');
      state = answer.data.State;
    } catch (err) {
      // LimitExceeded: too many Generate calls in a short time; the report is on its way.
      if (!(err instanceof AwsServiceError && err.code === 'LimitExceeded')) throw err;
      state = 'LIMITED';
    }
    if (state === 'COMPLETE') break;
    const delay = delays[Math.min(attempt, delays.length - 1)] ?? 5000;
    if (waited + delay > budget) throw new TransientError(`the IAM credential report was still being generated after ${Math.round(waited / 1000)} s: will retry later`);
    await sleep(delay, opts.signal);
    waited += delay;
  }
  let got: z.infer<typeof GetAnswer>;
  try {
    const parsed = GetAnswer.safeParse(await account.iam(new GetCredentialReportCommand({})));
    if (!parsed.success) throw new MalformedResponseError('iam:GetCredentialReport answered without Content and GeneratedTime');
    got = parsed.data;
  } catch (err) {
    // Generated a moment ago and already gone or not ready: the next run will get it.
    if (err instanceof AwsServiceError && ['ReportInProgress', 'ReportNotPresent', 'ReportExpired'].includes(err.code)) {
      throw new TransientError(`iam:GetCredentialReport answered ${err.code} right after the report was generated: will retry later`, { cause: err });
    }
    throw err;
  }
  const text = new TextDecoder('utf-8', { fatal: false }).decode(got.Content);
  return parseCredentialReport(text, got.GeneratedTime.toISOString());
}

/**
 * The account's credential report, from this process's cache when the cached one is younger
 * than both `maxAgeHours` and AWS's 4-hour regeneration interval (AWS would hand back the same
 * report), so the probes that share it (user MFA, access-key age) cost no extra calls.
 */
export async function credentialReport(account: AwsAccount, accountId: string, opts: CredentialReportOptions): Promise<CredentialReport> {
  const cached = cache.get(accountId);
  if (cached && 'pending' in cached) return cached.pending;
  const reuseMs = Math.min(opts.maxAgeHours * 3_600_000, AWS_REPORT_REGENERATION_MS);
  if (cached && opts.now.getTime() - Date.parse(cached.report.generatedTime) < reuseMs) return cached.report;
  const pending = fetchReport(account, opts);
  cache.set(accountId, { pending });
  try {
    const report = await pending;
    cache.set(accountId, { report });
    return report;
  } catch (err) {
    if (cached) cache.set(accountId, cached);
    else cache.delete(accountId);
    throw err;
  }
}
