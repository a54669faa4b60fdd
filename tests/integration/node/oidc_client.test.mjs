// openid-client 6 (on oauth4webapi 3), a strict validator of every OAuth response, against
// pipe2-auth: RFC 8414 discovery; a Client ID Metadata Document client authenticating with
// private_key_jwt; the code grant with PKCE, signed in through headless Chromium; refresh;
// RFC 7662 introspection; RFC 7009 revocation; and an unknown client, whose invalid_client
// the library must read from the body. Run by tests/integration/test_mcp_2026.py.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as oidc from 'openid-client';
import { startBrowserSuite } from './browser_harness.mjs';

const env = process.env;
const ISSUER = new URL(env.P2A_ISSUER);
const RESOURCE = env.P2A_RESOURCE;
const CLIENT_ID = env.P2A_SIGNER_DOC; // https://127.0.0.1:<port>/clients/pkjwt.json

let suite;

before(async () => {
  suite = await startBrowserSuite(env);
});

after(async () => {
  await suite?.close();
});
async function signInAt(url) {
  const page = await suite.browser.newPage();
  const landed = suite.callbacks.next();
  await page.goto(url.href);
  await page.fill('#username', env.P2A_USER);
  await page.fill('#password', env.P2A_PASSWORD);
  await Promise.all([page.waitForSelector('form[action="/consent"]'),
    page.click('button[type=submit]')]);
  await page.click('button[value=approve]');
  const back = await landed;
  await page.close();
  return back;
}

async function signingKey() {
  const der = crypto.createPrivateKey(readFileSync(env.P2A_SIGNER_KEY))
    .export({ type: 'pkcs8', format: 'der' });
  const key = await crypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' },
    false, ['sign']);
  return { key, kid: 'k1' };
}

test('openid-client: discovery, private_key_jwt, code + PKCE, refresh, introspect, revoke', async () => {
  const config = await oidc.discovery(ISSUER, CLIENT_ID, undefined,
    oidc.PrivateKeyJwt(await signingKey()),
    { algorithm: 'oauth2', execute: [oidc.allowInsecureRequests] });
  const meta = config.serverMetadata();
  assert.equal(meta.issuer, ISSUER.href.replace(/\/$/, ''));
  assert.equal(meta.client_id_metadata_document_supported, true);
  assert.ok(meta.token_endpoint_auth_methods_supported.includes('private_key_jwt'));

  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const redirect_uri = `http://127.0.0.1:${suite.callbacks.port}/callback`;
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri, scope: 'mcp offline_access', state, resource: RESOURCE,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const back = await signInAt(url);
  // validates iss (RFC 9207), state, then the token response in full
  const tokens = await oidc.authorizationCodeGrant(config, back,
    { pkceCodeVerifier: verifier, expectedState: state }, { redirect_uri, resource: RESOURCE });
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.ok(tokens.refresh_token);
  assert.equal(tokens.scope, 'mcp offline_access');

  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token); // rotated

  const active = await oidc.tokenIntrospection(config, refreshed.access_token);
  assert.equal(active.active, true);
  assert.equal(active.client_id, CLIENT_ID);
  assert.equal(active.aud?.[0] ?? active.aud, RESOURCE);
  const rt = await oidc.tokenIntrospection(config, refreshed.refresh_token);
  assert.equal(rt.active, true); // a refresh token is introspectable by its client
  const old = await oidc.tokenIntrospection(config, tokens.refresh_token);
  assert.equal(old.active, false); // rotated away

  await oidc.tokenRevocation(config, refreshed.refresh_token);
  const gone = await oidc.tokenIntrospection(config, refreshed.refresh_token);
  assert.equal(gone.active, false);
});

test('openid-client: an unknown client reads invalid_client from the body', async () => {
  const config = await oidc.discovery(ISSUER, 'c_AAAAAAAAAAAAAAAAAAAAAA', undefined, oidc.None(),
    { algorithm: 'oauth2', execute: [oidc.allowInsecureRequests] });
  await assert.rejects(oidc.refreshTokenGrant(config, 'a-refresh-token'), (e) => {
    assert.equal(e.error, 'invalid_client', `${e.name}: ${e.message}`);
    assert.equal(e.status, 401);
    return true;
  });
});
