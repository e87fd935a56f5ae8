// The change feed and the membership table on a real MariaDB: an
// out-of-order commit (a transaction holding an earlier seq open while a
// later one commits) is still delivered, both to a bare FeedCursor and to a
// running ReplicaSync; a row held open in one writer's stream holds back
// the acknowledgements of that writer only; leases are judged on the
// database clock.
#include <cppconn/resultset.h>

#include <chrono>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/core/pepper.h"
#include "server/fault/fault_injection.h"
#include "server/fault/fault_points.h"
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

// A writer that is not registered: sees every registered replica.
ReplicaName Writer() { return {"writer", "w"}; }
constexpr int64_t kNobody = std::numeric_limits<int64_t>::max();

constexpr char kInsertChange[] =
    "INSERT INTO key_changes (tenant_id, key_id, change_type, key_version,"
    " created_at) VALUES (1, '%s', 'revoked', 2, UTC_TIMESTAMP(6))";

std::string InsertChangeSql(absl::string_view key_id) {
  std::string sql = kInsertChange;
  sql.replace(sql.find("%s"), 2, std::string(key_id));
  return sql;
}

// A row at position `wseq` of `writer`'s stream.
std::string InsertStreamChangeSql(absl::string_view writer, int64_t wseq,
                                  absl::string_view key_id) {
  return absl::StrCat(
      "INSERT INTO key_changes (writer, wseq, tenant_id, key_id, change_type,"
      " key_version, created_at) VALUES ('",
      writer, "', ", wseq, ", 1, '", key_id,
      "', 'revoked', 2, UTC_TIMESTAMP(6))");
}

// The audit event of the tests' key mutations.
AuditEvent TestEvent() {
  AuditEvent event;
  event.action = "api_key.test";
  event.category = "api_keys";
  event.actor_type = "system";
  return event;
}

// Creates tenant `slug` and, in it, `key` (its id set by the caller)
// through `keys`; `*tenant_id` receives the tenant's id.
void CreateTenantAndKey(KeyStore& keys, absl::string_view slug, NewKey key,
                        int64_t* tenant_id) {
  auto tenant = keys.CreateTenant(slug, "Test", nullptr, {});
  ASSERT_TRUE(tenant.ok()) << tenant.status();
  *tenant_id = tenant->id;
  key.tenant_id = tenant->id;
  key.name = "k";
  key.secret = {core::Digest{}, 1};
  key.created_by_type = "system";
  ASSERT_TRUE(keys.InsertKey(key, TestEvent()).ok());
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
  // Like HoldOpenChange, for a row of a writer's stream.
  void HoldOpenStreamChange(absl::string_view writer, int64_t wseq,
                            absl::string_view key_id) {
    auto conn = OpenMysqlConnection(db_->options(), nullptr);
    ASSERT_TRUE(conn.ok()) << conn.status();
    held_ = *std::move(conn);
    held_->Execute("START TRANSACTION");
    held_->Execute(InsertStreamChangeSql(writer, wseq, key_id));
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
    auto read = feed_->ReadChanges(cursor.applied(), FeedPosition(), 1000);
    EXPECT_TRUE(read.ok()) << read.status();
    const auto finished = FeedCursor::Clock::now();
    std::vector<int64_t> seqs;
    for (const KeyChange& c : read->changes) seqs.push_back(c.seq);
    std::vector<int64_t> fresh =
        cursor.Observe(seqs, FeedCursor::kCoveredAll, started, finished);
    std::vector<std::string> ids;
    for (const KeyChange& c : read->changes) {
      for (int64_t s : fresh) {
        if (s == c.seq) ids.push_back(c.key_id);
      }
    }
    return ids;
  }

  // A running ReplicaSync ("tailer") over this database, whose gap timeout
  // (30 s by default) gives no hole up during a test. With
  // `stream_writer`, it is the writer of its stream through keys_.
  absl::StatusOr<std::unique_ptr<service::ReplicaSync>> StartTailer(
      bool stream_writer = false,
      absl::Duration gap_timeout = absl::Seconds(30)) {
    auto keys = MysqlKeyStore::Open(db_->options());
    if (!keys.ok()) return keys.status();
    keys_ = *std::move(keys);
    auto peppers = core::PepperSet::Parse(
        "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        "\n");
    if (!peppers.ok()) return peppers.status();
    verifier_ = std::make_unique<service::Verifier>(keys_.get(), *peppers,
                                                    service::VerifierOptions());
    service::ReplicaSyncOptions options;
    options.replica_id = "tailer";
    options.poll_interval = absl::Milliseconds(10);
    options.gap_timeout = gap_timeout;
    if (stream_writer) options.stream_writer = keys_.get();
    return service::ReplicaSync::Start(feed_.get(), verifier_.get(), options);
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<MysqlChangeFeedStore> feed_;
  std::unique_ptr<MysqlConnection> held_;
  // The tailer's stores (it is the test's own, destroyed first).
  std::unique_ptr<MysqlKeyStore> keys_;
  std::unique_ptr<service::Verifier> verifier_;
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
  auto sync = StartTailer();
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
  EXPECT_LT(*feed_->AcknowledgedThrough(Writer()), late);

  held_->Execute("COMMIT");
  const absl::Time end = absl::Now() + absl::Seconds(10);
  while (published() < late && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(published(), late);
  EXPECT_GE(*feed_->AcknowledgedThrough(Writer()), late);
  EXPECT_EQ((*sync)->abandoned(), 0);
  (*sync)->Stop();
  EXPECT_FALSE(db_->QueryValue("SELECT id FROM replicas").ok())
      << "Stop must delete the row";
}

// The Galera case of the test above, in stream form: a transaction of
// writer 1 holds position 1 of its stream open while its position 2 and
// writer 2's position 1 commit. A running ReplicaSync acknowledges writer
// 2's row at once and holds writer 1's acknowledgement below the open row
// until it commits; nothing is given up. (On a Galera node, where seq
// steps by the cluster size and the legacy tests above wait on holes, this
// one holds too.)
TEST_F(ChangeFeedStoreTest, AnOpenRowHoldsBackOnlyItsOwnWritersStream) {
  // The writers are registered (readers learn of a stream from its
  // writer's row) with a lease that ran out: they are not peers whose own
  // positions would be waited for.
  ReplicaRegistration w;
  w.lease = absl::Milliseconds(1);
  w.name = {"w1", "writer1incarnatn"};
  ASSERT_TRUE(feed_->Register(w, absl::Hours(1)).ok());
  w.name = {"w2", "writer2incarnatn"};
  ASSERT_TRUE(feed_->Register(w, absl::Hours(1)).ok());
  auto sync = StartTailer();
  ASSERT_TRUE(sync.ok()) << sync.status();

  HoldOpenStreamChange("writer1incarnatn", 1, "eeeeeeeeeeee");
  ASSERT_TRUE(
      db_->Execute(InsertStreamChangeSql("writer1incarnatn", 2, "llllllllllll"))
          .ok());
  ASSERT_TRUE(
      db_->Execute(InsertStreamChangeSql("writer2incarnatn", 1, "oooooooooooo"))
          .ok());
  const ReplicaName writer1{"w1", "writer1incarnatn"};
  const ReplicaName writer2{"w2", "writer2incarnatn"};
  auto acknowledged = [&](const ReplicaName& writer) {
    auto through = feed_->StreamAcknowledgedThrough(writer, writer.incarnation);
    EXPECT_TRUE(through.ok()) << through.status();
    return through.ok() ? *through : -1;
  };
  const absl::Time end =
      absl::Now() + absl::Seconds(10) * ::lumo::testing::TestTimeScale();
  while (acknowledged(writer2) < 1 && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(acknowledged(writer2), 1) << "writer 2 waits on writer 1's hole";
  EXPECT_EQ(acknowledged(writer1), 0) << "acknowledged past an open row";

  held_->Execute("COMMIT");
  while (acknowledged(writer1) < 2 && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(acknowledged(writer1), 2);
  EXPECT_EQ((*sync)->stream_abandoned(), 0);
  (*sync)->Stop();
  EXPECT_EQ(*db_->QueryValue("SELECT COUNT(*) FROM feed_positions"), "0")
      << "Stop must delete the reader's positions";
}

TEST_F(ChangeFeedStoreTest, LeasesAreJudgedOnTheDatabaseClock) {
  ReplicaRegistration r;
  r.name = {"short", "i1"};
  // Long enough that the checks right after a heartbeat cannot outlive it
  // on a loaded machine.
  r.lease = absl::Seconds(2);
  r.applied_seq = 0;
  ASSERT_TRUE(feed_->Register(r, absl::Hours(1)).ok());
  EXPECT_EQ(*feed_->AcknowledgedThrough(Writer()), 0);
  EXPECT_EQ(*feed_->AcknowledgedThrough(r.name), kNobody) << "self excluded";
  ASSERT_TRUE(feed_->Heartbeat(r.name, 1, FeedPosition()).ok());
  EXPECT_EQ(*feed_->AcknowledgedThrough(Writer()), 1) << "acknowledged";
  absl::SleepFor(absl::Milliseconds(2500));
  EXPECT_EQ(*feed_->AcknowledgedThrough(Writer()), kNobody) << "lease ran out";
  ASSERT_TRUE(feed_->Heartbeat(r.name, 1, FeedPosition()).ok());
  EXPECT_EQ(*feed_->AcknowledgedThrough(Writer()), 1) << "renewed";
  ASSERT_TRUE(feed_->Deregister(r.name).ok());
  EXPECT_EQ(feed_->Heartbeat(r.name, 1, FeedPosition()).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(*feed_->AcknowledgedThrough(Writer()), kNobody);
}

TEST_F(ChangeFeedStoreTest, TwoIncarnationsOfOneIdAreTwoReplicas) {
  ReplicaRegistration r;
  r.name = {"twin", "first"};
  r.lease = absl::Seconds(60);
  ASSERT_TRUE(feed_->Register(r, absl::Hours(1)).ok());
  r.name.incarnation = "second";
  ASSERT_TRUE(feed_->Register(r, absl::Hours(1)).ok());
  ASSERT_TRUE(feed_->Heartbeat({"twin", "first"}, 5, FeedPosition()).ok());
  EXPECT_EQ(*feed_->AcknowledgedThrough(Writer()), 0) << "second is behind";
  ASSERT_TRUE(feed_->Heartbeat({"twin", "second"}, 4, FeedPosition()).ok());
  EXPECT_EQ(*feed_->AcknowledgedThrough(Writer()), 4);
  EXPECT_EQ(*feed_->AcknowledgedThrough({"twin", "first"}), 4)
      << "only the caller's own incarnation is excluded";
  ASSERT_TRUE(feed_->Deregister({"twin", "second"}).ok());
  EXPECT_EQ(*feed_->AcknowledgedThrough(Writer()), 5);
}

TEST_F(ChangeFeedStoreTest, AReplicaWhoseAnchorRowIsGoneAcknowledgesNothing) {
  CommitChange("aaaaaaaaaaaa");
  const int64_t b = CommitChange("bbbbbbbbbbbb");
  auto read = feed_->ReadChanges(0, FeedPosition(), 10);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->changes.size(), 2u);
  FeedPosition anchor{b, read->changes.back().created_at};
  EXPECT_TRUE(feed_->ReadChanges(b, anchor, 10)->anchor_intact);

  ReplicaRegistration r;
  r.name = {"r", "i"};
  r.lease = absl::Seconds(60);
  ASSERT_TRUE(feed_->Register(r, absl::Hours(1)).ok());
  ASSERT_TRUE(feed_->Heartbeat(r.name, b, anchor).ok());
  EXPECT_EQ(*feed_->AcknowledgedThrough(Writer()), b);

  // Rolled back: the anchor row is gone ...
  ASSERT_TRUE(
      db_->Execute(absl::StrCat("DELETE FROM key_changes WHERE seq = ", b))
          .ok());
  EXPECT_FALSE(feed_->ReadChanges(b, anchor, 10)->anchor_intact);
  EXPECT_EQ(*feed_->AcknowledgedThrough(Writer()), -1);
  // ... or its seq is reused by another row.
  ASSERT_TRUE(
      db_->Execute(absl::StrCat("INSERT INTO key_changes (seq, tenant_id,"
                                " key_id, change_type, key_version, created_at)"
                                " VALUES (",
                                b,
                                ", 1, 'cccccccccccc', 'revoked', 2,"
                                " UTC_TIMESTAMP(6) + INTERVAL 1 SECOND)"))
          .ok());
  EXPECT_FALSE(feed_->ReadChanges(b, anchor, 10)->anchor_intact);
  EXPECT_EQ(*feed_->AcknowledgedThrough(Writer()), -1);
  EXPECT_TRUE(feed_->ReadChanges(0, FeedPosition(), 10)->anchor_intact)
      << "position 0 is never checked";
}

TEST_F(ChangeFeedStoreTest, ReadsCarryTheLongestGapTimeoutAndTheClock) {
  EXPECT_EQ(*feed_->MaxGapTimeout(), absl::ZeroDuration());
  ReplicaRegistration r;
  r.name = {"a", "1"};
  r.lease = absl::Seconds(3);
  r.gap_timeout = absl::Milliseconds(300);
  ASSERT_TRUE(feed_->Register(r, absl::Hours(1)).ok());
  r.name = {"b", "1"};
  r.gap_timeout = absl::Seconds(2);
  ASSERT_TRUE(feed_->Register(r, absl::Hours(1)).ok());
  EXPECT_EQ(*feed_->MaxGapTimeout(), absl::Seconds(2));
  const absl::Time before = absl::Now();
  auto read = feed_->ReadChanges(0, FeedPosition(), 10);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->changes.empty());
  EXPECT_EQ(read->max_gap_timeout, absl::Seconds(2));
  // Same host: the database clock is within a minute of ours.
  EXPECT_LT(absl::AbsDuration(read->db_now - before), absl::Minutes(1));
}

TEST_F(ChangeFeedStoreTest, RegisterPrunesLongDeadReplicas) {
  ReplicaRegistration r;
  r.name = {"old", "1"};
  r.lease = absl::Milliseconds(100);
  ASSERT_TRUE(feed_->Register(r, absl::Hours(1)).ok());
  absl::SleepFor(absl::Milliseconds(300));
  r.name = {"new", "1"};
  ASSERT_TRUE(feed_->Register(r, absl::Milliseconds(100)).ok());
  EXPECT_EQ(*db_->QueryValue("SELECT GROUP_CONCAT(id) FROM replicas"), "new");
}

TEST_F(ChangeFeedStoreTest, HeadAnnounceAndStartingPoint) {
  EXPECT_EQ(*feed_->Head(), 0);
  EXPECT_EQ(feed_->StartingPoint(absl::Seconds(3))->seq, 0);
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
  auto read = feed_->ReadChanges(a, FeedPosition(), 10);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->changes.size(), 1u);
  EXPECT_EQ(read->changes[0].key_id, "bbbbbbbbbbbb");
  EXPECT_EQ(read->changes[0].change_type, "rotated");
  EXPECT_EQ(read->changes[0].key_version, 3);
  EXPECT_EQ(*db_->QueryValue("SELECT GROUP_CONCAT(announcement ORDER BY seq)"
                             " FROM key_changes"),
            "0,1")
      << "the announcement is marked, the change is not";
  // Both rows are brand new: a tailer starting now must read them.
  EXPECT_EQ(feed_->StartingPoint(absl::Seconds(3))->seq, 0);
  ASSERT_TRUE(db_->Execute("UPDATE key_changes SET created_at ="
                           " UTC_TIMESTAMP(6) - INTERVAL 1 HOUR")
                  .ok());
  auto start = feed_->StartingPoint(absl::Seconds(3));
  ASSERT_TRUE(start.ok());
  EXPECT_EQ(start->seq, *b);
  EXPECT_TRUE(feed_->ReadChanges(*b, *start, 10)->anchor_intact)
      << "the starting point identifies its row";
}

// A Revoke whose transaction fails after its feed row drew a stream
// position (here: an injected error just before COMMIT) leaves a void row
// at that position, so the stream has no hole for tailers to wait on; the
// next mutation takes the next position.
TEST_F(ChangeFeedStoreTest, AFailedMutationLeavesAVoidNotAHole) {
  auto keys = MysqlKeyStore::Open(db_->options());
  ASSERT_TRUE(keys.ok()) << keys.status();
  ReplicaRegistration writer;
  writer.name = {"writer", "w-incarnation-1"};
  writer.lease = absl::Seconds(60);
  writer.gap_timeout = absl::Seconds(5);
  ASSERT_TRUE(feed_->Register(writer, absl::Hours(1)).ok());
  (*keys)->SetFeedWriter(writer.name.incarnation);
  const AuditEvent event = TestEvent();
  int64_t tenant_id = 0;
  NewKey key;
  key.id = "vvvvvvvvvvvv";
  ASSERT_NO_FATAL_FAILURE(
      CreateTenantAndKey(**keys, "void-tenant", key, &tenant_id));
  {
    fault::Injection fail = fault::Injection::Fail(
        fault::kWriterBeforeCommit, key.id,
        absl::UnavailableError("injected failure before COMMIT"));
    EXPECT_FALSE((*keys)->RevokeKey(tenant_id, key.id, event).ok());
  }
  ASSERT_TRUE((*keys)->RevokeKey(tenant_id, key.id, event).ok());
  EXPECT_EQ((*keys)->FeedWriterHead(), 3);

  auto read = feed_->ReadStreams({"reader", "r-incarnation-1"}, 100);
  ASSERT_TRUE(read.ok()) << read.status();
  std::vector<std::string> rows;
  for (const KeyChange& c : read->changes) {
    rows.push_back(absl::StrCat(c.wseq, ":", c.change_type, ":", c.key_id));
  }
  EXPECT_EQ(rows, std::vector<std::string>({"1:created:vvvvvvvvvvvv", "2:void:",
                                            "3:revoked:vvvvvvvvvvvv"}));
}

// A rolling upgrade from the release before streams: a replica of that
// release never publishes stream positions, so a writer of this release
// waits for it by its applied_seq in the legacy stream (docs/replication.md,
// "Rolling upgrade from a release without streams"). The old replica is
// simulated with that release's own statements: its registration, which
// does not name replicas.feed_streams, and its heartbeat.
TEST_F(ChangeFeedStoreTest,
       AReplicaOfTheReleaseBeforeStreamsIsWaitedForByItsAppliedSeq) {
  ASSERT_TRUE(
      db_->Execute(
             "REPLACE INTO replicas (id, incarnation, address, hostname, pid,"
             " started_at, heartbeat_at, lease_us, gap_timeout_us, applied_seq,"
             " anchor_seq, anchor_created_at) VALUES ('old-release',"
             " 'oldincarnation01', '', '', 0, UTC_TIMESTAMP(6),"
             " UTC_TIMESTAMP(6), 600000000, 1000000, 0, 0, NULL)")
          .ok());
  auto sync = StartTailer(/*stream_writer=*/true, absl::Seconds(1));
  ASSERT_TRUE(sync.ok()) << sync.status();
  const AuditEvent event = TestEvent();
  int64_t tenant_id = 0;
  NewKey key;
  key.id = "uuuuuuuuuuuu";
  ASSERT_NO_FATAL_FAILURE(
      CreateTenantAndKey(*keys_, "upgrade-tenant", key, &tenant_id));
  ASSERT_TRUE(keys_->RevokeKey(tenant_id, key.id, event).ok());
  service::ChangeRef revoked;
  revoked.tenant_id = tenant_id;
  revoked.key_id = key.id;
  revoked.change_type = "revoked";

  // The old replica has applied nothing: the writer waits for it, and
  // fails after the bounded wait.
  EXPECT_EQ((*sync)->AwaitChange(revoked, absl::ZeroDuration()).code(),
            absl::StatusCode::kUnavailable);

  // Its heartbeat publishes the feed's head as applied: acknowledged.
  auto head = db_->QueryValue("SELECT MAX(seq) FROM key_changes");
  ASSERT_TRUE(head.ok()) << head.status();
  ASSERT_TRUE(
      db_->Execute(absl::StrCat("UPDATE replicas SET heartbeat_at ="
                                " UTC_TIMESTAMP(6), applied_seq = ",
                                *head,
                                " WHERE id = 'old-release' AND incarnation ="
                                " 'oldincarnation01'"))
          .ok());
  EXPECT_TRUE((*sync)->AwaitChange(revoked, absl::ZeroDuration()).ok());
  (*sync)->Stop();
}

}  // namespace
}  // namespace lumo::storage
