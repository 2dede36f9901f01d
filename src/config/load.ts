import { createPrivateKey } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { VigilConfig } from './schema.js';
import { ControlCatalog, loadControlCatalog } from './controls.js';
import { ConfigError, formatIssues } from './errors.js';

export { ConfigError, EXIT_CONFIG } from './errors.js';
import type { AnyProbe } from '../probe/contract.js';
import { cronIntervalMs, validateCron } from '../queue/cron.js';
import { readSecret, SecretUnavailableError } from '../secrets.js';
import type { SecretRef } from './schema.js';

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
}

/** Parses YAML text, with the line of a syntax error. */
function parseYaml(file: string, text: string): unknown {
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `${file}: ${e.message.split('\n')[0]}`));
  }
  return doc.toJS() ?? {};
}

/** Reads and validates the config file, the catalog it names, and every probe's settings. */
export function loadConfig(file: string, registry: readonly AnyProbe[], env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read the config file (${(err as NodeJS.ErrnoException).code ?? String(err)})`]);
  }
  return loadConfigText(text, abs, registry, env);
}

/** As loadConfig, from text already read (`file` names it in messages and anchors relative paths). */
export function loadConfigText(text: string, file: string, registry: readonly AnyProbe[], env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const dir = path.dirname(path.resolve(file));
  const raw = parseYaml(file, text);
  const parsed = VigilConfig.safeParse(raw);
  if (!parsed.success) throw new ConfigError(formatIssues(file, parsed.error.issues));
  const config = parsed.data;

  // Relative paths in the file are relative to the file.
  for (const target of config.tls) if (target.caFile) target.caFile = path.resolve(dir, target.caFile);
  const githubRefs = config.github.map((t) => ('token' in t.auth ? t.auth.token : t.auth.app.privateKey));
  for (const ref of [config.redis.password, config.http.admin.token, config.email?.smtp, config.archive.signingKey, ...githubRefs]) {
    if (ref && 'file' in ref) ref.file = path.resolve(dir, ref.file);
  }

  const problems: string[] = [];
  config.tls.forEach((target, i) => {
    if (!target.caFile) return;
    try {
      accessSync(target.caFile, constants.R_OK);
    } catch (err) {
      problems.push(`${file}: tls[${i}].caFile: cannot read ${target.caFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  });
  const secret = (keyPath: string, ref: SecretRef | undefined, required: boolean): string | undefined => {
    if (!ref) return undefined;
    try {
      const value = readSecret(ref, env);
      if (value === undefined && required && 'env' in ref) problems.push(`${file}: ${keyPath}: environment variable ${ref.env} is not set`);
      return value;
    } catch (err) {
      if (err instanceof SecretUnavailableError) problems.push(`${file}: ${keyPath}: ${err.message}`);
      else throw err;
      return undefined;
    }
  };
  // An unset admin-token variable falls back to a generated token (see daemon.ts); a Redis password that is named must exist.
  const secrets = {
    adminToken: secret('http.admin.token', config.http.admin.token, false),
    redisPassword: secret('redis.password', config.redis.password, true),
    smtpUrl: secret('email.smtp', config.email?.smtp, true),
    signingKey: secret('archive.signingKey', config.archive.signingKey, true),
  };
  // GitHub credentials are read by the probes when they run (never stored); check now that they exist.
  config.github.forEach((t, i) => {
    if ('token' in t.auth) secret(`github[${i}].auth.token`, t.auth.token, true);
    else secret(`github[${i}].auth.app.privateKey`, t.auth.app.privateKey, true);
  });
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
    if (!byId.has(id)) problems.push(`${file}: probes.${id}: unknown probe (known: ${[...byId.keys()].join(', ')})`);
  }

  const probes = new Map<string, ConfiguredProbe>();
  for (const probe of registry) {
    const settings = config.probes[probe.id];
    if (settings && !settings.enabled) continue;
    const schedule = settings?.schedule ?? probe.schedule;
    const cronProblem = validateCron(schedule);
    if (cronProblem) problems.push(`${file}: probes.${probe.id}.schedule: ${cronProblem}`);
    const params = probe.params.safeParse(settings?.params ?? {});
    if (!params.success) {
      problems.push(...formatIssues(file, params.error.issues, ['probes', probe.id, 'params']));
      continue;
    }
    if (cronProblem) continue;
    probes.set(probe.id, { probe, schedule, intervalMs: cronIntervalMs(schedule, config.timezone), params: params.data });
  }

  const controlsFile = config.controls ? path.resolve(dir, config.controls) : defaultControlsPath;
  let catalog: ControlCatalog | undefined;
  try {
    catalog = loadControlCatalog(controlsFile, registry);
  } catch (err) {
    if (err instanceof ConfigError) problems.push(...err.problems);
    else throw err;
  }
  if (problems.length > 0 || !catalog) throw new ConfigError(problems);
  return { file, dir, config, catalog, probes, secrets, archiveDir };
}
