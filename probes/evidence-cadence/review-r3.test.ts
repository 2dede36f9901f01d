/**
 * Review R3 of evidence-cadence: unbounded walks through directory links (local) and GitHub's
 * silent 1,000-entry cut of a contents listing (through the real Octokit against the local peer).
 */
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

const log = pino({ level: 'silent' });
const NOW = new Date('2026-11-25T09:00:00Z');
const brief = (fs: Finding[]) => fs.map((f) => ({ resource: f.resource, outcome: f.outcome }));
const record = `---\ncontrol: access-review\nheld: 2026-10-06\ncadence: quarterly\nowner: CISO\nevidence: https://drive.example.com/q3.pdf\n---\n# Q3\n`;

async function run(source: Record<string, unknown>, params: Record<string, unknown> = {}, config: Record<string, unknown> = {}) {
  const p: Params = probe.params.parse({ sources: [source], ...params });
  const cfg = VigilConfig.parse({ ...config, probes: { 'evidence-cadence': { params: { sources: [source], ...params } } } });
  const [target] = cadenceTargets(cfg);
  if (!target) throw new Error('no target');
  return (await runProbe({ probe, target, params: p, runId: 'run-r3', scheduledFor: NOW, timeoutMs: 20_000, log, now: () => NOW })).result;
}

describe('local directory: links back into the tree (review R3)', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'vigil-r3-cadence-'));
    mkdirSync(path.join(root, 'sub'));
    writeFileSync(path.join(root, 'q3.md'), record);
    // Links to the root and to a sibling: each walk level would multiply the tree by 8.
    for (let i = 0; i < 6; i++) symlinkSync(root, path.join(root, `loop${i}`));
    symlinkSync(path.join(root, 'sub'), path.join(root, 'sub-again'));
    symlinkSync(path.join(root, 'sub'), path.join(root, 'sub', 'self'));
  });
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('each directory is walked once: one record, not 6^5 copies of it (nor "more than maxFiles")', async () => {
    const t0 = performance.now();
    const result = await run({ name: 'gov', dir: root }, { maxFiles: 50 });
    expect(result.error).toBeUndefined();
    expect(brief(result.findings)).toEqual([{ resource: 'gov/access-review', outcome: 'pass' }]);
    expect(result.findings[0]?.details).toMatchObject({ file: 'q3.md', records: 1 });
    expect(performance.now() - t0).toBeLessThan(5_000);
  });
});

describe('GitHub path: a directory listing at the contents API limit (review R3)', () => {
  let peer: GithubPeer;
  const TOKEN = 'ghp_r3_cadence_token';
  beforeAll(async () => {
    peer = await startGithubPeer();
    peer.addToken(TOKEN, { login: 'vigil-bot', repoPermission: 'read', scopes: 'repo' });
    const files: Record<string, string> = { 'reviews/2026-q3-access-review.md': record };
    // 999 attachments next to the record: GitHub lists 1,000 entries and silently drops the rest.
    for (let i = 0; i < 999; i++) files[`reviews/attachment-${String(i).padStart(4, '0')}.pdf`] = 'x';
    files['small/2026-q3-access-review.md'] = record;
    files['racy/q3.md'] = record;
    // Listed as a directory (racy/2026/ has a file) but read back as a file: as if replaced between the two requests.
    files['racy/2026'] = 'now a file';
    files['racy/2026/q4.md'] = record;
    peer.addOrg({ login: 'acme', repos: [{ name: 'compliance', private: true, branches: ['main'], files }] });
  });
  afterAll(async () => {
    await peer?.close();
  });
  beforeEach(() => {
    peer.reset();
    resetGithubClientState();
  });
  async function runGithub(p: string) {
    const github = [{ name: 'gh', repos: ['acme/compliance'], apiUrl: peer.apiUrl, allowInsecureHttp: true, auth: { token: { env: 'GH_R3_CADENCE' } } }];
    process.env.GH_R3_CADENCE = TOKEN;
    try {
      return await run({ name: 'repo', github: 'gh', repo: 'acme/compliance', path: p }, {}, { github });
    } finally {
      delete process.env.GH_R3_CADENCE;
    }
  }

  it('1,000 entries may be a cut listing: the source is unknown, not judged on what was listed', async () => {
    const result = await runGithub('reviews');
    expect(brief(result.findings)).toEqual([{ resource: 'repo', outcome: 'unknown' }]);
    expect(result.findings[0]?.message).toContain("reviews has 1000 or more entries, and GitHub's contents API lists at most 1000");
  });

  it('a directory that reads back as something else is reported, not skipped', async () => {
    const result = await runGithub('racy');
    expect(brief(result.findings)).toEqual([
      { resource: 'repo:2026', outcome: 'unknown' },
      { resource: 'repo/access-review', outcome: 'pass' },
    ]);
    expect(result.findings[0]?.message).toContain('listed as a directory, but GitHub now returns a file: not read');
  });

  it('a small directory is still judged', async () => {
    const result = await runGithub('small');
    expect(brief(result.findings)).toEqual([{ resource: 'repo/access-review', outcome: 'pass' }]);
  });
});

describe('"today" is a day in the configured time zone (review R3)', () => {
  // 07:00 in Tokyo on 25 November is still 24 November in UTC.
  const tokyoMorning = new Date('2026-11-24T22:00:00Z');
  const obs = (timezone?: string): CadenceObservation => ({
    source: 'gov',
    where: '/srv/evidence',
    records: [{ file: 'q4.md', record: { control: 'access-review', held: '2026-11-25', cadence: 'quarterly', owner: 'CISO', evidence: 'https://x.example/q4' } }],
    invalid: [],
    required: [],
    graceDays: 14,
    ...(timezone !== undefined ? { timezone } : {}),
  });

  it('a review held today in Tokyo is not "in the future" at 07:00 Tokyo time', () => {
    expect(brief(evaluateCadence(obs('Asia/Tokyo'), tokyoMorning))).toEqual([{ resource: 'gov/access-review', outcome: 'pass' }]);
  });
  it('without a time zone (earlier observations) the day is UTC, as before', () => {
    expect(brief(evaluateCadence(obs(), tokyoMorning))).toEqual([{ resource: 'gov:q4.md', outcome: 'unknown' }]);
  });
  it('targets carry the config timezone to collect', () => {
    const cfg = VigilConfig.parse({ timezone: 'Asia/Tokyo', probes: { 'evidence-cadence': { params: { sources: [{ name: 'gov', dir: '/srv/evidence' }] } } } });
    expect(cadenceTargets(cfg)[0]?.spec).toMatchObject({ kind: 'local', timezone: 'Asia/Tokyo' });
  });
  it('collect hands the time zone to evaluate', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vigil-r3-tz-'));
    try {
      writeFileSync(path.join(dir, 'q4.md'), record.replace('held: 2026-10-06', 'held: 2026-11-25'));
      const source = { name: 'gov', dir };
      const p: Params = probe.params.parse({ sources: [source] });
      const cfg = VigilConfig.parse({ timezone: 'Asia/Tokyo', probes: { 'evidence-cadence': { params: { sources: [source] } } } });
      const [target] = cadenceTargets(cfg);
      const { result } = await runProbe({ probe, target: target!, params: p, runId: 'run-r3-tz', scheduledFor: tokyoMorning, timeoutMs: 20_000, log, now: () => tokyoMorning });
      expect(brief(result.findings)).toEqual([{ resource: 'gov/access-review', outcome: 'pass' }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
