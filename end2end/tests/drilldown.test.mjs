// Drilldown in real Chromium: user → their traces → one trace → one call, and back again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, kpi } from './helpers.mjs';

let server;
let browser;
const at = (minutesAgo) => new Date(Date.now() - minutesAgo * 60_000).toISOString();

before(async () => {
  server = await startServer();
  browser = await launch();
  const tags = (userId) => ({ userId, plan: 'pro' });
  await server.ingest({
    traces: [{ id: 'tr-kim-1', route_tag: 'POST /api/chat', tags: tags('kim'), started_at: at(30), ended_at: at(29), status: 'ok' }],
    events: [
      { id: 'ev-kim-1', trace_id: 'tr-kim-1', timestamp: at(30), provider: 'openai', model: 'gpt-4o', tags: tags('kim'),
        usage: { input_tokens: 1200, output_tokens: 300, cache_read_tokens: 0, cache_creation_tokens: 0 }, latency_ms: 900,
        prompt: [{ role: 'system', content: 'You are helpful.' }, { role: 'user', content: 'What is my order status?' }],
        response: [{ role: 'assistant', content: 'It ships tomorrow.' }] },
      { id: 'ev-kim-2', trace_id: 'tr-kim-1', timestamp: at(29.5), provider: 'anthropic', model: 'claude-haiku-4-5', tags: tags('kim'),
        usage: { input_tokens: 50, output_tokens: 20, cache_read_tokens: 4000, cache_creation_tokens: 0 }, latency_ms: 400, tools: ['lookup_order'] },
      { id: 'ev-lee-1', trace_id: 'tr-lee-1', route_tag: 'POST /api/search', timestamp: at(10), provider: 'openai', model: 'gpt-4o-mini',
        tags: tags('lee'), usage: { input_tokens: 100, output_tokens: 10 } },
    ],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('user → traces → trace → call, and the back button restores each step', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.base}/ai-apps/users`);
  await page.waitForFunction(() => window.__tokentally_hydrated === true);
  await page.getByRole('link', { name: 'kim', exact: true }).click();
  await page.waitForURL(/\/ai-apps\/users\/kim$/);
  const traces = page.getByRole('table', { name: 'Traces of this user' });
  await traces.waitFor();
  // The user's page: their spend only ($0.006 + claude-haiku-4-5: 50 × $1/M + 20 × $5/M + 4000 × $0.10/M).
  assert.equal(await kpi(page, 'Spend'), '$0.00655');
  assert.equal(await kpi(page, 'LLM calls'), '2');
  assert.deepEqual(await traces.locator('tbody').getByRole('rowheader').allInnerTexts(), ['POST /api/chat']);

  await traces.getByRole('link', { name: 'POST /api/chat' }).click();
  await page.waitForURL(/\/ai-apps\/traces\/tr-kim-1$/);
  const calls = page.getByRole('table', { name: 'Calls in this trace' });
  await calls.waitFor();
  assert.deepEqual(await calls.locator('tbody').getByRole('rowheader').allInnerTexts(), ['gpt-4o', 'claude-haiku-4-5']);
  assert.match(await page.getByRole('list', { name: 'Tags' }).innerText(), /plan=pro/);

  await calls.getByRole('link', { name: 'gpt-4o' }).click();
  await page.waitForURL(/\/ai-apps\/events\/ev-kim-1$/);
  await page.getByRole('heading', { name: 'gpt-4o', level: 1 }).waitFor();
  const facts = await page.getByRole('region', { name: 'Call details' }).innerText();
  assert.match(facts, /Input tokens\s+1,200/);
  assert.match(facts, /Output tokens\s+300/);
  // 1200 × $2.50/M + 300 × $10/M = $0.006
  assert.match(facts, /\$0\.006 \(price table\)/);
  assert.match(await page.getByRole('list', { name: 'Prompt' }).innerText(), /What is my order status\?/);
  assert.match(await page.getByRole('list', { name: 'Response' }).innerText(), /It ships tomorrow\./);

  await page.goBack();
  await page.waitForURL(/\/ai-apps\/traces\/tr-kim-1$/);
  await calls.waitFor();
  await page.goBack();
  await page.waitForURL(/\/ai-apps\/users\/kim$/);
  await traces.waitFor();
  assert.deepEqual(await traces.locator('tbody').getByRole('rowheader').allInnerTexts(), ['POST /api/chat']);
  await page.close();
});

test('the Traces tab lists every trace, searches route tags, and works without JavaScript', async () => {
  const noJs = await launch({ javaScriptEnabled: false });
  try {
    const page = await noJs.context.newPage();
    await page.goto(`${server.base}/ai-apps/traces`);
    const rows = () => page.getByRole('table', { name: 'Traces' }).locator('tbody').getByRole('rowheader').allInnerTexts();
    assert.deepEqual(await rows(), ['POST /api/search', 'POST /api/chat']);
    await page.getByRole('searchbox', { name: 'Search route tags' }).fill('search');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/q=search/);
    assert.deepEqual(await rows(), ['POST /api/search']);
  } finally {
    await noJs.close();
  }
});

test('an unknown trace or call id says so, loaded and navigated to', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.base}/ai-apps/traces/no-such-trace`);
  await page.waitForFunction(() => window.__tokentally_hydrated === true);
  assert.equal(await page.getByRole('alert').innerText(), 'No trace with this id.');
  // From a real trace's page to a call that isn't there, without a reload.
  await page.goto(`${server.base}/ai-apps/traces/tr-kim-1`);
  await page.waitForFunction(() => window.__tokentally_hydrated === true);
  await page.evaluate(() => { window.__marker = 'still here'; });
  const call = page.getByRole('link', { name: 'gpt-4o', exact: true });
  await call.evaluate((a) => { a.href = '/ai-apps/events/no-such-call'; });
  await call.click();
  await page.waitForURL(/\/ai-apps\/events\/no-such-call$/);
  await page.getByRole('alert').waitFor();
  assert.equal(await page.getByRole('alert').innerText(), 'No event with this id.');
  assert.equal(await page.evaluate(() => window.__marker), 'still here');
  await page.close();
});
