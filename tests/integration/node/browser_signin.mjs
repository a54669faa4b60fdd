// Signs in and approves in headless Chromium, as a person would: opens the authorization
// URL given, fills the login form, approves on the consent page, and waits until the
// browser has been sent to the redirect URI (whoever listens there: a client under test).
//   node browser_signin.mjs <authorization URL> <redirect URI prefix>
// with P2A_USER, P2A_PASSWORD and P2A_CHROMIUM in the environment. Prints the URL the
// browser landed on; exits 1 (with the page's text) when a step does not come.
import { launchChromium } from './browser_harness.mjs';

const [url, redirectPrefix] = process.argv.slice(2);
const env = process.env;
const browser = await launchChromium(env);
const page = await browser.newPage();
try {
  const landed = page.waitForRequest((r) => r.url().startsWith(redirectPrefix), { timeout: 30000 });
  await page.goto(url);
  if (await page.$('form[action="/login"]')) {
    await page.fill('#username', env.P2A_USER);
    await page.fill('#password', env.P2A_PASSWORD);
    await Promise.all([page.waitForSelector('form[action="/consent"]', { timeout: 15000 }),
      page.click('button[type=submit]')]);
  }
  await page.click('button[value=approve]');
  console.log((await landed).url());
} catch (e) {
  console.error(`sign-in failed: ${e.message}\n${await page.innerText('body').catch(() => '')}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
