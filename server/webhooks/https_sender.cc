// The production Sender: Boost.Beast over Boost.Asio and OpenSSL. Each
// attempt runs its own io_context on the calling thread, one phase at a
// time, each bounded by what is left of the attempt's deadline.
#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/core/address_rules.h"
#include "server/webhooks/sender.h"

namespace lumo::webhooks {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr char kUserAgent[] = "LumoKeys-Webhooks/1";
// The response head may not be larger than this.
constexpr uint32_t kMaxResponseHeader = 8 * 1024;

struct Target {
  bool https = true;
  std::string host;  // without brackets
  std::string port;
  std::string path;  // path and query, at least "/"
  bool host_is_ip = false;
};

// The parts of a URL that ValidateWebhookUrl accepted.
absl::StatusOr<Target> ParseTarget(absl::string_view url) {
  Target t;
  const size_t sep = url.find("://");
  if (sep == absl::string_view::npos) {
    return absl::InvalidArgumentError("not an absolute URL");
  }
  const std::string scheme = absl::AsciiStrToLower(url.substr(0, sep));
  if (scheme != "https" && scheme != "http") {
    return absl::InvalidArgumentError("scheme must be https or http");
  }
  t.https = scheme == "https";
  absl::string_view rest = url.substr(sep + 3);
  const size_t path_start = rest.find_first_of("/?");
  absl::string_view authority = rest.substr(0, path_start);
  t.path = path_start == absl::string_view::npos
               ? "/"
               : std::string(rest.substr(path_start));
  if (absl::StartsWith(t.path, "?")) t.path = absl::StrCat("/", t.path);
  absl::string_view port;
  if (absl::StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("malformed host");
    }
    t.host = std::string(authority.substr(1, close - 1));
    absl::string_view after = authority.substr(close + 1);
    if (absl::StartsWith(after, ":")) port = after.substr(1);
  } else {
    const size_t colon = authority.rfind(':');
    t.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) port = authority.substr(colon + 1);
  }
  if (t.host.empty()) return absl::InvalidArgumentError("no host");
  t.port = port.empty() ? (t.https ? "443" : "80") : std::string(port);
  t.host_is_ip = core::IpAddress::Parse(t.host).ok();
  return t;
}

std::string SecondsText(absl::Duration d) {
  return absl::StrCat(absl::ToDoubleSeconds(d), "s");
}

// Runs `ioc` until `*done` or `deadline`. On timeout cancels the pending
// operation with `cancel`, lets its handler run, and returns false.
template <typename Cancel>
bool RunUntil(asio::io_context& ioc, const bool* done, absl::Time deadline,
              Cancel cancel) {
  ioc.restart();
  while (!*done) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    ioc.run_one_for(std::chrono::microseconds(
        std::max<int64_t>(1, absl::ToInt64Microseconds(left))));
  }
  if (*done) return true;
  cancel();
  ioc.restart();
  ioc.run();
  return false;
}

class HttpsSender : public Sender {
 public:
  HttpsSender(HttpsSenderOptions options, std::unique_ptr<ssl::context> tls)
      : options_(std::move(options)), tls_(std::move(tls)) {}

  SendResult Send(const SendRequest& request) override {
    const absl::Time start = absl::Now();
    SendResult result = Attempt(request, start + options_.timeout);
    result.latency = absl::Now() - start;
    return result;
  }

 private:
  SendResult Attempt(const SendRequest& request, absl::Time deadline) {
    SendResult result;
    absl::StatusOr<Target> target = ParseTarget(request.url);
    if (!target.ok()) {
      result.error = absl::StrCat("bad URL: ", target.status().message());
      return result;
    }
    asio::io_context ioc;
    // Resolved once; bounded by the system resolver's own timeout.
    tcp::resolver resolver(ioc);
    boost::system::error_code ec;
    const tcp::resolver::results_type addresses = resolver.resolve(
        target->host, target->port, tcp::resolver::numeric_service, ec);
    if (ec) {
      result.error = absl::StrCat("cannot resolve the host: ", ec.message());
      return result;
    }
    if (absl::Now() >= deadline) return Timeout();
    for (const auto& entry : addresses) {
      absl::StatusOr<core::IpAddress> ip =
          core::IpAddress::Parse(entry.endpoint().address().to_string());
      if (!ip.ok()) {
        result.error = "resolved to an unusable address";
        return result;
      }
      if (absl::Status allowed =
              CheckAddress(*ip, !target->https, options_.addresses);
          !allowed.ok()) {
        result.error = std::string(allowed.message());
        return result;
      }
    }
    if (target->https) {
      ssl::stream<tcp::socket> stream(ioc, *tls_);
      if (!target->host_is_ip &&
          SSL_set_tlsext_host_name(stream.native_handle(),
                                   target->host.c_str()) != 1) {
        result.error = "TLS: cannot set the server name";
        return result;
      }
      stream.set_verify_mode(ssl::verify_peer);
      stream.set_verify_callback(ssl::host_name_verification(target->host));
      if (!Connect(ioc, stream.next_layer(), addresses, deadline, &result)) {
        return result;
      }
      bool done = false;
      stream.async_handshake(ssl::stream_base::client,
                             [&](const boost::system::error_code& e) {
                               ec = e;
                               done = true;
                             });
      if (!RunUntil(ioc, &done, deadline,
                    [&] { stream.next_layer().close(); })) {
        return Timeout();
      }
      if (ec) {
        result.error = absl::StrCat("TLS: ", ec.message());
        return result;
      }
      Exchange(ioc, stream, stream.next_layer(), *target, request, deadline,
               &result);
      return result;
    }
    tcp::socket socket(ioc);
    if (!Connect(ioc, socket, addresses, deadline, &result)) return result;
    Exchange(ioc, socket, socket, *target, request, deadline, &result);
    return result;
  }

  SendResult Timeout() const {
    SendResult r;
    r.error = absl::StrCat("timeout after ", SecondsText(options_.timeout));
    return r;
  }

  bool Connect(asio::io_context& ioc, tcp::socket& socket,
               const tcp::resolver::results_type& addresses,
               absl::Time deadline, SendResult* result) {
    bool done = false;
    boost::system::error_code ec;
    asio::async_connect(
        socket, addresses,
        [&](const boost::system::error_code& e, const tcp::endpoint&) {
          ec = e;
          done = true;
        });
    if (!RunUntil(ioc, &done, deadline, [&] { socket.close(); })) {
      *result = Timeout();
      return false;
    }
    if (ec) {
      result->error = absl::StrCat("cannot connect: ", ec.message());
      return false;
    }
    return true;
  }

  // Writes the request and reads the response head; the body is not read.
  template <typename Stream>
  void Exchange(asio::io_context& ioc, Stream& stream, tcp::socket& socket,
                const Target& target, const SendRequest& request,
                absl::Time deadline, SendResult* result) {
    http::request<http::string_body> req{http::verb::post, target.path, 11};
    const bool default_port = target.port == (target.https ? "443" : "80");
    const std::string host = absl::StrContains(target.host, ':')
                                 ? absl::StrCat("[", target.host, "]")
                                 : target.host;
    req.set(http::field::host,
            default_port ? host : absl::StrCat(host, ":", target.port));
    req.set(http::field::user_agent, kUserAgent);
    req.set(http::field::content_type, "application/json");
    req.set(http::field::connection, "close");
    for (const auto& [name, value] : request.headers) req.set(name, value);
    req.body() = request.body;
    req.prepare_payload();

    bool done = false;
    boost::system::error_code ec;
    http::async_write(stream, req,
                      [&](const boost::system::error_code& e, size_t) {
                        ec = e;
                        done = true;
                      });
    if (!RunUntil(ioc, &done, deadline, [&] { socket.close(); })) {
      *result = Timeout();
      return;
    }
    if (ec) {
      result->error = absl::StrCat("cannot send: ", ec.message());
      return;
    }
    beast::flat_buffer buffer(kMaxResponseHeader);
    http::response_parser<http::empty_body> parser;
    parser.header_limit(kMaxResponseHeader);
    done = false;
    http::async_read_header(stream, buffer, parser,
                            [&](const boost::system::error_code& e, size_t) {
                              ec = e;
                              done = true;
                            });
    if (!RunUntil(ioc, &done, deadline, [&] { socket.close(); })) {
      *result = Timeout();
      return;
    }
    socket.close(ec);
    if (!parser.is_header_done()) {
      result->error = "no valid HTTP response";
      return;
    }
    const int status = static_cast<int>(parser.get().result_int());
    result->http_status = status;
    result->delivered = status >= 200 && status < 300;
    if (!result->delivered) {
      result->error =
          status >= 300 && status < 400
              ? absl::StrCat("HTTP ", status, " (redirects are not followed)")
              : absl::StrCat("HTTP ", status);
    }
  }

  const HttpsSenderOptions options_;
  const std::unique_ptr<ssl::context> tls_;
};

}  // namespace

absl::Status CheckAddress(const core::IpAddress& ip, bool http,
                          const service::WebhookAddressPolicy& policy) {
  const core::AddressClass cls = core::ClassifyAddress(ip);
  const bool allowed =
      std::any_of(policy.allowed_cidrs.begin(), policy.allowed_cidrs.end(),
                  [&](const core::Cidr& c) { return c.Contains(ip); });
  if (cls != core::AddressClass::kPublic && !allowed) {
    return absl::PermissionDeniedError(
        absl::StrCat("refused address ", ip.ToString(), " (",
                     core::AddressClassName(cls), ")"));
  }
  if (http && (!policy.allow_http || cls != core::AddressClass::kLoopback)) {
    return absl::PermissionDeniedError(
        absl::StrCat("refused plain http to ", ip.ToString(),
                     " (http only to loopback, when the operator allows it)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Sender>> NewHttpsSender(
    HttpsSenderOptions options) {
  auto tls = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  tls->set_default_verify_paths(ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load the system CAs: ", ec.message()));
  }
  if (!options.ca_file.empty()) {
    tls->load_verify_file(options.ca_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot load --webhook_ca_file: ", ec.message()));
    }
  }
  return std::unique_ptr<Sender>(
      new HttpsSender(std::move(options), std::move(tls)));
}

}  // namespace lumo::webhooks
