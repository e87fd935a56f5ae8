// An in-process token-bucket rate limiter keyed by source address, for
// unauthenticated endpoints (open dynamic client registration). Each
// process limits on its own: with N replicas a client may get up to N times
// the rate.
#ifndef LUMOKEYS_SERVER_SERVICE_IP_RATE_LIMITER_H_
#define LUMOKEYS_SERVER_SERVICE_IP_RATE_LIMITER_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lumo::service {

struct IpRateLimiterOptions {
  // Bucket size and refill: `per_minute` requests per minute, bursts up to
  // `per_minute`.
  int per_minute = 10;
  // Addresses tracked at once. When full, addresses whose bucket has
  // refilled are forgotten; if none has, unknown addresses are refused
  // (fail closed) until one has.
  size_t max_tracked = 100000;
  // IPv6 addresses count per network of this prefix length (one client
  // usually holds a /64); IPv4 addresses count one by one.
  int ipv6_prefix_len = 64;
  // The clock (tests inject one).
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

// Thread-safe.
class IpRateLimiter {
 public:
  explicit IpRateLimiter(IpRateLimiterOptions options);

  // Takes one token for the client network of `address`. Returns nullopt when
  // allowed, else how long until a token is available (at least one second).
  std::optional<absl::Duration> Acquire(absl::string_view address);

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time updated;
  };
  // Drops buckets that are full again at `now`.
  void PruneLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const IpRateLimiterOptions options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_IP_RATE_LIMITER_H_
