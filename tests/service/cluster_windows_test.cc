// ClusterWindows (server/service/cluster_windows.h): rate limits counted
// across replicas through leases from one shared CounterStore (the
// in-memory fake, held to the contract by the conformance suite). Every
// replica and the fake database read one test clock; renewals "ahead of
// need" are queued and run when the test says, so no test sleeps.
#include "server/service/cluster_windows.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
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

using Result = TakeOutcome::Result;
using testing::BlockingCounterStore;

class ClusterWindowsTest : public ::testing::Test {
 protected:
  // A time on a slot edge of every duration used here.
  absl::Time t_ = absl::FromUnixSeconds(1'800'000'000 - 1'800'000'000 % 3600);
  testing::FakeStores stores_;
  std::vector<std::function<void()>> queued_;

  void SetUp() override { stores_.db->FreezeClock(t_); }

  void Advance(absl::Duration d) {
    t_ += d;
    stores_.db->FreezeClock(t_);
  }

  std::unique_ptr<ClusterWindows> Replica(int replicas) {
    ClusterWindowsOptions o;
    o.now = [this] { return t_; };
    o.replicas = [replicas] { return replicas; };
    o.schedule = [this](std::function<void()> f) {
      queued_.push_back(std::move(f));
    };
    return std::make_unique<ClusterWindows>(&stores_.counters, o);
  }

  void RunQueued() {
    std::vector<std::function<void()>> run;
    run.swap(queued_);
    for (auto& f : run) f();
  }

  // What a server does: take; when a lease is needed, renew on the worker
  // and take again.
  TakeOutcome Take(ClusterWindows& r, const std::vector<WindowLimit>& limits) {
    TakeOutcome out = r.Take(limits);
    if (out.result != Result::kNeedLease) return out;
    for (size_t i : out.need_lease) (void)r.Renew(limits[i]);
    out = r.Take(limits);
    EXPECT_NE(out.result, Result::kNeedLease);
    return out;
  }
};

WindowLimit PerMinute(int64_t limit, const char* counter = "k:key:minute") {
  return WindowLimit{counter, "minute", limit, absl::Minutes(1)};
}

TEST_F(ClusterWindowsTest, ThreeReplicasAdmitTheLimitPlusAtMostTheOverdraft) {
  // limit 100 a minute behind 3 replicas: each may overdraft
  // floor(0.05 * 100 / 3) = 1, so at most 103 in the window. Replicas kept
  // their own counts before: 3 x 100.
  std::vector<std::unique_ptr<ClusterWindows>> replicas;
  for (int i = 0; i < 3; ++i) replicas.push_back(Replica(3));
  const std::vector<WindowLimit> limits = {PerMinute(100)};
  std::mt19937 rng(7);
  int admitted = 0;
  for (int i = 0; i < 1000; ++i) {
    // Queued renewals complete at random moments.
    if (rng() % 5 == 0) RunQueued();
    ClusterWindows& r = *replicas[rng() % 3];
    if (Take(r, limits).result == Result::kAdmitted) ++admitted;
    if (i % 100 == 99) Advance(absl::Milliseconds(500));  // same window
  }
  RunQueued();
  std::printf("admitted %d of 1000 requests, limit 100, 3 replicas\n",
              admitted);
  EXPECT_LE(admitted, 103);
  EXPECT_GE(admitted, 100 - 3 * 8);  // at most a lease (8) stranded each
}

TEST_F(ClusterWindowsTest, ALoweredLimitDropsTheLeaseTakenUnderTheOldOne) {
  // One replica of 4: limit 400 leases floor(400 / 16) = 25 tokens. The
  // limit is edited down to 10 after one take: the 24 tokens left of the
  // old lease are not spent; only the new limit's room (10 - 25 counted)
  // is, i.e. nothing more in this window.
  auto r = Replica(4);
  ASSERT_EQ(Take(*r, {PerMinute(400)}).result, Result::kAdmitted);
  int admitted = 0;
  for (int i = 0; i < 30; ++i) {
    RunQueued();
    if (Take(*r, {PerMinute(10)}).result == Result::kAdmitted) ++admitted;
  }
  EXPECT_EQ(admitted, 0);
}

TEST_F(ClusterWindowsTest, ARaisedLimitEndsTheRefusalCachedUnderTheOldOne) {
  // A spent window is refused in memory until its reset; raising the limit
  // admits again at once, up to the new limit.
  auto r = Replica(1);
  int admitted = 0;
  for (int i = 0; i < 5; ++i) {
    RunQueued();
    if (Take(*r, {PerMinute(3)}).result == Result::kAdmitted) ++admitted;
  }
  EXPECT_EQ(admitted, 3);
  admitted = 0;
  for (int i = 0; i < 10; ++i) {
    RunQueued();
    if (Take(*r, {PerMinute(6)}).result == Result::kAdmitted) ++admitted;
  }
  EXPECT_EQ(admitted, 3);
}

TEST_F(ClusterWindowsTest, NoReplicaAdmitsMoreThanTheLimitInAWindow) {
  // One replica alone: its own window caps it at the limit, overdraft
  // included.
  auto r = Replica(1);
  const std::vector<WindowLimit> limits = {PerMinute(40)};
  int admitted = 0;
  for (int i = 0; i < 200; ++i) {
    if (i % 3 == 0) RunQueued();
    if (Take(*r, limits).result == Result::kAdmitted) ++admitted;
  }
  EXPECT_EQ(admitted, 40);
}

TEST_F(ClusterWindowsTest, ConcurrentCallersOnThreeReplicas) {
  // Renewals run inline on the calling threads (the store's own lock
  // serialises them): 4 threads per replica, 3 replicas, limit 200 (no
  // more than floor(0.05 * 200 / 3) = 3 overdraft each).
  std::vector<std::unique_ptr<ClusterWindows>> replicas;
  for (int i = 0; i < 3; ++i) {
    ClusterWindowsOptions o;
    o.now = [this] { return t_; };
    o.replicas = [] { return 3; };
    replicas.push_back(std::make_unique<ClusterWindows>(&stores_.counters, o));
  }
  const std::vector<WindowLimit> limits = {PerMinute(200)};
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&, t] {
      ClusterWindows& r = *replicas[t % 3];
      for (int i = 0; i < 100; ++i) {
        TakeOutcome out = r.Take(limits);
        if (out.result == Result::kNeedLease) {
          (void)r.Renew(limits[0]);
          out = r.Take(limits);
        }
        if (out.result == Result::kAdmitted) ++admitted;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_LE(admitted.load(), 200 + 3 * 3);
  EXPECT_GE(admitted.load(), 200 - 3 * 16);  // a lease (16) stranded each
}

TEST_F(ClusterWindowsTest, WithoutOverdraftAnEmptyLeaseNeedsTheStore) {
  auto r = Replica(3);  // floor(0.05 * 10 / 3) = 0: no overdraft
  const std::vector<WindowLimit> limits = {PerMinute(10)};
  TakeOutcome first = r->Take(limits);
  ASSERT_EQ(first.result, Result::kNeedLease);
  EXPECT_EQ(first.need_lease, std::vector<size_t>{0});
  ASSERT_TRUE(r->Renew(limits[0]).ok());
  TakeOutcome second = r->Take(limits);
  EXPECT_EQ(second.result, Result::kAdmitted);
  EXPECT_EQ(second.reported.name, "minute");
  EXPECT_EQ(second.reported.limit, 10);
  EXPECT_EQ(second.reported.remaining, 9);
  EXPECT_EQ(r->store_calls(), 1);
}

TEST_F(ClusterWindowsTest, RefusalsAfterExhaustionCostNoStoreCall) {
  auto r = Replica(1);
  const std::vector<WindowLimit> limits = {PerMinute(10)};
  for (int i = 0; i < 10; ++i) {
    RunQueued();
    ASSERT_EQ(Take(*r, limits).result, Result::kAdmitted) << i;
  }
  RunQueued();
  TakeOutcome refused = Take(*r, limits);
  ASSERT_EQ(refused.result, Result::kRefused);
  EXPECT_EQ(refused.reported.remaining, 0);
  EXPECT_GT(refused.retry_at, t_);
  const int calls = stores_.db->calls();
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(r->Take(limits).result, Result::kRefused);
  }
  EXPECT_EQ(stores_.db->calls(), calls);
  // The slot of the grants leaves the window 61 s later.
  Advance(absl::Seconds(61));
  EXPECT_EQ(Take(*r, limits).result, Result::kAdmitted);
}

TEST_F(ClusterWindowsTest, UnspentTokensGoBackWhenTheirSlotEnds) {
  // The first take uses the overdraft (floor(0.05 * 40) = 2) and queues a
  // renewal, which reports that token and leases floor(40 / 4) = 10.
  auto r = Replica(1);
  const std::vector<WindowLimit> limits = {PerMinute(40)};
  ASSERT_EQ(Take(*r, limits).result, Result::kAdmitted);
  RunQueued();
  Advance(absl::Seconds(1));  // the lease's slot ended
  r->FlushReturns();
  absl::StatusOr<storage::WindowLease> rest = stores_.counters.LeaseWindow(
      limits[0].counter, {40, absl::Seconds(1)}, 100, 0);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->granted, 39);
}

// A renewal that runs before the scheduled flush of an ended lease's
// unspent tokens (the worker pool runs tasks in any order) gives them back
// first: the store would otherwise count them as granted and refuse the
// limit's last requests. Limit 3 on one replica (no overdraft, leases of
// one token): each admitted take queues a renewal ahead of need.
TEST_F(ClusterWindowsTest, EndedLeasesGoBackBeforeTheNextLeaseOfTheirCounter) {
  auto r = Replica(1);
  const std::vector<WindowLimit> limits = {PerMinute(3)};
  ASSERT_EQ(Take(*r, limits).result, Result::kAdmitted);
  RunQueued();                        // the renewal leases the second token
  Advance(absl::Milliseconds(1500));  // its slot ends unspent
  ASSERT_EQ(Take(*r, limits).result, Result::kAdmitted);
  // The queued flush and renewal, the renewal first.
  std::vector<std::function<void()>> run;
  run.swap(queued_);
  ASSERT_EQ(run.size(), 2u);
  for (auto it = run.rbegin(); it != run.rend(); ++it) (*it)();
  EXPECT_EQ(Take(*r, limits).result, Result::kAdmitted);
  RunQueued();
  EXPECT_EQ(Take(*r, limits).result, Result::kRefused);
}

TEST_F(ClusterWindowsTest, ADeadReplicasLeaseStaysCounted) {
  // Replica A admits one request on its overdraft (floor(0.05 * 40 / 2) =
  // 1), reports it with a lease of 40 / (4 x 2) = 5 tokens, spends one of
  // them and dies without returning the other 4. The database counts 6.
  const std::vector<WindowLimit> limits = {PerMinute(40)};
  {
    auto a = Replica(2);
    ASSERT_EQ(Take(*a, limits).result, Result::kAdmitted);
    RunQueued();
    ASSERT_EQ(Take(*a, limits).result, Result::kAdmitted);
    ASSERT_TRUE(queued_.empty());
  }
  // B gets the 34 left, plus at most its own overdraft of 1: never the
  // 4 tokens A stranded, never beyond limit + overdraft in all.
  auto b = Replica(2);
  int admitted = 0;
  for (int i = 0; i < 100; ++i) {
    RunQueued();
    if (Take(*b, limits).result == Result::kAdmitted) ++admitted;
  }
  EXPECT_GE(admitted, 34);
  EXPECT_LE(admitted, 35);
}

TEST_F(ClusterWindowsTest, AnUnreachableStoreLeavesTheFairShare) {
  auto r = Replica(3);  // share ceil(30 / 3) = 10, no overdraft
  const std::vector<WindowLimit> limits = {PerMinute(30)};
  stores_.db->SetUnavailable(true);
  TakeOutcome first = r->Take(limits);
  ASSERT_EQ(first.result, Result::kNeedLease);
  EXPECT_TRUE(absl::IsUnavailable(r->Renew(limits[0])));
  int admitted = 0;
  for (int i = 0; i < 50; ++i) {
    if (r->Take(limits).result == Result::kAdmitted) ++admitted;
  }
  EXPECT_EQ(admitted, 10);
  // Once a second the caller is asked to try a lease itself.
  Advance(absl::Seconds(2));
  TakeOutcome retry = r->Take(limits);
  ASSERT_EQ(retry.result, Result::kNeedLease);
  EXPECT_TRUE(absl::IsUnavailable(r->Renew(limits[0])));
  EXPECT_EQ(r->Take(limits).result, Result::kRefused);  // share spent
  // Back: the next attempt ends the outage.
  stores_.db->SetUnavailable(false);
  Advance(absl::Seconds(2));
  EXPECT_EQ(Take(*r, limits).result, Result::kAdmitted);
}

// Bounded memory: counters that hold nothing (no lease, nothing admitted
// in their window) are forgotten once many have been used; a counter still
// counting is kept and goes on refusing in memory.
TEST_F(ClusterWindowsTest, IdleCountersAreForgottenAndBusyOnesKept) {
  auto r = Replica(1);
  const std::vector<WindowLimit> busy = {PerMinute(3, "k:busy:minute")};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Take(*r, busy).result, Result::kAdmitted);
  }
  // 3000 keys each used once with a limit of one a second.
  auto once = [&](int i) {
    const std::string counter = "k:once-" + std::to_string(i) + ":second";
    const std::vector<WindowLimit> limits = {
        WindowLimit{counter, "second", 1, absl::Seconds(1)}};
    return Take(*r, limits).result;
  };
  for (int i = 0; i < 1500; ++i) EXPECT_EQ(once(i), Result::kAdmitted);
  RunQueued();                // their renewals ahead of need
  Advance(absl::Seconds(3));  // their windows (and leases) are over
  for (int i = 1500; i < 3000; ++i) EXPECT_EQ(once(i), Result::kAdmitted);
  // Without forgetting: 3001 counters. The 1500 of the last 3 seconds
  // count; the sweeps forgot the first 1500.
  EXPECT_LE(r->counters_held(), 1501u + 1u);
  // The busy counter (3 admitted this minute) was kept: still refused, in
  // memory, with no store call.
  RunQueued();
  const int64_t calls = r->store_calls();
  const TakeOutcome refused = r->Take(busy);
  EXPECT_EQ(refused.result, Result::kRefused);
  EXPECT_EQ(r->store_calls(), calls);
  // A forgotten counter starts afresh (its window was over anyway).
  EXPECT_EQ(once(0), Result::kAdmitted);
}

TEST_F(ClusterWindowsTest, ARenewalWaitsForTheLeaseInFlightOnItsCounter) {
  // Limit 2 on one replica: leases of 1, no overdraft. The first request's
  // lease is spent, so a renewal ahead of need is queued; it runs on a
  // worker and the store grants it the last token, but its reply is slow.
  // Meanwhile a request finds no token and renews itself: the store has
  // none left for a second lease (grant 0). Applied before the slow reply,
  // that 0 marked the counter exhausted and the request was refused while
  // the replica was about to hold a token; now the request waits for the
  // reply in flight and is admitted with its token.
  BlockingCounterStore store(&stores_.counters, BlockingCounterStore::kWindows,
                             /*block_call=*/2);
  ClusterWindowsOptions o;
  o.now = [this] { return t_; };
  o.schedule = [this](std::function<void()> f) {
    queued_.push_back(std::move(f));
  };
  ClusterWindows r(&store, o);
  const std::vector<WindowLimit> limits = {
      {"k:key:burst", "burst", 2, absl::Hours(1)}};
  ASSERT_EQ(Take(r, limits).result, Result::kAdmitted);
  ASSERT_EQ(queued_.size(), 1u);
  std::thread worker([this] { RunQueued(); });
  store.blocked().WaitForNotification();  // granted, reply not applied

  absl::Notification done;
  TakeOutcome second;
  std::thread request([&] {
    second = r.Take(limits);
    if (second.result == Result::kNeedLease) {
      (void)r.Renew(limits[0]);
      second = r.Take(limits);
    }
    done.Notify();
  });
  // Before the change the request finished with its own lease while the
  // worker's reply was held back; now it waits for that reply, which is
  // let go after a bounded wait (the outcome does not depend on its
  // length).
  done.WaitForNotificationWithTimeout(absl::Milliseconds(300));
  store.Release();
  request.join();
  worker.join();
  EXPECT_EQ(second.result, Result::kAdmitted);
  EXPECT_EQ(store.calls(), 2);  // the request asked the store for nothing
}

TEST_F(ClusterWindowsTest, SeveralLimitsTakeAllOrNothing) {
  auto r = Replica(1);
  const WindowLimit burst{"k:key:burst", "burst", 2, absl::Seconds(1)};
  const WindowLimit hourly{"k:key:hourly", "hourly", 3, absl::Hours(1)};
  const std::vector<WindowLimit> limits = {burst, hourly};
  TakeOutcome one = Take(*r, limits);
  ASSERT_EQ(one.result, Result::kAdmitted);
  // Tightest: burst has 1 left, hourly 2.
  EXPECT_EQ(one.reported.name, "burst");
  EXPECT_EQ(one.reported.remaining, 1);
  ASSERT_EQ(Take(*r, limits).result, Result::kAdmitted);
  TakeOutcome refused = Take(*r, limits);
  ASSERT_EQ(refused.result, Result::kRefused);
  EXPECT_EQ(refused.reported.name, "burst");
  // The refused request took nothing from `hourly`: after the burst window
  // a third request still fits the hourly limit of 3.
  Advance(absl::Seconds(2));
  TakeOutcome third = Take(*r, limits);
  ASSERT_EQ(third.result, Result::kAdmitted);
  EXPECT_EQ(third.reported.name, "hourly");
  EXPECT_EQ(third.reported.remaining, 0);
  Advance(absl::Seconds(2));
  TakeOutcome over = Take(*r, limits);
  ASSERT_EQ(over.result, Result::kRefused);
  EXPECT_EQ(over.reported.name, "hourly");
  EXPECT_GT(over.retry_at, t_ + absl::Minutes(50));
}

}  // namespace
}  // namespace lumo::service
