// Login, the project switcher, settings (privacy, keys) and deleting a user, in real Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, event, tableUsers, PASSWORD } from './helpers.mjs';

let open;
let guarded;
let browser;

before(async () => {
  open = await startServer();
  guarded = await startServer({ login: true });
  browser = await launch();
  for (const s of [open, guarded]) {
    await s.ingest({
      events: [
        event('a1', 'victim', { input: 1_000_000, output: 0 }),
        { ...event('a2', 'victim', { input: 10, output: 0 }), trace_id: 'trace-a2' },
        event('a3', 'keeper', { input: 400_000, output: 0 }),
      ],
    });
  }
});

after(async () => {
  await browser?.close();
  await open?.stop();
  await guarded?.stop();
});

test('signing in, then out, guards every page', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${guarded.base}/ai-apps/users?window=7d`);
  await page.waitForURL(/\/login\?next=/);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'Wrong username or password' }).waitFor();
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/ai-apps\/users\?window=7d$/);
  assert.deepEqual(await tableUsers(page), ['victim', 'keeper']);
  await page.waitForFunction(() => window.__tokentally_hydrated === true);
  // Client-side navigation keeps working through server functions with the session.
  await page.getByRole('link', { name: 'Overview', exact: true }).click();
  await page.waitForURL(/\/ai-apps\?window=7d/);
  await page.getByRole('group', { name: 'Spend' }).waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/login$/);
  await page.goto(`${guarded.base}/ai-apps/models`);
  await page.waitForURL(/\/login\?next=%2Fai-apps%2Fmodels/);
  await page.close();
});

test('deleting a user from their page says what goes and removes it', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${open.base}/ai-apps/users/victim`);
  await page.getByText('Delete this user…').click();
  const note = page.getByRole('note').filter({ hasText: 'permanently removes' });
  assert.match(await note.innerText(), /removes 2 events and 2 traces of victim/);
  await page.getByRole('button', { name: 'Delete user and their data' }).click();
  await page.getByRole('status').filter({ hasText: 'removed 2 events and 2 traces' }).waitFor();
  await page.getByRole('link', { name: 'Back to Users' }).click();
  await page.waitForURL(/\/ai-apps\/users$/);
  assert.deepEqual(await tableUsers(page), ['keeper']);
  await page.goto(`${open.base}/settings`);
  const log = page.getByRole('table', { name: 'Deleted users' });
  assert.match(await log.locator('tbody tr').first().innerText(), /dashboard.*\t2\t2$/s);
  await page.close();
});

test('settings change the privacy mode and create and revoke keys', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${open.base}/settings`);
  await page.getByLabel('Privacy mode').selectOption('minimal');
  await page.getByLabel('Retention days').fill('90');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('note').filter({ hasText: 'Minimal since' }).waitFor();
  assert.equal(await page.getByLabel('Retention days').inputValue(), '90');
  assert.match(open.cli('projects', 'list'), /default\s+minimal\s+90 days/);

  await page.getByLabel('Scope').selectOption('read');
  await page.getByRole('button', { name: 'Create key' }).click();
  const key = (await page.getByLabel('New key').innerText()).trim();
  assert.match(key, /^tt_read_[0-9a-f]{48}$/);
  const usersWith = (k) => fetch(`${open.base}/v1/me/ai-apps/users`, { headers: { authorization: `Bearer ${k}` } });
  assert.equal((await usersWith(key)).status, 200);
  await page.getByRole('link', { name: 'Back to settings' }).click();
  await page.getByRole('button', { name: `Revoke ${key.slice(0, 14)}` }).click();
  await page.waitForURL(/\/settings$/);
  assert.equal((await usersWith(key)).status, 401);
  assert.ok(!(await page.content()).includes(key), 'the secret is never shown again');
  await page.close();
});

test('the project switcher shows another project and keeps it across pages', async () => {
  open.cli('projects', 'create', 'second');
  const ingest = open.cli('keys', 'create', '--scope', 'ingest', '--project', 'second').trim().split('\n').pop();
  const res = await fetch(`${open.base}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ingest}`, 'content-type': 'application/json' },
    body: JSON.stringify({ events: [event('s1', 'zed')] }),
  });
  assert.equal(res.status, 200);
  const page = await browser.context.newPage();
  await page.goto(`${open.base}/ai-apps/users`);
  assert.deepEqual(await tableUsers(page), ['keeper']);
  await page.getByRole('combobox', { name: 'Project' }).selectOption({ label: 'second' });
  await page.waitForFunction(() => [...document.querySelectorAll('table[aria-label="Users by spend"] tbody th')].map((t) => t.innerText).join() === 'zed');
  await page.goto(`${open.base}/ai-apps/traces`);
  assert.deepEqual(await page.getByRole('table', { name: 'Traces' }).locator('tbody tr').count(), 1);
  await page.close();
});
