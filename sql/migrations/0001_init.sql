-- LumoKeys initial schema. Runs on MariaDB >= 10.6 and MySQL >= 8.0.
--
-- Conventions:
--   * InnoDB, utf8mb4 everywhere; text compares with utf8mb4_unicode_ci
--     (case-insensitive), identifiers (key ids, slugs) with utf8mb4_bin.
--   * Every DATETIME(6) holds UTC and is written by the server
--     (UTC_TIMESTAMP(6), or a value read from it in the same transaction),
--     never by an application clock.
--   * Every table with tenant data carries tenant_id, and every query but
--     the verify lookup by globally unique key id filters on it, so tenant
--     is a natural shard key.
--   * Optional strings are '' rather than NULL; optional times are NULL.
--   * Statements end with ';' at the end of a line (the migrator splits
--     there); tables are created IF NOT EXISTS so a half-applied file can be
--     re-run.

CREATE TABLE IF NOT EXISTS tenants (
  id BIGINT NOT NULL AUTO_INCREMENT,
  -- [a-z0-9-], validated by the service; compared exactly.
  slug VARCHAR(63) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  name VARCHAR(200) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_tenants_slug (slug)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per key ever created; revoked and deleted keys stay (deleted_at
-- set) so that later use of their id is recognised.
CREATE TABLE IF NOT EXISTS api_keys (
  -- 12 base62 characters, random, globally unique; case matters.
  id CHAR(12) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  tenant_id BIGINT NOT NULL,
  name VARCHAR(100) NOT NULL,
  -- HMAC-SHA256(pepper[pepper_version], full key) of the current secret.
  digest BINARY(32) NOT NULL,
  pepper_version INT NOT NULL,
  -- Canonical scope list, space separated.
  scopes VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  -- Canonical CIDR list, comma separated; '' means any source address.
  allowed_cidrs TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  -- 0: no per-key limit.
  rate_limit_per_minute INT NOT NULL DEFAULT 0,
  revoked TINYINT(1) NOT NULL DEFAULT 0,
  -- Incremented by every change (rotate, revoke, delete); the change feed
  -- and the verify caches compare it.
  version BIGINT NOT NULL DEFAULT 1,
  created_by_type VARCHAR(16) NOT NULL,
  created_by_id VARCHAR(128) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  last_used_at DATETIME(6) NULL,
  expires_at DATETIME(6) NULL,
  rotated_at DATETIME(6) NULL,
  revoked_at DATETIME(6) NULL,
  deleted_at DATETIME(6) NULL,
  PRIMARY KEY (id),
  -- Listing: newest first (default), and by name.
  KEY idx_api_keys_tenant_created (tenant_id, created_at),
  KEY idx_api_keys_tenant_name (tenant_id, name),
  CONSTRAINT fk_api_keys_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
  CONSTRAINT chk_api_keys_revoked CHECK (revoked IN (0, 1))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Secrets replaced by a rotation: they verify until valid_until (the
-- rotation time itself without a grace period) and are kept afterwards so
-- that use of a rotated-away secret is recognised. At most 16 per key (the
-- rotation transaction deletes older ones). key_version is the key's
-- version while this secret was current: unique per key, and its order is
-- the rotation order.
CREATE TABLE IF NOT EXISTS api_key_retired_secrets (
  key_id CHAR(12) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  key_version BIGINT NOT NULL,
  tenant_id BIGINT NOT NULL,
  digest BINARY(32) NOT NULL,
  pepper_version INT NOT NULL,
  retired_at DATETIME(6) NOT NULL,
  valid_until DATETIME(6) NOT NULL,
  PRIMARY KEY (key_id, key_version),
  CONSTRAINT fk_retired_secrets_key FOREIGN KEY (key_id) REFERENCES api_keys (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The change feed: one row per key mutation, written in the mutation's
-- transaction. Replicas tail it by seq to evict cached keys. AUTO_INCREMENT
-- values can commit out of order, so a tailer must not skip a gap that
-- fills later.
CREATE TABLE IF NOT EXISTS key_changes (
  seq BIGINT NOT NULL AUTO_INCREMENT,
  tenant_id BIGINT NOT NULL,
  key_id CHAR(12) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  -- 'created', 'rotated', 'revoked', 'deleted'
  change_type VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- The key's version after the change.
  key_version BIGINT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (seq),
  KEY idx_key_changes_created (created_at),
  CONSTRAINT chk_key_changes_type
    CHECK (change_type IN ('created', 'rotated', 'revoked', 'deleted'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The audit log. Append-only: the service account needs INSERT and SELECT
-- only. tenant_id 0 is reserved for platform events that belong to no
-- tenant. No foreign keys: audit rows outlive what they describe, and the
-- batched writer must not take locks on tenants.
CREATE TABLE IF NOT EXISTS audit_events (
  id BIGINT NOT NULL AUTO_INCREMENT,
  tenant_id BIGINT NOT NULL,
  action VARCHAR(64) NOT NULL,
  category VARCHAR(32) NOT NULL,
  actor_type VARCHAR(16) NOT NULL,
  actor_id VARCHAR(128) NOT NULL DEFAULT '',
  -- '' when the event has no target.
  target_type VARCHAR(32) NOT NULL DEFAULT '',
  target_id VARCHAR(128) NOT NULL DEFAULT '',
  outcome VARCHAR(16) NOT NULL,
  suspicious TINYINT(1) NOT NULL DEFAULT 0,
  ip_address VARCHAR(45) NOT NULL DEFAULT '',
  user_agent VARCHAR(512) NOT NULL DEFAULT '',
  request_id VARCHAR(64) NOT NULL DEFAULT '',
  -- A JSON object, stored as the exact text written (hash chains need the
  -- bytes); never secrets.
  metadata TEXT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  KEY idx_audit_tenant_id (tenant_id, id),
  KEY idx_audit_tenant_created (tenant_id, created_at),
  CONSTRAINT chk_audit_metadata_json CHECK (JSON_VALID(metadata)),
  CONSTRAINT chk_audit_suspicious CHECK (suspicious IN (0, 1))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
