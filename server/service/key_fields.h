// The rules of a key's editable fields (docs/api-keys.md, "Lifecycle" and
// "Managing a key over years"), shared by create and edit. Every refusal is
// an INVALID_ARGUMENT kInvalidField naming the request field, and never
// echoes the value. Thread-safe (pure functions).
#ifndef LUMOKEYS_SERVER_SERVICE_KEY_FIELDS_H_
#define LUMOKEYS_SERVER_SERVICE_KEY_FIELDS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/string_map_json.h"
#include "server/storage/key_store.h"

namespace lumo::service {

inline constexpr size_t kMaxAllowedCidrs = 32;
inline constexpr int32_t kMaxRateLimitPerMinute = 1'000'000;
inline constexpr size_t kMaxExternalIdChars = 128;
inline constexpr size_t kMaxMetadataEntries = 20;
inline constexpr size_t kMaxMetadataKeyBytes = 64;
inline constexpr size_t kMaxMetadataBytes = 4096;

// 1-100 code points, no control characters.
absl::Status ValidateKeyName(const std::string& name);

// Non-empty known scopes, deduplicated, in canonical order.
absl::StatusOr<std::vector<std::string>> CanonicalKeyScopes(
    const std::vector<std::string>& scopes);

// At most kMaxAllowedCidrs CIDRs (host bits zero), canonical text,
// duplicates dropped.
absl::StatusOr<std::vector<std::string>> CanonicalAllowedCidrs(
    const std::vector<std::string>& cidrs);

// 0 (none) to kMaxRateLimitPerMinute.
absl::Status ValidateRateLimit(int32_t per_minute);

// Later than `now` (the database clock) and before year 9999; returned in
// whole microseconds, as stored.
absl::StatusOr<absl::Time> ValidateExpiry(absl::Time expires_at,
                                          absl::Time now);

// "" (none) or 1-128 code points without control characters.
absl::Status ValidateExternalId(const std::string& external_id);

// At most kMaxMetadataEntries entries; keys 1-64 bytes of [A-Za-z0-9_.:-];
// values UTF-8 without control characters other than tab; at most
// kMaxMetadataBytes of keys and values in all.
absl::Status ValidateMetadata(const core::StringMap& metadata);

inline constexpr int32_t kMaxPolicyDays = 3650;
inline constexpr int32_t kMaxExpiryWarningDays = 365;

// A tenant's key policy as it would be stored: every number in range
// (0-3650 days; the warning 0-365) and a warning shorter than the maximum
// lifetime when both are set. kInvalidField naming "keyPolicy.<member>".
absl::Status ValidateKeyPolicy(const storage::KeyPolicy& policy);

// `expires_at` against the tenant's policy: required under requireExpiry
// or a maximum lifetime, and then no later than `issued` (when the key's
// current secret was issued: creation, or its last rotation) plus
// maxLifetimeDays. kInvalidField "expiresAt" naming the policy limit.
absl::Status CheckExpiryPolicy(const storage::KeyPolicy& policy,
                               const std::optional<absl::Time>& expires_at,
                               absl::Time issued);

// The fields an edit may name in its update mask.
enum class KeyField {
  kName,
  kScopes,
  kAllowedCidrs,
  kRateLimitPerMinute,
  kExpiresAt,
  kExternalId,
  kMetadata,
  kRateLimits,
};

// The camelCase path of `field` ("allowedCidrs").
const char* KeyFieldPath(KeyField field);

// The mask's paths as fields, in mask order. Paths are the camelCase names
// (the snake_case spelling of the proto field is accepted too). An empty
// mask, an unknown path or a repeated one: kInvalidField "updateMask".
absl::StatusOr<std::vector<KeyField>> ParseKeyUpdateMask(
    const std::vector<std::string>& paths);

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_KEY_FIELDS_H_
