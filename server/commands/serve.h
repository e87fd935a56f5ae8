// lumokeys-server's serve command: everything a running server holds
// beyond the app itself (server/app) - its TLS credentials, pepper set,
// gRPC server with its public and internal listeners, metrics listener
// and webhook delivery worker - built from a ServerConfig, reloaded on
// SIGHUP and drained on stop (docs/operations.md "Signals and draining").
//
// Thread-compatible: Start, Reload and Stop are called by the main thread.
#ifndef LUMOKEYS_SERVER_COMMANDS_SERVE_H_
#define LUMOKEYS_SERVER_COMMANDS_SERVE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/server.h"
#include "server/app/app.h"
#include "server/config/server_config.h"
#include "server/core/pepper.h"
#include "server/observability/metrics_http.h"
#include "server/shared/process/heap_trim.h"
#include "server/tls/server_tls.h"
#include "server/webhooks/delivery_worker.h"
#include "server/webhooks/sender.h"

namespace lumo::commands {

class ServerProcess {
 public:
  // Builds and starts serving, in this order: TLS files (--tls_*), the
  // pepper file, the token files (process::ReadTokenFile), the database
  // (durability, then pepper coverage: live secrets using a version the
  // pepper file lacks refuse the start unless
  // --allow_missing_pepper_versions), the app, the gRPC listeners, the
  // metrics listener. Logs "serving" with the bound ports. Errors name the
  // setting or the step; nothing is left running then.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const config::ServerConfig& config);

  ~ServerProcess();

  // SIGHUP: reloads the TLS files and the pepper file. Each keeps its old
  // state when the new one is invalid; every outcome is logged.
  void Reload();

  // SIGTERM/SIGINT `signal_number`: health NOT_SERVING for --drain_delay,
  // then the gRPC server stops accepting and in-flight calls get
  // --shutdown_grace, then the metrics listener stops and the app finishes
  // queued work and writes every queued audit event. Logs "shutting down"
  // and "stopped".
  void Stop(int signal_number);

 private:
  explicit ServerProcess(const config::ServerConfig& config)
      : config_(config) {}

  absl::Status Build();
  absl::Status Listen();
  // Starts the webhook delivery worker (unless --webhook_workers=0).
  void StartWebhookDelivery();
  // Stops the listening to commits, then the worker (its attempts in flight
  // finish). Before app_ is destroyed.
  void StopWebhookDelivery();
  // Starts the heap trimmer (unless --heap_trim_interval=0s), with its
  // metrics.
  void StartHeapTrimmer();

  const config::ServerConfig config_;
  std::unique_ptr<tls::ReloadableServerTls> tls_;
  std::shared_ptr<core::PepperSet> peppers_;
  std::unique_ptr<app::App> app_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<metrics::MetricsHttpServer> metrics_server_;
  // Null with --webhook_workers=0. Stopped before the app.
  std::unique_ptr<webhooks::Sender> webhook_sender_;
  std::unique_ptr<webhooks::DeliveryWorker> webhook_worker_;
  // Null with --heap_trim_interval=0s. Its metrics are read through the
  // app's registry; stopped and removed before the app.
  std::unique_ptr<process::HeapTrimmer> heap_trimmer_;
  // Stops the trimmer and removes its collectors; idempotent.
  void StopHeapTrimmer();
};

}  // namespace lumo::commands

#endif  // LUMOKEYS_SERVER_COMMANDS_SERVE_H_
