-- Limits counted across replicas (docs/limits.md).
--
-- key_limits: the named rate limits of a key (at most 10 per key, checked
--   by the service): `limit_count` requests per `duration_ms`.
-- key_quotas: a key's credits. `remaining` is what the database has not
--   leased out; with a refill (`refill_amount` and `refill_interval_ms`
--   both set) `remaining` is reset to `refill_amount` at every interval
--   after `period_start_us`. `epoch` grows at every refill and every set
--   or add: a return of leased credits counts only in its own epoch.
-- identity_limits: named rate limits shared by every key of one identity
--   (tenant, externalId); read once keys carry an externalId.
-- limit_window_heads / limit_windows: the sliding-window counters. A head
--   row per counter serialises its grants; one row per slot holds the
--   tokens granted in it (slot = floor(unix ms / slot length)).
-- limit_buckets: token buckets shared by the replicas (the failure and
--   login throttles): tokens as of `updated_us`.
-- The counter tables (limit_*) are server state keyed by counter, like
--   `replicas`, not tenant data: they carry no tenant_id. key_limits and
--   key_quotas carry their key's tenant_id like every tenant table.
-- Times are microseconds since the Unix epoch on the database clock.

CREATE TABLE key_limits (
  key_id CHAR(12) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  tenant_id BIGINT NOT NULL,
  name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  limit_count BIGINT NOT NULL,
  duration_ms BIGINT NOT NULL,
  PRIMARY KEY (key_id, name),
  CONSTRAINT fk_key_limits_key FOREIGN KEY (key_id) REFERENCES api_keys (id),
  CONSTRAINT fk_key_limits_tenant FOREIGN KEY (tenant_id)
    REFERENCES tenants (id),
  CONSTRAINT chk_key_limits_positive CHECK (limit_count > 0 AND duration_ms > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE key_quotas (
  key_id CHAR(12) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  tenant_id BIGINT NOT NULL,
  remaining BIGINT NOT NULL,
  refill_amount BIGINT NULL,
  refill_interval_ms BIGINT NULL,
  period_start_us BIGINT NOT NULL,
  epoch BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (key_id),
  CONSTRAINT fk_key_quotas_key FOREIGN KEY (key_id) REFERENCES api_keys (id),
  CONSTRAINT fk_key_quotas_tenant FOREIGN KEY (tenant_id)
    REFERENCES tenants (id),
  CONSTRAINT chk_key_quotas_remaining CHECK (remaining >= 0),
  CONSTRAINT chk_key_quotas_refill CHECK (
    (refill_amount IS NULL AND refill_interval_ms IS NULL) OR
    (refill_amount > 0 AND refill_interval_ms > 0))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE identity_limits (
  tenant_id BIGINT NOT NULL,
  external_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  limit_count BIGINT NOT NULL,
  duration_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, external_id, name),
  CONSTRAINT fk_identity_limits_tenant FOREIGN KEY (tenant_id)
    REFERENCES tenants (id),
  CONSTRAINT chk_identity_limits_positive
    CHECK (limit_count > 0 AND duration_ms > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE limit_window_heads (
  counter_key VARBINARY(160) NOT NULL,
  PRIMARY KEY (counter_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE limit_windows (
  counter_key VARBINARY(160) NOT NULL,
  slot BIGINT NOT NULL,
  granted BIGINT NOT NULL,
  PRIMARY KEY (counter_key, slot)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE limit_buckets (
  counter_key VARBINARY(160) NOT NULL,
  tokens DOUBLE NOT NULL,
  updated_us BIGINT NOT NULL,
  PRIMARY KEY (counter_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
