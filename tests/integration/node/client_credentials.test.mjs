// The MCP TypeScript SDK v2 client as an agent with no person in the loop (SEP-1046, the
// io.modelcontextprotocol/oauth-client-credentials extension): ClientCredentialsProvider
// (client_secret_basic) and PrivateKeyJwtProvider (private_key_jwt, RFC 7523 2.2) against the
// example MCP server behind forward-auth. whoami shows the client as the subject and the kind
// "client"; after RevokeClient the same token is refused (401) by both replicas within a
// second, and the client gets no new one. Run by tests/integration/test_client_credentials.py,
// which starts redis-server, two pipe2-authd replicas and an example MCP server per replica.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import {
  Client, ClientCredentialsProvider, PrivateKeyJwtProvider, StreamableHTTPClientTransport,
} from '@modelcontextprotocol/client';
import { mcpPost } from './browser_harness.mjs';

const env = process.env;
const ISSUER = env.P2A_ISSUER;
const RESOURCE = env.P2A_RESOURCE;
const MCP = [env.P2A_MCP_A, env.P2A_MCP_B]; // each behind its own replica's forward-auth

const here = path.dirname(fileURLToPath(import.meta.url));
const def = protoLoader.loadSync(['pipe2/auth/v1/token_service.proto'], {
  includeDirs: [path.resolve(here, '../../../proto')], keepCase: true, longs: Number,
  enums: String, defaults: true });
const { TokenService } = grpc.loadPackageDefinition(def).pipe2.auth.v1;
const svc = new TokenService(env.P2A_RPC, grpc.credentials.createInsecure());

function admin(method, req) {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${env.P2A_ADMIN_KEY}`);
  return new Promise((resolve, reject) => {
    svc[method](req, md, { deadline: Date.now() + 5000 }, (err, r) => (err ? reject(err) : resolve(r)));
  });
}

async function whoami(provider) {
  const client = new Client({ name: 'pipe2-agent', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(MCP[0]), { authProvider: provider }));
  const me = JSON.parse((await client.callTool({ name: 'whoami', arguments: {} })).content[0].text);
  await client.close();
  return me;
}

// RevokeClient, then the token on both replicas until each answers 401: how long it took.
async function revokedEverywhere(clientId, token) {
  for (const url of MCP)
    assert.equal((await mcpPost(url, token)).status, 200);
  await admin('RevokeClient', { client_id: clientId });
  const t0 = Date.now();
  const refused = new Set();
  while (refused.size < MCP.length && Date.now() - t0 < 1000) {
    for (const url of MCP)
      if (!refused.has(url) && (await mcpPost(url, token)).status === 401)
        refused.add(url);
  }
  assert.equal(refused.size, MCP.length, 'a replica still accepts the revoked client\'s token');
  return Date.now() - t0;
}

async function getsNoToken(provider) {
  const client = new Client({ name: 'pipe2-agent', version: '1.0.0' });
  await assert.rejects(client.connect(new StreamableHTTPClientTransport(new URL(MCP[0]),
    { authProvider: provider })), /invalid_client|revoked|Unauthorized/i);
}

test('ClientCredentialsProvider (client_secret_basic): whoami is the client; RevokeClient ends it on both replicas', async () => {
  const reg = await admin('RegisterClient', {
    client_name: 'nightly CI', grant_types: ['client_credentials'], resources: [RESOURCE],
    scope: 'mcp' });
  assert.ok(reg.client_secret);
  const provider = new ClientCredentialsProvider({
    clientId: reg.client_id, clientSecret: reg.client_secret, expectedIssuer: ISSUER });
  const me = await whoami(provider);
  assert.equal(me.subject, reg.client_id);
  assert.equal(me.client_id, reg.client_id);
  assert.equal(me.kind, 'client');
  assert.equal(me.scope, 'mcp');
  assert.equal(provider.tokens().refresh_token, undefined);
  const ms = await revokedEverywhere(reg.client_id, provider.tokens().access_token);
  console.log(`client_secret_basic client: refused on both replicas ${ms} ms after RevokeClient`);
  await getsNoToken(new ClientCredentialsProvider({
    clientId: reg.client_id, clientSecret: reg.client_secret, expectedIssuer: ISSUER }));
});

test('PrivateKeyJwtProvider (private_key_jwt, ES256): whoami is the client; RevokeClient ends it on both replicas', async () => {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'agent-1', use: 'sig', alg: 'ES256' };
  const reg = await admin('RegisterClient', {
    client_name: 'billing agent', grant_types: ['client_credentials'], resources: [RESOURCE],
    jwks: JSON.stringify({ keys: [jwk] }) });
  assert.equal(reg.client_secret, '');
  assert.equal(JSON.parse(reg.registration_json).token_endpoint_auth_method, 'private_key_jwt');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' });
  const make = () => new PrivateKeyJwtProvider({
    clientId: reg.client_id, privateKey: pem, algorithm: 'ES256', expectedIssuer: ISSUER });
  const provider = make();
  const me = await whoami(provider);
  assert.equal(me.subject, reg.client_id);
  assert.equal(me.kind, 'client');
  const ms = await revokedEverywhere(reg.client_id, provider.tokens().access_token);
  console.log(`private_key_jwt client: refused on both replicas ${ms} ms after RevokeClient`);
  await getsNoToken(make());
});
