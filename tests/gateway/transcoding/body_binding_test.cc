// JSON bodies -> request messages.
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gateway/transcoding/transcoder.h"
#include "gtest/gtest.h"
#include "lumo/keys/v1/keys.pb.h"
#include "server/core/field_error.h"
#include "tests/gateway/transcoding/binding_test_util.h"
#include "tests/gateway/transcoding/transcoding_test.pb.h"

namespace lumo::gateway {
namespace {

using lumo::gateway::testing::AllTypes;

// {"extra":{"a":{"a":...{}...}}} nesting `depth` containers in all.
std::string Nested(int depth) {
  std::string body = "{\"extra\":";
  for (int i = 0; i < depth - 2; ++i) body.append("{\"a\":");
  body.append("{}");
  for (int i = 0; i < depth - 2; ++i) body.push_back('}');
  body.push_back('}');
  return body;
}

class BodyBindingTest : public BindingTest {};

TEST_F(BodyBindingTest, ParsesBodies) {
  struct Case {
    std::string body;
    const char* expected;  // ShortDebugString after tenant_slug
  };
  const Case cases[] = {
      {"", ""},
      {" \r\n\t", ""},
      {"{}", ""},
      {"{\"text\":\"hi\",\"i64\":\"5\",\"bigNumbers\":[1,\"2\"]}",
       "text: \"hi\" i64: 5 big_numbers: 1 big_numbers: 2"},
      {"{\"big_numbers\":[3]}", "big_numbers: 3"},
      {"{\"text\":\"\\ud83d\\ude00 \\u00e9\\n\"}",
       "text: \"\\360\\237\\230\\200 \\303\\251\\n\""},
      {"{\"when\":\"2026-11-27T11:22:33.5Z\",\"color\":\"RED\"}",
       "color: RED when { seconds: 1795778553 nanos: 500000000 }"},
      {"{\"inner\":{\"id\":\"x\",\"child\":{\"count\":2}}}",
       "inner { id: \"x\" child { count: 2 } }"},
      {"{\"byName\":\"a\",\"byNumber\":null}", "by_name: \"a\""},
      {"{\"counts\":{\"a\":1}}", "counts { key: \"a\" value: 1 }"},
      {"{\"extra\":{\"k\":[1,\"x\",true,null]}}",
       "extra { fields { key: \"k\" value { list_value { values { "
       "number_value: 1 } values { string_value: \"x\" } values { "
       "bool_value: true } values { null_value: NULL_VALUE } } } } }"},
      {"{\"inner\":null}", ""},
  };
  for (const Case& c : cases) {
    AllTypes request;
    absl::Status status = Bind("POST", "/t/acme/echo", "", c.body, &request);
    ASSERT_TRUE(status.ok()) << c.body << ": " << status;
    const std::string expected =
        *c.expected == '\0'
            ? "tenant_slug: \"acme\""
            : absl::StrCat("tenant_slug: \"acme\" ", c.expected);
    EXPECT_EQ(request.ShortDebugString(), expected) << c.body;
  }
}

TEST_F(BodyBindingTest, PathVariablesOverrideTheBody) {
  lumo::keys::v1::RotateApiKeyRequest request;
  absl::Status status =
      Bind("POST", "/t/acme/api/v1/admin/api-keys/k1/rotate", "",
           "{\"tenantSlug\":\"evil\",\"id\":\"other\","
           "\"gracePeriodSeconds\":60}",
           &request);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(request.ShortDebugString(),
            "tenant_slug: \"acme\" id: \"k1\" grace_period_seconds: 60");
}

TEST_F(BodyBindingTest, CreateApiKeyBody) {
  lumo::keys::v1::CreateApiKeyRequest request;
  absl::Status status = Bind(
      "POST", "/t/acme-corp/api/v1/admin/api-keys", "",
      "{\"name\":\"CI\",\"scopes\":[\"admin:read\"],"
      "\"expiresAt\":\"2027-01-02T03:04:05Z\",\"allowedCidrs\":[\"10.0.0.0/"
      "8\"],\"ratePerMinute\":1}",
      &request);
  EXPECT_EQ(std::string(status.message()),
            "unknown field \"ratePerMinute\" in the request body");
  status = Bind("POST", "/t/acme-corp/api/v1/admin/api-keys", "",
                "{\"name\":\"CI\",\"scopes\":[\"admin:read\"],"
                "\"expiresAt\":\"2027-01-02T03:04:05Z\",\"allowedCidrs\":[\"10."
                "0.0.0/8\"],\"rateLimitPerMinute\":1}",
                &request);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(request.ShortDebugString(),
            "tenant_slug: \"acme-corp\" name: \"CI\" scopes: \"admin:read\" "
            "expires_at { seconds: 1798859045 } allowed_cidrs: \"10.0.0.0/8\" "
            "rate_limit_per_minute: 1");
}

TEST_F(BodyBindingTest, RejectsBadBodies) {
  struct Case {
    std::string body;
    std::string message;
  };
  const Case cases[] = {
      {"{\"nope\":1}", "unknown field \"nope\" in the request body"},
      {"{\"flag\":\"yes\"}", "field \"flag\" must be true or false"},
      {"{\"flag\":1}", "field \"flag\" must be true or false"},
      {"{\"inner\":{\"child\":{\"nope\":1}}}",
       "unknown field \"inner.child.nope\" in the request body"},
      {"{\"inners\":[{\"id\":\"a\"},{\"zz\":1}]}",
       "unknown field \"inners[1].zz\" in the request body"},
      {"{\"Text\":\"a\"}", "unknown field \"Text\" in the request body"},
      {absl::StrCat("{\"", std::string(200, 'z'), "\":1}"),
       absl::StrCat("unknown field \"", std::string(100, 'z'),
                    "...\" in the request body")},
      {"{\"text\":\"a\",\"text\":\"b\"}",
       "duplicate key \"text\" in the request body"},
      {"{\"text\":\"a\",\"t\\u0065xt\":\"b\"}",
       "duplicate key \"text\" in the request body"},
      {"{\"counts\":{\"a\":1,\"a\":2}}",
       "duplicate key \"counts.a\" in the request body"},
      {"{\"extra\":{\"x\":{\"y\":1,\"y\":1}}}",
       "duplicate key \"extra.x.y\" in the request body"},
      {"{\"bigNumbers\":[1],\"big_numbers\":[2]}",
       "field \"bigNumbers\" is given twice (proto and JSON names) in the "
       "request body"},
      {"{\"byName\":\"a\",\"byNumber\":1}",
       "more than one field of oneof \"choice\" in the request body"},
      {Nested(33), "request body nests deeper than 32 levels"},
      {"{\"text\":\"\xff\"}", "request body is not valid UTF-8"},
      {"{\"text\":\"\xed\xa0\x80\"}", "request body is not valid UTF-8"},
      {"{\"te\xc0\xafxt\":1}", "request body is not valid UTF-8"},
      {"{\"text\":\"\\ud800\"}",
       "request body has an unpaired surrogate \\u escape (at byte 15)"},
      {"{\"text\":\"\\udc00x\"}",
       "request body has an unpaired surrogate \\u escape (at byte 15)"},
      {"{\"text\":\"\\ud800\\u0041\"}",
       "request body has an unpaired surrogate \\u escape (at byte 21)"},
      {"{\"text\":\"a\",}", "request body is not valid JSON (at byte 12)"},
      {"{'text':'a'}", "request body is not valid JSON (at byte 1)"},
      {"{\"text\":\"a\"} x", "request body is not valid JSON (at byte 13)"},
      {"{\"i32\": 01}", "request body is not valid JSON (at byte 9)"},
      {"{\"text\":\"a\nb\"}", "request body is not valid JSON (at byte 10)"},
      {"{\"text\":\"\\x\"}", "request body is not valid JSON (at byte 10)"},
      {"{\"i32\":NaN}", "request body is not valid JSON (at byte 7)"},
      {"{\"flag\":tru}", "request body is not valid JSON (at byte 8)"},
      {"\xEF\xBB\xBF{}", "request body is not valid JSON (at byte 0)"},
      {"{", "request body is not valid JSON (at byte 1)"},
      {"[]", "request body must be a JSON object"},
      {"null", "request body must be a JSON object"},
      {"\"str\"", "request body must be a JSON object"},
  };
  for (const Case& c : cases) {
    AllTypes request;
    absl::Status status = Bind("POST", "/t/acme/echo", "", c.body, &request);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_EQ(std::string(status.message()), c.message) << c.body;
    // The field travels beside the message, for the error body.
    EXPECT_EQ(core::InvalidFieldOf(status), QuotedFieldOf(c.message).value())
        << c.body;
  }
}

TEST_F(BodyBindingTest, NestingUpToTheLimitIsAccepted) {
  AllTypes request;
  absl::Status status = Bind("POST", "/t/acme/echo", "", Nested(32), &request);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_TRUE(request.has_extra());
}

TEST_F(BodyBindingTest, TypeErrorsNameTheFieldNotTheValue) {
  // Type errors come from protobuf's parser, whose messages quote the value:
  // they are rewritten to name only the field.
  const std::string long_value(5000, 'v');
  struct Case {
    std::string body;
    std::string message;
  };
  const Case cases[] = {
      {absl::StrCat("{\"i32\":\"", long_value, "\"}"),
       "invalid value for field \"i32\" in the request body"},
      {absl::StrCat("{\"color\":\"", long_value, "\"}"),
       "invalid value for field \"color\" in the request body"},
      {absl::StrCat("{\"when\":\"", long_value, "\"}"),
       "invalid value for field \"when\" in the request body"},
      {"{\"i32\":\"abc\"}",
       "invalid value for field \"i32\" in the request body"},
      {"{\"i32\":1e99}", "invalid value for field \"i32\" in the request body"},
      {"{\"i32\":1.5}", "invalid value for field \"i32\" in the request body"},
      {"{\"u32\":-1}", "invalid value for field \"u32\" in the request body"},
      {"{\"text\":5}", "invalid value for field \"text\" in the request body"},
      {"{\"raw\":\"!!\"}",
       "invalid value for field \"raw\" in the request body"},
      {"{\"inner\":5}",
       "invalid value for field \"inner\" in the request body"},
      {"{\"inners\":[{\"child\":{\"count\":\"x\"}}]}",
       "invalid value for field \"inners[0].child.count\" in the request body"},
      // Shapes the scanner checks itself.
      {"{\"tags\":\"a\"}", "field \"tags\" must be a JSON array"},
      {"{\"inners\":{}}", "field \"inners\" must be a JSON array"},
      {"{\"counts\":[1]}", "field \"counts\" must be a JSON object"},
      // Other parser messages are kept, prefixed and capped.
      {"{\"wrapped\":{\"a\":1}}",
       "invalid request body: (wrapped) a: Cannot find field."},
      {"{\"inner\":[]}",
       "invalid request body: inner: Proto field is not repeating, cannot "
       "start list."},
      {absl::StrCat("{\"wrapped\":{\"", long_value, "\":1}}"),
       absl::StrCat("invalid request body: (wrapped) ", std::string(190, 'v'))},
  };
  for (const Case& c : cases) {
    AllTypes request;
    absl::Status status = Bind("POST", "/t/acme/echo", "", c.body, &request);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(status.message()), c.message) << c.body.substr(0, 60);
    EXPECT_LE(status.message().size(), 222u);
    EXPECT_EQ(core::InvalidFieldOf(status), QuotedFieldOf(c.message).value())
        << c.body.substr(0, 60);
  }
  // protobuf 3.21 takes any string for a bool ("yes" is true): the scanner
  // refuses strings there. Enum numbers stay accepted.
  AllTypes request;
  EXPECT_EQ(
      Bind("POST", "/t/acme/echo", "", "{\"flag\":\"true\"}", &request).code(),
      absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(
      Bind("POST", "/t/acme/echo", "", "{\"flag\":true,\"color\":2}", &request)
          .ok());
  EXPECT_EQ(request.ShortDebugString(),
            "tenant_slug: \"acme\" flag: true color: GREEN");
}

TEST_F(BodyBindingTest, RoutesWithoutBodyRefuseOne) {
  lumo::keys::v1::GetApiKeyRequest request;
  for (const char* body : {"", "  \n"}) {
    EXPECT_TRUE(
        Bind("GET", "/t/acme/api/v1/admin/api-keys/k1", "", body, &request)
            .ok());
  }
  for (const char* body : {"{}", "x", "null"}) {
    absl::Status status =
        Bind("GET", "/t/acme/api/v1/admin/api-keys/k1", "", body, &request);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(status.message()),
              "this endpoint does not take a request body");
  }
}

TEST_F(BodyBindingTest, FieldBody) {
  struct Case {
    const char* body;
    const char* expected;
    const char* error;
  };
  const Case cases[] = {
      {"", "tenant_slug: \"acme\"", ""},
      {"{}", "tenant_slug: \"acme\" settings { }", ""},
      {"{\"enabled\":true,\"requireApiKey\":false}",
       "tenant_slug: \"acme\" settings { enabled: true }", ""},
      {"{\"settings\":{\"enabled\":true}}", "",
       "unknown field \"settings\" in the request body"},
      {"{\"note\":\"x\"}", "", "unknown field \"note\" in the request body"},
      {"[true]", "", "request body must be a JSON object"},
  };
  for (const Case& c : cases) {
    lumo::gateway::testing::UpdateSettingsRequest request;
    absl::Status status =
        Bind("PATCH", "/t/acme/settings", "", c.body, &request);
    if (*c.error == '\0') {
      ASSERT_TRUE(status.ok()) << c.body << ": " << status;
      EXPECT_EQ(request.ShortDebugString(), c.expected) << c.body;
    } else {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_EQ(std::string(status.message()), c.error) << c.body;
    }
  }
}

TEST_F(BodyBindingTest, RequestIsClearedFirst) {
  AllTypes request;
  request.set_text("stale");
  request.set_i32(9);
  ASSERT_TRUE(Bind("POST", "/t/acme/echo", "", "{\"i64\":1}", &request).ok());
  EXPECT_EQ(request.ShortDebugString(), "tenant_slug: \"acme\" i64: 1");
}

// PATCH without an update mask names the body's top-level members
// (AIP-134); an explicit mask is kept as sent; other verbs derive nothing.
TEST_F(BodyBindingTest, PatchWithoutAMaskNamesTheBodyMembers) {
  lumo::keys::v1::UpdateApiKeyRequest request;
  ASSERT_TRUE(Bind("PATCH", "/t/acme/api/v1/admin/api-keys/abcdefghijkl", "",
                   R"({"metadata":{"a":"b"},"name":"n","allowedCidrs":[],)"
                   R"("expiresAt":null})",
                   &request)
                  .ok());
  EXPECT_EQ(request.update_mask().ShortDebugString(),
            "paths: \"name\" paths: \"allowed_cidrs\" paths: "
            "\"expires_at\" paths: \"metadata\"");
  EXPECT_EQ(request.id(), "abcdefghijkl");

  ASSERT_TRUE(Bind("PATCH", "/t/acme/api/v1/admin/api-keys/abcdefghijkl", "",
                   R"({"name":"n","scopes":["admin:read"],)"
                   R"("updateMask":"scopes"})",
                   &request)
                  .ok());
  EXPECT_EQ(request.update_mask().ShortDebugString(), "paths: \"scopes\"");

  ASSERT_TRUE(Bind("PATCH", "/t/acme/api/v1/admin/api-keys/abcdefghijkl", "",
                   "{}", &request)
                  .ok());
  EXPECT_FALSE(request.has_update_mask());
}

}  // namespace
}  // namespace lumo::gateway
