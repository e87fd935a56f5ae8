#include "server/service/cluster_credits.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/storage/call_deadline.h"

namespace lumo::service {
namespace {

// The counter keys of the exhaustion reports: x:<keyId>:<epoch>.
constexpr absl::string_view kExhaustionCounterPrefix = "x:";

}  // namespace

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
    lease.spent_since += cost;
    lease.used_at = db_now;
    out.epoch = lease.epoch;
    out.result = SpendOutcome::Result::kSpent;
    out.remaining = known - cost;
  } else if (!lease.stale && lease.db_remaining == 0 &&
             db_now - lease.leased_at < absl::Seconds(1)) {
    out.result = SpendOutcome::Result::kExhausted;
    out.remaining = lease.credits;
    out.epoch = lease.epoch;
  } else {
    out.result = SpendOutcome::Result::kNeedLease;
    out.remaining = known;
  }
  return out;
}

bool ClusterCredits::ExhaustionAsked(absl::string_view key_id,
                                     int64_t epoch) const {
  absl::MutexLock lock(&mu_);
  auto it = leases_.find(key_id);
  return it != leases_.end() && it->second.exhaustion_asked == epoch;
}

bool ClusterCredits::ClaimExhaustionReport(absl::string_view key_id,
                                           int64_t epoch) {
  {
    absl::MutexLock lock(&mu_);
    Lease& lease = leases_[key_id];
    if (lease.exhaustion_asked == epoch) return false;
    lease.exhaustion_asked = epoch;
    ++store_calls_;
  }
  // One token, refilled once a day: the first replica to ask takes it.
  const storage::BucketSpec once{1, 1.0 / (24 * 60)};
  absl::StatusOr<storage::BucketLease> gate = store_->LeaseBucket(
      absl::StrCat(kExhaustionCounterPrefix, key_id, ":", epoch), once, 1);
  return !gate.ok() || gate->granted >= 1;
}

int64_t ClusterCredits::LeaseSize(const Lease& lease, int64_t cost,
                                  absl::Time now) const {
  const int replicas = std::max(1, options_.replicas());
  // Nothing known of the balance: one credit (or the cost) first.
  const int64_t share =
      lease.db_remaining > 0
          ? std::min(options_.max_lease, lease.db_remaining / (4 * replicas))
          : 0;
  int64_t by_rate = 0;
  if (lease.rate_since != absl::InfinitePast() && lease.spent_since > 0) {
    const absl::Duration interval =
        std::max(now - lease.rate_since, options_.min_rate_interval);
    const double credits = static_cast<double>(lease.spent_since) *
                           absl::FDivDuration(options_.lease_horizon, interval);
    by_rate = static_cast<int64_t>(
        std::ceil(std::min(credits, static_cast<double>(options_.max_lease))));
  }
  return std::max<int64_t>(
      {1, cost - lease.credits,
       std::min(share, std::max(options_.base_lease, by_rate))});
}

absl::Status ClusterCredits::Renew(absl::string_view key_id, int64_t cost) {
  const std::string key(key_id);
  int64_t want = 1;
  uint64_t renewal = 0;
  {
    absl::MutexLock lock(&mu_);
    const uint64_t in_flight = leases_[key].renewing;
    if (in_flight != 0) {
      // Wait for the reply of the statement in flight rather than send a
      // second one: one lease per key at a time.
      auto ended = [this, &key, in_flight]() {
        mu_.AssertReaderHeld();
        auto it = leases_.find(key);
        return it == leases_.end() || it->second.renewing != in_flight;
      };
      // Never past this call's own deadline (the statement in flight runs
      // under its caller's).
      const absl::Duration wait = std::min(
          options_.renewal_wait, storage::CurrentCallDeadline() - absl::Now());
      ++renewals_waiting_;
      const bool replied = mu_.AwaitWithTimeout(absl::Condition(&ended), wait);
      --renewals_waiting_;
      if (replied) {
        auto it = leases_.find(key);
        if (it != leases_.end() && it->second.renewal_status.ok()) {
          return absl::OkStatus();
        }
      }
      // Still in flight after the wait, the lease forgotten, or its
      // statement failed (perhaps for its caller's reasons): ask.
    }
    Lease& lease = leases_[key];
    ExpireAtRefill(lease, DbNow());
    want = LeaseSize(lease, cost, options_.now());
    renewal = ++renewal_seq_;
    lease.renewing = renewal;
    ++store_calls_;
  }
  absl::StatusOr<storage::CreditLease> granted =
      store_->LeaseCredits(key_id, want);
  const absl::Time local_now = options_.now();
  absl::MutexLock lock(&mu_);
  Lease& lease = leases_[key];
  if (lease.renewing == renewal) lease.renewing = 0;
  lease.renewal_status = granted.status();
  if (!granted.ok()) return granted.status();
  db_offset_ = granted->db_now - local_now;
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
  // The next lease is sized by what is spent from now on.
  lease.spent_since = 0;
  lease.rate_since = local_now;
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
  lease.spent_since = std::max<int64_t>(0, lease.spent_since - cost);
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
      // A lease being renewed is in use (a request waits for it).
      if (all || (lease.renewing == 0 &&
                  db_now - lease.used_at >= options_.idle_return)) {
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

int ClusterCredits::renewals_waiting() const {
  absl::MutexLock lock(&mu_);
  return renewals_waiting_;
}

int64_t ClusterCredits::held(absl::string_view key_id) const {
  absl::MutexLock lock(&mu_);
  auto it = leases_.find(key_id);
  return it == leases_.end() ? 0 : it->second.credits;
}

}  // namespace lumo::service
