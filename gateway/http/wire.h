// HTTP/1.x wire format, strict: parsing of a request head (request line and
// header fields) and serialisation of a response. Stateless and thread-safe;
// no Boost, so it can be unit-tested and fuzzed on its own.
//
// The parser is deliberately stricter than RFC 9112 requires of a lenient
// recipient: anything that two parsers could read differently (the root of
// request smuggling and header injection) is rejected rather than repaired.
#ifndef LUMOKEYS_GATEWAY_HTTP_WIRE_H_
#define LUMOKEYS_GATEWAY_HTTP_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "gateway/http/http_message.h"

namespace lumo::gateway::wire {

// Longest request-target accepted; longer is 414.
inline constexpr size_t kMaxTargetBytes = 8 * 1024;
// Most header fields in one request; more is 431.
inline constexpr size_t kMaxHeaderFields = 100;
// Longest method token; longer is 400.
inline constexpr size_t kMaxMethodBytes = 32;

struct RequestHead {
  std::string method;
  std::string target;
  int version_minor = 1;  // HTTP/1.0 or HTTP/1.1
  HttpHeaders headers;    // names lower-cased, values trimmed of SP/HTAB
  std::optional<uint64_t> content_length;
  bool chunked = false;
  // False for HTTP/1.0 and for HTTP/1.1 with a "close" Connection option.
  bool keep_alive = true;
  bool expect_continue = false;  // "Expect: 100-continue" (HTTP/1.1 only)
};

// Outcome of ParseRequestHead: status 0 on success, else the HTTP status to
// answer with (400, 414, 431 or 505) and a short client-safe message.
struct HeadError {
  int status = 0;
  absl::string_view message;  // static storage
  bool ok() const { return status == 0; }
};

// Parses `head`, which must be exactly the request line and header fields
// including the terminating empty line ("...\r\n\r\n"), into `*out`.
//
// Rejected with 400: any line not ended by CRLF (bare CR or LF), NUL or other
// control bytes outside field values' HTAB, a malformed request line (single
// SP separators, token method, version HTTP/1.0|1.1), a request-target that is
// not origin-form ("/..." of visible ASCII), obs-fold (a line starting with SP
// or HTAB), whitespace before ':', a non-token field name, a field value with
// a byte < 0x20 other than HTAB or 0x7F, a Content-Length that is not a
// single plain decimal, more than one Content-Length, Transfer-Encoding other
// than exactly one "chunked" or together with Content-Length or in HTTP/1.0,
// an HTTP/1.1 request without exactly one Host (HTTP/1.0: at most one).
// 414: target longer than kMaxTargetBytes. 431: more than kMaxHeaderFields
// fields. 505: a well-formed HTTP version other than 1.0 or 1.1.
HeadError ParseRequestHead(absl::string_view head, RequestHead* out);

// The standard reason phrase, or "Unknown" for unregistered codes.
absl::string_view ReasonPhrase(int status);

// True if `name` is a non-empty RFC 9110 token.
bool IsToken(absl::string_view name);

// One RFC 9110 §5.6.2 tchar (the characters of a token).
bool IsTchar(char c);

// True if `value` holds no byte < 0x20 other than HTAB and no 0x7F.
bool IsSafeFieldValue(absl::string_view value);

// Serialises `response` as HTTP/1.1 into `*out` (replacing its contents):
// status line; the response's own fields except those the server owns
// (Content-Length, Transfer-Encoding, Connection, Keep-Alive, X-Request-Id)
// and unsafe ones (see IsToken/IsSafeFieldValue); each of `common_headers`
// whose name the response does not already carry; Content-Length (omitted,
// with the body, for 204 and 304 as RFC 9110 requires); X-Request-Id; and
// "Connection: close" if `close`; then the body, unless `head_request` (a
// response to HEAD keeps its Content-Length but sends no body). A status
// outside 200..599 is sent as 500.
void SerializeResponse(const HttpResponse& response,
                       absl::string_view request_id,
                       const HttpHeaders& common_headers, bool close,
                       bool head_request, std::string* out);

// The head of a response whose body is streamed (HttpResponse::stream), as
// SerializeResponse but with "Transfer-Encoding: chunked" when `chunked`
// (else no framing field: the body ends when the connection closes, so
// `close` must be set) instead of Content-Length, and without the body.
void SerializeStreamHead(const HttpResponse& response,
                         absl::string_view request_id,
                         const HttpHeaders& common_headers, bool close,
                         bool chunked, std::string* out);

// Appends `data` as one chunk (hex size, CRLF, data, CRLF); nothing for
// empty data. The last chunk is kLastChunk.
void AppendChunk(absl::string_view data, std::string* out);
inline constexpr absl::string_view kLastChunk = "0\r\n\r\n";

}  // namespace lumo::gateway::wire

#endif  // LUMOKEYS_GATEWAY_HTTP_WIRE_H_
