// A fresh MariaDB/MySQL database per test binary (or per test), for
// integration tests. The server comes from LUMO_TEST_MYSQL_DSN, an admin
// DSN without a database part (tools/dev/test.sh exports it; by hand:
// `export LUMO_TEST_MYSQL_DSN=$(tools/dev/mariadb.sh admin-dsn)`).
//
// Not thread-safe: create and destroy from one thread; options() may be
// read from any thread.
#ifndef LUMOKEYS_TESTS_STORAGE_TEST_DATABASE_H_
#define LUMOKEYS_TESTS_STORAGE_TEST_DATABASE_H_

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "server/storage/mysql/connection_pool.h"
#include "server/storage/mysql/mysql_options.h"

namespace lumo::testing {

// LUMO_TEST_TIME_SCALE (a whole number, at least 1; 1 when unset or
// malformed): tests stretch their patience by it on slow machines.
inline int TestTimeScale() {
  const char* text = std::getenv("LUMO_TEST_TIME_SCALE");
  int scale = 1;
  if (text != nullptr && absl::SimpleAtoi(text, &scale) && scale >= 1) {
    return scale;
  }
  return 1;
}

class TestDatabase {
 public:
  // Creates the database `lumo_test_<pid>_<random>` and applies the
  // project's migrations (sql/migrations under $LUMO_SOURCE_DIR, or the
  // source tree this was built from). FAILED_PRECONDITION, with a message
  // saying how to run the tests, when LUMO_TEST_MYSQL_DSN is unset.
  static absl::StatusOr<std::unique_ptr<TestDatabase>> Create();
  // The same with the migrations in `migrations_dir`; an empty dir applies
  // none (the database is created empty).
  static absl::StatusOr<std::unique_ptr<TestDatabase>> CreateWithMigrations(
      const std::string& migrations_dir);

  // The admin options from LUMO_TEST_MYSQL_DSN (no database).
  static absl::StatusOr<storage::MysqlOptions> AdminOptions();
  // The project's migrations directory.
  static std::string ProjectMigrationsDir();

  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;
  // Drops the database (errors are printed, not fatal).
  ~TestDatabase();

  // Admin options with this database selected.
  const storage::MysqlOptions& options() const { return options_; }
  const std::string& name() const { return options_.database; }

  // Runs one statement on a private admin session in this database.
  absl::Status Execute(absl::string_view sql);
  // Runs a query; every value as text, NULL as the string "NULL".
  absl::StatusOr<std::vector<std::vector<std::string>>> Query(
      absl::string_view sql);
  // The first column of the first row of Query(sql); NOT_FOUND if no row.
  absl::StatusOr<std::string> QueryValue(absl::string_view sql);

  // Kills every other session connected to this database; returns how many.
  absl::StatusOr<int> KillOtherConnections();

 private:
  explicit TestDatabase(storage::MysqlOptions options);
  absl::StatusOr<storage::MysqlConnection*> Admin();

  storage::MysqlOptions options_;
  std::unique_ptr<storage::MysqlConnection> admin_;
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_TEST_DATABASE_H_
