// Envoy's ext_authz Check through @grpc/grpc-js, the client built from Envoy's own message
// shapes (envoy_api/: what Envoy sends, peers and time and all): a good token is allowed
// with the identity headers for the upstream; a missing header, a revoked token and an
// address no MCP server is served at are denied with the status, WWW-Authenticate and body a
// gateway passes on. Run by tests/integration/test_ext_authz.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));
const def = protoLoader.loadSync(['envoy/service/auth/v3/external_auth.proto'], {
  includeDirs: [path.join(here, 'envoy_api')], keepCase: true, longs: Number, enums: String,
  defaults: true, oneofs: true });
const { Authorization } = grpc.loadPackageDefinition(def).envoy.service.auth.v3;
const env = process.env;
const client = new Authorization(env.P2A_ADDR, grpc.credentials.createInsecure());
const mcpUrl = new URL(env.P2A_RESOURCE);

function check(headers, { host = mcpUrl.host, path = mcpUrl.pathname, key = env.P2A_INTROSPECT_KEY,
  method = 'POST' } = {}) {
  const md = new grpc.Metadata();
  if (key) md.set('authorization', `Bearer ${key}`);
  const req = { attributes: {
    source: { address: { socket_address: { address: '203.0.113.7', port_value: 51234 } } },
    destination: { address: { socket_address: { address: '10.0.0.5', port_value: 443 } } },
    request: {
      time: { seconds: Math.floor(Date.now() / 1000), nanos: 0 },
      http: { id: 'req-1', method, headers: { ...headers, host }, path, host,
        scheme: 'https', protocol: 'HTTP/1.1', size: 128 },
    },
    tls_session: { sni: host },
  } };
  return new Promise((resolve, reject) => client.Check(req, md, { deadline: Date.now() + 5000 },
    (e, r) => (e ? reject(e) : resolve(r))));
}

const hdr = (list, name) => list.find((h) => h.header.key.toLowerCase() === name)?.header.value;

test('Check: allowed with the identity, denied with what a client needs, on wrong addresses too', async () => {
  const ok = await check({ authorization: `Bearer ${env.P2A_PAT}` });
  assert.equal(ok.status.code, 0);
  assert.equal(ok.http_response, 'ok_response');
  const h = ok.ok_response.headers;
  assert.equal(hdr(h, 'x-auth-subject'), 'envoy-user');
  assert.equal(hdr(h, 'x-auth-token-kind'), 'pat');
  assert.equal(hdr(h, 'x-auth-token-id'), env.P2A_PAT_JTI);
  assert.equal(hdr(h, 'x-auth-scope'), 'mcp');
  assert.ok(Number(hdr(h, 'x-auth-expires')) > Date.now() / 1000);

  const missing = await check({});
  assert.equal(missing.http_response, 'denied_response');
  assert.equal(missing.status.code, 16); // UNAUTHENTICATED
  assert.equal(missing.denied_response.status.code, 'Unauthorized');
  const www = hdr(missing.denied_response.headers, 'www-authenticate');
  assert.match(www, /^Bearer resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource\/mcp", scope="mcp"$/);
  assert.equal(hdr(missing.denied_response.headers, 'access-control-expose-headers'), 'WWW-Authenticate');
  assert.match(JSON.parse(missing.denied_response.body).hint, /Authorization: Bearer/);

  const revoked = await check({ authorization: `Bearer ${env.P2A_REVOKED_PAT}` });
  assert.equal(revoked.denied_response.status.code, 'Unauthorized');
  assert.match(hdr(revoked.denied_response.headers, 'www-authenticate'), /error_description="Token revoked"/);
  assert.equal(JSON.parse(revoked.denied_response.body).error_description, 'Token revoked');

  const elsewhere = await check({ authorization: `Bearer ${env.P2A_PAT}` },
    { host: 'other.example.test', path: '/mcp' });
  assert.equal(elsewhere.denied_response.status.code, 'Forbidden');
  assert.equal(JSON.parse(elsewhere.denied_response.body).error, 'unknown_resource');

  // PIPE2_AUTH_FORWARD_AUTH_RESOURCES routes a gateway's host and path to a resource
  const routed = await check({}, { host: 'gw.example.test', path: '/files/notes?x=1' });
  assert.match(hdr(routed.denied_response.headers, 'www-authenticate'),
    /resource_metadata="https:\/\/files\.example\.test\/\.well-known\/oauth-protected-resource\/mcp"/);
  const unrouted = await check({ authorization: `Bearer ${env.P2A_PAT}` },
    { host: 'gw.example.test', path: '/filesystem' });
  assert.equal(unrouted.denied_response.status.code, 'Forbidden');

  // the path is judged normalised (core/gateway.c, as forward-auth): a token good at /mcp is
  // never let through at another path by dot segments or encoded separators
  const bearer = { authorization: `Bearer ${env.P2A_PAT}` };
  const inside = await check(bearer, { path: '/mcp/x/../y?z=/..' });
  assert.equal(inside.http_response, 'ok_response');
  for (const p of ['/mcp/../other', '/mcp/./../other', '/mcpx', '/mcp/../files/notes']) {
    const r = await check(bearer, { path: p });
    assert.equal(r.http_response, 'denied_response', p);
    assert.equal(r.denied_response.status.code, 'Forbidden', p);
  }
  for (const p of ['/mcp/%2e%2e/other', '/mcp/%2E%2E/other', '/mcp/..%2fother', '/mcp//../other',
    '/mcp/..\\other', '/mcp/%5c', '/../mcp', 'mcp', '/mcp#x']) {
    const r = await check(bearer, { path: p });
    assert.equal(r.denied_response.status.code, 'BadRequest', p);
    assert.equal(r.status.code, 3, p); // INVALID_ARGUMENT
    assert.equal(JSON.parse(r.denied_response.body).error, 'invalid_request', p);
  }
  const twoHosts = await check(bearer, { host: '127.0.0.1:3000, gw.example.test' });
  assert.equal(twoHosts.denied_response.status.code, 'BadRequest');
  // an OPTIONS without a token is judged like any request (ALLOW_OPTIONS is off here)
  const preflight = await check({}, { method: 'OPTIONS' });
  assert.equal(preflight.denied_response.status.code, 'Unauthorized');

  await assert.rejects(check({ authorization: `Bearer ${env.P2A_PAT}` }, { key: '' }),
    (e) => e.code === grpc.status.UNAUTHENTICATED);
  client.close();
});
