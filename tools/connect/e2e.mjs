// Browser tests of Connect and of Export's consent page, run by
// crates/patchbay/tests/connect_browser.rs against a running Patchbay:
// Playwright (playwright-core) drives Debian's chromium headless; the OAuth2
// provider is oauth2-mock-server (an independent authorisation server from npm),
// not Patchbay's own demo provider. Every page passed through is saved as a
// screenshot in SHOTS_DIR.
//
// Environment: PATCHBAY_URL, ADMIN_TOKEN, SHOTS_DIR, CHROMIUM (default /usr/bin/chromium).
// Prints "connect e2e: N passed" and exits 0, or prints the failure and exits 1.

import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdirSync } from 'node:fs';
import { OAuth2Server } from 'oauth2-mock-server';
import { chromium } from 'playwright-core';

const BASE = process.env.PATCHBAY_URL;
const ADMIN = process.env.ADMIN_TOKEN;
const SHOTS = process.env.SHOTS_DIR;
mkdirSync(SHOTS, { recursive: true });
let passed = 0;
let shot = 0;

async function api(method, path, token, body) {
  const res = await fetch(BASE + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, body: json };
}

// A small app: the return URL of Connect and Export, and acme-apikey's verification.
const app = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://app');
  if (url.pathname === '/acme-apikey/authorize') {
    const auth = req.headers.authorization || '';
    const pair = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString();
    res.writeHead(pair.endsWith(':good-key') ? 200 : 401).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html lang="en"><title>Back in the app</title><h1>Back in the app</h1><p id="query">${url.search.replace(/</g, '&lt;')}</p>`);
});
await new Promise((r) => app.listen(0, '127.0.0.1', r));
const APP = `http://127.0.0.1:${app.address().port}`;

// The authorisation server.
const oauth = new OAuth2Server();
await oauth.issuer.keys.generate('RS256');
await oauth.start(0, '127.0.0.1');
oauth.issuer.url = `http://127.0.0.1:${oauth.address().port}`;
const grants = [];
oauth.service.on('beforeResponse', (response, req) => {
  if (!req.body?.grant_type) return;
  // The first access token lives 60 s: inside Patchbay's refresh margin, so it counts as expiring.
  if (req.body.grant_type === 'authorization_code') response.body.expires_in = 60;
  grants.push({ grant: req.body.grant_type, verifier: req.body.code_verifier, status: response.statusCode });
});
// Each token unique (the mock's tokens issued in the same second are otherwise identical).
let issued = 0;
oauth.service.on('beforeTokenSigning', (token) => { issued += 1; token.payload.n = issued; });

const seed = {
  integrations: {
    organizations: [{ id: 'org_e2e', name: 'Browser Test Org', apiKey: 'key_org_e2e' }],
    customers: [{ orgId: 'org_e2e', id: 'cus_e2e' }],
    connectorConfigs: [
      { id: 'ccfg_github_01JE2E', orgId: 'org_e2e', connectorName: 'github', displayName: 'GitHub',
        config: { oauth: { client_id: 'e2e-client', client_secret: 'e2e-secret' } },
        overrides: { authorizeUrl: `${oauth.issuer.url}/authorize`, tokenUrl: `${oauth.issuer.url}/token` } },
      { id: 'ccfg_acme-apikey_01JE2E', orgId: 'org_e2e', connectorName: 'acme-apikey', overrides: { baseUrl: APP } },
    ],
  },
  export: {
    itwins: [{ id: '5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a99', displayName: 'E2E iTwin' }],
    imodels: [{ id: '7dbd1c2e-3f4a-4b5c-9d6e-7f8a9b0c1d99', iTwinId: '5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a99', displayName: 'E2E model' }],
    users: [{ id: 'e2e-user', tokens: [{ token: 'e2e-user-token', scopes: ['itwin-platform'] }],
      itwins: { '5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a99': ['read', 'modify'] }, authorizedForRuns: false }],
    connections: [{ id: 'exc-e2e', iModelId: '7dbd1c2e-3f4a-4b5c-9d6e-7f8a9b0c1d99', displayName: 'E2E nightly',
      authenticationType: 'User', ownerUserId: 'e2e-user' }],
  },
};
let r = await api('POST', '/admin/v1/seed', ADMIN, seed);
assert.equal(r.status, 200, JSON.stringify(r.body));
r = await api('POST', '/v1/customer/cus_e2e/token', 'key_org_e2e', {
  connect_options: { return_url: `${APP}/connected`, connector_names: ['github', 'acme-apikey'] },
});
assert.equal(r.status, 200, JSON.stringify(r.body));
const magicLink = r.body.magic_link_url;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext();
const page = await context.newPage();
const snap = async (name) => {
  shot += 1;
  await page.screenshot({ path: `${SHOTS}/${String(shot).padStart(2, '0')}-${name}.png`, fullPage: true });
};
const callbacks = [];
page.on('request', (req) => { if (req.url().includes('/connect/callback')) callbacks.push(req.url()); });

async function test(name, fn) {
  await fn();
  passed += 1;
  console.log(`ok - ${name}`);
}

try {
  let connectionId;
  await test('magic link → connect GitHub → consent at the provider → back on the return URL', async () => {
    const res = await page.goto(magicLink);
    assert.equal(res.status(), 200);
    await snap('connect-page');
    assert.equal(await page.locator('header h1').innerText(), 'Browser Test Org');
    await page.getByRole('button', { name: 'Connect GitHub' }).click();
    await page.waitForURL(`${APP}/connected?**`);
    await snap('returned');
    const url = new URL(page.url());
    connectionId = url.searchParams.get('connection_id');
    assert.match(connectionId, /^conn_github_/);
    assert.equal(url.searchParams.get('connector_name'), 'github');
    const codeGrant = grants.find((g) => g.grant === 'authorization_code');
    assert.ok(codeGrant && codeGrant.verifier && codeGrant.status === 200, JSON.stringify(grants));
  });

  await test('the connection answers with the provider\'s tokens, refreshed once expiring', async () => {
    // Without secrets nothing is refreshed: the stored answer is the provider's first token.
    let c = await api('GET', `/v1/connection/${connectionId}?include_secrets=true&refresh_policy=none`, 'key_org_e2e');
    assert.equal(c.status, 200);
    const first = c.body.settings.oauth.credentials;
    assert.equal(first.access_token.split('.').length, 3, 'the mock issues JWT access tokens');
    assert.ok(first.refresh_token);
    assert.ok(Date.parse(first.expires_at) <= Date.now() + 61_000, first.expires_at);
    // The token expires within the refresh margin: a read with secrets refreshes it.
    c = await api('GET', `/v1/connection/${connectionId}?include_secrets=true`, 'key_org_e2e');
    assert.equal(c.status, 200);
    assert.equal(c.body.status, 'healthy', JSON.stringify(c.body));
    const fresh = c.body.settings.oauth.credentials;
    assert.notEqual(fresh.access_token, first.access_token);
    assert.ok(Date.parse(fresh.expires_at) > Date.now() + 3000_000, fresh.expires_at);
    assert.equal(grants.filter((g) => g.grant === 'refresh_token' && g.status === 200).length, 1, JSON.stringify(grants));
  });

  await test('a replayed state ends on an error page', async () => {
    assert.equal(callbacks.length, 1);
    const res = await page.goto(callbacks[0]);
    assert.equal(res.status(), 400);
    await snap('replayed-state');
    assert.match(await page.getByRole('alert').innerText(), /already used/);
  });

  await test('consent denied ends on an error page', async () => {
    oauth.service.once('beforeAuthorizeRedirect', ({ url }) => {
      url.searchParams.delete('code');
      url.searchParams.set('error', 'access_denied');
    });
    await page.goto(magicLink);
    await page.getByRole('button', { name: 'Connect GitHub' }).click();
    await page.waitForURL('**/connect/callback?**');
    await snap('consent-denied');
    assert.match(await page.getByRole('alert').innerText(), /declined/);
    const events = await api('GET', '/v1/event?limit=50', 'key_org_e2e');
    assert.ok(events.body.items.some((e) => e.name === 'connect.session-cancelled'));
  });

  await test('the API-key form: a bad key is refused on the form, a good one connects', async () => {
    await page.goto(magicLink);
    await page.getByRole('link', { name: 'Connect Acme API Key' }).click();
    await snap('api-key-form');
    await page.getByLabel('api_key (required)').fill('bad-key');
    await page.getByRole('button', { name: 'Connect' }).click();
    await snap('api-key-refused');
    assert.match(await page.getByRole('alert').innerText(), /refused these credentials/);
    await page.getByLabel('api_key (required)').fill('good-key');
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.waitForURL(`${APP}/connected?**`);
    await snap('api-key-connected');
    const id = new URL(page.url()).searchParams.get('connection_id');
    const c = await api('GET', `/v1/connection/${id}?include_secrets=true`, 'key_org_e2e');
    assert.equal(c.body.settings.api_key, 'good-key');
  });

  await test('keyboard only: Tab reaches the Connect buttons', async () => {
    await page.goto(magicLink);
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement?.getAttribute('aria-label'));
    assert.match(focused || '', /^Connect /);
  });

  await test('an expired or tampered link ends on a 4xx page', async () => {
    const res = await page.goto(`${BASE}/connect?token=${magicLink.split('token=')[1].split('&')[0]}x`);
    assert.equal(res.status(), 401);
    await snap('tampered-link');
  });

  await test('Export consent page: Allow → redirect_url, then a run starts', async () => {
    let run = await api('POST', '/export/connections/exc-e2e/runs', 'e2e-user-token', { exportType: 'IFC' });
    assert.equal(run.status, 422);
    assert.equal(run.body.error.details[0].code, 'UserNotAuthorized');
    const info = await api('GET', `/export/authorizationinformation?redirectUrl=${encodeURIComponent(`${APP}/export-done`)}`, 'e2e-user-token');
    const href = info.body.authorizationInformation._links.authorizationUrl.href;
    await page.goto(href);
    await snap('export-consent');
    await page.getByRole('button', { name: /Allow/ }).click();
    await page.waitForURL(`${APP}/export-done**`);
    await snap('export-consented');
    run = await api('POST', '/export/connections/exc-e2e/runs', 'e2e-user-token', { exportType: 'IFC' });
    assert.equal(run.status, 202, JSON.stringify(run.body));
  });

  console.log(`connect e2e: ${passed} passed`);
} catch (e) {
  try { await snap('failure'); } catch { /* the page may be gone */ }
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
  await oauth.stop();
  app.close();
}
