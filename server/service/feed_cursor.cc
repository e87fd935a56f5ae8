#include "server/service/feed_cursor.h"

#include <algorithm>

namespace lumo::service {

FeedCursor::FeedCursor(int64_t start_after, Clock::duration gap_timeout)
    : gap_timeout_(gap_timeout), applied_(start_after), highest_(start_after) {}

int64_t FeedCursor::missing() const {
  int64_t n = 0;
  for (const Gap& gap : gaps_) n += gap.last - gap.first + 1;
  return n;
}

std::vector<int64_t> FeedCursor::Observe(absl::Span<const int64_t> seqs,
                                         int64_t covered_through,
                                         Clock::time_point read_started,
                                         Clock::time_point read_finished,
                                         Clock::duration gap_timeout) {
  const Clock::duration timeout = std::max(gap_timeout_, gap_timeout);
  std::vector<int64_t> fresh;
  for (int64_t seq : seqs) {
    if (seq <= applied_) continue;
    if (seq > highest_) {
      if (seq > highest_ + 1) {
        gaps_.push_back(Gap{highest_ + 1, seq - 1, read_finished});
      }
      highest_ = seq;
      fresh.push_back(seq);
      continue;
    }
    // Below the highest seen: new only if it fills (part of) a gap.
    auto it = std::find_if(gaps_.begin(), gaps_.end(), [seq](const Gap& g) {
      return g.first <= seq && seq <= g.last;
    });
    if (it == gaps_.end()) continue;  // seen before
    fresh.push_back(seq);
    if (it->first == seq && it->last == seq) {
      gaps_.erase(it);
    } else if (it->first == seq) {
      it->first = seq + 1;
    } else if (it->last == seq) {
      it->last = seq - 1;
    } else {
      Gap upper{seq + 1, it->last, it->noticed};
      it->last = seq - 1;
      gaps_.insert(it + 1, upper);
    }
  }

  // Abandon gaps this read covered that have been missing for the whole
  // timeout, measured up to when this read started.
  for (auto it = gaps_.begin(); it != gaps_.end();) {
    if (it->last <= covered_through && read_started - it->noticed >= timeout) {
      abandoned_ += it->last - it->first + 1;
      it = gaps_.erase(it);
    } else {
      ++it;
    }
  }
  applied_ = gaps_.empty() ? highest_ : gaps_.front().first - 1;
  return fresh;
}

}  // namespace lumo::service
