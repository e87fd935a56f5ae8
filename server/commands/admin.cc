#include "server/commands/admin.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/commands/database.h"
#include "server/commands/pepper_file.h"
#include "server/observability/log.h"

namespace lumo::commands {

absl::StatusOr<int> Migrate(const config::ServerConfig& config) {
  std::vector<std::string> applied;
  absl::Status migrated =
      MigrateDatabase(config.database, config.migrations_dir, &applied);
  if (!migrated.ok()) {
    return absl::Status(migrated.code(), absl::StrCat("migration failed: ",
                                                      migrated.ToString()));
  }
  for (const std::string& name : applied) {
    log::Line(log::Level::kInfo, "applied migration").Str("migration", name);
  }
  log::Info(applied.empty() ? "schema is up to date" : "migrations applied");
  return 0;
}

absl::StatusOr<int> PurgeAudit(const config::ServerConfig& config) {
  absl::StatusOr<std::unique_ptr<Database>> database =
      OpenDatabase(config.database);
  if (!database.ok()) return database.status();
  absl::StatusOr<int64_t> purged =
      PurgeAuditOlderThanDays(**database, config.purge_older_than_days);
  if (!purged.ok()) {
    return absl::Status(
        purged.status().code(),
        absl::StrCat("audit purge failed: ", purged.status().ToString()));
  }
  log::Line(log::Level::kInfo, "audit rows purged").Int("deleted", *purged);
  return 0;
}

absl::StatusOr<int> PurgeUsageRollups(const config::ServerConfig& config) {
  absl::StatusOr<std::unique_ptr<Database>> database =
      OpenDatabase(config.database);
  if (!database.ok()) return database.status();
  absl::StatusOr<int64_t> purged =
      PurgeUsage(**database, config.usage_hourly_retention_days,
                 config.usage_daily_retention_days);
  if (!purged.ok()) {
    return absl::Status(
        purged.status().code(),
        absl::StrCat("usage purge failed: ", purged.status().ToString()));
  }
  log::Line(log::Level::kInfo, "usage buckets purged").Int("deleted", *purged);
  return 0;
}

absl::StatusOr<int> CheckPeppers(const config::ServerConfig& config) {
  absl::StatusOr<std::shared_ptr<core::PepperSet>> peppers =
      LoadPeppers(config.pepper_file);
  if (!peppers.ok()) return peppers.status();
  absl::StatusOr<std::unique_ptr<Database>> database =
      OpenDatabase(config.database);
  if (!database.ok()) return database.status();
  absl::StatusOr<service::PepperCoverage> coverage =
      PepperCoverageOf(**database, **peppers);
  if (!coverage.ok()) return coverage.status();
  std::fputs(coverage->Report().c_str(), stdout);
  return coverage->refused() ? 1 : 0;
}

absl::StatusOr<int> RunAdminCommand(const config::ServerConfig& config) {
  switch (config.command) {
    case config::ServerCommand::kMigrate:
      return Migrate(config);
    case config::ServerCommand::kPurgeAudit:
      return PurgeAudit(config);
    case config::ServerCommand::kPurgeUsage:
      return PurgeUsageRollups(config);
    case config::ServerCommand::kCheckPeppers:
      return CheckPeppers(config);
    case config::ServerCommand::kServe:
      break;
  }
  return absl::InvalidArgumentError("serve is not a one-shot command");
}

}  // namespace lumo::commands
