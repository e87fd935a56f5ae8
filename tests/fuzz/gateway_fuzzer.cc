// Fuzzes the whole gateway on raw bytes. Each input is sent, as it is, over
// a new loopback TCP connection to a real HttpServer whose handler is a real
// Gateway (the route table of every LumoKeys proto, the portal pages, a
// service token and trusted proxies), so the bytes go through framing and
// limits, portal pages, routing, transcoding, the credential-in-URL check,
// header to metadata, session cookies, the forwarded client address and the
// generic gRPC client call, into a real gRPC server (FakeUpstream) on
// loopback. That upstream answers with a status, an error message and
// metadata derived from what it received (escaped as the real server
// escapes it), so the reply path (error mapping, rate-limit headers,
// Retry-After, cookies) sees request-controlled values too.
//
// Two gateways run: inputs of even length go to one that trusts 127.0.0.0/8
// as proxies and reads X-Forwarded-For, odd ones to one that reads
// Forwarded (RFC 7239). Connections come from 127.1.x.y source addresses
// (see Exchange), so the TCP peer is always a trusted proxy.
//
// Properties:
//   * the process survives every input (gRPC aborts on illegal metadata;
//     sanitizer findings abort too);
//   * every exchange ends, with an answer or the server closing, within
//     8 s (the server's own limits are 2-3 s here);
//   * the first response, if any (an incomplete request is closed without
//     one), is HTTP/1.1 with a status the gateway documents, never 500
//     (the upstream never answers with a code that maps to 500, and the
//     empty reply parses as every reply type).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gateway/gateway.h"
#include "gateway/http/http_server.h"
#include "server/core/metadata_text.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/gateway/fake_upstream.h"

namespace {

using lumo::gateway::Gateway;
using lumo::gateway::GatewayOptions;
using lumo::gateway::HttpServer;
using lumo::gateway::HttpServerOptions;
using lumo::testing::FakeUpstream;
using lumo::testing::UpstreamAnswer;
using lumo::testing::UpstreamCall;

// Short limits keep every input well inside libFuzzer's -timeout.
constexpr absl::Duration kUpstreamDeadline = absl::Seconds(2);
constexpr absl::Duration kRequestTimeout = absl::Seconds(3);
constexpr absl::Duration kExchangeTimeout = absl::Seconds(8);

UpstreamAnswer Answer(const UpstreamCall& call) {
  UpstreamAnswer answer;
  if (call.method == "/grpc.health.v1.Health/Check") {
    answer.reply = "\x08\x01";
    return answer;
  }
  static constexpr grpc::StatusCode kCodes[] = {
      grpc::StatusCode::OK,
      grpc::StatusCode::OK,
      grpc::StatusCode::OK,
      grpc::StatusCode::INVALID_ARGUMENT,
      grpc::StatusCode::FAILED_PRECONDITION,
      grpc::StatusCode::UNAUTHENTICATED,
      grpc::StatusCode::PERMISSION_DENIED,
      grpc::StatusCode::NOT_FOUND,
      grpc::StatusCode::ALREADY_EXISTS,
      grpc::StatusCode::RESOURCE_EXHAUSTED,
      grpc::StatusCode::UNAVAILABLE,
  };
  const size_t hash = std::hash<std::string>{}(call.request) ^
                      std::hash<std::string>{}(call.Get("x-lumo-user-agent"));
  answer.code = kCodes[hash % (sizeof(kCodes) / sizeof(kCodes[0]))];
  // Status messages are not metadata values: gRPC percent-encodes them, so
  // the raw request bytes are fine (the server's messages quote input too).
  answer.message = call.request;
  auto escaped = [&](const std::string& key) {
    return lumo::core::EscapeMetadataValue(call.Get(key), 64);
  };
  answer.initial_metadata = {
      {"x-ratelimit-limit", escaped("x-api-key")},
      {"x-ratelimit-remaining", escaped("authorization")},
      {"x-ratelimit-reset", lumo::core::EscapeMetadataValue(call.request, 64)},
  };
  answer.trailing_metadata = {
      {"lumo-error-code", escaped("x-lumo-user-agent")},
      {"retry-after", escaped("x-lumo-client-ip")},
  };
  return answer;
}

struct Harness {
  std::unique_ptr<FakeUpstream> upstream;
  std::unique_ptr<Gateway> gateways[2];
  std::unique_ptr<HttpServer> servers[2];
};

[[noreturn]] void SetupFailed(absl::string_view what) {
  std::fprintf(stderr, "gateway_fuzzer set-up: %.*s\n",
               static_cast<int>(what.size()), what.data());
  std::abort();
}

// Built once; never destroyed (its threads serve until the process exits).
Harness& TheHarness() {
  static Harness* harness = [] {
    auto* h = new Harness;
    h->upstream = std::make_unique<FakeUpstream>(Answer, /*record=*/false);
    absl::StatusOr<std::vector<const google::protobuf::ServiceDescriptor*>>
        services = lumo::gateway::LumoServices();
    if (!services.ok()) SetupFailed(services.status().message());
    lumo::gateway::PortalOptions portal_options;
    portal_options.dir = LUMO_PORTAL_DIR;
    absl::StatusOr<std::unique_ptr<lumo::gateway::Portal>> portal =
        lumo::gateway::Portal::Load(portal_options);
    if (!portal.ok()) SetupFailed(portal.status().message());
    std::shared_ptr<const lumo::gateway::Portal> shared_portal =
        *std::move(portal);
    const char* headers[2] = {"x-forwarded-for", "forwarded"};
    for (int i = 0; i < 2; ++i) {
      GatewayOptions options;
      options.services = *services;
      options.upstream = h->upstream->NewChannel();
      options.upstream_deadline = kUpstreamDeadline;
      options.service_token = "fuzz-service-token";
      absl::StatusOr<lumo::gateway::TrustedProxies> proxies =
          lumo::gateway::TrustedProxies::Parse("127.0.0.0/8", headers[i]);
      if (!proxies.ok()) SetupFailed(proxies.status().message());
      options.trusted_proxies = *std::move(proxies);
      options.portal = shared_portal;
      absl::StatusOr<std::unique_ptr<Gateway>> gateway =
          Gateway::Create(std::move(options));
      if (!gateway.ok()) SetupFailed(gateway.status().message());
      h->gateways[i] = *std::move(gateway);

      HttpServerOptions http;
      http.address = "127.0.0.1";
      http.port = 0;
      http.threads = 2;
      http.max_header_bytes = 16 * 1024;
      http.max_body_bytes = 4 * 1024;  // small, so the fuzzer reaches it
      http.request_timeout = kRequestTimeout;
      http.idle_timeout = kRequestTimeout;
      http.common_headers = lumo::gateway::SecurityHeaders();
      http.error_renderer = [](int status, absl::string_view code,
                               absl::string_view message, absl::string_view) {
        return lumo::gateway::ErrorResponse(status, code, message);
      };
      Gateway* g = h->gateways[i].get();
      h->servers[i] = std::make_unique<HttpServer>(
          http, [g](lumo::gateway::HttpRequest request,
                    lumo::gateway::Responder respond) {
            g->Handle(std::move(request), std::move(respond));
          });
      if (absl::Status started = h->servers[i]->Start(); !started.ok()) {
        SetupFailed(started.message());
      }
    }
    return h;
  }();
  return *harness;
}

// Waits until `fd` is ready for `events`; false once `deadline` passed.
// libFuzzer's timer signal interrupts blocking calls, so every call here
// resumes after EINTR.
bool WaitFor(int fd, short events, absl::Time deadline) {
  for (;;) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) return false;
    pollfd p = {fd, events, 0};
    const int ready = poll(&p, 1, static_cast<int>(left));
    if (ready > 0) return true;
    if (ready == 0) return false;
    FUZZ_CHECK(errno == EINTR);
  }
}

// Sends `input` on a new connection to `port`, half-closes, and returns
// everything the server wrote until it closed.
std::string Exchange(int port, absl::string_view input) {
  // The server must finish (answer or close) well within its own limits.
  const absl::Time deadline = absl::Now() + kExchangeTimeout;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(fd >= 0);
  // The connection that half-closes first ends in TIME_WAIT for a minute,
  // holding its port: a long run would run out of ephemeral ports on one
  // source address, so each connection comes from the next of 64,516
  // loopback addresses (127.1.1.1 ... 127.1.254.254; all trusted proxies).
  static uint32_t next_source = 0;
  const uint32_t n = next_source++ % (254 * 254);
  sockaddr_in source{};
  source.sin_family = AF_INET;
  source.sin_addr.s_addr =
      htonl((127u << 24) | (1u << 16) | ((1 + n / 254) << 8) | (1 + n % 254));
  FUZZ_CHECK(bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof(source)) ==
             0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
      0) {
    // Interrupted: the handshake goes on; its outcome is in SO_ERROR.
    FUZZ_CHECK(errno == EINTR);
    FUZZ_CHECK(WaitFor(fd, POLLOUT, deadline));
    int error = 0;
    socklen_t length = sizeof(error);
    FUZZ_CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 &&
               error == 0);
  }
  size_t sent = 0;
  while (sent < input.size()) {
    const ssize_t n =
        send(fd, input.data() + sent, input.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the server answered early and closed
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  std::string response;
  char buffer[16 * 1024];
  for (;;) {
    FUZZ_CHECK(WaitFor(fd, POLLIN, deadline));
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // closed (or reset after the response)
    response.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return response;
}

bool IsDocumentedStatus(int status) {
  switch (status) {
    case 200:
    case 201:
    case 204:
    case 400:
    case 401:
    case 403:
    case 404:
    case 405:
    case 408:
    case 409:
    case 413:
    case 414:
    case 415:
    case 429:
    case 431:
    case 503:
    case 505:
      return true;
    default:
      return false;
  }
}

// The status of the first final response in `response`.
int FirstStatus(absl::string_view response) {
  while (true) {
    FUZZ_CHECK(absl::StartsWith(response, "HTTP/1.1 ") &&
               response.size() >= 12);
    int status = 0;
    FUZZ_CHECK(absl::SimpleAtoi(response.substr(9, 3), &status));
    if (status != 100) return status;
    const size_t end = response.find("\r\n\r\n");
    FUZZ_CHECK(end != absl::string_view::npos);
    response.remove_prefix(end + 4);
    if (response.empty()) return 0;  // closed after 100 Continue
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Harness& harness = TheHarness();
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  HttpServer& server = *harness.servers[size % 2];
  const std::string response = Exchange(server.bound_port(), input);
  // Let the server finish with the connection (at most 1 s) before the
  // next input, so that its frees are not counted in the next one: fewer
  // of libFuzzer's per-input leak checks, which cost more than the input.
  for (int i = 0; i < 10000 && server.open_connections() > 0; ++i) {
    usleep(100);
  }
  if (response.empty()) return 0;
  const int status = FirstStatus(response);
  if (status != 0 && !IsDocumentedStatus(status)) {
    std::fprintf(stderr, "undocumented status %d:\n%.300s\n", status,
                 response.c_str());
    std::abort();
  }
  return 0;
}
