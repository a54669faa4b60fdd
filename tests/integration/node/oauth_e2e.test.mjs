// End to end with the official MCP TypeScript SDK client and a real browser: the client
// starts with nothing but the MCP URL, gets a 401 that leads it to pipe2-auth, registers
// itself, and its OAuthClientProvider drives headless Chromium (playwright-core) through
// our login and consent pages; then it calls a tool, refreshes when its access token
// expires, and a revoked token gets 401 with the right WWW-Authenticate. A PAT works with
// the same MCP server through a plain Authorization header.
// Run by tests/integration/test_oauth_mcp.py, which starts redis-server and pipe2-authd.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { adminRpc, introspector, whoami } from './mcp_server.mjs';
import {
  MemoryProvider, connectSignedIn, connectWithToken, mcpPost, startBrowserSuite, waitFor,
} from './browser_harness.mjs';

const env = process.env;
const ISSUER = env.P2A_ISSUER;
const MCP_URL = `http://127.0.0.1:${env.P2A_MCP_PORT}/mcp`;
const SHOTS = env.P2A_SHOTS;

let suite;

// The browser side of the provider: sign in and approve like a person would.
class BrowserProvider extends MemoryProvider {
  constructor() {
    super(suite.callbacks, 'MCP SDK end-to-end test');
    this.redirects = 0;
  }
  async redirectToAuthorization(url) {
    this.redirects++;
    const page = await suite.browser.newPage();
    const landed = this.callbacks.next().then((u) => Object.fromEntries(u.searchParams));
    await page.goto(url.toString());
    await page.waitForSelector('form[action="/login"]');
    assert.match(await page.content(), /MCP SDK end-to-end test/);
    if (SHOTS) await page.screenshot({ path: path.join(SHOTS, 'login.png'), fullPage: true });
    await page.fill('#username', env.P2A_USER);
    await page.fill('#password', env.P2A_PASSWORD);
    await Promise.all([page.waitForSelector('form[action="/consent"]'),
      page.click('button[type=submit]')]);
    const consent = await page.content();
    assert.match(consent, /MCP SDK end-to-end test/);
    assert.match(consent, new RegExp(MCP_URL.replace(/[.]/g, '\\.')));
    if (SHOTS) await page.screenshot({ path: path.join(SHOTS, 'consent.png'), fullPage: true });
    await page.click('button[value=approve]');
    const cb = await landed;
    await page.close();
    assert.equal(cb.state, this.lastState);
    assert.equal(cb.iss, ISSUER); // RFC 9207
    this.code = cb.code;
  }
}

before(async () => {
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
  suite = await startBrowserSuite(env, { mcp: true });
});

after(async () => {
  await suite?.close();
});

test('SDK client: 401 -> discovery -> registration -> browser login and consent -> tool; refresh on expiry; revoked token gets 401', async () => {
  const provider = new BrowserProvider();
  const client = await connectSignedIn(MCP_URL, provider, 'pipe2-e2e');
  assert.equal(provider.redirects, 1);
  assert.match(provider.client.client_id, /^c_/);
  assert.equal(provider.client.token_endpoint_auth_method, 'none');
  const me = await whoami(client);
  assert.equal(me.sub, env.P2A_USER_ID);
  assert.equal(me.kind, 'OAUTH_ACCESS_TOKEN');
  assert.equal(me.client_id, provider.client.client_id);
  assert.deepEqual(me.scopes, ['mcp']);

  // the access token expires (a few seconds in this test); the next call refreshes
  const first = provider.tokens();
  assert.ok(first.refresh_token);
  const rpc = introspector(env.P2A_RPC, env.P2A_INTROSPECT_KEY);
  try {
    await waitFor(async () => (await rpc.introspect(first.access_token, MCP_URL)).reason === 'EXPIRED',
      30000, 'the access token to expire');
  } finally {
    rpc.close();
  }
  const again = await whoami(client);
  assert.equal(again.sub, env.P2A_USER_ID);
  const second = provider.tokens();
  assert.notEqual(second.access_token, first.access_token);
  assert.notEqual(second.refresh_token, first.refresh_token); // rotated
  assert.equal(provider.redirects, 1); // no new browser round

  // revoked through /revoke: the MCP server answers 401 with the challenge to copy
  const rv = await fetch(`${ISSUER}/revoke`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: second.access_token, client_id: provider.client.client_id }),
  });
  assert.equal(rv.status, 200);
  const r = await mcpPost(MCP_URL, second.access_token);
  assert.equal(r.status, 401);
  const www = r.headers.get('www-authenticate');
  assert.match(www, /^Bearer error="invalid_token", error_description="Token revoked"/);
  assert.ok(www.includes(`resource_metadata="http://127.0.0.1:${env.P2A_MCP_PORT}/.well-known/oauth-protected-resource/mcp"`), www);
  assert.ok(www.includes('scope="mcp"'), www);
  await client.close();
});

test('a PAT issued over the RPC works with the same MCP server as a plain header', async () => {
  const admin = adminRpc(env.P2A_RPC, env.P2A_ADMIN_KEY);
  await admin.call('PutUser', { user_id: 'dashboard-user-7', display_name: 'Dashboard user' });
  const issued = await admin.call('IssueToken', { user_id: 'dashboard-user-7', name: 'laptop' });
  admin.close();
  // the product documentation's client configuration: {"headers": {"Authorization": "Bearer ..."}}
  const client = await connectWithToken(MCP_URL, issued.token, 'pat-client');
  const me = await whoami(client);
  assert.equal(me.sub, 'dashboard-user-7');
  assert.equal(me.kind, 'PERSONAL_ACCESS_TOKEN');
  await client.close();
});
