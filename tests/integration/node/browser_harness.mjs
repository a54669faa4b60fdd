// What the browser-driven suites share: a loopback server for OAuth redirects, which hands
// the URL of each request to whoever waits for the next one, headless Chromium, and waiting
// on a condition with a deadline.
import http from 'node:http';
import { chromium } from 'playwright-core';

export async function startCallbacks() {
  const waiters = [];
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' }).end('<p>Done. You can close this.</p>');
    const w = waiters.shift();
    if (w) w(new URL(req.url, `http://127.0.0.1:${server.address().port}`));
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
