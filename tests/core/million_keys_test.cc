// Generates a million keys: every one parses, and no id or secret repeats.
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "server/core/key_format.h"

namespace lumo::core {
namespace {

TEST(MillionKeysTest, EveryKeyParsesAndNoIdOrSecretRepeats) {
  constexpr size_t kKeys = 1000000;
  constexpr size_t kSecretStart = 17;
  absl::flat_hash_set<std::string> ids;
  absl::flat_hash_set<std::string> secrets;
  ids.reserve(kKeys);
  secrets.reserve(kKeys);
  size_t failures = 0;
  for (size_t i = 0; i < kKeys; ++i) {
    absl::StatusOr<std::string> id = GenerateKeyId();
    ASSERT_TRUE(id.ok()) << id.status();
    absl::StatusOr<std::string> key = GenerateKey(*id);
    ASSERT_TRUE(key.ok()) << key.status();
    const ParsedKey parsed = ParseKey(*key);
    // One EXPECT per key would make a failure unreadable; count instead.
    if (key->size() != kKeyLength || parsed.result != KeyParseResult::kOk ||
        parsed.id != *id) {
      ++failures;
    }
    secrets.insert(key->substr(kSecretStart, kSecretLength));
    ids.insert(*std::move(id));
  }
  EXPECT_EQ(failures, 0u);
  EXPECT_EQ(ids.size(), kKeys);
  EXPECT_EQ(secrets.size(), kKeys);
}

}  // namespace
}  // namespace lumo::core
