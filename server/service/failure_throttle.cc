#include "server/service/failure_throttle.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <utility>

#include "server/service/key_service.h"

namespace lumo::service {

FailureThrottle::FailureThrottle(FailureThrottleOptions options)
    : max_tracked_(options.max_tracked), now_(std::move(options.now)) {
  addresses_.burst = std::max(0, options.ip_burst);
  addresses_.per_minute = std::max(0, options.ip_per_minute);
  keys_.burst = std::max(0, options.key_burst);
  keys_.per_minute = std::max(0, options.key_per_minute);
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

std::optional<absl::Duration> FailureThrottle::Check(Table& table,
                                                     absl::string_view name) {
  if (name.empty() || table.burst == 0) return std::nullopt;
  const Bucket* b = Find(table, name, now_());
  if (b == nullptr || b->tokens >= 1.0) return std::nullopt;
  if (table.per_minute == 0) return absl::Minutes(1);
  const double minutes = (1.0 - b->tokens) / table.per_minute;
  return std::max(absl::Seconds(1), absl::Seconds(std::ceil(minutes * 60.0)));
}

void FailureThrottle::Take(Table& table, absl::string_view name,
                           absl::Time now) {
  if (name.empty() || table.burst == 0) return;
  Bucket* b = Find(table, name, now);
  if (b == nullptr) {
    if (table.buckets.size() >= max_tracked_) {
      // Forget the addresses / ids that have refilled completely.
      for (auto it = table.buckets.begin(); it != table.buckets.end();) {
        auto next = std::next(it);
        Find(table, it->first, now);
        if (it->second.tokens >= table.burst) table.buckets.erase(it);
        it = next;
      }
      if (table.buckets.size() >= max_tracked_) return;
    }
    b = &table.buckets[std::string(name)];
    b->tokens = table.burst;
    b->updated = now;
  }
  b->tokens = std::max(0.0, b->tokens - 1.0);
}

std::optional<absl::Duration> FailureThrottle::CheckAddress(
    absl::string_view address) {
  absl::MutexLock lock(&mu_);
  return Check(addresses_, address);
}

std::optional<absl::Duration> FailureThrottle::CheckKeyFailure(
    absl::string_view key_id) {
  absl::MutexLock lock(&mu_);
  return Check(keys_, key_id);
}

void FailureThrottle::RecordFailure(absl::string_view address,
                                    absl::string_view key_id) {
  const absl::Time now = now_();
  absl::MutexLock lock(&mu_);
  Take(addresses_, address, now);
  Take(keys_, key_id, now);
}

bool FailureThrottle::CountsAsFailure(VerifyReason reason) {
  switch (reason) {
    case VerifyReason::kMalformed:
    case VerifyReason::kNotFound:
    case VerifyReason::kRevoked:
    case VerifyReason::kExpired:
    case VerifyReason::kRotated:
    case VerifyReason::kWrongTenant:
      return true;
    case VerifyReason::kValid:
    case VerifyReason::kInsufficientScope:
    case VerifyReason::kIpNotAllowed:
    case VerifyReason::kRateLimited:
      return false;
  }
  return false;
}

std::optional<absl::Duration> FailureThrottle::AfterVerify(
    absl::string_view address, const VerifyOutcome& outcome) {
  if (!CountsAsFailure(outcome.reason)) return std::nullopt;
  const absl::Time now = now_();
  absl::MutexLock lock(&mu_);
  std::optional<absl::Duration> wait = Check(keys_, outcome.key_id);
  Take(addresses_, address, now);
  Take(keys_, outcome.key_id, now);
  return wait;
}

absl::Status FailureThrottle::ThrottledError() {
  return WithErrorCode(
      absl::ResourceExhaustedError(
          "too many failed attempts; retry after the announced delay"),
      "rate_limit_exceeded");
}

}  // namespace lumo::service
