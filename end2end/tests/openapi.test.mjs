// OpenAPI conformance: every documented operation is called on the real server and each JSON
// answer (success and error) is validated against the schema the document gives for its status.
// The schemas forbid unknown properties, so a renamed, missing or extra field fails here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { startServer, event } from './helpers.mjs';

let server;
let doc;
let ajv;

before(async () => {
  server = await startServer();
  const now = Date.now();
  await server.ingest({
    traces: [{ id: 'tr-1', route_tag: 'POST /api/chat', tags: { userId: 'ada', plan: 'pro', org: 'acme' },
      started_at: new Date(now - 600_000).toISOString(), ended_at: new Date(now - 590_000).toISOString(), status: 'ok' }],
    events: [
      { ...event('ev-1', 'ada', { tags: { plan: 'pro', org: 'acme' } }), trace_id: 'tr-1', tools: ['search'],
        prompt: [{ role: 'user', content: 'hi' }], response: [{ role: 'assistant', content: 'hello' }] },
      { ...event('ev-2', 'bob', { provider: 'anthropic', model: 'claude-haiku-4-5', tags: { plan: 'free' } }), status: 'error', error: 'overloaded' },
      { ...event('ev-3', 'bob', { model: 'mystery-model' }), cost_usd: undefined },
    ],
  });
  const res = await fetch(`${server.base}/v1/openapi.json`);
  assert.equal(res.status, 200);
  doc = await res.json();
  ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(doc, 'openapi.json');
});

after(async () => {
  await server?.stop();
});

/** The validator for an operation's response with `status`. */
function responseValidator(path, method, status) {
  const op = doc.paths[path]?.[method];
  assert.ok(op, `${method.toUpperCase()} ${path} is documented`);
  const response = op.responses[String(status)];
  assert.ok(response, `${method.toUpperCase()} ${path} documents a ${status}`);
  const schema = response.content['application/json'].schema;
  const ref = schema.$ref ? `openapi.json${schema.$ref}` : null;
  return ref ? ajv.getSchema(ref) : ajv.compile(schema);
}

const covered = new Set();

async function check(path, method, url, { status = 200, key = server.readKey, body } = {}) {
  covered.add(`${method} ${path}`);
  const res = await fetch(`${server.base}${url}`, {
    method: method.toUpperCase(),
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  assert.equal(res.status, status, `${url}: ${JSON.stringify(json)}`);
  const validate = responseValidator(path, method, status);
  assert.ok(validate(json), `${url} → ${status} violates the schema: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(json).slice(0, 500)}`);
  return { json, validate };
}

test('every operation answers as the OpenAPI document says', async () => {
  assert.equal(doc.openapi, '3.1.0');
  const api = '/v1/me/ai-apps';
  await check('/v1/events', 'post', '/v1/events', { key: server.ingestKey, body: { events: [event('ev-4', 'cy')] } });
  await check('/v1/events', 'post', '/v1/events', { key: server.ingestKey, status: 400, body: { events: [{ id: 'x' }] } });
  await check('/v1/events', 'post', '/v1/events', { key: server.readKey, status: 401, body: { events: [] } });
  await check('/v1/traces', 'post', '/v1/traces', { key: server.ingestKey, body: { resourceSpans: [] } });
  await check('/v1/traces', 'post', '/v1/traces', { key: server.ingestKey, status: 400, body: { resourceSpans: 'x' } });
  await check('/v1/traces', 'post', '/v1/traces', { key: server.readKey, status: 401, body: { resourceSpans: [] } });
  const { json: overview, validate: overviewSchema } = await check(`${api}/overview`, 'get', `${api}/overview`);
  await check(`${api}/overview`, 'get', `${api}/overview?window=1d&stack=provider&tag.plan=pro`);
  await check(`${api}/overview`, 'get', `${api}/overview?window=2d`, { status: 400 });
  await check(`${api}/overview`, 'get', `${api}/overview`, { status: 401, key: 'nope' });
  const { json: users } = await check(`${api}/users`, 'get', `${api}/users?limit=1&sort=tokens`);
  assert.ok(users.next_cursor, 'a second page exists');
  await check(`${api}/users`, 'get', `${api}/users?limit=1&cursor=${users.next_cursor}`);
  await check(`${api}/users`, 'get', `${api}/users?bogus=1`, { status: 400 });
  await check(`${api}/users/{userId}`, 'get', `${api}/users/ada?window=7d`);
  await check(`${api}/users/{userId}`, 'get', `${api}/users/ada?user=bob`, { status: 400 });
  await check(`${api}/traces`, 'get', `${api}/traces?q=chat`);
  await check(`${api}/traces`, 'get', `${api}/traces?sort=size`, { status: 400 });
  await check(`${api}/traces/{traceId}`, 'get', `${api}/traces/tr-1`);
  await check(`${api}/traces/{traceId}`, 'get', `${api}/traces/none`, { status: 404 });
  const { json: ev } = await check(`${api}/events/{eventId}`, 'get', `${api}/events/ev-1`);
  assert.equal(ev.cost_source, 'table');
  await check(`${api}/events/{eventId}`, 'get', `${api}/events/ev-3`);
  await check(`${api}/events/{eventId}`, 'get', `${api}/events/none`, { status: 404 });
  await check(`${api}/models`, 'get', `${api}/models?provider=openai`);
  await check(`${api}/models`, 'get', `${api}/models?format=pdf`, { status: 400 });
  await check(`${api}/tools`, 'get', `${api}/tools`);
  await check(`${api}/segments`, 'get', `${api}/segments?by=plan`);
  await check(`${api}/segments`, 'get', `${api}/segments?by=org&user=ada`);
  await check(`${api}/segments`, 'get', `${api}/segments`, { status: 400 });
  const admin = server.cli('keys', 'create', '--scope', 'admin').trim().split('\n').pop();
  await check(`${api}/users/{userId}`, 'delete', `${api}/users/bob`, { status: 401 });
  const { json: deleted } = await check(`${api}/users/{userId}`, 'delete', `${api}/users/bob`, { key: admin });
  assert.deepEqual(deleted, { deleted: { events: 2, traces: 2 }, scrub: { ticket: null, done: true } });
  await check(`${api}/users/{userId}`, 'delete', `${api}/users/bob?x=1`, { key: admin, status: 400 });
  // Without waiting for the scrub: 202 and a ticket, whose status the deletions endpoint tells.
  const { json: later } = await check(`${api}/users/{userId}`, 'delete', `${api}/users/ada?wait=false`, {
    key: admin,
    status: 202,
  });
  assert.equal(later.scrub.done, false);
  const { json: ticket } = await check(`${api}/deletions/{ticket}`, 'get', `${api}/deletions/${later.scrub.ticket}`, {
    key: admin,
  });
  assert.equal(ticket.ticket, later.scrub.ticket);
  await check(`${api}/deletions/{ticket}`, 'get', `${api}/deletions/999999`, { key: admin, status: 404 });
  await check(`${api}/deletions/{ticket}`, 'get', `${api}/deletions/x`, { key: admin, status: 400 });
  covered.add('get /v1/openapi.json');

  const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`));
  assert.deepEqual(documented.filter((o) => !covered.has(o)), [], 'every documented operation is exercised');

  // The check has teeth: a changed answer fails it.
  assert.equal(overviewSchema({ ...overview, surprise: 1 }), false, 'an extra field');
  const { current, ...withoutCurrent } = overview;
  assert.equal(overviewSchema(withoutCurrent), false, 'a missing field');
  assert.equal(overviewSchema({ ...overview, current: { ...current, spend_nano: 1.5 } }), false, 'a float for money');
});

test('format=csv answers text/csv on every list the document marks', async () => {
  for (const [path, ops] of Object.entries(doc.paths)) {
    const takesFormat = ops.get?.parameters?.some((p) => p.name === 'format');
    if (!takesFormat) continue;
    assert.ok(ops.get.responses['200'].content['text/csv'], `${path} documents text/csv`);
    const url = path.includes('segments') ? `${path}?by=plan&format=csv` : `${path}?format=csv`;
    const res = await fetch(`${server.base}${url}`, { headers: { authorization: `Bearer ${server.readKey}` } });
    assert.equal(res.status, 200, url);
    assert.match(res.headers.get('content-type'), /^text\/csv/);
    const text = await res.text();
    assert.match(text, /^[a-z0-9_]+(,[a-z0-9_]+)+\r\n/, `${url} starts with a header row`);
  }
});
