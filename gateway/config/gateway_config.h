// lumokeys-gateway's configuration: its flags (defined in
// gateway_config.cc, each also settable from the environment and a config
// file, see server/shared/process/flag_config.h) and their conversion into
// the options the gateway and its HTTP server take. The one place that
// reads the gateway's flags.
//
// Thread-compatible: read the flags once, from main(), after parsing.
#ifndef LUMOKEYS_GATEWAY_CONFIG_GATEWAY_CONFIG_H_
#define LUMOKEYS_GATEWAY_CONFIG_GATEWAY_CONFIG_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/client_address.h"
#include "gateway/http/http_server.h"

namespace lumo::gateway {

// How the gateway reaches lumokeys-server over TLS; ca_file empty:
// plaintext.
struct UpstreamTlsFiles {
  std::string ca_file;      // --upstream_tls_ca_file
  std::string cert_file;    // --upstream_tls_cert_file (client certificate)
  std::string key_file;     // --upstream_tls_key_file
  std::string server_name;  // --upstream_tls_server_name ("": the host)
};

struct GatewayConfig {
  // --print_openapi: print the OpenAPI document and exit.
  bool print_openapi = false;
  // --listen as given (host:port), for the log line.
  std::string listen;
  // The HTTP server: address and port from --listen, threads, limits,
  // timeouts, TLS files. Left for the serve command: the common headers and
  // the error renderer.
  HttpServerOptions http;
  std::string upstream;
  UpstreamTlsFiles upstream_tls;
  absl::Duration upstream_deadline;
  // Empty only with insecure_dev_no_service_token (or print_openapi).
  std::string service_token_file;
  bool insecure_dev_no_service_token = false;
  TrustedProxies trusted_proxies;
  // Empty: no portal pages.
  std::string portal_dir;
  // Portal cookies get Secure and __Host-: --secure_cookies, or the gateway
  // serves HTTPS itself.
  bool secure_cookies = false;
  absl::Duration shutdown_grace;

  // (flag, path) of every secret file the flags name, unset ones included
  // (process::CheckSecretFiles skips those).
  std::vector<std::pair<std::string, std::string>> SecretFiles() const;
};

// The configuration the parsed flags describe; `args` are the positional
// arguments (argv[0] first, as process::Start returns them) and the gateway
// takes none. INVALID_ARGUMENT naming the settings when: an argument is
// given; --listen is not host:port; TLS flags that must come together do
// not; --upstream_tls_cert_file or --upstream_tls_server_name is set
// without --upstream_tls_ca_file; --service_token_file and
// --insecure_dev_no_service_token are both set, or neither (unless
// --print_openapi); --trusted_proxies or --forwarded_header does not parse,
// or --trusted_proxies is set without --service_token_file; a size or
// thread count is negative. FAILED_PRECONDITION when --listen or
// --upstream is a non-loopback plaintext address without
// --allow_remote_plaintext.
absl::StatusOr<GatewayConfig> GatewayConfigFromFlags(
    const std::vector<char*>& args);

// The start of lumokeys-gateway --help.
extern const char kGatewayUsage[];

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_CONFIG_GATEWAY_CONFIG_H_
