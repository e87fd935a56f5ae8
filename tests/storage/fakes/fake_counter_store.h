// An in-memory CounterStore (server/storage/counter_store.h) over a
// FakeDatabase, held to the contract by the counter store conformance
// suite. Thread-safe.
#ifndef LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_COUNTER_STORE_H_
#define LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_COUNTER_STORE_H_

#include <memory>
#include <optional>
#include <vector>

#include "server/storage/counter_store.h"
#include "tests/storage/fakes/fake_database.h"

namespace lumo::testing {

class FakeCounterStore : public storage::CounterStore {
 public:
  explicit FakeCounterStore(std::shared_ptr<FakeDatabase> db)
      : db_(std::move(db)) {}

  absl::StatusOr<storage::WindowLease> LeaseWindow(
      absl::string_view counter, const storage::WindowSpec& spec, int64_t want,
      int64_t debt) override;
  absl::Status ReturnWindow(absl::string_view counter, int64_t slot,
                            int64_t amount) override;
  absl::StatusOr<storage::BucketLease> LeaseBucket(
      absl::string_view counter, const storage::BucketSpec& spec,
      int64_t want) override;
  absl::Status ReturnBucket(absl::string_view counter,
                            const storage::BucketSpec& spec,
                            int64_t amount) override;
  absl::StatusOr<storage::QuotaState> SetQuota(
      absl::string_view key_id, int64_t remaining,
      std::optional<storage::Refill> refill) override;
  absl::Status ClearQuota(absl::string_view key_id) override;
  absl::StatusOr<storage::QuotaState> GetQuota(
      absl::string_view key_id) override;
  absl::StatusOr<storage::QuotaState> AddCredits(absl::string_view key_id,
                                                 int64_t delta) override;
  absl::StatusOr<storage::CreditLease> LeaseCredits(absl::string_view key_id,
                                                    int64_t want) override;
  absl::Status ReturnCredits(absl::string_view key_id, int64_t epoch,
                             int64_t amount) override;
  absl::StatusOr<std::vector<storage::KeyRateLimit>> GetIdentityLimits(
      int64_t tenant_id, absl::string_view external_id) override;
  absl::StatusOr<storage::IdentityLimitsChange> SetIdentityLimits(
      int64_t tenant_id, absl::string_view external_id,
      const std::vector<storage::KeyRateLimit>& limits,
      absl::FunctionRef<
          storage::AuditEvent(const std::vector<storage::KeyRateLimit>& before)>
          audit) override;

 private:
  // The key's quota row after any due refill, or NOT_FOUND.
  absl::StatusOr<storage::QuotaRow*> QuotaOf(absl::string_view key_id,
                                             absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_->mu);

  const std::shared_ptr<FakeDatabase> db_;
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_COUNTER_STORE_H_
