#include "server/core/key_format.h"

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/crypto.h"

namespace lumo::core {
namespace {

constexpr absl::string_view kBase62Alphabet =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// Offsets of the parts inside a full key.
constexpr size_t kIdOffset = kKeyPrefix.size();
constexpr size_t kSeparatorOffset = kIdOffset + kKeyIdLength;
constexpr size_t kSecretOffset = kSeparatorOffset + 1;
constexpr size_t kChecksumOffset = kSecretOffset + kSecretLength;
static_assert(kChecksumOffset + kChecksumLength == kKeyLength);

// Digit value of each byte, or -1 for bytes outside the alphabet.
constexpr std::array<int8_t, 256> MakeBase62Values() {
  std::array<int8_t, 256> values{};
  for (auto& v : values) v = -1;
  for (size_t i = 0; i < kBase62Alphabet.size(); ++i) {
    values[static_cast<uint8_t>(kBase62Alphabet[i])] = static_cast<int8_t>(i);
  }
  return values;
}
constexpr std::array<int8_t, 256> kBase62Values = MakeBase62Values();

// Reflected CRC-32 table for the IEEE polynomial 0x04C11DB7 (0xEDB88320 in
// reflected bit order).
constexpr std::array<uint32_t, 256> MakeCrc32Table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) {
      c = (c & 1) ? (0xEDB88320u ^ (c >> 1)) : (c >> 1);
    }
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32Table = MakeCrc32Table();

// The value of base62 `digits` (the caller has checked the alphabet).
// 62^6 > 2^32, so every CRC value has exactly one 6-digit encoding and
// decoding is the inverse of Base62Encode(crc, 6).
uint64_t DecodeBase62(absl::string_view digits) {
  uint64_t value = 0;
  for (char c : digits) {
    value = value * 62 +
            static_cast<uint64_t>(kBase62Values[static_cast<uint8_t>(c)]);
  }
  return value;
}

}  // namespace

bool IsBase62(absl::string_view s) {
  for (char c : s) {
    if (kBase62Values[static_cast<uint8_t>(c)] < 0) return false;
  }
  return true;
}

std::string Base62Encode(uint64_t value, size_t width) {
  std::string out(width, '0');
  for (size_t i = width; i > 0; --i) {
    out[i - 1] = kBase62Alphabet[value % 62];
    value /= 62;
  }
  return out;
}

uint32_t Crc32(absl::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (char c : data) {
    crc = kCrc32Table[(crc ^ static_cast<uint8_t>(c)) & 0xFFu] ^ (crc >> 8);
  }
  return crc ^ 0xFFFFFFFFu;
}

bool IsValidKeyId(absl::string_view id) {
  return id.size() == kKeyIdLength && IsBase62(id);
}

ParsedKey ParseKey(absl::string_view key) {
  ParsedKey parsed;  // kMalformed, no id
  if (key.size() < kSecretOffset || key.substr(0, kIdOffset) != kKeyPrefix ||
      key[kSeparatorOffset] != '_') {
    return parsed;
  }
  const absl::string_view id = key.substr(kIdOffset, kKeyIdLength);
  if (!IsBase62(id)) return parsed;
  // From here on the failure can be attributed to `id`, even when the rest
  // of the key is truncated or damaged.
  parsed.id = id;
  if (key.size() != kKeyLength || !IsBase62(key.substr(kSecretOffset))) {
    return parsed;
  }
  const uint64_t expected = Crc32(key.substr(0, kChecksumOffset));
  const uint64_t presented = DecodeBase62(key.substr(kChecksumOffset));
  parsed.result = expected == presented ? KeyParseResult::kOk
                                        : KeyParseResult::kBadChecksum;
  return parsed;
}

absl::StatusOr<std::string> GenerateKeyId() {
  return RandomBase62(kKeyIdLength);
}

absl::StatusOr<std::string> GenerateKey(absl::string_view id) {
  if (!IsValidKeyId(id)) {
    return absl::InvalidArgumentError("key id must be 12 base62 characters");
  }
  absl::StatusOr<std::string> secret = RandomBase62(kSecretLength);
  if (!secret.ok()) return secret.status();

  std::string key;
  key.reserve(kKeyLength);
  key.append(kKeyPrefix.data(), kKeyPrefix.size());
  key.append(id.data(), id.size());
  key.push_back('_');
  key.append(*secret);
  Cleanse(*secret);
  key.append(Base62Encode(Crc32(key), kChecksumLength));
  return key;
}

std::string DisplayPrefix(absl::string_view id) {
  std::string out;
  out.reserve(kKeyPrefix.size() + id.size());
  out.append(kKeyPrefix.data(), kKeyPrefix.size());
  out.append(id.data(), id.size());
  return out;
}

}  // namespace lumo::core
