#!/usr/bin/env node
// Thin launcher: the CLI is compiled by `npm run build` into dist/.
// It never calls process.exit() while stdout or stderr still hold data (a piped report would be
// cut short): exitWhenFlushed waits for both, then exits with the command's code.
import { main } from '../dist/src/cli/main.js';
import { exitWhenFlushed, ignoreClosedPipes } from '../dist/src/cli/exit.js';
import { scrub } from '../dist/src/secrets.js';

ignoreClosedPipes();
main(process.argv.slice(2)).then(
  (code) => exitWhenFlushed(code),
  (err) => {
    // Secrets are scrubbed here too: an unexpected error's message may quote one.
    process.stderr.write(scrub(`vigil: ${err instanceof Error ? err.message : String(err)}\n`));
    return exitWhenFlushed(70);
  },
);
