-- Replica membership for acknowledged revocation (docs/replication.md).
--
-- One row per running server process. A replica inserts its row at start,
-- renews heartbeat_at (database clock) after every successful round of
-- tailing key_changes, publishes in applied_seq the change-feed position up
-- to which every change is applied to its verify cache, and deletes its row
-- on a clean shutdown. A replica is live while
-- heartbeat_at + lease_us > UTC_TIMESTAMP(6); a mutation that kills a
-- secret returns only when every other live replica has applied_seq >= the
-- mutation's change. Rows of crashed replicas stop counting when their
-- lease runs out and are pruned by later registrations.
CREATE TABLE IF NOT EXISTS replicas (
  -- Random, chosen by the process (or --replica_id).
  id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- host:port the replica serves on, host name and pid: for operators.
  address VARCHAR(255) NOT NULL DEFAULT '',
  hostname VARCHAR(255) NOT NULL DEFAULT '',
  pid BIGINT NOT NULL DEFAULT 0,
  started_at DATETIME(6) NOT NULL,
  heartbeat_at DATETIME(6) NOT NULL,
  -- The replica's lease in microseconds; it stops answering from its cache
  -- before heartbeat_at + lease_us (on its own monotonic clock).
  lease_us BIGINT NOT NULL,
  -- Every key_changes row with seq <= applied_seq is applied (or was a gap
  -- abandoned after the gap timeout; see docs/replication.md).
  applied_seq BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  KEY idx_replicas_heartbeat (heartbeat_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
