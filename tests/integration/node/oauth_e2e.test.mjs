// End to end with the official MCP TypeScript SDK client and a real browser: the client
// starts with nothing but the MCP URL, gets a 401 that leads it to pipe2-auth, registers
// itself, and its OAuthClientProvider drives headless Chromium (playwright-core) through
// our login and consent pages; then it calls a tool, refreshes when its access token
// expires, and a revoked token gets 401 with the right WWW-Authenticate. A PAT works with
// the same MCP server through a plain Authorization header.
// Run by tests/integration/test_oauth_mcp.py, which starts redis-server and pipe2-authd.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { startMcpServer, introspector } from './mcp_server.mjs';
import { launchChromium, startCallbacks, waitFor } from './browser_harness.mjs';

const env = process.env;
const ISSUER = env.P2A_ISSUER;
const MCP_URL = `http://127.0.0.1:${env.P2A_MCP_PORT}/mcp`;
const SHOTS = env.P2A_SHOTS;
const here = path.dirname(fileURLToPath(import.meta.url));

let mcp, browser, callbacks, callbackPort;

// The browser side of the provider: sign in and approve like a person would.
class BrowserProvider {
  constructor() {
    this.saved = [];
    this.redirects = 0;
  }
  get redirectUrl() { return `http://127.0.0.1:${callbackPort}/callback`; }
  get clientMetadata() {
    // registered without the port: loopback redirect URIs match on any port (RFC 8252 7.3)
    return {
      client_name: 'MCP SDK end-to-end test',
      redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() { this.lastState = crypto.randomBytes(16).toString('hex'); return this.lastState; }
  clientInformation() { return this.client; }
  saveClientInformation(info) { this.client = info; }
  tokens() { return this.current; }
  saveTokens(t) { this.current = t; this.saved.push(t); }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  async redirectToAuthorization(url) {
    this.redirects++;
    const page = await browser.newPage();
    const landed = callbacks.next().then((u) => Object.fromEntries(u.searchParams));
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

function introspectRpc() {
  return introspector(env.P2A_RPC, env.P2A_INTROSPECT_KEY);
}

before(async () => {
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
  callbacks = await startCallbacks();
  callbackPort = callbacks.port;
  mcp = await startMcpServer({
    port: Number(env.P2A_MCP_PORT), resource: MCP_URL, facade: ISSUER,
    rpcAddr: env.P2A_RPC, introspectKey: env.P2A_INTROSPECT_KEY,
  });
  browser = await launchChromium(env);
});

after(async () => {
  await browser?.close();
  await mcp?.close();
  await callbacks?.close();
});

async function whoami(client) {
  const r = await client.callTool({ name: 'whoami', arguments: {} });
  return JSON.parse(r.content[0].text);
}

test('SDK client: 401 -> discovery -> registration -> browser login and consent -> tool; refresh on expiry; revoked token gets 401', async () => {
  const provider = new BrowserProvider();
  let transport = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
  let client = new Client({ name: 'pipe2-e2e', version: '1.0.0' });
  await assert.rejects(client.connect(transport), UnauthorizedError);
  assert.equal(provider.redirects, 1);
  assert.match(provider.client.client_id, /^c_/);
  assert.equal(provider.client.token_endpoint_auth_method, 'none');
  await transport.finishAuth(provider.code);
  transport = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
  client = new Client({ name: 'pipe2-e2e', version: '1.0.0' });
  await client.connect(transport);
  const me = await whoami(client);
  assert.equal(me.sub, env.P2A_USER_ID);
  assert.equal(me.kind, 'OAUTH_ACCESS_TOKEN');
  assert.equal(me.client_id, provider.client.client_id);
  assert.deepEqual(me.scopes, ['mcp']);

  // the access token expires (a few seconds in this test); the next call refreshes
  const first = provider.tokens();
  assert.ok(first.refresh_token);
  const rpc = introspectRpc();
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
  const r = await fetch(MCP_URL, {
    method: 'POST',
    headers: { Authorization: `Bearer ${second.access_token}`, 'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
  });
  assert.equal(r.status, 401);
  const www = r.headers.get('www-authenticate');
  assert.match(www, /^Bearer error="invalid_token", error_description="Token revoked"/);
  assert.ok(www.includes(`resource_metadata="http://127.0.0.1:${env.P2A_MCP_PORT}/.well-known/oauth-protected-resource/mcp"`), www);
  assert.ok(www.includes('scope="mcp"'), www);
  await client.close();
});

test('a PAT issued over the RPC works with the same MCP server as a plain header', async () => {
  const def = protoLoader.loadSync(['pipe2/auth/v1/token_service.proto'], {
    includeDirs: [path.resolve(here, '../../../proto')], keepCase: true, longs: Number,
    enums: String, defaults: true });
  const { TokenService } = grpc.loadPackageDefinition(def).pipe2.auth.v1;
  const svc = new TokenService(env.P2A_RPC, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${env.P2A_ADMIN_KEY}`);
  await new Promise((resolve, reject) => svc.PutUser(
    { user_id: 'dashboard-user-7', display_name: 'Dashboard user' }, md,
    (e, r) => (e ? reject(e) : resolve(r))));
  const issued = await new Promise((resolve, reject) => svc.IssueToken(
    { user_id: 'dashboard-user-7', name: 'laptop' }, md, (e, r) => (e ? reject(e) : resolve(r))));
  svc.close();
  // the product documentation's client configuration: {"headers": {"Authorization": "Bearer ..."}}
  const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), {
    requestInit: { headers: { Authorization: `Bearer ${issued.token}` } } });
  const client = new Client({ name: 'pat-client', version: '1.0.0' });
  await client.connect(transport);
  const me = await whoami(client);
  assert.equal(me.sub, 'dashboard-user-7');
  assert.equal(me.kind, 'PERSONAL_ACCESS_TOKEN');
  await client.close();
});
