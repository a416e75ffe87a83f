// The SDK in the runtimes apps run it in: settings read at first use (dotenv after imports), a
// script that exits without flush(), an edge runtime without node:crypto and node:async_hooks,
// and a flush with a deadline against an ingest endpoint that never answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { wrapOpenAI, withTrace, flush, configure, deliveryStats } from 'tokentally';
import { startFakeProvider } from '../test-support/helpers.mjs';

const support = (name) => fileURLToPath(new URL(`../test-support/${name}`, import.meta.url));

let fake;
before(async () => {
  fake = await startFakeProvider({ jitter: false });
});
after(async () => {
  await fake?.stop();
});

/** An ingest endpoint that records each request's key and body. */
async function sink() {
  const requests = [];
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    requests.push({ auth: req.headers.authorization, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"accepted":1,"duplicates":0}');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, requests, close: () => new Promise((r) => server.close(r)) };
}

/**
 * Runs test-support/child-app.mjs in its own process (Node unless `runtime` is given, e.g. Bun or
 * Deno from devDependencies); resolves with its exit code and output.
 */
function runChild(env, args = [], runtime = [process.execPath]) {
  return new Promise((resolve) => {
    const [cmd, ...pre] = runtime;
    const child = spawn(cmd, [...pre, ...args, support('child-app.mjs')], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

const eventsOf = (s) => s.requests.flatMap((r) => r.body.events ?? []);

test('settings set after import are used, and a script that ends without flush() still sends', async () => {
  const s = await sink();
  try {
    const { code, out } = await runChild({ MODE: 'late', FAKE: fake.url, SINK: s.url, TOKENTALLY_URL: '', TOKENTALLY_KEY: '' });
    assert.equal(code, 0, out);
    assert.match(out, /Hello there!/);
    const events = eventsOf(s);
    assert.equal(events.length, 2, `both calls reached the endpoint set after import: ${out}`);
    assert.deepEqual(events.map((e) => e.tags?.userId), ['child-late', 'child-late']);
    assert.equal(s.requests[0].auth, 'Bearer tt_ingest_late');
  } finally {
    await s.close();
  }
});

test('the ESM build loads and records on an edge runtime without node:crypto and node:async_hooks', async () => {
  const s = await sink();
  try {
    const { code, out } = await runChild({ MODE: 'edge', FAKE: fake.url, SINK: s.url }, ['--import', support('edge-setup.mjs')]);
    assert.equal(code, 0, out);
    assert.match(out, /Hello there!/);
    const [event, afterAwait] = eventsOf(s);
    assert.ok(event && afterAwait, `both calls were recorded: ${out}`);
    assert.match(event.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a v4 UUID without node:crypto');
    assert.equal(event.tags.userId, 'child-edge', 'a call started inside withTrace is attributed without AsyncLocalStorage');
  } finally {
    await s.close();
  }
});

for (const [name, bin, args] of [
  ['Bun', 'bun', ['run']],
  ['Deno', 'deno', ['run', '--allow-env', '--allow-net', '--allow-read']],
]) {
  test(`runs on ${name}: attributed across awaits, sent at exit without flush()`, async () => {
    const s = await sink();
    try {
      const runtime = [fileURLToPath(new URL(`../node_modules/.bin/${bin}`, import.meta.url)), ...args];
      const { code, out } = await runChild({ MODE: 'late', FAKE: fake.url, SINK: s.url, TOKENTALLY_URL: '', TOKENTALLY_KEY: '' }, [], runtime);
      assert.equal(code, 0, out);
      assert.match(out, /Hello there!/);
      assert.deepEqual(eventsOf(s).map((e) => e.tags?.userId), ['child-late', 'child-late'], out);
      assert.equal(s.requests[0].auth, 'Bearer tt_ingest_late');
    } finally {
      await s.close();
    }
  });
}

test('the edge setup really denies the modules (the test above can fail)', async () => {
  const probe = await new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', support('edge-setup.mjs'), '--input-type=module', '-e', "await import('node:async_hooks')"], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => resolve({ code, out }));
  });
  assert.notEqual(probe.code, 0);
  assert.match(probe.out, /not available on this \(simulated edge\) runtime/);
});

test('flush({ timeoutMs }) returns by its deadline when the endpoint never answers', async () => {
  const sockets = new Set();
  const hang = createServer(() => {
    // never answers
  });
  hang.on('connection', (s) => sockets.add(s));
  await new Promise((r) => hang.listen(0, '127.0.0.1', r));
  try {
    configure({ endpoint: `http://127.0.0.1:${hang.address().port}`, apiKey: 'tt_ingest_x', timeoutMs: 60_000, maxRetries: 0, onError: () => {} });
    const client = wrapOpenAI(new OpenAI({ apiKey: 'sk', baseURL: `${fake.url}/v1`, maxRetries: 0 }));
    await withTrace(() => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [] }), { tags: { userId: 'hang' } });
    const started = Date.now();
    await flush({ timeoutMs: 300 });
    const took = Date.now() - started;
    assert.ok(took < 5_000, `flush took ${took} ms with a 300 ms deadline`);
    assert.equal(deliveryStats().sent, 0, 'nothing was acknowledged');
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => hang.close(r));
  }
});
