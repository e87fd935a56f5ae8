#include "server/storage/mysql/mysql_session.h"

#include <cppconn/datatype.h>
#include <cppconn/exception.h>

#include <exception>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "server/storage/audit_chain.h"
#include "server/storage/call_deadline.h"
#include "server/storage/mysql/datetime.h"
#include "server/storage/mysql/mysql_audit_chain.h"
#include "server/storage/mysql/mysql_webhook_outbox.h"
#include "server/storage/mysql/sql_error.h"

namespace lumo::storage {
namespace {

constexpr char kInsertAuditSql[] =
    "INSERT INTO audit_events (tenant_id, action, category, actor_type,"
    " actor_id, target_type, target_id, outcome, suspicious, ip_address,"
    " user_agent, request_id, metadata, created_at, seq, chain_lane,"
    " prev_hash, hash, hash_version)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

// ER_SP_DOES_NOT_EXIST: also "SAVEPOINT ... does not exist".
constexpr int kErSavepointMissing = 1305;
// ER_LOCK_DEADLOCK: the server rolled the transaction back (a deadlock
// victim or a certification conflict).
constexpr int kErDeadlock = 1213;

// The savepoint Begin sets and Commit releases (Session::Commit).
constexpr char kMarkTransactionSql[] = "SAVEPOINT lumo_transaction";
constexpr char kReleaseTransactionSql[] = "RELEASE SAVEPOINT lumo_transaction";

// Rolls the session's transaction back; false when ROLLBACK failed (the
// transaction may still be open: the caller must not reuse the
// connection).
bool TryRollback(Session& session) {
  try {
    session.Rollback();
    return true;
  } catch (const sql::SQLException&) {
    return false;
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Session

std::unique_ptr<sql::ResultSet> Session::Query(sql::PreparedStatement& stmt) {
  Flush();
  return conn_.Query(stmt);
}

uint64_t Session::Update(sql::PreparedStatement& stmt) {
  Flush();
  return conn_.Update(stmt);
}

namespace {

// The statement observer (connection_pool.h) sees a queued statement as
// written and with literals of its values' kinds in place.
void ObserveQueued(const std::string& sql, const SqlValues& values) {
  if (internal::statement_observer.load(std::memory_order_relaxed) == nullptr) {
    return;
  }
  internal::ObserveStatement(sql);
  if (values.size() > 0) internal::ObserveStatement(values.Shape(sql));
}

constexpr char kRowCountSql[] = "SELECT ROW_COUNT()";

}  // namespace

absl::Status Session::Defer(absl::string_view step, const std::string& sql,
                            const SqlValues& values) {
  absl::StatusOr<std::string> text = values.Render(sql);
  if (!text.ok()) return text.status();
  ObserveQueued(sql, values);
  queued_.push_back(Queued{std::string(step), *std::move(text), std::nullopt,
                           absl::OkStatus()});
  return absl::OkStatus();
}

absl::Status Session::DeferChecked(absl::string_view step,
                                   const std::string& sql,
                                   const SqlValues& values, uint64_t rows,
                                   absl::Status mismatch) {
  if (absl::Status st = Defer(step, sql, values); !st.ok()) return st;
  internal::ObserveStatement(kRowCountSql);
  queued_.back().rows = rows;
  queued_.back().mismatch = std::move(mismatch);
  return absl::OkStatus();
}

absl::Status Session::DeferQuery(absl::string_view step, const std::string& sql,
                                 const SqlValues& values,
                                 std::function<void(sql::ResultSet&)> on_rows) {
  if (absl::Status st = Defer(step, sql, values); !st.ok()) return st;
  queued_.back().on_rows = std::move(on_rows);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<sql::ResultSet>> Session::QueryWithQueued(
    absl::string_view step, const std::string& sql, const SqlValues& values) {
  absl::StatusOr<std::string> text = values.Render(sql);
  if (!text.ok()) return text.status();
  ObserveQueued(sql, values);
  const Queued query{std::string(step), *std::move(text), std::nullopt,
                     absl::OkStatus()};
  return SendQueued(&query);
}

void Session::Flush() { SendQueued(nullptr); }

std::unique_ptr<sql::ResultSet> Session::SendQueued(const Queued* last,
                                                    size_t* failed_entry) {
  if (queued_.empty() && last == nullptr) return nullptr;
  std::vector<Queued> queued = std::move(queued_);
  queued_.clear();
  if (last != nullptr) queued.push_back(*last);
  // The statements as sent: each checked one is followed by its row count.
  std::vector<std::string> texts;
  std::vector<size_t> entry;   // the queued statement of each text
  std::vector<bool> is_count;  // the text is a row count
  for (size_t i = 0; i < queued.size(); ++i) {
    texts.push_back(queued[i].text);
    entry.push_back(i);
    is_count.push_back(false);
    if (queued[i].rows.has_value()) {
      texts.push_back(kRowCountSql);
      entry.push_back(i);
      is_count.push_back(true);
    }
  }
  std::optional<absl::Status> mismatch;
  auto check = [&](size_t index, sql::ResultSet& rs) {
    if (!is_count[index]) {
      const Queued& q = queued[entry[index]];
      if (q.on_rows != nullptr) q.on_rows(rs);
      return;
    }
    if (mismatch.has_value()) return;
    const Queued& q = queued[entry[index]];
    if (!rs.next() || rs.getInt64(1) != static_cast<int64_t>(*q.rows)) {
      mismatch = q.mismatch;
    }
  };
  size_t failed = 0;
  std::unique_ptr<sql::ResultSet> rows;
  try {
    rows = conn_.ExecuteBatch(texts, check, &failed);
    // The last statement's rows come back instead of being checked: a
    // flush that ends with a checked statement ends with its row count, one
    // that ends with a queued query with its rows.
    if (rows != nullptr && (is_count.back() || last == nullptr)) {
      check(texts.size() - 1, *rows);
      rows.reset();
    }
  } catch (const sql::SQLException&) {
    step_ = queued[entry[failed]].step;
    if (failed_entry != nullptr) *failed_entry = entry[failed];
    throw;
  }
  if (mismatch.has_value()) throw RowCountMismatch(*std::move(mismatch));
  if (last != nullptr) step_ = last->step;
  return rows;
}

void Session::Begin() {
  internal::ObserveStatement("START TRANSACTION");
  queued_.push_back(Queued{"start transaction", "START TRANSACTION",
                           std::nullopt, absl::OkStatus()});
  // The savepoint that marks a transaction Begin started.
  internal::ObserveStatement(kMarkTransactionSql);
  queued_.push_back(Queued{"mark transaction", kMarkTransactionSql,
                           std::nullopt, absl::OkStatus()});
  in_transaction_ = true;
}

void Session::Commit() {
  for (const Queued& q : queued_) {
    if (q.rows.has_value()) {
      Flush();
      break;
    }
  }
  // A multi-statement stops at its first error: when the savepoint is gone
  // the COMMIT after its release does not run.
  internal::ObserveStatement(kReleaseTransactionSql);
  queued_.push_back(Queued{"check transaction", kReleaseTransactionSql,
                           std::nullopt, absl::OkStatus()});
  internal::ObserveStatement("COMMIT");
  const Queued commit{"commit", "COMMIT", std::nullopt, absl::OkStatus()};
  // From here a lost connection leaves the outcome unknown: the round trip
  // that carries the COMMIT may have reached the server.
  commit_sent_ = true;
  const size_t release = queued_.size() - 1;
  size_t failed = 0;
  try {
    SendQueued(&commit, &failed);
  } catch (const sql::SQLException& e) {
    if (IsConnectionLevelError(e.getErrorCode()) || failed > release) throw;
    // The server answered an error for a statement before COMMIT, so the
    // COMMIT did not run.
    commit_sent_ = false;
    if (failed != release || e.getErrorCode() != kErSavepointMissing) throw;
    // Whatever ran after the transaction's end (its own autocommits, or a
    // new implicit transaction that Run now rolls back) is not this
    // transaction; the body runs again or the caller gets ABORTED.
    throw sql::SQLException(
        "the transaction was rolled back before its COMMIT without an error "
        "(a conflicting write from another node)",
        "40001", kErDeadlock);
  }
  in_transaction_ = false;
  if (outbox_written_ && outbox_signal_ != nullptr) outbox_signal_->Raise();
  outbox_written_ = false;
}

void Session::Rollback() {
  queued_.clear();
  if (!fault::kSessionRollback.Hit().ok()) {
    throw sql::SQLException("injected ROLLBACK failure", "70100",
                            kInjectedStatementError);
  }
  conn_.Execute("ROLLBACK");
  in_transaction_ = false;
  outbox_written_ = false;
}

// Joins list values with `sep`; INVALID_ARGUMENT when a value contains the
// separator (it would split differently when read back).
absl::StatusOr<std::string> JoinList(const std::vector<std::string>& values,
                                     char sep, absl::string_view field) {
  for (const std::string& v : values) {
    if (v.empty() || v.find(sep) != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " contains an empty value or a '", std::string(1, sep), "'"));
    }
  }
  return absl::StrJoin(values, std::string(1, sep));
}

std::vector<std::string> SplitList(const sql::SQLString& text, char sep) {
  return absl::StrSplit(text.asStdString(), sep, absl::SkipEmpty());
}

// Escapes LIKE wildcards; the statements declare ESCAPE '!', which (unlike
// '\') means the same under every sql_mode.
std::string EscapeLike(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '!' || c == '%' || c == '_') out.push_back('!');
    out.push_back(c);
  }
  return out;
}

// Binds a time or NULL. INVALID_ARGUMENT outside DATETIME's range.
absl::Status BindTime(sql::PreparedStatement& stmt, int index,
                      std::optional<absl::Time> t) {
  if (!t.has_value()) {
    stmt.setNull(index, sql::DataType::TIMESTAMP);
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> text = FormatDatetime(*t);
  if (!text.ok()) return text.status();
  stmt.setString(index, *text);
  return absl::OkStatus();
}

absl::StatusOr<absl::Time> GetTime(const sql::ResultSet& rs, int column) {
  return ParseDatetime(rs.getString(column).asStdString());
}

absl::StatusOr<std::optional<absl::Time>> GetOptionalTime(
    const sql::ResultSet& rs, int column) {
  if (rs.isNull(column)) return std::optional<absl::Time>();
  absl::StatusOr<absl::Time> t = GetTime(rs, column);
  if (!t.ok()) return t.status();
  return std::optional<absl::Time>(*t);
}

namespace {

// The 12 stored fields of `event` in column order, as text except the one
// integer (suspicious).
template <typename OnText, typename OnInt>
void VisitAuditFields(const AuditEvent& event, OnText text, OnInt integer) {
  text(event.action);
  text(event.category);
  text(event.actor_type);
  text(event.actor_id);
  text(event.target_type);
  text(event.target_id);
  text(event.outcome);
  integer(event.suspicious ? 1 : 0);
  text(event.ip_address);
  text(event.user_agent);
  text(event.request_id);
  text(event.metadata_json);
}

}  // namespace

void BindAuditFields(sql::PreparedStatement& stmt, int first,
                     const AuditEvent& event) {
  int i = first;
  VisitAuditFields(
      event, [&](const std::string& v) { stmt.setString(i++, v); },
      [&](int v) { stmt.setInt(i++, v); });
}

void AddAuditFields(SqlValues& values, const AuditEvent& event) {
  VisitAuditFields(
      event, [&](const std::string& v) { values.Text(v); },
      [&](int v) { values.Int(v); });
}

// Appends to the tenant's hash chain (audit_chain.h): the chain head is
// locked in this transaction, so the row, its sequence number and the new
// head commit or roll back together with the change being audited. The
// webhook endpoints read (a consistent read, for the outbox rows) and the
// lock are read in the round trip that sends what the transaction queued
// before; the row and the new head are queued in turn (sent with the
// transaction's next statement, usually the COMMIT's round trip).
absl::Status InsertAudit(Session& session, int64_t tenant_id,
                         const AuditEvent& event) {
  AuditEvent row = event;
  // Client-supplied fields are only informative: cut rather than fail.
  NormalizeAuditEvent(row);
  OutboxWriter outbox(session);
  if (absl::Status st = outbox.QueueEndpointsRead(tenant_id, row); !st.ok()) {
    return st;
  }
  int& lane = session.audit_chain_lane();
  if (lane == 0) lane = NextTransactionChainLane();
  absl::StatusOr<ChainHead> head = LockChainHead(session, tenant_id, lane);
  if (!head.ok()) return head.status();
  const ChainLink link =
      AppendToChain(&head->last, tenant_id, lane, row, head->now);
  SqlValues values;
  values.Int(tenant_id);
  AddAuditFields(values, row);
  if (absl::Status st = values.Time(head->now); !st.ok()) return st;
  values.Int(link.seq)
      .Int(lane)
      .Bytes(DigestColumn(link.prev_hash))
      .Bytes(DigestColumn(link.hash))
      .Int(static_cast<int>(link.version));
  if (absl::Status st =
          session.Defer("insert audit event", kInsertAuditSql, values);
      !st.ok()) {
    return st;
  }
  if (absl::Status st = UpdateChainHead(session, tenant_id, *head); !st.ok()) {
    return st;
  }
  return outbox.Add(tenant_id, row, head->now);
}

absl::Status InsertAuditAndCommit(Session& session, int64_t tenant_id,
                                  const AuditEvent& event) {
  if (absl::Status st = InsertAudit(session, tenant_id, event); !st.ok()) {
    return st;
  }
  session.Commit();
  return absl::OkStatus();
}

namespace {

// 5-50 ms, uniformly: conflicting transactions do not meet again in step.
absl::Duration ConflictPause() {
  thread_local std::minstd_rand random(std::random_device{}());
  return absl::Milliseconds(std::uniform_int_distribution<int>(5, 50)(random));
}

}  // namespace

absl::Status InsertVoidRow(ConnectionPool& pool, absl::string_view writer,
                           int64_t wseq) {
  if (writer.empty() || wseq < 1) {
    return absl::InvalidArgumentError("a void row needs a writer and a wseq");
  }
  absl::Status status =
      Run(pool, "append void key change", OnConflict::kRetry,
          [&](Session& s) -> absl::Status {
            s.Step("insert void row");
            sql::PreparedStatement& insert = s.Prepare(
                "INSERT INTO key_changes (writer, wseq, tenant_id, key_id,"
                " change_type, key_version, announcement, created_at)"
                " VALUES (?, ?, 0, '', 'void', 0, 0, UTC_TIMESTAMP(6))");
            insert.setString(1, Str(writer));
            insert.setInt64(2, wseq);
            s.Update(insert);
            return absl::OkStatus();
          });
  // The position is taken: the hole is closed either way.
  if (absl::IsAlreadyExists(status)) return absl::OkStatus();
  return status;
}

// Runs `body` on a connection from `pool`. Maps sql::SQLException to a
// status named after `what` and the step that failed, rolls back an open
// transaction on every error path, and retries once on a fresh connection
// when a reused connection turns out to be lost before COMMIT was sent
// (the server has rolled back whatever the attempt did).
absl::Status Run(ConnectionPool& pool, absl::string_view what,
                 OnConflict on_conflict,
                 absl::FunctionRef<absl::Status(Session&)> body) {
  // Every statement of the operation is bounded by the caller's deadline
  // (call_deadline.h), so a slow or locked database gives
  // DEADLINE_EXCEEDED and frees the connection when the caller gives up.
  const absl::Time call_deadline = CurrentCallDeadline();
  int conflict_attempts = 0;
  bool lost_retried = false;
  for (;;) {
    if (absl::Now() >= call_deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(what, ": the call's deadline has passed"));
    }
    absl::StatusOr<ConnectionLease> lease = pool.Acquire(call_deadline);
    if (!lease.ok()) {
      return absl::Status(lease.status().code(),
                          absl::StrCat(what, ": ", lease.status().message()));
    }
    Session session(**lease, &pool.outbox_signal());
    try {
      session.Step("bound statements by the call's deadline");
      (*lease)->BoundStatements(call_deadline == absl::InfiniteFuture()
                                    ? absl::InfiniteDuration()
                                    : call_deadline - absl::Now());
      session.Step("");
      absl::Status status = body(session);
      // Statements a body queued outside a transaction run as they would
      // have one by one (autocommit).
      if (status.ok() && !session.in_transaction()) session.Flush();
      if (session.in_transaction()) {
        // An error path (or a body that forgot to commit): nothing of this
        // operation may stay.
        session.Step("rollback");
        if (!TryRollback(session)) lease->MarkBroken();
        if (status.ok()) {
          status = absl::InternalError(
              absl::StrCat(what, ": transaction left open"));
        }
      }
      return status;
    } catch (const sql::SQLException& e) {
      const int code = e.getErrorCode();
      const std::string where =
          session.step().empty()
              ? std::string(what)
              : absl::StrCat(what, " (", session.step(), ")");
      absl::Status status = StatusFromSqlException(e, where);
      bool lost = IsConnectionLevelError(code);
      if (code == 0) {
        // Raised by Connector/C++ itself: a bug, not an outage. The
        // session's state is unknown, so it is not reused.
        lease->MarkBroken();
        return absl::InternalError(
            absl::StrCat(where, ": database client error"));
      }
      if (!lost && session.in_transaction() && !TryRollback(session)) {
        lost = true;
      }
      if (!lost && code == kErDeadlock && on_conflict == OnConflict::kRetry &&
          ++conflict_attempts < kConflictAttempts) {
        // The server rolled the transaction back: run the body again after
        // a short random pause, unless the call's deadline comes first.
        const absl::Duration pause = ConflictPause();
        if (absl::Now() + pause < call_deadline) {
          absl::SleepFor(pause);
          continue;
        }
      }
      if (!lost) return status;
      lease->MarkBroken();
      const bool retry =
          !lost_retried && !session.commit_sent() && !lease->fresh();
      if (session.commit_sent()) {
        return absl::UnavailableError(absl::StrCat(
            what, ": connection lost during COMMIT; the outcome is unknown"));
      }
      if (!retry) return status;
      lost_retried = true;
      // Its idle siblings are probably dead too (server restart, proxy).
      pool.DiscardIdle();
    } catch (const RowCountMismatch& e) {
      // Every result was read: the session is usable once rolled back.
      if (session.in_transaction() && !TryRollback(session)) {
        lease->MarkBroken();
      }
      return e.status();
    } catch (const std::exception&) {
      lease->MarkBroken();
      return absl::InternalError(absl::StrCat(what, ": unexpected error"));
    }
  }
}

}  // namespace lumo::storage
