#include "server/storage/mysql/mysql_bench_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/storage/mysql/mysql_session.h"

namespace lumo::storage {
namespace {

constexpr size_t kRowsPerInsert = 1000;

// What a cold verification reads of a key, by id.
constexpr char kPointSelectSql[] =
    "SELECT id, tenant_id, digest, pepper_version, scopes,"
    " allowed_cidrs, revoked, version, expires_at"
    " FROM api_keys WHERE id = ?";

}  // namespace

MysqlBenchStore::MysqlBenchStore(std::shared_ptr<ConnectionPool> pool)
    : pool_(std::move(pool)), c_client_(pool_->options(), kPointSelectSql) {}

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
        sql::PreparedStatement& stmt = s.Prepare(kPointSelectSql);
        stmt.setString(1, Str(id));
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        found = rs->next();
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return found;
}

absl::StatusOr<bool> MysqlBenchStore::PointSelectCClient(absl::string_view id) {
  return c_client_.Select(id);
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

absl::Status MysqlBenchStore::LoadKeys(absl::string_view tenant_slug,
                                       const std::vector<NewKey>& keys) {
  // Validated before the transaction so that a bad list writes nothing.
  std::vector<std::string> scopes, cidrs;
  for (const NewKey& key : keys) {
    absl::StatusOr<std::string> s = JoinList(key.scopes, ' ', "scopes");
    if (!s.ok()) return s.status();
    absl::StatusOr<std::string> c =
        JoinList(key.allowed_cidrs, ',', "allowed_cidrs");
    if (!c.ok()) return c.status();
    scopes.push_back(*std::move(s));
    cidrs.push_back(*std::move(c));
  }
  return Run(*pool_, "bench load keys", [&](Session& s) -> absl::Status {
    s.Begin();
    s.Step("find tenant");
    sql::PreparedStatement& tenant =
        s.Prepare("SELECT id FROM tenants WHERE slug = ?");
    tenant.setString(1, Str(tenant_slug));
    std::unique_ptr<sql::ResultSet> rs = s.Query(tenant);
    if (!rs->next()) return absl::NotFoundError("tenant not found");
    const int64_t tenant_id = rs->getInt64(1);
    rs.reset();
    for (size_t begin = 0; begin < keys.size(); begin += kRowsPerInsert) {
      const size_t end = std::min(keys.size(), begin + kRowsPerInsert);
      std::string sql =
          "INSERT INTO api_keys (id, tenant_id, name, digest, pepper_version,"
          " scopes, allowed_cidrs, rate_limit_per_minute, revoked, version,"
          " created_by_type, created_by_id, created_at) VALUES ";
      for (size_t i = begin; i < end; ++i) {
        absl::StrAppend(&sql, i == begin ? "" : ", ",
                        "(?, ?, ?, ?, ?, ?, ?, ?, 0, 1, ?, ?,"
                        " UTC_TIMESTAMP(6))");
      }
      s.Step("insert keys");
      std::unique_ptr<sql::PreparedStatement> insert = s.PrepareUncached(sql);
      int p = 1;
      for (size_t i = begin; i < end; ++i) {
        const NewKey& key = keys[i];
        insert->setString(p++, key.id);
        insert->setInt64(p++, tenant_id);
        insert->setString(p++, key.name);
        insert->setString(p++,
                          std::string(core::AsStringView(key.secret.digest)));
        insert->setInt(p++, key.secret.pepper_version);
        insert->setString(p++, scopes[i]);
        insert->setString(p++, cidrs[i]);
        insert->setInt(p++, key.rate_limit_per_minute);
        insert->setString(p++, key.created_by_type);
        insert->setString(p++, key.created_by_id);
      }
      s.Update(*insert);
    }
    s.Commit();
    return absl::OkStatus();
  });
}

}  // namespace lumo::storage
