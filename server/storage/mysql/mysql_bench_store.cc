#include "server/storage/mysql/mysql_bench_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <memory>
#include <string>

#include "server/storage/mysql/mysql_session.h"

namespace lumo::storage {

absl::Status MysqlBenchStore::EnsureTable() {
  return Run(*pool_, "create bench table", [&](Session& s) -> absl::Status {
    sql::PreparedStatement& stmt = s.Prepare(
        "CREATE TABLE IF NOT EXISTS bench_rows ("
        " id BIGINT NOT NULL AUTO_INCREMENT,"
        " payload VARCHAR(64) NOT NULL,"
        " created_at DATETIME(6) NOT NULL,"
        " PRIMARY KEY (id)) ENGINE=InnoDB");
    s.Update(stmt);
    return absl::OkStatus();
  });
}

absl::StatusOr<bool> MysqlBenchStore::PointSelect(absl::string_view id) {
  bool found = false;
  absl::Status status =
      Run(*pool_, "bench point select", [&](Session& s) -> absl::Status {
        sql::PreparedStatement& stmt = s.Prepare(
            "SELECT id, tenant_id, digest, pepper_version, scopes,"
            " allowed_cidrs, revoked, version, expires_at"
            " FROM api_keys WHERE id = ?");
        stmt.setString(1, Str(id));
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        found = rs->next();
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return found;
}

absl::StatusOr<uint64_t> MysqlBenchStore::InsertCommit() {
  uint64_t rows = 0;
  absl::Status status =
      Run(*pool_, "bench insert", [&](Session& s) -> absl::Status {
        s.Begin();
        s.Step("insert");
        sql::PreparedStatement& insert = s.Prepare(
            "INSERT INTO bench_rows (payload, created_at)"
            " VALUES ('bench', UTC_TIMESTAMP(6))");
        rows = s.Update(insert);
        s.Commit();
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return rows;
}

}  // namespace lumo::storage
