'use strict';

(() => {
  const {api, show, base} = Portal;
  const settingsPath = base + '/api/v1/admin/settings';
  const $ = (id) => document.getElementById(id);
  const numbers = [
    ['p-max-lifetime', 'maxLifetimeDays'],
    ['p-rotation', 'rotationPeriodDays'],
    ['p-warning', 'expiryWarningDays'],
    ['p-inactive', 'inactiveAfterDays'],
  ];

  function fill(policy) {
    $('p-require-expiry').checked = !!policy.requireExpiry;
    for (const [id, member] of numbers) $(id).value = String(policy[member] || 0);
  }

  async function save(event) {
    event.preventDefault();
    show($('policy-error'), false);
    $('policy-status').textContent = '';
    const keyPolicy = {requireExpiry: $('p-require-expiry').checked};
    for (const [id, member] of numbers) {
      const text = $(id).value.trim();
      // Sent as typed: the server names the field of a bad value.
      keyPolicy[member] = /^-?\d+$/.test(text) ? Number(text) : text;
    }
    $('policy-save').disabled = true;
    try {
      const reply = await api('PATCH', settingsPath, {keyPolicy});
      fill(reply.data.keyPolicy);
      $('policy-status').textContent = 'Policy saved.';
    } catch (e) {
      const field = e.body && e.body.details && e.body.details.field;
      $('policy-error').textContent = e.message + (field ? ' (' + field + ')' : '');
      show($('policy-error'), true);
    } finally {
      $('policy-save').disabled = false;
    }
  }

  document.addEventListener('DOMContentLoaded', async () => {
    $('policy-form').addEventListener('submit', save);
    try {
      await Portal.initSignedIn();
      const reply = await api('GET', settingsPath);
      fill(reply.data.keyPolicy || {});
      show($('policy-form'), true);
    } catch (e) {
      if (e.status !== 401) {
        $('policy-error').textContent = 'Could not load the policy: ' + e.message;
        show($('policy-error'), true);
      }
    } finally {
      show($('policy-loading'), false);
    }
  });
})();
