// The official MCP TypeScript SDK client, knowing only the MCP URL, through a real nginx
// that serves one origin: the MCP endpoint (the example server, with no auth code) behind
// auth_request to pipe2-auth's forward-auth, and pipe2-auth's facade for everything else.
// The client gets 401, finds the metadata on that origin, registers, signs in and consents
// in headless Chromium, and calls a tool that echoes the subject nginx passed upstream.
// Run by tests/integration/test_gateway.py, which starts redis-server, pipe2-authd, nginx
// and the example MCP server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { launchChromium, startCallbacks } from './browser_harness.mjs';

const env = process.env;
const ORIGIN = env.P2A_ORIGIN;
const MCP_URL = `${ORIGIN}/mcp`;
// the single origin of the seed; P2A_ISSUER when the facade has its own (deploy/run-local.sh)
const ISSUER = env.P2A_ISSUER || ORIGIN;
let browser, callbacks, callbackPort;
const fetched = [];

class BrowserProvider {
  get redirectUrl() { return `http://127.0.0.1:${callbackPort}/callback`; }
  get clientMetadata() {
    return { client_name: 'SDK through nginx', redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      token_endpoint_auth_method: 'none' };
  }
  state() { this.lastState = crypto.randomBytes(16).toString('hex'); return this.lastState; }
  clientInformation() { return this.client; }
  saveClientInformation(info) { this.client = info; }
  tokens() { return this.current; }
  saveTokens(t) { this.current = t; }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  async redirectToAuthorization(url) {
    assert.equal(url.origin, ISSUER); // sign-in on the MCP server's own origin
    const page = await browser.newPage();
    const landed = callbacks.next().then((u) => Object.fromEntries(u.searchParams));
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
  callbacks = await startCallbacks();
  callbackPort = callbacks.port;
  browser = await launchChromium(env);
});

after(async () => {
  await browser?.close();
  await callbacks?.close();
});

test('a browser-based client on another origin reads the 401 challenge (CORS)', async () => {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${callbackPort}/app`); // some web app's origin
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
  const provider = new BrowserProvider();
  let transport = new StreamableHTTPClientTransport(new URL(MCP_URL),
    { authProvider: provider, fetch: recordingFetch });
  let client = new Client({ name: 'gateway-e2e', version: '1.0.0' });
  await assert.rejects(client.connect(transport), UnauthorizedError);
  assert.ok(fetched.includes(`${ORIGIN}/.well-known/oauth-protected-resource/mcp`), fetched.join('\n'));
  assert.ok(fetched.includes(`${ISSUER}/.well-known/oauth-authorization-server`), fetched.join('\n'));
  assert.ok(fetched.includes(`${ISSUER}/register`), fetched.join('\n'));
  await transport.finishAuth(provider.code);
  transport = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
  client = new Client({ name: 'gateway-e2e', version: '1.0.0' });
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name).sort();
  assert.deepEqual(tools, ['add', 'echo', 'whoami']);
  const who = JSON.parse((await client.callTool({ name: 'whoami', arguments: {} })).content[0].text);
  if (env.P2A_USER_ID) assert.equal(who.subject, env.P2A_USER_ID); // the sub of OAuth tokens
  else assert.match(who.subject, /^u_/);
  assert.equal(who.kind, 'oauth');
  assert.equal(who.client_id, provider.client.client_id);
  assert.match(who.scope, /\bmcp\b/);
  const sum = await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
  assert.equal(sum.content[0].text, '42');
  await client.close();
});
