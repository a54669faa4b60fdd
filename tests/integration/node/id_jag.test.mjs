// Enterprise-Managed Authorization with the MCP TypeScript SDK v2 (@modelcontextprotocol/client):
// its CrossAppAccessProvider finds our authorization server through the example MCP server's
// 401 and RFC 9728 document, exchanges the person's ID token for an ID-JAG at the company's
// identity provider (RFC 8693, discoverAndRequestJwtAuthGrant), redeems it at our /token
// (jwt-bearer, client_secret_basic) and calls whoami: the subject is the person's one subject,
// the same their upstream sign-in gives them. No page is shown. Run by
// tests/integration/test_idjag.py, which starts the provider, pipe2-authd and the MCP server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Client, CrossAppAccessProvider, StreamableHTTPClientTransport, discoverAndRequestJwtAuthGrant,
} from '@modelcontextprotocol/client';

const env = process.env;

test('SDK v2 CrossAppAccessProvider: ID token -> ID-JAG -> access token -> whoami is the person', async () => {
  const asked = [];
  const provider = new CrossAppAccessProvider({
    assertion: async (ctx) => {
      asked.push(ctx);
      const grant = await discoverAndRequestJwtAuthGrant({
        idpUrl: env.P2A_IDP,
        audience: ctx.authorizationServerUrl,
        resource: ctx.resourceUrl,
        idToken: env.P2A_ID_TOKEN,
        clientId: env.P2A_IDP_CLIENT,
        clientSecret: env.P2A_IDP_SECRET,
        scope: ctx.scope,
        fetchFn: ctx.fetchFn,
      });
      return grant.jwtAuthGrant;
    },
    clientId: env.P2A_CLIENT_ID,
    clientSecret: env.P2A_CLIENT_SECRET,
    expectedIssuer: env.P2A_ISSUER,
  });
  const client = new Client({ name: 'pipe2-xaa', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(env.P2A_MCP_URL),
    { authProvider: provider }));
  const me = JSON.parse((await client.callTool({ name: 'whoami', arguments: {} })).content[0].text);
  assert.equal(me.subject, env.P2A_EXPECT_SUB);
  assert.equal(me.client_id, env.P2A_CLIENT_ID);
  assert.ok(me.scope.split(' ').includes('mcp'), me.scope);
  assert.equal(asked.length, 1);
  assert.equal(String(asked[0].resourceUrl), env.P2A_MCP_URL);
  assert.equal(provider.tokens().refresh_token, undefined); // none comes of an ID-JAG
  await client.close();
});
