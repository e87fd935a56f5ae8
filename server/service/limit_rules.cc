#include "server/service/limit_rules.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/service/errors.h"

namespace lumo::service {
namespace {

bool ValidLimitName(const std::string& name) {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

absl::Status ValidateRateLimits(
    const std::vector<storage::KeyRateLimit>& limits, bool has_per_minute) {
  if (limits.size() > kMaxNamedLimits) {
    return InvalidField("rateLimits",
                        absl::StrCat("at most ", kMaxNamedLimits, " entries"));
  }
  for (size_t i = 0; i < limits.size(); ++i) {
    const storage::KeyRateLimit& l = limits[i];
    const std::string at = absl::StrCat("rateLimits[", i, "]");
    if (!ValidLimitName(l.name)) {
      return InvalidField(absl::StrCat(at, ".name"),
                          "must be 1-32 characters of a-z, 0-9, '_', '.', '-'");
    }
    for (size_t j = 0; j < i; ++j) {
      if (limits[j].name == l.name) {
        return InvalidField(absl::StrCat(at, ".name"), "must be unique");
      }
    }
    if (has_per_minute && l.name == kDefaultLimitName) {
      return InvalidField(absl::StrCat(at, ".name"),
                          "\"default\" is the name of rateLimitPerMinute");
    }
    if (l.limit < 1 || l.limit > kMaxNamedLimit) {
      return InvalidField(
          absl::StrCat(at, ".limit"),
          absl::StrCat("must be between 1 and ", kMaxNamedLimit));
    }
    if (l.duration < kMinLimitDuration || l.duration > kMaxLimitDuration ||
        l.duration != absl::Seconds(absl::ToInt64Seconds(l.duration))) {
      return InvalidField(absl::StrCat(at, ".durationSeconds"),
                          "must be whole seconds from 1 to 31536000");
    }
  }
  return absl::OkStatus();
}

bool RateLimitsWithin(const std::vector<storage::KeyRateLimit>& child,
                      const std::vector<storage::KeyRateLimit>& parent) {
  for (const storage::KeyRateLimit& p : parent) {
    bool covered = false;
    for (const storage::KeyRateLimit& c : child) {
      // Any window of p.duration is covered by ceil(p.duration /
      // c.duration) consecutive windows of c.duration (one when c's is
      // longer), each admitting at most c.limit.
      const int64_t p_ms = absl::ToInt64Milliseconds(p.duration);
      const int64_t c_ms =
          std::max<int64_t>(1, absl::ToInt64Milliseconds(c.duration));
      const long double windows = c_ms >= p_ms ? 1 : (p_ms + c_ms - 1) / c_ms;
      covered |= windows * c.limit <= static_cast<long double>(p.limit);
    }
    if (!covered) return false;
  }
  return true;
}

}  // namespace lumo::service
