import { describe, expect, it } from 'vitest';
import type { Finding, ProbeResult } from '../probe/contract.js';
import { controlStatus, runOutcome, statusValue, type ProbeEvidence } from './status.js';

const now = new Date('2026-11-21T12:00:00Z');
const interval = 15 * 60_000;

function result(findings: Finding[], opts: { finishedAt?: string; error?: ProbeResult['error'] } = {}): ProbeResult {
  return {
    runId: 'r',
    probe: 'p1',
    target: 't1',
    scheduledFor: '2026-11-21T11:45:00.000Z',
    startedAt: '2026-11-21T11:45:00.000Z',
    finishedAt: opts.finishedAt ?? '2026-11-21T11:45:02.000Z',
    findings,
    ...(opts.error ? { error: opts.error } : {}),
  };
}
const pass: Finding = { resource: 'a', outcome: 'pass', message: 'ok' };
const na: Finding = { resource: 'b', outcome: 'not_applicable', message: 'n/a' };
const fail: Finding = { resource: 'c', outcome: 'fail', message: 'broken: fix it' };
const unknown: Finding = { resource: 'd', outcome: 'unknown', message: 'token may not read it' };

function evidence(...results: Array<ProbeResult | undefined>): ProbeEvidence[] {
  return [{ probe: 'p1', enabled: true, intervalMs: interval, targets: results.map((r, i) => ({ target: `t${i + 1}`, result: r })) }];
}
const control = { id: 'c1', probes: ['p1'] };

describe('control status now', () => {
  it.each([
    ['all pass is green', evidence(result([pass])), 'green'],
    ['pass and not_applicable is green', evidence(result([pass, na])), 'green'],
    ['one failing finding is red', evidence(result([pass, fail])), 'red'],
    ['an unknown finding is unknown, never green', evidence(result([pass, unknown])), 'unknown'],
    ['fail wins over unknown', evidence(result([unknown, fail])), 'red'],
    ['no result yet is unknown', evidence(undefined), 'unknown'],
    ['a run error is unknown', evidence(result([], { error: { class: 'PermissionError', message: '403' } })), 'unknown'],
    ['a run with no findings is unknown', evidence(result([])), 'unknown'],
    ['a result older than 2 × interval is unknown (stale)', evidence(result([pass], { finishedAt: '2026-11-21T11:29:59.000Z' })), 'unknown'],
    ['a result exactly 2 × interval old is still fresh', evidence(result([pass], { finishedAt: '2026-11-21T11:30:00.000Z' })), 'green'],
    ['a stale failure stays red', evidence(result([fail], { finishedAt: '2026-11-20T00:00:00.000Z' })), 'red'],
    ['one green target and one missing target is unknown', evidence(result([pass]), undefined), 'unknown'],
    ['no configured target is unknown', [{ probe: 'p1', enabled: true, intervalMs: interval, targets: [] }], 'unknown'],
    ['a disabled probe is unknown', [{ probe: 'p1', enabled: false, intervalMs: interval, targets: [] }], 'unknown'],
    ['a probe missing from the evidence is unknown', [], 'unknown'],
  ] as const)('%s', (_name, ev, expected) => {
    const state = controlStatus(control, ev as ProbeEvidence[], now);
    expect(state.status).toBe(expected);
    if (expected === 'green') expect(state.reasons).toEqual([]);
    else expect(state.reasons.length).toBeGreaterThan(0);
  });

  it('marks staleness and says how old', () => {
    const state = controlStatus(control, evidence(result([pass], { finishedAt: '2026-11-21T10:00:00.000Z' })), now);
    expect(state.stale).toBe(true);
    expect(state.reasons).toEqual(['p1/t1: stale, newest result is from 2026-11-21T10:00:00.000Z (limit 1800 s)']);
  });

  it('a target with its own interval is stale after 2 × its own, not the probe\'s', () => {
    // Both 45 minutes old: past 2 × 15 min (the probe's), within 2 × 1 h (t2's own).
    const old = result([pass], { finishedAt: '2026-11-21T11:15:00.000Z' });
    const ev: ProbeEvidence[] = [{ probe: 'p1', enabled: true, intervalMs: interval, targets: [{ target: 't1', result: old }, { target: 't2', intervalMs: 3_600_000, result: old }] }];
    const state = controlStatus(control, ev, now);
    expect(state.targets.map((t) => [t.target, t.stale, t.status])).toEqual([['t1', true, 'unknown'], ['t2', false, 'green']]);
    expect(state.reasons).toEqual(['p1/t1: stale, newest result is from 2026-11-21T11:15:00.000Z (limit 1800 s)']);
  });

  it('a control no probe evidences is unknown, never green', () => {
    expect(controlStatus({ id: 'c', probes: [] }, evidence(result([pass])), now).status).toBe('unknown');
  });

  it('needs every probe of the control', () => {
    const ev: ProbeEvidence[] = [...evidence(result([pass])), { probe: 'p2', enabled: true, intervalMs: interval, targets: [{ target: 'x', result: undefined }] }];
    expect(controlStatus({ id: 'c', probes: ['p1', 'p2'] }, ev, now).status).toBe('unknown');
    expect(controlStatus({ id: 'c', probes: ['p1'] }, ev, now).status).toBe('green');
  });

  it('maps statuses to metric values and runs to outcomes', () => {
    expect([statusValue('green'), statusValue('red'), statusValue('unknown')]).toEqual([1, 0, -1]);
    expect(runOutcome(result([pass]))).toBe('pass');
    expect(runOutcome(result([pass, fail]))).toBe('fail');
    expect(runOutcome(result([unknown]))).toBe('unknown');
    expect(runOutcome(result([], { error: { class: 'E', message: 'm' } }))).toBe('error');
  });
});
