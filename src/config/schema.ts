import { z } from 'zod';
import { ignoreRuleProblems, IgnoreRule } from '../../probes/iac-drift/ignore-rules.js';
import { validateCron } from '../queue/cron.js';

/**
 * A secret is never a value in YAML: the file names where it lives.
 * `{ env: NAME }` reads an environment variable, `{ file: PATH }` reads a file (trailing newline trimmed;
 * a relative PATH is relative to the config file).
 */
export const SecretRef = z.union(
  [
    z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name') }),
    z.strictObject({ file: z.string().min(1) }),
  ],
  { error: 'secrets are never values in YAML: write { env: VAR_NAME } or { file: /path/to/secret }' },
);
export type SecretRef = z.infer<typeof SecretRef>;

const Port = z
  .number({ error: 'expected a number 1–65535' })
  .int('expected a number 1–65535')
  .min(1, 'expected a number 1–65535')
  .max(65535, 'expected a number 1–65535');

/** `host:port` for a listener; host defaults to 127.0.0.1. */
export const Listen = z
  .union([z.string(), z.number()])
  .transform((value, ctx) => {
    const text = String(value);
    const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
    const port = m ? Number(m[3]) : NaN;
    if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
      ctx.addIssue({ code: 'custom', message: 'expected host:port, e.g. 127.0.0.1:8080 (port 0 picks a free one)' });
      return z.NEVER;
    }
    return { host: m[1] || m[2] || '127.0.0.1', port };
  });
export type Listen = z.output<typeof Listen>;

/** `host:port` of a Redis node or sentinel (IPv6 literals bracketed), parsed to `{ host, port }`. */
const HostPort = z.string().transform((value, ctx) => {
  const m = /^(?:\[([^\]]+)\]|([^:/\s]+)):(\d+)$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    ctx.addIssue({ code: 'custom', message: 'expected host:port, e.g. 10.0.0.5:26379' });
    return z.NEVER;
  }
  return { host: (m[1] ?? m[2]) as string, port };
});

/**
 * `host:port`, with IPv6 literals bracketed; `servername@host:port` when a servername other than
 * the host is sent (issue 13: two virtual hosts on one address are two resources, two series).
 */
function endpointName(host: string, port: number, servername?: string): string {
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return servername !== undefined && canonicalName(servername) !== canonicalName(host) ? `${servername}@${address}` : address;
}

/** A host or servername for comparison: lower case; an IPv6 literal in canonical form (`0::1` is `::1`). */
function canonicalName(name: string): string {
  if (!name.includes(':')) return name.toLowerCase();
  try {
    return new URL(`http://[${name}]/`).hostname;
  } catch {
    return name.toLowerCase();
  }
}

/** A TLS endpoint: `host`, `host:port`, `[v6]:port`, or an object. Port defaults to 443. */
export const TlsEndpoint = z
  .union([
    z.string().min(1),
    z.strictObject({
      host: z.string().min(1),
      port: Port.default(443),
      /** SNI and the name the certificate must match; defaults to host. */
      servername: z.string().min(1).optional(),
    }),
  ])
  .transform((value, ctx) => {
    if (typeof value !== 'string') {
      // `host: "[::1]"` is the IPv6 literal ::1 (brackets belong to host:port text, not to the address).
      const unbracket = (name: string): string => /^\[([^\]]+)\]$/.exec(name)?.[1] ?? name;
      const host = unbracket(value.host);
      // A bracketed IPv6 servername too: unbracketed, it is recognised as an IP literal and not sent as SNI (RFC 6066 §3).
      const servername = value.servername === undefined ? undefined : unbracket(value.servername);
      return { ...value, host, ...(servername === undefined ? {} : { servername }), name: endpointName(host, value.port, servername) };
    }
    const m = /^(?:\[([^\]]+)\]|([^:/\s]+))(?::(\d+))?$/.exec(value);
    const port = m?.[3] === undefined ? 443 : Number(m[3]);
    if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
      ctx.addIssue({ code: 'custom', message: 'expected host or host:port with a port 1–65535' });
      return z.NEVER;
    }
    const host = (m[1] ?? m[2]) as string;
    return { host, port, servername: undefined as string | undefined, name: endpointName(host, port) };
  });
export type TlsEndpoint = z.output<typeof TlsEndpoint>;

/** What makes two endpoints one: names compared case-insensitively, IPv6 literals in canonical form (`[0::1]` is `[::1]`). */
function endpointKey(e: { host: string; port: number; servername?: string | undefined }): string {
  const host = canonicalName(e.host);
  const servername = e.servername === undefined ? host : canonicalName(e.servername);
  return `${servername === host ? '' : servername}@${host}:${e.port}`;
}

/** A target of the TLS probe: a named list of endpoints. */
export const TlsTarget = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'expected a name of letters, digits, ".", "_" or "-"'),
  endpoints: z
    .array(TlsEndpoint)
    .min(1, 'list at least one endpoint')
    .superRefine((endpoints, ctx) => {
      // Same host, port and servername (the servername defaults to the host): one resource twice.
      const seen = new Map<string, number>();
      endpoints.forEach((e, i) => {
        // zod still runs this when an entry failed (its value is then not an endpoint): skip it.
        if (typeof (e as { name?: unknown } | undefined)?.name !== 'string') return;
        const key = endpointKey(e);
        const first = seen.get(key);
        if (first === undefined) seen.set(key, i);
        else ctx.addIssue({ code: 'custom', path: [i], message: `duplicate endpoint "${e.name}" (same host, port and servername as endpoints[${first}]): remove one` });
      });
    }),
  /** PEM file of extra trusted roots, added to the system roots (relative to the config file). */
  caFile: z.string().min(1).optional(),
});
export type TlsTarget = z.output<typeof TlsTarget>;

/** How vigil authenticates to GitHub: a token, or a GitHub App installation (tokens refreshed before expiry). */
export const GithubAuth = z.union(
  [
    z.strictObject({ token: SecretRef }),
    z.strictObject({
      app: z.strictObject({
        appId: z.number().int().positive(),
        installationId: z.number().int().positive(),
        /** The App's private key (PEM). */
        privateKey: SecretRef,
      }),
    }),
  ],
  { error: 'expected { token: { env: NAME } } or { app: { appId, installationId, privateKey: { file: PATH } } }' },
);
export type GithubAuth = z.infer<typeof GithubAuth>;

/** A GitHub target: an organisation (all its repositories, filtered by name globs) and/or explicit repositories. */
export const GithubTarget = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'expected a name of letters, digits, ".", "_" or "-"'),
    /** Organisation login: every repository in it (archived and disabled ones are skipped and counted). */
    org: z.string().min(1).optional(),
    /** Name globs (`*`, `?`) selecting the org's repositories. Default: all. */
    include: z.array(z.string().min(1)).default(['*']),
    exclude: z.array(z.string().min(1)).default([]),
    /** Explicit repositories, `owner/name`. */
    repos: z.array(z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'expected owner/name')).default([]),
    /** Branch name patterns checked besides the default branch, e.g. `release/*`. */
    branches: z.array(z.string().min(1)).default([]),
    /** REST API root; for GitHub Enterprise Server `https://HOST/api/v3`. GraphQL is derived from it. */
    apiUrl: z.string().url().default('https://api.github.com'),
    /** Accept an `http://` apiUrl (the token would travel in clear text). Off by default. */
    allowInsecureHttp: z.boolean().default(false),
    auth: GithubAuth,
  })
  .refine((t) => t.org !== undefined || t.repos.length > 0, { message: 'give an org, repos, or both' })
  .superRefine((t, ctx) => {
    // The token travels with every request: clear text only when the config says so explicitly.
    const scheme = URL.canParse(t.apiUrl) ? new URL(t.apiUrl).protocol : '';
    if (scheme === 'https:' || (scheme === 'http:' && t.allowInsecureHttp)) return;
    ctx.addIssue({
      code: 'custom',
      path: ['apiUrl'],
      message:
        scheme === 'http:'
          ? 'an http:// apiUrl sends the GitHub token in clear text: use https://, or set allowInsecureHttp: true on this target'
          : 'expected an https:// URL',
    });
  });
export type GithubTarget = z.output<typeof GithubTarget>;

/** An AWS service endpoint override (VPC endpoint, tests): https, or http on loopback only. */
const AwsEndpoint = z
  .string()
  .url()
  .refine((u) => {
    const url = new URL(u);
    // The session token of assumed-role credentials travels in a header: clear text only to this machine.
    return url.protocol === 'https:' || (url.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname));
  }, 'expected an https:// URL (http:// only to 127.0.0.1, [::1] or localhost)');

/**
 * An AWS target: one account, reached with the SDK's default credential chain and optionally
 * through `sts:AssumeRole`. IAM is global; Config and Backup are read in every region.
 */
export const AwsTarget = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'expected a name of letters, digits, ".", "_" or "-"'),
    /** Regions of the regional services (Config, Backup). IAM is global and signed for us-east-1 whatever these are. */
    regions: z
      .array(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'expected an AWS region such as us-east-1'))
      .min(1, 'list at least one region')
      .refine((r) => new Set(r).size === r.length, 'list each region once'),
    /** Role to assume (session name `vigil`) through `endpoints.sts`; the base credentials come from the default provider chain. */
    roleArn: z
      .string()
      .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/, 'expected a role ARN, e.g. arn:aws:iam::222222222222:role/vigil-readonly')
      .optional(),
    /** The role's external id (sts:ExternalId condition): a secret reference. */
    externalId: SecretRef.optional(),
    /** Per-service endpoint overrides. */
    endpoints: z
      .strictObject({ iam: AwsEndpoint.optional(), sts: AwsEndpoint.optional(), config: AwsEndpoint.optional(), backup: AwsEndpoint.optional() })
      .default({}),
  })
  .refine((t) => t.externalId === undefined || t.roleArn !== undefined, { message: 'externalId needs a roleArn to assume', path: ['externalId'] });
export type AwsTarget = z.output<typeof AwsTarget>;

// ── backups: the backup tools teams run themselves (probes backup-repository, backup-restore-drill) ──

const BackupName = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'expected a name of letters, digits, ".", "_" or "-"');
/** Recovery point objective: the newest backup must be younger than this. */
const RpoHours = z.number().positive().max(24 * 366).default(26);
/** A repository location. Credentials never go in it (they would appear in `ps` and in errors): use `password`/`environment`. */
const RepositoryLocation = z
  .string()
  .min(1)
  .refine((r) => !/:\/\/[^/@\s]*:[^/@\s]*@/.test(r), 'put no password in the repository URL: give it as an environment secret ({ env } / { file })');
/** Extra environment for the tool (object-store credentials such as AWS_ACCESS_KEY_ID), every value a secret reference. */
const ToolEnvironment = z.record(z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'expected an environment variable name in capitals'), SecretRef).default({});
/** The tool's executable (absolute path, or a name looked up on PATH). */
const ToolCommand = z.string().min(1).optional();

/** A restic repository (read with `--no-lock`). */
export const ResticBackup = z.strictObject({
  name: BackupName,
  kind: z.literal('restic'),
  /** Passed as RESTIC_REPOSITORY, e.g. /srv/restic, sftp:host:/srv/restic, s3:s3.amazonaws.com/bucket. */
  repository: RepositoryLocation,
  /** Passed as RESTIC_PASSWORD. */
  password: SecretRef,
  /** Snapshot groups that must each be fresh; empty: the newest snapshot of the repository. */
  snapshots: z
    .array(
      z.strictObject({
        host: z.string().min(1).optional(),
        /** The snapshot must contain every one of these paths. */
        paths: z.array(z.string().min(1)).default([]),
        /** The snapshot must carry every one of these tags. */
        tags: z.array(z.string().min(1)).default([]),
      }),
    )
    .default([]),
  rpoHours: RpoHours,
  /** Run `restic check` (structure) at every run. */
  check: z.boolean().default(true),
  /** N > 0: each run also reads subset k/N of the pack data (k rotates by the day, so N daily runs read all of it). 0: never. */
  readDataSubsets: z.number().int().min(0).max(10_000).default(0),
  environment: ToolEnvironment,
  command: ToolCommand,
});

/** A BorgBackup repository (read with `--bypass-lock`). */
export const BorgBackup = z.strictObject({
  name: BackupName,
  kind: z.literal('borg'),
  /** A local path, or ssh://user@host/path. */
  repository: RepositoryLocation,
  /** Passed as BORG_PASSPHRASE; leave out for an unencrypted repository. */
  passphrase: SecretRef.optional(),
  /** BORG_KEY_FILE, for keyfile-mode repositories. */
  keyFile: z.string().min(1).optional(),
  /** Archive name globs (`--glob-archives`) that must each have a fresh archive; empty: the newest archive. */
  archives: z.array(z.string().min(1)).default([]),
  rpoHours: RpoHours,
  /** Run `borg check` (repository and archive metadata) at every run. */
  check: z.boolean().default(true),
  /** N > 0: add `--verify-data` (decrypt and hash every chunk) on every N-th day. 0: never. */
  verifyDataEveryDays: z.number().int().min(0).max(366).default(0),
  /** BORG_BASE_DIR for vigil's borg (security and keys directories). Default: <dataDir>/borg. */
  baseDir: z.string().min(1).optional(),
  environment: ToolEnvironment,
  command: ToolCommand,
});

/** A pgBackRest stanza (`info` and `verify` only; `check` writes to the database and is never run). */
export const PgbackrestBackup = z.strictObject({
  name: BackupName,
  kind: z.literal('pgbackrest'),
  stanza: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'expected a stanza name'),
  /** pgbackrest.conf to read (`--config`). Default: pgBackRest's own. */
  configFile: z.string().min(1).optional(),
  /** Which repository (`--repo`); default: all that the config defines. */
  repo: z.number().int().min(1).max(256).optional(),
  /** The repository cipher passphrase, passed as PGBACKREST_REPO<n>_CIPHER_PASS (repo 1 unless `repo` says). */
  cipherPass: SecretRef.optional(),
  rpoHours: RpoHours,
  /** Run `pgbackrest verify` (checksums of every backup and WAL file) at every run. */
  verify: z.boolean().default(true),
  environment: ToolEnvironment,
  command: ToolCommand,
});

/** A directory of dump files (e.g. nightly `pg_dump -Fc`). */
export const DumpsBackup = z.strictObject({
  name: BackupName,
  kind: z.literal('dumps'),
  dir: z.string().min(1),
  /** File-name glob (`*`, `?`) of the dumps; `*.sha256` sidecars never match. */
  pattern: z.string().min(1).default('*'),
  /** `postgres-custom`: the newest dump is read through by `pg_restore`. `raw`: size and checksum only. */
  format: z.enum(['postgres-custom', 'raw']).default('raw'),
  rpoHours: RpoHours,
  /** pg_restore's executable. */
  command: ToolCommand,
});

/** A directory of restore-drill records (JSON files), for systems outside AWS. */
export const DrillsBackup = z.strictObject({
  name: BackupName,
  kind: z.literal('drills'),
  dir: z.string().min(1),
  /** Systems that must each have a drill; empty: every system that has a record. */
  systems: z.array(z.string().min(1)).default([]),
  /** A system's newest passed drill must be at most this old; a failed drill this recent fails the system. */
  maxDaysSinceDrill: z.number().int().min(1).max(3660).default(90),
  /** Recovery time objective: a passed drill that took longer fails. */
  maxRestoreMinutes: z.number().positive().default(240),
});

/** One `backups:` entry: what it is (`kind`) and how to read it. */
export const BackupTarget = z.discriminatedUnion('kind', [ResticBackup, BorgBackup, PgbackrestBackup, DumpsBackup, DrillsBackup]);
export type BackupTarget = z.output<typeof BackupTarget>;

/** The secret references of a `backups:` entry, by their key path inside it (checked at load, read by the probe at run time). */
export function backupSecrets(t: BackupTarget): Array<[string, SecretRef]> {
  const refs: Array<[string, SecretRef | undefined]> = [];
  if (t.kind === 'restic') refs.push(['password', t.password]);
  if (t.kind === 'borg') refs.push(['passphrase', t.passphrase]);
  if (t.kind === 'pgbackrest') refs.push(['cipherPass', t.cipherPass]);
  if ('environment' in t) for (const [name, ref] of Object.entries(t.environment)) refs.push([`environment.${name}`, ref]);
  return refs.filter((r): r is [string, SecretRef] => r[1] !== undefined);
}

/**
 * A cron expression node-cron and cron-parser agree on. A long or non-ASCII one is refused without
 * echoing it. Checked only where the config sets one (it loads cron-parser's time-zone data).
 */
function cronExpression(expression: string, ctx: z.core.$RefinementCtx<string>): void {
  const problem = /^[\x20-\x7e]{1,100}$/.test(expression)
    ? validateCron(expression)
    : 'expected a cron expression of 5 or 6 fields (printable ASCII, at most 100 characters)';
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
}

/** Environment variables a workspace's tool may not be given: vigil sets them, or they change what plan does. */
const IAC_RESERVED_ENV = /^(TF_DATA_DIR|TF_IN_AUTOMATION|TF_CLI_ARGS(_.*)?|TF_LOG(_.*)?|TF_INPUT)$/;

const IacEnvName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name')
  .refine((n) => !IAC_RESERVED_ENV.test(n), 'vigil sets TF_DATA_DIR and TF_IN_AUTOMATION itself, and TF_CLI_ARGS*, TF_LOG* and TF_INPUT could change what plan does or print values: leave them out');

/**
 * One environment variable handed to the tool: a name passed through from vigil's own
 * environment, or `{ name, from: { env } | { file } }` for a secret read by reference (and scrubbed
 * from everything vigil writes). Nothing else is inherited.
 */
export const IacEnv = z.union([IacEnvName, z.strictObject({ name: IacEnvName, from: SecretRef })], {
  error: 'expected a variable NAME (passed through) or { name: NAME, from: { env: OTHER } | { file: PATH } }',
});
export type IacEnv = z.infer<typeof IacEnv>;

/**
 * One entry of `iac:` — an OpenTofu/Terraform workspace checked by the iac-drift probe (`dir`,
 * optionally with `planFile` to read CI's plan instead of running the tool), or a `discover` root
 * searched for root modules with a backend that no workspace declares.
 */
export const IacWorkspace = z
  .strictObject({
    /** The target name. */
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'expected a name of letters, digits, ".", "_" or "-"'),
    /** The root module (relative to the config file). Required unless planFile or discover is given. */
    dir: z.string().min(1).optional(),
    /** `tofu` (default), `terraform`, or a path to the executable (relative to the config file). */
    binary: z.string().min(1).default('tofu'),
    /** `plan` (default: reality vs code) or `refresh-only` (reality vs state only). */
    mode: z.enum(['plan', 'refresh-only']).default('plan'),
    /** Environment variables passed to the tool; nothing else is inherited. */
    env: z.array(IacEnv).default([]),
    /** `-var-file` arguments, relative to `dir`. */
    varFiles: z.array(z.string().min(1)).default([]),
    /** Time budget of init + plan + show; exceeded → the tool is killed, the result is unknown. */
    timeoutMinutes: z.number().positive().max(24 * 60).default(30),
    /** Cron schedule of this workspace (5 fields, or 6 with seconds). Default: the probe's (`probes.iac-drift.schedule`, daily). */
    schedule: z.string().superRefine(cronExpression).optional(),
    /** Instead of running the tool: a `show -json` document CI produced (path or glob, newest wins; relative to the config file). */
    planFile: z.string().min(1).optional(),
    /** Ignore rules (also read from vigil.drift-ignore.yaml in `dir`). */
    ignore: z.array(IgnoreRule).default([]),
    /** A directory searched for root modules with a backend/cloud block that no workspace declares ("not monitored"). */
    discover: z.string().min(1).optional(),
  })
  .superRefine((w, ctx) => {
    if (w.discover !== undefined) {
      if (w.dir !== undefined || w.planFile !== undefined) ctx.addIssue({ code: 'custom', path: ['discover'], message: 'a discover entry names only a directory to search: give dir/planFile in their own entries' });
      return;
    }
    if (w.dir === undefined && w.planFile === undefined) ctx.addIssue({ code: 'custom', message: 'give dir (a root module), planFile (a show -json document), or discover (a directory to search)' });
    const names = w.env.map((e) => (typeof e === 'string' ? e : e.name));
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i) ctx.addIssue({ code: 'custom', path: ['env', i], message: `${n} is listed twice` });
    });
    for (const problem of ignoreRuleProblems(w.ignore, new Date(), 'ignore')) ctx.addIssue({ code: 'custom', path: ['ignore'], message: problem });
  });
export type IacWorkspace = z.output<typeof IacWorkspace>;

/** Per-probe overrides: schedule, params, or switching a probe off. */
export const ProbeSettings = z.strictObject({
  enabled: z.boolean().default(true),
  /** Cron expression (5 fields, or 6 with seconds). Default: the probe's own. */
  schedule: z.string().min(1).optional(),
  /** Validated against the probe's own params schema at load time. */
  params: z.record(z.string(), z.unknown()).default({}),
});
export type ProbeSettings = z.output<typeof ProbeSettings>;

/** Target names are keys (job ids, results, metrics labels): unique within a section. */
function uniqueTargetNames(targets: ReadonlyArray<{ name: string }>, ctx: z.core.$RefinementCtx<ReadonlyArray<{ name: string }>>): void {
  const seen = new Set<string>();
  targets.forEach((t, i) => {
    if (seen.has(t.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate target name "${t.name}"` });
    seen.add(t.name);
  });
}

/** A #rrggbb colour of the trust page (`trust.colors.*`). */
const TrustColour = z.string().regex(/^#[0-9a-fA-F]{6}$/, 'expected a colour as #rrggbb, e.g. #0b4fa8');

/** An absolute https:// URL without credentials (`trust.logoUrl`, `trust.securityUrl`). */
const TrustHttpsUrl = z.string().refine((u) => {
  try {
    const url = new URL(u);
    // A host name or IP literal only: WHATWG URL lets ; ' $ , through in a host, and logoUrl's origin goes into the page's CSP.
    return url.protocol === 'https:' && url.username === '' && url.password === '' && /^([a-z0-9_-]+\.)*[a-z0-9_-]+\.?$|^\[[0-9a-f:.]+\]$/.test(url.hostname);
  } catch {
    return false;
  }
}, 'expected an https:// URL such as https://example.com/security');

const LogLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/**
 * A risk acceptance (issue 15): a failing finding of `control` (from `probe`, or any of its
 * probes) on a resource matching `resource` does not redden the control until `expires`, but is
 * listed as excepted in the API, the snapshot and the email. `expires` (the last day it holds, in
 * `timezone`) is required and at most 365 days after the day the config is loaded (checked in
 * load.ts, with the catalog).
 */
export const RiskException = z.strictObject({
  /** Catalog control id. */
  control: z.string().min(1),
  /** Probe id; default: any probe of the control. */
  probe: z.string().min(1).optional(),
  /** Resource name or glob: `*` matches any run of characters (also `/`), `?` one character. */
  resource: z.string().min(1).max(500),
  /** Why the risk is accepted (shown to the security officer and auditors, never in public). */
  reason: z.string().min(1).max(1000),
  /** Who accepted it (a name or an email address). */
  approvedBy: z.string().min(1).max(200),
  /** Link to the ticket or record of the decision. */
  ticket: z
    .string()
    .max(2000)
    .refine((u) => {
      try {
        return ['https:', 'http:'].includes(new URL(u).protocol);
      } catch {
        return false;
      }
    }, 'expected an http(s) URL of the ticket')
    .optional(),
  /**
   * Day (YYYY-MM-DD, in `timezone`) the risk was accepted; optional. Before it the exception does
   * not apply, so adding one never turns an earlier day — a late or backlog day close — green.
   */
  approved: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date YYYY-MM-DD')
    .refine((d) => {
      const t = Date.parse(`${d}T00:00:00Z`);
      return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === d;
    }, 'not a calendar date')
    .optional(),
  /** Last day (YYYY-MM-DD, in `timezone`) the exception holds; from the day after, the finding counts again. */
  expires: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date YYYY-MM-DD')
    .refine((d) => {
      const t = Date.parse(`${d}T00:00:00Z`);
      return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === d;
    }, 'not a calendar date'),
});
export type RiskException = z.infer<typeof RiskException>;

/** The whole vigil.yaml. Unknown keys are errors. */
export const VigilConfig = z.strictObject({
  /** IANA time zone for days and schedules. */
  timezone: z
    .string()
    .default('UTC')
    .refine((tz) => {
      // The default needs no check, and asking Intl loads ICU's time-zone data (~8 MB of RSS) into
      // every process — a run-once or `config check` on a UTC config never needs it otherwise.
      if (tz === 'UTC') return true;
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    }, 'expected an IANA time zone such as UTC or Europe/Berlin'),
  /** Where vigil keeps local state (the embedded Redis). Relative to the working directory. Default ./var. */
  dataDir: z.string().min(1).default('var'),
  redis: z
    .strictObject({
      /** Leave out to let vigil run its own redis-server under dataDir. Put no password in the URL. */
      url: z
        .string()
        .regex(/^rediss?:\/\//, 'expected redis://host:port or rediss://host:port')
        .refine((u) => {
          try {
            return new URL(u).password === '';
          } catch {
            return false;
          }
        }, 'expected a URL without a password: put it in redis.password as { env: NAME } or { file: PATH }')
        .optional(),
      password: SecretRef.optional(),
      /** Key prefix for every key vigil and BullMQ write. With `cluster` it is used as the hash tag `{prefix}`. */
      prefix: z.string().regex(/^[a-z0-9_-]+$/i).default('vigil'),
      /** Redis Sentinel: the sentinels to ask where the primary named `sentinelName` is (instead of `url`). */
      sentinels: z.array(HostPort).min(1, 'list at least one sentinel').optional(),
      /** The primary's name in the sentinels' configuration (`sentinel monitor NAME …`). */
      sentinelName: z.string().min(1).optional(),
      /** Redis Cluster: some of its primaries (the rest are discovered). Every key carries the hash tag `{prefix}`. */
      cluster: z.array(HostPort).min(1, 'list at least one cluster node').optional(),
      /** Redis ACL user (Redis 6+); its password is `password`. Default: the `default` user. */
      username: z.string().min(1).optional(),
      /** TLS to Redis (and to the sentinels) with a private CA; `rediss://` URLs use it too. Paths are relative to the config file. */
      tls: z
        .strictObject({
          /** PEM file of the CA(s) that sign the server certificates (the system roots are not used). */
          caFile: z.string().min(1),
          /** Client certificate (PEM), when the server requires one (`tls-auth-clients yes`). */
          certFile: z.string().min(1).optional(),
          /** The client certificate's private key (PEM). */
          keyFile: z.string().min(1).optional(),
          /** Name the server certificate must match, when not the host connected to. */
          servername: z.string().min(1).optional(),
        })
        .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), 'give certFile and keyFile together')
        .optional(),
    })
    .refine((r) => [r.url, r.sentinels, r.cluster].filter((x) => x !== undefined).length <= 1, 'give one of url, sentinels or cluster')
    .refine((r) => (r.sentinels === undefined) === (r.sentinelName === undefined), 'sentinels and sentinelName go together')
    .default({ prefix: 'vigil' }),
  http: z
    .strictObject({
      public: z
        .strictObject({
          listen: Listen.default({ host: '127.0.0.1', port: 8080 }),
          /** Open connections accepted at once; more are refused (the listener faces the internet). */
          maxConnections: z.number().int().min(1).max(100_000).default(256),
        })
        .default({ listen: { host: '127.0.0.1', port: 8080 }, maxConnections: 256 }),
      admin: z
        .strictObject({
          listen: Listen.default({ host: '127.0.0.1', port: 9464 }),
          /** Bearer token for /api/* (at least 32 characters). Unset at start → vigil generates one into <dataDir>/admin-token. */
          token: SecretRef.optional(),
          /** Open connections accepted at once. */
          maxConnections: z.number().int().min(1).max(100_000).default(64),
          /** Host header values (host or host:port, case-insensitive) the admin listener answers; others get 421. Default: any (guards against DNS rebinding when set). */
          allowedHosts: z.array(z.string().min(1)).optional(),
          /** Require the admin bearer token on /metrics too. Off by default, as Prometheus users expect. */
          metricsAuth: z.boolean().default(false),
        })
        .default({ listen: { host: '127.0.0.1', port: 9464 }, maxConnections: 64, metricsAuth: false }),
    })
    .default({
      public: { listen: { host: '127.0.0.1', port: 8080 }, maxConnections: 256 },
      admin: { listen: { host: '127.0.0.1', port: 9464 }, maxConnections: 64, metricsAuth: false },
    }),
  /** The control catalog, relative to the config file. Default: config/controls.yaml shipped with vigil. */
  controls: z.string().min(1).optional(),
  worker: z
    .strictObject({
      /** Probe jobs run at once per daemon. */
      concurrency: z.number().int().min(1).max(64).default(4),
      /** Attempts per run for transient failures (timeouts, resets, 429, 5xx). */
      attempts: z.number().int().min(1).max(20).default(3),
      /** First retry delay; doubles each attempt. */
      backoffSeconds: z.number().min(0).default(10),
      /** Time budget of one collect; exceeded → aborted and retried. */
      timeoutSeconds: z.number().positive().default(120),
    })
    .default({ concurrency: 4, attempts: 3, backoffSeconds: 10, timeoutSeconds: 120 }),
  shutdown: z
    .strictObject({
      /** How long running jobs may finish on SIGTERM before they go back to the queue. */
      graceSeconds: z.number().min(0).default(20),
    })
    .default({ graceSeconds: 20 }),
  log: z.strictObject({ level: LogLevel.default('info') }).default({ level: 'info' }),
  /** The public trust feed. */
  trust: z
    .strictObject({
      /** Consecutive green days before a public control appears on the feed. Never below 30. */
      minGreenDays: z.number().int().min(30, 'must be at least 30: the trust feed only lists controls measured green for 30+ consecutive days').default(30),
      /** Name shown on the /trust page. */
      organization: z.string().min(1).default('Our organisation'),
      /** Cache-Control max-age of the feed, seconds. */
      maxAgeSeconds: z.number().int().min(0).default(300),
      /** Heading and <title> of the /trust page. Default: the organization. */
      title: z.string().min(1).max(200).optional(),
      /** Logo shown on the page, an https:// URL (the page's CSP allows images from its origin only). */
      logoUrl: TrustHttpsUrl.optional(),
      /** Logo as a local PNG or SVG file (relative to the config file, at most 256 KiB), inlined as a data: URI. */
      logoFile: z.string().min(1).optional(),
      /** Page colours, each #rrggbb (never raw CSS). */
      colors: z
        .strictObject({
          accent: TrustColour.optional(),
          background: TrustColour.optional(),
          text: TrustColour.optional(),
        })
        .optional(),
      /** A plain-text paragraph under the heading (HTML is shown as text). */
      intro: z.string().min(1).max(2000).optional(),
      /** https:// link to the organisation's security page. */
      securityUrl: TrustHttpsUrl.optional(),
    })
    .refine((t) => t.logoUrl === undefined || t.logoFile === undefined, { message: 'give logoUrl or logoFile, not both', path: ['logoFile'] })
    .default({ minGreenDays: 30, organization: 'Our organisation', maxAgeSeconds: 300 }),
  /** When the previous calendar day is closed and its snapshot built (local time in `timezone`). */
  dayClose: z
    .strictObject({
      at: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM, e.g. 00:10').default('00:10'),
    })
    .default({ at: '00:10' }),
  /** How closed days are judged. */
  days: z
    .strictObject({
      /**
       * Share of a target's scheduled slots that must be measured for its day to be green (0 < x ≤ 1).
       * Below it the day is unknown, with the coverage in the reason. Default 0.9.
       */
      minCoverage: z
        .number()
        .gt(0, 'must be more than 0 and at most 1 (a share of the scheduled runs, e.g. 0.9)')
        .max(1, 'must be more than 0 and at most 1 (a share of the scheduled runs, e.g. 0.9)')
        .default(0.9),
    })
    .default({ minCoverage: 0.9 }),
  /** The evidence archive: one hash-chained JSON file per closed day. */
  archive: z
    .strictObject({
      /** Directory (relative to the config file). Default: <dataDir>/archive. */
      dir: z.string().min(1).optional(),
      /** Ed25519 private key (PEM, PKCS#8) to sign each snapshot's hash. Optional. */
      signingKey: SecretRef.optional(),
    })
    .default({}),
  /** The daily snapshot email to the security officer. Leave out to send none. */
  email: z
    .strictObject({
      /** SMTP URL, e.g. smtps://user:password@mail.example.com:465 — a secret, so from env or file. */
      smtp: SecretRef,
      from: z.string().min(3),
      to: z.array(z.string().min(3)).min(1, 'list at least one recipient'),
      /** How long an SMTP outage is retried before the day's email is given up (and counted). */
      retryHours: z.number().positive().default(12),
      /** Send over a connection without TLS (no STARTTLS offered). Off by default: the SMTP password would travel in clear text. */
      allowPlaintext: z.boolean().default(false),
    })
    .optional(),
  /** Targets of the GitHub probes (github-branch-protection, github-org-2fa, github-change-review, github-workflow-runs…). */
  github: z
    .array(GithubTarget)
    .default([])
    .superRefine(uniqueTargetNames),
  /** Targets of the AWS probes (aws-root-mfa, aws-iam-user-mfa, aws-iam-access-key-age, aws-config-recording, aws-config-rules-compliant): one entry per account. */
  aws: z
    .array(AwsTarget)
    .default([])
    .superRefine(uniqueTargetNames),
  /** Backup repositories, dump directories and restore-drill records (probes backup-repository, backup-restore-drill). */
  backups: z
    .array(BackupTarget)
    .default([])
    .superRefine(uniqueTargetNames),
  /** Targets of the tls-certificate-posture probe. */
  tls: z
    .array(TlsTarget)
    .default([])
    .superRefine(uniqueTargetNames),
  /** Targets of the iac-drift probe: OpenTofu/Terraform workspaces and discover roots. */
  iac: z
    .array(IacWorkspace)
    .default([])
    .superRefine(uniqueTargetNames),
  /** Per-probe settings, keyed by probe id. */
  probes: z.record(z.string(), ProbeSettings).default({}),
  /** Risk acceptances: failing findings that do not redden their control until they expire, never hidden. */
  exceptions: z.array(RiskException).max(10_000).default([]),
});
export type VigilConfig = z.output<typeof VigilConfig>;
