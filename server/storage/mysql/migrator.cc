#include "server/storage/mysql/migrator.h"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/core/crypto.h"
#include "server/storage/mysql/connection_pool.h"
#include "server/storage/mysql/select_list.h"
#include "server/storage/mysql/sql_error.h"

namespace lumo::storage {
namespace {

constexpr char kLockName[] = "lumokeys_migrate";
constexpr int kLockWaitSeconds = 30;

struct MigrationFile {
  int version = 0;
  std::string file_name;  // e.g. 0001_init.sql; recorded as the name
  std::string path;
};

struct AppliedMigration {
  std::string name;
  std::string checksum;
};

// `NNNN_name.sql`: at least four digits, '_', then [A-Za-z0-9_]+.
bool ParseMigrationName(absl::string_view file_name, int* version) {
  absl::string_view stem = file_name;
  if (!absl::ConsumeSuffix(&stem, ".sql")) return false;
  size_t underscore = stem.find('_');
  if (underscore == absl::string_view::npos || underscore < 4 ||
      underscore + 1 >= stem.size()) {
    return false;
  }
  absl::string_view digits = stem.substr(0, underscore);
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  for (char c : stem.substr(underscore + 1)) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return absl::SimpleAtoi(digits, version) && *version > 0;
}

absl::StatusOr<std::vector<MigrationFile>> ListMigrations(
    const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("migrations directory not found: ", dir));
  }
  std::map<int, MigrationFile> by_version;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    std::string file_name = entry.path().filename().string();
    if (!absl::EndsWith(file_name, ".sql")) continue;
    int version = 0;
    if (!ParseMigrationName(file_name, &version)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "migration file name ", file_name,
          " does not match NNNN_name.sql (digits, '_', letters/digits/_)"));
    }
    MigrationFile file{version, file_name, entry.path().string()};
    auto [it, inserted] = by_version.emplace(version, file);
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat("migrations ", it->second.file_name, " and ", file_name,
                       " have the same version"));
    }
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot list migrations directory ", dir));
  }
  std::vector<MigrationFile> files;
  for (auto& [version, file] : by_version) files.push_back(std::move(file));
  return files;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A failed migration statement: the server's text helps the person who
// wrote the migration, and migrations hold no secrets.
absl::Status MigrationError(const sql::SQLException& e,
                            absl::string_view what) {
  absl::Status mapped = StatusFromSqlException(e, what);
  return absl::Status(mapped.code(),
                      absl::StrCat(what, ": ", e.what(), " (mysql error ",
                                   e.getErrorCode(), ")"));
}

// What an applied file is held to: SHA-256 (hex) of its statements as
// ParseMigration returns them (a guarded one prefixed by its guards), joined
// by "\n;\n". Comment lines are not
// part of it, so a migration's documentation can be corrected after it was
// applied; any change to a statement is a checksum mismatch.
std::string StatementsChecksum(const std::vector<std::string>& statements) {
  return core::HexEncode(
      core::AsStringView(core::Sha256(absl::StrJoin(statements, "\n;\n"))));
}

// Checksums recorded by servers that hashed a file's whole text, for the
// files whose comments were corrected since: such a row is accepted and
// rewritten to the statements checksum. (A row that matches the whole text
// of the current file is accepted the same way.)
const std::map<int, absl::string_view>& LegacyWholeTextChecksums() {
  static const auto* known = new std::map<int, absl::string_view>{
      {2, "3845ca1aef4e9841d4954b2a162bba2f4723de28625e3e7391a32afbacc6952a"},
      {4, "e11afdc067b42dac15b294fc135f2c7569c303fd5d13576d5a49fae5b67ebbb0"},
      {5, "cf51cacc40e839d75a80fa8defbc9baee8aca2879e9b097efbcd6742d9f572f1"},
  };
  return *known;
}

// Calls `on_statement` for every statement (see SplitSqlStatements) and
// `on_directive` for every `-- @` line (the text after `@`, and whether a
// statement has begun); with no `on_directive`, directives are comments.
absl::Status SplitLines(
    absl::string_view text,
    const std::function<absl::Status(absl::string_view, bool)>& on_directive,
    const std::function<void(std::string)>& on_statement) {
  std::string current;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::string_view trimmed = absl::StripAsciiWhitespace(line);
    if (absl::StartsWith(trimmed, "--")) {
      absl::string_view directive = trimmed.substr(2);
      directive = absl::StripLeadingAsciiWhitespace(directive);
      if (on_directive != nullptr && absl::ConsumePrefix(&directive, "@")) {
        if (absl::Status st = on_directive(directive, !current.empty());
            !st.ok()) {
          return st;
        }
      }
      continue;
    }
    if (trimmed.empty() && current.empty()) continue;
    if (absl::EndsWith(trimmed, ";")) {
      absl::StrAppend(&current, absl::StripTrailingAsciiWhitespace(line));
      current.pop_back();  // the ';'
      std::string statement(absl::StripAsciiWhitespace(current));
      if (!statement.empty()) on_statement(std::move(statement));
      current.clear();
      continue;
    }
    absl::StrAppend(&current, absl::StripTrailingAsciiWhitespace(line), "\n");
  }
  if (!absl::StripAsciiWhitespace(current).empty()) {
    return absl::InvalidArgumentError(
        "text after the last statement (statements end with ';' at the end "
        "of a line)");
  }
  return absl::OkStatus();
}

bool IsHexChecksum(absl::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return absl::ascii_isdigit(static_cast<unsigned char>(c)) ||
                  (c >= 'a' && c <= 'f');
         });
}

bool IsSchemaName(absl::string_view name) {
  return !name.empty() && name.size() <= 64 &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                  c == '_';
         });
}

// `if|unless column|index TABLE.NAME`.
absl::StatusOr<MigrationGuard> ParseGuard(
    const std::vector<absl::string_view>& words) {
  MigrationGuard guard;
  if (words.size() != 3) {
    return absl::InvalidArgumentError(
        "unknown directive (expected if|unless column|index TABLE.NAME, or "
        "supersedes HEX64)");
  }
  if (words[0] == "if") {
    guard.kind = MigrationGuard::Kind::kIf;
  } else if (words[0] == "unless") {
    guard.kind = MigrationGuard::Kind::kUnless;
  } else {
    return absl::InvalidArgumentError("unknown directive");
  }
  if (words[1] == "column") {
    guard.object = MigrationGuard::Object::kColumn;
  } else if (words[1] == "index") {
    guard.object = MigrationGuard::Object::kIndex;
  } else {
    return absl::InvalidArgumentError("a guard names a column or an index");
  }
  std::vector<std::string> parts = absl::StrSplit(words[2], '.');
  if (parts.size() != 2 || !IsSchemaName(parts[0]) || !IsSchemaName(parts[1])) {
    return absl::InvalidArgumentError(
        "a guard names TABLE.NAME ([A-Za-z0-9_] only)");
  }
  guard.table = parts[0];
  guard.name = parts[1];
  return guard;
}

std::string GuardText(const MigrationGuard& guard) {
  return absl::StrCat(
      guard.kind == MigrationGuard::Kind::kIf ? "if" : "unless", " ",
      guard.object == MigrationGuard::Object::kColumn ? "column" : "index", " ",
      guard.table, ".", guard.name);
}

// Whether `statement` runs: every guard's object is looked up in the
// current database (information_schema). Throws sql::SQLException.
absl::StatusOr<bool> GuardsHold(MysqlConnection& conn,
                                const MigrationStatement& statement) {
  if (statement.guards.empty()) return true;
  int existing = 0;
  for (const MigrationGuard& guard : statement.guards) {
    sql::PreparedStatement& lookup =
        conn.Prepare(guard.object == MigrationGuard::Object::kColumn
                         ? "SELECT COUNT(*) FROM information_schema.COLUMNS"
                           " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
                           " AND COLUMN_NAME = ?"
                         : "SELECT COUNT(*) FROM information_schema.STATISTICS"
                           " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
                           " AND INDEX_NAME = ?");
    lookup.setString(1, guard.table);
    lookup.setString(2, guard.name);
    std::unique_ptr<sql::ResultSet> rs = conn.Query(lookup);
    if (rs->next() && rs->getInt64(1) > 0) ++existing;
  }
  const int total = static_cast<int>(statement.guards.size());
  if (existing != 0 && existing != total) {
    std::vector<std::string> names;
    for (const MigrationGuard& guard : statement.guards) {
      names.push_back(absl::StrCat(guard.table, ".", guard.name));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "some but not all of ", absl::StrJoin(names, ", "),
        " exist: the statement was applied in part; repair the schema by "
        "hand"));
  }
  const bool all_exist = existing == total;
  return statement.guards.front().kind == MigrationGuard::Kind::kIf
             ? all_exist
             : !all_exist;
}

absl::Status ApplyLocked(MysqlConnection& conn,
                         const std::vector<MigrationFile>& files,
                         std::vector<std::string>* applied) {
  std::string what = "create schema_migrations";
  try {
    conn.Execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INT NOT NULL,"
        " name VARCHAR(255) NOT NULL,"
        " checksum CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " applied_at DATETIME(6) NOT NULL,"
        " PRIMARY KEY (version)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci");

    what = "read schema_migrations";
    std::map<int, AppliedMigration> done;
    {
      struct AppliedSelect {
        SelectList list;
        int version = list.Add("version");
        int name = list.Add("name");
        int checksum = list.Add("checksum");
      };
      const AppliedSelect& c = SelectOf<AppliedSelect>();
      std::unique_ptr<sql::ResultSet> rs = conn.QueryText(
          absl::StrCat("SELECT ", c.list.sql(), " FROM schema_migrations"));
      while (rs->next()) {
        done[rs->getInt(c.version)] =
            AppliedMigration{std::string(rs->getString(c.name)),
                             std::string(rs->getString(c.checksum))};
      }
    }

    // Check every applied file before applying anything new.
    struct Pending {
      const MigrationFile* file;
      std::vector<MigrationStatement> statements;
      std::string checksum;
    };
    std::vector<Pending> pending;
    std::vector<std::pair<int, std::string>> rechecksummed;
    for (const MigrationFile& file : files) {
      absl::StatusOr<std::string> text = ReadFile(file.path);
      if (!text.ok()) return text.status();
      absl::StatusOr<ParsedMigration> parsed = ParseMigration(*text);
      if (!parsed.ok()) {
        return absl::Status(
            parsed.status().code(),
            absl::StrCat(file.file_name, ": ", parsed.status().message()));
      }
      const std::string& checksum = parsed->checksum;
      auto it = done.find(file.version);
      if (it == done.end()) {
        pending.push_back(
            Pending{&file, std::move(parsed->statements), checksum});
        continue;
      }
      if (it->second.name != file.file_name) {
        return absl::FailedPreconditionError(absl::StrCat(
            "migration ", file.version, " was applied as ", it->second.name,
            " but the file is now ", file.file_name));
      }
      if (it->second.checksum == checksum) continue;
      const auto legacy = LegacyWholeTextChecksums().find(file.version);
      const std::vector<std::string>& superseded = parsed->superseded_checksums;
      if (it->second.checksum ==
              core::HexEncode(core::AsStringView(core::Sha256(*text))) ||
          (legacy != LegacyWholeTextChecksums().end() &&
           it->second.checksum == legacy->second) ||
          std::find(superseded.begin(), superseded.end(),
                    it->second.checksum) != superseded.end()) {
        rechecksummed.emplace_back(file.version, checksum);
        continue;
      }
      return absl::FailedPreconditionError(absl::StrCat(
          "migration ", file.file_name,
          " changed after it was applied (checksum mismatch); add a new "
          "migration instead of editing an applied one"));
    }

    for (const auto& [version, checksum] : rechecksummed) {
      what = absl::StrCat("record the checksum of migration ", version);
      sql::PreparedStatement& update = conn.Prepare(
          "UPDATE schema_migrations SET checksum = ? WHERE version = ?");
      update.setString(1, checksum);
      update.setInt(2, version);
      conn.Update(update);
    }

    for (const auto& [file, statements, checksum] : pending) {
      for (size_t i = 0; i < statements.size(); ++i) {
        what =
            absl::StrCat("migration ", file->file_name, " statement ", i + 1);
        absl::StatusOr<bool> run = GuardsHold(conn, statements[i]);
        if (!run.ok()) {
          return absl::Status(run.status().code(),
                              absl::StrCat(what, ": ", run.status().message()));
        }
        if (*run) conn.Execute(statements[i].sql);
      }
      what = absl::StrCat("record migration ", file->file_name);
      sql::PreparedStatement& record = conn.Prepare(
          "INSERT INTO schema_migrations (version, name, checksum, "
          "applied_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))");
      record.setInt(1, file->version);
      record.setString(2, file->file_name);
      record.setString(3, checksum);
      conn.Update(record);
      if (applied != nullptr) applied->push_back(file->file_name);
    }
  } catch (const sql::SQLException& e) {
    return MigrationError(e, what);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitSqlStatements(
    absl::string_view text) {
  std::vector<std::string> statements;
  absl::Status status =
      SplitLines(text, /*on_directive=*/nullptr, [&](std::string statement) {
        statements.push_back(std::move(statement));
      });
  if (!status.ok()) return status;
  return statements;
}

absl::StatusOr<ParsedMigration> ParseMigration(absl::string_view text) {
  ParsedMigration out;
  std::vector<MigrationGuard> guards;  // for the next statement
  auto on_directive = [&](absl::string_view directive,
                          bool inside_statement) -> absl::Status {
    std::vector<absl::string_view> words =
        absl::StrSplit(directive, ' ', absl::SkipWhitespace());
    if (words.size() == 2 && words[0] == "supersedes") {
      if (!IsHexChecksum(words[1])) {
        return absl::InvalidArgumentError(absl::StrCat(
            "-- @supersedes needs a SHA-256 in lower-case hex: ", directive));
      }
      out.superseded_checksums.emplace_back(words[1]);
      return absl::OkStatus();
    }
    if (inside_statement) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a guard must come before its statement's first line: ", directive));
    }
    absl::StatusOr<MigrationGuard> guard = ParseGuard(words);
    if (!guard.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(guard.status().message(), ": -- @", directive));
    }
    if (!guards.empty() && guards.front().kind != guard->kind) {
      return absl::InvalidArgumentError(absl::StrCat(
          "@if and @unless guards on one statement: -- @", directive));
    }
    guards.push_back(*std::move(guard));
    return absl::OkStatus();
  };
  absl::Status status =
      SplitLines(text, on_directive, [&](std::string statement) {
        out.statements.push_back(
            MigrationStatement{std::move(guards), std::move(statement)});
        guards.clear();
      });
  if (!status.ok()) return status;
  if (!guards.empty()) {
    return absl::InvalidArgumentError("a guard after the last statement");
  }
  std::vector<std::string> checksummed;
  for (const MigrationStatement& statement : out.statements) {
    std::string text;
    for (const MigrationGuard& guard : statement.guards) {
      absl::StrAppend(&text, "@", GuardText(guard), "\n");
    }
    absl::StrAppend(&text, statement.sql);
    checksummed.push_back(std::move(text));
  }
  out.checksum = StatementsChecksum(checksummed);
  return out;
}

absl::Status ApplyMigrations(const MysqlOptions& options,
                             const std::string& migrations_dir,
                             std::vector<std::string>* applied) {
  if (absl::Status s = ValidateMysqlOptions(options); !s.ok()) return s;
  if (options.database.empty()) {
    return absl::InvalidArgumentError("migrations need a database name");
  }
  absl::StatusOr<std::vector<MigrationFile>> files =
      ListMigrations(migrations_dir);
  if (!files.ok()) return files.status();

  // DDL may legitimately run for a long time: no statement ceiling, long
  // socket timeouts.
  MysqlOptions admin = options;
  admin.database.clear();
  admin.statement_timeout = absl::ZeroDuration();
  admin.read_timeout = std::max(admin.read_timeout, absl::Hours(1));
  admin.write_timeout = std::max(admin.write_timeout, absl::Hours(1));
  InitMysqlDriver();
  absl::StatusOr<std::unique_ptr<MysqlConnection>> conn =
      OpenMysqlConnection(admin, nullptr);
  if (!conn.ok()) return conn.status();

  std::string what = "create database";
  try {
    // The name passed IsValidDatabaseName: only [A-Za-z0-9_].
    (*conn)->Execute(
        absl::StrCat("CREATE DATABASE IF NOT EXISTS `", options.database,
                     "` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"));
    (*conn)->raw().setSchema(options.database);
    what = "take the migration lock";
    std::unique_ptr<sql::ResultSet> rs = (*conn)->QueryText(absl::StrCat(
        "SELECT GET_LOCK('", kLockName, "', ", kLockWaitSeconds, ")"));
    if (!rs->next() || rs->isNull(1)) {
      return absl::InternalError("GET_LOCK returned no result");
    }
    if (rs->getInt(1) != 1) {
      return absl::DeadlineExceededError(
          absl::StrCat("another migrator held the lock '", kLockName, "' for ",
                       kLockWaitSeconds, " s"));
    }
  } catch (const sql::SQLException& e) {
    return MigrationError(e, what);
  }

  absl::Status status = ApplyLocked(**conn, *files, applied);
  try {
    (*conn)->Execute(absl::StrCat("DO RELEASE_LOCK('", kLockName, "')"));
  } catch (const sql::SQLException&) {
    // Closing the session below releases the lock anyway.
  }
  return status;
}

}  // namespace lumo::storage
