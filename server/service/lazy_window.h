// A sliding window (slot_window.h) that allocates its ring only when it
// needs one: while the tokens it counts fall in at most kInlineSlots
// distinct slots of a window, it keeps those slots inline (64 bytes in
// all); a take in one more slot moves them into a SlotWindow on the heap
// (about 1 KB), kept while the window lives. Most keys of a large cache are
// used in a slot or two per minute, so the windows of this process (one per
// key used in the last minute, for the server's default limit) stay small.
//
// Answers exactly as a SlotWindow fed the same takes would while the clock
// does not go back by more than a window (a slot that left the window is
// forgotten here, where a SlotWindow may still hold it in its ring).
//
// A value type; not thread-safe (the owner locks).
#ifndef LUMOKEYS_SERVER_SERVICE_LAZY_WINDOW_H_
#define LUMOKEYS_SERVER_SERVICE_LAZY_WINDOW_H_

#include <array>
#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "server/service/slot_window.h"

namespace lumo::service {

class LazyWindow {
 public:
  static constexpr int kInlineSlots = 2;

  // limit >= 1, duration >= 1 ms (validated by the caller).
  LazyWindow(int64_t limit, absl::Duration duration);

  int64_t limit() const { return limit_; }
  absl::Duration slot_length() const { return absl::Milliseconds(slot_ms_); }
  void set_limit(int64_t limit);
  // True once the tokens needed a SlotWindow (tests, memory notes).
  bool allocated() const { return ring_ != nullptr; }

  // As SlotWindow's.
  int64_t Count(absl::Time now) const;
  int64_t Remaining(absl::Time now) const;
  bool TryTake(absl::Time now, int64_t n = 1);
  void Add(absl::Time now, int64_t n);
  absl::Time AvailableAt(absl::Time now, int64_t n = 1) const;
  absl::Time Reset(absl::Time now) const;

 private:
  struct Slot {
    int64_t slot;
    int64_t tokens;
  };
  int64_t SlotAt(absl::Time now) const;
  // The inline tokens of slot `slot` at `current` (0 outside its window).
  int64_t InlineTokens(const Slot& s, int64_t current) const;
  // Moves the inline slots into a new SlotWindow.
  void Allocate();

  int64_t limit_;
  int64_t slot_ms_;
  // In increasing slot order, the first `used_` entries.
  std::array<Slot, kInlineSlots> inline_{};
  int used_ = 0;
  std::unique_ptr<SlotWindow> ring_;  // null: inline
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_LAZY_WINDOW_H_
