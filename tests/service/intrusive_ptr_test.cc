// IntrusivePtr (server/service/intrusive_ptr.h): copies take a reference,
// moves hand theirs over, assignment drops the old one, and the object is
// destroyed exactly once, by its last reference, whichever thread drops it.
#include "server/service/intrusive_ptr.h"

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace lumo::service {
namespace {

// Counts its references and its destructions.
struct Counted {
  explicit Counted(std::atomic<int>* destroyed) : destroyed(destroyed) {}
  void Ref() const { refs.fetch_add(1, std::memory_order_relaxed); }
  void Unref() const {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  ~Counted() { destroyed->fetch_add(1); }
  mutable std::atomic<int> refs{0};
  std::atomic<int>* destroyed;
};

TEST(IntrusivePtrTest, CopiesCountAndTheLastOneDestroys) {
  std::atomic<int> destroyed{0};
  auto* raw = new Counted(&destroyed);
  {
    IntrusivePtr<const Counted> a(raw);
    EXPECT_EQ(raw->refs.load(), 1);
    {
      IntrusivePtr<const Counted> b = a;
      IntrusivePtr<const Counted> c(b);
      EXPECT_EQ(raw->refs.load(), 3);
      EXPECT_EQ(b.get(), raw);
    }
    EXPECT_EQ(raw->refs.load(), 1);
    EXPECT_EQ(destroyed.load(), 0);
  }
  EXPECT_EQ(destroyed.load(), 1);
}

TEST(IntrusivePtrTest, MovesHandTheReferenceOver) {
  std::atomic<int> destroyed{0};
  auto* raw = new Counted(&destroyed);
  IntrusivePtr<Counted> a(raw);
  IntrusivePtr<Counted> b = std::move(a);
  EXPECT_EQ(a, nullptr);  // NOLINT: a moved-from pointer is null
  EXPECT_EQ(raw->refs.load(), 1);
  IntrusivePtr<Counted> c;
  c = std::move(b);
  EXPECT_EQ(raw->refs.load(), 1);
  EXPECT_TRUE(static_cast<bool>(c));
  c = nullptr;
  EXPECT_EQ(destroyed.load(), 1);
}

TEST(IntrusivePtrTest, AssignmentDropsTheOldObject) {
  std::atomic<int> destroyed{0};
  IntrusivePtr<Counted> a(new Counted(&destroyed));
  auto* second = new Counted(&destroyed);
  IntrusivePtr<Counted> b(second);
  a = b;
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_EQ(second->refs.load(), 2);
  a = a;  // NOLINT: self-assignment keeps the object
  EXPECT_EQ(second->refs.load(), 2);
  EXPECT_EQ(destroyed.load(), 1);
}

TEST(IntrusivePtrTest, NullIsNeverTouched) {
  IntrusivePtr<Counted> a;
  IntrusivePtr<Counted> b(static_cast<Counted*>(nullptr));
  IntrusivePtr<Counted> c = a;
  EXPECT_EQ(a, nullptr);
  EXPECT_EQ(b, nullptr);
  EXPECT_FALSE(static_cast<bool>(c));
}

TEST(IntrusivePtrTest, ThreadsDroppingCopiesDestroyOnce) {
  for (int round = 0; round < 200; ++round) {
    std::atomic<int> destroyed{0};
    std::vector<std::thread> threads;
    {
      IntrusivePtr<const Counted> shared(new Counted(&destroyed));
      for (int t = 0; t < 4; ++t) {
        // Each thread copies its own and drops the copies; the object
        // must survive until the last one.
        threads.emplace_back([copy = shared, &destroyed] {
          for (int i = 0; i < 1000; ++i) {
            IntrusivePtr<const Counted> again = copy;
            ASSERT_EQ(destroyed.load(), 0);
          }
        });
      }
    }
    for (std::thread& t : threads) t.join();
    ASSERT_EQ(destroyed.load(), 1) << "round " << round;
  }
}

}  // namespace
}  // namespace lumo::service
