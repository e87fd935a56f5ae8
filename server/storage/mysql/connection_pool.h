// Connections to MySQL/MariaDB through Connector/C++ 1.1, and a bounded pool
// of them. This is the only code that creates Connector/C++ connections.
//
// Connector/C++ throws sql::SQLException from every call that talks to the
// server; the pool itself returns absl::Status, and MysqlConnection's
// statement methods let the exceptions through to the caller, which maps
// them at its own boundary (see sql_error.h).
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_CONNECTION_POOL_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_CONNECTION_POOL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/storage/mysql/mysql_options.h"
#include "server/storage/outbox_signal.h"
#include "server/storage/pool_stats.h"

namespace sql {
class Connection;
class PreparedStatement;
class ResultSet;
class Statement;
}  // namespace sql

namespace lumo::storage {

// Initialises the Connector/C++ driver (get_driver_instance(), which is not
// safe to race with itself on first use). Call it early on the main thread,
// before starting other threads; later calls are no-ops. The pool and the
// migrator also call it, so forgetting it is only a start-up race, not a
// crash in the common case.
void InitMysqlDriver();

namespace internal {
// Called with the text of every statement a connection prepares (once per
// connection and text: Prepare caches) or runs as text. Null by default:
// then nothing is called (one relaxed atomic load per statement prepared or
// run as text). Only lumo_storage_mysql_testing sets it (StatementCapture,
// which the MySQL grammar check uses); the server never does.
using StatementObserver = void (*)(const std::string& sql);
extern std::atomic<StatementObserver> statement_observer;
// Calls the observer, if any, with `sql`.
void ObserveStatement(const std::string& sql);
}  // namespace internal

// What sessions sent to the server: round trips, and the statements they
// carried (a statement batch is one round trip of several statements; a
// checked statement's row count is a statement of its own). Connection
// set-up is not counted. Thread-safe.
struct StatementCounters {
  std::atomic<uint64_t> round_trips{0};
  std::atomic<uint64_t> statements{0};
};

class MysqlConnection;
namespace internal {
// OpenMysqlConnection on `options.host` only (the other hosts ignored).
absl::StatusOr<std::unique_ptr<MysqlConnection>> OpenOnOneHost(
    const MysqlOptions& options, StatementCounters* counters);
}  // namespace internal

// One open session. Not thread-safe: one thread at a time (it may move
// between threads, as the pool hands it out). Statement methods throw
// sql::SQLException; the caller maps them.
//
// Sessions are set up for the store's assumptions: time_zone '+00:00',
// REPEATABLE READ, strict sql_mode, the configured innodb_lock_wait_timeout
// and statement ceiling, utf8mb4, no automatic reconnect; on a Galera node
// also wsrep_sync_wait = 1 (reads see what the cluster committed before).
class MysqlConnection {
 public:
  MysqlConnection(const MysqlConnection&) = delete;
  MysqlConnection& operator=(const MysqlConnection&) = delete;
  ~MysqlConnection();

  // The server-side prepared statement for `sql`, prepared on first use and
  // cached for the life of the connection. `sql` must be fixed text: values
  // are always bound as parameters, so the cache stays small.
  sql::PreparedStatement& Prepare(const std::string& sql);
  // A prepared statement that is not cached (for SQL assembled from a
  // whitelist into many variants).
  std::unique_ptr<sql::PreparedStatement> PrepareUncached(
      const std::string& sql);

  // Execute a prepared statement; each call counts one query.
  std::unique_ptr<sql::ResultSet> Query(sql::PreparedStatement& stmt);
  // Returns the number of affected rows.
  uint64_t Update(sql::PreparedStatement& stmt);

  // Fixed statements without parameters (START TRANSACTION, COMMIT, SET,
  // DDL), over the text protocol; each call counts one query.
  void Execute(const std::string& sql);
  std::unique_ptr<sql::ResultSet> QueryText(const std::string& sql);

  // Runs `statements` (complete texts, no placeholders) in order as one
  // multi-statement text: one round trip, one query counted. The observer
  // is not called (the caller observes the texts as written). For each
  // statement but the last that returns rows, `on_rows(index, rows)` is
  // called before the next result is read; the last statement's rows, if
  // it returns any, are returned (null otherwise). When statement i fails,
  // the server has run none after it: `*failed` becomes i and the
  // statement's exception propagates, with the session ready for the next
  // statement (unless the connection was lost).
  std::unique_ptr<sql::ResultSet> ExecuteBatch(
      const std::vector<std::string>& statements,
      absl::FunctionRef<void(size_t, sql::ResultSet&)> on_rows, size_t* failed);

  // False when the server is not MariaDB (then assumed MySQL >= 8.0).
  bool is_mariadb() const { return is_mariadb_; }
  // True when the server is a MariaDB Galera node (wsrep_on): then the
  // session runs with wsrep_sync_wait = 1 (causal reads).
  bool is_galera() const { return is_galera_; }
  // The server's CONNECTION_ID() for this session.
  int64_t connection_id() const { return connection_id_; }
  // Pings the server. Never throws.
  bool IsValid();

  // Bounds the statements that follow by `budget` (what is left of the
  // caller's deadline): the session's statement ceiling (max_statement_time
  // on MariaDB, which also interrupts lock waits; max_execution_time on
  // MySQL) and innodb_lock_wait_timeout become at most `budget`, never more
  // than the configured values. To spare a query per call, the session is
  // only changed when its current ceiling is above `budget` or below half
  // of it. Counts one query when it changes the session; throws like every
  // statement.
  void BoundStatements(absl::Duration budget);
  // The session's current statement ceiling (tests).
  absl::Duration statement_ceiling() const { return ceiling_; }
  // Direct access for code that needs the raw Connector/C++ API (tests,
  // the migrator's schema switch).
  sql::Connection& raw() { return *conn_; }

 private:
  friend absl::StatusOr<std::unique_ptr<MysqlConnection>>
  internal::OpenOnOneHost(const MysqlOptions& options,
                          StatementCounters* counters);

  MysqlConnection(std::unique_ptr<sql::Connection> conn,
                  StatementCounters* counters);
  // One round trip carrying `statements` statements.
  void CountRoundTrip(uint64_t statements = 1) {
    if (counters_ == nullptr) return;
    counters_->round_trips.fetch_add(1, std::memory_order_relaxed);
    counters_->statements.fetch_add(statements, std::memory_order_relaxed);
  }

  // Declared first so that it is destroyed last: statements close through
  // it.
  std::unique_ptr<sql::Connection> conn_;
  std::unique_ptr<sql::Statement> text_;
  absl::flat_hash_map<std::string, std::unique_ptr<sql::PreparedStatement>>
      statements_;
  StatementCounters* counters_;  // not owned; may be null
  bool is_mariadb_ = false;
  bool is_galera_ = false;
  int64_t connection_id_ = 0;
  // The configured ceilings and the session's current one.
  absl::Duration default_ceiling_ = absl::InfiniteDuration();
  int default_lock_wait_seconds_ = 0;
  absl::Duration ceiling_ = absl::InfiniteDuration();
};

// Opens and sets up one session with `options` (the database may be empty).
// Every round trip later made on it is counted in `*counters` (with its
// statements) when that is non-null; the counters must outlive the
// connection. UNAVAILABLE when the
// server cannot be reached or refuses the login (the message says why and
// never contains the password). Thread-safe.
absl::StatusOr<std::unique_ptr<MysqlConnection>> OpenMysqlConnection(
    const MysqlOptions& options, StatementCounters* counters);

// With several hosts (options.other_hosts): tries them in order starting at
// index `first` of AllHosts(options), wrapping around, and returns the
// first session that opens on a node able to serve (a Galera node must be
// Synced); `*opened_on` (may be null) receives that host's index.
// UNAVAILABLE naming every host's failure when none could serve; other
// errors (a refused login) at once.
absl::StatusOr<std::unique_ptr<MysqlConnection>> OpenMysqlConnectionFrom(
    const MysqlOptions& options, StatementCounters* counters, size_t first,
    size_t* opened_on);

// Like OpenMysqlConnectionFrom, trying the hosts (indexes of AllHosts) in
// `order`; `failed` (may be null) receives each host that could not serve.
absl::StatusOr<std::unique_ptr<MysqlConnection>> OpenMysqlConnectionInOrder(
    const MysqlOptions& options, StatementCounters* counters,
    const std::vector<size_t>& order, size_t* opened_on,
    std::vector<size_t>* failed);

// Per-host back-off of a multi-host pool: a host that could not serve is
// tried after the others until its back-off ends, so a dead host (one that
// drops packets costs the whole connect timeout) delays only the opens
// that find no other host. The back-off after `failures` (>= 1) failures
// in a row: `first`, doubling with each further failure, at most `max`.
inline constexpr absl::Duration kHostBackoffFirst = absl::Seconds(1);
inline constexpr absl::Duration kHostBackoffMax = absl::Seconds(30);
absl::Duration HostBackoff(int failures,
                           absl::Duration first = kHostBackoffFirst,
                           absl::Duration max = kHostBackoffMax);

// The order in which a pool tries its hosts: from `preferred`, wrapping
// around, the hosts whose back-off has ended (`retry_after[i] <= now`)
// first, then the others in the same rotation. Every host appears once, so
// a pool whose every host is backed off still tries them all.
std::vector<size_t> HostOrder(size_t preferred,
                              const std::vector<absl::Time>& retry_after,
                              absl::Time now);

class ConnectionPool;

// Exclusive use of one pooled connection until the lease is destroyed, which
// returns the connection to the pool (or closes it when marked broken).
// Movable, not copyable; not thread-safe.
class ConnectionLease {
 public:
  ConnectionLease(ConnectionLease&& other) noexcept;
  ConnectionLease& operator=(ConnectionLease&& other) noexcept;
  ConnectionLease(const ConnectionLease&) = delete;
  ConnectionLease& operator=(const ConnectionLease&) = delete;
  ~ConnectionLease();

  MysqlConnection* operator->() { return conn_.get(); }
  MysqlConnection& operator*() { return *conn_; }

  // The session is unusable (lost connection, unknown transaction state):
  // close it on release instead of returning it to the pool.
  void MarkBroken() { broken_ = true; }
  // True when the pool opened this connection for this lease rather than
  // reusing an idle one.
  bool fresh() const { return fresh_; }

 private:
  friend class ConnectionPool;
  ConnectionLease(ConnectionPool* pool, std::unique_ptr<MysqlConnection> conn,
                  bool fresh);
  void Release();

  ConnectionPool* pool_ = nullptr;
  std::unique_ptr<MysqlConnection> conn_;
  bool broken_ = false;
  bool fresh_ = false;
};

// With several hosts: how often a pool that moved off its first host
// tries that host again (ConnectionPool, failback).
inline constexpr absl::Duration kFailbackProbeInterval = absl::Seconds(5);

// A bounded pool of MysqlConnection. Thread-safe. Connections are opened
// lazily, up to options.pool_size; an Acquire that finds none free waits up
// to options.acquire_timeout. Broken connections are closed, never reused,
// so the pool heals itself when the database comes back. With several
// hosts, new connections open on the preferred host (the first at the
// start); when it cannot serve, the next that can becomes the preferred
// one (failover). While the preferred host is not the first one, a
// background thread opens a session on the first host every
// `failback_probe`; when one opens (a Galera node must be Synced), the
// first host is preferred again (failback). A connection on a host other
// than the preferred one is closed instead of being pooled again: idle ones
// at once, those in use when they are released. A host that could not
// serve is backed off (HostOrder, HostBackoff, starting at `host_backoff`):
// opens try it after the others until the back-off ends (the failback
// probe, in the background, keeps its own interval and records its
// result). The pool must outlive its leases.
//
// Any thread that acquires gets Connector/C++'s per-thread set-up
// (Driver::threadInit, and threadEnd when the thread exits) automatically.
class ConnectionPool {
 public:
  // INVALID_ARGUMENT for unusable options. Does not connect.
  static absl::StatusOr<std::unique_ptr<ConnectionPool>> Create(
      const MysqlOptions& options,
      absl::Duration failback_probe = kFailbackProbeInterval,
      absl::Duration host_backoff = kHostBackoffFirst);

  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;
  ~ConnectionPool();

  // An idle connection, or a new one while fewer than pool_size are open.
  // UNAVAILABLE when none frees up within acquire_timeout, or when opening a
  // new connection fails; DEADLINE_EXCEEDED when `call_deadline` (the
  // caller's deadline, see call_deadline.h) comes first.
  absl::StatusOr<ConnectionLease> Acquire(
      absl::Time call_deadline = absl::InfiniteFuture())
      ABSL_LOCKS_EXCLUDED(mu_);

  // Closes every idle connection (after one was found dead, its siblings
  // probably are too: the server restarted or a proxy dropped them).
  void DiscardIdle() ABSL_LOCKS_EXCLUDED(mu_);

  PoolStats stats() const ABSL_LOCKS_EXCLUDED(mu_);
  // Round trips to the server on this pool's sessions so far (a statement
  // batch counts once; StatementCounters).
  uint64_t queries_executed() const {
    return counters_.round_trips.load(std::memory_order_relaxed);
  }
  // Statements sent on this pool's sessions so far, every statement of a
  // batch counted.
  uint64_t statements_executed() const {
    return counters_.statements.load(std::memory_order_relaxed);
  }
  // The index in AllHosts(options()) new connections go to first, and how
  // often it changed.
  size_t preferred_host() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return preferred_host_;
  }
  uint64_t host_switches() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return host_switches_;
  }
  // How often the pool returned to its first host.
  uint64_t failbacks() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return failbacks_;
  }
  const MysqlOptions& options() const { return options_; }
  // Raised after a COMMIT of this pool's sessions that wrote webhook
  // deliveries (Session::NoteOutboxWrite).
  OutboxSignal& outbox_signal() { return outbox_signal_; }

 private:
  OutboxSignal outbox_signal_;
  friend class ConnectionLease;
  ConnectionPool(const MysqlOptions& options, absl::Duration failback_probe,
                 absl::Duration host_backoff);
  // Records what opening on `failed` hosts and (unless npos) on `opened`
  // taught about their health.
  void NoteHosts(const std::vector<size_t>& failed, size_t opened)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release(std::unique_ptr<MysqlConnection> conn, bool broken)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The failback thread: probes the first host while another is preferred.
  void ProbeFirstHost() ABSL_LOCKS_EXCLUDED(mu_);
  // Removes the idle connections that are not on the preferred host.
  std::vector<std::unique_ptr<MysqlConnection>> TakeIdleElsewhere()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const MysqlOptions options_;
  StatementCounters counters_;

  mutable absl::Mutex mu_;
  absl::CondVar available_;  // an idle connection or a free slot appeared
  std::vector<std::unique_ptr<MysqlConnection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  int in_use_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t waits_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t acquire_timeouts_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration wait_time_ ABSL_GUARDED_BY(mu_);
  uint64_t opened_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t discarded_ ABSL_GUARDED_BY(mu_) = 0;
  size_t preferred_host_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t host_switches_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t failbacks_ ABSL_GUARDED_BY(mu_) = 0;
  // The host index (in AllHosts) of every open connection.
  absl::flat_hash_map<const MysqlConnection*, size_t> host_of_
      ABSL_GUARDED_BY(mu_);
  const absl::Duration failback_probe_;
  const absl::Duration host_backoff_;
  // Per host (index in AllHosts): failures to serve in a row, and when its
  // back-off ends.
  std::vector<int> host_failures_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> host_retry_after_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread failback_thread_;  // only with several hosts
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_CONNECTION_POOL_H_
