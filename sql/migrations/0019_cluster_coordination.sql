-- Coordination that a multi-primary cluster (Galera) needs where one
-- database node relied on row locks. Conventions as in 0001_init.sql.
--
-- replicas.feed_streams: whether a replica publishes its positions in the
-- per-writer streams (docs/replication.md, "Rolling upgrade from a release
-- without streams"). A server of this release registers with 1; a server
-- of a release before streams, still running during a rolling upgrade,
-- does not name the column, so its row gets 0, and writers wait for it by
-- its applied_seq in the legacy stream instead of by stream positions it
-- never publishes.
-- @unless column replicas.feed_streams
ALTER TABLE replicas
  ADD COLUMN feed_streams TINYINT NOT NULL DEFAULT 0;

-- tenants.webhook_endpoint_creations: bumped by every webhook endpoint
-- creation in its transaction (docs/replication.md, "Row locks are local
-- to a node"). A locking read of the tenant row serialises creations on
-- one node only; a write to it makes concurrent creations through
-- different Galera nodes conflict at certification, so the retried one
-- counts the other's endpoint and the per-tenant cap holds cluster-wide.
-- @unless column tenants.webhook_endpoint_creations
ALTER TABLE tenants
  ADD COLUMN webhook_endpoint_creations BIGINT NOT NULL DEFAULT 0;
