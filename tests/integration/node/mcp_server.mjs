// A test MCP server built with the official TypeScript SDK (Streamable HTTP, stateless),
// which checks the bearer token of every request through pipe2-authd's Introspect RPC
// (@grpc/grpc-js) and answers 401/403 by copying the www_authenticate field it returns.
// It serves the RFC 9728 document of its resource by relaying pipe2-authd's copy: the
// way an MCP server on another host than the facade publishes it.
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const def = protoLoader.loadSync(['pipe2/auth/v1/token_service.proto'], {
  includeDirs: [path.resolve(here, '../../../proto')],
  keepCase: true, longs: Number, enums: String, defaults: true,
});
const { TokenService } = grpc.loadPackageDefinition(def).pipe2.auth.v1;

export function introspector(rpcAddr, key) {
  const svc = new TokenService(rpcAddr, grpc.credentials.createInsecure());
  const introspect = (token, resource, required_scope = '') => new Promise((resolve, reject) => {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${key}`);
    svc.Introspect({ token, resource, required_scope }, md, { deadline: Date.now() + 3000 },
      (err, res) => (err ? reject(err) : resolve(res)));
  });
  return { introspect, close: () => svc.close() };
}

// The admin side of pipe2-authd's TokenService for a test: call(method, request) with the
// admin key, a promise of the answer; close().
export function adminRpc(rpcAddr, key) {
  const svc = new TokenService(rpcAddr, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${key}`);
  const call = (method, req) => new Promise((resolve, reject) => svc[method](req, md,
    { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(r))));
  return { call, close: () => svc.close() };
}

// What the test MCP server's whoami tool says of the caller's token.
export async function whoami(client) {
  const r = await client.callTool({ name: 'whoami', arguments: {} });
  return JSON.parse(r.content[0].text);
}

export async function startMcpServer({ port, resource, facade, rpcAddr, introspectKey }) {
  const rpc = introspector(rpcAddr, introspectKey);
  const app = express();
  app.use(express.json({ limit: '256kb' }));
  const seen = []; // every token decision, for the test to inspect

  // RFC 9728: the same document the facade publishes for this resource
  const prmPath = '/.well-known/oauth-protected-resource' + new URL(resource).pathname;
  app.get([prmPath, '/.well-known/oauth-protected-resource'], async (_req, res) => {
    const r = await fetch(facade + prmPath);
    res.status(r.status).set('Access-Control-Allow-Origin', '*')
      .type('application/json').send(await r.text());
  });

  app.all('/mcp', async (req, res) => {
    res.set('Access-Control-Expose-Headers', 'WWW-Authenticate, Mcp-Session-Id');
    const h = req.headers.authorization || '';
    const token = /^Bearer /i.test(h) ? h.slice(7).trim() : '';
    // what the call needs: the resource's scope, and 'files' to write (step-up, SEP-2350)
    const body = req.body || {};
    const writes = body.method === 'tools/call' && body.params?.name === 'write_note';
    let r;
    try {
      r = await rpc.introspect(token, resource, writes ? 'mcp files' : 'mcp');
    } catch (e) {
      // fail closed: never pass a request whose token could not be checked
      res.status(503).json({ error: 'authorization service unavailable' });
      return;
    }
    seen.push({ active: r.active, reason: r.reason, kind: r.kind });
    if (r.reason === 'INSUFFICIENT_SCOPE') {
      res.status(403).set('WWW-Authenticate', r.www_authenticate)
        .json({ error: 'insufficient_scope' });
      return;
    }
    if (!r.active) {
      res.status(401).set('WWW-Authenticate', r.www_authenticate)
        .json({ error: 'invalid_token', reason: r.reason });
      return;
    }
    req.auth = {
      token, clientId: r.client_id || 'pat', scopes: r.scope ? r.scope.split(' ') : [],
      expiresAt: r.exp, extra: { sub: r.sub, kind: r.kind, name: r.name },
    };
    const server = new McpServer({ name: 'pipe2-test-mcp', version: '1.0.0' });
    server.tool('whoami', 'Who the caller is, as the token says', async (extra) => ({
      content: [{
        type: 'text',
        text: JSON.stringify({ sub: extra.authInfo.extra.sub, kind: extra.authInfo.extra.kind,
          client_id: extra.authInfo.clientId, scopes: extra.authInfo.scopes }),
      }],
    }));
    server.tool('write_note', 'Writes a note (needs the files scope)', async () => ({
      content: [{ type: 'text', text: 'written' }],
    }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => { transport.close(); server.close(); });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });

  const srv = http.createServer(app);
  await new Promise((resolve) => srv.listen(port, '127.0.0.1', resolve));
  return {
    seen,
    close: async () => {
      rpc.close();
      srv.closeAllConnections();
      await new Promise((resolve) => srv.close(resolve));
    },
  };
}
