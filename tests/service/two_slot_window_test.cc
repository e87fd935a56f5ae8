// TwoSlotWindow (server/service/two_slot_window.h): with its spill into a
// LazyWindow, the same answers as a LazyWindow fed the same takes, on any
// clock (LazyWindow's answers are the contract), and as a SlotWindow on a
// clock that moves forward. Explicit times (no clock).
#include "server/service/two_slot_window.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/service/lazy_window.h"
#include "server/service/slot_window.h"
#include "server/storage/counter_rules.h"
#include "tests/service/window_compare.h"

namespace lumo::service {
namespace {

absl::Time At(int64_t ms) {
  return absl::FromUnixMillis(1'800'000'000'000 + ms);
}

// A TwoSlotWindow that spills into a LazyWindow when it cannot hold a take,
// as the verifier uses it.
class Spilling {
 public:
  Spilling(int64_t limit, absl::Duration duration)
      : limit_(limit),
        duration_(duration),
        slot_(SlotWindow::SlotLength(duration)) {}

  bool spilled() const { return big_.has_value(); }
  void set_limit(int64_t limit) {
    limit_ = limit;
    if (big_) big_->set_limit(limit);
  }
  int64_t Count(absl::Time now) const {
    return big_ ? big_->Count(now) : small_.Count(Slot(now));
  }
  int64_t Remaining(absl::Time now) const {
    return std::max<int64_t>(0, limit_ - Count(now));
  }
  bool TryTake(absl::Time now, int64_t n) {
    if (Count(now) + n > limit_) return false;
    Add(now, n);
    return true;
  }
  void Add(absl::Time now, int64_t n) {
    if (!big_ && small_.Add(Slot(now), n)) return;
    if (!big_) big_.emplace(small_.Spill(limit_, duration_));
    big_->Add(now, n);
  }
  absl::Time AvailableAt(absl::Time now, int64_t n) const {
    return big_ ? big_->AvailableAt(now, n)
                : small_.AvailableAt(now, Slot(now), n, limit_, slot_);
  }
  absl::Time Reset(absl::Time now) const {
    return big_ ? big_->Reset(now) : small_.Reset(Slot(now), slot_);
  }

 private:
  int64_t Slot(absl::Time now) const { return storage::SlotOf(now, slot_); }

  int64_t limit_;
  absl::Duration duration_;
  absl::Duration slot_;
  TwoSlotWindow small_;
  std::optional<LazyWindow> big_;
};

TEST(TwoSlotWindowTest, IsThirteenBytes) {
  EXPECT_EQ(sizeof(TwoSlotWindow), 13u);
}

TEST(TwoSlotWindowTest, HoldsTwoSlotsOfAWindowAndRefusesAThird) {
  TwoSlotWindow w;
  const absl::Duration slot = absl::Seconds(1);
  const int64_t s = storage::SlotOf(At(0), slot);
  EXPECT_TRUE(w.empty());
  EXPECT_TRUE(w.Add(s, 2));
  EXPECT_TRUE(w.Add(s + 30, 1));
  EXPECT_TRUE(w.Add(s, 1));  // the older slot again
  EXPECT_EQ(w.Count(s + 30), 4);
  EXPECT_EQ(w.Count(s + 61), 1);  // slot s left the window
  EXPECT_EQ(w.Reset(s + 30, slot), storage::WindowReset(s, slot));
  EXPECT_FALSE(w.Add(s + 40, 1));  // a third slot in the window
  EXPECT_EQ(w.Count(s + 40), 4);   // unchanged
  EXPECT_TRUE(w.Add(s + 61, 1));   // slot s dropped: two again
  EXPECT_EQ(w.Count(s + 61), 2);
  EXPECT_FALSE(w.Add(s + 61, std::int64_t{1} << 31));  // does not fit
  EXPECT_FALSE(w.Add(-1, 1));
  EXPECT_FALSE(w.Add(std::int64_t{1} << 32, 1));
  EXPECT_EQ(w.Count(s + 61), 2);
}

TEST(TwoSlotWindowTest, SpillKeepsTheCount) {
  TwoSlotWindow w;
  const int64_t s = storage::SlotOf(At(0), absl::Seconds(1));
  ASSERT_TRUE(w.Add(s, 3));
  ASSERT_TRUE(w.Add(s + 59, 2));
  LazyWindow lazy = w.Spill(10, absl::Minutes(1));
  EXPECT_EQ(lazy.Count(At(59'000)), 5);
  EXPECT_FALSE(lazy.allocated());
  EXPECT_EQ(lazy.Reset(At(59'000)), At(61'000));
}

// A clock that went back by more than a window, then a third slot: the
// spilled window still holds both earlier slots, as a LazyWindow does.
TEST(TwoSlotWindowTest, ClockBackByMoreThanAWindowThenSpill) {
  Spilling window(100, absl::Minutes(1));
  LazyWindow reference(100, absl::Minutes(1));
  for (int64_t second : {100, 35, 90}) {
    window.Add(At(second * 1000), 1);
    reference.Add(At(second * 1000), 1);
    for (int64_t at : {35, 90, 100}) {
      ASSERT_EQ(window.Count(At(at * 1000)), reference.Count(At(at * 1000)))
          << second << " " << at;
    }
  }
  EXPECT_TRUE(window.spilled());
}

// Random takes on a clock that moves forward, sometimes by about a window,
// and goes back by up to `max_back_slots` slots now and then; every answer
// equals the reference's.
template <typename Reference>
void CompareOnRandomTakes(uint64_t seed, int64_t max_back_slots) {
  std::mt19937_64 random(seed);
  int spilled_runs = 0;
  int inline_answers = 0;
  for (int run = 0; run < 300; ++run) {
    const int64_t limit = 1 + random() % 20;
    const absl::Duration duration =
        run % 3 == 0 ? absl::Minutes(1)
                     : absl::Milliseconds(60 + random() % 10'000);
    Reference reference(limit, duration);
    Spilling window(limit, duration);
    const int64_t slot_ms =
        absl::ToInt64Milliseconds(SlotWindow::SlotLength(duration));
    int64_t now_ms = random() % 100'000;
    const bool sparse = run % 2 == 1;
    for (int step = 0; step < 200; ++step) {
      const int jump = random() % 12;
      if (sparse && jump >= 2) {
        // A key used a few times a window: mostly inline.
        now_ms += jump < 9 ? slot_ms * (31 + random() % 40)
                           : random() % (slot_ms + 1);
      } else if (jump == 0) {
        now_ms += slot_ms * (50 + random() % 30);  // about a window
      } else if (jump == 1 && max_back_slots > 0) {
        now_ms -= slot_ms * (random() % (max_back_slots + 1));
      } else if (jump < 5) {
        now_ms += slot_ms * (random() % 5);
      } else if (jump < 7) {
        now_ms += slot_ms * (random() % 70);
      } else {
        now_ms += random() % (slot_ms + 1);
      }
      const absl::Time now = At(now_ms);
      const std::string where = absl::StrCat("run ", run, " step ", step);
      TakeAndCompare(window, reference, now, random, where);
      if (::testing::Test::HasFatalFailure()) return;
      inline_answers += !window.spilled();
    }
    spilled_runs += window.spilled();
  }
  // Both forms were exercised.
  EXPECT_GT(spilled_runs, 0);
  EXPECT_GT(inline_answers, 500);
}

TEST(TwoSlotWindowTest, AnswersAsALazyWindowOnAnyClock) {
  CompareOnRandomTakes<LazyWindow>(20261207, /*max_back_slots=*/200);
}

TEST(TwoSlotWindowTest, AnswersAsASlotWindowOnAClockMovingForward) {
  CompareOnRandomTakes<SlotWindow>(7122026, /*max_back_slots=*/0);
}

}  // namespace
}  // namespace lumo::service
