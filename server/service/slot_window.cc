#include "server/service/slot_window.h"

#include <algorithm>

#include "server/storage/counter_rules.h"

namespace lumo::service {
namespace {

int Index(int64_t slot, int slots) {
  const int64_t m = slot % slots;
  return static_cast<int>(m < 0 ? m + slots : m);
}

// The ring entry after `i` (walks without a division per slot).
int Next(int i, int slots) { return i + 1 == slots ? 0 : i + 1; }

}  // namespace

SlotWindow::SlotWindow(int64_t limit, absl::Duration duration)
    : limit_(limit), slot_(SlotLength(duration)) {
  slot_of_.fill(INT64_MIN);
}

absl::Duration SlotWindow::SlotLength(absl::Duration duration) {
  const int64_t ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(duration));
  return absl::Milliseconds((ms + storage::kWindowSlots - 1) /
                            storage::kWindowSlots);
}

int64_t SlotWindow::RangeTokens(int64_t from, int64_t to) const {
  int64_t sum = 0;
  for (int64_t s = from, i = Index(from, kSlots); s < to;
       ++s, i = Next(static_cast<int>(i), kSlots)) {
    if (slot_of_[i] == s) sum += tokens_[i];
  }
  return sum;
}

void SlotWindow::Sync(int64_t current) const {
  if (current == sum_at_) return;
  if (sum_at_ != INT64_MIN && current > sum_at_ &&
      current - sum_at_ <= kSlots) {
    // Forward by at most a window: the slots that left it are subtracted
    // and the slots that entered it added (they hold tokens only when the
    // clock went back after counting them). Both ranges lie in the window
    // they are counted in.
    sum_ -= RangeTokens(storage::FirstCountedSlot(sum_at_),
                        storage::FirstCountedSlot(current));
    sum_ += RangeTokens(sum_at_ + 1, current + 1);
  } else {
    // First use, a long gap, or a clock that went back: count afresh.
    sum_ = RangeTokens(storage::FirstCountedSlot(current), current + 1);
  }
  sum_at_ = current;
}

int64_t SlotWindow::Count(absl::Time now) const {
  Sync(storage::SlotOf(now, slot_));
  return sum_;
}

int64_t SlotWindow::Remaining(absl::Time now) const {
  return std::max<int64_t>(0, limit_ - Count(now));
}

bool SlotWindow::TryTake(absl::Time now, int64_t n) {
  if (Count(now) + n > limit_) return false;
  Add(now, n);
  return true;
}

void SlotWindow::Add(absl::Time now, int64_t n) {
  const int64_t current = storage::SlotOf(now, slot_);
  Sync(current);
  const int i = Index(current, kSlots);
  if (slot_of_[i] != current) {
    // The entry held a slot at least kSlots old: outside every window
    // from `current` on.
    slot_of_[i] = current;
    tokens_[i] = 0;
  }
  tokens_[i] += n;
  sum_ += n;
}

absl::Time SlotWindow::AvailableAt(absl::Time now, int64_t n) const {
  if (n > limit_) return absl::InfiniteFuture();
  const int64_t current = storage::SlotOf(now, slot_);
  int64_t excess = Count(now) + n - limit_;
  if (excess <= 0) return now;
  // Slots leave the window oldest first; slot s stops counting when slot
  // s + 61 begins.
  const int64_t first = storage::FirstCountedSlot(current);
  for (int64_t s = first, i = Index(first, kSlots); s <= current;
       ++s, i = Next(static_cast<int>(i), kSlots)) {
    if (slot_of_[i] == s) excess -= tokens_[i];
    if (excess <= 0) return storage::WindowReset(s, slot_);
  }
  return storage::WindowReset(current, slot_);  // not reached
}

absl::Time SlotWindow::Reset(absl::Time now) const {
  const int64_t current = storage::SlotOf(now, slot_);
  const int64_t first = storage::FirstCountedSlot(current);
  // The oldest slot of the window holding tokens: one step when the key
  // is used in every slot.
  for (int64_t s = first, i = Index(first, kSlots); s <= current;
       ++s, i = Next(static_cast<int>(i), kSlots)) {
    if (slot_of_[i] == s && tokens_[i] > 0) {
      return storage::WindowReset(s, slot_);
    }
  }
  return storage::WindowReset(current, slot_);
}

}  // namespace lumo::service
