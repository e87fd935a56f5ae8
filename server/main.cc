// lumokeys-server: wires the MySQL store, the verifier, the domain service
// and the gRPC adapters together, then serves until SIGTERM/SIGINT.
#include <signal.h>

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
#include "absl/time/clock.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "server/app/app.h"
#include "server/core/crypto.h"
#include "server/core/pepper.h"
#include "server/service/audit_json.h"
#include "server/storage/mysql/migrator.h"
#include "server/storage/mysql/mysql_audit_store.h"
#include "server/storage/mysql/mysql_key_store.h"
#include "server/storage/mysql/mysql_options.h"

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
ABSL_FLAG(int, audit_batch_size, 5000, "Audit events per batched INSERT");
ABSL_FLAG(absl::Duration, audit_flush_interval, absl::Milliseconds(100),
          "Longest time a usage/auth audit event waits in memory");
ABSL_FLAG(int, audit_burst_threshold, 10,
          "Failures on one key id or from one address within a minute that "
          "mark the failures suspicious");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "How long in-flight calls may run after SIGTERM");
// [portal flags] (issue 6, docs/portal.md)
ABSL_FLAG(absl::Duration, portal_session_idle_timeout, absl::Minutes(30),
          "A portal session ends after this long without a request");
ABSL_FLAG(absl::Duration, portal_session_absolute_timeout, absl::Hours(12),
          "A portal session ends this long after login");
ABSL_FLAG(int, portal_login_max_failures, 5,
          "Failed portal logins per account within "
          "--portal_login_failure_window before further attempts get 429");
ABSL_FLAG(int, portal_login_max_failures_per_ip, 20,
          "Failed portal logins per source address within the window");
ABSL_FLAG(absl::Duration, portal_login_failure_window, absl::Minutes(15),
          "Window of the portal login failure counters");
ABSL_FLAG(int, portal_scrypt_log_n, 17,
          "log2 of scrypt's N for new portal passwords (OWASP: 17, with r=8, "
          "p=1; 10-20). Lower it only for tests on small machines");

namespace {

void Log(absl::string_view level, absl::string_view message,
         absl::string_view extra_json_fields = "") {
  std::string line = "{\"time\":";
  lumo::service::AppendJsonString(
      line,
      absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone()));
  line += ",\"level\":";
  lumo::service::AppendJsonString(line, level);
  line += ",\"msg\":";
  lumo::service::AppendJsonString(line, message);
  if (!extra_json_fields.empty())
    absl::StrAppend(&line, ",", extra_json_fields);
  line += "}\n";
  fputs(line.c_str(), stderr);
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
  absl::SetProgramUsageMessage(
      "LumoKeys gRPC server: API-key lifecycle and verification over MySQL.\n"
      "  lumokeys-server --mysql=DSN --pepper_file=F [--listen=H:P] ...\n"
      "  lumokeys-server --mysql=DSN --migrate [--migrations_dir=D]");
  absl::ParseCommandLine(argc, argv);

  // Signals are taken synchronously by the main thread (sigwait below); block
  // them before any other thread exists so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  lumo::storage::InitMysqlDriver();
  if (absl::GetFlag(FLAGS_mysql).empty()) Fatal("--mysql is required");
  absl::StatusOr<lumo::storage::MysqlOptions> db =
      lumo::storage::ParseMysqlDsn(absl::GetFlag(FLAGS_mysql));
  if (!db.ok()) Fatal(absl::StrCat("--mysql: ", db.status().message()));
  if (!absl::GetFlag(FLAGS_mysql_password_file).empty()) {
    std::ifstream in(absl::GetFlag(FLAGS_mysql_password_file));
    if (!in) Fatal("--mysql_password_file: cannot read the file");
    std::string line;
    std::getline(in, line);
    db->password = std::string(absl::StripAsciiWhitespace(line));
  }
  db->pool_size = absl::GetFlag(FLAGS_db_pool_size);

  if (absl::GetFlag(FLAGS_migrate)) {
    std::vector<std::string> applied;
    absl::Status migrated = lumo::storage::ApplyMigrations(
        *db, absl::GetFlag(FLAGS_migrations_dir), &applied);
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
    absl::StatusOr<std::unique_ptr<lumo::storage::MysqlKeyStore>> keys =
        lumo::storage::MysqlKeyStore::Open(*db);
    if (!keys.ok()) Fatal(absl::StrCat("database: ", keys.status().ToString()));
    lumo::storage::MysqlAuditStore audit((*keys)->shared_pool());
    absl::StatusOr<int64_t> purged = audit.PurgeOlderThanDays(
        absl::GetFlag(FLAGS_purge_audit_older_than_days));
    if (!purged.ok()) {
      Fatal(absl::StrCat("audit purge failed: ", purged.status().ToString()));
    }
    Log("info", "audit rows purged",
        absl::StrCat("\"deleted\":", *purged));
    return 0;
  }

  const std::string listen = absl::GetFlag(FLAGS_listen);
  if (!IsLoopbackListen(listen) &&
      !absl::GetFlag(FLAGS_allow_remote_plaintext)) {
    Fatal(absl::StrCat("--listen=", listen,
                       " is not loopback: plaintext gRPC is refused there "
                       "unless --allow_remote_plaintext is set"));
  }
  if (absl::GetFlag(FLAGS_pepper_file).empty())
    Fatal("--pepper_file is required");
  absl::StatusOr<std::shared_ptr<const lumo::core::PepperSet>> peppers =
      lumo::core::PepperSet::LoadFile(absl::GetFlag(FLAGS_pepper_file));
  if (!peppers.ok()) {
    Fatal(absl::StrCat("--pepper_file: ", peppers.status().message()));
  }
  std::optional<lumo::core::Digest> service_token =
      TokenHash(absl::GetFlag(FLAGS_service_token_file));
  std::optional<lumo::core::Digest> operator_token =
      TokenHash(absl::GetFlag(FLAGS_operator_token_file));

  absl::StatusOr<std::unique_ptr<lumo::storage::MysqlKeyStore>> store =
      lumo::storage::MysqlKeyStore::Open(*db);
  if (!store.ok()) {
    Fatal(absl::StrCat("database: ", store.status().ToString()));
  }
  absl::StatusOr<int> flush = (*store)->FlushLogAtTrxCommit();
  if (!flush.ok()) Fatal(absl::StrCat("database: ", flush.status().ToString()));
  if (*flush != 1) {
    if (!absl::GetFlag(FLAGS_allow_nondurable_db)) {
      Fatal(absl::StrCat(
          "database has innodb_flush_log_at_trx_commit=", *flush,
          ": acknowledged commits could be lost; refusing to start "
          "(--allow_nondurable_db overrides, for development only)"));
    }
    Log("warning",
        "database is not durable (innodb_flush_log_at_trx_commit != 1)");
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
  app_options.audit_writer.max_queue =
      static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_audit_queue_size)));
  app_options.audit_writer.max_batch =
      static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_audit_batch_size)));
  app_options.audit_writer.flush_interval =
      absl::GetFlag(FLAGS_audit_flush_interval);
  // [portal options] (issue 6)
  app_options.portal.idle_ttl =
      absl::GetFlag(FLAGS_portal_session_idle_timeout);
  app_options.portal.absolute_ttl =
      absl::GetFlag(FLAGS_portal_session_absolute_timeout);
  app_options.portal.throttle.max_failures_per_account =
      absl::GetFlag(FLAGS_portal_login_max_failures);
  app_options.portal.throttle.max_failures_per_address =
      absl::GetFlag(FLAGS_portal_login_max_failures_per_ip);
  app_options.portal.throttle.window =
      absl::GetFlag(FLAGS_portal_login_failure_window);
  app_options.portal.scrypt.log2_n = absl::GetFlag(FLAGS_portal_scrypt_log_n);
  if (app_options.portal.scrypt.log2_n < 10 ||
      app_options.portal.scrypt.log2_n > 20) {
    Fatal("--portal_scrypt_log_n must be between 10 and 20");
  }
  app_options.usage_auditor.burst_threshold =
      std::max(1, absl::GetFlag(FLAGS_audit_burst_threshold));
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
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(),
                           &bound_port);
  (*app)->RegisterServices(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    Fatal(absl::StrCat("cannot listen on ", listen));
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  Log("info", "serving",
      absl::StrCat("\"listen\":\"", listen, "\",\"port\":", bound_port));

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  Log("info", "shutting down", absl::StrCat("\"signal\":", signal_number));
  server->GetHealthCheckService()->SetServingStatus(false);
  server->Shutdown(
      std::chrono::system_clock::now() +
      absl::ToChronoMilliseconds(absl::GetFlag(FLAGS_shutdown_grace)));
  // Runs what is queued, joins the workers, then writes every queued audit
  // event (the writer's stop_timeout bounds it when the database is down).
  app->reset();
  Log("info", "stopped");
  return 0;
}
