// ReplicaSync on an in-memory feed/membership store: cache trust follows the
// lease, feed rows evict, gaps hold the applied position, and the
// acknowledgement wait is bounded. The same logic against MariaDB and real
// processes: tests/storage/change_feed_store_test.cc, tests/e2e.
#include "server/service/replica_sync.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/core/pepper.h"
#include "server/service/key_service.h"
#include "server/service/verifier.h"
#include "server/storage/call_deadline.h"
#include "tests/storage/fakes/fake_key_store.h"

namespace lumo::service {
namespace {

constexpr char kPepper[] =
    "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

class FakeFeedStore : public storage::ChangeFeedStore {
 public:
  struct Replica {
    int64_t applied = 0;
    bool live = true;
  };

  absl::StatusOr<storage::FeedRead> ReadChanges(
      int64_t after, const storage::FeedPosition& anchor, int limit) override {
    absl::MutexLock lock(&mu_);
    if (failing_) return absl::UnavailableError("feed down");
    storage::FeedRead out;
    for (const auto& [seq, change] : committed_) {
      if (seq > after && static_cast<int>(out.changes.size()) < limit) {
        out.changes.push_back(change);
      }
    }
    auto it = committed_.find(anchor.seq);
    out.anchor_intact =
        anchor.seq == 0 ||
        (it != committed_.end() && it->second.created_at == anchor.created_at);
    out.max_gap_timeout = max_gap_;
    out.db_now = absl::Now() + db_clock_ahead_;
    return out;
  }
  absl::StatusOr<int64_t> Head() override {
    absl::MutexLock lock(&mu_);
    if (failing_) return absl::UnavailableError("feed down");
    return committed_.empty() ? 0 : committed_.rbegin()->first;
  }
  absl::StatusOr<absl::Duration> MaxGapTimeout() override {
    absl::MutexLock lock(&mu_);
    return max_gap_;
  }
  absl::StatusOr<storage::FeedPosition> StartingPoint(absl::Duration) override {
    absl::MutexLock lock(&mu_);
    storage::FeedPosition p;
    p.seq = start_;
    return p;
  }
  absl::StatusOr<int64_t> Announce(const storage::KeyChange& change) override {
    absl::MutexLock lock(&mu_);
    announced_.push_back(change);
    storage::KeyChange c = change;
    c.seq = ++next_seq_;
    c.created_at = absl::Now();
    committed_[c.seq] = c;
    return c.seq;
  }
  absl::Status Register(const storage::ReplicaRegistration& r,
                        absl::Duration) override {
    absl::MutexLock lock(&mu_);
    if (failing_) return absl::UnavailableError("feed down");
    replicas_[r.name.id] = Replica{r.applied_seq, true};
    return absl::OkStatus();
  }
  absl::Status Heartbeat(const storage::ReplicaName& name, int64_t applied,
                         const storage::FeedPosition&) override {
    absl::MutexLock lock(&mu_);
    if (failing_) return absl::UnavailableError("feed down");
    auto it = replicas_.find(name.id);
    if (it == replicas_.end()) return absl::NotFoundError("gone");
    it->second.applied = applied;
    ++heartbeats_;
    return absl::OkStatus();
  }
  absl::Status Deregister(const storage::ReplicaName& name) override {
    absl::MutexLock lock(&mu_);
    replicas_.erase(name.id);
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> LiveReplicas() override {
    absl::MutexLock lock(&mu_);
    if (failing_) return absl::UnavailableError("feed down");
    int64_t live = 0;
    for (const auto& [id, r] : replicas_) live += r.live ? 1 : 0;
    return live;
  }
  absl::StatusOr<int64_t> AcknowledgedThrough(
      const storage::ReplicaName& self) override {
    absl::MutexLock lock(&mu_);
    if (failing_) return absl::UnavailableError("feed down");
    int64_t through = std::numeric_limits<int64_t>::max();
    for (const auto& [id, r] : replicas_) {
      if (id != self.id && r.live) through = std::min(through, r.applied);
    }
    return through;
  }
  // ReplicaSync reads the legacy stream only; the per-writer streams are
  // held to their contract by the change feed conformance suite.
  // No writer has a stream here (the scripted rows are the legacy feed).
  absl::StatusOr<storage::StreamRead> ReadStreams(const storage::ReplicaName&,
                                                  int) override {
    return storage::StreamRead();
  }
  absl::Status PublishPositions(
      const storage::ReplicaName&,
      const std::vector<storage::StreamPosition>&) override {
    return absl::UnimplementedError("streams are not scripted here");
  }
  absl::Status AppendVoid(const storage::StreamPosition&) override {
    return absl::UnimplementedError("streams are not scripted here");
  }
  absl::StatusOr<storage::StreamAcknowledgement> AcknowledgeStream(
      const storage::ReplicaName&, absl::string_view) override {
    return absl::UnimplementedError("streams are not scripted here");
  }

  // Test hooks. Commit(seq) makes a row with that seq visible (any order).
  void Commit(int64_t seq, const std::string& key_id) {
    absl::MutexLock lock(&mu_);
    storage::KeyChange c;
    c.seq = seq;
    c.key_id = key_id;
    c.change_type = "revoked";
    c.created_at = absl::Now();
    committed_[seq] = c;
    next_seq_ = std::max(next_seq_, seq);
  }
  // Drops every row (the feed was rolled back).
  void Truncate() {
    absl::MutexLock lock(&mu_);
    committed_.clear();
    next_seq_ = 0;
  }
  void SetFailing(bool failing) {
    absl::MutexLock lock(&mu_);
    failing_ = failing;
  }
  void SetMaxGapTimeout(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    max_gap_ = d;
  }
  // The database clock runs this much ahead of the local one from now on.
  void AdvanceDbClock(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    db_clock_ahead_ += d;
  }
  void SetReplica(const std::string& id, Replica r) {
    absl::MutexLock lock(&mu_);
    replicas_[id] = r;
  }
  int64_t AppliedOf(const std::string& id) {
    absl::MutexLock lock(&mu_);
    return replicas_.count(id) ? replicas_[id].applied : -1;
  }
  bool Registered(const std::string& id) {
    absl::MutexLock lock(&mu_);
    return replicas_.count(id) > 0;
  }
  std::vector<storage::KeyChange> announced() {
    absl::MutexLock lock(&mu_);
    return announced_;
  }

 private:
  absl::Mutex mu_;
  bool failing_ ABSL_GUARDED_BY(mu_) = false;
  int64_t start_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration max_gap_ ABSL_GUARDED_BY(mu_);
  absl::Duration db_clock_ahead_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, storage::KeyChange> committed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Replica> replicas_ ABSL_GUARDED_BY(mu_);
  int64_t heartbeats_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<storage::KeyChange> announced_ ABSL_GUARDED_BY(mu_);
};

// Polls `done` every millisecond for up to `limit`; true when it held.
template <typename F>
bool Eventually(F done, absl::Duration limit = absl::Seconds(10)) {
  const absl::Time end = absl::Now() + limit;
  while (absl::Now() < end) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return done();
}

class ReplicaSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    peppers_ = *core::PepperSet::Parse(kPepper);
    verifier_ = std::make_unique<Verifier>(&keys_store_, peppers_,
                                           VerifierOptions{absl::Hours(1)});
    options_.replica_id = "self";
    options_.lease = absl::Milliseconds(400);
    options_.lease_margin = absl::Milliseconds(80);
    options_.poll_interval = absl::Milliseconds(5);
    options_.heartbeat_interval = absl::Milliseconds(50);
    options_.gap_timeout = absl::Milliseconds(200);
    options_.ack_poll_interval = absl::Milliseconds(1);
  }
  void StartSync() {
    auto sync = ReplicaSync::Start(&feed_, verifier_.get(), options_);
    ASSERT_TRUE(sync.ok()) << sync.status();
    sync_ = *std::move(sync);
  }
  // Waits until the cache is trusted and holds `key` (a verification reads
  // the store no more); returns the store's verification reads so far.
  int TrustedAndCached(const std::string& key) {
    EXPECT_TRUE(Eventually([&] { return verifier_->cache_trusted(); }));
    EXPECT_TRUE(verifier_->Verify(key, {}).ok());
    const int loads = keys_store_.verify_loads();
    EXPECT_TRUE(verifier_->Verify(key, {}).ok());
    EXPECT_EQ(keys_store_.verify_loads(), loads) << "not cached";
    return loads;
  }
  // A key created through the service, verified once (so it is cached).
  std::string CachedKey() {
    KeyService keys(&keys_store_, peppers_, verifier_.get());
    CreateKeyParams first;
    first.name = "root";
    first.scopes = {"admin:write"};
    auto tenant = keys.CreateTenant({}, "acme", "Acme", first);
    EXPECT_TRUE(tenant.ok()) << tenant.status();
    std::string key = tenant->initial_key->full_key;
    EXPECT_TRUE(verifier_->Verify(key, {}).ok());
    return key;
  }

  testing::FakeKeyStore keys_store_;
  std::shared_ptr<const core::PepperSet> peppers_;
  std::unique_ptr<Verifier> verifier_;
  FakeFeedStore feed_;
  ReplicaSyncOptions options_;
  std::unique_ptr<ReplicaSync> sync_;
};

TEST_F(ReplicaSyncTest, RejectsDurationsThatDoNotCompose) {
  ReplicaSyncOptions o = options_;
  o.lease = absl::Milliseconds(100);  // < 2 x (heartbeat + poll) + margin
  EXPECT_FALSE(ValidateReplicaSyncOptions(o).ok());
  o = options_;
  o.gap_timeout = absl::Milliseconds(10);  // < 4 polls
  EXPECT_FALSE(ValidateReplicaSyncOptions(o).ok());
  EXPECT_TRUE(ValidateReplicaSyncOptions(options_).ok());
}

TEST_F(ReplicaSyncTest, CacheIsTrustedOnlyWhileTheLeaseIsRenewed) {
  std::string key = CachedKey();
  StartSync();
  ASSERT_TRUE(Eventually([&] { return verifier_->cache_trusted(); }));
  EXPECT_TRUE(feed_.Registered("self"));
  const int loads = keys_store_.verify_loads();
  ASSERT_TRUE(verifier_->Verify(key, {}).ok());
  ASSERT_TRUE(verifier_->Verify(key, {}).ok());
  EXPECT_LE(keys_store_.verify_loads(), loads + 1) << "warm verify hit store";

  // The database becomes unreachable for the replica: within its lease it
  // stops answering from the cache, and verification fails closed.
  feed_.SetFailing(true);
  keys_store_.SetUnavailable(true);
  const absl::Time lost = absl::Now();
  ASSERT_TRUE(Eventually([&] { return !verifier_->cache_trusted(); }));
  EXPECT_LT(absl::Now() - lost, options_.lease + absl::Seconds(1));
  auto outcome = verifier_->Verify(key, {});
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kUnavailable);

  // Back: the lease is renewed and the cache is used again.
  feed_.SetFailing(false);
  keys_store_.SetUnavailable(false);
  ASSERT_TRUE(Eventually([&] { return verifier_->cache_trusted(); }));
  EXPECT_TRUE(verifier_->Verify(key, {}).ok());
}

TEST_F(ReplicaSyncTest, FeedRowEvictsTheCachedKey) {
  std::string key = CachedKey();
  const std::string id = verifier_->Verify(key, {})->key_id;
  StartSync();
  ASSERT_TRUE(Eventually([&] { return verifier_->cache_trusted(); }));
  ASSERT_TRUE(verifier_->Verify(key, {}).ok());
  const int loads = keys_store_.verify_loads();
  ASSERT_TRUE(verifier_->Verify(key, {}).ok());
  ASSERT_EQ(keys_store_.verify_loads(), loads) << "not cached";

  feed_.Commit(1, id);
  ASSERT_TRUE(Eventually([&] { return sync_->applied() >= 1; }));
  ASSERT_TRUE(verifier_->Verify(key, {}).ok());
  EXPECT_EQ(keys_store_.verify_loads(), loads + 1) << "entry was not evicted";
}

TEST_F(ReplicaSyncTest, AppliedPositionWaitsForAnOutOfOrderCommit) {
  StartSync();
  feed_.Commit(1, "aaaaaaaaaaaa");
  feed_.Commit(3, "cccccccccccc");  // seq 2 allocated, not yet committed
  ASSERT_TRUE(Eventually([&] { return feed_.AppliedOf("self") == 1; }));
  absl::SleepFor(options_.gap_timeout / 4);
  EXPECT_EQ(sync_->applied(), 1);
  feed_.Commit(2, "bbbbbbbbbbbb");
  ASSERT_TRUE(Eventually([&] { return feed_.AppliedOf("self") == 3; }));
  EXPECT_EQ(sync_->abandoned(), 0);
}

TEST_F(ReplicaSyncTest, AGapThatNeverFillsIsAbandonedAfterTheGapTimeout) {
  StartSync();
  feed_.Commit(1, "aaaaaaaaaaaa");
  feed_.Commit(3, "cccccccccccc");  // 2 rolled back
  const absl::Time t0 = absl::Now();
  ASSERT_TRUE(Eventually([&] { return feed_.AppliedOf("self") == 3; }));
  EXPECT_GE(absl::Now() - t0, options_.gap_timeout - absl::Milliseconds(10));
  EXPECT_EQ(sync_->abandoned(), 1);
}

TEST_F(ReplicaSyncTest, AwaitChangeWaitsForEveryLiveReplica) {
  StartSync();
  feed_.Commit(7, "aaaaaaaaaaaa");
  feed_.SetReplica("peer", {/*applied=*/6, /*live=*/true});
  ChangeRef change{1, "aaaaaaaaaaaa", "revoked", 2};
  // Set just before the peer acknowledges: a wait that returns while it is
  // still false returned before the acknowledgement. (The pause only makes
  // such a return likely to be seen; no time is asserted.)
  std::atomic<bool> acking{false};
  std::thread acker([&] {
    absl::SleepFor(absl::Milliseconds(100));
    acking = true;
    feed_.SetReplica("peer", {7, true});
  });
  absl::Status s = sync_->AwaitChange(change, absl::Milliseconds(1));
  const bool acked_before_return = acking.load();
  acker.join();
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(acked_before_return) << "returned before the ack";
  EXPECT_TRUE(feed_.announced().empty());
}

TEST_F(ReplicaSyncTest, DeadReplicasAreNotWaitedFor) {
  StartSync();
  feed_.Commit(7, "aaaaaaaaaaaa");
  feed_.SetReplica("dead", {/*applied=*/0, /*live=*/false});
  EXPECT_TRUE(sync_
                  ->AwaitChange({1, "aaaaaaaaaaaa", "revoked", 2},
                                absl::Milliseconds(1))
                  .ok());
}

TEST_F(ReplicaSyncTest, AReplicaThatNeverAcksFailsTheWaitAfterTheBound) {
  StartSync();
  feed_.Commit(7, "aaaaaaaaaaaa");
  // Live (heartbeating) yet never applying: only a broken replica does this.
  feed_.SetReplica("stuck", {0, true});
  const absl::Time t0 = absl::Now();
  absl::Status s = sync_->AwaitChange({1, "aaaaaaaaaaaa", "revoked", 2},
                                      absl::Milliseconds(1));
  const absl::Duration waited = absl::Now() - t0;
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("stands"), absl::string_view::npos);
  EXPECT_GE(waited, sync_->ack_timeout());
  EXPECT_LT(waited, sync_->ack_timeout() + absl::Seconds(2));
}

TEST_F(ReplicaSyncTest, ASlowMutationIsReannouncedUnderANewSeq) {
  StartSync();
  feed_.Commit(7, "aaaaaaaaaaaa");
  feed_.SetReplica("peer", {7, true});
  // peer has applied 7, but a slow mutation's own seq may have been
  // abandoned: the change is announced again and waited for under seq 8.
  std::thread acker([&] {
    EXPECT_TRUE(Eventually([&] { return !feed_.announced().empty(); }));
    absl::SleepFor(absl::Milliseconds(50));
    feed_.SetReplica("peer", {8, true});
  });
  const absl::Time t0 = absl::Now();
  absl::Status s = sync_->AwaitChange({1, "aaaaaaaaaaaa", "revoked", 2},
                                      options_.gap_timeout);
  acker.join();
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_GE(absl::Now() - t0, absl::Milliseconds(50));
  ASSERT_EQ(feed_.announced().size(), 1u);
  EXPECT_EQ(feed_.announced()[0].key_id, "aaaaaaaaaaaa");
  EXPECT_EQ(feed_.announced()[0].change_type, "revoked");
  EXPECT_EQ(sync_->reannounced(), 1u);
}

TEST_F(ReplicaSyncTest, AHeartbeatAfterTheTrustBoundDropsTheCache) {
  std::string key = CachedKey();
  StartSync();
  const int loads = TrustedAndCached(key);

  // The replica cannot reach the feed until its trust bound passed (the
  // key is not verified meanwhile, so the cache is not refilled).
  feed_.SetFailing(true);
  ASSERT_TRUE(Eventually([&] { return !verifier_->cache_trusted(); }));
  feed_.SetFailing(false);
  ASSERT_TRUE(Eventually([&] { return verifier_->cache_trusted(); }));
  EXPECT_GE(sync_->cache_resets(), 1u);
  ASSERT_TRUE(verifier_->Verify(key, {}).ok());
  EXPECT_EQ(keys_store_.verify_loads(), loads + 1)
      << "trust came back with the entry cached before the lapse";
}

TEST_F(ReplicaSyncTest, ARolledBackFeedDropsTheCacheAndIsReadAgain) {
  std::string key = CachedKey();
  StartSync();
  feed_.Commit(1, "aaaaaaaaaaaa");
  feed_.Commit(2, "bbbbbbbbbbbb");
  ASSERT_TRUE(Eventually([&] { return feed_.AppliedOf("self") == 2; }));
  const int loads = TrustedAndCached(key);

  // Restored to an empty feed; a new change reuses seq 1.
  feed_.Truncate();
  feed_.Commit(1, "cccccccccccc");
  ASSERT_TRUE(Eventually([&] { return sync_->cache_resets() >= 1; }));
  ASSERT_TRUE(Eventually([&] { return feed_.AppliedOf("self") == 1; }));
  ASSERT_TRUE(verifier_->Verify(key, {}).ok());
  EXPECT_EQ(keys_store_.verify_loads(), loads + 1) << "cache kept";
}

TEST_F(ReplicaSyncTest, ADatabaseClockJumpDropsTheCache) {
  std::string key = CachedKey();
  StartSync();
  const int loads = TrustedAndCached(key);
  // As if this process had been suspended for a whole lease: the database
  // clock moved on, the local monotonic clock did not.
  feed_.AdvanceDbClock(options_.lease);
  ASSERT_TRUE(Eventually([&] { return sync_->cache_resets() >= 1; }));
  ASSERT_TRUE(Eventually([&] { return verifier_->cache_trusted(); }));
  ASSERT_TRUE(verifier_->Verify(key, {}).ok());
  EXPECT_EQ(keys_store_.verify_loads(), loads + 1) << "cache kept";
}

TEST_F(ReplicaSyncTest, AnUnchangedMutationIsAnnouncedAgain) {
  StartSync();
  feed_.Commit(7, "aaaaaaaaaaaa");
  feed_.SetReplica("peer", {7, true});
  std::thread acker([&] {
    EXPECT_TRUE(Eventually([&] { return !feed_.announced().empty(); }));
    feed_.SetReplica("peer", {8, true});
  });
  ChangeRef change{1, "aaaaaaaaaaaa", "revoked", 2};
  change.wrote_feed_row = false;
  absl::Status s = sync_->AwaitChange(change, absl::Milliseconds(1));
  acker.join();
  EXPECT_TRUE(s.ok()) << s;
  ASSERT_EQ(feed_.announced().size(), 1u);
  EXPECT_EQ(feed_.announced()[0].key_id, "aaaaaaaaaaaa");
}

TEST_F(ReplicaSyncTest, TheWaitEndsAtTheCallersDeadline) {
  StartSync();
  feed_.Commit(7, "aaaaaaaaaaaa");
  feed_.SetReplica("stuck", {0, true});
  absl::Status s;
  {
    storage::ScopedCallDeadline deadline(absl::Now() + absl::Milliseconds(100));
    s = sync_->AwaitChange({1, "aaaaaaaaaaaa", "revoked", 2},
                           absl::Milliseconds(1));
  }
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_NE(s.message().find("stands"), absl::string_view::npos);
}

TEST_F(ReplicaSyncTest, StopDeregisters) {
  StartSync();
  ASSERT_TRUE(Eventually([&] { return feed_.Registered("self"); }));
  sync_->Stop();
  EXPECT_FALSE(feed_.Registered("self"));
}

}  // namespace
}  // namespace lumo::service
