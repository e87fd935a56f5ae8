-- Tamper evidence for the audit log: a per-tenant hash chain.
-- Conventions as in 0001_init.sql. See docs/audit.md for the canonical
-- encoding and the verification walk.
--
-- Every audit row written from now on carries its tenant's next sequence
-- number, the previous row's hash and
--   hash = SHA-256(prev_hash || canonical(row))
-- (prev_hash of a tenant's first row: 32 zero bytes). Rows written before
-- this migration keep seq NULL and are outside the chain.
--
-- Grants (tools/dev/up.sh applies them): the runtime account needs INSERT
-- and SELECT on audit_events (never UPDATE or DELETE), and SELECT, INSERT
-- and UPDATE on audit_chain_heads.
--
-- Rewritten without MariaDB-only DDL (IF [NOT] EXISTS on columns and
-- indexes), which MySQL 8.0 cannot parse: the migrator's guards (-- @if,
-- -- @unless) make the statements re-runnable instead. Same effect as the
-- text databases applied before, whose checksum is accepted:
-- @supersedes f8c481bf6319d8c22c37a14f2c879fd537d711d5caacf4c14374c7500e3c89a4

-- @unless column audit_events.seq
-- @unless column audit_events.prev_hash
-- @unless column audit_events.hash
ALTER TABLE audit_events
  ADD COLUMN seq BIGINT NULL,
  ADD COLUMN prev_hash BINARY(32) NULL,
  ADD COLUMN hash BINARY(32) NULL;

-- One chain position per tenant; also the read side's index for listing
-- in chain order.
-- @unless index audit_events.uq_audit_tenant_seq
CREATE UNIQUE INDEX uq_audit_tenant_seq
  ON audit_events (tenant_id, seq);

-- @unless index audit_events.idx_audit_tenant_suspicious
CREATE INDEX idx_audit_tenant_suspicious
  ON audit_events (tenant_id, suspicious, id);

-- The head of each tenant's chain. Every transaction that appends audit
-- rows locks its tenant's head row (SELECT ... FOR UPDATE) first, so
-- appends to one tenant's chain are serialised and gap-free. base_seq and
-- base_hash describe where the stored chain starts: 0 and zero bytes until
-- a retention purge removes older rows, after which they are the sequence
-- and hash of the last purged row (the hash at the cut).
CREATE TABLE IF NOT EXISTS audit_chain_heads (
  tenant_id BIGINT NOT NULL,
  last_seq BIGINT NOT NULL,
  last_hash BINARY(32) NOT NULL,
  base_seq BIGINT NOT NULL DEFAULT 0,
  base_hash BINARY(32) NOT NULL DEFAULT x'0000000000000000000000000000000000000000000000000000000000000000',
  PRIMARY KEY (tenant_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Heads for the platform pseudo-tenant 0 and every existing tenant, so that
-- appends normally find their head row (no gap locks on first use).
INSERT IGNORE INTO audit_chain_heads (tenant_id, last_seq, last_hash)
  VALUES (0, 0, x'0000000000000000000000000000000000000000000000000000000000000000');
INSERT IGNORE INTO audit_chain_heads (tenant_id, last_seq, last_hash)
  SELECT id, 0, x'0000000000000000000000000000000000000000000000000000000000000000'
  FROM tenants;
