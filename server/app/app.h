// The whole server minus process concerns: every domain service and gRPC
// adapter, built over one storage backend (server/storage/backend.h) and
// registered on a grpc::ServerBuilder. main.cc and the integration tests
// both use it, so the tests exercise exactly the wiring that ships. The app
// sees only the store interfaces: which backend it runs on is decided by
// whoever opens the backend (storage/backend_factory.h).
#ifndef LUMOKEYS_SERVER_APP_APP_H_
#define LUMOKEYS_SERVER_APP_APP_H_

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "grpcpp/impl/service_type.h"
#include "grpcpp/server_builder.h"
#include "server/core/crypto.h"
#include "server/core/pepper.h"
#include "server/observability/metrics.h"
#include "server/rpc/authenticator.h"
#include "server/rpc/metrics_interceptor.h"
#include "server/rpc/worker_pool.h"
#include "server/service/audit_service.h"
#include "server/service/audit_writer.h"
#include "server/service/client_service.h"
#include "server/service/cluster_credits.h"
#include "server/service/credit_service.h"
#include "server/service/decoy_trap.h"
#include "server/service/failure_throttle.h"
#include "server/service/identity_limit_service.h"
#include "server/service/key_service.h"
#include "server/service/key_state_sweeper.h"
#include "server/service/portal_service.h"
#include "server/service/registration_service.h"
#include "server/service/replica_sync.h"
#include "server/service/secret_scanning.h"
#include "server/service/usage_auditor.h"
#include "server/service/usage_service.h"
#include "server/service/user_service.h"
#include "server/service/verifier.h"
#include "server/service/webhook_service.h"
#include "server/storage/backend.h"
#include "server/storage/change_feed_store.h"

namespace lumo::app {

struct AppOptions {
  std::shared_ptr<const core::PepperSet> peppers;
  std::optional<core::Digest> service_token_sha256;
  std::optional<core::Digest> operator_token_sha256;
  // The server has an mTLS internal listener: the service and operator
  // tokens and the forwarded x-lumo-* fields are accepted only there
  // (rpc::Authenticator).
  bool internal_listener_only = false;
  // Open registration's per-address limit counts IPv6 clients per network
  // of this prefix length (the failure and login throttles have their own
  // option, set to the same flag by main).
  int ipv6_prefix_len = 64;
  absl::Duration verify_cache_ttl = absl::Seconds(30);
  // The limit of keys without rate limits of their own (0: none;
  // docs/limits.md).
  int32_t default_key_rate_limit_per_minute = 1'000'000;
  // How long an address that presented a decoy gets "unknown key" for every
  // key of the decoy's tenant (docs/webhooks.md "Decoy keys"); zero: off.
  absl::Duration decoy_block = absl::ZeroDuration();
  int workers = 32;
  service::AuditWriterOptions audit_writer;
  service::UsageAuditorOptions usage_auditor;
  // BENCHMARK ONLY: do not record api_key.used / auth.api_key.failed
  // (lifecycle and admin events are still written in their transactions).
  // Exists to measure what usage auditing costs; never set it in production.
  bool record_usage = true;
  // BENCHMARK ONLY when false: verification computes and returns no
  // key-policy states (VerifierOptions::key_states); never in production.
  bool key_states_on_verify = true;
  // BENCHMARK ONLY: serve lumo.bench.v1
  // .BenchService (Echo, raw point select, raw INSERT+COMMIT, counters) and
  // create its scratch table. Off by default; see docs/benchmarks.md.
  bool bench_service = false;
  // Acknowledged revocation across
  // replicas sharing the database (docs/replication.md). Off: a single
  // replica with no membership row and no change-feed tailer.
  bool replication = false;
  service::ReplicaSyncOptions replica;
  // The key-state sweep (interval 0: off). An empty holder becomes the
  // replica's id and incarnation, or a random name without replication.
  service::KeyStateSweeperOptions key_state_sweep;
  // Failed verifications per address / key id.
  service::FailureThrottleOptions failure_throttle;
  // Password hashing cost, session lifetimes,
  // login throttling (docs/portal.md).
  service::PortalOptions portal;
  // Webhook endpoints: the per-tenant limit and the addresses deliveries
  // may reach (docs/webhooks.md).
  service::WebhookOptions webhooks;
};

// Thread-safe once built. Owns everything it creates.
class App {
 public:
  // Builds everything over `backend`, which the app then owns.
  static absl::StatusOr<std::unique_ptr<App>> Create(
      std::unique_ptr<storage::Backend> backend, AppOptions options);
  ~App();

  // Registers every gRPC service on `builder`.
  void RegisterServices(grpc::ServerBuilder& builder);

  // Every service descriptor the app serves (for the start-up annotation
  // check and the authorization-matrix test).
  std::vector<const google::protobuf::ServiceDescriptor*> ServiceDescriptors()
      const;

  storage::Backend& backend() { return *backend_; }
  service::Verifier& verifier() { return *verifier_; }
  service::AuditWriter& audit_writer() { return *audit_writer_; }
  // Every server metric (docs/operations.md
  // "Metrics and logs"). Components built outside the app register their
  // own families here, e.g. the change feed's lag gauge:
  //   app.metrics().AddGauge(kChangeFeedLagMetric, "...").Get().Set(s);
  // Collectors read the app's components: stop scraping (the metrics
  // listener) before destroying the app.
  metrics::Registry& metrics() { return *metrics_; }
  // Null without replication.
  service::ReplicaSync* replica_sync() { return replica_.get(); }
  // Webhook endpoints, secrets and payloads (for the delivery worker).
  service::WebhookService& webhooks() { return *webhooks_; }
  // The secret-scanning partner's public keys (empty until the serve
  // command installs the keys file's; replaced on SIGHUP).
  service::ScannerKeys& scanner_keys() { return scanner_keys_; }

 private:
  App() = default;

  // Declared first, so destroyed last: every store (and the database
  // connections) outlives everything that uses it.
  std::unique_ptr<storage::Backend> backend_;
  // The rate-limit counters shared by the replicas; their tasks run on
  // workers_, which ~App stops first.
  std::unique_ptr<service::ClusterWindows> rate_limits_;
  // Where rate_limits_ posts its tasks: workers_ while it accepts them.
  std::atomic<rpc::WorkerPool*> limit_workers_{nullptr};
  // The usage quotas' credits shared by the replicas; idle leases are
  // given back once a second by credit_returns_ (stopped first in ~App),
  // the rest at the end of ~App.
  std::unique_ptr<service::ClusterCredits> credits_;
  absl::Notification stop_credit_returns_;
  std::thread credit_returns_;
  std::unique_ptr<service::DecoyTrap> decoy_trap_;
  std::unique_ptr<service::Verifier> verifier_;
  std::unique_ptr<service::KeyService> keys_;
  std::unique_ptr<service::CreditService> credit_service_;
  std::unique_ptr<service::IdentityLimitService> identity_limits_;
  std::unique_ptr<rpc::Authenticator> auth_;
  std::unique_ptr<rpc::WorkerPool> workers_;
  std::vector<std::unique_ptr<grpc::Service>> services_;

  // Destroyed after workers_ stops.
  std::unique_ptr<service::UserService> users_;
  std::unique_ptr<service::ClientService> clients_;
  std::unique_ptr<service::WebhookService> webhooks_;
  service::ScannerKeys scanner_keys_;
  std::unique_ptr<service::SecretScanningService> secret_scanning_;
  std::unique_ptr<service::RegistrationService> registration_;

  // Destroyed after ~App has stopped workers_ and flushed the writer; the
  // auditor goes before the writer it feeds.
  std::unique_ptr<service::AuditWriter> audit_writer_;
  std::unique_ptr<service::UsageAuditor> usage_;
  // The read side and chain verification; used only by the adapters.
  std::unique_ptr<service::AuditService> audit_service_;
  std::unique_ptr<service::UsageService> usage_service_;

  std::unique_ptr<metrics::Registry> metrics_;
  // Declared after metrics_ so destroyed before it.
  std::unique_ptr<rpc::MetricsInterceptorFactory> interceptors_;
  void RegisterMetrics();
  // AppOptions::bench_service.
  bool bench_service_ = false;
  // The tailer is stopped in ~App after
  // workers_ (which may be waiting on it); the feed store outlives it.
  std::unique_ptr<storage::ChangeFeedStore> feed_store_;
  std::unique_ptr<storage::ChangeFeedStore> ack_store_;
  std::unique_ptr<service::ReplicaSync> replica_;
  // Outlives auth_'s use of it (auth_ drops
  // its pointer in ~App before this is destroyed).
  std::unique_ptr<service::FailureThrottle> failure_throttle_;
  // Destroyed after workers_ stops.
  std::unique_ptr<service::PortalService> portal_;
  // Stopped first in ~App.
  std::unique_ptr<service::KeyStateSweeper> sweeper_;
};

// The replica change feed's lag, in seconds:
// how long ago this replica last read the feed to its end (an upper bound on
// how far its applied position trails the feed). Served only with
// replication on.
inline constexpr char kChangeFeedLagMetric[] = "lumo_change_feed_lag_seconds";
inline constexpr char kChangeFeedLagHelp[] =
    "Seconds since this replica last read the key_changes feed to its end "
    "(upper bound on how far it trails the feed)";

}  // namespace lumo::app

#endif  // LUMOKEYS_SERVER_APP_APP_H_
