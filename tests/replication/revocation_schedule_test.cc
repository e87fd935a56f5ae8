// Deterministic schedules against the revocation guarantee
// (docs/replication.md, "The contract"): Rotate / Revoke / Delete return OK
// only when every live replica rejects the old secret, and a replica that
// cannot prove it is current does not answer from its cache.
//
// Replicas run in this process on a real MariaDB, each with its own pools,
// Verifier, ReplicaSync and KeyService, exactly as lumokeys-server wires
// them. Fault points (server/fault/fault_points.h) hold a replica or a
// writer between two exact steps, so each test drives one schedule, and
// checks that no verification that started after the killing call returned
// OK accepted the secret. Waits poll for a condition with a generous
// deadline (scaled by LUMO_TEST_TIME_SCALE); nothing sleeps to synchronise.
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/core/pepper.h"
#include "server/fault/fault_injection.h"
#include "server/fault/fault_points.h"
#include "server/service/key_service.h"
#include "server/service/replica_sync.h"
#include "server/service/verifier.h"
#include "server/storage/call_deadline.h"
#include "server/storage/mysql/mysql_change_feed_store.h"
#include "server/storage/mysql/mysql_key_store.h"
#include "tests/storage/test_database.h"

namespace lumo::service {
namespace {

using ::lumo::fault::Injection;
using ::lumo::testing::TestDatabase;
using ::lumo::testing::TestTimeScale;
using Clock = std::chrono::steady_clock;

constexpr char kPepper[] =
    "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

// How long a test lets the product take to reach a state it must reach.
absl::Duration Patience() { return absl::Seconds(30) * TestTimeScale(); }

template <typename F>
bool Eventually(F done, absl::Duration limit = Patience()) {
  const absl::Time end = absl::Now() + limit;
  while (absl::Now() < end) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return done();
}

// "VALID", "REVOKED", ... or "error:<code>" (a fail-closed answer).
std::string Answer(Verifier& verifier, const std::string& key) {
  absl::StatusOr<VerifyOutcome> outcome = verifier.Verify(key, {});
  if (!outcome.ok()) {
    return absl::StrCat("error:",
                        absl::StatusCodeToString(outcome.status().code()));
  }
  return VerifyReasonName(outcome->reason);
}

// One replica: what lumokeys-server builds for --replication.
struct Replica {
  std::string name;
  std::unique_ptr<storage::MysqlKeyStore> keys;
  std::unique_ptr<storage::MysqlChangeFeedStore> feed;
  std::unique_ptr<storage::MysqlChangeFeedStore> acks;
  std::unique_ptr<Verifier> verifier;
  std::unique_ptr<ReplicaSync> sync;
  std::unique_ptr<KeyService> service;
};

// Verifies one secret on every replica in a loop on its own thread and
// records when each verification started and what it answered.
class VerifyLoop {
 public:
  VerifyLoop(std::vector<Replica*> replicas, std::string key)
      : replicas_(std::move(replicas)), key_(std::move(key)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~VerifyLoop() { Stop(); }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  // "<replica>: <answer>" for every verification that started after `t`
  // and accepted the secret.
  std::vector<std::string> AcceptedAfter(Clock::time_point t) {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> out;
    for (const Record& r : records_) {
      if (r.started > t && r.answer == "VALID") {
        out.push_back(absl::StrCat(r.replica, ": ", r.answer));
      }
    }
    return out;
  }
  int StartedAfter(Clock::time_point t) {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (const Record& r : records_) n += r.started > t ? 1 : 0;
    return n;
  }

 private:
  struct Record {
    std::string replica;
    Clock::time_point started;
    std::string answer;
  };
  void Run() {
    for (size_t i = 0;; ++i) {
      {
        absl::MutexLock lock(&mu_);
        if (mu_.AwaitWithTimeout(absl::Condition(&stop_),
                                 absl::Milliseconds(2))) {
          return;
        }
      }
      Replica* r = replicas_[i % replicas_.size()];
      const Clock::time_point started = Clock::now();
      std::string answer = Answer(*r->verifier, key_);
      absl::MutexLock lock(&mu_);
      records_.push_back(Record{r->name, started, std::move(answer)});
    }
  }

  const std::vector<Replica*> replicas_;
  const std::string key_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Record> records_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// A call running on its own thread (a writer held at a fault point).
template <typename T>
class Async {
 public:
  explicit Async(std::function<T()> body)
      : thread_([this, body = std::move(body)] {
          T value = body();
          absl::MutexLock lock(&mu_);
          value_ = std::move(value);
          done_ = true;
        }) {}
  ~Async() {
    if (thread_.joinable()) thread_.join();
  }
  bool done() {
    absl::MutexLock lock(&mu_);
    return done_;
  }
  // Waits for the call to return.
  T Get() {
    if (thread_.joinable()) thread_.join();
    absl::MutexLock lock(&mu_);
    return value_;
  }

 private:
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  T value_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// Once `commit` holds a writer with an allocated, uncommitted seq: commits
// a later change (so the held seq is a gap) and waits until R has abandoned
// the gap as rolled back. The caller then releases `commit`.
void WaitUntilAbandoned(Replica& r, Injection& commit,
                        const std::function<void()>& later_change) {
  const int64_t abandoned_before = r.sync->abandoned();
  ASSERT_TRUE(commit.WaitPaused(1, Patience()));
  later_change();
  ASSERT_TRUE(Eventually([&] { return r.sync->abandoned() > abandoned_before; },
                         Patience()))
      << r.name << " never abandoned the held seq";
}

class RevocationScheduleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = TestDatabase::Create();
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    peppers_ = *core::PepperSet::Parse(kPepper);
  }
  void TearDown() override {
    for (auto& r : replicas_) {
      if (r->sync != nullptr) r->sync->Stop();
    }
    replicas_.clear();
  }

  // Short timings so that leases and gap timeouts run out within a test.
  static ReplicaSyncOptions Options(const std::string& name) {
    ReplicaSyncOptions o;
    o.replica_id = name;
    o.fault_scope = name;
    o.lease = absl::Seconds(2);
    o.lease_margin = absl::Milliseconds(400);
    o.poll_interval = absl::Milliseconds(10);
    o.heartbeat_interval = absl::Milliseconds(100);
    o.gap_timeout = absl::Seconds(1);
    o.ack_poll_interval = absl::Milliseconds(5);
    return o;
  }

  // A gap timeout short enough for a test to wait until it passed.
  static ReplicaSyncOptions FastGapOptions(const std::string& name) {
    ReplicaSyncOptions o = PatientOptions(name);
    o.gap_timeout = absl::Milliseconds(300);
    return o;
  }

  // A writer that waits long enough for a replica a test holds (its bounded
  // wait follows its lease).
  static ReplicaSyncOptions PatientOptions(const std::string& name) {
    ReplicaSyncOptions o = Options(name);
    o.lease = absl::Seconds(60);
    o.lease_margin = absl::Seconds(12);
    return o;
  }

  Replica& Start(const ReplicaSyncOptions& options, int key_pool_size = 4) {
    auto r = std::make_unique<Replica>();
    r->name = options.fault_scope;
    storage::MysqlOptions mysql = db_->options();
    mysql.pool_size = key_pool_size;
    auto keys = storage::MysqlKeyStore::Open(mysql);
    EXPECT_TRUE(keys.ok()) << keys.status();
    r->keys = *std::move(keys);
    auto feed = storage::MysqlChangeFeedStore::Open(db_->options());
    EXPECT_TRUE(feed.ok()) << feed.status();
    r->feed = *std::move(feed);
    auto acks = storage::MysqlChangeFeedStore::Open(db_->options());
    EXPECT_TRUE(acks.ok()) << acks.status();
    r->acks = *std::move(acks);
    r->verifier = std::make_unique<Verifier>(r->keys.get(), peppers_,
                                             VerifierOptions{absl::Hours(1)});
    auto sync = ReplicaSync::Start(r->feed.get(), r->verifier.get(), options,
                                   r->acks.get());
    EXPECT_TRUE(sync.ok()) << sync.status();
    r->sync = *std::move(sync);
    r->service = std::make_unique<KeyService>(r->keys.get(), peppers_,
                                              r->verifier.get(), r->sync.get());
    replicas_.push_back(std::move(r));
    Replica& started = *replicas_.back();
    EXPECT_TRUE(Eventually([&] { return started.verifier->cache_trusted(); }))
        << started.name << " never held its lease";
    return started;
  }

  // The tenant whose keys the schedules kill; its root key acts.
  void CreateTenant(Replica& via) {
    CreateKeyParams first;
    first.name = "root";
    first.scopes = {"admin:write"};
    auto tenant = via.service->CreateTenant({}, "acme", "Acme", first);
    ASSERT_TRUE(tenant.ok()) << tenant.status();
    root_.tenant_id = tenant->tenant.id;
    root_.tenant_slug = "acme";
    root_.key_id = tenant->initial_key->record.id;
    root_.scopes = {"admin:write"};
  }

  struct Key {
    std::string id;
    std::string secret;
  };
  Key CreateKey(Replica& via) {
    CreateKeyParams params;
    params.name = "k";
    params.scopes = {"admin:read"};
    auto key = via.service->CreateKey(root_, {}, params);
    EXPECT_TRUE(key.ok()) << key.status();
    if (!key.ok()) return {};
    return Key{key->record.id, key->full_key};
  }

  // Every replica has `key` cached as VALID. Waits first until every
  // replica has read the feed up to now (its own "created" row evicts the
  // id once more).
  void CacheEverywhere(const Key& key) {
    for (auto& r : replicas_) WaitCaughtUp(*r);
    for (auto& r : replicas_) {
      ASSERT_EQ(Answer(*r->verifier, key.secret), "VALID") << r->name;
      const uint64_t misses = r->verifier->misses();
      ASSERT_EQ(Answer(*r->verifier, key.secret), "VALID") << r->name;
      ASSERT_EQ(r->verifier->misses(), misses) << r->name << ": not cached";
    }
  }

  // The tenant (created through `w`) and a new key cached as VALID on every
  // replica.
  Key CachedKeyEverywhere(Replica& w) {
    CreateTenant(w);
    const Key key = CreateKey(w);
    CacheEverywhere(key);
    return key;
  }

  // The first attempt of a Revoke or Delete (`call`) whose feed row is
  // lost to R: its COMMIT is held until R abandoned its seq, and its
  // re-announcement fails. The attempt answers UNAVAILABLE.
  void FirstAttemptLosesItsFeedRow(Replica& w, Replica& r, const Key& key,
                                   const std::function<absl::Status()>& call) {
    Injection commit = Injection::Pause(fault::kWriterBeforeCommit, key.id);
    Injection announce =
        Injection::Fail(fault::kAnnounceBeforeCommit, key.id,
                        absl::UnavailableError("injected: announcement lost"));
    Async<absl::Status> first(call);
    WaitUntilAbandoned(r, commit, [&] { CreateKey(w); });
    commit.Release();
    absl::Status s = first.Get();
    ASSERT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  }

  // Waits until `call` returned or its writer polled for acknowledgements
  // three more times (counted by `polls`); true when it returned.
  template <typename T>
  static bool ReturnsBeforeThreeMorePolls(Async<T>& call,
                                          const Injection& polls) {
    const int polled = polls.hits();
    EXPECT_TRUE(
        Eventually([&] { return call.done() || polls.hits() >= polled + 3; }));
    return call.done();
  }

  // The contract after a killing call returned OK: no replica accepts.
  void ExpectNoReplicaAccepts(const Key& key) {
    for (auto& r : replicas_) {
      EXPECT_NE(Answer(*r->verifier, key.secret), "VALID")
          << r->name << " accepted a secret killed by a call that returned OK";
    }
  }

  std::vector<Replica*> All() {
    std::vector<Replica*> out;
    for (auto& r : replicas_) out.push_back(r.get());
    return out;
  }

  int64_t Head() {
    auto v = db_->QueryValue("SELECT COALESCE(MAX(seq), 0) FROM key_changes");
    int64_t n = -1;
    if (v.ok()) (void)absl::SimpleAtoi(*v, &n);
    return n;
  }
  // Waits until `r` has applied everything committed so far.
  void WaitCaughtUp(Replica& r) {
    const int64_t head = Head();
    ASSERT_TRUE(Eventually([&] { return r.sync->applied() >= head; }))
        << r.name << " applied " << r.sync->applied() << " < " << head;
  }
  std::string HeartbeatAt(const std::string& id) {
    auto v = db_->QueryValue(absl::StrCat(
        "SELECT MAX(heartbeat_at) FROM replicas WHERE id = '", id, "'"));
    return v.ok() ? *v : "";
  }
  // A live row that never acknowledges anything (a broken replica).
  void InsertStuckReplica() {
    ASSERT_TRUE(db_->Execute("INSERT INTO replicas (id, started_at,"
                             " heartbeat_at, lease_us, applied_seq) VALUES"
                             " ('stuck', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6),"
                             " 3600000000, 0)")
                    .ok());
  }

  absl::Status Revoke(Replica& via, const Key& key) {
    return via.service->RevokeKey(root_, {}, key.id).status();
  }
  absl::Status Delete(Replica& via, const Key& key) {
    return via.service->DeleteKey(root_, {}, key.id);
  }

  std::unique_ptr<TestDatabase> db_;
  std::shared_ptr<const core::PepperSet> peppers_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  Principal root_;
};

// Finding: a heartbeat that succeeds after the lease lapsed renewed trust in
// a cache whose read predates the change. R reads the feed, then stalls
// before its heartbeat; a Revoke commits; the writer stops waiting when R's
// lease runs out and returns OK; R's heartbeat then succeeds.
TEST_F(RevocationScheduleTest, HeartbeatAfterALapseDoesNotTrustAStaleRead) {
  Replica& w = Start(PatientOptions("w"));
  Replica& r = Start(Options("r"));
  const Key key = CachedKeyEverywhere(w);

  // R has read the feed (before the Revoke) and is held before its
  // heartbeat. Nothing verifies the key meanwhile: a verification while R
  // does not trust its cache would refill the entry from the database.
  Injection stall = Injection::Pause(fault::kTailerBeforeHeartbeat, "r");
  ASSERT_TRUE(stall.WaitPaused(1, Patience()));
  ASSERT_TRUE(Revoke(w, key).ok());
  const Clock::time_point ok_at = Clock::now();
  EXPECT_FALSE(r.verifier->cache_trusted()) << "OK while R trusted its cache";

  // R's heartbeat goes through; R is then held at the start of its next
  // round, so nothing but that heartbeat ran since the stale read.
  Injection next = Injection::Pause(fault::kTailerBeforeRead, "r");
  stall.Release();
  ASSERT_TRUE(next.WaitPaused(1, Patience()));
  ASSERT_TRUE(Eventually([&] { return r.verifier->cache_trusted(); }));
  {
    VerifyLoop loop(All(), key.secret);
    ASSERT_TRUE(Eventually([&] { return loop.StartedAfter(ok_at) >= 20; }));
    loop.Stop();
    EXPECT_EQ(loop.AcceptedAfter(ok_at), std::vector<std::string>{});
  }
  next.Release();
  ExpectNoReplicaAccepts(key);
}

// Finding, second route: after a lapse the catch-up read is capped by the
// batch size, and the heartbeat after that partial read renewed trust.
TEST_F(RevocationScheduleTest,
       TruncatedCatchUpAfterALapseDoesNotTrustTheCache) {
  Replica& w = Start(PatientOptions("w"));
  ReplicaSyncOptions small = Options("r");
  small.batch = 4;
  Replica& r = Start(small);
  const Key key = CachedKeyEverywhere(w);

  Injection stall = Injection::Pause(fault::kTailerBeforeRead, "r");
  ASSERT_TRUE(stall.WaitPaused(1, Patience()));
  // More changes than one batch, the Revoke last.
  for (int i = 0; i < 6; ++i) CreateKey(w);
  ASSERT_TRUE(Revoke(w, key).ok());  // after R's lease ran out

  // R reads one batch (not reaching the Revoke), heartbeats, and is held
  // before its next read.
  Injection next = Injection::Pause(fault::kTailerBeforeRead, "r");
  stall.Release();
  ASSERT_TRUE(next.WaitPaused(1, Patience()));
  ASSERT_TRUE(Eventually([&] { return r.verifier->cache_trusted(); }));
  EXPECT_EQ(Answer(*r.verifier, key.secret), "REVOKED");
  next.Release();
  ExpectNoReplicaAccepts(key);
}

// Finding: the retry of a Revoke whose first attempt committed too slowly
// (tailers abandoned its seq) and then failed to re-announce found the key
// revoked, wrote nothing and returned OK at once.
TEST_F(RevocationScheduleTest, RetriedRevokeOfAnAbandonedChangeIsFedAgain) {
  Replica& w = Start(FastGapOptions("w"));
  Replica& r = Start(FastGapOptions("r"));
  const Key key = CachedKeyEverywhere(w);

  ASSERT_NO_FATAL_FAILURE(
      FirstAttemptLosesItsFeedRow(w, r, key, [&] { return Revoke(w, key); }));
  // The client retries.
  ASSERT_TRUE(Revoke(w, key).ok());
  ExpectNoReplicaAccepts(key);
}

// Finding: the re-announcement's own commit was not timed; when it too
// outlived the gap timeout it was abandoned and the writer returned OK.
TEST_F(RevocationScheduleTest, SlowReannouncementIsRepeated) {
  Replica& w = Start(FastGapOptions("w"));
  Replica& r = Start(FastGapOptions("r"));
  const Key key = CachedKeyEverywhere(w);

  Injection commit = Injection::Pause(fault::kWriterBeforeCommit, key.id);
  Injection announce = Injection::Pause(fault::kAnnounceBeforeCommit, key.id);
  Async<absl::Status> revoke([&] { return Revoke(w, key); });
  WaitUntilAbandoned(r, commit, [&] { CreateKey(w); });
  commit.Release();
  // The re-announcement is held before its COMMIT until R abandons it too.
  WaitUntilAbandoned(r, announce, [&] { CreateKey(w); });
  announce.Release();
  ASSERT_TRUE(revoke.Get().ok());
  ExpectNoReplicaAccepts(key);
}

// Finding: the gap timeout is a per-process flag. During a rolling change a
// tailer with a shorter one abandoned a seq that the writer (longer one) did
// not think needed re-announcing.
TEST_F(RevocationScheduleTest, ShorterGapTimeoutElsewhereDoesNotSkipAChange) {
  ReplicaSyncOptions long_gap = PatientOptions("w");
  long_gap.gap_timeout = absl::Seconds(8);
  Replica& w = Start(long_gap);
  ReplicaSyncOptions short_gap = Options("r");
  short_gap.gap_timeout = absl::Milliseconds(200);
  Replica& r = Start(short_gap);
  const Key key = CachedKeyEverywhere(w);

  Injection commit = Injection::Pause(fault::kWriterBeforeCommit, key.id);
  Async<absl::Status> revoke([&] { return Revoke(w, key); });
  WaitUntilAbandoned(r, commit, [&] { CreateKey(w); });
  commit.Release();
  ASSERT_TRUE(revoke.Get().ok());
  ExpectNoReplicaAccepts(key);
}

// Finding: two processes started with the same --replica_id shared one
// membership row, so a writer waited for whichever heartbeat came last.
TEST_F(RevocationScheduleTest, TwoProcessesWithOneReplicaIdAreBothWaitedFor) {
  Replica& w = Start(PatientOptions("w"));
  // B's lease outlasts the test: the writer has to wait for B itself, not
  // for B's lease to run out.
  ReplicaSyncOptions twin = PatientOptions("twin");
  twin.fault_scope = "a";
  Start(twin);
  twin.fault_scope = "b";
  Replica& b = Start(twin);
  CreateTenant(w);
  const Key key = CreateKey(w);
  CacheEverywhere(key);

  Injection hold_b = Injection::Pause(fault::kTailerBeforeRead, "b");
  ASSERT_TRUE(hold_b.WaitPaused(1, Patience()));
  Injection polls = Injection::Count(fault::kAckQuery, "w");
  Async<absl::Status> revoke([&] { return Revoke(w, key); });
  // The Revoke committed and A published that it applied it; from then on
  // the writer polls at least three more times (or returns).
  ASSERT_TRUE(Eventually([&] {
    auto n = db_->QueryValue("SELECT COUNT(*) FROM api_keys WHERE revoked = 1");
    return n.ok() && *n != "0";
  }));
  const int64_t head = Head();
  ASSERT_TRUE(Eventually([&] {
    auto v = db_->QueryValue(
        "SELECT MAX(applied_seq) FROM replicas WHERE id = 'twin'");
    int64_t n = -1;
    return v.ok() && absl::SimpleAtoi(*v, &n) && n >= head;
  }));
  EXPECT_FALSE(ReturnsBeforeThreeMorePolls(revoke, polls))
      << "returned while twin b still had the key cached, answering "
      << Answer(*b.verifier, key.secret);
  hold_b.Release();
  ASSERT_TRUE(revoke.Get().ok());
  ExpectNoReplicaAccepts(key);
}

// Finding: every waiting writer polled through the tailer's two-connection
// pool, so a burst of waits kept this replica's own heartbeat from running.
TEST_F(RevocationScheduleTest, WaitingWritersDoNotStarveTheHeartbeat) {
  Replica& w = Start(PatientOptions("w"));
  CreateTenant(w);
  std::vector<Key> keys;
  for (int i = 0; i < 3; ++i) keys.push_back(CreateKey(w));
  InsertStuckReplica();

  // Every acknowledgement query is held while it holds its connection.
  Injection polls =
      Injection::Pause(fault::kAckQuery, "w", Injection::kEveryHit);
  std::vector<std::unique_ptr<Async<absl::Status>>> writers;
  for (const Key& k : keys) {
    writers.push_back(
        std::make_unique<Async<absl::Status>>([&, k] { return Revoke(w, k); }));
  }
  ASSERT_TRUE(polls.WaitPaused(1, Patience()));
  // As many queries as will be held at once (the old design: one per
  // writer, up to the pool size).
  (void)polls.WaitPaused(2, absl::Seconds(5) * TestTimeScale());
  const std::string before = HeartbeatAt("w");
  EXPECT_TRUE(Eventually([&] { return HeartbeatAt("w") != before; },
                         absl::Seconds(10) * TestTimeScale()))
      << "the heartbeat did not run while writers waited";
  EXPECT_TRUE(w.verifier->cache_trusted());
  ASSERT_TRUE(db_->Execute("DELETE FROM replicas WHERE id = 'stuck'").ok());
  polls.Release();
  for (auto& writer : writers) EXPECT_TRUE(writer->Get().ok());
}

// Finding: Session::Rollback cleared its transaction flag before sending
// ROLLBACK, so a failed ROLLBACK returned the connection to the pool with
// its transaction (and REPEATABLE READ snapshot) open; a later cache fill on
// it read the old snapshot after the eviction.
TEST_F(RevocationScheduleTest, FailedRollbackLeavesNoSnapshotForCacheFills) {
  Replica& w = Start(PatientOptions("w"));
  Replica& r = Start(Options("r"), /*key_pool_size=*/1);
  CreateTenant(w);
  const Key revoked = CreateKey(w);
  ASSERT_TRUE(Revoke(w, revoked).ok());
  const Key key = CreateKey(w);
  WaitCaughtUp(r);

  {
    // A rotation of a revoked key fails inside its transaction on R; the
    // ROLLBACK that ends it fails too.
    Injection rollback = Injection::Fail(
        fault::kSessionRollback, "", absl::DeadlineExceededError("injected"),
        Injection::kEveryHit);
    auto rotated = r.service->RotateKey(root_, {}, revoked.id, 0);
    EXPECT_FALSE(rotated.ok());
  }
  // A cache fill on R (its only connection).
  ASSERT_EQ(Answer(*r.verifier, key.secret), "VALID");
  ASSERT_TRUE(Revoke(w, key).ok());
  ExpectNoReplicaAccepts(key);
}

// Finding: seq regression was not detected. After TRUNCATE the new changes
// reuse seqs at or below the replicas' applied position and were skipped.
TEST_F(RevocationScheduleTest, TruncatedFeedIsDetected) {
  Replica& w = Start(PatientOptions("w"));
  Replica& r = Start(PatientOptions("r"));
  CreateTenant(w);
  for (int i = 0; i < 4; ++i) CreateKey(w);
  const Key key = CreateKey(w);
  CacheEverywhere(key);

  // R is held before its next read (live, trusting its cache): only the
  // writer's own check can tell that R's position means nothing now.
  Injection hold = Injection::Pause(fault::kTailerBeforeRead, "r");
  ASSERT_TRUE(hold.WaitPaused(1, Patience()));
  ASSERT_TRUE(db_->Execute("TRUNCATE TABLE key_changes").ok());
  Injection polls = Injection::Count(fault::kAckQuery, "w");
  Async<absl::Status> revoke([&] { return Revoke(w, key); });
  EXPECT_FALSE(ReturnsBeforeThreeMorePolls(revoke, polls))
      << "returned while R (held, trusting its cache) answered "
      << Answer(*r.verifier, key.secret);
  hold.Release();
  ASSERT_TRUE(revoke.Get().ok());
  ExpectNoReplicaAccepts(key);
}

// Finding, the harder form: a restore (or lossy failover) rolls the feed
// back, new changes reuse seqs, and the head passes the replicas' applied
// position again before they look, so `head < applied` never shows.
TEST_F(RevocationScheduleTest, RestoredFeedReusingSeqsIsDetected) {
  Replica& w = Start(PatientOptions("w"));
  Replica& r = Start(PatientOptions("r"));
  CreateTenant(w);
  for (int i = 0; i < 4; ++i) CreateKey(w);
  const Key key = CreateKey(w);
  CacheEverywhere(key);
  const int64_t head = Head();

  Injection hold = Injection::Pause(fault::kTailerBeforeRead, "r");
  ASSERT_TRUE(hold.WaitPaused(1, Patience()));
  // The "restore": the last three rows are gone and their seqs are reused.
  ASSERT_TRUE(db_->Execute(absl::StrCat("DELETE FROM key_changes WHERE seq > ",
                                        head - 3))
                  .ok());
  ASSERT_TRUE(
      db_->Execute(absl::StrCat("ALTER TABLE key_changes AUTO_INCREMENT = ",
                                head - 2))
          .ok());
  Injection polls = Injection::Count(fault::kAckQuery, "w");
  Async<absl::Status> revoke([&] { return Revoke(w, key); });
  // Enough new rows for the head to pass R's applied position.
  for (int i = 0; i < 4; ++i) CreateKey(w);
  ASSERT_TRUE(Eventually([&] { return Head() > head; }));
  EXPECT_FALSE(ReturnsBeforeThreeMorePolls(revoke, polls))
      << "returned while R (held, trusting its cache) answered "
      << Answer(*r.verifier, key.secret);
  hold.Release();
  ASSERT_TRUE(revoke.Get().ok());
  ExpectNoReplicaAccepts(key);
}

// Finding: the acknowledgement wait ignored the caller's deadline.
TEST_F(RevocationScheduleTest, AcknowledgementWaitHonoursTheCallDeadline) {
  ReplicaSyncOptions o = Options("w");
  o.lease = absl::Seconds(3);
  o.lease_margin = absl::Milliseconds(600);
  Replica& w = Start(o);
  CreateTenant(w);
  const Key key = CreateKey(w);
  InsertStuckReplica();
  const absl::Time deadline = absl::Now() + absl::Milliseconds(1500);
  absl::Status s;
  {
    storage::ScopedCallDeadline scope(deadline);
    s = Revoke(w, key);
  }
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_NE(s.message().find("stands"), absl::string_view::npos) << s;
}

// Finding: a Delete retried after a failed wait answered NOT_FOUND at once
// (the key is gone) without waiting for the replicas.
TEST_F(RevocationScheduleTest, RetriedDeleteWaitsForTheReplicas) {
  Replica& w = Start(FastGapOptions("w"));
  Replica& r = Start(FastGapOptions("r"));
  const Key key = CachedKeyEverywhere(w);

  ASSERT_NO_FATAL_FAILURE(
      FirstAttemptLosesItsFeedRow(w, r, key, [&] { return Delete(w, key); }));
  absl::Status retry = Delete(w, key);
  EXPECT_EQ(retry.code(), absl::StatusCode::kNotFound) << retry;
  ExpectNoReplicaAccepts(key);
}

// Finding: the feed row was inserted before the audit row, whose chain lane
// lock can be waited for; the allocated seq stayed uncommitted meanwhile and
// held back every replica's applied position, so unrelated revocations
// could not be acknowledged.
TEST_F(RevocationScheduleTest, AuditLaneWaitDoesNotHoldBackOtherRevocations) {
  ReplicaSyncOptions long_gap = PatientOptions("w");
  long_gap.gap_timeout = absl::Seconds(60);
  Replica& w = Start(long_gap);
  long_gap.replica_id = long_gap.fault_scope = "r";
  Start(long_gap);
  CreateTenant(w);
  const Key slow = CreateKey(w);
  const Key other = CreateKey(w);
  CacheEverywhere(other);

  Injection lane = Injection::Pause(fault::kWriterBeforeAudit, slow.id);
  Async<absl::Status> held([&] { return Revoke(w, slow); });
  ASSERT_TRUE(lane.WaitPaused(1, Patience()));
  Async<absl::Status> revoke([&] { return Revoke(w, other); });
  EXPECT_TRUE(Eventually([&] { return revoke.done(); },
                         absl::Seconds(20) * TestTimeScale()))
      << "a revocation waited for another transaction's audit lane";
  lane.Release();
  EXPECT_TRUE(revoke.Get().ok());
  EXPECT_TRUE(held.Get().ok());
  ExpectNoReplicaAccepts(other);
  ExpectNoReplicaAccepts(slow);
}

// The eviction epoch (holds on the old design too): a cache fill that read
// the key before the Revoke committed, and installs after the feed eviction,
// is not installed.
TEST_F(RevocationScheduleTest, FillThatRacedTheEvictionIsNotInstalled) {
  Replica& w = Start(PatientOptions("w"));
  Replica& r = Start(Options("r"));
  CreateTenant(w);
  const Key key = CreateKey(w);
  WaitCaughtUp(r);

  Injection fill = Injection::Pause(fault::kFillBeforeInstall, key.id);
  Async<std::string> verify([&] { return Answer(*r.verifier, key.secret); });
  ASSERT_TRUE(fill.WaitPaused(1, Patience()));
  ASSERT_TRUE(Revoke(w, key).ok());
  fill.Release();
  // Started before the Revoke returned: may answer from its read.
  EXPECT_EQ(verify.Get(), "VALID");
  ExpectNoReplicaAccepts(key);
}

}  // namespace
}  // namespace lumo::service
