// lumokeys-gateway: the HTTP/JSON front of lumokeys-server. Routes come from
// the proto annotations; this file only wires flags, the upstream channel,
// the HTTP server and signals.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gateway/gateway.h"
#include "gateway/http/http_server.h"
#include "gateway/observability.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "server/config/flag_config.h"
#include "server/config/process_hardening.h"
#include "server/config/secret_file.h"
#include "server/observability/log.h"
#include "server/observability/metrics.h"
#include "server/observability/metrics_http.h"
#include "server/observability/observability_flags.h"

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
// --log_level, --metrics_listen and
// --metrics_allow_remote come from server/observability/observability_flags.
ABSL_FLAG(std::string, portal_dir, LUMO_DEFAULT_PORTAL_DIR,
          "Directory of the tenant portal's static files; empty: no portal "
          "pages");
ABSL_FLAG(bool, secure_cookies, false,
          "Browsers reach the gateway over HTTPS (directly or through a TLS "
          "proxy): portal cookies get Secure and the __Host- prefix, and "
          "Origin must be https");

namespace {

// The shared JSON log-line library.
[[noreturn]] void Fatal(absl::string_view message) {
  lumo::log::Line(lumo::log::Level::kFatal, message);
  exit(1);
}

void Info(absl::string_view message) { lumo::log::Info(message); }

}  // namespace

int main(int argc, char** argv) {
  // [no core dumps] (docs/hardening.md): before anything is read.
  if (absl::Status hardened = lumo::config::DisableCoreDumps();
      !hardened.ok()) {
    Fatal(hardened.message());
  }
  lumo::config::ParseFlags(
      argc, argv, "LUMO_GATEWAY_",
      "LumoKeys HTTP/JSON gateway.\n"
      "  lumokeys-gateway --upstream=127.0.0.1:50051 --listen=127.0.0.1:8080\n"
      "SIGTERM/SIGINT drain and stop; SIGHUP reloads the TLS files.");
  if (absl::Status ok = lumo::observability::ApplyObservabilityFlags();
      !ok.ok()) {
    Fatal(ok.message());
  }
  // [secret files] (docs/operations.md "Secret files")
  if (absl::Status fit = lumo::config::CheckSecretFiles(
          {{"--service_token_file", absl::GetFlag(FLAGS_service_token_file)},
           {"--tls_key_file", absl::GetFlag(FLAGS_tls_key_file)},
           {"--upstream_tls_key_file",
            absl::GetFlag(FLAGS_upstream_tls_key_file)}},
          [](absl::string_view warning) { lumo::log::Warning(warning); });
      !fit.ok()) {
    Fatal(fit.message());
  }
  lumo::metrics::Registry metrics_registry;
  lumo::gateway::GatewayMetrics gateway_metrics(metrics_registry);
  // Debian's Abseil is built
  // without NDEBUG, so every absl::Mutex::Lock also maintained a lock graph
  // (GraphCycles) - a few per cent of a warm call in the profile
  // (docs/benchmarks.md). Tests keep the default.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const std::string listen = absl::GetFlag(FLAGS_listen);
  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    Fatal(absl::StrCat("--listen: expected host:port, got ", listen));
  }
  std::string host = listen.substr(0, colon);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }

  // Cross-field checks name the settings.
  const bool serves_tls = !absl::GetFlag(FLAGS_tls_cert_file).empty();
  if (serves_tls == absl::GetFlag(FLAGS_tls_key_file).empty()) {
    Fatal("--tls_cert_file and --tls_key_file must be set together");
  }
  if (absl::GetFlag(FLAGS_upstream_tls_cert_file).empty() !=
      absl::GetFlag(FLAGS_upstream_tls_key_file).empty()) {
    Fatal(
        "--upstream_tls_cert_file and --upstream_tls_key_file must be set "
        "together");
  }
  const bool upstream_tls = !absl::GetFlag(FLAGS_upstream_tls_ca_file).empty();
  if (!upstream_tls &&
      (!absl::GetFlag(FLAGS_upstream_tls_cert_file).empty() ||
       !absl::GetFlag(FLAGS_upstream_tls_server_name).empty())) {
    Fatal(
        "--upstream_tls_cert_file and --upstream_tls_server_name need "
        "--upstream_tls_ca_file");
  }
  auto is_loopback = [](absl::string_view address) {
    return absl::StartsWith(address, "127.") ||
           absl::StartsWith(address, "localhost:") ||
           absl::StartsWith(address, "[::1]:") ||
           absl::StartsWith(address, "unix:");
  };
  if (!serves_tls && !is_loopback(listen) &&
      !absl::GetFlag(FLAGS_allow_remote_plaintext)) {
    Fatal(absl::StrCat("--listen=", listen,
                       " is not loopback: plain HTTP is refused there unless "
                       "--allow_remote_plaintext is set (or --tls_cert_file "
                       "and --tls_key_file are)"));
  }
  if (!upstream_tls && !is_loopback(absl::GetFlag(FLAGS_upstream)) &&
      !absl::GetFlag(FLAGS_allow_remote_plaintext)) {
    Fatal(absl::StrCat("--upstream=", absl::GetFlag(FLAGS_upstream),
                       " is not loopback: plaintext gRPC is refused there "
                       "unless --allow_remote_plaintext is set (or "
                       "--upstream_tls_ca_file is)"));
  }
  std::shared_ptr<grpc::ChannelCredentials> upstream_credentials =
      grpc::InsecureChannelCredentials();
  if (upstream_tls) {
    auto read = [](const std::string& path, absl::string_view flag) {
      std::ifstream in(path, std::ios::binary);
      if (!in) Fatal(absl::StrCat(flag, ": cannot read ", path));
      std::stringstream buffer;
      buffer << in.rdbuf();
      return buffer.str();
    };
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = read(absl::GetFlag(FLAGS_upstream_tls_ca_file),
                              "--upstream_tls_ca_file");
    if (!absl::GetFlag(FLAGS_upstream_tls_cert_file).empty()) {
      ssl.pem_cert_chain = read(absl::GetFlag(FLAGS_upstream_tls_cert_file),
                                "--upstream_tls_cert_file");
      ssl.pem_private_key = read(absl::GetFlag(FLAGS_upstream_tls_key_file),
                                 "--upstream_tls_key_file");
    }
    upstream_credentials = grpc::SslCredentials(ssl);
  }

  lumo::gateway::GatewayOptions options;
  options.serves_tls = serves_tls;
  absl::StatusOr<std::vector<const google::protobuf::ServiceDescriptor*>>
      services = lumo::gateway::LumoServices();
  if (!services.ok()) Fatal(services.status().message());
  options.services = *std::move(services);
  // Replies up to 64 MiB: file exports (at most 10,000 audit events, capped
  // at 32 MiB by the server) exceed gRPC's 4 MiB default.
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(64 << 20);
  if (!absl::GetFlag(FLAGS_upstream_tls_server_name).empty()) {
    channel_args.SetSslTargetNameOverride(
        absl::GetFlag(FLAGS_upstream_tls_server_name));
  }
  options.upstream = grpc::CreateCustomChannel(
      absl::GetFlag(FLAGS_upstream), upstream_credentials, channel_args);
  options.upstream_deadline = absl::GetFlag(FLAGS_upstream_deadline);
  options.observer = &gateway_metrics;
  // [service token and trusted proxies] (docs/gateway.md, "The client
  // address behind proxies")
  const bool no_token_dev = absl::GetFlag(FLAGS_insecure_dev_no_service_token);
  if (!absl::GetFlag(FLAGS_service_token_file).empty()) {
    if (no_token_dev) {
      Fatal(
          "--insecure_dev_no_service_token contradicts --service_token_file: "
          "set one of them");
    }
    std::ifstream in(absl::GetFlag(FLAGS_service_token_file));
    if (!in) Fatal("--service_token_file: cannot read the file");
    std::string token;
    std::getline(in, token);
    options.service_token = std::string(absl::StripAsciiWhitespace(token));
    if (options.service_token.empty()) {
      Fatal("--service_token_file: the file holds no token");
    }
  } else if (!no_token_dev && !absl::GetFlag(FLAGS_print_openapi)) {
    Fatal(
        "--service_token_file is required: without a service token the "
        "server sees the gateway's address for every client, so key CIDR "
        "lists and per-address limits do not hold. For a development "
        "set-up without one, pass --insecure_dev_no_service_token");
  }
  {
    absl::StatusOr<lumo::gateway::TrustedProxies> proxies =
        lumo::gateway::TrustedProxies::Parse(
            absl::GetFlag(FLAGS_trusted_proxies),
            absl::GetFlag(FLAGS_forwarded_header));
    if (!proxies.ok()) {
      Fatal(absl::StrCat("--trusted_proxies / --forwarded_header: ",
                         proxies.status().message()));
    }
    if (!proxies->empty() && options.service_token.empty()) {
      Fatal("--trusted_proxies needs --service_token_file");
    }
    options.trusted_proxies = *std::move(proxies);
  }
  // Serving HTTPS itself implies secure cookies; --secure_cookies covers a
  // TLS-terminating proxy in front of a plaintext gateway.
  options.secure_cookies = absl::GetFlag(FLAGS_secure_cookies) || serves_tls;
  if (!absl::GetFlag(FLAGS_portal_dir).empty()) {
    lumo::gateway::PortalOptions portal_options;
    portal_options.dir = absl::GetFlag(FLAGS_portal_dir);
    portal_options.secure_cookies = options.secure_cookies;
    absl::StatusOr<std::unique_ptr<lumo::gateway::Portal>> portal =
        lumo::gateway::Portal::Load(portal_options);
    if (!portal.ok()) Fatal(portal.status().message());
    options.portal = *std::move(portal);
  }
  absl::StatusOr<std::unique_ptr<lumo::gateway::Gateway>> gateway =
      lumo::gateway::Gateway::Create(std::move(options));
  if (!gateway.ok()) Fatal(gateway.status().message());
  if (absl::GetFlag(FLAGS_print_openapi)) {
    printf("%s\n", (*gateway)->openapi_json().c_str());
    return 0;
  }

  lumo::gateway::HttpServerOptions http;
  http.address = host;
  http.port = port;
  http.threads = absl::GetFlag(FLAGS_threads);
  http.max_body_bytes = absl::GetFlag(FLAGS_max_body_bytes);
  http.max_header_bytes = absl::GetFlag(FLAGS_max_header_bytes);
  http.request_timeout = absl::GetFlag(FLAGS_request_timeout);
  http.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  http.common_headers = lumo::gateway::SecurityHeaders();
  http.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  http.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  http.error_renderer = [](int status, absl::string_view code,
                           absl::string_view message, absl::string_view) {
    return lumo::gateway::ErrorResponse(status, code, message);
  };
  lumo::gateway::Gateway* g = gateway->get();
  lumo::gateway::HttpServer server(http, [g](lumo::gateway::HttpRequest request,
                                             lumo::gateway::Responder respond) {
    g->Handle(std::move(request), std::move(respond));
  });
  if (absl::Status started = server.Start(); !started.ok()) {
    Fatal(started.message());
  }
  if (no_token_dev) {
    lumo::log::Warning(
        "no service token (--insecure_dev_no_service_token): the server sees "
        "this gateway's address for every client; a development set-up only");
  }
  Info(absl::StrCat("serving ", serves_tls ? "https" : "http", "://",
                    listen.substr(0, colon), ":", server.bound_port(), " -> ",
                    absl::GetFlag(FLAGS_upstream), " (",
                    (*gateway)->routes().routes().size(), " routes)"));
  metrics_registry.AddCollector(
      "lumo_gateway_open_connections", "HTTP connections open now",
      lumo::metrics::Type::kGauge, [&server] {
        return std::vector<lumo::metrics::Sample>{
            {{}, static_cast<double>(server.open_connections())}};
      });
  lumo::metrics::MetricsHttpServer metrics_server(&metrics_registry);
  if (!lumo::observability::MetricsListenFlag().empty()) {
    if (absl::Status started =
            metrics_server.Start(lumo::observability::MetricsListenFlag());
        !started.ok()) {
      Fatal(absl::StrCat("--metrics_listen: ", started.message()));
    }
    lumo::log::Line(lumo::log::Level::kInfo, "serving metrics")
        .Str("metrics_listen", lumo::observability::MetricsListenFlag())
        .Int("metrics_port", metrics_server.bound_port());
  }

  int signal_number = 0;
  for (;;) {
    sigwait(&signals, &signal_number);
    if (signal_number != SIGHUP) break;
    // New connections get the new certificate.
    absl::Status reloaded = server.ReloadTls();
    Info(reloaded.ok() ? "TLS files reloaded"
                       : absl::StrCat("TLS reload failed, keeping the old "
                                      "certificate: ",
                                      reloaded.message()));
  }
  Info("shutting down");
  server.Shutdown(absl::GetFlag(FLAGS_shutdown_grace));
  metrics_server.Stop();
  Info("stopped");
  return 0;
}
