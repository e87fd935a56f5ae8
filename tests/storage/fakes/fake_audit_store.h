// An in-memory AuditStore (server/storage/audit_store.h) over a
// FakeDatabase: its chains are linked and verified by the same
// backend-neutral library as the MySQL store's (server/storage/
// audit_chain.h). Held to the contract by the audit store conformance
// suite. Thread-safe.
#ifndef LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_AUDIT_STORE_H_
#define LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_AUDIT_STORE_H_

#include <memory>
#include <optional>
#include <vector>

#include "server/storage/audit_store.h"
#include "tests/storage/fakes/fake_database.h"

namespace lumo::testing {

class FakeAuditStore : public storage::AuditStore {
 public:
  explicit FakeAuditStore(std::shared_ptr<FakeDatabase> db)
      : db_(std::move(db)) {}

  absl::Status AppendEvents(
      const std::vector<storage::PendingAuditEvent>& events) override;
  absl::StatusOr<storage::ChainVerification> VerifyChain(
      int64_t tenant_id) override;
  absl::StatusOr<storage::AuditPage> ListEvents(
      int64_t tenant_id, const storage::AuditQuery& query) override;
  absl::StatusOr<storage::StoredAuditEvent> GetEvent(int64_t tenant_id,
                                                     int64_t id) override;
  absl::StatusOr<storage::ExportBound> ReadExportBound(
      int64_t tenant_id) override;
  absl::StatusOr<storage::ExportPageRows> ExportPage(
      int64_t tenant_id, const storage::AuditQuery& filters,
      const storage::ExportBound& bound, int64_t after_id, int limit) override;
  absl::StatusOr<std::vector<storage::UsageRow>> ReadUsage(
      int64_t tenant_id, const storage::UsageQuery& query) override;
  absl::StatusOr<std::vector<storage::KeyUsageTotal>> TopUsageKeys(
      int64_t tenant_id, const storage::UsageQuery& query, bool by_failures,
      int limit) override;
  absl::StatusOr<std::vector<storage::DayCount>> CountSuspiciousPerDay(
      int64_t tenant_id, absl::Time from, absl::Time to) override;
  absl::StatusOr<std::vector<storage::PreviousSecretUser>>
  ListPreviousSecretUsers(int64_t tenant_id, absl::string_view key_id,
                          absl::Time rotated_at, int limit) override;

  // Retention as storage::Backend::PurgeAuditOlderThanDays.
  absl::StatusOr<int64_t> PurgeOlderThanDays(int days);
  // Usage retention as storage::Backend::PurgeUsage.
  absl::StatusOr<int64_t> PurgeUsage(int hourly_days, int daily_days);

 private:
  const std::shared_ptr<FakeDatabase> db_;
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_AUDIT_STORE_H_
