// The hosted clients' metadata documents as they publish them (tests/fixtures/client-metadata:
// Claude, ChatGPT with jwks_uri and with inline jwks, Claude Code, VS Code, and one with many
// unused fields), each served over https from loopback with a test CA, through the whole
// flow with a strict OAuth client library (openid-client 6 on oauth4webapi): discovery,
// authorize with PKCE, sign-in and consent in headless Chromium, the code exchange, a
// refresh, and a tool call at an MCP server that checks the token with pipe2-authd's
// Introspect. The ChatGPT documents give only the plural token_endpoint_auth_methods_supported
// and their keys: they sign every token request (private_key_jwt), and an unsigned one is
// refused. Run by tests/integration/test_fixtures.py.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import https from 'node:https';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as oidc from 'openid-client';
import { approveInBrowser, connectWithToken, startBrowserSuite } from './browser_harness.mjs';
import { whoami } from './mcp_server.mjs';

const env = process.env;
const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.resolve(here, '../../fixtures/client-metadata');
const ISSUER = new URL(env.P2A_ISSUER);
const MCP_URL = `http://127.0.0.1:${env.P2A_MCP_PORT}/mcp`;

let suite;
let docs; // the https server of the documents
let signer; // the key ChatGPT-shaped clients sign with: { privateKey, jwk }
const served = new Map(); // path -> body

function isLoopback(uri) {
  const u = new URL(uri);
  return u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
}

// The document as the client publishes it, made servable here: client_id is the URL it is
// served at; https redirect URIs (claude.ai, chatgpt.com, vscode.dev) become the test's
// callback; loopback ones stay as they are (they match any port, RFC 8252 7.3); the keys are
// the test's own.
function prepare(name) {
  const doc = JSON.parse(readFileSync(path.join(FIXTURES, name), 'utf8'));
  const base = `https://127.0.0.1:${docs.address().port}`;
  doc.client_id = `${base}/fixtures/${name}`;
  const callback = `http://127.0.0.1:${suite.callbacks.port}/callback`;
  doc.redirect_uris = doc.redirect_uris.map((u) => (isLoopback(u) ? u : callback));
  if (doc.jwks) doc.jwks = { keys: [signer.jwk] };
  if (doc.jwks_uri) doc.jwks_uri = `${base}/fixtures/jwks.json`;
  served.set(`/fixtures/${name}`, JSON.stringify(doc));
  return doc;
}

// The redirect URI to ask for: one the document registered, on the callback server's port.
function redirectFor(doc) {
  const u = new URL(doc.redirect_uris[0]);
  if (isLoopback(doc.redirect_uris[0])) u.port = String(suite.callbacks.port);
  return u.href.replace(/\/$/, doc.redirect_uris[0].endsWith('/') ? '/' : '');
}

before(async () => {
  suite = await startBrowserSuite(env, { mcp: true });
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  signer = { privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid: 'fixture-key',
    use: 'sig', alg: 'ES256' } };
  docs = https.createServer({ cert: readFileSync(env.P2A_DOC_CERT), key: readFileSync(env.P2A_DOC_KEY) },
    (req, res) => {
      const p = req.url.split('?')[0];
      if (p === '/fixtures/jwks.json')
        return res.writeHead(200, { 'Content-Type': 'application/json' })
          .end(JSON.stringify({ keys: [signer.jwk] }));
      if (!served.has(p)) return res.writeHead(404).end();
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(served.get(p));
    });
  await new Promise((r) => docs.listen(0, '127.0.0.1', r));
});

after(async () => {
  docs?.closeAllConnections();
  await new Promise((r) => (docs ? docs.close(r) : r()));
  await suite?.close();
});

async function signInAt(url) {
  const page = await suite.browser.newPage();
  const landed = suite.callbacks.next();
  const consent = await approveInBrowser(page, url, env.P2A_USER, env.P2A_PASSWORD);
  const back = await landed;
  await page.close();
  return { back, consent };
}

async function signingKey() {
  const der = signer.privateKey.export({ type: 'pkcs8', format: 'der' });
  const key = await crypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' },
    false, ['sign']);
  return { key, kid: 'fixture-key' };
}

const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort();

test('every fixture is here', () => {
  assert.deepEqual(fixtures, ['chatgpt-inline-jwks.json', 'chatgpt.json', 'claude-code.json',
    'claude-web.json', 'extras.json', 'vscode.json']);
});

for (const name of fixtures) {
  test(`${name}: authorize, consent, code, refresh, tool call`, async () => {
    const doc = prepare(name);
    const signs = !doc.token_endpoint_auth_method
      && doc.token_endpoint_auth_methods_supported.includes('private_key_jwt');
    const auth = signs ? oidc.PrivateKeyJwt(await signingKey()) : oidc.None();
    const config = await oidc.discovery(ISSUER, doc.client_id, undefined, auth,
      { algorithm: 'oauth2', execute: [oidc.allowInsecureRequests] });
    assert.equal(config.serverMetadata().client_id_metadata_document_supported, true);

    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const redirect_uri = redirectFor(doc);
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri, scope: 'mcp offline_access', state, resource: MCP_URL,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const { back, consent } = await signInAt(url);
    assert.match(consent, new RegExp(`Published by <strong>127\\.0\\.0\\.1</strong>`));
    assert.ok(consent.includes(doc.client_name), consent);
    // the code is checked with iss (RFC 9207) and state, the token response in full
    const tokens = await oidc.authorizationCodeGrant(config, back,
      { pkceCodeVerifier: verifier, expectedState: state }, { redirect_uri, resource: MCP_URL })
      .catch((e) => { throw new Error(`${e.error}: ${e.error_description} (${redirect_uri})`); });
    assert.ok(tokens.refresh_token);
    assert.equal(tokens.scope, 'mcp offline_access');

    if (signs) { // its method is private_key_jwt: the same request unsigned is refused
      const bare = await fetch(new URL('token', ISSUER.href.replace(/\/?$/, '/')), {
        method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', client_id: doc.client_id,
          refresh_token: tokens.refresh_token }) });
      assert.equal(bare.status, 401);
      assert.equal((await bare.json()).error, 'invalid_client');
    }
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token,
      { resource: MCP_URL });
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token);

    const client = await connectWithToken(MCP_URL, refreshed.access_token, `fixture ${name}`);
    const me = await whoami(client);
    await client.close();
    assert.equal(me.client_id, doc.client_id);
    assert.equal(me.sub, env.P2A_USER_ID);
    assert.deepEqual(me.scopes, ['mcp', 'offline_access']);
  });
}
