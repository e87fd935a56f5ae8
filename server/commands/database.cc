#include "server/commands/database.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/observability/log.h"
#include "server/shared/process/secret_file.h"
#include "server/storage/backend_factory.h"

namespace lumo::commands {
namespace {

absl::Status Prefixed(absl::string_view prefix, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.ToString()));
}

// The backend options `database` names: the DSN (checked), the password
// file's password in place of the DSN's, the pool size.
absl::StatusOr<storage::BackendOptions> ConnectionOptions(
    const config::DatabaseConfig& database) {
  storage::BackendOptions options;
  options.dsn = database.dsn;
  if (absl::Status usable = storage::CheckBackendOptions(options);
      !usable.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--mysql: ", usable.message()));
  }
  if (!database.password_file.empty()) {
    absl::StatusOr<std::string> password = process::ReadPasswordFile(
        "--mysql_password_file", database.password_file);
    if (!password.ok()) return password.status();
    options.password = *std::move(password);
  }
  options.pool_size = database.pool_size;
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Database>> OpenDatabase(
    const config::DatabaseConfig& database) {
  absl::StatusOr<storage::BackendOptions> options = ConnectionOptions(database);
  if (!options.ok()) return options.status();
  absl::StatusOr<std::unique_ptr<Database>> opened =
      storage::OpenBackend(*options);
  if (!opened.ok()) return Prefixed("database: ", opened.status());
  return opened;
}

absl::Status MigrateDatabase(const config::DatabaseConfig& database,
                             const std::string& migrations_dir,
                             std::vector<std::string>* applied) {
  absl::StatusOr<storage::BackendOptions> options = ConnectionOptions(database);
  if (!options.ok()) return options.status();
  return storage::MigrateSchema(*options, migrations_dir, applied);
}

absl::Status CheckDurability(Database& database, bool allow_nondurable) {
  absl::StatusOr<storage::Durability> durability = database.CheckDurability();
  if (!durability.ok()) return Prefixed("database: ", durability.status());
  if (durability->durable) return absl::OkStatus();
  if (!allow_nondurable) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database has ", durability->setting,
        ": acknowledged commits could be lost; refusing to start "
        "(--allow_nondurable_db overrides, for development only)"));
  }
  log::Warning(
      absl::StrCat("database is not durable (", durability->setting, ")"));
  return absl::OkStatus();
}

absl::Status ReconcileDerivedState(Database& database) {
  absl::StatusOr<int64_t> corrected = database.ReconcileDerivedState();
  if (!corrected.ok()) return Prefixed("database: ", corrected.status());
  if (*corrected > 0) {
    log::Info(absl::StrCat(
        "corrected ", *corrected,
        " presence flags or copies left stale by an earlier release"
        " (docs/storage.md \"Presence flags\", \"What the verification read"
        " names\")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<service::PepperCoverage> PepperCoverageOf(
    Database& database, const core::PepperSet& peppers) {
  absl::StatusOr<service::PepperCoverage> coverage =
      service::CheckPepperCoverage(peppers, database.pepper_usage());
  if (!coverage.ok()) return Prefixed("database: ", coverage.status());
  return coverage;
}

absl::StatusOr<int64_t> PurgeAuditOlderThanDays(Database& database, int days) {
  return database.PurgeAuditOlderThanDays(days);
}

absl::StatusOr<int64_t> PurgeUsage(Database& database, int hourly_days,
                                   int daily_days) {
  return database.PurgeUsage(hourly_days, daily_days);
}

}  // namespace lumo::commands
