import { createPrivateKey } from 'node:crypto';
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { backupSecrets, VigilConfig } from './schema.js';
import { ControlCatalog, loadControlCatalog } from './controls.js';
import { ConfigError, formatIssues, formatKey } from './errors.js';
import { MAX_CONFIG_BYTES, parseYamlText, readYamlFile } from './yaml.js';

export { ConfigError, EXIT_CONFIG } from './errors.js';
export { MAX_CATALOG_BYTES, MAX_CONFIG_BYTES } from './yaml.js';
import type { AnyProbe } from '../probe/contract.js';
import { cronIntervalMs, validateCron } from '../queue/cron.js';
import { readSecret, secretFileModeWarning, SecretUnavailableError } from '../secrets.js';
import type { SecretRef } from './schema.js';
import { smtpUrlProblem } from '../notify/smtp-url.js';
import { exceptionProblems } from '../posture/exceptions.js';

/** Shortest admin token accepted: 32 characters (the generated one is 43, from 32 random bytes). */
export const MIN_ADMIN_TOKEN_LENGTH = 32;

/** Root of the vigil package (where config/ and package.json live), for the embedded defaults. */
export const packageRoot = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'config', 'controls.yaml'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(start, '..', '..');
  }
}

/** The config that `vigil start` uses when no --config is given. */
export const defaultConfigPath = path.join(packageRoot, 'config', 'vigil.example.yaml');

/** The catalog used when the config names none. */
export const defaultControlsPath = path.join(packageRoot, 'config', 'controls.yaml');

/** A probe as configured: its definition, resolved schedule, interval and validated params. */
export interface ConfiguredProbe {
  probe: AnyProbe;
  schedule: string;
  /** Longest gap between two firings of the schedule; staleness is 2 × this. */
  intervalMs: number;
  params: unknown;
}

/** Everything the daemon needs, validated. */
export interface LoadedConfig {
  file: string;
  dir: string;
  config: VigilConfig;
  catalog: ControlCatalog;
  /** Enabled probes, by id, in registry order. */
  probes: Map<string, ConfiguredProbe>;
  /** Secrets read from their references at load time (and registered for scrubbing). */
  secrets: { adminToken: string | undefined; redisPassword: string | undefined; smtpUrl: string | undefined; signingKey: string | undefined };
  /** Absolute directory of the evidence archive. */
  archiveDir: string;
  /**
   * What is accepted but unsafe, one line each in the form of a problem (`file: key: text`), e.g.
   * a secret file readable by others. Never a secret value. The daemon logs them at start.
   */
  warnings: string[];
}

/**
 * A kind of secret a command may use: `redis` (redis.password), `admin` (http.admin.token), `smtp`
 * (email.smtp), `signing` (archive.signingKey), `probes` (the GitHub, AWS, backup and IaC credentials).
 */
export type SecretUse = 'redis' | 'admin' | 'smtp' | 'signing' | 'probes';

/** How {@link loadConfig} treats the secrets. */
export interface LoadOptions {
  /**
   * The secrets the command uses: the others are neither read nor required (`vigil snapshot` sends
   * no mail and needs no SMTP URL). `'check'` (`vigil config check`) reads every one but reports an
   * unset variable or an unreadable file as a warning, since the command that needs it may run
   * elsewhere. Default: every secret, each required (the daemon).
   */
  secrets?: readonly SecretUse[] | 'check';
}

/** Reads and validates the config file, the catalog it names, and every probe's settings. */
export function loadConfig(file: string, registry: readonly AnyProbe[], env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): LoadedConfig {
  const abs = path.resolve(file);
  return loadConfigText(readYamlFile(file, 'config file', MAX_CONFIG_BYTES), abs, registry, env, options);
}

/** As loadConfig, from text already read (`file` names it in messages and anchors relative paths). */
export function loadConfigText(text: string, file: string, registry: readonly AnyProbe[], env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): LoadedConfig {
  const dir = path.dirname(path.resolve(file));
  const raw = parseYamlText(file, text, 'config file', MAX_CONFIG_BYTES);
  const parsed = VigilConfig.safeParse(raw);
  if (!parsed.success) throw new ConfigError(formatIssues(file, parsed.error.issues));
  const config = parsed.data;

  // Relative paths in the file are relative to the file.
  for (const target of config.tls) if (target.caFile) target.caFile = path.resolve(dir, target.caFile);
  for (const w of config.iac) {
    // A bare `tofu`/`terraform` is looked up on PATH when the probe runs; anything with a slash is a path.
    if (w.binary.includes('/')) w.binary = path.resolve(dir, w.binary);
    for (const key of ['dir', 'planFile', 'discover'] as const) if (w[key] !== undefined) w[key] = path.resolve(dir, w[key] as string);
    for (const e of w.env) if (typeof e !== 'string' && 'file' in e.from) e.from.file = path.resolve(dir, e.from.file);
  }
  for (const b of config.backups) {
    // Directories, files and executables with a slash; a repository location is the tool's (use an absolute path).
    if ('dir' in b) b.dir = path.resolve(dir, b.dir);
    if ('configFile' in b && b.configFile !== undefined) b.configFile = path.resolve(dir, b.configFile);
    if ('keyFile' in b && b.keyFile !== undefined) b.keyFile = path.resolve(dir, b.keyFile);
    if ('baseDir' in b && b.baseDir !== undefined) b.baseDir = path.resolve(dir, b.baseDir);
    if ('command' in b && b.command?.includes('/')) b.command = path.resolve(dir, b.command);
    for (const [, ref] of backupSecrets(b)) if ('file' in ref) ref.file = path.resolve(dir, ref.file);
  }
  const githubRefs = config.github.map((t) => ('token' in t.auth ? t.auth.token : t.auth.app.privateKey));
  for (const ref of [config.redis.password, config.http.admin.token, config.email?.smtp, config.archive.signingKey, ...githubRefs, ...config.aws.map((t) => t.externalId)]) {
    if (ref && 'file' in ref) ref.file = path.resolve(dir, ref.file);
  }

  const problems: string[] = [];
  const warnings: string[] = [];
  config.tls.forEach((target, i) => {
    if (!target.caFile) return;
    try {
      accessSync(target.caFile, constants.R_OK);
    } catch (err) {
      problems.push(`${file}: tls[${i}].caFile: cannot read ${target.caFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  });
  const lenient = options.secrets === 'check';
  const uses = (kind: SecretUse) => options.secrets === undefined || options.secrets === 'check' || options.secrets.includes(kind);
  const secret = (keyPath: string, ref: SecretRef | undefined, required: boolean, kind: SecretUse): string | undefined => {
    // A secret the command does not use is not read: it need not be set where the command runs.
    if (!ref || !uses(kind)) return undefined;
    const missing = lenient ? warnings : problems;
    try {
      const value = readSecret(ref, env);
      if (value !== undefined && 'file' in ref) {
        const warning = secretFileModeWarning(ref.file);
        if (warning) warnings.push(`${file}: ${keyPath}: ${warning}`);
      }
      if (value === undefined && required && 'env' in ref) missing.push(`${file}: ${keyPath}: environment variable ${ref.env} is not set${lenient ? ' (the commands that use it refuse to run without it)' : ''}`);
      return value;
    } catch (err) {
      if (err instanceof SecretUnavailableError) missing.push(`${file}: ${keyPath}: ${err.message}`);
      else throw err;
      return undefined;
    }
  };
  // An unset admin-token variable falls back to a generated token (see daemon.ts); a Redis password that is named must exist.
  const secrets = {
    adminToken: secret('http.admin.token', config.http.admin.token, false, 'admin'),
    redisPassword: secret('redis.password', config.redis.password, true, 'redis'),
    smtpUrl: secret('email.smtp', config.email?.smtp, true, 'smtp'),
    signingKey: secret('archive.signingKey', config.archive.signingKey, true, 'signing'),
  };
  if (secrets.smtpUrl !== undefined) {
    const smtpProblem = smtpUrlProblem(secrets.smtpUrl);
    if (smtpProblem) problems.push(`${file}: email.smtp: the SMTP URL ${smtpProblem}`);
    else if (config.email?.allowPlaintext && new URL(secrets.smtpUrl).protocol === 'smtp:') {
      warnings.push(`${file}: email.allowPlaintext: on: if the SMTP server offers no STARTTLS, the SMTP password and the snapshot travel in clear text`);
    }
  }
  // A short bearer token can be guessed online; 32 characters of a random token is out of reach.
  if (secrets.adminToken !== undefined && secrets.adminToken.length < MIN_ADMIN_TOKEN_LENGTH) {
    problems.push(`${file}: http.admin.token: the admin token is shorter than ${MIN_ADMIN_TOKEN_LENGTH} characters: use a random one, e.g. openssl rand -base64 32`);
  } else if (secrets.adminToken !== undefined && !/^[\x21-\x7e]+$/.test(secrets.adminToken)) {
    // It travels in an Authorization header: a space, control or non-ASCII character could never be sent.
    problems.push(`${file}: http.admin.token: the admin token must be printable ASCII without spaces: use a random one, e.g. openssl rand -base64 32`);
  }
  // GitHub credentials are read by the probes when they run (never stored); check now that they exist.
  config.github.forEach((t, i) => {
    if ('token' in t.auth) secret(`github[${i}].auth.token`, t.auth.token, true, 'probes');
    else secret(`github[${i}].auth.app.privateKey`, t.auth.app.privateKey, true, 'probes');
  });
  config.aws.forEach((t, i) => secret(`aws[${i}].externalId`, t.externalId, true, 'probes'));
  config.backups.forEach((b, i) => backupSecrets(b).forEach(([key, ref]) => secret(`backups[${i}].${key}`, ref, true, 'probes')));
  config.iac.forEach((w, i) => w.env.forEach((e, j) => typeof e !== 'string' && secret(`iac[${i}].env[${j}].from`, e.from, true, 'probes')));
  if (secrets.signingKey) {
    try {
      const key = createPrivateKey(secrets.signingKey);
      if (key.asymmetricKeyType !== 'ed25519') problems.push(`${file}: archive.signingKey: expected an Ed25519 private key, got ${key.asymmetricKeyType}`);
    } catch {
      problems.push(`${file}: archive.signingKey: not a PEM private key (generate one with: openssl genpkey -algorithm ed25519)`);
    }
  }
  const archiveDir = config.archive.dir ? path.resolve(dir, config.archive.dir) : path.resolve(config.dataDir, 'archive');
  const byId = new Map(registry.map((p) => [p.id, p]));
  for (const id of Object.keys(config.probes)) {
    if (!byId.has(id)) problems.push(`${file}: probes.${formatKey(id)}: unknown probe (known: ${[...byId.keys()].join(', ')})`);
  }

  const probes = new Map<string, ConfiguredProbe>();
  for (const probe of registry) {
    const settings = config.probes[probe.id];
    if (settings && !settings.enabled) continue;
    const schedule = settings?.schedule ?? probe.schedule;
    // Only a schedule the config sets is checked here: checking one builds a cron-parser date, and
    // with it ICU's time-zone data (~8 MB of RSS, tens of ms), which a run-once on the defaults need
    // not pay. The probes' own defaults are code, checked by a test over the registry (load.test.ts).
    // A long or non-ASCII "schedule" is not a cron expression: say so without echoing it.
    const cronProblem =
      settings?.schedule === undefined
        ? undefined
        : /^[\x20-\x7e]{1,100}$/.test(schedule)
          ? validateCron(schedule)
          : 'expected a cron expression of 5 or 6 fields (printable ASCII, at most 100 characters)';
    if (cronProblem) problems.push(`${file}: probes.${probe.id}.schedule: ${cronProblem}`);
    const params = probe.params.safeParse(settings?.params ?? {});
    if (!params.success) {
      problems.push(...formatIssues(file, params.error.issues, ['probes', probe.id, 'params']));
      continue;
    }
    if (cronProblem) continue;
    // The interval walks many firings through cron-parser: computed on first use (the daemon), not by
    // commands that never ask (run-once, config check).
    let interval: number | undefined;
    const timezone = config.timezone;
    probes.set(probe.id, {
      probe,
      schedule,
      get intervalMs() {
        return (interval ??= cronIntervalMs(schedule, timezone));
      },
      params: params.data,
    });
  }

  const controlsFile = config.controls ? path.resolve(dir, config.controls) : defaultControlsPath;
  let catalog: ControlCatalog | undefined;
  try {
    catalog = loadControlCatalog(controlsFile, registry);
  } catch (err) {
    if (err instanceof ConfigError) problems.push(...err.problems);
    else throw err;
  }
  if (catalog) problems.push(...exceptionProblems(file, config.exceptions, catalog, config.timezone, new Date()));
  if (problems.length > 0 || !catalog) throw new ConfigError(problems);
  return { file, dir, config, catalog, probes, secrets, archiveDir, warnings };
}
