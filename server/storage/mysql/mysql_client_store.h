// ClientStore over MySQL/MariaDB (Connector/C++ 1.1). Schema:
// sql/migrations/0003_clients_settings.sql.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_CLIENT_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_CLIENT_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/storage/client_store.h"
#include "server/storage/mysql/connection_pool.h"

namespace lumo::storage {

// Thread-safe: every method may be called concurrently from any thread;
// each call takes a connection from the shared pool for its duration.
//
// Behaviour beyond the ClientStore contract:
//   - Prepared statements with bound values only; the only spliced SQL
//     fragments (sort order, search condition) are constants of this file.
//   - Mutations run in one transaction that starts with SELECT ... FOR
//     UPDATE on the row they change; every error path rolls back, so a
//     change and its audit event commit together or not at all.
//   - Times come from the database clock (UTC_TIMESTAMP(6)).
//   - A lost connection is retried once when nothing can have been
//     committed (see mysql_session.h Run).
//   - Ids that cannot exist (not 16 base62 characters, client ids longer
//     than the column) are NOT_FOUND without a query.
class MysqlClientStore : public ClientStore {
 public:
  // `pool` is shared with the other stores of the same database (see
  // MysqlKeyStore::shared_pool()).
  explicit MysqlClientStore(std::shared_ptr<ConnectionPool> pool);
  ~MysqlClientStore() override;

  absl::Status InsertClient(const NewClient& client,
                            const AuditEvent& event) override;
  absl::Status InsertRegisteredClient(const NewClient& client,
                                      RegistrationAuth auth,
                                      const AuditEvent& event) override;
  absl::StatusOr<ClientRecord> GetClient(
      int64_t tenant_id, absl::string_view id_or_client_id) override;
  absl::StatusOr<ClientPage> ListClients(
      int64_t tenant_id, const ListClientsQuery& query) override;
  absl::StatusOr<ClientRecord> UpdateClient(int64_t tenant_id,
                                            absl::string_view id,
                                            int64_t expected_version,
                                            const ClientFields& fields,
                                            const AuditEvent& event) override;
  absl::StatusOr<ClientRecord> RotateClientSecret(
      int64_t tenant_id, absl::string_view id, const StoredSecret& secret,
      const AuditEvent& event) override;
  absl::StatusOr<ClientRecord> SetClientActive(int64_t tenant_id,
                                               absl::string_view id,
                                               bool active,
                                               const AuditEvent& event,
                                               bool* changed) override;
  absl::Status DeleteClient(int64_t tenant_id, absl::string_view id,
                            const AuditEvent& event) override;
  absl::StatusOr<TenantSettings> GetSettings(int64_t tenant_id) override;
  absl::StatusOr<TenantSettings> UpdateSettings(int64_t tenant_id,
                                                const SettingsUpdate& update,
                                                const AuditEvent& event,
                                                bool* changed) override;

  // Copies the key policy of every tenant whose tenants row holds a copy
  // that differs from its settings row (docs/storage.md "What the
  // verification read names"): settings a server of an earlier release
  // wrote without the copy. The number of tenants corrected. Errors as
  // key_store.h.
  absl::StatusOr<int64_t> ReconcileKeyPolicyCopies();

 private:
  absl::Status Insert(const NewClient& client,
                      std::optional<RegistrationAuth> registration,
                      const AuditEvent& event);

  const std::shared_ptr<ConnectionPool> pool_;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_CLIENT_STORE_H_
