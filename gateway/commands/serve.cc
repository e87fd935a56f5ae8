#include "gateway/commands/serve.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gateway/portal.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "server/observability/log.h"
#include "server/shared/process/process.h"
#include "server/shared/process/secret_file.h"

namespace lumo::gateway {
namespace {

// Channel credentials for --upstream: TLS with the given CA (and client
// certificate) when --upstream_tls_ca_file is set, else plaintext.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> UpstreamCredentials(
    const UpstreamTlsFiles& files) {
  if (files.ca_file.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca =
      process::ReadFlagFile("--upstream_tls_ca_file", files.ca_file);
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = *std::move(ca);
  if (!files.cert_file.empty()) {
    absl::StatusOr<std::string> cert =
        process::ReadFlagFile("--upstream_tls_cert_file", files.cert_file);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key =
        process::ReadFlagFile("--upstream_tls_key_file", files.key_file);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

// The gateway's options from `config`: everything but the observer.
absl::StatusOr<GatewayOptions> BuildGatewayOptions(
    const GatewayConfig& config) {
  GatewayOptions options;
  if (!config.service_token_file.empty()) {
    absl::StatusOr<std::string> token = process::ReadTokenFile(
        "--service_token_file", config.service_token_file, "service token");
    if (!token.ok()) return token.status();
    options.service_token = *std::move(token);
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      UpstreamCredentials(config.upstream_tls);
  if (!credentials.ok()) return credentials.status();
  // Replies up to 64 MiB: file exports (at most 10,000 audit events, capped
  // at 32 MiB by the server) exceed gRPC's 4 MiB default.
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(64 << 20);
  if (!config.upstream_tls.server_name.empty()) {
    channel_args.SetSslTargetNameOverride(config.upstream_tls.server_name);
  }
  options.upstream =
      grpc::CreateCustomChannel(config.upstream, *credentials, channel_args);
  options.upstream_deadline = config.upstream_deadline;
  absl::StatusOr<std::vector<const google::protobuf::ServiceDescriptor*>>
      services = LumoServices();
  if (!services.ok()) return services.status();
  options.services = *std::move(services);
  options.serves_tls = !config.http.tls_cert_file.empty();
  options.trusted_proxies = config.trusted_proxies;
  options.secure_cookies = config.secure_cookies;
  if (!config.portal_dir.empty()) {
    PortalOptions portal_options;
    portal_options.dir = config.portal_dir;
    portal_options.secure_cookies = config.secure_cookies;
    absl::StatusOr<std::unique_ptr<Portal>> portal =
        Portal::Load(portal_options);
    if (!portal.ok()) return portal.status();
    options.portal = *std::move(portal);
  }
  return options;
}

}  // namespace

GatewayProcess::GatewayProcess(const GatewayConfig& config)
    : config_(config), gateway_metrics_(registry_) {}

GatewayProcess::~GatewayProcess() {
  if (metrics_server_ != nullptr) metrics_server_->Stop();
  server_.reset();
}

absl::StatusOr<std::unique_ptr<GatewayProcess>> GatewayProcess::Create(
    const GatewayConfig& config) {
  std::unique_ptr<GatewayProcess> process(new GatewayProcess(config));
  absl::StatusOr<GatewayOptions> options = BuildGatewayOptions(config);
  if (!options.ok()) return options.status();
  options->observer = &process->gateway_metrics_;
  absl::StatusOr<std::unique_ptr<Gateway>> gateway =
      Gateway::Create(*std::move(options));
  if (!gateway.ok()) return gateway.status();
  process->gateway_ = *std::move(gateway);
  return process;
}

absl::Status GatewayProcess::Start() {
  HttpServerOptions http = config_.http;
  http.common_headers = SecurityHeaders();
  http.error_renderer = [](int status, absl::string_view code,
                           absl::string_view message, absl::string_view) {
    return ErrorResponse(status, code, message);
  };
  Gateway* gateway = gateway_.get();
  server_ = std::make_unique<HttpServer>(
      http, [gateway](HttpRequest request, Responder respond) {
        gateway->Handle(std::move(request), std::move(respond));
      });
  if (absl::Status started = server_->Start(); !started.ok()) return started;
  if (config_.insecure_dev_no_service_token) {
    log::Warning(
        "no service token (--insecure_dev_no_service_token): the server sees "
        "this gateway's address for every client; a development set-up only");
  }
  const std::string host = config_.listen.substr(0, config_.listen.rfind(':'));
  log::Info(absl::StrCat(
      "serving ", config_.http.tls_cert_file.empty() ? "http" : "https", "://",
      host, ":", server_->bound_port(), " -> ", config_.upstream, " (",
      gateway_->routes().routes().size(), " routes)"));
  HttpServer* server = server_.get();
  registry_.AddCollector(
      "lumo_gateway_open_connections", "HTTP connections open now",
      metrics::Type::kGauge, [server] {
        return std::vector<metrics::Sample>{
            {{}, static_cast<double>(server->open_connections())}};
      });
  metrics_server_ = std::make_unique<metrics::MetricsHttpServer>(&registry_);
  return process::StartMetricsListener(*metrics_server_);
}

void GatewayProcess::Reload() { process::LogTlsReload(server_->ReloadTls()); }

void GatewayProcess::Stop() {
  log::Info("shutting down");
  server_->Shutdown(config_.shutdown_grace);
  metrics_server_->Stop();
  log::Info("stopped");
}

}  // namespace lumo::gateway
