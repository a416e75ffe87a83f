// Delivery: the app is unaffected when tokentally is down, minimal privacy keeps prompts in the
// process, a 400 is not retried.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { wrapOpenAI, wrapAnthropic, withTrace, flush, configure, deliveryStats } from 'tokentally';
import { startFakeProvider } from '../test-support/helpers.mjs';

let fake;
before(async () => {
  fake = await startFakeProvider();
});
after(async () => {
  await fake?.stop();
});

/** An ingest endpoint that records raw bodies and answers with `status`. */
async function capture(status) {
  const bodies = [];
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    bodies.push(Buffer.concat(chunks).toString('utf8'));
    res.writeHead(status, { 'content-type': 'application/json' }).end(status === 200 ? '{"accepted":1,"duplicates":0}' : '{"error":"bad","field":"events[0].id"}');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, bodies, close: () => new Promise((r) => server.close(r)) };
}

test('tokentally down: the app works, flush resolves, drops are counted', async () => {
  // A port nothing listens on.
  const dead = createServer();
  await new Promise((r) => dead.listen(0, '127.0.0.1', r));
  const port = dead.address().port;
  await new Promise((r) => dead.close(r));
  configure({ endpoint: `http://127.0.0.1:${port}`, apiKey: 'tt_ingest_x', maxRetries: 2, retryBaseMs: 10, flushIntervalMs: 20, onError: () => {} });
  const client = wrapOpenAI(new OpenAI({ apiKey: 'sk', baseURL: `${fake.url}/v1`, maxRetries: 0 }));
  const before = deliveryStats();
  const answers = await withTrace(
    () => Promise.all(Array.from({ length: 5 }, () => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [] }))),
    { tags: { userId: 'down' } },
  );
  assert.equal(answers.length, 5);
  assert.ok(answers.every((a) => a.choices[0].message.content === 'Hello there!'));
  await flush();
  const after = deliveryStats();
  assert.equal(after.dropped - before.dropped, 6, '5 events and 1 trace given up');
  assert.equal(after.sent, before.sent);
});

test('minimal privacy: no prompt or response leaves the process', async () => {
  const sink = await capture(200);
  try {
    configure({ endpoint: sink.url, apiKey: 'tt_ingest_x', maxRetries: 0, onError: () => {} });
    const marker = 'SECRET-MARKER-7f3a';
    const openai = wrapOpenAI(new OpenAI({ apiKey: 'sk', baseURL: `${fake.url}/v1`, maxRetries: 0 }), { privacy: 'minimal' });
    const anthropic = wrapAnthropic(new Anthropic({ apiKey: 'sk', baseURL: fake.url, maxRetries: 0 }), { privacy: 'minimal' });
    await withTrace(async () => {
      await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: marker }] });
      for await (const _ of await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: marker }], stream: true }));
      await anthropic.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 10, system: marker, messages: [{ role: 'user', content: marker }] });
    }, { tags: { userId: 'private' } });
    await flush();
    const sent = sink.bodies.join('\n');
    const events = sink.bodies.flatMap((b) => JSON.parse(b).events ?? []);
    assert.equal(events.length, 3);
    assert.ok(events.every((e) => e.usage.input_tokens > 0 && e.tags.userId === 'private'));
    assert.ok(!sent.includes(marker), 'the marker never leaves the process');
    assert.ok(!sent.includes('Hello there') && !sent.includes('Hi from Claude'), 'nor do responses');
  } finally {
    await sink.close();
  }
});

test('a 400 from tokentally is not retried', async () => {
  const sink = await capture(400);
  try {
    configure({ endpoint: sink.url, apiKey: 'tt_ingest_x', maxRetries: 5, retryBaseMs: 10, onError: () => {} });
    const before = deliveryStats();
    const client = wrapOpenAI(new OpenAI({ apiKey: 'sk', baseURL: `${fake.url}/v1`, maxRetries: 0 }));
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [] });
    await flush();
    assert.equal(sink.bodies.length, 1);
    assert.equal(deliveryStats().rejected - before.rejected, 1);
  } finally {
    await sink.close();
  }
});

test('CommonJS require works too', async () => {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const cjs = require('tokentally/anthropic');
  assert.equal(typeof cjs.wrapAnthropic, 'function');
  assert.equal(typeof cjs.withTrace, 'function');
  assert.equal(typeof require('tokentally').wrapOpenAI, 'function');
});
