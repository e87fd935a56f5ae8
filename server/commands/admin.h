// lumokeys-server's one-shot commands, run by an operator or a deploy job
// with the migration/operator database account (docs/operations.md
// "Commands"): migrate, purge-audit and check-peppers. Each runs to
// completion and returns the process exit status.
//
// Thread-compatible: called from main().
#ifndef LUMOKEYS_SERVER_COMMANDS_ADMIN_H_
#define LUMOKEYS_SERVER_COMMANDS_ADMIN_H_

#include "absl/status/statusor.h"
#include "server/config/server_config.h"

namespace lumo::commands {

// Applies the pending migrations of config.migrations_dir, logging each
// ("applied migration") and then "migrations applied" or "schema is up to
// date". 0, or the migrator's error prefixed "migration failed: ".
absl::StatusOr<int> Migrate(const config::ServerConfig& config);

// Deletes audit rows older than config.purge_older_than_days, keeping every
// hash chain verifiable; logs "audit rows purged" with the count. 0, or the
// error prefixed "audit purge failed: " ("database: " when the database
// cannot be opened).
absl::StatusOr<int> PurgeAudit(const config::ServerConfig& config);
// purge-usage: deletes usage rollup buckets older than their retention.
absl::StatusOr<int> PurgeUsageRollups(const config::ServerConfig& config);

// Prints the pepper-coverage table and verdict to stdout; 1 when live
// secrets use a version the pepper file lacks (REFUSED), else 0.
absl::StatusOr<int> CheckPeppers(const config::ServerConfig& config);

// The command config.command names, which must not be serve.
absl::StatusOr<int> RunAdminCommand(const config::ServerConfig& config);

}  // namespace lumo::commands

#endif  // LUMOKEYS_SERVER_COMMANDS_ADMIN_H_
