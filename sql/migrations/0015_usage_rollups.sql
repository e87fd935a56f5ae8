-- Usage rollups (docs/usage.md): counts of key uses per key, per hour
-- (usage_hourly) and per day (usage_daily), by channel and outcome, written
-- by the batched audit writer in the transaction of the audit rows they
-- count. Separate from audit_events, so a purge of raw audit rows leaves
-- them; no foreign key to api_keys, so a deleted key's counts stay.
--
--   bucket_start: UTC start of the hour or day.
--   key_id: the key, or '' for failures that name no key of the tenant.
--   channel: 'verify' (VerifyApiKey) or 'api' (admin API calls).
--   outcome: 'valid' or the failure reason ('revoked', 'not_found', ...).

CREATE TABLE IF NOT EXISTS usage_hourly (
  tenant_id BIGINT NOT NULL,
  bucket_start DATETIME(6) NOT NULL,
  key_id VARCHAR(12) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  channel VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  outcome VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  uses BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (tenant_id, bucket_start, key_id, channel, outcome),
  KEY idx_usage_key (tenant_id, key_id, bucket_start)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The same columns and keys, one row per day.
CREATE TABLE IF NOT EXISTS usage_daily LIKE usage_hourly;
