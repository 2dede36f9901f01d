import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** How the stand-in behaves for one command (`init`, `plan`, `show`, `state pull`). */
export interface FakeStep {
  exit?: number;
  stderr?: string;
  /** Never exits (the probe's timeout must stop it). */
  hang?: boolean;
  /** plan only: bump the state serial, as an apply running meanwhile would. */
  bumpSerial?: boolean;
  /** Print this many bytes of progress on stdout first (a long plan diff). */
  stdoutBytes?: number;
}

/** A scenario: which real `show -json` document to replay, and per-command behaviour. */
export interface FakeScenario {
  /** Path of the `show -json` document printed by `show -json <planfile>`. */
  show?: string;
  /** Literal text printed instead (hostile outputs). */
  showText?: string;
  init?: FakeStep;
  plan?: FakeStep;
  'state pull'?: FakeStep;
}

/** One recorded invocation of the stand-in. */
export interface FakeCall {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  pid: number;
}

/**
 * Writes an executable named `name` (`tofu` or `terraform`) into `binDir` that replays real
 * outputs as `scenario` says. Its shebang names this Node binary, so it runs with no PATH in its
 * environment (vigil gives the tool none unless `env` lists it). Returns helpers to re-script it
 * and to read what it was called with.
 */
export function installFakeTofu(binDir: string, scenario: FakeScenario, name = 'tofu') {
  mkdirSync(binDir, { recursive: true });
  const log = path.join(binDir, 'calls.jsonl');
  const body = readFileSync(path.join(import.meta.dirname, 'fake-tofu.cjs'), 'utf8');
  const exe = path.join(binDir, name);
  writeFileSync(exe, `#!${process.execPath}\n${body}`);
  chmodSync(exe, 0o755);
  writeFileSync(path.join(binDir, 'serial'), '7');
  writeFileSync(log, '');
  const script = (s: FakeScenario) => writeFileSync(path.join(binDir, 'scenario.json'), JSON.stringify({ ...s, log }));
  script(scenario);
  return {
    exe,
    script,
    calls(): FakeCall[] {
      return readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as FakeCall);
    },
    clearCalls: () => writeFileSync(log, ''),
  };
}
