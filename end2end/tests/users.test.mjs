// The Users page in real Chromium against the real server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, event, tableUsers } from './helpers.mjs';

const XSS = '<img src=x onerror=alert(1)>';
let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
  // Spend order by construction: gpt-4o at $2.5/M input, $10/M output.
  await server.ingest({
    events: [
      event('a1', 'big-spender', { input: 400_000, output: 20_000 }),
      event('a2', 'big-spender', { input: 100_000, output: 10_000 }),
      event('b1', 'middle', { input: 150_000, output: 1_000, minutesAgo: 60 }),
      event('c1', XSS, { input: 50_000, output: 500 }),
      // Many tokens on a cheap model: most tokens, least spend.
      event('d1', 'token-heavy', { input: 900_000, output: 1_000, model: 'gpt-4o-mini' }),
      // Three days ago: in 7d and 28d, not in 1d.
      event('e1', 'last-week', { input: 2_000_000, output: 0, minutesAgo: 3 * 24 * 60 }),
    ],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('users are listed in spend order, and a user id is rendered as text', async () => {
  const page = await browser.context.newPage();
  let dialog = false;
  page.on('dialog', async (d) => { dialog = true; await d.dismiss(); });
  await page.goto(`${server.base}/ai-apps/users`);
  const api = (await server.users()).map((u) => u.user_id);
  assert.deepEqual(await tableUsers(page), api);
  assert.equal(api[0], 'last-week');
  assert.equal(api[1], 'big-spender');
  const cell = page.getByRole('rowheader', { name: XSS, exact: true });
  assert.equal(await cell.innerText(), XSS);
  assert.equal(await page.locator('table img').count(), 0);
  assert.equal(dialog, false);
  await page.close();
});

test('clicking a column header re-sorts without a full reload, and again flips it', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.base}/ai-apps/users`);
  await page.waitForFunction(() => window.__tokentally_hydrated === true);
  await page.evaluate(() => { window.__marker = 'still here'; });
  await page.getByRole('link', { name: /^Tokens/ }).click();
  await page.waitForURL(/sort=tokens/);
  await page.waitForFunction(() => document.querySelector('th[aria-sort="descending"]')?.innerText.startsWith('Tokens'));
  const byTokens = (await server.users('&sort=tokens&dir=desc')).map((u) => u.user_id);
  assert.deepEqual(await tableUsers(page), byTokens);
  assert.equal(byTokens[0], 'last-week');
  assert.equal(byTokens[1], 'token-heavy');
  assert.equal(await page.evaluate(() => window.__marker), 'still here', 'no full page load');

  await page.getByRole('link', { name: /^Tokens/ }).click();
  await page.waitForURL(/dir=asc/);
  await page.waitForFunction(() => document.querySelector('th[aria-sort="ascending"]'));
  assert.deepEqual(await tableUsers(page), [...byTokens].reverse());

  await page.goBack();
  await page.waitForURL(/dir=desc/);
  await page.waitForFunction(() => document.querySelector('th[aria-sort="descending"]')?.innerText.startsWith('Tokens'));
  assert.deepEqual(await tableUsers(page), byTokens);
  await page.close();
});

test('a window pill changes the numbers', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.base}/ai-apps/users`);
  assert.ok((await tableUsers(page)).includes('last-week'));
  const total = async () => (await page.getByText(/ users$/).innerText());
  assert.match(await total(), /· 5 users$/);
  await page.getByRole('link', { name: '1d', exact: true }).click();
  await page.waitForURL(/window=1d/);
  await page.waitForFunction(() => !document.body.innerText.includes('last-week'));
  assert.deepEqual(await tableUsers(page), (await server.users('&window=1d')).map((u) => u.user_id));
  assert.match(await total(), /· 4 users$/);
  assert.equal(await page.getByRole('link', { name: '1d', exact: true }).getAttribute('aria-current'), 'true');
  await page.close();
});

test('without JavaScript the table and its links still work', async () => {
  const noJs = await launch({ javaScriptEnabled: false });
  try {
    const page = await noJs.context.newPage();
    await page.goto(`${server.base}/ai-apps/users`);
    assert.equal((await tableUsers(page))[0], 'last-week');
    await page.getByRole('link', { name: /^User( [▲▼])?$/ }).click();
    await page.waitForURL(/sort=user&dir=asc/);
    const sorted = (await server.users('&sort=user&dir=asc')).map((u) => u.user_id);
    assert.deepEqual(await tableUsers(page), sorted);
    await page.getByRole('link', { name: '7d', exact: true }).click();
    await page.waitForURL(/window=7d/);
    assert.ok((await tableUsers(page)).includes('last-week'));
  } finally {
    await noJs.close();
  }
});

test('a newly acknowledged event shows up on the next load', async () => {
  const page = await browser.context.newPage();
  await server.ingest({ events: [event('new-1', 'newcomer', { input: 10_000_000, output: 0 })] });
  // Visible on the very next page load after the acknowledgement: nothing is processed later.
  await page.goto(`${server.base}/ai-apps/users`);
  assert.equal((await tableUsers(page))[0], 'newcomer');
  await page.close();
});

test('an empty view explains the usual causes', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.base}/ai-apps/users?tag.plan=nobody-has-this`);
  const status = page.getByRole('status');
  assert.match(await status.innerText(), /withTrace/);
  assert.match(await status.innerText(), /userId/);
  assert.match(await status.innerText(), /window/);
  assert.match(await status.innerText(), /redaction/);
  await page.close();
});

test('an open Users page shows a newly ingested user without a reload', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.base}/ai-apps/users`);
  await page.waitForFunction(() => window.__tokentally_hydrated === true);
  await page.evaluate(() => { window.__marker = 'no reload'; });
  // Let the page read the current data version first.
  await page.waitForTimeout(700);
  await server.ingest({ events: [event('live-1', 'live-arrival', { input: 50_000_000, output: 0 })] });
  await page.getByRole('rowheader', { name: 'live-arrival' }).waitFor({ timeout: 5_000 });
  assert.equal((await tableUsers(page))[0], 'live-arrival');
  assert.equal(await page.evaluate(() => window.__marker), 'no reload');
  await page.close();
});

test("a parameter the server refuses is named on the page, loaded or navigated to", async () => {
  const page = await browser.context.newPage();
  // Loaded: the server renders the error and the page hydrates with it.
  await page.goto(`${server.base}/ai-apps/users?window=3d`);
  await page.waitForFunction(() => window.__tokentally_hydrated === true);
  const alert = page.getByRole('alert');
  assert.match(await alert.innerText(), /^window: must be 1d, 7d or 28d$/);
  // Navigated to: the browser calls the server function and reads its error.
  await page.goto(`${server.base}/ai-apps/users`);
  await page.waitForFunction(() => window.__tokentally_hydrated === true);
  await page.evaluate(() => { window.__marker = 'still here'; });
  await page.getByRole('link', { name: /^Tokens/ }).evaluate((a) => { a.href = '/ai-apps/users?window=5d'; });
  await page.getByRole('link', { name: /^Tokens/ }).click();
  await page.waitForURL(/window=5d/);
  await alert.waitFor();
  assert.match(await alert.innerText(), /^window: must be 1d, 7d or 28d$/);
  assert.equal(await page.evaluate(() => window.__marker), 'still here');
  await page.close();
});

test('a repeated tag parameter filters by each value, and the filter bar shows each', async () => {
  const page = await browser.context.newPage();
  // The one-field tag form sends `tag=key=value`; two of them are two filters (AND).
  await page.goto(`${server.base}/ai-apps/users?tag=plan%3Dpro&tag=org%3Dacme`);
  await page.waitForFunction(() => window.__tokentally_hydrated === true);
  await page.getByRole('link', { name: 'Remove filter plan=pro' }).waitFor();
  await page.getByRole('link', { name: 'Remove filter org=acme' }).waitFor();
  // Removing one keeps the other, in the server-rendered sort links too.
  await page.getByRole('link', { name: 'Remove filter plan=pro' }).click();
  await page.waitForURL((u) => !u.search.includes('plan'));
  assert.match(page.url(), /tag\.org=acme/);
  await page.getByRole('link', { name: 'Remove filter org=acme' }).waitFor();
  await page.close();
});
