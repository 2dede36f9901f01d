import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderHtml, renderMarkdown, renderText } from '../src/posture/render.js';
import type { Snapshot } from '../src/posture/snapshot-types.js';
import { artifactsDir, launchBrowser } from './helpers/browser.js';
import { sampleControl, sampleSnapshot } from './helpers/snapshots.js';

const DAY = '2026-11-21';
// No break opportunity anywhere: the kind of name that used to push the table past a phone's width.
const LONG_RESOURCE = 'arn:aws:iam::123456789012:user/ci-deploy-service-account-for-the-payments-platform-production-eu-central-1';
const LONG_REPO = 'acme-payments/extremely-long-repository-name-without-any-spaces-in-it-at-all-whatsoever';

/** A bad day in Europe/Berlin: red controls with long resource names, an unknown, nine probe targets. */
function badDay(): Snapshot {
  const failing = [
    { probe: 'aws-iam-user-mfa', target: 'prod', resource: LONG_RESOURCE, message: 'User has console access without MFA: enable a hardware key in IAM > Security credentials' },
    { probe: 'github-branch-protection', target: 'acme', resource: LONG_REPO, message: 'Default branch main allows force pushes: enable "Block force pushes" in a ruleset' },
    ...Array.from({ length: 8 }, (_, i) => ({ probe: 'github-branch-protection', target: 'acme', resource: `acme/service-${i}`, message: 'No required status checks on main' })),
  ];
  return sampleSnapshot(
    DAY,
    [
      sampleControl({ id: 'mfa-human-accounts', title: 'MFA on every human account', verdict: 'red', streak: 0, greenSince: null, thirtyDayGreen: false, failing, reasons: ['2 failing resources'], lastMeasuredAt: '2026-11-21T13:03:00.000Z' }),
      sampleControl({ id: 'branch-protection', title: 'Protected default branches', verdict: 'unknown', streak: 0, greenSince: null, thirtyDayGreen: false, reasons: [`github-branch-protection/acme: 1 resource could not be judged: ${LONG_REPO}`] }),
      sampleControl({ id: 'tls-certificates', title: 'TLS certificates valid and strong', streak: 45, greenSince: '2026-10-08' }),
    ],
    'a'.repeat(64),
    {
      timezone: 'Europe/Berlin',
      probeHealth: Array.from({ length: 9 }, (_, i) => ({
        probe: i % 2 ? 'github-branch-protection' : 'aws-iam-user-mfa',
        target: `target-with-a-long-name-${i}`,
        runs: 96,
        errors: i === 3 ? 2 : 0,
        unknown: 0,
        red: i === 0 ? 96 : 0,
        lastRunAt: '2026-11-21T22:45:00.000Z',
        stale: i === 5,
        sourceFreshness: i === 0 ? '2026-11-21T03:00:00.000Z' : null,
        lastError: i === 3 ? 'AWS answered 403 AccessDenied: the role may not call iam:GenerateCredentialReport — add it to the policy' : null,
      })),
      diff: { since: '2026-11-20', newReds: ['mfa-human-accounts'], recoveries: [], reachedThirtyDays: [], leftFeed: [] },
    },
  );
}

describe('times in the email are in the configured time zone', () => {
  const s = badDay();
  it.each([
    ['html', renderHtml(s, { organization: 'Acme' })],
    ['text', renderText(s, { organization: 'Acme' })],
    ['markdown', renderMarkdown(s, { organization: 'Acme' })],
  ])('%s shows last measured, last run and source freshness in CET, not UTC ISO', (_name, out) => {
    expect(out).toContain('2026-11-21 14:03 CET'); // lastMeasuredAt 13:03Z
    expect(out).toContain('2026-11-21 23:45 CET'); // lastRunAt 22:45Z
    expect(out).toContain('2026-11-21 04:00 CET'); // sourceFreshness 03:00Z
    expect(out).not.toContain('2026-11-21T13:03:00.000Z');
    expect(out).not.toContain('2026-11-21T22:45:00.000Z');
  });
});

describe('the email in a real browser at phone and desktop width', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it.each([390, 1200])('at %i px nothing overflows horizontally and every key fact is visible', async (width) => {
    const s = badDay();
    const html = renderHtml(s, { organization: 'Acme Payments GmbH' });
    const page = await browser.newPage({ viewport: { width, height: 900 }, javaScriptEnabled: false });
    try {
      await page.setContent(html, { waitUntil: 'load' });
      // Strings, not functions: the tests are typed without the DOM library.
      const { scrollWidth, clientWidth } = await page.evaluate<{ scrollWidth: number; clientWidth: number }>(
        '({ scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth })',
      );
      expect(clientWidth).toBe(width);
      expect(scrollWidth).toBeLessThanOrEqual(width);
      // No element sticks out of the viewport either (an overflow hidden by a clipped ancestor would not show in scrollWidth).
      const widest = await page.evaluate<number>("Math.max(...Array.from(document.querySelectorAll('body *'), (el) => el.getBoundingClientRect().right))");
      expect(widest).toBeLessThanOrEqual(width);
      const text = await page.innerText('body');
      // Wrapped names are still whole in the text (innerText joins soft-wrapped lines).
      for (const shown of [
        LONG_RESOURCE,
        LONG_REPO,
        'User has console access without MFA: enable a hardware key in IAM > Security credentials',
        'MFA on every human account',
        'Protected default branches',
        'TLS certificates valid and strong',
        '✗ RED',
        '? UNKNOWN',
        '✓ GREEN',
        '2026-11-21 14:03 CET',
        'STALE',
        'AWS answered 403 AccessDenied',
        s.hash,
      ])
        expect(text.replace(/\n/g, ''), shown).toContain(shown);
      await page.screenshot({ path: path.join(artifactsDir, `email-${width}px.png`), fullPage: true });
    } finally {
      await page.close();
    }
  });
});
