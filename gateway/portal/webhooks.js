'use strict';

// The webhooks page (docs/webhooks.md): endpoints (add, edit, enable or
// disable, rotate the signing secret, send a test ping, delete) and the
// delivery log of one endpoint, paged by token.
(() => {
  const {api, el, show, formatTime, base, button, errorText, confirmAction} = Portal;
  const hooksPath = base + '/api/v1/admin/webhooks';
  const $ = (id) => document.getElementById(id);
  // The types an endpoint may subscribe to (docs/webhooks.md "Event types").
  const EVENT_TYPES = [
    'api_key.created', 'api_key.updated', 'api_key.rotated', 'api_key.renewed',
    'api_key.revoked', 'api_key.deleted', 'api_key.disabled', 'api_key.enabled',
    'api_key.rotation_due', 'api_key.expiring', 'api_key.inactive',
    'api_key.leaked', 'api_key.decoy_used', 'api_key.usage_exceeded',
    'audit.suspicious', 'webhook.disabled',
  ];
  const logPager = new Portal.Pager(20, 'deliveries');
  let logEndpoint = null;  // the endpoint whose deliveries are shown
  let editing = null;      // the endpoint in the edit dialog; null: adding
  let rotate = null;  // the rotate dialog, wired when the page loads

  function fail(where, message) {
    $(where).textContent = message;
    show($(where), true);
  }

  function showSecret(title, secret) {
    Portal.showSecret(title, secret, 'secret-value');
  }

  function statusCell(hook) {
    const cell = el('td', null, 'hook-status');
    if (hook.enabled) {
      cell.append(el('span', 'enabled', 'badge badge-active'));
    } else {
      cell.append(el('span', 'disabled', 'badge badge-disabled'));
      if (hook.disabledReason === 'failures') {
        cell.append(' ', el('span', 'after failures', 'badge badge-warn'));
      }
    }
    if (hook.consecutiveFailures > 0) {
      cell.append(el('div', hook.consecutiveFailures + ' failed in a row', 'muted small'));
    }
    return cell;
  }

  function renderHooks(hooks) {
    const body = $('hooks-body');
    body.replaceChildren();
    for (const hook of hooks) {
      const row = el('tr');
      row.dataset.hookId = hook.id;
      const url = el('td', null, 'hook-url');
      url.append(el('code', hook.url));
      row.append(url);
      row.append(el('td', hook.description || '', 'hook-description'));
      row.append(el('td', (hook.eventTypes || []).length ? hook.eventTypes.join(', ')
                                                         : 'every event', 'hook-events'));
      row.append(statusCell(hook));
      const secret = el('td', null, 'hook-secret');
      secret.append(el('code', hook.secretPrefix + '…'));
      if (hook.previousSecretValidUntil) {
        secret.append(el('div', 'old secret signs too until ' +
                         formatTime(hook.previousSecretValidUntil), 'muted small'));
      }
      row.append(secret);
      row.append(el('td', formatTime(hook.createdAt)));
      const name = hook.description || hook.url;
      const actions = el('td', null, 'row-actions');
      actions.append(button('Edit', 'Edit endpoint ' + name, () => openEdit(hook)));
      actions.append(button(hook.enabled ? 'Disable' : 'Enable',
                            (hook.enabled ? 'Disable' : 'Enable') + ' endpoint ' + name,
                            () => setEnabled(hook, !hook.enabled)));
      actions.append(button('Rotate secret', 'Rotate the secret of endpoint ' + name,
                            () => rotate.open(
                                'Rotate the signing secret of ' + hook.url +
                                '? The new secret is shown once; during the overlap every ' +
                                'delivery carries a signature with each secret.',
                                hooksPath + '/' + hook.id + '/rotate-secret')));
      if (hook.enabled) {
        actions.append(button('Send test', 'Send a test ping to endpoint ' + name,
                              () => sendTest(hook)));
      }
      actions.append(button('Deliveries', 'Deliveries of endpoint ' + name,
                            () => openLog(hook)));
      actions.append(button('Delete', 'Delete endpoint ' + name, () =>
        confirmAction('Delete endpoint?',
          'Delete endpoint ' + hook.url + '? Its delivery log goes with it.',
          'Delete', async () => {
            await api('DELETE', hooksPath + '/' + hook.id);
            if (logEndpoint && logEndpoint.id === hook.id) {
              logEndpoint = null;
              show($('log'), false);
            }
            await loadHooks();
          }), 'danger-outline'));
      row.append(actions);
      body.append(row);
    }
    show($('hooks-table'), hooks.length > 0);
    show($('hooks-empty'), hooks.length === 0);
  }

  async function loadHooks() {
    show($('hooks-error'), false);
    try {
      // At most 20 endpoints per tenant: one page holds them all.
      const reply = await api('GET', hooksPath + '?limit=100');
      renderHooks(reply.data || []);
    } catch (e) {
      fail('hooks-error', 'Could not load the endpoints: ' + e.message);
    } finally {
      show($('hooks-loading'), false);
    }
  }

  async function setEnabled(hook, enabled) {
    show($('hooks-error'), false);
    try {
      await api('PATCH', hooksPath + '/' + hook.id, {enabled});
      await loadHooks();
    } catch (e) {
      fail('hooks-error', 'Could not change the endpoint: ' + errorText(e));
    }
  }

  async function sendTest(hook) {
    show($('hooks-error'), false);
    try {
      await api('POST', hooksPath + '/' + hook.id + '/test', {});
      await openLog(hook);
    } catch (e) {
      fail('hooks-error', 'Could not send the test: ' + errorText(e));
    }
  }

  function renderEventBoxes(checked) {
    const box = $('event-boxes');
    box.replaceChildren();
    for (const type of EVENT_TYPES) {
      const label = el('label', null, 'check');
      const input = document.createElement('input');
      input.type = 'checkbox';
      input.name = 'event';
      input.value = type;
      input.checked = checked.includes(type);
      label.append(input, document.createTextNode(' ' + type));
      box.append(label);
    }
  }

  function openCreate() {
    editing = null;
    $('hook-form').reset();
    $('hook-title').textContent = 'Add endpoint';
    $('hook-submit').textContent = 'Add';
    show($('hook-enabled-row'), false);
    renderEventBoxes([]);
    show($('hook-error'), false);
    $('hook-dialog').showModal();
    $('hook-url').focus();
  }

  function openEdit(hook) {
    editing = hook;
    $('hook-form').reset();
    $('hook-title').textContent = 'Edit endpoint';
    $('hook-submit').textContent = 'Save';
    $('hook-url').value = hook.url;
    $('hook-description').value = hook.description || '';
    $('hook-enabled').checked = !!hook.enabled;
    show($('hook-enabled-row'), true);
    renderEventBoxes(hook.eventTypes || []);
    show($('hook-error'), false);
    $('hook-dialog').showModal();
    $('hook-url').focus();
  }

  async function submitHook(event) {
    event.preventDefault();
    const url = $('hook-url').value.trim();
    const description = $('hook-description').value.trim();
    const eventTypes = [...$('event-boxes').querySelectorAll('input:checked')]
        .map((i) => i.value);
    if (!url) return fail('hook-error', 'Enter the URL.');
    $('hook-submit').disabled = true;
    try {
      if (editing) {
        // Only what changed (a PATCH updates exactly the members present).
        const body = {};
        if (url !== editing.url) body.url = url;
        if (description !== (editing.description || '')) body.description = description;
        if (eventTypes.join(',') !== (editing.eventTypes || []).join(',')) {
          body.eventTypes = eventTypes;
        }
        if ($('hook-enabled').checked !== !!editing.enabled) {
          body.enabled = $('hook-enabled').checked;
        }
        if (Object.keys(body).length) {
          await api('PATCH', hooksPath + '/' + editing.id, body);
        }
        $('hook-dialog').close();
        await loadHooks();
      } else {
        const reply = await api('POST', hooksPath, {url, description, eventTypes});
        $('hook-dialog').close();
        await loadHooks();
        showSecret('Signing secret of the new endpoint', reply.data.secret);
      }
    } catch (e) {
      fail('hook-error', errorText(e));
    } finally {
      $('hook-submit').disabled = false;
    }
  }

  function renderLog(deliveries, meta) {
    const body = $('log-body');
    body.replaceChildren();
    for (const d of deliveries) {
      const row = el('tr');
      row.dataset.deliveryId = d.id;
      row.append(el('td', formatTime(d.createdAt)));
      const event = el('td', d.eventType, 'delivery-type');
      event.append(el('div', d.eventId, 'muted small'));
      row.append(event);
      const badge = {delivered: 'badge-active', pending: 'badge-warn',
                     failed: 'badge-revoked', cancelled: 'badge-muted'}[d.status] || '';
      const status = el('td', null, 'delivery-status');
      status.append(el('span', d.status, 'badge ' + badge));
      row.append(status);
      row.append(el('td', String(d.attempts)));
      row.append(el('td', d.lastHttpStatus ? String(d.lastHttpStatus) : '—'));
      row.append(el('td', d.lastAttemptAt ? d.lastLatencyMs + ' ms' : '—'));
      row.append(el('td', d.lastError || '', 'delivery-error'));
      row.append(el('td', d.status === 'pending' ? formatTime(d.nextAttemptAt) : '—'));
      body.append(row);
    }
    show($('log-table'), deliveries.length > 0);
    show($('log-empty'), deliveries.length === 0);
    $('log-info').textContent = logPager.took(meta);
    $('log-prev').disabled = !logPager.hasPrevious();
    $('log-next').disabled = !logPager.hasNext();
  }

  async function loadLog() {
    if (!logEndpoint) return;
    show($('log-error'), false);
    const q = logPager.params(new URLSearchParams());
    const status = $('log-status').value;
    if (status) q.set('status', status);
    try {
      const reply = await api('GET', hooksPath + '/' + logEndpoint.id + '/deliveries?' +
                              q.toString());
      renderLog(reply.data || [], reply.meta);
    } catch (e) {
      fail('log-error', 'Could not load the deliveries: ' + e.message);
    }
  }

  async function openLog(hook) {
    logEndpoint = hook;
    logPager.reset();
    $('log-title').textContent = 'Deliveries to ' + hook.url;
    show($('log'), true);
    await loadLog();
  }

  document.addEventListener('DOMContentLoaded', async () => {
    $('create-open').addEventListener('click', openCreate);
    $('hook-cancel').addEventListener('click', () => $('hook-dialog').close());
    $('hook-form').addEventListener('submit', submitHook);
    rotate = Portal.rotateDialog(async (reply) => {
      await loadHooks();
      showSecret('New signing secret', reply.data.secret);
    });
    $('copy-secret').addEventListener('click',
                                      () => Portal.copyField('secret-value', 'copy-status'));
    $('secret-done').addEventListener('click', () => {
      $('secret-value').value = '';
      $('secret-dialog').close();
    });
    $('log-filters').addEventListener('submit', (e) => {
      e.preventDefault();
      logPager.reset();
      loadLog();
    });
    $('log-refresh').addEventListener('click', () => loadLog());
    $('log-prev').addEventListener('click', () => { logPager.previous(); loadLog(); });
    $('log-next').addEventListener('click', () => { logPager.next(); loadLog(); });
    try {
      await Portal.initSignedIn();
    } catch (e) {
      show($('hooks-loading'), false);
      if (e.status !== 401) fail('hooks-error', 'Could not load the session: ' + e.message);
      return;
    }
    await loadHooks();
  });
})();
