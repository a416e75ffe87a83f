// Starts the real tokentally binary on 127.0.0.1 with a fresh SQLite file, and Debian's Chromium.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.TOKENTALLY_BIN ?? join(root, 'target', 'debug', 'tokentally');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Starts the server; `login: true` requires the admin login (password `PASSWORD`). */
export const PASSWORD = 'correct horse battery';
export async function startServer({ login = false, env = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tokentally-e2e-'));
  const db = join(dir, 'e2e.db');
  const key = (scope) =>
    execFileSync(BIN, ['keys', 'create', '--scope', scope, '--db', db], { encoding: 'utf8' }).trim().split('\n').pop();
  const ingestKey = key('ingest');
  const readKey = key('read');
  const args = ['serve', '--addr', '127.0.0.1:0', '--db', db, ...(login ? [] : ['--no-login'])];
  const child = spawn(BIN, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TOKENTALLY_LOG: 'warn', ...(login ? { TOKENTALLY_ADMIN_PASSWORD: PASSWORD } : {}), ...env },
  });
  const line = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  const base = line.match(/http:\/\/([^/\s]+)/)[0];
  return {
    base,
    db,
    readKey,
    ingestKey,
    async ingest(body) {
      const res = await fetch(`${base}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ingestKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const json = await res.json();
      if (res.status !== 200) throw new Error(`ingest ${res.status}: ${JSON.stringify(json)}`);
      return json;
    },
    async users(query = '') {
      const res = await fetch(`${base}/v1/me/ai-apps/users?limit=500${query}`, {
        headers: { authorization: `Bearer ${readKey}` },
      });
      return (await res.json()).users;
    },
    /** Runs a CLI command against this server's database; returns stdout. */
    cli(...cmd) {
      return execFileSync(BIN, [...cmd, '--db', db], { encoding: 'utf8' });
    },
    /** Stops the server (SIGTERM, on which it saves its aggregate) and waits for it to exit
     * before removing its directory. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill();
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launch(options = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'tokentally-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    ...options,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** An LLM event `minutesAgo` minutes back for `user`. */
export function event(id, user, { minutesAgo = 5, model = 'gpt-4o', provider = 'openai', input = 1000, output = 100, tags = {} } = {}) {
  return {
    id,
    trace_id: `trace-${id}`,
    timestamp: new Date(Date.now() - minutesAgo * 60_000).toISOString(),
    provider,
    model,
    tags: { userId: user, ...tags },
    usage: { input_tokens: input, output_tokens: output, cache_read_tokens: 0, cache_creation_tokens: 0 },
    latency_ms: 800,
    status: 'ok',
  };
}

/** The user ids in the Users table, top to bottom. */
export async function tableUsers(page) {
  const table = page.getByRole('table', { name: 'Users by spend' });
  return table.locator('tbody').getByRole('rowheader').allInnerTexts();
}

/** A KPI card's figure as shown: the line after its label in the group named `label`. */
export async function kpi(page, label) {
  const lines = (await page.getByRole('group', { name: label }).innerText()).split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[1];
}

/** Waits (up to 10 s) until the KPI named `label` shows `value`; throws with what it showed. */
export async function waitForKpi(page, label, value) {
  let shown;
  for (const start = Date.now(); Date.now() - start < 10_000; await page.waitForTimeout(50)) {
    shown = await kpi(page, label).catch(() => undefined);
    if (shown === value) return;
  }
  throw new Error(`KPI ${label}: waited for ${value}, shows ${shown}`);
}
