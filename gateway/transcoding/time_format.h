// RFC 3339 text for google.protobuf.Timestamp and the proto3 JSON text of
// google.protobuf.Duration. Thread-safe (pure functions).
#ifndef LUMOKEYS_GATEWAY_TRANSCODING_TIME_FORMAT_H_
#define LUMOKEYS_GATEWAY_TRANSCODING_TIME_FORMAT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lumo::gateway {

// The range protobuf allows for Timestamp: 0001-01-01T00:00:00Z to
// 9999-12-31T23:59:59.999999999Z.
inline constexpr int64_t kMinTimestampSeconds = -62135596800;
inline constexpr int64_t kMaxTimestampSeconds = 253402300799;

// Appends e.g. "2026-11-27T11:22:33.123456Z" (UTC; the fraction has 0, 3, 6
// or 9 digits, the fewest that represent `nanos` exactly). False, appending
// nothing, when the value is outside the Timestamp range or `nanos` is not
// in [0, 999999999].
bool AppendRfc3339(int64_t seconds, int32_t nanos, std::string* out);

// Parses `YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|+HH:MM|-HH:MM)` (`t` and `z`
// accepted in lower case, as RFC 3339 allows; no leap second 60) into a
// Timestamp value. INVALID_ARGUMENT ("not an RFC 3339 timestamp", "out of
// range") without echoing the text.
absl::Status ParseRfc3339(absl::string_view text, int64_t* seconds,
                          int32_t* nanos);

// Appends the proto3 JSON form of a Duration, e.g. "-1.500s". False,
// appending nothing, when the value is invalid (|seconds| > 315576000000,
// |nanos| > 999999999, or signs that differ).
bool AppendDuration(int64_t seconds, int32_t nanos, std::string* out);

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_TRANSCODING_TIME_FORMAT_H_
