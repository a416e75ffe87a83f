// Benchmark (not a test): the time the wrapper adds to one call, against the local fake provider.
// Runs the same non-streaming chat completion N times with a plain and a wrapped client,
// interleaved, and reports medians and the difference in microseconds.
// Usage: npm run build && node bench/overhead.mjs [N]
import OpenAI from 'openai';
import { wrapOpenAI, withTrace, configure, flush } from 'tokentally/openai';
import { createServer } from 'node:http';
import { startFakeProvider } from '../test-support/helpers.mjs';

const n = Number(process.argv[2] ?? 2000);
const fake = await startFakeProvider({ jitter: false });
// An ingest endpoint that accepts everything, so delivery runs as in production.
const sink = createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(200).end('{"accepted":0,"duplicates":0}')); });
await new Promise((r) => sink.listen(0, '127.0.0.1', r));
configure({ endpoint: `http://127.0.0.1:${sink.address().port}`, apiKey: 'tt_ingest_bench' });

const opts = { apiKey: 'sk', baseURL: `${fake.url}/v1`, maxRetries: 0 };
const plain = new OpenAI(opts);
const wrapped = wrapOpenAI(new OpenAI(opts), { agent: 'bench' });
const params = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

const time = async (fn) => {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1000;
};
for (let i = 0; i < 200; i++) {
  await plain.chat.completions.create(params);
  await withTrace(() => wrapped.chat.completions.create(params), { tags: { userId: 'warm' } });
}
const a = [];
const b = [];
for (let i = 0; i < n; i++) {
  a.push(await time(() => plain.chat.completions.create(params)));
  b.push(await time(() => withTrace(() => wrapped.chat.completions.create(params), { routeTag: 'bench', tags: { userId: `u${i % 50}` } })));
}
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
console.log(`calls: ${n} each; median plain ${median(a).toFixed(0)} µs, wrapped (withTrace + wrapper) ${median(b).toFixed(0)} µs, overhead ${(median(b) - median(a)).toFixed(0)} µs`);
await flush();
await fake.stop();
sink.close();
