#include "server/commands/serve.h"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/commands/database.h"
#include "server/commands/pepper_file.h"
#include "server/core/crypto.h"
#include "server/observability/log.h"
#include "server/observability/metrics.h"
#include "server/rpc/secret_scanning_services.h"
#include "server/service/slab_pool.h"
#include "server/shared/process/heap_trim.h"
#include "server/shared/process/process.h"
#include "server/shared/process/secret_file.h"

namespace lumo::commands {
namespace {

// The scanner's key set from --secret_scanning_keys_file.
absl::StatusOr<std::shared_ptr<const service::ScannerKeySet>> LoadScannerKeys(
    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("--secret_scanning_keys_file: cannot read ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::vector<service::ScannerPublicKey>> keys =
      rpc::ParseScannerKeysJson(text.str());
  if (!keys.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--secret_scanning_keys_file: ", keys.status().message()));
  }
  absl::StatusOr<std::shared_ptr<const service::ScannerKeySet>> set =
      service::ScannerKeySet::Make(*keys);
  if (!set.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--secret_scanning_keys_file: ", set.status().message()));
  }
  return set;
}

// The SHA-256 of the token in `path` (the server compares hashes, so the
// token itself is dropped at once); nullopt when the flag is unset.
absl::StatusOr<std::optional<core::Digest>> TokenHash(absl::string_view flag,
                                                      const std::string& path,
                                                      absl::string_view label) {
  if (path.empty()) return std::nullopt;
  absl::StatusOr<std::string> token = process::ReadTokenFile(flag, path, label);
  if (!token.ok()) return token.status();
  const core::Digest hash = core::Sha256(*token);
  core::Cleanse(*token);
  return hash;
}

// This host's name, for the replicas table; empty when it cannot be read.
std::string HostName() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) return "";
  return host;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const config::ServerConfig& config) {
  std::unique_ptr<ServerProcess> process(new ServerProcess(config));
  if (absl::Status built = process->Build(); !built.ok()) return built;
  if (absl::Status listening = process->Listen(); !listening.ok()) {
    return listening;
  }
  process->StartWebhookDelivery();
  process->StartHeapTrimmer();
  return process;
}

ServerProcess::~ServerProcess() {
  if (metrics_server_ != nullptr) metrics_server_->Stop();
  StopHeapTrimmer();
  StopWebhookDelivery();
  server_.reset();
  app_.reset();
}

absl::Status ServerProcess::Build() {
  if (!config_.tls.cert_file.empty()) {
    absl::StatusOr<std::unique_ptr<tls::ReloadableServerTls>> created =
        tls::ReloadableServerTls::Create(config_.tls);
    if (!created.ok()) return created.status();
    tls_ = *std::move(created);
  }
  absl::StatusOr<std::shared_ptr<core::PepperSet>> peppers =
      LoadPeppers(config_.pepper_file);
  if (!peppers.ok()) return peppers.status();
  peppers_ = *std::move(peppers);

  app::AppOptions options = config_.app;
  options.peppers = peppers_;
  absl::StatusOr<std::optional<core::Digest>> service_token = TokenHash(
      "--service_token_file", config_.service_token_file, "service token");
  if (!service_token.ok()) return service_token.status();
  options.service_token_sha256 = *service_token;
  absl::StatusOr<std::optional<core::Digest>> operator_token = TokenHash(
      "--operator_token_file", config_.operator_token_file, "operator token");
  if (!operator_token.ok()) return operator_token.status();
  options.operator_token_sha256 = *operator_token;

  // The backend: opened in one place (database.h), then checked.
  absl::StatusOr<std::unique_ptr<Database>> database =
      OpenDatabase(config_.database);
  if (!database.ok()) return database.status();
  if (absl::Status durable =
          CheckDurability(**database, config_.allow_nondurable_db);
      !durable.ok()) {
    return durable;
  }
  if (absl::Status reconciled = ReconcileDerivedState(**database);
      !reconciled.ok()) {
    return reconciled;
  }
  // [pepper coverage]: every pepper version a stored secret uses must be in
  // the pepper file (docs/operations.md "Pepper rotation").
  absl::StatusOr<service::PepperCoverage> coverage =
      PepperCoverageOf(**database, *peppers_);
  if (!coverage.ok()) return coverage.status();
  if (coverage->refused()) {
    if (!config_.allow_missing_pepper_versions) {
      return absl::FailedPreconditionError(
          absl::StrCat(coverage->RefusalMessage(),
                       ". Refusing to start "
                       "(--allow_missing_pepper_versions overrides)"));
    }
    log::Error(coverage->RefusalMessage());
  }
  if (coverage->degraded()) log::Warning(coverage->WarningMessage());

  if (!options.record_usage) {
    log::Warning("usage auditing is OFF (--bench_disable_usage_audit)");
  }
  if (!options.key_states_on_verify) {
    log::Warning("key states on verify are OFF (--bench_disable_key_states)");
  }
  if (options.bench_service) {
    log::Warning("benchmark service is ON (--bench_service)");
  }
  options.replica.hostname = HostName();
  options.replica.pid = getpid();
  options.replica.log = [](absl::string_view level, absl::string_view message) {
    log::Level parsed = log::Level::kFatal;
    if (level != "fatal" && !log::ParseLevel(level, &parsed)) {
      parsed = log::Level::kInfo;
    }
    log::Line(parsed, message);
  };
  absl::StatusOr<std::unique_ptr<app::App>> app =
      app::App::Create(*std::move(database), std::move(options));
  if (!app.ok()) return app.status();
  app_ = *std::move(app);
  if (!config_.secret_scanning_keys_file.empty()) {
    absl::StatusOr<std::shared_ptr<const service::ScannerKeySet>> keys =
        LoadScannerKeys(config_.secret_scanning_keys_file);
    if (!keys.ok()) return keys.status();
    log::Line(log::Level::kInfo, "secret-scanning keys loaded")
        .Int("keys", static_cast<int64_t>((*keys)->size()));
    app_->scanner_keys().Replace(*std::move(keys));
  }
  if (config_.webhook_delivery.threads > 0) {
    absl::StatusOr<std::unique_ptr<webhooks::Sender>> sender =
        webhooks::NewHttpsSender(config_.webhook_sender);
    if (!sender.ok()) return sender.status();
    webhook_sender_ = *std::move(sender);
    webhook_worker_ = std::make_unique<webhooks::DeliveryWorker>(
        &app_->backend().webhooks(), &app_->webhooks(), webhook_sender_.get(),
        config_.webhook_delivery);
    // Deliveries this process commits are claimed at once; the poll finds
    // those of other processes.
    app_->backend().outbox_signal().Listen(
        [worker = webhook_worker_.get()] { worker->Wake(); });
  }
  return absl::OkStatus();
}

void ServerProcess::StopWebhookDelivery() {
  if (webhook_worker_ == nullptr) return;
  app_->backend().outbox_signal().Listen(nullptr);
  webhook_worker_.reset();
}

void ServerProcess::StartHeapTrimmer() {
  if (config_.heap_trim.interval <= absl::ZeroDuration()) return;
  // The verify cache's entries live in slabs of their own (resident, but
  // not malloc's): the trimmer's estimate of free heap leaves them out.
  process::HeapProbe probe;
  probe.outside = [] { return service::SlabPool::MappedBytesOfAllPools(); };
  heap_trimmer_ =
      std::make_unique<process::HeapTrimmer>(config_.heap_trim, probe);
  process::HeapTrimmer* trimmer = heap_trimmer_.get();
  using metrics::Type;
  metrics::Registry& r = app_->metrics();
  r.AddCollector("lumo_heap_trims_total",
                 "Heap trims (malloc_trim) after the free resident heap rose",
                 Type::kCounter, [trimmer] {
                   return std::vector<metrics::Sample>{
                       {{}, double(trimmer->stats().trims)}};
                 });
  r.AddCollector("lumo_heap_trim_released_bytes_total",
                 "Resident bytes the heap trims gave back", Type::kCounter,
                 [trimmer] {
                   return std::vector<metrics::Sample>{
                       {{}, double(trimmer->stats().released_bytes)}};
                 });
  r.AddCollector(
      "lumo_heap_trim_longest_seconds", "The longest heap trim so far",
      Type::kGauge, [trimmer] {
        return std::vector<metrics::Sample>{
            {{},
             absl::ToDoubleSeconds(trimmer->stats().longest_trim_duration)}};
      });
}

void ServerProcess::StopHeapTrimmer() {
  if (heap_trimmer_ == nullptr) return;
  heap_trimmer_->Stop();
  metrics::Registry& r = app_->metrics();
  r.RemoveCollector("lumo_heap_trims_total");
  r.RemoveCollector("lumo_heap_trim_released_bytes_total");
  r.RemoveCollector("lumo_heap_trim_longest_seconds");
  heap_trimmer_.reset();
}

void ServerProcess::StartWebhookDelivery() {
  if (webhook_worker_ != nullptr) webhook_worker_->Start();
}

absl::Status ServerProcess::Listen() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // A stale server on the same port must make start-up fail, not silently
  // share the traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  const std::string& listen = config_.listen;
  const std::string& internal_listen = config_.internal_listen;
  int bound_port = 0;
  int internal_port = 0;
  // mTLS on --internal_listen when given, else on --listen when a client CA
  // is given.
  std::shared_ptr<grpc::ServerCredentials> listen_credentials =
      grpc::InsecureServerCredentials();
  if (tls_ != nullptr) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
        tls_->Credentials(tls_->has_client_ca() && internal_listen.empty());
    if (!credentials.ok()) return credentials.status();
    listen_credentials = *credentials;
  }
  builder.AddListeningPort(listen, listen_credentials, &bound_port);
  if (!internal_listen.empty()) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
        tls_->Credentials(/*require_client_cert=*/true);
    if (!credentials.ok()) return credentials.status();
    builder.AddListeningPort(internal_listen, *credentials, &internal_port);
  }
  app_->RegisterServices(builder);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || bound_port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen));
  }
  if (!internal_listen.empty() && internal_port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on --internal_listen=", internal_listen));
  }
  server_->GetHealthCheckService()->SetServingStatus(true);
  log::Line(log::Level::kInfo, "serving")
      .Str("listen", listen)
      .Int("port", bound_port)
      .Bool("tls", tls_ != nullptr)
      .Int("internal_port", internal_port);
  metrics_server_ =
      std::make_unique<metrics::MetricsHttpServer>(&app_->metrics());
  if (absl::Status started = process::StartMetricsListener(*metrics_server_);
      !started.ok()) {
    return started;
  }
  if (const service::ReplicaSync* replica = app_->replica_sync();
      replica != nullptr) {
    log::Line(log::Level::kInfo, "replica registered")
        .Str("replica_id", replica->id())
        .Str("incarnation", replica->incarnation())
        .Int("ack_timeout_ms",
             absl::ToInt64Milliseconds(replica->ack_timeout()));
  }
  return absl::OkStatus();
}

void ServerProcess::Reload() {
  if (tls_ != nullptr) process::LogTlsReload(tls_->Reload());
  absl::Status reloaded = peppers_->Reload(config_.pepper_file);
  if (reloaded.ok()) {
    log::Line(log::Level::kInfo, "pepper file reloaded")
        .Int("current_pepper_version", peppers_->current_version());
  } else {
    log::Error(absl::StrCat("pepper reload failed, keeping the old set: ",
                            reloaded.message()));
  }
  if (!config_.secret_scanning_keys_file.empty()) {
    absl::StatusOr<std::shared_ptr<const service::ScannerKeySet>> keys =
        LoadScannerKeys(config_.secret_scanning_keys_file);
    if (keys.ok()) {
      log::Line(log::Level::kInfo, "secret-scanning keys reloaded")
          .Int("keys", static_cast<int64_t>((*keys)->size()));
      app_->scanner_keys().Replace(*std::move(keys));
    } else {
      log::Error(absl::StrCat(
          "secret-scanning keys reload failed, keeping the old set: ",
          keys.status().message()));
    }
  }
}

void ServerProcess::Stop(int signal_number) {
  log::Line(log::Level::kInfo, "shutting down").Int("signal", signal_number);
  server_->GetHealthCheckService()->SetServingStatus(false);
  absl::SleepFor(config_.drain_delay);
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(config_.shutdown_grace));
  // Its collectors read the app.
  metrics_server_->Stop();
  StopHeapTrimmer();
  // Finishes the attempts in flight; claimed deliveries not yet sent are
  // sent when their lease ends (docs/webhooks.md).
  StopWebhookDelivery();
  // Runs what is queued, joins the workers, then writes every queued audit
  // event (the writer's stop_timeout bounds it when the database is down).
  app_.reset();
  log::Info("stopped");
}

}  // namespace lumo::commands
