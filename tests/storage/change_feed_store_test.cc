// The change feed and the membership table on a real MariaDB: an
// out-of-order commit (a transaction holding an earlier seq open while a
// later one commits) is still delivered, both to a bare FeedCursor and to a
// running ReplicaSync; leases are judged on the database clock.
#include <cppconn/resultset.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/core/pepper.h"
#include "server/service/feed_cursor.h"
#include "server/service/replica_sync.h"
#include "server/service/verifier.h"
#include "server/storage/mysql/mysql_change_feed_store.h"
#include "server/storage/mysql/mysql_key_store.h"
#include "tests/storage/test_database.h"

namespace lumo::storage {
namespace {

using ::lumo::service::FeedCursor;
using ::lumo::testing::TestDatabase;

constexpr char kInsertChange[] =
    "INSERT INTO key_changes (tenant_id, key_id, change_type, key_version,"
    " created_at) VALUES (1, '%s', 'revoked', 2, UTC_TIMESTAMP(6))";

std::string InsertChangeSql(absl::string_view key_id) {
  std::string sql = kInsertChange;
  sql.replace(sql.find("%s"), 2, std::string(key_id));
  return sql;
}

class ChangeFeedStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = TestDatabase::Create();
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    auto feed = MysqlChangeFeedStore::Open(db_->options());
    ASSERT_TRUE(feed.ok()) << feed.status();
    feed_ = *std::move(feed);
  }

  // Starts a transaction on its own connection that inserts a change row
  // and stays open; returns its seq.
  int64_t HoldOpenChange(absl::string_view key_id) {
    auto conn = OpenMysqlConnection(db_->options(), nullptr);
    EXPECT_TRUE(conn.ok()) << conn.status();
    held_ = *std::move(conn);
    held_->Execute("START TRANSACTION");
    held_->Execute(InsertChangeSql(key_id));
    auto rs = held_->QueryText("SELECT LAST_INSERT_ID()");
    EXPECT_TRUE(rs->next());
    return rs->getInt64(1);
  }
  int64_t CommitChange(absl::string_view key_id) {
    EXPECT_TRUE(db_->Execute(InsertChangeSql(key_id)).ok());
    auto seq = db_->QueryValue(absl::StrCat(
        "SELECT MAX(seq) FROM key_changes WHERE key_id = '", key_id, "'"));
    int64_t value = 0;
    EXPECT_TRUE(seq.ok() && absl::SimpleAtoi(*seq, &value));
    return value;
  }

  // One tailer round with a bare cursor; returns the key ids delivered.
  std::vector<std::string> Round(FeedCursor& cursor) {
    const auto started = FeedCursor::Clock::now();
    auto rows = feed_->ReadChanges(cursor.applied(), 1000);
    EXPECT_TRUE(rows.ok()) << rows.status();
    const auto finished = FeedCursor::Clock::now();
    std::vector<int64_t> seqs;
    for (const KeyChange& c : *rows) seqs.push_back(c.seq);
    std::vector<int64_t> fresh =
        cursor.Observe(seqs, FeedCursor::kCoveredAll, started, finished);
    std::vector<std::string> ids;
    for (const KeyChange& c : *rows) {
      for (int64_t s : fresh) {
        if (s == c.seq) ids.push_back(c.key_id);
      }
    }
    return ids;
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<MysqlChangeFeedStore> feed_;
  std::unique_ptr<MysqlConnection> held_;
};

TEST_F(ChangeFeedStoreTest, OutOfOrderCommitIsDeliveredToTheCursor) {
  const int64_t first = CommitChange("aaaaaaaaaaaa");
  FeedCursor cursor(0, std::chrono::seconds(30));
  EXPECT_EQ(Round(cursor), std::vector<std::string>{"aaaaaaaaaaaa"});

  const int64_t early = HoldOpenChange("eeeeeeeeeeee");
  const int64_t late = CommitChange("llllllllllll");
  ASSERT_GT(late, early) << "the held transaction took the earlier seq";
  EXPECT_EQ(Round(cursor), std::vector<std::string>{"llllllllllll"});
  EXPECT_EQ(cursor.applied(), first) << "advanced past an uncommitted seq";
  EXPECT_EQ(Round(cursor), std::vector<std::string>{});

  held_->Execute("COMMIT");
  EXPECT_EQ(Round(cursor), std::vector<std::string>{"eeeeeeeeeeee"});
  EXPECT_EQ(cursor.applied(), late);
  EXPECT_EQ(cursor.abandoned(), 0);
}

TEST_F(ChangeFeedStoreTest, OutOfOrderCommitHoldsARunningReplicasAck) {
  auto keys = MysqlKeyStore::Open(db_->options());
  ASSERT_TRUE(keys.ok()) << keys.status();
  auto peppers = core::PepperSet::Parse(
      "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
  ASSERT_TRUE(peppers.ok());
  service::Verifier verifier(keys->get(), *peppers, {});
  service::ReplicaSyncOptions options;
  options.replica_id = "tailer";
  options.poll_interval = absl::Milliseconds(10);
  options.gap_timeout = absl::Seconds(30);  // never abandons in this test
  auto sync = service::ReplicaSync::Start(feed_.get(), &verifier, options);
  ASSERT_TRUE(sync.ok()) << sync.status();

  const int64_t early = HoldOpenChange("eeeeeeeeeeee");
  const int64_t late = CommitChange("llllllllllll");
  ASSERT_GT(late, early);
  // The replica publishes its applied position; it must stop below `early`
  // for as long as that transaction is open.
  auto published = [&] {
    auto v =
        db_->QueryValue("SELECT applied_seq FROM replicas WHERE id = 'tailer'");
    int64_t n = -1;
    if (v.ok()) (void)absl::SimpleAtoi(*v, &n);
    return n;
  };
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ((*sync)->applied(), early - 1);
  EXPECT_EQ(published(), early - 1);
  // A writer waiting for `late` is not acknowledged by this replica yet.
  EXPECT_EQ(*feed_->CountUnacknowledged("writer", late), 1);

  held_->Execute("COMMIT");
  const absl::Time end = absl::Now() + absl::Seconds(10);
  while (published() < late && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(published(), late);
  EXPECT_EQ(*feed_->CountUnacknowledged("writer", late), 0);
  EXPECT_EQ((*sync)->abandoned(), 0);
  (*sync)->Stop();
  EXPECT_FALSE(db_->QueryValue("SELECT id FROM replicas").ok())
      << "Stop must delete the row";
}

TEST_F(ChangeFeedStoreTest, LeasesAreJudgedOnTheDatabaseClock) {
  ReplicaRegistration r;
  r.id = "short";
  // Long enough that the checks right after a heartbeat cannot outlive it
  // on a loaded machine.
  r.lease = absl::Seconds(2);
  r.applied_seq = 0;
  ASSERT_TRUE(feed_->Register(r, absl::Hours(1)).ok());
  EXPECT_EQ(*feed_->CountUnacknowledged("writer", 1), 1);
  EXPECT_EQ(*feed_->CountUnacknowledged("short", 1), 0) << "self excluded";
  ASSERT_TRUE(feed_->Heartbeat("short", 1).ok());
  EXPECT_EQ(*feed_->CountUnacknowledged("writer", 1), 0) << "acknowledged";
  EXPECT_EQ(*feed_->CountUnacknowledged("writer", 2), 1);
  absl::SleepFor(absl::Milliseconds(2500));
  EXPECT_EQ(*feed_->CountUnacknowledged("writer", 2), 0) << "lease ran out";
  ASSERT_TRUE(feed_->Heartbeat("short", 1).ok());
  EXPECT_EQ(*feed_->CountUnacknowledged("writer", 2), 1) << "renewed";
  ASSERT_TRUE(feed_->Deregister("short").ok());
  EXPECT_EQ(feed_->Heartbeat("short", 1).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*feed_->CountUnacknowledged("writer", 2), 0);
}

TEST_F(ChangeFeedStoreTest, RegisterPrunesLongDeadReplicas) {
  ReplicaRegistration r;
  r.id = "old";
  r.lease = absl::Milliseconds(100);
  ASSERT_TRUE(feed_->Register(r, absl::Hours(1)).ok());
  absl::SleepFor(absl::Milliseconds(300));
  r.id = "new";
  ASSERT_TRUE(feed_->Register(r, absl::Milliseconds(100)).ok());
  EXPECT_EQ(*db_->QueryValue("SELECT GROUP_CONCAT(id) FROM replicas"), "new");
}

TEST_F(ChangeFeedStoreTest, HeadAnnounceAndStartingPoint) {
  EXPECT_EQ(*feed_->Head(), 0);
  EXPECT_EQ(*feed_->StartingPoint(absl::Seconds(3)), 0);
  const int64_t a = CommitChange("aaaaaaaaaaaa");
  EXPECT_EQ(*feed_->Head(), a);
  KeyChange change;
  change.tenant_id = 1;
  change.key_id = "bbbbbbbbbbbb";
  change.change_type = "rotated";
  change.key_version = 3;
  auto b = feed_->Announce(change);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_GT(*b, a);
  EXPECT_EQ(*feed_->Head(), *b);
  auto rows = feed_->ReadChanges(a, 10);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].key_id, "bbbbbbbbbbbb");
  EXPECT_EQ((*rows)[0].change_type, "rotated");
  EXPECT_EQ((*rows)[0].key_version, 3);
  // Both rows are brand new: a tailer starting now must read them.
  EXPECT_EQ(*feed_->StartingPoint(absl::Seconds(3)), 0);
  ASSERT_TRUE(db_->Execute("UPDATE key_changes SET created_at ="
                           " UTC_TIMESTAMP(6) - INTERVAL 1 HOUR")
                  .ok());
  EXPECT_EQ(*feed_->StartingPoint(absl::Seconds(3)), *b);
}

}  // namespace
}  // namespace lumo::storage
