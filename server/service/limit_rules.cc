#include "server/service/limit_rules.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/core/crypto.h"
#include "server/service/audit_json.h"
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

absl::Status ValidateCredits(const storage::KeyQuota& quota,
                             absl::string_view prefix,
                             absl::string_view remaining_field) {
  const auto field = [prefix](absl::string_view name) {
    return prefix.empty() ? std::string(name) : absl::StrCat(prefix, ".", name);
  };
  if (quota.remaining < 0 || quota.remaining > kMaxCredits) {
    return InvalidField(field(remaining_field),
                        absl::StrCat("must be between 0 and ", kMaxCredits));
  }
  const bool has_amount = quota.refill_amount != 0;
  const bool has_interval = quota.refill_interval != absl::ZeroDuration();
  if (has_interval && !has_amount) {
    return InvalidField(field("refill.amount"),
                        "required with refill.intervalSeconds");
  }
  if (has_amount &&
      (quota.refill_amount < 1 || quota.refill_amount > kMaxCredits)) {
    return InvalidField(field("refill.amount"),
                        absl::StrCat("must be between 1 and ", kMaxCredits));
  }
  if (has_amount && !has_interval) {
    return InvalidField(field("refill.intervalSeconds"),
                        "required with refill.amount");
  }
  if (has_interval &&
      (quota.refill_interval < kMinLimitDuration ||
       quota.refill_interval > kMaxLimitDuration ||
       quota.refill_interval !=
           absl::Seconds(absl::ToInt64Seconds(quota.refill_interval)))) {
    return InvalidField(field("refill.intervalSeconds"),
                        "must be whole seconds from 1 to 31536000");
  }
  return absl::OkStatus();
}

absl::Status ValidateCost(int64_t cost) {
  if (cost < 0 || cost > kMaxVerifyCost) {
    return InvalidField("cost",
                        absl::StrCat("must be between 0 and ", kMaxVerifyCost));
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

std::string IdentityCounterPrefix(int64_t tenant_id,
                                  absl::string_view external_id) {
  const core::Digest digest = core::Sha256(external_id);
  return absl::StrCat("i:", tenant_id, ":",
                      core::HexEncode(core::AsStringView(digest)).substr(0, 32),
                      ":");
}

std::string RateLimitsJson(const std::vector<storage::KeyRateLimit>& limits) {
  std::string out = "[";
  for (size_t i = 0; i < limits.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += JsonObject()
               .Add("name", limits[i].name)
               .Add("limit", limits[i].limit)
               .Add("durationSeconds", absl::ToInt64Seconds(limits[i].duration))
               .Build();
  }
  return out + "]";
}

}  // namespace lumo::service
