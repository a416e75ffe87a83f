// Real OpenTelemetry JS exporters against the real server: @opentelemetry/sdk-trace-base with
// @opentelemetry/exporter-trace-otlp-http (JSON, configured only by the README's environment
// variables) and -otlp-proto (protobuf), and a span set shaped like the Vercel AI SDK's (its
// `ai.*` and `gen_ai.*` forms). Each user's row must equal the same calls sent to /v1/events.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { context, trace } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const BIN = process.env.TOKENTALLY_BIN ?? join(root, 'target', 'debug', 'tokentally');
let server;

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tokentally-otel-js-'));
  const db = join(dir, 'otel.db');
  const key = (scope, project = 'default') =>
    execFileSync(BIN, ['keys', 'create', '--scope', scope, '--project', project, '--db', db], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop();
  const keys = { ingest: key('ingest'), read: key('read'), evIngest: key('ingest', 'events'), evRead: key('read', 'events') };
  const child = spawn(BIN, ['serve', '--no-login', '--addr', '127.0.0.1:0', '--db', db], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TOKENTALLY_LOG: 'warn' },
  });
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`tokentally exited with ${code}`)));
  });
  server = { base: line.match(/http:\/\/[^/\s]+/)[0], keys, child, dir };
});

after(async () => {
  if (!server) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill();
  await exited;
  rmSync(server.dir, { recursive: true, force: true });
});

async function users(key) {
  const res = await fetch(`${server.base}/v1/me/ai-apps/users?limit=100`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(res.status, 200);
  const keep = ['spend_nano', 'events', 'traces', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_creation_tokens', 'top_model'];
  return Object.fromEntries((await res.json()).users.map((u) => [u.user_id, Object.fromEntries(keep.map((k) => [k, u[k]]))]));
}

/** The same calls through /v1/events, in the `events` project. */
async function sendEvents(events) {
  const res = await fetch(`${server.base}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.keys.evIngest}`, 'content-type': 'application/json' },
    body: JSON.stringify({ events }),
  });
  assert.equal(res.status, 200, await res.text());
}

/** Runs `fn(tracer)` with a provider exporting through `exporter`, then flushes. */
async function exportWith(exporter, scope, version, fn) {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'shop-js' }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  fn(provider.getTracer(scope, version));
  await provider.forceFlush();
  await provider.shutdown();
}

function child(tracer, parent, name, attributes) {
  return tracer.startSpan(name, { attributes }, trace.setSpan(context.active(), parent));
}

const now = () => new Date().toISOString();

test('JSON exporter configured by the three environment variables', async () => {
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = server.base;
  process.env.OTEL_EXPORTER_OTLP_HEADERS = `Authorization=Bearer%20${server.keys.ingest}`;
  process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
  try {
    await exportWith(new JsonExporter(), 'my-app', '1.0.0', (tracer) => {
      const req = tracer.startSpan('POST /ask', { attributes: { 'http.route': '/ask', 'tokentally.tag.userId': 'js-json', 'tokentally.tag.plan': 'pro' } });
      child(tracer, req, 'chat gpt-4o', {
        'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o',
        'gen_ai.response.model': 'gpt-4o-2024-08-06', 'gen_ai.usage.input_tokens': 1200, 'gen_ai.usage.output_tokens': 80,
        'gen_ai.usage.cache_read.input_tokens': 1000,
      }).end();
      req.end();
    });
  } finally {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.OTEL_EXPORTER_OTLP_HEADERS;
    delete process.env.OTEL_EXPORTER_OTLP_PROTOCOL;
  }
  await sendEvents([{ id: 'j1', trace_id: 'tj', timestamp: now(), provider: 'openai', model: 'gpt-4o-2024-08-06',
    tags: { userId: 'js-json', plan: 'pro' }, usage: { input_tokens: 200, output_tokens: 80, cache_read_tokens: 1000 } }]);
  const [got, want] = [await users(server.keys.read), await users(server.keys.evRead)];
  assert.ok(got['js-json'], `js-json from OTLP/JSON: ${JSON.stringify(got)}`);
  assert.deepEqual(got['js-json'], want['js-json']);
  assert.ok(got['js-json'].spend_nano > 0);
});

test('protobuf exporter, Anthropic usage with cache reads and writes', async () => {
  const exporter = new ProtoExporter({ url: `${server.base}/v1/traces`, headers: { Authorization: `Bearer ${server.keys.ingest}` } });
  await exportWith(exporter, 'opentelemetry.instrumentation.anthropic', '0.62.4', (tracer) => {
    const req = tracer.startSpan('POST /summarize', { attributes: { 'http.route': '/summarize', 'enduser.id': 'js-proto' } });
    for (let i = 0; i < 2; i++) {
      child(tracer, req, 'anthropic.chat', {
        'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'anthropic', 'gen_ai.request.model': 'claude-sonnet-4-5',
        'gen_ai.usage.input_tokens': 3050, 'gen_ai.usage.output_tokens': 300,
        'gen_ai.usage.cache_read.input_tokens': 2000, 'gen_ai.usage.cache_creation.input_tokens': 1000,
      }).end();
    }
    req.end();
  });
  const usage = { input_tokens: 50, output_tokens: 300, cache_read_tokens: 2000, cache_creation_tokens: 1000 };
  await sendEvents([1, 2].map((i) => ({ id: `p${i}`, trace_id: 'tp', timestamp: now(), provider: 'anthropic', model: 'claude-sonnet-4-5', tags: { userId: 'js-proto' }, usage })));
  const [got, want] = [await users(server.keys.read), await users(server.keys.evRead)];
  assert.ok(got['js-proto'], `js-proto from OTLP/protobuf: ${JSON.stringify(got)}`);
  assert.deepEqual(got['js-proto'], want['js-proto']);
});

test('a Vercel AI SDK span set: provider calls count, the outer span does not', async () => {
  const exporter = new ProtoExporter({ url: `${server.base}/v1/traces`, headers: { Authorization: `Bearer ${server.keys.ingest}` } });
  await exportWith(exporter, 'ai', '5.0.0', (tracer) => {
    const outer = tracer.startSpan('ai.generateText', { attributes: {
      'ai.operationId': 'ai.generateText', 'ai.model.provider': 'openai.chat', 'ai.model.id': 'gpt-4o-mini',
      'ai.usage.promptTokens': 700, 'ai.usage.completionTokens': 90, 'ai.telemetry.metadata.userId': 'js-vercel',
      'ai.telemetry.metadata.org': 'acme',
    } });
    // Both forms, as the AI SDK sets them on its provider-call spans.
    child(tracer, outer, 'ai.generateText.doGenerate', {
      'ai.operationId': 'ai.generateText.doGenerate', 'ai.model.provider': 'openai.chat', 'ai.model.id': 'gpt-4o-mini',
      'ai.usage.promptTokens': 300, 'ai.usage.completionTokens': 40,
      'gen_ai.system': 'openai.chat', 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
      'gen_ai.usage.input_tokens': 300, 'gen_ai.usage.output_tokens': 40,
    }).end();
    // Only the ai.* form.
    child(tracer, outer, 'ai.generateText.doGenerate', {
      'ai.operationId': 'ai.generateText.doGenerate', 'ai.model.provider': 'openai.chat', 'ai.model.id': 'gpt-4o-mini',
      'ai.usage.promptTokens': 400, 'ai.usage.completionTokens': 50,
    }).end();
    outer.end();
  });
  await sendEvents([
    { id: 'v1', trace_id: 'tv', timestamp: now(), provider: 'openai', model: 'gpt-4o-mini-2024-07-18', tags: { userId: 'js-vercel', org: 'acme' }, usage: { input_tokens: 300, output_tokens: 40 } },
    { id: 'v2', trace_id: 'tv', timestamp: now(), provider: 'openai', model: 'gpt-4o-mini', tags: { userId: 'js-vercel', org: 'acme' }, usage: { input_tokens: 400, output_tokens: 50 } },
  ]);
  const [got, want] = [await users(server.keys.read), await users(server.keys.evRead)];
  assert.ok(got['js-vercel'], `js-vercel: ${JSON.stringify(got)}`);
  assert.equal(got['js-vercel'].events, 2, 'the outer ai.generateText span is not a call');
  assert.deepEqual(got['js-vercel'], want['js-vercel']);
});
