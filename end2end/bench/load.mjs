// Dashboard load timings in Debian's Chromium (a benchmark, not a test): a cold load of a page
// (empty cache) and then warm loads (the same browser profile), each timed from navigation to
// hydrated (`window.__tokentally_hydrated`), with the bytes the network transferred (CDP's
// encodedDataLength: compressed bytes on the wire; a 304 or a cache hit counts only headers).
//
// Usage: node bench/load.mjs [path] [runs]    (default /ai-apps/users, 5)
// Needs target/release/tokentally or TOKENTALLY_BIN (scripts/build.sh release); starts its own
// server on a demo database.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const BIN = process.env.TOKENTALLY_BIN ?? resolve(import.meta.dirname, '../../target/release/tokentally');
const path = process.argv[2] ?? '/ai-apps/users';
const runs = Number(process.argv[3] ?? 5);

const dir = mkdtempSync(join(tmpdir(), 'tokentally-load-'));
const db = join(dir, 'load.db');
execFileSync(BIN, ['demo', '--db', db, '--events', '20000', '--users', '500', '--days', '7', '--seed', '3'], { stdio: 'ignore' });
const server = spawn(BIN, ['serve', '--db', db, '--addr', '127.0.0.1:0', '--no-login'], {
  stdio: ['ignore', 'pipe', 'ignore'],
  env: { ...process.env, TOKENTALLY_LOG: 'warn' },
});
const line = await new Promise((ok) => createInterface({ input: server.stdout }).once('line', ok));
const base = line.match(/http:\/\/([^/\s]+)/)[0];

const profile = mkdtempSync(join(tmpdir(), 'tokentally-load-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});

/** One load: ms to hydrated, bytes on the wire, and the bundle's encoding. */
async function load(page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  let bytes = 0;
  let wasm = '';
  cdp.on('Network.loadingFinished', (e) => { bytes += e.encodedDataLength; });
  cdp.on('Network.responseReceived', (e) => {
    if (e.response.url.endsWith('.wasm')) {
      wasm = `${e.response.status}${e.response.fromDiskCache ? ' disk cache' : ''} ${e.response.headers['content-encoding'] ?? 'identity'}`;
    }
  });
  const start = Date.now();
  await page.goto(`${base}${path}`);
  await page.waitForFunction(() => window.__tokentally_hydrated === true);
  const ms = Date.now() - start;
  await cdp.detach();
  return { ms, bytes, wasm };
}

const rows = [];
const page = await context.newPage();
rows.push({ load: 'cold', ...(await load(page)) });
for (let i = 0; i < runs; i++) rows.push({ load: `warm ${i + 1}`, ...(await load(page)) });
console.table(rows);
const warm = rows.slice(1).map((r) => r.ms).sort((a, b) => a - b);
console.log(`${path}: cold ${rows[0].ms} ms, ${rows[0].bytes} bytes; warm median ${warm[warm.length >> 1]} ms, ${rows[1].bytes} bytes`);

await context.close();
server.kill();
rmSync(profile, { recursive: true, force: true });
rmSync(dir, { recursive: true, force: true });
