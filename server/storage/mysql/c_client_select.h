// BENCHMARK ONLY: the benchmark's point select through MariaDB's C client
// library (libmariadb) instead of Connector/C++, so that the benchmark can
// show how much of a query's cost is the connector and how much is ours
// (docs/benchmarks.md "Per-query cost"). Each connection keeps its prepared
// statement and its result buffers; a call binds the id, executes, fetches
// every column of the row into those buffers, and returns the connection.
// Never used by a store.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_C_CLIENT_SELECT_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_C_CLIENT_SELECT_H_

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/storage/mysql/mysql_options.h"

namespace lumo::storage {

// Thread-safe: each call takes a connection of its own (opened on demand,
// kept for the next call; a connection that failed is closed).
class CClientPointSelect {
 public:
  // `sql` must select one row by a single string parameter.
  CClientPointSelect(MysqlOptions options, std::string sql);
  ~CClientPointSelect();
  CClientPointSelect(const CClientPointSelect&) = delete;
  CClientPointSelect& operator=(const CClientPointSelect&) = delete;

  // True when the statement found a row for `id`. UNAVAILABLE when no
  // connection could be opened, INTERNAL for any other client error (the
  // message is the client's, which never holds the password).
  absl::StatusOr<bool> Select(absl::string_view id);

 private:
  struct Connection;
  absl::StatusOr<std::unique_ptr<Connection>> Open();

  const MysqlOptions options_;
  const std::string sql_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_C_CLIENT_SELECT_H_
