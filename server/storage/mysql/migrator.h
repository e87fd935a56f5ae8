// Schema migrations: numbered SQL files applied in order and recorded in
// `schema_migrations`. Thread-safe, and safe to run from several processes
// at once (they serialise on a server-wide named lock).
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MIGRATOR_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MIGRATOR_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/storage/mysql/mysql_options.h"

namespace lumo::storage {

// Brings `options.database` up to date with the files in `migrations_dir`:
//   - creates the database if missing (utf8mb4, utf8mb4_unicode_ci) and the
//     `schema_migrations` table;
//   - takes GET_LOCK('lumokeys_migrate', 30) so concurrent migrators do not
//     both apply a file;
//   - applies every file named `NNNN_name.sql` (NNNN: the version, digits)
//     not yet recorded, in numeric order, one statement at a time (see
//     SplitSqlStatements), and records version, name and the SHA-256 of its
//     statements after each file (comment lines are not part of it: they
//     may be corrected later; rows that earlier servers checksummed over the
//     whole text are accepted and rewritten).
// `applied` (optional) receives the file names applied by this call.
//
// Errors: INVALID_ARGUMENT for unusable options, an empty database name, a
// `.sql` file whose name does not match the pattern, two files with one
// version, or a file with an unterminated statement; NOT_FOUND when the
// directory does not exist; FAILED_PRECONDITION naming the file when an
// applied file's checksum or name changed (edit history by adding a new
// migration, never by changing an applied one); DEADLINE_EXCEEDED when
// another migrator held the lock for 30 s; otherwise as the statement's
// error (sql_error.h). MySQL commits DDL implicitly, so a file that fails
// half-way stays half-applied and unrecorded: migrations are written to be
// re-runnable (CREATE TABLE IF NOT EXISTS ...).
absl::Status ApplyMigrations(const MysqlOptions& options,
                             const std::string& migrations_dir,
                             std::vector<std::string>* applied);

// Splits a migration file into statements: a statement ends with a line
// whose last non-blank character is `;` (the `;` is dropped); lines whose
// first non-blank characters are `--` are ignored. INVALID_ARGUMENT when
// text is left after the last statement.
absl::StatusOr<std::vector<std::string>> SplitSqlStatements(
    absl::string_view text);

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MIGRATOR_H_
