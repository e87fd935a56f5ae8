#include "server/storage/mysql/mysql_change_feed_store.h"

#include <cppconn/datatype.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <limits>
#include <string>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/validation.h"
#include "server/fault/fault_points.h"
#include "server/storage/mysql/mysql_session.h"
#include "server/storage/mysql/select_list.h"

namespace lumo::storage {

namespace {

int64_t Micros(absl::Duration d) { return absl::ToInt64Microseconds(d); }

// The key_changes columns both feed reads select from their derived table
// `k`, added to a select list in this order.
struct ChangeColumns {
  explicit ChangeColumns(SelectList& list)
      : seq(list.Add("k.seq")),
        tenant_id(list.Add("k.tenant_id")),
        key_id(list.Add("k.key_id")),
        change_type(list.Add("k.change_type")),
        key_version(list.Add("k.key_version")),
        created_at(list.Add("k.created_at")) {}
  int seq;
  int tenant_id;
  int key_id;
  int change_type;
  int key_version;
  int created_at;
};

absl::Status ReadChange(const sql::ResultSet& rs, const ChangeColumns& c,
                        KeyChange* change) {
  change->seq = rs.getInt64(c.seq);
  change->tenant_id = rs.getInt64(c.tenant_id);
  change->key_id = rs.getString(c.key_id).asStdString();
  change->change_type = rs.getString(c.change_type).asStdString();
  change->key_version = rs.getInt64(c.key_version);
  absl::StatusOr<absl::Time> created = GetTime(rs, c.created_at);
  if (!created.ok()) return created.status();
  change->created_at = *created;
  return absl::OkStatus();
}

// The columns of the one-row derived table `m` both feed reads start with:
// the longest gap timeout of any replica and the database clock.
constexpr char kFeedReadClock[] =
    "(SELECT COALESCE(MAX(gap_timeout_us), 0) FROM replicas) AS gap_us,"
    " UTC_TIMESTAMP(6) AS now";

// The rows after a position, the anchor check, the longest gap timeout and
// the database clock in one statement (one consistent view). The derived
// table `m` always has one row, so the read returns at least one row even
// when the feed has nothing new (then the k columns are NULL).
struct ReadChangesSelect {
  SelectList list;
  int gap_us = list.Add("m.gap_us");
  int now = list.Add("m.now");
  int anchor_ok = list.Add("m.anchor_ok");
  ChangeColumns k{list};
  std::string sql = absl::StrCat(
      "SELECT ", list.sql(), " FROM (SELECT ", kFeedReadClock,
      ", (? = 0 OR EXISTS (SELECT 1 FROM key_changes a WHERE a.seq = ?"
      " AND a.created_at = ?)) AS anchor_ok) m"
      " LEFT JOIN (SELECT seq, tenant_id, key_id, change_type, key_version,"
      " created_at FROM key_changes WHERE seq > ? ORDER BY seq LIMIT ?) k"
      " ON 1 = 1 ORDER BY k.seq");
};

// Reads a feed read's result: the kFeedReadClock columns of its first row
// into `out` (a FeedRead or a StreamRead), then `row` on every row (the
// first one too). INTERNAL when there is no row: the derived table `m`
// always gives one.
template <typename Select, typename Read>
absl::Status ReadFeedRows(
    sql::ResultSet& rs, const Select& c, Read* out,
    absl::FunctionRef<absl::Status(const sql::ResultSet&, bool first)> row) {
  bool first = true;
  while (rs.next()) {
    if (first) {
      out->max_gap_timeout = absl::Microseconds(rs.getInt64(c.gap_us));
      absl::StatusOr<absl::Time> now = GetTime(rs, c.now);
      if (!now.ok()) return now.status();
      out->db_now = *now;
    }
    if (absl::Status st = row(rs, first); !st.ok()) return st;
    first = false;
  }
  if (first) return absl::InternalError("the feed read returned no row");
  return absl::OkStatus();
}

// The lowest position among the live peers an acknowledgement query found;
// INT64_MAX when it found none.
template <typename Select>
int64_t LowestOfLivePeers(sql::ResultSet& rs, const Select& c) {
  if (!rs.next() || rs.getInt64(c.live_peers) == 0) {
    return std::numeric_limits<int64_t>::max();
  }
  return rs.getInt64(c.applied);
}

// A feed position.
struct PositionSelect {
  SelectList list;
  int seq = list.Add("seq");
  int created_at = list.Add("created_at");
};

// A live replica whose anchor row is gone or replaced has applied nothing
// of the feed as it is now.
constexpr char kAppliedUnderTheAnchorRule[] =
    "CASE WHEN r.anchor_seq = 0 OR EXISTS"
    " (SELECT 1 FROM key_changes k WHERE k.seq = r.anchor_seq"
    " AND k.created_at = r.anchor_created_at) THEN r.applied_seq ELSE -1"
    " END";
struct AcknowledgedSelect {
  SelectList list;
  int live_peers = list.Add("COUNT(*)");
  int applied = list.Add(absl::StrCat("MIN(", kAppliedUnderTheAnchorRule, ")"));
  std::string sql =
      absl::StrCat("SELECT ", list.sql(),
                   " FROM replicas r WHERE NOT (r.id = ? AND r.incarnation = ?)"
                   " AND r.heartbeat_at + INTERVAL r.lease_us MICROSECOND >"
                   " UTC_TIMESTAMP(6)");
};

// The registered writers with the reader's published position in each, and
// up to a limit of rows of each stream above it, with the longest gap
// timeout and the database clock, in one statement. The derived table `m`
// always has one row, so the read returns a row even without writers (then
// the w and k columns are NULL), and a writer without new rows gives one
// row with NULL k columns.
//
// The stream rows (`k`) come from two parts. Writers the read has a lower
// bound for (`hinted`: each a (writer, wseq) pair, the position the reader
// had published when the store last read for it) are read by a range of
// the (writer, wseq) index above that bound, so a poll reads the new rows
// only, not the whole stream: the condition on the published position
// (`cp`) cannot bound an index range, as it is joined per row. Every other
// registered writer (new since the last read, or no bound yet) is read as
// before, above its published position. Both parts keep the published
// position's condition, so the rows are those above it whenever each bound
// is at most the published position; ReadStreams checks that.
struct ReadStreamsSelect {
  SelectList list;
  int gap_us = list.Add("m.gap_us");
  int now = list.Add("m.now");
  int writer = list.Add("w.incarnation");
  int published = list.Add("COALESCE(p.applied_wseq, 0)");
  ChangeColumns k{list};
  int wseq = list.Add("k.wseq");

  // Parameters: reader id and incarnation; then the `k` part's (see
  // StreamRows); then the limit.
  std::string Sql(size_t hinted) const {
    return absl::StrCat(
        "SELECT ", list.sql(), " FROM (SELECT ", kFeedReadClock,
        ") m"
        " LEFT JOIN (SELECT DISTINCT incarnation FROM replicas"
        " WHERE incarnation <> '') w ON 1 = 1"
        " LEFT JOIN feed_positions p ON p.reader_id = ?"
        " AND p.reader_incarnation = ? AND p.writer = w.incarnation"
        " LEFT JOIN (SELECT u.*, ROW_NUMBER() OVER"
        " (PARTITION BY u.writer ORDER BY u.wseq) AS n FROM (",
        StreamRows(hinted),
        ") u) k"
        " ON k.writer = w.incarnation AND k.n <= ?"
        " ORDER BY w.incarnation, k.wseq");
  }

  // Parameters: with `hinted` > 0, reader id and incarnation, then writer
  // and bound for each hinted writer; then reader id and incarnation, then
  // each hinted writer.
  static std::string StreamRows(size_t hinted) {
    constexpr char kRows[] =
        "SELECT c.seq, c.writer, c.wseq, c.tenant_id, c.key_id,"
        " c.change_type, c.key_version, c.created_at FROM key_changes c"
        " LEFT JOIN feed_positions cp ON cp.reader_id = ?"
        " AND cp.reader_incarnation = ? AND cp.writer = c.writer WHERE ";
    constexpr char kAbovePublished[] =
        " AND c.wseq > COALESCE(cp.applied_wseq, 0)";
    std::string out;
    std::string not_hinted;
    if (hinted > 0) {
      std::vector<std::string> ranges(hinted, "(c.writer = ? AND c.wseq > ?)");
      absl::StrAppend(&out, kRows, "(", absl::StrJoin(ranges, " OR "), ")",
                      kAbovePublished, " UNION ALL ");
      std::vector<std::string> marks(hinted, "?");
      not_hinted = absl::StrCat(" AND incarnation NOT IN (",
                                absl::StrJoin(marks, ", "), ")");
    }
    absl::StrAppend(&out, kRows,
                    "c.writer IN (SELECT incarnation FROM replicas"
                    " WHERE incarnation <> ''",
                    not_hinted, ")", kAbovePublished);
    return out;
  }
};
// What the live replicas other than the caller acknowledged of one writer's
// stream: the lowest position among those that publish stream positions
// (none published: 0), the lowest applied_seq under the anchor rule among
// those of a release before streams (feed_streams = 0), and the feed head,
// in one statement.
struct StreamAcknowledgedSelect {
  SelectList list;
  int stream_peers =
      list.Add("COUNT(CASE WHEN r.feed_streams <> 0 THEN 1 END)");
  int through = list.Add(
      "MIN(CASE WHEN r.feed_streams <> 0 THEN COALESCE(p.applied_wseq, 0)"
      " END)");
  int legacy_peers = list.Add("COUNT(CASE WHEN r.feed_streams = 0 THEN 1 END)");
  int legacy_through =
      list.Add(absl::StrCat("MIN(CASE WHEN r.feed_streams = 0 THEN ",
                            kAppliedUnderTheAnchorRule, " END)"));
  int head = list.Add("(SELECT COALESCE(MAX(seq), 0) FROM key_changes)");
  std::string sql = absl::StrCat(
      "SELECT ", list.sql(),
      " FROM replicas r LEFT JOIN feed_positions p ON p.reader_id = r.id"
      " AND p.reader_incarnation = r.incarnation AND p.writer = ?"
      " WHERE NOT (r.id = ? AND r.incarnation = ?)"
      " AND r.heartbeat_at + INTERVAL r.lease_us MICROSECOND >"
      " UTC_TIMESTAMP(6)");
};

// The single value of a query without parameters that returns one row.
absl::StatusOr<int64_t> QueryInt64(ConnectionPool& pool, absl::string_view what,
                                   const std::string& sql) {
  int64_t value = 0;
  absl::Status status = Run(pool, what, [&](Session& s) -> absl::Status {
    std::unique_ptr<sql::ResultSet> rs = s.Query(s.Prepare(sql));
    if (!rs->next()) return absl::InternalError("the query returned no row");
    value = rs->getInt64(1);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return value;
}

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

absl::StatusOr<FeedRead> MysqlChangeFeedStore::ReadChanges(
    int64_t after, const FeedPosition& anchor, int limit) {
  FeedRead out;
  absl::Status status =
      Run(*pool_, "read key changes", [&](Session& s) -> absl::Status {
        out = FeedRead();
        const ReadChangesSelect& c = SelectOf<ReadChangesSelect>();
        sql::PreparedStatement& stmt = s.Prepare(c.sql);
        stmt.setInt64(1, anchor.seq);
        stmt.setInt64(2, anchor.seq);
        if (absl::Status st = BindTime(stmt, 3, anchor.created_at); !st.ok()) {
          return st;
        }
        stmt.setInt64(4, after);
        stmt.setInt(5, limit);
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        return ReadFeedRows(
            *rs, c, &out,
            [&](const sql::ResultSet& row, bool first) -> absl::Status {
              if (first) out.anchor_intact = row.getInt(c.anchor_ok) != 0;
              if (row.isNull(c.k.seq)) return absl::OkStatus();  // nothing new
              KeyChange change;
              if (absl::Status st = ReadChange(row, c.k, &change); !st.ok()) {
                return st;
              }
              out.changes.push_back(std::move(change));
              return absl::OkStatus();
            });
      });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<int64_t> MysqlChangeFeedStore::Head() {
  return QueryInt64(*pool_, "read feed head",
                    "SELECT COALESCE(MAX(seq), 0) FROM key_changes");
}

absl::StatusOr<absl::Duration> MysqlChangeFeedStore::MaxGapTimeout() {
  absl::StatusOr<int64_t> micros =
      QueryInt64(*pool_, "read gap timeouts",
                 "SELECT COALESCE(MAX(gap_timeout_us), 0) FROM replicas");
  if (!micros.ok()) return micros.status();
  return absl::Microseconds(*micros);
}

absl::StatusOr<FeedPosition> MysqlChangeFeedStore::StartingPoint(
    absl::Duration lookback) {
  FeedPosition position;
  absl::Status status =
      Run(*pool_, "find feed start", [&](Session& s) -> absl::Status {
        position = FeedPosition();
        const PositionSelect& c = SelectOf<PositionSelect>();
        sql::PreparedStatement& stmt = s.Prepare(
            absl::StrCat("SELECT ", c.list.sql(),
                         " FROM key_changes WHERE created_at <"
                         " UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND"
                         " ORDER BY created_at DESC, seq DESC LIMIT 1"));
        stmt.setInt64(1, Micros(lookback));
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        if (!rs->next()) return absl::OkStatus();
        position.seq = rs->getInt64(c.seq);
        absl::StatusOr<absl::Time> created = GetTime(*rs, c.created_at);
        if (!created.ok()) return created.status();
        position.created_at = *created;
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return position;
}

absl::StatusOr<int64_t> MysqlChangeFeedStore::Announce(
    const KeyChange& change) {
  int64_t seq = 0;
  absl::Status status = Run(
      *pool_, "announce key change", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        s.Begin();
        s.Step("insert key change");
        sql::PreparedStatement& insert = s.Prepare(
            "INSERT INTO key_changes (writer, wseq, tenant_id, key_id,"
            " change_type, key_version, announcement, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, 1, UTC_TIMESTAMP(6))");
        insert.setString(1, change.writer);
        if (change.writer.empty()) {
          insert.setNull(2, sql::DataType::BIGINT);
        } else {
          insert.setInt64(2, change.wseq);
        }
        insert.setInt64(3, change.tenant_id);
        insert.setString(4, change.key_id);
        insert.setString(5, change.change_type);
        insert.setInt64(6, change.key_version);
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
  return Run(
      *pool_, "register replica", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        s.Step("prune replicas");
        sql::PreparedStatement& prune = s.Prepare(
            "DELETE FROM replicas WHERE heartbeat_at < UTC_TIMESTAMP(6) -"
            " INTERVAL (lease_us + ?) MICROSECOND");
        prune.setInt64(1, Micros(prune_after));
        s.Update(prune);
        s.Step("insert replica");
        sql::PreparedStatement& insert = s.Prepare(
            "REPLACE INTO replicas (id, incarnation, address, hostname, pid,"
            " started_at, heartbeat_at, lease_us, gap_timeout_us, applied_seq,"
            " anchor_seq, anchor_created_at, feed_streams) VALUES (?, ?, ?, ?,"
            " ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?, ?, ?, ?, ?, ?)");
        insert.setString(1, replica.name.id);
        insert.setString(2, replica.name.incarnation);
        insert.setString(3, core::TruncateUtf8(replica.address, 255));
        insert.setString(4, core::TruncateUtf8(replica.hostname, 255));
        insert.setInt64(5, replica.pid);
        insert.setInt64(6, Micros(replica.lease));
        insert.setInt64(7, Micros(replica.gap_timeout));
        insert.setInt64(8, replica.applied_seq);
        insert.setInt64(9, replica.anchor.seq);
        if (absl::Status st = BindTime(insert, 10, replica.anchor.created_at);
            !st.ok()) {
          return st;
        }
        insert.setInt(11, replica.feed_streams ? 1 : 0);
        s.Update(insert);
        s.Step("prune stream positions");
        s.Update(s.Prepare(
            "DELETE FROM feed_positions WHERE NOT EXISTS (SELECT 1 FROM"
            " replicas r WHERE r.id = feed_positions.reader_id AND"
            " r.incarnation = feed_positions.reader_incarnation) OR NOT"
            " EXISTS (SELECT 1 FROM replicas w WHERE w.incarnation ="
            " feed_positions.writer)"));
        return absl::OkStatus();
      });
}

absl::Status MysqlChangeFeedStore::Heartbeat(const ReplicaName& replica,
                                             int64_t applied_seq,
                                             const FeedPosition& anchor) {
  return Run(*pool_, "replica heartbeat", OnConflict::kRetry,
             [&](Session& s) -> absl::Status {
               sql::PreparedStatement& stmt = s.Prepare(
                   "UPDATE replicas SET heartbeat_at = UTC_TIMESTAMP(6), "
                   "applied_seq = ?,"
                   " anchor_seq = ?, anchor_created_at = ?"
                   " WHERE id = ? AND incarnation = ?");
               stmt.setInt64(1, applied_seq);
               stmt.setInt64(2, anchor.seq);
               if (absl::Status st = BindTime(stmt, 3, anchor.created_at);
                   !st.ok()) {
                 return st;
               }
               stmt.setString(4, replica.id);
               stmt.setString(5, replica.incarnation);
               // CLIENT_FOUND_ROWS is not set: an unchanged row still counts
               // because heartbeat_at always changes.
               if (s.Update(stmt) == 0) {
                 return absl::NotFoundError("replica row is gone");
               }
               return absl::OkStatus();
             });
}

absl::Status MysqlChangeFeedStore::Deregister(const ReplicaName& replica) {
  return Run(*pool_, "deregister replica", OnConflict::kRetry,
             [&](Session& s) -> absl::Status {
               s.Begin();
               s.Step("delete replica");
               sql::PreparedStatement& stmt = s.Prepare(
                   "DELETE FROM replicas WHERE id = ? AND incarnation = ?");
               stmt.setString(1, replica.id);
               stmt.setString(2, replica.incarnation);
               s.Update(stmt);
               s.Step("delete stream positions");
               sql::PreparedStatement& positions = s.Prepare(
                   "DELETE FROM feed_positions WHERE reader_id = ? AND"
                   " reader_incarnation = ?");
               positions.setString(1, replica.id);
               positions.setString(2, replica.incarnation);
               s.Update(positions);
               s.Commit();
               return absl::OkStatus();
             });
}

absl::StatusOr<int64_t> MysqlChangeFeedStore::AcknowledgedThrough(
    const ReplicaName& self) {
  int64_t through = 0;
  absl::Status status =
      Run(*pool_, "read acknowledgements", [&](Session& s) -> absl::Status {
        if (absl::Status st = fault::kAckQuery.Hit(self.id); !st.ok()) {
          return st;
        }
        const AcknowledgedSelect& c = SelectOf<AcknowledgedSelect>();
        sql::PreparedStatement& stmt = s.Prepare(c.sql);
        stmt.setString(1, self.id);
        stmt.setString(2, self.incarnation);
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        through = LowestOfLivePeers(*rs, c);
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return through;
}

absl::StatusOr<StreamRead> MysqlChangeFeedStore::ReadStreams(
    const ReplicaName& reader, int limit) {
  const std::string reader_key =
      absl::StrCat(reader.id, std::string(1, '\0'), reader.incarnation);
  std::vector<StreamPosition> hints;
  {
    absl::MutexLock lock(&hints_mu_);
    auto it = hints_.find(reader_key);
    if (it != hints_.end()) hints = it->second;
  }
  const ReadStreamsSelect& c = SelectOf<ReadStreamsSelect>();
  StreamRead out;
  // A bound above a published position (a restored feed_positions) would
  // hide rows: then the read runs again without bounds.
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool bound_too_high = false;
    absl::Status status =
        Run(*pool_, "read key change streams", [&](Session& s) -> absl::Status {
          out = StreamRead();
          bound_too_high = false;
          sql::PreparedStatement& stmt = s.Prepare(c.Sql(hints.size()));
          int i = 1;
          stmt.setString(i++, reader.id);
          stmt.setString(i++, reader.incarnation);
          if (!hints.empty()) {
            stmt.setString(i++, reader.id);
            stmt.setString(i++, reader.incarnation);
            for (const StreamPosition& h : hints) {
              stmt.setString(i++, h.writer);
              stmt.setInt64(i++, h.wseq);
            }
          }
          stmt.setString(i++, reader.id);
          stmt.setString(i++, reader.incarnation);
          for (const StreamPosition& h : hints) stmt.setString(i++, h.writer);
          stmt.setInt(i++, limit);
          std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
          return ReadFeedRows(
              *rs, c, &out,
              [&](const sql::ResultSet& row, bool) -> absl::Status {
                if (row.isNull(c.writer)) return absl::OkStatus();
                const std::string writer =
                    row.getString(c.writer).asStdString();
                if (out.published.empty() ||
                    out.published.back().writer != writer) {
                  out.published.push_back({writer, row.getInt64(c.published)});
                }
                if (row.isNull(c.k.seq)) return absl::OkStatus();
                KeyChange change;
                if (absl::Status st = ReadChange(row, c.k, &change); !st.ok()) {
                  return st;
                }
                change.writer = writer;
                change.wseq = row.getInt64(c.wseq);
                out.changes.push_back(std::move(change));
                return absl::OkStatus();
              });
        });
    if (!status.ok()) return status;
    for (const StreamPosition& p : out.published) {
      for (const StreamPosition& h : hints) {
        if (h.writer == p.writer && h.wseq > p.wseq) bound_too_high = true;
      }
    }
    if (!bound_too_high) break;
    hints.clear();
  }
  {
    // The next read's bounds: the positions just read, for the writers
    // registered now (those that left take their bound with them).
    absl::MutexLock lock(&hints_mu_);
    hints_[reader_key] = out.published;
  }
  return out;
}

absl::Status MysqlChangeFeedStore::PublishPositions(
    const ReplicaName& reader, const std::vector<StreamPosition>& positions) {
  if (positions.empty()) return absl::OkStatus();
  return Run(*pool_, "publish stream positions", OnConflict::kRetry,
             [&](Session& s) -> absl::Status {
               // One position (the usual round: one writer's stream moved)
               // is one autocommit statement. No BEGIN: on a cluster a BEGIN
               // first waits for causality (wsrep_sync_wait), a round trip
               // the acknowledgement waiting on this position does not need.
               const bool transaction = positions.size() > 1;
               if (transaction) s.Begin();
               s.Step("upsert stream position");
               sql::PreparedStatement& upsert = s.Prepare(
                   "INSERT INTO feed_positions (reader_id, reader_incarnation,"
                   " writer, applied_wseq) VALUES (?, ?, ?, ?)"
                   " ON DUPLICATE KEY UPDATE applied_wseq = ?");
               for (const StreamPosition& position : positions) {
                 upsert.setString(1, reader.id);
                 upsert.setString(2, reader.incarnation);
                 upsert.setString(3, position.writer);
                 upsert.setInt64(4, position.wseq);
                 upsert.setInt64(5, position.wseq);
                 s.Update(upsert);
               }
               if (transaction) s.Commit();
               return absl::OkStatus();
             });
}

absl::Status MysqlChangeFeedStore::AppendVoid(const StreamPosition& slot) {
  return InsertVoidRow(*pool_, slot.writer, slot.wseq);
}

absl::StatusOr<StreamAcknowledgement> MysqlChangeFeedStore::AcknowledgeStream(
    const ReplicaName& self, absl::string_view writer) {
  StreamAcknowledgement out;
  absl::Status status = Run(
      *pool_, "read stream acknowledgements", [&](Session& s) -> absl::Status {
        const StreamAcknowledgedSelect& c =
            SelectOf<StreamAcknowledgedSelect>();
        sql::PreparedStatement& stmt = s.Prepare(c.sql);
        stmt.setString(1, std::string(writer));
        stmt.setString(2, self.id);
        stmt.setString(3, self.incarnation);
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        if (!rs->next())
          return absl::InternalError("the query returned no row");
        constexpr int64_t kNobody = std::numeric_limits<int64_t>::max();
        out.through = rs->getInt64(c.stream_peers) == 0
                          ? kNobody
                          : rs->getInt64(c.through);
        out.legacy_through = rs->getInt64(c.legacy_peers) == 0
                                 ? kNobody
                                 : rs->getInt64(c.legacy_through);
        out.head = rs->getInt64(c.head);
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<int64_t> MysqlChangeFeedStore::LiveReplicas() {
  return QueryInt64(*pool_, "count live replicas",
                    "SELECT COUNT(*) FROM replicas r WHERE r.heartbeat_at +"
                    " INTERVAL r.lease_us MICROSECOND > UTC_TIMESTAMP(6)");
}

}  // namespace lumo::storage
