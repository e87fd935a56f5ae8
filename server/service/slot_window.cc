#include "server/service/slot_window.h"

#include <algorithm>

#include "server/storage/counter_rules.h"

namespace lumo::service {
namespace {

int Index(int64_t slot, int slots) {
  const int64_t m = slot % slots;
  return static_cast<int>(m < 0 ? m + slots : m);
}

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

int64_t SlotWindow::TokensOf(int64_t slot, int64_t current) const {
  if (slot < storage::FirstCountedSlot(current) || slot > current) return 0;
  const int i = Index(slot, kSlots);
  return slot_of_[i] == slot ? tokens_[i] : 0;
}

int64_t SlotWindow::Count(absl::Time now) const {
  const int64_t current = storage::SlotOf(now, slot_);
  int64_t count = 0;
  for (int64_t s = storage::FirstCountedSlot(current); s <= current; ++s) {
    count += TokensOf(s, current);
  }
  return count;
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
  const int i = Index(current, kSlots);
  if (slot_of_[i] != current) {
    slot_of_[i] = current;
    tokens_[i] = 0;
  }
  tokens_[i] += n;
}

absl::Time SlotWindow::AvailableAt(absl::Time now, int64_t n) const {
  if (n > limit_) return absl::InfiniteFuture();
  const int64_t current = storage::SlotOf(now, slot_);
  int64_t excess = Count(now) + n - limit_;
  if (excess <= 0) return now;
  // Slots leave the window oldest first; slot s stops counting when slot
  // s + 61 begins.
  for (int64_t s = storage::FirstCountedSlot(current); s <= current; ++s) {
    excess -= TokensOf(s, current);
    if (excess <= 0) return storage::WindowReset(s, slot_);
  }
  return storage::WindowReset(current, slot_);  // not reached
}

absl::Time SlotWindow::Reset(absl::Time now) const {
  const int64_t current = storage::SlotOf(now, slot_);
  for (int64_t s = storage::FirstCountedSlot(current); s <= current; ++s) {
    if (TokensOf(s, current) > 0) return storage::WindowReset(s, slot_);
  }
  return storage::WindowReset(current, slot_);
}

}  // namespace lumo::service
