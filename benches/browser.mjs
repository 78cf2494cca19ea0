// What a person waits for: the Billing page from navigation to interactive, in headless
// Chromium with its network throttled to 20 Mbit/s and 40 ms round trips, on a cold cache and
// on a warm one, signed in as the demo workspace's owner. "Interactive" is the moment the
// page's islands have hydrated (`#app[data-hydrated=true]`, set by the bundle once it has run),
// taken in the page as it happens: the test driver notices it later, by up to half a second on
// a busy machine.
// Also the Largest Contentful Paint, and the bytes the visit transferred.
//
// Usage: node benches/browser.mjs BASE_URL [runs]   (prints one JSON object)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from '../node_modules/playwright/index.mjs';

const base = process.argv[2] ?? 'http://127.0.0.1:3000';
const runs = Number(process.argv[3] ?? 5);
const throttle = {
  offline: false,
  latency: 40,
  downloadThroughput: (20 * 1024 * 1024) / 8,
  uploadThroughput: (20 * 1024 * 1024) / 8,
};

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function signIn(context) {
  const page = await context.newPage();
  await page.goto(`${base}/login`);
  await page.waitForSelector('#app[data-hydrated="true"]');
  await page.getByLabel('Email').fill('owner@acme.test');
  await page.getByLabel('Password').fill('tally-demo');
  await Promise.all([
    page.waitForURL(/\/billing$/),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  await page.close();
}

// One visit to /billing in a fresh tab of `context`; the cache is emptied first when cold.
async function visit(context, cold) {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  if (cold) {
    await cdp.send('Network.clearBrowserCache');
  }
  await cdp.send('Network.emulateNetworkConditions', throttle);
  let bytes = 0;
  cdp.on('Network.loadingFinished', (event) => {
    bytes += event.encodedDataLength;
  });
  await page.addInitScript(() => {
    window.__lcp = 0;
    window.__interactive = 0;
    new MutationObserver((_, observer) => {
      if (document.getElementById('app')?.dataset.hydrated === 'true') {
        window.__interactive = performance.now();
        observer.disconnect();
      }
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-hydrated'] });
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        window.__lcp = entry.startTime;
      }
    }).observe({ type: 'largest-contentful-paint', buffered: true });
  });
  await page.goto(`${base}/billing`, { waitUntil: 'commit' });
  await page.waitForSelector('#app[data-hydrated="true"]', { timeout: 60_000 });
  const timing = await page.evaluate(() => ({
    interactive: window.__interactive,
    lcp: window.__lcp,
  }));
  await page.close();
  return { ...timing, bytes };
}

// A profile on disk, so the warm visits use a disk cache as a person's browser does (an
// in-memory context's cache is small enough to drop the bundle).
const profile = mkdtempSync(join(tmpdir(), 'tally-browser-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu'],
});
await signIn(context);
const cold = [];
const warm = [];
for (let i = 0; i < runs; i++) {
  cold.push(await visit(context, true));
  warm.push(await visit(context, false));
}
await context.close();
rmSync(profile, { recursive: true, force: true });
const summary = (visits) => ({
  interactive_ms: Math.round(median(visits.map((v) => v.interactive))),
  lcp_ms: Math.round(median(visits.map((v) => v.lcp))),
  transferred_bytes: Math.round(median(visits.map((v) => v.bytes))),
});
console.log(JSON.stringify({ runs, cold: summary(cold), warm: summary(warm) }));
