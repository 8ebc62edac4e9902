// The demo's magic link in a real browser (crates/patchbay/tests/cli.rs): Debian's
// chromium, headless, opens the link `patchbay demo` printed, connects GitHub through
// the demo provider's consent page, and lands on the success page. Screenshots go to
// SHOTS_DIR. Environment: MAGIC_LINK, SHOTS_DIR, CHROMIUM (default /usr/bin/chromium).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const SHOTS = process.env.SHOTS_DIR;
mkdirSync(SHOTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage();
try {
  await page.goto(process.env.MAGIC_LINK);
  await page.screenshot({ path: `${SHOTS}/demo-01-connect-page.png`, fullPage: true });
  await page.getByRole('button', { name: 'Connect GitHub' }).click();
  await page.getByRole('button', { name: 'Allow' }).waitFor();
  await page.screenshot({ path: `${SHOTS}/demo-02-provider-consent.png`, fullPage: true });
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.getByRole('status').waitFor();
  await page.screenshot({ path: `${SHOTS}/demo-03-connected.png`, fullPage: true });
  const text = await page.getByRole('status').innerText();
  assert.match(text, /Your account is connected \(conn_github_/);
  console.log(`demo connect: ok ${text.match(/conn_github_\w+/)[0]}`);
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
