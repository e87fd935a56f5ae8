// A sliding window of 60 slots (docs/limits.md "The algorithm"): `limit`
// tokens per `duration`, the duration cut into 60 slots of
// ceil(duration / 60) whole milliseconds. A take at time t in slot s is
// admitted when the tokens of slots s-60 ... s are below the limit, so any
// window of length `duration` holds at most `limit` admitted tokens,
// wherever it starts. Slots are numbered as storage::SlotOf numbers them
// (on the clock the caller passes), so a local window and the database's
// agree on slot edges.
//
// A value type; not thread-safe (the owner locks).
#ifndef LUMOKEYS_SERVER_SERVICE_SLOT_WINDOW_H_
#define LUMOKEYS_SERVER_SERVICE_SLOT_WINDOW_H_

#include <array>
#include <cstdint>

#include "absl/time/time.h"
#include "server/storage/counter_store.h"

namespace lumo::service {

class SlotWindow {
 public:
  // limit >= 1, duration >= 1 ms (validated by the caller).
  SlotWindow(int64_t limit, absl::Duration duration);

  // The slot length for `duration`: ceil(duration / 60) whole ms.
  static absl::Duration SlotLength(absl::Duration duration);

  int64_t limit() const { return limit_; }
  absl::Duration slot_length() const { return slot_; }
  // A new limit keeps what was counted.
  void set_limit(int64_t limit) { limit_ = limit; }

  // Tokens counted at `now`: O(1) while time moves forward by less than
  // a window (the slots that left are subtracted from a running sum).
  int64_t Count(absl::Time now) const;
  // limit - Count (never below 0).
  int64_t Remaining(absl::Time now) const;
  // Takes `n` tokens when Count(now) + n <= limit; otherwise takes none.
  bool TryTake(absl::Time now, int64_t n = 1);
  // Counts `n` tokens at `now` whatever the limit (tokens spent elsewhere).
  void Add(absl::Time now, int64_t n);
  // The earliest time at which `n` more tokens fit (now when they fit
  // now; never when n > limit: InfiniteFuture).
  absl::Time AvailableAt(absl::Time now, int64_t n = 1) const;
  // When the oldest counted slot holding tokens leaves the window (the
  // count then drops); the end of the current slot's window when nothing
  // is counted.
  absl::Time Reset(absl::Time now) const;

 private:
  static constexpr int kSlots = storage::kWindowSlots + 1;

  // The tokens the ring holds for slots from <= s < to (to - from <=
  // kSlots), walking the ring without a division per slot.
  int64_t RangeTokens(int64_t from, int64_t to) const;
  // Moves the running sum to the window of `current`.
  void Sync(int64_t current) const;

  int64_t limit_;
  absl::Duration slot_;
  // Ring indexed by slot mod kSlots: which slot each entry counts, and
  // its tokens.
  std::array<int64_t, kSlots> slot_of_;
  std::array<int64_t, kSlots> tokens_{};
  // The tokens of the window of slot `sum_at_` (a cache of the ring: kept
  // by Add, moved along by Sync).
  mutable int64_t sum_at_ = INT64_MIN;
  mutable int64_t sum_ = 0;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_SLOT_WINDOW_H_
