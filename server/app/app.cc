#include "server/app/app.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/bench/bench_service.h"
#include "server/core/crypto.h"
#include "server/rpc/audit_services.h"
#include "server/rpc/client_services.h"
#include "server/rpc/portal_services.h"
#include "server/rpc/secret_scanning_services.h"
#include "server/rpc/services.h"
#include "server/rpc/user_services.h"
#include "server/rpc/webhook_services.h"

namespace lumo::app {

namespace {
// Connections of each change feed store: the tailer's reads and heartbeats,
// and the writers waiting for acknowledgements, each on their own.
constexpr int kChangeFeedConnections = 2;

// gRPC owns the factories it is given;
// this one forwards to the app's factory, which outlives the server's
// calls.
class InterceptorFactoryRef
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit InterceptorFactoryRef(rpc::MetricsInterceptorFactory* factory)
      : factory_(factory) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return factory_->CreateServerInterceptor(info);
  }

 private:
  rpc::MetricsInterceptorFactory* const factory_;
};
}  // namespace

absl::StatusOr<std::unique_ptr<App>> App::Create(
    std::unique_ptr<storage::Backend> backend, AppOptions options) {
  std::unique_ptr<App> app(new App);
  app->backend_ = std::move(backend);
  storage::Backend& stores = *app->backend_;
  // Before the components that record into it.
  app->metrics_ = std::make_unique<metrics::Registry>();
  options.audit_writer.flush_duration =
      &app->metrics_
           ->AddHistogram("lumo_audit_flush_duration_seconds",
                          "Time to write one batch of usage/auth audit events "
                          "(retries included)",
                          {}, metrics::LatencyBuckets())
           .Get();
  // Rate limits count across the replicas (docs/limits.md): N from the
  // membership, renewals and returns on the worker pool (a renewal that
  // finds the pool full is dropped: the next request that needs the lease
  // takes it).
  service::ClusterWindowsOptions windows;
  // Window leases up to 100 000 tokens (docs/limits.md "Cost in
  // statements"): the cap binds only limits above 400 000 * N per window,
  // and a lease is spendable only in its slot. Credit leases are sized to
  // the key's rate (ClusterCreditsOptions: about a second of its use, 1 000
  // to 100 000 credits; a replica that dies loses its lease).
  windows.max_lease = 100000;
  App* const self = app.get();
  windows.replicas = [self] {
    return self->replica_ != nullptr ? self->replica_->live_replicas() : 1;
  };
  windows.schedule = [self](std::function<void()> task) {
    rpc::WorkerPool* workers = self->limit_workers_.load();
    if (workers != nullptr) (void)workers->Submit(std::move(task));
  };
  app->rate_limits_ =
      std::make_unique<service::ClusterWindows>(&stores.counters(), windows);
  // Credits likewise (no overdraft: docs/limits.md "Usage quotas").
  service::ClusterCreditsOptions credits;
  credits.replicas = windows.replicas;
  app->credits_ =
      std::make_unique<service::ClusterCredits>(&stores.counters(), credits);
  service::VerifierOptions verifier_options;
  verifier_options.cache_ttl = options.verify_cache_ttl;
  verifier_options.key_states = options.key_states_on_verify;
  verifier_options.rate_limits = app->rate_limits_.get();
  verifier_options.credits = app->credits_.get();
  verifier_options.default_limit_per_minute =
      options.default_key_rate_limit_per_minute;
  verifier_options.replicas = windows.replicas;
  if (options.decoy_block > absl::ZeroDuration()) {
    service::DecoyTrapOptions trap;
    trap.block = options.decoy_block;
    app->decoy_trap_ = std::make_unique<service::DecoyTrap>(trap);
    verifier_options.decoy_trap = app->decoy_trap_.get();
  }
  app->verifier_ = std::make_unique<service::Verifier>(
      &stores.keys(), options.peppers, verifier_options);
  // Before the key service, which waits on
  // it. Its own small pool, so heartbeats never queue behind requests.
  // Writers waiting for acknowledgements use a second one, so that a burst
  // of them cannot delay this replica's own heartbeat.
  if (options.replication) {
    absl::StatusOr<std::unique_ptr<storage::ChangeFeedStore>> feed =
        stores.OpenChangeFeed(kChangeFeedConnections);
    if (!feed.ok()) return feed.status();
    app->feed_store_ = *std::move(feed);
    absl::StatusOr<std::unique_ptr<storage::ChangeFeedStore>> acks =
        stores.OpenChangeFeed(kChangeFeedConnections);
    if (!acks.ok()) return acks.status();
    app->ack_store_ = *std::move(acks);
    // This process's key mutations go to its own change stream.
    options.replica.stream_writer = &stores.keys();
    absl::StatusOr<std::unique_ptr<service::ReplicaSync>> sync =
        service::ReplicaSync::Start(app->feed_store_.get(),
                                    app->verifier_.get(), options.replica,
                                    app->ack_store_.get());
    if (!sync.ok()) return sync.status();
    app->replica_ = *std::move(sync);
  }
  app->keys_ = std::make_unique<service::KeyService>(
      &stores.keys(), options.peppers, app->verifier_.get(),
      app->replica_.get());
  app->credit_service_ = std::make_unique<service::CreditService>(
      &stores.keys(), &stores.counters(), app->credits_.get(),
      app->verifier_.get(), app->replica_.get());
  app->identity_limits_ = std::make_unique<service::IdentityLimitService>(
      &stores.counters(), app->verifier_.get(), app->replica_.get());
  service::CounterSweepOptions counter_sweep;
  counter_sweep.known_ttl = options.portal.throttle.known_network_ttl;
  app->counter_sweep_ = std::make_unique<service::CounterSweep>(
      &stores.counters(), counter_sweep);
  app->credit_returns_ = std::thread([self] {
    while (!self->stop_credit_returns_.WaitForNotificationWithTimeout(
        absl::Seconds(1))) {
      self->credits_->FlushReturns();
      self->counter_sweep_->MaybeRun(absl::Now());
    }
  });
  app->workers_ =
      std::make_unique<rpc::WorkerPool>(options.workers, /*max_queue=*/10000);
  app->limit_workers_.store(app->workers_.get());
  // The authenticator's collaborators, then the authenticator, before the
  // adapters that use it.
  app->audit_service_ = std::make_unique<service::AuditService>(
      &stores.audit(), &stores.keys(), &stores.users());
  app->usage_service_ =
      std::make_unique<service::UsageService>(&stores.audit(), &stores.keys());
  app->audit_writer_ = std::make_unique<service::AuditWriter>(
      &stores.audit(), options.audit_writer);
  app->usage_ = std::make_unique<service::UsageAuditor>(
      app->audit_writer_.get(), options.usage_auditor);
  // The failure budgets are shared by the replicas (docs/limits.md "Shared
  // throttles"); their lease statements run on the workers.
  service::FailureThrottleOptions throttle = options.failure_throttle;
  throttle.shared = &stores.counters();
  throttle.schedule = windows.schedule;
  throttle.replicas = windows.replicas;
  app->failure_throttle_ =
      std::make_unique<service::FailureThrottle>(std::move(throttle));
  // So are the portal's login counters and the accounts' known networks.
  service::PortalOptions portal = options.portal;
  portal.throttle.shared = &stores.counters();
  app->portal_ =
      std::make_unique<service::PortalService>(&stores.portal(), portal);
  app->portal_->set_audit_writer(app->audit_writer_.get());
  app->audit_service_->set_audit_writer(app->audit_writer_.get());
  app->auth_ = std::make_unique<rpc::Authenticator>(
      rpc::AuthenticatorDeps{app->verifier_.get(),
                             options.record_usage ? app->usage_.get() : nullptr,
                             app->failure_throttle_.get(), app->portal_.get()},
      rpc::AuthenticatorOptions{options.service_token_sha256,
                                options.operator_token_sha256,
                                options.internal_listener_only});

  rpc::RpcContext ctx{app->auth_.get(),           app->keys_.get(),
                      app->verifier_.get(),       app->workers_.get(),
                      app->audit_service_.get(),  app->credit_service_.get(),
                      app->identity_limits_.get()};
  app->services_.push_back(std::make_unique<rpc::KeyServiceImpl>(ctx));
  app->services_.push_back(std::make_unique<rpc::AuthServiceImpl>(ctx));
  app->services_.push_back(std::make_unique<rpc::OperatorServiceImpl>(ctx));

  app->users_ = std::make_unique<service::UserService>(&stores.users());
  {
    rpc::UserRpcContext user_ctx{app->auth_.get(), app->users_.get(),
                                 app->workers_.get()};
    app->services_.push_back(std::make_unique<rpc::UserServiceImpl>(user_ctx));
    app->services_.push_back(std::make_unique<rpc::RoleServiceImpl>(user_ctx));
  }

  app->clients_ = std::make_unique<service::ClientService>(&stores.clients(),
                                                           options.peppers);
  service::IpRateLimiterOptions registration_limits;
  registration_limits.ipv6_prefix_len = options.ipv6_prefix_len;
  app->registration_ = std::make_unique<service::RegistrationService>(
      &stores.keys(), &stores.clients(), app->clients_.get(),
      registration_limits);
  {
    rpc::ClientRpcContext client_ctx{app->auth_.get(), app->workers_.get(),
                                     app->clients_.get(),
                                     app->registration_.get()};
    app->services_.push_back(
        std::make_unique<rpc::ClientServiceImpl>(client_ctx));
    app->services_.push_back(
        std::make_unique<rpc::SettingsServiceImpl>(client_ctx));
    app->services_.push_back(
        std::make_unique<rpc::RegistrationServiceImpl>(client_ctx));
  }

  app->webhooks_ = std::make_unique<service::WebhookService>(
      &stores.webhooks(), options.peppers, options.webhooks);
  app->services_.push_back(
      std::make_unique<rpc::WebhookServiceImpl>(rpc::WebhookRpcContext{
          app->auth_.get(), app->workers_.get(), app->webhooks_.get()}));
  app->secret_scanning_ = std::make_unique<service::SecretScanningService>(
      &app->scanner_keys_, &stores.keys(), &stores.clients(),
      &stores.webhooks(), app->keys_.get(), options.peppers);
  app->services_.push_back(std::make_unique<rpc::SecretScanningServiceImpl>(
      rpc::SecretScanningRpcContext{app->auth_.get(), app->workers_.get(),
                                    app->secret_scanning_.get()}));

  app->services_.push_back(
      std::make_unique<rpc::AuditServiceImpl>(rpc::AuditRpcContext{
          app->auth_.get(), app->workers_.get(), app->audit_service_.get(),
          app->usage_service_.get()}));

  app->RegisterMetrics();
  // Benchmark-only baselines, off by default.
  if (options.bench_service) {
    app->bench_service_ = true;
    if (absl::Status ok = stores.bench().EnsureTable(); !ok.ok()) {
      return ok;
    }
    app->services_.push_back(
        std::make_unique<bench::BenchServiceImpl>(bench::BenchRpcContext{
            app->auth_.get(), app->workers_.get(), &stores.bench(),
            &stores.keys(), app->verifier_.get()}));
  }
  app->services_.push_back(
      std::make_unique<rpc::PortalServiceImpl>(rpc::PortalRpcContext{
          app->auth_.get(), app->workers_.get(), app->portal_.get()}));

  if (absl::Status ok = rpc::CheckAccessAnnotations(app->ServiceDescriptors());
      !ok.ok()) {
    return ok;
  }
  service::KeyStateSweeperOptions sweep = options.key_state_sweep;
  if (sweep.holder.empty() && app->replica_ != nullptr) {
    sweep.holder =
        absl::StrCat(app->replica_->id(), ":", app->replica_->incarnation());
  }
  if (sweep.holder.empty()) {
    absl::StatusOr<std::string> name = core::RandomBase62(16);
    if (!name.ok()) return name.status();
    sweep.holder = *std::move(name);
  }
  app->sweeper_ =
      std::make_unique<service::KeyStateSweeper>(&stores.keys(), sweep);
  app->sweeper_->Start();
  return app;
}

App::~App() {
  if (sweeper_ != nullptr) sweeper_->Stop();
  if (credit_returns_.joinable()) {
    stop_credit_returns_.Notify();
    credit_returns_.join();
  }
  // Rate-limit renewals are not queued any more (dropped: nothing is owed).
  limit_workers_.store(nullptr);
  // Runs queued work before the services and stores it uses go away.
  workers_.reset();
  // Gives back the unspent rate-limit tokens of this replica's leases.
  if (rate_limits_ != nullptr) rate_limits_->FlushReturns(/*all=*/true);
  // And the unspent credits.
  if (credits_ != nullptr) credits_->FlushReturns(/*all=*/true);
  // [portal hashing] logins still waiting for a hashing slot are answered
  // busy; running checks finish (they may enqueue audit events).
  if (portal_ != nullptr) portal_->Stop();
  // Producers are gone (the gRPC server was shut down before); write what
  // is queued.
  if (audit_writer_ != nullptr) audit_writer_->Stop();
  // Leave the membership table.
  if (replica_ != nullptr) replica_->Stop();
}

void App::RegisterServices(grpc::ServerBuilder& builder) {
  for (const auto& service : services_) builder.RegisterService(service.get());
  // Per-RPC counts, latency, access logs.
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      creators;
  creators.push_back(
      std::make_unique<InterceptorFactoryRef>(interceptors_.get()));
  builder.experimental().SetInterceptorCreators(std::move(creators));
}

void App::RegisterMetrics() {
  metrics::Registry& r = *metrics_;
  interceptors_ =
      std::make_unique<rpc::MetricsInterceptorFactory>(r, ServiceDescriptors());
  using metrics::Sample;
  using metrics::Type;
  auto one = [](double value) { return std::vector<Sample>{{{}, value}}; };

  service::Verifier* verifier = verifier_.get();
  r.AddCollector(
      "lumo_verify_outcomes_total",
      "Key verifications (VerifyApiKey and API-key authentication) by "
      "outcome; bad_checksum is the part of malformed whose only fault is "
      "the checksum",
      Type::kCounter, [verifier] {
        std::vector<Sample> out;
        for (int i = 0; i < service::Verifier::kReasonCount; ++i) {
          const auto reason = static_cast<service::VerifyReason>(i);
          out.push_back({{{"reason", absl::AsciiStrToLower(
                                         service::VerifyReasonName(reason))}},
                         static_cast<double>(verifier->outcome_count(reason))});
        }
        out.push_back({{{"reason", "bad_checksum"}},
                       static_cast<double>(verifier->bad_checksum_count())});
        return out;
      });
  r.AddCollector("lumo_verify_cache_hits_total",
                 "Verifications answered from the cache", Type::kCounter,
                 [verifier, one] { return one(verifier->hits()); });
  r.AddCollector("lumo_verify_cache_misses_total",
                 "Verifications that read the key store", Type::kCounter,
                 [verifier, one] { return one(verifier->misses()); });
  r.AddCollector("lumo_verify_cache_entries",
                 "Key ids in the verification cache (positive and negative)",
                 Type::kGauge,
                 [verifier, one] { return one(verifier->size()); });

  storage::Backend* backend = backend_.get();
  auto pool_stat = [backend, one](auto field) {
    return [backend, one, field] { return one(field(backend->pool_stats())); };
  };
  r.AddCollector("lumo_db_pool_connections_in_use",
                 "Database connections leased right now", Type::kGauge,
                 pool_stat([](const storage::PoolStats& s) {
                   return double(s.connections_in_use);
                 }));
  r.AddCollector("lumo_db_pool_connections_open",
                 "Database connections open (idle and in use)", Type::kGauge,
                 pool_stat([](const storage::PoolStats& s) {
                   return double(s.connections_open);
                 }));
  r.AddCollector(
      "lumo_db_pool_waits_total",
      "Acquires that found no free connection and waited", Type::kCounter,
      pool_stat([](const storage::PoolStats& s) { return double(s.waits); }));
  r.AddCollector("lumo_db_pool_wait_seconds_total",
                 "Total time acquires spent waiting for a connection",
                 Type::kCounter, pool_stat([](const storage::PoolStats& s) {
                   return absl::ToDoubleSeconds(s.wait_time);
                 }));
  r.AddCollector("lumo_db_pool_acquire_timeouts_total",
                 "Acquires that gave up (UNAVAILABLE)", Type::kCounter,
                 pool_stat([](const storage::PoolStats& s) {
                   return double(s.acquire_timeouts);
                 }));
  r.AddCollector("lumo_db_pool_preferred_host",
                 "Index in --mysql's host list of the host new connections "
                 "open on first (0: the first host)",
                 Type::kGauge, pool_stat([](const storage::PoolStats& s) {
                   return double(s.preferred_host);
                 }));
  r.AddCollector("lumo_db_pool_host_switches_total",
                 "Changes of the preferred database host (failovers and "
                 "failbacks)",
                 Type::kCounter, pool_stat([](const storage::PoolStats& s) {
                   return double(s.host_switches);
                 }));
  r.AddCollector("lumo_db_pool_failbacks_total",
                 "Returns of the pool to the first database host",
                 Type::kCounter, pool_stat([](const storage::PoolStats& s) {
                   return double(s.failbacks);
                 }));
  r.AddCollector("lumo_db_queries_total",
                 "Round trips to the database on pooled connections (a "
                 "statement batch counts once)",
                 Type::kCounter, pool_stat([](const storage::PoolStats& s) {
                   return double(s.queries_executed);
                 }));
  r.AddCollector("lumo_db_statements_total",
                 "Statements sent on pooled connections, every statement of "
                 "a batch counted",
                 Type::kCounter, pool_stat([](const storage::PoolStats& s) {
                   return double(s.statements_executed);
                 }));

  service::AuditWriter* writer = audit_writer_.get();
  auto audit_stat = [writer, one](auto field) {
    return [writer, one, field] { return one(field(writer->stats())); };
  };
  r.AddCollector("lumo_audit_queue_depth",
                 "Usage/auth audit events waiting in memory", Type::kGauge,
                 audit_stat([](const service::AuditWriterStats& s) {
                   return double(s.queued);
                 }));
  r.AddCollector("lumo_audit_events_enqueued_total",
                 "Usage/auth audit events accepted into the queue",
                 Type::kCounter,
                 audit_stat([](const service::AuditWriterStats& s) {
                   return double(s.enqueued);
                 }));
  r.AddCollector("lumo_audit_events_written_total",
                 "Audit events committed by the writer", Type::kCounter,
                 audit_stat([](const service::AuditWriterStats& s) {
                   return double(s.written);
                 }));
  r.AddCollector("lumo_audit_events_dropped_total",
                 "Audit events refused by a full queue (recorded as "
                 "audit.dropped counts)",
                 Type::kCounter,
                 audit_stat([](const service::AuditWriterStats& s) {
                   return double(s.dropped);
                 }));
  r.AddCollector("lumo_audit_events_summarized_total",
                 "Valid verifications folded into an open api_key.used "
                 "summary (not queued on their own)",
                 Type::kCounter,
                 audit_stat([](const service::AuditWriterStats& s) {
                   return double(s.summarized);
                 }));
  r.AddCollector("lumo_audit_open_summaries",
                 "api_key.used summaries waiting for their window to end",
                 Type::kGauge,
                 audit_stat([](const service::AuditWriterStats& s) {
                   return double(s.open_summaries);
                 }));
  r.AddCollector("lumo_audit_write_failures_total",
                 "Failed batch writes (retried)", Type::kCounter,
                 audit_stat([](const service::AuditWriterStats& s) {
                   return double(s.failures);
                 }));

  // Only when this process is a replica.
  if (replica_ != nullptr) {
    service::ReplicaSync* sync = replica_.get();
    r.AddCollector(kChangeFeedLagMetric, kChangeFeedLagHelp, Type::kGauge,
                   [sync] {
                     const absl::Duration lag = sync->FeedLag();
                     // +Inf until the first complete read of the feed.
                     return std::vector<metrics::Sample>{
                         {{},
                          lag == absl::InfiniteDuration()
                              ? std::numeric_limits<double>::infinity()
                              : absl::ToDoubleSeconds(lag)}};
                   });
    r.AddCollector(
        "lumo_change_feed_applied_seq",
        "Highest key_changes seq below which every change is "
        "applied by this replica",
        Type::kGauge, [sync] {
          return std::vector<metrics::Sample>{{{}, double(sync->applied())}};
        });
    r.AddCollector(
        "lumo_change_feed_abandoned_total",
        "Feed seqs given up as rolled back after the gap timeout",
        Type::kCounter, [sync] {
          return std::vector<metrics::Sample>{{{}, double(sync->abandoned())}};
        });
    r.AddCollector(
        "lumo_change_stream_abandoned_total",
        "Positions of per-writer change streams given up after the gap "
        "timeout (a writer died before closing a hole of its stream)",
        Type::kCounter, [sync] {
          return std::vector<metrics::Sample>{
              {{}, double(sync->stream_abandoned())}};
        });
    r.AddCollector("lumo_verify_cache_trusted",
                   "1 while this replica's lease lets it answer from its "
                   "verify cache, 0 while it verifies against the database",
                   Type::kGauge, [this] {
                     return std::vector<metrics::Sample>{
                         {{}, verifier_->cache_trusted() ? 1.0 : 0.0}};
                   });
  }
}

std::vector<const google::protobuf::ServiceDescriptor*>
App::ServiceDescriptors() const {
  // A service's descriptor is found from the name of its first method.
  std::vector<const google::protobuf::ServiceDescriptor*> out;
  for (const char* name : {
           "lumo.keys.v1.KeyService",
           "lumo.auth.v1.AuthService",
           "lumo.ops.v1.OperatorService",
           "lumo.admin.v1.ClientService",
           "lumo.admin.v1.SettingsService",
           "lumo.admin.v1.RegistrationService",
           "lumo.admin.v1.UserService",
           "lumo.admin.v1.RoleService",
           "lumo.audit.v1.AuditService",
           "lumo.portal.v1.PortalService",
           "lumo.webhooks.v1.WebhookService",
           "lumo.webhooks.v1.SecretScanningService",
       }) {
    const auto* d =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
            name);
    if (d != nullptr) out.push_back(d);
  }
  // Only when served.
  if (bench_service_) {
    out.push_back(
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
            "lumo.bench.v1.BenchService"));
  }
  return out;
}

}  // namespace lumo::app
