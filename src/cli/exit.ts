/**
 * Ending the process without losing output. `process.exit()` drops whatever stdout and stderr
 * still hold when they are pipes (on Linux a pipe takes 64 KiB at a time; the rest waits in the
 * stream), which cut `vigil run-once --json | jq` short. So the launcher waits until both streams
 * have handed everything to the OS, then exits: waiting for the loop to empty instead is not an
 * option, as a closed daemon or a finished run can still hold timers and sockets of libraries.
 */

/** Resolves once everything written to `stream` so far has been flushed, or the stream failed or closed. */
export function flushed(stream: NodeJS.WritableStream & { destroyed?: boolean; writableLength?: number }): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    // Writes complete in order: the callback of an empty write runs after every earlier one.
    stream.write('', () => resolve());
  });
}

/**
 * Sets the exit code, waits for stdout and stderr to flush, then exits. A reader that went away
 * (EPIPE, e.g. `vigil run-once --json | head -c 100`) is not an error of ours: the stream is
 * closed and the exit code stands.
 */
export async function exitWhenFlushed(
  code: number,
  streams: ReadonlyArray<NodeJS.WriteStream> = [process.stdout, process.stderr],
  /** Longest wait before exiting anyway. Unbounded for reports (a slow reader must get all of it); bounded after a crash, so a stalled log reader cannot keep a broken daemon alive. */
  maxWaitMs?: number,
): Promise<never> {
  process.exitCode = code;
  const all = Promise.all(streams.map((s) => flushed(s)));
  if (maxWaitMs === undefined) await all;
  else await Promise.race([all, new Promise((r) => setTimeout(r, maxWaitMs).unref())]);
  process.exit(code);
}

/**
 * Keeps a reader that closes the pipe early (EPIPE) from crashing the CLI with an unhandled
 * stream error. Nothing useful can be said about a failed stdout or stderr on those streams
 * themselves; the write callbacks still run, so {@link flushed} resolves.
 */
export function ignoreClosedPipes(streams: ReadonlyArray<NodeJS.WriteStream> = [process.stdout, process.stderr]): void {
  for (const s of streams) s.on('error', () => undefined);
}
