// The connection pool against the real MariaDB.
#include "server/storage/mysql/connection_pool.h"

#include <arpa/inet.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/storage/call_deadline.h"
#include "server/storage/mysql/mysql_session.h"
#include "server/storage/mysql/sql_error.h"
#include "tests/storage/status_testing.h"
#include "tests/storage/test_database.h"

namespace lumo::storage {
namespace {

using ::lumo::testing::TestDatabase;
using ::lumo::testing::TestTimeScale;
using ::testing::HasSubstr;
using ::testing::Not;

class ConnectionPoolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<TestDatabase>> db =
        TestDatabase::CreateWithMigrations("");
    if (!db.ok()) {
      setup_error_ = new std::string(db.status().ToString());
      return;
    }
    db_ = db->release();
  }
  static void TearDownTestSuite() {
    delete db_;
    db_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(db_, nullptr) << *setup_error_; }

  MysqlOptions Options(int pool_size, absl::Duration acquire_timeout) {
    MysqlOptions options = db_->options();
    options.pool_size = pool_size;
    options.acquire_timeout = acquire_timeout;
    options.statement_timeout = absl::Seconds(5);
    return options;
  }

  static std::string ScalarText(MysqlConnection& conn, const std::string& sql) {
    std::unique_ptr<sql::ResultSet> rs = conn.QueryText(sql);
    rs->next();
    return rs->getString(1).asStdString();
  }

  static TestDatabase* db_;
  static std::string* setup_error_;
};

TestDatabase* ConnectionPoolTest::db_ = nullptr;
std::string* ConnectionPoolTest::setup_error_ = nullptr;

TEST_F(ConnectionPoolTest, OpensConnectionsLazilyAndReusesThem) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(Options(4, absl::Seconds(1))));
  EXPECT_EQ(pool->stats().connections_open, 0);
  int64_t first_id = 0;
  {
    ASSERT_OK_AND_ASSIGN(ConnectionLease lease, pool->Acquire());
    EXPECT_TRUE(lease.fresh());
    first_id = lease->connection_id();
    EXPECT_EQ(pool->stats().connections_in_use, 1);
  }
  EXPECT_EQ(pool->stats().connections_open, 1);
  EXPECT_EQ(pool->stats().connections_in_use, 0);
  ASSERT_OK_AND_ASSIGN(ConnectionLease again, pool->Acquire());
  EXPECT_FALSE(again.fresh());
  EXPECT_EQ(again->connection_id(), first_id);
  EXPECT_EQ(pool->stats().connections_opened, 1u);
}

TEST_F(ConnectionPoolTest, SessionsAreSetUpForUtcRepeatableReadAndCeilings) {
  MysqlOptions options = Options(1, absl::Seconds(1));
  options.lock_wait_timeout_seconds = 4;
  options.statement_timeout = absl::Milliseconds(2500);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(options));
  ASSERT_OK_AND_ASSIGN(ConnectionLease lease, pool->Acquire());
  EXPECT_EQ(ScalarText(*lease, "SELECT @@session.time_zone"), "+00:00");
  EXPECT_EQ(ScalarText(*lease, "SELECT @@session.innodb_lock_wait_timeout"),
            "4");
  EXPECT_EQ(ScalarText(*lease, "SELECT @@character_set_client"), "utf8mb4");
  EXPECT_THAT(ScalarText(*lease, "SELECT @@session.sql_mode"),
              HasSubstr("STRICT_ALL_TABLES"));
  if (lease->is_mariadb()) {
    EXPECT_EQ(ScalarText(*lease, "SELECT @@session.tx_isolation"),
              "REPEATABLE-READ");
    EXPECT_EQ(ScalarText(*lease, "SELECT @@session.max_statement_time"),
              "2.500000");
  } else {
    EXPECT_EQ(ScalarText(*lease, "SELECT @@session.transaction_isolation"),
              "REPEATABLE-READ");
    EXPECT_EQ(ScalarText(*lease, "SELECT @@session.max_execution_time"),
              "2500");
  }
  // On a Galera node (galera_cluster_test runs this test against one) reads
  // are causal; elsewhere the session is left alone.
  const bool galera = lease->is_mariadb() &&
                      ScalarText(*lease, "SELECT @@GLOBAL.wsrep_on") == "1";
  EXPECT_EQ(lease->is_galera(), galera);
  if (galera) {
    EXPECT_EQ(ScalarText(*lease, "SELECT @@session.wsrep_sync_wait"), "1");
  } else if (lease->is_mariadb()) {
    EXPECT_EQ(ScalarText(*lease, "SELECT @@session.wsrep_sync_wait"), "0");
  }
}

TEST_F(ConnectionPoolTest, AcquireTimesOutWithUnavailableWhenAllAreHeld) {
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ConnectionPool> pool,
      ConnectionPool::Create(Options(2, absl::Milliseconds(300))));
  ASSERT_OK_AND_ASSIGN(ConnectionLease a, pool->Acquire());
  ASSERT_OK_AND_ASSIGN(ConnectionLease b, pool->Acquire());

  const absl::Time start = absl::Now();
  absl::StatusOr<ConnectionLease> c = pool->Acquire();
  const absl::Duration waited = absl::Now() - start;
  EXPECT_CODE(c, absl::StatusCode::kUnavailable);
  EXPECT_GE(waited, absl::Milliseconds(250));
  EXPECT_LT(waited, absl::Seconds(3));

  PoolStats stats = pool->stats();
  EXPECT_EQ(stats.connections_open, 2);
  EXPECT_EQ(stats.connections_in_use, 2);
  EXPECT_EQ(stats.waits, 1u);
  EXPECT_EQ(stats.acquire_timeouts, 1u);

  { ConnectionLease released = std::move(a); }
  ASSERT_OK_AND_ASSIGN(ConnectionLease d, pool->Acquire());
  EXPECT_FALSE(d.fresh());
}

TEST_F(ConnectionPoolTest, AWaiterGetsTheNextReleasedConnection) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(Options(1, absl::Seconds(10))));
  std::optional<ConnectionLease> held;
  {
    ASSERT_OK_AND_ASSIGN(ConnectionLease lease, pool->Acquire());
    held.emplace(std::move(lease));
  }
  absl::Notification acquired;
  absl::Status waiter_status;
  std::thread waiter([&] {
    absl::StatusOr<ConnectionLease> lease = pool->Acquire();
    waiter_status = lease.status();
    acquired.Notify();
  });
  // Release only once the waiter is really waiting.
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (pool->stats().waits == 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_FALSE(acquired.HasBeenNotified());
  held.reset();
  EXPECT_TRUE(acquired.WaitForNotificationWithTimeout(absl::Seconds(5)));
  waiter.join();
  EXPECT_OK(waiter_status);
  EXPECT_EQ(pool->stats().waits, 1u);
  EXPECT_EQ(pool->stats().connections_opened, 1u);
}

TEST_F(ConnectionPoolTest, BrokenConnectionsAreClosedNotReused) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(Options(2, absl::Seconds(1))));
  int64_t broken_id = 0;
  {
    ASSERT_OK_AND_ASSIGN(ConnectionLease lease, pool->Acquire());
    broken_id = lease->connection_id();
    lease.MarkBroken();
  }
  PoolStats stats = pool->stats();
  EXPECT_EQ(stats.connections_open, 0);
  EXPECT_EQ(stats.connections_discarded, 1u);
  ASSERT_OK_AND_ASSIGN(ConnectionLease next, pool->Acquire());
  EXPECT_TRUE(next.fresh());
  EXPECT_NE(next->connection_id(), broken_id);
}

TEST_F(ConnectionPoolTest, KilledConnectionReportsAConnectionLevelError) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(Options(1, absl::Seconds(1))));
  ASSERT_OK_AND_ASSIGN(ConnectionLease lease, pool->Acquire());
  ASSERT_OK(
      db_->Execute(absl::StrCat("KILL CONNECTION ", lease->connection_id())));
  int code = 0;
  try {
    lease->QueryText("SELECT 1");
  } catch (const sql::SQLException& e) {
    code = e.getErrorCode();
  }
  EXPECT_TRUE(IsConnectionLevelError(code)) << code;
  EXPECT_FALSE(lease->IsValid());
}

// A loopback port bound but not listening: connecting is refused at once,
// and no other process can take the port while the socket is open.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
  }
  ~RefusingPort() { Close(); }
  int port() const { return port_; }
  // From now on the port refuses connections (nothing listens there).
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 protected:
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A multi-host pool whose first host refuses connections opens on the next
// one and keeps opening there (failover); when no host serves, the error
// names each.
TEST_F(ConnectionPoolTest, AMultiHostPoolMovesToTheNextHostThatServes) {
  MysqlOptions options = Options(2, absl::Seconds(1));
  ASSERT_TRUE(options.unix_socket.empty()) << "the test database is on TCP";
  RefusingPort dead;
  ASSERT_NE(dead.port(), 0);
  const MysqlHost live{options.host, options.port};
  options.host = "127.0.0.1";
  options.port = dead.port();
  options.other_hosts = {live};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(options));
  EXPECT_EQ(pool->preferred_host(), 0u);
  ASSERT_OK_AND_ASSIGN(ConnectionLease first, pool->Acquire());
  EXPECT_EQ(ScalarText(*first, "SELECT 1"), "1");
  EXPECT_EQ(pool->preferred_host(), 1u);
  EXPECT_EQ(pool->host_switches(), 1u);
  ASSERT_OK_AND_ASSIGN(ConnectionLease second, pool->Acquire());
  EXPECT_TRUE(second.fresh());
  EXPECT_EQ(pool->host_switches(), 1u) << "the live host stays preferred";

  RefusingPort dead_too;
  options.other_hosts = {{"127.0.0.1", dead_too.port()}};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> nowhere,
                       ConnectionPool::Create(options));
  absl::StatusOr<ConnectionLease> none = nowhere->Acquire();
  EXPECT_CODE(none, absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(none.status().message()),
              ::testing::AllOf(
                  ::testing::HasSubstr(absl::StrCat(":", dead.port())),
                  ::testing::HasSubstr(absl::StrCat(":", dead_too.port()))));
}

// A loopback port that refuses connections (bound, not listening) until
// Relay() makes it pass every connection on to another address: a database
// host that comes back. Not thread-safe to set up or destroy.
class RelayPort : public RefusingPort {
 public:
  ~RelayPort() {
    stop_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    absl::MutexLock lock(&mu_);
    for (std::thread& t : pumps_) t.join();
  }
  // Connections accepted and passed on so far.
  int relayed() const { return relayed_.load(); }
  // Stops relaying: from now on the port refuses connections again (the
  // host went down). Connections relayed so far keep working.
  void Refuse() {
    stop_accepting_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    Close();
  }

  // From now on accepts connections and relays each to `host`:`port`.
  bool Relay(const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints,
                    &found) != 0) {
      return false;
    }
    std::memcpy(&target_, found->ai_addr, found->ai_addrlen);
    target_len_ = found->ai_addrlen;
    freeaddrinfo(found);
    if (listen(fd(), 16) != 0) return false;
    acceptor_ = std::thread([this] { Accept(); });
    return true;
  }

 private:
  void Accept() {
    while (!stop_ && !stop_accepting_) {
      pollfd p{fd(), POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int client = accept(fd(), nullptr, nullptr);
      if (client < 0) continue;
      const int server = socket(target_.ss_family, SOCK_STREAM, 0);
      if (server < 0 || connect(server, reinterpret_cast<sockaddr*>(&target_),
                                target_len_) != 0) {
        if (server >= 0) close(server);
        close(client);
        continue;
      }
      ++relayed_;
      absl::MutexLock lock(&mu_);
      pumps_.emplace_back([this, client, server] { Pump(client, server); });
    }
  }
  // Copies bytes both ways until either side closes or the relay stops.
  void Pump(int a, int b) {
    char buffer[16384];
    bool open = true;
    while (open && !stop_) {
      pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (poll(p, 2, 50) <= 0) continue;
      for (int i = 0; i < 2 && open; ++i) {
        if (p[i].revents == 0) continue;
        const ssize_t n = read(p[i].fd, buffer, sizeof(buffer));
        open = n > 0;
        for (ssize_t sent = 0; open && sent < n;) {
          const ssize_t w = write(p[1 - i].fd, buffer + sent, n - sent);
          open = w > 0;
          sent += std::max<ssize_t>(w, 0);
        }
      }
    }
    close(a);
    close(b);
  }

  sockaddr_storage target_{};
  socklen_t target_len_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> stop_accepting_{false};
  std::atomic<int> relayed_{0};
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<std::thread> pumps_ ABSL_GUARDED_BY(mu_);
};

// Whether `pool` returns to its first host (failback) within a generous
// deadline.
bool FailsBack(ConnectionPool& pool) {
  const absl::Time give_up =
      absl::Now() + absl::Seconds(30) * ::lumo::testing::TestTimeScale();
  while (pool.preferred_host() != 0) {
    if (absl::Now() >= give_up) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

// A multi-host pool that moved off its first host returns to it once a
// session opens there again (failback): connections on the other host are
// closed (idle ones at once, one in use when released) and new ones open on
// the first host.
TEST_F(ConnectionPoolTest, AMultiHostPoolReturnsToItsFirstHostWhenItServes) {
  MysqlOptions options = Options(2, absl::Seconds(1));
  ASSERT_TRUE(options.unix_socket.empty()) << "the test database is on TCP";
  RelayPort first_host;
  ASSERT_NE(first_host.port(), 0);
  const MysqlHost live{options.host, options.port};
  options.host = "127.0.0.1";
  options.port = first_host.port();
  options.other_hosts = {live};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(options, absl::Milliseconds(50)));
  std::optional<ConnectionLease> held;
  {
    ASSERT_OK_AND_ASSIGN(ConnectionLease idle, pool->Acquire());
    ASSERT_OK_AND_ASSIGN(ConnectionLease in_use, pool->Acquire());
    held.emplace(std::move(in_use));
  }
  ASSERT_EQ(pool->preferred_host(), 1u);
  ASSERT_EQ(pool->stats().connections_open, 2);
  EXPECT_EQ(pool->failbacks(), 0u);

  ASSERT_TRUE(first_host.Relay(live.host, live.port));
  ASSERT_TRUE(FailsBack(*pool)) << "the pool never returned";
  EXPECT_EQ(pool->failbacks(), 1u);
  EXPECT_EQ(pool->host_switches(), 2u);
  EXPECT_EQ(pool->stats().preferred_host, 0u);  // the metrics' figures
  EXPECT_EQ(pool->stats().failbacks, 1u);
  EXPECT_EQ(pool->stats().host_switches, 2u);
  EXPECT_GE(first_host.relayed(), 1) << "the probe's session";
  EXPECT_EQ(pool->stats().connections_open, 1) << "the idle one was closed";
  EXPECT_EQ(ScalarText(**held, "SELECT 1"), "1") << "in use: untouched";
  held.reset();
  EXPECT_EQ(pool->stats().connections_open, 0) << "released: closed";

  const int relayed = first_host.relayed();
  ASSERT_OK_AND_ASSIGN(ConnectionLease back, pool->Acquire());
  EXPECT_TRUE(back.fresh());
  EXPECT_EQ(ScalarText(*back, "SELECT 1"), "1");
  EXPECT_EQ(first_host.relayed(), relayed + 1) << "opened on the first host";
  EXPECT_EQ(pool->preferred_host(), 0u);
}

// A loopback port that accepts connections and never says a word: a host
// that takes a connection but never answers (a hung server, a black hole
// behind a proxy), which costs a client its whole connect timeout. Not
// thread-safe to set up or destroy.
class SilentPort : public RefusingPort {
 public:
  SilentPort() {
    if (port() == 0 || listen(fd(), 16) != 0) return;
    acceptor_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd(), POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        const int client = accept(fd(), nullptr, nullptr);
        if (client < 0) continue;
        absl::MutexLock lock(&mu_);
        held_.push_back(client);
      }
    });
  }
  ~SilentPort() {
    stop_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    absl::MutexLock lock(&mu_);
    for (int client : held_) close(client);
  }
  // Connections accepted so far.
  int accepted() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(held_.size());
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<int> held_ ABSL_GUARDED_BY(mu_);
};

// A host that failed is backed off: when the preferred host goes down, the
// pool moves past a silent host that failed a moment ago to one that
// serves, instead of spending a connect timeout on it again.
TEST_F(ConnectionPoolTest, AHostThatFailedIsTriedLastWhileBackedOff) {
  MysqlOptions options = Options(1, absl::Seconds(30));
  ASSERT_TRUE(options.unix_socket.empty()) << "the test database is on TCP";
  options.connect_timeout = absl::Seconds(1);
  options.read_timeout = absl::Seconds(1);
  RelayPort first;
  SilentPort silent;
  ASSERT_NE(first.port(), 0);
  ASSERT_NE(silent.port(), 0);
  const MysqlHost live{options.host, options.port};
  options.host = "127.0.0.1";
  options.port = first.port();
  options.other_hosts = {{"127.0.0.1", silent.port()}, live};
  // The back-off outlasts the test by far; the failback probe is quick.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(options, absl::Milliseconds(50),
                                              absl::Minutes(10)));

  // The first host refuses, the silent one takes its connect timeout: the
  // pool opens on the live host, and both failed hosts are backed off.
  {
    ASSERT_OK_AND_ASSIGN(ConnectionLease lease, pool->Acquire());
    EXPECT_EQ(ScalarText(*lease, "SELECT 1"), "1");
  }
  ASSERT_EQ(pool->preferred_host(), 2u);
  ASSERT_EQ(silent.accepted(), 1) << "the silent host was tried once";

  // The first host serves again: the failback probe returns the pool to it
  // (which ends its back-off; the silent host's goes on).
  ASSERT_TRUE(first.Relay(live.host, live.port));
  ASSERT_TRUE(FailsBack(*pool)) << "the pool never returned";

  // The first host goes down again. The next connection starts there, and
  // moves on to the live host, past the silent one.
  first.Refuse();
  pool->DiscardIdle();
  ASSERT_OK_AND_ASSIGN(ConnectionLease lease, pool->Acquire());
  EXPECT_TRUE(lease.fresh());
  EXPECT_EQ(ScalarText(*lease, "SELECT 1"), "1");
  EXPECT_EQ(pool->preferred_host(), 2u);
  EXPECT_EQ(silent.accepted(), 1) << "the backed-off silent host was tried";
}

// A multi-host pool tries its hosts from the preferred one around the
// list, hosts still backed off after the others.
TEST(HostOrderTest, StartsAtThePreferredHostAndDefersHostsBackedOff) {
  const absl::Time now = absl::FromUnixSeconds(1000);
  const absl::Time past = now - absl::Seconds(1);
  const absl::Time future = now + absl::Seconds(1);
  EXPECT_EQ(HostOrder(1, {past, past, past}, now),
            (std::vector<size_t>{1, 2, 0}));
  EXPECT_EQ(HostOrder(0, {past, future, past}, now),
            (std::vector<size_t>{0, 2, 1}));
  EXPECT_EQ(HostOrder(1, {past, future, past}, now),
            (std::vector<size_t>{2, 0, 1}));
  // The back-off ends at its instant.
  EXPECT_EQ(HostOrder(0, {now, past}, now), (std::vector<size_t>{0, 1}));
  // Every host backed off: all tried, in rotation from the preferred one.
  EXPECT_EQ(HostOrder(2, {future, future, future}, now),
            (std::vector<size_t>{2, 0, 1}));
  EXPECT_EQ(HostOrder(0, {future}, now), (std::vector<size_t>{0}));
}

TEST(HostBackoffTest, DoublesFromTheFirstUpToTheMaximum) {
  EXPECT_EQ(HostBackoff(1), absl::Seconds(1));
  EXPECT_EQ(HostBackoff(2), absl::Seconds(2));
  EXPECT_EQ(HostBackoff(5), absl::Seconds(16));
  EXPECT_EQ(HostBackoff(6), absl::Seconds(30));
  EXPECT_EQ(HostBackoff(1000), absl::Seconds(30));
  EXPECT_EQ(HostBackoff(3, absl::Milliseconds(100), absl::Seconds(1)),
            absl::Milliseconds(400));
  EXPECT_EQ(HostBackoff(9, absl::Milliseconds(100), absl::Seconds(1)),
            absl::Seconds(1));
}

TEST_F(ConnectionPoolTest, DiscardIdleClosesOnlyIdleConnections) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(Options(3, absl::Seconds(1))));
  {
    ASSERT_OK_AND_ASSIGN(ConnectionLease a, pool->Acquire());
    ASSERT_OK_AND_ASSIGN(ConnectionLease b, pool->Acquire());
  }
  ASSERT_OK_AND_ASSIGN(ConnectionLease held, pool->Acquire());
  EXPECT_EQ(pool->stats().connections_open, 2);
  pool->DiscardIdle();
  PoolStats stats = pool->stats();
  EXPECT_EQ(stats.connections_open, 1);
  EXPECT_EQ(stats.connections_in_use, 1);
}

TEST_F(ConnectionPoolTest, StatementCeilingIsDeadlineExceeded) {
  MysqlOptions options = Options(1, absl::Seconds(1));
  options.statement_timeout = absl::Milliseconds(300);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(options));
  ASSERT_OK_AND_ASSIGN(ConnectionLease lease, pool->Acquire());
  absl::Status status;
  try {
    lease->QueryText("SELECT SLEEP(5)");
  } catch (const sql::SQLException& e) {
    status = StatusFromSqlException(e, "sleep");
  }
  if (lease->is_mariadb()) {
    EXPECT_CODE(status, absl::StatusCode::kDeadlineExceeded);
  }
  // The session survives a statement that hit the ceiling.
  EXPECT_TRUE(lease->IsValid());
}

TEST_F(ConnectionPoolTest, CountsEveryRoundTripAndItsStatements) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(Options(1, absl::Seconds(1))));
  ASSERT_OK_AND_ASSIGN(ConnectionLease lease, pool->Acquire());
  const uint64_t before = pool->queries_executed();  // set-up not counted
  EXPECT_EQ(before, 0u);
  lease->QueryText("SELECT 1");
  lease->Execute("DO 1");
  sql::PreparedStatement& stmt = lease->Prepare("SELECT ?");
  stmt.setInt(1, 5);
  lease->Query(stmt);
  lease->Query(stmt);
  EXPECT_EQ(pool->queries_executed(), 4u);
  EXPECT_EQ(pool->stats().queries_executed, 4u);
  EXPECT_EQ(pool->statements_executed(), 4u);
  // A batch is one round trip of all its statements.
  size_t failed = 0;
  lease->ExecuteBatch(
      {"DO 1", "SELECT 2", "DO 3"}, [](size_t, sql::ResultSet&) {}, &failed);
  EXPECT_EQ(pool->queries_executed(), 5u);
  EXPECT_EQ(pool->statements_executed(), 7u);
  EXPECT_EQ(pool->stats().statements_executed, 7u);
}

TEST_F(ConnectionPoolTest, UnreachableServerIsUnavailable) {
  MysqlOptions options = Options(1, absl::Seconds(1));
  options.host = "127.0.0.1";
  options.port = 1;
  options.unix_socket.clear();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(options));
  EXPECT_CODE(pool->Acquire(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(pool->stats().connections_open, 0);
}

TEST_F(ConnectionPoolTest, WrongPasswordIsUnavailableAndNotEchoed) {
  MysqlOptions options = Options(1, absl::Seconds(1));
  options.password = "definitely-not-the-password";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(options));
  absl::StatusOr<ConnectionLease> lease = pool->Acquire();
  EXPECT_CODE(lease, absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(lease.status().message()),
              Not(HasSubstr("definitely-not")));
}

TEST_F(ConnectionPoolTest, RejectsUnusableOptions) {
  MysqlOptions options = Options(0, absl::Seconds(1));
  EXPECT_CODE(ConnectionPool::Create(options),
              absl::StatusCode::kInvalidArgument);
  options = Options(1, absl::ZeroDuration());
  EXPECT_CODE(ConnectionPool::Create(options),
              absl::StatusCode::kInvalidArgument);
}

// What the server reports for a deadlock victim or a certification
// conflict; the body throws it where the server would.
sql::SQLException Conflict() {
  return sql::SQLException("Deadlock found when trying to get lock", "40001",
                           1213);
}

TEST_F(ConnectionPoolTest, ARetrySafeBodyRunsAgainAfterAConflict) {
  ASSERT_OK(
      db_->Execute("CREATE TABLE conflict_once (attempt INT PRIMARY KEY)"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(Options(1, absl::Seconds(1))));
  int attempts = 0;
  absl::Status status =
      storage::Run(*pool, "conflict once", OnConflict::kRetry,
                   [&](Session& s) -> absl::Status {
                     ++attempts;
                     s.Begin();
                     sql::PreparedStatement& insert =
                         s.Prepare("INSERT INTO conflict_once VALUES (?)");
                     insert.setInt(1, attempts);
                     s.Update(insert);
                     if (attempts == 1) throw Conflict();
                     s.Commit();
                     return absl::OkStatus();
                   });
  EXPECT_OK(status);
  EXPECT_EQ(attempts, 2);
  // The first attempt's row was rolled back with its transaction.
  EXPECT_EQ(*db_->QueryValue("SELECT GROUP_CONCAT(attempt) FROM conflict_once"),
            "2");
}

TEST_F(ConnectionPoolTest, AConflictOnEveryAttemptIsAborted) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(Options(1, absl::Seconds(1))));
  int attempts = 0;
  absl::Status status =
      storage::Run(*pool, "always conflicts", OnConflict::kRetry,
                   [&](Session& s) -> absl::Status {
                     ++attempts;
                     s.Begin();
                     throw Conflict();
                   });
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_EQ(attempts, kConflictAttempts);
  // The connection went back to the pool usable, without a transaction.
  ASSERT_OK_AND_ASSIGN(ConnectionLease lease, pool->Acquire());
  EXPECT_EQ(ScalarText(*lease, "SELECT @@in_transaction"), "0");
}

TEST_F(ConnectionPoolTest, ABodyNotMarkedRetrySafeIsAbortedAtOnce) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(Options(1, absl::Seconds(1))));
  int attempts = 0;
  absl::Status status =
      storage::Run(*pool, "not retry-safe", [&](Session& s) -> absl::Status {
        ++attempts;
        s.Begin();
        throw Conflict();
      });
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_EQ(attempts, 1);
}

// What a Galera brute-force abort does when no statement reports it: the
// transaction is rolled back under the session, and the statements after
// it run outside it. Here a ROLLBACK the session does not know of.
void EndTransactionUnseen(Session& s) { s.Update(s.Prepare("ROLLBACK")); }

TEST_F(ConnectionPoolTest, ATransactionThatEndedUnseenRunsAgain) {
  ASSERT_OK(db_->Execute(
      "CREATE TABLE silent_end (id INT PRIMARY KEY, v INT NOT NULL)"));
  ASSERT_OK(db_->Execute("INSERT INTO silent_end VALUES (1, 0)"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(Options(1, absl::Seconds(1))));
  int attempts = 0;
  absl::Status status = storage::Run(
      *pool, "ended unseen once", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        ++attempts;
        s.Begin();
        s.Update(s.Prepare("UPDATE silent_end SET v = v + 1 WHERE id = 1"));
        if (attempts == 1) EndTransactionUnseen(s);
        s.Commit();
        return absl::OkStatus();
      });
  EXPECT_OK(status);
  // The COMMIT of the first attempt would have "succeeded" with nothing:
  // it was refused as the conflict it was, and the body ran again.
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(*db_->QueryValue("SELECT v FROM silent_end WHERE id = 1"), "1");
}

TEST_F(ConnectionPoolTest, ATransactionThatEndedUnseenIsAbortedNotCommitted) {
  ASSERT_OK(db_->Execute(
      "CREATE TABLE silent_abort (id INT PRIMARY KEY, v INT NOT NULL)"));
  ASSERT_OK(db_->Execute("INSERT INTO silent_abort VALUES (1, 0)"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(Options(1, absl::Seconds(1))));
  absl::Status status =
      storage::Run(*pool, "ended unseen", [&](Session& s) -> absl::Status {
        s.Begin();
        s.Update(s.Prepare("UPDATE silent_abort SET v = v + 1 WHERE id = 1"));
        EndTransactionUnseen(s);
        s.Commit();
        return absl::OkStatus();
      });
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_EQ(*db_->QueryValue("SELECT v FROM silent_abort WHERE id = 1"), "0");
  ASSERT_OK_AND_ASSIGN(ConnectionLease lease, pool->Acquire());
  EXPECT_EQ(ScalarText(*lease, "SELECT @@in_transaction"), "0");
}

TEST_F(ConnectionPoolTest, AConflictIsNotRetriedPastTheCallDeadline) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(Options(1, absl::Seconds(1))));
  const absl::Time deadline = absl::Now() + absl::Seconds(2) * TestTimeScale();
  ScopedCallDeadline scoped(deadline);
  int attempts = 0;
  absl::Status status =
      storage::Run(*pool, "conflict at the deadline", OnConflict::kRetry,
                   [&](Session&) -> absl::Status {
                     ++attempts;
                     // Less than the shortest pause (5 ms) is left: a retry
                     // would start past the deadline.
                     while (absl::Now() < deadline - absl::Milliseconds(4)) {
                       absl::SleepFor(absl::Milliseconds(1));
                     }
                     throw Conflict();
                   });
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_EQ(attempts, 1);
}

// What a Galera node outside the primary component (or not yet synced)
// answers to every statement.
sql::SQLException NodeNotReady() {
  return sql::SQLException(
      "WSREP has not yet prepared node for application use", "08S01", 1047);
}

int64_t ConnectionId(Session& s) {
  std::unique_ptr<sql::ResultSet> rs =
      s.Query(s.Prepare("SELECT CONNECTION_ID()"));
  rs->next();
  return rs->getInt64(1);
}

TEST_F(ConnectionPoolTest, ANodeThatCannotServeIsLeftForAFreshConnection) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(Options(1, absl::Seconds(1))));
  // A pooled connection, reused by the next call.
  ASSERT_OK(storage::Run(*pool, "warm up",
                         [](Session&) { return absl::OkStatus(); }));
  std::vector<int64_t> ids;
  absl::Status status =
      storage::Run(*pool, "node not ready", [&](Session& s) -> absl::Status {
        ids.push_back(ConnectionId(s));
        if (ids.size() == 1) throw NodeNotReady();
        return absl::OkStatus();
      });
  EXPECT_OK(status);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_NE(ids[0], ids[1]) << "the refusing connection was used again";

  // On a fresh connection the refusal is the answer: UNAVAILABLE, and that
  // connection is not kept either.
  pool->DiscardIdle();
  ids.clear();
  status =
      storage::Run(*pool, "node not ready", [&](Session& s) -> absl::Status {
        ids.push_back(ConnectionId(s));
        throw NodeNotReady();
      });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  ASSERT_EQ(ids.size(), 1u);
  ASSERT_OK_AND_ASSIGN(ConnectionLease next, pool->Acquire());
  EXPECT_TRUE(next.fresh());
}

// A real deadlock between two retry-safe bodies. Whichever transaction the
// server picks as the victim (its choice is not ours to assert) runs again
// and commits after the other one; both calls succeed and each applied its
// change exactly once.
TEST_F(ConnectionPoolTest, BothSidesOfARealDeadlockCommit) {
  ASSERT_OK(db_->Execute(
      "CREATE TABLE deadlock_pair (id INT PRIMARY KEY, v INT NOT NULL)"));
  ASSERT_OK(db_->Execute("INSERT INTO deadlock_pair VALUES (1, 0), (2, 0)"));
  MysqlOptions options = Options(1, absl::Seconds(1));
  // Lock waits end by deadlock detection here, never by a time limit; the
  // victim's rollback may be slow on a loaded machine.
  options.statement_timeout = absl::Seconds(60) * TestTimeScale();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool_a,
                       ConnectionPool::Create(options));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool_b,
                       ConnectionPool::Create(options));

  std::atomic<int> attempts{0};
  std::atomic<int> holding_first_row{0};
  std::atomic<int64_t> a_connection{-1};
  const absl::Time patience = absl::Now() + absl::Seconds(60) * TestTimeScale();
  // Polls every 200 ms: InnoDB refreshes its information_schema copy of
  // transactions and lock waits only after 100 ms without a reader, so a
  // faster poll would read a stale copy for ever.
  auto wait_for = [&](auto done) {
    while (!done() && absl::Now() < patience) {
      absl::SleepFor(absl::Milliseconds(200));
    }
    return done();
  };
  // Locks `first`, then `second`, then adds 1 to both rows. On its first
  // run each side holds its first row before either asks for its second;
  // side B asks only once A is seen waiting for B's row, so B's request
  // closes the cycle.
  auto side = [&](int first, int second, bool is_a) {
    int runs = 0;
    return storage::Run(
        is_a ? *pool_a : *pool_b, "deadlock side", OnConflict::kRetry,
        [&](Session& s) -> absl::Status {
          ++attempts;
          const bool first_run = ++runs == 1;
          s.Begin();
          if (is_a) {
            std::unique_ptr<sql::ResultSet> id =
                s.Query(s.Prepare("SELECT CONNECTION_ID()"));
            id->next();
            a_connection = id->getInt64(1);
          }
          sql::PreparedStatement& lock =
              s.Prepare("SELECT v FROM deadlock_pair WHERE id = ? FOR UPDATE");
          s.Step("lock the first row");
          lock.setInt(1, first);
          s.Query(lock);
          if (first_run) {
            ++holding_first_row;
            if (!wait_for([&] { return holding_first_row.load() == 2; })) {
              return absl::DeadlineExceededError("the other side never came");
            }
            if (!is_a && !wait_for([&] {
                  return db_
                             ->QueryValue(absl::StrCat(
                                 "SELECT COUNT(*) FROM information_schema."
                                 "INNODB_TRX t JOIN information_schema."
                                 "INNODB_LOCK_WAITS w ON w.requesting_trx_id ="
                                 " t.trx_id JOIN "
                                 "information_schema.INNODB_LOCKS"
                                 " l ON l.lock_id = w.requested_lock_id WHERE"
                                 " t.trx_mysql_thread_id = ",
                                 a_connection.load(),
                                 " AND l.lock_table LIKE '%deadlock_pair%'"))
                             .value_or("") == "1";
                })) {
              return absl::DeadlineExceededError("A never waited for row 2");
            }
          }
          s.Step("lock the second row");
          lock.setInt(1, second);
          s.Query(lock);
          s.Update(s.Prepare("UPDATE deadlock_pair SET v = v + 1"));
          s.Commit();
          return absl::OkStatus();
        });
  };
  absl::Status a_status;
  std::thread a_thread([&] { a_status = side(1, 2, true); });
  absl::Status b_status = side(2, 1, false);
  a_thread.join();
  EXPECT_OK(a_status);
  EXPECT_OK(b_status);
  EXPECT_EQ(attempts.load(), 3) << "exactly one side runs twice";
  EXPECT_EQ(*db_->QueryValue("SELECT GROUP_CONCAT(v ORDER BY id)"
                             " FROM deadlock_pair"),
            "2,2");
}

}  // namespace
}  // namespace lumo::storage
