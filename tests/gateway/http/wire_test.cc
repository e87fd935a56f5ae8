#include "gateway/http/wire.h"

#include <ostream>
#include <string>

#include "gtest/gtest.h"

namespace lumo::gateway::wire {
namespace {

struct HeadCase {
  const char* name;
  std::string head;
  int status;  // expected HeadError status; 0 = accepted
};

void PrintTo(const HeadCase& c, std::ostream* os) { *os << c.name; }

class ParseRequestHeadTest : public testing::TestWithParam<HeadCase> {};

TEST_P(ParseRequestHeadTest, GivesExpectedStatus) {
  RequestHead head;
  const HeadError e = ParseRequestHead(GetParam().head, &head);
  EXPECT_EQ(e.status, GetParam().status) << e.message;
  if (GetParam().status != 0) {
    EXPECT_FALSE(e.message.empty());
  }
}

std::string Head(std::string request_line, std::string fields) {
  return request_line + "\r\n" + fields + "\r\n";
}

const std::string kHost = "Host: x\r\n";

INSTANTIATE_TEST_SUITE_P(
    Table, ParseRequestHeadTest,
    testing::Values(
        HeadCase{"Minimal11", Head("GET / HTTP/1.1", kHost), 0},
        HeadCase{"Minimal10NoHost", Head("GET /a?b=c HTTP/1.0", ""), 0},
        HeadCase{"ObsTextInValue",
                 Head("GET / HTTP/1.1", kHost + "X-A: caf\xc3\xa9\r\n"), 0},
        HeadCase{"TabInValue", Head("GET / HTTP/1.1", kHost + "X-A: a\tb\r\n"),
                 0},
        HeadCase{"EmptyValue", Head("GET / HTTP/1.1", kHost + "X-A:\r\n"), 0},
        HeadCase{
            "Chunked",
            Head("POST / HTTP/1.1", kHost + "Transfer-Encoding: Chunked\r\n"),
            0},
        HeadCase{"ContentLength",
                 Head("POST / HTTP/1.1", kHost + "Content-Length: 0012\r\n"),
                 0},
        HeadCase{"PercentAndSubDelims",
                 Head("GET /a%2Fb/c;d=e?f=g&h=%00 HTTP/1.1", kHost), 0},
        // Request line.
        HeadCase{"EmptyRequestLine", Head("", kHost), 400},
        HeadCase{"NoVersion", Head("GET /", kHost), 400},
        HeadCase{"DoubleSpace", Head("GET  / HTTP/1.1", kHost), 400},
        HeadCase{"TrailingSpace", Head("GET / HTTP/1.1 ", kHost), 400},
        HeadCase{"BadMethodChar", Head("G@T / HTTP/1.1", kHost), 400},
        HeadCase{"MethodTooLong",
                 Head(std::string(33, 'A') + " / HTTP/1.1", kHost), 400},
        HeadCase{"LowercaseVersion", Head("GET / http/1.1", kHost), 400},
        HeadCase{"Http2", Head("GET / HTTP/2.0", kHost), 505},
        HeadCase{"Http09Style", Head("GET /", ""), 400},
        HeadCase{"AbsoluteForm", Head("GET http://a.example/ HTTP/1.1", kHost),
                 400},
        HeadCase{"AuthorityForm", Head("CONNECT a.example:443 HTTP/1.1", kHost),
                 400},
        HeadCase{"AsteriskForm", Head("OPTIONS * HTTP/1.1", kHost), 400},
        HeadCase{"FragmentInTarget", Head("GET /a#b HTTP/1.1", kHost), 400},
        HeadCase{"RawNonAsciiTarget", Head("GET /caf\xc3\xa9 HTTP/1.1", kHost),
                 400},
        HeadCase{"DelInTarget", Head("GET /a\x7f HTTP/1.1", kHost), 400},
        HeadCase{
            "TargetAtLimit",
            Head("GET /" + std::string(kMaxTargetBytes - 1, 'a') + " HTTP/1.1",
                 kHost),
            0},
        HeadCase{"TargetTooLong",
                 Head("GET /" + std::string(kMaxTargetBytes, 'a') + " HTTP/1.1",
                      kHost),
                 414},
        // Line endings and control bytes.
        HeadCase{"BareLfEndsLine", "GET / HTTP/1.1\nHost: x\r\n\r\n", 400},
        HeadCase{"CrInValue", Head("GET / HTTP/1.1", kHost + "X-A: a\rb\r\n"),
                 400},
        HeadCase{"LfInValue", Head("GET / HTTP/1.1", kHost + "X-A: a\nb\r\n"),
                 400},
        HeadCase{
            "NulInValue",
            Head("GET / HTTP/1.1", kHost + std::string("X-A: a\0b\r\n", 10)),
            400},
        HeadCase{"NulInName",
                 Head("GET / HTTP/1.1", kHost + std::string("X\0A: b\r\n", 8)),
                 400},
        HeadCase{"CtlInValue", Head("GET / HTTP/1.1", kHost + "X-A: a\x01\r\n"),
                 400},
        HeadCase{"DelInValue", Head("GET / HTTP/1.1", kHost + "X-A: a\x7f\r\n"),
                 400},
        HeadCase{"EscInValue",
                 Head("GET / HTTP/1.1", kHost + "X-A: \x1b[1m\r\n"), 400},
        // Field syntax.
        HeadCase{"ObsFold", Head("GET / HTTP/1.1", kHost + "X-A: a\r\n b\r\n"),
                 400},
        HeadCase{"ObsFoldTab",
                 Head("GET / HTTP/1.1", kHost + "X-A: a\r\n\tb\r\n"), 400},
        HeadCase{"LeadingSpaceFirstField", Head("GET / HTTP/1.1", " " + kHost),
                 400},
        HeadCase{"SpaceBeforeColon", Head("GET / HTTP/1.1", "Host : x\r\n"),
                 400},
        HeadCase{"NoColon", Head("GET / HTTP/1.1", kHost + "X-A\r\n"), 400},
        HeadCase{"EmptyName", Head("GET / HTTP/1.1", kHost + ": a\r\n"), 400},
        HeadCase{"SeparatorInName",
                 Head("GET / HTTP/1.1", kHost + "X(A): a\r\n"), 400},
        HeadCase{"TooManyFields",
                 [] {
                   std::string fields = kHost;
                   for (size_t i = 0; i < kMaxHeaderFields; ++i) {
                     fields += "X-A: b\r\n";
                   }
                   return Head("GET / HTTP/1.1", fields);
                 }(),
                 431},
        // Framing.
        HeadCase{"ContentLengthLetters",
                 Head("POST / HTTP/1.1", kHost + "Content-Length: 12a\r\n"),
                 400},
        HeadCase{"ContentLengthNegative",
                 Head("POST / HTTP/1.1", kHost + "Content-Length: -1\r\n"),
                 400},
        HeadCase{"ContentLengthPlus",
                 Head("POST / HTTP/1.1", kHost + "Content-Length: +1\r\n"),
                 400},
        HeadCase{"ContentLengthEmpty",
                 Head("POST / HTTP/1.1", kHost + "Content-Length:\r\n"), 400},
        HeadCase{"ContentLengthList",
                 Head("POST / HTTP/1.1", kHost + "Content-Length: 1, 1\r\n"),
                 400},
        HeadCase{"ContentLengthTwice",
                 Head("POST / HTTP/1.1", kHost + "Content-Length: 1\r\n"
                                                 "Content-Length: 1\r\n"),
                 400},
        HeadCase{"ContentLengthHuge",
                 Head("POST / HTTP/1.1",
                      kHost + "Content-Length: 99999999999999999999999\r\n"),
                 400},
        HeadCase{
            "ContentLengthAndChunked",
            Head("POST / HTTP/1.1", kHost + "Content-Length: 5\r\n"
                                            "Transfer-Encoding: chunked\r\n"),
            400},
        HeadCase{
            "ChunkedAndContentLength",
            Head("POST / HTTP/1.1", kHost + "Transfer-Encoding: chunked\r\n"
                                            "Content-Length: 5\r\n"),
            400},
        HeadCase{"TransferEncodingGzip",
                 Head("POST / HTTP/1.1", kHost + "Transfer-Encoding: gzip\r\n"),
                 400},
        HeadCase{"TransferEncodingList",
                 Head("POST / HTTP/1.1",
                      kHost + "Transfer-Encoding: gzip, chunked\r\n"),
                 400},
        HeadCase{
            "ChunkedTwice",
            Head("POST / HTTP/1.1", kHost + "Transfer-Encoding: chunked\r\n"
                                            "Transfer-Encoding: chunked\r\n"),
            400},
        HeadCase{"ChunkedInHttp10",
                 Head("POST / HTTP/1.0", "Transfer-Encoding: chunked\r\n"),
                 400},
        HeadCase{"MissingHost11", Head("GET / HTTP/1.1", ""), 400},
        HeadCase{"TwoHosts", Head("GET / HTTP/1.1", kHost + kHost), 400}),
    [](const testing::TestParamInfo<HeadCase>& info) {
      return std::string(info.param.name);
    });

TEST(ParseRequestHead, ExtractsFieldsLowerCasedAndTrimmed) {
  RequestHead head;
  ASSERT_TRUE(ParseRequestHead("POST /a/b?c=d HTTP/1.1\r\n"
                               "Host: example\r\n"
                               "X-Multi:  one \t\r\n"
                               "x-multi: two\r\n"
                               "Content-Length: 3\r\n"
                               "Connection: keep-alive, Close\r\n"
                               "Expect: 100-Continue\r\n"
                               "\r\n",
                               &head)
                  .ok());
  EXPECT_EQ(head.method, "POST");
  EXPECT_EQ(head.target, "/a/b?c=d");
  EXPECT_EQ(head.version_minor, 1);
  ASSERT_EQ(head.headers.size(), 6u);
  EXPECT_EQ(head.headers[1],
            (std::pair<std::string, std::string>("x-multi", "one")));
  EXPECT_EQ(head.headers[2],
            (std::pair<std::string, std::string>("x-multi", "two")));
  EXPECT_EQ(head.content_length, 3u);
  EXPECT_FALSE(head.chunked);
  EXPECT_FALSE(head.keep_alive);
  EXPECT_TRUE(head.expect_continue);
}

TEST(ParseRequestHead, Http10NeverKeepsAlive) {
  RequestHead head;
  ASSERT_TRUE(ParseRequestHead(
                  "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &head)
                  .ok());
  EXPECT_EQ(head.version_minor, 0);
  EXPECT_FALSE(head.keep_alive);
}

TEST(ParseRequestHead, Http11KeepsAliveByDefault) {
  RequestHead head;
  ASSERT_TRUE(
      ParseRequestHead("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &head).ok());
  EXPECT_TRUE(head.keep_alive);
  EXPECT_FALSE(head.content_length.has_value());
}

TEST(ParseRequestHead, RejectsHeadWithoutFinalEmptyLine) {
  RequestHead head;
  EXPECT_EQ(ParseRequestHead("GET / HTTP/1.1\r\nHost: a\r\n", &head).status,
            400);
}

TEST(SerializeResponse, AddsServerFieldsAndCommonHeaders) {
  HttpResponse response;
  response.status = 201;
  response.headers = {{"Content-Type", "text/plain"},
                      {"X-Frame-Options", "SAMEORIGIN"}};
  response.body = "hello";
  std::string out;
  SerializeResponse(response, "rid1",
                    {{"X-Frame-Options", "DENY"}, {"X-Common", "yes"}},
                    /*close=*/false, /*head_request=*/false, &out);
  EXPECT_EQ(out,
            "HTTP/1.1 201 Created\r\n"
            "Content-Type: text/plain\r\n"
            "X-Frame-Options: SAMEORIGIN\r\n"
            "X-Common: yes\r\n"
            "Content-Length: 5\r\n"
            "X-Request-Id: rid1\r\n"
            "\r\n"
            "hello");
}

TEST(SerializeResponse, DropsServerOwnedAndUnsafeFields) {
  HttpResponse response;
  response.headers = {{"Content-Length", "999"},
                      {"transfer-encoding", "chunked"},
                      {"Connection", "keep-alive"},
                      {"X-Request-Id", "spoofed"},
                      {"X-Split", "a\r\nSet-Cookie: evil=1"},
                      {"Bad Name", "v"},
                      {"X-Nul", std::string("a\0b", 3)},
                      {"X-Ok", "fine"}};
  response.body = "ab";
  std::string out;
  SerializeResponse(response, "rid", {}, /*close=*/true, /*head_request=*/false,
                    &out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\n"
            "X-Ok: fine\r\n"
            "Content-Length: 2\r\n"
            "X-Request-Id: rid\r\n"
            "Connection: close\r\n"
            "\r\n"
            "ab");
}

TEST(SerializeResponse, NoContentHasNeitherLengthNorBody) {
  HttpResponse response;
  response.status = 204;
  response.body = "ignored";
  std::string out;
  SerializeResponse(response, "rid", {}, /*close=*/false,
                    /*head_request=*/false, &out);
  EXPECT_EQ(out, "HTTP/1.1 204 No Content\r\nX-Request-Id: rid\r\n\r\n");
}

TEST(SerializeResponse, HeadResponseKeepsLengthButSendsNoBody) {
  HttpResponse response;
  response.status = 405;
  response.body = "{}";
  std::string out;
  SerializeResponse(response, "rid", {}, /*close=*/false,
                    /*head_request=*/true, &out);
  EXPECT_EQ(out,
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 2\r\n"
            "X-Request-Id: rid\r\n\r\n");
}

TEST(SerializeResponse, InvalidStatusBecomes500) {
  HttpResponse response;
  response.status = 99;
  std::string out;
  SerializeResponse(response, "rid", {}, /*close=*/false,
                    /*head_request=*/false, &out);
  EXPECT_EQ(out.rfind("HTTP/1.1 500 Internal Server Error\r\n", 0), 0u);
}

}  // namespace
}  // namespace lumo::gateway::wire
