// The security log on the account page, in headless Chromium: the person sees their own
// events (P2A_EVENT_IDS, newest first, as ListAuditEvents gave them) in that order, in words;
// another person (P2A_OTHER) sees none of them. Run by tests/integration/test_audit.py.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium } from './browser_harness.mjs';

const env = process.env;
const ISSUER = env.P2A_ISSUER;
const IDS = JSON.parse(env.P2A_EVENT_IDS);
const TYPES = JSON.parse(env.P2A_EVENT_TYPES);

let browser;

before(async () => {
  browser = await launchChromium(env);
});

after(async () => {
  await browser?.close();
});

async function signedIn(username) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${ISSUER}/account/`);
  await page.fill('#username', username);
  await page.fill('#password', env.P2A_PASSWORD);
  await Promise.all([page.waitForSelector('h1:has-text("Your account")'),
    page.click('form[action="/login"] button[type=submit]')]);
  return page;
}

test("a person's security log: their events, newest first, in words", async () => {
  const page = await signedIn(env.P2A_USER);
  await page.waitForSelector('h2:has-text("Security log")');
  const rows = await page.$$eval('#security-log tr[data-id]',
    (trs) => trs.map((tr) => ({ id: tr.dataset.id, type: tr.dataset.type, text: tr.innerText })));
  const ours = rows.filter((r) => IDS.includes(r.id));
  assert.deepEqual(ours.map((r) => r.id), IDS); // every one, once, in the same order
  assert.deepEqual(ours.map((r) => r.type), TYPES);
  const text = (type) => ours.find((r) => r.type === type).text;
  assert.match(text('pat.revoked'), /Personal access token revoked/);
  assert.match(text('pat.revoked'), /an administrator/);
  assert.match(text('signin.succeeded'), /Signed in/);
  assert.match(text('signin.succeeded'), /127\.0\.0\.1/);
  assert.match(text('consent.granted'), /Application approved/);
  assert.match(text('consent.granted'), /Audit app: scope/); // the application in words
  assert.match(text('grant.revoked'), /you/);
  const all = rows.map((r) => r.id);
  assert.deepEqual(all, [...all].sort().reverse()); // newest first
});

test("another person's page shows none of them", async () => {
  const page = await signedIn(env.P2A_OTHER);
  await page.waitForSelector('h2:has-text("Security log")');
  const html = await page.content();
  for (const id of IDS) assert.ok(!html.includes(id), id);
});
