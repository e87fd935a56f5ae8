#include "server/core/string_map_json.h"

#include "gtest/gtest.h"

namespace lumo::core {
namespace {

TEST(StringMapJsonTest, EmptyMapIsEmptyText) {
  EXPECT_EQ(EncodeStringMapJson({}), "");
  absl::StatusOr<StringMap> decoded = DecodeStringMapJson("");
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(decoded->empty());
}

TEST(StringMapJsonTest, RoundTripsQuotesBackslashesControlsAndUtf8) {
  const StringMap map = {{"team", "payments"},
                         {"quote\"d", "back\\slash"},
                         {"tab", "a\tb\x01"},
                         {"utf8", "caf\xc3\xa9 \xf0\x9f\x94\x91"},
                         {"xss", "<script>alert(1)</script>"}};
  const std::string text = EncodeStringMapJson(map);
  EXPECT_EQ(text.find('\t'), std::string::npos);
  absl::StatusOr<StringMap> decoded = DecodeStringMapJson(text);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, map);
}

TEST(StringMapJsonTest, DecodesEscapesAndSurrogatePairs) {
  absl::StatusOr<StringMap> decoded =
      DecodeStringMapJson(R"( { "a" : "\u00e9\ud83d\udd11\/\n" , "b":"" } )");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->at("a"), "\xc3\xa9\xf0\x9f\x94\x91/\n");
  EXPECT_EQ(decoded->at("b"), "");
}

TEST(StringMapJsonTest, RefusesWhatIsNotAnObjectOfStrings) {
  for (const char* text :
       {"[]", "{", "{\"a\":1}", "{\"a\":null}", "{\"a\":{}}", "{\"a\":\"b\"} x",
        "{\"a\":\"b\",}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\q\"}",
        "{\"a\":\"b\",\"a\":\"c\"}", "{\"a\":\"raw\ncontrol\"}"}) {
    EXPECT_FALSE(DecodeStringMapJson(text).ok()) << text;
  }
}

}  // namespace
}  // namespace lumo::core
