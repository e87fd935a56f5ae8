#include "gateway/http/request_framer.h"

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <limits>
#include <optional>

#include "absl/strings/match.h"

namespace lumo::gateway::internal {

namespace http = boost::beast::http;
using boost::system::error_code;

struct RequestFramer::BeastParser {
  http::request_parser<http::string_body> parser;
};

RequestFramer::RequestFramer(size_t max_header_bytes, size_t max_body_bytes)
    : max_header_bytes_(max_header_bytes), max_body_bytes_(max_body_bytes) {}

RequestFramer::~RequestFramer() = default;

void RequestFramer::Reset() {
  scan_from_ = 0;
  skipped_crlfs_ = 0;
  head_parsed_ = false;
  head_ = wire::RequestHead();
  parser_.reset();
}

RequestFramer::Step RequestFramer::ReadHead(absl::string_view data) {
  Step step;
  auto fail = [&step](int status, absl::string_view message) {
    step.state = State::kError;
    step.status = status;
    step.message = message;
    return step;
  };
  // RFC 9112 §2.2: tolerate an empty line or two before the request line.
  while (scan_from_ == 0 && skipped_crlfs_ < 2 &&
         absl::StartsWith(data.substr(step.consumed), "\r\n")) {
    step.consumed += 2;
    ++skipped_crlfs_;
  }
  const absl::string_view bytes = data.substr(step.consumed);
  // A request line longer than any acceptable one is 414, before anything
  // else and decided on the line alone (complete or not), so that the answer
  // does not depend on how the bytes were segmented.
  const size_t line_end = bytes.find("\r\n");
  const size_t line_size =
      line_end == absl::string_view::npos ? bytes.size() : line_end;
  if (line_size > wire::kMaxTargetBytes + kRequestLineSlack) {
    return fail(414, "request-target too long");
  }
  const size_t end = bytes.find("\r\n\r\n", scan_from_);
  if (end == absl::string_view::npos) {
    if (bytes.size() > max_header_bytes_) {
      return fail(431, "request head too large");
    }
    scan_from_ = bytes.size() < 3 ? 0 : bytes.size() - 3;
    return step;
  }
  const size_t head_size = end + 4;
  if (head_size > max_header_bytes_) {
    return fail(431, "request head too large");
  }
  const absl::string_view head = bytes.substr(0, head_size);
  if (wire::HeadError e = wire::ParseRequestHead(head, &head_); !e.ok()) {
    return fail(e.status, e.message);
  }
  head_parsed_ = true;
  if (head_.content_length.value_or(0) > max_body_bytes_) {
    return fail(413, "request body too large");
  }
  parser_ = std::make_unique<BeastParser>();
  http::request_parser<http::string_body>& parser = parser_->parser;
  parser.header_limit(static_cast<uint32_t>(std::min<size_t>(
      max_header_bytes_ + 1, std::numeric_limits<uint32_t>::max())));
  parser.body_limit(static_cast<uint64_t>(max_body_bytes_));
  error_code ec;
  const size_t used =
      parser.put(boost::asio::buffer(head.data(), head.size()), ec);
  if (ec || used != head_size || !parser.is_header_done()) {
    // The strict parser accepted what Beast did not: still malformed.
    return ec == http::error::body_limit ? fail(413, "request body too large")
                                         : fail(400, "malformed request head");
  }
  step.consumed += head_size;
  scan_from_ = 0;
  parser.eager(true);
  if (parser.is_done()) {
    step.state = State::kComplete;
    return step;
  }
  step.state = State::kHeadDone;
  return step;
}

RequestFramer::Step RequestFramer::ReadBody(absl::string_view data) {
  Step step;
  http::request_parser<http::string_body>& parser = parser_->parser;
  while (step.consumed < data.size() && !parser.is_done()) {
    error_code ec;
    const absl::string_view rest = data.substr(step.consumed);
    const size_t used =
        parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
    step.consumed += used;
    if (ec == http::error::need_more) break;
    if (ec) {
      step.state = State::kError;
      step.status = ec == http::error::body_limit ? 413 : 400;
      step.message = ec == http::error::body_limit
                         ? "request body too large"
                         : "malformed request body framing";
      return step;
    }
    if (used == 0) break;
  }
  if (parser.is_done()) {
    step.state = State::kComplete;
  } else if (data.size() - step.consumed > kMaxPendingBodyBytes) {
    step.state = State::kError;
    step.status = 400;
    step.message = "malformed request body framing";
  }
  return step;
}

std::string RequestFramer::TakeBody() {
  if (parser_ == nullptr) return std::string();
  std::string body = std::move(parser_->parser.get().body());
  parser_.reset();
  return body;
}

}  // namespace lumo::gateway::internal
