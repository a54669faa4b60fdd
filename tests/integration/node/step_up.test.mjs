// Step-up for clients that registered at /register (issue 21): the MCP SDKs register with the
// scope of the first challenge ('mcp'); a tool that needs 'files' answers 403
// insufficient_scope; the client asks again for 'mcp files', the person sees the consent page
// again (remembered consent covers only what was approved), and the tool call goes through.
// Before, the registered scope was a ceiling: /authorize narrowed the request back to 'mcp',
// remembered consent skipped the page, and the client looped. SDK v2
// (@modelcontextprotocol/client) and SDK v1 (@modelcontextprotocol/sdk), each its own
// registration. Run by tests/integration/test_mcp_2026.py.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as v2 from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError as V1Unauthorized } from '@modelcontextprotocol/sdk/client/auth.js';
import { MemoryProvider, approveInBrowser, startBrowserSuite } from './browser_harness.mjs';
import { whoami } from './mcp_server.mjs';

const env = process.env;
const MCP_URL = `http://127.0.0.1:${env.P2A_MCP_PORT}/mcp`;

let suite;

before(async () => {
  suite = await startBrowserSuite(env, { mcp: true });
});

after(async () => {
  await suite?.close();
});

// A registered client (no metadata document): the browser signs in when asked, and approves
// on the consent page, which it records.
class RegisteredProvider extends MemoryProvider {
  constructor(name, grantTypes) {
    super(suite.callbacks, name);
    this.consents = [];
    this.redirects = [];
    this.grantTypes = grantTypes;
  }
  get clientMetadata() {
    return { ...super.clientMetadata, grant_types: this.grantTypes };
  }
  async redirectToAuthorization(url) {
    this.redirects.push(new URL(url));
    const page = await suite.browser.newPage();
    const landed = this.callbacks.next();
    this.consents.push(await approveInBrowser(page, url, env.P2A_USER, env.P2A_PASSWORD));
    const back = await landed;
    this.code = back.searchParams.get('code');
    this.callback = back.searchParams;
    await page.close();
  }
}

// SDK v1 (1.32) answers a 403 by refreshing when it holds a refresh token, without a scope
// (a refresh can only narrow, RFC 6749 6), and then gives up: it steps up by signing in again
// only without one. So its client here registers the code grant alone, as many do.
const sdks = {
  v2: { Client: v2.Client, Transport: v2.StreamableHTTPClientTransport,
    Unauthorized: v2.UnauthorizedError, finish: (t, p) => t.finishAuth(p.callback),
    grants: ['authorization_code', 'refresh_token'] },
  v1: { Client: V1Client, Transport: V1Transport, Unauthorized: V1Unauthorized,
    finish: (t, p) => t.finishAuth(p.code), grants: ['authorization_code'] },
};

for (const [name, sdk] of Object.entries(sdks)) {
  test(`SDK ${name}, registered at /register: 403 insufficient_scope -> consent again -> the tool runs`, async () => {
    const provider = new RegisteredProvider(`step-up ${name}`, sdk.grants);
    const connect = async () => {
      const client = new sdk.Client({ name: `step-up-${name}`, version: '1.0.0' });
      const transport = new sdk.Transport(new URL(MCP_URL), { authProvider: provider });
      await client.connect(transport);
      return { client, transport };
    };
    // sign in: the SDK registers with the first challenge's scope
    let transport = new sdk.Transport(new URL(MCP_URL), { authProvider: provider });
    await assert.rejects(new sdk.Client({ name: 'x', version: '1' }).connect(transport), sdk.Unauthorized);
    assert.ok(provider.client?.client_id?.startsWith('c_'), JSON.stringify(provider.client));
    const registered = provider.client.scope.split(' ');
    assert.ok(registered.includes('mcp') && !registered.includes('files'), registered);
    await sdk.finish(transport, provider);
    let { client } = await connect();
    const first = await whoami(client);
    assert.ok(first.scopes.includes('mcp') && !first.scopes.includes('files'), first.scopes);

    // step-up: the tool needs files; the client asks for the union
    const step = await client.callTool({ name: 'write_note', arguments: {} }).then(
      () => null, (e) => e);
    assert.ok(step instanceof sdk.Unauthorized, String(step));
    assert.equal(provider.redirects.length, 2);
    const asked = provider.redirects[1].searchParams.get('scope').split(' ');
    assert.ok(asked.includes('mcp') && asked.includes('files'), asked);
    // remembered consent covered 'mcp' only: the page came again, naming files
    assert.equal(provider.consents.length, 2);
    assert.match(provider.consents[1], /files/);
    await client.close();
    transport = new sdk.Transport(new URL(MCP_URL), { authProvider: provider });
    await sdk.finish(transport, provider);
    ({ client } = await connect());
    const wrote = await client.callTool({ name: 'write_note', arguments: {} });
    assert.equal(wrote.content[0].text, 'written');
    const after = await whoami(client);
    assert.ok(after.scopes.includes('mcp') && after.scopes.includes('files'), after.scopes);
    await client.close();
  });
}
