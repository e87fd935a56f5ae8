#include "server/service/two_slot_window.h"

#include <algorithm>
#include <limits>

#include "server/storage/counter_rules.h"

namespace lumo::service {
namespace {

constexpr int64_t kMaxTokens = std::numeric_limits<int32_t>::max();
constexpr int64_t kMaxSlot = std::numeric_limits<uint32_t>::max();

// The tokens of slot `slot` at `current` (0 outside its window).
int64_t InWindow(int64_t slot, int64_t tokens, int64_t current) {
  if (slot < storage::FirstCountedSlot(current) || slot > current) return 0;
  return tokens;
}

}  // namespace

int TwoSlotWindow::Slots(int64_t slots[2], int64_t tokens[2]) const {
  if (last_tokens_ == 0) return 0;
  if (gap_ == 0) {
    slots[0] = last_;
    tokens[0] = last_tokens_;
    return 1;
  }
  slots[0] = static_cast<int64_t>(last_) - gap_;
  tokens[0] = prev_tokens_;
  slots[1] = last_;
  tokens[1] = last_tokens_;
  return 2;
}

int64_t TwoSlotWindow::Count(int64_t current) const {
  int64_t slots[2], tokens[2];
  const int used = Slots(slots, tokens);
  int64_t sum = 0;
  for (int i = 0; i < used; ++i) sum += InWindow(slots[i], tokens[i], current);
  return sum;
}

bool TwoSlotWindow::Add(int64_t current, int64_t n) {
  if (n < 1 || n > kMaxTokens || current < 0 || current > kMaxSlot) {
    return false;
  }
  int64_t slots[2], tokens[2];
  int used = Slots(slots, tokens);
  for (int i = 0; i < used; ++i) {
    if (slots[i] != current) continue;
    if (tokens[i] + n > kMaxTokens) return false;
    if (i == used - 1) {
      last_tokens_ = static_cast<int32_t>(tokens[i] + n);
    } else {
      prev_tokens_ = static_cast<int32_t>(tokens[i] + n);
    }
    return true;
  }
  // A new slot. Slots that left the window count for no later time (as
  // LazyWindow drops them).
  int kept = 0;
  for (int i = 0; i < used; ++i) {
    if (slots[i] >= storage::FirstCountedSlot(current)) {
      slots[kept] = slots[i];
      tokens[kept] = tokens[i];
      ++kept;
    }
  }
  if (kept == 2) return false;  // a third slot: LazyWindow's ring
  if (kept == 0) {
    last_ = static_cast<uint32_t>(current);
    last_tokens_ = static_cast<int32_t>(n);
    prev_tokens_ = 0;
    gap_ = 0;
    return true;
  }
  // One slot kept; it may be after `current` (a clock that went back).
  const int64_t low = std::min(slots[0], current);
  const int64_t high = std::max(slots[0], current);
  if (high - low > storage::kWindowSlots) return false;
  const int64_t low_tokens = low == current ? n : tokens[0];
  const int64_t high_tokens = high == current ? n : tokens[0];
  last_ = static_cast<uint32_t>(high);
  last_tokens_ = static_cast<int32_t>(high_tokens);
  prev_tokens_ = static_cast<int32_t>(low_tokens);
  gap_ = static_cast<uint8_t>(high - low);
  return true;
}

absl::Time TwoSlotWindow::AvailableAt(absl::Time now, int64_t current,
                                      int64_t n, int64_t limit,
                                      absl::Duration slot_length) const {
  if (n > limit) return absl::InfiniteFuture();
  int64_t excess = Count(current) + n - limit;
  if (excess <= 0) return now;
  int64_t slots[2], tokens[2];
  const int used = Slots(slots, tokens);
  // Slots leave the window oldest first.
  for (int i = 0; i < used; ++i) {
    excess -= InWindow(slots[i], tokens[i], current);
    if (excess <= 0) return storage::WindowReset(slots[i], slot_length);
  }
  return storage::WindowReset(current, slot_length);  // not reached
}

absl::Time TwoSlotWindow::Reset(int64_t current,
                                absl::Duration slot_length) const {
  int64_t slots[2], tokens[2];
  const int used = Slots(slots, tokens);
  for (int i = 0; i < used; ++i) {
    if (InWindow(slots[i], tokens[i], current) > 0) {
      return storage::WindowReset(slots[i], slot_length);
    }
  }
  return storage::WindowReset(current, slot_length);
}

LazyWindow TwoSlotWindow::Spill(int64_t limit, absl::Duration duration) const {
  LazyWindow window(limit, duration);
  int64_t slots[2], tokens[2];
  const int used = Slots(slots, tokens);
  // In increasing order, at most a window apart: the LazyWindow keeps both
  // inline, as it would have had it counted them itself.
  for (int i = 0; i < used; ++i) {
    window.Add(storage::SlotStart(slots[i], window.slot_length()), tokens[i]);
  }
  return window;
}

}  // namespace lumo::service
