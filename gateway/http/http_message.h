// The request and response types the HTTP server hands to its handler, plus
// request-id helpers and the default rendering of the server's own errors.
// Nothing here depends on Boost.
#ifndef LUMOKEYS_GATEWAY_HTTP_HTTP_MESSAGE_H_
#define LUMOKEYS_GATEWAY_HTTP_HTTP_MESSAGE_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace lumo::gateway {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// A complete, validated HTTP/1.x request. Plain value type.
struct HttpRequest {
  std::string method;  // as sent (case-sensitive token), e.g. "GET"
  std::string target;  // raw origin-form request-target, e.g. "/a/b?c=1"
  std::string path;    // target before the first '?', still percent-encoded
  std::string query;   // after the first '?', raw; empty if none
  // In arrival order, repeated fields kept; names lower-cased, values with
  // surrounding spaces/tabs removed.
  HttpHeaders headers;
  std::string body;  // de-chunked
  std::string remote_ip;
  // The client's X-Request-Id when exactly one was sent and it passes
  // IsSafeRequestId, otherwise a new NewRequestId().
  std::string request_id;
  int version_minor = 1;  // HTTP/1.<version_minor>

  // First value of the header `lower_name` (must be lower-case), or nullptr.
  // The pointer is valid until `headers` changes.
  const std::string* Header(absl::string_view lower_name) const;
  // Every value of `lower_name` in arrival order.
  std::vector<absl::string_view> Headers(absl::string_view lower_name) const;
};

// A response body made piece by piece (HttpResponse::stream), e.g. a large
// export read from the server while it is sent. Implementations must be
// thread-safe.
class BodyStream {
 public:
  // One piece of a streamed body.
  struct Piece {
    std::string data;  // sent as one chunk when not empty
    bool end = false;  // no piece follows
    // With `end`: false when the body is cut short (an error after the
    // status line was sent). The server then closes the connection without
    // the terminating chunk, so the client sees a truncated transfer rather
    // than a complete-looking short body.
    bool complete = true;
  };
  virtual ~BodyStream() = default;
  // Asks for the next piece: `deliver` is called exactly once, from any
  // thread, now or later. The server asks again only after a piece was
  // delivered and written, and never after one with `end`.
  virtual void Next(std::function<void(Piece)> deliver) = 0;
  // The body will not be sent any further (the client went away, a write
  // timed out, the server stopped, or the response was dropped). Pieces
  // asked for and not yet delivered may still be delivered (they are
  // discarded). Idempotent; may be called after the end.
  virtual void Cancel() = 0;
};

struct HttpResponse {
  int status = 200;
  // Sent as given, except that the server owns Content-Length,
  // Transfer-Encoding, Connection and X-Request-Id (values given here are
  // ignored) and drops any field whose name is not a token or whose value
  // holds a control character (no response splitting).
  HttpHeaders headers;
  std::string body;
  // Set: the body is `body` followed by the stream's pieces, sent with
  // Transfer-Encoding: chunked (to HTTP/1.0 clients: without framing, and
  // the connection closes at its end). The server asks for the next piece
  // only when the previous one is written (its memory is one piece), and
  // cancels the stream when it stops sending it. Ignored (cancelled) for a
  // HEAD request and for 204 / 304.
  std::shared_ptr<BodyStream> stream;
};

// Delivers the response to one request. Call it at most once (later calls are
// ignored), from any thread, at any time: after the request timed out or the
// server shut down the response is dropped. Copies share one state.
// Called on a thread other than the one running the handler, it may write
// the response to the client before it returns (one non-blocking send; it
// never waits for the client) and prepare the connection's next read; on
// the handler's own thread the response is written once the handler
// returns.
using Responder = std::function<void(HttpResponse)>;

// Invoked on a server I/O thread with each complete request. It must not
// block for long; it may call `respond` before returning or later from any
// thread. An exception escaping it is answered with a 500.
using Handler = std::function<void(HttpRequest request, Responder respond)>;

// Renders an error the server produces itself (400, 408, 413, 414, 431, 500,
// 503, 505). `code` is a stable snake_case identifier, `message` a short
// client-safe sentence without request data. Must be thread-safe.
using ErrorRenderer = std::function<HttpResponse(
    int status, absl::string_view code, absl::string_view message,
    absl::string_view request_id)>;

// 22 characters of base62 from the OS CSPRNG (about 131 bits). Thread-safe.
std::string NewRequestId();

// True for 1..128 characters of [A-Za-z0-9._-]: safe to echo in headers,
// logs and JSON without escaping.
bool IsSafeRequestId(absl::string_view id);

// The stable error code for a status the server produces itself, e.g. 413 ->
// "payload_too_large"; "error" for statuses it never produces.
absl::string_view ErrorCodeForStatus(int status);

// {"error":true,"status":<status>,"code":"<code>","message":"<message>"} with
// Content-Type application/json (the product's error envelope). The request
// id travels in the X-Request-Id header, not the body.
HttpResponse DefaultErrorRenderer(int status, absl::string_view code,
                                  absl::string_view message,
                                  absl::string_view request_id);

// `s` as a JSON string literal, quotes included (log::AppendJsonString:
// escapes '"', '\\' and control bytes; invalid UTF-8 becomes U+FFFD).
std::string JsonQuote(absl::string_view s);

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_HTTP_HTTP_MESSAGE_H_
