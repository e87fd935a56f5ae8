// A blocking CounterStore decorator for tests of statements in flight.
#ifndef LUMOKEYS_TESTS_STORAGE_FAKES_BLOCKING_COUNTER_STORE_H_
#define LUMOKEYS_TESTS_STORAGE_FAKES_BLOCKING_COUNTER_STORE_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/storage/counter_store.h"

namespace lumo::testing {

// A CounterStore for tests of lease statements in flight: delegates to
// `inner`; the lease call of kind `what` numbered `block_call` (from 1)
// waits, after `inner` granted it, until Release. Thread-safe.
class BlockingCounterStore : public storage::CounterStore {
 public:
  enum Kind { kWindows, kCredits };
  BlockingCounterStore(storage::CounterStore* inner, Kind what, int block_call)
      : inner_(inner), what_(what), block_call_(block_call) {}

  absl::StatusOr<storage::WindowLease> LeaseWindow(
      absl::string_view counter, const storage::WindowSpec& spec, int64_t want,
      int64_t debt) override {
    absl::StatusOr<storage::WindowLease> lease =
        inner_->LeaseWindow(counter, spec, want, debt);
    if (what_ == kWindows) Count();
    return lease;
  }
  absl::Status ReturnWindow(absl::string_view counter, int64_t slot,
                            int64_t amount) override {
    return inner_->ReturnWindow(counter, slot, amount);
  }
  absl::StatusOr<storage::BucketLease> LeaseBucket(
      absl::string_view counter, const storage::BucketSpec& spec,
      int64_t want) override {
    return inner_->LeaseBucket(counter, spec, want);
  }
  absl::Status ReturnBucket(absl::string_view counter,
                            const storage::BucketSpec& spec,
                            int64_t amount) override {
    return inner_->ReturnBucket(counter, spec, amount);
  }
  absl::StatusOr<int64_t> SweepStale(absl::Duration bucket_idle,
                                     absl::Duration known_ttl,
                                     int64_t limit) override {
    return inner_->SweepStale(bucket_idle, known_ttl, limit);
  }
  absl::Status RememberNetwork(absl::string_view account,
                               absl::string_view network, size_t keep,
                               absl::Duration ttl) override {
    return inner_->RememberNetwork(account, network, keep, ttl);
  }
  absl::StatusOr<bool> IsKnownNetwork(absl::string_view account,
                                      absl::string_view network,
                                      absl::Duration ttl) override {
    return inner_->IsKnownNetwork(account, network, ttl);
  }
  absl::StatusOr<storage::QuotaState> SetQuota(
      absl::string_view key_id, int64_t remaining,
      std::optional<storage::Refill> refill) override {
    return inner_->SetQuota(key_id, remaining, refill);
  }
  absl::Status ClearQuota(absl::string_view key_id) override {
    return inner_->ClearQuota(key_id);
  }
  absl::StatusOr<storage::QuotaState> GetQuota(
      absl::string_view key_id) override {
    return inner_->GetQuota(key_id);
  }
  absl::StatusOr<storage::QuotaState> AddCredits(absl::string_view key_id,
                                                 int64_t delta) override {
    return inner_->AddCredits(key_id, delta);
  }
  absl::StatusOr<storage::CreditsChange> ChangeCredits(
      absl::string_view key_id, const storage::CreditsUpdate& update,
      absl::FunctionRef<storage::AuditEvent(const storage::CreditsChange&)>
          audit) override {
    return inner_->ChangeCredits(key_id, update, audit);
  }
  absl::StatusOr<storage::CreditLease> LeaseCredits(absl::string_view key_id,
                                                    int64_t want) override {
    absl::StatusOr<storage::CreditLease> lease =
        inner_->LeaseCredits(key_id, want);
    if (what_ == kCredits) Count();
    return lease;
  }
  absl::Status ReturnCredits(absl::string_view key_id, int64_t epoch,
                             int64_t amount) override {
    return inner_->ReturnCredits(key_id, epoch, amount);
  }
  absl::StatusOr<std::vector<storage::KeyRateLimit>> GetIdentityLimits(
      int64_t tenant_id, absl::string_view external_id) override {
    return inner_->GetIdentityLimits(tenant_id, external_id);
  }
  absl::StatusOr<storage::IdentityLimitsChange> SetIdentityLimits(
      int64_t tenant_id, absl::string_view external_id,
      const std::vector<storage::KeyRateLimit>& limits,
      absl::FunctionRef<
          storage::AuditEvent(const std::vector<storage::KeyRateLimit>& before)>
          audit) override {
    return inner_->SetIdentityLimits(tenant_id, external_id, limits, audit);
  }

  // Lease calls of kind `what` so far.
  int calls() const { return calls_.load(); }
  absl::Notification& blocked() { return blocked_; }
  void Release() { release_.Notify(); }

 private:
  void Count() {
    if (calls_.fetch_add(1) + 1 == block_call_) {
      blocked_.Notify();
      release_.WaitForNotification();
    }
  }

  storage::CounterStore* const inner_;
  const Kind what_;
  const int block_call_;
  std::atomic<int> calls_{0};
  absl::Notification blocked_;
  absl::Notification release_;
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_FAKES_BLOCKING_COUNTER_STORE_H_
