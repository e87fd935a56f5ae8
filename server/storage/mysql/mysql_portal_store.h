// PortalStore over MySQL/MariaDB (tables of sql/migrations/0005_portal.sql).
// Thread-safe: every call takes its own pooled connection.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_PORTAL_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_PORTAL_STORE_H_

#include <memory>

#include "server/storage/mysql/connection_pool.h"
#include "server/storage/portal_store.h"

namespace lumo::storage {

class MysqlPortalStore : public PortalStore {
 public:
  explicit MysqlPortalStore(std::shared_ptr<ConnectionPool> pool)
      : pool_(std::move(pool)) {}

  absl::StatusOr<PortalAdmin> FindAdmin(absl::string_view tenant_slug,
                                        absl::string_view email) override;
  absl::StatusOr<std::string> UpsertAdmin(absl::string_view tenant_slug,
                                          absl::string_view email,
                                          absl::string_view new_user_id,
                                          absl::string_view password_hash,
                                          const AuditEvent& event) override;
  absl::Status InsertSession(int64_t tenant_id, absl::string_view user_id,
                             const core::Digest& token_sha256,
                             const core::Digest& csrf_sha256,
                             absl::Duration absolute_ttl,
                             const AuditEvent& event) override;
  absl::StatusOr<PortalSessionRecord> TouchSession(
      const core::Digest& token_sha256, absl::Duration idle_ttl,
      absl::Duration touch_every) override;
  absl::Status DeleteSession(const core::Digest& token_sha256,
                             const AuditEvent* event) override;

 private:
  std::shared_ptr<ConnectionPool> pool_;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_PORTAL_STORE_H_
