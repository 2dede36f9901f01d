import { parseArgs } from 'node:util';
import type { AnyProbe } from '../probe/contract.js';
import { probes as registry } from '../../probes/index.js';
import { ConfigError, defaultConfigPath, EXIT_CONFIG, loadConfig, type LoadedConfig } from '../config/load.js';
import { startDaemon } from '../daemon.js';
import { createLogger } from '../log.js';
import { EmbeddedRedisUnavailableError } from '../store/embedded-redis.js';
import { RedisUnavailableError } from '../queue/connection.js';
import { runOnce, formatRunOnceTable, runOnceExitCode } from './run-once.js';
import { rebuildCommand, snapshotCommand, verifyArchiveCommand } from './offline.js';
import { readFileSync } from 'node:fs';

const usage = `vigil — continuous control monitoring

Usage:
  vigil start [--config FILE]                               run the daemon
  vigil run-once [--config FILE] [--probe ID] [--json]      run the configured probes now and print the results
  vigil config check [--config FILE]                        validate the config and the control catalog
  vigil probes [--config FILE]                              list probes, their controls, schedules and permissions
  vigil snapshot [--config FILE] [--date YYYY-MM-DD]        close and publish a day now (idempotent)
  vigil verify-archive DIR [--public-key FILE] [--through YYYY-MM-DD]
                                                            re-check the evidence archive's hash chain offline
  vigil rebuild [--config FILE]                             restore snapshots and streaks from the archive into an empty Redis
  vigil help

--config defaults to config/vigil.example.yaml (the embedded defaults).
run-once exits 0 when every control is green, 1 when any is red, 2 when none is red but some is unknown.
Bad configuration exits ${EXIT_CONFIG}.`;

/** Standard streams, injectable for tests. */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** The probes the CLI knows; default probes/index.ts (tests pass their own). */
  registry?: readonly AnyProbe[];
}

const defaultIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
};

function load(file: string | undefined, io: CliIo): LoadedConfig | number {
  try {
    return loadConfig(file ?? defaultConfigPath, io.registry ?? registry, io.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`${err.problems.join('\n')}\n`);
      return EXIT_CONFIG;
    }
    throw err;
  }
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    io.out(`${usage}\n`);
    return command ? 0 : 64;
  }
  let args: ReturnType<typeof parseCommon>;
  try {
    args = parseCommon(rest);
  } catch (err) {
    io.err(`vigil: ${(err as Error).message}\n${usage}\n`);
    return 64;
  }

  switch (command) {
    case 'start': {
      const loaded = load(args.values.config, io);
      if (typeof loaded === 'number') return loaded;
      const log = createLogger(loaded.config.log.level);
      let fatal: ((err: Error) => void) | undefined;
      let daemon;
      try {
        daemon = await startDaemon({ loaded, log, onFatal: (err) => fatal?.(err) });
      } catch (err) {
        if (err instanceof EmbeddedRedisUnavailableError || err instanceof RedisUnavailableError) {
          io.err(`${err.message}\n`);
          return 69;
        }
        log.fatal({ err }, 'vigil could not start');
        return 1;
      }
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
      });
      process.removeAllListeners('SIGTERM');
      process.removeAllListeners('SIGINT');
      await daemon.stop();
      return code;
    }
    case 'run-once': {
      const loaded = load(args.values.config, io);
      if (typeof loaded === 'number') return loaded;
      if (args.values.probe && !loaded.probes.has(args.values.probe)) {
        io.err(`vigil: no enabled probe "${args.values.probe}" (enabled: ${[...loaded.probes.keys()].join(', ')})\n`);
        return 64;
      }
      const log = createLogger(args.values.json ? 'silent' : 'warn', { write: (t: string) => io.err(t) } as NodeJS.WritableStream);
      const report = await runOnce(loaded, { probe: args.values.probe, log });
      io.out(args.values.json ? `${JSON.stringify(report, null, 2)}\n` : formatRunOnceTable(report));
      return runOnceExitCode(report);
    }
    case 'config': {
      if (args.positionals[0] !== 'check') {
        io.err(`vigil: unknown command "config ${args.positionals[0] ?? ''}"\n${usage}\n`);
        return 64;
      }
      const loaded = load(args.values.config, io);
      if (typeof loaded === 'number') return loaded;
      const targets = [...loaded.probes.values()].reduce((n, p) => n + p.probe.targets(loaded.config).length, 0);
      io.out(`${loaded.file}: OK — ${loaded.probes.size} probe(s) enabled, ${targets} target(s), ${loaded.catalog.controls.length} control(s)\n`);
      return 0;
    }
    case 'probes': {
      const loaded = load(args.values.config, io);
      if (typeof loaded === 'number') return loaded;
      for (const probe of registry) {
        const configured = loaded.probes.get(probe.id);
        io.out(
          [
            `${probe.id} — ${probe.title}`,
            `  source:      ${probe.source}`,
            `  controls:    ${probe.controls.join(', ')}`,
            `  schedule:    ${configured ? configured.schedule : 'disabled'}${configured && configured.schedule !== probe.schedule ? ` (default ${probe.schedule})` : ''}`,
            `  targets:     ${configured ? probe.targets(loaded.config).map((t) => t.name).join(', ') || '(none configured)' : '-'}`,
            `  permissions: ${probe.docs.permissions}`,
            '',
          ].join('\n'),
        );
      }
      return 0;
    }
    case 'snapshot': {
      const loaded = load(args.values.config, io);
      if (typeof loaded === 'number') return loaded;
      return await offline(io, () => snapshotCommand(loaded, args.values.date, io, createLogger('warn', stderrOf(io))));
    }
    case 'verify-archive': {
      const dir = args.positionals[0];
      if (!dir) {
        io.err(`vigil: verify-archive needs the archive directory\n${usage}\n`);
        return 64;
      }
      const key = args.values['public-key'];
      return await verifyArchiveCommand(dir, key ? readFileSync(key, 'utf8') : undefined, args.values.through, io);
    }
    case 'rebuild': {
      const loaded = load(args.values.config, io);
      if (typeof loaded === 'number') return loaded;
      return await offline(io, () => rebuildCommand(loaded, io, createLogger('warn', stderrOf(io))));
    }
    default:
      io.err(`vigil: unknown command "${command}"\n${usage}\n`);
      return 64;
  }
}

function stderrOf(io: CliIo): NodeJS.WritableStream {
  return { write: (t: string) => io.err(t) } as unknown as NodeJS.WritableStream;
}

/** Runs a command that needs Redis or the archive, turning their known failures into one line. */
async function offline(io: CliIo, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof RedisUnavailableError || err instanceof EmbeddedRedisUnavailableError) {
      io.err(`${err.message}\n`);
      return 69;
    }
    if (err instanceof Error && ['ArchiveChainError', 'ArchiveConflictError', 'Error'].includes(err.name)) {
      io.err(`vigil: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

function parseCommon(rest: string[]) {
  return parseArgs({
    args: rest,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      probe: { type: 'string' },
      json: { type: 'boolean', default: false },
      date: { type: 'string' },
      'public-key': { type: 'string' },
      through: { type: 'string' },
    },
  });
}
