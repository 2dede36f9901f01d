/**
 * backup-restore-drill on drill records: JSON files in a directory, read through runProbe with a
 * fixed clock — passed, validated, failed after a later success, too old, over the RTO, missing
 * for a listed system, invalid, hostile (huge, a directory, not JSON, dated in the future).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probe } from '../probes/backup-restore-drill/probe.js';
import { VigilConfig } from '../src/config/schema.js';
import type { Finding } from '../src/probe/contract.js';
import { runProbe } from '../src/probe/runner.js';
import { tempDir } from './helpers/backup-tools.js';

const log = pino({ level: 'silent' });
const NOW = new Date('2026-12-01T12:00:00Z');
const daysAgo = (d: number) => new Date(NOW.getTime() - d * 86_400_000).toISOString();

let scratch: string;
beforeAll(() => {
  scratch = tempDir('drills');
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const drill = (over: Record<string, unknown>) => ({
  system: 'billing-db',
  date: daysAgo(10),
  durationMinutes: 42,
  result: 'passed',
  operator: 'alice@example.com',
  evidence: 'https://tickets.example.com/OPS-1234',
  ...over,
});

let dirs = 0;
/** A drill directory holding `files` (name → JSON value, or raw text when a string). */
function drills(files: Record<string, unknown>): string {
  const dir = path.join(scratch, `d${(dirs += 1)}`);
  mkdirSync(dir);
  for (const [name, value] of Object.entries(files)) writeFileSync(path.join(dir, name), typeof value === 'string' ? value : JSON.stringify(value));
  return dir;
}

async function run(dir: string, entry: Record<string, unknown> = {}): Promise<Finding[]> {
  const config = VigilConfig.parse({ backups: [{ name: 'drills', kind: 'drills', dir, ...entry }] });
  const [target] = probe.targets(config);
  if (!target) throw new Error('no target');
  const { result } = await runProbe({ probe, target, params: probe.params.parse({}), runId: 'test-run', scheduledFor: NOW, timeoutMs: 10_000, log, now: () => NOW });
  expect(result.error).toBeUndefined();
  return result.findings;
}

describe('backup-restore-drill: drill records', () => {
  it('a recent passed drill within the RTO passes at L4; with the restored data validated, L5', async () => {
    const findings = await run(drills({ 'a.json': drill({}), 'b.json': drill({ system: 'files', validated: true, date: daysAgo(80) }) }));
    expect(findings).toEqual([
      expect.objectContaining({ resource: 'drills/billing-db', outcome: 'pass', details: expect.objectContaining({ level: 4, operator: 'alice@example.com', evidence: 'https://tickets.example.com/OPS-1234' }) }),
      expect.objectContaining({ resource: 'drills/files', outcome: 'pass', details: expect.objectContaining({ level: 5, validated: true }) }),
    ]);
    expect(findings[0]?.message).toContain('passed in 42 min (RTO 240 min)');
  });

  it('a failed drill in the window fails the system even after a later success', async () => {
    const findings = await run(drills({ 'old-fail.json': drill({ result: 'failed', date: daysAgo(30) }), 'retry.json': drill({ date: daysAgo(2), validated: true }) }));
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ outcome: 'fail', details: { level: 0, failedInWindow: 1, drillsInWindow: 2 } });
    expect(findings[0]?.message).toContain(`on ${daysAgo(30)} by alice@example.com failed (https://tickets.example.com/OPS-1234)`);
  });

  it('a failure older than the window no longer counts', async () => {
    const findings = await run(drills({ 'x.json': [drill({ result: 'failed', date: daysAgo(120) }), drill({ date: daysAgo(5) })] }));
    expect(findings[0]).toMatchObject({ outcome: 'pass', details: { level: 4, failedInWindow: 0 } });
  });

  it('the newest drill older than maxDaysSinceDrill fails', async () => {
    const findings = await run(drills({ 'a.json': drill({ date: daysAgo(100) }) }));
    expect(findings[0]?.outcome).toBe('fail');
    expect(findings[0]?.message).toContain(`no restore drill of billing-db in the last 90 days (newest: ${daysAgo(100)})`);
    const longer = await run(drills({ 'a.json': drill({ date: daysAgo(100) }) }), { maxDaysSinceDrill: 120 });
    expect(longer[0]?.outcome).toBe('pass');
  });

  it('a passed drill slower than maxRestoreMinutes fails', async () => {
    const findings = await run(drills({ 'a.json': drill({ durationMinutes: 300 }) }));
    expect(findings[0]?.outcome).toBe('fail');
    expect(findings[0]?.message).toContain('took at least 300 min, over the 240-minute recovery time objective');
    const faster = await run(drills({ 'a.json': drill({ durationMinutes: 300 }) }), { maxRestoreMinutes: 360 });
    expect(faster[0]?.outcome).toBe('pass');
  });

  it('a listed system with no record fails; an empty directory fails', async () => {
    const findings = await run(drills({ 'a.json': drill({}) }), { systems: ['billing-db', 'search'] });
    expect(findings.map((f) => [f.resource, f.outcome])).toEqual([
      ['drills/billing-db', 'pass'],
      ['drills/search', 'fail'],
    ]);
    const empty = await run(drills({}));
    expect(empty).toEqual([expect.objectContaining({ resource: 'drills', outcome: 'fail', message: expect.stringContaining('no restore-drill record in') })]);
  });

  it('invalid and hostile files are each unknown — never skipped, never a crash — and valid records are still judged', async () => {
    const dir = drills({
      'good.json': drill({}),
      'not-json.json': '{ "system": ',
      'no-evidence.json': { ...drill({}), evidence: undefined },
      'bad-result.json': drill({ result: 'ok' }),
      'naive-date.json': drill({ date: '2026-11-20 10:00' }),
      'future.json': drill({ system: 'files', date: '2027-03-01T00:00:00Z' }),
      'huge.json': `[${'"x",'.repeat(100_000)}"x"]`,
      'ignored.txt': 'not a drill',
    });
    mkdirSync(path.join(dir, 'folder.json'));
    // A FIFO nobody writes: opening it for reading would block forever.
    expect(spawnSync('mkfifo', [path.join(dir, 'pipe.json')]).status).toBe(0);
    const findings = await run(dir);
    const byResource = Object.fromEntries(findings.map((f) => [f.resource, f]));
    expect(byResource['drills/billing-db']?.outcome).toBe('pass');
    for (const file of ['not-json.json', 'no-evidence.json', 'bad-result.json', 'naive-date.json', 'future.json', 'huge.json', 'folder.json', 'pipe.json']) {
      expect(byResource[`drills/file:${file}`]?.outcome, file).toBe('unknown');
    }
    expect(byResource['drills/file:not-json.json']?.message).toContain('not valid JSON');
    expect(byResource['drills/file:no-evidence.json']?.message).toContain('evidence:');
    expect(byResource['drills/file:naive-date.json']?.message).toContain('date: expected an ISO 8601 date-time with a time zone');
    expect(byResource['drills/file:future.json']?.message).toContain('in the future');
    expect(byResource['drills/file:huge.json']?.message).toContain('larger than 256 KiB');
    expect(findings.some((f) => f.resource.includes('ignored.txt'))).toBe(false);
    // The future-dated record is not counted for its system either.
    expect(byResource['drills/files']).toBeUndefined();
  });

  it('a missing directory is unknown', async () => {
    const findings = await run(path.join(scratch, 'nope'));
    expect(findings).toEqual([expect.objectContaining({ resource: 'drills', outcome: 'unknown', message: expect.stringContaining('cannot read the drill directory') })]);
  });
});
