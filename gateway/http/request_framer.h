// Internal to lumo_gateway_http: turns the bytes a connection has received
// into one request (head + de-chunked body), applying the server's limits.
// It is the socket-free half of HttpServer's session, split out so that the
// exact parsing and limit code the server runs can be unit-tested and fuzzed
// on raw bytes (tests/fuzz/http_request_fuzzer.cc).
//
// The head is located (CRLFCRLF, at most two leading empty lines skipped as
// RFC 9112 §2.2 allows) and validated by wire::ParseRequestHead; the body is
// framed (Content-Length or chunked) by Boost.Beast's request parser, fed the
// already validated head. Errors map to HTTP statuses exactly as documented
// in http_server.h.
//
// Not thread-safe: one framer belongs to one connection.
#ifndef LUMOKEYS_GATEWAY_HTTP_REQUEST_FRAMER_H_
#define LUMOKEYS_GATEWAY_HTTP_REQUEST_FRAMER_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "gateway/http/wire.h"

namespace lumo::gateway::internal {

// Request line bytes beyond the target's limit tolerated before answering
// 414 while the line is still incomplete (method, spaces, version).
inline constexpr size_t kRequestLineSlack = 64;
// Unconsumed body bytes (an incomplete chunk-size line) tolerated.
inline constexpr size_t kMaxPendingBodyBytes = 64 * 1024;

class RequestFramer {
 public:
  enum class State {
    kNeedMore,  // give it more bytes (after dropping `consumed`)
    kHeadDone,  // head complete and valid; call ReadBody for the body
    kComplete,  // the whole request is in: head() and TakeBody()
    kError,     // answer `status` with `message`, then close
  };
  struct Step {
    State state = State::kNeedMore;
    // Bytes at the front of the input that belong to this request (or were
    // skipped); the caller drops them before the next call.
    size_t consumed = 0;
    int status = 0;             // kError: 400, 413, 414, 431 or 505
    absl::string_view message;  // kError: client-safe, static storage
  };

  RequestFramer(size_t max_header_bytes, size_t max_body_bytes);
  ~RequestFramer();
  RequestFramer(const RequestFramer&) = delete;
  RequestFramer& operator=(const RequestFramer&) = delete;

  // Forgets the current request (call before each new request).
  void Reset();

  // Phase 1. `data` is every buffered byte not yet consumed. Returns
  // kNeedMore, kError, kHeadDone (more body to come) or kComplete (a request
  // without body, or whose body was already in `data`: it is consumed).
  Step ReadHead(absl::string_view data);
  // Phase 2, after kHeadDone: the same contract for the body bytes.
  Step ReadBody(absl::string_view data);

  // True once ReadHead accepted a head (also when a later limit failed, so
  // that the error can carry the request's id and HEAD-ness).
  bool head_parsed() const { return head_parsed_; }
  wire::RequestHead& head() { return head_; }
  // The de-chunked body after kComplete (moved out).
  std::string TakeBody();

 private:
  struct BeastParser;

  const size_t max_header_bytes_;
  const size_t max_body_bytes_;
  size_t scan_from_ = 0;   // where to resume looking for the head's end
  int skipped_crlfs_ = 0;  // empty lines skipped before this request
  bool head_parsed_ = false;
  wire::RequestHead head_;
  std::unique_ptr<BeastParser> parser_;
};

}  // namespace lumo::gateway::internal

#endif  // LUMOKEYS_GATEWAY_HTTP_REQUEST_FRAMER_H_
