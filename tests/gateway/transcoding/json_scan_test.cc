#include "gateway/transcoding/json_scan.h"

#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "tests/gateway/transcoding/transcoding_test.pb.h"

namespace lumo::gateway {
namespace {

TEST(ScanJsonBodyTest, AcceptsStrictJson) {
  for (const char* text :
       {"0", "-0", "-0.5e+10", "1E-2", "12.75", "\"s\"",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u0000\\uFFFF\\uD834\\uDD1E\"",
        "true", "false", "null", "[]", "{}", " [1, \"a\", {\"b\": [null]}] ",
        "{\"a\":{},\"b\":{\"a\":1}}", "\t\r\n{}\n"}) {
    absl::Status status = ScanJsonBody(text, nullptr);
    EXPECT_TRUE(status.ok()) << text << ": " << status;
  }
}

TEST(ScanJsonBodyTest, RejectsNonStrictJson) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"", "request body is not valid JSON (at byte 0)"},
      {"01", "request body is not valid JSON (at byte 1)"},
      {"1.", "request body is not valid JSON (at byte 2)"},
      {".5", "request body is not valid JSON (at byte 0)"},
      {"-", "request body is not valid JSON (at byte 1)"},
      {"+1", "request body is not valid JSON (at byte 0)"},
      {"1e", "request body is not valid JSON (at byte 2)"},
      {"[1,]", "request body is not valid JSON (at byte 3)"},
      {"[1 2]", "request body is not valid JSON (at byte 3)"},
      {"{\"a\"}", "request body is not valid JSON (at byte 4)"},
      {"{\"a\":1,}", "request body is not valid JSON (at byte 7)"},
      {"{a:1}", "request body is not valid JSON (at byte 1)"},
      {"\"\\u12\"", "request body is not valid JSON (at byte 3)"},
      {"\"\\U0041\"", "request body is not valid JSON (at byte 2)"},
      {"\"unterminated", "request body is not valid JSON (at byte 13)"},
      {"nul", "request body is not valid JSON (at byte 0)"},
      {"True", "request body is not valid JSON (at byte 0)"},
      {"1 2", "request body is not valid JSON (at byte 2)"},
      {"[]]", "request body is not valid JSON (at byte 2)"},
      {"\"\t\"", "request body is not valid JSON (at byte 1)"},
      {"\"\\uDE00\"",
       "request body has an unpaired surrogate \\u escape (at "
       "byte 7)"},
      {"\"\\uD800\\n\"",
       "request body has an unpaired surrogate \\u escape "
       "(at byte 7)"},
      {"\"\xC3\"", "request body is not valid UTF-8"},
  };
  for (const Case& c : cases) {
    absl::Status status = ScanJsonBody(c.text, nullptr);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(std::string(status.message()), c.message) << c.text;
  }
}

TEST(ScanJsonBodyTest, DepthLimit) {
  EXPECT_TRUE(ScanJsonBody("[[[]]]", nullptr, 3).ok());
  EXPECT_TRUE(ScanJsonBody("[{\"a\":[]}]", nullptr, 3).ok());
  EXPECT_EQ(std::string(ScanJsonBody("[[[[]]]]", nullptr, 3).message()),
            "request body nests deeper than 3 levels");
  EXPECT_EQ(std::string(ScanJsonBody("[{\"a\":[{}]}]", nullptr, 3).message()),
            "request body nests deeper than 3 levels");
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep.push_back('[');
  EXPECT_EQ(std::string(ScanJsonBody(deep, nullptr).message()),
            "request body nests deeper than 32 levels");
}

TEST(ScanJsonBodyTest, DuplicateKeysAnywhere) {
  EXPECT_EQ(std::string(
                ScanJsonBody("[{\"a\":1,\"b\":2,\"a\":3}]", nullptr).message()),
            "duplicate key \"a\" in the request body");
  EXPECT_EQ(
      std::string(ScanJsonBody("{\"x\":[{\"a\":1},{\"a\":1,\"a\":1}]}", nullptr)
                      .message()),
      "duplicate key \"x[1].a\" in the request body");
  EXPECT_EQ(
      std::string(
          ScanJsonBody("{\"\\u00e9\":1,\"\xC3\xA9\":2}", nullptr).message()),
      "duplicate key \"\xC3\xA9\" in the request body");
  EXPECT_TRUE(ScanJsonBody("{\"a\":{\"a\":{\"a\":1}}}", nullptr).ok());
}

TEST(ScanJsonBodyTest, ChecksFieldsAgainstTheTarget) {
  const google::protobuf::Descriptor* all =
      lumo::gateway::testing::AllTypes::descriptor();
  EXPECT_EQ(std::string(
                ScanJsonBody("{\"tenant_slug\":\"a\",\"tenantSlug\":null}", all)
                    .message()),
            "field \"tenantSlug\" is given twice (proto and JSON names) in "
            "the request body");
  EXPECT_TRUE(ScanJsonBody("{\"when\":{\"seconds\":1},\"any\":{\"@type\":"
                           "\"x\"},\"wrapped\":{\"a\":1}}",
                           all)
                  .ok());
  EXPECT_EQ(std::string(ScanJsonBody("{\"nothing\":{\"x\":1}}", all).message()),
            "unknown field \"nothing.x\" in the request body");
  EXPECT_EQ(std::string(
                ScanJsonBody("{\"counts\":{\"k\":{\"x\":1}}}", all).message()),
            "");  // map of scalars: values are not descended into
  EXPECT_EQ(std::string(ScanJsonBody("{\"inners\":{\"x\":1}}", all).message()),
            "field \"inners\" must be a JSON array");
  EXPECT_EQ(std::string(ScanJsonBody("[1]", all).message()),
            "request body must be a JSON object");
}

}  // namespace
}  // namespace lumo::gateway
