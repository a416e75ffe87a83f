// wrapAnthropic with the real `@anthropic-ai/sdk` package against the fake provider and the real server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { wrapAnthropic, withTrace, flush, configure } from 'tokentally/anthropic';
import { startTokentally, startFakeProvider, FAKE, returnedModel, nanoCost } from '../test-support/helpers.mjs';

let tt;
let fake;
let wrapped;
const SONNET_4_6 = { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75, cacheWrite1h: 6 };
const a = FAKE.anthropic;
const usage = {
  input_tokens: a.input_tokens,
  output_tokens: a.output_tokens,
  cache_read_tokens: a.cache_read_input_tokens,
  cache_creation_tokens: a.cache_creation_input_tokens,
  cache_creation_1h_tokens: a.ephemeral_1h_input_tokens,
};

before(async () => {
  tt = await startTokentally();
  fake = await startFakeProvider();
  configure({ flushIntervalMs: 50 });
  wrapped = wrapAnthropic(new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.url, maxRetries: 0 }), {
    agent: 'claude-helper',
    endpoint: tt.url,
    apiKey: tt.ingestKey,
  });
});

after(async () => {
  await flush();
  await tt?.stop();
  await fake?.stop();
});

const eventsFor = async (userId) => {
  await flush();
  return tt.eventsOf(userId);
};
const params = { model: 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] };

test('messages.create records the separate cache buckets and the 1-hour writes', async () => {
  const msg = await withTrace(() => wrapped.messages.create(params), { tags: { userId: 'an-plain' } });
  assert.equal(msg.content[0].text, 'Hi from Claude');
  const [e] = await eventsFor('an-plain');
  assert.equal(e.provider, 'anthropic');
  assert.equal(e.model, returnedModel('claude-sonnet-4-6'));
  assert.equal(e.agent, 'claude-helper');
  assert.deepEqual(e.usage, usage);
});

test('stream: true yields the same events and records usage once', async () => {
  const types = [];
  await withTrace(async () => {
    for await (const ev of await wrapped.messages.create({ ...params, stream: true })) types.push(ev.type);
  }, { tags: { userId: 'an-stream' } });
  assert.deepEqual(types, ['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  const events = await eventsFor('an-stream');
  assert.equal(events.length, 1);
  assert.deepEqual(events[0].usage, usage);
});

test('messages.stream() is recorded once, with tool names', async () => {
  const tools = [{ name: 'get_weather', description: 'w', input_schema: { type: 'object', properties: {} } }];
  const final = await withTrace(() => wrapped.messages.stream({ ...params, tools }).finalMessage(), { tags: { userId: 'an-helper' } });
  assert.equal(final.content[0].name, 'get_weather');
  const events = await eventsFor('an-helper');
  assert.equal(events.length, 1);
  assert.deepEqual(events[0].tools, ['get_weather']);
  assert.deepEqual(events[0].usage, usage);
});

test('a provider error is rethrown unchanged', async () => {
  await assert.rejects(
    withTrace(() => wrapped.messages.create({ ...params, model: 'fail-529' }), { tags: { userId: 'an-error' } }),
    (err) => err instanceof Anthropic.APIError && err.status === 529,
  );
  const [e] = await eventsFor('an-error');
  assert.equal(e.status, 'error');
});

test('the server prices the buckets, 1-hour writes included', async () => {
  await flush();
  const user = (await tt.users()).find((u) => u.user_id === 'an-plain');
  assert.equal(user.spend_nano, nanoCost(usage, SONNET_4_6));
  assert.equal(user.cache_creation_tokens, a.cache_creation_input_tokens);
});
