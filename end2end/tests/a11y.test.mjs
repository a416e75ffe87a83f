// Accessibility in real Chromium: axe-core (the npm package, injected into the page) finds no
// serious or critical violation on any tab, on a user's, a trace's and an event's page, on
// Settings and on the login page; the filter bar and the Users table's sort work from the
// keyboard alone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startServer, launch, event } from './helpers.mjs';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
  await server.ingest({
    events: [
      { ...event('a1', 'ada', { tags: { plan: 'pro' } }), tools: ['search'] },
      event('a2', 'ada', { model: 'gpt-4o-mini', tags: { plan: 'pro' } }),
      event('b1', 'bob', { provider: 'anthropic', model: 'claude-haiku-4-5', tags: { plan: 'free' } }),
    ],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** The serious and critical violations axe finds on the page, one line each. */
async function violations(page) {
  await page.addScriptTag({ path: AXE });
  const found = await page.evaluate(async () => {
    const result = await globalThis.axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.impact} ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  return found;
}

const pages = [
  '/ai-apps',
  '/ai-apps/users',
  '/ai-apps/models',
  '/ai-apps/tools',
  '/ai-apps/traces',
  '/ai-apps/segments?by=plan',
  '/ai-apps/users/ada',
  '/ai-apps/traces/trace-a1',
  '/ai-apps/events/a1',
  '/settings',
];

for (const path of pages) {
  test(`axe finds no serious or critical violation on ${path}`, async () => {
    const page = await browser.context.newPage();
    await page.goto(`${server.base}${path}`);
    await page.waitForFunction(() => window.__tokentally_hydrated === true);
    assert.deepEqual(await violations(page), []);
    await page.close();
  });
}

test('axe finds no serious or critical violation on the login page', async () => {
  const guarded = await startServer({ login: true });
  const context = await launch();
  try {
    const page = await context.context.newPage();
    await page.goto(`${guarded.base}/login`);
    await page.getByLabel('Password').waitFor();
    assert.deepEqual(await violations(page), []);
  } finally {
    await context.close();
    await guarded.stop();
  }
});

test('the window pills and the Users sort work from the keyboard alone', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.base}/ai-apps/users`);
  await page.waitForFunction(() => window.__tokentally_hydrated === true);
  // Tab to the "1d" window pill and follow it with Enter.
  const focusedName = () => page.evaluate(() => document.activeElement?.textContent?.trim());
  let tabs = 0;
  while ((await focusedName()) !== '1d') {
    await page.keyboard.press('Tab');
    tabs += 1;
    assert.ok(tabs < 60, 'the 1d pill is reachable by Tab');
  }
  await page.keyboard.press('Enter');
  await page.waitForURL(/window=1d/);
  // The page re-renders after the URL changes: wait for the pill to say it is current.
  const pill = page.getByRole('link', { name: '1d', exact: true });
  await page.locator('nav[aria-label="Time window"] a[aria-current="true"]', { hasText: /^1d$/ }).waitFor();
  assert.equal(await pill.getAttribute('aria-current'), 'true');
  // Then Tab on to the table's "Traces" column header and sort by it with Enter.
  tabs = 0;
  while (!/^Traces/.test((await focusedName()) ?? '') || !(await page.evaluate(() => document.activeElement?.closest('th') !== null))) {
    await page.keyboard.press('Tab');
    tabs += 1;
    assert.ok(tabs < 80, 'the Traces sort is reachable by Tab');
  }
  await page.keyboard.press('Enter');
  await page.waitForURL(/sort=traces/);
  const header = page.getByRole('columnheader', { name: /Traces/ });
  await page.locator('th[aria-sort="descending"]', { hasText: 'Traces' }).waitFor();
  assert.equal(await header.getAttribute('aria-sort'), 'descending');
  await page.close();
});
