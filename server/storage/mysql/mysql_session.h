// Shared by the MySQL stores: a Session (one pooled connection for one
// store operation, with transaction bookkeeping), Run (exception boundary,
// error mapping and one transparent retry on a lost connection), value
// helpers and the audit-event insert that every mutation runs inside its
// own transaction. Only storage/mysql includes this header.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_SESSION_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_SESSION_H_

#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/fault/fault_points.h"
#include "server/storage/key_store.h"
#include "server/storage/mysql/connection_pool.h"
#include "server/storage/mysql/sql_values.h"
#include "server/storage/outbox_signal.h"

namespace lumo::storage {

// Session: one connection for the duration of one store operation. Not
// thread-safe (one thread at a time, like its connection).

class Session {
 public:
  // `outbox_signal` (optional) is raised after a COMMIT of a transaction
  // that wrote webhook deliveries.
  explicit Session(MysqlConnection& conn,
                   const OutboxSignal* outbox_signal = nullptr)
      : conn_(conn), outbox_signal_(outbox_signal) {}

  // Names the statement about to run, for error messages (fixed text).
  void Step(absl::string_view step) { step_ = std::string(step); }
  absl::string_view step() const { return step_; }

  sql::PreparedStatement& Prepare(const std::string& sql) {
    return conn_.Prepare(sql);
  }
  std::unique_ptr<sql::PreparedStatement> PrepareUncached(
      const std::string& sql) {
    return conn_.PrepareUncached(sql);
  }
  // Prepared statements; each first sends the queued statements (Flush).
  std::unique_ptr<sql::ResultSet> Query(sql::PreparedStatement& stmt);
  uint64_t Update(sql::PreparedStatement& stmt);

  // Statement batching: a statement whose result the caller does not need
  // at once is queued (Defer) and sent with the next statement this
  // session sends, as one multi-statement round trip (Flush,
  // QueryWithQueued, Commit, and every prepared Query or Update, which
  // flush first). Order is kept: the server runs the queued statements in
  // the order they were queued, before the statement that sends them, and
  // stops at the first that fails (whose error is raised, with its step).

  // Queues `sql` (fixed text, placeholders filled from `values`, see
  // sql_values.h), named `step` in errors. INTERNAL when the placeholders
  // and values do not match (nothing is queued).
  absl::Status Defer(absl::string_view step, const std::string& sql,
                     const SqlValues& values);
  // Like Defer, and the statement must affect exactly `rows` rows: when it
  // does not, the flush that sends it raises RowCountMismatch with
  // `mismatch` (Run rolls the transaction back and returns `mismatch`).
  // A COMMIT is never sent in the same round trip as a checked statement.
  absl::Status DeferChecked(absl::string_view step, const std::string& sql,
                            const SqlValues& values, uint64_t rows,
                            absl::Status mismatch);
  // Queues the query `sql` with `values` like Defer; when the batch that
  // sends it runs, `on_rows` is called with its rows (before the
  // statements after it are read). Not called when the batch fails before
  // the query ran, or when the queue is dropped (Rollback).
  absl::Status DeferQuery(absl::string_view step, const std::string& sql,
                          const SqlValues& values,
                          std::function<void(sql::ResultSet&)> on_rows);
  // Sends the queued statements, then the query `sql` with `values`, in
  // one round trip, and returns the query's rows.
  absl::StatusOr<std::unique_ptr<sql::ResultSet>> QueryWithQueued(
      absl::string_view step, const std::string& sql, const SqlValues& values);
  // Sends the queued statements, if any (one round trip).
  void Flush();

  // Starts a transaction and marks it with a savepoint, so that Commit can
  // tell whether it is still the transaction that ends. Queued: sent with
  // the transaction's first statement.
  void Begin();
  // Commits the transaction Begin started: sends the queued statements,
  // the savepoint's release and COMMIT in one round trip (checked
  // statements are flushed before, in their own). When that transaction
  // ended without any statement reporting it (on a Galera node, a
  // brute-force abort by another node's write set whose error the server
  // did not deliver; a proxy that reconnected), the statements after its
  // end ran outside it: the release fails, so COMMIT does not run and
  // nothing is committed in its name, and the call throws the conflict it
  // was (error 1213), which Run retries for retry-safe bodies.
  void Commit();
  // Ends a transaction that wrote nothing, or abandons one on an error path.
  // The session counts as in a transaction until ROLLBACK succeeded: when
  // it throws, the transaction (its snapshot, its locks) may still be open,
  // and Run does not return the connection to the pool.
  void Rollback();
  // The current transaction wrote a webhook delivery: its COMMIT raises the
  // outbox signal (outbox_signal.h).
  void NoteOutboxWrite() { outbox_written_ = true; }
  // The error code of an injected statement failure (MariaDB's "query
  // execution was interrupted (max_statement_time exceeded)").
  static constexpr int kInjectedStatementError = 1969;

  bool in_transaction() const { return in_transaction_; }
  bool commit_sent() const { return commit_sent_; }

  // The audit chain lane InsertAudit appends this session's rows to: 0
  // until its first append picks one (NextTransactionChainLane), then kept,
  // so one transaction locks one lane per tenant.
  int& audit_chain_lane() { return audit_chain_lane_; }

 private:
  MysqlConnection& conn_;
  const OutboxSignal* const outbox_signal_;
  bool outbox_written_ = false;
  int audit_chain_lane_ = 0;
  std::string step_;
  struct Queued {
    std::string step;
    std::string text;
    std::optional<uint64_t> rows;  // the row count it must have
    absl::Status mismatch;
    // A queued query's reader (DeferQuery).
    std::function<void(sql::ResultSet&)> on_rows = nullptr;
  };
  // Sends `queued_` and then `last` (if any) in one round trip; returns the
  // rows of `last`. When a statement fails, sets `*failed_entry` (if given)
  // to its index among the queued statements (`last` is the final one).
  std::unique_ptr<sql::ResultSet> SendQueued(const Queued* last,
                                             size_t* failed_entry = nullptr);
  std::vector<Queued> queued_;
  bool in_transaction_ = false;
  bool commit_sent_ = false;
};

// Raised by a flush whose checked statement (Session::DeferChecked) did
// not affect the rows it must; Run returns status().
class RowCountMismatch {
 public:
  explicit RowCountMismatch(absl::Status status) : status_(std::move(status)) {}
  const absl::Status& status() const { return status_; }

 private:
  absl::Status status_;
};

// What Run does when the server rolled a body's transaction back with error
// 1213: a deadlock victim, or on Galera a certification conflict (reported
// at any statement or at COMMIT; the transaction did not commit).
enum class OnConflict {
  // ABORTED at once: the change did not happen, the caller may retry.
  kAbort,
  // The body is retry-safe: it reads inside its transaction everything it
  // depends on, assigns its outputs afresh on every run, and has no effect
  // outside the transaction. Run runs it again, up to kConflictAttempts in
  // all, after a random pause of 5-50 ms, never past the call's deadline;
  // a body that still conflicts then gives ABORTED.
  kRetry,
};
inline constexpr int kConflictAttempts = 3;

// Runs `body` with a pooled connection. Connector/C++ exceptions never
// escape: they become statuses (see sql_error.h). A transaction the body
// left open is rolled back; when that ROLLBACK fails the connection is
// closed (the server then rolls back), never returned to the pool with a
// transaction open, and the body's own status is returned. A reused connection
// found lost before COMMIT was sent is retried once on a fresh one (so every
// body must be re-runnable after a lost connection); lost during COMMIT gives
// UNAVAILABLE (outcome unknown). A conflict (error 1213) is handled as
// `on_conflict` says (ABORTED for the overload without it).
absl::Status Run(ConnectionPool& pool, absl::string_view what,
                 OnConflict on_conflict,
                 absl::FunctionRef<absl::Status(Session&)> body);
inline absl::Status Run(ConnectionPool& pool, absl::string_view what,
                        absl::FunctionRef<absl::Status(Session&)> body) {
  return Run(pool, what, OnConflict::kAbort, body);
}

// Writes a void row at stream position (writer, wseq) in its own
// autocommit statement; OK also when the position is taken (the change
// that drew it committed after all, or a void is there already).
// INVALID_ARGUMENT without a writer or with wseq < 1.
absl::Status InsertVoidRow(ConnectionPool& pool, absl::string_view writer,
                           int64_t wseq);

inline std::string Str(absl::string_view s) { return std::string(s); }

// Joins list values with `sep`; INVALID_ARGUMENT naming `field` when a
// value is empty or contains the separator.
absl::StatusOr<std::string> JoinList(const std::vector<std::string>& values,
                                     char sep, absl::string_view field);
std::vector<std::string> SplitList(const sql::SQLString& text, char sep);

// Escapes LIKE wildcards for statements that declare ESCAPE '!'.
std::string EscapeLike(absl::string_view s);

// Binds a time or NULL. INVALID_ARGUMENT outside DATETIME's range.
absl::Status BindTime(sql::PreparedStatement& stmt, int index,
                      std::optional<absl::Time> t);
absl::StatusOr<absl::Time> GetTime(const sql::ResultSet& rs, int column);
absl::StatusOr<std::optional<absl::Time>> GetOptionalTime(
    const sql::ResultSet& rs, int column);

// Binds the 12 stored fields of `event` (action, category, actor_type,
// actor_id, target_type, target_id, outcome, suspicious, ip_address,
// user_agent, request_id, metadata), in that order, from parameter `first`.
void BindAuditFields(sql::PreparedStatement& stmt, int first,
                     const AuditEvent& event);
// The same 12 fields, added to `values` in that order.
void AddAuditFields(SqlValues& values, const AuditEvent& event);

// Inserts `event` for `tenant_id` in the session's current transaction,
// appended to one of the tenant's audit hash chains: the session's lane,
// chosen at its first append (locks that lane's head until the transaction
// ends; see mysql_audit_chain.h). Fields longer than their columns are cut
// (NormalizeAuditEvent). A webhook event (webhook_outbox.h) also gets its
// outbox rows in the same transaction (mysql_webhook_outbox.h). Throws
// sql::SQLException like every statement here.
absl::Status InsertAudit(Session& session, int64_t tenant_id,
                         const AuditEvent& event);

// InsertAudit, then COMMIT of the session's transaction when the event was
// written. On an error the transaction stays open (Run rolls it back).
absl::Status InsertAuditAndCommit(Session& session, int64_t tenant_id,
                                  const AuditEvent& event);

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_SESSION_H_
