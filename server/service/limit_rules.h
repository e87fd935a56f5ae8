// The request rules of named rate limits (docs/limits.md "Bad input" and
// the inheritance rule): shared by key creation and, later, identity
// limits. Thread-safe (pure functions).
#ifndef LUMOKEYS_SERVER_SERVICE_LIMIT_RULES_H_
#define LUMOKEYS_SERVER_SERVICE_LIMIT_RULES_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/storage/key_store.h"

namespace lumo::service {

inline constexpr size_t kMaxNamedLimits = 10;
inline constexpr int64_t kMaxNamedLimit = 1'000'000'000;
inline constexpr absl::Duration kMinLimitDuration = absl::Seconds(1);
inline constexpr absl::Duration kMaxLimitDuration = absl::Hours(24 * 365);
// The name the per-minute limit (rateLimitPerMinute) is counted under.
inline constexpr char kDefaultLimitName[] = "default";

// INVALID_ARGUMENT kInvalidField naming the first bad field
// (`rateLimits`, `rateLimits[i].name`, `.limit`, `.durationSeconds`):
// at most 10; names 1-32 of [a-z0-9_.-], unique, and not "default" when
// `has_per_minute` (the per-minute limit has that name); limit 1 to 10^9;
// duration whole seconds from 1 s to 365 days.
absl::Status ValidateRateLimits(
    const std::vector<storage::KeyRateLimit>& limits, bool has_per_minute);

// Whether `child` is at least as tight as `parent`: for every limit P of
// the parent, the child has a limit K that alone keeps every window of
// P's duration within P's limit: K.limit * ceil(P.duration / K.duration)
// <= P.limit (K.limit <= P.limit when K's duration is the longer). A
// parent without limits allows anything.
bool RateLimitsWithin(const std::vector<storage::KeyRateLimit>& child,
                      const std::vector<storage::KeyRateLimit>& parent);

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_LIMIT_RULES_H_
