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

ALTER TABLE audit_events
  ADD COLUMN IF NOT EXISTS seq BIGINT NULL,
  ADD COLUMN IF NOT EXISTS prev_hash BINARY(32) NULL,
  ADD COLUMN IF NOT EXISTS hash BINARY(32) NULL;

-- One chain position per tenant; also the read side's index for listing
-- in chain order.
CREATE UNIQUE INDEX IF NOT EXISTS uq_audit_tenant_seq
  ON audit_events (tenant_id, seq);

CREATE INDEX IF NOT EXISTS idx_audit_tenant_suspicious
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
