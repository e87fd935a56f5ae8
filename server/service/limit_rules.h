// The request rules of named rate limits (docs/limits.md "Bad input" and
// the inheritance rule): shared by key creation and, later, identity
// limits. Thread-safe (pure functions).
#ifndef LUMOKEYS_SERVER_SERVICE_LIMIT_RULES_H_
#define LUMOKEYS_SERVER_SERVICE_LIMIT_RULES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
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

inline constexpr int64_t kMaxCredits = 1'000'000'000'000;
inline constexpr int64_t kMaxVerifyCost = 10'000;

// INVALID_ARGUMENT kInvalidField naming the bad field under `prefix`
// (`credits` at create; `` for the credits API): `.remaining` 0 to 10^12
// (`value` for the API); `.refill.amount` 1 to 10^12 and
// `.refill.intervalSeconds` whole seconds from 1 s to 365 days, each
// requiring the other.
absl::Status ValidateCredits(const storage::KeyQuota& quota,
                             absl::string_view prefix,
                             absl::string_view remaining_field);

// INVALID_ARGUMENT kInvalidField `cost` unless 0 <= cost <= 10 000.
absl::Status ValidateCost(int64_t cost);

// Identity limits (docs/limits.md "Identity limits"): shared by every key
// of one (tenant, external id). Their counters are
// "i:<tenant id>:<32 hex digits of SHA-256(external id)>:<name>:<seconds>"
// (this prefix, then name and seconds), and callers see them named
// "identity:<name>" (':' is not a limit name character: no key limit has
// such a name).
inline constexpr char kIdentityLimitPrefix[] = "identity:";
std::string IdentityCounterPrefix(int64_t tenant_id,
                                  absl::string_view external_id);

// `limits` as a JSON array of {name, limit, durationSeconds} (audit
// metadata).
std::string RateLimitsJson(const std::vector<storage::KeyRateLimit>& limits);

// Whether `child` is at least as tight as `parent`: for every limit P of
// the parent, the child has a limit K that alone keeps every window of
// P's duration within P's limit: K.limit * ceil(P.duration / K.duration)
// <= P.limit (K.limit <= P.limit when K's duration is the longer). A
// parent without limits allows anything.
bool RateLimitsWithin(const std::vector<storage::KeyRateLimit>& child,
                      const std::vector<storage::KeyRateLimit>& parent);

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_LIMIT_RULES_H_
