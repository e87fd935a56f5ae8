#include "server/service/feed_cursor.h"

#include <chrono>
#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lumo::service {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Clock = FeedCursor::Clock;
using std::chrono::milliseconds;

constexpr int64_t kAll = FeedCursor::kCoveredAll;

class FeedCursorTest : public ::testing::Test {
 protected:
  // Simulated local clock; every read takes 1 ms.
  std::vector<int64_t> Read(FeedCursor& cursor, std::vector<int64_t> seqs,
                            int64_t covered = kAll) {
    Clock::time_point started = now_;
    now_ += milliseconds(1);
    return cursor.Observe(seqs, covered, started, now_);
  }
  void Wait(milliseconds d) { now_ += d; }

  Clock::time_point now_ = Clock::time_point(std::chrono::hours(1));
};

TEST_F(FeedCursorTest, ContiguousRowsAdvanceAndAreAppliedOnce) {
  FeedCursor cursor(10, milliseconds(1000));
  EXPECT_THAT(Read(cursor, {11, 12, 13}), ElementsAre(11, 12, 13));
  EXPECT_EQ(cursor.applied(), 13);
  // A read that returns rows already applied (it cannot, as reads start
  // after applied(), but a re-read must not re-apply) yields nothing.
  EXPECT_THAT(Read(cursor, {12, 13}), IsEmpty());
  EXPECT_THAT(Read(cursor, {}), IsEmpty());
  EXPECT_EQ(cursor.applied(), 13);
}

TEST_F(FeedCursorTest, OutOfOrderCommitIsDeliveredWhenItLands) {
  FeedCursor cursor(0, milliseconds(1000));
  EXPECT_THAT(Read(cursor, {1, 2}), ElementsAre(1, 2));
  // 3 is allocated but uncommitted while 4 commits.
  EXPECT_THAT(Read(cursor, {4}), ElementsAre(4));
  EXPECT_EQ(cursor.applied(), 2) << "must not advance past the gap at 3";
  EXPECT_EQ(cursor.highest_seen(), 4);
  EXPECT_EQ(cursor.missing(), 1);
  // The next read starts after applied() = 2 and sees 4 again: not new.
  EXPECT_THAT(Read(cursor, {4}), IsEmpty());
  Wait(milliseconds(500));
  EXPECT_THAT(Read(cursor, {3, 4, 5}), ElementsAre(3, 5));
  EXPECT_EQ(cursor.applied(), 5);
  EXPECT_EQ(cursor.missing(), 0);
  EXPECT_EQ(cursor.abandoned(), 0);
}

TEST_F(FeedCursorTest, GapIsAbandonedOnlyAfterTheTimeout) {
  FeedCursor cursor(0, milliseconds(1000));
  Read(cursor, {1, 3});  // noticed when this read returned
  EXPECT_EQ(cursor.applied(), 1);
  Wait(milliseconds(997));  // the next read starts 997 ms after noticing
  Read(cursor, {3});
  EXPECT_EQ(cursor.applied(), 1) << "abandoned before the timeout";
  Wait(milliseconds(2));  // the read starts exactly 1000 ms after
  Read(cursor, {3});
  EXPECT_EQ(cursor.applied(), 3);
  EXPECT_EQ(cursor.abandoned(), 1);
  // Once abandoned, a very late row below applied() is not delivered
  // (writers that slow re-announce under a new seq instead).
  EXPECT_THAT(Read(cursor, {2, 4}), ElementsAre(4));
}

TEST_F(FeedCursorTest, FillingTheMiddleOfAGapSplitsIt) {
  FeedCursor cursor(0, milliseconds(1000));
  EXPECT_THAT(Read(cursor, {1, 6}), ElementsAre(1, 6));
  EXPECT_EQ(cursor.missing(), 4);  // 2..5
  EXPECT_THAT(Read(cursor, {4, 6}), ElementsAre(4));
  EXPECT_EQ(cursor.missing(), 3);
  EXPECT_EQ(cursor.applied(), 1);
  EXPECT_THAT(Read(cursor, {2, 4, 6}), ElementsAre(2));
  EXPECT_EQ(cursor.applied(), 2);
  EXPECT_THAT(Read(cursor, {3, 4, 5, 6}), ElementsAre(3, 5));
  EXPECT_EQ(cursor.applied(), 6);
}

TEST_F(FeedCursorTest, ATruncatedReadNeverAbandonsGapsItDidNotCover) {
  FeedCursor cursor(0, milliseconds(100));
  Read(cursor, {1, 3, 10});  // gaps 2 and 4..9
  Wait(milliseconds(200));
  // A read cut off by its LIMIT after seq 3: it covered (1, 3] only, so the
  // gap 4..9 may hold rows it never looked at.
  Read(cursor, {3}, /*covered=*/3);
  EXPECT_EQ(cursor.abandoned(), 1);  // seq 2 only
  EXPECT_EQ(cursor.applied(), 3);
  EXPECT_EQ(cursor.missing(), 6);
  EXPECT_THAT(Read(cursor, {5, 10}), ElementsAre(5));
  EXPECT_EQ(cursor.abandoned(), 6);  // 4 and 6..9, now covered
  EXPECT_EQ(cursor.applied(), 10);
}

TEST_F(FeedCursorTest, GapTimerStartsWhenTheReadReturnedNotWhenItStarted) {
  FeedCursor cursor(0, milliseconds(1000));
  Clock::time_point started = now_;
  // A slow read: 900 ms between sending it and its rows arriving.
  now_ += milliseconds(900);
  cursor.Observe(std::vector<int64_t>{2}, kAll, started, now_);
  Wait(milliseconds(500));
  // 1400 ms after the slow read started but only 500 ms after it returned.
  Read(cursor, {2});
  EXPECT_EQ(cursor.applied(), 0);
  EXPECT_EQ(cursor.abandoned(), 0);
}

TEST_F(FeedCursorTest, NewGapsNoticedWhileOthersAreOpenKeepTheirOwnTimers) {
  FeedCursor cursor(0, milliseconds(1000));
  Read(cursor, {2});  // gap 1
  Wait(milliseconds(600));
  Read(cursor, {2, 4});  // gap 3, noticed 600 ms later
  Wait(milliseconds(500));
  Read(cursor, {2, 4});  // gap 1 is 1101 ms old, gap 3 is 500 ms old
  EXPECT_EQ(cursor.abandoned(), 1);
  EXPECT_EQ(cursor.applied(), 2);
  EXPECT_THAT(Read(cursor, {3, 4}), ElementsAre(3));
  EXPECT_EQ(cursor.applied(), 4);
}

TEST_F(FeedCursorTest, ALongerGapTimeoutElsewhereDefersAbandoning) {
  // This replica's own timeout is 100 ms; another registered replica runs
  // with 1 s, and a writer there re-announces only after 500 ms.
  FeedCursor cursor(0, milliseconds(100));
  auto read = [&](std::vector<int64_t> seqs) {
    Clock::time_point started = now_;
    now_ += milliseconds(1);
    return cursor.Observe(seqs, kAll, started, now_, milliseconds(1000));
  };
  EXPECT_THAT(read({1, 3}), ElementsAre(1, 3));
  Wait(milliseconds(500));
  EXPECT_THAT(read({3}), IsEmpty());
  EXPECT_EQ(cursor.applied(), 1) << "abandoned after its own timeout";
  Wait(milliseconds(500));
  EXPECT_THAT(read({3}), IsEmpty());
  EXPECT_EQ(cursor.applied(), 3);
  EXPECT_EQ(cursor.abandoned(), 1);
}

}  // namespace
}  // namespace lumo::service
