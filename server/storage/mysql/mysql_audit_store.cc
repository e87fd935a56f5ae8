#include "server/storage/mysql/mysql_audit_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/storage/mysql/audit_chain.h"
#include "server/storage/mysql/mysql_session.h"

namespace lumo::storage {
namespace {

constexpr char kEventColumns[] =
    "id, tenant_id, COALESCE(seq, 0), action, category, actor_type, actor_id,"
    " target_type, target_id, outcome, suspicious, ip_address, user_agent,"
    " request_id, metadata, created_at,"
    " DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f'), prev_hash, hash,"
    " chain_lane";
constexpr int kCreatedAtText = 17;
constexpr int kPrevHash = 18;
constexpr int kHash = 19;
constexpr int kChainLane = 20;
// Lanes 0..kTransactionChainLanes: the length of every AuditCursor.
constexpr size_t kCursorLanes = kTransactionChainLanes + 1;

constexpr char kInsertPrefix[] =
    "INSERT INTO audit_events (tenant_id, action, category, actor_type,"
    " actor_id, target_type, target_id, outcome, suspicious, ip_address,"
    " user_agent, request_id, metadata, created_at, seq, chain_lane,"
    " prev_hash, hash)"
    " VALUES ";
constexpr char kInsertRow[] =
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr int kInsertColumns = 18;
// Rows per INSERT statement.
constexpr size_t kMaxRowsPerInsert = 500;
constexpr int kVerifyChunk = 5000;

absl::StatusOr<StoredAuditEvent> ReadEvent(const sql::ResultSet& rs) {
  StoredAuditEvent out;
  out.id = rs.getInt64(1);
  out.tenant_id = rs.getInt64(2);
  out.seq = rs.getInt64(3);
  out.lane = rs.getInt(kChainLane);
  AuditEvent& e = out.event;
  e.action = rs.getString(4).asStdString();
  e.category = rs.getString(5).asStdString();
  e.actor_type = rs.getString(6).asStdString();
  e.actor_id = rs.getString(7).asStdString();
  e.target_type = rs.getString(8).asStdString();
  e.target_id = rs.getString(9).asStdString();
  e.outcome = rs.getString(10).asStdString();
  e.suspicious = rs.getInt(11) != 0;
  e.ip_address = rs.getString(12).asStdString();
  e.user_agent = rs.getString(13).asStdString();
  e.request_id = rs.getString(14).asStdString();
  e.metadata_json = rs.getString(15).asStdString();
  absl::StatusOr<absl::Time> t = GetTime(rs, 16);
  if (!t.ok()) return t.status();
  out.created_at = *t;
  return out;
}

// Resolves the tenant slugs of events that name no tenant id (one query).
void ResolveSlugs(Session& s, std::vector<PendingAuditEvent>& events) {
  std::set<std::string> slugs;
  for (const PendingAuditEvent& e : events) {
    if (e.tenant_id == 0 && !e.tenant_slug.empty()) slugs.insert(e.tenant_slug);
  }
  if (slugs.empty()) return;
  std::string sql = "SELECT slug, id FROM tenants WHERE slug IN (";
  for (size_t i = 0; i < slugs.size(); ++i) sql += i == 0 ? "?" : ", ?";
  sql += ")";
  s.Step("resolve tenant slugs");
  std::unique_ptr<sql::PreparedStatement> stmt = s.PrepareUncached(sql);
  int i = 1;
  for (const std::string& slug : slugs) stmt->setString(i++, slug);
  absl::flat_hash_map<std::string, int64_t> ids;
  std::unique_ptr<sql::ResultSet> rs = s.Query(*stmt);
  while (rs->next()) ids[rs->getString(1).asStdString()] = rs->getInt64(2);
  for (PendingAuditEvent& e : events) {
    if (e.tenant_id != 0 || e.tenant_slug.empty()) continue;
    if (auto it = ids.find(e.tenant_slug); it != ids.end()) {
      e.tenant_id = it->second;
    }
  }
}

struct ChainedRow {
  int64_t tenant_id;
  int64_t seq;
  const AuditEvent* event;
  const std::string* created_at;
  core::Digest prev_hash;
  core::Digest hash;
};

void InsertRows(Session& s, const std::vector<ChainedRow>& rows) {
  for (size_t begin = 0; begin < rows.size(); begin += kMaxRowsPerInsert) {
    const size_t end = std::min(rows.size(), begin + kMaxRowsPerInsert);
    std::string sql = kInsertPrefix;
    for (size_t i = begin; i < end; ++i) {
      if (i != begin) sql += ", ";
      sql += kInsertRow;
    }
    s.Step("insert audit events");
    std::unique_ptr<sql::PreparedStatement> stmt = s.PrepareUncached(sql);
    int p = 1;
    for (size_t i = begin; i < end; ++i) {
      const ChainedRow& r = rows[i];
      const AuditEvent& e = *r.event;
      stmt->setInt64(p++, r.tenant_id);
      stmt->setString(p++, e.action);
      stmt->setString(p++, e.category);
      stmt->setString(p++, e.actor_type);
      stmt->setString(p++, e.actor_id);
      stmt->setString(p++, e.target_type);
      stmt->setString(p++, e.target_id);
      stmt->setString(p++, e.outcome);
      stmt->setInt(p++, e.suspicious ? 1 : 0);
      stmt->setString(p++, e.ip_address);
      stmt->setString(p++, e.user_agent);
      stmt->setString(p++, e.request_id);
      stmt->setString(p++, e.metadata_json);
      stmt->setString(p++, *r.created_at);
      stmt->setInt64(p++, r.seq);
      stmt->setInt(p++, kWriterChainLane);
      stmt->setString(p++, DigestColumn(r.prev_hash));
      stmt->setString(p++, DigestColumn(r.hash));
    }
    static_assert(kInsertColumns == 18);
    s.Update(*stmt);
  }
}

}  // namespace

MysqlAuditStore::MysqlAuditStore(std::shared_ptr<ConnectionPool> pool)
    : pool_(std::move(pool)) {}

absl::Status MysqlAuditStore::AppendEvents(
    const std::vector<PendingAuditEvent>& input) {
  if (input.empty()) return absl::OkStatus();
  std::vector<PendingAuditEvent> events = input;
  for (PendingAuditEvent& e : events) NormalizeAuditEvent(e.event);
  std::string latest;  // the newest timestamp written
  absl::Status st = Run(*pool_, "append audit events", [&](Session& s) {
    ResolveSlugs(s, events);
    // Tenant order = lock order (ascending); event order kept per tenant.
    std::map<int64_t, std::vector<const PendingAuditEvent*>> by_tenant;
    for (const PendingAuditEvent& e : events) {
      by_tenant[e.tenant_id].push_back(&e);
    }
    s.Begin();
    std::vector<ChainHead> heads;
    heads.reserve(by_tenant.size());
    std::vector<ChainedRow> rows;
    rows.reserve(events.size());
    for (const auto& [tenant_id, list] : by_tenant) {
      absl::StatusOr<ChainHead> head =
          LockChainHead(s, tenant_id, kWriterChainLane);
      if (!head.ok()) return head.status();
      heads.push_back(*std::move(head));
      ChainHead& h = heads.back();
      for (const PendingAuditEvent* e : list) {
        ChainedRow row{tenant_id,   h.last_seq + 1, &e->event,
                       &h.now_text, h.last_hash,    {}};
        row.hash = ChainHash(
            h.last_hash,
            CanonicalAuditRow(tenant_id, row.seq, e->event, h.now_text));
        h.last_seq = row.seq;
        h.last_hash = row.hash;
        rows.push_back(row);
      }
      latest = std::max(latest, h.now_text);
    }
    InsertRows(s, rows);
    size_t i = 0;
    for (const auto& entry : by_tenant) {
      UpdateChainHead(s, entry.first, heads[i++]);
    }
    s.Commit();
    return absl::OkStatus();
  });
  if (!st.ok()) return st;

  // Coalesced last_used_at: one statement naming each used key once, in its
  // own autocommit transaction (no key lock while a chain head is held).
  std::set<std::string> keys;
  for (const PendingAuditEvent& e : events) {
    if (!e.used_key_id.empty()) keys.insert(e.used_key_id);
  }
  if (keys.empty()) return absl::OkStatus();
  return Run(*pool_, "update last_used_at", [&](Session& s) {
    std::string sql =
        "UPDATE api_keys SET last_used_at ="
        " GREATEST(COALESCE(last_used_at, ?), ?) WHERE id IN (";
    for (size_t i = 0; i < keys.size(); ++i) sql += i == 0 ? "?" : ", ?";
    sql += ")";
    s.Step("update last_used_at");
    std::unique_ptr<sql::PreparedStatement> stmt = s.PrepareUncached(sql);
    stmt->setString(1, latest);
    stmt->setString(2, latest);
    int p = 3;
    for (const std::string& id : keys) stmt->setString(p++, id);
    s.Update(*stmt);
    last_used_statements_.fetch_add(1, std::memory_order_relaxed);
    last_used_keys_.fetch_add(keys.size(), std::memory_order_relaxed);
    return absl::OkStatus();
  });
}

absl::StatusOr<int64_t> MysqlAuditStore::PurgeOlderThanDays(int days) {
  if (days < 1) return absl::InvalidArgumentError("days must be at least 1");
  std::vector<std::pair<int64_t, int>> chains;  // (tenant, lane)
  absl::Status listed = Run(*pool_, "list audit chains", [&](Session& s) {
    chains.clear();
    s.Step("list chain heads");
    sql::PreparedStatement& stmt = s.Prepare(
        "SELECT tenant_id, lane FROM audit_chain_heads"
        " ORDER BY tenant_id, lane");
    std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
    while (rs->next()) chains.emplace_back(rs->getInt64(1), rs->getInt(2));
    return absl::OkStatus();
  });
  if (!listed.ok()) return listed;
  int64_t deleted = 0;
  for (const auto& [tenant_id, lane] : chains) {
    absl::Status st = Run(*pool_, "purge audit rows", [&](Session& s) {
      s.Begin();
      // The head lock orders the purge with every append to this chain.
      s.Step("lock chain head");
      sql::PreparedStatement& lock = s.Prepare(
          "SELECT base_seq FROM audit_chain_heads WHERE tenant_id = ?"
          " AND lane = ? FOR UPDATE");
      lock.setInt64(1, tenant_id);
      lock.setInt(2, lane);
      { std::unique_ptr<sql::ResultSet> rs = s.Query(lock); }
      s.Step("find the cut");
      sql::PreparedStatement& cut = s.Prepare(
          "SELECT seq, hash FROM audit_events WHERE tenant_id = ?"
          " AND chain_lane = ? AND seq IS NOT NULL AND created_at <"
          " UTC_TIMESTAMP(6) - INTERVAL ? DAY ORDER BY seq DESC LIMIT 1");
      cut.setInt64(1, tenant_id);
      cut.setInt(2, lane);
      cut.setInt(3, days);
      int64_t cut_seq = 0;
      std::string cut_hash;
      {
        std::unique_ptr<sql::ResultSet> rs = s.Query(cut);
        if (rs->next()) {
          cut_seq = rs->getInt64(1);
          cut_hash = rs->getString(2).asStdString();
        }
      }
      if (cut_seq == 0) {
        s.Rollback();
        return absl::OkStatus();
      }
      s.Step("move the chain base");
      sql::PreparedStatement& base = s.Prepare(
          "UPDATE audit_chain_heads SET base_seq = ?, base_hash = ?"
          " WHERE tenant_id = ? AND lane = ?");
      base.setInt64(1, cut_seq);
      base.setString(2, cut_hash);
      base.setInt64(3, tenant_id);
      base.setInt(4, lane);
      s.Update(base);
      s.Step("delete old rows");
      sql::PreparedStatement& del = s.Prepare(
          "DELETE FROM audit_events WHERE tenant_id = ? AND chain_lane = ?"
          " AND seq <= ?");
      del.setInt64(1, tenant_id);
      del.setInt(2, lane);
      del.setInt64(3, cut_seq);
      deleted += static_cast<int64_t>(s.Update(del));
      s.Commit();
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
  }
  return deleted;
}

absl::StatusOr<ChainVerification> MysqlAuditStore::VerifyChain(
    int64_t tenant_id) {
  ChainVerification out;
  absl::Status st = Run(*pool_, "verify audit chain", [&](Session& s) {
    out = ChainVerification();
    // One snapshot for the heads and every row.
    s.Begin();
    // Every lane that has a head or a chained row: a lane whose head was
    // deleted still has its rows walked (and then fails at its end).
    struct Lane {
      int64_t head_seq = 0, base_seq = 0;
      core::Digest head_hash{}, base_hash{};
    };
    std::map<int, Lane> lanes;
    s.Step("read chain heads");
    sql::PreparedStatement& head_stmt = s.Prepare(
        "SELECT lane, last_seq, last_hash, base_seq, base_hash"
        " FROM audit_chain_heads WHERE tenant_id = ?");
    head_stmt.setInt64(1, tenant_id);
    {
      std::unique_ptr<sql::ResultSet> rs = s.Query(head_stmt);
      while (rs->next()) {
        Lane& lane = lanes[rs->getInt(1)];
        lane.head_seq = rs->getInt64(2);
        lane.base_seq = rs->getInt64(4);
        if (!ReadDigestColumn(rs->getString(3).asStdString(),
                              &lane.head_hash) ||
            !ReadDigestColumn(rs->getString(5).asStdString(),
                              &lane.base_hash)) {
          out.ok = false;
          out.broken_lane = rs->getInt(1);
          out.problem = "a chain head holds a malformed hash";
          s.Rollback();
          return absl::OkStatus();
        }
      }
    }
    s.Step("list chain lanes");
    sql::PreparedStatement& lane_stmt = s.Prepare(
        "SELECT DISTINCT chain_lane FROM audit_events WHERE tenant_id = ?"
        " AND seq IS NOT NULL");
    lane_stmt.setInt64(1, tenant_id);
    {
      std::unique_ptr<sql::ResultSet> rs = s.Query(lane_stmt);
      while (rs->next()) lanes.try_emplace(rs->getInt(1));
    }
    // A row outside the chains written after they began is an insertion.
    s.Step("find unchained rows");
    sql::PreparedStatement& loose = s.Prepare(
        "SELECT MIN(id) FROM audit_events WHERE tenant_id = ? AND seq IS NULL"
        " AND id > (SELECT COALESCE(MIN(id), 0) FROM audit_events"
        " WHERE tenant_id = ? AND seq IS NOT NULL)");
    loose.setInt64(1, tenant_id);
    loose.setInt64(2, tenant_id);
    int64_t loose_id = 0;
    {
      std::unique_ptr<sql::ResultSet> rs = s.Query(loose);
      if (rs->next() && !rs->isNull(1)) loose_id = rs->getInt64(1);
    }
    for (const auto& [lane_id, lane] : lanes) {
      core::Digest prev = lane.base_hash;
      int64_t expected = lane.base_seq + 1;
      for (;;) {
        s.Step("read chain rows");
        sql::PreparedStatement& rows = s.Prepare(absl::StrCat(
            "SELECT ", kEventColumns,
            " FROM audit_events WHERE tenant_id = ? AND chain_lane = ?"
            " AND seq >= ? ORDER BY seq LIMIT ",
            kVerifyChunk));
        rows.setInt64(1, tenant_id);
        rows.setInt(2, lane_id);
        rows.setInt64(3, expected);
        std::unique_ptr<sql::ResultSet> rs = s.Query(rows);
        int n = 0;
        while (rs->next()) {
          ++n;
          absl::StatusOr<StoredAuditEvent> row = ReadEvent(*rs);
          if (!row.ok()) return row.status();
          auto fail = [&](std::string problem) {
            out.ok = false;
            out.broken_id = row->id;
            out.broken_seq = row->seq;
            out.broken_lane = lane_id;
            out.problem = std::move(problem);
          };
          core::Digest row_prev{}, row_hash{};
          if (row->seq != expected) {
            fail(absl::StrCat("sequence gap: expected ", expected));
          } else if (!ReadDigestColumn(rs->getString(kPrevHash).asStdString(),
                                       &row_prev) ||
                     !ReadDigestColumn(rs->getString(kHash).asStdString(),
                                       &row_hash)) {
            fail("missing or malformed hash");
          } else if (row_prev != prev) {
            fail("prev_hash does not match the previous row's hash");
          } else if (ChainHash(
                         row_prev,
                         CanonicalAuditRow(
                             tenant_id, row->seq, row->event,
                             rs->getString(kCreatedAtText).asStdString())) !=
                     row_hash) {
            fail("the row's content does not match its hash");
          }
          if (!out.ok) break;
          prev = row_hash;
          out.last_seq = std::max(out.last_seq, row->seq);
          ++out.rows_checked;
          ++expected;
        }
        if (!out.ok || n < kVerifyChunk) break;
      }
      if (!out.ok) break;
      if (expected - 1 != lane.head_seq || prev != lane.head_hash) {
        out.ok = false;
        out.broken_seq = expected;
        out.broken_lane = lane_id;
        out.problem = absl::StrCat(
            "chain lane ", lane_id, " ends at seq ", expected - 1,
            " but its head records seq ", lane.head_seq,
            ": rows are missing at the end or the head was altered");
        break;
      }
      ++out.lanes_checked;
    }
    if (out.ok && loose_id != 0) {
      out.ok = false;
      out.broken_id = loose_id;
      out.problem = "a row outside the chain was inserted";
    }
    s.Rollback();
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<AuditPage> MysqlAuditStore::ListEvents(int64_t tenant_id,
                                                      const AuditQuery& q) {
  if (q.page < 1 || q.limit < 0 || q.limit > 100) {
    return absl::InvalidArgumentError("page or limit out of range");
  }
  // Filters from a fixed set; every value is bound.
  std::string where = " FROM audit_events WHERE tenant_id = ?";
  std::vector<std::string> strings;
  for (const auto& [column, value] :
       {std::pair<const char*, const std::string*>{"action", &q.action},
        {"category", &q.category},
        {"actor_id", &q.actor_id},
        {"target_id", &q.target_id},
        {"outcome", &q.outcome}}) {
    if (value->empty()) continue;
    absl::StrAppend(&where, " AND ", column, " = ?");
    strings.push_back(*value);
  }
  if (q.suspicious.has_value()) {
    absl::StrAppend(&where, " AND suspicious = ", *q.suspicious ? 1 : 0);
  }
  if (q.after_id.has_value()) {
    absl::StrAppend(&where, " AND id > ", *q.after_id);
  }
  if (q.after_cursor.has_value()) {
    const std::vector<int64_t>& after = q.after_cursor->lane_seqs;
    if (after.size() != kCursorLanes ||
        std::any_of(after.begin(), after.end(),
                    [](int64_t seq) { return seq < 0; })) {
      return absl::InvalidArgumentError(
          "afterCursor: not a position of this audit log");
    }
    // One range of the (tenant_id, chain_lane, seq) index per lane; the
    // values are validated integers.
    where += " AND (";
    for (size_t lane = 0; lane < after.size(); ++lane) {
      absl::StrAppend(&where, lane == 0 ? "" : " OR ", "(chain_lane = ", lane,
                      " AND seq > ", after[lane], ")");
    }
    where += ")";
  }
  const bool oldest_first = q.oldest_first || q.after_cursor.has_value();
  // A first follower read: its page and the lane heads in one snapshot.
  const bool read_heads = q.want_cursor && !q.after_cursor.has_value();
  if (q.start.has_value()) where += " AND created_at >= ?";
  if (q.end.has_value()) where += " AND created_at < ?";
  auto bind = [&](sql::PreparedStatement& stmt) -> absl::Status {
    int p = 1;
    stmt.setInt64(p++, tenant_id);
    for (const std::string& v : strings) stmt.setString(p++, v);
    if (q.start.has_value()) {
      if (absl::Status st = BindTime(stmt, p++, q.start); !st.ok()) return st;
    }
    if (q.end.has_value()) {
      if (absl::Status st = BindTime(stmt, p++, q.end); !st.ok()) return st;
    }
    return absl::OkStatus();
  };
  AuditPage page;
  absl::Status st = Run(*pool_, "list audit events", [&](Session& s) {
    page = AuditPage();
    // REPEATABLE READ: every read below sees the snapshot of the first.
    if (read_heads) s.Begin();
    s.Step("count audit events");
    std::unique_ptr<sql::PreparedStatement> count = s.PrepareUncached(
        absl::StrCat("SELECT COUNT(*), COALESCE(SUM(suspicious), 0)", where));
    if (absl::Status b = bind(*count); !b.ok()) return b;
    {
      std::unique_ptr<sql::ResultSet> rs = s.Query(*count);
      if (rs->next()) {
        page.total = rs->getInt64(1);
        page.suspicious_total = rs->getInt64(2);
      }
    }
    if (q.limit > 0) {
      s.Step("list audit events");
      std::unique_ptr<sql::PreparedStatement> list = s.PrepareUncached(
          absl::StrCat("SELECT ", kEventColumns, where, " ORDER BY id ",
                       oldest_first ? "ASC" : "DESC", " LIMIT ", q.limit,
                       " OFFSET ", static_cast<int64_t>(q.page - 1) * q.limit));
      if (absl::Status b = bind(*list); !b.ok()) return b;
      std::unique_ptr<sql::ResultSet> rs = s.Query(*list);
      while (rs->next()) {
        absl::StatusOr<StoredAuditEvent> e = ReadEvent(*rs);
        if (!e.ok()) return e.status();
        page.events.push_back(*std::move(e));
      }
    }
    if (q.after_cursor.has_value()) {
      // Within a lane, ids grow with seqs (the head is locked before the
      // insert takes its id), so the rows returned of each lane are a
      // prefix of what that lane holds after the cursor: moving to the
      // highest seq returned skips nothing.
      AuditCursor next = *q.after_cursor;
      for (const StoredAuditEvent& e : page.events) {
        if (e.lane >= 0 && static_cast<size_t>(e.lane) < kCursorLanes) {
          next.lane_seqs[e.lane] = std::max(next.lane_seqs[e.lane], e.seq);
        }
      }
      page.next_cursor = std::move(next);
    } else if (read_heads) {
      s.Step("read audit chain heads");
      sql::PreparedStatement& heads = s.Prepare(
          "SELECT lane, last_seq FROM audit_chain_heads WHERE tenant_id = ?");
      heads.setInt64(1, tenant_id);
      std::unique_ptr<sql::ResultSet> rs = s.Query(heads);
      AuditCursor next;
      next.lane_seqs.assign(kCursorLanes, 0);
      while (rs->next()) {
        const int lane = rs->getInt(1);
        if (lane >= 0 && static_cast<size_t>(lane) < kCursorLanes) {
          next.lane_seqs[lane] = rs->getInt64(2);
        }
      }
      s.Rollback();
      page.next_cursor = std::move(next);
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return page;
}

absl::StatusOr<StoredAuditEvent> MysqlAuditStore::GetEvent(int64_t tenant_id,
                                                           int64_t id) {
  StoredAuditEvent out;
  absl::Status st = Run(*pool_, "get audit event", [&](Session& s) {
    s.Step("get audit event");
    sql::PreparedStatement& stmt = s.Prepare(
        absl::StrCat("SELECT ", kEventColumns,
                     " FROM audit_events WHERE tenant_id = ? AND id = ?"));
    stmt.setInt64(1, tenant_id);
    stmt.setInt64(2, id);
    std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
    if (!rs->next()) return absl::NotFoundError("no such audit event");
    absl::StatusOr<StoredAuditEvent> e = ReadEvent(*rs);
    if (!e.ok()) return e.status();
    out = *std::move(e);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<std::vector<StoredAuditEvent>> MysqlAuditStore::ExportEvents(
    int64_t tenant_id, std::optional<absl::Time> from,
    std::optional<absl::Time> to, int max_rows) {
  std::vector<StoredAuditEvent> out;
  absl::Status st = Run(*pool_, "export audit events", [&](Session& s) {
    out.clear();
    std::string sql = absl::StrCat("SELECT ", kEventColumns,
                                   " FROM audit_events WHERE tenant_id = ?");
    if (from.has_value()) sql += " AND created_at >= ?";
    if (to.has_value()) sql += " AND created_at < ?";
    absl::StrAppend(&sql, " ORDER BY id LIMIT ", max_rows);
    s.Step("export audit events");
    std::unique_ptr<sql::PreparedStatement> stmt = s.PrepareUncached(sql);
    int p = 1;
    stmt->setInt64(p++, tenant_id);
    if (from.has_value()) {
      if (absl::Status b = BindTime(*stmt, p++, from); !b.ok()) return b;
    }
    if (to.has_value()) {
      if (absl::Status b = BindTime(*stmt, p++, to); !b.ok()) return b;
    }
    std::unique_ptr<sql::ResultSet> rs = s.Query(*stmt);
    while (rs->next()) {
      absl::StatusOr<StoredAuditEvent> e = ReadEvent(*rs);
      if (!e.ok()) return e.status();
      out.push_back(*std::move(e));
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

}  // namespace lumo::storage
