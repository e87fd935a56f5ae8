-- Leaked-key reports keyed by the reported secret (docs/webhooks.md,
-- "Leaked-key intake"). A report names a secret, not a key version: a key's
-- version moves with every edit, and a secret reported while current must
-- be recognised again after a rotation retired it. The stored digest
-- (HMAC-SHA256 under the key's pepper, as in api_keys and
-- api_key_retired_secrets) names the secret without holding it.
--
-- leaked_key_reports (0014) was never written by any release; it goes.
CREATE TABLE IF NOT EXISTS leaked_secret_reports (
  key_id CHAR(12) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  digest BINARY(32) NOT NULL,
  tenant_id BIGINT NOT NULL,
  url VARCHAR(2048) NOT NULL DEFAULT '',
  source VARCHAR(64) NOT NULL DEFAULT '',
  reported_at DATETIME(6) NOT NULL,
  PRIMARY KEY (key_id, digest)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

DROP TABLE IF EXISTS leaked_key_reports;
