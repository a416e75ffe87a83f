// withTrace scopes: no tag bleed between concurrent requests, nested traces, values and errors, log().
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { wrapOpenAI, withTrace, log, flush, configure, currentTrace } from 'tokentally';
import { startTokentally, startFakeProvider, FAKE } from '../test-support/helpers.mjs';

let tt;
let fake;
let client;

before(async () => {
  tt = await startTokentally();
  fake = await startFakeProvider();
  configure({ endpoint: tt.url, apiKey: tt.ingestKey, flushIntervalMs: 50 });
  client = wrapOpenAI(new OpenAI({ apiKey: 'sk-test', baseURL: `${fake.url}/v1`, maxRetries: 0 }));
});

after(async () => {
  await flush();
  await tt?.stop();
  await fake?.stop();
});

test('100 interleaved requests for 20 users: every event carries its own request\'s tags', async () => {
  const handler = async (i) => {
    const userId = `conc-${i % 20}`;
    return withTrace(async () => {
      // Yield between calls so the requests interleave.
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `req ${i}` }] });
      await new Promise((r) => setTimeout(r, Math.random() * 10));
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `req ${i} again` }] });
      return currentTrace().traceId;
    }, { routeTag: 'POST /api/chat', tags: { userId, request: String(i) } });
  };
  const traceIds = await Promise.all(Array.from({ length: 100 }, (_, i) => handler(i)));
  assert.equal(new Set(traceIds).size, 100);
  await flush();
  const events = tt.events().filter((e) => e.tags?.userId?.startsWith('conc-'));
  assert.equal(events.length, 200);
  for (const e of events) {
    const i = Number(e.tags.request);
    assert.equal(e.tags.userId, `conc-${i % 20}`);
    assert.equal(e.trace_id, traceIds[i]);
    assert.match(JSON.stringify(e.prompt), new RegExp(`req ${i}\\b`));
  }
  const users = (await tt.users()).filter((u) => u.user_id.startsWith('conc-'));
  assert.equal(users.length, 20);
  for (const u of users) {
    assert.equal(u.events, 10);
    assert.equal(u.traces, 5);
    assert.equal(u.input_tokens, 10 * (FAKE.chat.prompt_tokens - FAKE.chat.cached_tokens));
  }
});

test('a nested withTrace is its own trace with merged tags', async () => {
  let outer;
  let inner;
  await withTrace(async () => {
    outer = currentTrace();
    await withTrace(async () => {
      inner = currentTrace();
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [] });
    }, { routeTag: 'job:summarize', tags: { feature: 'summary' } });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [] });
  }, { routeTag: 'POST /api/x', tags: { userId: 'nested-user', plan: 'free' } });
  assert.notEqual(inner.traceId, outer.traceId);
  assert.deepEqual(inner.tags, { userId: 'nested-user', plan: 'free', feature: 'summary' });
  await flush();
  const events = tt.eventsOf('nested-user');
  assert.equal(events.length, 2);
  assert.equal(events[0].trace_id, inner.traceId);
  assert.equal(events[0].route_tag, 'job:summarize');
  assert.equal(events[1].trace_id, outer.traceId);
  const traces = tt.traces().filter((t) => t.tags?.userId === 'nested-user');
  assert.deepEqual(traces.map((t) => t.id).sort(), [inner.traceId, outer.traceId].sort());
  assert.equal((await tt.users()).find((u) => u.user_id === 'nested-user').traces, 2);
});

test('withTrace returns the value, rethrows the error, and marks the trace', async () => {
  assert.equal(await withTrace(() => 42, { tags: { userId: 'ret' } }), 42);
  const boom = new Error('boom');
  await assert.rejects(withTrace(async () => { throw boom; }, { tags: { userId: 'thrower' } }), (e) => e === boom);
  await flush();
  assert.equal(tt.traces().find((t) => t.tags?.userId === 'thrower').status, 'error');
  assert.equal(tt.traces().find((t) => t.tags?.userId === 'ret').status, 'ok');
  assert.equal(currentTrace(), undefined);
});

test('log() records a custom event with an explicit cost in the current trace', async () => {
  await withTrace(async () => {
    log({ name: 'cohere.rerank', provider: 'cohere', costUsd: '0.0125', usage: { input_tokens: 300 }, latencyMs: 42 });
  }, { tags: { userId: 'logger' } });
  await flush();
  const [e] = tt.events().filter((ev) => ev.tags?.userId === 'logger');
  assert.equal(e.kind, 'custom');
  assert.equal(e.model, 'cohere.rerank');
  const user = (await tt.users()).find((u) => u.user_id === 'logger');
  assert.equal(user.spend_nano, 12_500_000);
  assert.equal(user.unpriced_events, 0);
});
