// Sign-in through the company's identity provider (node-oidc-provider, upstream_idp.mjs):
// the official MCP SDK client starts from the MCP URL, registers, and its provider drives
// headless Chromium from our /authorize to the identity provider's login and consent pages,
// back to our consent page, and to the client. The tool then sees the provider's sub (with
// the configured prefix), and a PAT the dashboard issues to that same id carries it too.
// Run by tests/integration/test_upstream.py, which starts redis-server, the provider and
// pipe2-authd (local accounts on: the login page offers "Continue with <provider>").
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { adminRpc, whoami } from './mcp_server.mjs';
import {
  MemoryProvider, connectSignedIn, connectWithToken, startBrowserSuite,
} from './browser_harness.mjs';

const env = process.env;
const ISSUER = env.P2A_ISSUER;
const MCP_URL = `http://127.0.0.1:${env.P2A_MCP_PORT}/mcp`;

let suite;

class BrowserProvider extends MemoryProvider {
  async redirectToAuthorization(url) {
    const page = await suite.browser.newPage();
    const landed = this.callbacks.next().then((u) => Object.fromEntries(u.searchParams));
    await page.goto(url.toString());
    // our login page: the provider's button (local accounts are on too)
    await page.waitForSelector('form[action="/login/upstream"]');
    await Promise.all([page.waitForURL((u) => u.href.startsWith(env.P2A_UPSTREAM)),
      page.click('#upstream')]);
    // node-oidc-provider's own login page, then its consent page
    await page.waitForSelector('input[name="login"]');
    await page.fill('input[name="login"]', 'carol');
    await page.fill('input[name="password"]', 'anything');
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    await page.waitForSelector('button[type=submit]');
    await Promise.all([page.waitForURL((u) => u.href.startsWith(ISSUER)),
      page.click('button[type=submit]')]);
    // back at ours: the consent page, signed in as the provider's name claim
    await page.waitForSelector('form[action="/consent"]');
    const consent = await page.content();
    assert.match(consent, /Carol Example/);
    assert.match(consent, /MCP SDK upstream test/);
    await page.click('button[value=approve]');
    const cb = await landed;
    // the page stays open (suite.close() ends it): closing a page that has just navigated
    // was seen to hang under load in account.test.mjs, and with it the SDK's request
    assert.equal(cb.state, this.lastState);
    assert.equal(cb.iss, ISSUER);
    this.code = cb.code;
  }
}

before(async () => {
  suite = await startBrowserSuite(env, { mcp: true });
});

after(async () => {
  await suite?.close();
});

test('SDK client signs in through node-oidc-provider; its sub is the one a PAT for that person carries', async () => {
  const provider = new BrowserProvider(suite.callbacks, 'MCP SDK upstream test');
  const client = await connectSignedIn(MCP_URL, provider, 'pipe2-upstream');
  const me = await whoami(client);
  assert.equal(me.sub, env.P2A_SUBJECT);
  assert.equal(me.kind, 'OAUTH_ACCESS_TOKEN');
  await client.close();

  // the dashboard, signed in through the same provider, knows the same id: no PutUser needed
  const admin = adminRpc(env.P2A_RPC, env.P2A_ADMIN_KEY);
  const issued = await admin.call('IssueToken', { user_id: env.P2A_SUBJECT, name: 'laptop' });
  admin.close();
  const patClient = await connectWithToken(MCP_URL, issued.token, 'pat-client');
  const viaPat = await whoami(patClient);
  assert.equal(viaPat.sub, me.sub);
  assert.equal(viaPat.kind, 'PERSONAL_ACCESS_TOKEN');
  await patClient.close();
});
