/**
 * evidence-cadence: record parsing and due dates, the pure verdict table-driven, then collect →
 * evaluate on a real local directory (links, FIFOs, caps) and on a GitHub repository path through
 * the real Octokit client against the local GitHub peer (contents API payloads from GitHub's
 * published examples).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resetGithubClientState } from '../../src/clients/github.js';
import { VigilConfig } from '../../src/config/schema.js';
import type { Finding } from '../../src/probe/contract.js';
import { runProbe } from '../../src/probe/runner.js';
import { startGithubPeer, type GithubPeer } from '../../test/helpers/github-peer.js';
import { cadenceTargets, evaluateCadence, probe, type CadenceObservation, type Params } from './probe.js';
import { dueDate, parseRecord, type RecordFields } from './record.js';

const log = pino({ level: 'silent' });
const NOW = new Date('2026-11-25T09:00:00Z');
const brief = (fs: Finding[]) => fs.map((f) => ({ resource: f.resource, outcome: f.outcome }));

function record(fields: Record<string, string | number>, body = '# Minutes\n\nAttendees: …\n'): string {
  return `---\n${Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join('\n')}\n---\n${body}`;
}
const access = { control: 'access-review', held: '2026-10-06', cadence: 'quarterly', owner: 'Dana Reyes (CISO)', evidence: 'https://drive.example.com/q3-access-review.pdf' };

describe('parseRecord', () => {
  it('reads the five fields; other keys are ignored', () => {
    expect(parseRecord(record({ ...access, title: 'Q3 access review' }))).toEqual({
      ok: true,
      record: { control: 'access-review', held: '2026-10-06', cadence: 'quarterly', owner: 'Dana Reyes (CISO)', evidence: 'https://drive.example.com/q3-access-review.pdf' },
    });
  });
  it('CRLF line endings and a byte-order mark are fine', () => {
    expect(parseRecord(`\ufeff${record(access).replace(/\n/g, '\r\n')}`)).toMatchObject({ ok: true, record: { control: 'access-review', held: '2026-10-06' } });
  });
  it('a number of days is a cadence, also when quoted', () => {
    expect(parseRecord(record({ ...access, cadence: 30 }))).toMatchObject({ ok: true, record: { cadence: 30 } });
    expect(parseRecord(record({ ...access, cadence: '"45"' }))).toMatchObject({ ok: true, record: { cadence: 45 } });
  });
  const bad: Array<{ name: string; text: string; problem: string }> = [
    { name: 'a missing owner', text: record({ control: 'access-review', held: '2026-10-06', cadence: 'quarterly', evidence: 'x.pdf' }), problem: 'field "owner" is missing' },
    { name: 'a date that does not exist', text: record({ ...access, held: '2026-02-30' }), problem: 'field "held": expected a date that exists (YYYY-MM-DD)' },
    { name: 'a date in another format', text: record({ ...access, held: '06/10/2026' }), problem: 'field "held": expected a date YYYY-MM-DD' },
    { name: 'an unknown cadence', text: record({ ...access, cadence: 'biweekly' }), problem: 'field "cadence"' },
    { name: 'a javascript: evidence link', text: record({ ...access, evidence: 'javascript:alert(1)' }), problem: 'field "evidence": expected an http(s) link or a relative path' },
    { name: 'no front matter', text: '# Q3 access review\n', problem: 'no YAML front matter' },
    { name: 'broken YAML', text: '---\ncontrol: [access\n---\n', problem: 'front matter is not valid YAML' },
    { name: 'a duplicate key', text: record({ ...access }).replace('owner:', 'control: again\nowner:'), problem: 'front matter is not valid YAML (duplicate_key)' },
    { name: 'a __proto__ key', text: record({ ...access, __proto__: 'x' } as Record<string, string>).replace('---\ncontrol', '---\n__proto__: x\ncontrol'), problem: 'field "__proto__" is not allowed' },
    { name: 'a list instead of a mapping', text: '---\n- a\n- b\n---\n', problem: 'front matter is not a mapping' },
  ];
  for (const c of bad) {
    it(`names the problem: ${c.name}`, () => {
      const got = parseRecord(c.text);
      expect(got.ok).toBe(false);
      expect(got.ok ? '' : got.problem).toContain(c.problem);
    });
  }
});

describe('dueDate', () => {
  it.each([
    ['2026-01-31', 'monthly', '2026-02-28'],
    ['2026-11-30', 'quarterly', '2027-02-28'],
    ['2024-02-29', 'yearly', '2025-02-28'],
    ['2026-10-06', 'quarterly', '2027-01-06'],
    ['2026-10-06', 90, '2027-01-04'],
  ] as const)('%s held %s is due %s', (held, cadence, due) => {
    expect(dueDate(held, cadence)).toBe(due);
  });
});

describe('evaluate', () => {
  const rec = (over: Partial<RecordFields> = {}, file = '2026-q3-access.md') => ({ file, record: { ...access, cadence: 'quarterly' as const, ...over } });
  const obs = (over: Partial<CadenceObservation>): CadenceObservation => ({ source: 'gov', where: '/srv/evidence', records: [], invalid: [], required: [], graceDays: 14, ...over });
  const cases: Array<{ name: string; o: CadenceObservation; want: Array<Pick<Finding, 'resource' | 'outcome'>>; says?: string }> = [
    { name: 'the newest record within its cadence passes', o: obs({ records: [rec()] }), want: [{ resource: 'gov/access-review', outcome: 'pass' }], says: 'access-review (quarterly) was held on 2026-10-06 (owner Dana Reyes (CISO)); next due 2027-01-06' },
    {
      name: 'overdue past the grace fails naming the cadence and how late',
      o: obs({ records: [rec({ held: '2026-06-02' })] }),
      want: [{ resource: 'gov/access-review', outcome: 'fail' }],
      says: 'access-review (quarterly) was last held on 2026-06-02; it was due on 2026-09-02 and is 84 days overdue (grace 14 days)',
    },
    { name: 'overdue within the grace still passes, and says so', o: obs({ records: [rec({ held: '2026-08-15' })] }), want: [{ resource: 'gov/access-review', outcome: 'pass' }], says: '10 days ago, within the 14-day grace' },
    { name: 'only the newest record of a review counts', o: obs({ records: [rec({ held: '2025-01-10' }, 'old.md'), rec()] }), want: [{ resource: 'gov/access-review', outcome: 'pass' }] },
    {
      name: 'a required review without any record fails',
      o: obs({ records: [rec()], required: [{ control: 'board-review', cadence: 'yearly' }] }),
      want: [{ resource: 'gov/access-review', outcome: 'pass' }, { resource: 'gov/board-review', outcome: 'fail' }],
      says: 'no evidence record of board-review in /srv/evidence (required yearly)',
    },
    {
      name: 'a required cadence stricter than the record’s applies',
      o: obs({ records: [rec({ held: '2026-03-01', cadence: 'yearly' })], required: [{ control: 'access-review', cadence: 'quarterly' }] }),
      want: [{ resource: 'gov/access-review', outcome: 'fail' }],
      says: 'access-review (quarterly)',
    },
    {
      name: 'a record dated in the future is unknown, and the review is judged on the others',
      o: obs({ records: [rec({ held: '2026-12-01' }, 'next.md'), rec()] }),
      want: [{ resource: 'gov:next.md', outcome: 'unknown' }, { resource: 'gov/access-review', outcome: 'pass' }],
      says: 'evidence record next.md says access-review was held on 2026-12-01, in the future',
    },
    {
      name: 'a malformed record is unknown naming the file and the field',
      o: obs({ records: [rec()], invalid: [{ file: 'q2/board.md', problem: 'field "held" is missing' }] }),
      want: [{ resource: 'gov:q2/board.md', outcome: 'unknown' }, { resource: 'gov/access-review', outcome: 'pass' }],
      says: 'evidence record q2/board.md cannot be used: field "held" is missing',
    },
    { name: 'an empty source is unknown, never green', o: obs({}), want: [{ resource: 'gov', outcome: 'unknown' }] },
    { name: 'an unreadable source is unknown naming why', o: obs({ unreadable: 'cannot open the directory (ENOENT)' }), want: [{ resource: 'gov', outcome: 'unknown' }], says: 'ENOENT' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = evaluateCadence(c.o, NOW);
      expect(brief(got)).toEqual(c.want);
      if (c.says) expect(got.map((f) => f.message).join('\n')).toContain(c.says);
    });
  }
});

describe('params and targets', () => {
  it('a relative dir is refused naming the key', () => {
    const got = probe.params.safeParse({ sources: [{ name: 'gov', dir: 'evidence' }] });
    expect(got.success).toBe(false);
    expect(got.error?.issues[0]).toMatchObject({ path: ['sources', 0, 'dir'], message: 'expected an absolute directory path' });
  });
  it('each source is a target; a GitHub source carries its github[] target', () => {
    const config = VigilConfig.parse({
      github: [{ name: 'gh', repos: ['acme/compliance'], auth: { token: { env: 'T' } } }],
      probes: { 'evidence-cadence': { params: { sources: [{ name: 'local', dir: '/srv/evidence' }, { name: 'repo', github: 'gh', repo: 'acme/compliance', path: 'reviews' }] } } },
    });
    const targets = cadenceTargets(config);
    expect(targets.map((t) => t.name)).toEqual(['local', 'repo']);
    expect(targets[1]?.spec).toMatchObject({ kind: 'github', github: { name: 'gh' } });
  });
});

async function run(source: Record<string, unknown>, params: Record<string, unknown> = {}, config: Record<string, unknown> = {}) {
  const p: Params = probe.params.parse({ sources: [source], ...params });
  const cfg = VigilConfig.parse({ ...config, probes: { 'evidence-cadence': { params: { sources: [source], ...params } } } });
  const [target] = cadenceTargets(cfg);
  if (!target) throw new Error('no target');
  const outcome = await runProbe({ probe, target, params: p, runId: 'run-cadence', scheduledFor: NOW, timeoutMs: 20_000, log, now: () => NOW });
  return outcome.result;
}

describe('collect → evaluate on a local directory', () => {
  let root: string;
  let dir: string;
  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'vigil-cadence-'));
    dir = path.join(root, 'evidence');
    mkdirSync(path.join(dir, '2026'), { recursive: true });
    writeFileSync(path.join(dir, '2026', 'q3-access-review.md'), record(access));
    writeFileSync(path.join(dir, '2026', 'q1-management-review.md'), record({ control: 'management-review', held: '2026-03-20', cadence: 'quarterly', owner: 'COO', evidence: 'minutes/2026-q1.pdf' }));
    writeFileSync(path.join(dir, 'board-2025.md'), record({ control: 'board-review', held: '2025-12-09', cadence: 'yearly', owner: 'CEO', evidence: 'https://board.example.com/2025' }));
    writeFileSync(path.join(dir, 'risk.md'), record({ control: 'risk-assessment', held: '2026-02-10', cadence: 'yearly', evidence: 'https://grc.example.com/ra-2026' }));
    writeFileSync(path.join(dir, 'README.md'), '# How to file a record\n');
    writeFileSync(path.join(dir, 'notes.txt'), 'not a record');
    writeFileSync(path.join(root, 'outside.md'), record({ ...access, control: 'planted', held: '2026-11-01' }));
    symlinkSync(path.join(root, 'outside.md'), path.join(dir, 'planted.md'));
    symlinkSync(path.join(dir, 'board-2025.md'), path.join(dir, 'board-latest.md'));
    execFileSync('mkfifo', [path.join(dir, 'pipe.md')]);
    writeFileSync(path.join(dir, 'huge.md'), record(access, 'x'.repeat(300 * 1024)));
  });
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('judges every review, reports every unusable file, never follows a link out or blocks on a FIFO', async () => {
    const result = await run({ name: 'gov', dir });
    expect(result.error).toBeUndefined();
    expect(brief(result.findings)).toEqual([
      { resource: 'gov:huge.md', outcome: 'unknown' },
      { resource: 'gov:pipe.md', outcome: 'unknown' },
      { resource: 'gov:planted.md', outcome: 'unknown' },
      { resource: 'gov:risk.md', outcome: 'unknown' },
      { resource: 'gov/access-review', outcome: 'pass' },
      { resource: 'gov/board-review', outcome: 'pass' },
      { resource: 'gov/management-review', outcome: 'fail' },
    ]);
    const says = Object.fromEntries(result.findings.map((f) => [f.resource, f.message]));
    expect(says['gov:huge.md']).toContain('larger than maxFileBytes (262144 bytes)');
    expect(says['gov:pipe.md']).toContain('not a regular file');
    expect(says['gov:planted.md']).toContain('a symbolic link to outside the evidence directory: not followed');
    expect(says['gov:risk.md']).toContain('field "owner" is missing');
    expect(says['gov/management-review']).toBe(
      'management-review (quarterly) was last held on 2026-03-20; it was due on 2026-06-20 and is 158 days overdue (grace 14 days): COO should hold it and add the record',
    );
    // The link inside the directory is read as a second record of the board review.
    expect(result.findings.find((f) => f.resource === 'gov/board-review')?.details?.records).toBe(2);
  });

  it('graceDays per source and a required review without records', async () => {
    const result = await run({ name: 'gov', dir, graceDays: 200, required: [{ control: 'pentest', cadence: 'yearly' }] });
    expect(result.findings.find((f) => f.resource === 'gov/management-review')?.outcome).toBe('pass');
    expect(result.findings.find((f) => f.resource === 'gov/pentest')).toMatchObject({ outcome: 'fail', message: expect.stringContaining('no evidence record of pentest') });
  });

  it('a missing directory is unknown', async () => {
    const result = await run({ name: 'gov', dir: path.join(root, 'nope') });
    expect(result.findings).toEqual([{ resource: 'gov', outcome: 'unknown', message: `cannot read the evidence records of gov (${path.join(root, 'nope')}): cannot open the directory (ENOENT)` }]);
  });

  it('more files than maxFiles is unknown for the source, not a partial verdict', async () => {
    const result = await run({ name: 'gov', dir }, { maxFiles: 2 });
    expect(brief(result.findings)).toEqual([{ resource: 'gov', outcome: 'unknown' }]);
    expect(result.findings[0]?.message).toContain('more than maxFiles (2) record files');
  });
});

describe('collect → evaluate on a GitHub repository path', () => {
  let peer: GithubPeer;
  const TOKEN = 'ghp_cadence_token_01';
  beforeAll(async () => {
    peer = await startGithubPeer();
    peer.addToken(TOKEN, { login: 'vigil-bot', repoPermission: 'read', scopes: 'repo' });
    peer.addOrg({
      login: 'acme',
      repos: [
        {
          name: 'compliance',
          private: true,
          branches: ['main', 'archive'],
          files: {
            'README.md': '# Compliance evidence\n',
            'reviews/README.md': 'How to add a record',
            'reviews/2026/q3-access-review.md': record(access),
            'reviews/2026/q2-access-review.md': record({ ...access, held: '2026-07-01' }),
            'reviews/management/2026-q1.md': record({ control: 'management-review', held: '2026-03-20', cadence: 'quarterly', owner: 'COO', evidence: 'minutes/2026-q1.pdf' }),
            'reviews/board-2025.md': record({ control: 'board-review', held: '2025-12-09', cadence: 'yearly', owner: 'CEO', evidence: 'https://board.example.com/2025' }).replace('held: 2025-12-09\n', ''),
            'policies/infosec.md': '# Policy',
          },
        },
      ],
    });
  });
  afterAll(async () => {
    await peer?.close();
  });
  beforeEach(() => {
    peer.reset();
    resetGithubClientState();
  });
  const github = () => [{ name: 'gh', repos: ['acme/compliance'], apiUrl: peer.apiUrl, allowInsecureHttp: true, auth: { token: { env: 'GH_CADENCE' } } }];
  async function runGithub(source: Record<string, unknown>) {
    process.env.GH_CADENCE = TOKEN;
    try {
      return await run({ name: 'repo', github: 'gh', repo: 'acme/compliance', ...source }, {}, { github: github() });
    } finally {
      delete process.env.GH_CADENCE;
    }
  }

  it('reads the records under the path through the contents API: on time, overdue, malformed', async () => {
    const result = await runGithub({ path: 'reviews' });
    expect(result.error).toBeUndefined();
    expect(brief(result.findings)).toEqual([
      { resource: 'repo:board-2025.md', outcome: 'unknown' },
      { resource: 'repo/access-review', outcome: 'pass' },
      { resource: 'repo/management-review', outcome: 'fail' },
    ]);
    expect(result.findings[0]?.message).toBe('evidence record board-2025.md cannot be used: field "held" is missing; fix the file\'s front matter');
    expect(result.findings[1]?.details).toMatchObject({ file: '2026/q3-access-review.md', records: 2 });
    expect(result.findings[2]?.message).toContain('158 days overdue');
    // Listings of reviews/, reviews/2026, reviews/management, then one request per record (README skipped by name, policies/ never listed).
    expect(peer.requests.map((r) => decodeURIComponent(r.path))).toEqual([
      '/repos/acme/compliance/contents/reviews',
      '/repos/acme/compliance/contents/reviews/2026',
      '/repos/acme/compliance/contents/reviews/2026/q2-access-review.md',
      '/repos/acme/compliance/contents/reviews/2026/q3-access-review.md',
      '/repos/acme/compliance/contents/reviews/board-2025.md',
      '/repos/acme/compliance/contents/reviews/management',
      '/repos/acme/compliance/contents/reviews/management/2026-q1.md',
    ]);
  });

  it('a ref that does not exist is unknown naming the source', async () => {
    const result = await runGithub({ path: 'reviews', ref: 'nope' });
    expect(result.findings).toEqual([
      { resource: 'repo', outcome: 'unknown', message: expect.stringContaining('cannot read the evidence records of repo (acme/compliance:reviews@nope): GitHub answered 404') },
    ]);
  });

  it('a source naming no github[] target is a run error naming the key path', async () => {
    const result = await run({ name: 'repo', github: 'other', repo: 'acme/compliance' }, {}, { github: github() });
    expect(result.error?.message).toContain('probes.evidence-cadence.params.sources[0].github: no github[] target is named "other"');
    expect(result.findings).toEqual([]);
  });
});
