// Sign-in through the company's identity provider (node-oidc-provider, upstream_idp.mjs):
// the official MCP SDK client starts from the MCP URL, registers, and its provider drives
// headless Chromium from our /authorize to the identity provider's login and consent pages,
// back to our consent page, and to the client. The tool then sees the provider's sub (with
// the configured prefix), and a PAT the dashboard issues to that same id carries it too.
// Run by tests/integration/test_upstream.py, which starts redis-server, the provider and
// pipe2-authd (local accounts on: the login page offers "Continue with <provider>").
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { startMcpServer } from './mcp_server.mjs';
import { launchChromium, startCallbacks } from './browser_harness.mjs';

const env = process.env;
const ISSUER = env.P2A_ISSUER;
const MCP_URL = `http://127.0.0.1:${env.P2A_MCP_PORT}/mcp`;
const here = path.dirname(fileURLToPath(import.meta.url));

let mcp, browser, callbacks;

class BrowserProvider {
  get redirectUrl() { return `http://127.0.0.1:${callbacks.port}/callback`; }
  get clientMetadata() {
    return {
      client_name: 'MCP SDK upstream test',
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
  saveTokens(t) { this.current = t; }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  async redirectToAuthorization(url) {
    const page = await browser.newPage();
    const landed = callbacks.next().then((u) => Object.fromEntries(u.searchParams));
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
    // the page stays open (browser.close() ends it): closing a page that has just navigated
    // was seen to hang under load in account.test.mjs, and with it the SDK's request
    assert.equal(cb.state, this.lastState);
    assert.equal(cb.iss, ISSUER);
    this.code = cb.code;
  }
}

before(async () => {
  callbacks = await startCallbacks();
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

test('SDK client signs in through node-oidc-provider; its sub is the one a PAT for that person carries', async () => {
  const provider = new BrowserProvider();
  let transport = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
  let client = new Client({ name: 'pipe2-upstream', version: '1.0.0' });
  await assert.rejects(client.connect(transport), UnauthorizedError);
  await transport.finishAuth(provider.code);
  transport = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
  client = new Client({ name: 'pipe2-upstream', version: '1.0.0' });
  await client.connect(transport);
  const me = await whoami(client);
  assert.equal(me.sub, env.P2A_SUBJECT);
  assert.equal(me.kind, 'OAUTH_ACCESS_TOKEN');
  await client.close();

  // the dashboard, signed in through the same provider, knows the same id: no PutUser needed
  const def = protoLoader.loadSync(['pipe2/auth/v1/token_service.proto'], {
    includeDirs: [path.resolve(here, '../../../proto')], keepCase: true, longs: Number,
    enums: String, defaults: true });
  const { TokenService } = grpc.loadPackageDefinition(def).pipe2.auth.v1;
  const svc = new TokenService(env.P2A_RPC, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${env.P2A_ADMIN_KEY}`);
  const issued = await new Promise((resolve, reject) => svc.IssueToken(
    { user_id: env.P2A_SUBJECT, name: 'laptop' }, md, (e, r) => (e ? reject(e) : resolve(r))));
  svc.close();
  const patTransport = new StreamableHTTPClientTransport(new URL(MCP_URL), {
    requestInit: { headers: { Authorization: `Bearer ${issued.token}` } } });
  const patClient = new Client({ name: 'pat-client', version: '1.0.0' });
  await patClient.connect(patTransport);
  const viaPat = await whoami(patClient);
  assert.equal(viaPat.sub, me.sub);
  assert.equal(viaPat.kind, 'PERSONAL_ACCESS_TOKEN');
  await patClient.close();
});
