import type { Logger } from 'pino';

/** Exit status after an uncaught error (EX_SOFTWARE, as the CLI launcher uses for its own crashes). */
export const LAST_RESORT_EXIT_CODE = 70;

/** Options of {@link installLastResort}. */
export interface LastResortOptions {
  log: Logger;
  /** Stops the running daemon cleanly (idempotent), e.g. `() => daemon.stop()`. */
  stop: () => Promise<void>;
  /** Longest wait for `stop` before exiting anyway. Default 60 s (above the default shutdown grace plus its bounds). */
  stopTimeoutMs?: number;
  /** Default `process.exit`. */
  exit?: (code: number) => void;
  /** Called once when an uncaught error starts the stop, before `stop` (e.g. so a signal during it cannot report success). */
  onStopping?: () => void;
  /** Where the events come from. Default `process`. */
  events?: NodeJS.EventEmitter;
}

/**
 * Installs the process-level last resort for `vigil start`: an uncaught exception or unhandled
 * rejection is logged, the daemon is stopped cleanly (scheduler first, running probes get their
 * grace, results recorded, Redis closed) and the process exits {@link LAST_RESORT_EXIT_CODE}, so a
 * supervisor restarts it. Without it Node would exit at once, mid-job. A second error while
 * stopping is logged and does not restart the stop. Returns a function that uninstalls it.
 */
export function installLastResort(opts: LastResortOptions): () => void {
  const events = opts.events ?? process;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const stopTimeoutMs = opts.stopTimeoutMs ?? 60_000;
  let stopping = false;

  const onError = (origin: 'uncaughtException' | 'unhandledRejection') => (reason: unknown) => {
    const err = reason instanceof Error ? reason : { message: String(reason) };
    if (stopping) {
      opts.log.error({ err, origin }, 'uncaught error while stopping after an uncaught error');
      return;
    }
    stopping = true;
    opts.onStopping?.();
    opts.log.fatal({ err, origin }, 'uncaught error: stopping vigil');
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'timeout'>((resolve) => {
      // Not unref'd: a stop hung on nothing must still end in exit(70), not a quiet exit 0.
      timer = setTimeout(() => resolve('timeout'), stopTimeoutMs);
    });
    Promise.race([opts.stop().then(() => 'stopped' as const), bound])
      .then(
        (how) => {
          if (how === 'timeout') opts.log.error({ stopTimeoutMs }, 'stop after an uncaught error took too long: exiting anyway');
        },
        (stopErr: unknown) => opts.log.error({ err: stopErr }, 'stop after an uncaught error failed'),
      )
      .finally(() => {
        clearTimeout(timer);
        exit(LAST_RESORT_EXIT_CODE);
      });
  };

  const onException = onError('uncaughtException');
  const onRejection = onError('unhandledRejection');
  events.on('uncaughtException', onException);
  events.on('unhandledRejection', onRejection);
  return () => {
    events.off('uncaughtException', onException);
    events.off('unhandledRejection', onRejection);
  };
}
