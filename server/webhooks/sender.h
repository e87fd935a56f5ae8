// Sending one webhook attempt over HTTP(S) (docs/webhooks.md "One
// attempt", "Address rules"): the URL's host resolved once, every address
// checked against the refused classes, the connection made to a checked
// address with the URL's host for TLS (SNI and certificate name) and Host,
// one overall deadline, redirects never followed, the response's status
// read and its body not.
#ifndef LUMOKEYS_SERVER_WEBHOOKS_SENDER_H_
#define LUMOKEYS_SERVER_WEBHOOKS_SENDER_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/net.h"
#include "server/service/webhook_service.h"

namespace lumo::webhooks {

struct SendRequest {
  std::string url;
  std::string body;  // application/json
  // Extra headers (name, value); Host, Content-Type, Content-Length and
  // User-Agent are the sender's.
  std::vector<std::pair<std::string, std::string>> headers;
};

struct SendResult {
  bool delivered = false;  // a 2xx status
  int http_status = 0;     // 0: none was read
  absl::Duration latency;
  // For a failed attempt: what went wrong, in our own words (never the
  // response body), e.g. "HTTP 503", "timeout after 5s",
  // "refused address 10.0.0.7 (private)".
  std::string error;
};

// Thread-safe implementations: Send may be called from many threads.
class Sender {
 public:
  virtual ~Sender() = default;
  virtual SendResult Send(const SendRequest& request) = 0;
};

struct HttpsSenderOptions {
  // The whole attempt: resolve, connect, TLS, request, response head.
  absl::Duration timeout = absl::Seconds(5);
  service::WebhookAddressPolicy addresses;
  // PEM CA certificates trusted besides the system's ("": none).
  std::string ca_file;
};

// The production sender (Boost.Beast over OpenSSL).
// INVALID_ARGUMENT when the CA file cannot be loaded.
absl::StatusOr<std::unique_ptr<Sender>> NewHttpsSender(
    HttpsSenderOptions options);

// Whether a delivery may connect to `ip` under `policy`; otherwise the
// reason ("refused address 10.0.0.7 (private)"). `http`: the URL's scheme
// is plain http, which only loopback addresses may take (and only when the
// policy allows http).
absl::Status CheckAddress(const core::IpAddress& ip, bool http,
                          const service::WebhookAddressPolicy& policy);

}  // namespace lumo::webhooks

#endif  // LUMOKEYS_SERVER_WEBHOOKS_SENDER_H_
