// The one place lumokeys-server's commands reach the storage backend: the
// backend the --mysql DSN names (chosen by its scheme in
// storage/backend_factory.h; today only mysql://), with the password of
// --mysql_password_file and the pool size of --db_pool_size, its schema
// migrations, the durability check, the pepper versions the stored secrets
// use, and the audit retention purge. serve.cc and admin.cc name no
// backend: they use what is declared here.
//
// Thread-compatible: called by the commands from main().
#ifndef LUMOKEYS_SERVER_COMMANDS_DATABASE_H_
#define LUMOKEYS_SERVER_COMMANDS_DATABASE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/config/server_config.h"
#include "server/core/pepper.h"
#include "server/service/pepper_coverage.h"
#include "server/storage/backend.h"

namespace lumo::commands {

// The opened backend, as app::App::Create takes it: every store of the
// process over one database.
using Database = storage::Backend;

// Opens the backend `database` names and checks that it answers.
// INVALID_ARGUMENT "--mysql: ..." for a DSN that does not parse; the
// password file's errors name --mysql_password_file
// (process::ReadPasswordFile); other errors prefixed "database: ".
absl::StatusOr<std::unique_ptr<Database>> OpenDatabase(
    const config::DatabaseConfig& database);

// Applies the pending migrations of `migrations_dir` to the database
// `database` names (creating it if needed); `applied` receives the files
// applied. Errors as OpenDatabase for the settings, else the migrator's.
absl::Status MigrateDatabase(const config::DatabaseConfig& database,
                             const std::string& migrations_dir,
                             std::vector<std::string>* applied);

// OK when the database is durable (Backend::CheckDurability; MySQL:
// innodb_flush_log_at_trx_commit = 1). Otherwise FAILED_PRECONDITION saying
// acknowledged commits could be lost, unless `allow_nondurable`, which logs a
// warning instead.
absl::Status CheckDurability(Database& database, bool allow_nondurable);

// Backend::ReconcileDerivedState, logging the number of rows corrected when
// there were any. Errors are prefixed "database: ".
absl::Status ReconcileDerivedState(Database& database);

// Compares `peppers` with the pepper versions the stored secrets use
// (service::CheckPepperCoverage). Errors are prefixed "database: ".
absl::StatusOr<service::PepperCoverage> PepperCoverageOf(
    Database& database, const core::PepperSet& peppers);

// Deletes audit rows older than `days` (at least 1), keeping every hash
// chain verifiable; the number deleted. Errors are the store's.
absl::StatusOr<int64_t> PurgeAuditOlderThanDays(Database& database, int days);

// Deletes usage rollup buckets older than their retention
// (Backend::PurgeUsage); the number deleted. Errors are the store's.
absl::StatusOr<int64_t> PurgeUsage(Database& database, int hourly_days,
                                   int daily_days);

}  // namespace lumo::commands

#endif  // LUMOKEYS_SERVER_COMMANDS_DATABASE_H_
