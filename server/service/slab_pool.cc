#include "server/service/slab_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "absl/base/internal/raw_logging.h"

namespace lumo::service {

namespace {
// Bytes of every pool's slabs mapped now (MappedBytesOfAllPools).
std::atomic<size_t> all_mapped_bytes{0};
}  // namespace

size_t SlabPool::MappedBytesOfAllPools() {
  return all_mapped_bytes.load(std::memory_order_relaxed);
}

// The header at the start of every slab; its slots follow.
struct SlabPool::Slab {
  // Links in the pool's list of slabs with a free slot.
  Slab* prev = nullptr;
  Slab* next = nullptr;
  bool linked = false;
  // Released slots, each holding the next one's address.
  void* free_list = nullptr;
  // Slots handed out and not released.
  size_t used = 0;
  // Slots [untouched, slots_per_slab) were never handed out.
  size_t untouched = 0;
};

namespace {

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

}  // namespace

SlabPool::SlabPool(size_t slot_size, size_t alignment)
    : slot_size_(RoundUp(std::max(slot_size, sizeof(void*)),
                         std::max(alignment, alignof(void*)))),
      first_slot_(RoundUp(sizeof(Slab), std::max(alignment, alignof(Slab)))),
      slots_per_slab_((kSlabBytes - first_slot_) / slot_size_) {
  ABSL_RAW_CHECK(
      alignment != 0 && (alignment & (alignment - 1)) == 0 && alignment <= 64,
      "SlabPool: the alignment must be a power of two up to 64");
  ABSL_RAW_CHECK(slots_per_slab_ >= 64, "SlabPool: slots too large");
}

SlabPool::~SlabPool() {
  absl::MutexLock lock(&mu_);
  ABSL_RAW_CHECK(live_ == 0, "SlabPool destroyed with slots in use");
  // With no slot in use every slab has a free slot, so is in the list.
  while (available_ != nullptr) {
    Slab* slab = available_;
    Unlink(slab);
    UnmapSlab(slab);
  }
}

SlabPool::Slab* SlabPool::MapSlab() {
  // Twice the size, then the unaligned ends are unmapped.
  const size_t span = 2 * kSlabBytes;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = RoundUp(start, kSlabBytes);
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t end = start + span;
  if (end > aligned + kSlabBytes) {
    munmap(reinterpret_cast<void*>(aligned + kSlabBytes),
           end - aligned - kSlabBytes);
  }
  all_mapped_bytes.fetch_add(kSlabBytes, std::memory_order_relaxed);
  return new (reinterpret_cast<void*>(aligned)) Slab();
}

void SlabPool::UnmapSlab(Slab* slab) {
  slab->~Slab();
  munmap(slab, kSlabBytes);
  all_mapped_bytes.fetch_sub(kSlabBytes, std::memory_order_relaxed);
}

void SlabPool::Unlink(Slab* slab) {
  if (slab->prev != nullptr) {
    slab->prev->next = slab->next;
  } else {
    available_ = slab->next;
  }
  if (slab->next != nullptr) slab->next->prev = slab->prev;
  slab->prev = slab->next = nullptr;
  slab->linked = false;
}

void SlabPool::PushFront(Slab* slab) {
  slab->prev = nullptr;
  slab->next = available_;
  if (available_ != nullptr) available_->prev = slab;
  available_ = slab;
  slab->linked = true;
}

void* SlabPool::Allocate() {
  absl::MutexLock lock(&mu_);
  if (available_ == nullptr) {
    PushFront(MapSlab());
    ++slabs_;
  }
  Slab* slab = available_;
  void* slot;
  if (slab->free_list != nullptr) {
    slot = slab->free_list;
    slab->free_list = *static_cast<void**>(slot);
  } else {
    slot = reinterpret_cast<char*>(slab) + first_slot_ +
           slab->untouched * slot_size_;
    ++slab->untouched;
  }
  ++slab->used;
  ++live_;
  if (slab == spare_) spare_ = nullptr;
  if (slab->used == slots_per_slab_) Unlink(slab);
  return slot;
}

void SlabPool::Deallocate(void* slot) {
  Slab* slab = reinterpret_cast<Slab*>(reinterpret_cast<uintptr_t>(slot) &
                                       ~(uintptr_t{kSlabBytes} - 1));
  absl::MutexLock lock(&mu_);
  *static_cast<void**>(slot) = slab->free_list;
  slab->free_list = slot;
  --slab->used;
  --live_;
  if (!slab->linked) PushFront(slab);
  if (slab->used != 0) return;
  if (spare_ == nullptr) {
    spare_ = slab;
    return;
  }
  Unlink(slab);
  UnmapSlab(slab);
  --slabs_;
}

size_t SlabPool::live_slots() const {
  absl::MutexLock lock(&mu_);
  return live_;
}

size_t SlabPool::slabs() const {
  absl::MutexLock lock(&mu_);
  return slabs_;
}

}  // namespace lumo::service
