// The API-key wire format: `lmk_<id>_<secret><checksum>` (docs/product.md
// §2.1).
//
//   lmk_        fixed prefix
//   <id>        12 base62 characters, random; the key record's public id
//   _           separator
//   <secret>    43 base62 characters from the OS CSPRNG (~256 bits)
//   <checksum>  6 base62 characters: CRC-32 (IEEE) of everything before it,
//               as a zero-padded base62 number, most significant digit first
//
// All functions are thread-safe. None of them puts key material into a
// status message.
#ifndef LUMOKEYS_SERVER_CORE_KEY_FORMAT_H_
#define LUMOKEYS_SERVER_CORE_KEY_FORMAT_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumo::core {

inline constexpr absl::string_view kKeyPrefix = "lmk_";
inline constexpr size_t kKeyIdLength = 12;
inline constexpr size_t kSecretLength = 43;
inline constexpr size_t kChecksumLength = 6;
// 4 + 12 + 1 + 43 + 6.
inline constexpr size_t kKeyLength =
    kKeyPrefix.size() + kKeyIdLength + 1 + kSecretLength + kChecksumLength;

enum class KeyParseResult {
  kOk,
  // Wrong length, prefix, separator or alphabet.
  kMalformed,
  // Well formed, but the checksum does not match: a typo or a forgery.
  kBadChecksum,
};

// The parts of a presented key. The views point into the parsed string.
struct ParsedKey {
  KeyParseResult result = KeyParseResult::kMalformed;
  // Set when the id part is well formed (also for kBadChecksum), so that a
  // failure can be attributed to a key id.
  absl::string_view id;
};

// Parses and checks a presented key without allocating.
ParsedKey ParseKey(absl::string_view key);

// True when `id` is 12 base62 characters.
bool IsValidKeyId(absl::string_view id);

// A fresh random key id (12 base62 characters). Fails only when the CSPRNG
// fails (INTERNAL).
absl::StatusOr<std::string> GenerateKeyId();

// A fresh full key for `id` with a new CSPRNG secret and its checksum.
// `id` must satisfy IsValidKeyId (else INVALID_ARGUMENT).
absl::StatusOr<std::string> GenerateKey(absl::string_view id);

// `lmk_<id>`: what lists and logs may show.
std::string DisplayPrefix(absl::string_view id);

// Base62 with the alphabet 0-9, A-Z, a-z.
bool IsBase62(absl::string_view s);
// `value` as exactly `width` base62 digits, zero-padded (the high digits are
// dropped if it does not fit).
std::string Base62Encode(uint64_t value, size_t width);

// CRC-32 with the IEEE 802.3 polynomial (the one zlib uses).
uint32_t Crc32(absl::string_view data);

}  // namespace lumo::core

#endif  // LUMOKEYS_SERVER_CORE_KEY_FORMAT_H_
