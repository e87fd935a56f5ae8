-- Indexes for lists that find their page through an index whatever the
-- tenant's size (docs/admin-api.md, "Paging large lists"): every sort of
-- every list is an index of (tenant_id, sort column), the primary key
-- appended by InnoDB breaking ties. The OAuth clients' updatedAt sort had
-- none.
ALTER TABLE oauth_clients
  ADD KEY idx_oauth_clients_tenant_updated (tenant_id, updated_at);
