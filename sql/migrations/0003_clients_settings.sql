-- OAuth clients (admin API and RFC 7591 dynamic registration) and per-tenant
-- settings. Conventions as 0001_init.sql: InnoDB, utf8mb4, DATETIME(6) UTC
-- written from the database clock, tenant_id on every row and in every
-- query, '' for absent strings, re-runnable (IF NOT EXISTS).

-- One row per OAuth client. Deleting a client deletes its row (its audit
-- events stay); client ids are random, so they are never reused.
CREATE TABLE IF NOT EXISTS oauth_clients (
  -- Record id: 16 base62 characters, random; case matters.
  id CHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  tenant_id BIGINT NOT NULL,
  -- The public OAuth client_id: `cli_` + 24 base62 characters.
  client_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  name VARCHAR(100) NOT NULL,
  -- HMAC-SHA256(pepper[secret_pepper_version], secret); both NULL for a
  -- public client (token_endpoint_auth_method 'none').
  secret_digest BINARY(32) NULL,
  secret_pepper_version INT NULL,
  -- Lists: values joined with a separator they cannot contain (URIs with
  -- ' ', scopes and grant/response types with ' ').
  redirect_uris TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  post_logout_redirect_uris TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  scopes TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  grant_types VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  response_types VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  -- 'web' or 'native'.
  application_type VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- 'client_secret_basic', 'client_secret_post' or 'none'.
  token_endpoint_auth_method VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  client_uri VARCHAR(2048) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  logo_uri VARCHAR(2048) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  is_public TINYINT(1) NOT NULL,
  pkce_required TINYINT(1) NOT NULL,
  is_active TINYINT(1) NOT NULL DEFAULT 1,
  -- 'admin' (admin API) or 'registration' (RFC 7591).
  created_via VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- 'api_key', 'user', 'system' or 'anonymous'.
  created_by_type VARCHAR(16) NOT NULL,
  created_by_id VARCHAR(128) NOT NULL DEFAULT '',
  -- Incremented by every change; updates compare it (optimistic locking).
  version BIGINT NOT NULL DEFAULT 1,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  secret_rotated_at DATETIME(6) NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_oauth_clients_client_id (client_id),
  KEY idx_oauth_clients_tenant_created (tenant_id, created_at),
  KEY idx_oauth_clients_tenant_name (tenant_id, name),
  CONSTRAINT fk_oauth_clients_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
  CONSTRAINT chk_oauth_clients_flags
    CHECK (is_public IN (0, 1) AND pkce_required IN (0, 1) AND is_active IN (0, 1)),
  CONSTRAINT chk_oauth_clients_secret
    CHECK ((is_public = 1 AND secret_digest IS NULL AND secret_pepper_version IS NULL)
        OR (is_public = 0 AND secret_digest IS NOT NULL AND secret_pepper_version IS NOT NULL))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Tenant settings: at most one row per tenant; a tenant without a row has
-- the defaults (dynamic registration disabled, API key required).
CREATE TABLE IF NOT EXISTS tenant_settings (
  tenant_id BIGINT NOT NULL,
  dynamic_registration_enabled TINYINT(1) NOT NULL DEFAULT 0,
  dynamic_registration_require_api_key TINYINT(1) NOT NULL DEFAULT 1,
  version BIGINT NOT NULL DEFAULT 1,
  updated_at DATETIME(6) NOT NULL,
  PRIMARY KEY (tenant_id),
  CONSTRAINT fk_tenant_settings_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
  CONSTRAINT chk_tenant_settings_flags
    CHECK (dynamic_registration_enabled IN (0, 1)
       AND dynamic_registration_require_api_key IN (0, 1))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
