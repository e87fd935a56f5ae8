-- Presence flags: which of the parts few keys have a key has, so that the
-- verification read names only the tables every key needs (docs/storage.md
-- "Presence flags").
--
-- api_keys.has_limits: the key has key_limits rows; api_keys.has_quota: it
-- has a key_quotas row; tenants.has_identity_limits: the tenant has
-- identity_limits rows. A flag that is 0 promises that no such row exists;
-- a flag that is 1 may outlive its rows (the read then finds none). Every
-- statement of the server that adds or removes such rows writes the flag
-- in the same transaction.
--
-- The UPDATEs below set the flags of rows written before this migration.
-- A server of the previous release, still running during a rolling
-- upgrade, adds rows without setting the flag: every server runs the same
-- three statements when it starts serving, so the last replica restarted
-- sets what the previous release left unset.
-- @unless column api_keys.has_limits
ALTER TABLE api_keys
  ADD COLUMN has_limits TINYINT NOT NULL DEFAULT 0,
  ADD COLUMN has_quota TINYINT NOT NULL DEFAULT 0;

-- @unless column tenants.has_identity_limits
ALTER TABLE tenants
  ADD COLUMN has_identity_limits TINYINT NOT NULL DEFAULT 0;

UPDATE api_keys SET has_limits = 1
  WHERE has_limits = 0 AND id IN (SELECT key_id FROM key_limits);

UPDATE api_keys SET has_quota = 1
  WHERE has_quota = 0 AND id IN (SELECT key_id FROM key_quotas);

UPDATE tenants SET has_identity_limits = 1
  WHERE has_identity_limits = 0
  AND id IN (SELECT tenant_id FROM identity_limits);
