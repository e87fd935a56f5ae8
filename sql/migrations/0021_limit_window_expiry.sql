-- The sweep of window rows of counters no longer leased (docs/limits.md
-- "Memory").
--
-- limit_windows.expires_us: when the slot has left every window it counts
-- in (the start of slot + 61 on the database clock, microseconds since the
-- Unix epoch), written by the lease that adds to the slot, which alone
-- knows the slot's length. A row past it counts for nothing, so the sweep
-- deletes it by this index. Rows written before this migration (or by a
-- server of the release before, during a rolling upgrade) keep the default,
-- the largest BIGINT: never deleted by the sweep, pruned by their counter's
-- next lease as before.
--
-- A limit_window_heads row whose counter has no slot row left is deleted
-- by the sweep too: a lease of its counter inserts it again.
ALTER TABLE limit_windows
  ADD COLUMN expires_us BIGINT NOT NULL DEFAULT 9223372036854775807,
  ADD KEY idx_limit_windows_expires (expires_us);
