// The CounterStore contract (server/storage/counter_store.h): sliding
// windows leased in batches, token buckets, credits with refill, run
// against every implementation. Tests share one database; each uses
// counters and keys of its own. Slot and refill lengths are chosen so that
// what a test asserts holds wherever the clock's slot boundaries fall.
#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/storage/counter_rules.h"
#include "server/storage/counter_store.h"
#include "tests/storage/conformance/store_fixture.h"

namespace lumo::testing {
namespace {

using storage::WindowLease;
using storage::WindowSpec;

template <typename Impl>
class CounterStoreConformanceTest : public SharedStoreTest<Impl> {
 protected:
  storage::CounterStore& counters() { return this->f().counters(); }
  WindowLease Lease(const std::string& counter, const WindowSpec& spec,
                    int64_t want, int64_t debt = 0) {
    absl::StatusOr<WindowLease> lease =
        counters().LeaseWindow(counter, spec, want, debt);
    EXPECT_TRUE(lease.ok()) << lease.status();
    return lease.value_or(WindowLease());
  }
  std::string NewKeyId() {
    const storage::Tenant tenant = NewTenant(this->f());
    const storage::NewKey key = NewKey(tenant.id);
    EXPECT_TRUE(this->f().keys().InsertKey(key, Event("c")).ok());
    return key.id;
  }
};
TYPED_TEST_SUITE(CounterStoreConformanceTest, Implementations,
                 ImplementationName);

constexpr WindowSpec kHourSlots{10, absl::Hours(1)};

TYPED_TEST(CounterStoreConformanceTest, AWindowGrantsUpToItsLimit) {
  const std::string c = Unique("w:");
  const WindowLease first = this->Lease(c, kHourSlots, 4);
  EXPECT_EQ(first.granted, 4);
  EXPECT_EQ(first.used, 4);
  EXPECT_EQ(first.slot, storage::SlotOf(first.db_now, absl::Hours(1)));
  EXPECT_EQ(first.slot_end, storage::SlotStart(first.slot + 1, absl::Hours(1)));
  EXPECT_GT(first.slot_end, first.db_now);
  EXPECT_EQ(first.reset, storage::WindowReset(first.slot, absl::Hours(1)));
  EXPECT_EQ(this->Lease(c, kHourSlots, 4).granted, 4);
  const WindowLease third = this->Lease(c, kHourSlots, 4);
  EXPECT_EQ(third.granted, 2);
  EXPECT_EQ(third.used, 10);
  const WindowLease spent = this->Lease(c, kHourSlots, 4);
  EXPECT_EQ(spent.granted, 0);
  EXPECT_EQ(spent.used, 10);
  EXPECT_EQ(spent.reset, first.reset);
}

TYPED_TEST(CounterStoreConformanceTest, ReturnedTokensAreGrantedAgain) {
  const std::string c = Unique("w:");
  const WindowLease lease = this->Lease(c, kHourSlots, 10);
  ASSERT_EQ(lease.granted, 10);
  ASSERT_TRUE(this->counters().ReturnWindow(c, lease.slot, 3).ok());
  EXPECT_EQ(this->Lease(c, kHourSlots, 10).granted, 3);
}

TYPED_TEST(CounterStoreConformanceTest, ReturnsNeverGoBelowZero) {
  const std::string c = Unique("w:");
  const WindowLease lease = this->Lease(c, kHourSlots, 10);
  ASSERT_EQ(lease.granted, 10);
  ASSERT_TRUE(this->counters().ReturnWindow(c, lease.slot, 1000).ok());
  // A negative count would grant 100 here.
  EXPECT_EQ(this->Lease(c, kHourSlots, 100).granted, 10);
}

TYPED_TEST(CounterStoreConformanceTest, ReturnsToUnknownSlotsAreIgnored) {
  const std::string c = Unique("w:");
  const WindowLease lease = this->Lease(c, kHourSlots, 10);
  ASSERT_EQ(lease.granted, 10);
  ASSERT_TRUE(this->counters().ReturnWindow(c, lease.slot - 5, 7).ok());
  ASSERT_TRUE(this->counters().ReturnWindow(Unique("w:"), 1, 7).ok());
  EXPECT_EQ(this->Lease(c, kHourSlots, 100).granted, 0);
}

TYPED_TEST(CounterStoreConformanceTest, DebtIsCountedEvenBeyondTheLimit) {
  const std::string c = Unique("w:");
  const WindowLease debt = this->Lease(c, kHourSlots, 0, 12);
  EXPECT_EQ(debt.granted, 0);
  EXPECT_EQ(debt.used, 12);
  EXPECT_EQ(this->Lease(c, kHourSlots, 1).granted, 0);
  EXPECT_EQ(this->Lease(c, kHourSlots, 1).used, 12);
}

TYPED_TEST(CounterStoreConformanceTest, SlotsLeaveTheWindow) {
  const absl::Duration slot = absl::Milliseconds(10);
  const WindowSpec spec{3, slot};
  // The second lease is refused when it falls in the first one's window
  // (kWindowSlots + 1 slots, 610 ms). A machine that stalls longer than
  // that between the two statements breaks the premise, not the store: the
  // pair is then tried again on a new counter.
  std::string c;
  int64_t gap = 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    c = Unique("w:");
    const WindowLease first = this->Lease(c, spec, 3);
    ASSERT_EQ(first.granted, 3);
    const WindowLease second = this->Lease(c, spec, 3);
    gap = second.slot - first.slot;
    if (gap <= storage::kWindowSlots) {
      ASSERT_EQ(second.granted, 0);
      break;
    }
  }
  ASSERT_LE(gap, storage::kWindowSlots)
      << "two consecutive leases were a window apart on every attempt";
  // kWindowSlots + 2 slots later nothing granted before is counted.
  this->f().LetTimePass(slot * (storage::kWindowSlots + 2));
  const WindowLease later = this->Lease(c, spec, 3);
  EXPECT_EQ(later.granted, 3);
  EXPECT_EQ(later.used, 3);
}

TYPED_TEST(CounterStoreConformanceTest, CountersAreIndependent) {
  const std::string a = Unique("w:");
  const std::string b = Unique("w:");
  ASSERT_EQ(this->Lease(a, kHourSlots, 10).granted, 10);
  EXPECT_EQ(this->Lease(b, kHourSlots, 10).granted, 10);
}

TYPED_TEST(CounterStoreConformanceTest, ConcurrentLeasesNeverExceedTheLimit) {
  const std::string c = Unique("w:");
  const WindowSpec spec{50, absl::Hours(1)};
  std::atomic<int64_t> granted{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 15; ++i) {
        absl::StatusOr<WindowLease> lease =
            this->counters().LeaseWindow(c, spec, 1, 0);
        if (!lease.ok()) {
          ++failures;
          continue;
        }
        granted += lease->granted;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(granted.load(), 50);  // 90 asked for
}

TYPED_TEST(CounterStoreConformanceTest, BadWindowArgumentsChangeNothing) {
  const std::string c = Unique("w:");
  storage::CounterStore& s = this->counters();
  EXPECT_TRUE(absl::IsInvalidArgument(
      s.LeaseWindow(c, {0, absl::Hours(1)}, 1, 0).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      s.LeaseWindow(c, {5, absl::Microseconds(1500)}, 1, 0).status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(s.LeaseWindow(c, kHourSlots, -1, 0).status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(s.LeaseWindow(c, kHourSlots, 1, -1).status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(s.LeaseWindow("", kHourSlots, 1, 0).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      s.LeaseWindow(std::string(161, 'x'), kHourSlots, 1, 0).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(s.ReturnWindow(c, 1, -1)));
  EXPECT_EQ(this->Lease(c, kHourSlots, 10).granted, 10);
  // The longest key is accepted, bytes of any value included.
  std::string longest(160, 'x');
  longest[3] = '\0';
  longest[4] = '\xff';
  EXPECT_EQ(this->Lease(longest, kHourSlots, 10).granted, 10);
}

TYPED_TEST(CounterStoreConformanceTest, ABucketGrantsItsTokensAndRefills) {
  const std::string c = Unique("b:");
  const storage::BucketSpec never{5, 0};
  storage::CounterStore& s = this->counters();
  absl::StatusOr<storage::BucketLease> lease = s.LeaseBucket(c, never, 3);
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(lease->granted, 3);
  EXPECT_EQ(lease->left, 2);
  EXPECT_EQ(lease->next_token_in, absl::ZeroDuration());
  lease = s.LeaseBucket(c, never, 3);
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->granted, 2);
  EXPECT_EQ(lease->left, 0);
  EXPECT_EQ(lease->next_token_in, absl::InfiniteDuration());
  ASSERT_TRUE(s.ReturnBucket(c, never, 1).ok());
  lease = s.LeaseBucket(c, never, 3);
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->granted, 1);
  // Returns never fill beyond the capacity.
  ASSERT_TRUE(s.ReturnBucket(c, never, 50).ok());
  lease = s.LeaseBucket(c, never, 50);
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->granted, 5);

  // One token a millisecond: 10 ms refill the bucket of 2.
  const std::string fast = Unique("b:");
  const storage::BucketSpec per_ms{2, 60'000};
  lease = s.LeaseBucket(fast, per_ms, 5);
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->granted, 2);
  EXPECT_GT(lease->next_token_in, absl::ZeroDuration());
  EXPECT_LE(lease->next_token_in, absl::Milliseconds(1));
  this->f().LetTimePass(absl::Milliseconds(10));
  lease = s.LeaseBucket(fast, per_ms, 5);
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->granted, 2);

  EXPECT_TRUE(absl::IsInvalidArgument(
      s.LeaseBucket(c, storage::BucketSpec{0, 1}, 1).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(s.LeaseBucket(c, never, -1).status()));
}

// Several replicas taking the first tokens of a new bucket at once (a
// login guesser's first attempts through every replica) all get an answer:
// a failed lease would make each of them count alone.
TYPED_TEST(CounterStoreConformanceTest, FirstLeasesOfANewBucketAllAnswer) {
  storage::CounterStore& s = this->counters();
  const storage::BucketSpec spec{3, 0};
  constexpr int kThreads = 4;
  for (int round = 0; round < 10; ++round) {
    const std::string c = Unique("b:");
    std::atomic<int> ready{0};
    std::atomic<int64_t> granted{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        ++ready;
        while (ready.load() < kThreads) std::this_thread::yield();
        absl::StatusOr<storage::BucketLease> lease = s.LeaseBucket(c, spec, 1);
        if (!lease.ok()) {
          ADD_FAILURE() << lease.status();
          ++failures;
          return;
        }
        granted += lease->granted;
      });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0) << "round " << round;
    EXPECT_EQ(granted.load(), 3) << "round " << round;  // 4 asked for

    // Returns to a new bucket at once likewise.
    const std::string r = Unique("b:");
    ready = 0;
    threads.clear();
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        ++ready;
        while (ready.load() < kThreads) std::this_thread::yield();
        absl::Status returned = s.ReturnBucket(r, spec, 1);
        EXPECT_TRUE(returned.ok()) << returned;
      });
    }
    for (std::thread& t : threads) t.join();
    absl::StatusOr<storage::BucketLease> full = s.LeaseBucket(r, spec, 5);
    ASSERT_TRUE(full.ok()) << full.status();
    EXPECT_EQ(full->granted, 3);  // never beyond the capacity
  }
}

TYPED_TEST(CounterStoreConformanceTest,
           KnownNetworksKeepTheMostRecentWithinTheirLifetime) {
  storage::CounterStore& s = this->counters();
  const std::string account = Unique("acct:");
  const std::string other = Unique("acct:");
  const absl::Duration day = absl::Hours(24);
  auto known = [&](const std::string& a, absl::string_view n,
                   absl::Duration ttl) {
    absl::StatusOr<bool> k = s.IsKnownNetwork(a, n, ttl);
    EXPECT_TRUE(k.ok()) << k.status();
    return k.ok() && *k;
  };
  EXPECT_FALSE(known(account, "n1", day));
  ASSERT_TRUE(s.RememberNetwork(account, "n1", 2, day).ok());
  EXPECT_TRUE(known(account, "n1", day));
  // Per account: another account has not logged in from n1.
  EXPECT_FALSE(known(other, "n1", day));
  this->f().LetTimePass(absl::Milliseconds(2));
  ASSERT_TRUE(s.RememberNetwork(account, "n2", 2, day).ok());
  this->f().LetTimePass(absl::Milliseconds(2));
  // A third network: only the 2 most recent are kept (n1 is forgotten).
  ASSERT_TRUE(s.RememberNetwork(account, "n3", 2, day).ok());
  EXPECT_FALSE(known(account, "n1", day));
  EXPECT_TRUE(known(account, "n2", day));
  EXPECT_TRUE(known(account, "n3", day));
  // A login from n2 again makes it the most recent: n3 goes next.
  this->f().LetTimePass(absl::Milliseconds(2));
  ASSERT_TRUE(s.RememberNetwork(account, "n2", 2, day).ok());
  this->f().LetTimePass(absl::Milliseconds(2));
  ASSERT_TRUE(s.RememberNetwork(account, "n4", 2, day).ok());
  EXPECT_TRUE(known(account, "n2", day));
  EXPECT_FALSE(known(account, "n3", day));
  EXPECT_TRUE(known(account, "n4", day));
  // A network is known only within the lifetime asked for.
  this->f().LetTimePass(absl::Milliseconds(30));
  EXPECT_FALSE(known(account, "n4", absl::Milliseconds(20)));
  EXPECT_TRUE(known(account, "n4", day));
  // A login with a short lifetime deletes the rows older than it.
  ASSERT_TRUE(s.RememberNetwork(account, "n5", 8, absl::Milliseconds(20)).ok());
  EXPECT_FALSE(known(account, "n2", day));
  EXPECT_FALSE(known(account, "n4", day));
  EXPECT_TRUE(known(account, "n5", day));
  // Bad arguments.
  EXPECT_TRUE(absl::IsInvalidArgument(s.RememberNetwork("", "n", 2, day)));
  EXPECT_TRUE(absl::IsInvalidArgument(
      s.RememberNetwork(account, std::string(161, 'x'), 2, day)));
  EXPECT_TRUE(absl::IsInvalidArgument(s.RememberNetwork(account, "n", 0, day)));
  EXPECT_TRUE(absl::IsInvalidArgument(
      s.RememberNetwork(account, "n", 2, absl::ZeroDuration())));
  EXPECT_TRUE(
      absl::IsInvalidArgument(s.IsKnownNetwork(account, "", day).status()));
  EXPECT_TRUE(known(account, "n5", day));
}

TYPED_TEST(CounterStoreConformanceTest, CreditChangesAreAuditedWithThem) {
  auto& f = this->f();
  storage::CounterStore& s = this->counters();
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewKey key = NewKey(tenant.id);
  ASSERT_TRUE(f.keys().InsertKey(key, Event("c")).ok());
  const std::string action = "api_key.credits_updated";
  int audited = 0;
  storage::CreditsChange seen;
  auto audit = [&](const storage::CreditsChange& change) {
    ++audited;
    seen = change;
    return Event(action);
  };
  using storage::CreditsOp;
  // Without a quota: ADD is refused, REMOVE changes nothing; neither is
  // audited.
  EXPECT_TRUE(absl::IsNotFound(
      s.ChangeCredits(key.id, {CreditsOp::kAdd, 5, {}}, audit).status()));
  absl::StatusOr<storage::CreditsChange> change =
      s.ChangeCredits(key.id, {CreditsOp::kRemove, 0, {}}, audit);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_FALSE(change->before.has_value());
  EXPECT_FALSE(change->after.has_value());
  EXPECT_EQ(audited, 0);
  EXPECT_TRUE(EventsOf(f, tenant.id, action).empty());

  const storage::Refill refill{5, absl::Hours(1)};
  change = s.ChangeCredits(key.id, {CreditsOp::kSet, 10, refill}, audit);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->tenant_id, tenant.id);
  EXPECT_FALSE(change->before.has_value());
  ASSERT_TRUE(change->after.has_value());
  EXPECT_EQ(change->after->remaining, 10);
  ASSERT_TRUE(change->after->refill.has_value());
  EXPECT_EQ(change->after->refill->amount, 5);
  EXPECT_EQ(audited, 1);
  EXPECT_EQ(seen.tenant_id, tenant.id);
  EXPECT_EQ(seen.after->remaining, 10);
  EXPECT_EQ(EventsOf(f, tenant.id, action).size(), 1u);
  const int64_t set_epoch = change->after->epoch;

  change = s.ChangeCredits(key.id, {CreditsOp::kAdd, -3, {}}, audit);
  ASSERT_TRUE(change.ok()) << change.status();
  ASSERT_TRUE(change->before.has_value() && change->after.has_value());
  EXPECT_EQ(change->before->remaining, 10);
  EXPECT_EQ(change->after->remaining, 7);
  EXPECT_GT(change->after->epoch, set_epoch);
  absl::StatusOr<storage::QuotaState> stored = s.GetQuota(key.id);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->remaining, 7);
  EXPECT_EQ(stored->epoch, change->after->epoch);
  // Setting again moves the epoch on (leases of the old balance end).
  change = s.ChangeCredits(key.id, {CreditsOp::kSet, 4, {}}, audit);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->before->remaining, 7);
  EXPECT_EQ(change->after->remaining, 4);
  EXPECT_FALSE(change->after->refill.has_value());
  EXPECT_GT(change->after->epoch, change->before->epoch);
  stored = s.GetQuota(key.id);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->remaining, 4);
  EXPECT_EQ(stored->epoch, change->after->epoch);

  change = s.ChangeCredits(key.id, {CreditsOp::kRemove, 0, {}}, audit);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->before->remaining, 4);
  EXPECT_FALSE(change->after.has_value());
  EXPECT_TRUE(absl::IsNotFound(s.GetQuota(key.id).status()));
  EXPECT_EQ(audited, 4);
  EXPECT_EQ(EventsOf(f, tenant.id, action).size(), 4u);

  // Bad input and unknown keys write nothing.
  EXPECT_TRUE(absl::IsInvalidArgument(
      s.ChangeCredits(key.id, {CreditsOp::kSet, -1, {}}, audit).status()));
  EXPECT_TRUE(absl::IsNotFound(
      s.ChangeCredits("nosuchkey000", {CreditsOp::kSet, 1, {}}, audit)
          .status()));
  EXPECT_TRUE(absl::IsNotFound(s.GetQuota(key.id).status()));
  EXPECT_EQ(audited, 4);
  EXPECT_EQ(EventsOf(f, tenant.id, action).size(), 4u);
}

TYPED_TEST(CounterStoreConformanceTest, TheSweepForgetsOnlyStaleRows) {
  storage::CounterStore& s = this->counters();
  // A bucket that never refills (so a kept row shows as a spent bucket).
  const storage::BucketSpec never{5, 0};
  const std::string old_bucket = Unique("b:");
  const std::string fresh_bucket = Unique("b:");
  const std::string account = Unique("acct:");
  const absl::Duration day = absl::Hours(24);
  ASSERT_TRUE(s.LeaseBucket(old_bucket, never, 5).ok());
  ASSERT_TRUE(s.RememberNetwork(account, "old", 8, day).ok());
  this->f().LetTimePass(absl::Seconds(4));
  ASSERT_TRUE(s.LeaseBucket(fresh_bucket, never, 5).ok());
  ASSERT_TRUE(s.RememberNetwork(account, "fresh", 8, day).ok());
  // At most `limit` rows of each kind (buckets, known networks, window
  // slots, window heads) per call (rows of other tests may be among them),
  // then everything stale.
  const absl::Duration stale = absl::Seconds(2);
  absl::StatusOr<int64_t> n = s.SweepStale(stale, stale, 1);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_GE(*n, 1);
  EXPECT_LE(*n, 4);
  n = s.SweepStale(stale, stale, 1'000'000);
  ASSERT_TRUE(n.ok()) << n.status();
  // The stale bucket is forgotten (full again); the fresh one is kept.
  absl::StatusOr<storage::BucketLease> lease =
      s.LeaseBucket(old_bucket, never, 5);
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(lease->granted, 5);
  lease = s.LeaseBucket(fresh_bucket, never, 5);
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(lease->granted, 0);
  absl::StatusOr<bool> known = s.IsKnownNetwork(account, "old", day);
  ASSERT_TRUE(known.ok()) << known.status();
  EXPECT_FALSE(*known);
  known = s.IsKnownNetwork(account, "fresh", day);
  ASSERT_TRUE(known.ok()) << known.status();
  EXPECT_TRUE(*known);
  EXPECT_TRUE(absl::IsInvalidArgument(
      s.SweepStale(absl::ZeroDuration(), day, 1).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(s.SweepStale(day, day, 0).status()));
}

TYPED_TEST(CounterStoreConformanceTest, TheSweepForgetsOnlyStaleWindowRows) {
  storage::CounterStore& s = this->counters();
  // Slots of 50 ms: a window counts a slot for at most 61 slots, 3.05 s.
  const WindowSpec short_slots{10, absl::Milliseconds(50)};
  const std::string old_counter = Unique("w:");
  const std::string recent = Unique("w:");
  const std::string hourly = Unique("w:");
  this->Lease(old_counter, short_slots, 4);
  this->Lease(hourly, kHourSlots, 4);
  EXPECT_EQ(this->f().WindowRows(old_counter), 2);  // its slot and head
  // No window counts the old counter's slot any more; the hourly one's
  // does.
  this->f().LetTimePass(absl::Milliseconds(3200));
  this->Lease(recent, short_slots, 4);
  const absl::Duration day = absl::Hours(24);
  absl::StatusOr<int64_t> n = s.SweepStale(day, day, 1'000'000);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_GE(*n, 2);
  // The stale counter is forgotten, slot and head ...
  EXPECT_EQ(this->f().WindowRows(old_counter), 0);
  // ... the others are kept, and their tokens still count.
  EXPECT_EQ(this->f().WindowRows(recent), 2);
  EXPECT_EQ(this->f().WindowRows(hourly), 2);
  EXPECT_EQ(this->Lease(recent, short_slots, 10).granted, 6);
  EXPECT_EQ(this->Lease(hourly, kHourSlots, 10).granted, 6);
  // A forgotten counter starts afresh, as its stale rows would have let it.
  EXPECT_EQ(this->Lease(old_counter, short_slots, 10).granted, 10);
  EXPECT_EQ(this->f().WindowRows(old_counter), 2);
}

TYPED_TEST(CounterStoreConformanceTest, QuotasNeedAKeyAndAQuota) {
  storage::CounterStore& s = this->counters();
  EXPECT_TRUE(absl::IsNotFound(s.SetQuota("nosuchkey000", 5, {}).status()));
  const std::string key = this->NewKeyId();
  EXPECT_TRUE(absl::IsNotFound(s.GetQuota(key).status()));
  EXPECT_TRUE(absl::IsNotFound(s.LeaseCredits(key, 1).status()));
  EXPECT_TRUE(absl::IsNotFound(s.AddCredits(key, 1).status()));
  EXPECT_TRUE(s.ReturnCredits(key, 0, 1).ok());  // ignored
  EXPECT_TRUE(absl::IsInvalidArgument(s.SetQuota(key, -1, {}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      s.SetQuota(key, 1, storage::Refill{0, absl::Seconds(1)}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      s.SetQuota(key, 1, storage::Refill{1, absl::ZeroDuration()}).status()));
  EXPECT_TRUE(absl::IsNotFound(s.GetQuota(key).status()));
}

TYPED_TEST(CounterStoreConformanceTest, CreditsAreLeasedReturnedAndAdded) {
  storage::CounterStore& s = this->counters();
  const std::string key = this->NewKeyId();
  absl::StatusOr<storage::QuotaState> set = s.SetQuota(key, 10, {});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->remaining, 10);
  EXPECT_FALSE(set->refill.has_value());
  EXPECT_FALSE(set->next_refill.has_value());

  absl::StatusOr<storage::CreditLease> lease = s.LeaseCredits(key, 4);
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(lease->granted, 4);
  EXPECT_EQ(lease->remaining, 6);
  EXPECT_EQ(lease->epoch, set->epoch);
  ASSERT_TRUE(s.ReturnCredits(key, lease->epoch, 1).ok());
  EXPECT_EQ(s.GetQuota(key)->remaining, 7);

  absl::StatusOr<storage::QuotaState> added = s.AddCredits(key, 5);
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->remaining, 12);
  EXPECT_GT(added->epoch, lease->epoch);
  // A lease of an older epoch is not given back.
  ASSERT_TRUE(s.ReturnCredits(key, lease->epoch, 3).ok());
  EXPECT_EQ(s.GetQuota(key)->remaining, 12);

  added = s.AddCredits(key, -100);
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->remaining, 0);
  lease = s.LeaseCredits(key, 4);
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->granted, 0);

  // Setting again replaces the balance and moves the epoch on.
  absl::StatusOr<storage::QuotaState> reset = s.SetQuota(key, 2, {});
  ASSERT_TRUE(reset.ok());
  EXPECT_EQ(reset->remaining, 2);
  EXPECT_GT(reset->epoch, added->epoch);
  ASSERT_TRUE(s.ClearQuota(key).ok());
  EXPECT_TRUE(absl::IsNotFound(s.GetQuota(key).status()));
  ASSERT_TRUE(s.ClearQuota(key).ok());
}

TYPED_TEST(CounterStoreConformanceTest, ARefillResetsAndDoesNotAccumulate) {
  storage::CounterStore& s = this->counters();
  const std::string key = this->NewKeyId();
  const storage::Refill refill{5, absl::Milliseconds(50)};
  absl::StatusOr<storage::QuotaState> set = s.SetQuota(key, 3, refill);
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_TRUE(set->next_refill.has_value());
  EXPECT_EQ(*set->next_refill, set->db_now + absl::Milliseconds(50));
  EXPECT_EQ(set->refill->amount, 5);
  EXPECT_EQ(set->refill->interval, absl::Milliseconds(50));
  absl::StatusOr<storage::CreditLease> lease = s.LeaseCredits(key, 2);
  ASSERT_TRUE(lease.ok());
  // Still in the first period unless 50 ms passed in between.
  if (lease->db_now < *set->next_refill) {
    EXPECT_EQ(lease->remaining, 1);
    EXPECT_EQ(lease->epoch, set->epoch);
  }
  this->f().LetTimePass(absl::Milliseconds(60));
  absl::StatusOr<storage::QuotaState> after = s.GetQuota(key);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->remaining, 5);  // reset to the amount, not 1 + 5
  EXPECT_GT(after->epoch, set->epoch);
  ASSERT_TRUE(after->next_refill.has_value());
  EXPECT_GT(*after->next_refill, after->db_now);
  EXPECT_LE(*after->next_refill, after->db_now + absl::Milliseconds(50));
  // Credits leased before the refill are not given back into the new
  // period.
  ASSERT_TRUE(s.ReturnCredits(key, set->epoch, 2).ok());
  EXPECT_EQ(s.GetQuota(key)->remaining, 5);
}

TYPED_TEST(CounterStoreConformanceTest, ConcurrentCreditLeasesSpendExactly) {
  storage::CounterStore& s = this->counters();
  const std::string key = this->NewKeyId();
  ASSERT_TRUE(s.SetQuota(key, 100, {}).ok());
  std::atomic<int64_t> granted{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 8; ++i) {
        absl::StatusOr<storage::CreditLease> lease = s.LeaseCredits(key, 3);
        if (!lease.ok()) {
          ++failures;
          continue;
        }
        granted += lease->granted;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(granted.load(), 100);  // 144 asked for
  EXPECT_EQ(s.GetQuota(key)->remaining, 0);
}

// Identity limits: replaced whole, read by name, read with every key of
// the identity (and only those: external ids compare as bytes, per
// tenant), with the identity's keys and the audit event in the change.
TYPED_TEST(CounterStoreConformanceTest,
           IdentityLimitsReachEveryKeyOfOneIdentity) {
  StoreFixture& f = this->f();
  storage::CounterStore& s = this->counters();
  const storage::Tenant tenant = NewTenant(f);
  const storage::Tenant other_tenant = NewTenant(f);
  auto insert = [&](int64_t tenant_id, const std::string& external_id) {
    storage::NewKey key = NewKey(tenant_id);
    key.external_id = external_id;
    EXPECT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
    return key.id;
  };
  const std::string a = insert(tenant.id, "user-7");
  const std::string b = insert(tenant.id, "user-7");
  const std::string upper = insert(tenant.id, "USER-7");
  const std::string none = insert(tenant.id, "");
  const std::string elsewhere = insert(other_tenant.id, "user-7");
  const std::string deleted = insert(tenant.id, "user-7");
  ASSERT_TRUE(
      f.keys().DeleteKey(tenant.id, deleted, Event("api_key.deleted")).ok());

  absl::StatusOr<std::vector<storage::KeyRateLimit>> got =
      s.GetIdentityLimits(tenant.id, "user-7");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->empty());

  const std::vector<storage::KeyRateLimit> limits = {
      {"minute", 50, absl::Minutes(1)}, {"burst", 5, absl::Seconds(1)}};
  std::vector<storage::KeyRateLimit> seen_before = {{"x", 1, absl::Seconds(1)}};
  absl::StatusOr<storage::IdentityLimitsChange> change = s.SetIdentityLimits(
      tenant.id, "user-7", limits,
      [&](const std::vector<storage::KeyRateLimit>& before) {
        seen_before = before;
        return Event("identity.limits_updated");
      });
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_TRUE(seen_before.empty());
  EXPECT_TRUE(change->before.empty());
  std::vector<std::string> ids;
  for (const storage::IdentityKey& k : change->keys) {
    ids.push_back(k.id);
    EXPECT_EQ(k.version, 1) << k.id;
  }
  std::vector<std::string> want = {a, b};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(ids, want);
  EXPECT_EQ(EventsOf(f, tenant.id, "identity.limits_updated").size(), 1u);

  const std::vector<storage::KeyRateLimit> by_name = {
      {"burst", 5, absl::Seconds(1)}, {"minute", 50, absl::Minutes(1)}};
  got = s.GetIdentityLimits(tenant.id, "user-7");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, by_name);
  for (const std::string& id : {a, b}) {
    absl::StatusOr<storage::VerifyRecord> v = f.keys().LoadForVerify(id);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->identity_limits, by_name) << id;
  }
  for (const std::string& id : {upper, none, elsewhere}) {
    absl::StatusOr<storage::VerifyRecord> v = f.keys().LoadForVerify(id);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_TRUE(v->identity_limits.empty()) << id;
  }

  // Bad input writes nothing (no audit event either).
  EXPECT_TRUE(absl::IsInvalidArgument(
      s.SetIdentityLimits(
           tenant.id, "user-7",
           {{"same", 1, absl::Seconds(1)}, {"same", 2, absl::Seconds(2)}},
           [](const auto&) { return Event("bad"); })
          .status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      s.SetIdentityLimits(tenant.id, "", limits, [](const auto&) {
         return Event("bad");
       }).status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(s.GetIdentityLimits(tenant.id, "").status()));
  EXPECT_TRUE(EventsOf(f, tenant.id, "bad").empty());
  EXPECT_EQ(*s.GetIdentityLimits(tenant.id, "user-7"), by_name);

  // Replaced whole; an empty list removes them.
  change = s.SetIdentityLimits(tenant.id, "user-7",
                               {{"hourly", 900, absl::Hours(1)}},
                               [](const auto&) { return Event("i"); });
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->before, by_name);
  EXPECT_EQ(
      *s.GetIdentityLimits(tenant.id, "user-7"),
      (std::vector<storage::KeyRateLimit>{{"hourly", 900, absl::Hours(1)}}));
  change = s.SetIdentityLimits(tenant.id, "user-7", {},
                               [](const auto&) { return Event("i"); });
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_TRUE(s.GetIdentityLimits(tenant.id, "user-7")->empty());
  absl::StatusOr<storage::VerifyRecord> v = f.keys().LoadForVerify(a);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->identity_limits.empty());

  // Limits of an identity without keys yet apply to its later keys.
  ASSERT_TRUE(s.SetIdentityLimits(tenant.id, "later",
                                  {{"minute", 3, absl::Minutes(1)}},
                                  [](const auto&) { return Event("i"); })
                  .ok());
  const std::string later = insert(tenant.id, "later");
  v = f.keys().LoadForVerify(later);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(
      v->identity_limits,
      (std::vector<storage::KeyRateLimit>{{"minute", 3, absl::Minutes(1)}}));
}

}  // namespace
}  // namespace lumo::testing
