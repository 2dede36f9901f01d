/**
 * backup-repository, pure parts: the verdict from each tool's output (texts captured from
 * restic 0.14, borg 1.2.4 and pgBackRest 2.45 runs; restic ≥ 0.17 JSON lines as its scripting
 * docs describe them), and the evidence ladder from an observation with a fixed clock.
 */
import { describe, expect, it } from 'vitest';
import { judgeBorgCheck } from './borg.js';
import { evaluateRepository } from './evaluate.js';
import type { RepositoryObservation } from './observation.js';
import { judgeVerify } from './pgbackrest.js';
import { judgeResticCheck } from './restic.js';
import type { ToolResult } from './run-tool.js';

const out = (code: number, stdout: string, stderr = ''): ToolResult => ({ code, stdout, stderr, truncated: false });

describe('pgbackrest verify', () => {
  const begin = '2026-12-01 09:08:17.349 P00   INFO: verify command begin 2.45: --stanza=main --verbose\n';
  const end = '2026-12-01 09:08:17.629 P00   INFO: verify command end: completed successfully (281ms)\n';
  const cases: Array<{ name: string; r: ToolResult; want: string; says: RegExp }> = [
    {
      name: 'status: ok passes',
      r: out(0, `${begin}2026-12-01 09:08:18.628 P00   INFO: stanza: main\n                                    status: ok\n                                      backup: 20261201-090759F, status: valid, total files checked: 964, total valid files: 964\n                                        missing: 0, checksum invalid: 0, size invalid: 0, other: 0\n${end}`),
      want: 'pass',
      says: /^status: ok$/,
    },
    {
      name: 'exit 0 with status: error fails, naming the invalid file and counts',
      r: out(
        0,
        `${begin}2026-12-01 09:08:17.527 P01   INFO: invalid checksum '20261201-090759F/pg_data/global/1262_fsm'\n2026-12-01 09:08:17.629 P00   INFO: stanza: main\n                                    status: error\n                                      archiveId: 15-1, total WAL checked: 2, total valid WAL: 2\n                                        missing: 0, checksum invalid: 0, size invalid: 0, other: 0\n                                      backup: 20261201-090759F, status: invalid, total files checked: 964, total valid files: 963\n                                        missing: 0, checksum invalid: 1, size invalid: 0, other: 0\n${end}`,
      ),
      want: 'fail',
      says: /status: error — invalid checksum '20261201-090759F\/pg_data\/global\/1262_fsm' \/ backup: 20261201-090759F, status: invalid.* \/ checksum invalid: 1/,
    },
    {
      name: 'a stanza without backup.info is an error status',
      r: out(0, `${begin}2026-12-01 09:08:18.636 P00   INFO: stanza: main\n                                    status: error\n                                      No usable backup.info file\n                                      No usable archive.info file\n${end}`),
      want: 'fail',
      says: /No usable backup\.info file/,
    },
    {
      name: 'no status line (an older pgBackRest without --verbose) is unknown, never pass',
      r: out(0, `${begin}${end}`),
      want: 'unknown',
      says: /without a status line for stanza main/,
    },
    {
      name: 'an ERROR line is unknown',
      r: out(31, `2026-12-01 09:08:18.636 P00  ERROR: [031]: option 'verbose' not valid for command 'verify'\n`),
      want: 'unknown',
      says: /ERROR: \[031\]/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const v = judgeVerify(c.r, 'main');
      expect(v.outcome).toBe(c.want);
      expect(v.message).toMatch(c.says);
    });
  }
});

describe('restic check', () => {
  it('restic 0.14 text: "no errors were found" with exit 0 passes', () => {
    expect(judgeResticCheck(out(0, 'load indexes\ncheck all packs\ncheck snapshots, trees and blobs\n\nno errors were found\n'))).toMatchObject({ outcome: 'pass' });
  });
  it('restic 0.14 text: the error lines and "repository contains errors" fail', () => {
    const v = judgeResticCheck(out(1, 'read group #1 of 2 data packs\n', 'Pack ID does not match, want 1fb3fba0, got a12b4aac\nFatal: repository contains errors\n'));
    expect(v.outcome).toBe('fail');
    expect(v.message).toMatch(/^Pack ID does not match, want 1fb3fba0, got a12b4aac: run restic check --read-data/);
  });
  it('restic ≥ 0.17 JSON: a summary with num_errors 0 passes, with errors fails naming them', () => {
    expect(judgeResticCheck(out(0, '{"message_type":"summary","num_errors":0,"broken_packs":null,"suggest_repair_index":false,"suggest_prune":false}\n'))).toMatchObject({ outcome: 'pass' });
    const v = judgeResticCheck(out(1, '{"message_type":"summary","num_errors":1,"broken_packs":["1fb3"]}\n', '{"message_type":"error","message":"pack 1fb3: not referenced in index"}\n'));
    expect(v).toMatchObject({ outcome: 'fail', message: '1 error(s): pack 1fb3: not referenced in index' });
  });
  it('exit 0 without "no errors were found" is unknown, and so is truncated output', () => {
    expect(judgeResticCheck(out(0, 'load indexes\n')).outcome).toBe('unknown');
    expect(judgeResticCheck({ ...out(0, 'no errors were found\n'), truncated: true }).outcome).toBe('unknown');
    expect(judgeResticCheck(out(1, '', 'Fatal: unable to create lock\n')).outcome).toBe('unknown');
  });
});

describe('borg check', () => {
  const line = (levelname: string, message: string) => JSON.stringify({ type: 'log_message', time: 1796116050.77, message, levelname, name: 'borg.repository' });
  it('an ERROR line fails whatever the exit code', () => {
    const v = judgeBorgCheck(out(1, '', [line('INFO', 'Starting repository check'), line('ERROR', 'Data integrity error: Segment entry checksum mismatch [segment 0, offset 8]'), line('ERROR', 'Finished full repository check, errors found.')].join('\n')));
    expect(v.outcome).toBe('fail');
    expect(v.message).toMatch(/^Data integrity error: Segment entry checksum mismatch \[segment 0, offset 8\]/);
  });
  it('"no problems found" passes; warnings alone (exit 1) are kept, not failed', () => {
    const v = judgeBorgCheck(out(1, '', [line('WARNING', '2 orphaned objects found'), line('INFO', 'Finished full repository check, no problems found.')].join('\n')));
    expect(v).toMatchObject({ outcome: 'pass', warnings: ['2 orphaned objects found'] });
  });
  it('no verdict line (a traceback) is unknown', () => {
    expect(judgeBorgCheck(out(2, '', 'Traceback (most recent call last):\n  File "borg", line 1\n')).outcome).toBe('unknown');
  });
});

describe('the evidence ladder', () => {
  const NOW = new Date('2026-12-01T12:00:00Z');
  const base: RepositoryObservation = {
    target: 'db',
    kind: 'pgbackrest',
    rpoHours: 26,
    protection: { ok: true, how: 'encrypted (aes-256-cbc)' },
    groups: [{ label: '', describe: 'stanza main', newest: { id: '20261201-020000F', time: '2026-12-01T02:00:00.000Z' }, count: 3 }],
    checks: [{ name: 'pgbackrest verify', outcome: 'pass', message: 'status: ok', readsContent: true }],
    notes: [],
  };
  const cases: Array<{ name: string; o: Partial<RepositoryObservation>; outcome: string; level: number; says?: RegExp }> = [
    { name: 'fresh, encrypted, content verified: L3 pass', o: {}, outcome: 'pass', level: 3, says: /10 h old \(RPO 26 h\); pgbackrest verify: no errors; L3 backup content is intact/ },
    { name: 'unencrypted: L1, still a pass', o: { protection: { ok: false, how: 'not encrypted' } }, outcome: 'pass', level: 1 },
    { name: 'a structure-only check does not reach L3', o: { checks: [{ name: 'restic check', outcome: 'pass', message: 'ok', readsContent: false }] }, outcome: 'pass', level: 2 },
    {
      name: 'the newest backup flagged error fails even when young',
      o: { groups: [{ label: '', describe: 'stanza main', newest: { id: '20261201-020000F', time: '2026-12-01T02:00:00.000Z', error: 'pgBackRest flags it error: true' }, count: 3 }] },
      outcome: 'fail',
      level: 0,
      says: /newest backup 20261201-020000F \(2026-12-01T02:00:00.000Z\) failed: pgBackRest flags it error: true/,
    },
    {
      name: 'older than the RPO fails',
      o: { groups: [{ label: '', describe: 'stanza main', newest: { id: 'b', time: '2026-11-30T09:00:00.000Z' }, count: 1 }] },
      outcome: 'fail',
      level: 0,
      says: /newest backup b is 27 h old \(RPO 26 h/,
    },
    { name: 'a check that could not tell is unknown, not pass', o: { checks: [{ name: 'pgbackrest verify', outcome: 'unknown', message: 'no status line', readsContent: true }] }, outcome: 'unknown', level: 2 },
    { name: 'damage fails at L2', o: { checks: [{ name: 'pgbackrest verify', outcome: 'fail', message: 'status: error', readsContent: true }] }, outcome: 'fail', level: 2, says: /pgbackrest verify found damage: status: error/ },
    { name: 'an unreadable repository is unknown naming why', o: { accessProblem: 'wrong password' }, outcome: 'unknown', level: 0, says: /^wrong password$/ },
    { name: 'no backup at all fails', o: { groups: [] }, outcome: 'fail', level: 0, says: /no backup matches the repository/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const [f] = evaluateRepository({ ...base, ...c.o }, NOW);
      expect(f?.outcome).toBe(c.outcome);
      expect(f?.details?.level).toBe(c.level);
      if (c.says) expect(f?.message).toMatch(c.says);
    });
  }
});
