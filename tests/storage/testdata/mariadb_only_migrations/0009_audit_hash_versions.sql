-- A hash version per audit row (docs/audit.md "Hash versions"): which rule
-- the row's hash was computed with. Conventions as in 0001_init.sql.
--
-- Every row written before this migration hashed its created_at as the
-- database's DATETIME text and gets version 1 (the column default), so it
-- keeps verifying exactly as before; the server writes version 2 (canonical
-- values) from now on. A server of the previous release still running
-- during an upgrade writes rows without the column, which therefore get
-- version 1, the rule that server used. No row is rewritten.

ALTER TABLE audit_events
  ADD COLUMN IF NOT EXISTS hash_version TINYINT NOT NULL DEFAULT 1 AFTER hash;
