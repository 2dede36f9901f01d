import { scrub } from '../secrets.js';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import type { LoadedConfig, LoadOptions, SecretUse } from '../config/load.js';
import { EXIT_CONFIG } from '../config/errors.js';
import type { AnyProbe } from '../probe/contract.js';

// Only what parsing needs is imported here: every command loads its own modules (`await import`)
// when it runs, so `vigil --version`, `--help` and a run-once on a small config do not pay for
// BullMQ, ioredis, the daemon or the HTTP stack (DESIGN: start-up of a CI gate).

/** sysexits EX_USAGE: bad command line. */
export const EXIT_USAGE = 64;
/** sysexits EX_NOINPUT: a file named on the command line cannot be read. */
export const EXIT_NOINPUT = 66;
/** sysexits EX_UNAVAILABLE: Redis (or redis-server) is not there. */
export const EXIT_UNAVAILABLE = 69;
/** sysexits EX_CANTCREAT: `--output` cannot be written. */
export const EXIT_CANTCREAT = 73;

/** Report formats of `run-once`. */
export const FORMATS = ['table', 'json', 'sarif', 'junit'] as const;
export type Format = (typeof FORMATS)[number];

/** Standard streams, injectable for tests. */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** The probes the CLI knows; default probes/index.ts (tests pass their own). */
  registry?: readonly AnyProbe[];
  /** Working directory the reports' relative paths start from; default process.cwd(). */
  cwd?: string;
}

// Both streams scrub registered secrets: an error line or a report that echoes a secret must not print it.
const defaultIo: CliIo = {
  out: (t) => process.stdout.write(scrub(t)),
  err: (t) => process.stderr.write(scrub(t)),
  env: process.env,
};

/** vigil's package.json (version, homepage), found upward from this file: from src/ under vitest, from dist/src/ when built. */
function packageJson(): { version: string; homepage?: string } {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string; homepage?: string };
      if (pkg.name === 'vigil') return { version: pkg.version ?? '0.0.0', ...(pkg.homepage ? { homepage: pkg.homepage } : {}) };
    }
    if (path.dirname(dir) === dir) return { version: '0.0.0' };
  }
}

async function registryOf(io: CliIo): Promise<readonly AnyProbe[]> {
  return io.registry ?? (await import('../../probes/index.js')).probes;
}

/** Loads the config; `secrets` names the secrets the command uses (default: all, as the daemon). */
async function load(file: string | undefined, io: CliIo, secrets?: LoadOptions['secrets']): Promise<LoadedConfig | number> {
  const { ConfigError, defaultConfigPath, loadConfig } = await import('../config/load.js');
  try {
    return loadConfig(file ?? defaultConfigPath, await registryOf(io), io.env, secrets === undefined ? {} : { secrets });
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`${err.problems.join('\n')}\n`);
      return EXIT_CONFIG;
    }
    throw err;
  }
}

function stderrOf(io: CliIo): NodeJS.WritableStream {
  return { write: (t: string) => io.err(t) } as unknown as NodeJS.WritableStream;
}

/** Redis could not be reached or started: one line, exit 69. */
async function isRedisUnavailable(err: unknown): Promise<boolean> {
  const [{ EmbeddedRedisUnavailableError }, { RedisUnavailableError }] = await Promise.all([import('../store/embedded-redis.js'), import('../queue/connection.js')]);
  return err instanceof EmbeddedRedisUnavailableError || err instanceof RedisUnavailableError;
}

/** Runs a command that needs Redis or the archive, turning their known failures into one line. */
async function offline(io: CliIo, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (await isRedisUnavailable(err)) {
      io.err(`${(err as Error).message}\n`);
      return EXIT_UNAVAILABLE;
    }
    if (err instanceof Error && ['ArchiveChainError', 'ArchiveConflictError', 'DayCloseError', 'Error'].includes(err.name)) {
      io.err(`vigil: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** Whether a date option names a real calendar day; else says why on stderr (the caller exits 64). */
async function dateOptionOk(option: string, value: string, io: CliIo): Promise<boolean> {
  const problem = (await import('./dates.js')).calendarDateProblem(option, value);
  if (problem) io.err(`vigil: ${problem}\n`);
  return problem === undefined;
}

/** The secrets of `snapshot` and `rebuild`: Redis, and the key that signs (or verifies) the archive. */
const OFFLINE_SECRETS: readonly SecretUse[] = ['redis', 'signing'];

const configOption = () => new Option('-c, --config <file>', 'the config file (default: the embedded config/vigil.example.yaml)');

function exitCodes(lines: Array<[number, string]>): string {
  return `\nExit codes:\n${lines.map(([code, what]) => `  ${String(code).padEnd(4)}${what}`).join('\n')}\n`;
}

const CONFIG_EXIT: [number, string] = [EXIT_CONFIG, 'the config or the control catalog is invalid (one line per problem on stderr)'];
const USAGE_EXIT: [number, string] = [EXIT_USAGE, 'usage error: unknown command or option, missing or bad argument'];

/** Builds the command tree; each action stores its exit code in `result.code`. */
function program(io: CliIo, result: { code: number }): Command {
  const pkg = packageJson();
  const root = new Command('vigil')
    .description('vigil — continuous control monitoring: scheduled probes prove, every day, that security controls operate.')
    .version(pkg.version, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'show help')
    .helpCommand('help [command]', 'show help for a command')
    .configureOutput({
      writeOut: (t) => io.out(t),
      writeErr: (t) => io.err(t),
      outputError: (t, write) => write(t.replace(/^error: /, 'vigil: ')),
    })
    .showSuggestionAfterError(true)
    .showHelpAfterError(`(run 'vigil --help' for usage)`)
    .exitOverride();
  root.addHelpText(
    'after',
    `\nRun 'vigil <command> --help' for a command's options and exit codes.\n` + exitCodes([[0, 'success (run-once: every control green)'], USAGE_EXIT, [70, 'internal error (a bug: please report it)']]),
  );

  const sub = (name: string, description: string) => root.command(name).description(description).showHelpAfterError(`(run 'vigil ${name} --help' for usage)`);

  sub('start', 'run the daemon: scheduler, probe workers, recorder, HTTP listeners')
    .addOption(configOption())
    .addHelpText(
      'after',
      exitCodes([
        [0, 'stopped by SIGTERM or SIGINT after a graceful shutdown'],
        [1, 'could not start, or could not go on (e.g. its embedded redis-server died)'],
        USAGE_EXIT,
        [EXIT_UNAVAILABLE, 'redis.url cannot be reached, or redis-server is not installed'],
        [70, 'an uncaught error stopped the daemon (logged at fatal): let the supervisor restart it'],
        CONFIG_EXIT,
      ]),
    )
    .action(async (opts: { config?: string }) => {
      result.code = await startCommand(opts.config, io);
    });

  sub('run-once', 'run the configured probes now, in this process (no Redis), and report')
    .addOption(configOption())
    .addOption(new Option('--probe <id>', 'run only this probe; judge only the controls it evidences'))
    .addOption(new Option('-f, --format <format>', 'report format').choices(FORMATS).default('table'))
    .addOption(new Option('--json', 'same as --format json'))
    .addOption(new Option('-o, --output <file>', 'write the report to FILE (atomically: temporary file, then rename) instead of stdout'))
    .addHelpText(
      'after',
      `\nFormats: table (for people), json ({ results, controls }), sarif (SARIF 2.1.0, GitHub code scanning),\njunit (JUnit XML: a test suite per control, a test case per resource).\n` +
        exitCodes([
          [0, 'every judged control is green'],
          [1, 'some control is red'],
          [2, 'none is red, but some is unknown, or nothing was judged'],
          [EXIT_USAGE, 'usage error (also: --probe names a probe that is not enabled)'],
          [EXIT_CANTCREAT, 'the --output file cannot be written'],
          CONFIG_EXIT,
        ]),
    )
    .action(async (opts: { config?: string; probe?: string; format: Format; json?: boolean; output?: string }, cmd: Command) => {
      if (opts.json && cmd.getOptionValueSource('format') === 'cli' && opts.format !== 'json') {
        io.err(`vigil: --json means --format json; it contradicts --format ${opts.format}\n`);
        result.code = EXIT_USAGE;
        return;
      }
      result.code = await runOnceCommand({ ...opts, format: opts.json ? 'json' : opts.format }, io, pkg);
    });

  const config = sub('config', 'configuration commands');
  config
    .command('check')
    .description('validate the config and the control catalog')
    .addOption(configOption())
    .showHelpAfterError(`(run 'vigil config check --help' for usage)`)
    .addHelpText('after', exitCodes([[0, 'valid'], USAGE_EXIT, CONFIG_EXIT]))
    .action(async (opts: { config?: string }) => {
      result.code = await configCheckCommand(opts.config, io);
    });
  config.addHelpText('after', exitCodes([[0, 'success'], USAGE_EXIT, CONFIG_EXIT]));

  // Previews read the config and the catalog only: no secret, no Redis, no archive write.
  const preview = sub('preview', 'render the trust page or the daily email with sample data, watermarked "PREVIEW — sample data"');
  for (const [kind, what, out] of [
    ['trust', 'the /trust page as it would look with your branding', '-o, --out <file>'],
    ['email', 'the daily email (email.html, email.txt, subject.txt) with your organisation', '-o, --out <dir>'],
  ] as const) {
    preview
      .command(kind)
      .description(`write ${what}, from sample data`)
      .addOption(configOption())
      .addOption(new Option(out, kind === 'trust' ? 'the HTML file to write (default: vigil-preview-trust.html)' : 'the directory to write (default: vigil-preview-email)'))
      .showHelpAfterError(`(run 'vigil preview ${kind} --help' for usage)`)
      .addHelpText('after', exitCodes([[0, 'written'], [EXIT_USAGE, 'usage error (also: --out inside the evidence archive)'], [EXIT_CANTCREAT, '--out cannot be written'], CONFIG_EXIT]))
      .action(async (opts: { config?: string; out?: string }) => {
        const loaded = await load(opts.config, io, []);
        if (typeof loaded === 'number') {
          result.code = loaded;
          return;
        }
        const { previewCommand } = await import('./preview.js');
        result.code = previewCommand(kind, loaded, opts.out, io);
      });
  }

  const email = sub('email', 'email commands');
  email
    .command('test')
    .description('send one test message through the configured SMTP server (email.smtp, same TLS rules as the daily email)')
    .addOption(configOption())
    .showHelpAfterError(`(run 'vigil email test --help' for usage)`)
    .addHelpText(
      'after',
      exitCodes([
        [0, 'the server accepted the message (recipients printed)'],
        [1, 'the server refused it for good (credentials, recipients, no STARTTLS): the SMTP reason is printed'],
        USAGE_EXIT,
        [75, 'the server could not be reached, dropped the connection or deferred the message: try again later'],
        [EXIT_CONFIG, 'the config is invalid, has no email section, or the SMTP URL is not set'],
      ]),
    )
    .action(async (opts: { config?: string }) => {
      // Only the SMTP URL: a test message needs no Redis, admin token or signing key.
      const loaded = await load(opts.config, io, ['smtp']);
      if (typeof loaded === 'number') {
        result.code = loaded;
        return;
      }
      const { emailTestCommand } = await import('./email-test.js');
      result.code = await emailTestCommand(loaded, io);
    });

  sub('probes', 'list the probes, their controls, schedules, targets and permissions')
    .addOption(configOption())
    .addOption(new Option('-f, --format <format>', 'text (plain, for a terminal) or md (Markdown, for documentation)').choices(['text', 'md']).default('text'))
    .addOption(new Option('--markdown', 'same as --format md'))
    .addHelpText('after', exitCodes([[0, 'listed'], USAGE_EXIT, CONFIG_EXIT]))
    .action(async (opts: { config?: string; format: 'text' | 'md'; markdown?: boolean }, cmd: Command) => {
      if (opts.markdown && cmd.getOptionValueSource('format') === 'cli' && opts.format !== 'md') {
        io.err(`vigil: --markdown means --format md; it contradicts --format ${opts.format}\n`);
        result.code = EXIT_USAGE;
        return;
      }
      result.code = await probesCommand(opts.config, io, opts.markdown ? 'md' : opts.format);
    });

  sub('snapshot', 'close and publish a day now, and any unclosed day before it (idempotent)')
    .addOption(configOption())
    .addOption(new Option('--date <YYYY-MM-DD>', 'the day to close (default: the last day that may close)'))
    .addHelpText(
      'after',
      `\nUses redis.url, or the running daemon's embedded Redis (or starts it briefly when the daemon is not running).\n` +
        exitCodes([
          [0, 'published, or already published'],
          [1, 'the day cannot close yet, another vigil is closing it, or the archive refused it'],
          [EXIT_USAGE, 'usage error (also: --date is not a calendar date YYYY-MM-DD)'],
          [EXIT_UNAVAILABLE, 'Redis cannot be reached or started'],
          CONFIG_EXIT,
        ]),
    )
    .action(async (opts: { config?: string; date?: string }) => {
      // Before the config: an impossible day is a usage error whatever else is wrong.
      if (opts.date !== undefined && !(await dateOptionOk('--date', opts.date, io))) {
        result.code = EXIT_USAGE;
        return;
      }
      // Closes and signs days, queues their email: Redis and the signing key, never the SMTP URL or the admin token.
      const loaded = await load(opts.config, io, OFFLINE_SECRETS);
      if (typeof loaded === 'number') {
        result.code = loaded;
        return;
      }
      const [{ snapshotCommand }, { createLogger }] = await Promise.all([import('./offline.js'), import('../log.js')]);
      result.code = await offline(io, () => snapshotCommand(loaded, opts.date, io, createLogger('warn', stderrOf(io))));
    });

  sub('verify-archive', "re-check the evidence archive's hash chain (and signatures) offline")
    .argument('<dir>', 'the archive directory, or the folder an unpacked vigil export made')
    .addOption(new Option('--public-key <file>', 'Ed25519 public key (PEM): also verify every signature'))
    .addOption(new Option('--through <YYYY-MM-DD>', 'the archive must run through this day (catches days removed from the end)'))
    .addHelpText(
      'after',
      exitCodes([
        [0, 'the chain is intact'],
        [1, 'the chain is broken: the first bad day is named'],
        USAGE_EXIT,
        [EXIT_NOINPUT, 'the --public-key file cannot be read or is not an Ed25519 public key'],
      ]),
    )
    .action(async (dir: string, opts: { publicKey?: string; through?: string }) => {
      if (opts.through !== undefined && !(await dateOptionOk('--through', opts.through, io))) {
        result.code = EXIT_USAGE;
        return;
      }
      let key: string | undefined;
      if (opts.publicKey) {
        try {
          key = readFileSync(opts.publicKey, 'utf8');
        } catch (err) {
          io.err(`vigil: cannot read --public-key ${opts.publicKey}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
          result.code = EXIT_NOINPUT;
          return;
        }
        // A file that is not an Ed25519 public key is unusable input (66), not a broken chain and not a crash.
        const { ArchiveKeyError, keyFingerprint } = await import('../store/archive.js');
        try {
          keyFingerprint(key);
        } catch (err) {
          if (!(err instanceof ArchiveKeyError)) throw err;
          io.err(`vigil: --public-key ${opts.publicKey}: ${err.message}\n`);
          result.code = EXIT_NOINPUT;
          return;
        }
      }
      // An unpacked `vigil export` (it holds vigil-export.json): its period, chained from the recorded prevHash.
      const exported = await import('./export.js');
      if (await exported.isExportDir(dir)) {
        result.code = await exported.verifyExportCommand(dir, key, opts.through, io);
        return;
      }
      const { verifyArchiveCommand } = await import('./offline.js');
      result.code = await verifyArchiveCommand(dir, key, opts.through, io);
    });

  sub('export', 'write the evidence bundle of a period (tar.gz): day files, verification report, control matrix, population')
    .addOption(configOption())
    .requiredOption('--from <YYYY-MM-DD>', 'first day of the period')
    .requiredOption('--to <YYYY-MM-DD>', 'last day of the period (inclusive)')
    .addOption(new Option('-o, --out <file>', 'the bundle to write (default: vigil-export-<from>_<to>.tar.gz)'))
    .addOption(new Option('--public-key <file>', 'Ed25519 public key (PEM) to verify with and ship, when archive.signingKey is not configured here'))
    .addHelpText(
      'after',
      `\nUnpack with tar -xzf and re-check offline with: vigil verify-archive vigil-export-<from>_<to>\n` +
        exitCodes([
          [0, 'written'],
          [1, 'the archive does not verify, or does not hold the whole period'],
          [EXIT_USAGE, 'usage error (also: --from/--to not a calendar date YYYY-MM-DD, --from after --to, --out inside the archive)'],
          [EXIT_NOINPUT, 'the --public-key file cannot be read or is not an Ed25519 public key'],
          [EXIT_CANTCREAT, 'the --out file cannot be written'],
          CONFIG_EXIT,
        ]),
    )
    .action(async (opts: { config?: string; from: string; to: string; out?: string; publicKey?: string }) => {
      const exported = await import('./export.js');
      const problem = exported.periodProblem(opts.from, opts.to);
      if (problem) {
        io.err(`vigil: ${problem}\n`);
        result.code = EXIT_USAGE;
        return;
      }
      let publicKeyPem: string | undefined;
      if (opts.publicKey) {
        try {
          publicKeyPem = readFileSync(opts.publicKey, 'utf8');
        } catch (err) {
          io.err(`vigil: cannot read --public-key ${opts.publicKey}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
          result.code = EXIT_NOINPUT;
          return;
        }
      }
      // Reads the archive only: the signing key (for its public half), no Redis, SMTP or admin token.
      const loaded = await load(opts.config, io, ['signing']);
      if (typeof loaded === 'number') {
        result.code = loaded;
        return;
      }
      result.code = await offline(io, () =>
        exported.exportCommand(loaded, { from: opts.from, to: opts.to, ...(opts.out ? { out: opts.out } : {}), ...(publicKeyPem ? { publicKeyPem } : {}) }, io),
      );
    });

  sub('rebuild', 'restore snapshots and streaks from the archive into an empty Redis')
    .addOption(configOption())
    .addHelpText(
      'after',
      exitCodes([
        [0, 'restored'],
        [1, 'the archive does not verify, or Redis is not empty'],
        USAGE_EXIT,
        [EXIT_UNAVAILABLE, 'Redis cannot be reached or started'],
        CONFIG_EXIT,
      ]),
    )
    .action(async (opts: { config?: string }) => {
      const loaded = await load(opts.config, io, OFFLINE_SECRETS);
      if (typeof loaded === 'number') {
        result.code = loaded;
        return;
      }
      const [{ rebuildCommand }, { createLogger }] = await Promise.all([import('./offline.js'), import('../log.js')]);
      result.code = await offline(io, () => rebuildCommand(loaded, io, createLogger('warn', stderrOf(io))));
    });

  return root;
}

/** Runs the CLI; resolves to the process exit code (the launcher, bin/vigil.js, exits with it once output is flushed). */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const result = { code: 0 };
  try {
    await program(io, result).parseAsync(argv, { from: 'user' });
  } catch (err) {
    // Help and --version end parsing with exit code 0; every other parse failure is a usage error.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE;
    throw err;
  }
  return result.code;
}

async function startCommand(file: string | undefined, io: CliIo): Promise<number> {
  const loaded = await load(file, io);
  if (typeof loaded === 'number') return loaded;
  const [{ startDaemon }, { createLogger }] = await Promise.all([import('../daemon.js'), import('../log.js')]);
  const log = createLogger(loaded.config.log.level);
  let fatal: ((err: Error) => void) | undefined;
  // A fatal error before the wait below is set up (the embedded redis-server dying at once) is kept, not dropped.
  let earlyFatal: Error | undefined;
  let daemon;
  try {
    daemon = await startDaemon({ loaded, log, onFatal: (err) => (fatal ? fatal(err) : (earlyFatal ??= err)) });
  } catch (err) {
    if (await isRedisUnavailable(err)) {
      io.err(`${(err as Error).message}\n`);
      return EXIT_UNAVAILABLE;
    }
    const { ConfigError } = await import('../config/errors.js');
    if (err instanceof ConfigError) {
      io.err(`${err.problems.join('\n')}\n`);
      return EXIT_CONFIG;
    }
    log.fatal({ err }, 'vigil could not start');
    return 1;
  }
  // An uncaught error anywhere stops the daemon cleanly (jobs handed back, results recorded), then exits 70.
  const started = daemon;
  const [{ installLastResort, LAST_RESORT_EXIT_CODE }, { exitWhenFlushed }] = await Promise.all([import('../last-resort.js'), import('./exit.js')]);
  let lastResortCode: number | undefined;
  installLastResort({
    log,
    stop: () => started.stop(),
    // A SIGTERM arriving during this stop must not turn the crash into exit 0.
    onStopping: () => {
      lastResortCode = LAST_RESORT_EXIT_CODE;
    },
    exit: (c) => void exitWhenFlushed(c, undefined, 10_000),
  });
  const code = await new Promise<number>((resolve) => {
    const onSignal = (signal: string) => {
      log.info({ signal }, 'signal received');
      resolve(0);
    };
    fatal = (err) => {
      log.fatal({ err: { message: err.message } }, 'vigil cannot go on');
      resolve(1);
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    if (earlyFatal) fatal(earlyFatal);
  });
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
  await daemon.stop();
  return lastResortCode ?? code;
}

async function runOnceCommand(
  opts: { config?: string; probe?: string; format: Format; output?: string },
  io: CliIo,
  pkg: { version: string; homepage?: string },
): Promise<number> {
  // A process that runs once and exits: V8 tuned for peak RSS before the config is read (see
  // short-run-heap.ts). Only in the real CLI process, not when tests call main() in-process.
  if (io === defaultIo) (await import('./short-run-heap.js')).tuneHeapForShortRun();
  // The probes' credentials only: run-once has no Redis, no listener, no email, no archive.
  const loaded = await load(opts.config, io, ['probes']);
  if (typeof loaded === 'number') return loaded;
  if (opts.probe && !loaded.probes.has(opts.probe)) {
    io.err(`vigil: no enabled probe "${opts.probe}" (enabled: ${[...loaded.probes.keys()].join(', ')})\n`);
    return EXIT_USAGE;
  }
  const { lazyLogger, runOnce, runOnceExitCode } = await import('./run-once.js');
  // Machine-readable reports on stdout stay clean: logs only beside the table (and they go to stderr).
  // pino is loaded only if a line is written (see lazyLogger).
  const level = opts.format === 'table' ? 'warn' : 'silent';
  const { log, flush } = lazyLogger(level, async () => (await import('../log.js')).createLogger(level, stderrOf(io)));
  let report: Awaited<ReturnType<typeof runOnce>>;
  try {
    report = await runOnce(loaded, { probe: opts.probe, log });
  } finally {
    // Queued lines are written even if the run throws (the launcher exits right after the error).
    await flush();
  }
  const text = await renderReport(report, opts.format, loaded, opts.probe, io, pkg);
  if (opts.output) {
    const { writeFileAtomic } = await import('./output.js');
    try {
      // The file gets what stdout would get: secrets scrubbed (a CI job uploads it as an artifact).
      await writeFileAtomic(opts.output, scrub(text));
    } catch (err) {
      io.err(`vigil: cannot write --output ${opts.output}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
      return EXIT_CANTCREAT;
    }
  } else io.out(text);
  return runOnceExitCode(report);
}

async function renderReport(
  report: import('./run-once.js').RunOnceReport,
  format: Format,
  loaded: LoadedConfig,
  probe: string | undefined,
  io: CliIo,
  pkg: { version: string; homepage?: string },
): Promise<string> {
  if (format === 'json') return `${JSON.stringify(report, null, 2)}\n`;
  if (format === 'table') return (await import('./run-once.js')).formatRunOnceTable(report);
  let configText: string | undefined;
  try {
    configText = readFileSync(loaded.file, 'utf8');
  } catch {
    configText = undefined; // lines are a convenience; the report stands without them
  }
  const context = {
    probes: [...loaded.probes.values()].map((c) => c.probe).filter((p) => !probe || p.id === probe),
    controls: loaded.catalog.controls,
    configFile: path.resolve(loaded.file),
    ...(configText !== undefined ? { configText } : {}),
    baseDir: io.cwd ?? process.cwd(),
    version: pkg.version,
    ...(pkg.homepage ? { informationUri: pkg.homepage } : {}),
  };
  if (format === 'sarif') return `${JSON.stringify((await import('./report-sarif.js')).formatSarif(report, context), null, 2)}\n`;
  return (await import('./report-junit.js')).formatJunit(report, context);
}

async function configCheckCommand(file: string | undefined, io: CliIo): Promise<number> {
  // Every secret is read, but one not set here is a warning: the command that needs it may run elsewhere.
  const loaded = await load(file, io, 'check');
  if (typeof loaded === 'number') return loaded;
  // The logo file is read at start; check it here too, so a bad one is found before deploying.
  if (loaded.config.trust.logoFile !== undefined) {
    const [{ loadTrustBranding }, { ConfigError }] = await Promise.all([import('../http/trust-branding.js'), import('../config/errors.js')]);
    try {
      loadTrustBranding(loaded.config.trust, loaded.dir);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      io.err(`${err.problems.map((line) => `${loaded.file}: ${line}`).join('\n')}\n`);
      return EXIT_CONFIG;
    }
  }
  const targets = [...loaded.probes.values()].reduce((n, p) => n + p.probe.targets(loaded.config).length, 0);
  for (const warning of loaded.warnings) io.err(`${warning}\n`);
  io.out(`${loaded.file}: OK — ${loaded.probes.size} probe(s) enabled, ${targets} target(s), ${loaded.catalog.controls.length} control(s)\n`);
  return 0;
}

async function probesCommand(file: string | undefined, io: CliIo, format: 'text' | 'md'): Promise<number> {
  const loaded = await load(file, io, []);
  if (typeof loaded === 'number') return loaded;
  const { formatProbes } = await import('./probes-list.js');
  io.out(formatProbes(loaded, await registryOf(io), format));
  return 0;
}
