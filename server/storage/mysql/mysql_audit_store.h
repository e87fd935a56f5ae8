// The MySQL/MariaDB AuditStore: batched multi-row appends to the per-tenant
// hash chains (server/storage/audit_chain.h, heads in mysql_audit_chain.h),
// chain verification and the read side, over a pool shared with the other
// stores.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_AUDIT_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_AUDIT_STORE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "server/storage/audit_store.h"
#include "server/storage/mysql/connection_pool.h"

namespace lumo::storage {

// Thread-safe.
class MysqlAuditStore : public AuditStore {
 public:
  explicit MysqlAuditStore(std::shared_ptr<ConnectionPool> pool);

  absl::Status AppendEvents(
      const std::vector<PendingAuditEvent>& events) override;
  absl::StatusOr<ChainVerification> VerifyChain(int64_t tenant_id) override;

  // Retention: for every tenant, deletes the audit rows of the chain older
  // than `days` days (database clock) and records the seq and hash of the
  // last deleted row as the chain's new base in audit_chain_heads, in the
  // same transaction, so VerifyChain still verifies what is left. Needs
  // DELETE on audit_events, which the runtime account does not have: run it
  // with an operator account (`lumokeys-server purge-audit`).
  // Returns the number of rows deleted. INVALID_ARGUMENT for days < 1.
  absl::StatusOr<int64_t> PurgeOlderThanDays(int days);
  // Usage retention as Backend::PurgeUsage.
  absl::StatusOr<int64_t> PurgeUsage(int hourly_days, int daily_days);
  absl::StatusOr<AuditPage> ListEvents(int64_t tenant_id,
                                       const AuditQuery& query) override;
  absl::StatusOr<StoredAuditEvent> GetEvent(int64_t tenant_id,
                                            int64_t id) override;
  absl::StatusOr<ExportBound> ReadExportBound(int64_t tenant_id) override;
  absl::StatusOr<ExportPageRows> ExportPage(int64_t tenant_id,
                                            const AuditQuery& filters,
                                            const ExportBound& bound,
                                            int64_t after_id,
                                            int limit) override;
  absl::StatusOr<std::vector<UsageRow>> ReadUsage(
      int64_t tenant_id, const UsageQuery& query) override;
  absl::StatusOr<std::vector<KeyUsageTotal>> TopUsageKeys(
      int64_t tenant_id, const UsageQuery& query, bool by_failures,
      int limit) override;
  absl::StatusOr<std::vector<DayCount>> CountSuspiciousPerDay(
      int64_t tenant_id, absl::Time from, absl::Time to) override;
  absl::StatusOr<std::vector<PreviousSecretUser>> ListPreviousSecretUsers(
      int64_t tenant_id, absl::string_view key_id, absl::Time rotated_at,
      int limit) override;

  // Test hooks: last_used_at UPDATE statements executed, and key rows they
  // named, over the store's life.
  uint64_t last_used_statements() const {
    return last_used_statements_.load(std::memory_order_relaxed);
  }
  uint64_t last_used_keys() const {
    return last_used_keys_.load(std::memory_order_relaxed);
  }

 private:
  std::shared_ptr<ConnectionPool> pool_;
  std::atomic<uint64_t> last_used_statements_{0};
  std::atomic<uint64_t> last_used_keys_{0};
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_AUDIT_STORE_H_
