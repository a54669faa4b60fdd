// The RPC contract through @grpc/grpc-js with @grpc/proto-loader reading proto/ as it is.
// Run by tests/integration/test_node_grpc_js.py, which starts redis-server and two
// pipe2-authd (h2c and TLS) and passes their addresses and keys in the environment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));
const protoDir = path.resolve(here, '../../../proto');
const def = protoLoader.loadSync(
  ['pipe2/auth/v1/token_service.proto', 'grpc/health/v1/health.proto'],
  { includeDirs: [protoDir], keepCase: true, longs: Number, enums: String, defaults: true });
const pkg = grpc.loadPackageDefinition(def);
const { TokenService } = pkg.pipe2.auth.v1;
const { Health } = pkg.grpc.health.v1;

const env = process.env;
const ADMIN = env.P2A_ADMIN_KEY;
const MCP = env.P2A_INTROSPECT_KEY;
const REDIS_PID = Number(env.P2A_REDIS_PID);

function clients(addr, ca) {
  const creds = ca
    ? grpc.credentials.createSsl(readFileSync(ca))
    : grpc.credentials.createInsecure();
  const opts = ca ? { 'grpc.ssl_target_name_override': 'localhost' } : {};
  return { svc: new TokenService(addr, creds, opts), health: new Health(addr, creds, opts) };
}

function md(key) {
  const m = new grpc.Metadata();
  if (key) m.set('authorization', `Bearer ${key}`);
  return m;
}

function call(client, method, req, key, deadlineMs = 5000) {
  return new Promise((resolve, reject) => {
    client[method](req, md(key), { deadline: Date.now() + deadlineMs }, (err, resp) =>
      (err ? reject(err) : resolve(resp)));
  });
}

async function rejectsWith(p, code, detail) {
  await assert.rejects(p, (err) => {
    assert.equal(err.code, code, `expected ${code}, got ${err.code} (${err.details})`);
    if (detail) assert.match(err.details, detail);
    return true;
  });
}

for (const [label, addr, ca] of [['h2c', env.P2A_ADDR, null], ['TLS', env.P2A_TLS_ADDR, env.P2A_CA]]) {
  test(`PAT life cycle over ${label}`, async () => {
    const { svc, health } = clients(addr, ca);
    const h = await call(health, 'Check', {}, null);
    assert.equal(h.status, 'SERVING');

    const user = `node-${label}`;
    // a dashboard registers its user first: a PAT is only for a user who exists
    await assert.rejects(call(svc, 'IssueToken', { user_id: user, name: 'too early' }, ADMIN),
      (e) => e.code === grpc.status.NOT_FOUND);
    const put = await call(svc, 'PutUser', { user_id: user, display_name: `Node ${label}` }, ADMIN);
    assert.equal(put.created, true);
    const issued = await call(svc, 'IssueToken', { user_id: user, name: 'from grpc-js', scope: 'mcp:read' }, ADMIN);
    assert.ok(issued.token.split('.').length === 3);
    assert.equal(issued.info.user_id, user);
    assert.equal(issued.info.expires_at - issued.info.created_at, 365 * 86400);

    const active = await call(svc, 'Introspect', { token: issued.token, resource: 'http://127.0.0.1:3000/mcp' }, MCP);
    assert.equal(active.active, true);
    assert.equal(active.kind, 'PERSONAL_ACCESS_TOKEN');
    assert.equal(active.sub, user);
    assert.equal(active.jti, issued.info.jti);
    assert.equal(active.name, 'from grpc-js');
    assert.equal(active.exp, issued.info.expires_at);
    assert.equal(active.scope, 'mcp:read');

    const list = await call(svc, 'ListTokens', { user_id: user }, ADMIN);
    assert.deepEqual(list.tokens.map((t) => t.jti), [issued.info.jti]);

    const rv = await call(svc, 'RevokeToken', { jti: issued.info.jti }, ADMIN);
    assert.equal(rv.already_revoked, false);
    assert.ok(rv.revoked_at > 0);

    const inactive = await call(svc, 'Introspect', { token: issued.token }, MCP);
    assert.equal(inactive.active, false);
    assert.equal(inactive.reason, 'REVOKED');
    assert.match(inactive.www_authenticate, /error_description="Token revoked"/);
    svc.close();
    health.close();
  });
}

test('status codes', async () => {
  const { svc } = clients(env.P2A_ADDR, null);
  await rejectsWith(call(svc, 'Introspect', { token: 'x' }, null), grpc.status.UNAUTHENTICATED, /service key/);
  await rejectsWith(call(svc, 'Introspect', { token: 'x' }, 'wrong'), grpc.status.UNAUTHENTICATED);
  await rejectsWith(call(svc, 'IssueToken', { user_id: 'u', name: 'n' }, MCP), grpc.status.PERMISSION_DENIED);
  await rejectsWith(call(svc, 'IssueToken', { user_id: 'u', name: '' }, ADMIN), grpc.status.INVALID_ARGUMENT, /name/);
  await rejectsWith(call(svc, 'IssueToken', { user_id: 'u', name: 'n', expires_in_seconds: 400 * 86400 }, ADMIN),
    grpc.status.INVALID_ARGUMENT, /expires_in_seconds/);
  await rejectsWith(call(svc, 'RevokeToken', { jti: 'NoSuchToken' }, ADMIN), grpc.status.NOT_FOUND);
  await rejectsWith(call(svc, 'Introspect', { token: 't'.repeat(300 * 1024) }, MCP), grpc.status.RESOURCE_EXHAUSTED);

  // a method the server does not have, through the generic client
  const generic = new grpc.Client(env.P2A_ADDR, grpc.credentials.createInsecure());
  await rejectsWith(new Promise((resolve, reject) => generic.makeUnaryRequest(
    '/pipe2.auth.v1.TokenService/DropTables', (b) => b, (b) => b, Buffer.alloc(0), md(ADMIN),
    (err, r) => (err ? reject(err) : resolve(r)))), grpc.status.UNIMPLEMENTED);
  generic.close();

  // compressed messages are refused
  const gz = new TokenService(env.P2A_ADDR, grpc.credentials.createInsecure(),
    { 'grpc.default_compression_algorithm': 2, 'grpc.default_compression_level': 2 });
  await rejectsWith(call(gz, 'Introspect', { token: 'y'.repeat(500) }, MCP), grpc.status.UNIMPLEMENTED, /compressed/);
  gz.close();

  // Redis stopped: a short deadline expires; without one, UNAVAILABLE after the Redis timeout
  await call(svc, 'PutUser', { user_id: 'node-stop' }, ADMIN);
  const issued = await call(svc, 'IssueToken', { user_id: 'node-stop', name: 'before' }, ADMIN);
  process.kill(REDIS_PID, 'SIGSTOP');
  try {
    await rejectsWith(call(svc, 'IssueToken', { user_id: 'node-stop', name: 'n' }, ADMIN, 300), grpc.status.DEADLINE_EXCEEDED);
    await rejectsWith(call(svc, 'IssueToken', { user_id: 'node-stop', name: 'n' }, ADMIN, 10000), grpc.status.UNAVAILABLE, /no token was issued/);
    const still = await call(svc, 'Introspect', { token: issued.token }, MCP);
    assert.equal(still.active, true);
  } finally {
    process.kill(REDIS_PID, 'SIGCONT');
  }
  svc.close();
});
