// wrapOpenAI with the real `openai` package against the fake provider and the real server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { wrapOpenAI, withTrace, flush, configure } from 'tokentally/openai';
import { startTokentally, startFakeProvider, FAKE, returnedModel, nanoCost } from '../test-support/helpers.mjs';

let tt;
let fake;
let plain;
let wrapped;
const GPT_4O_MINI = { input: 0.15, output: 0.6, cacheRead: 0.075 };

before(async () => {
  tt = await startTokentally();
  fake = await startFakeProvider();
  configure({ flushIntervalMs: 50 });
  const opts = { apiKey: 'sk-test', baseURL: `${fake.url}/v1`, maxRetries: 0 };
  plain = new OpenAI(opts);
  // The fake stands for api.openai.com, which takes stream_options (a loopback host is not assumed to).
  wrapped = wrapOpenAI(new OpenAI(opts), { agent: 'support-bot', endpoint: tt.url, apiKey: tt.ingestKey, streamUsage: true });
});

after(async () => {
  await flush();
  await tt?.stop();
  await fake?.stop();
});

const lastEventFor = async (userId) => {
  await flush();
  const events = tt.eventsOf(userId);
  assert.ok(events.length > 0, `no event for ${userId}`);
  return events.at(-1);
};

const chatUsage = {
  input_tokens: FAKE.chat.prompt_tokens - FAKE.chat.cached_tokens,
  output_tokens: FAKE.chat.completion_tokens,
  cache_read_tokens: FAKE.chat.cached_tokens,
  cache_creation_tokens: 0,
};

test('the wrapper returns the same client', () => {
  const client = new OpenAI({ apiKey: 'x', baseURL: `${fake.url}/v1` });
  assert.equal(wrapOpenAI(client), client);
});

test('a plain chat completion is recorded with cached tokens taken out of input', async () => {
  const result = await withTrace(
    () => wrapped.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    { routeTag: 'POST /api/chat', tags: { userId: 'oa-plain', plan: 'pro' } },
  );
  assert.equal(result.choices[0].message.content, 'Hello there!');
  const e = await lastEventFor('oa-plain');
  assert.equal(e.provider, 'openai');
  assert.equal(e.model, returnedModel('gpt-4o-mini'));
  assert.equal(e.agent, 'support-bot');
  assert.equal(e.route_tag, 'POST /api/chat');
  assert.deepEqual(e.tags, { userId: 'oa-plain', plan: 'pro' });
  assert.deepEqual(e.usage, chatUsage);
  assert.equal(e.status, 'ok');
  assert.deepEqual(e.prompt, [{ role: 'user', content: 'hi' }]);
  assert.ok(typeof e.latency_ms === 'number' && e.latency_ms >= 0);
});

test('a stream reads exactly as without the wrapper, and its usage is recorded', async () => {
  const params = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true };
  const read = async (client) => {
    const chunks = [];
    for await (const c of await client.chat.completions.create(params)) chunks.push(c);
    return chunks;
  };
  const expected = await read(plain);
  const got = await withTrace(() => read(wrapped), { tags: { userId: 'oa-stream' } });
  assert.deepEqual(got, expected);
  assert.ok(got.every((c) => !('usage' in c)), 'no usage field the caller did not ask for');
  const e = await lastEventFor('oa-stream');
  assert.deepEqual(e.usage, chatUsage);
  assert.equal(e.model, returnedModel('gpt-4o-mini'));
  assert.equal(e.response.content, 'Hello there!');

  // A caller who asked for usage still gets the usage chunk.
  const asked = { ...params, stream_options: { include_usage: true } };
  const withUsage = [];
  await withTrace(async () => {
    for await (const c of await wrapped.chat.completions.create(asked)) withUsage.push(c);
  }, { tags: { userId: 'oa-stream-usage' } });
  assert.equal(withUsage.at(-1).usage.prompt_tokens, FAKE.chat.prompt_tokens);
  assert.deepEqual((await lastEventFor('oa-stream-usage')).usage, chatUsage);
});

test('tool calls are recorded by name, plain and streaming', async () => {
  const tools = [{ type: 'function', function: { name: 'lookup_order', parameters: { type: 'object', properties: {} } } }];
  await withTrace(() => wrapped.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'where?' }], tools }), {
    tags: { userId: 'oa-tools' },
  });
  assert.deepEqual((await lastEventFor('oa-tools')).tools, ['lookup_order']);
  await withTrace(async () => {
    const s = await wrapped.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'where?' }], tools, stream: true });
    for await (const _ of s);
  }, { tags: { userId: 'oa-tools-stream' } });
  assert.deepEqual((await lastEventFor('oa-tools-stream')).tools, ['lookup_order']);
});

test('responses.create, plain and streaming, and embeddings', async () => {
  const respUsage = {
    input_tokens: FAKE.responses.input_tokens - FAKE.responses.cached_tokens,
    output_tokens: FAKE.responses.output_tokens,
    cache_read_tokens: FAKE.responses.cached_tokens,
    cache_creation_tokens: 0,
  };
  const r = await withTrace(() => wrapped.responses.create({ model: 'gpt-4o-mini', input: 'hello' }), { tags: { userId: 'oa-resp' } });
  assert.equal(r.output_text, 'Hi!');
  assert.deepEqual((await lastEventFor('oa-resp')).usage, respUsage);

  const events = [];
  await withTrace(async () => {
    for await (const ev of await wrapped.responses.create({ model: 'gpt-4o-mini', input: 'hello', stream: true })) events.push(ev.type);
  }, { tags: { userId: 'oa-resp-stream' } });
  assert.deepEqual(events, ['response.created', 'response.output_item.added', 'response.content_part.added', 'response.output_text.delta', 'response.completed']);
  assert.deepEqual((await lastEventFor('oa-resp-stream')).usage, respUsage);

  const emb = await withTrace(() => wrapped.embeddings.create({ model: 'text-embedding-3-small', input: 'vector me' }), { tags: { userId: 'oa-emb' } });
  assert.equal(emb.data.length, 1);
  const e = await lastEventFor('oa-emb');
  assert.deepEqual(e.usage, { input_tokens: 8, output_tokens: 0, cache_read_tokens: 0, cache_creation_tokens: 0 });
});

test('a provider error is rethrown unchanged and recorded as an error', async () => {
  let fromPlain;
  try {
    await plain.chat.completions.create({ model: 'fail-500', messages: [] });
  } catch (err) {
    fromPlain = err;
  }
  let fromWrapped;
  try {
    await withTrace(() => wrapped.chat.completions.create({ model: 'fail-500', messages: [] }), { tags: { userId: 'oa-error' } });
  } catch (err) {
    fromWrapped = err;
  }
  assert.ok(fromWrapped instanceof OpenAI.APIError);
  assert.equal(fromWrapped.constructor, fromPlain.constructor);
  assert.equal(fromWrapped.status, 500);
  assert.equal(fromWrapped.message, fromPlain.message);
  const e = await lastEventFor('oa-error');
  assert.equal(e.status, 'error');
  assert.match(e.error, /^500 /);
  assert.equal(e.model, 'fail-500');
});

test('the server has the numbers: spend per user from the recorded usage', async () => {
  await flush();
  const users = await tt.users();
  const plainUser = users.find((u) => u.user_id === 'oa-plain');
  assert.equal(plainUser.events, 1);
  assert.equal(plainUser.traces, 1);
  assert.equal(plainUser.spend_nano, nanoCost(chatUsage, GPT_4O_MINI));
  assert.equal(plainUser.top_model, returnedModel('gpt-4o-mini'));
  const errorUser = users.find((u) => u.user_id === 'oa-error');
  assert.equal(errorUser.events, 1);
  assert.equal(errorUser.spend_nano, 0);
});
