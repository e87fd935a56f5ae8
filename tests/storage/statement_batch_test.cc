// Statement batching (Session::Defer, QueryWithQueued, Commit; SqlValues):
// values rendered as literals mean what bound values mean, queued
// statements run in order in one round trip, a failing statement stops its
// batch and is named in the error, and a checked statement that misses its
// row count rolls the whole transaction back (its COMMIT is never sent).
#include <cppconn/resultset.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/storage/mysql/connection_pool.h"
#include "server/storage/mysql/mysql_session.h"
#include "server/storage/mysql/sql_values.h"
#include "tests/storage/status_testing.h"
#include "tests/storage/test_database.h"

namespace lumo::storage {
namespace {

using ::lumo::testing::TestDatabase;
using ::testing::HasSubstr;

using Rows = std::vector<std::vector<std::string>>;

TEST(SqlValuesTest, RendersEachKindAsItsLiteral) {
  SqlValues v;
  v.Int(-42).Text("it's a \\ test").Bytes(std::string("\x00\xff", 2)).Null();
  ASSERT_OK(v.Time(absl::FromUnixMicros(1'700'000'000'123'456)));
  ASSERT_OK_AND_ASSIGN(std::string sql,
                       v.Render("INSERT INTO t VALUES (?, ?, ?, ?, ?)"));
  EXPECT_EQ(sql,
            "INSERT INTO t VALUES (-42, 'it''s a \\\\ test', X'00ff', NULL,"
            " '2023-11-14 22:13:20.123456')");
}

TEST(SqlValuesTest, QuestionMarksInsideQuotesAreNotPlaceholders) {
  SqlValues v;
  v.Text("?");
  ASSERT_OK_AND_ASSIGN(std::string sql,
                       v.Render("SELECT '?', \"?\", `a?` FROM t WHERE a = ?"));
  EXPECT_EQ(sql, "SELECT '?', \"?\", `a?` FROM t WHERE a = '?'");
}

TEST(SqlValuesTest, AMismatchedCountIsAnInternalError) {
  SqlValues one;
  one.Int(1);
  EXPECT_CODE(one.Render("SELECT ?, ?"), absl::StatusCode::kInternal);
  EXPECT_CODE(one.Render("SELECT 1"), absl::StatusCode::kInternal);
}

TEST(SqlValuesTest, ATimeOutsideDatetimeIsRejectedAndNotAdded) {
  SqlValues v;
  EXPECT_CODE(v.Time(absl::InfiniteFuture()),
              absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(v.size(), 0u);
  ASSERT_OK(v.Time(std::nullopt));
  EXPECT_EQ(v.Shape("SELECT ?"), "SELECT NULL");
}

TEST(SqlValuesTest, TheShapeDoesNotDependOnTheValues) {
  SqlValues a;
  a.Int(1).Text("x'y").Bytes("\x01");
  SqlValues b;
  b.Int(99).Text("").Bytes("");
  EXPECT_EQ(a.Shape("SELECT ?, ?, ?"), b.Shape("SELECT ?, ?, ?"));
}

class StatementBatchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<TestDatabase>> db = TestDatabase::Create();
    if (!db.ok()) {
      error_ = new std::string(db.status().ToString());
      return;
    }
    db_ = db->release();
    absl::Status s = db_->Execute(
        "CREATE TABLE batch_rows (id INT PRIMARY KEY,"
        " v VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
        " b VARBINARY(64) NULL) ENGINE=InnoDB");
    if (!s.ok()) {
      error_ = new std::string(s.ToString());
      return;
    }
    MysqlOptions options = db_->options();
    options.pool_size = 1;
    absl::StatusOr<std::unique_ptr<ConnectionPool>> pool =
        ConnectionPool::Create(options);
    if (!pool.ok()) {
      error_ = new std::string(pool.status().ToString());
      return;
    }
    pool_ = pool->release();
  }
  static void TearDownTestSuite() {
    delete pool_;
    pool_ = nullptr;
    delete db_;
    db_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(error_, nullptr) << *error_;
    ASSERT_OK(db_->Execute("DELETE FROM batch_rows"));
  }

  static absl::Status Insert(Session& s, absl::string_view step, int id,
                             absl::string_view v) {
    SqlValues values;
    values.Int(id).Text(v).Null();
    return s.Defer(step, "INSERT INTO batch_rows (id, v, b) VALUES (?, ?, ?)",
                   values);
  }

  // Queues the update of row `id` to `v`, checked to change one row
  // (`mismatch` otherwise).
  static absl::Status UpdateChecked(Session& s, absl::string_view step, int id,
                                    absl::string_view v,
                                    absl::Status mismatch) {
    SqlValues values;
    values.Text(v).Int(id);
    return s.DeferChecked(step, "UPDATE batch_rows SET v = ? WHERE id = ?",
                          values, 1, std::move(mismatch));
  }

  Rows AllRows() {
    absl::StatusOr<Rows> rows =
        db_->Query("SELECT id, v FROM batch_rows ORDER BY id");
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *rows : Rows();
  }

  static TestDatabase* db_;
  static ConnectionPool* pool_;
  static std::string* error_;
};

TestDatabase* StatementBatchTest::db_ = nullptr;
ConnectionPool* StatementBatchTest::pool_ = nullptr;
std::string* StatementBatchTest::error_ = nullptr;

TEST_F(StatementBatchTest, TextAndBytesReadBackExactly) {
  const std::string text =
      std::string("quote ' double \" backslash \\ nul ") + '\0' +
      " semicolon; -- comment /* ? */ newline\n tab\t \xc3\xa9\xf0\x9f\x94\x91";
  const std::string bytes("\x00\x01'\\\xff", 5);
  ASSERT_OK(
      ::lumo::storage::Run(*pool_, "insert", [&](Session& s) -> absl::Status {
        s.Begin();
        SqlValues values;
        values.Int(1).Text(text).Bytes(bytes);
        if (absl::Status st = s.Defer(
                "insert", "INSERT INTO batch_rows (id, v, b) VALUES (?, ?, ?)",
                values);
            !st.ok()) {
          return st;
        }
        s.Commit();
        return absl::OkStatus();
      }));
  // Compared by the server itself, against the same values bound to a
  // prepared statement.
  std::string found;
  ASSERT_OK(
      ::lumo::storage::Run(*pool_, "compare", [&](Session& s) -> absl::Status {
        sql::PreparedStatement& q = s.Prepare(
            "SELECT COUNT(*) FROM batch_rows WHERE id = 1 AND v = ? AND b = ?");
        q.setString(1, text);
        q.setString(2, bytes);
        std::unique_ptr<sql::ResultSet> rs = s.Query(q);
        rs->next();
        found = rs->getString(1).asStdString();
        return absl::OkStatus();
      }));
  EXPECT_EQ(found, "1");
}

TEST_F(StatementBatchTest, QueuedStatementsRunInOrderInOneRoundTrip) {
  ASSERT_OK(::lumo::storage::Run(*pool_, "warm", [&](Session& s) {
    s.Query(s.Prepare("SELECT 1"));
    return absl::OkStatus();
  }));
  const uint64_t before = pool_->queries_executed();
  const uint64_t statements_before = pool_->statements_executed();
  std::string seen;
  ASSERT_OK(
      ::lumo::storage::Run(*pool_, "batch", [&](Session& s) -> absl::Status {
        s.Begin();
        if (absl::Status st = Insert(s, "first", 1, "a"); !st.ok()) return st;
        if (absl::Status st = UpdateChecked(s, "second", 1, "b",
                                            absl::InternalError("no row"));
            !st.ok()) {
          return st;
        }
        SqlValues id;
        id.Int(1);
        absl::StatusOr<std::unique_ptr<sql::ResultSet>> rs = s.QueryWithQueued(
            "read", "SELECT v FROM batch_rows WHERE id = ?", id);
        if (!rs.ok()) return rs.status();
        if ((*rs)->next()) seen = (*rs)->getString(1).asStdString();
        if (absl::Status st = Insert(s, "third", 2, "c"); !st.ok()) return st;
        s.Commit();
        return absl::OkStatus();
      }));
  EXPECT_EQ(seen, "b");
  EXPECT_EQ(AllRows(), (Rows{{"1", "b"}, {"2", "c"}}));
  // START + SAVEPOINT + INSERT + UPDATE + its row count + SELECT; INSERT +
  // RELEASE SAVEPOINT + COMMIT: two round trips of 6 and 3 statements.
  EXPECT_EQ(pool_->queries_executed() - before, 2u);
  EXPECT_EQ(pool_->statements_executed() - statements_before, 9u);
}

// A queued query's rows reach its reader when its batch runs: after the
// statements queued before it, before those after it, in the same round
// trip; one that ends a flush is read too.
TEST_F(StatementBatchTest, AQueuedQueryIsReadInItsBatch) {
  ASSERT_OK(::lumo::storage::Run(*pool_, "warm", [&](Session& s) {
    s.Query(s.Prepare("SELECT 1"));
    return absl::OkStatus();
  }));
  const uint64_t before = pool_->queries_executed();
  std::vector<std::string> read;
  std::vector<std::string> at_end;
  std::string last;
  ASSERT_OK(
      ::lumo::storage::Run(*pool_, "batch", [&](Session& s) -> absl::Status {
        s.Begin();
        if (absl::Status st = Insert(s, "first", 1, "a"); !st.ok()) return st;
        SqlValues none;
        auto values_of = [](std::vector<std::string>* out) {
          return [out](sql::ResultSet& rs) {
            while (rs.next()) out->push_back(rs.getString(1).asStdString());
          };
        };
        if (absl::Status st =
                s.DeferQuery("read", "SELECT v FROM batch_rows ORDER BY id",
                             none, values_of(&read));
            !st.ok()) {
          return st;
        }
        if (absl::Status st = Insert(s, "second", 2, "b"); !st.ok()) return st;
        SqlValues id;
        id.Int(2);
        absl::StatusOr<std::unique_ptr<sql::ResultSet>> rs = s.QueryWithQueued(
            "read the second", "SELECT v FROM batch_rows WHERE id = ?", id);
        if (!rs.ok()) return rs.status();
        if ((*rs)->next()) last = (*rs)->getString(1).asStdString();
        if (absl::Status st = Insert(s, "third", 3, "c"); !st.ok()) return st;
        if (absl::Status st = s.DeferQuery(
                "read at the end", "SELECT v FROM batch_rows ORDER BY id", none,
                values_of(&at_end));
            !st.ok()) {
          return st;
        }
        EXPECT_TRUE(at_end.empty());
        s.Flush();
        s.Commit();
        return absl::OkStatus();
      }));
  EXPECT_EQ(read, std::vector<std::string>({"a"}));
  EXPECT_EQ(last, "b");
  EXPECT_EQ(at_end, std::vector<std::string>({"a", "b", "c"}));
  // START ... read the second; third + read at the end; RELEASE + COMMIT.
  EXPECT_EQ(pool_->queries_executed() - before, 3u);
}

TEST_F(StatementBatchTest, AFailingStatementStopsItsBatchAndIsNamed) {
  ASSERT_OK(db_->Execute("INSERT INTO batch_rows (id, v) VALUES (7, 'old')"));
  absl::Status status =
      ::lumo::storage::Run(*pool_, "batch", [&](Session& s) -> absl::Status {
        s.Begin();
        if (absl::Status st = Insert(s, "insert one", 1, "a"); !st.ok())
          return st;
        if (absl::Status st = Insert(s, "insert the taken id", 7, "dup");
            !st.ok()) {
          return st;
        }
        if (absl::Status st = Insert(s, "insert three", 3, "c"); !st.ok()) {
          return st;
        }
        s.Commit();
        return absl::OkStatus();
      });
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists) << status;
  EXPECT_THAT(status.message(), HasSubstr("insert the taken id"));
  EXPECT_EQ(AllRows(), (Rows{{"7", "old"}}));
  // The session is usable afterwards (the pool has one connection).
  ASSERT_OK(
      ::lumo::storage::Run(*pool_, "after", [&](Session& s) -> absl::Status {
        s.Begin();
        if (absl::Status st = Insert(s, "insert", 2, "b"); !st.ok()) return st;
        s.Commit();
        return absl::OkStatus();
      }));
  EXPECT_EQ(AllRows(), (Rows{{"2", "b"}, {"7", "old"}}));
}

TEST_F(StatementBatchTest, ACheckedStatementThatMissesRollsEverythingBack) {
  absl::Status status =
      ::lumo::storage::Run(*pool_, "batch", [&](Session& s) -> absl::Status {
        s.Begin();
        if (absl::Status st = Insert(s, "insert", 1, "a"); !st.ok()) return st;
        if (absl::Status st =
                UpdateChecked(s, "update", 99, "b",  // no such row
                              absl::AbortedError("the row was not there"));
            !st.ok()) {
          return st;
        }
        if (absl::Status st = Insert(s, "insert after", 2, "c"); !st.ok()) {
          return st;
        }
        s.Commit();
        return absl::OkStatus();
      });
  EXPECT_EQ(status, absl::AbortedError("the row was not there"));
  EXPECT_EQ(AllRows(), Rows{});
}

// The checked statement is the last one queued: the flush before COMMIT
// ends with its row count, which is checked like any other.
TEST_F(StatementBatchTest, ACheckedStatementLastBeforeCommitIsChecked) {
  absl::Status status =
      ::lumo::storage::Run(*pool_, "batch", [&](Session& s) -> absl::Status {
        s.Begin();
        if (absl::Status st = Insert(s, "insert", 1, "a"); !st.ok()) return st;
        if (absl::Status st =
                UpdateChecked(s, "update", 99, "b",  // no such row
                              absl::AbortedError("the row was not there"));
            !st.ok()) {
          return st;
        }
        s.Commit();
        return absl::OkStatus();
      });
  EXPECT_EQ(status, absl::AbortedError("the row was not there"));
  EXPECT_EQ(AllRows(), Rows{});
  // And a flush of its own (no query after it) checks it too.
  status = ::lumo::storage::Run(*pool_, "flush", [&](Session& s) {
    s.Begin();
    if (absl::Status st = UpdateChecked(
            s, "update", 99, "b", absl::AbortedError("flushed and checked"));
        !st.ok()) {
      return st;
    }
    s.Flush();
    return absl::InternalError("the flush did not raise the mismatch");
  });
  EXPECT_EQ(status, absl::AbortedError("flushed and checked"));
}

// The transaction ended under the session (what a Galera brute-force abort
// whose error is not delivered does) and a new one began in its place: the
// savepoint's release, sent in the COMMIT's batch, fails, so the COMMIT
// after it in the same round trip does not run and the new transaction's
// row is rolled back with it; the call is the conflict it was.
TEST_F(StatementBatchTest, ACommitAfterTheTransactionEndedUnseenDoesNotRun) {
  int attempts = 0;
  absl::Status status =
      ::lumo::storage::Run(*pool_, "batch", [&](Session& s) -> absl::Status {
        ++attempts;
        s.Begin();
        if (absl::Status st = Insert(s, "insert", 1, "a"); !st.ok()) return st;
        s.Update(s.Prepare("ROLLBACK"));  // flushes the insert first
        if (absl::Status st =
                s.Defer("new transaction", "START TRANSACTION", SqlValues());
            !st.ok()) {
          return st;
        }
        if (absl::Status st =
                Insert(s, "insert in the new transaction", 2, "b");
            !st.ok()) {
          return st;
        }
        s.Commit();
        return absl::OkStatus();
      });
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_THAT(status.message(), HasSubstr("check transaction"));
  EXPECT_EQ(attempts, 1);
  EXPECT_EQ(AllRows(), Rows{});
  // The connection went back to the pool without a transaction open.
  ASSERT_OK(::lumo::storage::Run(*pool_, "after", [&](Session& s) {
    std::unique_ptr<sql::ResultSet> rs =
        s.Query(s.Prepare("SELECT @@in_transaction"));
    EXPECT_TRUE(rs->next());
    EXPECT_EQ(rs->getInt(1), 0);
    return absl::OkStatus();
  }));
}

}  // namespace
}  // namespace lumo::storage
