import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

/** Where tests save screenshots (kept after the run as artefacts; gitignored). */
export const artifactsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-artifacts');

/** Debian's chromium, installed by scripts/test.sh. */
export const chromiumPath = process.env.VIGIL_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Launches headless Debian chromium. The flags keep it off the network (this machine has none, and
 * background services would stall on it) and sandbox-free (tests may run as root).
 */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * Renders a page (a URL, or HTML given inline), saves a full-page screenshot under
 * test-artifacts/<name>.png and returns the text a person can see (innerText: hidden text excluded).
 * JavaScript is on for URLs and off for inline HTML unless `javaScriptEnabled` says otherwise.
 */
export async function renderPage(
  browser: Browser,
  source: { url: string } | { html: string },
  name: string,
  opts: { javaScriptEnabled?: boolean } = {},
): Promise<{ visibleText: string; screenshot: string }> {
  mkdirSync(artifactsDir, { recursive: true });
  const page = await browser.newPage({ viewport: { width: 1000, height: 800 }, javaScriptEnabled: opts.javaScriptEnabled ?? 'url' in source });
  try {
    if ('url' in source) await page.goto(source.url, { waitUntil: 'load' });
    else await page.setContent(source.html, { waitUntil: 'load' });
    const screenshot = path.join(artifactsDir, `${name}.png`);
    await page.screenshot({ path: screenshot, fullPage: true });
    const visibleText = await page.innerText('body');
    return { visibleText, screenshot };
  } finally {
    await page.close();
  }
}
