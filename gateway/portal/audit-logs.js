'use strict';

(() => {
  const {api, el, show, formatTime, base} = Portal;
  const auditPath = base + '/api/v1/admin/audit-logs';
  const $ = (id) => document.getElementById(id);
  const pager = new Portal.Pager(25, 'events');
  // Key names by id, read once per id (null: the key is gone).
  const keyNames = new Map();

  function dayStart(value) { return value ? value + 'T00:00:00Z' : ''; }
  function dayEnd(value) { return value ? value + 'T23:59:59Z' : ''; }

  function filterParams() {
    const q = new URLSearchParams();
    const action = $('f-action').value.trim();
    if (action) q.set('action', action);
    if ($('f-outcome').value) q.set('outcome', $('f-outcome').value);
    if ($('f-suspicious').value) q.set('suspicious', $('f-suspicious').value);
    const key = $('f-key').value.trim();
    if (key) q.set('targetId', key);
    const actor = $('f-actor').value.trim();
    if (actor) q.set('actorId', actor);
    if ($('f-from').value) q.set('startDate', dayStart($('f-from').value));
    if ($('f-to').value) q.set('endDate', dayEnd($('f-to').value));
    return q;
  }

  // The export links: the streamed export of everything the filters
  // match (the browser downloads it as it arrives), CSV or JSON Lines.
  function updateExportLinks() {
    for (const format of ['csv', 'json']) {
      const q = filterParams();
      q.delete('startDate');
      q.delete('endDate');
      q.set('format', format);
      if ($('f-from').value) q.set('from', dayStart($('f-from').value));
      if ($('f-to').value) q.set('to', dayEnd($('f-to').value));
      $('export-' + format).href = auditPath + '/export?' + q.toString();
    }
  }

  // A key by its name with the id beside it; a deleted key by its id.
  function keyText(id) {
    const name = keyNames.get(id);
    if (name === undefined) return 'key ' + id;
    return name === null ? 'key ' + id + ' (deleted)' : name + ' (' + id + ')';
  }

  // Users by e-mail (the server fills it), keys by name, others by type.
  function actorText(actor) {
    if (!actor) return '—';
    if (actor.email) return actor.email;
    if (actor.type === 'api_key' && actor.id) return keyText(actor.id);
    return actor.type + ' ' + (actor.id || '');
  }

  function targetText(target) {
    if (!target) return '—';
    if (target.type === 'api_key' && target.id) return keyText(target.id);
    return target.type + ' ' + target.id;
  }

  // Reads the names of the keys the events name that are not known yet.
  async function resolveKeys(events) {
    const ids = new Set();
    for (const e of events) {
      for (const party of [e.actor, e.target]) {
        if (party && party.type === 'api_key' && party.id && !keyNames.has(party.id)) {
          ids.add(party.id);
        }
      }
    }
    await Promise.all([...ids].map(async (id) => {
      try {
        const reply = await api('GET', base + '/api/v1/admin/api-keys/' + encodeURIComponent(id));
        keyNames.set(id, reply.data.name);
      } catch (e) {
        if (e.status === 404) keyNames.set(id, null);
      }
    }));
  }

  async function showDetail(id) {
    try {
      const reply = await api('GET', auditPath + '/' + encodeURIComponent(id));
      $('detail-title').textContent = 'Event ' + reply.data.action;
      // JSON text inside <pre>, as text.
      $('detail-body').textContent = JSON.stringify(reply.data, null, 2);
      $('detail-dialog').showModal();
    } catch (e) {
      $('audit-error').textContent = 'Could not load the event: ' + e.message;
      show($('audit-error'), true);
    }
  }

  function render(events, meta) {
    const body = $('audit-body');
    body.replaceChildren();
    for (const e of events) {
      const row = el('tr', null, e.suspicious ? 'suspicious' : '');
      row.append(el('td', formatTime(e.timestamp)));
      const action = el('td', e.action);
      if (e.suspicious) action.append(el('span', 'suspicious', 'badge badge-revoked'));
      row.append(action);
      row.append(el('td', actorText(e.actor)));
      row.append(el('td', targetText(e.target)));
      row.append(el('td', e.outcome));
      row.append(el('td', e.ipAddress || ''));
      const cell = el('td');
      const b = el('button', 'Details');
      b.type = 'button';
      b.setAttribute('aria-label', 'Details of event ' + e.id);
      b.addEventListener('click', () => showDetail(e.id));
      cell.append(b);
      row.append(cell);
      body.append(row);
    }
    show($('audit-table'), events.length > 0);
    show($('audit-empty'), events.length === 0);
    $('page-info').textContent = pager.took(meta);
    $('prev-page').disabled = !pager.hasPrevious();
    $('next-page').disabled = !pager.hasNext();
  }

  async function load() {
    show($('audit-error'), false);
    show($('audit-loading'), true);
    const q = pager.params(filterParams());
    try {
      const reply = await api('GET', auditPath + '?' + q.toString());
      await resolveKeys(reply.data || []);
      render(reply.data || [], reply.meta);
    } catch (e) {
      $('audit-error').textContent = 'Could not load the audit log: ' + e.message;
      show($('audit-error'), true);
    } finally {
      show($('audit-loading'), false);
    }
  }

  document.addEventListener('DOMContentLoaded', async () => {
    $('filters').addEventListener('submit', (event) => {
      event.preventDefault();
      pager.reset();
      updateExportLinks();
      load();
    });
    $('prev-page').addEventListener('click', () => { pager.previous(); load(); });
    $('next-page').addEventListener('click', () => { pager.next(); load(); });
    $('detail-close').addEventListener('click', () => $('detail-dialog').close());
    updateExportLinks();
    try {
      await Portal.initSignedIn();
    } catch (e) {
      show($('audit-loading'), false);
      return;
    }
    await load();
  });
})();
