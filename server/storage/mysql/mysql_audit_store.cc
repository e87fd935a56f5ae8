#include "server/storage/mysql/mysql_audit_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/storage/audit_chain.h"
#include "server/storage/mysql/mysql_audit_chain.h"
#include "server/storage/mysql/mysql_session.h"
#include "server/storage/mysql/mysql_webhook_outbox.h"
#include "server/storage/mysql/select_list.h"

namespace lumo::storage {
namespace {

// The columns of an audit row as every read selects them.
struct EventColumns {
  explicit EventColumns(SelectList& s)
      : id(s.Add("id")),
        tenant_id(s.Add("tenant_id")),
        seq(s.Add("COALESCE(seq, 0)")),
        action(s.Add("action")),
        category(s.Add("category")),
        actor_type(s.Add("actor_type")),
        actor_id(s.Add("actor_id")),
        target_type(s.Add("target_type")),
        target_id(s.Add("target_id")),
        outcome(s.Add("outcome")),
        suspicious(s.Add("suspicious")),
        ip_address(s.Add("ip_address")),
        user_agent(s.Add("user_agent")),
        request_id(s.Add("request_id")),
        metadata(s.Add("metadata")),
        created_at(s.Add("created_at")),
        chain_lane(s.Add("chain_lane")) {}
  int id, tenant_id, seq, action, category, actor_type, actor_id, target_type,
      target_id, outcome, suspicious, ip_address, user_agent, request_id,
      metadata, created_at, chain_lane;
};

// Event reads (list, get, export).
struct EventSelect {
  SelectList list;
  EventColumns event{list};
};

// Chain walks: the event and its chain fields.
struct ChainRowSelect {
  SelectList list;
  EventColumns event{list};
  int prev_hash = list.Add("prev_hash");
  int hash = list.Add("hash");
  int hash_version = list.Add("hash_version");
};

// The heads of a tenant's lanes.
struct HeadSelect {
  SelectList list;
  int tenant_id = list.Add("tenant_id");
  int lane = list.Add("lane");
  int last_seq = list.Add("last_seq");
  int last_hash = list.Add("last_hash");
  int base_seq = list.Add("base_seq");
  int base_hash = list.Add("base_hash");
};

// A rotation's previous-secret tallies.
struct PreviousUserSelect {
  SelectList list;
  int ip_address = list.Add("ip_address");
  int user_agent = list.Add("user_agent");
  int last_seen_at = list.Add("last_seen_at");
  int uses = list.Add("uses");
};

const HeadSelect& Heads() { return SelectOf<HeadSelect>(); }
const EventSelect& Events() { return SelectOf<EventSelect>(); }

// A list query's totals.
struct CountSelect {
  SelectList list;
  int total = list.Add("COUNT(*)");
  int suspicious = list.Add("COALESCE(SUM(suspicious), 0)");
};

// A retention cut: the newest chained row old enough to go.
struct CutSelect {
  SelectList list;
  int seq = list.Add("seq");
  int hash = list.Add("hash");
};

constexpr char kInsertPrefix[] =
    "INSERT INTO audit_events (tenant_id, action, category, actor_type,"
    " actor_id, target_type, target_id, outcome, suspicious, ip_address,"
    " user_agent, request_id, metadata, created_at, seq, chain_lane,"
    " prev_hash, hash, hash_version)"
    " VALUES ";
constexpr char kInsertRow[] =
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr int kInsertColumns = 19;
// Rows per INSERT statement.
constexpr size_t kMaxRowsPerInsert = 500;
constexpr int kVerifyChunk = 5000;

absl::StatusOr<StoredAuditEvent> ReadEvent(const sql::ResultSet& rs,
                                           const EventColumns& c) {
  StoredAuditEvent out;
  out.id = rs.getInt64(c.id);
  out.tenant_id = rs.getInt64(c.tenant_id);
  out.seq = rs.getInt64(c.seq);
  out.lane = rs.getInt(c.chain_lane);
  AuditEvent& e = out.event;
  e.action = rs.getString(c.action).asStdString();
  e.category = rs.getString(c.category).asStdString();
  e.actor_type = rs.getString(c.actor_type).asStdString();
  e.actor_id = rs.getString(c.actor_id).asStdString();
  e.target_type = rs.getString(c.target_type).asStdString();
  e.target_id = rs.getString(c.target_id).asStdString();
  e.outcome = rs.getString(c.outcome).asStdString();
  e.suspicious = rs.getInt(c.suspicious) != 0;
  e.ip_address = rs.getString(c.ip_address).asStdString();
  e.user_agent = rs.getString(c.user_agent).asStdString();
  e.request_id = rs.getString(c.request_id).asStdString();
  e.metadata_json = rs.getString(c.metadata).asStdString();
  absl::StatusOr<absl::Time> t = GetTime(rs, c.created_at);
  if (!t.ok()) return t.status();
  out.created_at = *t;
  return out;
}

// A digest column, or nullopt when it is NULL or not a digest.
std::optional<core::Digest> OptionalDigest(const sql::ResultSet& rs,
                                           int column) {
  core::Digest d;
  if (rs.isNull(column) ||
      !ReadDigestColumn(rs.getString(column).asStdString(), &d)) {
    return std::nullopt;
  }
  return d;
}

// Resolves the tenant slugs of events that name no tenant id (one query).
void ResolveSlugs(Session& s, std::vector<PendingAuditEvent>& events) {
  std::set<std::string> slugs;
  for (const PendingAuditEvent& e : events) {
    if (e.tenant_id == 0 && !e.tenant_slug.empty()) slugs.insert(e.tenant_slug);
  }
  if (slugs.empty()) return;
  struct SlugSelect {
    SelectList list;
    int slug = list.Add("slug");
    int id = list.Add("id");
  };
  const SlugSelect* const cols = &SelectOf<SlugSelect>();
  std::string sql = absl::StrCat("SELECT ", cols->list.sql(),
                                 " FROM tenants WHERE slug IN (");
  for (size_t i = 0; i < slugs.size(); ++i) sql += i == 0 ? "?" : ", ?";
  sql += ")";
  s.Step("resolve tenant slugs");
  std::unique_ptr<sql::PreparedStatement> stmt = s.PrepareUncached(sql);
  int i = 1;
  for (const std::string& slug : slugs) stmt->setString(i++, slug);
  absl::flat_hash_map<std::string, int64_t> ids;
  std::unique_ptr<sql::ResultSet> rs = s.Query(*stmt);
  while (rs->next()) {
    ids[rs->getString(cols->slug).asStdString()] = rs->getInt64(cols->id);
  }
  for (PendingAuditEvent& e : events) {
    if (e.tenant_id != 0 || e.tenant_slug.empty()) continue;
    if (auto it = ids.find(e.tenant_slug); it != ids.end()) {
      e.tenant_id = it->second;
    }
  }
}

struct ChainedRow {
  int64_t tenant_id;
  const AuditEvent* event;
  absl::Time created_at;
  ChainLink link;
};

// A rollup row's primary key: tenant, bucket start, key id, channel,
// outcome (the table's key order, so upserts lock rows in index order).
using UsageRowKey =
    std::tuple<int64_t, absl::Time, std::string, std::string, std::string>;

const char* UsageTable(UsageGranularity g) {
  return g == UsageGranularity::kDay ? "usage_daily" : "usage_hourly";
}

// Rows per rollup upsert statement.
constexpr size_t kMaxUsageRowsPerUpsert = 500;

// Adds the batch's usage counts to the rollups of granularity `g`: one
// multi-row upsert per 500 distinct rows, in primary-key order.
absl::Status UpsertUsage(Session& s, const std::vector<ChainedRow>& rows,
                         const std::vector<const UsageCount*>& usage,
                         UsageGranularity g) {
  std::map<UsageRowKey, int64_t> sums;
  for (size_t i = 0; i < rows.size(); ++i) {
    const UsageCount* u = usage[i];
    if (u == nullptr || u->count <= 0) continue;
    sums[{rows[i].tenant_id, UsageBucketStart(rows[i].created_at, g), u->key_id,
          u->channel, u->outcome}] += u->count;
  }
  auto it = sums.begin();
  while (it != sums.end()) {
    // The rows come from a derived table whose columns the update adds
    // from: MySQL 8.0 deprecates VALUES() in ON DUPLICATE KEY UPDATE, and
    // MariaDB lacks the row alias (VALUES ... AS new) that replaces it.
    std::string sql = absl::StrCat(
        "INSERT INTO ", UsageTable(g),
        " (tenant_id, bucket_start, key_id, channel, outcome, uses)"
        " SELECT v.tenant_id, v.bucket_start, v.key_id, v.channel, v.outcome,"
        " v.uses FROM (");
    std::vector<std::pair<const UsageRowKey*, int64_t>> chunk;
    for (; it != sums.end() && chunk.size() < kMaxUsageRowsPerUpsert; ++it) {
      sql += chunk.empty()
                 ? "SELECT ? AS tenant_id, ? AS bucket_start, ? AS key_id,"
                   " ? AS channel, ? AS outcome, ? AS uses"
                 : " UNION ALL SELECT ?, ?, ?, ?, ?, ?";
      chunk.emplace_back(&it->first, it->second);
    }
    absl::StrAppend(&sql,
                    ") AS v ON DUPLICATE KEY UPDATE uses = ", UsageTable(g),
                    ".uses + v.uses");
    s.Step("add usage rollups");
    std::unique_ptr<sql::PreparedStatement> stmt = s.PrepareUncached(sql);
    int p = 1;
    for (const auto& [key, count] : chunk) {
      const auto& [tenant_id, bucket, key_id, channel, outcome] = *key;
      stmt->setInt64(p++, tenant_id);
      if (absl::Status b = BindTime(*stmt, p++, bucket); !b.ok()) return b;
      stmt->setString(p++, key_id);
      stmt->setString(p++, channel);
      stmt->setString(p++, outcome);
      stmt->setInt64(p++, count);
    }
    s.Update(*stmt);
  }
  return absl::OkStatus();
}

// Adds the previous-secret uses of `rows` (uses[i] belongs to rows[i]; null:
// none) to their tallies, one statement per distinct tally.
absl::Status UpsertPreviousSecretUses(
    Session& s, const std::vector<ChainedRow>& rows,
    const std::vector<const PreviousSecretUse*>& uses) {
  for (size_t i = 0; i < rows.size(); ++i) {
    const PreviousSecretUse* u = uses[i];
    if (u == nullptr || u->count <= 0) continue;
    const AuditEvent& e = *rows[i].event;
    s.Step("tally previous secret use");
    sql::PreparedStatement& stmt = s.Prepare(
        "INSERT INTO previous_secret_uses (key_id, rotated_at, ip_address,"
        " user_agent_hash, tenant_id, user_agent, last_seen_at, uses)"
        " VALUES (?, ?, ?, UNHEX(SHA2(?, 256)), ?, ?, ?, ?)"
        " ON DUPLICATE KEY UPDATE uses = uses + ?,"
        " last_seen_at = GREATEST(last_seen_at, ?)");
    int p = 1;
    stmt.setString(p++, u->key_id);
    if (absl::Status b = BindTime(stmt, p++, u->rotated_at); !b.ok()) return b;
    stmt.setString(p++, e.ip_address);
    stmt.setString(p++, e.user_agent);
    stmt.setInt64(p++, rows[i].tenant_id);
    stmt.setString(p++, e.user_agent);
    if (absl::Status b = BindTime(stmt, p++, rows[i].created_at); !b.ok()) {
      return b;
    }
    stmt.setInt64(p++, u->count);
    stmt.setInt64(p++, u->count);
    if (absl::Status b = BindTime(stmt, p++, rows[i].created_at); !b.ok()) {
      return b;
    }
    s.Update(stmt);
  }
  return absl::OkStatus();
}

absl::Status InsertRows(Session& s, const std::vector<ChainedRow>& rows) {
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
      if (absl::Status st = BindTime(*stmt, p++, r.created_at); !st.ok()) {
        return st;
      }
      stmt->setInt64(p++, r.link.seq);
      stmt->setInt(p++, kWriterChainLane);
      stmt->setString(p++, DigestColumn(r.link.prev_hash));
      stmt->setString(p++, DigestColumn(r.link.hash));
      stmt->setInt(p++, static_cast<int>(r.link.version));
    }
    static_assert(kInsertColumns == 19);
    s.Update(*stmt);
  }
  return absl::OkStatus();
}

}  // namespace

MysqlAuditStore::MysqlAuditStore(std::shared_ptr<ConnectionPool> pool)
    : pool_(std::move(pool)) {}

absl::Status MysqlAuditStore::AppendEvents(
    const std::vector<PendingAuditEvent>& input) {
  if (input.empty()) return absl::OkStatus();
  std::vector<PendingAuditEvent> events = input;
  for (PendingAuditEvent& e : events) NormalizeAuditEvent(e.event);
  absl::Time latest = absl::InfinitePast();  // the newest timestamp written
  absl::Status st =
      Run(*pool_, "append audit events", OnConflict::kRetry, [&](Session& s) {
        latest = absl::InfinitePast();
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
        std::vector<const UsageCount*> usage;  // per row; null: counts nothing
        usage.reserve(events.size());
        std::vector<const PreviousSecretUse*> previous_uses;  // per row
        previous_uses.reserve(events.size());
        for (const auto& [tenant_id, list] : by_tenant) {
          absl::StatusOr<ChainHead> head =
              LockChainHead(s, tenant_id, kWriterChainLane);
          if (!head.ok()) return head.status();
          heads.push_back(*std::move(head));
          ChainHead& h = heads.back();
          for (const PendingAuditEvent* e : list) {
            rows.push_back({tenant_id, &e->event, h.now,
                            AppendToChain(&h.last, tenant_id, kWriterChainLane,
                                          e->event, h.now)});
            usage.push_back(e->usage.has_value() ? &*e->usage : nullptr);
            previous_uses.push_back(e->previous_secret_use.has_value()
                                        ? &*e->previous_secret_use
                                        : nullptr);
          }
          latest = std::max(latest, h.now);
        }
        if (absl::Status inserted = InsertRows(s, rows); !inserted.ok()) {
          return inserted;
        }
        OutboxWriter outbox(s);
        for (const ChainedRow& r : rows) {
          if (absl::Status st = outbox.Add(r.tenant_id, *r.event, r.created_at);
              !st.ok()) {
            return st;
          }
        }
        for (UsageGranularity g :
             {UsageGranularity::kHour, UsageGranularity::kDay}) {
          if (absl::Status added = UpsertUsage(s, rows, usage, g);
              !added.ok()) {
            return added;
          }
        }
        if (absl::Status tallied =
                UpsertPreviousSecretUses(s, rows, previous_uses);
            !tallied.ok()) {
          return tallied;
        }
        size_t i = 0;
        for (const auto& entry : by_tenant) {
          if (absl::Status st = UpdateChainHead(s, entry.first, heads[i++]);
              !st.ok()) {
            return st;
          }
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
  return Run(
      *pool_, "update last_used_at", OnConflict::kRetry, [&](Session& s) {
        std::string sql =
            "UPDATE api_keys SET last_used_at ="
            " GREATEST(COALESCE(last_used_at, ?), ?) WHERE id IN (";
        for (size_t i = 0; i < keys.size(); ++i) sql += i == 0 ? "?" : ", ?";
        sql += ")";
        s.Step("update last_used_at");
        std::unique_ptr<sql::PreparedStatement> stmt = s.PrepareUncached(sql);
        if (absl::Status b = BindTime(*stmt, 1, latest); !b.ok()) return b;
        if (absl::Status b = BindTime(*stmt, 2, latest); !b.ok()) return b;
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
    sql::PreparedStatement& stmt =
        s.Prepare(absl::StrCat("SELECT ", Heads().list.sql(),
                               " FROM audit_chain_heads"
                               " ORDER BY tenant_id, lane"));
    std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
    while (rs->next()) {
      chains.emplace_back(rs->getInt64(Heads().tenant_id),
                          rs->getInt(Heads().lane));
    }
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
      const CutSelect* const cuts = &SelectOf<CutSelect>();
      sql::PreparedStatement& cut = s.Prepare(absl::StrCat(
          "SELECT ", cuts->list.sql(),
          " FROM audit_events WHERE tenant_id = ?"
          " AND chain_lane = ? AND seq IS NOT NULL AND created_at <"
          " UTC_TIMESTAMP(6) - INTERVAL ? DAY ORDER BY seq DESC LIMIT 1"));
      cut.setInt64(1, tenant_id);
      cut.setInt(2, lane);
      cut.setInt(3, days);
      int64_t cut_seq = 0;
      std::string cut_hash;
      {
        std::unique_ptr<sql::ResultSet> rs = s.Query(cut);
        if (rs->next()) {
          cut_seq = rs->getInt64(cuts->seq);
          cut_hash = rs->getString(cuts->hash).asStdString();
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
  const HeadSelect* const heads = &Heads();
  const ChainRowSelect* const chain_rows = &SelectOf<ChainRowSelect>();
  ChainVerification out;
  absl::Status st = Run(*pool_, "verify audit chain", [&](Session& s) {
    ChainVerifier verifier;
    // One snapshot for the heads and every row.
    s.Begin();
    // Every lane that has a head or a chained row: a lane whose head was
    // deleted still has its rows walked (and then fails at its end).
    struct Lane {
      ChainPosition base, head;
    };
    std::map<int, Lane> lanes;
    s.Step("read chain heads");
    sql::PreparedStatement& head_stmt =
        s.Prepare(absl::StrCat("SELECT ", heads->list.sql(),
                               " FROM audit_chain_heads WHERE tenant_id = ?"));
    head_stmt.setInt64(1, tenant_id);
    {
      std::unique_ptr<sql::ResultSet> rs = s.Query(head_stmt);
      while (rs->next()) {
        const int lane_id = rs->getInt(heads->lane);
        Lane& lane = lanes[lane_id];
        lane.head.seq = rs->getInt64(heads->last_seq);
        lane.base.seq = rs->getInt64(heads->base_seq);
        if (!ReadDigestColumn(rs->getString(heads->last_hash).asStdString(),
                              &lane.head.hash) ||
            !ReadDigestColumn(rs->getString(heads->base_hash).asStdString(),
                              &lane.base.hash)) {
          verifier.MalformedHead(lane_id);
          out = verifier.Finish();
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
      verifier.BeginLane(lane_id, lane.base, lane.head);
      int64_t next_seq = lane.base.seq + 1;
      for (;;) {
        s.Step("read chain rows");
        sql::PreparedStatement& rows = s.Prepare(absl::StrCat(
            "SELECT ", chain_rows->list.sql(),
            " FROM audit_events WHERE tenant_id = ? AND chain_lane = ?"
            " AND seq >= ? ORDER BY seq LIMIT ",
            kVerifyChunk));
        rows.setInt64(1, tenant_id);
        rows.setInt(2, lane_id);
        rows.setInt64(3, next_seq);
        std::unique_ptr<sql::ResultSet> rs = s.Query(rows);
        int n = 0;
        while (rs->next()) {
          ++n;
          StoredChainRow row;
          absl::StatusOr<StoredAuditEvent> event =
              ReadEvent(*rs, chain_rows->event);
          if (!event.ok()) return event.status();
          row.row = *std::move(event);
          row.prev_hash = OptionalDigest(*rs, chain_rows->prev_hash);
          row.hash = OptionalDigest(*rs, chain_rows->hash);
          row.hash_version = rs->getInt(chain_rows->hash_version);
          if (!verifier.AddRow(row)) break;
          next_seq = row.row.seq + 1;
        }
        if (!verifier.ok() || n < kVerifyChunk) break;
      }
      if (!verifier.EndLane()) break;
    }
    if (verifier.ok() && loose_id != 0) verifier.UnchainedRow(loose_id);
    out = verifier.Finish();
    s.Rollback();
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

namespace {

// The FROM and WHERE clauses of the read side's filters (a fixed set of
// columns; every value is bound by BindFilters, in this order), reading
// through `index` when one is named.
struct FilterClause {
  std::string where;  // " FROM audit_events WHERE tenant_id = ? AND ..."
  std::vector<std::string> strings;
};

FilterClause FilterWhere(const AuditQuery& q, const char* index = nullptr) {
  FilterClause c;
  c.where = index == nullptr ? " FROM audit_events WHERE tenant_id = ?"
                             : absl::StrCat(" FROM audit_events FORCE INDEX (",
                                            index, ") WHERE tenant_id = ?");
  for (const auto& [column, value] :
       {std::pair<const char*, const std::string*>{"action", &q.action},
        {"category", &q.category},
        {"actor_id", &q.actor_id},
        {"target_id", &q.target_id},
        {"outcome", &q.outcome}}) {
    if (value->empty()) continue;
    absl::StrAppend(&c.where, " AND ", column, " = ?");
    c.strings.push_back(*value);
  }
  if (q.suspicious.has_value()) {
    absl::StrAppend(&c.where, " AND suspicious = ", *q.suspicious ? 1 : 0);
  }
  if (q.start.has_value()) c.where += " AND created_at >= ?";
  if (q.end.has_value()) c.where += " AND created_at < ?";
  return c;
}

// Binds FilterWhere's values from parameter 1; `*next` receives the next
// free parameter index.
absl::Status BindFilters(sql::PreparedStatement& stmt, int64_t tenant_id,
                         const AuditQuery& q, const FilterClause& c,
                         int* next) {
  int p = 1;
  stmt.setInt64(p++, tenant_id);
  for (const std::string& v : c.strings) stmt.setString(p++, v);
  if (q.start.has_value()) {
    if (absl::Status st = BindTime(stmt, p++, q.start); !st.ok()) return st;
  }
  if (q.end.has_value()) {
    if (absl::Status st = BindTime(stmt, p++, q.end); !st.ok()) return st;
  }
  *next = p;
  return absl::OkStatus();
}

// True when every lane's seq is known and not negative.
bool IsLanePosition(const AuditCursor& c) {
  return c.lane_seqs.size() == static_cast<size_t>(kChainLaneCount) &&
         std::none_of(c.lane_seqs.begin(), c.lane_seqs.end(),
                      [](int64_t seq) { return seq < 0; });
}

}  // namespace

absl::StatusOr<AuditPage> MysqlAuditStore::ListEvents(int64_t tenant_id,
                                                      const AuditQuery& q) {
  if (q.page < 1 || q.limit < 0 || q.limit > 100) {
    return absl::InvalidArgumentError("page or limit out of range");
  }
  if (q.after_position.has_value() && q.page != 1) {
    return absl::InvalidArgumentError("page must be 1 with a list position");
  }
  // A filter with an index of its own walks that index in id order
  // (docs/admin-api.md, "Paging large lists"), named here: on a large log
  // the optimizer may otherwise intersect it with (tenant_id, id) and sort
  // every matching row (seconds at millions of events). A follower's lane
  // cursor has an index of its own.
  const char* index = nullptr;
  if (!q.after_cursor.has_value()) {
    if (!q.action.empty()) {
      index = "idx_audit_tenant_action";
    } else if (q.suspicious.has_value()) {
      index = "idx_audit_tenant_suspicious";
    }
  }
  const FilterClause filter = FilterWhere(q, index);
  // Conditions added below hold only validated integers.
  std::string where = filter.where;
  if (q.after_id.has_value()) {
    absl::StrAppend(&where, " AND id > ", *q.after_id);
  }
  if (q.after_cursor.has_value()) {
    const std::vector<int64_t>& after = q.after_cursor->lane_seqs;
    if (!IsLanePosition(*q.after_cursor)) {
      return absl::InvalidArgumentError(
          "afterCursor: not a position of this audit log");
    }
    // One range of the (tenant_id, chain_lane, seq) index per lane.
    where += " AND (";
    for (size_t lane = 0; lane < after.size(); ++lane) {
      absl::StrAppend(&where, lane == 0 ? "" : " OR ", "(chain_lane = ", lane,
                      " AND seq > ", after[lane], ")");
    }
    where += ")";
  }
  const bool oldest_first = q.oldest_first || q.after_cursor.has_value();
  // The page's position, by id in the list's order (after the count: the
  // total covers every page).
  std::string position;
  if (q.after_position.has_value()) {
    position = absl::StrCat(" AND id ", oldest_first ? ">" : "<", " ",
                            *q.after_position);
  }
  // A first follower read: its page and the lane heads in one snapshot.
  const bool read_heads = q.want_cursor && !q.after_cursor.has_value();
  auto bind = [&](sql::PreparedStatement& stmt) -> absl::Status {
    int next = 0;
    return BindFilters(stmt, tenant_id, q, filter, &next);
  };
  AuditPage page;
  absl::Status st = Run(*pool_, "list audit events", [&](Session& s) {
    page = AuditPage();
    // REPEATABLE READ: every read below sees the snapshot of the first.
    if (read_heads) s.Begin();
    const CountRequest count_request =
        q.limit == 0 ? CountRequest{true, 0} : q.count;
    if (count_request.wanted && count_request.cap == 0) {
      s.Step("count audit events");
      const CountSelect* const counts = &SelectOf<CountSelect>();
      std::unique_ptr<sql::PreparedStatement> count =
          s.PrepareUncached(absl::StrCat("SELECT ", counts->list.sql(), where));
      if (absl::Status b = bind(*count); !b.ok()) return b;
      std::unique_ptr<sql::ResultSet> rs = s.Query(*count);
      if (rs->next()) {
        page.total = rs->getInt64(counts->total);
        page.suspicious_total = rs->getInt64(counts->suspicious);
      }
    } else if (count_request.wanted) {
      // At most cap + 1 index entries read.
      s.Step("count audit events");
      std::unique_ptr<sql::PreparedStatement> count = s.PrepareUncached(
          absl::StrCat("SELECT COUNT(*) FROM (SELECT 1", where, " LIMIT ",
                       count_request.cap + 1, ") x"));
      if (absl::Status b = bind(*count); !b.ok()) return b;
      std::unique_ptr<sql::ResultSet> rs = s.Query(*count);
      const CountedTotal total =
          TotalOf(count_request, rs->next() ? rs->getInt64(1) : 0);
      page.total = total.total;
      page.total_kind = total.kind;
    } else {
      page.total_kind = TotalKind::kNotCounted;
    }
    if (q.limit > 0) {
      s.Step("list audit events");
      // One row more than the page: whether another page follows.
      std::unique_ptr<sql::PreparedStatement> list =
          s.PrepareUncached(absl::StrCat(
              "SELECT ", Events().list.sql(), where, position, " ORDER BY id ",
              oldest_first ? "ASC" : "DESC", " LIMIT ", q.limit + 1, " OFFSET ",
              static_cast<int64_t>(q.page - 1) * q.limit));
      if (absl::Status b = bind(*list); !b.ok()) return b;
      std::unique_ptr<sql::ResultSet> rs = s.Query(*list);
      while (rs->next()) {
        if (static_cast<int>(page.events.size()) == q.limit) {
          page.has_more = true;
          break;
        }
        absl::StatusOr<StoredAuditEvent> e = ReadEvent(*rs, Events().event);
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
        if (e.lane >= 0 && e.lane < kChainLaneCount) {
          next.lane_seqs[e.lane] = std::max(next.lane_seqs[e.lane], e.seq);
        }
      }
      page.next_cursor = std::move(next);
    } else if (read_heads) {
      s.Step("read audit chain heads");
      sql::PreparedStatement& heads = s.Prepare(
          absl::StrCat("SELECT ", Heads().list.sql(),
                       " FROM audit_chain_heads WHERE tenant_id = ?"));
      heads.setInt64(1, tenant_id);
      std::unique_ptr<sql::ResultSet> rs = s.Query(heads);
      AuditCursor next;
      next.lane_seqs.assign(static_cast<size_t>(kChainLaneCount), 0);
      while (rs->next()) {
        const int lane = rs->getInt(Heads().lane);
        if (lane >= 0 && lane < kChainLaneCount) {
          next.lane_seqs[lane] = rs->getInt64(Heads().last_seq);
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
        absl::StrCat("SELECT ", Events().list.sql(),
                     " FROM audit_events WHERE tenant_id = ? AND id = ?"));
    stmt.setInt64(1, tenant_id);
    stmt.setInt64(2, id);
    std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
    if (!rs->next()) return absl::NotFoundError("no such audit event");
    absl::StatusOr<StoredAuditEvent> e = ReadEvent(*rs, Events().event);
    if (!e.ok()) return e.status();
    out = *std::move(e);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<ExportBound> MysqlAuditStore::ReadExportBound(
    int64_t tenant_id) {
  ExportBound bound;
  absl::Status st = Run(*pool_, "read audit export bound", [&](Session& s) {
    bound = ExportBound();
    bound.lanes.lane_seqs.assign(static_cast<size_t>(kChainLaneCount), 0);
    s.Begin();
    // A shared lock on every head waits for the transactions appending to
    // the tenant's lanes (they hold their head exclusively until COMMIT),
    // and reads the heads as committed: every seq at or below them is a
    // committed row. Appends start again at this transaction's end.
    s.Step("lock audit chain heads");
    sql::PreparedStatement& heads = s.Prepare(
        absl::StrCat("SELECT ", Heads().list.sql(),
                     " FROM audit_chain_heads WHERE tenant_id = ? ORDER BY lane"
                     " LOCK IN SHARE MODE"));
    heads.setInt64(1, tenant_id);
    {
      std::unique_ptr<sql::ResultSet> rs = s.Query(heads);
      while (rs->next()) {
        const int lane = rs->getInt(Heads().lane);
        if (lane >= 0 && lane < kChainLaneCount) {
          bound.lanes.lane_seqs[lane] = rs->getInt64(Heads().last_seq);
        }
      }
    }
    s.Step("read audit export id bound");
    sql::PreparedStatement& max_id = s.Prepare(
        "SELECT COALESCE(MAX(id), 0) FROM audit_events WHERE tenant_id = ?");
    max_id.setInt64(1, tenant_id);
    {
      std::unique_ptr<sql::ResultSet> rs = s.Query(max_id);
      if (rs->next()) bound.max_id = rs->getInt64(1);
    }
    s.Commit();
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return bound;
}

absl::StatusOr<ExportPageRows> MysqlAuditStore::ExportPage(
    int64_t tenant_id, const AuditQuery& filters, const ExportBound& bound,
    int64_t after_id, int limit) {
  if (limit < 1 || limit > 10000) {
    return absl::InvalidArgumentError("limit out of range");
  }
  if (!IsLanePosition(bound.lanes) || bound.max_id < 0 || after_id < 0) {
    return absl::InvalidArgumentError("not an export bound of this audit log");
  }
  // Keyset paging on (tenant_id, id) within a window of ids (forced: with
  // a time filter the optimizer may otherwise read by created_at and sort);
  // the values are validated integers.
  const FilterClause filter = FilterWhere(filters, "idx_audit_tenant_id");
  const ChainRowSelect* const rows = &SelectOf<ChainRowSelect>();
  const int64_t window_end = std::min(bound.max_id, after_id + kExportScanIds);
  std::string sql =
      absl::StrCat("SELECT ", rows->list.sql(), filter.where, " AND id > ",
                   after_id, " AND id <= ", window_end,
                   " AND ((seq IS NULL AND id <= ", bound.max_id, ")");
  for (size_t lane = 0; lane < bound.lanes.lane_seqs.size(); ++lane) {
    absl::StrAppend(&sql, " OR (chain_lane = ", lane,
                    " AND seq <= ", bound.lanes.lane_seqs[lane], ")");
  }
  absl::StrAppend(&sql, ") ORDER BY id LIMIT ", limit);
  ExportPageRows out;
  absl::Status st = Run(*pool_, "export audit events", [&](Session& s) {
    out = ExportPageRows();
    s.Step("export audit events");
    std::unique_ptr<sql::PreparedStatement> stmt = s.PrepareUncached(sql);
    int next = 0;
    if (absl::Status b = BindFilters(*stmt, tenant_id, filters, filter, &next);
        !b.ok()) {
      return b;
    }
    std::unique_ptr<sql::ResultSet> rs = s.Query(*stmt);
    while (rs->next()) {
      StoredChainRow row;
      absl::StatusOr<StoredAuditEvent> e = ReadEvent(*rs, rows->event);
      if (!e.ok()) return e.status();
      row.row = *std::move(e);
      row.prev_hash = OptionalDigest(*rs, rows->prev_hash);
      row.hash = OptionalDigest(*rs, rows->hash);
      row.hash_version = rs->getInt(rows->hash_version);
      out.rows.push_back(std::move(row));
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  out.next_after_id = out.rows.size() == static_cast<size_t>(limit)
                          ? out.rows.back().row.id
                          : window_end;
  out.done = out.next_after_id >= bound.max_id;
  return out;
}

namespace {

// The WHERE clause of a rollup read and its binding.
std::string UsageWhere(const UsageQuery& q, bool with_key) {
  std::string where =
      " WHERE tenant_id = ? AND bucket_start >= ? AND bucket_start < ?";
  if (with_key && q.key_id.has_value()) where += " AND key_id = ?";
  return where;
}

absl::Status BindUsageWhere(sql::PreparedStatement& stmt, int64_t tenant_id,
                            const UsageQuery& q, bool with_key) {
  stmt.setInt64(1, tenant_id);
  if (absl::Status b = BindTime(stmt, 2, q.from); !b.ok()) return b;
  if (absl::Status b = BindTime(stmt, 3, q.to); !b.ok()) return b;
  if (with_key && q.key_id.has_value()) stmt.setString(4, *q.key_id);
  return absl::OkStatus();
}

struct UsageRowSelect {
  SelectList list;
  int bucket = list.Add("bucket_start");
  int channel = list.Add("channel");
  int outcome = list.Add("outcome");
  int uses = list.Add("SUM(uses)");
};

constexpr char kCallsSum[] = "SUM(uses)";
constexpr char kFailuresSum[] =
    "SUM(CASE WHEN outcome = 'valid' THEN 0 ELSE uses END)";

struct KeyTotalSelect {
  SelectList list;
  int key_id = list.Add("key_id");
  int calls = list.Add(kCallsSum);
  int failures = list.Add(kFailuresSum);
};

}  // namespace

absl::StatusOr<std::vector<UsageRow>> MysqlAuditStore::ReadUsage(
    int64_t tenant_id, const UsageQuery& query) {
  if (query.from >= query.to) {
    return absl::InvalidArgumentError("usage range: from must be before to");
  }
  const UsageRowSelect* const cols = &SelectOf<UsageRowSelect>();
  std::vector<UsageRow> out;
  absl::Status st = Run(*pool_, "read usage", [&](Session& s) {
    out.clear();
    s.Step("read usage rollups");
    sql::PreparedStatement& stmt = s.Prepare(absl::StrCat(
        "SELECT ", cols->list.sql(), " FROM ", UsageTable(query.granularity),
        UsageWhere(query, true),
        " GROUP BY bucket_start, channel, outcome"
        " HAVING SUM(uses) > 0 ORDER BY bucket_start, channel, outcome"));
    if (absl::Status b = BindUsageWhere(stmt, tenant_id, query, true);
        !b.ok()) {
      return b;
    }
    std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
    while (rs->next()) {
      UsageRow row;
      absl::StatusOr<absl::Time> t = GetTime(*rs, cols->bucket);
      if (!t.ok()) return t.status();
      row.bucket_start = *t;
      row.channel = rs->getString(cols->channel).asStdString();
      row.outcome = rs->getString(cols->outcome).asStdString();
      row.count = rs->getInt64(cols->uses);
      out.push_back(std::move(row));
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<std::vector<KeyUsageTotal>> MysqlAuditStore::TopUsageKeys(
    int64_t tenant_id, const UsageQuery& query, bool by_failures, int limit) {
  if (query.from >= query.to || limit < 1) {
    return absl::InvalidArgumentError("usage range or limit out of range");
  }
  const KeyTotalSelect* const cols = &SelectOf<KeyTotalSelect>();
  std::vector<KeyUsageTotal> out;
  absl::Status st = Run(*pool_, "read top usage keys", [&](Session& s) {
    out.clear();
    const std::string order = by_failures ? kFailuresSum : kCallsSum;
    s.Step("read top usage keys");
    std::unique_ptr<sql::PreparedStatement> stmt = s.PrepareUncached(
        absl::StrCat("SELECT ", cols->list.sql(), " FROM ",
                     UsageTable(query.granularity), UsageWhere(query, false),
                     " GROUP BY key_id HAVING ", order, " > 0 ORDER BY ", order,
                     " DESC, key_id LIMIT ", limit));
    if (absl::Status b = BindUsageWhere(*stmt, tenant_id, query, false);
        !b.ok()) {
      return b;
    }
    std::unique_ptr<sql::ResultSet> rs = s.Query(*stmt);
    while (rs->next()) {
      KeyUsageTotal t;
      t.key_id = rs->getString(cols->key_id).asStdString();
      t.calls = rs->getInt64(cols->calls);
      t.failures = rs->getInt64(cols->failures);
      out.push_back(std::move(t));
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<int64_t> MysqlAuditStore::PurgeUsage(int hourly_days,
                                                    int daily_days) {
  if (hourly_days < 1 || daily_days < 1) {
    return absl::InvalidArgumentError("days must be at least 1");
  }
  // Chunks keep each statement's locks and undo small on a large backlog.
  constexpr int kChunk = 10000;
  int64_t deleted = 0;
  for (const auto& [g, days] :
       {std::pair{UsageGranularity::kHour, hourly_days},
        std::pair{UsageGranularity::kDay, daily_days}}) {
    while (true) {
      uint64_t n = 0;
      absl::Status st = Run(*pool_, "purge usage rollups", [&](Session& s) {
        s.Step("delete old usage buckets");
        sql::PreparedStatement& stmt = s.Prepare(absl::StrCat(
            "DELETE FROM ", UsageTable(g),
            " WHERE bucket_start < UTC_TIMESTAMP() - INTERVAL ? DAY LIMIT ",
            kChunk));
        stmt.setInt(1, days);
        n = s.Update(stmt);
        return absl::OkStatus();
      });
      if (!st.ok()) return st;
      deleted += static_cast<int64_t>(n);
      if (n < static_cast<uint64_t>(kChunk)) break;
    }
  }
  return deleted;
}

absl::StatusOr<std::vector<DayCount>> MysqlAuditStore::CountSuspiciousPerDay(
    int64_t tenant_id, absl::Time from, absl::Time to) {
  if (from >= to || UsageBucketStart(from, UsageGranularity::kDay) != from ||
      UsageBucketStart(to, UsageGranularity::kDay) != to) {
    return absl::InvalidArgumentError("from and to must be UTC midnights");
  }
  std::vector<DayCount> out;
  absl::Status st =
      Run(*pool_, "count suspicious audit events", [&](Session& s) {
        out.clear();
        s.Step("count suspicious audit events");
        // The (tenant_id, suspicious, id) index holds the tenant's suspicious
        // rows; the range is checked on them.
        sql::PreparedStatement& stmt = s.Prepare(
            "SELECT CAST(DATE(created_at) AS DATETIME(6)) AS day, COUNT(*)"
            " FROM audit_events WHERE tenant_id = ? AND suspicious = 1"
            " AND created_at >= ? AND created_at < ?"
            " GROUP BY CAST(DATE(created_at) AS DATETIME(6))"
            " ORDER BY CAST(DATE(created_at) AS DATETIME(6))");
        stmt.setInt64(1, tenant_id);
        if (absl::Status b = BindTime(stmt, 2, from); !b.ok()) return b;
        if (absl::Status b = BindTime(stmt, 3, to); !b.ok()) return b;
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        while (rs->next()) {
          absl::StatusOr<absl::Time> day = GetTime(*rs, 1);
          if (!day.ok()) return day.status();
          out.push_back(DayCount{*day, rs->getInt64(2)});
        }
        return absl::OkStatus();
      });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<std::vector<PreviousSecretUser>>
MysqlAuditStore::ListPreviousSecretUsers(int64_t tenant_id,
                                         absl::string_view key_id,
                                         absl::Time rotated_at, int limit) {
  if (limit < 1 || limit > 100) {
    return absl::InvalidArgumentError("limit must be 1..100");
  }
  std::vector<PreviousSecretUser> out;
  absl::Status st = Run(*pool_, "list previous secret users", [&](Session& s) {
    out.clear();
    s.Step("list previous secret users");
    // The primary key's (key_id, rotated_at) prefix holds the rotation's
    // tallies: at most one per client, sorted in memory.
    const PreviousUserSelect& c = SelectOf<PreviousUserSelect>();
    sql::PreparedStatement& stmt = s.Prepare(
        absl::StrCat("SELECT ", c.list.sql(),
                     " FROM previous_secret_uses"
                     " WHERE key_id = ? AND rotated_at = ? AND tenant_id = ?"
                     " ORDER BY last_seen_at DESC, ip_address, user_agent_hash"
                     " LIMIT ?"));
    stmt.setString(1, std::string(key_id));
    if (absl::Status b = BindTime(stmt, 2, rotated_at); !b.ok()) return b;
    stmt.setInt64(3, tenant_id);
    stmt.setInt(4, limit);
    std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
    while (rs->next()) {
      PreviousSecretUser u;
      u.ip_address = rs->getString(c.ip_address);
      u.user_agent = rs->getString(c.user_agent);
      absl::StatusOr<absl::Time> seen = GetTime(*rs, c.last_seen_at);
      if (!seen.ok()) return seen.status();
      u.last_seen_at = *seen;
      u.count = rs->getInt64(c.uses);
      out.push_back(std::move(u));
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

}  // namespace lumo::storage
