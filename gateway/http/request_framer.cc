#include "gateway/http/request_framer.h"

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <limits>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace lumo::gateway::internal {

namespace http = boost::beast::http;
using boost::system::error_code;

namespace {

constexpr absl::string_view kBadFraming = "malformed request body framing";
constexpr absl::string_view kBodyTooLarge = "request body too large";
constexpr absl::string_view kTrailersTooLarge = "request trailers too large";

bool IsBlank(unsigned char c) { return c == ' ' || c == '\t'; }

// RFC 9110 §5.6.4 qdtext: HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text.
bool IsQdtext(unsigned char c) {
  return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5B) ||
         (c >= 0x5D && c <= 0x7E) || c >= 0x80;
}

// What may follow a backslash in a quoted-string: HTAB / SP / VCHAR /
// obs-text.
bool IsQuotedPairByte(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7F);
}

// A field value byte (as wire::IsSafeFieldValue): no control but HTAB.
bool IsFieldValueByte(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7F);
}

int HexValue(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

struct RequestFramer::BeastParser {
  http::request_parser<http::string_body> parser;
};

// Decodes a chunked body as documented at RequestFramer::ReadBody: a state
// machine over the framing bytes (chunk data is copied in bulk), holding all
// it needs between calls so that it never looks at a byte twice.
class RequestFramer::ChunkedDecoder {
 public:
  ChunkedDecoder(size_t max_body_bytes, size_t max_trailer_bytes)
      : max_body_bytes_(max_body_bytes),
        max_trailer_bytes_(max_trailer_bytes) {}

  // Consumes a prefix of `data`: all of it (kNeedMore), up to and including
  // the body's final CRLF (kComplete), or up to the byte that decided an
  // error (kError, that byte excluded).
  Step Read(absl::string_view data);

  std::string TakeBody() { return std::move(body_); }

 private:
  enum class At {
    kSize,          // chunk-size digits (none yet if digits_ == 0)
    kBeforeSemi,    // BWS after the size or an extension: only ";" next
    kBeforeName,    // after ";": BWS, then an extension name
    kName,          // in an extension name
    kAfterName,     // BWS after a name: "=" or ";" next
    kBeforeValue,   // after "=": BWS, then a token or quoted-string
    kToken,         // in a token value
    kQuoted,        // in a quoted-string value
    kQuotedPair,    // after a backslash in a quoted-string
    kAfterQuoted,   // after the closing DQUOTE
    kLineLf,        // the chunk-size line's CR seen
    kData,          // chunk data, remaining_ bytes left
    kDataCr,        // the CR after chunk data expected
    kDataLf,        // the LF after chunk data expected
    kTrailerStart,  // start of a trailer line (or of the final CRLF)
    kTrailerName,   // in a trailer field name
    kTrailerValue,  // after the ':', up to CR
    kTrailerLf,     // a trailer line's CR seen
    kEndLf,         // the final CR seen
  };

  // One framing byte (not chunk data). Returns 0 to go on, else the status
  // to refuse the request with (`message_` set).
  int OnFramingByte(unsigned char c);
  // The chunk-size line ended (its LF): decides the chunk.
  int EndSizeLine();
  // The byte after a chunk size or an extension value: ';' starts the next
  // extension, blanks may come before it, CR ends the line.
  int AfterValue(unsigned char c);
  int Fail(int status, absl::string_view message) {
    message_ = message;
    return status;
  }

  const size_t max_body_bytes_;
  const size_t max_trailer_bytes_;
  At at_ = At::kSize;
  uint64_t size_ = 0;         // the chunk size read so far (saturating)
  size_t digits_ = 0;         // its digits read so far
  size_t line_bytes_ = 0;     // bytes of the current chunk-size line so far
  uint64_t remaining_ = 0;    // chunk data still to come
  size_t trailer_bytes_ = 0;  // bytes of the trailer section so far
  bool done_ = false;
  absl::string_view message_;
  std::string body_;
};

RequestFramer::Step RequestFramer::ChunkedDecoder::Read(
    absl::string_view data) {
  Step step;
  while (step.consumed < data.size() && !done_) {
    if (at_ == At::kData) {
      const size_t n = static_cast<size_t>(
          std::min<uint64_t>(remaining_, data.size() - step.consumed));
      body_.append(data.data() + step.consumed, n);
      step.consumed += n;
      remaining_ -= n;
      if (remaining_ == 0) at_ = At::kDataCr;
      continue;
    }
    if (const int status =
            OnFramingByte(static_cast<unsigned char>(data[step.consumed]));
        status != 0) {
      step.state = State::kError;
      step.status = status;
      step.message = message_;
      return step;
    }
    ++step.consumed;
  }
  if (done_) step.state = State::kComplete;
  return step;
}

int RequestFramer::ChunkedDecoder::AfterValue(unsigned char c) {
  if (c == ';') {
    at_ = At::kBeforeName;
  } else if (IsBlank(c)) {
    at_ = At::kBeforeSemi;
  } else if (c == '\r') {
    at_ = At::kLineLf;
  } else {
    return Fail(400, kBadFraming);
  }
  return 0;
}

int RequestFramer::ChunkedDecoder::OnFramingByte(unsigned char c) {
  switch (at_) {
    case At::kSize:
    case At::kBeforeSemi:
    case At::kBeforeName:
    case At::kName:
    case At::kAfterName:
    case At::kBeforeValue:
    case At::kToken:
    case At::kQuoted:
    case At::kQuotedPair:
    case At::kAfterQuoted:
    case At::kLineLf:
      if (++line_bytes_ > kMaxChunkLineBytes) return Fail(400, kBadFraming);
      break;
    case At::kTrailerStart:
    case At::kTrailerName:
    case At::kTrailerValue:
    case At::kTrailerLf:
    case At::kEndLf:
      if (++trailer_bytes_ > max_trailer_bytes_) {
        return Fail(431, kTrailersTooLarge);
      }
      break;
    default:
      break;
  }
  switch (at_) {
    case At::kSize:
      if (const int digit = HexValue(c); digit >= 0) {
        ++digits_;
        // Saturates: any size past 64 bits is over every body limit.
        size_ = size_ > (std::numeric_limits<uint64_t>::max() - digit) / 16
                    ? std::numeric_limits<uint64_t>::max()
                    : size_ * 16 + digit;
        return 0;
      }
      if (digits_ == 0) return Fail(400, kBadFraming);
      return AfterValue(c);
    case At::kBeforeSemi:
      if (c == ';') {
        at_ = At::kBeforeName;
      } else if (!IsBlank(c)) {
        return Fail(400, kBadFraming);
      }
      return 0;
    case At::kBeforeName:
      if (wire::IsTchar(static_cast<char>(c))) {
        at_ = At::kName;
      } else if (!IsBlank(c)) {
        return Fail(400, kBadFraming);
      }
      return 0;
    case At::kName:
      if (wire::IsTchar(static_cast<char>(c))) return 0;
      if (c == '=') {
        at_ = At::kBeforeValue;
      } else if (c == ';') {
        at_ = At::kBeforeName;
      } else if (IsBlank(c)) {
        at_ = At::kAfterName;
      } else if (c == '\r') {
        at_ = At::kLineLf;
      } else {
        return Fail(400, kBadFraming);
      }
      return 0;
    case At::kAfterName:
      if (c == '=') {
        at_ = At::kBeforeValue;
      } else if (c == ';') {
        at_ = At::kBeforeName;
      } else if (!IsBlank(c)) {
        return Fail(400, kBadFraming);
      }
      return 0;
    case At::kBeforeValue:
      if (wire::IsTchar(static_cast<char>(c))) {
        at_ = At::kToken;
      } else if (c == '"') {
        at_ = At::kQuoted;
      } else if (!IsBlank(c)) {
        return Fail(400, kBadFraming);
      }
      return 0;
    case At::kToken:
      if (wire::IsTchar(static_cast<char>(c))) return 0;
      return AfterValue(c);
    case At::kQuoted:
      if (c == '"') {
        at_ = At::kAfterQuoted;
      } else if (c == '\\') {
        at_ = At::kQuotedPair;
      } else if (!IsQdtext(c)) {
        return Fail(400, kBadFraming);
      }
      return 0;
    case At::kQuotedPair:
      if (!IsQuotedPairByte(c)) return Fail(400, kBadFraming);
      at_ = At::kQuoted;
      return 0;
    case At::kAfterQuoted:
      return AfterValue(c);
    case At::kLineLf:
      if (c != '\n') return Fail(400, kBadFraming);
      return EndSizeLine();
    case At::kData:
      return Fail(400, kBadFraming);  // not reached: Read copies the data
    case At::kDataCr:
      if (c != '\r') return Fail(400, kBadFraming);
      at_ = At::kDataLf;
      return 0;
    case At::kDataLf:
      if (c != '\n') return Fail(400, kBadFraming);
      at_ = At::kSize;
      size_ = 0;
      digits_ = 0;
      line_bytes_ = 0;
      return 0;
    case At::kTrailerStart:
      if (c == '\r') {
        at_ = At::kEndLf;
      } else if (wire::IsTchar(static_cast<char>(c))) {
        at_ = At::kTrailerName;
      } else {
        return Fail(400, kBadFraming);  // also obs-fold and a bare LF
      }
      return 0;
    case At::kTrailerName:
      if (c == ':') {
        at_ = At::kTrailerValue;
      } else if (!wire::IsTchar(static_cast<char>(c))) {
        return Fail(400, kBadFraming);
      }
      return 0;
    case At::kTrailerValue:
      if (c == '\r') {
        at_ = At::kTrailerLf;
      } else if (!IsFieldValueByte(c)) {
        return Fail(400, kBadFraming);
      }
      return 0;
    case At::kTrailerLf:
      if (c != '\n') return Fail(400, kBadFraming);
      at_ = At::kTrailerStart;
      return 0;
    case At::kEndLf:
      if (c != '\n') return Fail(400, kBadFraming);
      done_ = true;
      return 0;
  }
  return Fail(400, kBadFraming);
}

int RequestFramer::ChunkedDecoder::EndSizeLine() {
  if (size_ == 0) {  // last-chunk: the trailer section follows
    at_ = At::kTrailerStart;
    return 0;
  }
  if (size_ > max_body_bytes_ - body_.size()) {
    return Fail(413, kBodyTooLarge);
  }
  remaining_ = size_;
  at_ = At::kData;
  return 0;
}

RequestFramer::RequestFramer(size_t max_header_bytes, size_t max_body_bytes)
    : max_header_bytes_(max_header_bytes), max_body_bytes_(max_body_bytes) {}

RequestFramer::~RequestFramer() = default;

void RequestFramer::Reset() {
  scan_from_ = 0;
  skipped_crlfs_ = 0;
  head_parsed_ = false;
  head_ = wire::RequestHead();
  parser_.reset();
  chunked_.reset();
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
    return fail(413, kBodyTooLarge);
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
    return ec == http::error::body_limit ? fail(413, kBodyTooLarge)
                                         : fail(400, "malformed request head");
  }
  step.consumed += head_size;
  scan_from_ = 0;
  if (head_.chunked) {
    // Beast has vetted the head; the chunked body is framed by our decoder.
    parser_.reset();
    chunked_ =
        std::make_unique<ChunkedDecoder>(max_body_bytes_, max_header_bytes_);
    step.state = State::kHeadDone;
    return step;
  }
  parser.eager(true);
  if (parser.is_done()) {
    step.state = State::kComplete;
    return step;
  }
  step.state = State::kHeadDone;
  return step;
}

RequestFramer::Step RequestFramer::ReadBody(absl::string_view data) {
  if (chunked_ != nullptr) return chunked_->Read(data);
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
      step.message =
          ec == http::error::body_limit ? kBodyTooLarge : kBadFraming;
      return step;
    }
    if (used == 0) break;
  }
  if (parser.is_done()) {
    step.state = State::kComplete;
  } else if (data.size() - step.consumed > kMaxPendingBodyBytes) {
    step.state = State::kError;
    step.status = 400;
    step.message = kBadFraming;
  }
  return step;
}

std::string RequestFramer::TakeBody() {
  if (chunked_ != nullptr) {
    std::string body = chunked_->TakeBody();
    chunked_.reset();
    return body;
  }
  if (parser_ == nullptr) return std::string();
  std::string body = std::move(parser_->parser.get().body());
  parser_.reset();
  return body;
}

}  // namespace lumo::gateway::internal
