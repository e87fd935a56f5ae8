'use strict';

(() => {
  const {api, el, show, formatTime, base} = Portal;
  const keysPath = base + '/api/v1/admin/api-keys';
  const $ = (id) => document.getElementById(id);

  // A modal confirmation naming the key; resolves to true when confirmed
  // and the action succeeded, false when cancelled. `action` runs while the
  // dialog stays open, so its error can be shown in place.
  function confirmAction(title, text, okLabel, action) {
    const dialog = $('confirm-dialog');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = okLabel;
    show($('confirm-error'), false);
    return new Promise((resolve) => {
      const cleanup = () => {
        $('confirm-ok').onclick = null;
        $('confirm-cancel').onclick = null;
        dialog.onclose = null;
      };
      $('confirm-cancel').onclick = () => dialog.close();
      dialog.onclose = () => { cleanup(); resolve(false); };
      $('confirm-ok').onclick = async () => {
        $('confirm-ok').disabled = true;
        try {
          await action();
          dialog.onclose = null;
          cleanup();
          dialog.close();
          resolve(true);
        } catch (e) {
          $('confirm-error').textContent = e.message;
          show($('confirm-error'), true);
        } finally {
          $('confirm-ok').disabled = false;
        }
      };
      dialog.showModal();
      $('confirm-cancel').focus();
    });
  }

  // The show-once dialog for a new or rotated key.
  function showSecret(title, key) {
    $('secret-title').textContent = title;
    const input = $('new-key-value');
    input.value = key;
    $('copy-status').textContent = '';
    const dialog = $('secret-dialog');
    dialog.onclose = () => { input.value = ''; };
    dialog.showModal();
    input.focus();
    input.select();
  }

  async function copyKey() {
    const input = $('new-key-value');
    try {
      await navigator.clipboard.writeText(input.value);
      $('copy-status').textContent = 'Copied to the clipboard.';
    } catch (e) {
      input.select();
      $('copy-status').textContent = 'Press Ctrl+C (⌘C) to copy the selected key.';
    }
  }

  function button(label, aria, onClick, className) {
    const b = el('button', label, className);
    b.type = 'button';
    b.setAttribute('aria-label', aria);
    b.addEventListener('click', onClick);
    return b;
  }

  function renderKeys(keys) {
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
      const status = el('td');
      status.append(el('span', key.status, 'badge badge-' + key.status));
      row.append(status);
      row.append(el('td', formatTime(key.createdAt)));
      row.append(el('td', key.lastUsedAt ? formatTime(key.lastUsedAt) : 'never'));
      row.append(el('td', key.expiresAt ? formatTime(key.expiresAt) : 'never'));
      const actions = el('td', null, 'row-actions');
      const label = '“' + key.name + '” (' + key.prefix + ')';
      if (key.status === 'active') {
        actions.append(button('Rotate', 'Rotate key ' + key.name, () =>
          confirmAction('Rotate key?',
            'Rotate key ' + label + '? Its current secret stops working immediately; ' +
            'a new secret is shown once.', 'Rotate', async () => {
              const reply = await api('POST', keysPath + '/' + key.id + '/rotate', {});
              await loadKeys();
              showSecret('Rotated key: copy the new secret', reply.data.key);
            })));
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
    show($('keys-table'), keys.length > 0);
    show($('keys-empty'), keys.length === 0);
  }

  async function loadKeys() {
    show($('keys-error'), false);
    try {
      const reply = await api('GET', keysPath + '?limit=100');
      renderKeys(reply.data || []);
    } catch (e) {
      $('keys-error').textContent = 'Could not load the keys: ' + e.message;
      show($('keys-error'), true);
    } finally {
      show($('keys-loading'), false);
    }
  }

  function renderScopeBoxes(scopes) {
    const box = $('scope-boxes');
    box.replaceChildren();
    for (const scope of scopes) {
      const label = el('label', null, 'check');
      const input = document.createElement('input');
      input.type = 'checkbox';
      input.name = 'scope';
      input.value = scope;
      label.append(input, document.createTextNode(' ' + scope));
      box.append(label);
    }
  }

  function openCreate() {
    $('create-form').reset();
    show($('create-error'), false);
    $('create-dialog').showModal();
    $('key-name').focus();
  }

  async function submitCreate(event) {
    event.preventDefault();
    const scopes = [...document.querySelectorAll('#scope-boxes input:checked')]
        .map((i) => i.value);
    const body = {name: $('key-name').value.trim(), scopes};
    const expires = $('key-expires').value;
    if (expires) body.expiresAt = expires + 'T23:59:59Z';
    let message = '';
    if (!body.name) message = 'Enter a name.';
    else if (scopes.length === 0) message = 'Choose at least one scope.';
    if (message) {
      $('create-error').textContent = message;
      show($('create-error'), true);
      return;
    }
    $('create-submit').disabled = true;
    try {
      const reply = await api('POST', keysPath, body);
      $('create-dialog').close();
      await loadKeys();
      showSecret('Your new API key', reply.data.key);
    } catch (e) {
      $('create-error').textContent = e.message;
      show($('create-error'), true);
    } finally {
      $('create-submit').disabled = false;
    }
  }

  document.addEventListener('DOMContentLoaded', async () => {
    $('create-open').addEventListener('click', openCreate);
    $('create-cancel').addEventListener('click', () => $('create-dialog').close());
    $('create-form').addEventListener('submit', submitCreate);
    $('copy-key').addEventListener('click', copyKey);
    // Done clears the key before the dialog hides (Escape clears it in the
    // dialog's close event, which the browser fires a moment later).
    $('secret-done').addEventListener('click', () => {
      $('new-key-value').value = '';
      $('secret-dialog').close();
    });
    try {
      const session = await Portal.initSignedIn();
      renderScopeBoxes(session.grantableScopes || []);
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
