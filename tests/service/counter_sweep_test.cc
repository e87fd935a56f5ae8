// The periodic sweep of stale counter rows (docs/limits.md "Memory"), over
// the fake store on its own clock.
#include "server/service/counter_sweep.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/storage/fakes/fake_stores.h"

namespace lumo::service {
namespace {

constexpr storage::BucketSpec kNeverRefills{3, 0};

class CounterSweepTest : public ::testing::Test {
 protected:
  CounterSweepTest() { stores_.db->FreezeClock(absl::FromUnixSeconds(1000)); }
  // `n` spent buckets touched now.
  void SpendBuckets(const std::string& prefix, int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(stores_.counters
                      .LeaseBucket(absl::StrCat(prefix, i), kNeverRefills, 3)
                      .ok());
    }
  }
  // Whether bucket `counter` still holds its spent row.
  bool Kept(const std::string& counter) {
    absl::StatusOr<storage::BucketLease> lease =
        stores_.counters.LeaseBucket(counter, kNeverRefills, 0);
    EXPECT_TRUE(lease.ok()) << lease.status();
    return lease.ok() && lease->left == 0;
  }

  testing::FakeStores stores_;
};

TEST_F(CounterSweepTest, StaleRowsGoInBoundedBatchesAndFreshOnesStay) {
  CounterSweepOptions options;
  options.bucket_idle = absl::Hours(48);
  options.batch = 2;
  options.max_batches = 3;
  options.every = absl::Minutes(5);
  CounterSweep sweep(&stores_.counters, options);
  SpendBuckets("old:", 10);
  stores_.db->AdvanceClock(absl::Hours(49));
  SpendBuckets("new:", 4);
  absl::Time now = absl::FromUnixSeconds(1000);
  // Three statements of two rows: six of the ten stale rows.
  EXPECT_EQ(sweep.MaybeRun(now), 6);
  // Not again before `every`.
  EXPECT_EQ(sweep.MaybeRun(now + absl::Minutes(4)), 0);
  // The other four, in statements of 2, 2 and 0.
  EXPECT_EQ(sweep.MaybeRun(now + absl::Minutes(5)), 4);
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(Kept(absl::StrCat("old:", i))) << i;
  }
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(Kept(absl::StrCat("new:", i))) << i;
  }
}

TEST_F(CounterSweepTest, KnownNetworksPastTheirLifetimeAreSwept) {
  CounterSweepOptions options;
  options.known_ttl = absl::Hours(24);
  CounterSweep sweep(&stores_.counters, options);
  ASSERT_TRUE(
      stores_.counters.RememberNetwork("acct", "old", 8, absl::Hours(24 * 365))
          .ok());
  stores_.db->AdvanceClock(absl::Hours(25));
  ASSERT_TRUE(
      stores_.counters.RememberNetwork("other", "new", 8, absl::Hours(24 * 365))
          .ok());
  EXPECT_EQ(sweep.MaybeRun(absl::Now()), 1);
  const absl::Duration year = absl::Hours(24 * 365);
  EXPECT_FALSE(*stores_.counters.IsKnownNetwork("acct", "old", year));
  EXPECT_TRUE(*stores_.counters.IsKnownNetwork("other", "new", year));
}

TEST_F(CounterSweepTest, AFailingStoreEndsTheRun) {
  CounterSweep sweep(&stores_.counters, CounterSweepOptions());
  SpendBuckets("old:", 3);
  stores_.db->AdvanceClock(absl::Hours(49));
  stores_.db->SetUnavailable(true);
  EXPECT_EQ(sweep.MaybeRun(absl::Now()), 0);
  stores_.db->SetUnavailable(false);
  EXPECT_TRUE(Kept("old:0"));
}

}  // namespace
}  // namespace lumo::service
