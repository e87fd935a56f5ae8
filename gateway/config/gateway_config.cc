#include "gateway/config/gateway_config.h"

#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/shared/process/flag_checks.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:8080",
          "HTTP listen address host:port");
ABSL_FLAG(std::string, upstream, "127.0.0.1:50051",
          "lumokeys-server gRPC address host:port");
ABSL_FLAG(std::string, service_token_file, "",
          "File with the service token presented to the server (lets it trust "
          "the forwarded client address); required unless "
          "--insecure_dev_no_service_token");
ABSL_FLAG(bool, insecure_dev_no_service_token, false,
          "Development set-ups only: run without --service_token_file. The "
          "server then sees the gateway's address for every client, so key "
          "CIDR lists and per-address limits do not work behind it");
ABSL_FLAG(std::string, trusted_proxies, "",
          "Comma-separated CIDR blocks or addresses of reverse proxies in "
          "front of the gateway: only for requests from these peers is the "
          "client address taken from --forwarded_header (the right-most hop "
          "that is not a trusted proxy); needs --service_token_file");
ABSL_FLAG(std::string, forwarded_header, "x-forwarded-for",
          "The header the trusted proxies maintain: x-forwarded-for or "
          "forwarded (RFC 7239); the other one is ignored");
ABSL_FLAG(int, threads, 0, "HTTP I/O threads (0: one per core)");
ABSL_FLAG(int64_t, max_body_bytes, 1024 * 1024,
          "Largest accepted request body; larger gets 413 before parsing");
ABSL_FLAG(int64_t, max_header_bytes, 16 * 1024,
          "Largest accepted request head; larger gets 431");
ABSL_FLAG(absl::Duration, request_timeout, absl::Seconds(30),
          "Time to receive a whole request and answer it");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "Keep-alive idle timeout");
ABSL_FLAG(absl::Duration, upstream_deadline, absl::Seconds(10),
          "Deadline of each call to the server");
ABSL_FLAG(bool, print_openapi, false,
          "Print the generated OpenAPI document and exit");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "How long in-flight requests may finish after SIGTERM");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate chain: with --tls_key_file the gateway serves "
          "HTTPS only (TLS 1.2+); reloaded on SIGHUP");
ABSL_FLAG(std::string, tls_key_file, "",
          "Unencrypted PEM private key of --tls_cert_file");
ABSL_FLAG(bool, allow_remote_plaintext, false,
          "Allow plain HTTP on a non-loopback --listen and a plaintext "
          "--upstream on a non-loopback address (otherwise refused)");
ABSL_FLAG(std::string, upstream_tls_ca_file, "",
          "PEM CA bundle of the server's certificate: talk TLS to "
          "--upstream (unset: plaintext)");
ABSL_FLAG(std::string, upstream_tls_cert_file, "",
          "PEM client certificate presented to the server (its mTLS port)");
ABSL_FLAG(std::string, upstream_tls_key_file, "",
          "Unencrypted PEM key of --upstream_tls_cert_file");
ABSL_FLAG(std::string, upstream_tls_server_name, "",
          "Name the server certificate must carry (default: the host of "
          "--upstream)");
// --log_level, --metrics_listen and --metrics_allow_remote come from
// server/observability/observability_flags; --config and
// --allow_insecure_secret_files from server/shared/process.
ABSL_FLAG(std::string, portal_dir, LUMO_DEFAULT_PORTAL_DIR,
          "Directory of the tenant portal's static files; empty: no portal "
          "pages");
ABSL_FLAG(bool, secure_cookies, false,
          "Browsers reach the gateway over HTTPS (directly or through a TLS "
          "proxy): portal cookies get Secure and the __Host- prefix, and "
          "Origin must be https");

namespace lumo::gateway {

const char kGatewayUsage[] =
    "LumoKeys HTTP/JSON gateway.\n"
    "  lumokeys-gateway --upstream=127.0.0.1:50051 --listen=127.0.0.1:8080\n"
    "SIGTERM/SIGINT drain and stop; SIGHUP reloads the TLS files.";

namespace {

using process::FlagValue;

// --listen split into the HTTP server's address and port.
absl::Status ListenFromFlags(GatewayConfig& config) {
  config.listen = absl::GetFlag(FLAGS_listen);
  const size_t colon = config.listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(config.listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen: expected host:port, got ", config.listen));
  }
  std::string host = config.listen.substr(0, colon);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }
  config.http.address = host;
  config.http.port = port;
  return absl::OkStatus();
}

// The HTTP server's limits and timeouts.
absl::Status HttpLimitsFromFlags(HttpServerOptions& http) {
  const int threads = absl::GetFlag(FLAGS_threads);
  const int64_t max_body = absl::GetFlag(FLAGS_max_body_bytes);
  const int64_t max_header = absl::GetFlag(FLAGS_max_header_bytes);
  if (threads < 0 || max_body < 0 || max_header < 0) {
    return absl::InvalidArgumentError(
        "--threads, --max_body_bytes and --max_header_bytes must not be "
        "negative");
  }
  http.threads = threads;
  http.max_body_bytes = static_cast<size_t>(max_body);
  http.max_header_bytes = static_cast<size_t>(max_header);
  http.request_timeout = absl::GetFlag(FLAGS_request_timeout);
  http.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  return absl::OkStatus();
}

// TLS flags that go together, and the plaintext rule for both ends.
absl::Status TlsFromFlags(GatewayConfig& config) {
  config.http.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  config.http.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  config.upstream = absl::GetFlag(FLAGS_upstream);
  config.upstream_tls = {absl::GetFlag(FLAGS_upstream_tls_ca_file),
                         absl::GetFlag(FLAGS_upstream_tls_cert_file),
                         absl::GetFlag(FLAGS_upstream_tls_key_file),
                         absl::GetFlag(FLAGS_upstream_tls_server_name)};
  const FlagValue cert{"--tls_cert_file", config.http.tls_cert_file};
  const FlagValue key{"--tls_key_file", config.http.tls_key_file};
  const FlagValue upstream_ca{"--upstream_tls_ca_file",
                              config.upstream_tls.ca_file};
  const FlagValue upstream_cert{"--upstream_tls_cert_file",
                                config.upstream_tls.cert_file};
  const FlagValue upstream_key{"--upstream_tls_key_file",
                               config.upstream_tls.key_file};
  const FlagValue server_name{"--upstream_tls_server_name",
                              config.upstream_tls.server_name};
  const bool allow_remote_plaintext =
      absl::GetFlag(FLAGS_allow_remote_plaintext);
  for (const absl::Status& checked :
       {process::SetTogether(cert, key),
        process::SetTogether(upstream_cert, upstream_key),
        process::Needs(upstream_cert, {upstream_ca}),
        process::Needs(server_name, {upstream_ca}),
        process::CheckPlaintextAddress(
            {"--listen", config.listen}, cert.set(), allow_remote_plaintext,
            "plain HTTP", "--tls_cert_file and --tls_key_file are"),
        process::CheckPlaintextAddress({"--upstream", config.upstream},
                                       upstream_ca.set(),
                                       allow_remote_plaintext, "plaintext gRPC",
                                       "--upstream_tls_ca_file is")}) {
    if (!checked.ok()) return checked;
  }
  return absl::OkStatus();
}

// [service token and trusted proxies] (docs/gateway.md, "The client address
// behind proxies").
absl::Status CallerIdentityFromFlags(GatewayConfig& config) {
  config.service_token_file = absl::GetFlag(FLAGS_service_token_file);
  config.insecure_dev_no_service_token =
      absl::GetFlag(FLAGS_insecure_dev_no_service_token);
  if (!config.service_token_file.empty() &&
      config.insecure_dev_no_service_token) {
    return absl::InvalidArgumentError(
        "--insecure_dev_no_service_token contradicts --service_token_file: "
        "set one of them");
  }
  if (config.service_token_file.empty() &&
      !config.insecure_dev_no_service_token && !config.print_openapi) {
    return absl::InvalidArgumentError(
        "--service_token_file is required: without a service token the "
        "server sees the gateway's address for every client, so key CIDR "
        "lists and per-address limits do not hold. For a development "
        "set-up without one, pass --insecure_dev_no_service_token");
  }
  absl::StatusOr<TrustedProxies> proxies =
      TrustedProxies::Parse(absl::GetFlag(FLAGS_trusted_proxies),
                            absl::GetFlag(FLAGS_forwarded_header));
  if (!proxies.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--trusted_proxies / --forwarded_header: ",
                     proxies.status().message()));
  }
  if (!proxies->empty() && config.service_token_file.empty()) {
    return absl::InvalidArgumentError(
        "--trusted_proxies needs --service_token_file");
  }
  config.trusted_proxies = *std::move(proxies);
  return absl::OkStatus();
}

}  // namespace

std::vector<std::pair<std::string, std::string>> GatewayConfig::SecretFiles()
    const {
  return {{"--service_token_file", service_token_file},
          {"--tls_key_file", http.tls_key_file},
          {"--upstream_tls_key_file", upstream_tls.key_file}};
}

absl::StatusOr<GatewayConfig> GatewayConfigFromFlags(
    const std::vector<char*>& args) {
  if (args.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", args[1],
                     "' (lumokeys-gateway takes flags only)"));
  }
  GatewayConfig config;
  config.print_openapi = absl::GetFlag(FLAGS_print_openapi);
  for (absl::Status (*step)(GatewayConfig&) :
       {ListenFromFlags, TlsFromFlags, CallerIdentityFromFlags}) {
    if (absl::Status done = step(config); !done.ok()) return done;
  }
  if (absl::Status limits = HttpLimitsFromFlags(config.http); !limits.ok()) {
    return limits;
  }
  config.upstream_deadline = absl::GetFlag(FLAGS_upstream_deadline);
  config.portal_dir = absl::GetFlag(FLAGS_portal_dir);
  // Serving HTTPS itself implies secure cookies; --secure_cookies covers a
  // TLS-terminating proxy in front of a plaintext gateway.
  config.secure_cookies =
      absl::GetFlag(FLAGS_secure_cookies) || !config.http.tls_cert_file.empty();
  config.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  return config;
}

}  // namespace lumo::gateway
