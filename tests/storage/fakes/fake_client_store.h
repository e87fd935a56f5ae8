// An in-memory ClientStore (server/storage/client_store.h) over a
// FakeDatabase, held to the contract by the client store conformance
// suite. Thread-safe.
#ifndef LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_CLIENT_STORE_H_
#define LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_CLIENT_STORE_H_

#include <memory>
#include <optional>

#include "server/storage/client_store.h"
#include "tests/storage/fakes/fake_database.h"

namespace lumo::testing {

class FakeClientStore : public storage::ClientStore {
 public:
  explicit FakeClientStore(std::shared_ptr<FakeDatabase> db)
      : db_(std::move(db)) {}

  absl::Status InsertClient(const storage::NewClient& client,
                            const storage::AuditEvent& event) override;
  absl::Status InsertRegisteredClient(
      const storage::NewClient& client, storage::RegistrationAuth auth,
      const storage::AuditEvent& event) override;
  absl::StatusOr<storage::ClientRecord> GetClient(
      int64_t tenant_id, absl::string_view id_or_client_id) override;
  absl::StatusOr<storage::ClientPage> ListClients(
      int64_t tenant_id, const storage::ListClientsQuery& query) override;
  absl::StatusOr<storage::ClientRecord> UpdateClient(
      int64_t tenant_id, absl::string_view id, int64_t expected_version,
      const storage::ClientFields& fields,
      const storage::AuditEvent& event) override;
  absl::StatusOr<storage::ClientRecord> RotateClientSecret(
      int64_t tenant_id, absl::string_view id,
      const storage::StoredSecret& secret,
      const storage::AuditEvent& event) override;
  absl::StatusOr<storage::ClientRecord> SetClientActive(
      int64_t tenant_id, absl::string_view id, bool active,
      const storage::AuditEvent& event, bool* changed) override;
  absl::Status DeleteClient(int64_t tenant_id, absl::string_view id,
                            const storage::AuditEvent& event) override;
  absl::StatusOr<storage::TenantSettings> GetSettings(
      int64_t tenant_id) override;
  absl::StatusOr<storage::TenantSettings> UpdateSettings(
      int64_t tenant_id, const storage::SettingsUpdate& update,
      const storage::AuditEvent& event, bool* changed) override;

 private:
  absl::Status Insert(const storage::NewClient& client,
                      std::optional<storage::RegistrationAuth> registration,
                      const storage::AuditEvent& event);

  const std::shared_ptr<FakeDatabase> db_;
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_CLIENT_STORE_H_
