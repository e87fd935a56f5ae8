// SlotWindow (server/service/slot_window.h): the sliding window of 60
// slots, on explicit times (no clock, no sleeps).
#include "server/service/slot_window.h"

#include <cstdint>
#include <deque>
#include <random>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace lumo::service {
namespace {

// A time `ms` milliseconds after a slot edge of every slot length used
// here (a multiple of 60 000 ms and of 1 000 ms).
absl::Time At(int64_t ms) {
  return absl::FromUnixMillis(1'800'000'000'000 + ms);
}

TEST(SlotWindowTest, SlotsAreASixtiethOfTheDurationRoundedUp) {
  EXPECT_EQ(SlotWindow::SlotLength(absl::Minutes(1)), absl::Seconds(1));
  EXPECT_EQ(SlotWindow::SlotLength(absl::Seconds(1)), absl::Milliseconds(17));
  EXPECT_EQ(SlotWindow::SlotLength(absl::Hours(1)), absl::Minutes(1));
  EXPECT_EQ(SlotWindow::SlotLength(absl::Hours(24 * 365)),
            absl::Hours(24 * 365) / 60);
}

TEST(SlotWindowTest, AdmitsTheLimitThenRefuses) {
  SlotWindow w(3, absl::Minutes(1));
  EXPECT_TRUE(w.TryTake(At(0)));
  EXPECT_TRUE(w.TryTake(At(10)));
  EXPECT_TRUE(w.TryTake(At(20)));
  EXPECT_FALSE(w.TryTake(At(30)));
  EXPECT_EQ(w.Count(At(30)), 3);
  EXPECT_EQ(w.Remaining(At(30)), 0);
}

TEST(SlotWindowTest, NoDoubleBurstAtTheMinuteBoundary) {
  // The calendar-minute window admitted 2L around a minute edge: L at
  // 0:59.9 and L again at 1:00.1. The sliding window admits none of the
  // second burst until the first one's slot has left (61 slots later).
  SlotWindow w(100, absl::Minutes(1));
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(w.TryTake(At(59'900)));
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(w.TryTake(At(60'100)));
  // Slot 59 (59 000-59 999 ms) is counted until slot 120 begins.
  EXPECT_FALSE(w.TryTake(At(119'999)));
  EXPECT_TRUE(w.TryTake(At(120'000)));
}

TEST(SlotWindowTest, ResetAndAvailableAtNameWhenTheOldestSlotLeaves) {
  SlotWindow w(4, absl::Minutes(1));
  ASSERT_TRUE(w.TryTake(At(2'500), 2));   // slot 2
  ASSERT_TRUE(w.TryTake(At(10'000), 2));  // slot 10
  EXPECT_EQ(w.Reset(At(10'000)), At(63'000));
  EXPECT_EQ(w.AvailableAt(At(10'000), 1), At(63'000));
  EXPECT_EQ(w.AvailableAt(At(10'000), 3), At(71'000));
  EXPECT_EQ(w.AvailableAt(At(10'000), 5), absl::InfiniteFuture());
  EXPECT_EQ(w.Count(At(62'999)), 4);
  EXPECT_EQ(w.Count(At(63'000)), 2);
  EXPECT_EQ(w.Reset(At(63'000)), At(71'000));
  EXPECT_EQ(w.Count(At(71'000)), 0);
  // Nothing counted: the end of the current slot's window.
  EXPECT_EQ(w.Reset(At(71'000)), At(71'000 + 61'000));
  EXPECT_EQ(w.AvailableAt(At(71'000), 4), At(71'000));
}

TEST(SlotWindowTest, ATakeThatDoesNotFitTakesNothing) {
  SlotWindow w(5, absl::Seconds(10));
  ASSERT_TRUE(w.TryTake(At(0), 3));
  EXPECT_FALSE(w.TryTake(At(1), 3));
  EXPECT_EQ(w.Count(At(1)), 3);
  EXPECT_TRUE(w.TryTake(At(1), 2));
}

TEST(SlotWindowTest, AddCountsBeyondTheLimit) {
  SlotWindow w(2, absl::Seconds(10));
  w.Add(At(0), 5);
  EXPECT_EQ(w.Count(At(0)), 5);
  EXPECT_EQ(w.Remaining(At(0)), 0);
  EXPECT_FALSE(w.TryTake(At(0)));
}

TEST(SlotWindowTest, ARingEntryOfAnOldSlotIsNotCounted) {
  // Slot 0 and slot 61 share a ring entry; after 61 slots slot 0's tokens
  // are gone, and a take in slot 61 starts the entry afresh.
  SlotWindow w(3, absl::Minutes(1));
  ASSERT_TRUE(w.TryTake(At(0), 3));
  EXPECT_EQ(w.Count(At(61'000)), 0);
  ASSERT_TRUE(w.TryTake(At(61'000), 1));
  EXPECT_EQ(w.Count(At(61'000)), 1);
  // A time long after (many ring turns) counts nothing.
  EXPECT_EQ(w.Count(At(10'000'000)), 0);
}

TEST(SlotWindowTest, ANewLimitKeepsTheCount) {
  SlotWindow w(2, absl::Minutes(1));
  ASSERT_TRUE(w.TryTake(At(0), 2));
  w.set_limit(3);
  EXPECT_TRUE(w.TryTake(At(0)));
  EXPECT_FALSE(w.TryTake(At(0)));
}

// The takes admitted from arrivals `max_gap_ms` apart at most (uniform,
// seeded), over ten durations of 60 s.
std::vector<int64_t> Admitted(int64_t limit, int64_t max_gap_ms) {
  SlotWindow w(limit, absl::Seconds(60));
  std::mt19937_64 rng(limit * 1000 + max_gap_ms);
  std::uniform_int_distribution<int64_t> gap(0, max_gap_ms);
  std::vector<int64_t> admitted;  // ms
  for (int64_t t = 0; t < 10 * 60'000; t += gap(rng)) {
    if (w.TryTake(At(t))) admitted.push_back(t);
  }
  return admitted;
}

// The most admitted in any half-open window of 60 s (two pointers).
size_t MostInAnyMinute(const std::vector<int64_t>& admitted) {
  size_t lo = 0;
  size_t most = 0;
  for (size_t hi = 0; hi < admitted.size(); ++hi) {
    while (admitted[hi] - admitted[lo] >= 60'000) ++lo;
    most = std::max(most, hi - lo + 1);
  }
  return most;
}

// The window's promise: in every window of length `duration` (any start)
// at most `limit` takes are admitted, for bursty and for sparse traffic.
TEST(SlotWindowTest, NeverMoreThanTheLimitInAnySlidingWindow) {
  for (const int64_t limit : {1, 7, 60, 1000}) {
    for (const int64_t max_gap :
         {int64_t{2}, 60'000 / limit, 120'000 / limit}) {
      EXPECT_LE(MostInAnyMinute(Admitted(limit, max_gap)),
                static_cast<size_t>(limit))
          << "limit " << limit << " gap " << max_gap;
    }
  }
}

// Under saturating traffic (an arrival every 0-2 ms) the window admits at
// least 60/61 of the limit per duration: ten durations give at least
// floor(10 * 60 / 61) windows' worth.
TEST(SlotWindowTest, SaturatingTrafficGetsAtLeast60Of61) {
  for (const int64_t limit : {1, 7, 60, 1000}) {
    EXPECT_GE(Admitted(limit, 2).size(), static_cast<size_t>(9 * limit))
        << "limit " << limit;
  }
}

}  // namespace
}  // namespace lumo::service
