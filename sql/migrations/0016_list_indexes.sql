-- Indexes for lists that find their page through an index whatever the
-- tenant's size (docs/admin-api.md, "Paging large lists"). Every sort of
-- every list is an index of (tenant_id, sort column), the primary key
-- appended by InnoDB breaking ties; the OAuth clients' updatedAt sort had
-- none.
--
-- idx_api_keys_tenant_listed: the key list's capped total ("deleted_at IS
-- NULL" and "decoy = 0", or "decoy = 1", of a tenant) is read from the
-- index alone instead of one row lookup per counted key.
-- idx_audit_tenant_action: the audit list filtered by action (the portal's
-- audit page filter) walks (tenant_id, action) in id order instead of
-- every event of the tenant. The suspicious filter has its index since
-- 0004; the other filters are evaluated on the (tenant_id, id) walk.
--
-- Built online by InnoDB (ALTER TABLE ... ADD KEY does not block writes);
-- on a large audit log the migration takes a while.
ALTER TABLE oauth_clients
  ADD KEY idx_oauth_clients_tenant_updated (tenant_id, updated_at);
ALTER TABLE api_keys
  ADD KEY idx_api_keys_tenant_listed (tenant_id, decoy, deleted_at);
ALTER TABLE audit_events
  ADD KEY idx_audit_tenant_action (tenant_id, action, id);
