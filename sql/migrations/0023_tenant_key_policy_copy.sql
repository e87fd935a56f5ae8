-- A copy of each tenant's key policy on its tenants row, so that the
-- verification read (which names the tenant for its slug and identity-limit
-- flag) need not name tenant_settings as well (docs/storage.md "What the
-- verification read names").
--
-- tenant_settings stays the policy's home: every settings write copies the
-- five key_* values to the tenants row in the same transaction, with that
-- row locked. The defaults are those of a tenant without a settings row
-- (docs/api-keys.md "Tenant key policy"). The UPDATE below copies the
-- policies set before this migration. A server of the previous release,
-- still running during a rolling upgrade, writes settings without the copy:
-- every server corrects differing copies when it starts serving, under the
-- same tenant row lock the settings writers take.
-- @unless column tenants.key_require_expiry
ALTER TABLE tenants
  ADD COLUMN key_require_expiry TINYINT(1) NOT NULL DEFAULT 0,
  ADD COLUMN key_max_lifetime_days INT NOT NULL DEFAULT 0,
  ADD COLUMN key_rotation_period_days INT NOT NULL DEFAULT 0,
  ADD COLUMN key_expiry_warning_days INT NOT NULL DEFAULT 7,
  ADD COLUMN key_inactive_after_days INT NOT NULL DEFAULT 0;

UPDATE tenants t JOIN tenant_settings ts ON ts.tenant_id = t.id
  SET t.key_require_expiry = ts.key_require_expiry,
      t.key_max_lifetime_days = ts.key_max_lifetime_days,
      t.key_rotation_period_days = ts.key_rotation_period_days,
      t.key_expiry_warning_days = ts.key_expiry_warning_days,
      t.key_inactive_after_days = ts.key_inactive_after_days;
