import { existsSync, lstatSync, mkdtempSync, rmSync, statSync, symlinkSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RiskException } from '../src/config/schema.js';
import { applyExceptions, exceptionRecord, sortExceptions } from '../src/posture/exceptions.js';
import { canonicalJson } from '../src/posture/snapshot-types.js';
import { makeDirectory, makeDirectorySync } from '../src/store/make-directory.js';

/*
 * Review R9 of the session's last small changes: mkdir -p that cannot loop (symlinked parents,
 * relative paths, races, modes) and the exceptions' optional `approved` day, whose archived form
 * must stay byte-identical for exceptions without one (archived snapshot hashes).
 */

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-r9-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('makeDirectory / makeDirectorySync edge cases', () => {
  it('walks through a symlinked parent, as mkdir -p does', async () => {
    mkdirSync(path.join(dir, 'real'));
    symlinkSync(path.join(dir, 'real'), path.join(dir, 'link'));
    await makeDirectory(path.join(dir, 'link', 'a', 'b'), 0o700);
    makeDirectorySync(path.join(dir, 'link', 'c', 'd'), 0o700);
    expect(statSync(path.join(dir, 'real', 'a', 'b')).isDirectory()).toBe(true);
    expect(statSync(path.join(dir, 'real', 'c', 'd')).isDirectory()).toBe(true);
    expect(lstatSync(path.join(dir, 'link')).isSymbolicLink()).toBe(true);
  });

  it('a dangling symlink on the way is an error (ENOENT from its stat), not a loop', async () => {
    symlinkSync(path.join(dir, 'nowhere'), path.join(dir, 'dangling'));
    await expect(makeDirectory(path.join(dir, 'dangling', 'x', 'y'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(() => makeDirectorySync(path.join(dir, 'dangling', 'x'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(existsSync(path.join(dir, 'nowhere'))).toBe(false);
  });

  it('a relative path is taken from the working directory', async () => {
    const rel = path.relative(process.cwd(), path.join(dir, 'rel', 'x'));
    expect(path.isAbsolute(rel)).toBe(false);
    await makeDirectory(rel);
    makeDirectorySync(`${rel}/y/`);
    expect(statSync(path.join(dir, 'rel', 'x', 'y')).isDirectory()).toBe(true);
  });

  it('many concurrent callers on one deep path all succeed (EEXIST races are fine)', async () => {
    const deep = path.join(dir, 'race', 'a', 'b', 'c', 'd', 'e');
    const outcomes = await Promise.allSettled(Array.from({ length: 24 }, () => makeDirectory(deep, 0o700)));
    expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
    expect(statSync(deep).isDirectory()).toBe(true);
  });

  it('every directory it creates gets the mode (like recursive mkdir), an existing parent keeps its own', async () => {
    const old = process.umask(0o022);
    try {
      await makeDirectory(path.join(dir, 'modes', 'p', 'q'), 0o700);
      makeDirectorySync(path.join(dir, 'modes-sync', 'p', 'q'), 0o750);
    } finally {
      process.umask(old);
    }
    for (const d of ['modes', 'modes/p', 'modes/p/q']) expect(statSync(path.join(dir, d)).mode & 0o777).toBe(0o700);
    for (const d of ['modes-sync', 'modes-sync/p', 'modes-sync/p/q']) expect(statSync(path.join(dir, d)).mode & 0o777).toBe(0o750);
    expect(statSync(dir).mode & 0o777).toBe(0o700); // mkdtemp's own, untouched
  });
});

/** sortExceptions and exceptionRecord as they were before `approved` (commit bdf4461). */
function sortBefore(list: readonly RiskException[]): RiskException[] {
  const key = (e: RiskException) => [e.control, e.probe ?? '', e.resource, e.expires, e.approvedBy, e.reason, e.ticket ?? ''];
  return [...list].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return (ka[i] as string) < (kb[i] as string) ? -1 : 1;
    return 0;
  });
}
function recordBefore(e: RiskException): RiskException {
  return { control: e.control, ...(e.probe !== undefined && { probe: e.probe }), resource: e.resource, reason: e.reason, approvedBy: e.approvedBy, ...(e.ticket !== undefined && { ticket: e.ticket }), expires: e.expires };
}

/** A small deterministic PRNG, so a failure reproduces. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('exceptions without `approved` archive byte-identically to before it existed', () => {
  const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const gen = (r: () => number): RiskException => ({
    control: pick(r, ['c1', 'c2']),
    ...(r() < 0.5 && { probe: pick(r, ['p1', 'p2']) }),
    resource: pick(r, ['a', 'b', 'a*']),
    reason: pick(r, ['x', 'y']),
    approvedBy: pick(r, ['ciso', 'cto']),
    ...(r() < 0.5 && { ticket: pick(r, ['https://t/1', 'https://t/2']) }),
    expires: pick(r, ['2026-12-01', '2026-12-31']),
  });

  it('sorted and recorded: the same canonical JSON as the code before `approved`, for 500 random lists with ties', () => {
    const r = prng(9);
    for (let round = 0; round < 500; round++) {
      const list = Array.from({ length: 1 + Math.floor(r() * 12) }, () => gen(r));
      expect(canonicalJson(sortExceptions(list).map(exceptionRecord))).toBe(canonicalJson(sortBefore(list).map(recordBefore)));
    }
  });

  it('the record of an exception without `approved` has no `approved` key at all (not even undefined)', () => {
    const rec = exceptionRecord({ control: 'c', resource: 'r', reason: 'x', approvedBy: 'y', expires: '2026-12-31' });
    expect(Object.keys(rec)).toEqual(['control', 'resource', 'reason', 'approvedBy', 'expires']);
    expect(JSON.stringify(rec)).toBe(JSON.stringify(recordBefore(rec)));
  });

  it('two exceptions equal but for `approved` sort the same whatever their config order (absent first)', () => {
    const base: RiskException = { control: 'c', resource: 'r', reason: 'x', approvedBy: 'y', expires: '2026-12-31' };
    const later = { ...base, approved: '2026-11-02' };
    const earlier = { ...base, approved: '2026-11-01' };
    const want = [base, earlier, later].map((e) => canonicalJson(exceptionRecord(e)));
    for (const order of [[base, earlier, later], [later, earlier, base], [earlier, later, base]]) {
      expect(sortExceptions(order).map((e) => canonicalJson(exceptionRecord(e)))).toEqual(want);
    }
  });

  it('applyExceptions without `approved`: the same outcome on any day (acceptedOn is always true)', () => {
    const e: RiskException = { control: 'c', resource: 'r*', reason: 'x', approvedBy: 'y', expires: '2026-12-31' };
    for (const day of ['1970-01-01', '2026-12-31', '2027-01-01']) {
      const out = applyExceptions('c', [{ probe: 'p', target: 't', resource: 'r1', message: 'm' }], [e], day);
      expect(out.excepted.length + out.kept.length).toBe(1);
      expect(out.excepted.length).toBe(day <= e.expires ? 1 : 0);
      expect(out.expired.length).toBe(day <= e.expires ? 0 : 1);
    }
  });
});
