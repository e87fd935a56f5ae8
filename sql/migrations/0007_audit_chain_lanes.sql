-- Several audit hash chains per tenant ("lanes", docs/audit.md "Chain
-- lanes"), so that lifecycle and admin transactions of one tenant no longer
-- wait for each other's chain-head lock. Conventions as in 0001_init.sql.
--
-- Lane 0 is the batched usage/authentication writer's chain and holds every
-- row written before this migration (its seq/prev_hash/hash are unchanged);
-- lanes 1..16 are taken by lifecycle and admin transactions, one lane per
-- transaction. Each lane is a chain of its own: seq counts from 1 within
-- (tenant, lane) and hash = SHA-256(prev_hash || canonical(row)) exactly as
-- before. No row is rewritten, so existing chains verify as they did.
--
-- Rewritten without MariaDB-only DDL (IF [NOT] EXISTS on columns and
-- indexes), which MySQL 8.0 cannot parse: the migrator's guards (-- @if,
-- -- @unless) make the statements re-runnable instead. Same effect as the
-- text databases applied before, whose checksum is accepted:
-- @supersedes af41b4252fa726ff4eba5973d8a5795de19a4785183f6e896257096e18c52ca8

-- @unless column audit_chain_heads.lane
ALTER TABLE audit_chain_heads
  ADD COLUMN lane INT NOT NULL DEFAULT 0 AFTER tenant_id;
ALTER TABLE audit_chain_heads DROP PRIMARY KEY, ADD PRIMARY KEY (tenant_id, lane);

-- @unless column audit_events.chain_lane
ALTER TABLE audit_events
  ADD COLUMN chain_lane INT NOT NULL DEFAULT 0 AFTER seq;

-- One position per (tenant, lane); also the index a lane's walk reads in
-- chain order.
-- @unless index audit_events.uq_audit_tenant_lane_seq
CREATE UNIQUE INDEX uq_audit_tenant_lane_seq
  ON audit_events (tenant_id, chain_lane, seq);
-- @if index audit_events.uq_audit_tenant_seq
DROP INDEX uq_audit_tenant_seq ON audit_events;

-- Every lane's head exists for every tenant (and the platform pseudo-tenant
-- 0) before any transaction appends: appends only lock existing heads, and
-- the server creates all of a new tenant's heads in the tenant's own
-- transaction. 16 = kTransactionChainLanes (server/storage/audit_chain.h).
INSERT IGNORE INTO audit_chain_heads (tenant_id, lane, last_seq, last_hash)
  SELECT t.id, l.lane, 0, x'0000000000000000000000000000000000000000000000000000000000000000'
  FROM (SELECT 0 AS id UNION ALL SELECT id FROM tenants) t,
       (SELECT 0 AS lane UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL
        SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION
        ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9 UNION ALL SELECT 10
        UNION ALL SELECT 11 UNION ALL SELECT 12 UNION ALL SELECT 13 UNION ALL
        SELECT 14 UNION ALL SELECT 15 UNION ALL SELECT 16) l;
