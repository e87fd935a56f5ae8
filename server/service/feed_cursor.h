// The position of one replica in the key_changes feed (docs/replication.md,
// "The change feed").
//
// AUTO_INCREMENT values are allocated when a row is inserted but become
// visible when its transaction commits, so seq 10 can appear after seq 11
// has been read. The cursor therefore tracks *gaps*: seqs below the highest
// seen one that have not been seen yet. `applied()` (the low-water mark) is
// the highest seq such that every seq at or below it has been seen or
// abandoned; tailers read `seq > applied()` each round, so gaps are
// re-checked until they fill.
//
// A gap is abandoned (it may belong to a rolled-back transaction and never
// fill) only by a read that *started* at least `gap_timeout` after the gap
// was first noticed *after a read returned*. Because a later seq was already
// committed when the gap was noticed, the missing seq was allocated before
// that moment; so any transaction that commits within `gap_timeout` of
// allocating its seq is seen before its gap can be abandoned. Writers whose
// mutation took longer re-announce the change under a new seq (see
// ReplicaSync::AwaitChange), which closes the argument.
//
// Not thread-safe: one tailer thread owns it. Pure logic, no I/O.
#ifndef LUMOKEYS_SERVER_SERVICE_FEED_CURSOR_H_
#define LUMOKEYS_SERVER_SERVICE_FEED_CURSOR_H_

#include <chrono>
#include <cstdint>
#include <limits>
#include <vector>

#include "absl/types/span.h"

namespace lumo::service {

class FeedCursor {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts after `start_after` (seqs at or below it are treated as applied).
  FeedCursor(int64_t start_after, Clock::duration gap_timeout);

  // Feeds the result of one read of `seq > applied()`: `seqs` ascending,
  // and the read covered every committed seq in (applied(), covered_through]
  // (INT64_MAX when it was not truncated by a LIMIT, else the last seq
  // returned). `read_started` is taken before the statement was sent,
  // `read_finished` after its rows arrived. Returns the seqs seen for the
  // first time, in order: the caller applies exactly these. Gaps are
  // abandoned after the longer of the constructor's gap timeout and
  // `gap_timeout` (the longest any replica runs with, read with the rows).
  std::vector<int64_t> Observe(
      absl::Span<const int64_t> seqs, int64_t covered_through,
      Clock::time_point read_started, Clock::time_point read_finished,
      Clock::duration gap_timeout = Clock::duration::zero());

  // Every seq <= applied() was seen or abandoned.
  int64_t applied() const { return applied_; }
  int64_t highest_seen() const { return highest_; }
  // Seqs currently missing below highest_seen().
  int64_t missing() const;
  // Seqs abandoned so far (rolled back, or never committed in time).
  int64_t abandoned() const { return abandoned_; }

  static constexpr int64_t kCoveredAll = std::numeric_limits<int64_t>::max();

 private:
  struct Gap {
    int64_t first;
    int64_t last;
    Clock::time_point noticed;
  };

  Clock::duration gap_timeout_;
  int64_t applied_;
  int64_t highest_;
  // Sorted, disjoint, all within (applied_, highest_).
  std::vector<Gap> gaps_;
  int64_t abandoned_ = 0;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_FEED_CURSOR_H_
