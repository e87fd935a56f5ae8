// BENCHMARK ONLY: BenchStore over MySQL/MariaDB. Each baseline runs one
// fixed statement through the same ConnectionPool as the stores, so the
// pool, the connector and the round trip are what they cost.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_BENCH_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_BENCH_STORE_H_

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/storage/bench_store.h"
#include "server/storage/mysql/c_client_select.h"
#include "server/storage/mysql/connection_pool.h"

namespace lumo::storage {

// Thread-safe (every call leases its own connection).
class MysqlBenchStore : public BenchStore {
 public:
  explicit MysqlBenchStore(std::shared_ptr<ConnectionPool> pool);

  // Creates the scratch table `bench_rows` (the account needs CREATE,
  // which the benchmark's admin account has). Errors as in sql_error.h.
  absl::Status EnsureTable() override;
  // One primary-key SELECT of an api_keys row.
  absl::StatusOr<bool> PointSelect(absl::string_view id) override;
  // The same SELECT through libmariadb (c_client_select.h), on connections
  // of its own opened with the pool's options.
  absl::StatusOr<bool> PointSelectCClient(absl::string_view id) override;
  // One-row INSERT into bench_rows in a transaction, framed as every
  // mutation's (START TRANSACTION, SAVEPOINT, INSERT, RELEASE SAVEPOINT,
  // COMMIT: five statements).
  absl::StatusOr<uint64_t> InsertCommit() override;
  // The pool's counters (ConnectionPool::queries_executed,
  // statements_executed).
  uint64_t queries_executed() const override {
    return pool_->queries_executed();
  }
  uint64_t statements_executed() const override {
    return pool_->statements_executed();
  }
  // Multi-row INSERTs of 1000 keys each, one transaction.
  absl::Status LoadKeys(absl::string_view tenant_slug,
                        const std::vector<NewKey>& keys) override;

 private:
  std::shared_ptr<ConnectionPool> pool_;
  CClientPointSelect c_client_;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_BENCH_STORE_H_
