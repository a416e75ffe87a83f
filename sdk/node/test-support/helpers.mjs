// Test helpers: the real tokentally server, a recording proxy in front of it, and a small fake
// OpenAI/Anthropic HTTP server that the real `openai` and `@anthropic-ai/sdk` clients talk to.
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BIN = process.env.TOKENTALLY_BIN ?? join(root, 'target', 'debug', 'tokentally');

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`)));
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

/** The real server with a fresh database, and a proxy that records every ingest body. */
export async function startTokentally() {
  const dir = mkdtempSync(join(tmpdir(), 'tokentally-sdk-'));
  const db = join(dir, 'sdk.db');
  const key = (scope) =>
    execFileSync(BIN, ['keys', 'create', '--scope', scope, '--db', db], { encoding: 'utf8' }).trim().split('\n').pop();
  const ingestKey = key('ingest');
  const readKey = key('read');
  const child = spawn(BIN, ['serve', '--no-login', '--addr', '127.0.0.1:0', '--db', db], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TOKENTALLY_LOG: 'warn' },
  });
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`tokentally exited with ${code}`)));
  });
  const base = line.match(/http:\/\/[^/\s]+/)[0];
  const batches = [];
  const proxy = createServer(async (req, res) => {
    const body = await readBody(req);
    batches.push(JSON.parse(body));
    const upstream = await fetch(`${base}${req.url}`, { method: req.method, headers: { authorization: req.headers.authorization, 'content-type': 'application/json' }, body });
    const text = await upstream.text();
    res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(text);
  });
  const proxyUrl = await listen(proxy);
  return {
    url: proxyUrl,
    ingestKey,
    /** Every event the SDK sent, in order. */
    events: () => batches.flatMap((b) => b.events ?? []),
    traces: () => batches.flatMap((b) => b.traces ?? []),
    /** The events sent for one end user (tags.userId), in order. */
    eventsOf: (userId) => batches.flatMap((b) => b.events ?? []).filter((e) => e.tags?.userId === userId),
    /** A read-API answer (`/v1/me/ai-apps/...`). */
    async read(path) {
      const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${readKey}` } });
      const json = await res.json();
      if (res.status !== 200) throw new Error(`${path}: ${JSON.stringify(json)}`);
      return json;
    },
    async users(query = '') {
      const res = await fetch(`${base}/v1/me/ai-apps/users?limit=500${query}`, { headers: { authorization: `Bearer ${readKey}` } });
      const json = await res.json();
      if (res.status !== 200) throw new Error(JSON.stringify(json));
      return json.users;
    },
    /** Stops the server (SIGTERM, on which it saves its aggregate) and waits for it to exit
     * before removing its directory. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill();
        await exited;
      }
      await new Promise((r) => proxy.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Server-sent events; with `delayMs`, one event at a time (a slow model), stopping if the client leaves. */
const sse = async (res, events, delayMs = 0) => {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const [event, data] of events) {
    if (res.destroyed) return;
    if (event) res.write(`event: ${event}\n`);
    res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
  }
  res.end();
};

/** Models named `*slow*` stream ten pieces, 40 ms apart. */
const slowness = (model) => (String(model ?? '').includes('slow') ? 40 : 0);
const pieces = (model, normal) => (slowness(model) ? Array.from({ length: 10 }, (_, i) => `w${i} `) : normal);

/** Structured output: a JSON answer when the request asked for a JSON schema. */
const STRUCTURED = { answer: '42', confidence: 'high' };

/** Usage the fake returns, so tests can compute the expected buckets and cost. */
export const FAKE = {
  chat: { prompt_tokens: 1200, completion_tokens: 80, cached_tokens: 1000, reasoning_tokens: 50, audio_input_tokens: 150, audio_output_tokens: 30 },
  responses: { input_tokens: 500, cached_tokens: 100, output_tokens: 50 },
  embeddings: { prompt_tokens: 8 },
  image: { input_tokens: 50, output_tokens: 4160 },
  transcription: { input_tokens: 120, audio_tokens: 100, output_tokens: 5 },
  openrouterCost: 0.00123,
  anthropic: { input_tokens: 50, output_tokens: 300, cache_read_input_tokens: 2000, cache_creation_input_tokens: 1000, ephemeral_1h_input_tokens: 400 },
};

/** Returned model ids: dated, as providers answer. */
export const returnedModel = (model) => (model.startsWith('claude') ? `${model}-20250929` : `${model}-2024-07-18`);

/** Chat usage; reasoning models (`o…`) and audio models report their parts, OpenRouter its cost. */
function chatUsage(body) {
  const usage = {
    prompt_tokens: FAKE.chat.prompt_tokens,
    completion_tokens: FAKE.chat.completion_tokens,
    total_tokens: FAKE.chat.prompt_tokens + FAKE.chat.completion_tokens,
    prompt_tokens_details: { cached_tokens: FAKE.chat.cached_tokens },
  };
  if (/^o\d/.test(body.model)) usage.completion_tokens_details = { reasoning_tokens: FAKE.chat.reasoning_tokens };
  if (body.model.includes('audio')) {
    usage.prompt_tokens_details.audio_tokens = FAKE.chat.audio_input_tokens;
    usage.completion_tokens_details = { audio_tokens: FAKE.chat.audio_output_tokens };
  }
  if (body.model.includes('/')) usage.cost = FAKE.openrouterCost;
  return usage;
}

function chat(body, res) {
  const model = body.model.includes('/') ? body.model : returnedModel(body.model);
  const tool = body.tools?.[0]?.function?.name;
  const usage = chatUsage(body);
  const structured = body.response_format?.type === 'json_schema';
  const message = tool
    ? { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: tool, arguments: '{"q":"x"}' } }] }
    : { role: 'assistant', content: structured ? JSON.stringify(STRUCTURED) : 'Hello there!' };
  if (!body.stream) {
    return res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model, choices: [{ index: 0, message, finish_reason: tool ? 'tool_calls' : 'stop' }], usage }),
    );
  }
  const withUsage = body.stream_options?.include_usage === true;
  // Models named `*running*` send running usage on every chunk (as vLLM can), growing to the total.
  const running = body.model.includes('running');
  let sent = 0;
  const chunk = (delta, finish = null) => ({
    id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model,
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...(running ? { usage: { ...usage, completion_tokens: ++sent } } : withUsage ? { usage: null } : {}),
  });
  const chunks = tool
    ? [chunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: tool, arguments: '' } }] }), chunk({}, 'tool_calls')]
    : [chunk({ role: 'assistant', content: '' }), ...pieces(body.model, ['Hel', 'lo', ' there!']).map((p) => chunk({ content: p })), chunk({}, 'stop')];
  const events = chunks.map((c) => [null, c]);
  if (withUsage) events.push([null, { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model, choices: [], usage }]);
  events.push([null, '[DONE]']);
  return sse(res, events, slowness(body.model));
}

/** Legacy completions: text choices, chat's usage. */
function completions(body, res) {
  const model = returnedModel(body.model);
  const usage = chatUsage(body);
  if (!body.stream) {
    return res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({ id: 'cmpl-1', object: 'text_completion', created: 1, model, choices: [{ index: 0, text: 'Once upon', finish_reason: 'stop', logprobs: null }], usage }),
    );
  }
  const chunk = (text) => ({ id: 'cmpl-1', object: 'text_completion', created: 1, model, choices: [{ index: 0, text, finish_reason: null, logprobs: null }] });
  const events = [[null, chunk('Once')], [null, chunk(' upon')]];
  if (body.stream_options?.include_usage) events.push([null, { id: 'cmpl-1', object: 'text_completion', created: 1, model, choices: [], usage }]);
  events.push([null, '[DONE]']);
  return sse(res, events);
}

function responses(body, res) {
  const model = returnedModel(body.model);
  const tool = body.tools?.[0]?.name;
  const output = tool
    ? [{ type: 'function_call', id: 'fc_1', call_id: 'call_1', name: tool, arguments: '{}', status: 'completed' }]
    : [{ type: 'message', id: 'msg_1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: body.text?.format?.type === 'json_schema' ? JSON.stringify(STRUCTURED) : 'Hi!', annotations: [] }] }];
  const response = {
    id: 'resp_1', object: 'response', created_at: 1, status: 'completed', model, output,
    usage: { input_tokens: FAKE.responses.input_tokens, input_tokens_details: { cached_tokens: FAKE.responses.cached_tokens }, output_tokens: FAKE.responses.output_tokens, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 550 },
  };
  if (!body.stream) return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(response));
  const deltas = pieces(body.model, ['Hi!']).map((delta, i) => [
    'response.output_text.delta',
    { type: 'response.output_text.delta', sequence_number: i + 1, item_id: 'msg_1', output_index: 0, content_index: 0, delta },
  ]);
  return sse(
    res,
    [
      ['response.created', { type: 'response.created', sequence_number: 0, response: { ...response, status: 'in_progress', output: [], usage: null } }],
      ['response.output_item.added', { type: 'response.output_item.added', sequence_number: 0, output_index: 0, item: { ...output[0], status: 'in_progress', content: [] } }],
      ['response.content_part.added', { type: 'response.content_part.added', sequence_number: 0, item_id: 'msg_1', output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } }],
      ...deltas,
      ['response.completed', { type: 'response.completed', sequence_number: deltas.length + 1, response }],
    ],
    slowness(body.model),
  );
}

function messages(body, res) {
  const model = returnedModel(body.model);
  const tool = body.tools?.[0]?.name;
  const a = FAKE.anthropic;
  const usage = {
    input_tokens: a.input_tokens, output_tokens: a.output_tokens, cache_read_input_tokens: a.cache_read_input_tokens,
    cache_creation_input_tokens: a.cache_creation_input_tokens,
    cache_creation: { ephemeral_5m_input_tokens: a.cache_creation_input_tokens - a.ephemeral_1h_input_tokens, ephemeral_1h_input_tokens: a.ephemeral_1h_input_tokens },
  };
  const content = tool ? [{ type: 'tool_use', id: 'toolu_1', name: tool, input: { q: 'x' } }] : [{ type: 'text', text: 'Hi from Claude' }];
  const message = { id: 'msg_1', type: 'message', role: 'assistant', model, content, stop_reason: tool ? 'tool_use' : 'end_turn', stop_sequence: null, usage };
  if (!body.stream) return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(message));
  const events = [['message_start', { type: 'message_start', message: { ...message, content: [], stop_reason: null, usage: { ...usage, output_tokens: 1 } } }]];
  if (tool) {
    events.push(['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 'toolu_1', name: tool, input: {} } }]);
    events.push(['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '{"q":"x"}' } }]);
  } else {
    events.push(['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }]);
    for (const text of pieces(body.model, ['Hi from ', 'Claude'])) {
      events.push(['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }]);
    }
  }
  events.push(['content_block_stop', { type: 'content_block_stop', index: 0 }]);
  events.push(['message_delta', { type: 'message_delta', delta: { stop_reason: message.stop_reason, stop_sequence: null }, usage: { output_tokens: a.output_tokens } }]);
  events.push(['message_stop', { type: 'message_stop' }]);
  return sse(res, events, slowness(body.model));
}

/** A fake provider on 127.0.0.1. Models named `fail-<status>` answer with that error status. */
export async function startFakeProvider({ jitter = true } = {}) {
  let requests = 0;
  const server = createServer(async (req, res) => {
    requests++;
    const raw = await readBody(req);
    const type = req.headers['content-type'] ?? '';
    // Multipart uploads (audio): only the model field is read.
    const body = type.includes('json') ? JSON.parse(raw || '{}') : { model: /name="model"\r\n\r\n([^\r]*)/.exec(raw)?.[1] };
    const path = req.url.split('?')[0];
    bodies.push({ path, body });
    // Azure (deployments in the path) rejects stream_options, as older API versions do.
    if (path.includes('/openai/deployments/') && body.stream_options) {
      return res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'Unrecognized request argument supplied: stream_options', type: 'invalid_request_error', code: null } }));
    }
    // A little jitter, so concurrent requests really interleave.
    if (jitter) await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 15)));
    const fail = /^fail-(\d{3})$/.exec(body.model ?? '');
    if (fail) {
      const status = Number(fail[1]);
      const error = req.url.startsWith('/v1/messages')
        ? { type: 'error', error: { type: 'api_error', message: `fake failure ${status}` } }
        : { error: { message: `fake failure ${status}`, type: 'server_error', code: null } };
      return res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(error));
    }
    if (path.endsWith('/chat/completions')) return chat(body, res);
    if (path.endsWith('/completions')) return completions(body, res);
    if (path.endsWith('/responses')) return responses(body, res);
    if (path.endsWith('/images/generations')) {
      return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        created: 1, data: [{ b64_json: 'aGk=' }],
        ...(body.model === 'gpt-image-1' ? { usage: { input_tokens: FAKE.image.input_tokens, output_tokens: FAKE.image.output_tokens, total_tokens: FAKE.image.input_tokens + FAKE.image.output_tokens, input_tokens_details: { text_tokens: FAKE.image.input_tokens, image_tokens: 0 } } } : {}),
      }));
    }
    if (path.endsWith('/audio/transcriptions')) {
      const t = FAKE.transcription;
      return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        text: 'hello world',
        usage: { type: 'tokens', input_tokens: t.input_tokens, output_tokens: t.output_tokens, total_tokens: t.input_tokens + t.output_tokens, input_token_details: { audio_tokens: t.audio_tokens, text_tokens: t.input_tokens - t.audio_tokens } },
      }));
    }
    if (path.endsWith('/audio/speech')) return res.writeHead(200, { 'content-type': 'audio/mpeg' }).end(Buffer.from([0xff, 0xf3, 0x44, 0xc4]));
    if (path.endsWith('/embeddings')) {
      return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2, 0.3] }],
        model: body.model, usage: { prompt_tokens: FAKE.embeddings.prompt_tokens, total_tokens: FAKE.embeddings.prompt_tokens },
      }));
    }
    if (path.endsWith('/v1/messages')) return messages(body, res);
    res.writeHead(404).end('{}');
  });
  const bodies = [];
  const url = await listen(server);
  return {
    url,
    requests: () => requests,
    /** Every request's path and (JSON) body, in order. */
    bodies: () => bodies,
    stop: () => new Promise((r) => {
      server.closeAllConnections?.();
      server.close(r);
    }),
  };
}

/** Cost in nano-USD of usage at prices in USD per million tokens (independent of the server). */
export function nanoCost(usage, prices) {
  const microPerM = (tokens, usdPerM) => BigInt(tokens) * BigInt(Math.round(usdPerM * 1_000_000));
  const oneHour = usage.cache_creation_1h_tokens ?? 0;
  const total =
    microPerM(usage.input_tokens, prices.input) +
    microPerM(usage.output_tokens, prices.output) +
    microPerM(usage.cache_read_tokens, prices.cacheRead) +
    microPerM(usage.cache_creation_tokens - oneHour, prices.cacheWrite ?? prices.input) +
    microPerM(oneHour, prices.cacheWrite1h ?? prices.cacheWrite ?? prices.input);
  // tokens × µUSD/M = 1e-12 USD; nano is 1e-9: divide by 1000, rounding half up.
  return Number((total + 500n) / 1000n);
}
