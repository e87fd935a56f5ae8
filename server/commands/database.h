// The one place lumokeys-server's commands reach the storage backend: the
// DSN of --mysql (today only mysql://) with its password file and pool
// size, the durability check and the pepper-coverage check against what
// the stored secrets use.
//
// Thread-compatible: called by the commands from main().
#ifndef LUMOKEYS_SERVER_COMMANDS_DATABASE_H_
#define LUMOKEYS_SERVER_COMMANDS_DATABASE_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/config/server_config.h"
#include "server/core/pepper.h"
#include "server/service/pepper_coverage.h"
#include "server/storage/mysql/mysql_key_store.h"
#include "server/storage/mysql/mysql_options.h"

namespace lumo::commands {

// The connection options `database` names: the DSN parsed, the password
// file's password (process::ReadPasswordFile) in place of the DSN's, the
// pool size. INVALID_ARGUMENT "--mysql: ..." for a DSN that does not parse;
// the password file's errors name --mysql_password_file.
absl::StatusOr<storage::MysqlOptions> DatabaseOptions(
    const config::DatabaseConfig& database);

// Opens the backend `database` names: the key store, whose pool every
// other store of the process shares. Errors are prefixed "database: ".
absl::StatusOr<std::unique_ptr<storage::MysqlKeyStore>> OpenDatabase(
    const config::DatabaseConfig& database);

// OK when the database is durable (innodb_flush_log_at_trx_commit = 1).
// Otherwise FAILED_PRECONDITION saying acknowledged commits could be lost,
// unless `allow_nondurable`, which logs a warning instead.
absl::Status CheckDurability(storage::MysqlKeyStore& store,
                             bool allow_nondurable);

// Compares `peppers` with the pepper versions the stored secrets use
// (service::CheckPepperCoverage). Errors are prefixed "database: ".
absl::StatusOr<service::PepperCoverage> PepperCoverageOf(
    storage::MysqlKeyStore& store, const core::PepperSet& peppers);

// Loads --pepper_file for a later Reload(): INVALID_ARGUMENT "--pepper_file
// is required" when unset; the file's errors prefixed "--pepper_file: ".
absl::StatusOr<std::shared_ptr<core::PepperSet>> LoadPeppers(
    const std::string& pepper_file);

}  // namespace lumo::commands

#endif  // LUMOKEYS_SERVER_COMMANDS_DATABASE_H_
