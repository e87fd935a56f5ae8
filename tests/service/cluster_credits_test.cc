// ClusterCredits (server/service/cluster_credits.h): credits leased from
// the shared CounterStore (the in-memory fake, held to the contract by the
// conformance suite) and spent in memory, on one test clock.
#include "server/service/cluster_credits.h"

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/storage/fakes/fake_stores.h"

namespace lumo::service {
namespace {

using Result = SpendOutcome::Result;

class ClusterCreditsTest : public ::testing::Test {
 protected:
  absl::Time t_ = absl::FromUnixSeconds(1'800'000'000);
  testing::FakeStores stores_;
  std::string key_;

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

  std::unique_ptr<ClusterCredits> Replica(int replicas) {
    ClusterCreditsOptions o;
    o.now = [this] { return t_; };
    o.replicas = [replicas] { return replicas; };
    return std::make_unique<ClusterCredits>(&stores_.counters, o);
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

}  // namespace
}  // namespace lumo::service
