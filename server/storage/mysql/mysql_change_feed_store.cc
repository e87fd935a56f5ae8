#include "server/storage/mysql/mysql_change_feed_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <utility>

#include "absl/time/time.h"
#include "server/fault/fault_points.h"
#include "server/storage/mysql/mysql_session.h"

namespace lumo::storage {

namespace {

int64_t Micros(absl::Duration d) { return absl::ToInt64Microseconds(d); }

}  // namespace

absl::StatusOr<std::unique_ptr<MysqlChangeFeedStore>>
MysqlChangeFeedStore::Open(MysqlOptions options, int pool_size) {
  options.pool_size = pool_size;
  absl::StatusOr<std::unique_ptr<ConnectionPool>> pool =
      ConnectionPool::Create(options);
  if (!pool.ok()) return pool.status();
  return std::make_unique<MysqlChangeFeedStore>(
      std::shared_ptr<ConnectionPool>(*std::move(pool)));
}

MysqlChangeFeedStore::MysqlChangeFeedStore(std::shared_ptr<ConnectionPool> pool)
    : pool_(std::move(pool)) {}

absl::StatusOr<std::vector<KeyChange>> MysqlChangeFeedStore::ReadChanges(
    int64_t after, int limit) {
  std::vector<KeyChange> out;
  absl::Status status =
      Run(*pool_, "read key changes", [&](Session& s) -> absl::Status {
        out.clear();
        sql::PreparedStatement& stmt = s.Prepare(
            "SELECT seq, tenant_id, key_id, change_type, key_version"
            " FROM key_changes WHERE seq > ? ORDER BY seq LIMIT ?");
        stmt.setInt64(1, after);
        stmt.setInt(2, limit);
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        while (rs->next()) {
          KeyChange c;
          c.seq = rs->getInt64(1);
          c.tenant_id = rs->getInt64(2);
          c.key_id = rs->getString(3).asStdString();
          c.change_type = rs->getString(4).asStdString();
          c.key_version = rs->getInt64(5);
          out.push_back(std::move(c));
        }
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<int64_t> MysqlChangeFeedStore::Head() {
  int64_t head = 0;
  absl::Status status =
      Run(*pool_, "read feed head", [&](Session& s) -> absl::Status {
        sql::PreparedStatement& stmt =
            s.Prepare("SELECT COALESCE(MAX(seq), 0) FROM key_changes");
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        head = rs->next() ? rs->getInt64(1) : 0;
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return head;
}

absl::StatusOr<int64_t> MysqlChangeFeedStore::StartingPoint(
    absl::Duration lookback) {
  int64_t seq = 0;
  absl::Status status =
      Run(*pool_, "find feed start", [&](Session& s) -> absl::Status {
        sql::PreparedStatement& stmt = s.Prepare(
            "SELECT seq FROM key_changes WHERE created_at <"
            " UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND"
            " ORDER BY created_at DESC, seq DESC LIMIT 1");
        stmt.setInt64(1, Micros(lookback));
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        seq = rs->next() ? rs->getInt64(1) : 0;
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return seq;
}

absl::StatusOr<int64_t> MysqlChangeFeedStore::Announce(
    const KeyChange& change) {
  int64_t seq = 0;
  absl::Status status =
      Run(*pool_, "announce key change", [&](Session& s) -> absl::Status {
        s.Begin();
        s.Step("insert key change");
        sql::PreparedStatement& insert = s.Prepare(
            "INSERT INTO key_changes (tenant_id, key_id, change_type,"
            " key_version, created_at) VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6))");
        insert.setInt64(1, change.tenant_id);
        insert.setString(2, change.key_id);
        insert.setString(3, change.change_type);
        insert.setInt64(4, change.key_version);
        s.Update(insert);
        s.Step("read seq");
        sql::PreparedStatement& read = s.Prepare("SELECT LAST_INSERT_ID()");
        std::unique_ptr<sql::ResultSet> rs = s.Query(read);
        if (!rs->next()) return absl::InternalError("no LAST_INSERT_ID");
        seq = rs->getInt64(1);
        rs.reset();
        if (absl::Status st = fault::kAnnounceBeforeCommit.Hit(change.key_id);
            !st.ok()) {
          return st;
        }
        s.Commit();
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return seq;
}

absl::Status MysqlChangeFeedStore::Register(const ReplicaRegistration& replica,
                                            absl::Duration prune_after) {
  return Run(*pool_, "register replica", [&](Session& s) -> absl::Status {
    s.Step("prune replicas");
    sql::PreparedStatement& prune = s.Prepare(
        "DELETE FROM replicas WHERE heartbeat_at < UTC_TIMESTAMP(6) -"
        " INTERVAL (lease_us + ?) MICROSECOND");
    prune.setInt64(1, Micros(prune_after));
    s.Update(prune);
    s.Step("insert replica");
    sql::PreparedStatement& insert = s.Prepare(
        "REPLACE INTO replicas (id, address, hostname, pid, started_at,"
        " heartbeat_at, lease_us, applied_seq) VALUES"
        " (?, ?, ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?, ?)");
    insert.setString(1, replica.id);
    insert.setString(2, TruncateUtf8(replica.address, 255));
    insert.setString(3, TruncateUtf8(replica.hostname, 255));
    insert.setInt64(4, replica.pid);
    insert.setInt64(5, Micros(replica.lease));
    insert.setInt64(6, replica.applied_seq);
    s.Update(insert);
    return absl::OkStatus();
  });
}

absl::Status MysqlChangeFeedStore::Heartbeat(absl::string_view replica_id,
                                             int64_t applied_seq) {
  return Run(*pool_, "replica heartbeat", [&](Session& s) -> absl::Status {
    sql::PreparedStatement& stmt = s.Prepare(
        "UPDATE replicas SET heartbeat_at = UTC_TIMESTAMP(6), applied_seq = ?"
        " WHERE id = ?");
    stmt.setInt64(1, applied_seq);
    stmt.setString(2, Str(replica_id));
    // CLIENT_FOUND_ROWS is not set: an unchanged row still counts because
    // heartbeat_at always changes.
    if (s.Update(stmt) == 0) {
      return absl::NotFoundError("replica row is gone");
    }
    return absl::OkStatus();
  });
}

absl::Status MysqlChangeFeedStore::Deregister(absl::string_view replica_id) {
  return Run(*pool_, "deregister replica", [&](Session& s) -> absl::Status {
    sql::PreparedStatement& stmt =
        s.Prepare("DELETE FROM replicas WHERE id = ?");
    stmt.setString(1, Str(replica_id));
    s.Update(stmt);
    return absl::OkStatus();
  });
}

absl::StatusOr<int64_t> MysqlChangeFeedStore::CountUnacknowledged(
    absl::string_view self_id, int64_t seq) {
  int64_t count = 0;
  absl::Status status =
      Run(*pool_, "count unacknowledged", [&](Session& s) -> absl::Status {
        if (absl::Status st = fault::kAckQuery.Hit(self_id); !st.ok()) {
          return st;
        }
        sql::PreparedStatement& stmt = s.Prepare(
            "SELECT COUNT(*) FROM replicas WHERE id <> ? AND applied_seq < ?"
            " AND heartbeat_at + INTERVAL lease_us MICROSECOND >"
            " UTC_TIMESTAMP(6)");
        stmt.setString(1, Str(self_id));
        stmt.setInt64(2, seq);
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        count = rs->next() ? rs->getInt64(1) : 0;
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return count;
}

}  // namespace lumo::storage
