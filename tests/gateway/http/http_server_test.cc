// HttpServer over real loopback sockets, driven by a raw blocking client so
// that malformed bytes can be sent.
#include "gateway/http/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace lumo::gateway {
namespace {

using std::string_literals::operator""s;

// How long the client waits for anything the server should send promptly.
// How long a test waits for something that must happen; only a failing
// test waits this long (a generous bound for loaded machines).
constexpr absl::Duration kPatience = absl::Seconds(30);

struct RawResponse {
  int status = 0;
  HttpHeaders headers;  // names lower-cased
  std::string body;

  // First value of `lower_name`, or "<none>".
  std::string Header(absl::string_view lower_name) const {
    for (const auto& [name, value] : headers) {
      if (name == lower_name) return value;
    }
    return "<none>";
  }
  bool Has(absl::string_view lower_name) const {
    return Header(lower_name) != "<none>";
  }
};

// A blocking TCP client that speaks raw bytes and reads HTTP/1.1 responses
// framed by Content-Length. Not thread-safe.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      connect_errno_ = errno;
      close(fd_);
      fd_ = -1;
    }
    if (fd_ >= 0) {
      int one = 1;
      setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
  }
  ~RawClient() {
    if (fd_ >= 0) close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  int connect_errno() const { return connect_errno_; }

  // False if the server has closed or reset the connection.
  bool Send(absl::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // The next response, or nullopt if the connection ends (or nothing
  // arrives within `patience`) before a complete one. A response to HEAD
  // (`has_body` false) has a Content-Length but no body.
  std::optional<RawResponse> Read(absl::Duration patience = kPatience,
                                  bool has_body = true) {
    const absl::Time deadline = absl::Now() + patience;
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill(deadline)) return std::nullopt;
    }
    RawResponse response;
    std::vector<absl::string_view> lines =
        absl::StrSplit(absl::string_view(buffer_).substr(0, end), "\r\n");
    std::vector<absl::string_view> status_line =
        absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
    if (status_line.size() < 2 ||
        !absl::SimpleAtoi(status_line[1], &response.status)) {
      return std::nullopt;
    }
    size_t length = 0;
    for (size_t i = 1; i < lines.size(); ++i) {
      std::pair<std::string, std::string> field =
          absl::StrSplit(lines[i], absl::MaxSplits(':', 1));
      absl::AsciiStrToLower(&field.first);
      field.second = std::string(absl::StripAsciiWhitespace(field.second));
      if (field.first == "content-length") {
        EXPECT_TRUE(absl::SimpleAtoi(field.second, &length));
      }
      response.headers.push_back(std::move(field));
    }
    buffer_.erase(0, end + 4);
    if (!has_body) length = 0;
    while (buffer_.size() < length) {
      if (!Fill(deadline)) return std::nullopt;
    }
    response.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return response;
  }

  // True once the server closes (EOF or reset) within `patience`. Bytes
  // arriving meanwhile are kept in unread().
  bool WaitClosed(absl::Duration patience = kPatience) {
    const absl::Time deadline = absl::Now() + patience;
    for (;;) {
      switch (Poll(deadline)) {
        case PollResult::kTimeout:
          return false;
        case PollResult::kClosed:
          return true;
        case PollResult::kData:
          break;
      }
    }
  }

  const std::string& unread() const { return buffer_; }

  // A chunked body after Read() of its head: the chunks' data, and in
  // `*complete` whether the terminating zero-length chunk arrived (false
  // when the connection closed or nothing came within `patience` first).
  std::string ReadChunkedBody(bool* complete,
                              absl::Duration patience = kPatience) {
    const absl::Time deadline = absl::Now() + patience;
    std::string body;
    *complete = false;
    for (;;) {
      size_t eol;
      while ((eol = buffer_.find("\r\n")) == std::string::npos) {
        if (!Fill(deadline)) return body;
      }
      size_t size = 0;
      if (!absl::SimpleHexAtoi(buffer_.substr(0, eol), &size)) return body;
      while (buffer_.size() < eol + 2 + size + 2) {
        if (!Fill(deadline)) return body;
      }
      body += buffer_.substr(eol + 2, size);
      buffer_.erase(0, eol + 2 + size + 2);
      if (size == 0) {
        *complete = true;
        return body;
      }
    }
  }

 private:
  enum class PollResult { kData, kClosed, kTimeout };

  PollResult Poll(absl::Time deadline) {
    pollfd p{fd_, POLLIN, 0};
    const int ms = static_cast<int>(std::max<int64_t>(
        0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    if (poll(&p, 1, ms) <= 0) return PollResult::kTimeout;
    char chunk[16 * 1024];
    const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return PollResult::kClosed;
    buffer_.append(chunk, static_cast<size_t>(n));
    return PollResult::kData;
  }
  bool Fill(absl::Time deadline) { return Poll(deadline) == PollResult::kData; }

  int fd_ = -1;
  int connect_errno_ = 0;
  std::string buffer_;
};

// Polls `done` until it holds or `patience` runs out; returns its last value.
// For server counters, which are updated just after a response is written.
template <typename Fn>
bool Eventually(Fn done, absl::Duration patience = kPatience) {
  const absl::Time deadline = absl::Now() + patience;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

std::string Get(absl::string_view target, absl::string_view fields = "") {
  return absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: test\r\n", fields,
                      "\r\n");
}

std::string Post(absl::string_view target, absl::string_view body,
                 absl::string_view fields = "") {
  return absl::StrCat("POST ", target, " HTTP/1.1\r\nHost: test\r\n", fields,
                      "Content-Length: ", body.size(), "\r\n\r\n", body);
}

int QueryInt(const HttpRequest& request, absl::string_view key) {
  for (absl::string_view kv : absl::StrSplit(request.query, '&')) {
    std::pair<absl::string_view, absl::string_view> p =
        absl::StrSplit(kv, absl::MaxSplits('=', 1));
    int value;
    if (p.first == key && absl::SimpleAtoi(p.second, &value)) return value;
  }
  return 0;
}

// A streamed body for the tests: `pieces` pieces "piece-<i>" (0: without
// end, 64 KiB each), then the end (cut short with `cut`). Counts the pieces
// asked for while one was outstanding (must stay 0) and Cancel calls.
class TestStream : public BodyStream {
 public:
  TestStream(int pieces, bool cut) : pieces_(pieces), cut_(cut) {}
  void Next(std::function<void(Piece)> deliver) override {
    if (outstanding_.exchange(true)) overlapping_.fetch_add(1);
    Piece piece;
    const int i = next_.fetch_add(1);
    if (pieces_ == 0) {
      piece.data = std::string(64 << 10, 'x');
    } else if (i < pieces_) {
      piece.data = absl::StrCat("piece-", i);
    } else {
      piece.end = true;
      piece.complete = !cut_;
    }
    outstanding_.store(false);
    // From another thread, as an upstream call would.
    std::thread([deliver = std::move(deliver), piece = std::move(piece)] {
      deliver(piece);
    }).detach();
  }
  void Cancel() override { cancels_.fetch_add(1); }

  int cancels() const { return cancels_.load(); }
  int overlapping() const { return overlapping_.load(); }
  int asked() const { return next_.load(); }

 private:
  const int pieces_;
  const bool cut_;
  std::atomic<int> next_{0};
  std::atomic<bool> outstanding_{false};
  std::atomic<int> overlapping_{0};
  std::atomic<int> cancels_{0};
};

class HttpServerTest : public testing::Test {
 protected:
  // Generous limits: tests that need tight ones set them.
  static HttpServerOptions Options() {
    HttpServerOptions options;
    options.address = "127.0.0.1";
    options.port = 0;
    options.threads = 2;
    options.request_timeout = absl::Seconds(5);
    options.idle_timeout = absl::Seconds(5);
    options.common_headers = {{"X-Test-Common", "yes"}};
    return options;
  }
  static HttpServerOptions TightOptions() {
    HttpServerOptions options = Options();
    options.request_timeout = absl::Milliseconds(300);
    options.idle_timeout = absl::Milliseconds(300);
    return options;
  }

  void StartServer(HttpServerOptions options = Options()) {
    server_ = std::make_unique<HttpServer>(
        std::move(options), [this](HttpRequest request, Responder respond) {
          Handle(std::move(request), std::move(respond));
        });
    const absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_GT(server_->bound_port(), 0);
  }

  void TearDown() override {
    if (!handoff_released_.HasBeenNotified()) handoff_released_.Notify();
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration());
    server_.reset();
    StopWorkers();
    JoinDelayedResponders();
    absl::MutexLock lock(&mu_);
    parked_.clear();
  }

  void JoinDelayedResponders() {
    std::vector<std::thread> threads;
    {
      absl::MutexLock lock(&mu_);
      threads.swap(delayed_);
    }
    for (std::thread& t : threads) t.join();
  }

  int port() const { return server_->bound_port(); }

  // `n` threads that answer /pool requests, in the order they arrived, as
  // an upstream call's completion would: from a thread of their own.
  void StartWorkers(int n) {
    for (int i = 0; i < n; ++i) {
      workers_.emplace_back([this] {
        for (;;) {
          std::pair<HttpRequest, Responder> job;
          {
            absl::MutexLock lock(&mu_);
            mu_.Await(absl::Condition(
                +[](HttpServerTest* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t->mu_) {
                  return t->stop_workers_ || !t->work_.empty();
                },
                this));
            if (work_.empty()) return;  // stopping
            job = std::move(work_.front());
            work_.erase(work_.begin());
          }
          HttpResponse response;
          response.body =
              absl::StrCat("path=", job.first.path, " body=", job.first.body);
          job.second(std::move(response));
        }
      });
    }
  }
  void StopWorkers() {
    {
      absl::MutexLock lock(&mu_);
      stop_workers_ = true;
    }
    for (std::thread& t : workers_) t.join();
    workers_.clear();
  }

  // Requests of /never that reached the handler and wait for an answer.
  size_t ParkedCount() {
    absl::MutexLock lock(&mu_);
    return parked_.size();
  }
  // Answers the oldest parked request with `body`.
  void AnswerParked(absl::string_view body) {
    Responder respond;
    {
      absl::MutexLock lock(&mu_);
      ASSERT_FALSE(parked_.empty());
      respond = std::move(parked_.front());
      parked_.erase(parked_.begin());
    }
    HttpResponse response;
    response.body = std::string(body);
    respond(std::move(response));
  }

  // Routes: /slow?ms=N answers from another thread after N ms; /never parks
  // the Responder; /pool echoes the path and body from one of the worker
  // threads (StartWorkers); /handoff answers from another thread at once and
  // returns only once handoff_released_ is notified; /throw throws; /inject
  // sets unsafe response fields; /status?code=N answers N; everything else
  // echoes the request.
  void Handle(HttpRequest request, Responder respond) {
    if (request.path == "/pool") {
      absl::MutexLock lock(&mu_);
      work_.emplace_back(std::move(request), std::move(respond));
      return;
    }
    if (request.path == "/handoff") {
      {
        absl::MutexLock lock(&mu_);
        delayed_.emplace_back([respond] {
          HttpResponse response;
          response.body = "handed off";
          respond(std::move(response));
        });
      }
      // Blocks this I/O thread until the test has read the answer: the
      // answer must not wait for the handler to return.
      handoff_released_.WaitForNotificationWithTimeout(kPatience);
      return;
    }
    if (request.path == "/slow") {
      const int ms = QueryInt(request, "ms");
      absl::MutexLock lock(&mu_);
      delayed_.emplace_back([ms, respond] {
        absl::SleepFor(absl::Milliseconds(ms));
        HttpResponse response;
        response.body = "slow done";
        respond(std::move(response));
      });
      return;
    }
    if (request.path == "/never") {
      absl::MutexLock lock(&mu_);
      parked_.push_back(std::move(respond));
      return;
    }
    if (request.path == "/throw") throw std::runtime_error("handler bug");
    HttpResponse response;
    if (request.path == "/stream") {
      auto stream = std::make_shared<TestStream>(QueryInt(request, "pieces"),
                                                 QueryInt(request, "cut") == 1);
      {
        absl::MutexLock lock(&mu_);
        streams_.push_back(stream);
      }
      response.headers = {{"Content-Type", "text/csv"}};
      response.body = "first;";
      response.stream = std::move(stream);
      respond(std::move(response));
      return;
    }
    if (request.path == "/inject") {
      response.headers = {{"X-Split", "a\r\nSet-Cookie: evil=1"},
                          {"X-Ok", "fine"}};
    } else if (request.path == "/status") {
      response.status = QueryInt(request, "code");
    } else {
      response.headers = {{"Content-Type", "text/plain"}};
      response.body = absl::StrCat(
          "method=", request.method, "\npath=", request.path,
          "\nquery=", request.query, "\nremote_ip=", request.remote_ip,
          "\nrequest_id=", request.request_id, "\n");
      for (const auto& [name, value] : request.headers) {
        absl::StrAppend(&response.body, "h:", name, "=", value, "\n");
      }
      absl::StrAppend(&response.body, "body=", request.body);
    }
    respond(std::move(response));
  }

  // Every response carries these, the server's own errors included.
  static void ExpectServerFields(const RawResponse& r) {
    EXPECT_EQ(r.Header("x-test-common"), "yes") << r.status;
    EXPECT_TRUE(IsSafeRequestId(r.Header("x-request-id"))) << r.status;
    EXPECT_TRUE(r.Has("content-length")) << r.status;
  }
  static void ExpectError(const RawResponse& r, int status,
                          absl::string_view code) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.Header("content-type"), "application/json");
    EXPECT_TRUE(
        absl::StrContains(r.body, absl::StrCat("\"code\":\"", code, "\"")))
        << r.body;
    ExpectServerFields(r);
  }

  std::unique_ptr<HttpServer> server_;
  absl::Mutex mu_;
  std::vector<std::thread> delayed_ ABSL_GUARDED_BY(mu_);
  std::vector<Responder> parked_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<TestStream>> streams_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<HttpRequest, Responder>> work_ ABSL_GUARDED_BY(mu_);
  bool stop_workers_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
  absl::Notification handoff_released_;

  std::shared_ptr<TestStream> LastStream() {
    absl::MutexLock lock(&mu_);
    return streams_.empty() ? nullptr : streams_.back();
  }
};

TEST_F(HttpServerTest, StreamedBodyIsChunkedOnePieceAtATime) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send(Get("/stream?pieces=3")));
  std::optional<RawResponse> r = client.Read(kPatience, /*has_body=*/false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("transfer-encoding"), "chunked");
  EXPECT_FALSE(r->Has("content-length"));
  EXPECT_EQ(r->Header("content-type"), "text/csv");
  EXPECT_EQ(r->Header("x-test-common"), "yes");
  bool complete = false;
  EXPECT_EQ(client.ReadChunkedBody(&complete), "first;piece-0piece-1piece-2");
  EXPECT_TRUE(complete);
  std::shared_ptr<TestStream> stream = LastStream();
  ASSERT_NE(stream, nullptr);
  EXPECT_EQ(stream->asked(), 4);
  EXPECT_EQ(stream->overlapping(), 0);
  // The connection stays open for the next request.
  ASSERT_TRUE(client.Send(Get("/echo")));
  r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, AStreamCutShortEndsWithoutTheLastChunk) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send(Get("/stream?pieces=2&cut=1")));
  std::optional<RawResponse> r = client.Read(kPatience, /*has_body=*/false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  bool complete = true;
  EXPECT_EQ(client.ReadChunkedBody(&complete), "first;piece-0piece-1");
  EXPECT_FALSE(complete);
  EXPECT_TRUE(client.WaitClosed());
}

TEST_F(HttpServerTest, Http10GetsTheStreamUntilTheConnectionCloses) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send("GET /stream?pieces=2 HTTP/1.0\r\n\r\n"));
  std::optional<RawResponse> r = client.Read(kPatience, /*has_body=*/false);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->Has("transfer-encoding"));
  EXPECT_FALSE(r->Has("content-length"));
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(client.WaitClosed());
  EXPECT_EQ(client.unread(), "first;piece-0piece-1");
}

TEST_F(HttpServerTest, AClientThatGoesAwayCancelsTheStream) {
  StartServer();
  {
    RawClient client(port());
    ASSERT_TRUE(client.Send(Get("/stream?pieces=0")));
    ASSERT_TRUE(client.Read(kPatience, /*has_body=*/false).has_value());
  }  // closed with pieces still coming
  ASSERT_TRUE(Eventually([this] {
    std::shared_ptr<TestStream> stream = LastStream();
    return stream != nullptr && stream->cancels() > 0;
  }));
  EXPECT_EQ(LastStream()->overlapping(), 0);
}

TEST_F(HttpServerTest, HeadCancelsTheStreamAndSendsNoBody) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send("HEAD /stream?pieces=2 HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::optional<RawResponse> r = client.Read(kPatience, /*has_body=*/false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(LastStream()->cancels(), 1);
  EXPECT_EQ(LastStream()->asked(), 0);
  ASSERT_TRUE(client.Send(Get("/echo")));
  r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, EchoesTheRequestToTheHandler) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send(
      Post("/a/b%2Fc?x=1&y", "hello", "X-Multi: one\r\nx-multi:  two \r\n")));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  const std::string rid = r->Header("x-request-id");
  EXPECT_EQ(r->body, absl::StrCat("method=POST\npath=/a/b%2Fc\nquery=x=1&y\n"
                                  "remote_ip=127.0.0.1\nrequest_id=",
                                  rid,
                                  "\nh:host=test\nh:x-multi=one\n"
                                  "h:x-multi=two\nh:content-length=5\n"
                                  "body=hello"));
  ExpectServerFields(*r);
  EXPECT_EQ(r->Header("connection"), "<none>");
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  StartServer();
  RawClient client(port());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(client.Send(Post(absl::StrCat("/n", i), absl::StrCat(i))));
    std::optional<RawResponse> r = client.Read();
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(absl::StrContains(r->body, absl::StrCat("path=/n", i, "\n")));
    EXPECT_TRUE(absl::EndsWith(r->body, absl::StrCat("body=", i)));
  }
  EXPECT_EQ(server_->open_connections(), 1u);
  EXPECT_TRUE(Eventually([&] { return server_->requests_served() == 5; }))
      << server_->requests_served();
}

TEST_F(HttpServerTest, TwoRequestsInOneWriteAreAnsweredInOrder) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send(Get("/first") + Get("/second")));
  std::optional<RawResponse> first = client.Read();
  std::optional<RawResponse> second = client.Read();
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_TRUE(absl::StrContains(first->body, "path=/first\n"));
  EXPECT_TRUE(absl::StrContains(second->body, "path=/second\n"));
}

TEST_F(HttpServerTest, ResponseToHeadHasLengthButNoBody) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send("HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::optional<RawResponse> r = client.Read(kPatience, /*has_body=*/false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->Header("content-length"), "0");
  // Had body bytes been sent, they would be read as the next response.
  ASSERT_TRUE(client.Send(Get("/next")));
  r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(absl::StrContains(r->body, "path=/next\n"));
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send(Get("/x", "Connection: close\r\n")));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(client.WaitClosed());
  EXPECT_TRUE(client.unread().empty());
}

TEST_F(HttpServerTest, Http10GetsOneResponseThenClose) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send("GET /old HTTP/1.0\r\n\r\n"));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(client.WaitClosed());
}

TEST_F(HttpServerTest, GeneratesRequestIdWhenAbsent) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send(Get("/")));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  const std::string rid = r->Header("x-request-id");
  EXPECT_GE(rid.size(), 20u);
  EXPECT_TRUE(IsSafeRequestId(rid));
  EXPECT_TRUE(absl::StrContains(r->body, absl::StrCat("request_id=", rid)));
}

TEST_F(HttpServerTest, PassesThroughASafeRequestId) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send(Get("/", "X-Request-Id: trace-42.A_b\r\n")));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->Header("x-request-id"), "trace-42.A_b");
  EXPECT_TRUE(absl::StrContains(r->body, "request_id=trace-42.A_b\n"));
}

TEST_F(HttpServerTest, ReplacesUnsafeOrRepeatedRequestIds) {
  StartServer();
  const std::string unsafe[] = {
      "X-Request-Id: has space\r\n",
      "X-Request-Id: <script>\r\n",
      absl::StrCat("X-Request-Id: ", std::string(129, 'a'), "\r\n"),
      "X-Request-Id: a\r\nX-Request-Id: b\r\n",
  };
  for (const std::string& field : unsafe) {
    RawClient client(port());
    ASSERT_TRUE(client.Send(Get("/", field)));
    std::optional<RawResponse> r = client.Read();
    ASSERT_TRUE(r.has_value()) << field;
    const std::string rid = r->Header("x-request-id");
    EXPECT_EQ(rid.size(), 22u) << field;
    EXPECT_TRUE(IsSafeRequestId(rid)) << field;
    EXPECT_TRUE(absl::StrContains(r->body, absl::StrCat("request_id=", rid)));
  }
}

TEST_F(HttpServerTest, ServerErrorsKeepTheClientsRequestIdOnceHeadIsParsed) {
  HttpServerOptions options = Options();
  options.max_body_bytes = 10;
  StartServer(options);
  RawClient client(port());
  ASSERT_TRUE(
      client.Send(Post("/", std::string(11, 'a'), "X-Request-Id: mine-1\r\n")));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->Header("x-request-id"), "mine-1");
}

TEST_F(HttpServerTest, CommonHeadersOnEveryResponse) {
  HttpServerOptions options = Options();
  options.max_body_bytes = 100;
  options.max_header_bytes = 1024;
  StartServer(options);
  const std::pair<std::string, int> cases[] = {
      {Get("/ok"), 200},
      {"GET /bad\r\n\r\n", 400},
      {Post("/big", std::string(101, 'x')), 413},
      {Get("/", absl::StrCat("X-Big: ", std::string(2000, 'x'), "\r\n")), 431},
      {Get("/status?code=204"), 204},
      {Get("/status?code=404"), 404},
  };
  for (const auto& [request, status] : cases) {
    RawClient client(port());
    ASSERT_TRUE(client.Send(request));
    std::optional<RawResponse> r = client.Read();
    ASSERT_TRUE(r.has_value()) << status;
    EXPECT_EQ(r->status, status);
    EXPECT_EQ(r->Header("x-test-common"), "yes") << status;
    EXPECT_TRUE(IsSafeRequestId(r->Header("x-request-id"))) << status;
    // RFC 9110 forbids Content-Length in a 204.
    EXPECT_EQ(r->Has("content-length"), status != 204) << status;
  }
}

TEST_F(HttpServerTest, OversizedContentLengthGets413BeforeTheBodyIsSent) {
  HttpServerOptions options = Options();
  options.max_body_bytes = 1024;
  // Only the head is sent, and no timeout can end the wait for the body:
  // an answer at all means the server decided from the head.
  options.request_timeout = absl::Hours(1);
  StartServer(options);
  RawClient client(port());
  ASSERT_TRUE(client.Send(
      "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10485760\r\n\r\n"));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, 413, "payload_too_large");
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(client.WaitClosed());
}

TEST_F(HttpServerTest, BodyAtTheLimitIsAccepted) {
  HttpServerOptions options = Options();
  options.max_body_bytes = 1024;
  StartServer(options);
  RawClient client(port());
  ASSERT_TRUE(client.Send(Post("/", std::string(1024, 'b'))));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(absl::EndsWith(r->body, std::string(1024, 'b')));
}

TEST_F(HttpServerTest, ChunkedBodyIsDecoded) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send(
      "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n"));
  absl::SleepFor(absl::Milliseconds(20));  // split across reads
  ASSERT_TRUE(client.Send("6;ext=1\r\n world\r\n0\r\n\r\n"));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(absl::EndsWith(r->body, "body=hello world"));
  // The connection stays usable after a chunked request.
  ASSERT_TRUE(client.Send(Get("/after")));
  r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(absl::StrContains(r->body, "path=/after\n"));
}

TEST_F(HttpServerTest, ChunkedBodyOverTheLimitGets413) {
  HttpServerOptions options = Options();
  options.max_body_bytes = 1024;
  StartServer(options);
  RawClient client(port());
  const std::string chunk = absl::StrCat("258\r\n", std::string(600, 'z'),
                                         "\r\n");  // 0x258 = 600
  ASSERT_TRUE(client.Send(
      "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
      chunk));
  client.Send(chunk);  // the server may already have answered and closed
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, 413, "payload_too_large");
  EXPECT_TRUE(client.WaitClosed());
}

TEST_F(HttpServerTest, HugeHeadGets431) {
  StartServer();  // max_header_bytes 16 KiB
  RawClient client(port());
  client.Send(
      Get("/", absl::StrCat("X-Big: ", std::string(20000, 'h'), "\r\n")));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, 431, "header_too_large");
  EXPECT_TRUE(client.WaitClosed());
}

TEST_F(HttpServerTest, LongTargetGets414) {
  StartServer();
  for (const bool complete : {true, false}) {
    RawClient client(port());
    const std::string line =
        absl::StrCat("GET /", std::string(9000, 't'), " HTTP/1.1\r\n");
    // Incomplete: the server answers before the request line ends.
    client.Send(complete ? line + "Host: t\r\n\r\n" : line.substr(0, 8500));
    std::optional<RawResponse> r = client.Read();
    ASSERT_TRUE(r.has_value()) << complete;
    ExpectError(*r, 414, "uri_too_long");
  }
}

TEST_F(HttpServerTest, Http2PriorKnowledgeIsRejected) {
  StartServer();
  RawClient client(port());
  client.Send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 505);
}

struct MalformedCase {
  const char* name;
  std::string bytes;
};

void PrintTo(const MalformedCase& c, std::ostream* os) { *os << c.name; }

class MalformedRequestTest : public HttpServerTest,
                             public testing::WithParamInterface<MalformedCase> {
};

TEST_P(MalformedRequestTest, Gets400AndTheConnectionCloses) {
  StartServer();
  RawClient client(port());
  client.Send(GetParam().bytes);
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, 400, "invalid_request");
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(client.WaitClosed());
}

INSTANTIATE_TEST_SUITE_P(
    Table, MalformedRequestTest,
    testing::Values(
        MalformedCase{"NoVersion", "GET /x\r\nHost: t\r\n\r\n"},
        MalformedCase{"Garbage", "\x16\x03\x01\x02\x00\x01\x00\r\n\r\n"s},
        MalformedCase{"BadMethod", "G(T / HTTP/1.1\r\nHost: t\r\n\r\n"},
        MalformedCase{"CrInValue",
                      "GET / HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n"},
        MalformedCase{"BareLf", "GET / HTTP/1.1\nHost: t\r\n\r\n"},
        MalformedCase{"NulInValue",
                      "GET / HTTP/1.1\r\nHost: t\r\nX: a\0b\r\n\r\n"s},
        MalformedCase{"CtlInValue",
                      "GET / HTTP/1.1\r\nHost: t\r\nX: a\x01\r\n\r\n"},
        MalformedCase{"ObsFold",
                      "GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n"},
        MalformedCase{"SpaceBeforeColon", "GET / HTTP/1.1\r\nHost : t\r\n\r\n"},
        MalformedCase{
            "BadContentLength",
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n"},
        MalformedCase{"TwoContentLengths",
                      "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                      "Content-Length: 2\r\n\r\nab"},
        MalformedCase{"ContentLengthAndTransferEncoding",
                      "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        MalformedCase{"TransferEncodingNotChunked",
                      "POST / HTTP/1.1\r\nHost: t\r\n"
                      "Transfer-Encoding: gzip\r\n\r\n"},
        MalformedCase{"BadChunkSize",
                      "POST / HTTP/1.1\r\nHost: t\r\n"
                      "Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n"},
        MalformedCase{"AbsoluteFormTarget",
                      "GET http://example.com/ HTTP/1.1\r\nHost: t\r\n\r\n"},
        MalformedCase{"AsteriskTarget",
                      "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n"},
        MalformedCase{"MissingHost", "GET / HTTP/1.1\r\n\r\n"}),
    [](const testing::TestParamInfo<MalformedCase>& info) {
      return std::string(info.param.name);
    });

TEST_F(HttpServerTest, SlowlorisGets408WithinTheRequestTimeout) {
  StartServer(TightOptions());  // request_timeout 300 ms
  RawClient client(port());
  const absl::Time start = absl::Now();
  ASSERT_TRUE(client.Send("GET / HTTP/1.1\r\nHost: t\r\n"));
  std::optional<RawResponse> r;
  // One more header line every 50 ms: each byte arrives well within any
  // per-read timeout, but the request never completes.
  for (int i = 0; i < 40 && !r.has_value(); ++i) {
    if (!client.Send("X-Drip: 1\r\n")) break;
    r = client.Read(absl::Milliseconds(50));
  }
  if (!r.has_value()) r = client.Read();
  const absl::Duration elapsed = absl::Now() - start;
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, 408, "request_timeout");
  // Not before the timeout (how long after is load, not behaviour).
  EXPECT_GE(elapsed, absl::Milliseconds(250));
  EXPECT_TRUE(client.WaitClosed());
}

TEST_F(HttpServerTest, SlowBodyGets408) {
  StartServer(TightOptions());
  RawClient client(port());
  ASSERT_TRUE(client.Send(
      "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, 408, "request_timeout");
}

TEST_F(HttpServerTest, SilentConnectionIsClosedAfterTheRequestTimeout) {
  StartServer(TightOptions());
  RawClient client(port());
  const absl::Time start = absl::Now();
  EXPECT_TRUE(client.WaitClosed());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_TRUE(client.unread().empty());
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosed) {
  HttpServerOptions options = TightOptions();
  options.request_timeout = absl::Seconds(5);  // only idle_timeout is short
  StartServer(options);
  RawClient client(port());
  ASSERT_TRUE(client.Send(Get("/")));
  ASSERT_TRUE(client.Read().has_value());
  const absl::Time start = absl::Now();
  EXPECT_TRUE(client.WaitClosed());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_TRUE(client.unread().empty());
}

TEST_F(HttpServerTest, HandlerMayRespondFromAnotherThread) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send(Get("/slow?ms=50")));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "slow done");
  ExpectServerFields(*r);
  // And the connection is kept alive afterwards.
  ASSERT_TRUE(client.Send(Get("/next")));
  ASSERT_TRUE(client.Read().has_value());
}

// The threading contract of Responders called on other threads (the
// gateway answers from the thread that completed the upstream call): the
// response is written without waiting for anything on the I/O threads,
// responses stay in request order per connection, and a connection whose
// client left is closed whatever the answer does.

TEST_F(HttpServerTest, AnAnswerFromAnotherThreadDoesNotWaitForTheHandler) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send(Get("/handoff")));
  // The handler is still blocked (until the notification below).
  std::optional<RawResponse> r = client.Read();
  handoff_released_.Notify();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "handed off");
  ExpectServerFields(*r);
  ASSERT_TRUE(client.Send(Get("/next")));
  std::optional<RawResponse> next = client.Read();
  ASSERT_TRUE(next.has_value());
  EXPECT_TRUE(absl::StrContains(next->body, "path=/next\n"));
}

TEST_F(HttpServerTest, PipelinedRequestsAnsweredFromOtherThreadsStayInOrder) {
  StartServer();
  StartWorkers(3);
  RawClient client(port());
  // Later requests would be quicker: only the server's one-at-a-time
  // reading keeps the answers in order. Mixed with requests answered on
  // the I/O thread.
  std::string batch;
  for (int i = 0; i < 6; ++i) {
    absl::StrAppend(&batch, Get(absl::StrCat("/slow?ms=", 60 - 10 * i)),
                    Post("/pool", absl::StrCat("p", i)),
                    Get(absl::StrCat("/echo", i)));
  }
  ASSERT_TRUE(client.Send(batch));
  for (int i = 0; i < 6; ++i) {
    std::optional<RawResponse> slow = client.Read();
    std::optional<RawResponse> pooled = client.Read();
    std::optional<RawResponse> echo = client.Read();
    ASSERT_TRUE(slow.has_value() && pooled.has_value() && echo.has_value())
        << i;
    EXPECT_EQ(slow->body, "slow done") << i;
    EXPECT_EQ(pooled->body, absl::StrCat("path=/pool body=p", i));
    EXPECT_TRUE(absl::StrContains(echo->body, absl::StrCat("path=/echo", i)))
        << echo->body;
  }
  EXPECT_TRUE(Eventually([&] { return server_->requests_served() == 18; }))
      << server_->requests_served();
}

TEST_F(HttpServerTest, ManyConnectionsAnsweredFromOtherThreads) {
  StartServer();
  StartWorkers(2);
  constexpr int kClients = 24;
  constexpr int kRequests = 100;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      RawClient client(port());
      for (int i = 0; i < kRequests; ++i) {
        const std::string body = absl::StrCat(t, "-", i);
        // Every fourth request two at once: pipelined.
        const bool two = i % 4 == 0;
        std::string bytes = Post("/pool", body);
        if (two) bytes += Post("/pool", body + "b");
        if (!client.Send(bytes)) return;
        std::optional<RawResponse> r = client.Read();
        if (r.has_value() && r->status == 200 &&
            r->body == absl::StrCat("path=/pool body=", body)) {
          ok.fetch_add(1);
        }
        if (two) {
          r = client.Read();
          if (r.has_value() && r->status == 200 &&
              r->body == absl::StrCat("path=/pool body=", body, "b")) {
            ok.fetch_add(1);
          }
        }
      }
    });
  }
  for (std::thread& c : clients) c.join();
  constexpr int kTotal = kClients * (kRequests + kRequests / 4);
  EXPECT_EQ(ok.load(), kTotal);
  EXPECT_TRUE(Eventually([&] { return server_->requests_served() == kTotal; }))
      << server_->requests_served();
  EXPECT_TRUE(Eventually([&] { return server_->open_connections() == 0; }))
      << server_->open_connections();
}

TEST_F(HttpServerTest, AnAnswerAfterTheClientLeftClosesTheConnection) {
  StartServer();
  {
    RawClient client(port());
    ASSERT_TRUE(client.Send(Get("/never")));
    ASSERT_TRUE(Eventually([&] { return ParkedCount() == 1; }));
  }  // the client goes away while the handler holds the Responder
  AnswerParked("nobody listens");  // from this thread, not an I/O thread
  EXPECT_TRUE(Eventually([&] { return server_->open_connections() == 0; }))
      << server_->open_connections();
  // The server is unharmed.
  RawClient again(port());
  ASSERT_TRUE(again.Send(Get("/")));
  std::optional<RawResponse> ok = again.Read();
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->status, 200);
}

TEST_F(HttpServerTest, TimeoutsStillApplyAfterAnswersFromAnotherThread) {
  // The timer's deadline moves later with every request without restarting
  // its wait, and the request and idle timeouts still fire (an earlier
  // deadline than the pending wait's:
  // AShorterRequestDeadlineCutsALongIdleWait).
  StartServer(TightOptions());
  RawClient client(port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client.Send(Get("/slow?ms=100")));
    std::optional<RawResponse> r = client.Read();
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->status, 200) << i;
  }
  const absl::Time start = absl::Now();
  ASSERT_TRUE(client.Send(Get("/never")));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, 503, "service_unavailable");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_TRUE(client.WaitClosed());

  RawClient idle(port());
  ASSERT_TRUE(idle.Send(Get("/slow?ms=100")));
  ASSERT_TRUE(idle.Read().has_value());
  const absl::Time idle_start = absl::Now();
  EXPECT_TRUE(idle.WaitClosed());  // idle_timeout after the answer
  EXPECT_GE(absl::Now() - idle_start, absl::Milliseconds(250));
  EXPECT_TRUE(idle.unread().empty());
}

// The timer's pending wait is for a long idle deadline when a request
// arrives whose deadline is earlier: the wait must be restarted for it,
// not left to end at the idle deadline.
TEST_F(HttpServerTest, AShorterRequestDeadlineCutsALongIdleWait) {
  HttpServerOptions options = Options();
  options.request_timeout = absl::Milliseconds(300);
  options.idle_timeout = absl::Seconds(20);
  StartServer(std::move(options));
  RawClient client(port());
  ASSERT_TRUE(client.Send(Get("/slow?ms=10")));
  ASSERT_TRUE(client.Read().has_value());
  // Past the first request's deadline: the pending wait is now the idle
  // one, 20 s.
  absl::SleepFor(absl::Milliseconds(700));
  const absl::Time start = absl::Now();
  ASSERT_TRUE(client.Send(Get("/never")));
  std::optional<RawResponse> r = client.Read(absl::Seconds(15));
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, 503, "service_unavailable");
  // The request's 300 ms, not the idle 20 s (how long after the 300 ms
  // is load, not behaviour).
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_LT(absl::Now() - start, absl::Seconds(15));
}

TEST_F(HttpServerTest, HandlerThatNeverRespondsGets503AfterTheTimeout) {
  StartServer(TightOptions());
  RawClient client(port());
  const absl::Time start = absl::Now();
  ASSERT_TRUE(client.Send(Get("/never", "X-Request-Id: wait-1\r\n")));
  std::optional<RawResponse> r = client.Read();
  const absl::Duration elapsed = absl::Now() - start;
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, 503, "service_unavailable");
  EXPECT_EQ(r->Header("x-request-id"), "wait-1");
  EXPECT_GE(elapsed, absl::Milliseconds(250));
  EXPECT_TRUE(client.WaitClosed());
  // The parked Responder still works, and does nothing.
  std::vector<Responder> parked;
  {
    absl::MutexLock lock(&mu_);
    parked.swap(parked_);
  }
  ASSERT_EQ(parked.size(), 1u);
  parked[0](HttpResponse());
}

TEST_F(HttpServerTest, LateResponseAfterTheTimeoutIsDropped) {
  StartServer(TightOptions());
  RawClient client(port());
  ASSERT_TRUE(client.Send(Get("/never")));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 503);
  AnswerParked("too late");  // after the timeout's answer, by construction
  EXPECT_TRUE(client.WaitClosed());
  EXPECT_TRUE(client.unread().empty());
  // The server is unharmed.
  RawClient again(port());
  ASSERT_TRUE(again.Send(Get("/")));
  std::optional<RawResponse> ok = again.Read();
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->status, 200);
}

TEST_F(HttpServerTest, RespondersMayOutliveTheServer) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send(Get("/never")));
  for (int i = 0; i < 100; ++i) {
    absl::MutexLock lock(&mu_);
    if (!parked_.empty()) break;
    mu_.AwaitWithTimeout(
        absl::Condition(
            +[](std::vector<Responder>* p) { return !p->empty(); }, &parked_),
        absl::Milliseconds(50));
  }
  server_->Shutdown(absl::Milliseconds(50));
  server_.reset();
  EXPECT_TRUE(client.WaitClosed());
  std::vector<Responder> parked;
  {
    absl::MutexLock lock(&mu_);
    parked.swap(parked_);
  }
  ASSERT_EQ(parked.size(), 1u);
  HttpResponse response;
  response.body = "too late";
  parked[0](std::move(response));  // dropped; must not crash
  parked.clear();                  // releases the last of the server
}

TEST_F(HttpServerTest, HandlerExceptionGets500) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send(Get("/throw")));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, 500, "internal_error");
  // Still serving.
  ASSERT_TRUE(client.Send(Get("/")));
  ASSERT_TRUE(client.Read().has_value());
}

TEST_F(HttpServerTest, InvalidHandlerStatusGets500) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send(Get("/status?code=42")));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, 500, "internal_error");
}

TEST_F(HttpServerTest, UnsafeResponseFieldsAreDropped) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send(Get("/inject")));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(r->Has("x-split"));
  EXPECT_FALSE(r->Has("set-cookie"));
  EXPECT_EQ(r->Header("x-ok"), "fine");
}

TEST_F(HttpServerTest, ExpectContinueGets100BeforeTheBody) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(
      client.Send("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                  "Expect: 100-continue\r\n\r\n"));
  std::optional<RawResponse> interim = client.Read();
  ASSERT_TRUE(interim.has_value());
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(client.Send("data"));
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(absl::EndsWith(r->body, "body=data"));
}

TEST_F(HttpServerTest, CustomErrorRendererIsUsed) {
  HttpServerOptions options = Options();
  options.error_renderer = [](int status, absl::string_view code,
                              absl::string_view message,
                              absl::string_view request_id) {
    HttpResponse response;
    response.status = status;
    response.body = absl::StrCat(code, "|", request_id);
    return response;
  };
  StartServer(options);
  RawClient client(port());
  client.Send("BAD\r\n\r\n");
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->body,
            absl::StrCat("invalid_request|", r->Header("x-request-id")));
  EXPECT_EQ(r->Header("x-test-common"), "yes");
}

TEST_F(HttpServerTest, ShutdownLetsAnInFlightRequestFinishAndRefusesNewOnes) {
  StartServer();
  const int bound = port();
  RawClient client(bound);
  ASSERT_TRUE(client.Send(Get("/never")));
  ASSERT_TRUE(Eventually([&] { return ParkedCount() == 1; }))
      << "the request never reached the handler";
  RawClient idle(bound);  // waiting for its first request
  ASSERT_TRUE(Eventually([&] { return server_->open_connections() == 2; }));

  // A grace no test run reaches: Shutdown must return because the last
  // connection closed, not because the grace ran out (else this hangs).
  absl::Notification shut_down;
  std::thread stopper([&] {
    server_->Shutdown(absl::Hours(1));
    shut_down.Notify();
  });
  // The listener closes: new connections are refused.
  EXPECT_TRUE(Eventually([&] {
    RawClient late(bound);
    return !late.connected() && late.connect_errno() == ECONNREFUSED;
  }));
  EXPECT_TRUE(idle.WaitClosed(kPatience));
  // The parked request keeps it from finishing until it is answered.
  EXPECT_FALSE(shut_down.HasBeenNotified());

  AnswerParked("late done");
  std::optional<RawResponse> r = client.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "late done");
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(client.WaitClosed());
  stopper.join();
  EXPECT_EQ(server_->open_connections(), 0u);
}

TEST_F(HttpServerTest, ShutdownClosesWhatIsLeftAfterTheGrace) {
  StartServer();
  RawClient client(port());
  ASSERT_TRUE(client.Send(Get("/never")));
  ASSERT_TRUE(Eventually([&] { return ParkedCount() == 1; }))
      << "the request never reached the handler";
  const absl::Time start = absl::Now();
  server_->Shutdown(absl::Milliseconds(200));
  // It waited for the grace (a lower bound, which no load can break), then
  // closed the connection whose request was never answered.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  EXPECT_TRUE(client.WaitClosed(kPatience));
  EXPECT_TRUE(client.unread().empty());
}

TEST_F(HttpServerTest, ConnectionsOverTheLimitGet503) {
  HttpServerOptions options = Options();
  options.max_connections = 2;
  StartServer(options);
  auto a = std::make_unique<RawClient>(port());
  RawClient b(port());
  for (RawClient* c : {a.get(), &b}) {  // both registered before the third
    ASSERT_TRUE(c->Send(Get("/")));
    ASSERT_TRUE(c->Read().has_value());
  }
  EXPECT_EQ(server_->open_connections(), 2u);
  {
    RawClient over(port());
    ASSERT_TRUE(over.connected());
    over.Send(Get("/"));
    std::optional<RawResponse> r = over.Read();
    ASSERT_TRUE(r.has_value());
    ExpectError(*r, 503, "service_unavailable");
    EXPECT_TRUE(over.WaitClosed());
  }
  EXPECT_EQ(server_->open_connections(), 2u);
  // Closing one makes room again.
  a.reset();
  ASSERT_TRUE(Eventually([&] { return server_->open_connections() == 1; }));
  RawClient next(port());
  ASSERT_TRUE(next.Send(Get("/")));
  std::optional<RawResponse> r = next.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, ConcurrentClientsAreAllAnswered) {
  StartServer();
  constexpr int kThreads = 8;
  constexpr int kRequests = 200;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      std::unique_ptr<RawClient> client;
      for (int i = 0; i < kRequests; ++i) {
        if (i % 50 == 0) client = std::make_unique<RawClient>(port());
        const std::string body = absl::StrCat(t, "-", i);
        if (!client->Send(Post("/c", body))) return;
        std::optional<RawResponse> r = client->Read();
        if (r.has_value() && r->status == 200 &&
            absl::EndsWith(r->body, absl::StrCat("body=", body))) {
          ok.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& c : clients) c.join();
  EXPECT_EQ(ok.load(), kThreads * kRequests);
  EXPECT_TRUE(Eventually([&] {
    return server_->requests_served() == kThreads * kRequests;
  })) << server_->requests_served();
}

TEST(HttpServerStartTest, FailsWithUnavailableNamingTheAddressWhenTaken) {
  HttpServerOptions options;
  options.port = 0;
  options.threads = 1;
  HttpServer a(options, [](HttpRequest, Responder) {});
  ASSERT_TRUE(a.Start().ok());
  options.port = a.bound_port();
  HttpServer b(options, [](HttpRequest, Responder) {});
  const absl::Status status = b.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_TRUE(absl::StrContains(status.message(),
                                absl::StrCat("127.0.0.1:", a.bound_port())))
      << status;
  EXPECT_EQ(a.Start().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(HttpServerStartTest, RejectsAnAddressThatIsNotAnIpLiteral) {
  HttpServerOptions options;
  options.address = "localhost";
  options.port = 0;
  HttpServer server(options, [](HttpRequest, Responder) {});
  EXPECT_EQ(server.Start().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HttpServerStartTest, ShutdownWithoutStartIsANoOp) {
  HttpServer server(HttpServerOptions{}, [](HttpRequest, Responder) {});
  server.Shutdown(absl::Seconds(1));
  EXPECT_EQ(server.bound_port(), 0);
}

}  // namespace
}  // namespace lumo::gateway
