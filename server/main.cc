// lumokeys-server: opens the storage backend the --mysql DSN names, wires
// the verifier, the domain services and the gRPC adapters over it, then
// serves until SIGTERM/SIGINT.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "server/app/app.h"
#include "server/config/flag_config.h"
#include "server/config/process_hardening.h"
#include "server/config/secret_file.h"
#include "server/core/crypto.h"
#include "server/core/pepper.h"
#include "server/observability/log.h"
#include "server/observability/metrics_http.h"
#include "server/observability/observability_flags.h"
#include "server/service/audit_json.h"
#include "server/service/pepper_coverage.h"
#include "server/storage/backend.h"
#include "server/storage/backend_factory.h"
#include "server/tls/server_tls.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "gRPC listen address host:port");
ABSL_FLAG(bool, allow_remote_plaintext, false,
          "Allow plaintext gRPC on a non-loopback address (otherwise refused)");
ABSL_FLAG(std::string, mysql, "",
          "Database DSN mysql://user[:password]@host[:port]/database"
          "[?socket=/path]");
ABSL_FLAG(std::string, mysql_password_file, "",
          "File holding the database password (keeps it out of `ps`)");
ABSL_FLAG(int, db_pool_size, 16, "Database connections in the pool");
ABSL_FLAG(std::string, pepper_file, "",
          "Pepper set file: lines `<version>:<hex>` (required)");
// [pepper coverage] docs/operations.md "Pepper rotation".
ABSL_FLAG(bool, check_peppers, false,
          "Compare --pepper_file with the pepper versions that stored "
          "secrets use, print a table and exit (1 when live secrets use a "
          "version the file lacks)");
ABSL_FLAG(bool, allow_missing_pepper_versions, false,
          "Start even when live secrets use a pepper version missing from "
          "--pepper_file (they then fail to verify; emergencies only)");
ABSL_FLAG(std::string, operator_token_file, "",
          "File with the operator token (OperatorService); unset disables "
          "operator calls");
ABSL_FLAG(std::string, service_token_file, "",
          "File with the internal-service token (VerifyApiKey, gateway); "
          "unset disables service callers");
ABSL_FLAG(bool, migrate, false,
          "Apply pending migrations from --migrations_dir and exit");
ABSL_FLAG(std::string, migrations_dir, "sql/migrations",
          "Directory of NNNN_name.sql migrations");
ABSL_FLAG(int, purge_audit_older_than_days, 0,
          "Retention job: delete audit rows older than this many days (keeping "
          "every tenant's hash chain verifiable) and exit. Needs an account "
          "with DELETE on audit_events (the runtime account has none)");
ABSL_FLAG(bool, allow_nondurable_db, false,
          "DEV ONLY: start even if innodb_flush_log_at_trx_commit != 1");
ABSL_FLAG(absl::Duration, verify_cache_ttl, absl::Seconds(30),
          "How long a verification cache entry is trusted");
ABSL_FLAG(int, workers, 32, "Threads for blocking (database) work");
ABSL_FLAG(int, audit_queue_size, 100000,
          "Usage/auth audit events held in memory at most; beyond, they are "
          "dropped and recorded as an audit.dropped count");
ABSL_FLAG(bool, bench_disable_usage_audit, false,
          "BENCHMARK ONLY: do not record key use and failed authentication "
          "(to measure the audit's cost); never in production");
ABSL_FLAG(bool, bench_service, false,
          "BENCHMARK ONLY: serve lumo.bench.v1.BenchService (Echo, raw "
          "database baselines, counters) for tools/bench; never in "
          "production");
ABSL_FLAG(int, audit_batch_size, 5000, "Audit events per batched INSERT");
ABSL_FLAG(absl::Duration, audit_flush_interval, absl::Milliseconds(100),
          "Longest time a usage/auth audit event waits in memory");
ABSL_FLAG(absl::Duration, verify_usage_window, absl::Seconds(1),
          "Valid VerifyApiKey calls of one key, client address and caller "
          "within this window are audited as one api_key.used event with a "
          "count (0: one event per call)");
ABSL_FLAG(int, audit_burst_threshold, 10,
          "Failures on one key id or from one address within a minute that "
          "mark the failures suspicious");
// See docs/reliability.md "Brute force".
ABSL_FLAG(int, auth_failures_per_ip_burst, 1000,
          "Failed key verifications one source address may make in a burst "
          "before every attempt from it gets RESOURCE_EXHAUSTED/429 (0: off)");
ABSL_FLAG(int, auth_failures_per_ip_per_minute, 600,
          "Refill rate of the per-address failure budget");
ABSL_FLAG(int, auth_failures_per_key_burst, 100,
          "Failed verifications of one key id in a burst before further "
          "failures for it get RESOURCE_EXHAUSTED/429 (the right secret is "
          "still accepted; 0: off)");
ABSL_FLAG(int, auth_failures_per_key_per_minute, 60,
          "Refill rate of the per-key-id failure budget");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "How long in-flight calls may run after SIGTERM");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate chain: with --tls_key_file, --listen and "
          "--internal_listen serve TLS (reloaded on SIGHUP)");
ABSL_FLAG(std::string, tls_key_file, "",
          "PEM private key (unencrypted) of --tls_cert_file");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA bundle that client certificates must chain to. With "
          "--internal_listen only that port requires client certificates "
          "(mTLS); without it, --listen requires them");
ABSL_FLAG(std::string, internal_listen, "",
          "Optional second gRPC address host:port for internal callers "
          "(VerifyApiKey): TLS that requires a client certificate signed by "
          "--tls_client_ca_file (mTLS)");
ABSL_FLAG(absl::Duration, drain_delay, absl::ZeroDuration(),
          "After SIGTERM, how long health reports NOT_SERVING while calls "
          "are still accepted (lets load balancers move traffic away) before "
          "the --shutdown_grace drain starts");
// --log_level, --metrics_listen and
// --metrics_allow_remote come from server/observability/observability_flags.
// See docs/replication.md.
ABSL_FLAG(bool, replication, true,
          "Register in the replicas table and tail the key_changes feed, so "
          "that Rotate/Revoke/Delete return only when every live replica "
          "has evicted the key (off: this process must be the only replica)");
ABSL_FLAG(std::string, replica_id, "",
          "This replica's id in the replicas table (default: random)");
ABSL_FLAG(absl::Duration, replica_lease, absl::Seconds(3),
          "Replica lease: peers stop waiting for a replica this long after "
          "its last heartbeat, and it stops answering from its cache before");
ABSL_FLAG(absl::Duration, replica_poll_interval, absl::Milliseconds(20),
          "Pause between reads of the key_changes feed");
ABSL_FLAG(absl::Duration, replica_heartbeat_interval, absl::Milliseconds(250),
          "Longest pause between heartbeats when nothing changes");
ABSL_FLAG(absl::Duration, replica_gap_timeout, absl::Seconds(1),
          "How long a missing feed seq is waited for before it is treated "
          "as rolled back");
ABSL_FLAG(absl::Duration, portal_session_idle_timeout, absl::Minutes(30),
          "A portal session ends after this long without a request");
ABSL_FLAG(absl::Duration, portal_session_absolute_timeout, absl::Hours(12),
          "A portal session ends this long after login");
ABSL_FLAG(int, portal_login_max_failures, 5,
          "Failed portal logins per account and client network within "
          "--portal_login_failure_window before further attempts of that "
          "account from that network get 429 (other networks are not "
          "affected)");
ABSL_FLAG(int, portal_login_max_failures_per_ip, 20,
          "Failed portal logins per client network (any account) within the "
          "window");
ABSL_FLAG(int, portal_login_max_failures_per_account, 20,
          "Failed portal logins per account from all networks within the "
          "window, after which only networks the account logged in from "
          "before may try until the window ends");
ABSL_FLAG(absl::Duration, portal_login_known_network_ttl, absl::Hours(24 * 30),
          "How long a network an account logged in from stays known (exempt "
          "from --portal_login_max_failures_per_account)");
ABSL_FLAG(int, portal_hash_threads, 2,
          "Threads that check portal passwords (scrypt, 128 MiB each at the "
          "default cost): the cap on concurrent password checks");
ABSL_FLAG(int, portal_hash_queue, 8,
          "Portal logins that may wait for a password-check thread; more are "
          "refused at once with 429 and Retry-After: 1");
ABSL_FLAG(absl::Duration, portal_hash_max_wait, absl::Seconds(2),
          "A login that waited this long for a password-check thread is "
          "refused with 429 and Retry-After: 1 instead of being checked");
ABSL_FLAG(int, portal_hash_nice, 10,
          "Nice increment of the password-check threads (0-19), so request "
          "handling takes the CPU first");
ABSL_FLAG(int, throttle_ipv6_prefix_len, 64,
          "IPv6 clients are counted per network of this prefix length by the "
          "failure throttle, the portal login throttle and the open "
          "registration limit (IPv4 addresses one by one); 1-128");
ABSL_FLAG(absl::Duration, portal_login_failure_window, absl::Minutes(15),
          "Window of the portal login failure counters");
ABSL_FLAG(int, portal_scrypt_log_n, 17,
          "log2 of scrypt's N for new portal passwords (OWASP: 17, with r=8, "
          "p=1; 10-20). Lower it only for tests on small machines");

namespace {

// One JSON line through the shared logging
// library (server/observability/log.h), filtered by --log_level.
void Log(absl::string_view level, absl::string_view message,
         absl::string_view extra_json_fields = "") {
  lumo::log::Level parsed = lumo::log::Level::kFatal;
  if (level != "fatal" && !lumo::log::ParseLevel(level, &parsed)) {
    parsed = lumo::log::Level::kInfo;
  }
  lumo::log::Line(parsed, message).Raw(extra_json_fields);
}

[[noreturn]] void Fatal(absl::string_view message) {
  Log("fatal", message);
  exit(1);
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(buffer.str()));
  if (token.size() < 16) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": token must be at least 16 characters"));
  }
  return token;
}

std::optional<lumo::core::Digest> TokenHash(const std::string& flag_value) {
  if (flag_value.empty()) return std::nullopt;
  absl::StatusOr<std::string> token = ReadTokenFile(flag_value);
  if (!token.ok()) Fatal(token.status().message());
  lumo::core::Digest hash = lumo::core::Sha256(*token);
  lumo::core::Cleanse(*token);
  return hash;
}

bool IsLoopbackListen(absl::string_view listen) {
  return absl::StartsWith(listen, "127.") ||
         absl::StartsWith(listen, "localhost:") ||
         absl::StartsWith(listen, "[::1]:") ||
         absl::StartsWith(listen, "unix:");
}

}  // namespace

int main(int argc, char** argv) {
  // [no core dumps] (docs/hardening.md): before anything is read.
  if (absl::Status hardened = lumo::config::DisableCoreDumps();
      !hardened.ok()) {
    Fatal(hardened.message());
  }
  lumo::config::ParseFlags(
      argc, argv, "LUMO_SERVER_",
      "LumoKeys gRPC server: API-key lifecycle and verification over MySQL.\n"
      "  lumokeys-server --mysql=DSN --pepper_file=F [--listen=H:P] ...\n"
      "  lumokeys-server --mysql=DSN --migrate [--migrations_dir=D]\n"
      "SIGTERM/SIGINT drain and stop; SIGHUP reloads the TLS files and the "
      "pepper file.");
  if (absl::Status ok = lumo::observability::ApplyObservabilityFlags();
      !ok.ok()) {
    Fatal(ok.message());
  }
  // Debian's Abseil is built
  // without NDEBUG, so every absl::Mutex::Lock also maintained a lock graph
  // (GraphCycles) - a few per cent of a warm call in the profile
  // (docs/benchmarks.md). Tests keep the default.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Signals are taken synchronously by the main thread (sigwait below); block
  // them before any other thread exists so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // [secret files] every file holding a secret is the running user's (or
  // root's) and unreadable by others, else no start (docs/operations.md).
  if (absl::Status fit = lumo::config::CheckSecretFiles(
          {{"--pepper_file", absl::GetFlag(FLAGS_pepper_file)},
           {"--operator_token_file", absl::GetFlag(FLAGS_operator_token_file)},
           {"--service_token_file", absl::GetFlag(FLAGS_service_token_file)},
           {"--mysql_password_file", absl::GetFlag(FLAGS_mysql_password_file)},
           {"--tls_key_file", absl::GetFlag(FLAGS_tls_key_file)}},
          [](absl::string_view warning) { Log("warning", warning); });
      !fit.ok()) {
    Fatal(fit.message());
  }

  // The storage backend: chosen by the DSN's scheme (backend_factory.h).
  if (absl::GetFlag(FLAGS_mysql).empty()) Fatal("--mysql is required");
  lumo::storage::BackendOptions db;
  db.dsn = absl::GetFlag(FLAGS_mysql);
  if (absl::Status usable = lumo::storage::CheckBackendOptions(db);
      !usable.ok()) {
    Fatal(absl::StrCat("--mysql: ", usable.message()));
  }
  if (!absl::GetFlag(FLAGS_mysql_password_file).empty()) {
    std::ifstream in(absl::GetFlag(FLAGS_mysql_password_file));
    if (!in) Fatal("--mysql_password_file: cannot read the file");
    std::string line;
    std::getline(in, line);
    db.password = std::string(absl::StripAsciiWhitespace(line));
  }
  db.pool_size = absl::GetFlag(FLAGS_db_pool_size);

  if (absl::GetFlag(FLAGS_migrate)) {
    std::vector<std::string> applied;
    absl::Status migrated = lumo::storage::MigrateSchema(
        db, absl::GetFlag(FLAGS_migrations_dir), &applied);
    if (!migrated.ok()) {
      Fatal(absl::StrCat("migration failed: ", migrated.ToString()));
    }
    for (const std::string& name : applied) {
      Log("info", "applied migration",
          absl::StrCat("\"migration\":\"", name, "\""));
    }
    Log("info",
        applied.empty() ? "schema is up to date" : "migrations applied");
    return 0;
  }

  if (absl::GetFlag(FLAGS_purge_audit_older_than_days) != 0) {
    absl::StatusOr<std::unique_ptr<lumo::storage::Backend>> backend =
        lumo::storage::OpenBackend(db);
    if (!backend.ok()) {
      Fatal(absl::StrCat("database: ", backend.status().ToString()));
    }
    absl::StatusOr<int64_t> purged = (*backend)->PurgeAuditOlderThanDays(
        absl::GetFlag(FLAGS_purge_audit_older_than_days));
    if (!purged.ok()) {
      Fatal(absl::StrCat("audit purge failed: ", purged.status().ToString()));
    }
    Log("info", "audit rows purged", absl::StrCat("\"deleted\":", *purged));
    return 0;
  }

  const std::string listen = absl::GetFlag(FLAGS_listen);
  // Cross-field checks name the settings.
  const std::string internal_listen = absl::GetFlag(FLAGS_internal_listen);
  const bool tls = !absl::GetFlag(FLAGS_tls_cert_file).empty();
  if (absl::GetFlag(FLAGS_tls_cert_file).empty() !=
      absl::GetFlag(FLAGS_tls_key_file).empty()) {
    Fatal("--tls_cert_file and --tls_key_file must be set together");
  }
  if (!absl::GetFlag(FLAGS_tls_client_ca_file).empty() && !tls) {
    Fatal(
        "--tls_client_ca_file needs --tls_cert_file and --tls_key_file "
        "(client certificates are only checked over TLS)");
  }
  if (!internal_listen.empty() &&
      absl::GetFlag(FLAGS_tls_client_ca_file).empty()) {
    Fatal(
        "--internal_listen needs --tls_client_ca_file, --tls_cert_file "
        "and --tls_key_file (it serves mTLS only)");
  }
  if (!internal_listen.empty() && internal_listen == listen) {
    Fatal("--internal_listen must differ from --listen");
  }
  if (absl::GetFlag(FLAGS_drain_delay) < absl::ZeroDuration() ||
      absl::GetFlag(FLAGS_shutdown_grace) < absl::ZeroDuration()) {
    Fatal("--drain_delay and --shutdown_grace must not be negative");
  }
  std::unique_ptr<lumo::tls::ReloadableServerTls> server_tls;
  if (tls) {
    absl::StatusOr<std::unique_ptr<lumo::tls::ReloadableServerTls>> created =
        lumo::tls::ReloadableServerTls::Create(
            {absl::GetFlag(FLAGS_tls_cert_file),
             absl::GetFlag(FLAGS_tls_key_file),
             absl::GetFlag(FLAGS_tls_client_ca_file)});
    if (!created.ok()) Fatal(created.status().message());
    server_tls = *std::move(created);
  }
  if (!tls && !IsLoopbackListen(listen) &&
      !absl::GetFlag(FLAGS_allow_remote_plaintext)) {
    Fatal(absl::StrCat("--listen=", listen,
                       " is not loopback: plaintext gRPC is refused there "
                       "unless --allow_remote_plaintext is set (or TLS is "
                       "configured with --tls_cert_file/--tls_key_file)"));
  }
  if (absl::GetFlag(FLAGS_pepper_file).empty())
    Fatal("--pepper_file is required");
  absl::StatusOr<std::shared_ptr<lumo::core::PepperSet>> peppers =
      lumo::core::PepperSet::LoadReloadableFile(
          absl::GetFlag(FLAGS_pepper_file));
  if (!peppers.ok()) {
    Fatal(absl::StrCat("--pepper_file: ", peppers.status().message()));
  }
  std::optional<lumo::core::Digest> service_token =
      TokenHash(absl::GetFlag(FLAGS_service_token_file));
  std::optional<lumo::core::Digest> operator_token =
      TokenHash(absl::GetFlag(FLAGS_operator_token_file));

  absl::StatusOr<std::unique_ptr<lumo::storage::Backend>> store =
      lumo::storage::OpenBackend(db);
  if (!store.ok()) {
    Fatal(absl::StrCat("database: ", store.status().ToString()));
  }
  absl::StatusOr<lumo::storage::Durability> durability =
      (*store)->CheckDurability();
  if (!durability.ok()) {
    Fatal(absl::StrCat("database: ", durability.status().ToString()));
  }
  if (!durability->durable) {
    if (!absl::GetFlag(FLAGS_allow_nondurable_db)) {
      Fatal(absl::StrCat(
          "database has ", durability->setting,
          ": acknowledged commits could be lost; refusing to start "
          "(--allow_nondurable_db overrides, for development only)"));
    }
    Log("warning", absl::StrCat("database is not durable (",
                                durability->setting, ")"));
  }
  // [pepper coverage]: every pepper version a stored secret uses must be in
  // the pepper file; --check_peppers prints the comparison and exits.
  {
    absl::StatusOr<lumo::service::PepperCoverage> coverage =
        lumo::service::CheckPepperCoverage(**peppers,
                                           (*store)->pepper_usage());
    if (!coverage.ok()) {
      Fatal(absl::StrCat("database: ", coverage.status().ToString()));
    }
    if (absl::GetFlag(FLAGS_check_peppers)) {
      std::fputs(coverage->Report().c_str(), stdout);
      return coverage->refused() ? 1 : 0;
    }
    if (coverage->refused()) {
      if (!absl::GetFlag(FLAGS_allow_missing_pepper_versions)) {
        Fatal(absl::StrCat(coverage->RefusalMessage(),
                           ". Refusing to start "
                           "(--allow_missing_pepper_versions overrides)"));
      }
      Log("error", coverage->RefusalMessage());
    }
    if (coverage->degraded()) Log("warning", coverage->WarningMessage());
  }

  lumo::app::AppOptions app_options;
  app_options.peppers = *peppers;
  app_options.service_token_sha256 = service_token;
  app_options.operator_token_sha256 = operator_token;
  app_options.verify_cache_ttl = absl::GetFlag(FLAGS_verify_cache_ttl);
  app_options.workers = absl::GetFlag(FLAGS_workers);
  app_options.record_usage = !absl::GetFlag(FLAGS_bench_disable_usage_audit);
  if (!app_options.record_usage) {
    Log("warning", "usage auditing is OFF (--bench_disable_usage_audit)");
  }
  app_options.bench_service = absl::GetFlag(FLAGS_bench_service);
  if (app_options.bench_service) {
    Log("warning", "benchmark service is ON (--bench_service)");
  }
  app_options.audit_writer.max_queue =
      static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_audit_queue_size)));
  app_options.audit_writer.max_batch =
      static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_audit_batch_size)));
  app_options.audit_writer.flush_interval =
      absl::GetFlag(FLAGS_audit_flush_interval);
  app_options.audit_writer.summary_window =
      absl::GetFlag(FLAGS_verify_usage_window);
  if (app_options.audit_writer.summary_window < absl::ZeroDuration() ||
      app_options.audit_writer.summary_window > absl::Minutes(10)) {
    Fatal("--verify_usage_window must be between 0s and 10m");
  }
  app_options.portal.idle_ttl =
      absl::GetFlag(FLAGS_portal_session_idle_timeout);
  app_options.portal.absolute_ttl =
      absl::GetFlag(FLAGS_portal_session_absolute_timeout);
  const int ipv6_prefix_len = absl::GetFlag(FLAGS_throttle_ipv6_prefix_len);
  if (ipv6_prefix_len < 1 || ipv6_prefix_len > 128) {
    Fatal("--throttle_ipv6_prefix_len must be between 1 and 128");
  }
  app_options.ipv6_prefix_len = ipv6_prefix_len;
  app_options.portal.throttle.max_failures_per_pair =
      absl::GetFlag(FLAGS_portal_login_max_failures);
  app_options.portal.throttle.max_failures_per_network =
      absl::GetFlag(FLAGS_portal_login_max_failures_per_ip);
  app_options.portal.throttle.max_failures_per_account =
      absl::GetFlag(FLAGS_portal_login_max_failures_per_account);
  app_options.portal.throttle.window =
      absl::GetFlag(FLAGS_portal_login_failure_window);
  app_options.portal.throttle.known_network_ttl =
      absl::GetFlag(FLAGS_portal_login_known_network_ttl);
  app_options.portal.throttle.ipv6_prefix_len = ipv6_prefix_len;
  app_options.portal.hashing.threads = absl::GetFlag(FLAGS_portal_hash_threads);
  app_options.portal.hashing.max_queue =
      static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_portal_hash_queue)));
  app_options.portal.hashing.max_wait =
      absl::GetFlag(FLAGS_portal_hash_max_wait);
  app_options.portal.hashing.nice_increment =
      absl::GetFlag(FLAGS_portal_hash_nice);
  if (app_options.portal.hashing.threads < 1 ||
      app_options.portal.hashing.threads > 64) {
    Fatal("--portal_hash_threads must be between 1 and 64");
  }
  if (app_options.portal.hashing.nice_increment < 0 ||
      app_options.portal.hashing.nice_increment > 19) {
    Fatal("--portal_hash_nice must be between 0 and 19");
  }
  app_options.portal.scrypt.log2_n = absl::GetFlag(FLAGS_portal_scrypt_log_n);
  if (app_options.portal.scrypt.log2_n < 10 ||
      app_options.portal.scrypt.log2_n > 20) {
    Fatal("--portal_scrypt_log_n must be between 10 and 20");
  }
  app_options.usage_auditor.burst_threshold =
      std::max(1, absl::GetFlag(FLAGS_audit_burst_threshold));
  app_options.replication = absl::GetFlag(FLAGS_replication);
  app_options.replica.replica_id = absl::GetFlag(FLAGS_replica_id);
  app_options.replica.address = listen;
  {
    char host[256] = {0};
    if (gethostname(host, sizeof(host) - 1) == 0) {
      app_options.replica.hostname = host;
    }
  }
  app_options.replica.pid = getpid();
  app_options.replica.lease = absl::GetFlag(FLAGS_replica_lease);
  app_options.replica.lease_margin = app_options.replica.lease / 5;
  app_options.replica.poll_interval =
      absl::GetFlag(FLAGS_replica_poll_interval);
  app_options.replica.heartbeat_interval =
      absl::GetFlag(FLAGS_replica_heartbeat_interval);
  app_options.replica.gap_timeout = absl::GetFlag(FLAGS_replica_gap_timeout);
  app_options.replica.log = [](absl::string_view level,
                               absl::string_view message) {
    Log(level, message);
  };
  app_options.failure_throttle.ip_burst =
      absl::GetFlag(FLAGS_auth_failures_per_ip_burst);
  app_options.failure_throttle.ip_per_minute =
      absl::GetFlag(FLAGS_auth_failures_per_ip_per_minute);
  app_options.failure_throttle.key_burst =
      absl::GetFlag(FLAGS_auth_failures_per_key_burst);
  app_options.failure_throttle.key_per_minute =
      absl::GetFlag(FLAGS_auth_failures_per_key_per_minute);
  app_options.failure_throttle.ipv6_prefix_len = ipv6_prefix_len;
  // [trust boundary] with an internal listener, privileged credentials are
  // accepted only there (docs/operations.md "Internal listener").
  app_options.internal_listener_only = !internal_listen.empty();
  absl::StatusOr<std::unique_ptr<lumo::app::App>> app =
      lumo::app::App::Create(*std::move(store), app_options);
  if (!app.ok()) Fatal(app.status().ToString());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // A stale server on the same port must make start-up fail, not silently
  // share the traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int bound_port = 0;
  int internal_port = 0;
  // mTLS on --internal_listen when given,
  // else on --listen when a client CA is given.
  std::shared_ptr<grpc::ServerCredentials> listen_credentials =
      grpc::InsecureServerCredentials();
  if (server_tls != nullptr) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
        server_tls->Credentials(server_tls->has_client_ca() &&
                                internal_listen.empty());
    if (!credentials.ok()) Fatal(credentials.status().message());
    listen_credentials = *credentials;
  }
  builder.AddListeningPort(listen, listen_credentials, &bound_port);
  if (!internal_listen.empty()) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
        server_tls->Credentials(/*require_client_cert=*/true);
    if (!credentials.ok()) Fatal(credentials.status().message());
    builder.AddListeningPort(internal_listen, *credentials, &internal_port);
  }
  (*app)->RegisterServices(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    Fatal(absl::StrCat("cannot listen on ", listen));
  }
  if (!internal_listen.empty() && internal_port == 0) {
    Fatal(absl::StrCat("cannot listen on --internal_listen=", internal_listen));
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  Log("info", "serving",
      absl::StrCat("\"listen\":\"", listen, "\",\"port\":", bound_port,
                   ",\"tls\":", tls ? "true" : "false",
                   ",\"internal_port\":", internal_port));
  lumo::metrics::MetricsHttpServer metrics_server(&(*app)->metrics());
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
  if ((*app)->replica_sync() != nullptr) {
    std::string fields = "\"replica_id\":";
    lumo::log::AppendJsonString(fields, (*app)->replica_sync()->id());
    absl::StrAppend(&fields, ",\"incarnation\":");
    lumo::log::AppendJsonString(fields, (*app)->replica_sync()->incarnation());
    absl::StrAppend(
        &fields, ",\"ack_timeout_ms\":",
        absl::ToInt64Milliseconds((*app)->replica_sync()->ack_timeout()));
    Log("info", "replica registered", fields);
  }

  // SIGHUP reloads the TLS files and the pepper
  // file (each keeps its old state when the new one is invalid).
  int signal_number = 0;
  for (;;) {
    sigwait(&signals, &signal_number);
    if (signal_number != SIGHUP) break;
    if (server_tls != nullptr) {
      absl::Status reloaded = server_tls->Reload();
      if (reloaded.ok()) {
        Log("info", "TLS files reloaded");
      } else {
        Log("error",
            absl::StrCat("TLS reload failed, keeping the old certificate: ",
                         reloaded.message()));
      }
    }
    absl::Status reloaded =
        (*peppers)->Reload(absl::GetFlag(FLAGS_pepper_file));
    if (reloaded.ok()) {
      Log("info", "pepper file reloaded",
          absl::StrCat("\"current_pepper_version\":",
                       (*peppers)->current_version()));
    } else {
      Log("error", absl::StrCat("pepper reload failed, keeping the old set: ",
                                reloaded.message()));
    }
  }
  Log("info", "shutting down", absl::StrCat("\"signal\":", signal_number));
  server->GetHealthCheckService()->SetServingStatus(false);
  absl::SleepFor(absl::GetFlag(FLAGS_drain_delay));
  server->Shutdown(
      std::chrono::system_clock::now() +
      absl::ToChronoMilliseconds(absl::GetFlag(FLAGS_shutdown_grace)));
  // Its collectors read the app.
  metrics_server.Stop();
  // Runs what is queued, joins the workers, then writes every queued audit
  // event (the writer's stop_timeout bounds it when the database is down).
  app->reset();
  Log("info", "stopped");
  return 0;
}
