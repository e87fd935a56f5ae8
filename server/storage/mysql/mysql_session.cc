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

void Session::Begin() {
  Step("start transaction");
  conn_.Execute("START TRANSACTION");
  in_transaction_ = true;
  Step("mark transaction");
  // The savepoint that marks a transaction Begin started.
  conn_.Execute("SAVEPOINT lumo_transaction");
}

void Session::Commit() {
  Step("check transaction");
  try {
    conn_.Execute("RELEASE SAVEPOINT lumo_transaction");
  } catch (const sql::SQLException& e) {
    if (e.getErrorCode() != kErSavepointMissing) throw;
    // Whatever ran after the transaction's end (its own autocommits, or a
    // new implicit transaction that Run now rolls back) is not this
    // transaction; the body runs again or the caller gets ABORTED.
    throw sql::SQLException(
        "the transaction was rolled back before its COMMIT without an error "
        "(a conflicting write from another node)",
        "40001", kErDeadlock);
  }
  Step("commit");
  commit_sent_ = true;
  conn_.Execute("COMMIT");
  in_transaction_ = false;
  if (outbox_written_ && outbox_signal_ != nullptr) outbox_signal_->Raise();
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

void BindAuditFields(sql::PreparedStatement& stmt, int first,
                     const AuditEvent& event) {
  int i = first;
  stmt.setString(i++, event.action);
  stmt.setString(i++, event.category);
  stmt.setString(i++, event.actor_type);
  stmt.setString(i++, event.actor_id);
  stmt.setString(i++, event.target_type);
  stmt.setString(i++, event.target_id);
  stmt.setString(i++, event.outcome);
  stmt.setInt(i++, event.suspicious ? 1 : 0);
  stmt.setString(i++, event.ip_address);
  stmt.setString(i++, event.user_agent);
  stmt.setString(i++, event.request_id);
  stmt.setString(i++, event.metadata_json);
}

// Appends to the tenant's hash chain (audit_chain.h): the chain head is
// locked in this transaction, so the row, its sequence number and the new
// head commit or roll back together with the change being audited.
absl::Status InsertAudit(Session& session, int64_t tenant_id,
                         const AuditEvent& event) {
  AuditEvent row = event;
  // Client-supplied fields are only informative: cut rather than fail.
  NormalizeAuditEvent(row);
  int& lane = session.audit_chain_lane();
  if (lane == 0) lane = NextTransactionChainLane();
  absl::StatusOr<ChainHead> head = LockChainHead(session, tenant_id, lane);
  if (!head.ok()) return head.status();
  const ChainLink link =
      AppendToChain(&head->last, tenant_id, lane, row, head->now);
  session.Step("insert audit event");
  sql::PreparedStatement& stmt = session.Prepare(kInsertAuditSql);
  stmt.setInt64(1, tenant_id);
  BindAuditFields(stmt, 2, row);
  if (absl::Status st = BindTime(stmt, 14, head->now); !st.ok()) return st;
  stmt.setInt64(15, link.seq);
  stmt.setInt(16, lane);
  stmt.setString(17, DigestColumn(link.prev_hash));
  stmt.setString(18, DigestColumn(link.hash));
  stmt.setInt(19, static_cast<int>(link.version));
  session.Update(stmt);
  UpdateChainHead(session, tenant_id, *head);
  return OutboxWriter(session).Add(tenant_id, row, head->now);
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
    } catch (const std::exception&) {
      lease->MarkBroken();
      return absl::InternalError(absl::StrCat(what, ": unexpected error"));
    }
  }
}

}  // namespace lumo::storage
