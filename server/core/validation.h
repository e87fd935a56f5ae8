// Validation of user-supplied strings. Thread-safe (pure functions).
#ifndef LUMOKEYS_SERVER_CORE_VALIDATION_H_
#define LUMOKEYS_SERVER_CORE_VALIDATION_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lumo::core {

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates).
bool IsValidUtf8(absl::string_view s);

// Number of code points in valid UTF-8 `s`.
size_t Utf8Length(absl::string_view s);

// At most `max_chars` code points of UTF-8 `s`, cut at a character
// boundary (whatever the bytes, it never cuts inside a multi-byte
// sequence).
std::string TruncateUtf8(absl::string_view s, size_t max_chars);

// A display name: valid UTF-8, `min_chars`..`max_chars` code points, no
// control characters (C0, DEL, C1), not only white space. INVALID_ARGUMENT
// names `field` (in the message, which starts with it, and as the status's
// field, core/field_error.h) and the rule broken, never echoes the value.
absl::Status ValidateName(absl::string_view field, absl::string_view s,
                          size_t min_chars, size_t max_chars);

// A tenant slug: 1-63 characters of [a-z0-9-], not starting or ending with
// '-'.
bool IsValidSlug(absl::string_view slug);

}  // namespace lumo::core

#endif  // LUMOKEYS_SERVER_CORE_VALIDATION_H_
