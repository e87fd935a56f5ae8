// Internal to lumo_gateway_http: turns the bytes a connection has received
// into one request (head + de-chunked body), applying the server's limits.
// It is the socket-free half of HttpServer's session, split out so that the
// exact parsing and limit code the server runs can be unit-tested and fuzzed
// on raw bytes (tests/fuzz/http_request_fuzzer.cc).
//
// The head is located (CRLFCRLF, at most two leading empty lines skipped as
// RFC 9112 §2.2 allows) and validated by wire::ParseRequestHead (and fed to
// Boost.Beast's request parser, which must accept it too). A Content-Length
// body is framed by that Beast parser; a chunked body by this framer's own
// decoder (see ReadBody), so that every chunked decision is made at a fixed
// byte of the stream. Errors map to HTTP statuses exactly as documented in
// http_server.h.
//
// Segmentation independence: for any byte stream, the state, status, error
// message and total bytes consumed that the framer ends in do not depend on
// how the stream was split across calls (tests/fuzz/http_request_fuzzer.cc
// checks this).
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
// Unconsumed body bytes tolerated (a safety net: the body framers consume
// every byte they are given).
inline constexpr size_t kMaxPendingBodyBytes = 64 * 1024;
// Longest chunk-size line (chunk size, extensions and CRLF) of a chunked
// body; longer is 400.
inline constexpr size_t kMaxChunkLineBytes = 1024;

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
  //
  // A chunked body (RFC 9112 §7.1) is decoded one framing byte at a time and
  // every byte given is consumed, up to the end of the request; nothing is
  // re-scanned, so each decision below is made at one fixed byte whatever
  // the segmentation:
  //   400 "malformed request body framing" at the first byte that cannot
  //       continue a valid body: a chunk size that is not 1*HEXDIG, a chunk
  //       extension that is not *( BWS ";" BWS token [ BWS "=" BWS ( token /
  //       quoted-string ) ] ), a line not ended by CRLF, chunk data not
  //       followed by CRLF, a trailer field line that is not token ":" and a
  //       value without control bytes (HTAB allowed); also the byte that
  //       makes a chunk-size line longer than kMaxChunkLineBytes;
  //   413 "request body too large" at the LF of a chunk-size line whose size
  //       would take the body over max_body_bytes (before any of its data;
  //       a size beyond 64 bits counts as over);
  //   431 "request trailers too large" at the byte that makes the trailer
  //       section (with its final CRLF) longer than max_header_bytes.
  // On kError, `consumed` excludes the deciding byte. Trailer fields are
  // validated and dropped.
  Step ReadBody(absl::string_view data);

  // True once ReadHead accepted a head (also when a later limit failed, so
  // that the error can carry the request's id and HEAD-ness).
  bool head_parsed() const { return head_parsed_; }
  wire::RequestHead& head() { return head_; }
  // The de-chunked body after kComplete (moved out).
  std::string TakeBody();

 private:
  struct BeastParser;
  class ChunkedDecoder;

  const size_t max_header_bytes_;
  const size_t max_body_bytes_;
  size_t scan_from_ = 0;   // where to resume looking for the head's end
  int skipped_crlfs_ = 0;  // empty lines skipped before this request
  bool head_parsed_ = false;
  wire::RequestHead head_;
  std::unique_ptr<BeastParser> parser_;      // Content-Length bodies
  std::unique_ptr<ChunkedDecoder> chunked_;  // chunked bodies
};

}  // namespace lumo::gateway::internal

#endif  // LUMOKEYS_GATEWAY_HTTP_REQUEST_FRAMER_H_
