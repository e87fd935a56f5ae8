// The only translation unit that includes Boost.Asio/Beast.
//
// Design: N I/O threads, each running an io_context of its own (concurrency
// hint 1: a thread never wakes another to share its work); connections are
// dealt to them in turn as they are accepted, and the acceptor lives on the
// first. Each connection (Session) owns a socket and a timer on its
// thread's io_context, and a mutex that every entry into the session holds
// (its completion handlers, and Responders called from other threads).
// Completions run on the session's one I/O thread, so the mutex is
// contended only when a Responder answers while that thread is busy with
// the session. A Responder called on another thread (typically the thread
// that completed the upstream call) writes the response itself, on that
// thread, with a non-blocking send, and arms the read of the next request:
// a forwarded request then costs no hand-off back to an I/O thread
// (docs/gateway.md, "Threads"). A response that does not fit the socket at
// once, a streamed one and any over TLS go through the I/O thread as before.
// A request's head is located and
// validated by wire::ParseRequestHead (stricter than Beast, which for
// instance accepts obs-fold and ignores unknown Transfer-Encodings) and then
// fed to Beast's request parser, which frames a Content-Length body; a
// chunked body is decoded by RequestFramer's own decoder (so that its
// outcome does not depend on how the bytes arrive). Both live in
// RequestFramer (request_framer.h), which holds no socket so it can be
// fuzzed.
#include "gateway/http/http_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gateway/http/request_framer.h"
#include "gateway/http/wire.h"

namespace lumo::gateway {
namespace internal {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

// Bytes asked of the socket per read, while reading a head (and idle) and
// while reading a body. Between requests a connection keeps at most
// kMaxIdleBuffer bytes of buffers.
constexpr size_t kHeadReadSize = 4 * 1024;
constexpr size_t kBodyReadSize = 16 * 1024;
constexpr size_t kMaxIdleBuffer = 8 * 1024;
// Before closing after an error, the rest of the client's input is read and
// discarded for at most this long / this much, so that the kernel does not
// reset the connection (and destroy our response) because of unread data.
constexpr absl::Duration kMaxLinger = absl::Seconds(1);
constexpr size_t kMaxLingerBytes = 1024 * 1024;
// Connections being turned away over max_connections at once; beyond it they
// are closed without a response.
constexpr size_t kMaxTurningAway = 256;

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  d = std::clamp(d, absl::Milliseconds(1), absl::Hours(24 * 365));
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

std::string AddressText(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6())
        .to_string();
  }
  return address.to_string();
}

}  // namespace

class Session;

// State shared by the server object, its I/O threads and every Session.
// Thread-safe.
class HttpServerCore : public std::enable_shared_from_this<HttpServerCore> {
 public:
  HttpServerCore(HttpServerOptions options, Handler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        iocs_(MakeContexts(options_)),
        acceptor_(*iocs_.front()),
        retry_timer_(*iocs_.front()) {
    if (!options_.error_renderer)
      options_.error_renderer = DefaultErrorRenderer;
  }

  absl::Status Start();
  void Shutdown(absl::Duration grace);

  int bound_port() const { return bound_port_.load(); }
  size_t open_connections() const {
    absl::MutexLock lock(&mu_);
    return counted_connections_;
  }
  uint64_t requests_served() const { return requests_served_.load(); }

  // TLS (HTTPS): the context new connections use, null when serving plain
  // HTTP. ReloadTls swaps it; connections keep the one they started with.
  absl::Status ReloadTls();
  std::shared_ptr<asio::ssl::context> tls_context() const {
    absl::MutexLock lock(&tls_mu_);
    return tls_context_;
  }

  // For sessions.
  const HttpServerOptions& options() const { return options_; }
  const Handler& handler() const { return handler_; }
  bool draining() const { return draining_.load(); }
  void CountServed() { requests_served_.fetch_add(1); }
  void Unregister(uint64_t id, bool counted);
  // Posts `fn` to `executor` unless the server has stopped for good (its I/O
  // threads are gone); then `fn` is destroyed unrun.
  template <typename Executor, typename Fn>
  void PostUnlessStopped(const Executor& executor, Fn&& fn) {
    absl::ReaderMutexLock lock(&post_mu_);
    if (stopped_) return;
    asio::post(executor, std::forward<Fn>(fn));
  }
  // The server's own error response; never throws.
  HttpResponse RenderError(int status, absl::string_view message,
                           absl::string_view request_id) const;

 private:
  // One io_context per I/O thread (HttpServerOptions::threads).
  static std::vector<std::unique_ptr<asio::io_context>> MakeContexts(
      const HttpServerOptions& options);
  void DoAccept();
  void OnAccept(error_code ec, tcp::socket socket);
  // Snapshot of the live sessions.
  std::vector<std::shared_ptr<Session>> LiveSessions();

  HttpServerOptions options_;
  const Handler handler_;
  // Thread i runs iocs_[i]; the acceptor and its timer are on iocs_[0]'s
  // thread, so they need no lock.
  const std::vector<std::unique_ptr<asio::io_context>> iocs_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;  // re-accept after an accept error
  size_t next_context_ = 0;         // the acceptor's: where the next goes
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::atomic<int> bound_port_{0};
  std::atomic<bool> draining_{false};
  std::atomic<uint64_t> requests_served_{0};

  absl::Mutex lifecycle_mu_;
  bool started_ ABSL_GUARDED_BY(lifecycle_mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(lifecycle_mu_) = false;

  mutable absl::Mutex mu_;
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_session_id_ ABSL_GUARDED_BY(mu_) = 1;
  size_t counted_connections_ ABSL_GUARDED_BY(mu_) = 0;
  size_t turning_away_ ABSL_GUARDED_BY(mu_) = 0;

  mutable absl::Mutex tls_mu_;
  std::shared_ptr<asio::ssl::context> tls_context_ ABSL_GUARDED_BY(tls_mu_);

  // Held shared to post to a session's thread, exclusively to set stopped_.
  absl::Mutex post_mu_;
  bool stopped_ ABSL_GUARDED_BY(post_mu_) = false;
};

// One TCP connection. Thread-safety: every member function except the
// constructor, the destructor, executor() and the Start*/Drain/ForceClose/
// Deliver entry points requires mu_; those entry points take it. Asio
// completions run on the session's I/O thread (socket_'s executor, an
// io_context run by that thread alone) and take mu_ first; Deliver takes it
// on the caller's thread. While the handler runs
// (Dispatch), mu_ is released so that a Responder may be called from any
// thread, the dispatching one included.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<HttpServerCore> core, tcp::socket socket, uint64_t id,
          bool counted)
      : core_(std::move(core)),
        options_(core_->options()),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        id_(id),
        counted_(counted),
        tls_context_(core_->tls_context()) {
    if (tls_context_ != nullptr) {
      tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_,
                                                               *tls_context_);
    }
  }

  ~Session() {
    if (phase_ != Phase::kClosed) core_->Unregister(id_, counted_);
  }

  const tcp::socket::executor_type& executor() { return executor_; }

  // Serves requests until the connection closes.
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  // Answers 503 and closes (over max_connections).
  void StartTurnAway() ABSL_LOCKS_EXCLUDED(mu_);
  // Closes the connection if it is waiting for a request.
  void Drain() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (phase_ == Phase::kIdle) Close();
  }
  void ForceClose() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    Close();
  }
  // The handler's response to request number `seq`. Any thread: on the
  // thread that is running the handler it is kept until the handler
  // returns; on another thread the response is written from that thread
  // when it can be (see the file comment), else through the I/O thread.
  void Deliver(uint64_t seq, HttpResponse response) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  enum class Phase {
    kIdle,      // waiting for the first byte of a request
    kHead,      // reading the request head
    kBody,      // reading the body
    kContinue,  // writing "100 Continue"
    kHandler,   // waiting for the handler's response
    kWrite,     // writing a response
    kStream,    // writing a streamed body (HttpResponse::stream)
    kLinger,    // response sent; discarding input until EOF, then close
    kClosed,
  };

  // `inline_io`: called by Deliver on a thread that is not the session's
  // I/O thread; request bytes already buffered are then handled on the I/O
  // thread (so the handler always runs there).
  void BeginRequest(bool inline_io = false);
  // Reads more input unless a read is pending; OnRead gets it.
  void Read();
  void OnRead(error_code ec, size_t n);
  void OnBytes();
  void TryHead();
  void FeedBody();
  void WriteContinue();
  void Dispatch();
  // `inline_io`: see Write.
  void OnResponse(uint64_t seq, HttpResponse response, bool inline_io);
  // Answers with the server's own error and closes afterwards.
  void Fail(int status, absl::string_view message);
  // `inline_io` (plain HTTP only): first tries one non-blocking send on the
  // calling thread, and when it takes the whole response goes on from there
  // without a completion handler; the rest, if any, is written
  // asynchronously.
  void Write(const HttpResponse& response, bool inline_io = false);
  void OnWrite(error_code ec);
  // The response is written: the next request, or linger and close.
  void AfterWrite(bool inline_io);
  // A streamed body: writes the head and `response.body`, then asks the
  // stream for one piece at a time, writing each before asking again.
  void WriteStream(HttpResponse response);
  void OnStreamWrite(error_code ec);
  void AskForPiece();
  void OnPiece(uint64_t token, BodyStream::Piece piece);
  // Cancels and forgets the stream being sent, if any.
  void DropStream();
  void Linger();
  // The current phase must end within `after` (OnTimeout otherwise). The
  // timer's wait is restarted only when the new deadline is earlier than
  // the wait's: a later one is picked up when the wait completes. So moving
  // a deadline later (as every request does) cancels nothing, and posts no
  // cancelled completion to the I/O threads.
  void ArmTimer(absl::Duration after);
  void StartTimerWait();
  void OnTimeout();
  void Close();
  // TLS: the handshake, then `next` (on the I/O thread); closes on failure.
  template <typename Next>
  void Handshake(Next next);
  // Reads / writes through TLS when the connection has it.
  template <typename Buffers, typename Fn>
  void AsyncReadSome(const Buffers& buffers, Fn&& fn) {
    if (tls_ != nullptr) {
      tls_->async_read_some(buffers, std::forward<Fn>(fn));
    } else {
      socket_.async_read_some(buffers, std::forward<Fn>(fn));
    }
  }
  template <typename Buffers, typename Fn>
  void AsyncWrite(const Buffers& buffers, Fn&& fn) {
    if (tls_ != nullptr) {
      asio::async_write(*tls_, buffers, std::forward<Fn>(fn));
    } else {
      asio::async_write(socket_, buffers, std::forward<Fn>(fn));
    }
  }

  const std::shared_ptr<HttpServerCore> core_;  // first: destroyed last
  const HttpServerOptions& options_;            // owned by core_
  // Held by every entry into the session; guards everything below that is
  // not const (annotated loosely: Dispatch releases it around the handler).
  absl::Mutex mu_;
  tcp::socket socket_;
  const tcp::socket::executor_type executor_ = socket_.get_executor();
  asio::steady_timer timer_;
  const uint64_t id_;
  const bool counted_;

  Phase phase_ = Phase::kIdle;
  beast::flat_buffer buffer_;
  bool first_request_ = true;
  bool clock_started_ = false;  // request_timeout armed for this request
  bool read_pending_ = false;
  bool close_after_write_ = false;
  bool head_request_ = false;  // the response gets no body
  bool http10_ = false;        // the request was HTTP/1.0
  // The streamed body being sent; `stream_token_` tells its pieces from a
  // dropped stream's; `stream_ended_` once the last write is under way.
  std::shared_ptr<BodyStream> stream_;
  uint64_t stream_token_ = 0;
  bool stream_ended_ = false;
  uint64_t seq_ = 0;        // number of the request being served
  uint64_t timer_gen_ = 0;  // stale timer completions are ignored
  // When the current phase must end; timer_'s outstanding wait (if
  // timer_waiting_) expires at or before it.
  std::chrono::steady_clock::time_point deadline_;
  bool timer_waiting_ = false;
  // While the handler runs: the thread running it, and a response it gave
  // before returning (written once it has returned).
  bool dispatching_ = false;
  std::thread::id dispatch_thread_;
  std::optional<std::pair<uint64_t, HttpResponse>> held_;
  size_t lingered_bytes_ = 0;
  std::string remote_ip_;
  std::string request_id_;
  RequestFramer framer_{options_.max_header_bytes, options_.max_body_bytes};
  std::string out_;
  // HTTPS only: the context this connection started with and the TLS
  // stream over socket_ (declared after it, so destroyed before it).
  const std::shared_ptr<asio::ssl::context> tls_context_;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
};

// ---------------------------------------------------------------------------
// Session

void Session::Start() {
  absl::MutexLock lock(&mu_);
  error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);
  // Synchronous sends (Write with inline_io, plain HTTP only) return
  // would_block rather than wait; asynchronous operations are unaffected.
  if (tls_ == nullptr) {
    socket_.non_blocking(true, ec);
    if (ec) {
      Close();
      return;
    }
  }
  const tcp::endpoint peer = socket_.remote_endpoint(ec);
  if (ec) {  // already reset by the peer
    Close();
    return;
  }
  remote_ip_ = AddressText(peer.address());
  if (tls_ != nullptr) {
    Handshake([this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {  // under mu_
      BeginRequest();
    });
  } else {
    BeginRequest();
  }
}

template <typename Next>
void Session::Handshake(Next next) {
  // The handshake gets request_timeout, like a first request.
  ArmTimer(options_.request_timeout);
  tls_->async_handshake(asio::ssl::stream_base::server,
                        [self = shared_from_this(), next](error_code ec) {
                          absl::MutexLock lock(&self->mu_);
                          if (self->phase_ == Phase::kClosed) return;
                          if (ec) {
                            self->Close();
                            return;
                          }
                          next();
                        });
}

void Session::StartTurnAway() {
  absl::MutexLock lock(&mu_);
  close_after_write_ = true;
  request_id_ = NewRequestId();
  auto answer = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {  // under mu_
    Write(core_->RenderError(503, "the server is at its connection limit",
                             request_id_));
  };
  if (tls_ != nullptr) {
    Handshake(answer);
  } else {
    answer();
  }
}

void Session::BeginRequest(bool inline_io) {
  if (core_->draining()) {
    Close();
    return;
  }
  phase_ = Phase::kIdle;
  framer_.Reset();
  request_id_.clear();
  close_after_write_ = false;
  head_request_ = false;
  if (buffer_.size() == 0 && buffer_.capacity() > kMaxIdleBuffer) {
    buffer_.shrink_to_fit();
  }
  if (out_.capacity() > kMaxIdleBuffer) std::string().swap(out_);
  if (first_request_) {
    // A new connection gets request_timeout from accept for its first
    // request, so that a silent connection cannot wait out idle_timeout too.
    first_request_ = false;
    clock_started_ = true;
    ArmTimer(options_.request_timeout);
  } else {
    clock_started_ = false;
    ArmTimer(options_.idle_timeout);
  }
  if (buffer_.size() == 0) {
    Read();
  } else if (!inline_io) {
    OnBytes();  // the client sent the next request early
  } else {
    // The same, on the I/O thread: the handler runs there.
    asio::post(executor_, [self = shared_from_this()] {
      absl::MutexLock lock(&self->mu_);
      if (self->phase_ == Phase::kIdle) self->OnBytes();
    });
  }
}

void Session::Read() {
  if (phase_ == Phase::kClosed || read_pending_) return;
  read_pending_ = true;
  // Small reads until the head is in, so that idle connections hold little.
  const size_t want = phase_ == Phase::kBody ? kBodyReadSize : kHeadReadSize;
  AsyncReadSome(buffer_.prepare(want),
                [self = shared_from_this()](error_code ec, size_t n) {
                  absl::MutexLock lock(&self->mu_);
                  self->OnRead(ec, n);
                });
}

void Session::OnRead(error_code ec, size_t n) {
  read_pending_ = false;
  switch (phase_) {
    case Phase::kIdle:
    case Phase::kHead:
    case Phase::kBody:
      break;
    case Phase::kLinger:
      if (ec == asio::error::operation_aborted) {
        Read();  // a read cancelled earlier; keep draining
        return;
      }
      lingered_bytes_ += n;
      if (ec || lingered_bytes_ > kMaxLingerBytes) {
        Close();
        return;
      }
      buffer_.consume(buffer_.size());
      Read();
      return;
    default:
      return;  // cancelled by a timeout that is answering already
  }
  if (ec) {
    // EOF or reset: nobody to answer. (A cancellation always comes with a
    // phase change, handled above.)
    Close();
    return;
  }
  buffer_.commit(n);
  OnBytes();
}

void Session::OnBytes() {
  if (phase_ == Phase::kIdle) {
    phase_ = Phase::kHead;
    if (!clock_started_) {
      clock_started_ = true;
      ArmTimer(options_.request_timeout);
    }
  }
  if (phase_ == Phase::kHead) {
    TryHead();
  } else if (phase_ == Phase::kBody) {
    FeedBody();
  }
}

void Session::TryHead() {
  const RequestFramer::Step step = framer_.ReadHead(absl::string_view(
      static_cast<const char*>(buffer_.data().data()), buffer_.size()));
  buffer_.consume(step.consumed);
  if (framer_.head_parsed()) {
    const wire::RequestHead& head = framer_.head();
    for (const auto& [name, value] : head.headers) {
      if (name != "x-request-id") continue;
      if (!request_id_.empty()) {  // more than one: trust neither
        request_id_.clear();
        break;
      }
      request_id_ = IsSafeRequestId(value) ? value : NewRequestId();
    }
    if (request_id_.empty()) request_id_ = NewRequestId();
    close_after_write_ = !head.keep_alive;
    head_request_ = head.method == "HEAD";
    http10_ = head.version_minor == 0;
  }
  switch (step.state) {
    case RequestFramer::State::kNeedMore:
      Read();
      return;
    case RequestFramer::State::kError:
      Fail(step.status, step.message);
      return;
    case RequestFramer::State::kComplete:
      Dispatch();
      return;
    case RequestFramer::State::kHeadDone:
      break;
  }
  phase_ = Phase::kBody;
  if (framer_.head().expect_continue && buffer_.size() == 0) {
    WriteContinue();
    return;
  }
  FeedBody();
}

void Session::FeedBody() {
  const RequestFramer::Step step = framer_.ReadBody(absl::string_view(
      static_cast<const char*>(buffer_.data().data()), buffer_.size()));
  buffer_.consume(step.consumed);
  switch (step.state) {
    case RequestFramer::State::kComplete:
      Dispatch();
      return;
    case RequestFramer::State::kError:
      Fail(step.status, step.message);
      return;
    default:
      Read();
      return;
  }
}

void Session::WriteContinue() {
  phase_ = Phase::kContinue;
  out_ = "HTTP/1.1 100 Continue\r\n\r\n";
  AsyncWrite(asio::buffer(out_),
             [self = shared_from_this()](error_code ec, size_t) {
               absl::MutexLock lock(&self->mu_);
               if (self->phase_ != Phase::kContinue) return;
               if (ec) {
                 self->Close();
                 return;
               }
               self->phase_ = Phase::kBody;
               self->FeedBody();
             });
}

// The Responder's shared state: keeps the session alive and lets only the
// first call through.
struct ResponderState {
  std::shared_ptr<Session> session;
  uint64_t seq;
  std::atomic<bool> used{false};
};

void Session::Dispatch() {
  phase_ = Phase::kHandler;
  const uint64_t seq = ++seq_;

  HttpRequest request;
  wire::RequestHead& head = framer_.head();
  request.method = std::move(head.method);
  request.target = std::move(head.target);
  const size_t q = request.target.find('?');
  request.path = request.target.substr(0, q);
  if (q != std::string::npos) request.query = request.target.substr(q + 1);
  request.headers = std::move(head.headers);
  request.body = framer_.TakeBody();
  request.remote_ip = remote_ip_;
  request.request_id = request_id_;
  request.version_minor = head.version_minor;

  auto state = std::make_shared<ResponderState>();
  state->session = shared_from_this();
  state->seq = seq;
  Responder respond = [state](HttpResponse response) {
    if (state->used.exchange(true)) return;
    state->session->Deliver(state->seq, std::move(response));
  };
  // The handler runs without mu_, so that its Responder may be called on
  // any thread (this one included: Deliver keeps that response in held_).
  // Meanwhile the session is in kHandler: nothing but a timeout, a close or
  // that response changes it.
  dispatching_ = true;
  dispatch_thread_ = std::this_thread::get_id();
  bool threw = false;
  mu_.Unlock();
  try {
    core_->handler()(std::move(request), respond);
  } catch (...) {
    threw = true;
  }
  mu_.Lock();
  dispatching_ = false;
  if (threw && !state->used.exchange(true)) {
    held_.emplace(seq, core_->RenderError(500, "internal error", request_id_));
  }
  if (held_.has_value()) {
    std::pair<uint64_t, HttpResponse> held = *std::move(held_);
    held_.reset();
    OnResponse(held.first, std::move(held.second), /*inline_io=*/false);
  }
}

void Session::Deliver(uint64_t seq, HttpResponse response) {
  {
    absl::MutexLock lock(&mu_);
    if (dispatching_ && dispatch_thread_ == std::this_thread::get_id()) {
      held_.emplace(seq, std::move(response));  // Dispatch writes it
      return;
    }
    // Written from this thread: plain HTTP, no stream (a stream's pieces
    // go through the I/O thread anyway). Safe while the server shuts down: its
    // I/O threads stop only once every session is closed, and a closed one
    // only drops the response.
    if (tls_ == nullptr && response.stream == nullptr) {
      OnResponse(seq, std::move(response), /*inline_io=*/true);
      return;
    }
  }
  core_->PostUnlessStopped(executor_,
                           [self = shared_from_this(), seq,
                            response = std::move(response)]() mutable {
                             absl::MutexLock lock(&self->mu_);
                             self->OnResponse(seq, std::move(response),
                                              /*inline_io=*/false);
                           });
}

void Session::OnResponse(uint64_t seq, HttpResponse response, bool inline_io) {
  if (phase_ != Phase::kHandler || seq != seq_) {  // late or closed
    if (response.stream != nullptr) response.stream->Cancel();
    return;
  }
  if (response.status < 200 || response.status > 599) {
    if (response.stream != nullptr) response.stream->Cancel();
    response = core_->RenderError(500, "internal error", request_id_);
  }
  if (response.stream != nullptr) {
    if (head_request_ || response.status == 204 || response.status == 304) {
      response.stream->Cancel();
      response.stream.reset();
    } else {
      WriteStream(std::move(response));
      return;
    }
  }
  Write(response, inline_io);
}

void Session::WriteStream(HttpResponse response) {
  phase_ = Phase::kStream;
  stream_ = std::move(response.stream);
  ++stream_token_;
  stream_ended_ = false;
  // HTTP/1.0 has no chunked coding: the body ends with the connection.
  close_after_write_ = close_after_write_ || core_->draining() || http10_;
  wire::SerializeStreamHead(response, request_id_, options_.common_headers,
                            close_after_write_, !http10_, &out_);
  if (http10_) {
    out_ += response.body;
  } else {
    wire::AppendChunk(response.body, &out_);
  }
  ArmTimer(options_.request_timeout);
  AsyncWrite(asio::buffer(out_),
             [self = shared_from_this()](error_code ec, size_t) {
               absl::MutexLock lock(&self->mu_);
               self->OnStreamWrite(ec);
             });
}

void Session::OnStreamWrite(error_code ec) {
  if (phase_ != Phase::kStream) return;
  if (ec) {
    Close();  // the client went away: Close cancels the stream
    return;
  }
  if (!stream_ended_) {
    AskForPiece();
    return;
  }
  stream_.reset();
  if (counted_) core_->CountServed();
  if (close_after_write_) {
    Linger();
  } else {
    BeginRequest();
  }
}

void Session::AskForPiece() {
  // The next piece must come within request_timeout, like a response.
  ArmTimer(options_.request_timeout);
  std::weak_ptr<Session> weak = shared_from_this();
  std::shared_ptr<HttpServerCore> core = core_;
  const auto executor = executor_;
  const uint64_t token = stream_token_;
  stream_->Next([weak, core, executor, token](BodyStream::Piece piece) {
    std::shared_ptr<Session> self = weak.lock();
    if (self == nullptr) return;
    core->PostUnlessStopped(executor,
                            [self, token, piece = std::move(piece)]() mutable {
                              absl::MutexLock lock(&self->mu_);
                              self->OnPiece(token, std::move(piece));
                            });
  });
}

void Session::OnPiece(uint64_t token, BodyStream::Piece piece) {
  if (phase_ != Phase::kStream || token != stream_token_ || stream_ended_) {
    return;
  }
  out_.clear();
  if (piece.end && !piece.complete) {
    // Cut short: no terminating chunk, so the client cannot take the body
    // for a complete one.
    stream_.reset();
    Close();
    return;
  }
  if (http10_) {
    out_ = std::move(piece.data);
  } else {
    wire::AppendChunk(piece.data, &out_);
    if (piece.end)
      out_.append(wire::kLastChunk.data(), wire::kLastChunk.size());
  }
  if (piece.end) stream_ended_ = true;
  if (out_.empty()) {
    if (stream_ended_) {
      OnStreamWrite(error_code());
    } else {
      AskForPiece();
    }
    return;
  }
  ArmTimer(options_.request_timeout);
  AsyncWrite(asio::buffer(out_),
             [self = shared_from_this()](error_code ec, size_t) {
               absl::MutexLock lock(&self->mu_);
               self->OnStreamWrite(ec);
             });
}

void Session::DropStream() {
  if (stream_ == nullptr) return;
  std::shared_ptr<BodyStream> stream = std::move(stream_);
  stream_.reset();
  stream->Cancel();
}

void Session::Fail(int status, absl::string_view message) {
  close_after_write_ = true;
  if (request_id_.empty()) request_id_ = NewRequestId();
  Write(core_->RenderError(status, message, request_id_));
}

void Session::Write(const HttpResponse& response, bool inline_io) {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kWrite;
  close_after_write_ = close_after_write_ || core_->draining();
  wire::SerializeResponse(response, request_id_, options_.common_headers,
                          close_after_write_, head_request_, &out_);
  ArmTimer(options_.request_timeout);
  size_t sent = 0;
  if (inline_io && tls_ == nullptr) {
    error_code ec;
    sent = socket_.write_some(asio::buffer(out_), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again ||
        ec == asio::error::interrupted) {
      sent = 0;  // nothing sent (a signal came first): send asynchronously
    } else if (ec) {
      Close();  // the client went away
      return;
    } else if (sent == out_.size()) {
      AfterWrite(/*inline_io=*/true);
      return;
    }
  }
  AsyncWrite(asio::buffer(out_) + sent,
             [self = shared_from_this()](error_code ec, size_t) {
               absl::MutexLock lock(&self->mu_);
               self->OnWrite(ec);
             });
}

void Session::OnWrite(error_code ec) {
  if (phase_ != Phase::kWrite) return;
  if (ec) {
    Close();
    return;
  }
  AfterWrite(/*inline_io=*/false);
}

void Session::AfterWrite(bool inline_io) {
  if (counted_) core_->CountServed();
  if (close_after_write_) {
    Linger();
  } else {
    BeginRequest(inline_io);
  }
}

void Session::Linger() {
  phase_ = Phase::kLinger;
  lingered_bytes_ = 0;
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) {
    Close();
    return;
  }
  ArmTimer(std::min(kMaxLinger, options_.request_timeout));
  buffer_.consume(buffer_.size());
  Read();  // no-op if a cancelled read is still to complete
}

void Session::ArmTimer(absl::Duration after) {
  deadline_ = std::chrono::steady_clock::now() + ToChrono(after);
  if (timer_waiting_ && timer_.expiry() <= deadline_) return;
  StartTimerWait();
}

void Session::StartTimerWait() {
  // Replaces (cancels) an outstanding wait, whose completion is then stale.
  timer_.expires_at(deadline_);
  timer_waiting_ = true;
  timer_.async_wait(
      [self = shared_from_this(), gen = ++timer_gen_](error_code ec) {
        absl::MutexLock lock(&self->mu_);
        if (gen != self->timer_gen_) return;
        self->timer_waiting_ = false;
        if (ec || self->phase_ == Phase::kClosed) return;
        if (std::chrono::steady_clock::now() < self->deadline_) {
          self->StartTimerWait();  // the deadline moved later meanwhile
          return;
        }
        self->OnTimeout();
      });
}

void Session::OnTimeout() {
  switch (phase_) {
    case Phase::kHead:
    case Phase::kBody: {
      error_code ignored;
      socket_.cancel(ignored);
      Fail(408, "request not received in time");
      return;
    }
    case Phase::kHandler:
      ++seq_;  // the handler's response, if it ever comes, is dropped
      Fail(503, "the request timed out");
      return;
    case Phase::kClosed:
      return;
    default:  // idle, or a write/drain that did not finish in time
      Close();
      return;
  }
}

void Session::Close() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  DropStream();
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  timer_.cancel();
  ++timer_gen_;
  timer_waiting_ = false;
  framer_.Reset();
  buffer_.clear();
  buffer_.shrink_to_fit();
  std::string().swap(out_);
  core_->Unregister(id_, counted_);
}

// ---------------------------------------------------------------------------
// HttpServerCore

HttpResponse HttpServerCore::RenderError(int status, absl::string_view message,
                                         absl::string_view request_id) const {
  const absl::string_view code = ErrorCodeForStatus(status);
  try {
    HttpResponse response =
        options_.error_renderer(status, code, message, request_id);
    if (response.status >= 200 && response.status <= 599) return response;
  } catch (...) {
  }
  return DefaultErrorRenderer(status, code, message, request_id);
}

absl::Status HttpServerCore::ReloadTls() {
  if (options_.tls_cert_file.empty() && options_.tls_key_file.empty()) {
    return absl::OkStatus();
  }
  if (options_.tls_cert_file.empty() || options_.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both a certificate and a key file");
  }
  auto context =
      std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  error_code ec;
  context->set_options(
      asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
          asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
      ec);
  context->use_certificate_chain_file(options_.tls_cert_file, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TLS certificate file ", options_.tls_cert_file, ": ", ec.message()));
  }
  context->use_private_key_file(options_.tls_key_file, asio::ssl::context::pem,
                                ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TLS key file ", options_.tls_key_file, ": ", ec.message(),
        " (it must be an unencrypted PEM key matching the certificate)"));
  }
  absl::MutexLock lock(&tls_mu_);
  tls_context_ = std::move(context);
  return absl::OkStatus();
}

absl::Status HttpServerCore::Start() {
  absl::MutexLock lock(&lifecycle_mu_);
  if (started_)
    return absl::FailedPreconditionError("HttpServer started twice");
  if (absl::Status tls = ReloadTls(); !tls.ok()) return tls;
  error_code ec;
  const asio::ip::address address =
      asio::ip::make_address(options_.address, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HTTP listen address is not an IP address: '", options_.address, "'"));
  }
  if (options_.port < 0 || options_.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("HTTP listen port out of range: ", options_.port));
  }
  const tcp::endpoint endpoint(address,
                               static_cast<unsigned short>(options_.port));
  const std::string where =
      address.is_v6() ? absl::StrCat("[", options_.address, "]:", options_.port)
                      : absl::StrCat(options_.address, ":", options_.port);
  auto unavailable = [&](absl::string_view what) {
    error_code ignored;
    acceptor_.close(ignored);
    return absl::UnavailableError(
        absl::StrCat("cannot ", what, " HTTP ", where, ": ", ec.message()));
  };
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return unavailable("open a socket for");
  acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return unavailable("set SO_REUSEADDR on");
  acceptor_.bind(endpoint, ec);
  if (ec) return unavailable("bind");
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unavailable("listen on");
  bound_port_ = acceptor_.local_endpoint(ec).port();

  started_ = true;
  for (const std::unique_ptr<asio::io_context>& ioc : iocs_) {
    work_.emplace_back(ioc->get_executor());
  }
  asio::post(acceptor_.get_executor(),
             [self = shared_from_this()] { self->DoAccept(); });
  for (const std::unique_ptr<asio::io_context>& ioc : iocs_) {
    threads_.emplace_back([ioc = ioc.get()] {
      for (;;) {
        try {
          ioc->run();
          return;
        } catch (...) {
          // A handler threw: the thread keeps serving.
        }
      }
    });
  }
  return absl::OkStatus();
}

std::vector<std::unique_ptr<asio::io_context>> HttpServerCore::MakeContexts(
    const HttpServerOptions& options) {
  unsigned threads = options.threads > 0
                         ? static_cast<unsigned>(options.threads)
                         : std::thread::hardware_concurrency();
  threads = std::max(threads, 1u);
  std::vector<std::unique_ptr<asio::io_context>> iocs;
  for (unsigned i = 0; i < threads; ++i) {
    // Hint 1: run by one thread (it never signals another to share work);
    // other threads may still post to it and start operations on its
    // objects.
    iocs.push_back(std::make_unique<asio::io_context>(1));
  }
  return iocs;
}

void HttpServerCore::DoAccept() {
  asio::io_context& ioc = *iocs_[next_context_++ % iocs_.size()];
  acceptor_.async_accept(
      ioc.get_executor(),
      [self = shared_from_this()](error_code ec, tcp::socket socket) {
        self->OnAccept(ec, std::move(socket));
      });
}

void HttpServerCore::OnAccept(error_code ec, tcp::socket socket) {
  if (draining_.load() || !acceptor_.is_open()) return;
  if (ec) {
    // Typically EMFILE/ENFILE: back off instead of spinning.
    retry_timer_.expires_after(std::chrono::milliseconds(50));
    retry_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec && !self->draining_.load()) self->DoAccept();
    });
    return;
  }
  std::shared_ptr<Session> session;
  bool counted = true;
  {
    absl::MutexLock lock(&mu_);
    if (counted_connections_ >= options_.max_connections) {
      counted = false;
      if (turning_away_ >= kMaxTurningAway) {
        error_code ignored;
        socket.close(ignored);
      }
    }
    if (socket.is_open()) {
      const uint64_t id = next_session_id_++;
      session = std::make_shared<Session>(shared_from_this(), std::move(socket),
                                          id, counted);
      sessions_.emplace(id, session);
      ++(counted ? counted_connections_ : turning_away_);
    }
  }
  if (session != nullptr) {
    asio::post(session->executor(), [session, counted] {
      if (counted) {
        session->Start();
      } else {
        session->StartTurnAway();
      }
    });
  }
  DoAccept();
}

void HttpServerCore::Unregister(uint64_t id, bool counted) {
  absl::MutexLock lock(&mu_);
  if (sessions_.erase(id) == 0) return;
  --(counted ? counted_connections_ : turning_away_);
}

std::vector<std::shared_ptr<Session>> HttpServerCore::LiveSessions() {
  std::vector<std::shared_ptr<Session>> live;
  absl::MutexLock lock(&mu_);
  live.reserve(sessions_.size());
  for (const auto& [id, weak] : sessions_) {
    if (std::shared_ptr<Session> s = weak.lock()) live.push_back(std::move(s));
  }
  return live;
}

void HttpServerCore::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&lifecycle_mu_);
    if (!started_ || shut_down_) return;
    shut_down_ = true;
  }
  draining_ = true;
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    error_code ignored;
    self->acceptor_.close(ignored);
    self->retry_timer_.cancel();
  });
  for (const std::shared_ptr<Session>& s : LiveSessions()) {
    asio::post(s->executor(), [s] { s->Drain(); });
  }
  {
    auto all_closed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return sessions_.empty();
    };
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&all_closed), grace);
  }
  for (const std::shared_ptr<Session>& s : LiveSessions()) {
    asio::post(s->executor(), [s] { s->ForceClose(); });
  }
  // Closed sessions start no new work, so the threads run out of it.
  work_.clear();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  {
    absl::WriterMutexLock lock(&post_mu_);
    stopped_ = true;
  }
  // Responses posted after the threads left but before stopped_ was set:
  // run them here (their sessions are closed, so they are dropped), so no
  // queued handler keeps a session, and with it this object, alive.
  for (const std::unique_ptr<asio::io_context>& ioc : iocs_) {
    ioc->restart();
    ioc->run();
  }
}

}  // namespace internal

// ---------------------------------------------------------------------------
// HttpServer

HttpServer::HttpServer(HttpServerOptions options, Handler handler)
    : core_(std::make_shared<internal::HttpServerCore>(std::move(options),
                                                       std::move(handler))) {}

HttpServer::~HttpServer() { Shutdown(absl::ZeroDuration()); }

absl::Status HttpServer::Start() { return core_->Start(); }

absl::Status HttpServer::ReloadTls() { return core_->ReloadTls(); }

int HttpServer::bound_port() const { return core_->bound_port(); }

void HttpServer::Shutdown(absl::Duration grace) { core_->Shutdown(grace); }

size_t HttpServer::open_connections() const {
  return core_->open_connections();
}

uint64_t HttpServer::requests_served() const {
  return core_->requests_served();
}

}  // namespace lumo::gateway
