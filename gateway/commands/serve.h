// lumokeys-gateway's serve command: the gateway (routes, upstream channel,
// service token, trusted proxies, portal), its HTTP server and metrics
// listener, built from a GatewayConfig, reloaded on SIGHUP and drained on
// stop (docs/operations.md "Signals and draining").
//
// Thread-compatible: Create, Start, Reload and Stop are called by the main
// thread.
#ifndef LUMOKEYS_GATEWAY_COMMANDS_SERVE_H_
#define LUMOKEYS_GATEWAY_COMMANDS_SERVE_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gateway/config/gateway_config.h"
#include "gateway/gateway.h"
#include "gateway/http/http_server.h"
#include "gateway/observability.h"
#include "server/observability/metrics.h"
#include "server/observability/metrics_http.h"

namespace lumo::gateway {

class GatewayProcess {
 public:
  // Builds the gateway without listening: reads the service token
  // (process::ReadTokenFile) and the upstream TLS files, opens the upstream
  // channel, loads the portal's pages. Errors name the setting.
  static absl::StatusOr<std::unique_ptr<GatewayProcess>> Create(
      const GatewayConfig& config);

  ~GatewayProcess();

  // The OpenAPI document of every route (--print_openapi).
  const std::string& openapi_json() const { return gateway_->openapi_json(); }

  // Starts the HTTP server (loading its TLS files) and the metrics listener
  // and logs "serving http(s)://HOST:PORT -> UPSTREAM (N routes)".
  // UNAVAILABLE / INVALID_ARGUMENT from the listeners.
  absl::Status Start();

  // SIGHUP: reloads the TLS files; connections accepted afterwards use them
  // (the old ones stay on a bad set). Logged.
  void Reload();

  // SIGTERM/SIGINT: stop accepting, close idle keep-alive connections, let
  // in-flight requests finish for --shutdown_grace, stop the metrics
  // listener. Logs "shutting down" and "stopped".
  void Stop();

 private:
  explicit GatewayProcess(const GatewayConfig& config);

  const GatewayConfig config_;
  metrics::Registry registry_;
  GatewayMetrics gateway_metrics_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<metrics::MetricsHttpServer> metrics_server_;
};

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_COMMANDS_SERVE_H_
