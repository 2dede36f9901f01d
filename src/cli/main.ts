import { scrub } from '../secrets.js';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import type { LoadedConfig } from '../config/load.js';
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

async function load(file: string | undefined, io: CliIo): Promise<LoadedConfig | number> {
  const { ConfigError, defaultConfigPath, loadConfig } = await import('../config/load.js');
  try {
    return loadConfig(file ?? defaultConfigPath, await registryOf(io), io.env);
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
    if (err instanceof Error && ['ArchiveChainError', 'ArchiveConflictError', 'Error'].includes(err.name)) {
      io.err(`vigil: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

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

  sub('probes', 'list the probes, their controls, schedules, targets and permissions')
    .addOption(configOption())
    .addHelpText('after', exitCodes([[0, 'listed'], USAGE_EXIT, CONFIG_EXIT]))
    .action(async (opts: { config?: string }) => {
      result.code = await probesCommand(opts.config, io);
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
          [EXIT_USAGE, 'usage error (also: --date is not YYYY-MM-DD)'],
          [EXIT_UNAVAILABLE, 'Redis cannot be reached or started'],
          CONFIG_EXIT,
        ]),
    )
    .action(async (opts: { config?: string; date?: string }) => {
      const loaded = await load(opts.config, io);
      if (typeof loaded === 'number') {
        result.code = loaded;
        return;
      }
      const [{ snapshotCommand }, { createLogger }] = await Promise.all([import('./offline.js'), import('../log.js')]);
      result.code = await offline(io, () => snapshotCommand(loaded, opts.date, io, createLogger('warn', stderrOf(io))));
    });

  sub('verify-archive', "re-check the evidence archive's hash chain (and signatures) offline")
    .argument('<dir>', 'the archive directory')
    .addOption(new Option('--public-key <file>', 'Ed25519 public key (PEM): also verify every signature'))
    .addOption(new Option('--through <YYYY-MM-DD>', 'the archive must run through this day (catches days removed from the end)'))
    .addHelpText(
      'after',
      exitCodes([
        [0, 'the chain is intact'],
        [1, 'the chain is broken: the first bad day is named'],
        USAGE_EXIT,
        [EXIT_NOINPUT, 'the --public-key file cannot be read'],
      ]),
    )
    .action(async (dir: string, opts: { publicKey?: string; through?: string }) => {
      let key: string | undefined;
      if (opts.publicKey) {
        try {
          key = readFileSync(opts.publicKey, 'utf8');
        } catch (err) {
          io.err(`vigil: cannot read --public-key ${opts.publicKey}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
          result.code = EXIT_NOINPUT;
          return;
        }
      }
      const { verifyArchiveCommand } = await import('./offline.js');
      result.code = await verifyArchiveCommand(dir, key, opts.through, io);
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
      const loaded = await load(opts.config, io);
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
  const loaded = await load(opts.config, io);
  if (typeof loaded === 'number') return loaded;
  if (opts.probe && !loaded.probes.has(opts.probe)) {
    io.err(`vigil: no enabled probe "${opts.probe}" (enabled: ${[...loaded.probes.keys()].join(', ')})\n`);
    return EXIT_USAGE;
  }
  const [{ runOnce, runOnceExitCode }, { createLogger }] = await Promise.all([import('./run-once.js'), import('../log.js')]);
  // Machine-readable reports on stdout stay clean: logs only beside the table (and they go to stderr).
  const log = createLogger(opts.format === 'table' ? 'warn' : 'silent', stderrOf(io));
  const report = await runOnce(loaded, { probe: opts.probe, log });
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
  const loaded = await load(file, io);
  if (typeof loaded === 'number') return loaded;
  const targets = [...loaded.probes.values()].reduce((n, p) => n + p.probe.targets(loaded.config).length, 0);
  for (const warning of loaded.warnings) io.err(`${warning}\n`);
  io.out(`${loaded.file}: OK — ${loaded.probes.size} probe(s) enabled, ${targets} target(s), ${loaded.catalog.controls.length} control(s)\n`);
  return 0;
}

async function probesCommand(file: string | undefined, io: CliIo): Promise<number> {
  const loaded = await load(file, io);
  if (typeof loaded === 'number') return loaded;
  for (const probe of await registryOf(io)) {
    const configured = loaded.probes.get(probe.id);
    io.out(
      [
        `${probe.id} — ${probe.title}`,
        `  source:      ${probe.source}`,
        `  controls:    ${probe.controls.join(', ')}`,
        `  schedule:    ${configured ? configured.schedule : 'disabled'}${configured && configured.schedule !== probe.schedule ? ` (default ${probe.schedule})` : ''}`,
        `  targets:     ${configured ? probe.targets(loaded.config).map((t) => (t.schedule && t.schedule !== configured.schedule ? `${t.name} (${t.schedule})` : t.name)).join(', ') || '(none configured)' : '-'}`,
        `  permissions: ${probe.docs.permissions}`,
        ...(probe.actions?.length ? [`  actions:     ${probe.actions.join(', ')}`] : []),
        '',
      ].join('\n'),
    );
  }
  return 0;
}
