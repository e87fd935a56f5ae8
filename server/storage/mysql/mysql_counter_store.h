// MySQL/MariaDB backend of storage/counter_store.h (tables of migration
// 0013, docs/limits.md).
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_COUNTER_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_COUNTER_STORE_H_

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "server/storage/counter_store.h"
#include "server/storage/mysql/connection_pool.h"

namespace lumo::storage {

// Thread-safe (every call leases its own connection). A window lease locks
// the counter's head row, reads the database clock and the counted slots,
// writes the grant and prunes slots the window no longer counts; a bucket
// or quota call locks its row. Calls on different counters do not wait for
// each other.
class MysqlCounterStore : public CounterStore {
 public:
  explicit MysqlCounterStore(std::shared_ptr<ConnectionPool> pool)
      : pool_(std::move(pool)) {}

  absl::StatusOr<WindowLease> LeaseWindow(absl::string_view counter,
                                          const WindowSpec& spec, int64_t want,
                                          int64_t debt) override;
  absl::Status ReturnWindow(absl::string_view counter, int64_t slot,
                            int64_t amount) override;
  absl::StatusOr<BucketLease> LeaseBucket(absl::string_view counter,
                                          const BucketSpec& spec,
                                          int64_t want) override;
  absl::Status ReturnBucket(absl::string_view counter, const BucketSpec& spec,
                            int64_t amount) override;
  absl::StatusOr<QuotaState> SetQuota(absl::string_view key_id,
                                      int64_t remaining,
                                      std::optional<Refill> refill) override;
  absl::Status ClearQuota(absl::string_view key_id) override;
  absl::StatusOr<QuotaState> GetQuota(absl::string_view key_id) override;
  absl::StatusOr<QuotaState> AddCredits(absl::string_view key_id,
                                        int64_t delta) override;
  absl::StatusOr<CreditLease> LeaseCredits(absl::string_view key_id,
                                           int64_t want) override;
  absl::Status ReturnCredits(absl::string_view key_id, int64_t epoch,
                             int64_t amount) override;
  absl::StatusOr<std::vector<KeyRateLimit>> GetIdentityLimits(
      int64_t tenant_id, absl::string_view external_id) override;
  absl::StatusOr<IdentityLimitsChange> SetIdentityLimits(
      int64_t tenant_id, absl::string_view external_id,
      const std::vector<KeyRateLimit>& limits,
      absl::FunctionRef<AuditEvent(const std::vector<KeyRateLimit>& before)>
          audit) override;

 private:
  std::shared_ptr<ConnectionPool> pool_;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_COUNTER_STORE_H_
