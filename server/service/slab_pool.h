// Fixed-size slots for long-lived objects, carved from slabs mapped from the
// operating system apart from malloc's heap (docs/benchmarks.md "Cache entry
// size").
//
// Why: the verifier's cache entries live for hours and are created on the
// cold path among many short-lived allocations (the store read's result set
// and strings, gRPC buffers, the audit event), on several threads and so in
// several malloc arenas. Taken from malloc, each entry pins the chunks
// around it, and the transient memory freed between entries stays resident
// in holes too small to reuse. From a SlabPool the entries sit together in
// their own slabs, without a malloc header or size-class rounding, and the
// heap keeps only transient memory, which it can reuse and give back.
//
// A slab is `kSlabBytes` of anonymous memory aligned to its size (a slot
// finds its slab by masking its address). Its slots are handed out from a
// free list of released slots first, then from the untouched rest of the
// slab, so pages are touched only as slots are first used. A slab whose
// slots are all released is unmapped, except one kept as a spare so that a
// pool oscillating around a slab boundary does not map and unmap each time.
//
// Thread-safe: Allocate and Deallocate may be called from any thread, a slot
// released on another thread than the one that took it; one mutex per pool
// (the verifier takes a slot once per cold verification, never on the warm
// path). Destroying a pool unmaps every slab: every slot must have been
// released before. SlabAllocator's pools are never destroyed, so objects
// allocated through it may be released at any time, static destruction
// included.
#ifndef LUMOKEYS_SERVER_SERVICE_SLAB_POOL_H_
#define LUMOKEYS_SERVER_SERVICE_SLAB_POOL_H_

#include <cstddef>
#include <cstdint>
#include <new>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace lumo::service {

class SlabPool {
 public:
  // Every slab is this large and aligned to it.
  static constexpr size_t kSlabBytes = size_t{1} << 20;

  // Slots of `slot_size` bytes (rounded up to `alignment`), aligned to
  // `alignment` (a power of two, at most 64). `slot_size` must leave room
  // for at least 64 slots in a slab.
  SlabPool(size_t slot_size, size_t alignment);
  ~SlabPool();
  SlabPool(const SlabPool&) = delete;
  SlabPool& operator=(const SlabPool&) = delete;

  // One slot of slot_size() bytes, uninitialized. Throws std::bad_alloc
  // when no slab can be mapped.
  void* Allocate();
  // Releases a slot that Allocate of this pool returned.
  void Deallocate(void* slot);

  size_t slot_size() const { return slot_size_; }
  // Slots per slab.
  size_t slots_per_slab() const { return slots_per_slab_; }
  // Observability and tests: slots handed out and not released, and slabs
  // mapped (the spare included).
  size_t live_slots() const;
  size_t slabs() const;
  // The bytes of every pool's slabs in the process, mapped now: memory
  // outside malloc's heap (the heap trimmer's HeapProbe::outside).
  // Thread-safe.
  static size_t MappedBytesOfAllPools();

 private:
  struct Slab;
  // Unlinks `slab` from the list of slabs with a free slot.
  void Unlink(Slab* slab) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushFront(Slab* slab) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Slab* MapSlab();
  static void UnmapSlab(Slab* slab);

  const size_t slot_size_;
  // Offset of the first slot from the start of a slab (after its header).
  const size_t first_slot_;
  const size_t slots_per_slab_;
  mutable absl::Mutex mu_;
  // The slabs with at least one free slot (released or untouched), most
  // recently released first.
  Slab* available_ ABSL_GUARDED_BY(mu_) = nullptr;
  // The one slab kept mapped while all its slots are free (also in
  // `available_`), or null.
  Slab* spare_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t live_ ABSL_GUARDED_BY(mu_) = 0;
  size_t slabs_ ABSL_GUARDED_BY(mu_) = 0;
};

// A stateless allocator of single objects of T from one SlabPool per type
// T, shared by the process and never destroyed (objects may be released
// after main returns). Meant for std::allocate_shared, which allocates one
// control block holding the object: the pool's slot is exactly that block;
// an object that counts its own references (intrusive_ptr.h) is placed in a
// slot of Pool() itself. Arrays (n != 1) come from operator new.
template <typename T>
class SlabAllocator {
 public:
  using value_type = T;

  SlabAllocator() = default;
  template <typename U>
  SlabAllocator(const SlabAllocator<U>&) {}  // NOLINT: rebinding

  T* allocate(size_t n) {
    if (n != 1) return static_cast<T*>(::operator new(n * sizeof(T)));
    return static_cast<T*>(Pool().Allocate());
  }
  void deallocate(T* p, size_t n) {
    if (n != 1) {
      ::operator delete(p);
      return;
    }
    Pool().Deallocate(p);
  }

  // The process's pool of T.
  static SlabPool& Pool() {
    static SlabPool* const pool = new SlabPool(sizeof(T), alignof(T));
    return *pool;
  }

  template <typename U>
  bool operator==(const SlabAllocator<U>&) const {
    return true;
  }
  template <typename U>
  bool operator!=(const SlabAllocator<U>&) const {
    return false;
  }
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_SLAB_POOL_H_
