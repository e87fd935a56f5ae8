#include "server/service/failure_throttle.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "server/core/net.h"
#include "server/service/key_service.h"

namespace lumo::service {

FailureThrottle::FailureThrottle(FailureThrottleOptions options)
    : max_tracked_(std::max<size_t>(1, options.max_tracked)),
      ipv6_prefix_len_(options.ipv6_prefix_len),
      now_(std::move(options.now)) {
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
    // Untracked: fine, unless it could not be tracked (fail closed).
    if (table.buckets.size() < max_tracked_ || MakeRoom(table, now)) {
      return std::nullopt;
    }
    return absl::Minutes(1);
  }
  if (b->tokens >= 1.0) return std::nullopt;
  if (table.per_minute == 0) return absl::Minutes(1);
  const double minutes = (1.0 - b->tokens) / table.per_minute;
  return std::max(absl::Seconds(1), absl::Seconds(std::ceil(minutes * 60.0)));
}

void FailureThrottle::Take(Table& table, absl::string_view name,
                           absl::Time now) {
  if (name.empty() || table.burst == 0) return;
  Bucket* b = Find(table, name, now);
  if (b == nullptr) {
    if (!MakeRoom(table, now)) return;  // Check refuses it meanwhile
    b = &table.buckets[std::string(name)];
    b->tokens = table.burst;
    b->updated = now;
  }
  b->tokens = std::max(0.0, b->tokens - 1.0);
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
  absl::MutexLock lock(&mu_);
  Take(addresses_, network, now);
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
    case VerifyReason::kDisabled:
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
  const std::string network = Network(address);
  absl::MutexLock lock(&mu_);
  std::optional<absl::Duration> wait = Check(keys_, outcome.key_id);
  Take(addresses_, network, now);
  Take(keys_, outcome.key_id, now);
  return wait;
}

absl::Status FailureThrottle::ThrottledError() {
  return WithErrorKind(
      absl::ResourceExhaustedError(
          "too many failed attempts; retry after the announced delay"),
      ErrorKind::kRateLimited);
}

}  // namespace lumo::service
