-- Tenant users and roles. Conventions as in 0001_init.sql.
--
-- Ids are public and random (`usr_`/`rol_` + base62), unique per tenant;
-- the primary keys lead with tenant_id so that every row of a tenant is
-- reached through it, and user_roles references both sides with the tenant
-- id, so an assignment can never cross tenants.

CREATE TABLE IF NOT EXISTS users (
  id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  tenant_id BIGINT NOT NULL,
  -- As given by the administrator (validated by the service: ASCII).
  email VARCHAR(254) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- LOWER(email): uniqueness and lookups ignore case.
  email_key VARCHAR(254) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  name VARCHAR(200) NOT NULL DEFAULT '',
  blocked TINYINT(1) NOT NULL DEFAULT 0,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE KEY uq_users_tenant_email (tenant_id, email_key),
  KEY idx_users_tenant_created (tenant_id, created_at),
  KEY idx_users_tenant_updated (tenant_id, updated_at),
  KEY idx_users_tenant_name (tenant_id, name),
  CONSTRAINT fk_users_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
  CONSTRAINT chk_users_blocked CHECK (blocked IN (0, 1))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS roles (
  id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  tenant_id BIGINT NOT NULL,
  -- [a-z0-9-], validated by the service; compared exactly.
  slug VARCHAR(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  name VARCHAR(100) NOT NULL,
  description VARCHAR(500) NOT NULL DEFAULT '',
  -- Permission names, space separated, in the order given.
  permissions TEXT CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE KEY uq_roles_tenant_slug (tenant_id, slug),
  KEY idx_roles_tenant_created (tenant_id, created_at),
  CONSTRAINT fk_roles_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Role assignments. Deleting a user removes its assignments; a role that is
-- still assigned cannot be deleted (the service refuses first, the foreign
-- key is the backstop under races).
CREATE TABLE IF NOT EXISTS user_roles (
  tenant_id BIGINT NOT NULL,
  user_id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  role_id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (tenant_id, user_id, role_id),
  KEY idx_user_roles_role (tenant_id, role_id, user_id),
  CONSTRAINT fk_user_roles_user FOREIGN KEY (tenant_id, user_id)
    REFERENCES users (tenant_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_user_roles_role FOREIGN KEY (tenant_id, role_id)
    REFERENCES roles (tenant_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
