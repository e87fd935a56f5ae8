#include "server/service/ip_rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "server/core/net.h"

namespace lumo::service {

IpRateLimiter::IpRateLimiter(IpRateLimiterOptions options)
    : options_(std::move(options)) {}

void IpRateLimiter::PruneLocked(absl::Time now) {
  const double capacity = std::max(options_.per_minute, 1);
  const double per_second = capacity / 60.0;
  absl::erase_if(buckets_, [&](const auto& entry) {
    const double refilled =
        entry.second.tokens +
        absl::ToDoubleSeconds(now - entry.second.updated) * per_second;
    return refilled >= capacity;
  });
}

std::optional<absl::Duration> IpRateLimiter::Acquire(
    absl::string_view address_text) {
  const std::string address =
      core::ClientNetworkOf(address_text, options_.ipv6_prefix_len);
  const absl::Time now = options_.now();
  const double capacity = std::max(options_.per_minute, 1);
  const double per_second = capacity / 60.0;
  absl::MutexLock lock(&mu_);
  auto it = buckets_.find(address);
  if (it == buckets_.end()) {
    if (buckets_.size() >= options_.max_tracked) PruneLocked(now);
    if (buckets_.size() >= options_.max_tracked) return absl::Seconds(60);
    it = buckets_.emplace(address, Bucket{capacity, now}).first;
  }
  Bucket& bucket = it->second;
  const absl::Duration elapsed =
      std::max(now - bucket.updated, absl::ZeroDuration());
  bucket.tokens = std::min(
      capacity, bucket.tokens + absl::ToDoubleSeconds(elapsed) * per_second);
  bucket.updated = now;
  if (bucket.tokens >= 1.0) {
    bucket.tokens -= 1.0;
    return std::nullopt;
  }
  const double wait = std::ceil((1.0 - bucket.tokens) / per_second);
  return absl::Seconds(std::max(1.0, wait));
}

}  // namespace lumo::service
