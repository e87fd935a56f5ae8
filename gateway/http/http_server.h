// A small, hardened HTTP/1.1 server (Boost.Beast's parser for Content-Length
// framing, its own for chunked, over Boost.Asio) that hands complete
// requests to a Handler. It knows nothing about what it serves. Boost stays
// out of this header.
//
// Per connection: requests are read and answered one at a time (keep-alive
// for HTTP/1.1 unless "Connection: close"; HTTP/1.0 closes after one
// response; requests sent ahead are answered in order). "Expect:
// 100-continue" gets an interim 100 once the head is accepted. The server
// answers itself, with `error_renderer`'s body, and closes the connection,
// when a request is:
//   400  malformed (see wire::ParseRequestHead; also bad chunked framing,
//        including a chunk-size line over 1 KiB: RequestFramer::ReadBody)
//   408  not fully received within request_timeout of its first byte (of
//        the accept, for a connection's first request); a connection that
//        sent nothing is closed without a response
//   413  declaring a Content-Length above max_body_bytes (answered from the
//        head, before any body byte is read or 100 is sent) or chunked past
//        it (answered at the end of the first chunk-size line that goes
//        over, before its data)
//   414  with a request-target over 8 KiB
//   431  with a head over max_header_bytes or over 100 header fields, or
//        chunked trailer fields over max_header_bytes
//   503  not answered by the handler within request_timeout of its first
//        byte (a later response is dropped), or arriving over
//        max_connections (accepted, answered, closed)
//   505  of an HTTP version other than 1.0/1.1
// With TLS files set, every connection first completes a TLS handshake
// (within request_timeout, else it is closed).
//   500  if the handler throws or answers with a status outside 200..599
// Every response carries Content-Length (except 204/304), X-Request-Id and
// common_headers; a response to HEAD carries no body. Before closing, the
// server half-closes and discards further input (at most 1 s / 1 MiB) so
// that the client reads the response instead of a connection reset.
#ifndef LUMOKEYS_GATEWAY_HTTP_HTTP_SERVER_H_
#define LUMOKEYS_GATEWAY_HTTP_HTTP_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gateway/http/http_message.h"

namespace lumo::gateway {
namespace internal {
class HttpServerCore;
}  // namespace internal

struct HttpServerOptions {
  std::string address = "127.0.0.1";  // an IPv4 or IPv6 literal
  int port = 8080;                    // 0: the OS picks; see bound_port()
  int threads = 0;  // I/O threads; 0: std::thread::hardware_concurrency()
  size_t max_header_bytes = 16 * 1024;  // request line + fields; over: 431
  size_t max_body_bytes = 1024 * 1024;  // over: 413
  // From the first byte of a request to its response being ready: reading
  // the head and body, and the handler.
  absl::Duration request_timeout = absl::Seconds(30);
  // How long a keep-alive connection may wait for its next request.
  absl::Duration idle_timeout = absl::Seconds(60);
  size_t max_connections = 10000;
  // Renders the server's own errors; empty: DefaultErrorRenderer.
  ErrorRenderer error_renderer;
  // Added to every response, the server's own errors included, unless the
  // handler's response already has a field of that name.
  HttpHeaders common_headers;
  // HTTPS: PEM certificate chain and unencrypted PEM key; both empty: plain
  // HTTP. TLS 1.2 or later; the server then speaks only TLS on its port.
  std::string tls_cert_file;
  std::string tls_key_file;
};

// Thread-safe. Start() at most once; Shutdown() (also run by the destructor)
// must not be called from a handler or an I/O thread. Responders may outlive
// the server: their responses are then dropped.
//
// Threads: each I/O thread runs an event loop of its own, and each
// connection belongs to one of them (dealt in turn as they are accepted),
// so an I/O thread never wakes another to share its work; handlers run on
// the connection's I/O thread. A Responder called on another
// thread writes a plain-HTTP response from that thread when the socket takes
// it at once (the common case), then arms the connection's next read
// there too, so that a response produced by, say, an upstream call's
// completion costs no hand-off to an I/O thread; the rest of a response the
// socket did not take, streamed bodies, TLS and request bytes already
// received (pipelining) continue on the I/O threads. Either way, responses
// on one connection are written in request order (the next request is read
// only once the previous response is written).
class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Handler handler);
  ~HttpServer();

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds (SO_REUSEADDR, no SO_REUSEPORT), listens and starts the I/O
  // threads. INVALID_ARGUMENT for an address that is not an IP literal or a
  // port outside 0..65535; UNAVAILABLE, naming the address, if it cannot
  // bind or listen; FAILED_PRECONDITION if already started.
  absl::Status Start();

  // Re-reads the TLS files: connections accepted afterwards use them,
  // established ones keep theirs. INVALID_ARGUMENT naming the file (and
  // nothing changes) when one cannot be loaded. A no-op without TLS.
  absl::Status ReloadTls();

  // The listening port once started (useful with port 0), else 0.
  int bound_port() const;

  // Stops accepting (new connections are refused) and closes idle
  // connections at once; requests in flight continue and their responses
  // are written with "Connection: close". After `grace`, every remaining
  // connection is closed. Returns when all I/O threads have exited.
  // Idempotent; a no-op if never started.
  void Shutdown(absl::Duration grace);

  // Connections currently open, excluding ones being turned away over
  // max_connections.
  size_t open_connections() const;
  // Responses completely written (handler answers and the server's own
  // errors, excluding turned-away connections).
  uint64_t requests_served() const;

 private:
  // Shared with every connection, so that a connection kept alive by a
  // Responder never outlives the io_context its socket belongs to.
  std::shared_ptr<internal::HttpServerCore> core_;
};

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_HTTP_HTTP_SERVER_H_
