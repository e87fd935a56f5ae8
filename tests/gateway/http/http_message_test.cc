#include "gateway/http/http_message.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace lumo::gateway {
namespace {

TEST(NewRequestId, IsSafeLongAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewRequestId();
    EXPECT_GE(id.size(), 20u);
    EXPECT_TRUE(IsSafeRequestId(id)) << id;
    EXPECT_TRUE(seen.insert(id).second) << id;
  }
}

TEST(IsSafeRequestId, AcceptsOnlyShortAlphanumericDotUnderscoreDash) {
  EXPECT_TRUE(IsSafeRequestId("a"));
  EXPECT_TRUE(IsSafeRequestId("Abc-123_x.Y"));
  EXPECT_TRUE(IsSafeRequestId(std::string(128, 'a')));
  EXPECT_FALSE(IsSafeRequestId(""));
  EXPECT_FALSE(IsSafeRequestId(std::string(129, 'a')));
  EXPECT_FALSE(IsSafeRequestId("a b"));
  EXPECT_FALSE(IsSafeRequestId("a\r\nb"));
  EXPECT_FALSE(IsSafeRequestId("a\"b"));
  EXPECT_FALSE(IsSafeRequestId("caf\xc3\xa9"));
  EXPECT_FALSE(IsSafeRequestId("a/b"));
}

TEST(HttpRequest, HeaderLookupIsByLowerCaseNameInOrder) {
  HttpRequest request;
  request.headers = {{"x-a", "1"}, {"x-b", "2"}, {"x-a", "3"}};
  ASSERT_NE(request.Header("x-a"), nullptr);
  EXPECT_EQ(*request.Header("x-a"), "1");
  EXPECT_EQ(request.Header("x-c"), nullptr);
  EXPECT_EQ(request.Headers("x-a"), (std::vector<absl::string_view>{"1", "3"}));
  EXPECT_TRUE(request.Headers("x-c").empty());
}

TEST(DefaultErrorRenderer, RendersTheProductErrorEnvelope) {
  const HttpResponse r =
      DefaultErrorRenderer(413, "payload_too_large", "too \"big\"", "rid");
  EXPECT_EQ(r.status, 413);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Content-Type");
  EXPECT_EQ(r.headers[0].second, "application/json");
  EXPECT_EQ(r.body,
            "{\"error\":true,\"status\":413,\"code\":\"payload_too_large\","
            "\"message\":\"too \\\"big\\\"\"}");
}

TEST(ErrorCodeForStatus, NamesTheServersOwnErrors) {
  EXPECT_EQ(ErrorCodeForStatus(400), "invalid_request");
  EXPECT_EQ(ErrorCodeForStatus(408), "request_timeout");
  EXPECT_EQ(ErrorCodeForStatus(413), "payload_too_large");
  EXPECT_EQ(ErrorCodeForStatus(414), "uri_too_long");
  EXPECT_EQ(ErrorCodeForStatus(431), "header_too_large");
  EXPECT_EQ(ErrorCodeForStatus(500), "internal_error");
  EXPECT_EQ(ErrorCodeForStatus(503), "service_unavailable");
  EXPECT_EQ(ErrorCodeForStatus(505), "http_version_not_supported");
}

TEST(JsonQuote, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(JsonQuote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  // Invalid UTF-8 never reaches a JSON body as such.
  EXPECT_EQ(JsonQuote("a\xff"
                      "b\xc3"),
            "\"a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD\"");
}

}  // namespace
}  // namespace lumo::gateway
