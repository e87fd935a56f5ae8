// RequestFramer: the socket-free request parsing HttpServer's sessions run.
#include "gateway/http/request_framer.h"

#include <string>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace lumo::gateway::internal {
namespace {

using State = RequestFramer::State;

struct Result {
  State state = State::kNeedMore;
  int status = 0;
  size_t consumed = 0;
  std::string method;
  std::string body;
};

// Feeds `input` in pieces of `piece` bytes (0: all at once), like a session.
Result Drive(absl::string_view input, size_t piece, size_t max_header = 1024,
             size_t max_body = 64) {
  RequestFramer framer(max_header, max_body);
  Result result;
  std::string buffer;
  bool in_body = false;
  size_t delivered = 0;
  while (delivered < input.size()) {
    const size_t n = piece == 0 ? input.size() : piece;
    buffer.append(std::string(input.substr(delivered, n)));
    delivered += std::min(n, input.size() - delivered);
    while (true) {
      const RequestFramer::Step step =
          in_body ? framer.ReadBody(buffer) : framer.ReadHead(buffer);
      buffer.erase(0, step.consumed);
      result.consumed += step.consumed;
      if (step.state == State::kHeadDone) {
        in_body = true;
        continue;
      }
      if (step.state == State::kNeedMore) break;
      result.state = step.state;
      result.status = step.status;
      if (framer.head_parsed()) result.method = framer.head().method;
      if (step.state == State::kComplete) result.body = framer.TakeBody();
      return result;
    }
  }
  return result;
}

TEST(RequestFramerTest, RequestWithoutBodyCompletesAndLeavesThePipelinedRest) {
  const std::string first = "\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  for (size_t piece : {0, 1, 3}) {
    const Result r = Drive(first + "GET /b HTTP/1.1\r\n", piece);
    EXPECT_EQ(r.state, State::kComplete) << piece;
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.consumed, first.size()) << piece;  // skipped CRLF included
  }
}

TEST(RequestFramerTest, ContentLengthAndChunkedBodiesAreFramed) {
  for (size_t piece : {0, 1, 7}) {
    Result r =
        Drive("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloXX",
              piece);
    EXPECT_EQ(r.state, State::kComplete);
    EXPECT_EQ(r.body, "hello");
    r = Drive(
        "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
        piece);
    EXPECT_EQ(r.state, State::kComplete);
    EXPECT_EQ(r.body, "hello");
  }
}

TEST(RequestFramerTest, LimitsGiveTheDocumentedStatuses) {
  struct Case {
    std::string input;
    int status;
  };
  const Case cases[] = {
      {"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n", 413},
      {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
       "41\r\n" +
           std::string(65, 'a') + "\r\n0\r\n\r\n",
       413},
      {"GET /a HTTP/1.1\r\nHost: x\r\nX: " + std::string(2000, 'a') +
           "\r\n\r\n",
       431},
      {"GET /a HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400},  // bare LF
      {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
       "zz\r\n",
       400},
  };
  for (const Case& c : cases) {
    for (size_t piece : {0, 1, 5}) {
      const Result r = Drive(c.input, piece);
      EXPECT_EQ(r.state, State::kError) << c.input.substr(0, 60) << piece;
      EXPECT_EQ(r.status, c.status) << c.input.substr(0, 60) << piece;
    }
  }
}

TEST(RequestFramerTest, LongRequestLineWithoutEndIs414) {
  const Result r = Drive("GET /" + std::string(9000, 'a'), 0, 16 * 1024);
  EXPECT_EQ(r.state, State::kError);
  EXPECT_EQ(r.status, 414);
}

TEST(RequestFramerTest, ResetForgetsTheRequest) {
  RequestFramer framer(1024, 64);
  const std::string head = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(framer.ReadHead(head).state, State::kComplete);
  framer.Reset();
  EXPECT_FALSE(framer.head_parsed());
  EXPECT_TRUE(framer.head().method.empty());
  EXPECT_EQ(framer.ReadHead(head).state, State::kComplete);
}

}  // namespace
}  // namespace lumo::gateway::internal
