import { z } from 'zod';

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

/** `host:port`, with IPv6 literals bracketed. */
function endpointName(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
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
    if (typeof value !== 'string') return { ...value, name: endpointName(value.host, value.port) };
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

/** A target of the TLS probe: a named list of endpoints. */
export const TlsTarget = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'expected a name of letters, digits, ".", "_" or "-"'),
  endpoints: z.array(TlsEndpoint).min(1, 'list at least one endpoint'),
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
  .refine((t) => t.org !== undefined || t.repos.length > 0, { message: 'give an org, repos, or both' });
export type GithubTarget = z.output<typeof GithubTarget>;

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

const LogLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** The whole vigil.yaml. Unknown keys are errors. */
export const VigilConfig = z.strictObject({
  /** IANA time zone for days and schedules. */
  timezone: z
    .string()
    .default('UTC')
    .refine((tz) => {
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
      /** Key prefix for every key vigil and BullMQ write. */
      prefix: z.string().regex(/^[a-z0-9_-]+$/i).default('vigil'),
    })
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
    })
    .default({ minGreenDays: 30, organization: 'Our organisation', maxAgeSeconds: 300 }),
  /** When the previous calendar day is closed and its snapshot built (local time in `timezone`). */
  dayClose: z
    .strictObject({
      at: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM, e.g. 00:10').default('00:10'),
    })
    .default({ at: '00:10' }),
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
  /** Targets of the GitHub probes (github-branch-protection, github-org-2fa). */
  github: z
    .array(GithubTarget)
    .default([])
    .superRefine(uniqueTargetNames),
  /** Targets of the tls-certificate-posture probe. */
  tls: z
    .array(TlsTarget)
    .default([])
    .superRefine(uniqueTargetNames),
  /** Per-probe settings, keyed by probe id. */
  probes: z.record(z.string(), ProbeSettings).default({}),
});
export type VigilConfig = z.output<typeof VigilConfig>;
