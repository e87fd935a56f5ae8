// The portal's webhooks page and the key page's decoy and straggler views
// in a real browser (Debian's headless chromium driven by playwright-core,
// from tests/e2e/portal/node_modules). Started by
// portal_webhooks_test.py, which runs the server, the gateway and an HTTPS
// receiver (RECEIVER_URL) and checks the signatures of what it received
// with the secrets this flow prints as `SECRET <phase> <secret>` lines.
// Exits non-zero on the first failed check, naming it.
//
// Env: PORTAL_URL, TENANT, EMAIL, PASSWORD, RECEIVER_URL, SCREENSHOT_DIR.
'use strict';

const assert = require('node:assert/strict');
const path = require('node:path');
const {chromium} = require('playwright-core');

const base = process.env.PORTAL_URL;
const tenant = process.env.TENANT;
const hooksPage = `${base}/t/${tenant}/portal/settings/webhooks`;
const keysPage = `${base}/t/${tenant}/portal/settings/api-keys`;
const keysApi = `${base}/t/${tenant}/api/v1/admin/api-keys`;
const MARKUP = '<img src=x onerror=alert(1)>';

function step(name) {
  console.log('--', name);
}

// Polls (the page's CSP forbids waitForFunction's eval) until `read`
// returns something `ok` accepts; asserts it.
async function until(page, read, ok, what, refresh) {
  const deadline = Date.now() + 30000;
  let value = await read();
  while (!ok(value) && Date.now() < deadline) {
    if (refresh) await refresh();
    await page.waitForTimeout(50);
    value = await read();
  }
  assert.ok(ok(value), `${what}: got ${JSON.stringify(value)}`);
  return value;
}

const hookRows = (page) => page.locator('#hooks-body tr');
const logStatuses = (page) => page.locator('#log-body td.delivery-status').allTextContents();
const logTypes = async (page) => (await page.locator('#log-body td.delivery-type')
    .allTextContents()).map((t) => t.replace(/evt_.*/, ''));

// Reads the show-once secret, closes the dialog, checks it was cleared.
async function takeSecret(page, pattern) {
  await page.locator('#secret-dialog').waitFor({state: 'visible'});
  const value = await page.locator('#secret-value').inputValue();
  assert.match(value, pattern, 'a whole secret is shown once');
  await page.locator('#secret-done').click();
  await page.locator('#secret-dialog').waitFor({state: 'hidden'});
  assert.equal(await page.locator('#secret-value').inputValue(), '', 'secret cleared');
  return value;
}

async function hookButton(page, label, name) {
  await page.getByRole('button', {name: `${label} endpoint ${name}`, exact: true}).click();
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  const dialogs = [];
  try {
    const context = await browser.newContext({viewport: {width: 1280, height: 900}});
    const page = await context.newPage();
    page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });

    step('log in, open the webhooks page from the navigation');
    await page.goto(keysPage);
    await page.waitForURL(`**/t/${tenant}/login`);
    await page.locator('#email').fill(process.env.EMAIL);
    await page.locator('#password').fill(process.env.PASSWORD);
    await page.locator('#password').press('Enter');
    await page.waitForURL(`**/t/${tenant}/portal/settings/api-keys`);
    await page.locator('#nav-webhooks').click();
    await page.waitForURL(`**/t/${tenant}/portal/settings/webhooks`);
    await page.locator('#hooks-empty').waitFor({state: 'visible'});

    step('a refused URL names its field and adds nothing');
    await page.locator('#create-open').click();
    await page.locator('#hook-url').fill('http://hooks.example.com/x');
    await page.locator('#hook-submit').click();
    await until(page, () => page.locator('#hook-error').textContent(),
                (t) => /\(url\)$/.test(t), 'the URL error');
    await page.locator('#hook-cancel').click();
    assert.equal(await hookRows(page).count(), 0);

    step('add an endpoint: the secret is shown once; markup stays text');
    await page.locator('#create-open').click();
    await page.locator('#hook-url').fill(process.env.RECEIVER_URL);
    await page.locator('#hook-description').fill(MARKUP);
    await page.locator('#event-boxes input[value="api_key.created"]').check();
    await page.locator('#hook-submit').click();
    const first = await takeSecret(page, /^whsec_[0-9A-Za-z]{43}$/);
    console.log('SECRET first ' + first);
    await until(page, () => hookRows(page).count(), (n) => n === 1, 'one endpoint');
    const row = hookRows(page).first();
    assert.equal(await row.locator('td.hook-description').textContent(), MARKUP);
    assert.equal(await page.locator('#hooks-body img').count(), 0, 'no markup rendered');
    assert.equal(await row.locator('td.hook-events').textContent(), 'api_key.created');
    assert.match(await row.locator('td.hook-secret').textContent(),
                 new RegExp('^' + first.slice(0, 10) + '…'));
    assert.equal(await row.locator('td.hook-status').textContent(), 'enabled');
    await page.screenshot({path: path.join(process.env.SCREENSHOT_DIR, 'webhooks.png'),
                           fullPage: true});

    step('send a test: the log shows the ping delivered with HTTP 200');
    await hookButton(page, 'Send a test ping to', MARKUP);
    await page.locator('#log').waitFor({state: 'visible'});
    await until(page, () => logStatuses(page), (s) => s.length === 1 && s[0] === 'delivered',
                'the ping delivered', () => page.locator('#log-refresh').click());
    assert.deepEqual(await logTypes(page), ['ping']);
    assert.equal(await page.locator('#log-body tr td').nth(4).textContent(), '200');
    await page.screenshot({path: path.join(process.env.SCREENSHOT_DIR, 'webhook-deliveries.png'),
                           fullPage: true});

    step('edit: every event, a plain description; only the changes are sent');
    await hookButton(page, 'Edit', MARKUP);
    await page.locator('#hook-dialog').waitFor({state: 'visible'});
    assert.equal(await page.locator('#hook-url').inputValue(), process.env.RECEIVER_URL);
    await page.locator('#hook-description').fill('SIEM');
    await page.locator('#event-boxes input[value="api_key.created"]').uncheck();
    await page.locator('#hook-submit').click();
    await page.locator('#hook-dialog').waitFor({state: 'hidden'});
    await until(page, () => hookRows(page).first().locator('td.hook-events').textContent(),
                (t) => t === 'every event', 'subscribed to every event');
    assert.equal(await hookRows(page).first().locator('td.hook-description').textContent(),
                 'SIEM');

    step('disable: no test button; enable again');
    await hookButton(page, 'Disable', 'SIEM');
    await until(page, () => hookRows(page).first().locator('td.hook-status').textContent(),
                (t) => t === 'disabled', 'disabled');
    assert.equal(await page.getByRole('button',
        {name: 'Send a test ping to endpoint SIEM', exact: true}).count(), 0);
    await hookButton(page, 'Enable', 'SIEM');
    await until(page, () => hookRows(page).first().locator('td.hook-status').textContent(),
                (t) => t === 'enabled', 'enabled again');

    step('rotate the secret with an overlap: the next ping is signed by both');
    await hookButton(page, 'Rotate the secret of', 'SIEM');
    await page.locator('#rotate-dialog').waitFor({state: 'visible'});
    await page.locator('#rotate-grace').selectOption('3600');
    await page.locator('#rotate-submit').click();
    const second = await takeSecret(page, /^whsec_[0-9A-Za-z]{43}$/);
    assert.notEqual(second, first);
    console.log('SECRET second ' + second);
    await until(page, () => hookRows(page).first().locator('td.hook-secret').textContent(),
                (t) => t.startsWith(second.slice(0, 10)) && t.includes('old secret signs too'),
                'the new prefix and the overlap');
    await hookButton(page, 'Send a test ping to', 'SIEM');
    await until(page, () => logStatuses(page),
                (s) => s.length === 2 && s.every((x) => x === 'delivered'),
                'both pings delivered', () => page.locator('#log-refresh').click());

    step('the delivery log pages by token: 20 a page, Next and Previous');
    for (let i = 0; i < 20; i++) {
      await page.evaluate(async (url) => {
        const csrf = document.cookie.split('; ').find((c) => c.startsWith('lumo_csrf='));
        const r = await fetch(url, {method: 'POST', credentials: 'same-origin',
          headers: {'Content-Type': 'application/json', 'X-Requested-With': 'XMLHttpRequest',
                    'X-CSRF-Token': csrf.split('=')[1]}, body: '{}'});
        if (r.status !== 202) throw new Error('test ping: HTTP ' + r.status);
      }, `${base}/t/${tenant}/api/v1/admin/webhooks/` +
         (await hookRows(page).first().getAttribute('data-hook-id')) + '/test');
    }
    await page.locator('#log-filters button[type=submit]').click();
    await until(page, () => page.locator('#log-info').textContent(),
                (t) => t === 'Page 1 of 2 · 22 deliveries', 'page info');
    assert.equal(await page.locator('#log-body tr').count(), 20);
    const firstPage = await page.locator('#log-body tr').evaluateAll(
        (rows) => rows.map((r) => r.dataset.deliveryId));
    await page.locator('#log-next').click();
    await until(page, () => page.locator('#log-body tr').count(), (n) => n === 2, 'page 2');
    const secondPage = await page.locator('#log-body tr').evaluateAll(
        (rows) => rows.map((r) => r.dataset.deliveryId));
    const ids = [...firstPage, ...secondPage].map(Number);
    assert.deepEqual(ids, [...ids].sort((a, b) => b - a), 'newest first, no repeats');
    assert.equal(new Set(ids).size, 22);
    assert.ok(await page.locator('#log-next').isDisabled());
    await page.locator('#log-prev').click();
    await until(page, () => page.locator('#log-body tr').count(), (n) => n === 20, 'page 1');
    step('the status filter');
    await until(page, async () => {
      await page.locator('#log-status').selectOption('delivered');
      await page.locator('#log-filters button[type=submit]').click();
      await page.waitForTimeout(100);
      return page.locator('#log-info').textContent();
    }, (t) => t === 'Page 1 of 2 · 22 deliveries', 'every ping delivered');
    assert.ok((await logStatuses(page)).every((s) => s === 'delivered'));

    step('delete asks, names the endpoint, and removes it');
    await hookButton(page, 'Delete', 'SIEM');
    await page.locator('#confirm-dialog').waitFor({state: 'visible'});
    assert.ok((await page.locator('#confirm-text').textContent())
        .includes(process.env.RECEIVER_URL));
    await page.locator('#confirm-ok').click();
    await page.locator('#hooks-empty').waitFor({state: 'visible'});
    assert.ok(await page.locator('#log').isHidden());

    step('a decoy from the key page: listed only among decoys');
    await page.locator('#nav-keys').click();
    await page.waitForURL(`**/portal/settings/api-keys`);
    await page.locator('#keys-loading').waitFor({state: 'hidden'});
    await page.locator('#create-open').click();
    await page.locator('#key-name').fill('bait');
    await page.locator('#scope-boxes input[value="admin:write"]').check();
    await page.locator('#key-decoy').check();
    await page.locator('#create-submit').click();
    await takeSecretKey(page);
    const names = () => page.locator('#keys-body td.key-name').allTextContents();
    assert.ok(!(await names()).includes('bait'), 'a decoy is not among the keys');
    await page.locator('#f-decoy').selectOption('true');
    await page.locator('#key-filters button[type=submit]').click();
    await until(page, names, (n) => n.length === 1 && n[0] === 'bait', 'the decoy listed');
    assert.match(await page.locator('#keys-body td.key-status').textContent(), /decoy/);
    await page.locator('#f-decoy').selectOption('');
    await page.locator('#key-filters button[type=submit]').click();

    step('rotation stragglers: who still presents the old secret');
    await page.locator('#create-open').click();
    await page.locator('#key-name').fill('rotating');
    await page.locator('#scope-boxes input[value="admin:read"]').check();
    await page.locator('#create-submit').click();
    const oldKey = await takeSecretKey(page);
    await page.getByRole('button', {name: 'Rotate key rotating', exact: true}).click();
    await page.locator('#rotate-grace').selectOption('86400');
    await page.locator('#rotate-submit').click();
    await takeSecretKey(page);
    for (let i = 0; i < 3; i++) {
      const r = await fetch(keysApi + '?limit=1', {headers: {
        'Authorization': 'Bearer ' + oldKey, 'User-Agent': 'straggler-browser-test/1'}});
      assert.equal(r.status, 200, 'the old secret works during the grace period');
    }
    await page.reload();
    await page.locator('#keys-loading').waitFor({state: 'hidden'});
    const stragglers = page.getByRole('button',
        {name: 'Clients still using the old secret of key rotating', exact: true});
    await stragglers.click();
    await page.locator('#stragglers-dialog').waitFor({state: 'visible'});
    const rows = () => page.locator('#stragglers-body tr').evaluateAll(
        (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    await until(page, rows,
                (r) => r.length === 1 && r[0][1] === 'straggler-browser-test/1' && r[0][3] === '3',
                'the straggler listed with its 3 uses', async () => {
                  await page.locator('#stragglers-close').click();
                  await stragglers.click();
                  await page.waitForTimeout(200);
                });
    assert.equal((await rows())[0][0], '127.0.0.1');
    await page.screenshot({path: path.join(process.env.SCREENSHOT_DIR, 'stragglers.png'),
                           fullPage: true});
    await page.locator('#stragglers-close').click();
    assert.deepEqual(dialogs, [], 'no script dialog ever opened');
  } finally {
    await browser.close();
  }
}

// Reads a shown API key from the key page's show-once dialog and closes it.
async function takeSecretKey(page) {
  await page.locator('#secret-dialog').waitFor({state: 'visible'});
  const key = await page.locator('#new-key-value').inputValue();
  assert.match(key, /^lmk_[0-9A-Za-z]{12}_[0-9A-Za-z]{49}$/, 'a full key is shown');
  await page.locator('#secret-done').click();
  await page.locator('#secret-dialog').waitFor({state: 'hidden'});
  return key;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
