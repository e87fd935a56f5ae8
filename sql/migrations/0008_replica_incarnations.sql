-- Replica membership, second version (docs/replication.md, "Membership").
--
-- incarnation: a random value chosen by each server process at start. The
--   row is (id, incarnation), so two processes started with the same
--   --replica_id are two rows and writers wait for both (before, the second
--   replaced the first's row).
-- gap_timeout_us: the replica's --replica_gap_timeout. Tailers abandon a
--   missing seq only after the longest gap timeout of any registered
--   replica, so a writer never relies on a shorter one than its own.
-- anchor_seq / anchor_created_at: the newest feed row the replica has seen,
--   published with applied_seq. A writer counts the replica's applied_seq
--   only while that row still exists as published: after a restore, a
--   lossy failover or a TRUNCATE has rolled the feed back (and seqs are
--   reused), a replica acknowledges nothing until it has re-read the feed.
--
-- Rows written by servers that predate this migration get incarnation '',
-- the old default gap timeout and no anchor (anchor_seq 0: not checked).
--
-- key_changes.announcement: 1 for a row that announces again a change
-- recorded before (a writer whose own row may have been abandoned as a gap,
-- or a Revoke / Delete retried after its wait failed). Tailers treat it like
-- any row (they evict the key); it is not a change of its own, so the
-- history of a key is its rows with announcement = 0.

ALTER TABLE replicas
  ADD COLUMN incarnation CHAR(16) CHARACTER SET ascii COLLATE ascii_bin
    NOT NULL DEFAULT '' AFTER id,
  ADD COLUMN gap_timeout_us BIGINT NOT NULL DEFAULT 1000000 AFTER lease_us,
  ADD COLUMN anchor_seq BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN anchor_created_at DATETIME(6) NULL,
  DROP PRIMARY KEY,
  ADD PRIMARY KEY (id, incarnation);

ALTER TABLE key_changes
  ADD COLUMN announcement TINYINT NOT NULL DEFAULT 0 AFTER key_version;
