/**
 * Real backup tools for the backup-repository tests: restic, borg, pgBackRest and PostgreSQL from
 * Debian (`apt-get install -y restic borgbackup pgbackrest postgresql`), driven against
 * repositories and a throwaway PostgreSQL cluster the tests create in temporary directories.
 * Nothing on the machine outside those directories is touched.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** What one command printed. */
export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (no shell); throws when `check` and it did not exit 0. */
export function sh(command: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; check?: boolean; input?: string; cwd?: string } = {}): Ran {
  const env = Object.fromEntries(Object.entries({ ...process.env, ...opts.env }).filter((e): e is [string, string] => e[1] !== undefined));
  const r = spawnSync(command, [...args], { env, encoding: 'utf8', input: opts.input, cwd: opts.cwd, timeout: 60_000 });
  if (r.error) throw new Error(`${command} could not run (${(r.error as NodeJS.ErrnoException).code}): install it with apt-get install -y restic borgbackup pgbackrest postgresql`);
  const ran = { code: r.status, stdout: r.stdout, stderr: r.stderr };
  if (opts.check !== false && r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ran;
}

/** A temporary directory removed by `cleanup`. */
export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `vigil-${prefix}-`));
}

/** A small data set to back up: a text file and 256 KiB of random bytes (so a pack/segment has data to corrupt). */
export function sampleData(dir: string): string {
  const data = path.join(dir, 'data');
  sh('mkdir', ['-p', data]);
  writeFileSync(path.join(data, 'hello.txt'), 'hello backups\n');
  writeFileSync(path.join(data, 'random.bin'), Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => (i * 2654435761) >>> 24)));
  return data;
}

/**
 * Every file under `dir` with its size, mtime and content hash: equal before and after proves nothing was written.
 * `allow` names top-level files a tool is known to rewrite (left out).
 */
export function fingerprint(dir: string, allow: readonly string[] = []): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (allow.includes(path.relative(dir, p))) continue;
      if (e.isDirectory()) {
        out.push(`${path.relative(dir, p)}/`);
        walk(p);
      } else {
        const st = statSync(p);
        out.push(`${path.relative(dir, p)} ${st.size} ${st.mtimeMs} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
      }
    }
  };
  walk(dir);
  return out.join('\n');
}

/** Overwrites `bytes` bytes in the middle of a file, keeping its size (bit rot, not truncation). */
export function corruptMiddle(file: string, bytes = 32): void {
  const buf = readFileSync(file);
  const at = Math.max(0, Math.floor(buf.length / 2) - bytes / 2);
  for (let i = at; i < Math.min(buf.length, at + bytes); i += 1) buf[i] = (buf[i] ?? 0) ^ 0xff;
  writeFileSync(file, buf);
}

/** The largest file under `dir` (a restic data pack, a borg segment). */
export function largestFile(dir: string): string {
  let best: { file: string; size: number } | undefined;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!best || statSync(p).size > best.size) best = { file: p, size: statSync(p).size };
    }
  };
  walk(dir);
  if (!best) throw new Error(`no file under ${dir}`);
  return best.file;
}

/** The environment of the test's own restic calls: repository and password, and none of the decoys a test may plant in process.env. */
function resticEnv(repo: string, password: string): NodeJS.ProcessEnv {
  return { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: password, RESTIC_PASSWORD_FILE: undefined, RESTIC_PASSWORD_COMMAND: undefined };
}

/** restic with a repository and password in its environment (as a user's backup job would run it). */
export function restic(repo: string, password: string, args: readonly string[], check = true): Ran {
  return sh('restic', ['--no-cache', ...args], { env: resticEnv(repo, password), check });
}

/** borg with a repository, passphrase and its own base directory. */
export function borg(repo: string, passphrase: string | undefined, baseDir: string, args: readonly string[], check = true): Ran {
  return sh('borg', [...args], {
    env: { BORG_REPO: repo, BORG_BASE_DIR: baseDir, TZ: 'UTC', ...(passphrase !== undefined ? { BORG_PASSPHRASE: passphrase } : {}), BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes' },
    check,
  });
}

/** Waits until `probe()` is true, polling. */
export async function waitFor(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A process the test started, and how to end it (by its own pid / process group only). */
export interface Held {
  child: ChildProcess;
  release(): Promise<void>;
}

/**
 * Holds a real exclusive restic lock: `restic key passwd` takes the exclusive lock, then blocks
 * reading the new password from a FIFO nobody writes. Released by killing that process and
 * removing its (now stale) lock with `restic unlock`.
 */
export async function holdResticExclusiveLock(repo: string, password: string, scratch: string): Promise<Held> {
  const fifo = path.join(scratch, `new-password-${process.pid}-${Date.now()}`);
  sh('mkfifo', [fifo]);
  const before = readdirSync(path.join(repo, 'locks')).length;
  const env = Object.fromEntries(Object.entries({ ...process.env, ...resticEnv(repo, password) }).filter((e): e is [string, string] => e[1] !== undefined));
  const child = spawn('restic', ['--no-cache', 'key', 'passwd', '--new-password-file', fifo], {
    env,
    stdio: 'ignore',
  });
  await waitFor('restic to take its exclusive lock', () => readdirSync(path.join(repo, 'locks')).length > before);
  return {
    child,
    async release() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      restic(repo, password, ['unlock', '--remove-all']);
      rmSync(fifo, { force: true });
    },
  };
}

/** Holds a real exclusive borg lock with `borg with-lock REPO sleep 60` (its own process group, killed as one). */
export async function holdBorgLock(repo: string, passphrase: string, baseDir: string): Promise<Held> {
  const child = spawn('borg', ['with-lock', repo, 'sleep', '60'], {
    env: { ...process.env, BORG_BASE_DIR: baseDir, BORG_PASSPHRASE: passphrase },
    stdio: 'ignore',
    detached: true,
  });
  await waitFor('borg to take its lock', () => {
    try {
      return (JSON.parse(readFileSync(path.join(repo, 'lock.roster'), 'utf8')) as { exclusive?: unknown[] }).exclusive?.length === 1;
    } catch {
      return false;
    }
  });
  return {
    child,
    async release() {
      const exited = new Promise((r) => child.once('exit', r));
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
      await exited;
    },
  };
}

const isRoot = process.getuid?.() === 0;

/** Runs a command as the `postgres` user when the tests run as root (initdb refuses root), else as ourselves. */
export function asPostgres(command: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; check?: boolean } = {}): Ran {
  if (!isRoot) return sh(command, args, opts);
  const envArgs = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
  return sh('runuser', ['-u', 'postgres', '--', 'env', ...envArgs, command, ...args], { check: opts.check });
}

/** PostgreSQL binaries of the Debian package (not on PATH there). */
function pgBin(name: string): string {
  for (const dir of readdirSync('/usr/lib/postgresql').sort().reverse()) {
    const p = path.join('/usr/lib/postgresql', dir, 'bin', name);
    try {
      statSync(p);
      return p;
    } catch {
      // next version
    }
  }
  return name;
}

/** A throwaway PostgreSQL cluster listening on a Unix socket in its own directory, archiving WAL to pgBackRest. */
export interface PgCluster {
  dir: string;
  socketDir: string;
  port: number;
  /** pgbackrest.conf of the stanza `main`, repository under dir/repo, encrypted with `cipherPass`. */
  pgbackrestConf: string;
  cipherPass: string;
  /** pgbackrest as the cluster's owner, with the cipher passphrase in its environment. */
  pgbackrest(args: readonly string[], check?: boolean): Ran;
  /** `pg_dump -Fc` of the postgres database into `file`. */
  dump(file: string): void;
  stop(): void;
}

/**
 * initdb + pg_ctl start of a cluster the test owns, in a temporary directory, on a Unix socket only
 * (listen_addresses = ''), with archive_command pushing WAL to a pgBackRest stanza `main` whose
 * repository is encrypted (aes-256-cbc) — then stanza-create.
 */
export function startPostgres(): PgCluster {
  const dir = tempDir('pg');
  chmodSync(dir, 0o755);
  const owner = isRoot
    ? { uid: Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim()), gid: Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim()) }
    : undefined;
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const port = 5432;
  const cipherPass = 'cipher-pass-for-vigil-tests-7f3a';
  const conf = path.join(dir, 'pgbackrest.conf');
  const confText = [
    '[global]',
    `repo1-path=${dir}/repo`,
    'repo1-cipher-type=aes-256-cbc',
    'repo1-retention-full=10',
    `lock-path=${dir}/lock`,
    `log-path=${dir}/log`,
    'log-level-file=off',
    'log-level-console=warn',
    'start-fast=y',
    'compress-type=none',
    'archive-async=n',
    '[main]',
    `pg1-path=${dir}/data`,
    `pg1-port=${port}`,
    `pg1-socket-path=${dir}`,
    '',
  ].join('\n');
  writeFileSync(conf, confText);
  if (owner) chownSync(conf, owner.uid, owner.gid);
  const env = { PGBACKREST_REPO1_CIPHER_PASS: cipherPass };
  asPostgres(pgBin('initdb'), ['-D', `${dir}/data`, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const pgConf = path.join(dir, 'data', 'postgresql.conf');
  writeFileSync(
    pgConf,
    `${readFileSync(pgConf, 'utf8')}\nport = ${port}\nlisten_addresses = ''\nunix_socket_directories = '${dir}'\nfsync = off\nwal_level = replica\narchive_mode = on\n` +
      `archive_command = 'PGBACKREST_REPO1_CIPHER_PASS=${cipherPass} pgbackrest --config=${conf} --stanza=main archive-push %p'\n`,
  );
  asPostgres(pgBin('pg_ctl'), ['-D', `${dir}/data`, '-l', `${dir}/postgres.log`, '-w', 'start']);
  const cluster: PgCluster = {
    dir,
    socketDir: dir,
    port,
    pgbackrestConf: conf,
    cipherPass,
    pgbackrest: (args, check = true) => asPostgres('pgbackrest', [`--config=${conf}`, '--stanza=main', ...args], { env, check }),
    dump(file) {
      sh('pg_dump', ['-h', dir, '-p', String(port), '-U', 'postgres', '-Fc', '-f', file, 'postgres']);
    },
    stop() {
      asPostgres(pgBin('pg_ctl'), ['-D', `${dir}/data`, '-m', 'immediate', 'stop'], { check: false });
      rmSync(dir, { recursive: true, force: true });
    },
  };
  sh('psql', ['-h', dir, '-p', String(port), '-U', 'postgres', '-qc', 'create table drill as select g, md5(g::text) as h from generate_series(1, 20000) g', 'postgres']);
  cluster.pgbackrest(['stanza-create']);
  return cluster;
}
