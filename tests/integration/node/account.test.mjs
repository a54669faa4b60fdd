// The account pages in headless Chromium, as a person without a dashboard uses them: sign in
// at /account/, create a PAT (shown once, with a copy button and the MCP client
// configuration; gone when the page is opened again), use it against the test MCP server,
// see "last used" appear, revoke it (the MCP server answers 401 "Token revoked"); connect an
// MCP client through the browser, see it listed, disconnect it (its next call is 401).
// Run by tests/integration/test_account.py (redis-server and pipe2-authd with
// PIPE2_AUTH_ACCOUNT_PAGES=on and a last-used flush every second).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { whoami } from './mcp_server.mjs';
import {
  MemoryProvider, connectSignedIn, connectWithToken, mcpPost, startBrowserSuite, waitFor,
} from './browser_harness.mjs';

const env = process.env;
const ISSUER = env.P2A_ISSUER;
const MCP_URL = `http://127.0.0.1:${env.P2A_MCP_PORT}/mcp`;
const SHOTS = env.P2A_SHOTS;

let suite, context, page;

const mcpCall = (token) => mcpPost(MCP_URL, token);

before(async () => {
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
  suite = await startBrowserSuite(env, { mcp: true });
  context = await suite.browser.newContext();
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: ISSUER });
  page = await context.newPage();
  // sign in at the account page itself: the login page brings the person back to it
  await page.goto(`${ISSUER}/account/`);
  await page.fill('#username', env.P2A_USER);
  await page.fill('#password', env.P2A_PASSWORD);
  await Promise.all([page.waitForSelector('h1:has-text("Your account")'),
    page.click('form[action="/login"] button[type=submit]')]);
});

after(async () => {
  await suite?.close();
});

test('a PAT: created and shown once, used, "last used" appears, revoked -> 401 Token revoked', async () => {
  await page.fill('#name', 'laptop');
  await page.selectOption('#days', '30');
  await Promise.all([page.waitForSelector('#token'), page.click('#create button[type=submit]')]);
  const token = (await page.textContent('#token')).trim();
  assert.match(token, /^eyJ/);
  assert.equal((await page.textContent('#snippet')).trim(),
    `{"headers": {"Authorization": "Bearer ${token}"}}`);
  await page.click('#copy'); // the one script, allowed by its hash in the CSP
  await page.waitForSelector('#copy:has-text("Copied")');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token);
  if (SHOTS) await page.screenshot({ path: path.join(SHOTS, 'account-token.png'), fullPage: true });

  // shown once: the account page, opened again, lists it but never shows it
  await page.goto(`${ISSUER}/account/`);
  assert.ok(!(await page.content()).includes(token));
  const row = page.locator('#tokens tr', { hasText: 'laptop' });
  assert.equal((await row.locator('.status').textContent()).trim(), 'active');
  assert.equal((await row.locator('.last-used').textContent()).trim(), 'never');

  const patClient = await connectWithToken(MCP_URL, token, 'account-pat');
  const me = await whoami(patClient);
  await patClient.close();
  assert.equal(me.sub, env.P2A_USER_ID);
  assert.equal(me.kind, 'PERSONAL_ACCESS_TOKEN');
  await waitFor(async () => {
    await page.reload();
    return (await page.locator('#tokens tr', { hasText: 'laptop' }).locator('.last-used')
      .textContent()).includes('UTC');
  }, 15000, '"last used" to appear');

  await Promise.all([page.waitForNavigation(),
    page.locator('#tokens tr', { hasText: 'laptop' }).locator('button').click()]);
  assert.equal((await page.locator('#tokens tr', { hasText: 'laptop' }).locator('.status')
    .textContent()).trim(), 'revoked');
  const r = await mcpCall(token);
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate'), /error_description="Token revoked"/);
});

test('a connected client: listed after the browser approves it, disconnected -> its next call is 401', async () => {
  // an MCP client connects through the same browser (already signed in: consent only)
  const provider = new (class extends MemoryProvider {
    async redirectToAuthorization(url) {
      const tab = await context.newPage();
      const landed = this.callbacks.next().then((u) => u.searchParams.get('code'));
      await tab.goto(url.toString());
      await tab.click('button[value=approve]');
      this.code = await landed;
      // the tab stays open (suite.close() ends it): closing a tab that has just navigated
      // was seen to hang under load, and with it the SDK's request
    }
  })(suite.callbacks, 'Account test client');
  const client = await connectSignedIn(MCP_URL, provider, 'account-oauth');
  await whoami(client);
  await client.close();
  const access = provider.tokens().access_token;
  assert.equal((await mcpCall(access)).status, 200);

  await page.goto(`${ISSUER}/account/`);
  const row = page.locator('#clients tr', { hasText: 'Account test client' });
  assert.match(await row.textContent(), /mcp/);
  if (SHOTS) await page.screenshot({ path: path.join(SHOTS, 'account.png'), fullPage: true });
  await Promise.all([page.waitForNavigation(), row.locator('button').click()]);
  assert.equal(await page.locator('#clients tr', { hasText: 'Account test client' }).count(), 0);
  await waitFor(async () => (await mcpCall(access)).status === 401, 5000,
    'the disconnected client to get 401');
  const r = await mcpCall(access);
  assert.match(r.headers.get('www-authenticate'), /error_description="Token revoked"/);
});
