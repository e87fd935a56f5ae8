#include "server/storage/mysql/connection_pool.h"

#include <cppconn/connection.h>
#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "server/storage/mysql/select_list.h"
#include "server/storage/mysql/sql_error.h"

namespace lumo::storage {
namespace {

sql::Driver* Driver() {
  // Function-local static: initialised once, and C++ serialises racing
  // first calls.
  static sql::Driver* const driver = get_driver_instance();
  return driver;
}

// Connector/C++ (libmysqlclient underneath) wants threadInit() on every
// thread that uses it and threadEnd() before the thread exits. One instance
// per thread, created on first use.
class DriverThreadGuard {
 public:
  DriverThreadGuard() { Driver()->threadInit(); }
  ~DriverThreadGuard() { Driver()->threadEnd(); }
};

void EnsureDriverThreadInit() {
  thread_local DriverThreadGuard guard;
  (void)guard;
}

// Connector/C++ counts these timeouts in whole seconds.
int WholeSeconds(absl::Duration d) {
  return static_cast<int>(
      std::max<double>(1.0, std::ceil(absl::ToDoubleSeconds(d))));
}

// Strict, predictable SQL semantics on both MariaDB and MySQL.
constexpr char kSqlMode[] =
    "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
    "NO_ENGINE_SUBSTITUTION,ONLY_FULL_GROUP_BY";

}  // namespace

void InitMysqlDriver() { (void)Driver(); }

// ---------------------------------------------------------------------------
// MysqlConnection

MysqlConnection::MysqlConnection(std::unique_ptr<sql::Connection> conn,
                                 StatementCounters* counters)
    : conn_(std::move(conn)), counters_(counters) {}

MysqlConnection::~MysqlConnection() {
  // Statements first, then the session. Closing a dead session can throw
  // from some driver versions; nothing useful can be done about it here.
  try {
    statements_.clear();
    text_.reset();
    conn_.reset();
  } catch (const sql::SQLException&) {
  }
}

// ER_UNKNOWN_SYSTEM_VARIABLE.
constexpr int kErUnknownSystemVariable = 1193;

namespace internal {
std::atomic<StatementObserver> statement_observer{nullptr};

void ObserveStatement(const std::string& sql) {
  StatementObserver observer =
      statement_observer.load(std::memory_order_relaxed);
  if (observer != nullptr) observer(sql);
}
}  // namespace internal

namespace {
using internal::ObserveStatement;
}  // namespace

sql::PreparedStatement& MysqlConnection::Prepare(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return *it->second;
  ObserveStatement(sql);
  std::unique_ptr<sql::PreparedStatement> stmt(conn_->prepareStatement(sql));
  sql::PreparedStatement& ref = *stmt;
  statements_.emplace(sql, std::move(stmt));
  return ref;
}

std::unique_ptr<sql::PreparedStatement> MysqlConnection::PrepareUncached(
    const std::string& sql) {
  ObserveStatement(sql);
  return std::unique_ptr<sql::PreparedStatement>(conn_->prepareStatement(sql));
}

std::unique_ptr<sql::ResultSet> MysqlConnection::Query(
    sql::PreparedStatement& stmt) {
  CountRoundTrip();
  return std::unique_ptr<sql::ResultSet>(stmt.executeQuery());
}

uint64_t MysqlConnection::Update(sql::PreparedStatement& stmt) {
  CountRoundTrip();
  return static_cast<uint64_t>(stmt.executeUpdate());
}

void MysqlConnection::Execute(const std::string& sql) {
  ObserveStatement(sql);
  if (text_ == nullptr) text_.reset(conn_->createStatement());
  CountRoundTrip();
  text_->execute(sql);
}

std::unique_ptr<sql::ResultSet> MysqlConnection::QueryText(
    const std::string& sql) {
  ObserveStatement(sql);
  if (text_ == nullptr) text_.reset(conn_->createStatement());
  CountRoundTrip();
  return std::unique_ptr<sql::ResultSet>(text_->executeQuery(sql));
}

std::unique_ptr<sql::ResultSet> MysqlConnection::ExecuteBatch(
    const std::vector<std::string>& statements,
    absl::FunctionRef<void(size_t, sql::ResultSet&)> on_rows, size_t* failed) {
  if (statements.empty()) return nullptr;
  if (text_ == nullptr) text_.reset(conn_->createStatement());
  std::string text;
  for (const std::string& s : statements) {
    if (!text.empty()) text += ";\n";
    text += s;
  }
  CountRoundTrip(statements.size());
  size_t current = 0;  // the statement whose result is read next
  try {
    bool rows = text_->execute(text);
    for (;;) {
      std::unique_ptr<sql::ResultSet> rs;
      if (rows) rs.reset(text_->getResultSet());
      if (current + 1 == statements.size()) return rs;
      if (rs != nullptr) on_rows(current, *rs);
      rs.reset();
      ++current;
      rows = text_->getMoreResults();
    }
  } catch (const sql::SQLException&) {
    *failed = current;
    throw;
  }
}

void MysqlConnection::BoundStatements(absl::Duration budget) {
  absl::Duration target = std::min(default_ceiling_, budget);
  if (ceiling_ <= target && ceiling_ >= target / 2) return;
  // Below the configured ceiling, keep a tenth of the budget for the reply
  // (the caller hears DEADLINE_EXCEEDED from us, not from its own clock),
  // which also lets the following calls with a similar budget reuse it.
  if (target < default_ceiling_) target = target * 9 / 10;
  // MariaDB counts max_statement_time in (fractional) seconds, MySQL's
  // max_execution_time in whole milliseconds; innodb_lock_wait_timeout is
  // whole seconds, at least 1: below that the statement ceiling, which
  // covers lock waits on MariaDB, is what bounds a wait.
  const double seconds = std::max(0.001, absl::ToDoubleSeconds(target));
  const int lock_wait = std::clamp(static_cast<int>(std::floor(seconds)), 1,
                                   std::max(1, default_lock_wait_seconds_));
  if (is_mariadb_) {
    Execute(
        absl::StrFormat("SET SESSION max_statement_time = %.3f, "
                        "SESSION innodb_lock_wait_timeout = %d",
                        seconds, lock_wait));
  } else {
    Execute(absl::StrFormat(
        "SET SESSION max_execution_time = %d, "
        "SESSION innodb_lock_wait_timeout = %d",
        static_cast<int>(std::ceil(seconds * 1000)), lock_wait));
  }
  ceiling_ = target;
}

bool MysqlConnection::IsValid() {
  try {
    return conn_ != nullptr && conn_->isValid();
  } catch (const sql::SQLException&) {
    return false;
  }
}

absl::StatusOr<std::unique_ptr<MysqlConnection>> OpenMysqlConnection(
    const MysqlOptions& options, StatementCounters* counters) {
  return OpenMysqlConnectionFrom(options, counters, 0, nullptr);
}

absl::StatusOr<std::unique_ptr<MysqlConnection>> OpenMysqlConnectionFrom(
    const MysqlOptions& options, StatementCounters* counters, size_t first,
    size_t* opened_on) {
  const size_t hosts = 1 + options.other_hosts.size();
  std::vector<size_t> order;
  for (size_t i = 0; i < hosts; ++i) order.push_back((first + i) % hosts);
  return OpenMysqlConnectionInOrder(options, counters, order, opened_on,
                                    nullptr);
}

absl::StatusOr<std::unique_ptr<MysqlConnection>> OpenMysqlConnectionInOrder(
    const MysqlOptions& options, StatementCounters* counters,
    const std::vector<size_t>& order, size_t* opened_on,
    std::vector<size_t>* failed) {
  if (absl::Status s = ValidateMysqlOptions(options); !s.ok()) return s;
  if (options.other_hosts.empty()) {
    if (opened_on != nullptr) *opened_on = 0;
    return internal::OpenOnOneHost(options, counters);
  }
  const std::vector<MysqlHost> hosts = AllHosts(options);
  std::vector<std::string> failures;
  for (size_t index : order) {
    if (index >= hosts.size()) continue;
    absl::StatusOr<std::unique_ptr<MysqlConnection>> conn =
        internal::OpenOnOneHost(OnHost(options, hosts[index]), counters);
    if (conn.ok()) {
      if (opened_on != nullptr) *opened_on = index;
      return conn;
    }
    // A login refused or an unknown database is the same on every node.
    if (!absl::IsUnavailable(conn.status())) return conn.status();
    if (failed != nullptr) failed->push_back(index);
    failures.push_back(
        absl::StrCat(HostForLog(hosts[index]), ": ", conn.status().message()));
  }
  return absl::UnavailableError(absl::StrCat(
      "no database host could serve (", absl::StrJoin(failures, "; "), ")"));
}

absl::Duration HostBackoff(int failures, absl::Duration first,
                           absl::Duration max) {
  absl::Duration backoff = first;
  for (int i = 1; i < failures && backoff < max; ++i) backoff *= 2;
  return std::min(backoff, max);
}

std::vector<size_t> HostOrder(size_t preferred,
                              const std::vector<absl::Time>& retry_after,
                              absl::Time now) {
  const size_t n = retry_after.size();
  std::vector<size_t> ready, later;
  for (size_t i = 0; i < n; ++i) {
    const size_t index = (preferred + i) % n;
    (retry_after[index] <= now ? ready : later).push_back(index);
  }
  ready.insert(ready.end(), later.begin(), later.end());
  return ready;
}

namespace {

// OK unless `conn` is on a Galera node that is not Synced in the primary
// component. Throws like every statement.
absl::Status CheckGaleraNodeReady(MysqlConnection& conn) {
  std::unique_ptr<sql::ResultSet> rs = conn.QueryText(
      "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM"
      " information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN"
      " ('WSREP_READY', 'WSREP_LOCAL_STATE')");
  std::string ready, state;
  while (rs->next()) {
    const std::string name = rs->getString(1).asStdString();
    const std::string value = rs->getString(2).asStdString();
    if (absl::EqualsIgnoreCase(name, "WSREP_READY")) ready = value;
    if (absl::EqualsIgnoreCase(name, "WSREP_LOCAL_STATE")) state = value;
  }
  if (!conn.is_galera()) return absl::OkStatus();
  if (!absl::EqualsIgnoreCase(ready, "ON") || state != "4") {
    return absl::UnavailableError(absl::StrCat(
        "the Galera node is not synced with its cluster (wsrep_ready ", ready,
        ", wsrep_local_state ", state, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

namespace internal {

absl::StatusOr<std::unique_ptr<MysqlConnection>> OpenOnOneHost(
    const MysqlOptions& options, StatementCounters* counters) {
  EnsureDriverThreadInit();

  sql::ConnectOptionsMap connect;
  if (!options.unix_socket.empty()) {
    connect["hostName"] = sql::SQLString("unix://" + options.unix_socket);
  } else {
    const bool ipv6 = absl::StrContains(options.host, ':');
    connect["hostName"] =
        sql::SQLString(absl::StrCat("tcp://", ipv6 ? "[" : "", options.host,
                                    ipv6 ? "]" : "", ":", options.port));
  }
  connect["userName"] = sql::SQLString(options.user);
  connect["password"] = sql::SQLString(options.password);
  if (!options.database.empty()) {
    connect["schema"] = sql::SQLString(options.database);
  }
  connect["OPT_CONNECT_TIMEOUT"] = WholeSeconds(options.connect_timeout);
  connect["OPT_READ_TIMEOUT"] = WholeSeconds(options.read_timeout);
  connect["OPT_WRITE_TIMEOUT"] = WholeSeconds(options.write_timeout);
  connect["OPT_RECONNECT"] = false;
  connect["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
  // Statement batches (ExecuteBatch): a mutation sends its statements in
  // a few round trips. Every value in them is rendered by SqlValues, never
  // pasted from input.
  connect["CLIENT_MULTI_STATEMENTS"] = true;

  std::unique_ptr<sql::Connection> raw;
  try {
    raw.reset(Driver()->connect(connect));
  } catch (const sql::SQLException& e) {
    return StatusFromConnectException(e);
  }
  if (raw == nullptr) {
    return absl::UnavailableError("cannot connect to the database");
  }

  // Set-up statements are not counted as queries: the counter measures the
  // work done for callers.
  std::unique_ptr<MysqlConnection> conn(
      new MysqlConnection(std::move(raw), nullptr));
  try {
    {
      struct ServerSelect {
        SelectList list;
        int version = list.Add("VERSION()");
        int connection_id = list.Add("CONNECTION_ID()");
      };
      const ServerSelect& c = SelectOf<ServerSelect>();
      std::unique_ptr<sql::ResultSet> rs =
          conn->QueryText(absl::StrCat("SELECT ", c.list.sql()));
      if (!rs->next()) {
        return absl::InternalError("SELECT VERSION() returned no row");
      }
      conn->is_mariadb_ = absl::StrContains(
          absl::AsciiStrToLower(rs->getString(c.version).asStdString()),
          "mariadb");
      conn->connection_id_ = rs->getInt64(c.connection_id);
    }
    if (conn->is_mariadb_) {
      // A Galera node: wsrep_on. MySQL has no such variable, nor have
      // MariaDB builds without wsrep (error 1193, unknown variable).
      bool has_wsrep = false;
      try {
        std::unique_ptr<sql::ResultSet> rs =
            conn->QueryText("SELECT @@GLOBAL.wsrep_on");
        conn->is_galera_ = rs->next() && rs->getInt(1) == 1;
        has_wsrep = true;
      } catch (const sql::SQLException& e) {
        if (e.getErrorCode() != kErUnknownSystemVariable) throw;
      }
      // A Galera node serves only while it is Synced in the primary
      // component (wsrep_ready ON, wsrep_local_state 4); otherwise a
      // multi-host pool moves on to the next node. (Read on every MariaDB
      // with wsrep support, judged on Galera nodes only.)
      if (has_wsrep) {
        absl::Status ready = CheckGaleraNodeReady(*conn);
        if (!ready.ok()) return ready;
      }
    }
    conn->Execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    std::string set = absl::StrFormat(
        "SET time_zone = '+00:00', SESSION innodb_lock_wait_timeout = %d, "
        "SESSION sql_mode = '%s'",
        options.lock_wait_timeout_seconds, kSqlMode);
    const double ceiling = absl::ToDoubleSeconds(options.statement_timeout);
    if (conn->is_mariadb_) {
      absl::StrAppend(
          &set,
          absl::StrFormat(", SESSION max_statement_time = %.3f", ceiling));
    } else {
      absl::StrAppend(
          &set, absl::StrFormat(", SESSION max_execution_time = %d",
                                static_cast<int>(std::ceil(ceiling * 1000))));
    }
    if (conn->is_galera_) {
      // Reads (SELECT, and BEGIN) first wait until this node applied every
      // transaction the cluster committed before them; writes do not wait.
      // docs/replication.md, "Reads that must see other nodes' commits".
      absl::StrAppend(&set, ", SESSION wsrep_sync_wait = 1");
    }
    conn->Execute(set);
    conn->default_ceiling_ = options.statement_timeout;
    conn->default_lock_wait_seconds_ = options.lock_wait_timeout_seconds;
    conn->ceiling_ = options.statement_timeout;
  } catch (const sql::SQLException& e) {
    return StatusFromSqlException(e, "set up the database session");
  }
  conn->counters_ = counters;
  return conn;
}

}  // namespace internal

// ---------------------------------------------------------------------------
// ConnectionLease

ConnectionLease::ConnectionLease(ConnectionPool* pool,
                                 std::unique_ptr<MysqlConnection> conn,
                                 bool fresh)
    : pool_(pool), conn_(std::move(conn)), fresh_(fresh) {}

ConnectionLease::ConnectionLease(ConnectionLease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      conn_(std::move(other.conn_)),
      broken_(other.broken_),
      fresh_(other.fresh_) {}

ConnectionLease& ConnectionLease::operator=(ConnectionLease&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = std::exchange(other.pool_, nullptr);
    conn_ = std::move(other.conn_);
    broken_ = other.broken_;
    fresh_ = other.fresh_;
  }
  return *this;
}

ConnectionLease::~ConnectionLease() { Release(); }

void ConnectionLease::Release() {
  if (pool_ != nullptr && conn_ != nullptr) {
    pool_->Release(std::move(conn_), broken_);
  }
  pool_ = nullptr;
  conn_.reset();
}

// ---------------------------------------------------------------------------
// ConnectionPool

absl::StatusOr<std::unique_ptr<ConnectionPool>> ConnectionPool::Create(
    const MysqlOptions& options, absl::Duration failback_probe,
    absl::Duration host_backoff) {
  if (absl::Status s = ValidateMysqlOptions(options); !s.ok()) return s;
  if (failback_probe <= absl::ZeroDuration() ||
      host_backoff <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "the failback probe and the host back-off must be positive");
  }
  InitMysqlDriver();
  std::unique_ptr<ConnectionPool> pool(
      new ConnectionPool(options, failback_probe, host_backoff));
  if (!options.other_hosts.empty()) {
    pool->failback_thread_ =
        std::thread([p = pool.get()] { p->ProbeFirstHost(); });
  }
  return pool;
}

ConnectionPool::ConnectionPool(const MysqlOptions& options,
                               absl::Duration failback_probe,
                               absl::Duration host_backoff)
    : options_(options),
      failback_probe_(failback_probe),
      host_backoff_(host_backoff),
      host_failures_(1 + options.other_hosts.size(), 0),
      host_retry_after_(1 + options.other_hosts.size(), absl::InfinitePast()) {}

void ConnectionPool::NoteHosts(const std::vector<size_t>& failed,
                               size_t opened) {
  const absl::Time now = absl::Now();
  for (size_t i : failed) {
    if (i >= host_failures_.size()) continue;
    ++host_failures_[i];
    host_retry_after_[i] =
        now + HostBackoff(host_failures_[i], host_backoff_,
                          std::max(host_backoff_, kHostBackoffMax));
  }
  if (opened < host_failures_.size()) {
    host_failures_[opened] = 0;
    host_retry_after_[opened] = absl::InfinitePast();
  }
}

ConnectionPool::~ConnectionPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (failback_thread_.joinable()) failback_thread_.join();
  std::vector<std::unique_ptr<MysqlConnection>> idle;
  {
    absl::MutexLock lock(&mu_);
    idle.swap(idle_);
    host_of_.clear();
  }
  EnsureDriverThreadInit();
  idle.clear();
}

absl::StatusOr<ConnectionLease> ConnectionPool::Acquire(
    absl::Time call_deadline) {
  EnsureDriverThreadInit();
  const absl::Time deadline =
      std::min(absl::Now() + options_.acquire_timeout, call_deadline);
  {
    absl::MutexLock lock(&mu_);
    bool counted_wait = false;
    while (idle_.empty() && open_ >= options_.pool_size) {
      if (!counted_wait) {
        ++waits_;
        counted_wait = true;
      }
      const absl::Time wait_start = absl::Now();
      const bool timed_out = available_.WaitWithDeadline(&mu_, deadline);
      wait_time_ += absl::Now() - wait_start;
      if (timed_out && idle_.empty() && open_ >= options_.pool_size) {
        ++acquire_timeouts_;
        if (deadline == call_deadline) {
          return absl::DeadlineExceededError(
              "the call's deadline passed while waiting for a database "
              "connection");
        }
        return absl::UnavailableError(
            absl::StrCat("no database connection free within ",
                         absl::FormatDuration(options_.acquire_timeout),
                         " (pool size ", options_.pool_size, ")"));
      }
    }
    if (!idle_.empty()) {
      std::unique_ptr<MysqlConnection> conn = std::move(idle_.back());
      idle_.pop_back();
      ++in_use_;
      return ConnectionLease(this, std::move(conn), /*fresh=*/false);
    }
    // Reserve a slot, then connect without holding the lock.
    ++open_;
    ++in_use_;
  }
  size_t first = 0;
  std::vector<size_t> order;
  {
    absl::MutexLock lock(&mu_);
    first = preferred_host_;
    order = HostOrder(first, host_retry_after_, absl::Now());
  }
  size_t opened_on = first;
  std::vector<size_t> failed;
  absl::StatusOr<std::unique_ptr<MysqlConnection>> conn =
      OpenMysqlConnectionInOrder(options_, &counters_, order, &opened_on,
                                 &failed);
  std::vector<std::unique_ptr<MysqlConnection>> elsewhere;
  {
    absl::MutexLock lock(&mu_);
    NoteHosts(failed, conn.ok() ? opened_on : std::string::npos);
    if (!conn.ok()) {
      --open_;
      --in_use_;
      available_.Signal();
      return conn.status();
    }
    // Moved past the host it started from: that node failed, and new
    // connections go to this one from now on (unless the preferred host
    // changed meanwhile). The idle ones on other nodes are closed.
    if (opened_on != first && preferred_host_ == first) {
      preferred_host_ = opened_on;
      ++host_switches_;
    }
    ++opened_;
    host_of_[conn->get()] = opened_on;
    elsewhere = TakeIdleElsewhere();
  }
  elsewhere.clear();  // close outside the lock
  return ConnectionLease(this, *std::move(conn), /*fresh=*/true);
}

void ConnectionPool::Release(std::unique_ptr<MysqlConnection> conn,
                             bool broken) {
  {
    absl::MutexLock lock(&mu_);
    --in_use_;
    auto host = host_of_.find(conn.get());
    const bool elsewhere =
        host != host_of_.end() && host->second != preferred_host_;
    if (!broken && !elsewhere) {
      idle_.push_back(std::move(conn));
      available_.Signal();
      return;
    }
    if (host != host_of_.end()) host_of_.erase(host);
    --open_;
    ++discarded_;
    available_.Signal();
  }
  conn.reset();  // close outside the lock
}

void ConnectionPool::DiscardIdle() {
  std::vector<std::unique_ptr<MysqlConnection>> idle;
  {
    absl::MutexLock lock(&mu_);
    idle.swap(idle_);
    for (const std::unique_ptr<MysqlConnection>& c : idle) {
      host_of_.erase(c.get());
    }
    open_ -= static_cast<int>(idle.size());
    discarded_ += idle.size();
    available_.SignalAll();
  }
  idle.clear();
}

std::vector<std::unique_ptr<MysqlConnection>>
ConnectionPool::TakeIdleElsewhere() {
  std::vector<std::unique_ptr<MysqlConnection>> out;
  auto keep = std::partition(idle_.begin(), idle_.end(),
                             [this](const std::unique_ptr<MysqlConnection>& c)
                                 ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                                   auto host = host_of_.find(c.get());
                                   return host == host_of_.end() ||
                                          host->second == preferred_host_;
                                 });
  for (auto it = keep; it != idle_.end(); ++it) {
    host_of_.erase(it->get());
    out.push_back(std::move(*it));
  }
  idle_.erase(keep, idle_.end());
  open_ -= static_cast<int>(out.size());
  discarded_ += out.size();
  if (!out.empty()) available_.SignalAll();
  return out;
}

void ConnectionPool::ProbeFirstHost() {
  const MysqlOptions first = OnHost(options_, AllHosts(options_).front());
  auto stopping = [this]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping), failback_probe_);
      if (stopping_) return;
      if (preferred_host_ == 0) continue;
    }
    // A session of its own, closed at once: the first host serves again
    // only if a session opens there and the node is Synced.
    absl::StatusOr<std::unique_ptr<MysqlConnection>> probe =
        internal::OpenOnOneHost(first, nullptr);
    if (!probe.ok()) {
      absl::MutexLock lock(&mu_);
      NoteHosts({0}, std::string::npos);
      continue;
    }
    probe->reset();
    std::vector<std::unique_ptr<MysqlConnection>> elsewhere;
    {
      absl::MutexLock lock(&mu_);
      NoteHosts({}, 0);
      if (stopping_ || preferred_host_ == 0) continue;
      preferred_host_ = 0;
      ++host_switches_;
      ++failbacks_;
      elsewhere = TakeIdleElsewhere();
    }
    elsewhere.clear();  // close outside the lock
  }
}

PoolStats ConnectionPool::stats() const {
  PoolStats s;
  s.queries_executed = queries_executed();
  s.statements_executed = statements_executed();
  absl::MutexLock lock(&mu_);
  s.connections_open = open_;
  s.connections_in_use = in_use_;
  s.waits = waits_;
  s.acquire_timeouts = acquire_timeouts_;
  s.wait_time = wait_time_;
  s.connections_opened = opened_;
  s.connections_discarded = discarded_;
  s.preferred_host = preferred_host_;
  s.host_switches = host_switches_;
  s.failbacks = failbacks_;
  return s;
}

}  // namespace lumo::storage
