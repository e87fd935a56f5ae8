// An in-memory PortalStore (server/storage/portal_store.h) over a
// FakeDatabase (portal admins are the database's users with a credential),
// held to the contract by the portal store conformance suite. Thread-safe.
#ifndef LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_PORTAL_STORE_H_
#define LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_PORTAL_STORE_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "server/storage/portal_store.h"
#include "tests/storage/fakes/fake_database.h"

namespace lumo::testing {

class FakePortalStore : public storage::PortalStore {
 public:
  explicit FakePortalStore(std::shared_ptr<FakeDatabase> db)
      : db_(std::move(db)) {}

  absl::StatusOr<storage::PortalAdmin> FindAdmin(
      absl::string_view tenant_slug, absl::string_view email) override;
  absl::StatusOr<std::string> UpsertAdmin(
      absl::string_view tenant_slug, absl::string_view email,
      absl::string_view new_user_id, absl::string_view password_hash,
      const storage::AuditEvent& event) override;
  absl::Status InsertSession(int64_t tenant_id, absl::string_view user_id,
                             const core::Digest& token_sha256,
                             const core::Digest& csrf_sha256,
                             absl::Duration absolute_ttl,
                             const storage::AuditEvent& event) override;
  absl::StatusOr<storage::PortalSessionRecord> TouchSession(
      const core::Digest& token_sha256, absl::Duration idle_ttl,
      absl::Duration touch_every) override;
  absl::Status DeleteSession(const core::Digest& token_sha256,
                             const storage::AuditEvent* event) override;

  // Test hooks.
  int find_calls() const { return find_calls_.load(); }
  // The stored session keys (token hashes), in any order.
  std::vector<std::string> StoredSessionHashes();

 private:
  const std::shared_ptr<FakeDatabase> db_;
  std::atomic<int> find_calls_{0};
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_PORTAL_STORE_H_
