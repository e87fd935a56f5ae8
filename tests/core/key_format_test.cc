#include "server/core/key_format.h"

#include <cstdlib>
#include <new>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

// Counts heap allocations on this thread while enabled, to check that
// ParseKey does not allocate.
namespace {
thread_local bool g_count_allocations = false;
thread_local size_t g_allocations = 0;
}  // namespace

void* operator new(size_t size) {
  if (g_count_allocations) ++g_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace lumo::core {
namespace {

constexpr absl::string_view kAlphabet =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr size_t kIdStart = 4;
constexpr size_t kSecretStart = 17;
constexpr size_t kChecksumStart = 60;

// A key computed independently (Python zlib.crc32 + base62) to pin the wire
// format: id "0123456789Ab", secret "a..zA..Q".
constexpr absl::string_view kGoldenKey =
    "lmk_0123456789Ab_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ3VQxLr";

std::string NewKey() {
  absl::StatusOr<std::string> id = GenerateKeyId();
  EXPECT_TRUE(id.ok()) << id.status();
  absl::StatusOr<std::string> key = GenerateKey(*id);
  EXPECT_TRUE(key.ok()) << key.status();
  return *key;
}

TEST(KeyFormatTest, KeyLengthIsSixtySix) { EXPECT_EQ(kKeyLength, 66u); }

TEST(KeyFormatTest, Crc32MatchesIeeeCheckValue) {
  EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(Crc32(""), 0u);
  EXPECT_EQ(Crc32("a"), 0xE8B7BE43u);
}

TEST(KeyFormatTest, Base62EncodeIsZeroPaddedMostSignificantFirst) {
  EXPECT_EQ(Base62Encode(0, 6), "000000");
  EXPECT_EQ(Base62Encode(61, 1), "z");
  EXPECT_EQ(Base62Encode(62, 2), "10");
  EXPECT_EQ(Base62Encode(10, 3), "00A");
  EXPECT_EQ(Base62Encode(36, 2), "0a");
  EXPECT_EQ(Base62Encode(0xCBF43926u, 6), "3jZRME");
  EXPECT_EQ(Base62Encode(0xFFFFFFFFu, 6), "4gfFC3");
  EXPECT_EQ(Base62Encode(0, 0), "");
}

TEST(KeyFormatTest, Base62EncodeDropsHighDigitsThatDoNotFit) {
  EXPECT_EQ(Base62Encode(62, 1), "0");
  EXPECT_EQ(Base62Encode(62 * 62 + 5, 2), "05");
}

TEST(KeyFormatTest, IsBase62AcceptsOnlyTheAlphabet) {
  EXPECT_TRUE(IsBase62(kAlphabet));
  EXPECT_TRUE(IsBase62(""));
  for (absl::string_view bad : {"-", "_", " ", "+", "/", "=", "\xc3\xa9"}) {
    EXPECT_FALSE(IsBase62(bad)) << bad;
  }
  EXPECT_FALSE(IsBase62(absl::string_view("a\0b", 3)));
}

TEST(KeyFormatTest, ParseAcceptsGoldenKey) {
  const ParsedKey parsed = ParseKey(kGoldenKey);
  EXPECT_EQ(parsed.result, KeyParseResult::kOk);
  EXPECT_EQ(parsed.id, "0123456789Ab");
}

TEST(KeyFormatTest, GenerateKeyProducesParsableKeyForId) {
  const std::string key = *GenerateKey("0123456789Ab");
  EXPECT_EQ(key.size(), kKeyLength);
  EXPECT_EQ(key.substr(0, kSecretStart), "lmk_0123456789Ab_");
  EXPECT_TRUE(IsBase62(key.substr(kSecretStart)));
  EXPECT_EQ(key.substr(kChecksumStart),
            Base62Encode(Crc32(key.substr(0, kChecksumStart)), 6));
  const ParsedKey parsed = ParseKey(key);
  EXPECT_EQ(parsed.result, KeyParseResult::kOk);
  EXPECT_EQ(parsed.id, "0123456789Ab");
  // The id view points into the parsed string.
  EXPECT_EQ(parsed.id.data(), key.data() + kIdStart);
}

TEST(KeyFormatTest, GenerateKeyUsesFreshSecretEachTime) {
  const std::string a = *GenerateKey("0123456789Ab");
  const std::string b = *GenerateKey("0123456789Ab");
  EXPECT_NE(a.substr(kSecretStart), b.substr(kSecretStart));
}

TEST(KeyFormatTest, GenerateKeyRejectsInvalidId) {
  for (absl::string_view bad :
       {"", "0123456789A", "0123456789Abc", "0123456789A_", "0123456789A-"}) {
    absl::StatusOr<std::string> key = GenerateKey(bad);
    EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(KeyFormatTest, GenerateKeyIdIsTwelveBase62Characters) {
  absl::StatusOr<std::string> a = GenerateKeyId();
  absl::StatusOr<std::string> b = GenerateKeyId();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(IsValidKeyId(*a));
  EXPECT_EQ(a->size(), 12u);
  EXPECT_NE(*a, *b);
}

TEST(KeyFormatTest, IsValidKeyIdRequiresTwelveBase62Characters) {
  EXPECT_TRUE(IsValidKeyId("0123456789Ab"));
  EXPECT_FALSE(IsValidKeyId("0123456789A"));
  EXPECT_FALSE(IsValidKeyId("0123456789Abc"));
  EXPECT_FALSE(IsValidKeyId("0123456789A_"));
  EXPECT_FALSE(IsValidKeyId(""));
}

TEST(KeyFormatTest, DisplayPrefixIsPrefixAndIdOnly) {
  EXPECT_EQ(DisplayPrefix("0123456789Ab"), "lmk_0123456789Ab");
}

TEST(KeyFormatTest, ParseRejectsEverySingleCharacterSubstitutionInSecret) {
  const std::string key = NewKey();
  const absl::string_view id = ParseKey(key).id;
  int checked = 0;
  for (size_t pos = kSecretStart; pos < kChecksumStart; ++pos) {
    for (char c : kAlphabet) {
      if (c == key[pos]) continue;
      std::string typo = key;
      typo[pos] = c;
      const ParsedKey parsed = ParseKey(typo);
      EXPECT_EQ(parsed.result, KeyParseResult::kBadChecksum)
          << "position " << pos << " -> " << c;
      EXPECT_EQ(parsed.id, id);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 43 * 61);
}

TEST(KeyFormatTest, ParseRejectsEverySingleCharacterSubstitutionInIdAndSum) {
  const std::string key = NewKey();
  for (size_t pos = kIdStart; pos < kKeyLength; ++pos) {
    if (pos >= kSecretStart - 1 && pos < kChecksumStart) continue;
    for (char c : kAlphabet) {
      if (c == key[pos]) continue;
      std::string typo = key;
      typo[pos] = c;
      const ParsedKey parsed = ParseKey(typo);
      EXPECT_EQ(parsed.result, KeyParseResult::kBadChecksum)
          << "position " << pos << " -> " << c;
      EXPECT_EQ(parsed.id, absl::string_view(typo).substr(kIdStart, 12));
    }
  }
}

TEST(KeyFormatTest, ParseRejectsSingleCharacterTypo) {
  std::string typo(kGoldenKey);
  typo[30] = 'x';  // was 'n'
  const ParsedKey parsed = ParseKey(typo);
  EXPECT_EQ(parsed.result, KeyParseResult::kBadChecksum);
  EXPECT_EQ(parsed.id, "0123456789Ab");
}

TEST(KeyFormatTest, ParseRejectsAdjacentTransposition) {
  const std::string key = NewKey();
  for (size_t pos = kSecretStart; pos + 1 < kKeyLength; ++pos) {
    if (key[pos] == key[pos + 1]) continue;
    std::string swapped = key;
    std::swap(swapped[pos], swapped[pos + 1]);
    EXPECT_EQ(ParseKey(swapped).result, KeyParseResult::kBadChecksum)
        << "position " << pos;
  }
}

TEST(KeyFormatTest, ParseRejectsNonBase62CharacterInSecretAsMalformed) {
  const std::string key = NewKey();
  for (size_t pos = kSecretStart; pos < kKeyLength; ++pos) {
    for (char c : {'-', '_', ' ', '+', '/', '=', '\0', '\xc3'}) {
      std::string bad = key;
      bad[pos] = c;
      const ParsedKey parsed = ParseKey(bad);
      EXPECT_EQ(parsed.result, KeyParseResult::kMalformed)
          << "position " << pos;
      // The id part is intact, so the failure is attributable.
      EXPECT_EQ(parsed.id, absl::string_view(key).substr(kIdStart, 12));
    }
  }
}

TEST(KeyFormatTest, ParseRejectsNonBase62CharacterInIdWithoutId) {
  std::string bad(kGoldenKey);
  bad[8] = '-';
  const ParsedKey parsed = ParseKey(bad);
  EXPECT_EQ(parsed.result, KeyParseResult::kMalformed);
  EXPECT_TRUE(parsed.id.empty());
}

TEST(KeyFormatTest, ParseRejectsEveryTruncationAsMalformed) {
  for (size_t len = 0; len < kKeyLength; ++len) {
    const ParsedKey parsed = ParseKey(kGoldenKey.substr(0, len));
    EXPECT_EQ(parsed.result, KeyParseResult::kMalformed) << "length " << len;
    // The id is attributable once the separator after it is present.
    EXPECT_EQ(parsed.id, len >= kSecretStart ? "0123456789Ab" : "")
        << "length " << len;
  }
}

TEST(KeyFormatTest, ParseRejectsExtraCharactersAsMalformed) {
  EXPECT_EQ(ParseKey(absl::StrCat(kGoldenKey, "0")).result,
            KeyParseResult::kMalformed);
  EXPECT_EQ(ParseKey(absl::StrCat(kGoldenKey, "\n")).result,
            KeyParseResult::kMalformed);
  EXPECT_EQ(ParseKey(absl::StrCat(" ", kGoldenKey)).result,
            KeyParseResult::kMalformed);
}

TEST(KeyFormatTest, ParseRejectsWrongPrefix) {
  for (absl::string_view prefix : {"LMK_", "lmK_", "lmk-", "lmx_", "sk__"}) {
    std::string bad(kGoldenKey);
    bad.replace(0, 4, prefix.data(), prefix.size());
    const ParsedKey parsed = ParseKey(bad);
    EXPECT_EQ(parsed.result, KeyParseResult::kMalformed) << prefix;
    EXPECT_TRUE(parsed.id.empty()) << prefix;
  }
}

TEST(KeyFormatTest, ParseRejectsWrongSeparator) {
  for (char separator : {'-', '.', ' ', 'a', '0'}) {
    std::string bad(kGoldenKey);
    bad[16] = separator;
    const ParsedKey parsed = ParseKey(bad);
    EXPECT_EQ(parsed.result, KeyParseResult::kMalformed) << separator;
    EXPECT_TRUE(parsed.id.empty()) << separator;
  }
}

TEST(KeyFormatTest, ParseRejectsEmptyAndGarbage) {
  EXPECT_EQ(ParseKey("").result, KeyParseResult::kMalformed);
  EXPECT_EQ(ParseKey("lmk_").result, KeyParseResult::kMalformed);
  EXPECT_EQ(ParseKey(std::string(kKeyLength, 'a')).result,
            KeyParseResult::kMalformed);
  EXPECT_TRUE(ParseKey("").id.empty());
}

TEST(KeyFormatTest, ParseKeyDoesNotAllocate) {
  const std::string good(kGoldenKey);
  std::string typo = good;
  typo[40] = typo[40] == 'a' ? 'b' : 'a';
  const std::string truncated = good.substr(0, 30);
  g_allocations = 0;
  g_count_allocations = true;
  const ParsedKey a = ParseKey(good);
  const ParsedKey b = ParseKey(typo);
  const ParsedKey c = ParseKey(truncated);
  g_count_allocations = false;
  EXPECT_EQ(g_allocations, 0u);
  EXPECT_EQ(a.result, KeyParseResult::kOk);
  EXPECT_EQ(b.result, KeyParseResult::kBadChecksum);
  EXPECT_EQ(c.result, KeyParseResult::kMalformed);
}

}  // namespace
}  // namespace lumo::core
