// Helpers of the browser test (spa.test.mjs): the browser, pages that fail the run on any
// `pageerror` or console error, timed steps, screenshots, and the store's forms.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

export const base = (process.env.BASE_URL ?? 'https://127.0.0.1:8443').replace(/\/$/, '');
export const shots = process.env.SHOTS ?? '/tmp';
fs.mkdirSync(shots, { recursive: true });

/// A suffix that makes every account of a run new, so runs can repeat against one stack.
export const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
export const uniqueEmail = (who) => `e2e-${who}-${runId}@store.test`;
export const PASSWORD = 'correct horse battery';

export const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--ignore-certificate-errors'],
});

/// Browser errors seen since the last step ended; a step fails when it leaves any.
export const errors = [];
/// Console errors a step expects (e.g. the 401 it provokes), matched by substring.
const expected = [];
export const expectConsoleError = (substring) => expected.push(substring);

/// The GraphQL operation a request names (`operationName`), or ''.
export function operationOf(request) {
  try {
    return JSON.parse(request.postData() ?? 'null')?.operationName ?? '';
  } catch {
    return '';
  }
}

/// The `RefreshSession` requests each context sent (the session tests count them).
export const refreshes = new WeakMap();

/// A new browser context (its own storage: another person, or another device) with its page.
export async function newPerson(label, options = {}) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 }, ...options,
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  refreshes.set(context, 0);
  context.on('request', (request) => {
    if (request.method() === 'POST' && operationOf(request) === 'RefreshSession') {
      refreshes.set(context, refreshes.get(context) + 1);
    }
  });
  const page = await watch(await context.newPage(), label);
  return { context, page };
}

/// Reports the page's errors (uncaught exceptions and console errors) into `errors`.
export function watch(page, label) {
  page.on('pageerror', (e) => errors.push(`${label}: pageerror: ${e.message}`));
  // Name the operation of a refused request (the console error says only the status).
  page.on('response', (r) => {
    if (r.status() < 400 || !r.url().includes('/graphql')) return;
    const op = operationOf(r.request());
    console.log(`     ${label}: ${r.request().method()} ${new URL(r.url()).pathname} ${op} answered ${r.status()}`);
  });
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    if (expected.some((s) => text.includes(s))) return;
    errors.push(`${label}: console: ${text}`);
  });
  return page;
}

/// The pages whose screenshot a failing step takes.
export const watched = new Set();
let failures = 0;

/// Runs one step, prints its time, fails on an exception or on browser errors.
export async function step(name, fn) {
  const t = Date.now();
  try {
    await fn();
    assert.deepEqual(errors, [], `browser errors during "${name}"`);
  } catch (e) {
    failures += 1;
    console.log(`FAIL ${name} (${Date.now() - t} ms)`);
    let i = 0;
    for (const page of watched) {
      i += 1;
      await page.screenshot({ path: path.join(shots, `failed-${i}.png`), fullPage: true }).catch(() => {});
    }
    throw e;
  } finally {
    expected.length = 0;
  }
  console.log(`ok   ${name} (${Date.now() - t} ms)`);
}

export const failed = () => failures > 0;

/// A full-page screenshot `$SHOTS/<name>.png` (`{ fullPage: false }`: the window only).
export const shot = (page, name, options = {}) =>
  page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true, ...options });

/// Signs up on the sign-up page and waits until the header shows the new account.
export async function signUp(page, email, displayName) {
  await page.goto(base + '/sign-up');
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Name shown on your reviews').fill(displayName);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await signedInOrRefused(page, page.locator('.account summary', { hasText: displayName }));
}

/// Waits for the header's account menu, or fails at once with the form's alert (a `429` of the
/// gateway's or the api's rate limit, wrong credentials…).
async function signedInOrRefused(page, account) {
  const alert = page.locator('main [role=alert]');
  await account.or(alert).first().waitFor();
  if (await alert.isVisible()) {
    const text = (await alert.first().textContent()).trim();
    throw new Error(`${page.url()}: refused: "${text}" (for many runs in a row, raise the ` +
      'rate limits: see e2e/README.md)');
  }
}

/// Signs in on the sign-in page and waits until the header shows the account menu.
export async function signIn(page, email, password) {
  await page.goto(base + '/sign-in');
  await page.getByLabel('E-mail', { exact: true }).fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await signedInOrRefused(page, page.locator('.account summary'));
}

/// Tops the wallet up with the approving test card (in-app navigation to the wallet).
export async function topUp(page, euros) {
  await page.getByRole('link', { name: 'Wallet', exact: true }).click();
  await page.locator('.wallet__amount').waitFor();
  await page.getByLabel('Amount (EUR)').fill(String(euros));
  await page.getByRole('button', { name: '4242424242424242' }).click();
  await page.getByRole('button', { name: 'Top up', exact: true }).click();
  await page.getByText('added to your wallet').waitFor({ timeout: 20000 });
}

/// The bundle whose page the gateway serves for `pathname`: the same split as
/// `Bundle::of_path` in web/src/page.rs (and the SPA's locations in nginx.conf).
export function bundleOf(pathname) {
  const first = pathname.replace(/^\/+/, '').split('/')[0];
  if (['cart', 'checkout', 'orders', 'wallet', 'library', 'wishlist', 'notifications'].includes(first)) {
    return 'account';
  }
  if (first === 'products' || first === 'bundles') return 'product';
  return first === 'publisher' || first === 'admin' ? 'manage' : 'store';
}

/// Goes to `href` with the app's router (a click on a link it renders), not a page load.
///
/// Within the page's bundle that is all. A path of another bundle ends in a full page load:
/// the router first pushes the address (so the URL matches at once, while the old document
/// still shows) and its fallback then replaces it with a load of the other bundle's page. On a
/// busy machine that load takes a while, and whatever the caller does next (a click, a
/// `localStorage` write) would reach the old document, which the load then throws away: wait
/// for the new document too.
export async function navigateInApp(page, href) {
  const crossing = bundleOf(new URL(page.url()).pathname) !== bundleOf(new URL(href, page.url()).pathname);
  const loaded = crossing ? page.waitForEvent('load') : null;
  await page.evaluate((href) => {
    const a = document.createElement('a');
    a.href = href;
    document.body.appendChild(a);
    a.click();
    a.remove();
  }, href);
  await page.waitForURL((url) => url.pathname + url.search === href);
  if (loaded) {
    await loaded;
    await page.waitForURL((url) => url.pathname + url.search === href);
  }
}

/// Counts the subscription results (`next` messages over /graphql/ws) a page receives, by
/// subscription field name (`orderUpdated`, `shipmentsUpdated`…) and in total.
export function countLive(page) {
  const seen = { total: 0 };
  page.on('websocket', (ws) => ws.on('framereceived', (f) => {
    const text = String(f.payload);
    if (!text.includes('"type":"next"')) return;
    seen.total += 1;
    const field = /"data":\{"(\w+)"/.exec(text)?.[1];
    if (field) seen[field] = (seen[field] ?? 0) + 1;
  }));
  return seen;
}

/// Waits until `page` has received a subscription result for `field` (a message may arrive after
/// what it causes is already on screen: the page also refetches on its own).
export async function liveMessage(seen, field, timeout = 20000) {
  const until = Date.now() + timeout;
  while ((seen[field] ?? 0) === 0) {
    if (Date.now() > until) throw new Error(`no ${field} subscription message within ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
