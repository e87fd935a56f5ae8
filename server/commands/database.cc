#include "server/commands/database.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/observability/log.h"
#include "server/shared/process/secret_file.h"
#include "server/storage/mysql/connection_pool.h"
#include "server/storage/mysql/mysql_pepper_usage_store.h"

namespace lumo::commands {
namespace {

absl::Status Prefixed(absl::string_view prefix, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.ToString()));
}

}  // namespace

absl::StatusOr<storage::MysqlOptions> DatabaseOptions(
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

absl::StatusOr<std::unique_ptr<storage::MysqlKeyStore>> OpenDatabase(
    const config::DatabaseConfig& database) {
  absl::StatusOr<storage::MysqlOptions> options = DatabaseOptions(database);
  if (!options.ok()) return options.status();
  absl::StatusOr<std::unique_ptr<storage::MysqlKeyStore>> store =
      storage::MysqlKeyStore::Open(*options);
  if (!store.ok()) return Prefixed("database: ", store.status());
  return store;
}

absl::Status CheckDurability(storage::MysqlKeyStore& store,
                             bool allow_nondurable) {
  absl::StatusOr<int> flush = store.FlushLogAtTrxCommit();
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
    storage::MysqlKeyStore& store, const core::PepperSet& peppers) {
  storage::MysqlPepperUsageStore usage(store.shared_pool());
  absl::StatusOr<service::PepperCoverage> coverage =
      service::CheckPepperCoverage(peppers, usage);
  if (!coverage.ok()) return Prefixed("database: ", coverage.status());
  return coverage;
}

absl::StatusOr<std::shared_ptr<core::PepperSet>> LoadPeppers(
    const std::string& pepper_file) {
  if (pepper_file.empty()) {
    return absl::InvalidArgumentError("--pepper_file is required");
  }
  absl::StatusOr<std::shared_ptr<core::PepperSet>> peppers =
      core::PepperSet::LoadReloadableFile(pepper_file);
  if (!peppers.ok()) {
    return absl::Status(
        peppers.status().code(),
        absl::StrCat("--pepper_file: ", peppers.status().message()));
  }
  return peppers;
}

}  // namespace lumo::commands
