#include "server/observability/metrics_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace lumo::metrics {
namespace {

// Sends `request` to 127.0.0.1:port and returns everything read until the
// server closes.
std::string Exchange(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return "";
  }
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  char buffer[4096];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) out.append(buffer, n);
  close(fd);
  return out;
}

class MetricsHttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.AddCounter("t_requests_total", "Requests.").Get().Increment(7);
    ASSERT_TRUE(server_.Start("127.0.0.1:0").ok());
    ASSERT_GT(server_.bound_port(), 0);
  }
  Registry registry_;
  MetricsHttpServer server_{&registry_};
};

TEST_F(MetricsHttpServerTest, GetMetricsServesTheRegistry) {
  const std::string reply = Exchange(
      server_.bound_port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << reply;
  EXPECT_NE(reply.find("Content-Type: text/plain; version=0.0.4"),
            std::string::npos);
  const std::string body = registry_.Render();
  EXPECT_NE(reply.find(absl::StrCat("Content-Length: ", body.size())),
            std::string::npos);
  EXPECT_EQ(reply.substr(reply.find("\r\n\r\n") + 4), body);
  EXPECT_NE(body.find("t_requests_total 7\n"), std::string::npos);
}

TEST_F(MetricsHttpServerTest, ValuesAreCurrentAtEachScrape) {
  registry_.AddCounter("t_requests_total", "Requests.").Get().Increment();
  const std::string reply = Exchange(
      server_.bound_port(), "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(reply.find("t_requests_total 8\n"), std::string::npos) << reply;
}

TEST_F(MetricsHttpServerTest, OtherPathsAndMethodsAreRefused) {
  EXPECT_EQ(Exchange(server_.bound_port(), "GET / HTTP/1.1\r\n\r\n")
                .rfind("HTTP/1.1 404 ", 0),
            0u);
  const std::string post =
      Exchange(server_.bound_port(), "POST /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(post.rfind("HTTP/1.1 405 ", 0), 0u) << post;
  EXPECT_NE(post.find("Allow: GET, HEAD"), std::string::npos);
  EXPECT_EQ(Exchange(server_.bound_port(), "garbage\r\n\r\n")
                .rfind("HTTP/1.1 400 ", 0),
            0u);
  EXPECT_EQ(Exchange(server_.bound_port(),
                     "GET /metrics HTTP/1.1\r\nX: " + std::string(9000, 'a'))
                .rfind("HTTP/1.1 431 ", 0),
            0u);
}

TEST_F(MetricsHttpServerTest, HeadHasNoBody) {
  const std::string reply =
      Exchange(server_.bound_port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_EQ(reply.substr(reply.find("\r\n\r\n") + 4), "");
}

TEST_F(MetricsHttpServerTest, StopClosesThePort) {
  const int port = server_.bound_port();
  server_.Stop();
  EXPECT_EQ(server_.bound_port(), 0);
  EXPECT_EQ(Exchange(port, "GET /metrics HTTP/1.1\r\n\r\n"), "");
  server_.Stop();  // idempotent
}

TEST(MetricsHttpServerStartTest, BadAddressesAreRejected) {
  Registry r;
  MetricsHttpServer s(&r);
  EXPECT_EQ(s.Start("no-port").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Start("example.com:80").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Start("127.0.0.1:70000").code(),
            absl::StatusCode::kInvalidArgument);
  MetricsHttpServer first(&r);
  ASSERT_TRUE(first.Start("127.0.0.1:0").ok());
  EXPECT_EQ(s.Start(absl::StrCat("127.0.0.1:", first.bound_port())).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(first.Start("127.0.0.1:0").code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(IsLoopbackAddressTest, LoopbackOnly) {
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1:9464"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:9464"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]:9464"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0:9464"));
  EXPECT_FALSE(IsLoopbackAddress("10.0.0.1:9464"));
  EXPECT_FALSE(IsLoopbackAddress("[::]:9464"));
}

TEST(CheckMetricsListenTest, RemoteNeedsTheExplicitFlag) {
  EXPECT_TRUE(CheckMetricsListen("", false).ok());
  EXPECT_TRUE(CheckMetricsListen("127.0.0.1:0", false).ok());
  EXPECT_TRUE(CheckMetricsListen("0.0.0.0:9464", true).ok());
  absl::Status refused = CheckMetricsListen("0.0.0.0:9464", false);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("--metrics_listen=0.0.0.0:9464"),
            absl::string_view::npos);
  EXPECT_NE(refused.message().find("--metrics_allow_remote"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace lumo::metrics
