#include "tests/storage/test_database.h"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/storage/mysql/migrator.h"
#include "server/storage/mysql/sql_error.h"
#include "tests/storage/mysql_grammar/statement_capture.h"

#ifndef LUMO_DEFAULT_SOURCE_DIR
#define LUMO_DEFAULT_SOURCE_DIR "."
#endif

namespace lumo::testing {
namespace {

constexpr char kDsnVariable[] = "LUMO_TEST_MYSQL_DSN";

std::string RandomSuffix() {
  std::random_device rd;
  return absl::StrFormat("%08x", static_cast<uint32_t>(rd()));
}

absl::Status Wrap(const sql::SQLException& e, absl::string_view what) {
  // Test code: the server's text is what a failing test needs.
  return absl::Status(storage::StatusFromSqlException(e, what).code(),
                      absl::StrCat(what, ": ", e.what(), " (mysql error ",
                                   e.getErrorCode(), ")"));
}

}  // namespace

absl::StatusOr<storage::MysqlOptions> TestDatabase::AdminOptions() {
  const char* dsn = std::getenv(kDsnVariable);
  if (dsn == nullptr || *dsn == '\0') {
    return absl::FailedPreconditionError(absl::StrCat(
        kDsnVariable,
        " is not set. Integration tests need a MariaDB: run the test suite "
        "with tools/dev/test.sh, or start the private server "
        "(tools/dev/mariadb.sh start) and run `",
        kDsnVariable, "=$(tools/dev/mariadb.sh admin-dsn) ctest`."));
  }
  absl::StatusOr<storage::MysqlOptions> options = storage::ParseMysqlDsn(dsn);
  if (!options.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kDsnVariable, ": ", options.status().message()));
  }
  options->database.clear();
  return options;
}

std::string TestDatabase::ProjectMigrationsDir() {
  const char* source = std::getenv("LUMO_SOURCE_DIR");
  std::string root =
      (source != nullptr && *source != '\0') ? source : LUMO_DEFAULT_SOURCE_DIR;
  return absl::StrCat(root, "/sql/migrations");
}

absl::StatusOr<std::unique_ptr<TestDatabase>> TestDatabase::Create() {
  return CreateWithMigrations(ProjectMigrationsDir());
}

absl::StatusOr<std::unique_ptr<TestDatabase>>
TestDatabase::CreateWithMigrations(const std::string& migrations_dir) {
  storage::InitMysqlDriver();
  absl::StatusOr<storage::MysqlOptions> options = AdminOptions();
  if (!options.ok()) return options.status();
  options->database = absl::StrCat("lumo_test_", getpid(), "_", RandomSuffix());
  std::unique_ptr<TestDatabase> db(new TestDatabase(*options));
  if (migrations_dir.empty()) {
    absl::StatusOr<storage::MysqlOptions> admin = AdminOptions();
    absl::StatusOr<std::unique_ptr<storage::MysqlConnection>> conn =
        storage::OpenMysqlConnection(*admin, nullptr);
    if (!conn.ok()) return conn.status();
    try {
      testing::IgnoreStatements fixture;
      (*conn)->Execute(absl::StrCat("CREATE DATABASE `", db->name(),
                                    "` CHARACTER SET utf8mb4"));
    } catch (const sql::SQLException& e) {
      return Wrap(e, "create test database");
    }
    return db;
  }
  std::vector<std::string> applied;
  if (absl::Status s =
          storage::ApplyMigrations(db->options_, migrations_dir, &applied);
      !s.ok()) {
    return s;
  }
  return db;
}

TestDatabase::TestDatabase(storage::MysqlOptions options)
    : options_(std::move(options)) {
  options_.statement_timeout = absl::ZeroDuration();
}

TestDatabase::~TestDatabase() {
  admin_.reset();
  absl::StatusOr<storage::MysqlOptions> admin = AdminOptions();
  if (!admin.ok()) return;
  absl::StatusOr<std::unique_ptr<storage::MysqlConnection>> conn =
      storage::OpenMysqlConnection(*admin, nullptr);
  if (!conn.ok()) {
    std::cerr << "cannot drop test database " << name() << ": " << conn.status()
              << "\n";
    return;
  }
  try {
    testing::IgnoreStatements fixture;
    (*conn)->Execute(absl::StrCat("DROP DATABASE IF EXISTS `", name(), "`"));
  } catch (const sql::SQLException& e) {
    std::cerr << "cannot drop test database " << name() << ": " << e.what()
              << "\n";
  }
}

absl::StatusOr<storage::MysqlConnection*> TestDatabase::Admin() {
  if (admin_ == nullptr || !admin_->IsValid()) {
    absl::StatusOr<std::unique_ptr<storage::MysqlConnection>> conn =
        storage::OpenMysqlConnection(options_, nullptr);
    if (!conn.ok()) return conn.status();
    admin_ = *std::move(conn);
  }
  return admin_.get();
}

absl::Status TestDatabase::Execute(absl::string_view sql) {
  absl::StatusOr<storage::MysqlConnection*> conn = Admin();
  if (!conn.ok()) return conn.status();
  try {
    testing::IgnoreStatements test_statement;
    (*conn)->Execute(std::string(sql));
  } catch (const sql::SQLException& e) {
    return Wrap(e, "test statement");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<std::string>>> TestDatabase::Query(
    absl::string_view sql) {
  absl::StatusOr<storage::MysqlConnection*> conn = Admin();
  if (!conn.ok()) return conn.status();
  std::vector<std::vector<std::string>> rows;
  try {
    testing::IgnoreStatements test_statement;
    std::unique_ptr<sql::ResultSet> rs = (*conn)->QueryText(std::string(sql));
    const unsigned columns = rs->getMetaData()->getColumnCount();
    while (rs->next()) {
      std::vector<std::string> row;
      for (unsigned i = 1; i <= columns; ++i) {
        row.push_back(rs->isNull(i) ? "NULL" : rs->getString(i).asStdString());
      }
      rows.push_back(std::move(row));
    }
  } catch (const sql::SQLException& e) {
    return Wrap(e, "test query");
  }
  return rows;
}

absl::StatusOr<std::string> TestDatabase::QueryValue(absl::string_view sql) {
  absl::StatusOr<std::vector<std::vector<std::string>>> rows = Query(sql);
  if (!rows.ok()) return rows.status();
  if (rows->empty() || rows->front().empty()) {
    return absl::NotFoundError("query returned no row");
  }
  return rows->front().front();
}

absl::StatusOr<int> TestDatabase::KillOtherConnections() {
  absl::StatusOr<std::vector<std::vector<std::string>>> ids =
      Query(absl::StrCat("SELECT ID FROM information_schema.PROCESSLIST "
                         "WHERE DB = '",
                         name(), "' AND ID <> CONNECTION_ID()"));
  if (!ids.ok()) return ids.status();
  int killed = 0;
  for (const std::vector<std::string>& row : *ids) {
    absl::Status s = Execute(absl::StrCat("KILL CONNECTION ", row[0]));
    // The session may have ended on its own in between.
    if (s.ok()) ++killed;
  }
  return killed;
}

}  // namespace lumo::testing
