#include "server/commands/database.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/observability/log.h"
#include "server/shared/process/secret_file.h"
#include "server/storage/mysql/connection_pool.h"
#include "server/storage/mysql/migrator.h"
#include "server/storage/mysql/mysql_audit_store.h"
#include "server/storage/mysql/mysql_options.h"
#include "server/storage/mysql/mysql_pepper_usage_store.h"

namespace lumo::commands {
namespace {

absl::Status Prefixed(absl::string_view prefix, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.ToString()));
}

// The connection options `database` names: the DSN parsed, the password
// file's password in place of the DSN's, the pool size.
absl::StatusOr<storage::MysqlOptions> ConnectionOptions(
    const config::DatabaseConfig& database) {
  storage::InitMysqlDriver();
  absl::StatusOr<storage::MysqlOptions> options =
      storage::ParseMysqlDsn(database.dsn);
  if (!options.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--mysql: ", options.status().message()));
  }
  if (!database.password_file.empty()) {
    absl::StatusOr<std::string> password = process::ReadPasswordFile(
        "--mysql_password_file", database.password_file);
    if (!password.ok()) return password.status();
    options->password = *std::move(password);
  }
  options->pool_size = database.pool_size;
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Database>> OpenDatabase(
    const config::DatabaseConfig& database) {
  absl::StatusOr<storage::MysqlOptions> options = ConnectionOptions(database);
  if (!options.ok()) return options.status();
  absl::StatusOr<std::unique_ptr<Database>> opened =
      storage::MysqlKeyStore::Open(*options);
  if (!opened.ok()) return Prefixed("database: ", opened.status());
  return opened;
}

absl::Status MigrateDatabase(const config::DatabaseConfig& database,
                             const std::string& migrations_dir,
                             std::vector<std::string>* applied) {
  absl::StatusOr<storage::MysqlOptions> options = ConnectionOptions(database);
  if (!options.ok()) return options.status();
  return storage::ApplyMigrations(*options, migrations_dir, applied);
}

absl::Status CheckDurability(Database& database, bool allow_nondurable) {
  absl::StatusOr<int> flush = database.FlushLogAtTrxCommit();
  if (!flush.ok()) return Prefixed("database: ", flush.status());
  if (*flush == 1) return absl::OkStatus();
  if (!allow_nondurable) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database has innodb_flush_log_at_trx_commit=", *flush,
        ": acknowledged commits could be lost; refusing to start "
        "(--allow_nondurable_db overrides, for development only)"));
  }
  log::Warning("database is not durable (innodb_flush_log_at_trx_commit != 1)");
  return absl::OkStatus();
}

absl::StatusOr<service::PepperCoverage> PepperCoverageOf(
    Database& database, const core::PepperSet& peppers) {
  storage::MysqlPepperUsageStore usage(database.shared_pool());
  absl::StatusOr<service::PepperCoverage> coverage =
      service::CheckPepperCoverage(peppers, usage);
  if (!coverage.ok()) return Prefixed("database: ", coverage.status());
  return coverage;
}

absl::StatusOr<int64_t> PurgeAuditOlderThanDays(Database& database, int days) {
  storage::MysqlAuditStore audit(database.shared_pool());
  return audit.PurgeOlderThanDays(days);
}

}  // namespace lumo::commands
