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
    document.getElementById('logout').addEventListener('click', async () => {
      try { await api('POST', base + '/api/v1/portal/logout', {}); } catch (e) {}
      location.assign(base + '/login');
    });
    const session = await api('GET', base + '/api/v1/portal/session');
    document.getElementById('user-email').textContent = session.data.user.email;
    return session.data;
  }

  return {slug, base, api, el, show, formatTime, initSignedIn, ApiError};
})();
