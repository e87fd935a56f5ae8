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
//     ParseMigration; guarded statements run only when their guard holds),
//     and records version, name and the SHA-256 of its statements after
//     each file (comment lines are not part of it: they may be corrected
//     later; rows that earlier servers checksummed over the whole text, and
//     checksums the file lists as superseded, are accepted and rewritten).
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
// re-runnable (CREATE TABLE IF NOT EXISTS ..., guards).
absl::Status ApplyMigrations(const MysqlOptions& options,
                             const std::string& migrations_dir,
                             std::vector<std::string>* applied);

// A condition on the schema, evaluated in the migrated database just before
// its statement runs: the statement runs only if every named object exists
// (kIf) or none does (kUnless); it is skipped in the opposite case, and a
// mix (some exist, some do not: a statement applied half-way by hand) is
// FAILED_PRECONDITION. This replaces MariaDB-only DDL (`ADD COLUMN IF NOT
// EXISTS`, `CREATE INDEX IF NOT EXISTS`, `DROP INDEX IF EXISTS`), which
// MySQL 8.0 cannot parse.
struct MigrationGuard {
  enum class Kind { kIf, kUnless };
  enum class Object { kColumn, kIndex };
  Kind kind = Kind::kUnless;
  Object object = Object::kColumn;
  std::string table;
  std::string name;  // the column or index
};

struct MigrationStatement {
  std::vector<MigrationGuard> guards;  // empty: always runs
  std::string sql;
};

// A migration file, parsed. Directive lines (first non-blank characters
// `-- @`) are not comments:
//   -- @unless column TABLE.COLUMN   -- guards the next statement (see
//   -- @if index TABLE.INDEX         -- MigrationGuard; several may stack,
//                                    -- all of one kind)
//   -- @supersedes HEX64             -- a statements checksum an earlier
//                                    -- text of this file was recorded with
// A database that recorded a superseded checksum for the file's version
// applied an earlier text with the same effect; the migrator accepts it and
// records the current checksum. A file lists one only when its statements
// were rewritten without changing their effect (for instance to syntax
// MySQL 8.0 parses).
struct ParsedMigration {
  std::vector<MigrationStatement> statements;
  std::vector<std::string> superseded_checksums;
  // SHA-256 (hex) of the statements with their guards: what an applied
  // file is held to. Comments and @supersedes lines are not part of it; a
  // file without guards has the checksum it had before guards existed.
  std::string checksum;
};

// INVALID_ARGUMENT for an unknown directive, a malformed guard (names are
// [A-Za-z0-9_]+), guards of both kinds on one statement, a guard not
// followed by a statement, or what SplitSqlStatements rejects.
absl::StatusOr<ParsedMigration> ParseMigration(absl::string_view text);

// Splits a migration file into statements: a statement ends with a line
// whose last non-blank character is `;` (the `;` is dropped); lines whose
// first non-blank characters are `--` are ignored (directives included: use
// ParseMigration to read them). INVALID_ARGUMENT when
// text is left after the last statement.
absl::StatusOr<std::vector<std::string>> SplitSqlStatements(
    absl::string_view text);

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MIGRATOR_H_
