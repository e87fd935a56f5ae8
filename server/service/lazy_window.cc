#include "server/service/lazy_window.h"

#include <algorithm>

#include "server/storage/counter_rules.h"

namespace lumo::service {

LazyWindow::LazyWindow(int64_t limit, absl::Duration duration)
    : limit_(limit),
      slot_ms_(absl::ToInt64Milliseconds(SlotWindow::SlotLength(duration))) {}

void LazyWindow::set_limit(int64_t limit) {
  limit_ = limit;
  if (ring_ != nullptr) ring_->set_limit(limit);
}

int64_t LazyWindow::SlotAt(absl::Time now) const {
  return storage::SlotOf(now, slot_length());
}

int64_t LazyWindow::InlineTokens(const Slot& s, int64_t current) const {
  if (s.slot < storage::FirstCountedSlot(current) || s.slot > current) {
    return 0;
  }
  return s.tokens;
}

int64_t LazyWindow::Count(absl::Time now) const {
  if (ring_ != nullptr) return ring_->Count(now);
  const int64_t current = SlotAt(now);
  int64_t sum = 0;
  for (int i = 0; i < used_; ++i) sum += InlineTokens(inline_[i], current);
  return sum;
}

int64_t LazyWindow::Remaining(absl::Time now) const {
  return std::max<int64_t>(0, limit_ - Count(now));
}

bool LazyWindow::TryTake(absl::Time now, int64_t n) {
  if (Count(now) + n > limit_) return false;
  Add(now, n);
  return true;
}

void LazyWindow::Add(absl::Time now, int64_t n) {
  if (ring_ != nullptr) {
    ring_->Add(now, n);
    return;
  }
  const int64_t current = SlotAt(now);
  for (int i = 0; i < used_; ++i) {
    if (inline_[i].slot == current) {
      inline_[i].tokens += n;
      return;
    }
  }
  // Slots that left the window count for no later time.
  int kept = 0;
  for (int i = 0; i < used_; ++i) {
    if (inline_[i].slot >= storage::FirstCountedSlot(current)) {
      inline_[kept++] = inline_[i];
    }
  }
  used_ = kept;
  if (used_ == kInlineSlots) {
    Allocate();
    ring_->Add(now, n);
    return;
  }
  // Keep slot order (a clock that went back may add an earlier slot).
  int at = used_;
  while (at > 0 && inline_[at - 1].slot > current) {
    inline_[at] = inline_[at - 1];
    --at;
  }
  inline_[at] = Slot{current, n};
  ++used_;
}

void LazyWindow::Allocate() {
  ring_ = std::make_unique<SlotWindow>(limit_,
                                       slot_length() * storage::kWindowSlots);
  for (int i = 0; i < used_; ++i) {
    ring_->Add(storage::SlotStart(inline_[i].slot, slot_length()),
               inline_[i].tokens);
  }
  used_ = 0;
}

absl::Time LazyWindow::AvailableAt(absl::Time now, int64_t n) const {
  if (ring_ != nullptr) return ring_->AvailableAt(now, n);
  if (n > limit_) return absl::InfiniteFuture();
  const int64_t current = SlotAt(now);
  int64_t excess = Count(now) + n - limit_;
  if (excess <= 0) return now;
  // Slots leave the window oldest first.
  for (int i = 0; i < used_; ++i) {
    excess -= InlineTokens(inline_[i], current);
    if (excess <= 0)
      return storage::WindowReset(inline_[i].slot, slot_length());
  }
  return storage::WindowReset(current, slot_length());  // not reached
}

absl::Time LazyWindow::Reset(absl::Time now) const {
  if (ring_ != nullptr) return ring_->Reset(now);
  const int64_t current = SlotAt(now);
  for (int i = 0; i < used_; ++i) {
    if (InlineTokens(inline_[i], current) > 0) {
      return storage::WindowReset(inline_[i].slot, slot_length());
    }
  }
  return storage::WindowReset(current, slot_length());
}

}  // namespace lumo::service
