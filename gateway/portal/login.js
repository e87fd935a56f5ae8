'use strict';

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('tenant-name').textContent = Portal.slug;
  const form = document.getElementById('login-form');
  const error = document.getElementById('login-error');
  const submit = document.getElementById('login-submit');
  document.getElementById('email').focus();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    Portal.show(error, false);
    submit.disabled = true;
    try {
      await Portal.api('POST', Portal.base + '/api/v1/portal/login', {
        email: document.getElementById('email').value,
        password: document.getElementById('password').value,
      });
      location.assign(Portal.base + '/portal/settings/api-keys');
    } catch (e) {
      let message = 'Sign-in failed. Please try again.';
      if (e.status === 401) message = 'Invalid email or password.';
      if (e.status === 429) message = 'Too many failed attempts. Please wait a few minutes and try again.';
      error.textContent = message;
      Portal.show(error, true);
      document.getElementById('password').value = '';
      document.getElementById('password').focus();
    } finally {
      submit.disabled = false;
    }
  });
});
