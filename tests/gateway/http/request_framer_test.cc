// RequestFramer: the socket-free request parsing HttpServer's sessions run.
#include "gateway/http/request_framer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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

// Feeds `input` in pieces whose sizes cycle through `pieces` (empty or a 0:
// all at once), like a session.
Result DrivePieces(absl::string_view input, const std::vector<size_t>& pieces,
                   size_t max_header = 1024, size_t max_body = 64) {
  RequestFramer framer(max_header, max_body);
  Result result;
  std::string buffer;
  bool in_body = false;
  size_t delivered = 0;
  size_t next_piece = 0;
  while (delivered < input.size()) {
    size_t n = pieces.empty() ? 0 : pieces[next_piece++ % pieces.size()];
    if (n == 0) n = input.size();
    n = std::min(n, input.size() - delivered);
    buffer.append(input.data() + delivered, n);
    delivered += n;
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

// Feeds `input` in pieces of `piece` bytes (0: all at once).
Result Drive(absl::string_view input, size_t piece, size_t max_header = 1024,
             size_t max_body = 64) {
  return DrivePieces(input, {piece}, max_header, max_body);
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

// ---------------------------------------------------------------------------
// Chunked bodies: every outcome must be the same however the bytes arrive.

const char kChunkedHead[] =
    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

// The segmentations each chunked case is fed in: whole, byte by byte, and a
// few uneven patterns.
const std::vector<std::vector<size_t>>& Segmentations() {
  static const auto* const kSegmentations =
      new std::vector<std::vector<size_t>>{
          {0}, {1}, {2}, {3}, {7}, {1, 5, 2, 16}, {13, 1, 1, 4}};
  return *kSegmentations;
}

// Drives `input` in every segmentation, expects the same state, status,
// bytes consumed and body from each, and returns the whole-input result.
Result SameForEverySegmentation(absl::string_view input,
                                size_t max_header = 1024,
                                size_t max_body = 64) {
  const Result whole = DrivePieces(input, {0}, max_header, max_body);
  for (const std::vector<size_t>& pieces : Segmentations()) {
    const Result r = DrivePieces(input, pieces, max_header, max_body);
    const std::string label =
        absl::StrCat("pieces starting ", pieces[0], " of ",
                     absl::CEscape(input.substr(0, 120)));
    EXPECT_EQ(r.state, whole.state) << label;
    EXPECT_EQ(r.status, whole.status) << label;
    EXPECT_EQ(r.consumed, whole.consumed) << label;
    EXPECT_EQ(r.body, whole.body) << label;
  }
  return whole;
}

TEST(RequestFramerChunkedTest, ValidBodiesAreDecodedInEverySegmentation) {
  struct Case {
    std::string chunks;
    std::string body;
  };
  const Case cases[] = {
      {"0\r\n\r\n", ""},
      {"3\r\nhel\r\n2\r\nlo\r\n1\r\n!\r\n0\r\n\r\n", "hello!"},
      {"00A\r\n0123456789\r\n000\r\n\r\n", "0123456789"},  // case, zeros
      {"a\r\n0123456789\r\n0\r\n\r\n", "0123456789"},
      // Chunk extensions: bare names, tokens, quoted strings with escapes,
      // blanks around ';' and '=' (RFC 9112 §7.1.1).
      {"3;a=b\r\nhel\r\n2;x;y=\"q\\\"t; \" ; z = 1\r\nlo\r\n"
       "0;last\r\n\r\n",
       "hello"},
      // Trailer fields are read and dropped.
      {"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Empty:\r\n\r\n", "hello"},
      // Exactly the body limit.
      {"40\r\n" + std::string(64, 'b') + "\r\n0\r\n\r\n", std::string(64, 'b')},
      {"20\r\n" + std::string(32, 'c') + "\r\n20\r\n" + std::string(32, 'd') +
           "\r\n0\r\n\r\n",
       std::string(32, 'c') + std::string(32, 'd')},
  };
  for (const Case& c : cases) {
    const std::string request = kChunkedHead + c.chunks;
    // A pipelined request after it stays unconsumed.
    const Result r =
        SameForEverySegmentation(request + "GET /b HTTP/1.1\r\nHost: x\r\n");
    EXPECT_EQ(r.state, State::kComplete) << absl::CEscape(c.chunks);
    EXPECT_EQ(r.body, c.body) << absl::CEscape(c.chunks);
    EXPECT_EQ(r.consumed, request.size()) << absl::CEscape(c.chunks);
  }
}

TEST(RequestFramerChunkedTest, MalformedAndOversizedBodiesGetOneStatus) {
  struct Case {
    std::string chunks;
    int status;
  };
  const Case cases[] = {
      // Malformed chunk-size lines: 400.
      {"zz\r\n", 400},
      {"g\r\nab\r\n", 400},
      {"0x5\r\nabcde\r\n", 400},
      {"-1\r\n", 400},
      {"+1\r\n", 400},
      {"\r\n", 400},               // no size
      {" 5\r\n", 400},             // blank before the size
      {"5 \r\n", 400},             // blank after the size without an extension
      {"5\nhello\r\n", 400},       // bare LF
      {"5\rhello\r\n", 400},       // bare CR
      {"5;\r\n", 400},             // empty extension name
      {"5;a=\r\n", 400},           // empty extension value
      {"5;a b\r\n", 400},          // two names without ';'
      {"5;a=\"x\r\n\"\r\n", 400},  // CR inside a quoted string
      {"5;a=\"x\x01\"\r\n", 400},  // control byte inside a quoted string
      {"5;a=b\x7f\r\n", 400},
      // An over-long chunk-size line, however it is made up: 400.
      {"1;" + std::string(5000, 'e') + "\r\n", 400},
      {std::string(5000, '0') + "1\r\nx\r\n0\r\n\r\n", 400},
      {"1;e=\"" + std::string(5000, ' ') + "\"\r\n", 400},
      // Chunk data not followed by CRLF: 400.
      {"3\r\nhelX\r\n0\r\n\r\n", 400},
      {"3\r\nhel\n0\r\n\r\n", 400},
      {"3\r\nhel\r0\r\n\r\n", 400},
      // The bad byte arriving after valid chunks.
      {"3\r\nabc\r\n5\r\nabcde\r\nzz\r\n", 400},
      {"3\r\nabc\r\n5\r\nabcde\r\n2;q=\"\r\n", 400},
      // Malformed trailer section: 400.
      {"0\r\nBad Name: x\r\n\r\n", 400},
      {"0\r\nX: a\r\n b\r\n\r\n", 400},  // obs-fold
      {"0\r\nX: a\x01\r\n\r\n", 400},
      {"0\r\nX: a\n\r\n", 400},
      {"0\r\n\rX", 400},
      // Over the body limit (64 here): 413, decided on the chunk-size line.
      {"41\r\n" + std::string(65, 'a') + "\r\n0\r\n\r\n", 413},
      {"41\r\n", 413},  // before any data byte
      {"20\r\n" + std::string(32, 'a') + "\r\n21\r\n", 413},
      {"ffffffffffffffffff\r\n", 413},  // beyond 64 bits
      {"ffffffffffffffff;a=b\r\n", 413},
      // A trailer section over the head limit (1024 here): 431.
      {"0\r\nX: " + std::string(2000, 't') + "\r\n\r\n", 431},
  };
  for (const Case& c : cases) {
    const Result r = SameForEverySegmentation(kChunkedHead + c.chunks);
    EXPECT_EQ(r.state, State::kError) << absl::CEscape(c.chunks.substr(0, 80));
    EXPECT_EQ(r.status, c.status) << absl::CEscape(c.chunks.substr(0, 80));
  }
}

TEST(RequestFramerChunkedTest, MalformedSizeLineIsRefusedBeforeItsEnd) {
  // A bad byte is refused when it arrives, without waiting for the line's
  // CRLF (which may never come).
  for (const std::string chunks : {"zz", "5;a=\"x\x01", "3\r\nabcX"}) {
    const Result r = SameForEverySegmentation(kChunkedHead + chunks);
    EXPECT_EQ(r.state, State::kError) << absl::CEscape(chunks);
    EXPECT_EQ(r.status, 400) << absl::CEscape(chunks);
  }
}

TEST(RequestFramerChunkedTest, IncompleteBodiesWaitInEverySegmentation) {
  for (const std::string& chunks : std::vector<std::string>{
           "", "5", "5;ext=\"ab", "5\r\nhel", "5\r\nhello\r", "0\r\n",
           "0\r\nX-T: 1\r\n", "0\r\n\r", "1;" + std::string(1000, 'e')}) {
    const std::string request = kChunkedHead + chunks;
    const Result r = SameForEverySegmentation(request);
    EXPECT_EQ(r.state, State::kNeedMore) << absl::CEscape(chunks);
  }
}

// The fuzzer's regression inputs for this property
// (tests/fuzz/corpus/http_request_fuzzer/regression-chunk-header-*), with the
// fuzzer's limits: byte 0 seeds the piece sizes, the rest is the stream.
TEST(RequestFramerChunkedTest, FuzzerRegressionInputsGiveOneOutcome) {
  const std::filesystem::path dir = std::filesystem::path(LUMO_SOURCE_DIR) /
                                    "tests/fuzz/corpus/http_request_fuzzer";
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, "regression-chunk-header-")) continue;
    ++seen;
    std::ifstream file(entry.path(), std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(file)),
                           std::istreambuf_iterator<char>());
    ASSERT_FALSE(data.empty()) << name;
    const absl::string_view input = absl::string_view(data).substr(1);
    // As tests/fuzz/http_request_fuzzer.cc: head limit 8 KiB + 256, body 512.
    const Result r = SameForEverySegmentation(input, 8 * 1024 + 256, 512);
    std::vector<size_t> fuzzer_pieces;
    for (char c : absl::StrCat(absl::string_view(data).substr(0, 1),
                               input.substr(0, 7))) {
      fuzzer_pieces.push_back(1 + static_cast<uint8_t>(c) % 16);
    }
    const Result split = DrivePieces(input, fuzzer_pieces, 8 * 1024 + 256, 512);
    EXPECT_EQ(split.state, r.state) << name;
    EXPECT_EQ(split.status, r.status) << name;
    EXPECT_EQ(split.consumed, r.consumed) << name;
    // The chunk extension's quoted string holds a CR: malformed.
    EXPECT_EQ(r.state, State::kError) << name;
    EXPECT_EQ(r.status, 400) << name;
  }
  EXPECT_GE(seen, 2);
}

}  // namespace
}  // namespace lumo::gateway::internal
