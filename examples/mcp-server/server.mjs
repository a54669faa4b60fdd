// An MCP server on the official TypeScript SDK with no auth code of its own: who the caller
// is arrives in the X-Auth-* headers a gateway in front of it (nginx auth_request, Envoy,
// Traefik, Caddy) copied from pipe2-auth's forward-auth answer.
//
//   MCP_LISTEN=127.0.0.1:3001 node server.mjs
//       behind a gateway: trusts X-Auth-* (listen where only the gateway can reach it);
//   MCP_LISTEN=127.0.0.1:3000 P2A_FORWARD_AUTH=http://127.0.0.1:8081/forward-auth \
//   P2A_FACADE=http://127.0.0.1:8080 node server.mjs
//       on its own: it asks forward-auth itself, exactly as a gateway would, and relays the
//       resource's RFC 9728 document from the facade (what deploy/run-local.sh starts).
//
// Tools: whoami (the identity the gateway passed), echo, add.
import http from 'node:http';
import express from 'express';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const [host, port] = (process.env.MCP_LISTEN || '127.0.0.1:3001').split(/:(?=\d+$)/);
const forwardAuth = process.env.P2A_FORWARD_AUTH || '';
const facade = process.env.P2A_FACADE || '';

function identityOf(headers) {
  const get = (h) => (typeof headers.get === 'function' ? headers.get(h) : headers[h]) || '';
  return {
    subject: get('x-auth-subject'),
    client_id: get('x-auth-client-id'),
    scope: get('x-auth-scope'),
    kind: get('x-auth-token-kind'),
    token_id: get('x-auth-token-id'),
    expires: Number(get('x-auth-expires')) || 0,
    actor: get('x-auth-actor'),
  };
}

function mcpServer(who) {
  const server = new McpServer({ name: 'pipe2-example', version: '1.0.0' });
  server.registerTool('whoami', {
    description: 'Who is calling, as the gateway says (from pipe2-auth)',
  }, async () => ({ content: [{ type: 'text', text: JSON.stringify(who) }] }));
  server.registerTool('echo', {
    description: 'Says back what it is given',
    inputSchema: { text: z.string() },
  }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
  server.registerTool('add', {
    description: 'Adds two numbers',
    inputSchema: { a: z.number(), b: z.number() },
  }, async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }));
  return server;
}

// On its own (no gateway): the question a gateway would ask, for every MCP request.
async function askForwardAuth(req, res) {
  let r;
  try {
    r = await fetch(forwardAuth, {
      headers: {
        authorization: req.headers.authorization || '',
        'x-forwarded-host': req.headers.host || '',
        'x-forwarded-uri': req.originalUrl,
        'x-forwarded-method': req.method,
      },
      signal: AbortSignal.timeout(3000),
    });
  } catch {
    res.status(503).json({ error: 'temporarily_unavailable',
      error_description: 'the authorization service did not answer' });
    return null;
  }
  if (r.status === 200)
    return r.headers;
  // fail closed: anything but 200 goes back to the client as pipe2-auth said it
  res.status(r.status >= 500 ? 503 : r.status);
  for (const h of ['www-authenticate', 'content-type'])
    if (r.headers.get(h)) res.set(h, r.headers.get(h));
  res.send(await r.text());
  return null;
}

const app = express();
app.use(express.json({ limit: '1mb' }));
app.use((req, res, next) => { // browser-based MCP clients (CORS)
  res.set('Access-Control-Allow-Origin', '*');
  res.set('Access-Control-Expose-Headers', 'WWW-Authenticate, Mcp-Session-Id');
  if (req.method === 'OPTIONS') {
    res.set('Access-Control-Allow-Headers', 'Authorization, Content-Type, Mcp-Session-Id, '
      + 'Mcp-Protocol-Version, Last-Event-ID');
    res.set('Access-Control-Allow-Methods', 'GET, POST, DELETE, OPTIONS');
    res.status(204).end();
    return;
  }
  next();
});

if (facade) { // RFC 9728: the resource's document, as the facade publishes it
  app.get(/^\/\.well-known\/oauth-protected-resource(\/.*)?$/, async (req, res) => {
    try {
      const r = await fetch(facade + req.path, { signal: AbortSignal.timeout(3000) });
      res.status(r.status).type('application/json').send(await r.text());
    } catch {
      res.status(503).json({ error: 'temporarily_unavailable' });
    }
  });
}

app.all('/mcp', async (req, res) => {
  let headers = req.headers;
  if (forwardAuth) {
    headers = await askForwardAuth(req, res);
    if (headers === null)
      return;
  }
  if (req.method !== 'POST') { // stateless: no SSE stream to resume, no session to end
    res.status(405).set('Allow', 'POST').json({ error: 'method_not_allowed' });
    return;
  }
  const server = mcpServer(identityOf(headers));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
});

const srv = http.createServer(app);
srv.listen(Number(port), host, () => {
  console.log(`example MCP server on http://${host}:${port}/mcp (${forwardAuth
    ? `asking ${forwardAuth}` : 'behind a gateway: trusting X-Auth-* headers'})`);
});
for (const sig of ['SIGTERM', 'SIGINT'])
  process.on(sig, () => { srv.closeAllConnections(); srv.close(() => process.exit(0)); });
