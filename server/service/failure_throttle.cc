#include "server/service/failure_throttle.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/core/net.h"
#include "server/service/key_service.h"

namespace lumo::service {

namespace {

// How long a lease statement may stay unanswered before it is taken as
// lost (a full worker pool dropped it) and asked for again.
constexpr absl::Duration kLeaseWait = absl::Seconds(10);

// A wait announced to a client: whole seconds, at least one.
absl::Duration WholeSeconds(absl::Duration d) {
  return std::max(absl::Seconds(1),
                  absl::Seconds(std::ceil(absl::ToDoubleSeconds(d))));
}

}  // namespace

class FailureThrottle::InFlightSlot {
 public:
  explicit InFlightSlot(std::atomic<int>* count) : count_(count) {}
  InFlightSlot(const InFlightSlot&) = delete;
  InFlightSlot& operator=(const InFlightSlot&) = delete;
  ~InFlightSlot() { count_->fetch_sub(1); }

 private:
  std::atomic<int>* const count_;
};

FailureThrottle::FailureThrottle(FailureThrottleOptions options)
    : max_tracked_(std::max<size_t>(1, options.max_tracked)),
      ipv6_prefix_len_(options.ipv6_prefix_len),
      now_(std::move(options.now)),
      shared_store_(options.shared),
      schedule_(std::move(options.schedule)),
      replicas_(std::move(options.replicas)),
      max_in_flight_(std::max(1, options.max_shared_in_flight)) {
  addresses_.burst = std::max(0, options.ip_burst);
  addresses_.per_minute = std::max(0, options.ip_per_minute);
  addresses_.prefix = "t:ip:";
  keys_.burst = std::max(0, options.key_burst);
  keys_.per_minute = std::max(0, options.key_per_minute);
  keys_.prefix = "t:id:";
}

int FailureThrottle::Replicas() const {
  return replicas_ ? std::max(1, replicas_()) : 1;
}

int64_t FailureThrottle::Batch(double burst) const {
  const int replicas = Replicas();
  if (replicas == 1) return 0;
  return std::max<int64_t>(1, static_cast<int64_t>(burst) / (4 * replicas));
}

int64_t FailureThrottle::shared_calls() const {
  absl::MutexLock lock(&mu_);
  return shared_calls_;
}

std::optional<absl::Duration> FailureThrottle::CheckShared(
    const Table& table, absl::string_view name, absl::Time now) {
  if (shared_store_ == nullptr) return std::nullopt;
  auto it = shared_.find(absl::StrCat(table.prefix, name));
  if (it == shared_.end()) return std::nullopt;
  const Shared& s = it->second;
  if (s.refused_until > now) return WholeSeconds(s.refused_until - now);
  // Beside other replicas, at most one batch of failures without a token:
  // the rest waits for the reply in flight. (Alone, this replica's own
  // bucket counts the same failures as the shared one.)
  // A failure owed for want of a statement place counts the same: the
  // place frees when some statement returns.
  const int64_t batch = Batch(table.burst);
  const bool waiting = (s.in_flight && now - s.sent_at < kLeaseWait) ||
                       (s.queued && now - s.queued_at < kLeaseWait);
  if (batch > 0 && s.lease == 0 && s.debt + s.sent >= batch && waiting) {
    return absl::Seconds(1);
  }
  return std::nullopt;
}

std::optional<FailureThrottle::LeaseRequest> FailureThrottle::TakeShared(
    const Table& table, absl::string_view name, absl::Time now) {
  if (shared_store_ == nullptr) return std::nullopt;
  std::string counter = absl::StrCat(table.prefix, name);
  auto it = shared_.find(counter);
  if (it == shared_.end()) {
    if (shared_.size() >= max_tracked_) {
      // Forget what owes nothing and refuses nothing (a lease's unspent
      // tokens stay counted as spent: the safe side).
      absl::erase_if(shared_, [now](const auto& entry) {
        const Shared& s = entry.second;
        return !s.in_flight && s.debt == 0 && s.refused_until <= now &&
               !s.listed;
      });
      // Still full: this replica's own bucket alone counts it.
      if (shared_.size() >= max_tracked_) return std::nullopt;
    }
    it = shared_.emplace(counter, Shared()).first;
  }
  Shared& s = it->second;
  if (s.lease > 0) {
    --s.lease;
    return std::nullopt;
  }
  // A failure answered as throttled costs no statement.
  if (s.refused_until > now) return std::nullopt;
  ++s.debt;
  if (s.in_flight && now - s.sent_at < kLeaseWait) return std::nullopt;
  // As many statements outstanding as allowed: the failure stays owed
  // until a place frees.
  if (in_flight_.load() >= max_in_flight_) {
    if (!s.queued) {
      s.queued = true;
      s.queued_at = now;
    }
    if (!s.listed) {  // each entry's name at most once in owed_
      s.listed = true;
      owed_.push_back(std::move(counter));
    }
    return std::nullopt;
  }
  return StartLeaseLocked(
      counter, s,
      storage::BucketSpec{static_cast<double>(table.burst),
                          static_cast<double>(table.per_minute)},
      Batch(table.burst), now);
}

FailureThrottle::LeaseRequest FailureThrottle::StartLeaseLocked(
    const std::string& counter, Shared& s, const storage::BucketSpec& spec,
    int64_t batch, absl::Time now) {
  in_flight_.fetch_add(1);
  s.in_flight = true;
  s.queued = false;  // its name, if still in owed_, is skipped there
  s.sent = s.debt;
  s.debt = 0;
  s.sent_at = now;
  LeaseRequest request;
  request.counter = counter;
  request.spec = spec;
  request.want = s.sent + batch;
  return request;
}

std::optional<FailureThrottle::LeaseRequest> FailureThrottle::NextOwedLocked(
    absl::Time now) {
  while (!owed_.empty()) {
    const std::string counter = std::move(owed_.front());
    owed_.pop_front();
    auto it = shared_.find(counter);
    if (it == shared_.end()) continue;
    Shared& s = it->second;
    s.listed = false;
    if (!s.queued) continue;
    s.queued = false;
    if (s.in_flight || s.debt == 0 || s.refused_until > now) continue;
    const Table& table =
        absl::StartsWith(counter, addresses_.prefix) ? addresses_ : keys_;
    return StartLeaseLocked(
        counter, s,
        storage::BucketSpec{static_cast<double>(table.burst),
                            static_cast<double>(table.per_minute)},
        Batch(table.burst), now);
  }
  return std::nullopt;
}

void FailureThrottle::SendLeases(std::optional<LeaseRequest> a,
                                 std::optional<LeaseRequest> b) {
  for (std::optional<LeaseRequest>* r : {&a, &b}) {
    if (!r->has_value()) continue;
    // The place TakeShared (or Lease) took is given back when the task has
    // run, or when a full pool drops it.
    auto slot = std::make_shared<InFlightSlot>(&in_flight_);
    schedule_([this, request = **std::move(r), slot = std::move(slot)] {
      Lease(request);
    });
  }
}

void FailureThrottle::Lease(const LeaseRequest& request) {
  absl::StatusOr<storage::BucketLease> reply =
      shared_store_->LeaseBucket(request.counter, request.spec, request.want);
  std::optional<LeaseRequest> again;
  {
    absl::MutexLock lock(&mu_);
    ++shared_calls_;
    const absl::Time now = now_();
    auto it = shared_.find(request.counter);
    if (it != shared_.end()) {
      Shared& s = it->second;
      s.in_flight = false;
      if (!reply.ok()) {
        // The store is down: this replica's own bucket counts alone.
        s.sent = 0;
        s.debt = 0;
      } else {
        if (reply->granted >= s.sent) {
          s.lease += reply->granted - s.sent;
        } else {
          // The shared bucket could not pay for the failures already
          // counted: refuse for N times the wait for its next token.
          const absl::Duration wait =
              request.spec.per_minute > 0
                  ? std::max(absl::Seconds(1), reply->next_token_in)
                  : absl::Minutes(1);
          s.lease = 0;
          s.refused_until = now + wait * Replicas();
        }
        s.sent = 0;
        // Failures counted while the lease was in flight: report them now,
        // unless as many statements as allowed are outstanding besides
        // this one (which holds its place until it returns): they stay
        // owed.
        if (s.debt > 0 && s.refused_until <= now &&
            in_flight_.load() <= max_in_flight_) {
          again = StartLeaseLocked(request.counter, s, request.spec,
                                   Batch(request.spec.capacity), now);
        }
      }
    }
    // Otherwise this statement's place goes to an entry that owes, whatever
    // the reply (after a failure that entry's statement may fail too: each
    // owed entry is answered in turn, none waits for a success).
    if (!again.has_value() && in_flight_.load() <= max_in_flight_) {
      again = NextOwedLocked(now);
    }
  }
  SendLeases(std::move(again), std::nullopt);
}

FailureThrottle::Bucket* FailureThrottle::Find(Table& table,
                                               absl::string_view name,
                                               absl::Time now) {
  auto it = table.buckets.find(name);
  if (it == table.buckets.end()) return nullptr;
  Bucket& b = it->second;
  const double refill =
      absl::ToDoubleMinutes(now - b.updated) * table.per_minute;
  if (refill > 0) {
    b.tokens = std::min<double>(table.burst, b.tokens + refill);
    b.updated = now;
  }
  return &b;
}

std::string FailureThrottle::Network(absl::string_view address) const {
  return address.empty() ? std::string()
                         : core::ClientNetworkOf(address, ipv6_prefix_len_);
}

bool FailureThrottle::MakeRoom(Table& table, absl::Time now) {
  if (table.buckets.size() < max_tracked_) return true;
  // Refill everything; forget what is full again.
  for (auto it = table.buckets.begin(); it != table.buckets.end();) {
    auto next = std::next(it);
    Find(table, it->first, now);
    if (it->second.tokens >= table.burst) table.buckets.erase(it);
    it = next;
  }
  if (table.buckets.size() < max_tracked_) return true;
  // Then the tenth that spent least, keeping every throttled entry.
  std::vector<std::pair<double, std::string>> candidates;
  for (const auto& [name, bucket] : table.buckets) {
    if (bucket.tokens >= 1.0) candidates.emplace_back(bucket.tokens, name);
  }
  if (candidates.empty()) return false;
  const size_t evict =
      std::min(candidates.size(), std::max<size_t>(1, max_tracked_ / 10));
  std::nth_element(
      candidates.begin(), candidates.begin() + (evict - 1), candidates.end(),
      [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t i = 0; i < evict; ++i) table.buckets.erase(candidates[i].second);
  return true;
}

std::optional<absl::Duration> FailureThrottle::Check(Table& table,
                                                     absl::string_view name) {
  if (name.empty() || table.burst == 0) return std::nullopt;
  const absl::Time now = now_();
  const Bucket* b = Find(table, name, now);
  if (b == nullptr) {
    // Untracked here: fine unless the shared bucket refuses, or unless it
    // could not be tracked (fail closed).
    if (table.buckets.size() < max_tracked_ || MakeRoom(table, now)) {
      return CheckShared(table, name, now);
    }
    return absl::Minutes(1);
  }
  if (b->tokens >= 1.0) return CheckShared(table, name, now);
  if (table.per_minute == 0) return absl::Minutes(1);
  const double minutes = (1.0 - b->tokens) / table.per_minute;
  return std::max(absl::Seconds(1), absl::Seconds(std::ceil(minutes * 60.0)));
}

std::optional<FailureThrottle::LeaseRequest> FailureThrottle::Take(
    Table& table, absl::string_view name, absl::Time now) {
  if (name.empty() || table.burst == 0) return std::nullopt;
  Bucket* b = Find(table, name, now);
  if (b == nullptr) {
    if (!MakeRoom(table, now)) return std::nullopt;  // Check refuses it
    b = &table.buckets[std::string(name)];
    b->tokens = table.burst;
    b->updated = now;
  }
  b->tokens = std::max(0.0, b->tokens - 1.0);
  return TakeShared(table, name, now);
}

std::optional<absl::Duration> FailureThrottle::CheckAddress(
    absl::string_view address) {
  const std::string network = Network(address);
  absl::MutexLock lock(&mu_);
  return Check(addresses_, network);
}

std::optional<absl::Duration> FailureThrottle::CheckKeyFailure(
    absl::string_view key_id) {
  absl::MutexLock lock(&mu_);
  return Check(keys_, key_id);
}

void FailureThrottle::RecordFailure(absl::string_view address,
                                    absl::string_view key_id) {
  const absl::Time now = now_();
  const std::string network = Network(address);
  std::optional<LeaseRequest> by_address, by_key;
  {
    absl::MutexLock lock(&mu_);
    by_address = Take(addresses_, network, now);
    by_key = Take(keys_, key_id, now);
  }
  SendLeases(std::move(by_address), std::move(by_key));
}

bool FailureThrottle::CountsAsFailure(VerifyReason reason) {
  switch (reason) {
    case VerifyReason::kMalformed:
    case VerifyReason::kNotFound:
    case VerifyReason::kRevoked:
    case VerifyReason::kExpired:
    case VerifyReason::kRotated:
    case VerifyReason::kWrongTenant:
    case VerifyReason::kDisabled:
      return true;
    case VerifyReason::kValid:
    case VerifyReason::kInsufficientScope:
    case VerifyReason::kIpNotAllowed:
    case VerifyReason::kRateLimited:
    case VerifyReason::kUsageExceeded:
      return false;
  }
  return false;
}

std::optional<absl::Duration> FailureThrottle::AfterVerify(
    absl::string_view address, const VerifyOutcome& outcome) {
  if (!CountsAsFailure(outcome.reason)) return std::nullopt;
  const absl::Time now = now_();
  const std::string network = Network(address);
  std::optional<absl::Duration> wait;
  std::optional<LeaseRequest> by_address, by_key;
  {
    absl::MutexLock lock(&mu_);
    wait = Check(keys_, outcome.key_id);
    by_address = Take(addresses_, network, now);
    by_key = Take(keys_, outcome.key_id, now);
  }
  SendLeases(std::move(by_address), std::move(by_key));
  return wait;
}

absl::Status FailureThrottle::ThrottledError() {
  return WithErrorKind(
      absl::ResourceExhaustedError(
          "too many failed attempts; retry after the announced delay"),
      ErrorKind::kRateLimited);
}

}  // namespace lumo::service
