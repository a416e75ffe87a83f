// Every client surface works exactly as unwrapped and is recorded once: structured outputs
// (parse), raw responses, withOptions copies, tee'd streams, Anthropic beta.messages, legacy
// completions, images, audio, responses.stream(); prompts are snapshots; stopped streams are
// recorded as cancelled. The real `openai` and `@anthropic-ai/sdk` against the fake provider, the
// real server behind a recording proxy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { AzureOpenAI, toFile } from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { wrapOpenAI, wrapAnthropic, withTrace, withTags, flush, configure, deliveryStats, log, providerFromBaseURL } from 'tokentally';
import { startTokentally, startFakeProvider, FAKE, returnedModel } from '../test-support/helpers.mjs';
import { withoutNullUsage } from '../dist/esm/record.js';

let tt;
let fake;
let openaiOpts;
let anthropicOpts;
let plain;
let wrapped;
let plainClaude;
let claude;

before(async () => {
  tt = await startTokentally();
  fake = await startFakeProvider({ jitter: false });
  configure({ flushIntervalMs: 50, endpoint: tt.url, apiKey: tt.ingestKey });
  openaiOpts = { apiKey: 'sk-test', baseURL: `${fake.url}/v1`, maxRetries: 0 };
  anthropicOpts = { apiKey: 'sk-test', baseURL: fake.url, maxRetries: 0 };
  plain = new OpenAI(openaiOpts);
  // The fake stands for api.openai.com, which takes stream_options (a loopback host is not assumed to).
  wrapped = wrapOpenAI(new OpenAI(openaiOpts), { streamUsage: true });
  plainClaude = new Anthropic(anthropicOpts);
  claude = wrapAnthropic(new Anthropic(anthropicOpts));
});

after(async () => {
  await flush();
  await tt?.stop();
  await fake?.stop();
});

/** The events recorded for `userId`, after a flush. */
const eventsFor = async (userId) => {
  await flush();
  return tt.eventsOf(userId);
};
const oneEventFor = async (userId) => {
  const events = await eventsFor(userId);
  assert.equal(events.length, 1, `exactly one event for ${userId}: ${JSON.stringify(events)}`);
  return events[0];
};
const as = (userId, fn) => withTrace(fn, { tags: { userId } });

const chatUsage = {
  input_tokens: FAKE.chat.prompt_tokens - FAKE.chat.cached_tokens,
  output_tokens: FAKE.chat.completion_tokens,
  cache_read_tokens: FAKE.chat.cached_tokens,
  cache_creation_tokens: 0,
};
const responsesUsage = {
  input_tokens: FAKE.responses.input_tokens - FAKE.responses.cached_tokens,
  output_tokens: FAKE.responses.output_tokens,
  cache_read_tokens: FAKE.responses.cached_tokens,
  cache_creation_tokens: 0,
};
const schema = {
  name: 'answer',
  strict: true,
  schema: { type: 'object', properties: { answer: { type: 'string' }, confidence: { type: 'string' } }, required: ['answer', 'confidence'], additionalProperties: false },
};
const hi = [{ role: 'user', content: 'hi' }];

test('chat.completions.parse (structured output) works wrapped and is recorded once', async () => {
  const params = { model: 'gpt-4o-mini', messages: hi, response_format: { type: 'json_schema', json_schema: schema } };
  const expected = await plain.chat.completions.parse(params);
  const got = await as('parse-chat', () => wrapped.chat.completions.parse(params));
  assert.deepEqual(got.choices[0].message.parsed, { answer: '42', confidence: 'high' });
  assert.deepEqual(got, expected);
  const e = await oneEventFor('parse-chat');
  assert.deepEqual(e.usage, chatUsage);
  assert.equal(e.status, 'ok');
});

test('responses.parse works wrapped and is recorded once with its usage', async () => {
  const params = { model: 'gpt-4o-mini', input: 'hi', text: { format: { type: 'json_schema', ...schema } } };
  const expected = await plain.responses.parse(params);
  const got = await as('parse-responses', () => wrapped.responses.parse(params));
  assert.deepEqual(got.output_parsed, { answer: '42', confidence: 'high' });
  assert.deepEqual(got.output_parsed, expected.output_parsed);
  const e = await oneEventFor('parse-responses');
  assert.deepEqual(e.usage, responsesUsage);
});

test('asResponse() and withResponse() keep working and are recorded', async () => {
  const params = { model: 'gpt-4o-mini', messages: hi };
  const raw = await as('as-response', () => wrapped.chat.completions.create(params).asResponse());
  const body = await raw.json();
  assert.equal(body.choices[0].message.content, 'Hello there!');
  assert.deepEqual((await oneEventFor('as-response')).usage, chatUsage);

  const { data, response } = await as('with-response', () => wrapped.chat.completions.create(params).withResponse());
  assert.equal(data.choices[0].message.content, 'Hello there!');
  assert.equal(response.status, 200);
  assert.deepEqual((await oneEventFor('with-response')).usage, chatUsage);

  // A raw stream: the caller reads exactly the bytes it reads unwrapped (the usage chunk the
  // wrapper asked for is taken out), and the usage is recorded from what passed.
  // A slow model sends each event in its own write, so the usage event arrives alone.
  const slow = { ...params, model: 'gpt-4o-slow', stream: true };
  const plainRaw = await plain.chat.completions.create(slow).asResponse();
  const plainText = await plainRaw.text();
  const rawStream = await as('as-response-stream', () => wrapped.chat.completions.create(slow).asResponse());
  assert.equal(rawStream.url, plainRaw.url);
  assert.equal(rawStream.headers.get('content-type'), plainRaw.headers.get('content-type'));
  const text = await rawStream.text();
  assert.equal(text, plainText);
  const e = await oneEventFor('as-response-stream');
  assert.deepEqual(e.usage, chatUsage);

  // A raw stream the caller cancels after its first bytes: cancelled, and not read further.
  const before = fake.bodies().length;
  const partial = await as('as-response-cancel', () =>
    wrapped.chat.completions.create({ model: 'gpt-4o-slow', messages: hi, stream: true }).asResponse(),
  );
  const reader = partial.body.getReader();
  await reader.read();
  await reader.cancel();
  assert.equal(fake.bodies().length, before + 1);
  const c = await oneEventFor('as-response-cancel');
  assert.equal(c.status, 'cancelled');
});

test('a raw stream read to its last event and then let go is recorded, as complete', async () => {
  const raw = await as('raw-let-go', () => wrapped.chat.completions.create({ model: 'gpt-4o-slow', messages: hi, stream: true }).asResponse());
  const reader = raw.body.getReader();
  let text = '';
  const decoder = new TextDecoder();
  while (!text.includes('[DONE]')) text += decoder.decode((await reader.read()).value);
  reader.releaseLock();
  const e = await oneEventFor('raw-let-go');
  assert.deepEqual([e.status, e.usage], ['ok', chatUsage]);
});

test('a server that sends running usage on every chunk is recorded with the final figures', async () => {
  await as('running-usage', async () => {
    for await (const _ of await wrapped.chat.completions.create({ model: 'gpt-4o-running', messages: hi, stream: true }));
  });
  const e = await oneEventFor('running-usage');
  assert.deepEqual(e.usage, chatUsage);
  assert.equal(e.response.content, 'Hello there!');
});

test('the usage:null member the wrapper added is removed at the top level only', () => {
  assert.equal(withoutNullUsage('{"a":1,"usage":null,"b":2}'), '{"a":1,"b":2}');
  assert.equal(withoutNullUsage('{"a":1,"usage":null}'), '{"a":1}');
  assert.equal(withoutNullUsage('{"usage":null}'), '{}');
  assert.equal(
    withoutNullUsage('{"choices":[{"delta":{"usage":null}}],"x":"\\"usage\\":null","usage":null}'),
    '{"choices":[{"delta":{"usage":null}}],"x":"\\"usage\\":null"}',
  );
  assert.equal(withoutNullUsage('{"choices":[{"usage":null}]}'), undefined);
  assert.equal(withoutNullUsage('{"usage":{"prompt_tokens":1}}'), undefined);
});

test('a stream left after its last event is complete, not cancelled', async () => {
  await as('left-at-end', async () => {
    for await (const ev of await claude.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: hi, stream: true })) {
      if (ev.type === 'message_stop') break;
    }
    for await (const ev of await wrapped.responses.create({ model: 'gpt-4o-mini', input: 'hi', stream: true })) {
      if (ev.type === 'response.completed') break;
    }
  });
  const [a, r] = await eventsFor('left-at-end');
  assert.deepEqual([a.status, a.usage.output_tokens, a.usage.estimated], ['ok', FAKE.anthropic.output_tokens, undefined]);
  assert.deepEqual([r.status, r.usage], ['ok', responsesUsage]);
});

test('a stream aborted through its controller, or a helper aborted, is cancelled', async () => {
  await as('aborted', async () => {
    const stream = await wrapped.chat.completions.create({ model: 'gpt-4o-slow', messages: hi, stream: true });
    let n = 0;
    for await (const _ of stream) if (++n === 2) stream.controller.abort();
  });
  const e = await oneEventFor('aborted');
  assert.equal(e.status, 'cancelled');
  assert.equal(e.usage.estimated, true);

  await as('aborted-helper', async () => {
    const runner = claude.messages.stream({ model: 'claude-slow', max_tokens: 100, messages: hi });
    runner.on('text', () => runner.abort());
    await runner.done().catch(() => undefined);
  });
  const a = await oneEventFor('aborted-helper');
  assert.equal(a.status, 'cancelled');
  assert.equal(a.usage.input_tokens, FAKE.anthropic.input_tokens);
});

test('clients made with withOptions are recorded, OpenAI and Anthropic', async () => {
  await as('with-options', async () => {
    await wrapped.withOptions({ timeout: 5_000 }).chat.completions.create({ model: 'gpt-4o-mini', messages: hi });
    await claude.withOptions({ timeout: 5_000 }).messages.create({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: hi });
  });
  const events = await eventsFor('with-options');
  assert.deepEqual(events.map((e) => e.provider).sort(), ['anthropic', 'openai']);
});

test('stream.tee(): both halves read the whole stream, recorded once', async () => {
  const params = { model: 'gpt-4o-mini', messages: hi, stream: true };
  const read = async (s) => {
    const out = [];
    for await (const c of s) out.push(c);
    return out;
  };
  const expected = await read(await plain.chat.completions.create(params));
  const [left, right] = await as('tee', async () => (await wrapped.chat.completions.create(params)).tee());
  const [a, b] = await Promise.all([read(left), read(right)]);
  assert.deepEqual(a, expected);
  assert.deepEqual(b, expected);
  const e = await oneEventFor('tee');
  assert.deepEqual(e.usage, chatUsage);
  assert.equal(e.response.content, 'Hello there!');
});

test('Anthropic beta.messages.create and beta.messages.stream() are recorded', async () => {
  const params = { model: 'claude-sonnet-4-5', max_tokens: 100, messages: hi };
  const expected = await plainClaude.beta.messages.create(params);
  const got = await as('beta', () => claude.beta.messages.create(params));
  assert.deepEqual(got.content, expected.content);
  const final = await as('beta-stream', () => claude.beta.messages.stream(params).finalMessage());
  assert.equal(final.content[0].text, 'Hi from Claude');
  for (const user of ['beta', 'beta-stream']) {
    const e = await oneEventFor(user);
    assert.equal(e.model, returnedModel('claude-sonnet-4-5'));
    assert.equal(e.usage.cache_read_tokens, FAKE.anthropic.cache_read_input_tokens);
    assert.equal(e.usage.output_tokens, FAKE.anthropic.output_tokens);
  }
});

test('legacy completions, images, transcriptions and speech are recorded', async () => {
  await as('other-surfaces', async () => {
    const c = await wrapped.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Say' });
    assert.equal(c.choices[0].text, 'Once upon');
    const chunks = [];
    for await (const x of await wrapped.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Say', stream: true })) chunks.push(x);
    assert.ok(chunks.every((x) => x.choices.length > 0), 'the usage chunk the wrapper asked for is hidden');
    const img = await wrapped.images.generate({ model: 'gpt-image-1', prompt: 'a cat' });
    assert.equal(img.data[0].b64_json, 'aGk=');
    const t = await wrapped.audio.transcriptions.create({ model: 'gpt-4o-transcribe', file: await toFile(Buffer.from('RIFF....'), 'a.wav') });
    assert.equal(t.text, 'hello world');
    const speech = await wrapped.audio.speech.create({ model: 'gpt-4o-mini-tts', voice: 'alloy', input: 'hello' });
    assert.equal((await speech.arrayBuffer()).byteLength, 4, 'the audio bytes reach the caller unread');
  });
  const events = await eventsFor('other-surfaces');
  const byModel = Object.fromEntries(events.map((e) => [e.model, e]));
  assert.equal(events.length, 5);
  const legacy = events.filter((e) => e.model.startsWith('gpt-3.5-turbo-instruct'));
  assert.equal(legacy.length, 2);
  for (const e of legacy) assert.deepEqual(e.usage, chatUsage);
  assert.deepEqual(byModel['gpt-image-1'].usage, { input_tokens: FAKE.image.input_tokens, output_tokens: FAKE.image.output_tokens, cache_read_tokens: 0, cache_creation_tokens: 0 });
  assert.equal(byModel['gpt-image-1'].prompt, 'a cat');
  const tr = byModel['gpt-4o-transcribe'];
  assert.deepEqual(tr.usage, {
    input_tokens: FAKE.transcription.input_tokens, output_tokens: FAKE.transcription.output_tokens, cache_read_tokens: 0, cache_creation_tokens: 0,
    audio_input_tokens: FAKE.transcription.audio_tokens,
  });
  assert.equal(tr.prompt, undefined, 'the uploaded file is never captured');
  assert.equal(byModel['gpt-4o-mini-tts'].status, 'ok');
});

test('responses.stream() records the usage of the final response', async () => {
  const final = await as('responses-stream', () => wrapped.responses.stream({ model: 'gpt-4o-mini', input: 'hi' }).finalResponse());
  assert.equal(final.output[0].content[0].text, 'Hi!');
  const e = await oneEventFor('responses-stream');
  assert.deepEqual(e.usage, responsesUsage);
});

test('chat.completions.stream() helper is recorded once with its usage', async () => {
  const final = await as('chat-stream-helper', () => wrapped.chat.completions.stream({ model: 'gpt-4o-mini', messages: hi }).finalChatCompletion());
  assert.equal(final.choices[0].message.content, 'Hello there!');
  assert.deepEqual((await oneEventFor('chat-stream-helper')).usage, chatUsage);
});

test('an agent loop records each turn with the messages sent at that turn', async () => {
  await as('agent-loop', async () => {
    const messages = [{ role: 'user', content: 'plan a trip' }];
    for (let turn = 0; turn < 3; turn++) {
      const r = await wrapped.chat.completions.create({ model: 'gpt-4o-mini', messages });
      messages.push(r.choices[0].message, { role: 'user', content: `turn ${turn + 1}` });
    }
  });
  const events = await eventsFor('agent-loop');
  assert.deepEqual(events.map((e) => e.prompt.length), [1, 3, 5]);
});

test('a stream stopped with break is recorded as cancelled: OpenAI estimated, Anthropic as reported', async () => {
  await as('stopped-openai', async () => {
    const stream = await wrapped.chat.completions.create({ model: 'gpt-4o-slow', messages: [{ role: 'user', content: 'x'.repeat(400) }], stream: true });
    let n = 0;
    for await (const _ of stream) if (++n === 3) break;
  });
  const e = await oneEventFor('stopped-openai');
  assert.equal(e.status, 'cancelled');
  assert.equal(e.usage.estimated, true);
  assert.ok(e.usage.input_tokens >= 100, `input estimated from the prompt: ${e.usage.input_tokens}`);
  assert.ok(e.usage.output_tokens > 0, 'output estimated from the text received');
  assert.equal(e.error, undefined, 'a cancelled call is not an error');

  await as('stopped-anthropic', async () => {
    const stream = await claude.messages.create({ model: 'claude-slow', max_tokens: 100, messages: hi, stream: true });
    let n = 0;
    for await (const _ of stream) if (++n === 3) break;
  });
  const a = await oneEventFor('stopped-anthropic');
  assert.equal(a.status, 'cancelled');
  assert.equal(a.usage.input_tokens, FAKE.anthropic.input_tokens, 'the input message_start reported');
  assert.equal(a.usage.estimated, undefined);

  // The server stores and shows the outcome.
  const stored = await tt.read(`/v1/me/ai-apps/events/${e.id}`);
  assert.equal(stored.summary.status, 'cancelled');
  assert.equal(stored.usage_estimated, true);
});

test('flush() waits for a stream still being read', async () => {
  let reading;
  await as('flush-waits', async () => {
    const stream = await wrapped.chat.completions.create({ model: 'gpt-4o-slow', messages: hi, stream: true });
    reading = (async () => {
      for await (const _ of stream);
    })();
  });
  await flush({ timeoutMs: 5_000 });
  const events = tt.eventsOf('flush-waits');
  assert.equal(events.length, 1, 'the stream ended and its event was sent before flush resolved');
  assert.equal(events[0].status, 'ok');
  await reading;
});

test('reasoning and audio tokens are recorded in their own fields and shown by the server', async () => {
  await as('parts', async () => {
    await wrapped.chat.completions.create({ model: 'o4-mini', messages: hi });
    await wrapped.chat.completions.create({ model: 'gpt-4o-audio-preview', messages: hi });
  });
  const [o4, audio] = await eventsFor('parts');
  assert.equal(o4.usage.reasoning_tokens, FAKE.chat.reasoning_tokens);
  assert.equal(audio.usage.audio_input_tokens, FAKE.chat.audio_input_tokens);
  assert.equal(audio.usage.audio_output_tokens, FAKE.chat.audio_output_tokens);
  const stored = await tt.read(`/v1/me/ai-apps/events/${o4.id}`);
  assert.equal(stored.reasoning_tokens, FAKE.chat.reasoning_tokens);
  assert.equal(stored.summary.output_tokens, FAKE.chat.completion_tokens, 'reasoning stays inside output');
});

test('withTags merges tags over the trace for the calls inside it', async () => {
  await withTrace(
    async () => {
      await wrapped.chat.completions.create({ model: 'gpt-4o-mini', messages: hi });
      await withTags({ feature: 'summarize', plan: 'trial' }, () => wrapped.chat.completions.create({ model: 'gpt-4o-mini', messages: hi }));
    },
    { tags: { userId: 'tagged', plan: 'pro' } },
  );
  const [outer, inner] = await eventsFor('tagged');
  assert.deepEqual(outer.tags, { userId: 'tagged', plan: 'pro' });
  assert.deepEqual(inner.tags, { userId: 'tagged', plan: 'trial', feature: 'summarize' });
  assert.equal(inner.trace_id, outer.trace_id, 'same trace');
});

test('redact rewrites or drops prompt and response; disabled and sampleRate 0 record nothing', async () => {
  try {
    configure({ redact: (e) => ({ ...e, prompt: '[redacted]' }) });
    await as('redacted', () => wrapped.chat.completions.create({ model: 'gpt-4o-mini', messages: hi }));
    const e = await oneEventFor('redacted');
    assert.equal(e.prompt, '[redacted]');
    assert.equal(e.response[0].content, 'Hello there!');
    configure({ redact: () => null });
    await as('redacted-all', () => wrapped.chat.completions.create({ model: 'gpt-4o-mini', messages: hi }));
    const d = await oneEventFor('redacted-all');
    assert.equal('prompt' in d || 'response' in d, false);
    assert.deepEqual(d.usage, chatUsage, 'the call itself is still counted');
    configure({ redact: () => { throw new Error('oops'); } });
    await as('redact-throws', () => wrapped.chat.completions.create({ model: 'gpt-4o-mini', messages: hi }));
    assert.equal('prompt' in (await oneEventFor('redact-throws')), false, 'fails closed');
  } finally {
    configure({ redact: null });
  }
  try {
    configure({ disabled: true });
    await as('disabled', () => wrapped.chat.completions.create({ model: 'gpt-4o-mini', messages: hi }));
    configure({ disabled: false, sampleRate: 0 });
    await as('unsampled', () => wrapped.chat.completions.create({ model: 'gpt-4o-mini', messages: hi }));
  } finally {
    configure({ disabled: false, sampleRate: 1 });
  }
  assert.equal((await eventsFor('disabled')).length, 0);
  assert.equal((await eventsFor('unsampled')).length, 0);
  await as('sampled-again', () => wrapped.chat.completions.create({ model: 'gpt-4o-mini', messages: hi }));
  assert.equal((await eventsFor('sampled-again')).length, 1);
});

test('prompts of any size and script fit the server: a batch is never refused for its size', async () => {
  const before = deliveryStats();
  const big = [{ role: 'user', content: 'Привет, "мир"! '.repeat(5_000) }];
  await as('big-prompts', () => Promise.all(Array.from({ length: 100 }, () => wrapped.chat.completions.create({ model: 'gpt-4o-mini', messages: big }))));
  const events = await eventsFor('big-prompts');
  assert.equal(events.length, 100);
  assert.equal(events[0].prompt.truncated, true, 'capped, with a preview');
  assert.ok(Buffer.byteLength(JSON.stringify(events[0].prompt)) <= 64 * 1024);
  assert.equal(deliveryStats().rejected - before.rejected, 0);
});

test('log() prompts and responses go through redact and the cap too', async () => {
  try {
    configure({ redact: (e) => ({ ...e, prompt: '[redacted]' }) });
    await as('log-redact', () => log({ name: 'rerank', prompt: 'secret', response: 'x'.repeat(100_000) }));
  } finally {
    configure({ redact: null });
  }
  const e = await oneEventFor('log-redact');
  assert.equal(e.prompt, '[redacted]');
  assert.equal(e.response.truncated, true);
});

test('flush() does not wait past its deadline for a call nobody finishes, and still sends the rest', async () => {
  await as('never-read', () => wrapped.chat.completions.create({ model: 'gpt-4o-slow', messages: hi, stream: true }));
  await as('sent-anyway', () => wrapped.chat.completions.create({ model: 'gpt-4o-mini', messages: hi }));
  const started = Date.now();
  await flush({ timeoutMs: 1_500 });
  assert.ok(Date.now() - started < 5_000);
  assert.equal(tt.eventsOf('sent-anyway').length, 1);
});

test('provider from baseURL; Azure gets no stream_options; OpenRouter reports its cost', async () => {
  const cases = {
    'https://openrouter.ai/api/v1': 'openrouter',
    'https://api.groq.com/openai/v1': 'groq',
    'https://api.together.xyz/v1': 'together',
    'https://my-res.openai.azure.com/openai/deployments/gpt4o': 'azure',
    'https://bedrock-runtime.us-east-1.amazonaws.com/openai/v1': 'bedrock',
    'https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/endpoints/openapi': 'vertex_ai',
    'https://generativelanguage.googleapis.com/v1beta/openai/': 'gemini',
    'https://api.mistral.ai/v1': 'mistral',
    'https://api.deepseek.com': 'deepseek',
    'https://api.openai.com/v1': 'openai',
    'https://api.anthropic.com': 'anthropic',
    'http://127.0.0.1:8080/v1': undefined,
    'not a url': undefined,
  };
  for (const [url, provider] of Object.entries(cases)) assert.equal(providerFromBaseURL(url), provider, url);

  const azure = wrapOpenAI(new AzureOpenAI({ endpoint: fake.url, apiKey: 'k', apiVersion: '2024-02-01', deployment: 'gpt-4o-mini' }));
  const chunks = await as('azure', async () => {
    const out = [];
    for await (const c of await azure.chat.completions.create({ model: 'gpt-4o-mini', messages: hi, stream: true })) out.push(c);
    return out;
  });
  assert.ok(chunks.length > 0, 'the stream works: stream_options was not added');
  const az = await oneEventFor('azure');
  assert.equal(az.provider, 'azure');
  assert.equal(az.usage.estimated, true, 'no usage reported: estimated and marked');

  // A host not in the list (a gateway, a local server) is not sent stream_options unless asked.
  const gateway = wrapOpenAI(new OpenAI(openaiOpts));
  const sent = fake.bodies().length;
  await as('gateway', async () => {
    for await (const _ of await gateway.chat.completions.create({ model: 'gpt-4o-mini', messages: hi, stream: true }));
  });
  assert.equal(fake.bodies()[sent].body.stream_options, undefined);
  const gw = await oneEventFor('gateway');
  assert.equal(gw.provider, 'openai');
  assert.equal(gw.usage.estimated, true);

  const router = wrapOpenAI(new OpenAI(openaiOpts), { provider: 'openrouter' });
  await as('openrouter', () => router.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: hi }));
  const or = await oneEventFor('openrouter');
  assert.equal(or.provider, 'openrouter');
  assert.equal(or.cost_usd, '0.00123');
  const stored = await tt.read(`/v1/me/ai-apps/events/${or.id}`);
  assert.deepEqual([stored.cost_source, stored.summary.cost_nano], ['override', 1_230_000]);
});
