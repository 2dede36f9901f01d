import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderHtml, renderMarkdown, renderText, subjectLine } from '../src/posture/render.js';
import type { Snapshot, SnapshotControl, SnapshotDiff } from '../src/posture/snapshot-types.js';
import { launchBrowser, renderPage } from './helpers/browser.js';
import { sampleControl, sampleSnapshot } from './helpers/snapshots.js';

const date = '2026-11-21';
const prevHash = 'a'.repeat(64);
const hostile = '<img src=x onerror=alert(1)>';

function greens(n: number, prefix = 'green'): SnapshotControl[] {
  return Array.from({ length: n }, (_, i) => sampleControl({ id: `${prefix}-${i + 1}` }));
}

function red(id: string, failing: SnapshotControl['failing'] = []): SnapshotControl {
  return sampleControl({ id, verdict: 'red', streak: 0, greenSince: null, thirtyDayGreen: false, reasons: ['a finding is red'], failing });
}

function unknown(id: string): SnapshotControl {
  return sampleControl({ id, verdict: 'unknown', streak: 0, greenSince: null, thirtyDayGreen: false, reasons: ['github-branch-protection/acme: stale (last run 2026-11-20T03:00:00.000Z)'] });
}

function diff(over: Partial<SnapshotDiff>): SnapshotDiff {
  return { since: '2026-11-20', newReds: [], recoveries: [], reachedThirtyDays: [], leftFeed: [], ...over };
}

/** A realistic bad day: 12 green, one new red with failing resources (one hostile), one unknown. */
function badDay(): Snapshot {
  const controls = [
    ...greens(11),
    sampleControl({ id: 'tls-certificates', title: 'TLS certificates are valid & strong', streak: 30, greenSince: '2026-10-23' }),
    red('mfa-human-accounts', [
      { probe: 'aws-iam-user-mfa', target: 'prod', resource: 'alice', message: 'User alice has no MFA: enable a hardware key in IAM > Security credentials' },
      { probe: 'aws-iam-user-mfa', target: 'prod', resource: hostile, message: 'User has no MFA: enable it' },
    ]),
    unknown('branch-protection'),
  ];
  controls[12] = { ...controls[12]!, title: 'Human accounts use MFA' };
  controls[13] = { ...controls[13]!, title: 'Default branches are protected' };
  return sampleSnapshot(date, controls, prevHash, {
    diff: diff({ newReds: ['mfa-human-accounts'], recoveries: ['green-3'], reachedThirtyDays: ['tls-certificates'], leftFeed: ['mfa-human-accounts'] }),
    probeHealth: [
      { probe: 'tls-certificate-posture', target: 'public-web', runs: 96, errors: 0, unknown: 0, red: 0, lastRunAt: `${date}T23:45:02.000Z`, stale: false, sourceFreshness: null, lastError: null },
      { probe: 'github-branch-protection', target: 'acme', runs: 0, errors: 3, unknown: 0, red: 0, lastRunAt: null, stale: true, sourceFreshness: '2026-11-20T03:00:00.000Z', lastError: 'GitHub answered 403: token lacks administration:read' },
    ],
    coverage: {
      soc2: [
        { id: 'CC6.1', status: 'measured', controls: ['tls-certificates'] },
        { id: 'CC6.6', status: 'partly_measured', controls: ['mfa-human-accounts', 'branch-protection'] },
        { id: 'CC8.1', status: 'not_measured', controls: ['branch-protection'] },
      ],
      iso27001: [{ id: 'A.8.24', status: 'measured', controls: ['tls-certificates'] }],
    },
  });
}

describe('subjectLine', () => {
  const cases: Array<{ name: string; snapshot: Snapshot; subject: string }> = [
    { name: 'all green: only the green count', snapshot: sampleSnapshot(date, greens(5)), subject: 'vigil 2026-11-21: 5 green' },
    {
      name: 'one new red and one unknown',
      snapshot: sampleSnapshot(date, [...greens(12), red('mfa'), unknown('bp')], null, { diff: diff({ newReds: ['mfa'] }) }),
      subject: 'vigil 2026-11-21: 12 green · 1 red (new) · 1 unknown',
    },
    {
      name: 'two red of which one is new',
      snapshot: sampleSnapshot(date, [...greens(3), red('mfa'), red('backups')], null, { diff: diff({ newReds: ['backups'] }) }),
      subject: 'vigil 2026-11-21: 3 green · 2 red (1 new)',
    },
    {
      name: 'two red, both new',
      snapshot: sampleSnapshot(date, [...greens(3), red('mfa'), red('backups')], null, { diff: diff({ newReds: ['mfa', 'backups'] }) }),
      subject: 'vigil 2026-11-21: 3 green · 2 red (new)',
    },
    {
      name: 'a red that was already red is not new',
      snapshot: sampleSnapshot(date, [...greens(2), red('mfa')]),
      subject: 'vigil 2026-11-21: 2 green · 1 red',
    },
    {
      name: 'no green at all still says 0 green',
      snapshot: sampleSnapshot(date, [unknown('a'), unknown('b')]),
      subject: 'vigil 2026-11-21: 0 green · 2 unknown',
    },
    {
      name: 'recoveries, reached 30 days and left the feed are appended',
      snapshot: sampleSnapshot(date, [...greens(4), red('mfa')], null, {
        diff: diff({ recoveries: ['green-1'], reachedThirtyDays: ['green-2', 'green-3'], leftFeed: ['mfa'] }),
      }),
      subject: 'vigil 2026-11-21: 4 green · 1 red · 1 recovered · 2 reached 30 days · 1 left the feed',
    },
  ];
  it.each(cases)('$name', ({ snapshot, subject }) => {
    expect(subjectLine(snapshot)).toBe(subject);
  });

  it('stays under 120 characters on a large, eventful day', () => {
    const controls = [...greens(480), ...Array.from({ length: 12 }, (_, i) => red(`r-${i}`)), ...Array.from({ length: 40 }, (_, i) => unknown(`u-${i}`))];
    const s = sampleSnapshot(date, controls, null, {
      diff: diff({ newReds: ['r-1', 'r-2', 'r-3'], recoveries: ['green-1', 'green-2'], reachedThirtyDays: ['green-5'], leftFeed: ['r-1', 'r-2', 'r-3'] }),
    });
    const subject = subjectLine(s);
    expect(subject).toBe('vigil 2026-11-21: 480 green · 12 red (3 new) · 40 unknown · 2 recovered · 1 reached 30 days · 3 left the feed');
    expect(subject.length).toBeLessThan(120);
  });
});

describe('renderHtml', () => {
  const s = badDay();
  const html = renderHtml(s, { organization: 'Acme <Corp> & "Sons"' });

  it('shows hostile resource names, titles and organisation names as text', () => {
    const nasty = sampleSnapshot(date, [
      sampleControl({ id: 'x', title: '</td></tr><script>alert(1)</script>', verdict: 'red', failing: [{ probe: 'p', target: 't', resource: hostile, message: '<a href="http://evil.example">click</a>' }] }),
    ]);
    const out = renderHtml(nasty, { organization: '<b onmouseover=alert(1)>Acme</b>' });
    expect(out).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(out).toContain('&lt;/td&gt;&lt;/tr&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(out).toContain('&lt;a href=&quot;http://evil.example&quot;&gt;click&lt;/a&gt;');
    expect(out).toContain('&lt;b onmouseover=alert(1)&gt;Acme&lt;/b&gt;');
    expect(out).not.toMatch(/<img|<script|<a |<b /i);
  });

  it('has no script, no external resource, no stylesheet: inline styles only', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/src="http/i);
    expect(html).not.toMatch(/url\(|@import|expression\(/i);
    // Text is escaped, so every "<" opens a real tag: only plain layout elements, and no attribute
    // that loads, links, runs or refers to a stylesheet — styling lives in style="…" alone.
    const tags = Array.from(html.matchAll(/<(\/?)([a-z][a-z0-9]*)([^>]*)>/gi), (m) => ({ name: m[2]!.toLowerCase(), attrs: m[3]! }));
    const elements = new Set(['html', 'head', 'meta', 'title', 'body', 'table', 'tr', 'td', 'th', 'p', 'h1', 'h2', 'h3', 'strong', 'em', 'span', 'code', 'br', 'hr']);
    const attributes = new Set(['lang', 'charset', 'name', 'content', 'style', 'role', 'width', 'cellpadding', 'cellspacing', 'border', 'align', 'colspan']);
    expect(tags.length).toBeGreaterThan(100);
    for (const tag of tags) {
      expect(elements, `<${tag.name}>`).toContain(tag.name);
      // Every attribute is name="value"; nothing else may be left in the tag.
      expect(tag.attrs.replace(/\s([a-z-]+)="[^"]*"/gi, '').trim(), `<${tag.name}${tag.attrs}>`).toBe('');
      for (const [, attr] of tag.attrs.matchAll(/\s([a-z-]+)="[^"]*"/gi)) expect(attributes, `${tag.name} ${attr}=`).toContain(attr!.toLowerCase());
    }
    const styled = tags.filter((t) => /\sstyle="[^"]+"/.test(t.attrs));
    expect(styled.length).toBeGreaterThan(50);
  });

  it('is a complete document', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('<meta charset="utf-8">');
    expect(html.trimEnd().endsWith('</html>')).toBe(true);
  });

  it('puts the hash chain and the signature state in the footer', () => {
    expect(html).toContain(s.hash);
    expect(html).toContain(prevHash);
    expect(html).toContain('Not signed.');
    const signed = renderHtml({ ...s, signature: 'c2ln', signedBy: 'f'.repeat(64) }, { organization: 'Acme' });
    expect(signed).toContain(`fingerprint ${'f'.repeat(64)}`);
    expect(signed).not.toContain('Not signed.');
    const first = renderHtml(sampleSnapshot(date, greens(1)), { organization: 'Acme' });
    expect(first).toContain('none (first snapshot of the archive)');
    expect(first).toContain('First snapshot in the archive: nothing to compare with.');
  });

  it('lists red controls before unknown and green ones', () => {
    const iRed = html.indexOf('mfa-human-accounts</code>');
    const iUnknown = html.indexOf('branch-protection</code>');
    const iGreen = html.indexOf('green-1</code>');
    expect(iRed).toBeGreaterThan(0);
    expect(iRed).toBeLessThan(iUnknown);
    expect(iUnknown).toBeLessThan(iGreen);
  });

  it('caps failing resources per control and points to the JSON for the rest', () => {
    const many = Array.from({ length: 5 }, (_, i) => ({ probe: 'p', target: 't', resource: `res-${i}`, message: 'fix it' }));
    const out = renderHtml(sampleSnapshot(date, [red('r', many)]), { organization: 'Acme', maxResourcesPerControl: 3 });
    expect(out).toContain('res-2');
    expect(out).not.toContain('res-3');
    expect(out).toContain('…and 2 more failing resources');
  });

  describe('in a real browser', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchBrowser();
    });
    afterAll(async () => {
      await browser?.close();
    });

    it('shows every control, the failing resources and the headline counts', async () => {
      const { visibleText, screenshot } = await renderPage(browser, { html }, 'email-snapshot');
      for (const c of s.controls) expect(visibleText).toContain(c.title);
      expect(visibleText).toContain('alice');
      expect(visibleText).toContain('User alice has no MFA: enable a hardware key in IAM > Security credentials');
      // The hostile name is visible as literal text, so the browser did not parse it as an element.
      expect(visibleText).toContain(hostile);
      expect(visibleText).toContain('Acme <Corp> & "Sons"');
      expect(visibleText).toContain('12 green · 1 red (new) · 1 unknown · 1 recovered · 1 reached 30 days · 1 left the feed');
      for (const word of ['✓ GREEN', '✗ RED', '? UNKNOWN']) expect(visibleText).toContain(word);
      expect(visibleText).toContain('GitHub answered 403: token lacks administration:read');
      expect(visibleText).toContain('partly measured');
      expect(visibleText).toContain(s.hash);
      expect(screenshot).toMatch(/test-artifacts\/email-snapshot\.png$/);
    });
  });
});

describe('renderMarkdown and renderText', () => {
  const s = badDay();
  const md = renderMarkdown(s, { organization: 'Acme' });
  const text = renderText(s, { organization: 'Acme' });

  it.each([
    ['markdown', md],
    ['text', text],
  ])('%s carries every control, failing resource, message, change, probe and requirement', (_name, out) => {
    for (const c of s.controls) expect(out).toContain(c.id);
    expect(out).toContain('alice');
    expect(out).toContain(hostile);
    expect(out).toContain('12 green · 1 red (new) · 1 unknown · 1 recovered · 1 reached 30 days · 1 left the feed');
    expect(out).toContain('RED');
    expect(out).toContain('UNKNOWN');
    expect(out).toContain('2026-10-23');
    expect(out).toContain('github-branch-protection');
    expect(out).toContain('STALE');
    expect(out).toContain('2026-11-20T03:00:00.000Z');
    for (const id of ['CC6.1', 'CC6.6', 'CC8.1', 'A.8.24']) expect(out).toContain(id);
    expect(out).toContain('1 measured · 1 partly measured · 1 not measured');
    expect(out).toContain(s.hash);
    expect(out).toContain(prevHash);
    expect(out).toContain('Not signed.');
  });

  it('text shows remediation messages verbatim', () => {
    expect(text).toContain('alice [aws-iam-user-mfa / prod]: User alice has no MFA: enable a hardware key in IAM > Security credentials');
    expect(text).toContain('last error: GitHub answered 403: token lacks administration:read');
    expect(text).toContain('Recovered:\n  - green-3');
  });

  it('markdown escapes free text and keeps names in code spans, so no raw HTML survives', () => {
    expect(md).toContain(`\`${hostile}\``);
    expect(md).toContain('User alice has no MFA: enable a hardware key in IAM \\> Security credentials');
    const outsideCode = md.replace(/(`+)[^`]*?\1/g, '');
    expect(outsideCode).not.toMatch(/(^|[^\\])</);
    const nasty = renderMarkdown(sampleSnapshot(date, [sampleControl({ id: 'x', title: '[click](http://evil.example) <script>' })]));
    expect(nasty).toContain('\\[click\\](http://evil.example) \\<script\\>');
  });

  it('a newline in a resource name cannot forge a line', () => {
    const forged = sampleSnapshot(date, [red('r', [{ probe: 'p', target: 't', resource: 'evil\n[✓ GREEN] All good (r)', message: 'm\r\nfix' }])]);
    const out = renderText(forged);
    expect(out.split('\n').filter((l) => l.startsWith('[✓ GREEN]'))).toEqual([]);
    expect(out).toContain('evil\uFFFD[✓ GREEN] All good (r)');
    expect(renderMarkdown(forged).split('\n').some((l) => l.startsWith('[✓ GREEN]'))).toBe(false);
  });
});
