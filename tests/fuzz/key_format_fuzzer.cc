// Fuzzes the API-key parser (server/core/key_format) with properties:
//   * ParseKey on arbitrary bytes: kOk only for a key of the exact format
//     whose checksum re-computes to the presented one (the key re-formats to
//     the same string); an id is reported only if it is the 12 base62
//     characters after "lmk_" and the separator is in place;
//   * a key assembled from the input (bytes mapped onto base62) with its
//     correct checksum always parses kOk, and changing any one checksum digit
//     makes it kBadChecksum (never kOk, never kMalformed);
//   * Base62Encode is injective on 6-digit CRC values (round trip through
//     ParseKey's decoding is covered by the above).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "server/core/key_format.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using lumo::core::Base62Encode;
using lumo::core::Crc32;
using lumo::core::KeyParseResult;
using lumo::core::ParsedKey;
using lumo::core::ParseKey;

constexpr absl::string_view kAlphabet =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr size_t kIdOffset = lumo::core::kKeyPrefix.size();
constexpr size_t kSecretOffset = kIdOffset + lumo::core::kKeyIdLength + 1;
constexpr size_t kChecksumOffset = kSecretOffset + lumo::core::kSecretLength;

void CheckArbitraryInput(absl::string_view input) {
  const ParsedKey parsed = ParseKey(input);
  if (!parsed.id.empty()) {
    FUZZ_CHECK(input.size() >= kSecretOffset);
    FUZZ_CHECK(input.substr(0, kIdOffset) == lumo::core::kKeyPrefix);
    FUZZ_CHECK(parsed.id == input.substr(kIdOffset, lumo::core::kKeyIdLength));
    FUZZ_CHECK(parsed.id.data() == input.data() + kIdOffset);  // a view
    FUZZ_CHECK(lumo::core::IsValidKeyId(parsed.id));
    FUZZ_CHECK(input[kSecretOffset - 1] == '_');
  } else {
    FUZZ_CHECK(parsed.result == KeyParseResult::kMalformed);
  }
  if (parsed.result == KeyParseResult::kMalformed) return;
  // kOk and kBadChecksum: the full shape is right.
  FUZZ_CHECK(input.size() == lumo::core::kKeyLength);
  FUZZ_CHECK(
      lumo::core::IsBase62(input.substr(kIdOffset, lumo::core::kKeyIdLength)));
  FUZZ_CHECK(lumo::core::IsBase62(input.substr(kSecretOffset)));
  const std::string reformatted =
      std::string(input.substr(0, kChecksumOffset)) +
      Base62Encode(Crc32(input.substr(0, kChecksumOffset)),
                   lumo::core::kChecksumLength);
  FUZZ_CHECK((parsed.result == KeyParseResult::kOk) == (reformatted == input));
}

void CheckAssembledKey(absl::string_view input) {
  std::string key(lumo::core::kKeyPrefix);
  for (size_t i = 0; i < lumo::core::kKeyIdLength + lumo::core::kSecretLength;
       ++i) {
    if (i == lumo::core::kKeyIdLength) key.push_back('_');
    const uint8_t byte =
        i < input.size() ? static_cast<uint8_t>(input[i]) : uint8_t{0};
    key.push_back(kAlphabet[byte % kAlphabet.size()]);
  }
  key += Base62Encode(Crc32(key), lumo::core::kChecksumLength);
  FUZZ_CHECK(key.size() == lumo::core::kKeyLength);
  const ParsedKey ok = ParseKey(key);
  FUZZ_CHECK(ok.result == KeyParseResult::kOk);
  FUZZ_CHECK(ok.id == absl::string_view(key).substr(kIdOffset,
                                                    lumo::core::kKeyIdLength));

  // One checksum digit changed to another base62 digit.
  const uint8_t pick = input.empty() ? 0 : static_cast<uint8_t>(input.back());
  const size_t pos = kChecksumOffset + pick % lumo::core::kChecksumLength;
  const size_t old_digit = kAlphabet.find(key[pos]);
  std::string damaged = key;
  damaged[pos] = kAlphabet[(old_digit + 1 + pick % 61) % kAlphabet.size()];
  FUZZ_CHECK(damaged[pos] != key[pos]);
  const ParsedKey bad = ParseKey(damaged);
  FUZZ_CHECK(bad.result == KeyParseResult::kBadChecksum);
  FUZZ_CHECK(bad.id == ok.id);

  // Truncated or extended: malformed, but attributable to the id.
  const ParsedKey shorter = ParseKey(absl::string_view(key).substr(
      0, kSecretOffset + pick % lumo::core::kSecretLength));
  FUZZ_CHECK(shorter.result == KeyParseResult::kMalformed);
  FUZZ_CHECK(shorter.id == ok.id);
  const ParsedKey longer = ParseKey(key + "0");
  FUZZ_CHECK(longer.result == KeyParseResult::kMalformed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  CheckArbitraryInput(input);
  CheckAssembledKey(input);
  return 0;
}
