'use strict';

(() => {
  const {api, el, show, formatTime, base, confirmAction, button, errorText} = Portal;
  const keysPath = base + '/api/v1/admin/api-keys';
  const $ = (id) => document.getElementById(id);
  const pager = new Portal.Pager(25, 'keys');
  let grantable = [];
  let rotate = null;  // the rotate dialog, wired when the page loads

  // The show-once dialog for a new or rotated key.
  function showSecret(title, key) {
    Portal.showSecret(title, key, 'new-key-value');
  }

  // "3 days", "5 months": how long ago `value` was.
  function age(value) {
    const ms = Date.now() - new Date(value).getTime();
    if (!(ms >= 0)) return '';
    const days = Math.floor(ms / 86400000);
    if (days < 1) return 'less than a day';
    if (days < 60) return days + (days === 1 ? ' day' : ' days');
    if (days < 730) return Math.floor(days / 30) + ' months';
    return Math.floor(days / 365) + ' years';
  }

  // "a=b" lines <-> a metadata map. Values are strings, shown as text.
  function metadataText(map) {
    return Object.keys(map || {}).sort().map((k) => k + '=' + map[k]).join('\n');
  }
  function parseMetadata(text) {
    const out = {};
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const eq = line.indexOf('=');
      if (eq <= 0) throw new Error('Metadata: write each entry as key=value.');
      out[line.slice(0, eq).trim()] = line.slice(eq + 1);
    }
    return out;
  }
  // Named limits as the dialogs show them: one name:requests:seconds per
  // line (the server checks the values; only the form is checked here).
  function limitsText(limits) {
    return (limits || []).map((l) => l.name + ':' + l.limit + ':' + l.durationSeconds)
        .join('\n');
  }
  function parseLimits(text) {
    return lines(text).map((line) => {
      const parts = line.split(':').map((p) => p.trim());
      if (parts.length !== 3 || !parts[0] || !/^\d+$/.test(parts[1]) ||
          !/^\d+$/.test(parts[2])) {
        throw new Error('Named rate limits: write name:requests:seconds, one per line ' +
                        '(e.g. burst:20:1), not “' + line + '”.');
      }
      return {name: parts[0], limit: Number(parts[1]), durationSeconds: Number(parts[2])};
    });
  }
  // "100/min", "burst 20/1s", "70 credits left" (the stored balance).
  function limitsSummary(key) {
    const out = [];
    if (key.rateLimitPerMinute) out.push(key.rateLimitPerMinute + '/min');
    for (const l of key.rateLimits || []) {
      out.push(l.name + ' ' + l.limit + '/' + l.durationSeconds + 's');
    }
    if (key.credits) {
      let credits = key.credits.remaining + ' credits left';
      if (key.credits.refill) {
        credits += ' (refilled to ' + key.credits.refill.amount + ' every ' +
            key.credits.refill.intervalSeconds + 's)';
      }
      out.push(credits);
    }
    return out;
  }

  function lines(text) {
    return text.split('\n').map((s) => s.trim()).filter((s) => s);
  }
  function dateOf(value) {
    return value ? new Date(value).toISOString().slice(0, 10) : '';
  }
  function stateBadges(key) {
    const out = [];
    const state = key.state || {};
    if (state.rotationDue) out.push(['rotation due', 'badge-warn']);
    if (state.expiringSoon) out.push(['expiring', 'badge-warn']);
    if (state.inactive) out.push(['inactive', 'badge-muted']);
    return out;
  }

  function renderKeys(keys, meta) {
    const body = $('keys-body');
    body.replaceChildren();
    for (const key of keys) {
      const row = el('tr');
      row.dataset.keyId = key.id;
      const name = el('td', key.name, 'key-name');
      name.setAttribute('data-label', 'Name');
      row.append(name);
      const prefix = el('td', null);
      prefix.append(el('code', key.prefix));
      row.append(prefix);
      row.append(el('td', (key.scopes || []).join(', ')));
      const status = el('td', null, 'key-status');
      status.append(el('span', key.status, 'badge badge-' + key.status));
      for (const [text, cls] of stateBadges(key)) {
        status.append(' ', el('span', text, 'badge ' + cls));
      }
      if (key.state && key.state.rotationDueAt) {
        status.append(el('div', 'rotate by ' + formatTime(key.state.rotationDueAt), 'muted small'));
      }
      if (key.decoy) status.append(' ', el('span', 'decoy', 'badge badge-warn'));
      if (key.previousSecretValidUntil) {
        // A rotation's grace period: who has not switched yet.
        status.append(el('div', 'old secret works until ' +
                         formatTime(key.previousSecretValidUntil), 'muted small'));
        status.append(button('Who still uses it', 'Clients still using the old secret of key ' +
                             key.name, () => openStragglers(key), 'small'));
      }
      row.append(status);
      const owner = el('td', null, 'key-owner');
      if (key.externalId) {
        owner.append(el('div', key.externalId));
        owner.append(button('Identity limits', 'Identity limits of ' + key.externalId, () => {
          $('identity-id').value = key.externalId;
          loadIdentity();
          $('identity-form').scrollIntoView();
        }, 'small'));
      }
      for (const [k, v] of Object.entries(key.metadata || {})) {
        owner.append(el('div', k + ': ' + v, 'muted small'));
      }
      row.append(owner);
      const limits = el('td', null, 'key-limits');
      const summary = limitsSummary(key);
      if (summary.length === 0) limits.append(el('span', 'none', 'muted'));
      for (const line of summary) limits.append(el('div', line));
      row.append(limits);
      const created = el('td', formatTime(key.createdAt));
      created.append(el('div', age(key.createdAt) + ' old', 'muted small'));
      row.append(created);
      // Last use, and how long a key has gone unused (a key nobody uses is
      // a candidate for revocation): from lastUsedAt, else from creation.
      const used = el('td', key.lastUsedAt ? formatTime(key.lastUsedAt) : 'never');
      const idleSince = key.lastUsedAt || key.createdAt;
      const idleDays = Math.floor((Date.now() - new Date(idleSince).getTime()) / 86400000);
      if (idleDays >= 1) {
        used.append(el('div', 'unused for ' + idleDays + (idleDays === 1 ? ' day' : ' days'),
                       'muted small'));
      }
      const usageLink = el('a', 'Usage', 'small');
      usageLink.href = base + '/portal/usage?key=' + encodeURIComponent(key.id);
      usageLink.setAttribute('aria-label', 'Usage of key ' + key.name);
      const usageLine = el('div');
      usageLine.append(usageLink);
      used.append(usageLine);
      row.append(used);
      row.append(el('td', key.expiresAt ? formatTime(key.expiresAt) : 'never'));
      const actions = el('td', null, 'row-actions');
      const label = '“' + key.name + '” (' + key.prefix + ')';
      const live = key.status === 'active' || key.status === 'disabled';
      if (key.status !== 'revoked') {
        actions.append(button('Edit', 'Edit key ' + key.name, () => openEdit(key)));
      }
      if (live) {
        actions.append(button('Rotate', 'Rotate key ' + key.name, () => rotate.open(
            'Rotate key ' + label + '? A new secret is shown once.',
            keysPath + '/' + key.id + '/rotate')));
      }
      if (key.status === 'active') {
        actions.append(button('Disable', 'Disable key ' + key.name, () =>
          confirmAction('Disable key?',
            'Disable key ' + label + '? It stops working until you enable it again.',
            'Disable', async () => {
              await api('POST', keysPath + '/' + key.id + '/disable', {});
              await loadKeys();
            })));
      }
      if (key.status === 'disabled') {
        actions.append(button('Enable', 'Enable key ' + key.name, async () => {
          try {
            await api('POST', keysPath + '/' + key.id + '/enable', {});
            await loadKeys();
          } catch (e) {
            $('keys-error').textContent = 'Could not enable the key: ' + e.message;
            show($('keys-error'), true);
          }
        }));
      }
      if (live) {
        actions.append(button('Revoke', 'Revoke key ' + key.name, () =>
          confirmAction('Revoke key?',
            'Revoke key ' + label + '? It stops working for good; the record stays for audit.',
            'Revoke', async () => {
              await api('POST', keysPath + '/' + key.id + '/revoke', {});
              await loadKeys();
            }), 'danger-outline'));
      }
      actions.append(button('Delete', 'Delete key ' + key.name, () =>
        confirmAction('Delete key?',
          'Delete key ' + label + '? It stops working and disappears from this list.',
          'Delete', async () => {
            await api('DELETE', keysPath + '/' + key.id);
            await loadKeys();
          }), 'danger-outline'));
      row.append(actions);
      body.append(row);
    }
    const filtered = $('f-search').value || $('f-status').value || $('f-state').value ||
        $('f-decoy').value;
    show($('keys-table'), keys.length > 0);
    show($('keys-empty'), keys.length === 0);
    $('keys-empty').textContent = filtered ? 'No keys match these filters.'
        : 'No API keys yet. Create one to call the admin API.';
    $('page-info').textContent = pager.took(meta);
    $('prev-page').disabled = !pager.hasPrevious();
    $('next-page').disabled = !pager.hasNext();
  }

  async function loadKeys() {
    show($('keys-error'), false);
    const q = pager.params(new URLSearchParams());
    for (const [param, id] of [['search', 'f-search'], ['status', 'f-status'],
                               ['state', 'f-state'], ['decoy', 'f-decoy'],
                               ['sortBy', 'f-sort']]) {
      const value = $(id).value.trim();
      if (value) q.set(param, value);
    }
    if ($('f-sort').value === 'name') q.set('sortDir', 'ASC');
    try {
      const reply = await api('GET', keysPath + '?' + q.toString());
      renderKeys(reply.data || [], reply.meta);
    } catch (e) {
      $('keys-error').textContent = 'Could not load the keys: ' + e.message;
      show($('keys-error'), true);
    } finally {
      show($('keys-loading'), false);
    }
  }

  function renderScopeBoxes(box, scopes, checked) {
    box.replaceChildren();
    for (const scope of scopes) {
      const label = el('label', null, 'check');
      const input = document.createElement('input');
      input.type = 'checkbox';
      input.name = 'scope';
      input.value = scope;
      input.checked = (checked || []).includes(scope);
      label.append(input, document.createTextNode(' ' + scope));
      box.append(label);
    }
  }
  function checkedScopes(box) {
    return [...box.querySelectorAll('input:checked')].map((i) => i.value);
  }

  function openCreate() {
    $('create-form').reset();
    show($('create-error'), false);
    $('create-dialog').showModal();
    $('key-name').focus();
  }

  function fail(where, message) {
    $(where).textContent = message;
    show($(where), true);
  }

  async function submitCreate(event) {
    event.preventDefault();
    const scopes = checkedScopes($('scope-boxes'));
    const body = {name: $('key-name').value.trim(), scopes};
    const expires = $('key-expires').value;
    if (expires) body.expiresAt = expires + 'T23:59:59Z';
    const cidrs = lines($('key-cidrs').value);
    if (cidrs.length) body.allowedCidrs = cidrs;
    const rate = $('key-rate').value;
    if (rate) body.rateLimitPerMinute = Number(rate);
    const external = $('key-external').value.trim();
    if (external) body.externalId = external;
    const credits = $('key-credits').value;
    if (credits !== '') body.credits = {remaining: Number(credits)};
    try {
      const metadata = parseMetadata($('key-metadata').value);
      if (Object.keys(metadata).length) body.metadata = metadata;
      const limits = parseLimits($('key-limits').value);
      if (limits.length) body.rateLimits = limits;
    } catch (e) {
      return fail('create-error', e.message);
    }
    if ($('key-decoy').checked) body.decoy = true;
    if (!body.name) return fail('create-error', 'Enter a name.');
    if (scopes.length === 0) return fail('create-error', 'Choose at least one scope.');
    $('create-submit').disabled = true;
    try {
      const reply = await api('POST', keysPath, body);
      $('create-dialog').close();
      await loadKeys();
      showSecret('Your new API key', reply.data.key);
    } catch (e) {
      fail('create-error', errorText(e));
    } finally {
      $('create-submit').disabled = false;
    }
  }

  // The edit dialog sends only the fields that changed (a PATCH updates
  // exactly the members present; an empty value clears the field).
  let editing = null;
  function openEdit(key) {
    editing = key;
    show($('edit-error'), false);
    $('edit-title').textContent = 'Edit key “' + key.name + '”';
    $('edit-name').value = key.name;
    const offered = [...new Set([...grantable, ...(key.scopes || [])])];
    renderScopeBoxes($('edit-scope-boxes'), offered, key.scopes);
    $('edit-expires').value = dateOf(key.expiresAt);
    $('edit-cidrs').value = (key.allowedCidrs || []).join('\n');
    $('edit-rate').value = String(key.rateLimitPerMinute || 0);
    $('edit-limits').value = limitsText(key.rateLimits);
    $('edit-credits').value = key.credits ? String(key.credits.remaining) : '';
    $('edit-external').value = key.externalId || '';
    $('edit-metadata').value = metadataText(key.metadata);
    $('edit-dialog').showModal();
    $('edit-name').focus();
  }

  async function submitEdit(event) {
    event.preventDefault();
    const key = editing;
    const body = {};
    const name = $('edit-name').value.trim();
    if (name !== key.name) body.name = name;
    const scopes = checkedScopes($('edit-scope-boxes'));
    if (scopes.slice().sort().join(' ') !== (key.scopes || []).slice().sort().join(' ')) {
      body.scopes = scopes;
    }
    const expires = $('edit-expires').value;
    if (expires !== dateOf(key.expiresAt)) {
      body.expiresAt = expires ? expires + 'T23:59:59Z' : null;
    }
    const cidrs = lines($('edit-cidrs').value);
    if (cidrs.join(',') !== (key.allowedCidrs || []).join(',')) body.allowedCidrs = cidrs;
    const rate = Number($('edit-rate').value || 0);
    if (rate !== (key.rateLimitPerMinute || 0)) body.rateLimitPerMinute = rate;
    const external = $('edit-external').value.trim();
    if (external !== (key.externalId || '')) body.externalId = external;
    try {
      const metadata = parseMetadata($('edit-metadata').value);
      if (metadataText(metadata) !== metadataText(key.metadata)) body.metadata = metadata;
      const limits = parseLimits($('edit-limits').value);
      if (limitsText(limits) !== limitsText(key.rateLimits)) body.rateLimits = limits;
    } catch (e) {
      return fail('edit-error', e.message);
    }
    // Credits go through the credits API: SET the balance (the refill, if
    // any, is kept), or REMOVE the quota when the field was emptied.
    const creditsText = $('edit-credits').value;
    const creditsBefore = key.credits ? String(key.credits.remaining) : '';
    let credits = null;
    if (creditsText !== creditsBefore) {
      if (creditsText === '') {
        credits = {op: 'REMOVE'};
      } else {
        credits = {op: 'SET', value: Number(creditsText)};
        if (key.credits && key.credits.refill) credits.refill = key.credits.refill;
      }
    }
    if (!name) return fail('edit-error', 'Enter a name.');
    if (scopes.length === 0) return fail('edit-error', 'Choose at least one scope.');
    if (Object.keys(body).length === 0 && credits === null) {
      $('edit-dialog').close();
      return;
    }
    $('edit-submit').disabled = true;
    try {
      if (Object.keys(body).length) await api('PATCH', keysPath + '/' + key.id, body);
      if (credits) await api('POST', keysPath + '/' + key.id + '/credits', credits);
      $('edit-dialog').close();
      await loadKeys();
    } catch (e) {
      fail('edit-error', errorText(e));
    } finally {
      $('edit-submit').disabled = false;
    }
  }

  // The clients that presented the key's previous secret since its
  // rotation (GET of the key: previousSecretUsers, docs/webhooks.md).
  async function openStragglers(key) {
    $('stragglers-text').textContent = 'Key “' + key.name + '” (' + key.prefix +
        '): clients that presented the old secret since the rotation, most recent first.';
    show($('stragglers-error'), false);
    show($('stragglers-empty'), false);
    show($('stragglers-table'), false);
    const body = $('stragglers-body');
    body.replaceChildren();
    $('stragglers-dialog').showModal();
    $('stragglers-close').focus();
    try {
      const reply = await api('GET', keysPath + '/' + key.id);
      const users = reply.data.previousSecretUsers || [];
      for (const u of users) {
        const row = el('tr');
        row.append(el('td', u.ipAddress || '—'), el('td', u.userAgent || '—'),
                   el('td', formatTime(u.lastSeenAt)), el('td', String(u.count)));
        body.append(row);
      }
      show($('stragglers-table'), users.length > 0);
      show($('stragglers-empty'), users.length === 0);
    } catch (e) {
      fail('stragglers-error', 'Could not load the key: ' + e.message);
    }
  }

  // Identity limits (docs/limits.md "Identity limits"): read and replaced
  // whole for one external id at a time. `identityShown` is the id whose
  // limits the form holds; Save writes those, whatever the input says now.
  const identityPath = base + '/api/v1/admin/identity-limits';
  let identityShown = null;

  function identityFailed(e) {
    $('identity-error').textContent = errorText(e);
    show($('identity-error'), true);
  }
  function showIdentity(externalId, limits) {
    identityShown = externalId;
    $('identity-shown').textContent = externalId;
    $('identity-limits').value = limitsText(limits);
    $('identity-limits').disabled = false;
    $('identity-save').disabled = false;
  }
  async function loadIdentity() {
    show($('identity-error'), false);
    $('identity-status').textContent = '';
    const externalId = $('identity-id').value;
    if (!externalId) {
      identityFailed(new Error('Enter an external id.'));
      return;
    }
    try {
      const reply = await api('GET', identityPath + '?externalId=' +
                              encodeURIComponent(externalId));
      showIdentity(reply.data.externalId, reply.data.rateLimits);
      $('identity-status').textContent = reply.data.rateLimits.length ?
          reply.data.rateLimits.length + ' limit(s).' : 'No identity limits.';
    } catch (e) {
      identityFailed(e);
    }
  }
  async function saveIdentity(event) {
    event.preventDefault();
    show($('identity-error'), false);
    $('identity-status').textContent = '';
    if (identityShown === null) return;
    let rateLimits;
    try {
      rateLimits = parseLimits($('identity-limits').value);
    } catch (e) {
      identityFailed(e);
      return;
    }
    $('identity-save').disabled = true;
    try {
      const reply = await api('PUT', identityPath,
                              {externalId: identityShown, rateLimits});
      showIdentity(reply.data.externalId, reply.data.rateLimits);
      $('identity-status').textContent = 'Limits of ' + identityShown + ' saved.';
    } catch (e) {
      identityFailed(e);
    } finally {
      $('identity-save').disabled = false;
    }
  }

  document.addEventListener('DOMContentLoaded', async () => {
    $('identity-load').addEventListener('click', loadIdentity);
    $('identity-form').addEventListener('submit', saveIdentity);
    $('create-open').addEventListener('click', openCreate);
    $('create-cancel').addEventListener('click', () => $('create-dialog').close());
    $('create-form').addEventListener('submit', submitCreate);
    $('edit-cancel').addEventListener('click', () => $('edit-dialog').close());
    $('edit-form').addEventListener('submit', submitEdit);
    rotate = Portal.rotateDialog(async (reply) => {
      await loadKeys();
      showSecret('Rotated key: copy the new secret', reply.data.key);
    });
    $('stragglers-close').addEventListener('click', () => $('stragglers-dialog').close());
    $('copy-key').addEventListener('click', () => Portal.copyField('new-key-value', 'copy-status'));
    $('key-filters').addEventListener('submit', (e) => {
      e.preventDefault();
      pager.reset();
      loadKeys();
    });
    $('prev-page').addEventListener('click', () => { pager.previous(); loadKeys(); });
    $('next-page').addEventListener('click', () => { pager.next(); loadKeys(); });
    // Done clears the key before the dialog hides (Escape clears it in the
    // dialog's close event, which the browser fires a moment later).
    $('secret-done').addEventListener('click', () => {
      $('new-key-value').value = '';
      $('secret-dialog').close();
    });
    try {
      const session = await Portal.initSignedIn();
      grantable = session.grantableScopes || [];
      renderScopeBoxes($('scope-boxes'), grantable, []);
    } catch (e) {
      show($('keys-loading'), false);
      if (e.status !== 401) {
        $('keys-error').textContent = 'Could not load the session: ' + e.message;
        show($('keys-error'), true);
      }
      return;
    }
    await loadKeys();
  });
})();
