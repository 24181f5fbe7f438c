// Digital delivery in the SPA against a running store (issue 8's pages): the publisher's revenue
// chart, build upload with progress and "Make current", gift keys; a buyer redeems a key,
// downloads, and gets a refund inside the policy; a second buyer downloads, so the refund waits
// for review; an admin approves it and finds the order among all orders with its timeline.
// Exits non-zero on a failed step or any page error.
//
//   BASE_URL=https://127.0.0.1:8443 SHOTS=/tmp node e2e/delivery.test.mjs
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
const base = (process.env.BASE_URL ?? 'https://127.0.0.1:8443').replace(/\/$/, '');
const shots = process.env.SHOTS ?? '/tmp';
const adminEmail = process.env.ADMIN_EMAIL ?? 'admin@store.test';
const adminPassword = process.env.ADMIN_PASSWORD ?? 'admin-demo-password';
const publisherEmail = process.env.PUBLISHER_EMAIL ?? 'nebula@store.test';
const publisherPassword = process.env.PUBLISHER_PASSWORD ?? 'publisher-demo-password';
const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
let failures = 0;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--ignore-certificate-errors'] });
const errors = [];
async function person(label, width = 1280) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width, height: 900 }, acceptDownloads: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`${label}: pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`${label}: console: ${m.text().slice(0, 200)}`); });
  return page;
}
async function step(name, fn) {
  const t = Date.now();
  try {
    await fn();
    assert.deepEqual(errors, [], 'page errors');
    console.log(`ok   ${name} (${Date.now() - t} ms)`);
  } catch (e) {
    failures += 1;
    console.log(`FAIL ${name}: ${e.message.split('\n').slice(0, 4).join(' | ')}`);
    errors.splice(0);
    throw e;
  }
}
async function signIn(page, email, password) {
  await page.goto(base + '/sign-in');
  await page.getByLabel('E-mail', { exact: true }).fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.account summary').waitFor();
}
async function signUp(page, email, name) {
  await page.goto(base + '/sign-up');
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Name shown on your reviews').fill(name);
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('.account summary', { hasText: name }).waitFor();
}
async function topUp(page, euros) {
  await page.getByRole('link', { name: 'Wallet', exact: true }).click();
  await page.locator('.wallet__amount').waitFor();
  await page.getByLabel('Amount (EUR)').fill(String(euros));
  await page.getByRole('button', { name: '4242424242424242' }).click();
  await page.getByRole('button', { name: 'Top up', exact: true }).click();
  await page.getByText('added to your wallet').waitFor({ timeout: 20000 });
}
async function buy(page, path) {
  await page.goto(base + path);
  await page.locator('.edition', { hasText: /digital/i }).first().getByRole('button').click();
  await page.getByRole('link', { name: 'Go to the cart' }).click();
  await page.getByRole('link', { name: 'Checkout' }).click();
  await page.getByRole('button', { name: 'Place order' }).click();
  await page.waitForURL(/\/orders\//);
  await page.locator('.status', { hasText: 'Complete' }).waitFor({ timeout: 30000 });
  return page.url().split('/orders/')[1];
}
const shot = (page, name) => page.screenshot({ path: path.join(shots, `delivery-${name}.png`), fullPage: true });

const pub = await person('publisher');
let product, second, keys;
try {
  await step('visitor: covers on the storefront, the gallery moves with the arrow keys', async () => {
    const v = await person('visitor');
    await v.goto(base + '/');
    // The seed draws the newest demo products' pictures (covers 600 px wide, three screenshots);
    // a product of the other browser test may carry an uploaded cover of another size.
    const card = v.locator('.card', { has: v.locator('.card__cover img[srcset$=" 600w"]') }).first();
    await card.waitFor();
    assert.match(await card.locator('.card__cover img').getAttribute('srcset'), /\/media\/products\/.+ 320w/);
    await card.locator('a').first().click();
    const stage = v.locator('.gallery__stage');
    await stage.waitFor();
    const image = stage.locator('img');
    assert.match(await image.getAttribute('alt'), /^Cover of /);
    assert.match(await image.getAttribute('srcset'), / 320w, .+ 600w$/);
    await v.locator('.gallery__count', { hasText: '1 / 4' }).waitFor();
    // Arrows on the large picture, then on a thumbnail, which keeps the focus on the thumbnails.
    await stage.focus();
    await v.keyboard.press('ArrowRight');
    await v.locator('.gallery__count', { hasText: '2 / 4' }).waitFor();
    assert.match(await image.getAttribute('alt'), /^Screenshot 1 of /);
    const thumbs = v.locator('.gallery__thumb');
    assert.equal(await thumbs.count(), 4);
    assert.equal(await thumbs.nth(1).getAttribute('aria-current'), 'true');
    assert.equal(await thumbs.nth(3).locator('img').getAttribute('loading'), 'lazy');
    await thumbs.nth(1).focus();
    await v.keyboard.press('ArrowRight');
    await v.locator('.gallery__count', { hasText: '3 / 4' }).waitFor();
    assert.equal(await v.evaluate(() => document.activeElement?.id), 'gallery-thumb-2');
    await v.keyboard.press('ArrowLeft');
    await v.locator('.gallery__count', { hasText: '2 / 4' }).waitFor();
    await v.waitForFunction(() => document.querySelector('.gallery__image')?.complete);
    assert.ok(await image.evaluate((img) => img.naturalWidth > 0), 'the picture loads through the gateway');
    await shot(v, 'gallery');
    await v.context().close();
  });

  await step('publisher: revenue chart', async () => {
    await signIn(pub, publisherEmail, publisherPassword);
    await pub.getByRole('link', { name: 'Publisher' }).click();
    await pub.getByRole('heading', { name: 'Revenue' }).waitFor();
    await pub.locator('.chart__bar').first().waitFor({ state: 'attached' });
    assert.equal(await pub.locator('.chart__bar').count(), 30);
    console.log('   last bar:', await pub.locator('.chart__bar').last().getAttribute('aria-label'));
  });
  await step('publisher: builds (upload with progress, make current)', async () => {
    const items = pub.locator('.publisher-product');
    // A published product with a digital edition (once the list has loaded).
    await items.filter({ hasText: 'On sale' }).first().waitFor();
    const n = await items.count();
    const picks = [];
    for (let i = 0; i < n && picks.length < 2; i++) {
      const it = items.nth(i);
      const text = await it.innerText();
      if (/On sale/.test(text)) picks.push(i);
    }
    const item = items.nth(picks[0]);
    product = { title: (await item.locator('h2 a').innerText()).trim(), href: await item.locator('h2 a').getAttribute('href') };
    const item2 = items.nth(picks[1]);
    second = { title: (await item2.locator('h2 a').innerText()).trim(), href: await item2.locator('h2 a').getAttribute('href') };
    console.log('   product', product, 'second', second);
    await item.getByRole('button', { name: 'Builds' }).click();
    const form = item.getByRole('form', { name: 'New build' });
    await form.waitFor();
    await form.getByLabel('Version label').fill('e2e-' + run);
    await form.getByLabel('Release notes (Markdown, optional)').fill('Built by the **helper** test.');
    await form.getByLabel('File').setInputFiles({ name: `game ${run}.bin`, mimeType: 'application/octet-stream', buffer: Buffer.alloc(3 * 1024 * 1024, 7) });
    await form.getByRole('button', { name: 'Upload build' }).click();
    await form.locator('.alert--ok').waitFor({ timeout: 60000 });
    console.log('   ', await form.locator('.alert--ok').innerText());
    await form.getByRole('button', { name: 'Make current', exact: true }).click();
    await item.getByText('Made current').waitFor();
    await item.locator('.build', { hasText: 'e2e-' + run }).locator('.badge--current').waitFor();
    await shot(pub, 'builds');
  });
  await step('publisher: gift keys (generate, poll until ready, copy all)', async () => {
    const select = pub.getByLabel('Edition', { exact: true });
    const value = await select.locator(`optgroup[label="${product.title}"] option`).filter({ hasText: '(digital)' }).first().getAttribute('value');
    await select.selectOption(value);
    await pub.getByLabel('Number of keys').fill('2');
    await pub.getByLabel('Label (optional)').fill('e2e ' + run);
    await pub.getByRole('button', { name: 'Generate keys' }).click();
    const batch = pub.locator('.batch', { hasText: 'e2e ' + run });
    await batch.getByRole('button', { name: 'Copy all' }).waitFor({ timeout: 20000 });
    await batch.getByRole('button', { name: 'Copy all' }).click();
    await batch.getByText('Copied 2 keys').waitFor();
    keys = (await pub.evaluate(() => navigator.clipboard.readText())).split('\n');
    assert.equal(keys.length, 2);
    console.log('   keys', keys);
  });
} catch (e) { await shot(pub, 'fail-pub'); }

const buyer = await person('buyer', 390);
let boughtQ;
try {
  await step('buyer: redeem a key (errors, success), download', async () => {
    await signUp(buyer, `e2e-redeemer-${run}@store.test`, 'Helper U');
    await buyer.getByRole('link', { name: 'Library', exact: true }).click();
    await buyer.getByLabel('Gift key').fill('AAAAA-AAAAA-AAAAA-AAAAA');
    await buyer.getByRole('button', { name: 'Redeem' }).click();
    await buyer.locator('#redeem-outcome [role=alert]').waitFor();
    console.log('   unknown:', await buyer.locator('#redeem-outcome').innerText());
    await buyer.getByLabel('Gift key').fill(keys[0].toLowerCase().replace(/-/g, ''));
    await buyer.getByRole('button', { name: 'Redeem' }).click();
    await buyer.getByText('is now in your library').waitFor({ timeout: 15000 });
    console.log('   ok:', await buyer.locator('#redeem-outcome').innerText());
    await buyer.getByLabel('Gift key').fill(keys[0]);
    await buyer.getByRole('button', { name: 'Redeem' }).click();
    await buyer.locator('#redeem-outcome [data-code=CONFLICT]').waitFor();
    const card = buyer.locator('.library__item', { hasText: product.title });
    await card.getByRole('button', { name: 'Download' }).first().waitFor();
    const [dl] = await Promise.all([buyer.waitForEvent('download'), card.getByRole('button', { name: 'Download' }).first().click()]);
    const size = (await import('node:fs')).statSync(await dl.path()).size;
    console.log('   downloaded', dl.suggestedFilename(), size, 'bytes');
    assert.equal(size, 3 * 1024 * 1024, 'the downloaded build has the uploaded size');
    await card.locator('.download .alert--ok').waitFor();
    await shot(buyer, 'library');
  });
  await step('buyer: buy a second game (publisher revenue live), refund within the policy', async () => {
    await topUp(buyer, 100);
    const before = await pub.locator('.stat', { hasText: 'Sales, all time' }).locator('dd').innerText();
    boughtQ = await buy(buyer, second.href);
    await pub.locator('.stat', { hasText: 'Sales, all time' }).locator('dd').filter({ hasNotText: before }).waitFor({ timeout: 15000 });
    console.log('   revenue sales', before, '->', await pub.locator('.stat', { hasText: 'Sales, all time' }).locator('dd').innerText());
    await buyer.getByRole('button', { name: 'Request a refund' }).waitFor();
    await buyer.getByRole('button', { name: 'Request a refund' }).click();
    await buyer.getByText('Tell us why').waitFor();
    await buyer.getByLabel('Reason').fill('Changed my mind');
    await buyer.getByRole('button', { name: 'Request a refund' }).click();
    await buyer.locator('.page .status', { hasText: 'Refunded' }).first().waitFor({ timeout: 30000 });
    console.log('   panel:', (await buyer.locator('.refund').innerText()).replace(/\n/g, ' | '));
    await shot(buyer, 'refunded');
  });
} catch (e) { await shot(buyer, 'fail-buyer'); }

const v = await person('buyer2');
let orderV;
try {
  await step('buyer 2: buy, download, refund goes to review', async () => {
    await signUp(v, `e2e-downloader-${run}@store.test`, 'Helper V');
    await topUp(v, 100);
    orderV = await buy(v, product.href);
    await v.goto(base + '/library');
    const card = v.locator('.library__item', { hasText: product.title });
    const [dl] = await Promise.all([v.waitForEvent('download'), card.getByRole('button', { name: 'Download' }).first().click()]);
    await v.goto(base + '/orders/' + orderV);
    await v.getByLabel('Reason').fill('Does not start');
    await v.getByRole('button', { name: 'Request a refund' }).click();
    await v.getByText('Waiting for review').waitFor({ timeout: 15000 });
    console.log('   panel:', (await v.locator('.refund').innerText()).replace(/\n/g, ' | '));
  });
} catch (e) { await shot(v, 'fail-v'); }

const admin = await person('admin');
let bannedEmail;
try {
  await step('admin: refund requests → approve; the buyer sees REFUNDED', async () => {
    await signIn(admin, adminEmail, adminPassword);
    await admin.getByRole('link', { name: 'Refunds' }).click();
    const card = admin.locator('.refund-request', { hasText: 'Order ' + orderV.slice(0, 8) });
    await card.waitFor();
    await card.getByLabel('Note for the buyer (optional)').fill('Goodwill');
    await shot(admin, 'refunds');
    await card.getByRole('button', { name: 'Approve' }).click();
    await admin.getByText('Approved the refund of order').waitFor();
    await v.locator('.page .status', { hasText: 'Refunded' }).first().waitFor({ timeout: 40000 });
    console.log('   buyer 2 panel:', (await v.locator('.refund').innerText()).replace(/\n/g, ' | '));
  });
  await step('admin: all orders, filter, expand the timeline, page', async () => {
    await admin.getByRole('link', { name: 'All orders' }).click();
    await admin.getByLabel('Status').selectOption('REFUNDED');
    // The filtered list replaces the one on screen: wait until it shows only refunded orders,
    // or the click lands on whichever row has moved under the pointer meanwhile.
    await admin.waitForFunction(() => {
      const statuses = [...document.querySelectorAll('.admin-order [data-status]')];
      return statuses.length > 0 && statuses.every((s) => s.dataset.status === 'REFUNDED');
    });
    const row = admin.locator('.admin-order', { hasText: 'Order ' + orderV.slice(0, 8) });
    await row.waitFor();
    // The buyer by e-mail (one DataLoader statement for the page's buyers), not an account id.
    await row.locator('.admin-order__buyer', { hasText: `e2e-downloader-${run}@store.test` }).waitFor();
    await row.getByRole('button', { name: 'Order ' + orderV.slice(0, 8) }).click();
    // Words for the admin too; the step's code stays in data-step.
    await row.locator('.timeline__step[data-step="REFUND_APPROVED"]', { hasText: 'Refund approved' }).first().waitFor();
    console.log('   timeline:', (await row.locator('.timeline').innerText()).replace(/\n/g, ' | ').slice(0, 300));
    await admin.getByLabel('Status').selectOption('');
    // Paging: Next where there is a next page (a fresh store may hold fewer orders than a page).
    const next = admin.getByRole('button', { name: 'Next' });
    if (await next.isEnabled()) {
      await next.click();
      await admin.getByRole('button', { name: 'Previous' }).click();
    } else {
      assert.equal(await admin.getByRole('button', { name: 'Previous' }).isEnabled(), false);
    }
    await shot(admin, 'orders');
  });
  await step('admin: accounts page through 200, search as you type, ban with a reason', async () => {
    // 200 accounts of this run, made through the API with the admin's own token.
    const token = await admin.evaluate(() => JSON.parse(localStorage.getItem('store.session')).accessToken);
    const adminQueries = readFileSync(new URL('../web/queries/admin.graphql', import.meta.url), 'utf8');
    const create = async (i) => {
      const res = await admin.request.post(base + '/graphql', {
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        // The app's own operation (the store runs only those for people: GRAPHQL_TRUSTED_DOCUMENTS),
        // sent as graphql_client would: the whole file, with the operation's name.
        data: {
          query: adminQueries,
          operationName: 'CreateAccount',
          variables: { input: { email: `e2e-page-${run}-${String(i).padStart(3, '0')}@store.test`, password: 'paging-password-1', displayName: `Paging ${i}`, role: 'PUBLISHER' } },
        },
      });
      const body = await res.json();
      assert.ok(body.data?.createAccount?.id, `createAccount ${i}: ${JSON.stringify(body.errors)}`);
    };
    for (let i = 0; i < 200; i += 10) await Promise.all(Array.from({ length: 10 }, (_, k) => create(i + k)));
    await admin.getByRole('link', { name: 'Admin', exact: true }).click();
    // No Enter: the list follows the typing.
    await admin.getByLabel('Search by e-mail or name').pressSequentially(`e2e-page-${run}`);
    // The list is busy until the results on screen are those of the whole word typed.
    await admin.locator('#account-results[aria-busy="false"]').waitFor();
    const rows = admin.locator('section[aria-labelledby=accounts-title] tbody tr');
    await rows.filter({ hasText: `e2e-page-${run}-` }).first().waitFor();
    const seen = new Set();
    for (let pageNo = 1; ; pageNo += 1) {
      const emails = (await rows.locator('td:nth-child(2)').allInnerTexts()).map((t) => t.trim());
      assert.ok(emails.length > 0 && emails.length <= 50, `page ${pageNo} holds ${emails.length} rows`);
      for (const e of emails) { assert.ok(!seen.has(e), `${e} on two pages`); seen.add(e); }
      const next = admin.getByRole('button', { name: 'Next' }).first();
      if (!(await next.isEnabled())) break;
      const first = emails[0];
      await next.click();
      await rows.first().filter({ hasNotText: first }).waitFor();
    }
    assert.equal(seen.size, 200, 'paging shows every account of the search once');
    // Ban one: asked again, a reason required.
    const row = rows.filter({ hasText: `e2e-page-${run}-` }).first();
    const email = (await row.locator('td:nth-child(2)').innerText()).trim();
    await row.getByRole('button', { name: 'Ban' }).click();
    await row.getByRole('button', { name: 'Ban the account' }).click();
    await row.getByText('Give a reason first.').waitFor();
    await row.getByLabel('Why? (kept in the audit log)').fill('Card testing from this account');
    await row.getByRole('button', { name: 'Ban the account' }).click();
    await admin.getByText(`${email} is banned and signed out everywhere.`).waitFor();
    await rows.filter({ hasText: email }).filter({ hasText: 'Banned' }).waitFor();
    await shot(admin, 'accounts');
    bannedEmail = email;
  });
  await step('admin: the audit log shows the ban, by whom and why', async () => {
    assert.ok(bannedEmail, 'the ban step banned an account');
    await admin.getByRole('link', { name: 'Audit log' }).click();
    const entry = admin.locator('.audit__entry[data-action="ACCOUNT_BANNED"]', { hasText: bannedEmail });
    await entry.waitFor();
    const text = await entry.innerText();
    assert.ok(text.includes(`${adminEmail} banned ${bannedEmail} — reason: Card testing from this account`), text);
    await entry.locator('time[datetime]').waitFor();
    console.log('   audit:', text.replace(/\n/g, ' | '));
    await shot(admin, 'audit');
  });
  await step('admin: orders filtered by typing a buyer\'s e-mail, then every buyer again', async () => {
    const buyerEmail = `e2e-downloader-${run}@store.test`;
    await admin.getByRole('link', { name: 'All orders' }).click();
    // No Enter: the matches follow the typing.
    await admin.getByLabel('Buyer', { exact: true }).pressSequentially(`e2e-downloader-${run}`);
    await admin.getByRole('list', { name: 'Matching buyers' }).getByRole('button', { name: buyerEmail }).click();
    await admin.getByText(`Showing the orders of ${buyerEmail}.`).waitFor();
    // The list is replaced: wait until it holds that buyer's one order only.
    await admin.waitForFunction((short) => {
      const rows = [...document.querySelectorAll('.admin-order')];
      return rows.length === 1 && rows[0].textContent.includes('Order ' + short);
    }, orderV.slice(0, 8));
    await shot(admin, 'orders-by-buyer');
    await admin.getByRole('button', { name: 'Show all buyers' }).click();
    await admin.getByText('Showing every buyer\'s orders.').waitFor();
    await admin.waitForFunction(() => document.querySelectorAll('.admin-order').length > 1);
    assert.equal(await admin.getByLabel('Buyer', { exact: true }).inputValue(), '');
  });
  await step('admin: unlist a product only with a reason, then restore it', async () => {
    await admin.getByRole('link', { name: 'Admin', exact: true }).click();
    const rows = admin.locator('section[aria-labelledby="moderation-title"] li.list__item');
    const row = rows.filter({ hasText: 'On sale' }).first();
    await row.waitFor();
    const title = (await row.locator('a').first().innerText()).trim();
    await row.getByRole('button', { name: 'Unlist' }).click();
    await row.getByRole('button', { name: 'Take it off the store' }).click();
    await row.getByText('Give a reason first.').waitFor();
    await row.getByLabel('Why? (the publisher reads this; kept in the audit log)').fill('Counterfeit cover art');
    await row.getByRole('button', { name: 'Take it off the store' }).click();
    await admin.getByRole('status').filter({ hasText: `${title} is taken off the store.` }).waitFor();
    // By its link's exact title: another title may contain this one.
    const moderated = rows.filter({ has: admin.getByRole('link', { name: title, exact: true }) });
    await moderated.filter({ hasText: 'Taken off the store by moderation: Counterfeit cover art' }).waitFor();
    await shot(admin, 'moderation');
    // The audit log has it, with the reason.
    await admin.getByRole('link', { name: 'Audit log' }).click();
    const entry = admin.locator('.audit__entry[data-action="PRODUCT_UNLISTED"]', { hasText: title }).first();
    await entry.waitFor();
    const said = await entry.innerText();
    assert.ok(said.includes(`${adminEmail} took ${title} off the store — reason: Counterfeit cover art`), said);
    await admin.getByRole('link', { name: 'Admin', exact: true }).click();
    await moderated.getByRole('button', { name: 'Restore' }).click();
    await moderated.getByRole('button', { name: 'Put it back in the store' }).click();
    await admin.getByRole('status').filter({ hasText: `${title} is back in the store.` }).waitFor();
    await moderated.filter({ hasText: 'On sale' }).waitFor();
  });
} catch (e) { await shot(admin, 'fail-admin'); }
await browser.close();
if (failures > 0) {
  console.log(`${failures} step(s) failed`);
  process.exit(1);
}
console.log('all delivery steps passed');
