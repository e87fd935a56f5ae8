// SlabPool and SlabAllocator (server/service/slab_pool.h): slots are
// distinct, aligned and reused once released; slabs are mapped as slots are
// needed and unmapped (but for one spare) once all their slots are
// released; concurrent allocation and release from several threads lose no
// slot and hand none out twice; objects allocated through SlabAllocator by
// allocate_shared are destroyed and released when their last reference
// goes, on any thread, in any order.
#include "server/service/slab_pool.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace lumo::service {
namespace {

TEST(SlabPoolTest, SlotsAreDistinctAlignedAndWritable) {
  SlabPool pool(200, 8);
  EXPECT_EQ(pool.slot_size(), 200u);
  std::set<uintptr_t> seen;
  std::vector<void*> slots;
  // More than one slab's worth.
  const size_t n = pool.slots_per_slab() + 10;
  for (size_t i = 0; i < n; ++i) {
    void* p = pool.Allocate();
    ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % 8, 0u);
    std::memset(p, static_cast<int>(i & 0xff), pool.slot_size());
    slots.push_back(p);
  }
  for (size_t i = 0; i < n; ++i) {
    const auto* bytes = static_cast<const unsigned char*>(slots[i]);
    // No slot overlaps another: each still holds what was written to it.
    ASSERT_EQ(bytes[0], i & 0xff);
    ASSERT_EQ(bytes[pool.slot_size() - 1], i & 0xff);
    const uintptr_t a = reinterpret_cast<uintptr_t>(slots[i]);
    ASSERT_TRUE(seen.insert(a).second) << "slot handed out twice";
  }
  for (auto it = seen.begin(); std::next(it) != seen.end(); ++it) {
    ASSERT_GE(*std::next(it) - *it, pool.slot_size());
  }
  EXPECT_EQ(pool.live_slots(), n);
  EXPECT_EQ(pool.slabs(), 2u);
  for (void* p : slots) pool.Deallocate(p);
  EXPECT_EQ(pool.live_slots(), 0u);
}

TEST(SlabPoolTest, RoundsSlotsUpToTheAlignment) {
  SlabPool pool(20, 16);
  EXPECT_EQ(pool.slot_size(), 32u);
  void* a = pool.Allocate();
  void* b = pool.Allocate();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 16, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % 16, 0u);
  pool.Deallocate(a);
  pool.Deallocate(b);
}

TEST(SlabPoolTest, ReleasedSlotsAreReusedBeforeNewSlabs) {
  SlabPool pool(200, 8);
  std::vector<void*> slots;
  for (size_t i = 0; i < pool.slots_per_slab(); ++i) {
    slots.push_back(pool.Allocate());
  }
  EXPECT_EQ(pool.slabs(), 1u);
  // Release every other slot; allocating as many again takes exactly those
  // slots and maps no slab.
  std::set<void*> released;
  for (size_t i = 0; i < slots.size(); i += 2) {
    pool.Deallocate(slots[i]);
    released.insert(slots[i]);
  }
  std::set<void*> again;
  for (size_t i = 0; i < released.size(); ++i) again.insert(pool.Allocate());
  EXPECT_EQ(again, released);
  EXPECT_EQ(pool.slabs(), 1u);
  // The slab is full again: the next slot comes from a new one.
  void* extra = pool.Allocate();
  EXPECT_EQ(pool.slabs(), 2u);
  pool.Deallocate(extra);
  for (size_t i = 1; i < slots.size(); i += 2) pool.Deallocate(slots[i]);
  for (void* p : again) pool.Deallocate(p);
  EXPECT_EQ(pool.live_slots(), 0u);
}

TEST(SlabPoolTest, EmptySlabsAreUnmappedButOneSpare) {
  // Other pools of the process (SlabAllocator's) may hold slabs already.
  const size_t mapped_before = SlabPool::MappedBytesOfAllPools();
  auto pool_holder = std::make_unique<SlabPool>(200, 8);
  SlabPool& pool = *pool_holder;
  const size_t per = pool.slots_per_slab();
  std::vector<void*> slots;
  for (size_t i = 0; i < 4 * per; ++i) slots.push_back(pool.Allocate());
  EXPECT_EQ(pool.slabs(), 4u);
  EXPECT_EQ(SlabPool::MappedBytesOfAllPools(),
            mapped_before + 4 * SlabPool::kSlabBytes);
  // Released in a shuffled order: slabs empty in no particular order.
  std::mt19937 rng(7);
  std::shuffle(slots.begin(), slots.end(), rng);
  for (void* p : slots) pool.Deallocate(p);
  EXPECT_EQ(pool.live_slots(), 0u);
  EXPECT_EQ(pool.slabs(), 1u);  // the spare
  // Oscillating around a slab boundary maps nothing more.
  for (int round = 0; round < 3; ++round) {
    void* p = pool.Allocate();
    EXPECT_EQ(pool.slabs(), 1u);
    pool.Deallocate(p);
    EXPECT_EQ(pool.slabs(), 1u);
  }
  EXPECT_EQ(SlabPool::MappedBytesOfAllPools(),
            mapped_before + SlabPool::kSlabBytes);
  pool_holder.reset();  // unmaps the spare
  EXPECT_EQ(SlabPool::MappedBytesOfAllPools(), mapped_before);
}

TEST(SlabPoolTest, ConcurrentAllocateAndReleaseFromSeveralThreads) {
  SlabPool pool(64, 8);
  constexpr int kThreads = 4;
  constexpr int kRounds = 20'000;
  // Slots move between threads: each thread releases what the previous one
  // published, so slots are released on another thread than their own.
  std::vector<std::atomic<void*>> handoff(kThreads);
  for (auto& h : handoff) h.store(nullptr);
  std::atomic<int> corrupted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<void*> mine;
      std::mt19937 rng(t);
      for (int i = 0; i < kRounds; ++i) {
        void* p = pool.Allocate();
        // Stamp the slot with its owner; a slot handed out twice at once
        // would be overwritten by the other owner.
        std::memset(p, t + 1, pool.slot_size());
        mine.push_back(p);
        if (rng() % 3 == 0) {
          std::swap(mine[rng() % mine.size()], mine.back());
          void* q = mine.back();
          mine.pop_back();
          const auto* b = static_cast<const unsigned char*>(q);
          for (size_t k = 0; k < pool.slot_size(); ++k) {
            if (b[k] != t + 1) {
              corrupted.fetch_add(1);
              break;
            }
          }
          // Hand it to the next thread, releasing what was there.
          if (void* old = handoff[(t + 1) % kThreads].exchange(q)) {
            pool.Deallocate(old);
          }
        }
        if (mine.size() > 500) {
          for (void* m : mine) {
            const auto* b = static_cast<const unsigned char*>(m);
            if (b[0] != t + 1 || b[pool.slot_size() - 1] != t + 1) {
              corrupted.fetch_add(1);
            }
            pool.Deallocate(m);
          }
          mine.clear();
        }
      }
      for (void* m : mine) pool.Deallocate(m);
    });
  }
  for (std::thread& th : threads) th.join();
  for (auto& h : handoff) {
    if (void* p = h.exchange(nullptr)) pool.Deallocate(p);
  }
  EXPECT_EQ(corrupted.load(), 0);
  EXPECT_EQ(pool.live_slots(), 0u);
  EXPECT_EQ(pool.slabs(), 1u);
}

// Counts its live instances; large enough to be a realistic cache entry.
struct Probe {
  static std::atomic<int> alive;
  explicit Probe(int v) : value(v) { alive.fetch_add(1); }
  ~Probe() { alive.fetch_sub(1); }
  int value;
  char payload[180] = {};
};
std::atomic<int> Probe::alive{0};

TEST(SlabAllocatorTest, SharedObjectsDieWithTheirLastReferenceOnAnyThread) {
  std::vector<std::shared_ptr<const Probe>> objects;
  for (int i = 0; i < 1000; ++i) {
    objects.push_back(std::allocate_shared<Probe>(SlabAllocator<Probe>(), i));
  }
  EXPECT_EQ(Probe::alive.load(), 1000);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(objects[i]->value, i);
  // A weak reference keeps the control block (the slot) but not the object.
  std::weak_ptr<const Probe> weak = objects[0];
  // Half the references are dropped on other threads, the rest here, in
  // reverse order.
  std::vector<std::shared_ptr<const Probe>> moved(objects.begin(),
                                                  objects.begin() + 500);
  objects.erase(objects.begin(), objects.begin() + 500);
  std::thread a(
      [v = std::vector<std::shared_ptr<const Probe>>(
           moved.begin(), moved.begin() + 250)]() mutable { v.clear(); });
  std::thread b(
      [v = std::vector<std::shared_ptr<const Probe>>(
           moved.begin() + 250, moved.end())]() mutable { v.clear(); });
  moved.clear();
  a.join();
  b.join();
  EXPECT_EQ(Probe::alive.load(), 500);
  EXPECT_TRUE(weak.expired());
  while (!objects.empty()) objects.pop_back();
  EXPECT_EQ(Probe::alive.load(), 0);
  // The pool serves new objects after all were released.
  auto again = std::allocate_shared<Probe>(SlabAllocator<Probe>(), 7);
  EXPECT_EQ(again->value, 7);
  EXPECT_EQ(Probe::alive.load(), 1);
}

}  // namespace
}  // namespace lumo::service
