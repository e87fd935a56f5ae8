// FailureThrottle: per-address and per-key-id budgets of failed
// verifications (docs/reliability.md "Brute force"), on a fake clock.
#include "server/service/failure_throttle.h"

#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/storage/fakes/fake_stores.h"

namespace lumo::service {
namespace {

class FailureThrottleTest : public ::testing::Test {
 protected:
  FailureThrottleOptions Options(int ip_burst, int ip_per_minute, int key_burst,
                                 int key_per_minute) {
    FailureThrottleOptions o;
    o.ip_burst = ip_burst;
    o.ip_per_minute = ip_per_minute;
    o.key_burst = key_burst;
    o.key_per_minute = key_per_minute;
    o.now = [this] { return now_; };
    return o;
  }
  static VerifyOutcome Outcome(VerifyReason reason, std::string key_id) {
    VerifyOutcome o;
    o.reason = reason;
    o.key_id = std::move(key_id);
    return o;
  }

  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
};

TEST_F(FailureThrottleTest, AddressIsRefusedAfterItsBurstAndRecoversOnRefill) {
  FailureThrottle throttle(Options(3, 30, 0, 0));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(throttle.CheckAddress("203.0.113.1"), std::nullopt) << i;
    throttle.RecordFailure("203.0.113.1", "");
  }
  std::optional<absl::Duration> wait = throttle.CheckAddress("203.0.113.1");
  ASSERT_TRUE(wait.has_value());
  // 30 per minute: one token every 2 seconds.
  EXPECT_EQ(*wait, absl::Seconds(2));
  EXPECT_EQ(throttle.CheckAddress("203.0.113.2"), std::nullopt);
  now_ += absl::Seconds(2);
  EXPECT_EQ(throttle.CheckAddress("203.0.113.1"), std::nullopt);
  throttle.RecordFailure("203.0.113.1", "");
  EXPECT_TRUE(throttle.CheckAddress("203.0.113.1").has_value());
}

TEST_F(FailureThrottleTest, KeyIdThrottleTurnsOnlyFailuresIntoThrottled) {
  FailureThrottle throttle(Options(0, 0, 2, 6));
  const VerifyOutcome bad = Outcome(VerifyReason::kNotFound, "AAAAAAAAAAAA");
  EXPECT_EQ(throttle.AfterVerify("198.51.100.1", bad), std::nullopt);
  EXPECT_EQ(throttle.AfterVerify("198.51.100.2", bad), std::nullopt);
  std::optional<absl::Duration> wait =
      throttle.AfterVerify("198.51.100.3", bad);
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, absl::Seconds(10));
  // The owner's right secret is never throttled and costs nothing.
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(throttle.AfterVerify("198.51.100.3", Outcome(VerifyReason::kValid,
                                                           "AAAAAAAAAAAA")),
              std::nullopt);
  }
  // Other ids are independent; addresses are not throttled (burst 0).
  EXPECT_EQ(throttle.AfterVerify("198.51.100.3", Outcome(VerifyReason::kRevoked,
                                                         "BBBBBBBBBBBB")),
            std::nullopt);
  EXPECT_EQ(throttle.CheckAddress("198.51.100.3"), std::nullopt);
  now_ += absl::Seconds(10);
  EXPECT_EQ(throttle.AfterVerify("198.51.100.3", bad), std::nullopt);
}

TEST_F(FailureThrottleTest, OnlyCredentialFailuresCount) {
  for (VerifyReason r : {VerifyReason::kMalformed, VerifyReason::kNotFound,
                         VerifyReason::kRevoked, VerifyReason::kExpired,
                         VerifyReason::kRotated, VerifyReason::kWrongTenant}) {
    EXPECT_TRUE(FailureThrottle::CountsAsFailure(r)) << VerifyReasonName(r);
  }
  for (VerifyReason r :
       {VerifyReason::kValid, VerifyReason::kInsufficientScope,
        VerifyReason::kIpNotAllowed, VerifyReason::kRateLimited}) {
    EXPECT_FALSE(FailureThrottle::CountsAsFailure(r)) << VerifyReasonName(r);
  }
  FailureThrottle throttle(Options(1, 1, 1, 1));
  throttle.AfterVerify(
      "192.0.2.1", Outcome(VerifyReason::kInsufficientScope, "CCCCCCCCCCCC"));
  EXPECT_EQ(throttle.CheckAddress("192.0.2.1"), std::nullopt);
  throttle.AfterVerify("192.0.2.1", Outcome(VerifyReason::kMalformed, ""));
  EXPECT_TRUE(throttle.CheckAddress("192.0.2.1").has_value());
}

TEST_F(FailureThrottleTest, EmptyNamesAndZeroBurstsNeverThrottle) {
  FailureThrottle off(Options(0, 0, 0, 0));
  for (int i = 0; i < 100; ++i) off.RecordFailure("192.0.2.1", "DDDDDDDDDDDD");
  EXPECT_EQ(off.CheckAddress("192.0.2.1"), std::nullopt);
  EXPECT_EQ(off.CheckKeyFailure("DDDDDDDDDDDD"), std::nullopt);

  FailureThrottle on(Options(1, 1, 1, 1));
  for (int i = 0; i < 100; ++i) on.RecordFailure("", "");
  EXPECT_EQ(on.CheckAddress(""), std::nullopt);
  EXPECT_EQ(on.CheckKeyFailure(""), std::nullopt);
}

TEST_F(FailureThrottleTest, FullTableFailsClosedAndForgetsRefilledEntries) {
  FailureThrottleOptions o = Options(1, 60, 0, 0);
  o.max_tracked = 2;
  FailureThrottle throttle(o);
  throttle.RecordFailure("192.0.2.1", "");
  throttle.RecordFailure("192.0.2.2", "");
  // Full table, every entry throttled: a new address cannot be tracked, so
  // it is refused rather than let through untracked.
  throttle.RecordFailure("192.0.2.3", "");
  EXPECT_TRUE(throttle.CheckAddress("192.0.2.3").has_value());
  EXPECT_TRUE(throttle.CheckAddress("192.0.2.1").has_value());
  // After a refill the old entries make room.
  now_ += absl::Seconds(1);
  EXPECT_EQ(throttle.CheckAddress("192.0.2.3"), std::nullopt);
  throttle.RecordFailure("192.0.2.3", "");
  EXPECT_TRUE(throttle.CheckAddress("192.0.2.3").has_value());
}

TEST_F(FailureThrottleTest, FullTableEvictsLeastSpentNeverAThrottledEntry) {
  FailureThrottleOptions o = Options(3, 1, 0, 0);
  o.max_tracked = 2;
  FailureThrottle throttle(o);
  for (int i = 0; i < 3; ++i) throttle.RecordFailure("192.0.2.1", "");
  throttle.RecordFailure("192.0.2.2", "");  // spent one of three
  ASSERT_TRUE(throttle.CheckAddress("192.0.2.1").has_value());
  // A third address takes the place of the one that spent least.
  throttle.RecordFailure("192.0.2.3", "");
  EXPECT_TRUE(throttle.CheckAddress("192.0.2.1").has_value());
}

TEST_F(FailureThrottleTest, IpV6AddressesCountPerSlash64) {
  FailureThrottle throttle(Options(2, 1, 0, 0));
  throttle.RecordFailure("2001:db8:1:2::1", "");
  throttle.RecordFailure("2001:db8:1:2:ffff::7", "");
  // Any address of the same /64 is over the budget...
  EXPECT_TRUE(throttle.CheckAddress("2001:db8:1:2::99").has_value());
  // ...another /64 is not; IPv4 addresses count one by one.
  EXPECT_EQ(throttle.CheckAddress("2001:db8:1:3::1"), std::nullopt);
  throttle.RecordFailure("192.0.2.1", "");
  throttle.RecordFailure("192.0.2.1", "");
  EXPECT_EQ(throttle.CheckAddress("192.0.2.2"), std::nullopt);
  // The prefix length is configurable.
  FailureThrottleOptions o = Options(1, 1, 0, 0);
  o.ipv6_prefix_len = 128;
  FailureThrottle exact(o);
  exact.RecordFailure("2001:db8::1", "");
  EXPECT_EQ(exact.CheckAddress("2001:db8::2"), std::nullopt);
}

// Three replicas sharing one fake CounterStore; lease statements are
// queued and run when the test says (the replies of a real worker pool
// arrive at any time).
class SharedFailureThrottleTest : public FailureThrottleTest {
 protected:
  void SetUp() override { stores_.db->FreezeClock(now_); }

  std::unique_ptr<FailureThrottle> Replica(int ip_burst, int ip_per_minute,
                                           int key_burst, int key_per_minute) {
    FailureThrottleOptions o =
        Options(ip_burst, ip_per_minute, key_burst, key_per_minute);
    o.shared = &stores_.counters;
    o.replicas = [] { return 3; };
    o.schedule = [this](std::function<void()> task) {
      queued_.push_back(std::move(task));
    };
    return std::make_unique<FailureThrottle>(o);
  }
  void RunQueued() {
    while (!queued_.empty()) {
      std::vector<std::function<void()>> run;
      run.swap(queued_);
      for (auto& f : run) f();
    }
  }
  void Advance(absl::Duration d) {
    now_ += d;
    stores_.db->FreezeClock(now_);
  }

  testing::FakeStores stores_;
  std::vector<std::function<void()>> queued_;
};

TEST_F(SharedFailureThrottleTest, ASpreadAttackGetsTheBudgetOfOneReplica) {
  // Burst 30, one token a minute, 3 replicas: batches of
  // max(1, 30 / 12) = 2. Each replica alone would allow 30 (90 in all).
  // Bound (docs/limits.md "Shared throttles"): the bucket's 30 plus at
  // most one batch per replica counted without a token: 36.
  std::vector<std::unique_ptr<FailureThrottle>> replicas;
  for (int i = 0; i < 3; ++i) replicas.push_back(Replica(30, 1, 0, 0));
  int verified = 0;
  for (int round = 0; round < 100; ++round) {
    for (auto& r : replicas) {
      if (r->CheckAddress("203.0.113.9").has_value()) continue;
      ++verified;
      r->RecordFailure("203.0.113.9", "");
    }
    // Replies arrive after every round (a slow database: after a whole
    // round of attempts on every replica).
    RunQueued();
  }
  std::printf("spread attack, burst 30, 3 replicas: %d verified\n", verified);
  EXPECT_LE(verified, 36);
  EXPECT_GE(verified, 30);
  // Refused on every replica, with the wait for the shared bucket's next
  // token times the replicas (one token a minute: about 3 minutes).
  for (auto& r : replicas) {
    std::optional<absl::Duration> wait = r->CheckAddress("203.0.113.9");
    ASSERT_TRUE(wait.has_value());
    EXPECT_GT(*wait, absl::Minutes(1));
    EXPECT_LE(*wait, absl::Minutes(3));
  }
  // Other addresses are untouched.
  EXPECT_EQ(replicas[1]->CheckAddress("203.0.113.10"), std::nullopt);
}

TEST_F(SharedFailureThrottleTest, KeyIdFailuresAreSharedButTheOwnerGetsIn) {
  std::vector<std::unique_ptr<FailureThrottle>> replicas;
  for (int i = 0; i < 3; ++i) replicas.push_back(Replica(0, 0, 6, 1));
  const VerifyOutcome bad = Outcome(VerifyReason::kNotFound, "AAAAAAAAAAAA");
  int answered = 0;
  for (int round = 0; round < 20; ++round) {
    for (auto& r : replicas) {
      // Different addresses each time: only the key id counts.
      if (!r->AfterVerify(absl::StrCat("198.51.100.", round), bad)) {
        ++answered;
      }
    }
    RunQueued();
  }
  // 6 in the bucket plus at most one batch (1) per replica.
  EXPECT_LE(answered, 6 + 3);
  EXPECT_GE(answered, 6);
  const VerifyOutcome good = Outcome(VerifyReason::kValid, "AAAAAAAAAAAA");
  for (auto& r : replicas)
    EXPECT_EQ(r->AfterVerify("198.51.100.1", good), std::nullopt);
}

TEST_F(SharedFailureThrottleTest, WithTheStoreDownEachReplicaKeepsItsOwn) {
  std::vector<std::unique_ptr<FailureThrottle>> replicas;
  for (int i = 0; i < 3; ++i) replicas.push_back(Replica(4, 1, 0, 0));
  stores_.db->SetUnavailable(true);
  int verified = 0;
  for (int round = 0; round < 10; ++round) {
    for (auto& r : replicas) {
      if (r->CheckAddress("203.0.113.7").has_value()) continue;
      ++verified;
      r->RecordFailure("203.0.113.7", "");
    }
    RunQueued();
  }
  // Each replica's own bucket: 4 each, never more.
  EXPECT_EQ(verified, 12);
}

TEST_F(FailureThrottleTest, ThrottledErrorIsResourceExhausted) {
  EXPECT_EQ(FailureThrottle::ThrottledError().code(),
            absl::StatusCode::kResourceExhausted);
}

// A flood of failures from many addresses (each a new shared entry) must
// not start a statement per address at once: at most max_shared_in_flight
// are outstanding, the other failures stay owed and are sent as places
// free, and the places come back when the tasks run or are dropped.
TEST_F(SharedFailureThrottleTest, LeaseStatementsInFlightAreCapped) {
  auto r = Replica(10, 1, 0, 0);  // max_shared_in_flight: the default 4
  for (int i = 0; i < 200; ++i) {
    const std::string address = "198.51.100." + std::to_string(i);
    ASSERT_FALSE(r->CheckAddress(address).has_value());
    r->RecordFailure(address, "");
  }
  EXPECT_EQ(queued_.size(), 4u);  // 200 before the cap
  EXPECT_EQ(r->shared_in_flight(), 4);
  // Each returning statement hands its place to an entry that owes, never
  // more than the cap at once.
  while (!queued_.empty()) {
    std::function<void()> task = std::move(queued_.front());
    queued_.erase(queued_.begin());
    task();
    task = nullptr;  // its place is given back
    EXPECT_LE(r->shared_in_flight(), 4);
    EXPECT_LE(queued_.size(), 4u);
  }
  EXPECT_EQ(r->shared_in_flight(), 0);
  EXPECT_EQ(r->shared_calls(), 200);
  // Every failure reached its shared bucket (and one token was leased
  // ahead for it).
  for (int i : {0, 150, 199}) {
    absl::StatusOr<storage::BucketLease> left = stores_.counters.LeaseBucket(
        "t:ip:198.51.100." + std::to_string(i), storage::BucketSpec{10, 1}, 0);
    ASSERT_TRUE(left.ok()) << left.status();
    EXPECT_LE(left->left, 10 - 2) << i;
  }
  // A task the pool dropped gives its place back.
  for (int i = 0; i < 3; ++i) {
    r->RecordFailure("192.0.2." + std::to_string(i), "");
  }
  EXPECT_EQ(r->shared_in_flight(), 3);
  queued_.clear();  // dropped, never run
  EXPECT_EQ(r->shared_in_flight(), 0);
}

// A failure that finds every statement place taken stays owed by its entry.
// Beside other replicas it must not be followed by more failures counted
// without a token: the address is refused until the owed failure has been
// sent, and it is sent as soon as a place frees (not only with the entry's
// next failure). Otherwise a replica whose places are held by other
// entries' statements verifies one attempt after another on this address,
// bounded only by its own bucket.
TEST_F(SharedFailureThrottleTest, AnOwedFailureRefusesUntilItIsSent) {
  FailureThrottleOptions o = Options(12, 1, 12, 1);
  o.shared = &stores_.counters;
  o.replicas = [] { return 3; };  // batch = max(1, 12 / 12) = 1
  o.schedule = [this](std::function<void()> task) {
    queued_.push_back(std::move(task));
  };
  o.max_shared_in_flight = 1;
  FailureThrottle r(o);
  const std::string address = "203.0.113.40";
  // A key id's statement takes the only place (a failure from elsewhere).
  r.RecordFailure("", "AAAAAAAAAAAA");
  ASSERT_EQ(queued_.size(), 1u);
  // The address's first failure: no place for its statement.
  ASSERT_EQ(r.CheckAddress(address), std::nullopt);
  r.RecordFailure(address, "");
  EXPECT_EQ(queued_.size(), 1u);
  // Owed: the next attempts from the address are refused, not verified.
  for (int i = 0; i < 5; ++i) {
    std::optional<absl::Duration> wait = r.CheckAddress(address);
    ASSERT_TRUE(wait.has_value()) << i;
    EXPECT_GE(*wait, absl::Seconds(1));
  }
  // The key id's statement returns: its place carries the owed failure.
  {
    std::vector<std::function<void()>> run;
    run.swap(queued_);
    for (auto& f : run) f();
  }
  ASSERT_EQ(queued_.size(), 1u);
  EXPECT_TRUE(r.CheckAddress(address).has_value());  // in flight now
  RunQueued();
  // The failure reached the shared bucket, and the reply leased ahead.
  absl::StatusOr<storage::BucketLease> left = stores_.counters.LeaseBucket(
      "t:ip:" + address, storage::BucketSpec{12, 1}, 0);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_LE(left->left, 12 - 2);
  EXPECT_EQ(r.CheckAddress(address), std::nullopt);
  EXPECT_EQ(r.shared_in_flight(), 0);
}

// With the store down, a statement that fails still hands its place to an
// entry that owes: the owed failure is answered (by the store's failure:
// this replica's own bucket counts alone) instead of the address being
// refused until the lease wait ends.
TEST_F(SharedFailureThrottleTest, AFailedStatementHandsItsPlaceOn) {
  FailureThrottleOptions o = Options(12, 1, 12, 1);
  o.shared = &stores_.counters;
  o.replicas = [] { return 3; };
  o.schedule = [this](std::function<void()> task) {
    queued_.push_back(std::move(task));
  };
  o.max_shared_in_flight = 1;
  FailureThrottle r(o);
  stores_.db->SetUnavailable(true);
  const std::string address = "203.0.113.41";
  r.RecordFailure("", "BBBBBBBBBBBB");  // takes the only place
  ASSERT_EQ(r.CheckAddress(address), std::nullopt);
  r.RecordFailure(address, "");  // owed
  EXPECT_TRUE(r.CheckAddress(address).has_value());
  {
    std::vector<std::function<void()>> run;
    run.swap(queued_);
    for (auto& f : run) f();  // fails; the place goes to the address
  }
  ASSERT_EQ(queued_.size(), 1u);
  RunQueued();  // fails too
  EXPECT_EQ(r.shared_in_flight(), 0);
  // Counted by this replica's own bucket alone (11 of 12 left).
  EXPECT_EQ(r.CheckAddress(address), std::nullopt);
}

}  // namespace
}  // namespace lumo::service
