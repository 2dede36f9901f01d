/**
 * The IAM credential report: one CSV per account that lists every user with its password, MFA
 * and access-key state — read once per account instead of several calls per user.
 *
 * AWS has shipped more than one column layout (the current 22 columns, an older 16), so columns
 * are mapped **by header name**, case-insensitively. Values are read as AWS documents them:
 * `true`/`false` in either case, `N/A` (does not apply), `no_information`, `not_supported`.
 * A value that is none of these is kept as `unreadable`, so one odd cell makes one user
 * `unknown` instead of failing the run — or being read as false.
 *
 * This module is the pure half (the format: types and parser, no SDK), so the probes' evaluate can
 * use its types at start-up; credential-report.ts fetches and caches the report through the SDK.
 */
import { MalformedResponseError } from '../../probe/errors.js';

/** A boolean cell: a value, or why there is none. */
export type Flag = boolean | 'not_supported' | 'no_information' | 'not_applicable' | 'unreadable';

/** One access key slot of a user (the report has two: key 1 and key 2). */
export interface ReportKey {
  active: Flag;
  /** ISO time of the last rotation (creation), or null when AWS gives none (`N/A`). */
  lastRotated: string | null;
}

/** One row of the report. */
export interface ReportUser {
  user: string;
  arn: string;
  /** The root row (`<root_account>`, or `root_account` in older reports). */
  isRoot: boolean;
  passwordEnabled: Flag;
  mfaActive: Flag;
  keys: [ReportKey, ReportKey];
}

/** A parsed report with the time AWS generated it (the source freshness). */
export interface CredentialReport {
  generatedTime: string;
  /** Header names as AWS sent them, in order (tells the layout apart). */
  columns: string[];
  users: ReportUser[];
}

/** The columns the probes need; any layout without one of them is not a credential report we can read. */
export const REQUIRED_COLUMNS = ['user', 'arn', 'password_enabled', 'mfa_active', 'access_key_1_active', 'access_key_1_last_rotated', 'access_key_2_active', 'access_key_2_last_rotated'] as const;

/** Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF or LF). IAM user names may contain commas. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  if (quoted) throw new MalformedResponseError('credential report: a quoted field is not closed');
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => !(r.length === 1 && r[0] === ''));
}

function flag(value: string | undefined): Flag {
  const v = (value ?? '').trim();
  const lower = v.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  if (lower === 'not_supported') return 'not_supported';
  if (lower === 'no_information') return 'no_information';
  if (v === 'N/A' || lower === 'n/a') return 'not_applicable';
  return 'unreadable';
}

function time(value: string | undefined): string | null {
  const v = (value ?? '').trim();
  if (v === '' || /^(n\/a|no_information|not_supported)$/i.test(v)) return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

/** Parses the report's CSV text, columns by header name. Throws MalformedResponseError when it is not a credential report. */
export function parseCredentialReport(csv: string, generatedTime: string): CredentialReport {
  const rows = parseCsv(csv.replace(/^\uFEFF/, ''));
  const header = rows[0];
  if (!header) throw new MalformedResponseError('credential report is empty');
  const columns = header.map((h) => h.trim());
  const index = new Map(columns.map((h, i) => [h.toLowerCase(), i]));
  const missing = REQUIRED_COLUMNS.filter((c) => !index.has(c));
  if (missing.length > 0) throw new MalformedResponseError(`credential report lacks the column(s) ${missing.join(', ')} (has: ${columns.slice(0, 30).join(', ')})`);
  const col = (row: string[], name: (typeof REQUIRED_COLUMNS)[number]): string | undefined => row[index.get(name) as number];
  const users = rows.slice(1).map((row, i): ReportUser => {
    if (row.length !== columns.length) throw new MalformedResponseError(`credential report row ${i + 2} has ${row.length} fields, the header ${columns.length}`);
    const user = (col(row, 'user') ?? '').trim();
    if (user === '') throw new MalformedResponseError(`credential report row ${i + 2} has no user name`);
    return {
      user,
      arn: (col(row, 'arn') ?? '').replace(/\s+/g, ''),
      isRoot: user === '<root_account>' || user === 'root_account',
      passwordEnabled: flag(col(row, 'password_enabled')),
      mfaActive: flag(col(row, 'mfa_active')),
      keys: [
        { active: flag(col(row, 'access_key_1_active')), lastRotated: time(col(row, 'access_key_1_last_rotated')) },
        { active: flag(col(row, 'access_key_2_active')), lastRotated: time(col(row, 'access_key_2_last_rotated')) },
      ],
    };
  });
  return { generatedTime, columns, users };
}
