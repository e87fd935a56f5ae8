// The portal's key page over a large tenant in a real browser (Debian's
// headless chromium driven by playwright-core). Started by
// portal_paging_test.py, which seeds KEYS keys named bulk-00001 (oldest)
// to bulk-NNNNN (newest). Prints the time to the first page as FIGURE
// lines (measured, never asserted); exits non-zero on the first failed
// check, naming it.
//
// Env: PORTAL_URL, TENANT, EMAIL, PASSWORD, SCREENSHOT_DIR, KEYS.
'use strict';

const assert = require('node:assert/strict');
const path = require('node:path');
const {chromium} = require('playwright-core');

const base = process.env.PORTAL_URL;
const tenant = process.env.TENANT;
const keys = Number(process.env.KEYS);
const keysPage = `${base}/t/${tenant}/portal/settings/api-keys`;

function step(name) {
  console.log('--', name);
}

// Polls (the page's CSP forbids waitForFunction's eval) until `read`
// returns something `ok` accepts; asserts it.
async function until(page, read, ok, what) {
  const deadline = Date.now() + 30000;
  let value = await read();
  while (!ok(value) && Date.now() < deadline) {
    await page.waitForTimeout(10);
    value = await read();
  }
  assert.ok(ok(value), `${what}: got ${JSON.stringify(value)}`);
  return value;
}

const pageInfo = (page) => page.locator('#page-info').textContent();
const names = (page) => page.locator('#keys-body td.key-name').allTextContents();

async function applyFilters(page, {search = '', state = '', sort = 'createdAt'}) {
  await page.locator('#f-search').fill(search);
  await page.locator('#f-state').selectOption(state);
  await page.locator('#f-sort').selectOption(sort);
  await page.locator('#key-filters button[type=submit]').click();
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  try {
    const context = await browser.newContext({viewport: {width: 1280, height: 800}});
    const page = await context.newPage();

    step('log in');
    await page.goto(keysPage);
    await page.waitForURL(`**/t/${tenant}/login`);
    await page.locator('#email').fill(process.env.EMAIL);
    await page.locator('#password').fill(process.env.PASSWORD);
    await page.locator('#password').press('Enter');
    await page.waitForURL(`**/t/${tenant}/portal/settings/api-keys`);

    step('time to the first page (navigation to 25 rows shown)');
    const times = [];
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      await page.goto(keysPage);
      await until(page, async () => (await names(page)).length, (n) => n === 25, 'first page rows');
      times.push(Date.now() - t0);
    }
    const sorted = [...times].sort((a, b) => a - b);
    console.log(`FIGURE portal key page, first page at ${keys} keys: ` +
                `median ${sorted[2]} ms of 5 loads (${times.join(', ')} ms)`);
    const first = await names(page);
    assert.equal(first[0], `bulk-${String(keys).padStart(5, '0')}`, 'newest first');
    const info = await pageInfo(page);
    // Exactly 10,000 keys: counted exactly (the count stops only beyond).
    assert.equal(info, `Page 1 of ${Math.ceil(keys / 25)} · ${keys} keys`, 'page info');
    await page.screenshot({path: path.join(process.env.SCREENSHOT_DIR, 'key-list-10k.png')});

    step('Next three times, then Previous: keyset pages in order');
    const seen = new Set(first);
    let previous = first;
    for (let n = 2; n <= 4; n++) {
      await page.locator('#next-page').click();
      await until(page, () => pageInfo(page), (t) => t.startsWith(`Page ${n} of`), `page ${n}`);
      const shown = await until(page, () => names(page),
                                (v) => v.length === 25 && v[0] !== previous[0], `rows of page ${n}`);
      for (const name of shown) {
        assert.ok(!seen.has(name), `page ${n} repeats ${name}`);
        seen.add(name);
      }
      // Newest first: page n starts right after page n - 1.
      const expected = keys - 25 * (n - 1);
      assert.equal(shown[0], `bulk-${String(expected).padStart(5, '0')}`, `first row of page ${n}`);
      previous = shown;
    }
    assert.ok(!(await page.locator('#prev-page').isDisabled()), 'Previous enabled');
    await page.locator('#prev-page').click();
    await until(page, () => pageInfo(page), (t) => t.startsWith('Page 3 of'), 'back to page 3');
    const back = await until(page, () => names(page), (v) => v[0] === `bulk-${String(keys - 50).padStart(5, '0')}`,
                             'page 3 again');
    assert.equal(back.length, 25);

    step('sort by name: the first page and the next start from bulk-00001');
    await applyFilters(page, {sort: 'name'});
    let shown = await until(page, () => names(page), (v) => v[0] === 'bulk-00001', 'sorted by name');
    assert.equal(shown[24], 'bulk-00025');
    await page.locator('#next-page').click();
    shown = await until(page, () => names(page), (v) => v[0] === 'bulk-00026', 'second page by name');
    assert.match(await pageInfo(page), /^Page 2 of/);

    step('search: one key');
    await applyFilters(page, {search: 'bulk-09999'});
    shown = await until(page, () => names(page), (v) => v.length === 1, 'search result');
    assert.deepEqual(shown, ['bulk-09999']);
    assert.match(await pageInfo(page), /^Page 1 of 1 · 1 keys$/);
    assert.ok(await page.locator('#next-page').isDisabled(), 'no next page');

    step('state filter: expiring keys only, each with the badge');
    // Keys 3k expire 1 + (3k % 400) days from now: within the default
    // 7-day warning when 3k % 400 <= 6; every 50th key is revoked (not
    // "expiring").
    let expected = 0;
    for (let s = 3; s <= keys; s += 3) {
      if (1 + (s % 400) <= 7 && s % 50 !== 0) expected += 1;
    }
    assert.ok(expected > 25, 'the seed has more than a page of expiring keys');
    await applyFilters(page, {state: 'expiring'});
    await until(page, () => pageInfo(page),
                (t) => t === `Page 1 of ${Math.ceil(expected / 25)} · ${expected} keys`,
                'expiring page info');
    const rows = page.locator('#keys-body tr');
    assert.equal(await rows.count(), 25, 'a full page of expiring keys');
    for (let i = 0; i < 25; i++) {
      assert.match(await rows.nth(i).textContent(), /expiring/, `row ${i} has the expiring badge`);
    }
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error('FAILED:', e && e.stack || e);
  process.exit(1);
});
