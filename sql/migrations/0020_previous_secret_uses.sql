-- Rotation stragglers and webhook retention (docs/webhooks.md, "Rotation
-- stragglers" and "Retention").
--
-- previous_secret_uses: one row per key, rotation, client address and user
-- agent that presented a retired secret while it was in its grace period,
-- written by the batched audit writer in the transaction of the use's
-- api_key.used event. user_agent_hash (SHA-256 of the agent) stands for the
-- agent in the primary key, whose full text would not fit an index. Rows of
-- rotations older than the longest grace period are purged
-- (idx_previous_secret_uses_rotated).
--
-- idx_webhook_deliveries_created: the purge of finished deliveries walks
-- them by age instead of every row.
CREATE TABLE IF NOT EXISTS previous_secret_uses (
  key_id CHAR(12) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  rotated_at DATETIME(6) NOT NULL,
  ip_address VARCHAR(45) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  user_agent_hash BINARY(32) NOT NULL,
  tenant_id BIGINT NOT NULL,
  user_agent VARCHAR(512) NOT NULL,
  last_seen_at DATETIME(6) NOT NULL,
  uses BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (key_id, rotated_at, ip_address, user_agent_hash),
  KEY idx_previous_secret_uses_rotated (rotated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

ALTER TABLE webhook_deliveries
  ADD KEY idx_webhook_deliveries_created (created_at);
