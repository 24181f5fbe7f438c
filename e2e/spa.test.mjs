// The store as people use it, in headless Debian Chromium, against a running store (gateway, api,
// saga participants, built SPA). Every run makes new accounts, so it repeats against one stack.
//
//   storefront: time to interactive, search, facets, product page
//   (a) a new user signs up, keeps the session across reloads and tabs, tops up, buys a digital
//       game and finds it with its license key in the library
//   (c) a user without funds sees the order cancelled with the reason
//   (b) a user buys a physical edition (shipping address); the publisher, in another browser,
//       sees the order appear live and ships it; the buyer's order completes; a second order is
//       cancelled by the buyer before it ships and refunded
//   (d) an admin creates a publisher, who signs in, creates and publishes a product, creates an
//       API client (its secret shown once) and registers a webhook endpoint (a receiver of the
//       test on loopback), and sees its sale live, at the receiver (signed) and in the delivery
//       log; then edits its title and a price, and the store shows them
//
// Fails (exit code 1) on any failed step, `pageerror` or browser console error.
//
//   BASE_URL=https://127.0.0.1:8443 SHOTS=target/e2e node e2e/spa.test.mjs
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import {
  base, browser, countLive, expectConsoleError, failed, liveMessage, navigateInApp, operationOf,
  newPerson, refreshes, runId, shot, shots, signIn, signUp, step, topUp, uniqueEmail, watch,
  watched,
} from './lib.mjs';

const adminEmail = process.env.ADMIN_EMAIL ?? 'admin@store.test';
const adminPassword = process.env.ADMIN_PASSWORD ?? 'admin-demo-password';
const publisherEmail = process.env.PUBLISHER_EMAIL ?? 'nebula@store.test';
const publisherPassword = process.env.PUBLISHER_PASSWORD ?? 'publisher-demo-password';

/// Polls `f` (sync or async) every 250 ms until it gives a truthy value, for up to `timeout` ms.
async function until(what, f, timeout = 20000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/// A publisher's webhook receiver on loopback (the test's store allows loopback targets): checks
/// each delivery's Standard Webhooks signature with the secret the dashboard showed, answers
/// 204 (401 to a bad signature), and keeps what it got.
async function startReceiver() {
  const got = [];
  let key = null;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const signed = `${req.headers['webhook-id']}.${req.headers['webhook-timestamp']}.`;
      const mac = key && crypto.createHmac('sha256', key).update(signed).update(body).digest('base64');
      const verified = Boolean(mac) && String(req.headers['webhook-signature'] ?? '').split(' ')
        .some((s) => s.split(',')[1] === mac);
      let json = null;
      try { json = JSON.parse(body.toString('utf8')); } catch { /* kept as null */ }
      got.push({ verified, id: req.headers['webhook-id'], body: json });
      res.writeHead(verified ? 204 : 401).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/store-hooks`,
    got,
    trust: (secret) => { key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64'); },
    close: () => server.close(),
  };
}
const receiver = await startReceiver();

const started = Date.now();
console.log(`store ${base}, run ${runId}, screenshots in ${shots}`);

/// The balance shown on the wallet page, in minor units.
async function balance(page) {
  await navigateInApp(page, '/wallet');
  const text = await page.locator('.wallet__amount').textContent();
  return Math.round(Number(text.replace(/[^0-9.]/g, '')) * 100);
}

/// Minor units of a price as the page writes it (`24.99 EUR` → 2499).
const cents = (text) => Math.round(Number(text.replace(/[^0-9.]/g, '')) * 100);

/// The order id of the order page the browser shows.
const orderIdOf = (page) => new URL(page.url()).pathname.split('/').pop();

/// Holds the answers to the GraphQL operation `name` on `page` until `release()`: a page can then
/// be left while its request is in flight, every time, not only when the machine is slow.
/// `seen()` resolves when the first such request was held; `release()` lets them all through
/// and resolves when their answers reached the page.
async function holdOperation(page, name) {
  const held = [];
  const handler = (route, request) => {
    if (operationOf(request) === name) {
      held.push(route);
      return undefined;
    }
    return route.fallback();
  };
  await page.route('**/graphql', handler);
  return {
    seen: () => until(`a ${name} request`, () => held.length > 0, 10000),
    release: async () => {
      const answered = held.map((route) => page.waitForResponse((r) => r.request() === route.request()));
      for (const route of held) await route.fallback();
      await page.unroute('**/graphql', handler);
      await Promise.all(answered);
      // The app gets the answer a moment after the browser: let it run its continuations.
      await page.waitForTimeout(500);
    },
  };
}

/// Leaves the page in the app (the header's Wallet link, the router's own navigation) and waits
/// for the wallet to show its balance.
async function toWalletAtOnce(page) {
  await page.getByRole('link', { name: 'Wallet', exact: true }).click();
  await page.waitForURL((url) => url.pathname === '/wallet');
  await page.locator('.wallet__amount').waitFor();
}

/// The wallet shows its balance and its own title, and the app still answers a click of its
/// router (a wasm that panicked would leave the page as it was).
async function walletIsWhole(page) {
  assert.match(await page.locator('.wallet__amount').innerText(), /^\d+\.\d{2} EUR$/);
  assert.match(await page.title(), /^Wallet · Store$/, 'a page left behind changed the title');
  await page.getByRole('link', { name: 'Library', exact: true }).click();
  await page.waitForURL((url) => url.pathname === '/library');
  await page.locator('#library-title').waitFor();
}

/// Fills the checkout's shipping address.
async function fillAddress(page, address) {
  const form = page.getByRole('group', { name: 'Shipping address' });
  for (const [label, value] of Object.entries(address)) {
    const input = form.getByLabel(label, { exact: true });
    // The country is typed by its name, key by key as a person does (the API gets its ISO code).
    if (label === 'Country') {
      await input.fill('');
      await input.pressSequentially(value);
    } else await input.fill(value);
  }
}

const goodAddress = {
  'Full name': 'Erika Mustermann',
  'Street and number': 'Teststraße 12',
  'Postal code': '10115',
  City: 'Berlin',
  'State, province or county (optional)': '',
  Country: 'Germany',
  Phone: '+49 30 1234567',
};

try {
  // ------------------------------------------------------------------ storefront (a visitor)
  const shopper = await newPerson('shopper');
  const page = shopper.page;
  watched.add(page);
  const live = countLive(page);

  await step('storefront: time to interactive (cold, then warm)', async () => {
    const measure = async () => {
      await page.goto(base + '/', { waitUntil: 'commit' });
      // Navigation start (performance.timeOrigin) → a product card on screen and the search
      // box enabled; then typing into it.
      const cardAt = await (await page.waitForFunction(() => {
        const card = document.querySelector('.card');
        const input = document.getElementById('search');
        if (!card || !input || input.disabled) return false;
        const r = card.getBoundingClientRect();
        return r.width > 0 && r.height > 0 && r.top < innerHeight ? performance.now() : false;
      }, null, { polling: 'raf', timeout: 30000 })).jsonValue();
      // Layout shifts of the load so far (Lighthouse's CLS counts the same ones), and what moved.
      const shifts = await page.evaluate(() => new Promise((resolve) => {
        const seen = [];
        new PerformanceObserver((list) => seen.push(...list.getEntries()))
          .observe({ type: 'layout-shift', buffered: true });
        setTimeout(() => resolve({
          cls: seen.filter((e) => !e.hadRecentInput).reduce((sum, e) => sum + e.value, 0),
          moved: [...new Set(seen.flatMap((e) => (e.sources ?? [])
            .map((s) => s.node ? `${s.node.nodeName.toLowerCase()}.${s.node.className}` : '?')))],
        }), 300);
      }));
      await page.locator('#search').pressSequentially('a');
      const typedAt = await page.evaluate(() =>
        document.getElementById('search').value === 'a' ? performance.now() : null);
      assert.ok(typedAt, 'the search box did not take the input');
      // The app reacts to it (the query goes into the address).
      await page.waitForURL(/[?&]q=a/);
      const timing = await page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const wasm = performance.getEntriesByType('resource').find((r) => r.name.endsWith('.wasm'));
        return {
          ttfb: nav.responseStart, dcl: nav.domContentLoadedEventEnd,
          wasm: wasm && { end: wasm.responseEnd, kb: Math.round(wasm.transferSize / 1024) },
        };
      });
      return { cardAt, typedAt, timing, shifts };
    };
    for (const run of ['cold', 'warm']) {
      const m = await measure();
      const wasm = m.timing.wasm
        ? `, wasm loaded at ${m.timing.wasm.end.toFixed(0)} ms (${m.timing.wasm.kb} KB over the wire)`
        : '';
      console.log(`     storefront TTI (${run}): first card visible ${m.cardAt.toFixed(0)} ms, ` +
        `search accepts input ${m.typedAt.toFixed(0)} ms after navigation start ` +
        `(TTFB ${m.timing.ttfb.toFixed(0)} ms, DOMContentLoaded ${m.timing.dcl.toFixed(0)} ms${wasm})`);
      console.log(`     storefront layout shift (${run}): ${m.shifts.cls.toFixed(3)}` +
        (m.shifts.moved.length ? ` (moved: ${m.shifts.moved.join(', ')})` : ''));
    }
    await page.locator('#search').fill('');
    await page.waitForURL((url) => !url.search.includes('q='));
    await page.locator('.card').first().waitFor();
    await shot(page, 'storefront');
  });

  await step('storefront: search as you type narrows the list', async () => {
    const before = await page.locator('.card').count();
    const title = (await page.locator('.card__title').first().textContent()).trim();
    await page.getByLabel('Search').fill(title);
    await page.waitForFunction((n) => document.querySelectorAll('.card').length < n || n < 2, before);
    await page.locator('.card__title', { hasText: title }).first().waitFor();
  });

  await step('storefront: facets, sort and load more', async () => {
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

  let productPath;
  await step('product page with editions; Back keeps the filters', async () => {
    await page.locator('.card__link').first().click();
    await page.locator('.edition').first().waitFor();
    productPath = new URL(page.url()).pathname;
    await shot(page, 'product');
    await page.goBack();
    assert.match(page.url(), /kind=DIGITAL/);
    assert.ok(await page.getByRole('group', { name: 'Edition' }).getByLabel('Digital').isChecked());
  });

  await step('account pages ask visitors to sign in', async () => {
    await navigateInApp(page, '/wallet');
    await page.getByText('Please sign in').waitFor();
    await page.getByRole('main').getByRole('link', { name: 'Sign in' }).click();
    await page.waitForURL(/\/sign-in\?next=%2Fwallet/);
  });

  // ------------------------------------------------------------------ (a) a new user
  const shopperEmail = uniqueEmail('shopper');
  await step('(a) sign up, with client-side validation first', async () => {
    await page.goto(base + '/sign-up');
    await page.getByLabel('E-mail').fill('not-an-email');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.locator('#email-error').waitFor();
    assert.equal(await page.getByLabel('E-mail').getAttribute('aria-invalid'), 'true');
    await shot(page, 'sign-up-errors');
    await signUp(page, shopperEmail, 'Web Tester');
  });

  await step('(a) reloads, full page loads and a second tab reuse the session without a refresh', async () => {
    const before = refreshes.get(shopper.context);
    await page.reload();
    await page.locator('.account summary', { hasText: 'Web Tester' }).waitFor();
    for (const path of ['/wallet', '/library', '/orders']) {
      await page.goto(base + path);
      await page.locator('.account summary', { hasText: 'Web Tester' }).waitFor();
      await page.locator('main .state--loading').waitFor({ state: 'detached' });
      assert.equal(await page.getByText('Please sign in').count(), 0, `signed out at ${path}`);
    }
    const tab = watch(await shopper.context.newPage(), 'shopper tab 2');
    await tab.goto(base + '/wallet');
    await tab.locator('.wallet__amount').waitFor();
    await tab.close();
    assert.equal(refreshes.get(shopper.context) - before, 0,
      'a page load rotated the refresh token although the access token was valid');
  });

  await step('(a) an expired access token: two tabs loading at once refresh it once', async () => {
    const tab = watch(await shopper.context.newPage(), 'shopper tab 2');
    await tab.goto(base + '/library');
    await tab.locator('#library-title').waitFor();
    for (let round = 1; round <= 2; round += 1) {
      const before = refreshes.get(shopper.context);
      // Both tabs share localStorage: make the stored access token look expired.
      await page.evaluate(() => {
        const s = JSON.parse(localStorage.getItem('store.session'));
        s.expiresAt = 0;
        localStorage.setItem('store.session', JSON.stringify(s));
      });
      await Promise.all([page.goto(base + '/wallet'), tab.goto(base + '/wallet')]);
      await Promise.all([page.locator('.wallet__amount').waitFor(), tab.locator('.wallet__amount').waitFor()]);
      assert.equal(refreshes.get(shopper.context) - before, 1, `round ${round}: one refresh for both tabs`);
    }
    await tab.close();
    await page.locator('.account summary', { hasText: 'Web Tester' }).waitFor();
  });

  await step('(a) a refresh refused by a rate limit (429) keeps the session', async () => {
    await navigateInApp(page, '/');
    let refused = 0;
    await page.route('**/graphql', (route, request) => {
      if (operationOf(request) === 'RefreshSession') {
        refused += 1;
        return route.fulfill({ status: 429, contentType: 'text/html', body: '<html><body>429 Too Many Requests</body></html>' });
      }
      return route.continue();
    });
    expectConsoleError('status of 429');
    await page.evaluate(() => {
      const s = JSON.parse(localStorage.getItem('store.session'));
      s.expiresAt = 0;
      localStorage.setItem('store.session', JSON.stringify(s));
    });
    await page.getByRole('link', { name: 'Wallet', exact: true }).click();
    await page.locator('main [role=alert]', { hasText: 'Too many requests' }).waitFor();
    await page.unroute('**/graphql');
    assert.ok(refused >= 1, 'no refresh was tried');
    assert.equal(await page.getByText('Please sign in').count(), 0);
    await page.locator('.account summary', { hasText: 'Web Tester' }).waitFor();
    assert.ok(await page.evaluate(() => localStorage.getItem('store.refreshToken') !== null),
      'the app forgot the session');
    // The session is intact: the next try renews it.
    await page.reload();
    await page.locator('.wallet__amount').waitFor();
  });

  await step('(a) a 401 makes the app refresh the session once and retry', async () => {
    await navigateInApp(page, '/');
    let refused = false;
    const before = refreshes.get(shopper.context);
    await page.route('**/graphql', (route, request) => {
      if (!refused && operationOf(request) === 'WalletPage') {
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
    // Chromium logs the refused request itself; that one is expected here.
    expectConsoleError('status of 401');
    await page.getByRole('link', { name: 'Wallet', exact: true }).click();
    await page.locator('.wallet__amount').waitFor();
    await page.unroute('**/graphql');
    assert.ok(refused, 'the wallet request was not made');
    assert.equal(refreshes.get(shopper.context) - before, 1, 'expected exactly one refresh');
    await page.locator('.account summary', { hasText: 'Web Tester' }).waitFor();
  });

  await step('(a) top up the wallet; a declined card changes nothing', async () => {
    await topUp(page, 100);
    await page.locator('.wallet__amount', { hasText: '100.00 EUR' }).waitFor();
    await page.getByRole('button', { name: '4000000000000002' }).click();
    await page.getByRole('button', { name: 'Top up', exact: true }).click();
    await page.getByText('Declined').waitFor({ timeout: 20000 });
    await page.locator('.wallet__amount', { hasText: '100.00 EUR' }).waitFor();
    await shot(page, 'wallet');
  });

  await step('(a) buy a digital game: cart, checkout (a double click places one order)', async () => {
    await navigateInApp(page, productPath);
    await page.locator('.edition', { hasText: 'Digital' }).first().getByRole('button').click();
    await page.getByRole('link', { name: 'Go to the cart' }).click();
    await page.locator('table.cart').waitFor();
    await shot(page, 'cart');
    await page.getByRole('link', { name: 'Checkout' }).click();
    await page.getByRole('button', { name: 'Place order' }).waitFor();
    assert.equal(await page.getByRole('group', { name: 'Shipping address' }).count(), 0,
      'a digital order asks for no address');
    await shot(page, 'checkout');
    await page.getByRole('button', { name: 'Place order' }).dblclick();
    await page.waitForURL(/\/orders\//);
  });

  await step('(a) the order completes live; its timeline', async () => {
    await page.locator('.status', { hasText: 'Complete' }).waitFor({ timeout: 30000 });
    await page.locator('.timeline__step').first().waitFor();
    await liveMessage(live, 'orderUpdated');
    // Words for people: a short order number (not a UUID), steps without codes, its own title.
    assert.match(await page.locator('#order-title').innerText(), /^Order [0-9A-F]{8}$/);
    const timeline = await page.locator('.timeline').innerText();
    assert.ok(!/[A-Z]+_[A-Z]+|by (billing|library|ordering)/.test(timeline), `the timeline shows codes: ${timeline}`);
    assert.match(timeline, /Paid from your wallet/);
    assert.match(await page.title(), /^Order [0-9A-F]{8} · Store$/);
    await shot(page, 'order-timeline');
    await navigateInApp(page, '/orders');
    await page.locator('.list__item').first().waitFor();
    assert.equal(await page.locator('.list__item').count(), 1, 'the double click placed two orders');
  });

  await step('(a) the game is in the library with its license key', async () => {
    await page.getByRole('link', { name: 'Library', exact: true }).click();
    const key = (await page.locator('.license__key').first().textContent()).trim();
    assert.match(key, /^[A-Z0-9]{5}(-[A-Z0-9]{5}){3}$/);
    await page.getByRole('button', { name: 'Copy' }).first().click();
    await page.getByText('Copied').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key);
    const titles = await page.locator('.library__title').allInnerTexts();
    assert.equal(new Set(titles).size, titles.length, `a product is listed twice: ${titles}`);
    await page.getByLabel('Find in your library').fill('no such game in any library');
    await page.getByText('Nothing in your library matches this.').waitFor();
    await page.getByLabel('Find in your library').fill('');
    await page.locator('.library__item').first().waitFor();
    await shot(page, 'library');
  });

  await step('(a) the product page of an owned game says so instead of selling it again', async () => {
    await navigateInApp(page, productPath);
    await page.getByText('In your library').waitFor();
    assert.equal(await page.locator('.edition', { hasText: 'Digital' }).count(), 0,
      'an owned product still sells its digital editions');
    await page.getByRole('link', { name: 'Download or play it from your library' }).waitFor();
  });

  await step('(a) the owner reviews the product; wishlist', async () => {
    await navigateInApp(page, productPath);
    await page.getByRole('heading', { name: 'Your review' }).waitFor();
    await page.getByLabel('Rating').selectOption('4');
    const text = `Written by the browser test ${runId}.`;
    await page.getByLabel('Review', { exact: true }).fill(text);
    await page.getByRole('button', { name: 'Save review' }).click();
    await page.getByText('Thank you for your review.').waitFor();
    await page.locator('.review', { hasText: text }).waitFor();
    await page.getByRole('button', { name: /Add to wishlist/ }).click();
    await page.getByText('On your wishlist').waitFor();
    await shot(page, 'product-owned');
    await navigateInApp(page, '/wishlist');
    await page.locator('.list__item').first().waitFor();
  });

  await step('(a) the notification bell counts unread', async () => {
    await navigateInApp(page, '/');
    await page.locator('.bell .badge').waitFor({ timeout: 25000 });
    await page.locator('.bell').click();
    await page.locator('.list__item').first().waitFor();
    await shot(page, 'notifications');
  });

  let saleOrderPath;
  await step('(a) buy a game on sale: badge, struck price, countdown; the order pays the price shown', async () => {
    const before = await balance(page);
    await navigateInApp(page, '/?sale=1');
    assert.ok(await page.getByLabel('On sale').isChecked(), 'the "On sale" filter comes from the address');
    const onSale = page.locator('.card', { has: page.locator('.sale-price__badge') });
    await onSale.first().waitFor();
    assert.equal(await page.locator('.card').count(), await onSale.count(),
      'the "On sale" filter lists a product that is not on sale');
    // One the shopper does not own yet.
    const hrefs = await onSale.locator('.card__link').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
    const target = hrefs.find((h) => h !== productPath);
    assert.ok(target, 'no second product on sale');
    await navigateInApp(page, target);
    const edition = page.locator('.edition', { has: page.locator('.sale-price__badge') }).first();
    await edition.waitFor();
    const text = await edition.innerText();
    assert.match(text, /−\d+%/);
    assert.match(text, /Sale ends in \d+ (min|hours|days)/);
    const shown = Math.round(Number((await edition.locator('.sale-price__now').innerText()).replace(/[^0-9.]/g, '')) * 100);
    const list = Math.round(Number((await edition.locator('.sale-price__list').innerText()).replace(/[^0-9.]/g, '')) * 100);
    assert.ok(shown > 0 && shown < list, `sale price ${shown} against list price ${list}`);
    await shot(page, 'product-on-sale');
    await edition.getByRole('button', { name: 'Add to cart' }).click();
    await page.getByRole('link', { name: 'Go to the cart' }).click();
    await page.getByRole('link', { name: 'Checkout' }).click();
    // Taxed where the buyer is: Finland, typed by name (prices there include the 25.5 % VAT;
    // a euro country, as the wallet holds euros).
    const billing = page.getByRole('group', { name: 'Billing country' });
    await billing.getByLabel('Country', { exact: true }).fill('Finland');
    await billing.getByRole('button', { name: 'Save' }).click();
    await billing.getByText('Digital items are taxed in Finland.').waitFor();
    // The region sets the currency too: Finland pays in euros, tax included.
    await billing.getByText('Prices are in EUR, tax included.').waitFor();
    await page.getByRole('button', { name: 'Place order' }).click();
    await page.waitForURL(/\/orders\/[^/]+$/);
    await page.locator('.status', { hasText: 'Complete' }).waitFor({ timeout: 30000 });
    const orderPath = new URL(page.url()).pathname;
    await page.getByRole('link', { name: 'Receipt' }).click();
    await page.waitForURL(/\/receipt$/);
    await page.locator('.receipt__place', { hasText: 'Finland' }).waitFor();
    const receipt = await page.locator('.receipt').innerText();
    assert.match(receipt, /Tax at 25\.5 %/);
    assert.match(receipt, /Prices include tax/);
    const totalPaid = await page.locator('.receipt__total td').last().innerText();
    assert.equal(Math.round(Number(totalPaid.replace(/[^0-9.]/g, '')) * 100), shown, `receipt total ${totalPaid}`);
    assert.match(await page.title(), /^Receipt [0-9A-F]{8} · Store$/);
    await shot(page, 'receipt');
    assert.equal(before - await balance(page), shown, 'the order did not pay the price shown');
    assert.ok(orderPath.startsWith('/orders/'));
    saleOrderPath = orderPath;
  });

  // Pages that load in the background (the order, its refund panel, the receipt) or listen to the
  // socket (the order) must let go when they are left: an answer that arrives after the page is
  // gone used to reach its disposed signals and panic the wasm ("Tried to access a reactive value
  // that has already been disposed"), killing the app.
  await step('(a) receipt, "Back to the order", then at once the wallet: no panic', async () => {
    // As a person does it: no wait between the two clicks.
    await navigateInApp(page, `${saleOrderPath}/receipt`);
    await page.locator('.receipt__total').waitFor();
    await page.getByRole('link', { name: 'Back to the order' }).click();
    await toWalletAtOnce(page);
    await page.waitForTimeout(1500);
    await walletIsWhole(page);

    // The order shown and its refund panel still loading when the page is left.
    await navigateInApp(page, `${saleOrderPath}/receipt`);
    await page.locator('.receipt__total').waitFor();
    const refund = await holdOperation(page, 'OrderRefund');
    await page.getByRole('link', { name: 'Back to the order' }).click();
    await page.locator('#order-title').waitFor();
    await refund.seen();
    await toWalletAtOnce(page);
    await refund.release();
    await walletIsWhole(page);

    // The order itself (and its subscription just opened) still loading when the page is left.
    await navigateInApp(page, `${saleOrderPath}/receipt`);
    await page.locator('.receipt__total').waitFor();
    const order = await holdOperation(page, 'OrderPage');
    await page.getByRole('link', { name: 'Back to the order' }).click();
    await page.waitForURL((url) => url.pathname === saleOrderPath);
    await order.seen();
    await toWalletAtOnce(page);
    await order.release();
    await walletIsWhole(page);

    // The receipt still loading when the page is left.
    await navigateInApp(page, saleOrderPath);
    await page.locator('#order-title').waitFor();
    const receipt = await holdOperation(page, 'OrderReceipt');
    await page.getByRole('link', { name: 'Receipt' }).click();
    await receipt.seen();
    await toWalletAtOnce(page);
    await receipt.release();
    await walletIsWhole(page);
  });

  await step('(a) buy a bundle: its parts, the struck total, what is left to pay; the receipt totals the price shown', async () => {
    await topUp(page, 300);
    const before = await balance(page);
    // A demo bundle (api/src/seed.rs); the product page of a part links to it.
    await navigateInApp(page, '/bundles/atlas-collection');
    const items = page.locator('.bundle__item');
    await items.first().waitFor();
    assert.equal(await items.count(), 4, 'the bundle shows its four editions');
    const list = cents(await page.locator('.bundle__list').innerText());
    const price = cents(await page.locator('.bundle__now').innerText());
    assert.ok(price > 0 && price < list, `bundle price ${price} against its parts' ${list}`);
    const buy = page.getByRole('button', { name: /^Buy for / });
    const shown = cents(await buy.innerText());
    assert.ok(shown > 0 && shown <= price, `pay ${shown} of ${price}`);
    if (shown < price) {
      await page.locator('.bundle__yours', { hasText: /You own \d of 4 — pay/ }).waitFor();
    } else {
      // Owning none of it, the buyer pays the whole price and is told of no part owned.
      assert.equal(shown, price, 'a buyer owning nothing pays the bundle price');
      assert.equal(await page.locator('.bundle__yours').count(), 0, 'no part is owned yet');
    }
    await shot(page, 'bundle');
    // The first part's product page says it is part of the bundle.
    const partHref = await items.first().locator('a').getAttribute('href');
    await navigateInApp(page, partHref);
    await page.locator('.product__bundles', { hasText: 'Atlas Collection' }).waitFor();
    await page.locator('.product__bundles a', { hasText: 'Atlas Collection' }).click();
    await page.waitForURL(/\/bundles\/atlas-collection$/);
    await page.getByRole('button', { name: /^Buy for / }).click();
    await page.waitForURL(/\/orders\/[^/]+$/);
    await page.locator('.status', { hasText: 'Complete' }).waitFor({ timeout: 30000 });
    await page.getByRole('link', { name: 'Receipt' }).click();
    await page.waitForURL(/\/receipt$/);
    const totalPaid = await page.locator('.receipt__total td').last().innerText();
    assert.equal(cents(totalPaid), shown, `receipt total ${totalPaid}`);
    await shot(page, 'bundle-receipt');
    assert.equal(before - await balance(page), shown, 'the bundle did not cost the price shown');
  });

  await step('(a) a bundle with a boxed copy asks for the address, checks it, and waits for the parcel', async () => {
    await topUp(page, 300);
    const before = await balance(page);
    // The demo bundle holding a Collector's Box (api/src/seed.rs).
    await navigateInApp(page, '/bundles/atlas-collectors-set');
    await page.locator('.bundle__item', { hasText: 'Boxed copy' }).waitFor();
    const form = page.getByRole('group', { name: 'Shipping address' });
    await form.waitFor();
    const buy = page.getByRole('button', { name: /^Buy for / });
    const shown = cents(await buy.innerText());
    // The domain's rules, checked before anything is sent.
    await fillAddress(page, { ...goodAddress, 'Postal code': '10#15' });
    await buy.click();
    await page.locator('#ship-postal-error').waitFor();
    assert.equal(await form.getByLabel('Postal code').getAttribute('aria-invalid'), 'true');
    assert.equal(await balance(page), before, 'a refused address cost money');
    await navigateInApp(page, '/bundles/atlas-collectors-set');
    await page.getByRole('group', { name: 'Shipping address' }).waitFor();
    await fillAddress(page, goodAddress);
    await page.locator('#ship-country-hint', { hasText: 'Germany — DE' }).waitFor();
    await shot(page, 'bundle-boxed');
    await page.getByRole('button', { name: /^Buy for / }).click();
    await page.waitForURL(/\/orders\/[^/]+$/);
    // One parcel for the box; the order waits for it, paid the price shown.
    await page.locator('.status', { hasText: 'Paid, waiting to be shipped' }).waitFor({ timeout: 30000 });
    await page.locator('.shipment__status', { hasText: 'waiting for the publisher to ship' }).waitFor();
    assert.equal(await page.locator('.shipment').count(), 1, 'one shipment for the bundle');
    await page.locator('.shipment address', { hasText: 'Erika Mustermann' }).waitFor();
    assert.equal(before - await balance(page), shown, 'the bundle did not cost the price shown');
  });

  // ------------------------------------------------------------------ (c) no funds
  await step('(c) without funds the order is cancelled with the reason', async () => {
    const poor = await newPerson('poor user');
    watched.add(poor.page);
    await signUp(poor.page, uniqueEmail('poor'), 'Poor Tester');
    await navigateInApp(poor.page, productPath);
    await poor.page.locator('.edition', { hasText: 'Digital' }).first().getByRole('button').click();
    await navigateInApp(poor.page, '/checkout');
    await poor.page.getByRole('button', { name: 'Place order' }).click();
    await poor.page.waitForURL(/\/orders\//);
    await poor.page.locator('.status', { hasText: 'Cancelled' }).waitFor({ timeout: 30000 });
    await poor.page.getByText('Your wallet did not cover the order').waitFor();
    await poor.page.getByText('INSUFFICIENT_FUNDS').first().waitFor();
    await shot(poor.page, 'order-cancelled-no-funds');
    watched.delete(poor.page);
    await poor.context.close();
  });

  // ------------------------------------------------------------------ (b) a physical copy
  const pub = await newPerson('publisher');
  watched.add(pub.page);
  // The publisher's subscriptions go through a proxy of the test, which can drop them (the api
  // or the network going away) and counts what comes through.
  const pubSockets = new Set();
  const pubLive = { connections: 0, shipmentsUpdated: 0 };
  await pub.page.routeWebSocket(/\/graphql\/ws$/, (ws) => {
    const server = ws.connectToServer();
    pubLive.connections += 1;
    pubSockets.add(ws);
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => {
      if (String(m).includes('"shipmentsUpdated"')) pubLive.shipmentsUpdated += 1;
      ws.send(m);
    });
    ws.onClose((code, reason) => { pubSockets.delete(ws); server.close({ code, reason }); });
    server.onClose((code, reason) => { pubSockets.delete(ws); ws.close({ code, reason }); });
  });
  const buyer = await newPerson('buyer');
  const buyerLive = countLive(buyer.page);
  watched.add(buyer.page);
  let physical; // { path, edition }

  await step('(b) the publisher signs in and stocks a physical edition', async () => {
    await signIn(pub.page, publisherEmail, publisherPassword);
    await pub.page.getByRole('link', { name: 'Publisher', exact: true }).click();
    await pub.page.getByRole('heading', { name: 'Pending shipments' }).waitFor();
    // 20 products a page: the first product on sale with a physical edition, paging on until
    // one shows (the demo seed gives the publisher some in the first pages).
    const results = pub.page.locator('#product-results');
    await results.locator('.publisher-product').first().waitFor();
    let product;
    for (let pageNo = 1; ; pageNo += 1) {
      const found = results.locator('.publisher-product')
        .filter({ has: pub.page.locator('.product-status', { hasText: 'On sale' }) })
        .filter({ has: pub.page.locator('.stock-form') });
      if (await found.count() > 0) {
        product = found.first();
        break;
      }
      assert.ok(pageNo < 5, 'no physical edition on sale in the publisher\'s first pages');
      const firstId = await results.locator('.publisher-product').first().getAttribute('data-product-id');
      await results.getByRole('button', { name: 'Next' }).click();
      await pub.page.waitForFunction((id) =>
        document.querySelector('#product-results .publisher-product')?.dataset.productId !== id, firstId);
    }
    const edition = product.locator('li.edition', { has: pub.page.locator('.stock-form') }).first();
    physical = {
      path: await product.locator('h2 a').first().getAttribute('href'),
      edition: (await edition.locator('.edition__name').textContent()).trim(),
    };
    await edition.getByLabel('Stock').fill('100');
    await edition.getByRole('button', { name: 'Set' }).click();
    // The page waits for fulfillment to apply the command, then says so above the list.
    await pub.page.getByRole('status').filter({ hasText: `Stock of ${physical.edition} set to 100.` }).waitFor();
    console.log(`     physical edition "${physical.edition}" of ${physical.path}`);
  });

  await step('(b) the publisher\'s live connections drop and come back by themselves', async () => {
    // The bell, the orders to ship and the sales: one socket each.
    const deadline = Date.now() + 10000;
    while (pubSockets.size < 3 && Date.now() < deadline) await pub.page.waitForTimeout(100);
    const open = pubSockets.size;
    assert.ok(open >= 3, `expected 3 subscriptions, found ${open}`);
    const before = pubLive.connections;
    for (const ws of [...pubSockets]) ws.close({ code: 4000, reason: 'dropped by the test' });
    const t = Date.now();
    while (pubLive.connections - before < open && Date.now() - t < 15000) await pub.page.waitForTimeout(100);
    assert.equal(pubLive.connections - before, open, 'the subscriptions did not reconnect');
    console.log(`     ${open} sockets dropped, all reopened after ${Date.now() - t} ms`);
  });

  let buyerOrder;
  await step('(b) a buyer checks out a physical edition with a shipping address', async () => {
    const p = buyer.page;
    await signUp(p, uniqueEmail('buyer'), 'Box Buyer');
    await topUp(p, 400);
    await p.locator('.wallet__amount', { hasText: '400.00 EUR' }).waitFor();
    // The stock command is applied asynchronously: look until the edition is in stock.
    const deadline = Date.now() + 20000;
    for (;;) {
      await navigateInApp(p, physical.path);
      const row = p.locator('.edition', { hasText: physical.edition }).filter({ hasText: 'Physical' }).first();
      await row.waitFor();
      if (/in stock/.test(await row.textContent()) && !/out of stock/.test(await row.textContent())) {
        await row.getByRole('button').click();
        break;
      }
      assert.ok(Date.now() < deadline, 'the physical edition stayed out of stock');
      await navigateInApp(p, '/');
      await p.waitForTimeout(1000);
    }
    await navigateInApp(p, '/checkout');
    const form = p.getByRole('group', { name: 'Shipping address' });
    await form.waitFor();
    // The domain's rules, checked before sending, each next to its field.
    await fillAddress(p, { ...goodAddress, 'Postal code': '10#15', Phone: '030 1234567' });
    await p.getByRole('button', { name: 'Place order' }).click();
    await p.locator('#ship-postal-error').waitFor();
    await p.locator('#ship-phone-error').waitFor();
    assert.equal(await form.getByLabel('Postal code').getAttribute('aria-invalid'), 'true');
    assert.equal(await form.getByLabel('Phone').getAttribute('aria-describedby'), 'ship-phone-hint ship-phone-error');
    // The focus moves to the first field in error.
    await p.waitForFunction(() => document.activeElement?.id === 'ship-postal', null, { timeout: 5000 });
    await shot(p, 'checkout-address-errors');
    // An error the api answers for one field (extensions.field) lands on that field.
    let answered = false;
    await p.route('**/graphql', (route, request) => {
      if (!answered && operationOf(request) === 'PlaceOrder') {
        answered = true;
        return route.fulfill({
          status: 200,
          contentType: 'application/json',
          body: JSON.stringify({ data: null, errors: [{ message: 'city is not served by any carrier', extensions: { code: 'BAD_USER_INPUT', field: 'city' } }] }),
        });
      }
      return route.continue();
    });
    await fillAddress(p, goodAddress);
    // "Germany" is Germany, not "Ge" (Georgia): the country understood shows under the box.
    await p.locator('#ship-country-hint', { hasText: 'Germany — DE' }).waitFor();
    await p.getByRole('button', { name: 'Place order' }).click();
    await p.locator('#ship-city-error', { hasText: 'not served' }).waitFor();
    await p.unroute('**/graphql');
    assert.equal(await p.locator('#ship-postal-error').count(), 0);
    await shot(p, 'checkout-api-field-error');
    await p.getByRole('button', { name: 'Place order' }).click();
    await p.waitForURL(/\/orders\//);
    buyerOrder = orderIdOf(p);
    await p.locator('.status', { hasText: 'Paid, waiting to be shipped' }).waitFor({ timeout: 30000 });
    await p.locator('.shipment__status', { hasText: 'waiting for the publisher to ship' }).waitFor();
    await p.getByRole('button', { name: 'Cancel order' }).waitFor();
    await p.locator('.shipment address', { hasText: 'Erika Mustermann' }).waitFor();
    // The order holds the ISO code of the country typed by name.
    const shipTo = await p.locator('.shipment address').innerText();
    assert.match(shipTo, /^DE$/m, `the order ships to DE: ${shipTo}`);
    await shot(p, 'order-awaiting-shipment');
  });

  await step('(b) the order waiting to be shipped, left at once and left while it loads: no panic', async () => {
    const p = buyer.page;
    const orderPath = `/orders/${buyerOrder}`;
    // Straight from the live order page (its subscription open, its Cancel button shown).
    await toWalletAtOnce(p);
    await p.waitForTimeout(1000);
    await walletIsWhole(p);
    // Left before its answer came: the answer builds no view of the page that is gone (its
    // Cancel button reads the page's action).
    const order = await holdOperation(p, 'OrderPage');
    await navigateInApp(p, orderPath);
    await order.seen();
    await toWalletAtOnce(p);
    await order.release();
    await walletIsWhole(p);
    await navigateInApp(p, orderPath);
    await p.getByRole('button', { name: 'Cancel order' }).waitFor();
  });

  await step('(b) the publisher sees the order appear live and ships it', async () => {
    const p = pub.page;
    // The page was loaded before the order existed: it arrives over the subscription
    // (the page's fallback poll is once a minute).
    const row = p.locator(`li[data-order-id="${buyerOrder}"]`);
    await row.waitFor({ timeout: 20000 });
    assert.ok(pubLive.shipmentsUpdated > 0, 'no shipmentsUpdated message');
    await row.locator('address', { hasText: 'Erika Mustermann' }).waitFor();
    // The demo publisher has many products: the window, at the top, shows the orders to ship.
    await p.evaluate(() => window.scrollTo(0, 0));
    await shot(p, 'publisher-dashboard', { fullPage: false });
    // Required fields are checked first.
    await row.getByRole('button', { name: 'Mark as shipped' }).click();
    await row.locator('.field__error').first().waitFor();
    await row.getByLabel('Carrier').fill('DHL');
    await row.getByLabel('Tracking number').fill(`E2E-${runId}`);
    await row.getByRole('button', { name: 'Mark as shipped' }).click();
    await p.getByText(`shipped with DHL (tracking number E2E-${runId})`).waitFor({ timeout: 20000 });
    await row.waitFor({ state: 'detached', timeout: 20000 });
  });

  await step('(b) the buyer\'s order completes with carrier and tracking number', async () => {
    const p = buyer.page;
    await p.locator('.status', { hasText: 'Complete' }).waitFor({ timeout: 30000 });
    await p.locator('.shipment__carrier', { hasText: 'DHL' }).waitFor();
    await p.locator('.shipment__tracking', { hasText: `E2E-${runId}` }).waitFor();
    await p.locator('.timeline__step', { hasText: 'Shipped' }).first().waitFor();
    assert.equal(await p.getByRole('button', { name: 'Cancel order' }).count(), 0);
    await liveMessage(buyerLive, 'orderUpdated');
    await shot(p, 'order-shipped');
    await p.getByRole('link', { name: 'Library', exact: true }).click();
    await p.locator('.library__item', { hasText: physical.edition }).filter({ hasText: 'physical' }).first().waitFor();
  });

  await step('(b) the buyer cancels a second physical order before it ships: refund', async () => {
    const p = buyer.page;
    const before = await balance(p);
    await navigateInApp(p, physical.path);
    await p.locator('.edition', { hasText: physical.edition }).filter({ hasText: 'Physical' }).first()
      .getByRole('button').click();
    await navigateInApp(p, '/checkout');
    await fillAddress(p, goodAddress);
    await shot(p, 'checkout-physical');
    await p.getByRole('button', { name: 'Place order' }).click();
    await p.waitForURL(/\/orders\//);
    const order = orderIdOf(p);
    await p.locator('.status', { hasText: 'Paid, waiting to be shipped' }).waitFor({ timeout: 30000 });
    await pub.page.locator(`li[data-order-id="${order}"]`).waitFor({ timeout: 20000 });
    await p.getByRole('button', { name: 'Cancel order' }).click();
    await p.getByRole('button', { name: 'Keep the order' }).click();
    await p.getByRole('button', { name: 'Cancel order' }).click();
    await p.getByRole('button', { name: 'Yes, cancel the order' }).click();
    await p.locator('.status', { hasText: 'Cancelled' }).waitFor({ timeout: 30000 });
    await p.getByText('You cancelled the order').waitFor();
    await shot(p, 'order-cancelled-by-buyer');
    // It leaves the publisher's list live, and the money comes back.
    await pub.page.locator(`li[data-order-id="${order}"]`).waitFor({ state: 'detached', timeout: 20000 });
    const deadline = Date.now() + 20000;
    let after = await balance(p);
    while (after !== before && Date.now() < deadline) {
      await p.waitForTimeout(1000);
      after = await balance(p);
    }
    assert.equal(after, before, 'the payment was not refunded');
  });
  watched.delete(pub.page);
  watched.delete(buyer.page);
  await pub.context.close();
  await buyer.context.close();

  // ------------------------------------------------------------------ (d) a new publisher
  const newPublisherEmail = uniqueEmail('publisher');
  let newPublisher; // { np, path }
  await step('(d) an admin creates a publisher', async () => {
    const admin = await newPerson('admin');
    watched.add(admin.page);
    await signIn(admin.page, adminEmail, adminPassword);
    await admin.page.getByRole('link', { name: 'Admin' }).click();
    await admin.page.getByLabel('E-mail', { exact: true }).fill(newPublisherEmail);
    await admin.page.getByLabel('Name', { exact: true }).fill(`Publisher ${runId}`);
    await admin.page.getByLabel('Initial password').fill('publisher password 1');
    await admin.page.getByRole('button', { name: 'Create account' }).click();
    await admin.page.getByText('Account created.').waitFor();
    await admin.page.getByRole('cell', { name: newPublisherEmail }).waitFor();
    await shot(admin.page, 'admin');
    watched.delete(admin.page);
    await admin.context.close();
  });

  await step('(d) the new publisher signs in, creates and publishes a product', async () => {
    const np = await newPerson('new publisher');
    const p = np.page;
    watched.add(p);
    await signIn(p, newPublisherEmail, 'publisher password 1');
    await p.getByRole('link', { name: 'Publisher', exact: true }).click();
    await p.getByLabel('Title', { exact: true }).fill(`Web Test Game ${runId}`);
    await p.getByLabel('SKU').fill(`WEB-${runId.toUpperCase()}`);
    await p.getByRole('button', { name: 'Create draft' }).click();
    await p.getByText('Created as a draft').waitFor();
    // A cover, with the upload's progress bar (any PNG will do: a screenshot is one).
    const png = await p.screenshot();
    await p.locator('input[type=file]').first().setInputFiles({ name: 'cover.png', mimeType: 'image/png', buffer: png });
    await p.getByText('Cover uploaded.').waitFor();
    await p.getByRole('button', { name: 'Publish' }).first().click();
    await p.getByText('Published.').waitFor();
    await p.locator('img.publisher-product__cover').first().waitFor();
    await shot(p, 'publisher-new');
    const path = await p.locator('.publisher-product h2 a').first().getAttribute('href');
    newPublisher = { np, path };
  });

  await step('(d) the publisher creates an API client (its secret shown once) and a webhook endpoint', async () => {
    const p = newPublisher.np.page;
    const clients = p.locator('section.api-clients');
    const clientName = `Game server ${runId}`;
    await clients.getByLabel('Name', { exact: true }).fill(clientName);
    await clients.locator('#scope-sales-read').check();
    await clients.locator('#scope-webhooks-write').check();
    await clients.getByRole('button', { name: 'Create client' }).click();
    const secret = (await clients.locator('.secret__value').textContent()).trim();
    assert.match(secret, /^scs_/);
    await clients.getByText('it is not shown again').waitFor();
    const item = clients.locator('.api-client', { hasText: clientName });
    await item.getByText('sales:read webhooks:write').waitFor();
    await shot(p, 'publisher-api-client');
    // Shown once: after a reload the client is listed, its secret nowhere.
    await p.reload();
    await item.getByRole('button', { name: 'Revoke' }).waitFor();
    assert.equal(await clients.locator('.secret__value').count(), 0);
    assert.ok(!(await p.content()).includes(secret), 'the client secret is shown again');

    const hooks = p.locator('section.webhooks');
    await hooks.getByLabel('URL (https)').fill(receiver.url);
    await hooks.getByLabel('Description (optional)').fill('e2e receiver');
    assert.ok(await hooks.getByLabel('Order paid').isChecked(), 'order paid is offered by default');
    await hooks.getByRole('button', { name: 'Add endpoint' }).click();
    const whsec = (await hooks.locator('.webhooks__secret code').textContent()).trim();
    assert.match(whsec, /^whsec_/);
    receiver.trust(whsec);
    await hooks.locator('.webhook', { hasText: receiver.url }).getByText('Enabled').waitFor();
    await shot(p, 'publisher-webhooks');
    await hooks.getByRole('button', { name: 'Done' }).click();
  });

  await step('(d) its sale shows live and reaches the publisher\'s webhook, signed', async () => {
    const { np, path } = newPublisher;
    const p = np.page;
    // The shopper of (a) buys it while the publisher watches.
    await navigateInApp(page, path);
    const cover = page.locator('.gallery__stage img');
    await cover.waitFor();
    await page.waitForFunction(() => document.querySelector('.gallery__stage img')?.complete);
    assert.ok(await cover.evaluate((img) => img.naturalWidth > 0), 'the cover did not load');
    await shot(page, 'product-with-cover');
    await page.locator('.edition').first().getByRole('button').click();
    await navigateInApp(page, '/checkout');
    await page.getByRole('button', { name: 'Place order' }).click();
    await page.locator('.status', { hasText: 'Complete' }).waitFor({ timeout: 30000 });
    await p.locator('.sale').first().waitFor({ timeout: 20000 });
    await shot(p, 'publisher-sale');
    // The publisher's server heard of it: one verified order.paid for this order.
    const order = orderIdOf(page);
    await until('a verified order.paid at the receiver', () =>
      receiver.got.find((r) => r.verified && r.body?.type === 'order.paid' && r.body.data?.orderId === order));
    assert.equal(receiver.got.filter((r) => !r.verified).length, 0, 'a webhook failed its signature check');
    // The dashboard's delivery log shows it delivered (the attempt is recorded once the
    // receiver answered: refresh until it shows).
    const endpoint = p.locator('section.webhooks .webhook', { hasText: receiver.url });
    await endpoint.getByRole('button', { name: 'Show deliveries' }).click();
    const delivered = endpoint.locator('.webhook__log tbody tr', { hasText: 'order paid' }).filter({ hasText: 'succeeded' });
    await until('the delivery in the log', async () => {
      if ((await delivered.count()) > 0) return true;
      await endpoint.getByRole('button', { name: 'Refresh' }).click();
      return false;
    });
    await shot(p, 'publisher-webhook-log');
  });

  await step('(d) the publisher edits the title and a price; the store shows them', async () => {
    const { np, path } = newPublisher;
    const p = np.page;
    // By id: the item's text changes with the title.
    const productId = await p.locator('.publisher-product', { hasText: `Web Test Game ${runId}` }).first()
      .getAttribute('data-product-id');
    const item = p.locator(`.publisher-product[data-product-id="${productId}"]`);
    await item.getByRole('button', { name: 'Edit', exact: true }).click();
    const form = item.locator('form.edit-product');
    // A broken rule is shown next to its field, which gets the focus; nothing is sent.
    await form.getByLabel('Title', { exact: true }).fill(' ');
    await form.getByLabel('Price (EUR)').first().fill('12.345');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await form.locator('.field__error').nth(1).waitFor();
    assert.equal(await form.getByLabel('Title', { exact: true }).getAttribute('aria-invalid'), 'true');
    await p.waitForFunction(() => document.activeElement?.id?.startsWith('title-'), null, { timeout: 5000 });
    await shot(p, 'publisher-edit-errors');
    const newTitle = `Edited Game ${runId}`;
    await form.getByLabel('Title', { exact: true }).fill(newTitle);
    await form.getByLabel('Price (EUR)').first().fill('24.50');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await form.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    assert.equal(await form.locator('.field__error').count(), 0);
    await item.locator('h2 a', { hasText: newTitle }).waitFor();
    await item.locator('.edition__price', { hasText: '24.50' }).waitFor();
    await shot(p, 'publisher-edited');
    // The store shows the new title and price to a visitor (the shopper owns the game: their
    // page offers no edition).
    const visitor = await newPerson('visitor');
    watched.add(visitor.page);
    await visitor.page.goto(base + path);
    await visitor.page.getByRole('heading', { name: newTitle, level: 1 }).waitFor();
    await visitor.page.locator('.edition', { hasText: '24.50' }).first().waitFor();
    await shot(visitor.page, 'product-edited');
    watched.delete(visitor.page);
    await visitor.context.close();
    watched.delete(p);
    await np.context.close();
  });

  await step('the shopper is still signed in after all of it', async () => {
    await page.goto(base + '/orders');
    await page.locator('.account summary', { hasText: 'Web Tester' }).waitFor();
    await page.locator('.list__item').nth(1).waitFor();
  });

  await step('phone-sized storefront', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await navigateInApp(page, '/');
    await page.locator('.card').first().waitFor();
    await shot(page, 'storefront-phone');
  });
  console.log(`all steps passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
  receiver.close();
  if (failed()) process.exitCode = 1;
}


