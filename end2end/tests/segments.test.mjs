// The Segments tab and the CSV exports in real Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, launch, event, tableUsers } from './helpers.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch({ acceptDownloads: true });
  await server.ingest({
    events: [
      event('s1', 'pat', { model: 'gpt-4o', input: 1_000_000, output: 0, tags: { plan: 'pro', org: 'acme' } }), // $2.50
      event('s2', 'lee', { model: 'gpt-4o', input: 400_000, output: 0, tags: { plan: 'pro', org: 'initech' } }), // $1.00
      event('s3', 'quinn', { model: 'gpt-4o-mini', input: 2_000_000, output: 0, tags: { plan: 'free', org: 'acme' } }), // $0.30
      event('s4', 'anon, "the" guest', { model: 'gpt-4o-mini', input: 1_000_000, output: 0, tags: { plan: 'free' } }), // $0.15
    ],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const segmentRows = async (page) => {
  const table = page.getByRole('table', { name: 'Segments' });
  await table.waitFor();
  return table.locator('tbody tr').evaluateAll((rows) =>
    rows.map((r) => [r.querySelector('th').innerText, r.cells[2].innerText, r.cells[4].innerText]));
};

test('segments group spend by a tag key; a value becomes a tag pill', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.base}/ai-apps/segments`);
  await page.waitForFunction(() => window.__tokentally_hydrated === true);
  // plan is the default key: value, spend, users.
  assert.deepEqual(await segmentRows(page), [['pro', '$3.50', '2'], ['free', '$0.45', '2']]);
  await page.getByRole('navigation', { name: 'Group by tag key' }).getByRole('link', { name: 'org' }).click();
  await page.waitForURL(/by=org/);
  await page.waitForFunction(() => document.querySelector('table[aria-label="Segments"] thead th')?.innerText === 'org');
  assert.deepEqual(await segmentRows(page), [['acme', '$2.80', '2'], ['initech', '$1.00', '1'], ['(not set)', '$0.15', '1']]);
  // Each value's bar is drawn relative to the biggest.
  const widths = await page.getByRole('table', { name: 'Segments' }).getByRole('img', { name: /of the biggest$/ })
    .evaluateAll((bars) => bars.map((b) => b.style.width));
  assert.deepEqual(widths, ['100%', '35.7%', '5.3%']);
  await page.getByRole('link', { name: 'Filter by org=acme' }).click();
  await page.waitForURL(/tag\.org=acme/);
  await page.getByRole('link', { name: 'Remove filter org=acme' }).waitFor();
  await page.waitForFunction(() => document.querySelectorAll('table[aria-label="Segments"] tbody tr').length === 1);
  // The pill narrows the other tabs too.
  await page.getByRole('link', { name: 'Users', exact: true }).click();
  await page.waitForURL(/\/ai-apps\/users\?tag\.org=acme/);
  await page.waitForFunction(() => document.querySelectorAll('table[aria-label="Users by spend"] tbody tr').length === 2);
  assert.deepEqual(await tableUsers(page), ['pat', 'quinn']);
  await page.close();
});

/** Minimal RFC 4180 reader for the downloaded file. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false; else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i++; }
    else field += c;
  }
  return rows;
}

test('Export CSV downloads exactly the filtered, sorted Users view', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.base}/ai-apps/users?tag.plan=free&sort=user&dir=asc&limit=1`);
  await page.waitForFunction(() => window.__tokentally_hydrated === true);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
  assert.equal(download.suggestedFilename(), 'users.csv');
  const rows = parseCsv(readFileSync(await download.path(), 'utf8'));
  assert.deepEqual(rows[0].slice(0, 3), ['user_id', 'spend_usd', 'spend_nano']);
  // Every page of the view (the page shows 1 row), in its order, the awkward id intact.
  assert.deepEqual(rows.slice(1).map((r) => [r[0], r[1]]), [['anon, "the" guest', '0.15'], ['quinn', '0.30']]);
  await page.close();
});

test('Export CSV on Traces carries the route search', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.base}/ai-apps/traces?tag.org=acme`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
  const rows = parseCsv(readFileSync(await download.path(), 'utf8'));
  assert.equal(rows[0][0], 'trace_id');
  assert.deepEqual(rows.slice(1).map((r) => r[0]).sort(), ['trace-s1', 'trace-s3']);
  await page.close();
});
