-- Portal administrators' credentials and browser sessions
-- (docs/portal.md). Conventions as in 0001_init.sql.
--
-- A portal admin is an existing tenant user (users, 0002) with a row here.
CREATE TABLE IF NOT EXISTS portal_credentials (
  tenant_id BIGINT NOT NULL,
  user_id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- scrypt$<log2 N>$<r>$<p>$<salt hex>$<hash hex> (server/core/password.h).
  password_hash VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  PRIMARY KEY (tenant_id, user_id),
  CONSTRAINT fk_portal_credentials_user FOREIGN KEY (tenant_id, user_id)
    REFERENCES users (tenant_id, id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per live session. Only SHA-256 of the opaque token (and of its
-- CSRF token) is stored, so a database dump cannot be replayed as a cookie.
CREATE TABLE IF NOT EXISTS portal_sessions (
  token_sha256 BINARY(32) NOT NULL,
  csrf_sha256 BINARY(32) NOT NULL,
  tenant_id BIGINT NOT NULL,
  user_id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at DATETIME(6) NOT NULL,
  last_seen_at DATETIME(6) NOT NULL,
  -- Idle expiry is last_seen_at + the server's idle timeout; the absolute
  -- end is fixed at login.
  expires_at DATETIME(6) NOT NULL,
  PRIMARY KEY (token_sha256),
  KEY idx_portal_sessions_user (tenant_id, user_id),
  KEY idx_portal_sessions_expires (expires_at),
  CONSTRAINT fk_portal_sessions_user FOREIGN KEY (tenant_id, user_id)
    REFERENCES users (tenant_id, id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
