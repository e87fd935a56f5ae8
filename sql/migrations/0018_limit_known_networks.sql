-- The networks portal accounts logged in from, shared by the replicas
-- (docs/limits.md "Shared throttles"): the login throttle's account counter
-- exempts them, and every replica must see the same list.
--
-- limit_known_networks: one row per (account, network) with the time of
-- the last successful login from it (microseconds since the Unix epoch on
-- the database clock). Both are opaque counter keys (hex SHA-256 digests
-- of the account and of the client network): the table holds no tenant
-- data, like the other limit_* tables. At most a few rows per account
-- (the oldest are deleted when an account logs in from a new network);
-- rows older than the known-network lifetime are ignored, and deleted by
-- the account's next login or the sweep.
CREATE TABLE IF NOT EXISTS limit_known_networks (
  account_key VARBINARY(160) NOT NULL,
  network_key VARBINARY(160) NOT NULL,
  last_login_us BIGINT NOT NULL,
  PRIMARY KEY (account_key, network_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The sweep of stale counter rows (docs/limits.md "Memory") deletes token
-- buckets untouched for a long time and known networks past their
-- lifetime, a bounded batch at a time, by these indexes.
ALTER TABLE limit_buckets ADD KEY idx_limit_buckets_updated (updated_us);
ALTER TABLE limit_known_networks
  ADD KEY idx_limit_known_networks_last_login (last_login_us);
