// The official MCP TypeScript SDK client, knowing only the MCP URL, through a real nginx
// that serves one origin: the MCP endpoint (the example server, with no auth code) behind
// auth_request to pipe2-auth's forward-auth, and pipe2-auth's facade for everything else.
// The client gets 401, finds the metadata on that origin, registers, signs in and consents
// in headless Chromium, and calls a tool that echoes the subject nginx passed upstream.
// Run by tests/integration/test_gateway.py, which starts redis-server, pipe2-authd, nginx
// and the example MCP server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { whoami } from './mcp_server.mjs';
import { MemoryProvider, connectSignedIn, startBrowserSuite } from './browser_harness.mjs';

const env = process.env;
const ORIGIN = env.P2A_ORIGIN;
const MCP_URL = `${ORIGIN}/mcp`;
// the single origin of the seed; P2A_ISSUER when the facade has its own (deploy/run-local.sh)
const ISSUER = env.P2A_ISSUER || ORIGIN;
let suite;
const fetched = [];

class BrowserProvider extends MemoryProvider {
  async redirectToAuthorization(url) {
    assert.equal(url.origin, ISSUER); // sign-in on the MCP server's own origin
    const page = await suite.browser.newPage();
    const landed = this.callbacks.next().then((u) => Object.fromEntries(u.searchParams));
    await page.goto(url.toString());
    await page.waitForSelector('form[action="/login"]');
    await page.fill('#username', env.P2A_USER);
    await page.fill('#password', env.P2A_PASSWORD);
    await Promise.all([page.waitForSelector('form[action="/consent"]'),
      page.click('button[type=submit]')]);
    await page.click('button[value=approve]');
    const cb = await landed;
    await page.close();
    assert.equal(cb.state, this.lastState);
    assert.equal(cb.iss, ISSUER);
    this.code = cb.code;
  }
}

// every URL the SDK asks for, to show where it found the metadata
const recordingFetch = (url, init) => { fetched.push(String(url)); return fetch(url, init); };

before(async () => {
  suite = await startBrowserSuite(env);
});

after(async () => {
  await suite?.close();
});

test('a browser-based client on another origin reads the 401 challenge (CORS)', async () => {
  const page = await suite.browser.newPage();
  await page.goto(`http://127.0.0.1:${suite.callbacks.port}/app`); // some web app's origin
  const seen = await page.evaluate(async (url) => {
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }) });
    return { status: r.status, www: r.headers.get('www-authenticate'), body: await r.json() };
  }, MCP_URL);
  await page.close();
  assert.equal(seen.status, 401);
  assert.equal(seen.www, `Bearer resource_metadata="${ORIGIN}/.well-known/oauth-protected-resource/mcp", scope="mcp"`);
  assert.equal(seen.body.error, 'invalid_token');
});

test('SDK client through nginx: 401 -> metadata on the origin -> registration -> browser sign-in -> tool sees the subject', async () => {
  const provider = new BrowserProvider(suite.callbacks, 'SDK through nginx');
  const client = await connectSignedIn(MCP_URL, provider, 'gateway-e2e', { fetch: recordingFetch });
  // what the first round (the 401) asked for, knowing only the MCP URL
  assert.ok(fetched.includes(`${ORIGIN}/.well-known/oauth-protected-resource/mcp`), fetched.join('\n'));
  assert.ok(fetched.includes(`${ISSUER}/.well-known/oauth-authorization-server`), fetched.join('\n'));
  assert.ok(fetched.includes(`${ISSUER}/register`), fetched.join('\n'));
  const tools = (await client.listTools()).tools.map((t) => t.name).sort();
  assert.deepEqual(tools, ['add', 'echo', 'whoami']);
  const who = await whoami(client);
  if (env.P2A_USER_ID) assert.equal(who.subject, env.P2A_USER_ID); // the sub of OAuth tokens
  else assert.match(who.subject, /^u_/);
  assert.equal(who.kind, 'oauth');
  assert.equal(who.client_id, provider.client.client_id);
  assert.match(who.scope, /\bmcp\b/);
  const sum = await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
  assert.equal(sum.content[0].text, '42');
  await client.close();
});
