#include "server/service/key_fields.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/net.h"
#include "server/core/scopes.h"
#include "server/core/validation.h"
#include "server/service/errors.h"

namespace lumo::service {
namespace {

struct FieldName {
  KeyField field;
  const char* path;
  const char* proto_path;
};

constexpr FieldName kFields[] = {
    {KeyField::kName, "name", "name"},
    {KeyField::kScopes, "scopes", "scopes"},
    {KeyField::kAllowedCidrs, "allowedCidrs", "allowed_cidrs"},
    {KeyField::kRateLimitPerMinute, "rateLimitPerMinute",
     "rate_limit_per_minute"},
    {KeyField::kExpiresAt, "expiresAt", "expires_at"},
    {KeyField::kExternalId, "externalId", "external_id"},
    {KeyField::kMetadata, "metadata", "metadata"},
    {KeyField::kRateLimits, "rateLimits", "rate_limits"},
};

bool IsMetadataKeyChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '.' || c == ':' || c == '-';
}

// No C0 control but tab, no DEL, no C1 control (U+0080-U+009F, encoded as
// C2 80-C2 9F in UTF-8).
bool HasForbiddenControl(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return true;
    if (c == 0xc2 && i + 1 < s.size()) {
      const unsigned char next = static_cast<unsigned char>(s[i + 1]);
      if (next >= 0x80 && next <= 0x9f) return true;
    }
  }
  return false;
}

}  // namespace

absl::Status ValidateKeyName(const std::string& name) {
  absl::Status ok = core::ValidateName("name", name, 1, 100);
  if (!ok.ok()) return AsInvalidField(ok);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> CanonicalKeyScopes(
    const std::vector<std::string>& scopes) {
  absl::StatusOr<std::vector<std::string>> canonical =
      core::CanonicalizeScopes(scopes);
  if (!canonical.ok()) return AsInvalidField(canonical.status());
  return canonical;
}

absl::StatusOr<std::vector<std::string>> CanonicalAllowedCidrs(
    const std::vector<std::string>& cidrs) {
  if (cidrs.size() > kMaxAllowedCidrs) {
    return InvalidField("allowedCidrs",
                        absl::StrCat("at most ", kMaxAllowedCidrs, " entries"));
  }
  std::vector<std::string> out;
  for (const std::string& text : cidrs) {
    absl::StatusOr<core::Cidr> cidr = core::Cidr::Parse(text);
    if (!cidr.ok()) {
      return InvalidField("allowedCidrs",
                          "each entry must be an IPv4 or IPv6 CIDR block");
    }
    std::string canonical = cidr->ToString();
    bool dup = false;
    for (const std::string& have : out) dup |= have == canonical;
    if (!dup) out.push_back(std::move(canonical));
  }
  return out;
}

absl::Status ValidateRateLimit(int32_t per_minute) {
  if (per_minute < 0 || per_minute > kMaxRateLimitPerMinute) {
    return InvalidField(
        "rateLimitPerMinute",
        absl::StrCat("must be between 0 and ", kMaxRateLimitPerMinute));
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Time> ValidateExpiry(absl::Time expires_at,
                                          absl::Time now) {
  if (expires_at <= now) {
    return InvalidField("expiresAt", "must be in the future");
  }
  if (expires_at >
      absl::FromCivil(absl::CivilSecond(9999, 1, 1), absl::UTCTimeZone())) {
    return InvalidField("expiresAt", "too far in the future");
  }
  return absl::FromUnixMicros(absl::ToUnixMicros(expires_at));
}

absl::Status ValidateExternalId(const std::string& external_id) {
  if (external_id.empty()) return absl::OkStatus();
  absl::Status ok =
      core::ValidateName("externalId", external_id, 1, kMaxExternalIdChars);
  if (!ok.ok()) return AsInvalidField(ok);
  return absl::OkStatus();
}

absl::Status ValidateMetadata(const core::StringMap& metadata) {
  if (metadata.size() > kMaxMetadataEntries) {
    return InvalidField(
        "metadata", absl::StrCat("at most ", kMaxMetadataEntries, " entries"));
  }
  size_t total = 0;
  for (const auto& [key, value] : metadata) {
    if (key.empty() || key.size() > kMaxMetadataKeyBytes) {
      return InvalidField(
          "metadata",
          absl::StrCat("each key must be 1-", kMaxMetadataKeyBytes, " bytes"));
    }
    for (char c : key) {
      if (!IsMetadataKeyChar(c)) {
        return InvalidField("metadata",
                            "keys may contain only letters, digits and _.:-");
      }
    }
    if (!core::IsValidUtf8(value) || HasForbiddenControl(value)) {
      return InvalidField("metadata",
                          "values must be UTF-8 text without control "
                          "characters other than tab");
    }
    total += key.size() + value.size();
  }
  if (total > kMaxMetadataBytes) {
    return InvalidField("metadata",
                        absl::StrCat("at most ", kMaxMetadataBytes,
                                     " bytes of keys and values in all"));
  }
  return absl::OkStatus();
}

absl::Status ValidateKeyPolicy(const storage::KeyPolicy& policy) {
  const struct {
    const char* field;
    int32_t value;
    int32_t max;
  } numbers[] = {
      {"keyPolicy.maxLifetimeDays", policy.max_lifetime_days, kMaxPolicyDays},
      {"keyPolicy.rotationPeriodDays", policy.rotation_period_days,
       kMaxPolicyDays},
      {"keyPolicy.expiryWarningDays", policy.expiry_warning_days,
       kMaxExpiryWarningDays},
      {"keyPolicy.inactiveAfterDays", policy.inactive_after_days,
       kMaxPolicyDays},
  };
  for (const auto& n : numbers) {
    if (n.value < 0 || n.value > n.max) {
      return InvalidField(n.field, absl::StrCat("must be between 0 and ", n.max,
                                                " days (0: not set)"));
    }
  }
  if (policy.max_lifetime_days > 0 && policy.expiry_warning_days > 0 &&
      policy.expiry_warning_days >= policy.max_lifetime_days) {
    return InvalidField("keyPolicy.expiryWarningDays",
                        "must be shorter than keyPolicy.maxLifetimeDays");
  }
  return absl::OkStatus();
}

absl::Status CheckExpiryPolicy(const storage::KeyPolicy& policy,
                               const std::optional<absl::Time>& expires_at,
                               absl::Time issued) {
  const bool capped = policy.max_lifetime_days > 0;
  if (!expires_at.has_value()) {
    if (capped) {
      return InvalidField(
          "expiresAt",
          absl::StrCat("required: the tenant's key policy allows keys to live "
                       "at most ",
                       policy.max_lifetime_days, " days"));
    }
    if (policy.require_expiry) {
      return InvalidField("expiresAt", "required by the tenant's key policy");
    }
    return absl::OkStatus();
  }
  if (capped &&
      *expires_at > issued + absl::Hours(24) * policy.max_lifetime_days) {
    return InvalidField(
        "expiresAt", absl::StrCat("beyond the tenant's key policy: at most ",
                                  policy.max_lifetime_days,
                                  " days after the key's secret was issued"));
  }
  return absl::OkStatus();
}

const char* KeyFieldPath(KeyField field) {
  for (const FieldName& f : kFields) {
    if (f.field == field) return f.path;
  }
  return "";
}

absl::StatusOr<std::vector<KeyField>> ParseKeyUpdateMask(
    const std::vector<std::string>& paths) {
  if (paths.empty()) {
    return InvalidField("updateMask", "must name at least one field");
  }
  std::vector<KeyField> out;
  for (const std::string& path : paths) {
    const FieldName* found = nullptr;
    for (const FieldName& f : kFields) {
      if (path == f.path || path == f.proto_path) found = &f;
    }
    if (found == nullptr) {
      std::vector<std::string> names;
      for (const FieldName& f : kFields) names.push_back(f.path);
      // The path is caller text: named only by position, never echoed.
      return InvalidField("updateMask",
                          absl::StrCat("unknown field; editable fields are ",
                                       absl::StrJoin(names, ", ")));
    }
    for (KeyField seen : out) {
      if (seen == found->field) {
        return InvalidField("updateMask",
                            absl::StrCat(found->path, " is named twice"));
      }
    }
    out.push_back(found->field);
  }
  return out;
}

}  // namespace lumo::service
