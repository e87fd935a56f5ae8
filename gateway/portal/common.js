// Shared by every portal page. Plain script, no build step, no framework.
// Every string that comes from a user or the API is put on the page with
// textContent (never parsed as markup), so nothing a tenant names can run
// as code.
'use strict';

const Portal = (() => {
  const parts = location.pathname.split('/');
  // /t/{slug}/...
  const slug = parts[1] === 't' ? parts[2] : '';
  const base = '/t/' + slug;

  function cookie(name) {
    for (const part of document.cookie.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
    }
    return '';
  }

  // The session's CSRF token: the readable cookie set at login (plain HTTP
  // name first, then the __Host- name used over TLS).
  function csrfToken() {
    return cookie('lumo_csrf') || cookie('__Host-lumo_csrf-' + slug);
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || ('HTTP ' + status));
      this.status = status;
      this.body = body;
    }
  }

  // Calls the gateway with the session cookie. Writes carry the headers the
  // gateway and server require (X-Requested-With, X-CSRF-Token).
  async function api(method, path, body) {
    const headers = {'Accept': 'application/json'};
    if (method !== 'GET') {
      headers['X-Requested-With'] = 'XMLHttpRequest';
      headers['X-CSRF-Token'] = csrfToken();
    }
    const init = {method, headers, credentials: 'same-origin', cache: 'no-store'};
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let parsed = null;
    if (response.status !== 204) {
      try { parsed = await response.json(); } catch (e) { parsed = null; }
    }
    if (!response.ok) {
      if (response.status === 401 && !path.endsWith('/api/v1/portal/login')) {
        location.assign(base + '/login');
      }
      throw new ApiError(response.status, parsed);
    }
    return parsed;
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function formatTime(value) {
    if (!value) return '—';
    const d = new Date(value);
    if (isNaN(d.getTime())) return '—';
    return d.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  }

  const byId = (id) => document.getElementById(id);

  // A button with an accessible name naming its object.
  function button(label, aria, onClick, className) {
    const b = el('button', label, className);
    b.type = 'button';
    b.setAttribute('aria-label', aria);
    b.addEventListener('click', onClick);
    return b;
  }

  // An API error's message, with the field the server named.
  function errorText(e) {
    const field = e.body && e.body.details && e.body.details.field;
    return field ? e.message + ' (' + field + ')' : e.message;
  }

  // The page's modal confirmation (#confirm-dialog, -title, -text, -ok,
  // -cancel, -error) naming the object; resolves to true when confirmed and
  // the action succeeded, false when cancelled. `action` runs while the
  // dialog stays open, so its error can be shown in place.
  function confirmAction(title, text, okLabel, action) {
    const dialog = byId('confirm-dialog');
    byId('confirm-title').textContent = title;
    byId('confirm-text').textContent = text;
    byId('confirm-ok').textContent = okLabel;
    show(byId('confirm-error'), false);
    return new Promise((resolve) => {
      const cleanup = () => {
        byId('confirm-ok').onclick = null;
        byId('confirm-cancel').onclick = null;
        dialog.onclose = null;
      };
      byId('confirm-cancel').onclick = () => dialog.close();
      dialog.onclose = () => { cleanup(); resolve(false); };
      byId('confirm-ok').onclick = async () => {
        byId('confirm-ok').disabled = true;
        try {
          await action();
          dialog.onclose = null;
          cleanup();
          dialog.close();
          resolve(true);
        } catch (e) {
          byId('confirm-error').textContent = e.message;
          show(byId('confirm-error'), true);
        } finally {
          byId('confirm-ok').disabled = false;
        }
      };
      dialog.showModal();
      byId('confirm-cancel').focus();
    });
  }

  // The page's rotate dialog (#rotate-dialog, -form, -text, -grace, -error,
  // -submit, -cancel), wired once per page: open(text, path) asks for the
  // grace period; submitting POSTs {gracePeriodSeconds} to `path`, closes
  // the dialog and awaits `done(reply)` (which shows the new secret). An
  // error is shown in the dialog and nothing else happens.
  // The show-once dialog of a secret (#secret-dialog with #secret-title,
  // #copy-status and the read-only input `inputId`): shows `secret` with
  // its `title`, selected for copying; the input is emptied when the
  // dialog closes, so the secret does not stay in the page.
  function showSecret(title, secret, inputId) {
    document.getElementById('secret-title').textContent = title;
    const input = document.getElementById(inputId);
    input.value = secret;
    document.getElementById('copy-status').textContent = '';
    const dialog = document.getElementById('secret-dialog');
    dialog.onclose = () => { input.value = ''; };
    dialog.showModal();
    input.focus();
    input.select();
  }

  function rotateDialog(done) {
    let path = null;
    byId('rotate-cancel').addEventListener('click', () => byId('rotate-dialog').close());
    byId('rotate-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      byId('rotate-submit').disabled = true;
      try {
        const reply = await api('POST', path,
                                {gracePeriodSeconds: Number(byId('rotate-grace').value)});
        byId('rotate-dialog').close();
        await done(reply);
      } catch (e) {
        byId('rotate-error').textContent = errorText(e);
        show(byId('rotate-error'), true);
      } finally {
        byId('rotate-submit').disabled = false;
      }
    });
    return {
      open(text, target) {
        path = target;
        byId('rotate-form').reset();
        show(byId('rotate-error'), false);
        byId('rotate-text').textContent = text;
        byId('rotate-dialog').showModal();
        byId('rotate-grace').focus();
      },
    };
  }

  // Copies a show-once secret from its readonly field, or selects it for
  // Ctrl+C when the clipboard is not available.
  async function copyField(inputId, statusId) {
    const input = byId(inputId);
    try {
      await navigator.clipboard.writeText(input.value);
      byId(statusId).textContent = 'Copied to the clipboard.';
    } catch (e) {
      input.select();
      byId(statusId).textContent = 'Press Ctrl+C (⌘C) to copy the selected text.';
    }
  }

  // Header of the signed-in pages: tenant, user, navigation, sign-out.
  async function initSignedIn() {
    const name = document.getElementById('tenant-name');
    if (name) name.textContent = slug;
    const keys = document.getElementById('nav-keys');
    const audit = document.getElementById('nav-audit');
    if (keys) keys.href = base + '/portal/settings/api-keys';
    if (audit) audit.href = base + '/portal/audit-logs';
    const policy = document.getElementById('nav-policy');
    if (policy) policy.href = base + '/portal/settings/key-policy';
    const usage = document.getElementById('nav-usage');
    if (usage) usage.href = base + '/portal/usage';
    const webhooks = document.getElementById('nav-webhooks');
    if (webhooks) webhooks.href = base + '/portal/settings/webhooks';
    document.getElementById('logout').addEventListener('click', async () => {
      try { await api('POST', base + '/api/v1/portal/logout', {}); } catch (e) {}
      location.assign(base + '/login');
    });
    const session = await api('GET', base + '/api/v1/portal/session');
    document.getElementById('user-email').textContent = session.data.user.email;
    return session.data;
  }

  // Keyset paging of a list (docs/admin-api.md, "Paging large lists"): the
  // first page is asked with its total (counted up to 10,000), each next
  // one with the previous reply's nextPageToken; going back re-reads the
  // page with the token kept for it. Costs one indexed query per page
  // whatever the tenant's size.
  class Pager {
    constructor(pageSize, noun) {
      this.pageSize = pageSize;
      this.noun = noun;
      this.reset();
    }
    reset() {
      this.tokens = [''];  // tokens[i] reads page i + 1 ('' = the first)
      this.index = 0;
      this.total = null;
    }
    // The paging parameters of the current page, added to `q`.
    params(q) {
      q.set('limit', String(this.pageSize));
      const token = this.tokens[this.index];
      if (token) {
        q.set('pageToken', token);
      } else {
        q.set('includeTotal', 'true');
      }
      return q;
    }
    // Records a reply's meta; returns the text for the page-info line.
    took(meta) {
      if (!meta) return '';
      if (this.index === 0) this.total = {n: meta.total, more: meta.totalRelation === 'gte'};
      this.tokens.length = this.index + 1;
      if (meta.nextPageToken) this.tokens.push(meta.nextPageToken);
      if (!this.total) return 'Page ' + (this.index + 1);
      const more = this.total.more ? '+' : '';
      const pages = Math.max(1, Math.ceil(this.total.n / this.pageSize));
      return 'Page ' + (this.index + 1) + ' of ' + pages + more + ' · ' +
          this.total.n + more + ' ' + this.noun;
    }
    hasPrevious() { return this.index > 0; }
    hasNext() { return this.tokens.length > this.index + 1; }
    next() { if (this.hasNext()) this.index += 1; }
    previous() { if (this.index > 0) this.index -= 1; }
  }

  return {slug, base, api, el, show, formatTime, initSignedIn, ApiError, Pager,
          button, errorText, confirmAction, copyField, rotateDialog,
          showSecret};
})();
