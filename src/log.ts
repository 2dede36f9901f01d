import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { scrub } from './secrets.js';

/** Paths pino blanks before serialising, wherever a secret could sit in a log object. */
export const redactPaths = [
  'token',
  '*.token',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'req.headers.authorization',
  'privateKey',
  '*.privateKey',
];

/** A destination that scrubs registered secret values from every line before writing it. */
export function scrubbingStream(out: NodeJS.WritableStream = process.stdout): Writable {
  return new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      out.write(scrub(chunk.toString()));
      cb();
    },
  });
}

/**
 * A writer that scrubs registered secrets from `text` before it reaches `out` (default stderr).
 * Everything vigil writes to stderr outside the logger — CLI error lines, warnings — goes
 * through one of these, so a secret echoed in an error message is not printed either.
 */
export function scrubbingWriter(out: NodeJS.WritableStream = process.stderr): (text: string) => void {
  return (text) => {
    out.write(scrub(text));
  };
}

/** Writes `text` to stderr with registered secrets scrubbed (see {@link scrubbingWriter}). */
export function writeStderr(text: string): void {
  process.stderr.write(scrub(text));
}

/** The daemon's root logger: pino JSON, secrets redacted by path and by value. */
export function createLogger(level: string, out?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { app: 'vigil' },
      redact: { paths: redactPaths, censor: '[REDACTED]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    scrubbingStream(out),
  );
}

export type { Logger };
