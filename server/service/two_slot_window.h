// The inline part of a LazyWindow (lazy_window.h) in 13 bytes, for a
// window kept inside another structure (the verifier keeps the server's
// default key limit of a cached key inside its cache entry): at most two
// slots of one window, slot numbers below 2^32 and at most 60 slots apart,
// and at most 2^31 - 1 tokens per slot. The limit and the slot length are
// the caller's, passed to every call.
//
// While Add accepts the takes, every answer equals that of a LazyWindow
// (limit, duration) fed the same takes. When Add refuses one (a third slot
// in one window, a slot out of range, a count that would not fit), the
// caller moves the window into a LazyWindow with Spill, which then holds
// exactly the LazyWindow's state, and applies the take there.
//
// A value type; not thread-safe (the owner locks).
#ifndef LUMOKEYS_SERVER_SERVICE_TWO_SLOT_WINDOW_H_
#define LUMOKEYS_SERVER_SERVICE_TWO_SLOT_WINDOW_H_

#include <cstdint>

#include "absl/time/time.h"
#include "server/service/lazy_window.h"

namespace lumo::service {

// Packed: the verifier's cache entry holds one beside its flags, and the
// three padding bytes of an aligned layout would cost the entry a size
// class.
class __attribute__((packed)) TwoSlotWindow {
 public:
  // Slot `current` is storage::SlotOf(now, slot length), as for SlotWindow.
  bool empty() const { return last_tokens_ == 0; }
  // Tokens counted in the window of slot `current`.
  int64_t Count(int64_t current) const;
  // Counts `n` >= 1 tokens in slot `current` and returns true; or, when
  // this form cannot hold them, changes nothing and returns false.
  bool Add(int64_t current, int64_t n);
  // As LazyWindow's (`now` in slot `current`; `slot_length` the window's).
  absl::Time AvailableAt(absl::Time now, int64_t current, int64_t n,
                         int64_t limit, absl::Duration slot_length) const;
  absl::Time Reset(int64_t current, absl::Duration slot_length) const;
  // A LazyWindow holding what this one holds.
  LazyWindow Spill(int64_t limit, absl::Duration duration) const;

 private:
  // The slots held, in increasing order; returns how many (0 - 2).
  int Slots(int64_t slots[2], int64_t tokens[2]) const;

  // The newest slot and its tokens (0: the window holds nothing).
  uint32_t last_ = 0;
  int32_t last_tokens_ = 0;
  // The other slot, `gap_` (1 - 60) before the newest; 0: none.
  int32_t prev_tokens_ = 0;
  uint8_t gap_ = 0;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_TWO_SLOT_WINDOW_H_
