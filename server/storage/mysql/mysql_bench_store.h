// BENCHMARK ONLY: the raw database baselines that tools/bench compares the
// key service with (docs/benchmarks.md). Each runs one fixed statement
// through the same ConnectionPool as the stores, so the pool, the
// connector and the round trip are what they cost.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_BENCH_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_BENCH_STORE_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/storage/mysql/connection_pool.h"

namespace lumo::storage {

// Thread-safe (every call leases its own connection).
class MysqlBenchStore {
 public:
  explicit MysqlBenchStore(std::shared_ptr<ConnectionPool> pool)
      : pool_(std::move(pool)) {}

  // Creates the scratch table `bench_rows` if it is missing (it is not part
  // of the schema: the account needs CREATE, which the benchmark's admin
  // account has). Errors as in sql_error.h.
  absl::Status EnsureTable();

  // One primary-key SELECT of an api_keys row; true when it exists.
  absl::StatusOr<bool> PointSelect(absl::string_view id);

  // START TRANSACTION, one-row INSERT into bench_rows, COMMIT (three
  // statements). Returns the rows inserted (1).
  absl::StatusOr<uint64_t> InsertCommit();

  // The pool's statement counter.
  uint64_t queries_executed() const { return pool_->queries_executed(); }

 private:
  std::shared_ptr<ConnectionPool> pool_;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_BENCH_STORE_H_
