// The MCP TypeScript SDK v2 client (@modelcontextprotocol/client) against pipe2-auth, as the
// 2026-07-28 revision has it: the client identifies itself with a Client ID Metadata
// Document (its clientMetadataUrl, served over https by docserver.py), signs in through
// headless Chromium, calls a tool; then a tool that needs a second scope answers 403
// insufficient_scope, the client asks again for the union of scopes, and the call goes
// through. Run by tests/integration/test_mcp_2026.py, which starts redis-server, the
// document server and pipe2-authd.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';
import { MemoryProvider, approveInBrowser, startBrowserSuite } from './browser_harness.mjs';

const env = process.env;
const ISSUER = env.P2A_ISSUER;
const MCP_URL = `http://127.0.0.1:${env.P2A_MCP_PORT}/mcp`;
const DOC_URL = env.P2A_CLIENT_DOC;

let suite;

class BrowserProvider extends MemoryProvider {
  constructor() {
    super(suite.callbacks, 'MCP SDK v2 test');
    this.redirects = [];
  }
  get clientMetadataUrl() { return DOC_URL; }
  // SEP-2352: the authorization server a code was asked of, checked on the callback leg
  saveDiscoveryState(s) { this.discovery = s; }
  discoveryState() { return this.discovery; }
  async redirectToAuthorization(url) {
    this.redirects.push(url);
    const page = await suite.browser.newPage();
    const landed = this.callbacks.next().then((u) => u.searchParams);
    this.consent = await approveInBrowser(page, url, env.P2A_USER, env.P2A_PASSWORD);
    this.callback = await landed;
    await page.close();
    assert.equal(this.callback.get('state'), this.lastState);
  }
}

before(async () => {
  suite = await startBrowserSuite(env, { mcp: true });
});

after(async () => {
  await suite?.close();
});

async function connected(provider) {
  const client = new Client({ name: 'pipe2-v2', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider }));
  return client;
}

test('SDK v2: metadata document client -> browser sign-in -> tool; 403 insufficient_scope -> union of scopes -> tool', async () => {
  const provider = new BrowserProvider();
  let transport = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
  let client = new Client({ name: 'pipe2-v2', version: '1.0.0' });
  await assert.rejects(client.connect(transport), UnauthorizedError);
  assert.equal(provider.redirects.length, 1);
  const first = new URL(provider.redirects[0]);
  assert.equal(first.searchParams.get('client_id'), DOC_URL); // no registration: the document
  assert.match(provider.consent, /Published by <strong>127\.0\.0\.1<\/strong>/);
  await transport.finishAuth(provider.callback);
  client = await connected(provider);
  const me = JSON.parse((await client.callTool({ name: 'whoami', arguments: {} })).content[0].text);
  assert.equal(me.client_id, DOC_URL);
  assert.ok(me.scopes.includes('mcp'), me.scopes);
  assert.ok(!me.scopes.includes('files'), me.scopes);

  // step-up: write_note needs 'files' as well; the client asks again for the union
  await assert.rejects(client.callTool({ name: 'write_note', arguments: {} }), UnauthorizedError);
  assert.equal(provider.redirects.length, 2);
  const second = new URL(provider.redirects[1]);
  const asked = second.searchParams.get('scope').split(' ');
  assert.ok(asked.includes('mcp') && asked.includes('files'), asked);
  await client.close();
  transport = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
  await transport.finishAuth(provider.callback);
  client = await connected(provider);
  const wrote = await client.callTool({ name: 'write_note', arguments: {} });
  assert.equal(wrote.content[0].text, 'written');
  const again = JSON.parse((await client.callTool({ name: 'whoami', arguments: {} })).content[0].text);
  assert.ok(again.scopes.includes('files') && again.scopes.includes('mcp'), again.scopes);
  await client.close();
});
