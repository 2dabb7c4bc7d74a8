// Run inside the outsider namespace: a real headless Chromium signs in on the authentication
// server through the emailed link, as a person would. Prints a JSON line with what it saw.
// Usage: node sign-in.mjs <json options>
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const o = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  // Names resolved as the cloud's DNS says; only the build's own certificates trusted (by key).
  args: [
    '--no-sandbox',
    `--host-resolver-rules=${o.hosts.map(([n, ip]) => `MAP ${n} ${ip}`).join(',')}`,
    `--ignore-certificate-errors-spki-list=${o.spki.join(',')}`,
  ],
});
const seen = {};
try {
  const page = await browser.newPage();
  await page.goto(o.authUrl);
  seen.title = await page.title();
  // By its label, as assistive technology finds it.
  await page.getByLabel('Email address').fill(o.email);
  const before = new Set(readdirSync(o.mailDir));
  await page.getByRole('button', { name: 'Send me a sign-in link' }).click();
  seen.afterAsk = await page.locator('h1').textContent();
  let link = null;
  // The mail goes from the authentication server through the cloud's mail catcher: bounded, 30 s.
  for (let i = 0; i < 300 && !link; i++) {
    for (const f of readdirSync(o.mailDir).filter((f) => !before.has(f))) {
      link = /https:\/\/\S+\/verify\?token=[A-Za-z0-9_-]+/.exec(readFileSync(join(o.mailDir, f), 'utf8'))?.[0] ?? link;
    }
    if (!link) await new Promise((r) => setTimeout(r, 100));
  }
  seen.gotMail = Boolean(link);
  if (!link) throw new Error(`no sign-in mail with a link in ${o.mailDir} within 30 s (saw: ${JSON.stringify(seen)})`);
  await page.goto(link);
  await page.getByRole('button', { name: 'Give this device access' }).click();
  seen.afterVerify = await page.locator('h1').textContent();
  seen.granted = await page.locator('main p').first().textContent();
  seen.link = link;
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(seen)}\n`);
