#include "server/core/validation.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace lumo::core {
namespace {

TEST(Utf8Test, AcceptsWellFormedSequences) {
  for (absl::string_view good :
       {"", "plain ascii", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
        "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf", "\xee\x80\x80", "\xc2\x80",
        "\xef\xbf\xbf"}) {
    EXPECT_TRUE(IsValidUtf8(good)) << absl::CHexEscape(good);
  }
  EXPECT_TRUE(IsValidUtf8(absl::string_view("a\0b", 3)));
}

TEST(Utf8Test, RejectsOverlongForms) {
  for (absl::string_view bad :
       {"\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xe0\x9f\xbf",
        "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf"}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << absl::CHexEscape(bad);
  }
}

TEST(Utf8Test, RejectsSurrogates) {
  for (absl::string_view bad :
       {"\xed\xa0\x80", "\xed\xbf\xbf", "\xed\xa0\xbd\xed\xb8\x80"}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << absl::CHexEscape(bad);
  }
}

TEST(Utf8Test, RejectsCodePointsAboveMax) {
  for (absl::string_view bad : {"\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
                                "\xf8\x88\x80\x80\x80", "\xff", "\xfe"}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << absl::CHexEscape(bad);
  }
}

TEST(Utf8Test, RejectsStrayAndMissingContinuationBytes) {
  for (absl::string_view bad :
       {"\x80", "a\xbf", "\xe2\x82", "\xf0\x9f\x98", "\xc3", "\xc3\x28",
        "\xe2\x28\xa1", "caf\xc3"}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << absl::CHexEscape(bad);
  }
}

TEST(Utf8Test, LengthCountsCodePoints) {
  EXPECT_EQ(Utf8Length(""), 0u);
  EXPECT_EQ(Utf8Length("abc"), 3u);
  EXPECT_EQ(Utf8Length("caf\xc3\xa9"), 4u);
  EXPECT_EQ(Utf8Length("\xe2\x82\xac\xf0\x9f\x98\x80"), 2u);
}

TEST(ValidateNameTest, AcceptsOrdinaryNames) {
  for (absl::string_view good :
       {"CI deploy key", "x", " padded ", "caf\xc3\xa9",
        "\xe6\x97\xa5\xe6\x9c\xac", "emoji \xf0\x9f\x94\x91"}) {
    EXPECT_TRUE(ValidateName("name", good, 1, 100).ok()) << good;
  }
}

TEST(ValidateNameTest, RejectsEmptyName) {
  absl::Status status = ValidateName("name", "", 1, 100);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "name is required");
}

TEST(ValidateNameTest, EmptyNameIsFineWhenOptional) {
  EXPECT_TRUE(ValidateName("description", "", 0, 100).ok());
}

TEST(ValidateNameTest, RejectsTooShortName) {
  absl::Status status = ValidateName("name", "ab", 3, 100);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "name must be at least 3 characters");
}

TEST(ValidateNameTest, CountsCodePointsNotBytes) {
  std::string hundred;
  for (int i = 0; i < 100; ++i) hundred += "\xc3\xa9";
  EXPECT_TRUE(ValidateName("name", hundred, 1, 100).ok());
  absl::Status status = ValidateName("name", hundred + "x", 1, 100);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "name must be at most 100 characters");
}

TEST(ValidateNameTest, RejectsControlCharacters) {
  const std::vector<std::string> bad_names = {
      "tab\there",  "new\nline",  std::string("nul\0x", 5),
      "del\x7f",    "c1\xc2\x85", "c1\xc2\x9f",
      "esc\x1b[31m"};
  for (const std::string& bad : bad_names) {
    absl::Status status = ValidateName("name", bad, 1, 100);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << absl::CHexEscape(bad);
    EXPECT_EQ(status.message(), "name must not contain control characters");
  }
}

TEST(ValidateNameTest, RejectsOnlyWhiteSpace) {
  for (absl::string_view bad : {" ", "   ", "\xc2\xa0", "\xe3\x80\x80",
                                "\xe2\x80\x8b", " \xe2\x80\x83 "}) {
    absl::Status status = ValidateName("name", bad, 1, 100);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << absl::CHexEscape(bad);
    EXPECT_EQ(status.message(), "name must not be only white space");
  }
}

TEST(ValidateNameTest, RejectsInvalidUtf8WithoutEchoingValue) {
  absl::Status status = ValidateName("display name", "secret\xff", 1, 100);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "display name must be valid UTF-8");
}

TEST(SlugTest, AcceptsLowerCaseDigitsAndInnerHyphens) {
  const std::vector<std::string> good_slugs = {
      "a", "acme", "acme-corp", "a-b-1",
      "0", "42",   "a--b",      std::string(63, 'a')};
  for (const std::string& good : good_slugs) {
    EXPECT_TRUE(IsValidSlug(good)) << good;
  }
}

TEST(SlugTest, RejectsEverythingElse) {
  const std::vector<std::string> bad_slugs = {
      "",      "-acme", "acme-", "-",           "Acme",
      "ac_me", "ac me", "ac.me", "caf\xc3\xa9", std::string(64, 'a')};
  for (const std::string& bad : bad_slugs) {
    EXPECT_FALSE(IsValidSlug(bad)) << bad;
  }
}

}  // namespace
}  // namespace lumo::core
