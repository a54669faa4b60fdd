// The MCP Inspector CLI (@modelcontextprotocol/inspector 2.12, `mcp-inspector --cli`) against
// pipe2-auth, as a person runs it: it registers at /register with the first challenge's
// scope, prints "Please navigate to: <authorize URL>" (no terminal, so no browser of its
// own), and waits on its loopback callback; headless Chromium signs in and approves, and the
// tool runs. A second run calls a tool that needs 'files': 403 insufficient_scope, the CLI
// asks "Proceed with step-up authorization?", the test says y, the person approves the wider
// scope, and the tool runs (issue 21: before, /authorize narrowed the request back to the
// registered scope). Its server entry declines refresh tokens (the Inspector's
// requestRefreshToken: false): holding one, the 2.12 CLI refreshes instead, whatever the
// server does. Its state lives under a HOME of the test's own. Run by
// tests/integration/test_mcp_2026.py.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { approveInBrowser, startBrowserSuite } from './browser_harness.mjs';

const env = process.env;
const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(here, 'node_modules', '.bin', 'mcp-inspector');
const MCP_URL = `http://127.0.0.1:${env.P2A_MCP_PORT}/mcp`;

let suite;
let home;

// A loopback port nothing listens on now, for the CLI's callback listener.
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
let callbackUrl;

before(async () => {
  suite = await startBrowserSuite(env, { mcp: true });
  home = mkdtempSync(path.join(os.tmpdir(), 'p2a-inspector-'));
  callbackUrl = `http://127.0.0.1:${await freePort()}/oauth/callback`;
  // the Inspector's own setting for a client that keeps no refresh token (#2068): holding
  // one, the 2.12 CLI answers a 403 insufficient_scope by refreshing, which can only narrow
  // (RFC 6749 6), and stops with "auth() returned AUTHORIZED without authorization code"
  writeFileSync(path.join(home, 'servers.json'), JSON.stringify({ mcpServers: { p2a: {
    type: 'http', url: MCP_URL, oauth: { requestRefreshToken: false } } } }));
});

after(async () => {
  await suite?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

// Runs the CLI; each authorize URL it prints is opened in Chromium, signed in and approved.
// Resolves with { code, stdout, stderr, consents } once it exits (killed after 90 s).
function inspector(args) {
  return new Promise((resolve) => {
    const child = spawn(CLI, ['--cli', '--config', path.join(home, 'servers.json'), '--server',
      'p2a', '--callback-url', callbackUrl, ...args], {
      // no terminal here: MCP_AUTO_OPEN_ENABLED lets it sign in all the same, and the browser
      // it would open is /bin/true (xdg-open runs $BROWSER): Chromium here opens the URL
      env: { ...env, HOME: home, NO_COLOR: '1', MCP_AUTO_OPEN_ENABLED: 'true', BROWSER: 'true', MCP_INSPECTOR_SECRET_STORE: 'file',
        DISPLAY: '', WAYLAND_DISPLAY: '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const consents = [];
    const opened = new Set();
    const kill = setTimeout(() => child.kill('SIGKILL'), 90_000);
    let browsing = Promise.resolve();
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => {
      stderr += d;
      if (/Proceed with step-up authorization\? \[y\/N\] $/.test(stderr)) child.stdin.write('y\n');
      for (const m of stderr.matchAll(/Please navigate to: (\S+)/g)) {
        if (opened.has(m[1])) continue;
        opened.add(m[1]);
        browsing = browsing.then(() => approve(m[1], consents)).catch((e) => {
          stderr += `\n[test] browser: ${e}\n`;
        });
      }
    });
    child.on('close', async (code) => {
      clearTimeout(kill);
      await browsing;
      resolve({ code, stdout, stderr, consents });
    });
  });
}

async function approve(url, consents) {
  const page = await suite.browser.newPage();
  try {
    consents.push({ url, page: await approveInBrowser(page, url, env.P2A_USER, env.P2A_PASSWORD) });
    await page.waitForURL((u) => u.href.startsWith(callbackUrl));
  } finally {
    await page.close();
  }
}

test('Inspector CLI: registers, signs in, calls a tool; steps up to a tool that needs files', async () => {
  const first = await inspector(['--method', 'tools/call', '--tool-name', 'whoami']);
  assert.equal(first.code, 0, first.stderr + first.stdout);
  assert.equal(first.consents.length, 1, first.stderr);
  const asked = new URL(first.consents[0].url);
  assert.match(asked.searchParams.get('client_id'), /^c_/); // registered at /register
  const me = JSON.parse(JSON.parse(first.stdout).content[0].text);
  assert.equal(me.sub, env.P2A_USER_ID);
  assert.ok(me.scopes.includes('mcp') && !me.scopes.includes('files'), me.scopes);

  const second = await inspector(['--method', 'tools/call', '--tool-name', 'write_note']);
  assert.equal(second.code, 0, second.stderr + second.stdout);
  assert.equal(JSON.parse(second.stdout).content[0].text, 'written');
  assert.equal(second.consents.length, 1, second.stderr); // the wider scope, approved again
  const wider = new URL(second.consents[0].url).searchParams.get('scope').split(' ');
  assert.ok(wider.includes('mcp') && wider.includes('files'), wider);
});
