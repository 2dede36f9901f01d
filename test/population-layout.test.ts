import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderHtml } from '../src/posture/render.js';
import { snapshotHash, type PopulationUnit, type Snapshot } from '../src/posture/snapshot-types.js';
import { artifactsDir, launchBrowser } from './helpers/browser.js';
import { sampleControl, sampleSnapshot } from './helpers/snapshots.js';

/**
 * The email's "Tested population" section in Debian chromium at phone and desktop width: counts per
 * probe × target and the evidence level per resource, long names wrapped, and not the 5,000 names.
 */
const LONG = 'arn:aws:backup:eu-central-1:123456789012:recovery-point:continuous:db-payments-production-eu-central-1-0123456789abcdef';

function day(): Snapshot {
  const population: PopulationUnit[] = [
    {
      probe: 'github-branch-protection',
      target: 'acme-corp',
      resources: Array.from({ length: 5000 }, (_, i) => ({
        resource: `github.com/acme-corp/service-${String(i).padStart(4, '0')}`,
        ...(i % 100 === 7 ? { outcome: 'fail' as const, message: 'force pushes allowed: block them in a ruleset' } : { outcome: 'pass' as const }),
      })),
    },
    {
      probe: 'backup-restore-drill',
      target: 'prod',
      resources: [
        { resource: LONG, outcome: 'pass', level: 4 },
        { resource: 'drill/ledger-db', outcome: 'pass', level: 5 },
      ],
      omitted: 3,
    },
  ];
  const base = sampleSnapshot('2026-11-21', [sampleControl({ id: 'restore-testing', title: 'Backups are restored in drills', evidenceLevel: 4, restoreTestedDays: 31 })]);
  const { hash: _h, ...body } = base;
  const full = { ...body, population };
  return { ...full, hash: snapshotHash(full) };
}

describe('the tested population in the email, in a real browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it.each([390, 1200])('at %i px: counts and levels visible, nothing overflows', async (width) => {
    const html = renderHtml(day(), { organization: 'Acme' });
    // Counts, not the list: 5,000 passing names would make the email several hundred kB.
    expect(Buffer.byteLength(html)).toBeLessThan(40_000);
    const page = await browser.newPage({ viewport: { width, height: 900 }, javaScriptEnabled: false });
    try {
      await page.setContent(html, { waitUntil: 'load' });
      const { scrollWidth } = await page.evaluate<{ scrollWidth: number }>('({ scrollWidth: document.documentElement.scrollWidth })');
      expect(scrollWidth).toBeLessThanOrEqual(width);
      const widest = await page.evaluate<number>("Math.max(...Array.from(document.querySelectorAll('body *'), (el) => el.getBoundingClientRect().right))");
      expect(widest).toBeLessThanOrEqual(width);
      const text = (await page.innerText('body')).replace(/\n/g, '');
      for (const shown of [
        'Tested population',
        '5000 judged: 4950 passed · 50 failed · 0 unknown · 0 not applicable',
        '2 listed: 2 passed · 0 failed · 0 unknown · 0 not applicable · not listed: 3 more that one run judged beyond the per-run cap',
        `${LONG} L4`,
        'drill/ledger-db L5',
        'lowest evidence level L4 today; L4 or more (restore-tested) on 31 days in a row',
      ])
        expect(text, shown).toContain(shown);
      expect(text).not.toContain('service-0042');
      await page.screenshot({ path: path.join(artifactsDir, `email-population-${width}px.png`), fullPage: true });
    } finally {
      await page.close();
    }
  });
});
