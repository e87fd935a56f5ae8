#include "server/storage/mysql/mysql_audit_chain.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <cstring>
#include <memory>

#include "server/storage/mysql/select_list.h"

namespace lumo::storage {
namespace {

// The locking read of a head, with the clock.
struct LockHeadSelect {
  SelectList list;
  int last_seq = list.Add("last_seq");
  int last_hash = list.Add("last_hash");
  int now = list.Add("UTC_TIMESTAMP(6)");
  std::string sql = absl::StrCat(
      "SELECT ", list.sql(),
      " FROM audit_chain_heads WHERE tenant_id = ? AND lane = ? FOR UPDATE");
};

// Takes an exclusive lock on the (new or existing) head row directly, so
// two first appends of one tenant serialise instead of deadlocking.
constexpr char kCreateHeadSql[] =
    "INSERT INTO audit_chain_heads (tenant_id, lane, last_seq, last_hash)"
    " VALUES (?, ?, 0, ?) ON DUPLICATE KEY UPDATE last_seq = last_seq";
constexpr char kUpdateHeadSql[] =
    "UPDATE audit_chain_heads SET last_seq = ?, last_hash = ?"
    " WHERE tenant_id = ? AND lane = ?";

}  // namespace

void CreateChainHeads(Session& session, int64_t tenant_id) {
  std::string sql =
      "INSERT INTO audit_chain_heads (tenant_id, lane, last_seq, last_hash)"
      " VALUES ";
  for (int lane = 0; lane < kChainLaneCount; ++lane) {
    if (lane > 0) sql += ", ";
    sql += "(?, ?, 0, ?)";
  }
  session.Step("create audit chain heads");
  sql::PreparedStatement& stmt = session.Prepare(sql);
  int p = 1;
  for (int lane = 0; lane < kChainLaneCount; ++lane) {
    stmt.setInt64(p++, tenant_id);
    stmt.setInt(p++, lane);
    stmt.setString(p++, DigestColumn(core::Digest{}));
  }
  session.Update(stmt);
}

absl::StatusOr<ChainHead> LockChainHead(Session& session, int64_t tenant_id,
                                        int lane) {
  const LockHeadSelect* const select = &SelectOf<LockHeadSelect>();
  for (int attempt = 0; attempt < 2; ++attempt) {
    // Sent with the statements the transaction queued before it.
    SqlValues values;
    values.Int(tenant_id).Int(lane);
    absl::StatusOr<std::unique_ptr<sql::ResultSet>> rs =
        session.QueryWithQueued("lock audit chain head", select->sql, values);
    if (!rs.ok()) return rs.status();
    if ((*rs)->next()) {
      ChainHead head;
      head.lane = lane;
      head.last.seq = (*rs)->getInt64(select->last_seq);
      if (!ReadDigestColumn((*rs)->getString(select->last_hash).asStdString(),
                            &head.last.hash)) {
        return absl::InternalError("audit chain head has a malformed hash");
      }
      absl::StatusOr<absl::Time> now = GetTime(**rs, select->now);
      if (!now.ok()) return now.status();
      head.now = *now;
      return head;
    }
    rs->reset();
    session.Step("create audit chain head");
    sql::PreparedStatement& create = session.Prepare(kCreateHeadSql);
    create.setInt64(1, tenant_id);
    create.setInt(2, lane);
    create.setString(3, DigestColumn(core::Digest{}));
    session.Update(create);
  }
  return absl::InternalError("audit chain head vanished");
}

absl::Status UpdateChainHead(Session& session, int64_t tenant_id,
                             const ChainHead& head) {
  SqlValues values;
  values.Int(head.last.seq)
      .Bytes(DigestColumn(head.last.hash))
      .Int(tenant_id)
      .Int(head.lane);
  return session.Defer("update audit chain head", kUpdateHeadSql, values);
}

std::string DigestColumn(const core::Digest& digest) {
  return std::string(core::AsStringView(digest));
}

bool ReadDigestColumn(absl::string_view bytes, core::Digest* out) {
  if (bytes.size() != out->size()) return false;
  std::memcpy(out->data(), bytes.data(), out->size());
  return true;
}

}  // namespace lumo::storage
