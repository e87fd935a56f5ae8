#include "server/service/cluster_credits.h"

#include <algorithm>
#include <utility>

namespace lumo::service {

ClusterCredits::ClusterCredits(storage::CounterStore* store,
                               ClusterCreditsOptions options)
    : store_(store), options_(std::move(options)) {}

absl::Time ClusterCredits::DbNow() const { return options_.now() + db_offset_; }

std::optional<absl::Time> ClusterCredits::Local(
    std::optional<absl::Time> db) const {
  if (!db.has_value()) return std::nullopt;
  return *db - db_offset_;
}

void ClusterCredits::ExpireAtRefill(Lease& lease, absl::Time db_now) {
  if (lease.next_refill.has_value() && db_now >= *lease.next_refill) {
    // A new period: the old epoch's credits are void, and what the
    // database holds is unknown until the next lease.
    lease.credits = 0;
    lease.db_remaining = -1;
    lease.next_refill.reset();
  }
}

SpendOutcome ClusterCredits::Spend(absl::string_view key_id, int64_t cost) {
  SpendOutcome out;
  absl::MutexLock lock(&mu_);
  const absl::Time db_now = DbNow();
  Lease& lease = leases_[key_id];
  ExpireAtRefill(lease, db_now);
  out.next_refill = Local(lease.next_refill);
  const int64_t known =
      lease.credits + std::max<int64_t>(0, lease.db_remaining);
  if (cost <= lease.credits && (!lease.stale || cost == 0)) {
    lease.credits -= cost;
    lease.used_at = db_now;
    out.epoch = lease.epoch;
    out.result = SpendOutcome::Result::kSpent;
    out.remaining = known - cost;
  } else if (!lease.stale && lease.db_remaining == 0 &&
             db_now - lease.leased_at < absl::Seconds(1)) {
    out.result = SpendOutcome::Result::kExhausted;
    out.remaining = lease.credits;
  } else {
    out.result = SpendOutcome::Result::kNeedLease;
    out.remaining = known;
  }
  return out;
}

absl::Status ClusterCredits::Renew(absl::string_view key_id, int64_t cost) {
  int64_t want = 1;
  {
    absl::MutexLock lock(&mu_);
    Lease& lease = leases_[key_id];
    ExpireAtRefill(lease, DbNow());
    const int replicas = std::max(1, options_.replicas());
    const int64_t share =
        lease.db_remaining > 0 ? lease.db_remaining / (4 * replicas) : 0;
    want = std::max<int64_t>(
        {1, cost - lease.credits, std::min(options_.max_lease, share)});
    ++store_calls_;
  }
  absl::StatusOr<storage::CreditLease> granted =
      store_->LeaseCredits(key_id, want);
  const absl::Time local_now = options_.now();
  if (!granted.ok()) return granted.status();
  absl::MutexLock lock(&mu_);
  db_offset_ = granted->db_now - local_now;
  Lease& lease = leases_[key_id];
  if (lease.epoch != granted->epoch) {
    // Credits of another epoch are void (their returns would be ignored).
    lease.credits = 0;
    lease.epoch = granted->epoch;
  }
  lease.credits += granted->granted;
  lease.stale = false;
  if (granted->granted > 0) lease.last_grant = granted->granted;
  lease.db_remaining = granted->remaining;
  lease.next_refill = granted->next_refill;
  lease.used_at = granted->db_now;
  lease.leased_at = granted->db_now;
  return absl::OkStatus();
}

void ClusterCredits::Refund(absl::string_view key_id, int64_t epoch,
                            int64_t cost) {
  absl::MutexLock lock(&mu_);
  auto it = leases_.find(key_id);
  if (it == leases_.end() || it->second.epoch != epoch) return;
  Lease& lease = it->second;
  const bool had_refill = lease.next_refill.has_value();
  ExpireAtRefill(lease, DbNow());
  // A period that ended meanwhile voided the lease's credits.
  if (had_refill && !lease.next_refill.has_value()) return;
  lease.credits += cost;
}

void ClusterCredits::Drop(absl::string_view key_id) {
  absl::MutexLock lock(&mu_);
  leases_.erase(key_id);
}

void ClusterCredits::Release(absl::string_view key_id) {
  absl::MutexLock lock(&mu_);
  auto it = leases_.find(key_id);
  if (it != leases_.end()) it->second.stale = true;
}

void ClusterCredits::FlushReturns(bool all) {
  struct Return {
    std::string key_id;
    int64_t epoch;
    int64_t credits;
  };
  std::vector<Return> returns;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time db_now = DbNow();
    for (auto it = leases_.begin(); it != leases_.end();) {
      Lease& lease = it->second;
      ExpireAtRefill(lease, db_now);
      if (all || db_now - lease.used_at >= options_.idle_return) {
        if (lease.credits > 0) {
          returns.push_back({it->first, lease.epoch, lease.credits});
        }
        leases_.erase(it++);
      } else {
        ++it;
      }
    }
    store_calls_ += static_cast<int64_t>(returns.size());
  }
  for (const Return& r : returns) {
    (void)store_->ReturnCredits(r.key_id, r.epoch, r.credits);
  }
}

int64_t ClusterCredits::store_calls() const {
  absl::MutexLock lock(&mu_);
  return store_calls_;
}

}  // namespace lumo::service
