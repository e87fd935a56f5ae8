-- A copy of each key's retired secrets on its api_keys row, so that the
-- verification read need not join api_key_retired_secrets (docs/storage.md
-- "What the verification read names").
--
-- api_keys.retired_copy: the key's retired secrets as text, built by
--   MariaDB from api_key_retired_secrets in the statement that bumps the
--   key's version after they changed (server/storage/mysql/retired_copy.h
--   has the format); NULL: none.
-- api_keys.retired_copy_version: the key version the copy belongs to. The
--   copy is used only while this equals the key's version; otherwise the
--   secrets are read from their table. Every version bump of this release
--   carries a current copy along or builds it again. The default, 1, is the
--   version of a new key, which has no retired secrets: keys inserted by
--   any release start current. Keys already changed (version above 1), and
--   keys a server of the previous release changes during a rolling
--   upgrade, are not current until a server starts and builds their
--   copies (Backend::ReconcileDerivedState), each under its key row lock.
-- @unless column api_keys.retired_copy_version
ALTER TABLE api_keys
  ADD COLUMN retired_copy TEXT CHARACTER SET ascii COLLATE ascii_bin NULL,
  ADD COLUMN retired_copy_version BIGINT NOT NULL DEFAULT 1;
