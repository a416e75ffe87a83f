// Overview and Models in real Chromium: figures, the chart's series, filters across tabs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, event, kpi, waitForKpi } from './helpers.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
  await server.ingest({
    events: [
      event('o1', 'pat', { model: 'gpt-4o', input: 1_000_000, output: 0, tags: { plan: 'pro' } }), // $2.50
      event('o2', 'pat', { model: 'gpt-4o-mini', input: 2_000_000, output: 0, tags: { plan: 'pro' } }), // $0.30
      event('o3', 'quinn', { provider: 'anthropic', model: 'claude-haiku-4-5', input: 100_000, output: 0, tags: { plan: 'free' } }), // $0.10
    ],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});


test('the Overview shows the KPIs and a chart with one series per model', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.base}/ai-apps`);
  assert.equal(await kpi(page, 'Spend'), '$2.90');
  assert.equal(await kpi(page, 'LLM calls'), '3');
  assert.equal(await kpi(page, 'Active users'), '2');
  // 3,100,000 tokens: abbreviated in the card, the exact figure on hover.
  assert.equal(await kpi(page, 'Tokens'), '3.1M');
  const tokens = page.getByRole('group', { name: 'Tokens' }).locator('abbr');
  assert.equal(await tokens.getAttribute('title'), '3,100,000');
  const chart = page.getByRole('img', { name: /Spend over time by model, 3 series/ });
  await chart.waitFor();
  assert.equal(await chart.locator('svg').count(), 1);
  const legend = await page.getByRole('list', { name: 'Chart legend' }).getByRole('listitem').allInnerTexts();
  assert.deepEqual(legend.map((l) => l.split(' ')[0]), ['gpt-4o', 'gpt-4o-mini', 'claude-haiku-4-5']);
  // Each series is drawn in its own colour.
  const fills = await chart.locator('svg rect').evaluateAll((rects) => [...new Set(rects.map((r) => r.getAttribute('fill')).filter((f) => f && f !== '#FFFFFF' && f !== 'none'))]);
  assert.equal(fills.length, 3, `fills: ${fills}`);
  await page.close();
});

test('a tag filter narrows every tab and survives tab switches and a reload', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.base}/ai-apps?tag.plan=pro`);
  await page.waitForFunction(() => window.__tokentally_hydrated === true);
  assert.equal(await kpi(page, 'Spend'), '$2.80');
  await page.getByRole('link', { name: 'Models', exact: true }).click();
  await page.waitForURL(/\/ai-apps\/models\?tag\.plan=pro/);
  const models = page.getByRole('table', { name: 'Models' });
  await models.waitFor();
  // Each row header is the model, with its provider underneath.
  const names = await models.locator('tbody').getByRole('rowheader').allInnerTexts();
  assert.deepEqual(names.map((n) => n.split('\n')), [['gpt-4o', 'openai'], ['gpt-4o-mini', 'openai']]);
  await page.getByRole('link', { name: 'Users', exact: true }).click();
  await page.waitForURL(/\/ai-apps\/users\?tag\.plan=pro/);
  await page.reload();
  const users = page.getByRole('table', { name: 'Users by spend' });
  assert.deepEqual(await users.locator('tbody').getByRole('rowheader').allInnerTexts(), ['pat']);
  await page.getByRole('link', { name: 'Remove filter plan=pro' }).click();
  await page.waitForURL((url) => !url.search.includes('plan'));
  await page.waitForFunction(() => document.querySelectorAll('table[aria-label="Users by spend"] tbody tr').length === 2);
  await page.close();
});

test('the Tools tab lists tool names with their calls', async () => {
  await server.ingest({
    events: [{ ...event('tool-1', 'pat', { model: 'gpt-4o', input: 1000, output: 0, tags: { plan: 'pro' } }), tools: ['web_search'] }],
  });
  const page = await browser.context.newPage();
  await page.goto(`${server.base}/ai-apps/tools`);
  const table = page.getByRole('table', { name: 'Tools' });
  assert.deepEqual(await table.locator('tbody').getByRole('rowheader').allInnerTexts(), ['web_search']);
  assert.equal(await table.locator('tbody td').first().innerText(), '1');
  await page.close();
});

test('a provider picked from the menu narrows the Overview and stays on the Users tab', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.base}/ai-apps`);
  await page.waitForFunction(() => window.__tokentally_hydrated === true);
  await page.getByText('Provider ▾').click();
  await page.getByRole('list', { name: 'Provider filter' }).getByRole('link', { name: 'anthropic' }).click();
  await page.waitForURL(/provider=anthropic/);
  await waitForKpi(page, 'Spend', '$0.10');
  assert.equal(await kpi(page, 'Active users'), '1');
  await page.getByRole('link', { name: 'Users', exact: true }).click();
  await page.waitForURL(/\/ai-apps\/users\?provider=anthropic/);
  const users = page.getByRole('table', { name: 'Users by spend' });
  await page.waitForFunction(() => document.querySelectorAll('table[aria-label="Users by spend"] tbody tr').length === 1);
  assert.deepEqual(await users.locator('tbody').getByRole('rowheader').allInnerTexts(), ['quinn']);
  assert.ok(await page.getByRole('link', { name: 'Remove filter provider=anthropic' }).isVisible());
  await page.close();
});

const utcDate = (daysAgo) => new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);

test('the user menu, the tag field, a custom range and stacking by provider', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.base}/ai-apps`);
  await page.waitForFunction(() => window.__tokentally_hydrated === true);
  const spendIs = (v) => waitForKpi(page, 'Spend', v);

  // Stacking by provider: one series per provider, and the choice is in the URL.
  await page.getByRole('link', { name: 'by provider' }).click();
  await page.waitForURL(/stack=provider/);
  await page.getByRole('img', { name: 'Spend over time by provider, 2 series' }).waitFor();

  // A user picked from the menu of the window's users.
  await page.getByText('User ▾').click();
  await page.getByRole('list', { name: 'User filter' }).getByRole('link', { name: 'quinn' }).click();
  await page.waitForURL(/user=quinn/);
  await spendIs('$0.10');
  assert.match(page.url(), /stack=provider/);
  await page.getByRole('link', { name: 'Remove filter user=quinn' }).click();
  await page.waitForURL((url) => !url.search.includes('user='));

  // A tag typed as key=value becomes a pill.
  const tagField = page.getByRole('textbox', { name: 'Add a tag filter (key=value)' });
  await tagField.fill('plan=free');
  await tagField.press('Enter');
  await page.waitForURL(/tag=plan%3Dfree/);
  await spendIs('$0.10');
  assert.ok(await page.getByRole('link', { name: 'Remove filter plan=free' }).isVisible());
  await page.getByRole('link', { name: 'Remove filter plan=free' }).click();
  await page.waitForURL((url) => !url.search.includes('plan'));

  // A custom range that ended before the events has no spend; one that covers today has it all.
  const range = page.getByRole('form', { name: 'Custom range' });
  await range.getByLabel('From (UTC date)').fill(utcDate(10));
  await range.getByLabel('To (UTC date, inclusive)').fill(utcDate(3));
  await range.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(new RegExp(`from=${utcDate(10)}&to=${utcDate(3)}`));
  await page.getByRole('status').filter({ hasText: 'No spend in this window' }).waitFor();
  assert.equal(await kpi(page, 'Active users'), '0');
  await range.getByLabel('From (UTC date)').fill(utcDate(1));
  await range.getByLabel('To (UTC date, inclusive)').fill(utcDate(0));
  await range.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(new RegExp(`from=${utcDate(1)}`));
  assert.equal(await kpi(page, 'Active users'), '2');
  assert.match(page.url(), /stack=provider/);
  await page.close();
});
