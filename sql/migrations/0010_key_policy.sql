-- Keys that are managed for years (docs/api-keys.md, "Managing a key over
-- years"): editable owner data, a reversible disable, the tenant's key
-- policy, and what the key-state sweep last announced per key.
--
-- api_keys:
--   disabled / disabled_at: a reversible pause; verification answers
--     DISABLED while set. Revocation stays final and separate.
--   external_id: the tenant's own owner/service id ('' = none).
--   metadata: the tenant's string map as a JSON object text ('' = none);
--     at most 20 entries and 4,096 bytes of keys and values, validated by
--     the service; TEXT leaves room for JSON escaping. Default '' (an
--     expression default, which a TEXT column accepts), so inserts that
--     predate the column keep working.
--   rotation_due_announced_for / expiring_announced_for /
--     inactive_announced_for: the date for which the sweep last wrote the
--     state's audit event (the due date, the expiry, the last-use
--     baseline); NULL when never announced. The sweep writes an event only
--     by moving the column from the value it read, in the same transaction,
--     so one state change gives one event whoever sweeps.
--
-- tenant_settings: the key policy; 0 means "not set" for every number.
--   Defaults hold for tenants without a row (docs/api-keys.md).
--
-- key_state_sweep_lease: one row; the replica holding an unexpired lease
--   (database clock) is the only one sweeping.

ALTER TABLE api_keys
  ADD COLUMN disabled TINYINT(1) NOT NULL DEFAULT 0 AFTER revoked,
  ADD COLUMN disabled_at DATETIME(6) NULL AFTER revoked_at,
  ADD COLUMN external_id VARCHAR(128) NOT NULL DEFAULT '' AFTER name,
  ADD COLUMN metadata TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin
    NOT NULL DEFAULT ('') AFTER external_id,
  ADD COLUMN rotation_due_announced_for DATETIME(6) NULL,
  ADD COLUMN expiring_announced_for DATETIME(6) NULL,
  ADD COLUMN inactive_announced_for DATETIME(6) NULL,
  ADD KEY idx_api_keys_tenant_external (tenant_id, external_id),
  ADD KEY idx_api_keys_tenant_expires (tenant_id, expires_at),
  ADD KEY idx_api_keys_tenant_last_used (tenant_id, last_used_at),
  ADD CONSTRAINT chk_api_keys_disabled CHECK (disabled IN (0, 1));

ALTER TABLE tenant_settings
  ADD COLUMN key_require_expiry TINYINT(1) NOT NULL DEFAULT 0,
  ADD COLUMN key_max_lifetime_days INT NOT NULL DEFAULT 0,
  ADD COLUMN key_rotation_period_days INT NOT NULL DEFAULT 0,
  ADD COLUMN key_expiry_warning_days INT NOT NULL DEFAULT 7,
  ADD COLUMN key_inactive_after_days INT NOT NULL DEFAULT 0,
  ADD CONSTRAINT chk_tenant_settings_key_policy
    CHECK (key_require_expiry IN (0, 1)
       AND key_max_lifetime_days BETWEEN 0 AND 3650
       AND key_rotation_period_days BETWEEN 0 AND 3650
       AND key_expiry_warning_days BETWEEN 0 AND 365
       AND key_inactive_after_days BETWEEN 0 AND 3650);

CREATE TABLE IF NOT EXISTS key_state_sweep_lease (
  id TINYINT NOT NULL,
  holder VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  expires_at DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  CONSTRAINT chk_key_state_sweep_lease_id CHECK (id = 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The change feed records edits, disables and enables too.
ALTER TABLE key_changes DROP CONSTRAINT chk_key_changes_type;

ALTER TABLE key_changes ADD CONSTRAINT chk_key_changes_type
  CHECK (change_type IN ('created', 'rotated', 'revoked', 'deleted',
                         'updated', 'disabled', 'enabled'));
