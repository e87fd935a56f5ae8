// FaultPoint and Injection: disarmed points pass, rules match by point and
// scope, pauses hold exactly the threads they match until released, errors
// are returned the armed number of times, and a destroyed Injection
// disarms its point and lets held threads go.
#include "server/fault/fault_point.h"

#include <atomic>
#include <thread>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/fault/fault_injection.h"

namespace lumo::fault {
namespace {

FaultPoint kPointA{"test.a"};
FaultPoint kPointB{"test.b"};

constexpr absl::Duration kWait = absl::Seconds(30);

TEST(FaultPointTest, DisarmedPointsPass) {
  EXPECT_TRUE(kPointA.Hit().ok());
  EXPECT_TRUE(kPointA.Hit("any").ok());
  EXPECT_STREQ(kPointA.name(), "test.a");
}

TEST(FaultPointTest, FailReturnsTheErrorTheArmedNumberOfTimes) {
  Injection fail =
      Injection::Fail(kPointA, "", absl::UnavailableError("injected"), 2);
  EXPECT_EQ(kPointA.Hit().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(kPointB.Hit().ok()) << "another point is unaffected";
  EXPECT_EQ(kPointA.Hit("x").code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(kPointA.Hit().ok()) << "only twice";
  EXPECT_EQ(fail.hits(), 2);
}

TEST(FaultPointTest, ScopedRulesMatchOnlyTheirScope) {
  Injection fail = Injection::Fail(
      kPointA, "r2", absl::InternalError("injected"), Injection::kEveryHit);
  EXPECT_TRUE(kPointA.Hit("r1").ok());
  EXPECT_TRUE(kPointA.Hit().ok());
  EXPECT_EQ(kPointA.Hit("r2").code(), absl::StatusCode::kInternal);
  EXPECT_EQ(kPointA.Hit("r2").code(), absl::StatusCode::kInternal);
  EXPECT_EQ(fail.hits(), 2);
}

TEST(FaultPointTest, PauseHoldsTheMatchingThreadUntilReleased) {
  Injection hold = Injection::Pause(kPointA, "r1");
  std::atomic<bool> passed{false};
  std::thread held([&] {
    EXPECT_TRUE(kPointA.Hit("r1").ok());
    passed = true;
  });
  ASSERT_TRUE(hold.WaitPaused(1, kWait));
  // Other scopes, and later hits once the single pause is used, pass.
  EXPECT_TRUE(kPointA.Hit("r2").ok());
  EXPECT_TRUE(kPointA.Hit("r1").ok());
  EXPECT_FALSE(passed);
  EXPECT_EQ(hold.paused(), 1);
  hold.Release();
  held.join();
  EXPECT_TRUE(passed);
  EXPECT_EQ(hold.hits(), 1);
  EXPECT_EQ(hold.paused(), 0);
}

TEST(FaultPointTest, DestroyingAnInjectionReleasesAndDisarms) {
  std::thread held;
  {
    Injection hold = Injection::Pause(kPointB, "", Injection::kEveryHit);
    held = std::thread([] { EXPECT_TRUE(kPointB.Hit().ok()); });
    ASSERT_TRUE(hold.WaitPaused(1, kWait));
  }
  held.join();
  EXPECT_TRUE(kPointB.Hit().ok());
}

TEST(FaultPointTest, CountObservesAndLetsTheNextRuleAct) {
  Injection count = Injection::Count(kPointA);
  Injection fail =
      Injection::Fail(kPointA, "", absl::AbortedError("injected"), 1);
  EXPECT_EQ(kPointA.Hit().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(kPointA.Hit().ok());
  EXPECT_EQ(count.hits(), 2);
  EXPECT_TRUE(count.WaitHits(2, absl::ZeroDuration()));
  EXPECT_FALSE(count.WaitHits(3, absl::Milliseconds(1)));
}

}  // namespace
}  // namespace lumo::fault
