-- Webhooks, leaked-key reports and decoy keys (docs/webhooks.md).
-- Conventions as in 0001_init.sql.
--
-- The outbox tables (webhook_events, webhook_deliveries) are written inside
-- the transaction of the audit event they carry, by lifecycle transactions
-- and by the batched audit writer alike. They have no foreign keys to
-- tenants or endpoints: a foreign-key check takes a shared lock on the
-- parent row, and those transactions must not wait on (or deadlock with) an
-- endpoint being changed. The delivery worker checks the endpoint when it
-- claims a delivery instead.
--
-- Rewritten without MariaDB-only DDL (ADD COLUMN IF NOT EXISTS), which
-- MySQL 8.0 cannot parse: the migrator's guards (-- @unless) make the
-- statements re-runnable instead. Same effect as the text databases applied
-- before, whose checksum is accepted:
-- @supersedes 7e0cdd77d887109a7480e434de586222535566aa56e23c425b6028d2059febe3

-- A tenant's webhook endpoints. The signing secret is kept encrypted
-- (AES-256-GCM under a key derived from pepper `secret_pepper_version`,
-- the endpoint id as associated data): the server needs it to sign.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
  -- 'whk_' + 16 base62 characters, random; case matters.
  id CHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  tenant_id BIGINT NOT NULL,
  url VARCHAR(2048) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  description VARCHAR(200) NOT NULL DEFAULT '',
  -- Canonical list of event types, comma separated; '' means every type.
  event_types VARCHAR(1024) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  enabled TINYINT(1) NOT NULL DEFAULT 1,
  -- '' while enabled; 'manual' or 'failures'.
  disabled_reason VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
  -- nonce (12) || ciphertext || tag (16).
  secret_sealed VARBINARY(128) NOT NULL,
  secret_pepper_version INT NOT NULL,
  -- 'whsec_' and the first 4 characters of the secret.
  secret_prefix VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- The secret replaced by the last rotation, still signing until
  -- previous_secret_valid_until.
  previous_secret_sealed VARBINARY(128) NULL,
  previous_secret_pepper_version INT NULL,
  previous_secret_valid_until DATETIME(6) NULL,
  secret_rotated_at DATETIME(6) NULL,
  -- Failed attempts since the last success, and when the first of them
  -- failed (NULL while the count is 0).
  consecutive_failures INT NOT NULL DEFAULT 0,
  failing_since DATETIME(6) NULL,
  version BIGINT NOT NULL DEFAULT 1,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  KEY idx_webhook_endpoints_tenant (tenant_id, created_at),
  CONSTRAINT chk_webhook_endpoints_enabled CHECK (enabled IN (0, 1)),
  CONSTRAINT chk_webhook_endpoints_reason
    CHECK (disabled_reason IN ('', 'manual', 'failures'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per audit event that at least one endpoint receives: the facts
-- the payload is rendered from (a copy of the audit row, so the outbox does
-- not depend on audit retention), and the public event id receivers
-- de-duplicate on.
CREATE TABLE IF NOT EXISTS webhook_events (
  id BIGINT NOT NULL AUTO_INCREMENT,
  -- 'evt_' + 22 base62 characters, random.
  event_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  tenant_id BIGINT NOT NULL,
  event_type VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  action VARCHAR(64) NOT NULL,
  category VARCHAR(32) NOT NULL,
  actor_type VARCHAR(16) NOT NULL,
  actor_id VARCHAR(128) NOT NULL DEFAULT '',
  target_type VARCHAR(32) NOT NULL DEFAULT '',
  target_id VARCHAR(128) NOT NULL DEFAULT '',
  outcome VARCHAR(16) NOT NULL,
  suspicious TINYINT(1) NOT NULL DEFAULT 0,
  ip_address VARCHAR(45) NOT NULL DEFAULT '',
  user_agent VARCHAR(512) NOT NULL DEFAULT '',
  request_id VARCHAR(64) NOT NULL DEFAULT '',
  metadata TEXT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_webhook_events_event_id (event_id),
  KEY idx_webhook_events_created (created_at),
  CONSTRAINT chk_webhook_events_metadata_json CHECK (JSON_VALID(metadata))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One endpoint's copy of an event: its delivery state, the claim (lease)
-- and the last attempt, which the delivery log shows.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
  id BIGINT NOT NULL AUTO_INCREMENT,
  tenant_id BIGINT NOT NULL,
  endpoint_id CHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  event_row BIGINT NOT NULL,
  state VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  attempts INT NOT NULL DEFAULT 0,
  -- When the next attempt is due; while claimed, the end of the lease.
  next_attempt_at DATETIME(6) NOT NULL,
  -- Random per claim; an attempt's outcome is written only under it.
  lease_token CHAR(22) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
  last_attempt_at DATETIME(6) NULL,
  -- 0: no HTTP status (the attempt failed before one was read).
  last_http_status INT NOT NULL DEFAULT 0,
  last_latency_ms INT NOT NULL DEFAULT 0,
  last_error VARCHAR(255) NOT NULL DEFAULT '',
  delivered_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  -- Claiming: due pending deliveries, oldest due first.
  KEY idx_webhook_deliveries_due (state, next_attempt_at),
  -- The delivery log of one endpoint, newest first.
  KEY idx_webhook_deliveries_endpoint (endpoint_id, id),
  CONSTRAINT fk_webhook_deliveries_event FOREIGN KEY (event_row) REFERENCES webhook_events (id),
  CONSTRAINT chk_webhook_deliveries_state
    CHECK (state IN ('pending', 'delivered', 'failed', 'cancelled'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Decoy keys: created like keys, never valid (docs/webhooks.md "Decoy
-- keys"). Fixed at creation.
-- @unless column api_keys.decoy
ALTER TABLE api_keys
  ADD COLUMN decoy TINYINT(1) NOT NULL DEFAULT 0;

-- What a secret-scanning report of one of the tenant's live keys does.
-- @unless column tenant_settings.leak_response
ALTER TABLE tenant_settings
  ADD COLUMN leak_response VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'revoke';

-- Secrets already reported as leaked, so that a repeated report changes
-- nothing and writes nothing again. `secret_version` is the key version in
-- which the reported secret was current.
CREATE TABLE IF NOT EXISTS leaked_key_reports (
  key_id CHAR(12) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  secret_version BIGINT NOT NULL,
  tenant_id BIGINT NOT NULL,
  url VARCHAR(2048) NOT NULL DEFAULT '',
  source VARCHAR(64) NOT NULL DEFAULT '',
  reported_at DATETIME(6) NOT NULL,
  PRIMARY KEY (key_id, secret_version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
