// Query strings and path variables -> request fields.
#include <memory>
#include <string>
#include <utility>
#include <vector>

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

TEST(ParseQueryStringTest, DecodesPairs) {
  struct Case {
    const char* raw;
    QueryParams params;
  };
  const Case cases[] = {
      {"", {}},
      {"a=1&b=2", {{"a", "1"}, {"b", "2"}}},
      {"a", {{"a", ""}}},
      {"a=", {{"a", ""}}},
      {"a=1&&b=2&", {{"a", "1"}, {"b", "2"}}},
      {"a=b=c", {{"a", "b=c"}}},
      {"%61=%62%2F", {{"a", "b/"}}},
      {"a+b=c+d%20e", {{"a b", "c d e"}}},
      {"a=%2B1", {{"a", "+1"}}},
      {"a=1&a=2", {{"a", "1"}, {"a", "2"}}},
      {"a=%00", {{"a", std::string("\0", 1)}}},
      {"a=%252e", {{"a", "%2e"}}},
  };
  for (const Case& c : cases) {
    absl::StatusOr<QueryParams> params = ParseQueryString(c.raw);
    ASSERT_TRUE(params.ok()) << c.raw << ": " << params.status();
    EXPECT_EQ(*params, c.params) << c.raw;
  }
}

TEST(ParseQueryStringTest, RejectsBadInput) {
  struct Case {
    std::string raw;
    const char* message;
  };
  std::string too_many;
  for (int i = 0; i < 101; ++i) absl::StrAppend(&too_many, "p", i, "=1&");
  const Case cases[] = {
      {"a=%", "invalid percent-encoding in the query string"},
      {"a=%4", "invalid percent-encoding in the query string"},
      {"a=%g1", "invalid percent-encoding in the query string"},
      {"%zz=1", "invalid percent-encoding in the query string"},
      {"=x", "empty query parameter name"},
      {"a=1&=", "empty query parameter name"},
      {too_many, "too many query parameters (at most 100)"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<QueryParams> params = ParseQueryString(c.raw);
    ASSERT_FALSE(params.ok()) << c.raw;
    EXPECT_EQ(params.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(params.status().message()), c.message);
  }
  std::string hundred;
  for (int i = 0; i < 100; ++i) absl::StrAppend(&hundred, "p", i, "=1&");
  absl::StatusOr<QueryParams> params = ParseQueryString(hundred);
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_EQ(params->size(), 100u);
}

class QueryBindingTest : public BindingTest {};

TEST_F(QueryBindingTest, BindsEveryScalarType) {
  struct Case {
    const char* query;
    const char* expected;  // ShortDebugString after tenant_slug
  };
  const Case cases[] = {
      {"text=hello+w%C3%B6rld", "text: \"hello w\\303\\266rld\""},
      {"text=", ""},
      {"i32=-2147483648", "i32: -2147483648"},
      {"i32=2147483647", "i32: 2147483647"},
      {"i32=007", "i32: 7"},
      {"i64=-9223372036854775808", "i64: -9223372036854775808"},
      {"i64=9223372036854775807", "i64: 9223372036854775807"},
      {"u32=4294967295", "u32: 4294967295"},
      {"u64=18446744073709551615", "u64: 18446744073709551615"},
      {"si32=-5", "si32: -5"},
      {"si64=-6", "si64: -6"},
      {"f32=7", "f32: 7"},
      {"f64=8", "f64: 8"},
      {"sf32=-9", "sf32: -9"},
      {"sf64=-10", "sf64: -10"},
      {"flag=true", "flag: true"},
      {"flag=1", "flag: true"},
      {"flag=false", ""},
      {"flag=0", ""},
      {"dbl=1.5", "dbl: 1.5"},
      {"dbl=-2e3", "dbl: -2000"},
      {"dbl=0.25E%2B1", "dbl: 2.5"},
      {"flt=3.25", "flt: 3.25"},
      {"color=GREEN", "color: GREEN"},
      {"color=1", "color: RED"},
      {"color=COLOR_UNSPECIFIED", ""},
      {"when=2026-11-27T11:22:33.123456Z",
       "when { seconds: 1795778553 nanos: 123456000 }"},
      {"when=2026-11-27T12:22:33%2B01:00", "when { seconds: 1795778553 }"},
      {"when=2026-11-27t11:22:33z", "when { seconds: 1795778553 }"},
      {"when=1970-01-01T00:00:00Z", "when { }"},
      {"wrapped=-5", "wrapped { value: -5 }"},
      {"maybe=0", "maybe: 0"},
      {"byNumber=3", "by_number: 3"},
      {"by_name=x", "by_name: \"x\""},
  };
  for (const Case& c : cases) {
    AllTypes request;
    absl::Status status = Bind("GET", "/t/acme/echo", c.query, "", &request);
    ASSERT_TRUE(status.ok()) << c.query << ": " << status;
    const std::string expected =
        *c.expected == '\0'
            ? "tenant_slug: \"acme\""
            : absl::StrCat("tenant_slug: \"acme\" ", c.expected);
    EXPECT_EQ(request.ShortDebugString(), expected) << c.query;
  }
}

TEST_F(QueryBindingTest, BindsRepeatedAndNestedFields) {
  struct Case {
    const char* query;
    const char* expected;
  };
  const Case cases[] = {
      {"tags=a&tags=b", "tags: \"a\" tags: \"b\""},
      {"tags=a,b&tags=c", "tags: \"a\" tags: \"b\" tags: \"c\""},
      {"tags=a%2Cb", "tags: \"a\" tags: \"b\""},
      {"numbers=1,-2,3", "numbers: 1 numbers: -2 numbers: 3"},
      {"colors=RED,2", "colors: RED colors: GREEN"},
      {"bigNumbers=9007199254740993", "big_numbers: 9007199254740993"},
      {"times=1970-01-01T00:00:01Z,1970-01-01T00:00:02.5Z",
       "times { seconds: 1 } times { seconds: 2 nanos: 500000000 }"},
      {"inner.id=x&inner.count=3", "inner { id: \"x\" count: 3 }"},
      {"inner.child.id=y", "inner { child { id: \"y\" } }"},
      {"inner.child.count=1&inner.id=z",
       "inner { id: \"z\" child { count: 1 } }"},
  };
  for (const Case& c : cases) {
    AllTypes request;
    absl::Status status = Bind("GET", "/t/acme/echo", c.query, "", &request);
    ASSERT_TRUE(status.ok()) << c.query << ": " << status;
    EXPECT_EQ(request.ShortDebugString(),
              absl::StrCat("tenant_slug: \"acme\" ", c.expected))
        << c.query;
  }
}

TEST_F(QueryBindingTest, RejectsBadParameters) {
  struct Case {
    std::string query;
    std::string message;
  };
  const Case cases[] = {
      {"nope=1", "unknown query parameter \"nope\""},
      {"Text=1", "unknown query parameter \"Text\""},
      {"inner.nope=1", "unknown query parameter \"inner.nope\""},
      {"text.x=1", "unknown query parameter \"text.x\""},
      {"inners.id=1", "unknown query parameter \"inners.id\""},
      {"a%0Ab=1", "unknown query parameter \"a\\u000ab\""},
      {"i32=abc", "query parameter \"i32\": not a valid integer"},
      {"i32=", "query parameter \"i32\": not a valid integer"},
      {"i32=%2B5", "query parameter \"i32\": not a valid integer"},
      {"i32=+5", "query parameter \"i32\": not a valid integer"},
      {"i32=1.0", "query parameter \"i32\": not a valid integer"},
      {"i32=0x10", "query parameter \"i32\": not a valid integer"},
      {"i32=-", "query parameter \"i32\": not a valid integer"},
      {"i32=2147483648",
       "query parameter \"i32\": out of range (-2147483648 to 2147483647)"},
      {"i32=-2147483649",
       "query parameter \"i32\": out of range (-2147483648 to 2147483647)"},
      {"i64=9223372036854775808",
       "query parameter \"i64\": out of range (-9223372036854775808 to "
       "9223372036854775807)"},
      {"i64=-99999999999999999999999",
       "query parameter \"i64\": out of range (-9223372036854775808 to "
       "9223372036854775807)"},
      {"u32=4294967296",
       "query parameter \"u32\": out of range (0 to 4294967295)"},
      {"u32=-1", "query parameter \"u32\": not a valid unsigned integer"},
      {"u64=18446744073709551616",
       "query parameter \"u64\": out of range (0 to 18446744073709551615)"},
      {"flag=TRUE",
       "query parameter \"flag\": not a boolean (true, false, 1 or 0)"},
      {"flag=yes",
       "query parameter \"flag\": not a boolean (true, false, 1 or 0)"},
      {"dbl=NaN", "query parameter \"dbl\": not a valid number"},
      {"dbl=.5", "query parameter \"dbl\": not a valid number"},
      {"dbl=1.", "query parameter \"dbl\": not a valid number"},
      {"dbl=1e400", "query parameter \"dbl\": number out of range"},
      {"flt=3.5e38", "query parameter \"flt\": number out of range"},
      {"color=red",
       "query parameter \"color\": not one of COLOR_UNSPECIFIED, RED, GREEN"},
      {"color=7",
       "query parameter \"color\": not one of COLOR_UNSPECIFIED, RED, GREEN"},
      {"when=2026-02-30T00:00:00Z",
       "query parameter \"when\": not an RFC 3339 timestamp (e.g. "
       "2026-01-02T03:04:05Z; encode '+' as %2B)"},
      {"when=2026-11-27T11:22:33+01:00",
       "query parameter \"when\": not an RFC 3339 timestamp (e.g. "
       "2026-01-02T03:04:05Z; encode '+' as %2B)"},
      {"when=10000-01-01T00:00:00Z",
       "query parameter \"when\": not an RFC 3339 timestamp (e.g. "
       "2026-01-02T03:04:05Z; encode '+' as %2B)"},
      {"when=0001-01-01T00:00:00%2B00:01",
       "query parameter \"when\": timestamp out of range"},
      {"text=a%00b", "query parameter \"text\": contains a NUL character"},
      {"text=%FF", "query parameter \"text\": not valid UTF-8"},
      {absl::StrCat("text=", std::string(4097, 'x')),
       "query parameter \"text\": longer than 4096 bytes"},
      {"text=a&text=b", "query parameter \"text\": given more than once"},
      {"i32=1&i32=1", "query parameter \"i32\": given more than once"},
      {"by_name=a&byNumber=1",
       "query parameter \"byNumber\": another field of oneof \"choice\" is "
       "already set"},
      {"when=1970-01-01T00:00:00Z&when.seconds=5",
       "query parameter \"when.seconds\": overlaps another query parameter"},
      {"tags=a,,b", "query parameter \"tags\": empty list item"},
      {"tags=", "query parameter \"tags\": empty list item"},
      {"numbers=1,x", "query parameter \"numbers\": not a valid integer"},
      {"raw=abc",
       "query parameter \"raw\": this field cannot be set from the query "
       "string"},
      {"counts=1",
       "query parameter \"counts\": this field cannot be set from the query "
       "string"},
      {"inner=1",
       "query parameter \"inner\": this field cannot be set from the query "
       "string"},
      {"extra=1",
       "query parameter \"extra\": this field cannot be set from the query "
       "string"},
      {"tenant_slug=other",
       "query parameter \"tenant_slug\": not allowed: the field is taken "
       "from the path"},
      {"tenantSlug=other",
       "query parameter \"tenantSlug\": not allowed: the field is taken from "
       "the path"},
      {absl::StrCat(std::string(100, 'k'), "=1"),
       absl::StrCat("unknown query parameter \"", std::string(64, 'k'),
                    "...\"")},
  };
  for (const Case& c : cases) {
    AllTypes request;
    absl::Status status = Bind("GET", "/t/acme/echo", c.query, "", &request);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.query;
    EXPECT_EQ(std::string(status.message()), c.message) << c.query;
    // The parameter travels beside the message, for the error body.
    if (std::optional<std::string> field = QuotedFieldOf(c.message)) {
      EXPECT_EQ(core::InvalidFieldOf(status), *field) << c.query;
    }
  }
  AllTypes request;
  EXPECT_EQ(core::InvalidFieldOf(
                Bind("GET", "/t/acme/echo", "a%0Ab=1", "", &request)),
            "a\nb");
}

TEST_F(QueryBindingTest, AcceptsTheLongestString) {
  AllTypes request;
  ASSERT_TRUE(Bind("GET", "/t/acme/echo",
                   absl::StrCat("text=", std::string(4096, 'x')), "", &request)
                  .ok());
  EXPECT_EQ(request.text().size(), 4096u);
}

TEST_F(QueryBindingTest, ListApiKeysParameters) {
  lumo::keys::v1::ListApiKeysRequest request;
  absl::Status status =
      Bind("GET", "/t/acme-corp/api/v1/admin/api-keys",
           "page=2&limit=50&search=ci+bot&sortBy=name&sort_dir=ASC&status="
           "active",
           "", &request);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(request.ShortDebugString(),
            "tenant_slug: \"acme-corp\" page: 2 limit: 50 search: \"ci bot\" "
            "sort_by: \"name\" sort_dir: \"ASC\" status: \"active\"");

  status = Bind("GET", "/t/acme-corp/api/v1/admin/api-keys",
                "sort_by=name&sortBy=name", "", &request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()),
            "query parameter \"sortBy\": given more than once");

  status =
      Bind("GET", "/t/acme-corp/api/v1/admin/api-keys", "page=x", "", &request);
  EXPECT_EQ(std::string(status.message()),
            "query parameter \"page\": not a valid integer");

  status = Bind("GET", "/t/acme-corp/api/v1/admin/api-keys",
                "tenant_slug=other-tenant", "", &request);
  EXPECT_EQ(std::string(status.message()),
            "query parameter \"tenant_slug\": not allowed: the field is taken "
            "from the path");
}

TEST_F(QueryBindingTest, BodyFieldsCannotComeFromTheQuery) {
  AllTypes all;
  absl::Status status = Bind("POST", "/t/acme/echo", "text=x", "{}", &all);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()),
            "query parameter \"text\": not allowed: the field is taken from "
            "the request body");
  status = Bind("POST", "/t/acme/echo", "nope=x", "{}", &all);
  EXPECT_EQ(std::string(status.message()), "unknown query parameter \"nope\"");

  lumo::keys::v1::RotateApiKeyRequest rotate;
  status = Bind("POST", "/t/acme/api/v1/admin/api-keys/k1/rotate",
                "gracePeriodSeconds=5", "", &rotate);
  EXPECT_EQ(std::string(status.message()),
            "query parameter \"gracePeriodSeconds\": not allowed: the field "
            "is taken from the request body");

  lumo::gateway::testing::UpdateSettingsRequest settings;
  status = Bind("PATCH", "/t/acme/settings", "note=hi", "", &settings);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(settings.ShortDebugString(), "tenant_slug: \"acme\" note: \"hi\"");
  status =
      Bind("PATCH", "/t/acme/settings", "settings.enabled=true", "", &settings);
  EXPECT_EQ(std::string(status.message()),
            "query parameter \"settings.enabled\": not allowed: the field is "
            "taken from the request body");
}

TEST_F(QueryBindingTest, BindsPathVariables) {
  struct Case {
    const char* verb;
    const char* path;
    const char* expected;
    const char* error;
  };
  const Case cases[] = {
      {"GET", "/items/42", "item_id: 42", ""},
      {"GET", "/items/-9223372036854775808", "item_id: -9223372036854775808",
       ""},
      {"GET", "/items/abc", "",
       "path variable \"item_id\": not a valid integer"},
      {"GET", "/items/%2B1", "",
       "path variable \"item_id\": not a valid integer"},
      {"GET", "/items/99999999999999999999", "",
       "path variable \"item_id\": out of range (-9223372036854775808 to "
       "9223372036854775807)"},
      {"GET", "/items/7/children/b%20b/v/3",
       "parent { id: \"7\" } name: \"b b\" version: 3", ""},
      {"GET", "/items/7/children/bob/v/-1", "",
       "path variable \"version\": not a valid unsigned integer"},
      {"GET", "/t/a%2Fb/files/x/y%2Fz", "tenant_slug: \"a/b\" path: \"x/y/z\"",
       ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    std::unique_ptr<google::protobuf::Message> request;
    MatchResult match = table_.Match(c.verb, c.path);
    ASSERT_EQ(match.outcome, MatchOutcome::kMatched);
    request.reset(match.route->method->input_type() ==
                          lumo::gateway::testing::FileRequest::descriptor()
                      ? static_cast<google::protobuf::Message*>(
                            new lumo::gateway::testing::FileRequest)
                      : new lumo::gateway::testing::ItemRequest);
    absl::Status status =
        BuildRequest(*match.route, match.variables, {}, "", request.get());
    if (*c.error == '\0') {
      ASSERT_TRUE(status.ok()) << status;
      EXPECT_EQ(request->ShortDebugString(), c.expected);
    } else {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_EQ(std::string(status.message()), c.error);
    }
  }
}

TEST_F(QueryBindingTest, CallerMistakesAreInternal) {
  MatchResult match = table_.Match("GET", "/items/1");
  ASSERT_EQ(match.outcome, MatchOutcome::kMatched);
  AllTypes wrong_type;
  absl::Status status =
      BuildRequest(*match.route, match.variables, {}, "", &wrong_type);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);

  lumo::gateway::testing::ItemRequest request;
  status = BuildRequest(*match.route, {{"name", "x"}}, {}, "", &request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(std::string(status.message()),
            "path variable 'name' is not in the route");
}

}  // namespace
}  // namespace lumo::gateway
