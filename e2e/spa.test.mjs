// A shopper's walk through the SPA against a running store, in headless Debian Chromium:
// storefront (search, facets, load more), product page, sign up, wallet top-up, checkout,
// order timeline until COMPLETED, the license key in the library, the notification bell.
// Fails on any `pageerror` (a broken wasm bundle shows up there) or failed assertion.
//
//   BASE_URL=https://127.0.0.1:8443 SHOTS=/tmp node e2e/spa.test.mjs
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const base = process.env.BASE_URL ?? 'https://127.0.0.1:8443';
const shots = process.env.SHOTS ?? '/tmp';
const shot = (page, name) => page.screenshot({ path: path.join(shots, `spa-${name}.png`), fullPage: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--ignore-certificate-errors'],
});
const errors = [];
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
const page = await context.newPage();
page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
// Subscriptions: count the `next` messages the app receives over /graphql/ws.
let wsNext = 0;
page.on('websocket', (ws) => ws.on('framereceived', (f) => {
  if (String(f.payload).includes('"type":"next"')) wsNext += 1;
}));
page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
const step = async (name, fn) => {
  const t = Date.now();
  try {
    await fn();
  } catch (e) {
    await page.screenshot({ path: path.join(shots, 'spa-failed.png'), fullPage: true }).catch(() => {});
    throw e;
  }
  console.log(`ok ${name} (${Date.now() - t} ms)`);
  assert.deepEqual(errors, [], `browser errors during "${name}"`);
};

try {
  await step('storefront loads with products', async () => {
    const t = Date.now();
    await page.goto(base + '/');
    await page.locator('.card').first().waitFor();
    console.log(`  storefront interactive with products after ${Date.now() - t} ms`);
    await shot(page, 'storefront');
  });

  await step('search as you type narrows the list', async () => {
    const before = await page.locator('.card').count();
    const title = (await page.locator('.card__title').first().textContent()).trim();
    await page.getByLabel('Search').fill(title);
    await page.waitForFunction((n) => document.querySelectorAll('.card').length < n || n < 2, before);
    await page.locator('.card__title', { hasText: title }).first().waitFor();
  });

  await step('facets and load more', async () => {
    await page.getByLabel('Search').fill('');
    await page.getByRole('group', { name: 'Edition' }).getByLabel('Digital').check();
    await page.getByLabel('Sort by').selectOption('PRICE_ASC');
    await page.locator('.card').first().waitFor();
    const n = await page.locator('.card').count();
    const more = page.getByRole('button', { name: 'Load more' });
    if (await more.isVisible()) {
      await more.click();
      await page.waitForFunction((k) => document.querySelectorAll('.card').length > k, n);
    }
    await shot(page, 'storefront-filtered');
  });

  let productUrl;
  await step('product page with editions', async () => {
    await page.locator('.card__link').first().click();
    await page.locator('.edition').first().waitFor();
    productUrl = page.url();
    await shot(page, 'product');
    await page.goBack();
    assert.match(page.url(), /kind=DIGITAL/);
    assert.ok(await page.getByRole('group', { name: 'Edition' }).getByLabel('Digital').isChecked());
    await page.goto(productUrl);
    await page.locator('.edition').first().waitFor();
  });

  await step('account pages ask visitors to sign in', async () => {
    await page.goto(base + '/wallet');
    await page.getByText('Please sign in').waitFor();
    await page.getByRole('main').getByRole('link', { name: 'Sign in' }).click();
    await page.waitForURL(/\/sign-in\?next=%2Fwallet/);
  });

  const email = `web-${Date.now()}@store.test`;
  await step('sign up (with client-side validation first)', async () => {
    await page.goto(base + '/sign-up');
    await page.getByLabel('E-mail').fill('not-an-email');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.locator('#email-error').waitFor();
    await shot(page, 'sign-up-errors');
    await page.getByLabel('E-mail').fill(email);
    await page.getByLabel('Name shown on your reviews').fill('Web Tester');
    await page.getByLabel('Password').fill('correct horse battery');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByText('Web Tester').waitFor();
  });

  await step('session survives a reload (refresh token)', async () => {
    await page.reload();
    await page.getByText('Web Tester').waitFor();
  });

  await step('a 401 makes the app refresh the session once and retry', async () => {
    // Play the gateway refusing a stale access token on the next wallet request.
    let refused = false;
    let refreshed = 0;
    await page.route('**/graphql', (route, request) => {
      const body = request.postData() ?? '';
      if (body.includes('RefreshSession')) refreshed += 1;
      if (!refused && body.includes('WalletPage')) {
        refused = true;
        return route.fulfill({
          status: 401,
          contentType: 'application/json',
          headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
          body: JSON.stringify({ errors: [{ message: 'invalid token', extensions: { code: 'UNAUTHENTICATED' } }] }),
        });
      }
      return route.continue();
    });
    await page.getByRole('link', { name: 'Wallet' }).click();
    await page.locator('.wallet__amount').waitFor();
    await page.unroute('**/graphql');
    // Chromium logs the refused request itself; that one is expected here.
    errors.splice(0, errors.length, ...errors.filter((e) => !e.includes('status of 401')));
    assert.ok(refused, 'the wallet request was not made');
    assert.equal(refreshed, 1, 'expected exactly one refresh');
    await page.getByText('Web Tester').waitFor();
  });

  await step('top up the wallet with the approving test card', async () => {
    await page.goto(base + '/wallet');
    await page.getByLabel('Amount (EUR)').fill('100');
    await page.getByRole('button', { name: '4242424242424242' }).click();
    await page.getByRole('button', { name: 'Top up', exact: true }).click();
    await page.getByText('added to your wallet').waitFor({ timeout: 20000 });
    await page.locator('.wallet__amount', { hasText: '100.00 EUR' }).waitFor();
    await page.getByRole('button', { name: '4000000000000002' }).click();
    await page.getByRole('button', { name: 'Top up', exact: true }).click();
    await page.getByText('Declined').waitFor({ timeout: 20000 });
    await page.locator('.wallet__amount', { hasText: '100.00 EUR' }).waitFor();
    await shot(page, 'wallet');
  });

  await step('add a digital edition to the cart, check out', async () => {
    await page.goto(productUrl);
    await page.locator('.edition', { hasText: 'Digital' }).first().getByRole('button').click();
    await page.goto(base + '/cart');
    await shot(page, 'cart');
    await page.getByRole('link', { name: 'Checkout' }).click();
    await shot(page, 'checkout');
    await page.getByRole('button', { name: 'Place order' }).dblclick();
    await page.waitForURL(/\/orders\//);
  });

  await step('order completes, timeline shown', async () => {
    await page.locator('.status', { hasText: 'COMPLETED' }).waitFor({ timeout: 30000 });
    await page.locator('.timeline__step').first().waitFor();
    assert.ok(wsNext > 0, 'the order page got no subscription message');
    await shot(page, 'order');
    // The double click placed one order: the idempotency key is made once per checkout.
    await page.goto(base + '/orders');
    await page.locator('.list__item').first().waitFor();
    assert.equal(await page.locator('.list__item').count(), 1);
  });

  await step('library shows the license key and copies it', async () => {
    await page.goto(base + '/library');
    const key = (await page.locator('.license__key').first().textContent()).trim();
    assert.match(key, /^[A-Z0-9]{5}(-[A-Z0-9]{5}){3}$/);
    await page.getByRole('button', { name: 'Copy' }).first().click();
    await page.getByText('Copied').waitFor();
    await shot(page, 'library');
  });

  await step('an owner reviews the product; wishlist', async () => {
    await page.goto(productUrl);
    await page.getByRole('heading', { name: 'Your review' }).waitFor();
    await page.getByLabel('Rating').selectOption('4');
    const text = `Written by the browser test at ${new Date().toISOString()}.`;
    await page.getByLabel('Review', { exact: true }).fill(text);
    await page.getByRole('button', { name: 'Save review' }).click();
    await page.getByText('Thank you for your review.').waitFor();
    await page.locator('.review', { hasText: text }).waitFor();
    await page.getByRole('button', { name: /Add to wishlist/ }).click();
    await page.getByText('On your wishlist').waitFor();
    await shot(page, 'product-owned');
    await page.goto(base + '/wishlist');
    await page.locator('.list__item').first().waitFor();
  });

  await step('notification bell counts unread', async () => {
    await page.goto(base + '/');
    await page.locator('.bell .badge').waitFor({ timeout: 25000 });
    await page.locator('.bell').click();
    await page.locator('.list__item').first().waitFor();
    await shot(page, 'notifications');
  });

  await step('without funds the order is cancelled with the reason', async () => {
    const other = await browser.newContext({ ignoreHTTPSErrors: true });
    const poor = await other.newPage();
    poor.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    await poor.goto(base + '/sign-up');
    await poor.getByLabel('E-mail').fill(`web-poor-${Date.now()}@store.test`);
    await poor.getByLabel('Name shown on your reviews').fill('Poor Tester');
    await poor.getByLabel('Password').fill('correct horse battery');
    await poor.getByRole('button', { name: 'Create account' }).click();
    await poor.getByText('Poor Tester').waitFor();
    await poor.goto(productUrl);
    await poor.locator('.edition', { hasText: 'Digital' }).first().getByRole('button').click();
    await poor.goto(base + '/checkout');
    await poor.getByRole('button', { name: 'Place order' }).click();
    await poor.waitForURL(/\/orders\//);
    await poor.locator('.status', { hasText: 'CANCELLED' }).waitFor({ timeout: 30000 });
    await shot(poor, 'order-cancelled');
    await poor.getByText('Your wallet did not cover the order').waitFor();
    await other.close();
  });

  const adminEmail = process.env.ADMIN_EMAIL;
  if (adminEmail) {
    const pubEmail = `web-pub-${Date.now()}@store.test`;
    const signIn = async (p, email, password) => {
      await p.goto(base + '/sign-in');
      await p.getByLabel('E-mail', { exact: true }).fill(email);
      await p.getByLabel('Password').fill(password);
      await p.getByRole('button', { name: 'Sign in' }).click();
    };
    await step('an admin creates a publisher', async () => {
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
      const admin = await ctx.newPage();
      admin.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
      await signIn(admin, adminEmail, process.env.ADMIN_PASSWORD);
      await admin.getByRole('link', { name: 'Admin' }).click();
      await admin.getByLabel('E-mail', { exact: true }).fill(pubEmail);
      await admin.getByLabel('Name', { exact: true }).fill('Web Publisher');
      await admin.getByLabel('Initial password').fill('publisher password 1');
      await admin.getByRole('button', { name: 'Create account' }).click();
      await admin.getByText('Account created.').waitFor();
      await admin.getByRole('cell', { name: pubEmail }).waitFor();
      await shot(admin, 'admin');
      await ctx.close();
    });
    await step('the publisher signs in and creates a product', async () => {
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
      const pub = await ctx.newPage();
      pub.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
      await signIn(pub, pubEmail, 'publisher password 1');
      await pub.getByRole('link', { name: 'Publisher' }).click();
      await pub.getByLabel('Title').fill(`Web Test Game ${Date.now()}`);
      await pub.getByLabel('SKU').fill(`WEB-${Date.now()}`);
      await pub.getByRole('button', { name: 'Create draft' }).click();
      await pub.getByText('Created as a draft').waitFor();
      // A cover, with the upload's progress bar (any PNG will do: a screenshot is one).
      const png = await pub.screenshot();
      await pub.locator('input[type=file]').first().setInputFiles({ name: 'cover.png', mimeType: 'image/png', buffer: png });
      await pub.getByText('Cover uploaded.').waitFor();
      await pub.getByRole('button', { name: 'Publish' }).first().click();
      await pub.getByText('Published.').waitFor();
      await pub.locator('img.publisher-product__cover').first().waitFor();
      await shot(pub, 'publisher');
      // The shopper buys it while the publisher watches: the sale appears live.
      const newProduct = base + (await pub.locator('.publisher-product a').first().getAttribute('href'));
      await page.goto(newProduct);
      await page.locator('img.product__cover').waitFor();
      assert.ok(await page.locator('img.product__cover').evaluate((img) => img.naturalWidth > 0), 'the cover did not load');
      await shot(page, 'product-with-cover');
      await page.locator('.edition').first().getByRole('button').click();
      await page.goto(base + '/checkout');
      await page.getByRole('button', { name: 'Place order' }).click();
      await page.locator('.status', { hasText: 'COMPLETED' }).waitFor({ timeout: 30000 });
      await pub.locator('.sale').first().waitFor({ timeout: 20000 });
      await shot(pub, 'publisher-sale');
      await ctx.close();
    });
  }

  await step('phone-sized storefront', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(base + '/');
    await page.locator('.card').first().waitFor();
    await shot(page, 'storefront-phone');
  });
  console.log('all steps passed');
} finally {
  await browser.close();
}
