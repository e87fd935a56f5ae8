// An in-memory KeyStore for unit tests of domain logic. Follows the
// contract of server/storage/key_store.h; its clock is settable. Test
// hooks (query counting, forced unavailability) live here, not on the
// interface. Thread-safe.
#ifndef LUMOKEYS_TESTS_SERVICE_FAKE_KEY_STORE_H_
#define LUMOKEYS_TESTS_SERVICE_FAKE_KEY_STORE_H_

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "server/storage/key_store.h"

namespace lumo::testing {

class FakeKeyStore : public storage::KeyStore {
 public:
  FakeKeyStore();

  absl::StatusOr<storage::Tenant> CreateTenant(
      absl::string_view slug, absl::string_view name,
      const storage::NewKey* initial_key,
      const std::vector<storage::AuditEvent>& events) override;
  absl::StatusOr<storage::Tenant> GetTenantBySlug(
      absl::string_view slug) override;
  absl::Status InsertKey(const storage::NewKey& key,
                         const storage::AuditEvent& event) override;
  absl::StatusOr<storage::ApiKeyRecord> GetKey(int64_t tenant_id,
                                               absl::string_view id) override;
  absl::StatusOr<storage::KeyPage> ListKeys(
      int64_t tenant_id, const storage::ListKeysQuery& query) override;
  absl::StatusOr<storage::ApiKeyRecord> RotateKey(
      int64_t tenant_id, absl::string_view id,
      const storage::StoredSecret& new_secret, absl::Duration grace,
      const storage::AuditEvent& event) override;
  absl::StatusOr<storage::RevokeResult> RevokeKey(
      int64_t tenant_id, absl::string_view id,
      const storage::AuditEvent& event) override;
  absl::StatusOr<storage::DeleteResult> DeleteKey(
      int64_t tenant_id, absl::string_view id,
      const storage::AuditEvent& event) override;
  absl::StatusOr<storage::VerifyRecord> LoadForVerify(
      absl::string_view id) override;
  absl::StatusOr<absl::Time> Now() override;

  // Test hooks.
  void SetNow(absl::Time now);
  void Advance(absl::Duration d);
  void SetUnavailable(bool unavailable);
  int verify_loads() const { return verify_loads_.load(); }
  int calls() const { return calls_.load(); }
  std::vector<storage::AuditEvent> events() const;
  // Runs once inside the next LoadForVerify, after the record was read and
  // before it is returned (to interleave a mutation with a cache fill).
  void SetLoadHook(std::function<void()> hook);

 private:
  struct Row {
    storage::ApiKeyRecord record;
    storage::StoredSecret current;
    std::vector<storage::RetiredSecret> retired;  // most recent first
    bool deleted = false;
  };
  absl::Status Begin() const;
  storage::ApiKeyRecord Snapshot(const Row& row) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  bool unavailable_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, storage::Tenant> tenants_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Row> keys_ ABSL_GUARDED_BY(mu_);
  std::vector<storage::AuditEvent> events_ ABSL_GUARDED_BY(mu_);
  std::function<void()> load_hook_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> verify_loads_{0};
  mutable std::atomic<int> calls_{0};
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_SERVICE_FAKE_KEY_STORE_H_
