// The shared fixture of MySQL integration tests: a fresh migrated database
// (TestDatabase) and the MySQL backend over it, every store on one pool.
// The backend is closed before the database is dropped.
//
// Not thread-safe to create or destroy; the stores it holds are
// thread-safe.
#ifndef LUMOKEYS_TESTS_STORAGE_MYSQL_TEST_BACKEND_H_
#define LUMOKEYS_TESTS_STORAGE_MYSQL_TEST_BACKEND_H_

#include <memory>

#include "absl/status/statusor.h"
#include "server/storage/mysql/mysql_backend.h"
#include "tests/storage/test_database.h"

namespace lumo::testing {

class MysqlTestBackend {
 public:
  // A new database `lumo_test_<pid>_<random>` with the project's
  // migrations, and the backend over it. FAILED_PRECONDITION (saying how to
  // run the tests) without LUMO_TEST_MYSQL_DSN.
  static absl::StatusOr<std::unique_ptr<MysqlTestBackend>> Create();

  ~MysqlTestBackend();

  TestDatabase& db() { return *db_; }
  const storage::MysqlOptions& options() const { return db_->options(); }
  // Null after TakeBackend().
  storage::MysqlBackend* backend() { return backend_.get(); }
  // Hands the backend over (to an App, which then owns it); backend()
  // returns null from then on, `raw` (optional) receives the pointer.
  std::unique_ptr<storage::MysqlBackend> TakeBackend(
      storage::MysqlBackend** raw = nullptr);

 private:
  MysqlTestBackend() = default;

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<storage::MysqlBackend> backend_;
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_MYSQL_TEST_BACKEND_H_
