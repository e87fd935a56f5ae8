-- Per-writer streams of the change feed (docs/replication.md, "On a Galera
-- cluster"). Conventions as in 0001_init.sql; written in syntax MySQL 8.0
-- and MariaDB both accept, re-runnable through the migrator's guards.
--
-- key_changes.writer is the incarnation of the server process that wrote
-- the row (replicas.incarnation) and wseq its position in that writer's
-- stream (1, 2, 3, ... per process, never reused). Rows written before
-- this migration, and rows of servers of the previous release still running
-- during an upgrade, have writer '' and wseq NULL: the legacy stream, read
-- by seq as before. A 'void' row closes a hole its writer left (a
-- transaction that drew a wseq and rolled back or whose outcome is
-- unknown); it changes no key. The old CHECK is replaced by one that also
-- admits 'void' (a new name: one statement drops and adds).

-- @unless column key_changes.writer
ALTER TABLE key_changes
  ADD COLUMN writer CHAR(16) CHARACTER SET ascii COLLATE ascii_bin
    NOT NULL DEFAULT '' AFTER seq,
  ADD COLUMN wseq BIGINT NULL AFTER writer,
  ADD UNIQUE KEY uq_key_changes_stream (writer, wseq),
  DROP CONSTRAINT chk_key_changes_type,
  ADD CONSTRAINT chk_key_changes_change_type
    CHECK (change_type IN ('created', 'rotated', 'revoked', 'deleted',
                           'updated', 'disabled', 'enabled', 'void'));

-- Each tailer's position in each writer's stream: every row of `writer`
-- with wseq <= applied_wseq is applied by the reader (reader_id,
-- reader_incarnation = replicas.id, replicas.incarnation), or was a hole
-- abandoned after the gap timeout. A writer waiting for its wseq w is
-- acknowledged when every other live replica has a row here for it with
-- applied_wseq >= w. Rows go with the reader's or the writer's replicas row
-- when it is pruned.
CREATE TABLE IF NOT EXISTS feed_positions (
  reader_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  reader_incarnation CHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  writer CHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  applied_wseq BIGINT NOT NULL,
  PRIMARY KEY (reader_id, reader_incarnation, writer),
  KEY idx_feed_positions_writer (writer, applied_wseq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
