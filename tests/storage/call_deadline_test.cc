// Statements bounded by the caller's deadline (storage/call_deadline.h,
// docs/reliability.md "Deadlines") against the real MariaDB: a slow
// statement, a lock wait and a full pool all end with DEADLINE_EXCEEDED
// when the call's deadline comes, and the session's own ceiling is reused
// by calls with a similar budget (no extra query per call).
#include "server/storage/call_deadline.h"

#include <cppconn/resultset.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/storage/mysql/connection_pool.h"
#include "server/storage/mysql/mysql_session.h"
#include "tests/storage/status_testing.h"
#include "tests/storage/test_database.h"

namespace lumo::storage {
namespace {

using ::lumo::testing::TestDatabase;

class CallDeadlineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<TestDatabase>> db = TestDatabase::Create();
    if (!db.ok()) {
      error_ = new std::string(db.status().ToString());
      return;
    }
    db_ = db->release();
    absl::Status s = db_->Execute(
        "CREATE TABLE slow_rows (id INT PRIMARY KEY, v INT) ENGINE=InnoDB");
    if (s.ok()) s = db_->Execute("INSERT INTO slow_rows VALUES (1, 0)");
    if (!s.ok()) error_ = new std::string(s.ToString());
  }
  static void TearDownTestSuite() {
    delete db_;
    db_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(error_, nullptr) << *error_;
    ASSERT_NE(db_, nullptr);
  }

  std::unique_ptr<ConnectionPool> Pool(int size) {
    MysqlOptions options = db_->options();
    options.pool_size = size;
    options.acquire_timeout = absl::Seconds(10);
    options.statement_timeout = absl::Seconds(20);
    options.lock_wait_timeout_seconds = 20;
    absl::StatusOr<std::unique_ptr<ConnectionPool>> pool =
        ConnectionPool::Create(options);
    EXPECT_TRUE(pool.ok()) << pool.status();
    return pool.ok() ? *std::move(pool) : nullptr;
  }

  static TestDatabase* db_;
  static std::string* error_;
};

TestDatabase* CallDeadlineTest::db_ = nullptr;
std::string* CallDeadlineTest::error_ = nullptr;

TEST_F(CallDeadlineTest, ScopesNestAndOnlyShorten) {
  EXPECT_EQ(CurrentCallDeadline(), absl::InfiniteFuture());
  const absl::Time t = absl::Now() + absl::Seconds(5);
  {
    ScopedCallDeadline outer(t);
    EXPECT_EQ(CurrentCallDeadline(), t);
    {
      ScopedCallDeadline inner(t + absl::Seconds(10));
      EXPECT_EQ(CurrentCallDeadline(), t);
    }
    {
      ScopedCallDeadline inner(t - absl::Seconds(1));
      EXPECT_EQ(CurrentCallDeadline(), t - absl::Seconds(1));
    }
    EXPECT_EQ(CurrentCallDeadline(), t);
  }
  EXPECT_EQ(CurrentCallDeadline(), absl::InfiniteFuture());
}

TEST_F(CallDeadlineTest, SlowStatementEndsAtTheCallDeadline) {
  std::unique_ptr<ConnectionPool> pool = Pool(2);
  ASSERT_NE(pool, nullptr);
  const absl::Time start = absl::Now();
  absl::Status status;
  {
    ScopedCallDeadline deadline(start + absl::Milliseconds(600));
    status = ::lumo::storage::Run(*pool, "sleep", [](Session& s) {
      s.Step("sleep");
      std::unique_ptr<sql::PreparedStatement> sleep =
          s.PrepareUncached("SELECT SLEEP(10)");
      std::unique_ptr<sql::ResultSet> rs(sleep->executeQuery());
      if (rs->next() && rs->getInt(1) == 1) {
        // SLEEP() reports an interruption by returning 1.
        return absl::DeadlineExceededError("sleep interrupted");
      }
      return absl::OkStatus();
    });
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500));
  // The connection is fine afterwards, with the configured ceiling back.
  ASSERT_OK_AND_ASSIGN(ConnectionLease lease, pool->Acquire());
  lease->BoundStatements(absl::InfiniteDuration());
  EXPECT_EQ(lease->statement_ceiling(), absl::Seconds(20));
}

TEST_F(CallDeadlineTest, LockWaitEndsAtTheCallDeadlineNotTheSessionTimeout) {
  std::unique_ptr<ConnectionPool> pool = Pool(2);
  ASSERT_NE(pool, nullptr);
  // Another session holds the row lock.
  std::unique_ptr<ConnectionPool> holder_pool = Pool(1);
  ASSERT_OK_AND_ASSIGN(ConnectionLease holder, holder_pool->Acquire());
  holder->Execute("START TRANSACTION");
  holder->QueryText("SELECT v FROM slow_rows WHERE id = 1 FOR UPDATE");

  const absl::Time start = absl::Now();
  absl::Status status;
  {
    ScopedCallDeadline deadline(start + absl::Milliseconds(800));
    status = ::lumo::storage::Run(*pool, "locked update", [](Session& s) {
      s.Begin();
      s.Step("update locked row");
      sql::PreparedStatement& update =
          s.Prepare("UPDATE slow_rows SET v = v + 1 WHERE id = 1");
      s.Update(update);
      s.Commit();
      return absl::OkStatus();
    });
  }
  const absl::Duration took = absl::Now() - start;
  holder->Execute("ROLLBACK");
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_LT(took, absl::Milliseconds(1500));
  // Without a deadline the same update goes through once the lock is gone.
  EXPECT_OK(::lumo::storage::Run(*pool, "update", [](Session& s) {
    s.Update(s.Prepare("UPDATE slow_rows SET v = v + 1 WHERE id = 1"));
    return absl::OkStatus();
  }));
}

TEST_F(CallDeadlineTest, FullPoolGivesDeadlineExceededAtTheCallDeadline) {
  std::unique_ptr<ConnectionPool> pool = Pool(1);
  ASSERT_NE(pool, nullptr);
  ASSERT_OK_AND_ASSIGN(ConnectionLease taken, pool->Acquire());
  const absl::Time start = absl::Now();
  absl::StatusOr<ConnectionLease> second =
      pool->Acquire(start + absl::Milliseconds(300));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(CallDeadlineTest, PassedDeadlineRunsNothing) {
  std::unique_ptr<ConnectionPool> pool = Pool(1);
  ASSERT_NE(pool, nullptr);
  const uint64_t before = pool->queries_executed();
  ScopedCallDeadline deadline(absl::Now() - absl::Seconds(1));
  bool ran = false;
  absl::Status status = ::lumo::storage::Run(*pool, "late", [&](Session&) {
    ran = true;
    return absl::OkStatus();
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(ran);
  EXPECT_EQ(pool->queries_executed(), before);
}

TEST_F(CallDeadlineTest, SimilarBudgetsReuseTheSessionCeiling) {
  std::unique_ptr<ConnectionPool> pool = Pool(1);
  ASSERT_NE(pool, nullptr);
  auto select_one = [](Session& s) {
    s.Query(s.Prepare("SELECT 1"));
    return absl::OkStatus();
  };
  // No deadline: the configured ceiling, no extra statement.
  ASSERT_OK(::lumo::storage::Run(*pool, "warm", select_one));
  uint64_t before = pool->queries_executed();
  ASSERT_OK(::lumo::storage::Run(*pool, "no deadline", select_one));
  EXPECT_EQ(pool->queries_executed() - before, 1u);
  // A 2 s budget lowers the ceiling once (one SET), then calls with a
  // similar budget reuse it.
  before = pool->queries_executed();
  for (int i = 0; i < 5; ++i) {
    ScopedCallDeadline deadline(absl::Now() + absl::Seconds(2));
    ASSERT_OK(::lumo::storage::Run(*pool, "2s", select_one));
  }
  EXPECT_EQ(pool->queries_executed() - before, 6u);
  // Back to no deadline: one SET to restore the ceiling.
  before = pool->queries_executed();
  ASSERT_OK(::lumo::storage::Run(*pool, "no deadline again", select_one));
  EXPECT_EQ(pool->queries_executed() - before, 2u);
}

}  // namespace
}  // namespace lumo::storage
