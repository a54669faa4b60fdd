// What the browser-driven suites share: a loopback server for OAuth redirects, which hands
// the URL of each request to whoever waits for the next one, headless Chromium (with the
// test MCP server: startBrowserSuite), the storage half of an MCP SDK OAuth provider, the
// SDK's sign-in round, and waiting on a condition with a deadline.
import crypto from 'node:crypto';
import http from 'node:http';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { startMcpServer } from './mcp_server.mjs';

export async function startCallbacks() {
  const waiters = [];
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' }).end('<p>Done. You can close this.</p>');
    const w = waiters.shift();
    // the host the browser asked for: localhost and 127.0.0.1 are two redirect URIs
    if (w) w(new URL(req.url, `http://${req.headers.host}`));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    // the URL the browser will land on next
    next: () => new Promise((resolve) => waiters.push(resolve)),
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

export function launchChromium(env) {
  return chromium.launch({
    executablePath: env.P2A_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

// Resolves with pred()'s first truthy value, polled every 100 ms; rejects after ms.
export function waitFor(pred, ms, what) {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = async () => {
      try {
        const v = await pred();
        if (v) return resolve(v);
      } catch { /* not yet */ }
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 100);
    };
    tick();
  });
}

// For before(): the callback server, headless Chromium and, with mcp, the test MCP server at
// http://127.0.0.1:$P2A_MCP_PORT/mcp checking tokens with pipe2-authd ($P2A_RPC, whose facade
// is $P2A_ISSUER). close() for after().
export async function startBrowserSuite(env, { mcp = false } = {}) {
  const callbacks = await startCallbacks();
  const server = mcp ? await startMcpServer({
    port: Number(env.P2A_MCP_PORT), resource: `http://127.0.0.1:${env.P2A_MCP_PORT}/mcp`,
    facade: env.P2A_ISSUER, rpcAddr: env.P2A_RPC, introspectKey: env.P2A_INTROSPECT_KEY,
  }) : null;
  const browser = await launchChromium(env);
  return {
    callbacks, browser, mcp: server,
    close: async () => {
      await browser.close();
      await server?.close();
      await callbacks.close();
    },
  };
}

// A person at the authorization page url in page: signs in as user when the login form shows
// (each page is a fresh browser context), then approves on the consent page. The consent
// page's HTML.
export async function approveInBrowser(page, url, user, password) {
  await page.goto(url.toString());
  if (await page.$('form[action="/login"]')) {
    await page.fill('#username', user);
    await page.fill('#password', password);
    await Promise.all([page.waitForSelector('form[action="/consent"]'),
      page.click('button[type=submit]')]);
  }
  await page.waitForSelector('form[action="/consent"]');
  const consent = await page.content();
  await page.click('button[value=approve]');
  return consent;
}

// The storage half of an MCP SDK OAuthClientProvider, in memory. A suite extends it with
// redirectToAuthorization (the browser's part), which sets this.code from the callback.
export class MemoryProvider {
  constructor(callbacks, clientName) {
    this.callbacks = callbacks;
    this.clientName = clientName;
  }
  get redirectUrl() { return `http://127.0.0.1:${this.callbacks.port}/callback`; }
  get clientMetadata() {
    // registered without the port: loopback redirect URIs match on any port (RFC 8252 7.3)
    return { client_name: this.clientName, redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      token_endpoint_auth_method: 'none' };
  }
  state() { this.lastState = crypto.randomBytes(16).toString('hex'); return this.lastState; }
  clientInformation() { return this.client; }
  saveClientInformation(info) { this.client = info; }
  tokens() { return this.current; }
  saveTokens(t) { this.current = t; }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
}

// The SDK v1 client's sign-in round: the first connect gets a 401 and runs the provider's
// browser part (UnauthorizedError), the code is exchanged, and a second connect succeeds.
// transportOptions: for the first transport (a recording fetch). The connected client.
export async function connectSignedIn(mcpUrl, provider, name, transportOptions = {}) {
  let transport = new StreamableHTTPClientTransport(new URL(mcpUrl),
    { authProvider: provider, ...transportOptions });
  let client = new Client({ name, version: '1.0.0' });
  await assert.rejects(client.connect(transport), UnauthorizedError);
  await transport.finishAuth(provider.code);
  transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
  client = new Client({ name, version: '1.0.0' });
  await client.connect(transport);
  return client;
}

// An SDK v1 client with a token in its headers, as a PAT's user configures one:
// {"headers": {"Authorization": "Bearer ..."}}. The connected client.
export async function connectWithToken(mcpUrl, token, name) {
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

// A raw MCP request (tools/list) with a bearer token, for the status and WWW-Authenticate of
// a refused one.
export function mcpPost(mcpUrl, token) {
  return fetch(mcpUrl, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
}
