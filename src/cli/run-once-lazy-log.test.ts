import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../log.js';
import { lazyLogger } from './run-once.js';

/** A pino logger like run-once's, writing JSON lines into `lines`. */
function capture(level: string, lines: Array<Record<string, unknown>>) {
  let created = 0;
  const out = { write: (t: string) => void lines.push(...t.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)) } as unknown as NodeJS.WritableStream;
  return {
    create: async () => {
      created++;
      return createLogger(level, out);
    },
    created: () => created,
  };
}

describe('run-once lazy logger', () => {
  it('never loads pino when nothing at its level is written', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const c = capture('warn', lines);
    const { log, flush } = lazyLogger('warn', c.create);
    log.child({ probe: 'p' }).debug('below the level');
    log.info({ a: 1 }, 'below the level too');
    await flush();
    expect(c.created()).toBe(0);
    expect(lines).toEqual([]);
    const silent = lazyLogger('silent', c.create);
    silent.log.fatal('nothing at silent');
    await silent.flush();
    expect(c.created()).toBe(0);
  });

  it('writes queued lines in order through the real logger, with child bindings and redaction', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const c = capture('warn', lines);
    const { log, flush } = lazyLogger('warn', c.create);
    const child = log.child({ probe: 'tls-certificate-posture' }).child({ target: 'web' });
    child.warn({ token: 'ghp_secret_value' }, 'first');
    log.error('second');
    child.debug('dropped');
    await flush();
    log.warn('after loading');
    expect(c.created()).toBe(1);
    expect(lines.map((l) => [l.msg, l.probe, l.target, l.level])).toEqual([
      ['first', 'tls-certificate-posture', 'web', 40],
      ['second', undefined, undefined, 50],
      ['after loading', undefined, undefined, 40],
    ]);
    expect(lines[0]?.token).toBe('[REDACTED]');
    expect(child.bindings()).toEqual({ probe: 'tls-certificate-posture', target: 'web' });
    expect(log.isLevelEnabled('warn')).toBe(true);
    expect(log.isLevelEnabled('info')).toBe(false);
  });

  it('a fresh `vigil run-once` on an empty config does not load pino', () => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
    const main = path.join(root, 'dist/src/cli/main.js');
    if (!existsSync(main)) throw new Error('build first: npx tsc -p tsconfig.build.json');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-lazy-log-'));
    try {
      const file = path.join(dir, 'empty.yaml');
      writeFileSync(file, '{}\n');
      const script = `
        import { createRequire } from 'node:module';
        const { main } = await import(${JSON.stringify(main)});
        const out = [];
        const code = await main(['run-once', '--config', ${JSON.stringify(file)}], { out: (t) => out.push(t), err: () => {}, env: {} });
        const cache = createRequire(${JSON.stringify(`${root}/`)}).cache;
        console.log(JSON.stringify({ code, table: out.join('').includes('CONTROL'), pino: Object.keys(cache).filter((f) => /node_modules[\\\\/]pino[\\\\/]/.test(f)).length }));
      `;
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
      expect(run.status, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout.trim().split('\n').pop() ?? '')).toEqual({ code: 2, table: true, pino: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
