// LazyWindow (server/service/lazy_window.h): the same answers as a
// SlotWindow fed the same takes, with no ring allocated while the tokens
// fall in at most two slots of a window. Explicit times (no clock).
#include "server/service/lazy_window.h"

#include <cstdint>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/service/slot_window.h"
#include "tests/service/window_compare.h"

namespace lumo::service {
namespace {

absl::Time At(int64_t ms) {
  return absl::FromUnixMillis(1'800'000'000'000 + ms);
}

TEST(LazyWindowTest, IsSmallInline) {
  EXPECT_LE(sizeof(LazyWindow), 64u);
  EXPECT_GT(sizeof(SlotWindow), 900u);
}

TEST(LazyWindowTest, AKeyUsedEvery31SecondsAllocatesNoRing) {
  LazyWindow w(1'000'000, absl::Minutes(1));
  // A window is 61 one-second slots: each take finds at most one earlier
  // slot still in it.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(w.TryTake(At(i * 31'000)));
    EXPECT_EQ(w.Count(At(i * 31'000)), i == 0 ? 1 : 2);
  }
  EXPECT_FALSE(w.allocated());
  // A third slot inside one window needs the ring.
  EXPECT_TRUE(w.TryTake(At(19 * 31'000 + 1'000)));
  EXPECT_TRUE(w.allocated());
  EXPECT_EQ(w.Count(At(19 * 31'000 + 1'000)), 3);
}

TEST(LazyWindowTest, RefusesAtTheLimitInline) {
  LazyWindow w(3, absl::Minutes(1));
  EXPECT_TRUE(w.TryTake(At(0), 2));
  EXPECT_TRUE(w.TryTake(At(10)));
  EXPECT_FALSE(w.TryTake(At(20)));
  EXPECT_EQ(w.Remaining(At(20)), 0);
  EXPECT_EQ(w.AvailableAt(At(20)), At(61'000));
  EXPECT_EQ(w.Reset(At(20)), At(61'000));
  EXPECT_FALSE(w.allocated());
  EXPECT_TRUE(w.TryTake(At(61'000)));
}

// Random takes on a clock that moves forward (sometimes by more than a
// window), limits and durations of several sizes, a limit changed now and
// then: every answer equals SlotWindow's.
TEST(LazyWindowTest, AnswersAsASlotWindowDoes) {
  std::mt19937_64 random(20261207);
  for (int run = 0; run < 200; ++run) {
    const int64_t limit = 1 + random() % 20;
    const absl::Duration duration =
        run % 3 == 0 ? absl::Minutes(1)
                     : absl::Milliseconds(60 + random() % 10'000);
    SlotWindow ring(limit, duration);
    LazyWindow lazy(limit, duration);
    const int64_t slot_ms =
        absl::ToInt64Milliseconds(SlotWindow::SlotLength(duration));
    int64_t now_ms = random() % 100'000;
    for (int step = 0; step < 300; ++step) {
      const int jump = random() % 10;
      if (jump == 0) {
        now_ms += slot_ms * (50 + random() % 30);  // about a window
      } else if (jump < 4) {
        now_ms += slot_ms * (random() % 5);
      } else {
        now_ms += random() % (slot_ms + 1);
      }
      const absl::Time now = At(now_ms);
      const std::string where = absl::StrCat("run ", run, " step ", step);
      TakeAndCompare(lazy, ring, now, random, where);
      if (::testing::Test::HasFatalFailure()) return;
      ASSERT_EQ(lazy.limit(), ring.limit()) << where;
      ASSERT_EQ(lazy.slot_length(), ring.slot_length()) << where;
    }
  }
}

}  // namespace
}  // namespace lumo::service
