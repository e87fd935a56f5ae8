// The portal in a real browser (Debian's headless chromium driven by
// playwright-core; no browser download). Started by portal_browser_test.py,
// which runs the server and gateway and creates the tenant and its admin.
// Exits non-zero on the first failed check, naming it.
//
// Env: PORTAL_URL (http://127.0.0.1:PORT), TENANT, EMAIL, PASSWORD,
// SCREENSHOT_DIR.
'use strict';

const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const {chromium} = require('playwright-core');

const base = process.env.PORTAL_URL;
const tenant = process.env.TENANT;
const email = process.env.EMAIL;
const password = process.env.PASSWORD;
const shots = process.env.SCREENSHOT_DIR || '.';
const keysApi = `${base}/t/${tenant}/api/v1/admin/api-keys`;

function step(name) {
  console.log('--', name);
}

// Calls the admin API with an API key, as a tenant's backend would.
async function callWithKey(key) {
  const response = await fetch(keysApi, {headers: {Authorization: `Bearer ${key}`}});
  return response.status;
}

// The usage table of the page: [{start, calls, failures}] per row.
async function usageTable(page) {
  return page.locator('#usage-body tr').evaluateAll((rows) => rows.map((tr) => ({
    start: tr.dataset.start,
    calls: Number(tr.children[1].textContent),
    failures: Number(tr.children[2].textContent),
  })));
}

// The API's buckets for the path the page read, in the table's shape.
async function usageFromApi(page) {
  const path = await page.locator('#usage-table').getAttribute('data-path');
  return page.evaluate(async (p) => {
    const r = await fetch(p);
    const doc = await r.json();
    return doc.data.buckets.map((b) => ({start: b.start, calls: b.counts.calls || 0,
                                         failures: b.counts.failures || 0}));
  }, path);
}

// Waits until the page's table shows what the API answers for the same
// range, read before and after the page drew it (the batched writer may add
// the last calls' counts meanwhile: then the page is reloaded and compared
// again). Fails after a generous deadline.
async function usageMatchesApi(page, reload) {
  const deadline = Date.now() + 60000;
  for (;;) {
    const before = await usageFromApi(page);
    const shown = await usageTable(page);
    const after = await usageFromApi(page);
    if (JSON.stringify(before) === JSON.stringify(after) &&
        JSON.stringify(shown) === JSON.stringify(after)) {
      return shown;
    }
    assert.ok(Date.now() < deadline, 'usage table never matched the API: ' +
              JSON.stringify({shown, after}));
    await reload();
    await page.locator('#usage-loading').waitFor({state: 'hidden'});
  }
}

// The page's suspicious-per-day table and the API's numbers for the same
// range: [{day, count}], equal once the writer has written every event.
async function suspiciousMatchesApi(page, reload) {
  const deadline = Date.now() + 60000;
  const fromApi = async () => {
    const path = await page.locator('#usage-table').getAttribute('data-path');
    return page.evaluate(async (p) => {
      const doc = await (await fetch(p)).json();
      return doc.data.suspiciousPerDay.map((d) => ({day: d.day, count: Number(d.count || 0)}));
    }, path);
  };
  for (;;) {
    const before = await fromApi();
    const shown = await page.locator('#suspicious-body tr').evaluateAll((rows) =>
      rows.map((tr) => ({day: tr.dataset.day, count: Number(tr.children[1].textContent)})));
    const after = await fromApi();
    if (JSON.stringify(before) === JSON.stringify(after) &&
        JSON.stringify(shown) === JSON.stringify(after)) {
      return shown;
    }
    assert.ok(Date.now() < deadline, 'suspicious table never matched the API: ' +
              JSON.stringify({shown, after}));
    await reload();
    await page.locator('#usage-loading').waitFor({state: 'hidden'});
  }
}

async function rowCount(page) {
  return page.locator('#keys-body tr').count();
}

async function confirmOn(page, buttonLabel, keyName) {
  await page.getByRole('button', {name: `${buttonLabel} key ${keyName}`, exact: true}).click();
  const dialog = page.locator('#confirm-dialog');
  await dialog.waitFor({state: 'visible'});
  // The confirmation names the key.
  assert.ok((await page.locator('#confirm-text').textContent()).includes(keyName),
            'confirmation names the key');
  await page.locator('#confirm-ok').click();
  await dialog.waitFor({state: 'hidden'});
}

// Rotates through the rotate dialog with the grace period `grace` (its
// option value, seconds).
async function rotateOn(page, keyName, grace) {
  await page.getByRole('button', {name: `Rotate key ${keyName}`, exact: true}).click();
  const dialog = page.locator('#rotate-dialog');
  await dialog.waitFor({state: 'visible'});
  assert.ok((await page.locator('#rotate-text').textContent()).includes(keyName),
            'the rotate dialog names the key');
  await page.locator('#rotate-grace').selectOption(grace);
  await page.locator('#rotate-submit').click();
  await dialog.waitFor({state: 'hidden'});
}

// The row of the key named `name`.
function rowOf(page, name) {
  return page.locator('#keys-body tr').filter({
    has: page.locator('td.key-name', {hasText: new RegExp(`^${name}$`)})});
}

async function waitForRowText(page, name, pattern) {
  const deadline = Date.now() + 10000;
  while (!pattern.test(await rowOf(page, name).textContent()) && Date.now() < deadline) {
    await page.waitForTimeout(20);
  }
  assert.match(await rowOf(page, name).textContent(), pattern);
}

async function readShownKey(page) {
  const dialog = page.locator('#secret-dialog');
  await dialog.waitFor({state: 'visible'});
  const notice = await page.locator('#secret-notice').textContent();
  assert.match(notice, /won't see it again/, 'show-once notice');
  const key = await page.locator('#new-key-value').inputValue();
  assert.match(key, /^lmk_[0-9A-Za-z]{12}_[0-9A-Za-z]{49}$/, 'a full key is shown');
  return key;
}

async function closeShownKey(page) {
  await page.locator('#secret-done').click();
  await page.locator('#secret-dialog').waitFor({state: 'hidden'});
  // The secret does not stay in the page once the dialog is closed. The
  // dialog's `close` event (which clears it) is dispatched as a task after
  // the dialog is hidden: wait for it rather than read at once.
  // (Polled from here: the page's CSP forbids waitForFunction's eval.)
  const deadline = Date.now() + 10000;
  while (await page.locator('#new-key-value').inputValue() !== '' &&
         Date.now() < deadline) {
    await page.waitForTimeout(20);
  }
  assert.equal(await page.locator('#new-key-value').inputValue(), '');
}

async function createKey(page, name, scopes) {
  await page.locator('#create-open').click();
  await page.locator('#create-dialog').waitFor({state: 'visible'});
  await page.locator('#key-name').fill(name);
  for (const scope of scopes) {
    await page.locator(`#scope-boxes input[value="${scope}"]`).check();
  }
  await page.locator('#create-submit').click();
}

// A page on another origin (localhost vs 127.0.0.1: another site) that
// tries to create a key in the tenant with the victim's cookies.
function startAttacker() {
  const target = `${keysApi}`;
  const pages = {
    '/': `<!doctype html><form id="f" method="POST" action="${target}"
            enctype="text/plain"><input name='{"name":"csrf","scopes":["admin:write"],"x":"' value='"}'></form>
          <script src="/go.js"></script>`,
    '/go.js': `fetch(${JSON.stringify(target)}, {method: 'POST', credentials: 'include',
                 headers: {'Content-Type': 'application/json', 'X-Requested-With': 'XMLHttpRequest'},
                 body: JSON.stringify({name: 'csrf-fetch', scopes: ['admin:write']})})
               .then(r => { document.title = 'fetch:' + r.status; })
               .catch(() => { document.title = 'fetch:blocked'; })
               .finally(() => document.getElementById('f').submit());`,
  };
  const server = http.createServer((req, res) => {
    const body = pages[req.url];
    res.writeHead(body ? 200 : 404, {
      'Content-Type': req.url.endsWith('.js') ? 'text/javascript' : 'text/html'});
    res.end(body || '');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  let dialogsFired = 0;
  try {
    const context = await browser.newContext({viewport: {width: 1280, height: 800}});
    const page = await context.newPage();
    page.on('dialog', (d) => { dialogsFired += 1; d.dismiss(); });
    const cspViolations = [];
    page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text()); });

    step('signed-out pages send the visitor to the login page');
    await page.goto(`${base}/t/${tenant}/portal/settings/api-keys`);
    await page.waitForURL(`**/t/${tenant}/login`);

    step('wrong password and unknown user: the same message');
    const messages = [];
    for (const [user, pw] of [[email, 'wrong password!!'], ['nobody@example.com', password]]) {
      await page.locator('#email').fill(user);
      await page.locator('#password').fill(pw);
      await page.locator('#login-submit').click();
      await page.locator('#login-error').waitFor({state: 'visible'});
      messages.push(await page.locator('#login-error').textContent());
    }
    assert.equal(messages[0], messages[1]);
    assert.equal(messages[0], 'Invalid email or password.');

    step('log in');
    await page.locator('#email').fill(email);
    await page.locator('#password').fill(password);
    await page.locator('#password').press('Enter');
    await page.waitForURL(`**/t/${tenant}/portal/settings/api-keys`);
    await page.locator('#keys-loading').waitFor({state: 'hidden'});
    assert.equal(await page.locator('#user-email').textContent(), email);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'lumo_session');
    assert.ok(session && session.httpOnly && session.sameSite === 'Strict', 'HttpOnly SameSite=Strict cookie');
    assert.equal(session.path, `/t/${tenant}`);
    // The page's script cannot read the session cookie.
    assert.ok(!(await page.evaluate(() => document.cookie)).includes('lumo_session'));

    step('empty state');
    assert.ok(await page.locator('#keys-empty').isVisible(), 'empty state shown');

    step('create a key and read it from the page');
    await createKey(page, 'ci backend', ['admin:write']);
    const key1 = await readShownKey(page);
    await page.screenshot({path: path.join(shots, 'show-once-dialog.png')});
    step('use it against the admin API: 200');
    assert.equal(await callWithKey(key1), 200);
    await closeShownKey(page);
    assert.equal(await rowCount(page), 1);
    await page.screenshot({path: path.join(shots, 'key-list.png'), fullPage: true});

    step('rotate on the page (no grace): old key 401, new key 200');
    await rotateOn(page, 'ci backend', '0');
    const key2 = await readShownKey(page);
    assert.notEqual(key2, key1);
    await closeShownKey(page);
    assert.equal(await callWithKey(key1), 401);
    assert.equal(await callWithKey(key2), 200);

    step('revoke: 401');
    await confirmOn(page, 'Revoke', 'ci backend');
    assert.equal(await callWithKey(key2), 401);
    assert.equal(await page.locator('#keys-body tr .badge').first().textContent(), 'revoked');

    step('delete: gone from the list');
    await confirmOn(page, 'Delete', 'ci backend');
    assert.equal(await rowCount(page), 0);
    assert.ok(await page.locator('#keys-empty').isVisible());

    step('a key named like markup renders as text; no dialog fires');
    const evil = '<img src=x onerror=alert(1)>';
    await createKey(page, evil, ['admin:read']);
    await readShownKey(page);
    await closeShownKey(page);
    assert.equal(await page.locator('#keys-body td.key-name').first().textContent(), evil);
    assert.equal(await page.locator('#keys-body img').count(), 0);
    // Through every dialog too.
    await page.getByRole('button', {name: `Delete key ${evil}`, exact: true}).click();
    await page.locator('#confirm-dialog').waitFor({state: 'visible'});
    assert.equal(await page.locator('#confirm-dialog img').count(), 0);
    await page.locator('#confirm-cancel').click();
    await page.waitForTimeout(300);
    assert.equal(dialogsFired, 0, 'no alert() ran');

    step('keyboard: open and dismiss the create dialog');
    await page.locator('#create-open').focus();
    await page.keyboard.press('Enter');
    await page.locator('#create-dialog').waitFor({state: 'visible'});
    assert.equal(await page.evaluate(() => document.activeElement.id), 'key-name');
    await page.keyboard.press('Escape');
    await page.locator('#create-dialog').waitFor({state: 'hidden'});

    step('a same-origin fetch without the CSRF token is refused');
    const noCsrf = await page.evaluate(async (url) => {
      const r = await fetch(url, {method: 'POST', headers: {
        'Content-Type': 'application/json', 'X-Requested-With': 'XMLHttpRequest'},
        body: JSON.stringify({name: 'no csrf', scopes: ['admin:read']})});
      return r.status;
    }, keysApi);
    assert.equal(noCsrf, 403);

    step('a cross-origin form post and fetch are refused');
    const attacker = await startAttacker();
    // localhost: another site (SameSite=Strict keeps the cookie home);
    // 127.0.0.1 on another port: same site, other origin (the cookie is
    // sent, the Origin check refuses).
    for (const host of ['localhost', '127.0.0.1']) {
      const attackerPage = await context.newPage();
      attackerPage.on('dialog', (d) => { dialogsFired += 1; d.dismiss(); });
      await attackerPage.goto(`http://${host}:${attacker.address().port}/`);
      // The page's fetch settles, then it submits the form: the attack is
      // over once the form's POST has been answered (the page shows it).
      await attackerPage.waitForURL(keysApi);
      await attackerPage.close();
    }
    attacker.close();
    await page.reload();
    await page.locator('#keys-loading').waitFor({state: 'hidden'});
    const names = await page.locator('#keys-body td.key-name').allTextContents();
    assert.deepEqual(names, [evil], 'no key was created by the other origin');

    step('create with owner, metadata and CIDRs; edit; metadata shown as text');
    await page.locator('#create-open').click();
    await page.locator('#create-dialog').waitFor({state: 'visible'});
    await page.locator('#key-name').fill('svc-edit');
    await page.locator('#scope-boxes input[value="admin:read"]').check();
    await page.locator('#key-external').fill('team-7');
    await page.locator('#key-metadata').fill('env=prod');
    await page.locator('#create-submit').click();
    const key3 = await readShownKey(page);
    await closeShownKey(page);
    assert.equal(await callWithKey(key3), 200);
    await waitForRowText(page, 'svc-edit', /team-7/);
    const markup = '<img src=x onerror=alert(2)>';
    await page.getByRole('button', {name: 'Edit key svc-edit', exact: true}).click();
    await page.locator('#edit-dialog').waitFor({state: 'visible'});
    assert.equal(await page.evaluate(() => document.activeElement.id), 'edit-name');
    assert.equal(await page.locator('#edit-metadata').inputValue(), 'env=prod');
    await page.locator('#edit-name').fill('svc-edited');
    await page.locator('#edit-metadata').fill(`env=prod\nnote=${markup}`);
    await page.locator('#edit-cidrs').fill('10.0.0.0/8');
    await page.screenshot({path: path.join(shots, 'edit-dialog.png')});
    await page.locator('#edit-submit').click();
    await page.locator('#edit-dialog').waitFor({state: 'hidden'});
    await waitForRowText(page, 'svc-edited', /note: <img src=x onerror=alert\(2\)>/);
    assert.equal(await page.locator('#keys-body img').count(), 0, 'metadata is text');
    // The CIDR edit restricts the key: this test's address is outside it
    // (403, the address is not allowed).
    assert.equal(await callWithKey(key3), 403);
    step('an edit the server refuses shows its error in the dialog');
    await page.getByRole('button', {name: 'Edit key svc-edited', exact: true}).click();
    await page.locator('#edit-dialog').waitFor({state: 'visible'});
    await page.locator('#edit-cidrs').fill('not-a-cidr');
    await page.locator('#edit-submit').click();
    await page.locator('#edit-error').waitFor({state: 'visible'});
    assert.match(await page.locator('#edit-error').textContent(), /allowedCidrs/);
    await page.keyboard.press('Escape');
    await page.locator('#edit-dialog').waitFor({state: 'hidden'});
    await page.getByRole('button', {name: 'Edit key svc-edited', exact: true}).click();
    await page.locator('#edit-dialog').waitFor({state: 'visible'});
    await page.locator('#edit-cidrs').fill('');
    await page.locator('#edit-submit').click();
    await page.locator('#edit-dialog').waitFor({state: 'hidden'});
    assert.equal(await callWithKey(key3), 200);

    step('limits and credits: set at create, shown in the list, edited');
    await page.locator('#create-open').click();
    await page.locator('#create-dialog').waitFor({state: 'visible'});
    await page.locator('#key-name').fill('svc-limits');
    await page.locator('#scope-boxes input[value="admin:read"]').check();
    await page.locator('#key-limits').fill('x:1');
    await page.locator('#create-submit').click();
    await page.locator('#create-error').waitFor({state: 'visible'});
    assert.match(await page.locator('#create-error').textContent(),
                 /name:requests:seconds/);
    await page.locator('#key-limits').fill('burst:50:1\nhourly:5000:3600');
    await page.locator('#key-credits').fill('40');
    await page.locator('#create-submit').click();
    const key4 = await readShownKey(page);
    await closeShownKey(page);
    await waitForRowText(page, 'svc-limits', /burst 50\/1s.*hourly 5000\/3600s.*40 credits left/);
    await page.getByRole('button', {name: 'Edit key svc-limits', exact: true}).click();
    await page.locator('#edit-dialog').waitFor({state: 'visible'});
    assert.equal(await page.locator('#edit-limits').inputValue(),
                 'burst:50:1\nhourly:5000:3600');
    assert.equal(await page.locator('#edit-credits').inputValue(), '40');
    await page.locator('#edit-limits').fill('minute:30:60');
    await page.locator('#edit-credits').fill('7');
    await page.locator('#edit-submit').click();
    await page.locator('#edit-dialog').waitFor({state: 'hidden'});
    await waitForRowText(page, 'svc-limits', /minute 30\/60s.*7 credits left/);
    // What the server holds: the key reads itself (one call: one credit).
    const own = await (await fetch(`${keysApi}/${await rowOf(page, 'svc-limits')
        .getAttribute('data-key-id')}`, {headers: {Authorization: `Bearer ${key4}`}})).json();
    assert.deepEqual(own.data.rateLimits, [{name: 'minute', limit: 30, durationSeconds: 60}]);
    assert.ok(own.data.credits.remaining <= 7 && own.data.credits.remaining >= 6,
              JSON.stringify(own.data.credits));
    // Emptying the credits removes the quota.
    await page.getByRole('button', {name: 'Edit key svc-limits', exact: true}).click();
    await page.locator('#edit-dialog').waitFor({state: 'visible'});
    await page.locator('#edit-credits').fill('');
    await page.locator('#edit-submit').click();
    await page.locator('#edit-dialog').waitFor({state: 'hidden'});
    const noCredits = Date.now() + 10000;
    while (/credits left/.test(await rowOf(page, 'svc-limits').textContent()) &&
           Date.now() < noCredits) {
      await page.waitForTimeout(20);
    }
    assert.doesNotMatch(await rowOf(page, 'svc-limits').textContent(), /credits left/);
    await confirmOn(page, 'Delete', 'svc-limits');
    await rowOf(page, 'svc-limits').waitFor({state: 'detached'});

    step('disable: 401 and a disabled badge; enable: 200 again');
    await confirmOn(page, 'Disable', 'svc-edited');
    await waitForRowText(page, 'svc-edited', /disabled/);
    assert.equal(await callWithKey(key3), 401);
    await page.locator('#f-state').selectOption('disabled');
    await page.locator('#key-filters button[type=submit]').click();
    // The list is replaced when the filtered page arrives: poll for it.
    const filtered = async () =>
      JSON.stringify(await page.locator('#keys-body td.key-name').allTextContents());
    const listDeadline = Date.now() + 10000;
    while (await filtered() !== '["svc-edited"]' && Date.now() < listDeadline) {
      await page.waitForTimeout(20);
    }
    assert.equal(await filtered(), '["svc-edited"]',
                 'the state filter lists the disabled key only');
    assert.match(await page.locator('#page-info').textContent(), /· 1 keys$/);
    await page.getByRole('button', {name: 'Enable key svc-edited', exact: true}).click();
    await page.locator('#keys-empty').waitFor({state: 'visible'});
    assert.equal(await callWithKey(key3), 200);
    await page.locator('#f-state').selectOption('');
    await page.locator('#key-filters button[type=submit]').click();
    await waitForRowText(page, 'svc-edited', /active/);

    step('key policy page: a bad value names its field; a good one saves');
    await page.locator('#nav-policy').click();
    await page.waitForURL(`**/t/${tenant}/portal/settings/key-policy`);
    await page.locator('#policy-form').waitFor({state: 'visible'});
    assert.equal(await page.locator('#p-warning').inputValue(), '7');
    await page.locator('#p-warning').fill('400');
    await page.locator('#policy-save').click();
    await page.locator('#policy-error').waitFor({state: 'visible'});
    assert.match(await page.locator('#policy-error').textContent(),
                 /keyPolicy\.expiryWarningDays/);
    await page.locator('#p-warning').fill('30');
    await page.locator('#p-rotation').fill('90');
    await page.locator('#policy-save').click();
    await page.locator('#policy-status').getByText('Policy saved.').waitFor();
    await page.screenshot({path: path.join(shots, 'key-policy.png'), fullPage: true});
    await page.reload();
    await page.locator('#policy-form').waitFor({state: 'visible'});
    assert.equal(await page.locator('#p-warning').inputValue(), '30');
    assert.equal(await page.locator('#p-rotation').inputValue(), '90');

    step('states: a key expiring within the warning is badged; rotation date shown');
    await page.locator('#nav-keys').click();
    await page.locator('#keys-loading').waitFor({state: 'hidden'});
    await page.locator('#create-open').click();
    await page.locator('#create-dialog').waitFor({state: 'visible'});
    await page.locator('#key-name').fill('soon');
    await page.locator('#scope-boxes input[value="admin:read"]').check();
    const in10 = new Date(Date.now() + 10 * 86400000).toISOString().slice(0, 10);
    await page.locator('#key-expires').fill(in10);
    await page.locator('#create-submit').click();
    await readShownKey(page);
    await closeShownKey(page);
    await waitForRowText(page, 'soon', /expiring/);
    assert.match(await rowOf(page, 'soon').textContent(), /rotate by /);
    assert.doesNotMatch(await rowOf(page, 'svc-edited').textContent(), /expiring/);
    await page.screenshot({path: path.join(shots, 'key-states.png'), fullPage: true});

    step('audit page: the actions, with the admin as actor; filter; detail; export');
    await page.locator('#nav-audit').click();
    await page.waitForURL(`**/t/${tenant}/portal/audit-logs`);
    await page.locator('#audit-loading').waitFor({state: 'hidden'});
    await page.locator('#f-action').fill('api_key.rotated');
    await page.locator('#filters button[type=submit]').click();
    await page.locator('#audit-loading').waitFor({state: 'hidden'});
    const rows = page.locator('#audit-body tr');
    assert.equal(await rows.count(), 1, 'one rotation');
    const rowText = await rows.first().textContent();
    assert.ok(rowText.includes('api_key.rotated'));
    assert.ok(rowText.includes(email), 'the admin is shown by e-mail: ' + rowText);
    assert.ok(/\(deleted\)/.test(rowText), 'the rotated key was deleted since: ' + rowText);
    await page.locator('#f-action').fill('');
    await page.locator('#filters button[type=submit]').click();
    await page.locator('#audit-loading').waitFor({state: 'hidden'});
    assert.ok(await rows.count() >= 5, 'every lifecycle event is listed');
    await page.screenshot({path: path.join(shots, 'audit-page.png'), fullPage: true});
    const key3Target = key3.slice(4, 16);
    await page.locator('#f-key').fill(key3Target);
    await page.locator('#filters button[type=submit]').click();
    await page.locator('#audit-loading').waitFor({state: 'hidden'});
    assert.ok(await rows.count() >= 3, 'svc-edit was created, edited, disabled');
    for (const text of await rows.allTextContents()) {
      assert.ok(text.includes(`svc-edited (${key3Target})`), 'target by name and id: ' + text);
    }
    await page.locator('#f-key').fill('');
    await page.locator('#f-actor').fill(key3Target);
    await page.locator('#filters button[type=submit]').click();
    await page.locator('#audit-loading').waitFor({state: 'hidden'});
    assert.ok(await rows.count() >= 1, 'svc-edit made calls');
    for (const text of await rows.allTextContents()) {
      assert.ok(text.includes(`svc-edited (${key3Target})`), 'actor key by name: ' + text);
    }
    await page.locator('#f-actor').fill('');
    await page.locator('#filters button[type=submit]').click();
    await page.locator('#audit-loading').waitFor({state: 'hidden'});
    await rows.first().getByRole('button').click();
    await page.locator('#detail-dialog').waitFor({state: 'visible'});
    assert.ok((await page.locator('#detail-body').textContent()).includes('"action"'));
    await page.locator('#detail-close').click();
    // The export buttons stream what the filters match.
    await page.locator('#f-action').fill('api_key.created');
    await page.locator('#filters button[type=submit]').click();
    await page.locator('#audit-loading').waitFor({state: 'hidden'});
    const exportHref = await page.locator('#export-csv').getAttribute('href');
    assert.match(exportHref, /action=api_key.created/);
    const exported = await page.evaluate(async (href) => {
      const r = await fetch(href);
      return {status: r.status, type: r.headers.get('content-type'), text: await r.text()};
    }, exportHref);
    assert.equal(exported.status, 200);
    assert.match(exported.type, /csv/);
    const exportedRows = exported.text.trim().split('\r\n').slice(1);
    assert.ok(exportedRows.length >= 1, 'created keys exported');
    for (const row of exportedRows) {
      assert.equal(row.split(',')[2], 'api_key.created', 'filtered export: ' + row);
    }
    const jsonHref = await page.locator('#export-json').getAttribute('href');
    const lines = await page.evaluate(async (href) => {
      const r = await fetch(href);
      return (await r.text()).trim().split('\n').map((l) => JSON.parse(l).action);
    }, jsonHref);
    assert.deepEqual([...new Set(lines)], ['api_key.created'], 'JSON Lines export');
    await page.locator('#f-action').fill('');
    await page.locator('#filters button[type=submit]').click();
    await page.locator('#audit-loading').waitFor({state: 'hidden'});

    step('usage: the tenant overview and one key, chart and table equal to the API');
    await page.locator('#nav-usage').click();
    await page.waitForURL(`**/t/${tenant}/portal/usage`);
    await page.locator('#usage-view').waitFor({state: 'visible'});
    const reloadTenant = async () => {
      await page.locator('#u-period').selectOption('7d');
      await page.locator('#usage-loading').waitFor({state: 'hidden'});
      await page.locator('#u-period').selectOption('24h');
    };
    const tenantRows = await usageMatchesApi(page, reloadTenant);
    assert.equal(tenantRows.length, 24, 'hourly buckets of the last 24 hours');
    assert.ok(tenantRows.reduce((n, r) => n + r.calls, 0) >= 6, 'the key calls are counted');
    assert.ok(await page.locator('#usage-chart svg rect').count() >= 1, 'bars drawn');
    assert.ok(await page.locator('#top-calls-body tr').count() >= 1, 'busiest keys listed');
    // Suspicious events per day: the dead keys used above (rotated away,
    // revoked) were flagged; the table equals the API, one row per day.
    const suspiciousDays = await suspiciousMatchesApi(page, reloadTenant);
    assert.ok(suspiciousDays.length >= 1 && suspiciousDays.length <= 2,
              'the days of the last 24 hours: ' + suspiciousDays.length);
    assert.ok(suspiciousDays.reduce((n, d) => n + d.count, 0) >= 2,
              'the dead-key uses are counted');
    assert.ok(await page.locator('#suspicious-chart svg rect').count() >= 1, 'suspicious bars drawn');
    await page.screenshot({path: path.join(shots, 'usage-tenant.png'), fullPage: true});
    const key3Id = key3.slice(4, 16);
    await page.locator('#u-key').selectOption(key3Id);
    await page.locator('#usage-loading').waitFor({state: 'hidden'});
    assert.match(await page.locator('#usage-table').getAttribute('data-path'),
                 new RegExp(`/api-keys/${key3Id}/usage`));
    const reloadKey = async () => {
      await page.locator('#u-key').selectOption('');
      await page.locator('#usage-loading').waitFor({state: 'hidden'});
      await page.locator('#u-key').selectOption(key3Id);
    };
    const keyRows = await usageMatchesApi(page, reloadKey);
    const keyCalls = keyRows.reduce((n, r) => n + r.calls, 0);
    const keyFailures = keyRows.reduce((n, r) => n + r.failures, 0);
    assert.ok(keyCalls >= 5 && keyFailures >= 2,
              `svc-edit's calls and failures are counted: ${keyCalls}/${keyFailures}`);
    assert.match(await page.locator('#usage-legend').textContent(), /valid/);
    await page.screenshot({path: path.join(shots, 'usage-key.png'), fullPage: true});

    step('narrow screen');
    await page.setViewportSize({width: 375, height: 740});
    await page.locator('#nav-keys').click();
    await page.locator('#keys-loading').waitFor({state: 'hidden'});
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, 'no horizontal scrolling on a narrow screen: ' + overflow);
    await page.screenshot({path: path.join(shots, 'key-list-narrow.png'), fullPage: true});

    step('logout; the old cookie no longer works');
    await page.locator('#logout').click();
    await page.waitForURL(`**/t/${tenant}/login`);
    const replay = await fetch(keysApi, {headers: {Cookie: `lumo_session=${session.value}`}});
    assert.equal(replay.status, 401);
    await page.goto(`${base}/t/${tenant}/portal/settings/api-keys`);
    await page.waitForURL(`**/t/${tenant}/login`);

    assert.deepEqual(cspViolations, [], 'no CSP violations on our pages');
    assert.equal(dialogsFired, 0, 'no alert() ran');
    console.log('portal browser flow: all checks passed');
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error('FAILED:', e && e.stack ? e.stack : e);
  process.exit(1);
});
