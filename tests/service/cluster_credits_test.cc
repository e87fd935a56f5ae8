// ClusterCredits (server/service/cluster_credits.h): credits leased from
// the shared CounterStore (the in-memory fake, held to the contract by the
// conformance suite) and spent in memory, on one test clock.
#include "server/service/cluster_credits.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/storage/fakes/blocking_counter_store.h"
#include "tests/storage/fakes/fake_stores.h"

namespace lumo::service {
namespace {

using Result = SpendOutcome::Result;

class ClusterCreditsTest : public ::testing::Test {
 protected:
  absl::Time t_ = absl::FromUnixSeconds(1'800'000'000);
  testing::FakeStores stores_;
  std::string key_;

  // Polls (up to a minute) until one Renew of `r` waits for another's
  // statement; true when it does.
  static bool OneRenewalWaits(const ClusterCredits& r) {
    for (int i = 0; i < 60000 && r.renewals_waiting() == 0; ++i) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    return r.renewals_waiting() == 1;
  }

  void SetUp() override {
    stores_.db->FreezeClock(t_);
    absl::StatusOr<storage::Tenant> tenant =
        stores_.keys.CreateTenant("acme", "Acme", nullptr, {});
    ASSERT_TRUE(tenant.ok()) << tenant.status();
    storage::NewKey key;
    key.id = "creditkey001";
    key.tenant_id = tenant->id;
    key.name = "k";
    key.scopes = {"admin:read"};
    key.created_by_type = "system";
    key.created_by_id = "test";
    storage::AuditEvent created;
    created.action = "api_key.created";
    ASSERT_TRUE(stores_.keys.InsertKey(key, created).ok());
    key_ = key.id;
  }

  void Advance(absl::Duration d) {
    t_ += d;
    stores_.db->FreezeClock(t_);
  }

  std::unique_ptr<ClusterCredits> Replica(
      int replicas, storage::CounterStore* store = nullptr) {
    ClusterCreditsOptions o;
    o.now = [this] { return t_; };
    o.replicas = [replicas] { return replicas; };
    return std::make_unique<ClusterCredits>(
        store != nullptr ? store : &stores_.counters, o);
  }

  int64_t Balance() { return stores_.counters.GetQuota(key_)->remaining; }

  // Spends one credit `per_second` times a second for `seconds` on the
  // test clock, renewing as a server does. Returns the size of each lease
  // the replica took (what the database's balance lost).
  std::vector<int64_t> SpendSteadily(ClusterCredits& r, int64_t per_second,
                                     int64_t seconds) {
    std::vector<int64_t> grants;
    for (int64_t i = 0; i < per_second * seconds; ++i) {
      Advance(absl::Seconds(1) / per_second);
      Result spent = r.Spend(key_, 1).result;
      if (spent == Result::kNeedLease) {
        const int64_t before = Balance();
        EXPECT_TRUE(r.Renew(key_, 1).ok());
        grants.push_back(before - Balance());
        spent = r.Spend(key_, 1).result;
      }
      EXPECT_EQ(spent, Result::kSpent);
    }
    return grants;
  }

  // What a server does: spend; when a lease is needed, renew on the
  // worker and spend again.
  Result Spend(ClusterCredits& r, int64_t cost) {
    SpendOutcome out = r.Spend(key_, cost);
    if (out.result != Result::kNeedLease) return out.result;
    EXPECT_TRUE(r.Renew(key_, cost).ok());
    out = r.Spend(key_, cost);
    return out.result == Result::kNeedLease ? Result::kExhausted : out.result;
  }
};

TEST_F(ClusterCreditsTest, OneReplicaSpendsExactlyTheBalance) {
  ASSERT_TRUE(stores_.counters.SetQuota(key_, 50, {}).ok());
  auto r = Replica(1);
  int spent = 0;
  for (int i = 0; i < 100; ++i) spent += Spend(*r, 1) == Result::kSpent;
  EXPECT_EQ(spent, 50);
  r->FlushReturns(/*all=*/true);
  EXPECT_EQ(stores_.counters.GetQuota(key_)->remaining, 0);
}

TEST_F(ClusterCreditsTest, ThreeReplicasNeverSpendMoreThanTheBalance) {
  ASSERT_TRUE(stores_.counters.SetQuota(key_, 1000, {}).ok());
  std::vector<std::unique_ptr<ClusterCredits>> replicas;
  for (int i = 0; i < 3; ++i) replicas.push_back(Replica(3));
  std::mt19937 rng(3);
  int64_t spent = 0;
  for (int i = 0; i < 3000; ++i) {
    const int64_t cost = 1 + rng() % 3;
    if (Spend(*replicas[rng() % 3], cost) == Result::kSpent) spent += cost;
  }
  EXPECT_LE(spent, 1000);
  // What is not spent is what the replicas still hold (less than the
  // largest cost each, since every replica kept asking).
  for (auto& r : replicas) r->FlushReturns(/*all=*/true);
  EXPECT_EQ(spent + stores_.counters.GetQuota(key_)->remaining, 1000);
  EXPECT_GE(spent, 1000 - 3 * 2);
}

TEST_F(ClusterCreditsTest, AReleasedLeaseIsKeptOnlyInItsEpoch) {
  // 1000 credits, 3 replicas: a first lease of 1 (the balance is unknown),
  // then floor(999 / 12) = 83.
  ASSERT_TRUE(stores_.counters.SetQuota(key_, 1000, {}).ok());
  auto r = Replica(3);
  ASSERT_EQ(r->Spend(key_, 1).result, Result::kNeedLease);
  ASSERT_EQ(Spend(*r, 1), Result::kSpent);
  ASSERT_EQ(Spend(*r, 1), Result::kSpent);
  EXPECT_EQ(stores_.counters.GetQuota(key_)->remaining, 1000 - 1 - 83);
  // The key changed (an edit, the same epoch): the next spend asks the
  // store first, and the 82 credits held still count.
  r->Release(key_);
  EXPECT_EQ(r->Spend(key_, 1).result, Result::kNeedLease);
  ASSERT_EQ(Spend(*r, 1), Result::kSpent);
  r->FlushReturns(/*all=*/true);
  EXPECT_EQ(stores_.counters.GetQuota(key_)->remaining, 1000 - 3);

  // Held again, then the balance is set (a new epoch): the 82 credits held
  // of the old balance are void, and only the new balance is spent.
  ASSERT_EQ(Spend(*r, 1), Result::kSpent);
  ASSERT_EQ(Spend(*r, 1), Result::kSpent);
  ASSERT_TRUE(stores_.counters.SetQuota(key_, 2, {}).ok());
  r->Release(key_);
  int spent = 0;
  for (int i = 0; i < 10; ++i) spent += Spend(*r, 1) == Result::kSpent;
  EXPECT_EQ(spent, 2);
}

TEST_F(ClusterCreditsTest, AReleasedExhaustedBalanceIsAskedAgain) {
  // An empty balance is believed for a second; a set within that second
  // is seen at once by a replica that released the key.
  ASSERT_TRUE(stores_.counters.SetQuota(key_, 1, {}).ok());
  auto r = Replica(1);
  ASSERT_EQ(Spend(*r, 1), Result::kSpent);
  ASSERT_EQ(Spend(*r, 1), Result::kExhausted);
  EXPECT_EQ(r->Spend(key_, 1).result, Result::kExhausted);
  ASSERT_TRUE(stores_.counters.SetQuota(key_, 5, {}).ok());
  r->Release(key_);
  EXPECT_EQ(Spend(*r, 1), Result::kSpent);
}

TEST_F(ClusterCreditsTest, ACostAboveTheBalanceSpendsNothing) {
  ASSERT_TRUE(stores_.counters.SetQuota(key_, 5, {}).ok());
  auto r = Replica(1);
  EXPECT_EQ(Spend(*r, 3), Result::kSpent);
  EXPECT_EQ(Spend(*r, 3), Result::kExhausted);
  EXPECT_EQ(Spend(*r, 2), Result::kSpent);
  EXPECT_EQ(Spend(*r, 1), Result::kExhausted);
  EXPECT_EQ(Spend(*r, 0), Result::kSpent);  // checks nothing
}

TEST_F(ClusterCreditsTest, ARefillResetsTheBalance) {
  ASSERT_TRUE(
      stores_.counters.SetQuota(key_, 2, storage::Refill{5, absl::Minutes(1)})
          .ok());
  auto r = Replica(1);
  EXPECT_EQ(Spend(*r, 1), Result::kSpent);
  EXPECT_EQ(Spend(*r, 1), Result::kSpent);
  SpendOutcome out = r->Spend(key_, 1);
  ASSERT_EQ(out.result, Result::kExhausted);
  ASSERT_TRUE(out.next_refill.has_value());
  EXPECT_EQ(*out.next_refill, t_ + absl::Minutes(1));
  Advance(absl::Minutes(1));
  int spent = 0;
  for (int i = 0; i < 10; ++i) spent += Spend(*r, 1) == Result::kSpent;
  EXPECT_EQ(spent, 5);  // reset to 5, not 5 more than what was left
}

TEST_F(ClusterCreditsTest, AnUnreachableStoreFailsClosed) {
  ASSERT_TRUE(stores_.counters.SetQuota(key_, 50, {}).ok());
  auto r = Replica(1);
  stores_.db->SetUnavailable(true);
  EXPECT_EQ(r->Spend(key_, 1).result, Result::kNeedLease);
  EXPECT_TRUE(absl::IsUnavailable(r->Renew(key_, 1)));
  EXPECT_EQ(r->Spend(key_, 1).result, Result::kNeedLease);
}

TEST_F(ClusterCreditsTest, AKeyWithoutQuotaIsNotFound) {
  auto r = Replica(1);
  EXPECT_TRUE(absl::IsNotFound(r->Renew(key_, 1)));
}

TEST_F(ClusterCreditsTest, ADeadReplicasLeaseIsLostNeverDoubled) {
  ASSERT_TRUE(stores_.counters.SetQuota(key_, 100, {}).ok());
  int64_t spent = 0;
  {
    auto a = Replica(2);  // leases max(1, min(1000, 100 / 8)) = 12 at most
    spent += Spend(*a, 1) == Result::kSpent;
    spent += Spend(*a, 1) == Result::kSpent;
  }  // dies without returning
  auto b = Replica(2);
  for (int i = 0; i < 200; ++i) spent += Spend(*b, 1) == Result::kSpent;
  EXPECT_LE(spent, 100);
  EXPECT_GE(spent, 100 - 12);
}

TEST_F(ClusterCreditsTest, AHotKeysLeaseCoversAboutASecondOfItsUse) {
  // 20 000 credits a second on one replica for 10 s. Fixed leases of
  // 1 000 cost 200 lease statements; leases sized to the rate cost one a
  // second: 1 (the balance unknown), 1 000 (the base: one credit spent so
  // far), then ~20 000 each.
  ASSERT_TRUE(stores_.counters.SetQuota(key_, 1'000'000'000'000, {}).ok());
  auto r = Replica(1);
  const std::vector<int64_t> grants = SpendSteadily(*r, 20'000, 10);
  ASSERT_GE(grants.size(), 3u);
  EXPECT_EQ(grants[0], 1);
  EXPECT_EQ(grants[1], 1000);
  EXPECT_LE(r->store_calls(), 14);
  for (size_t i = 2; i < grants.size(); ++i) {
    // A second of use at the measured rate (to a rounding), never more.
    EXPECT_GE(grants[i], 19'000) << i;
    EXPECT_LE(grants[i], 20'001) << i;
  }
  // What a replica dying now would lose: at most its last lease.
  EXPECT_LE(r->held(key_), 20'001);
}

TEST_F(ClusterCreditsTest, LeasesFollowTheRateDownToTheBase) {
  ASSERT_TRUE(stores_.counters.SetQuota(key_, 1'000'000'000'000, {}).ok());
  auto r = Replica(1);
  SpendSteadily(*r, 20'000, 2);
  // The rate falls to 5 000 a second: once the lease of the fast second is
  // spent, leases cover a second of the new rate ...
  std::vector<int64_t> grants = SpendSteadily(*r, 5'000, 20);
  ASSERT_GE(grants.size(), 3u);
  for (size_t i = 1; i < grants.size(); ++i) {
    EXPECT_GE(grants[i], 4'750) << i;
    EXPECT_LE(grants[i], 5'001) << i;
  }
  // ... and at 100 a second they are the base of 1 000 (not 100: a key at
  // a moderate rate pays one statement per 1 000 credits, as before the
  // rate sizing).
  grants = SpendSteadily(*r, 100, 60);
  ASSERT_GE(grants.size(), 2u);
  for (size_t i = 1; i < grants.size(); ++i) EXPECT_EQ(grants[i], 1000) << i;
}

TEST_F(ClusterCreditsTest, LeasesAreCappedByMaxLeaseAndTheBalancesShare) {
  // A million credits a second: a second of use would be 1 000 000; the
  // cap of 100 000 holds.
  ASSERT_TRUE(stores_.counters.SetQuota(key_, 1'000'000'000'000, {}).ok());
  auto r = Replica(1);
  std::vector<int64_t> grants = SpendSteadily(*r, 1'000'000, 2);
  ASSERT_GE(grants.size(), 4u);
  for (int64_t g : grants) EXPECT_LE(g, 100'000);
  EXPECT_EQ(grants.back(), 100'000);
  r->FlushReturns(/*all=*/true);

  // A balance of 200 000 behind 2 replicas: at most a quarter of the
  // replica's share, floor(remaining / 8), whatever the rate.
  ASSERT_TRUE(stores_.counters.SetQuota(key_, 200'000, {}).ok());
  auto two = Replica(2);
  int64_t before = Balance();
  for (int i = 0; i < 50'000; ++i) {
    Advance(absl::Microseconds(1));
    Result spent = two->Spend(key_, 1).result;
    if (spent == Result::kNeedLease) {
      before = Balance();
      ASSERT_TRUE(two->Renew(key_, 1).ok());
      EXPECT_LE(before - Balance(), std::max<int64_t>(1, before / 8));
      spent = two->Spend(key_, 1).result;
    }
    ASSERT_EQ(spent, Result::kSpent);
  }
}

TEST_F(ClusterCreditsTest, ARenewalWaitsForTheLeaseInFlightOfItsKey) {
  // The first lease (one credit) is held back after the store granted it;
  // a second request needing credits meanwhile waits for that reply
  // instead of sending a statement of its own.
  ASSERT_TRUE(stores_.counters.SetQuota(key_, 100, {}).ok());
  testing::BlockingCounterStore store(&stores_.counters,
                                      testing::BlockingCounterStore::kCredits,
                                      /*block_call=*/1);
  auto r = Replica(1, &store);
  ASSERT_EQ(r->Spend(key_, 1).result, Result::kNeedLease);
  absl::Status first_status;
  std::thread first([&] { first_status = r->Renew(key_, 1); });
  store.blocked().WaitForNotification();

  absl::Notification done;
  absl::Status second_status;
  std::thread second([&] {
    second_status = r->Renew(key_, 1);
    done.Notify();
  });
  // The first reply is let go once the second renewal waits for it.
  ASSERT_TRUE(OneRenewalWaits(*r));
  EXPECT_FALSE(done.HasBeenNotified());
  store.Release();
  first.join();
  second.join();
  EXPECT_TRUE(first_status.ok()) << first_status;
  EXPECT_TRUE(second_status.ok()) << second_status;
  EXPECT_EQ(store.calls(), 1);  // one statement for both
  EXPECT_EQ(r->held(key_), 1);
  EXPECT_EQ(Balance(), 99);
}

// The statement in flight failed (here: the store is down; in production
// perhaps its caller's deadline): a renewal that waited for it does not
// take that failure as its own answer but asks the store itself.
TEST_F(ClusterCreditsTest, AWaitingRenewalAsksItselfWhenTheOneInFlightFailed) {
  ASSERT_TRUE(stores_.counters.SetQuota(key_, 100, {}).ok());
  testing::BlockingCounterStore store(&stores_.counters,
                                      testing::BlockingCounterStore::kCredits,
                                      /*block_call=*/1);
  auto r = Replica(1, &store);
  ASSERT_EQ(r->Spend(key_, 1).result, Result::kNeedLease);
  stores_.db->SetUnavailable(true);
  absl::Status first_status;
  std::thread first([&] { first_status = r->Renew(key_, 1); });
  store.blocked().WaitForNotification();
  absl::Status second_status;
  std::thread second([&] { second_status = r->Renew(key_, 1); });
  ASSERT_TRUE(OneRenewalWaits(*r));
  store.Release();
  first.join();
  second.join();
  EXPECT_FALSE(first_status.ok());
  EXPECT_FALSE(second_status.ok());
  EXPECT_EQ(store.calls(), 2);  // the waiter's own statement
}

}  // namespace
}  // namespace lumo::service
