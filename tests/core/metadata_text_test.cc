#include "server/core/metadata_text.h"

#include <random>
#include <string>

#include "grpc/grpc.h"
#include "grpc/slice.h"
#include "gtest/gtest.h"

namespace lumo::core {
namespace {

// gRPC's own verdicts (the rule its C++ library asserts on).
bool GrpcAcceptsValue(absl::string_view value) {
  grpc_slice slice = grpc_slice_from_copied_buffer(value.data(), value.size());
  const bool legal = grpc_header_nonbin_value_is_legal(slice) != 0;
  grpc_slice_unref(slice);
  return legal;
}

bool GrpcAcceptsKey(absl::string_view key) {
  grpc_slice slice = grpc_slice_from_copied_buffer(key.data(), key.size());
  const bool legal = grpc_header_key_is_legal(slice) != 0;
  grpc_slice_unref(slice);
  return legal;
}

TEST(MetadataTextTest, EveryByteIsJudgedAsGrpcJudgesIt) {
  int legal_values = 0;
  int legal_keys = 0;
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    EXPECT_EQ(IsLegalMetadataValue(one), GrpcAcceptsValue(one)) << b;
    EXPECT_EQ(IsLegalMetadataKey(one), GrpcAcceptsKey(one)) << b;
    // Inside a longer value or key too.
    const std::string inside = "ab" + one + "cd";
    EXPECT_EQ(IsLegalMetadataValue(inside), GrpcAcceptsValue(inside)) << b;
    EXPECT_EQ(IsLegalMetadataKey(inside), GrpcAcceptsKey(inside)) << b;
    legal_values += IsLegalMetadataValue(one);
    legal_keys += IsLegalMetadataKey(one);
  }
  // 0x20..0x7E; and [0-9a-z_.-].
  EXPECT_EQ(legal_values, 95);
  EXPECT_EQ(legal_keys, 10 + 26 + 3);
}

TEST(MetadataTextTest, TheIssuesExamplesAreRefused) {
  EXPECT_FALSE(IsLegalMetadataValue("caf\xc3\xa9"));
  EXPECT_FALSE(IsLegalMetadataValue("Bearer\tlmk_x"));
  EXPECT_FALSE(IsLegalMetadataValue("a\x7f"));
  EXPECT_TRUE(IsLegalMetadataValue(""));
  EXPECT_TRUE(IsLegalMetadataValue("Mozilla/5.0 (X11; Linux x86_64) ~!%"));
  EXPECT_FALSE(IsLegalMetadataKey(""));
  EXPECT_FALSE(IsLegalMetadataKey(":path"));
  EXPECT_FALSE(IsLegalMetadataKey("X-Api-Key"));
  EXPECT_TRUE(IsLegalMetadataKey("x-lumo-user-agent"));
}

TEST(MetadataTextTest, RandomStringsAgreeWithGrpc) {
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> length(0, 24);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> printable(0x20, 0x7e);
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    const int n = length(rng);
    // Mostly printable, so that both verdicts occur often.
    for (int j = 0; j < n; ++j) {
      s.push_back(static_cast<char>(i % 3 == 0 ? byte(rng) : printable(rng)));
    }
    ASSERT_EQ(IsLegalMetadataValue(s), GrpcAcceptsValue(s)) << s;
    ASSERT_EQ(IsLegalMetadataKey(s), GrpcAcceptsKey(s)) << s;
  }
}

TEST(MetadataTextTest, EscapingKeepsLegalTextAndEscapesTheRest) {
  EXPECT_EQ(EscapeMetadataValue("curl/8.1 100%"), "curl/8.1 100%");
  EXPECT_EQ(EscapeMetadataValue("caf\xc3\xa9-app/1.0"), "caf%C3%A9-app/1.0");
  EXPECT_EQ(EscapeMetadataValue("a\tb\x7f\x01"), "a%09b%7F%01");
  EXPECT_EQ(EscapeMetadataValue(std::string("\0", 1)), "%00");
  EXPECT_EQ(EscapeMetadataValue(""), "");
}

TEST(MetadataTextTest, EscapingRespectsTheLimitWithoutCuttingAnEscape) {
  EXPECT_EQ(EscapeMetadataValue("abcdef", 4), "abcd");
  EXPECT_EQ(EscapeMetadataValue("ab\xc3\xa9", 4), "ab");
  EXPECT_EQ(EscapeMetadataValue("ab\xc3\xa9", 5), "ab%C3");
  EXPECT_EQ(EscapeMetadataValue("ab\xc3\xa9", 8), "ab%C3%A9");
  EXPECT_EQ(EscapeMetadataValue("abc", 0), "");
}

TEST(MetadataTextTest, EscapedOutputIsAlwaysLegal) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 5000; ++i) {
    std::string s;
    for (int j = 0; j < i % 40; ++j) s.push_back(static_cast<char>(byte(rng)));
    const std::string escaped = EscapeMetadataValue(s, 30);
    ASSERT_TRUE(GrpcAcceptsValue(escaped)) << escaped;
    ASSERT_LE(escaped.size(), 30u);
  }
}

}  // namespace
}  // namespace lumo::core
