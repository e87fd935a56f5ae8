// HeapTrimmer (server/shared/process/heap_trim.h): trims only when the
// heap's free bytes rose by the threshold above their low since the last
// trim, at most once per check, never for growth in use, and counts what it
// released; the real trim gives the free pages of a fragmented heap back;
// the thread checks every interval and stops.
#include "server/shared/process/heap_trim.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace lumo::process {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

// Free heap bytes and a resident size the test sets, and a trim that lowers
// the resident size to `floor` (the free bytes stay: trimmed pages remain
// free chunks).
struct FakeProcess {
  std::atomic<size_t> free{10 * kMiB};
  std::atomic<size_t> resident{100 * kMiB};
  std::atomic<size_t> floor{100 * kMiB};
  std::atomic<int> trims{0};

  std::function<size_t()> Free() {
    return [this] { return free.load(); };
  }
  std::function<size_t()> Resident() {
    return [this] { return resident.load(); };
  }
  std::function<void()> Trim() {
    return [this] {
      trims.fetch_add(1);
      resident.store(floor.load());
    };
  }
};

HeapTrimOptions Manual(size_t freed) {
  HeapTrimOptions options;
  options.interval = absl::ZeroDuration();  // no thread: CheckOnce only
  options.freed_bytes = freed;
  return options;
}

TEST(HeapTrimmerTest, TrimsOnlyWhenTheFreeHeapRoseByTheThreshold) {
  FakeProcess p;
  HeapTrimmer trimmer(Manual(32 * kMiB), p.Free(), p.Resident(), p.Trim());
  EXPECT_FALSE(trimmer.CheckOnce());  // low 10 MiB
  // A burst: the heap grows while in use (free stays low), then frees.
  p.free = 4 * kMiB;  // low 4 MiB
  p.resident = 300 * kMiB;
  EXPECT_FALSE(trimmer.CheckOnce());
  p.free = 35 * kMiB;  // 31 MiB above the low
  EXPECT_FALSE(trimmer.CheckOnce());
  EXPECT_EQ(p.trims.load(), 0);
  p.free = 36 * kMiB;
  p.floor = 250 * kMiB;
  EXPECT_TRUE(trimmer.CheckOnce());
  EXPECT_EQ(p.trims.load(), 1);
  HeapTrimStats s = trimmer.stats();
  EXPECT_EQ(s.checks, 4u);
  EXPECT_EQ(s.trims, 1u);
  EXPECT_EQ(s.released_bytes, 50 * kMiB);
  // The free bytes after the trim are the new low: a steady heap does not
  // trim again, nor one that reuses its free memory and frees it again.
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(trimmer.CheckOnce());
  p.free = 20 * kMiB;
  EXPECT_FALSE(trimmer.CheckOnce());
  p.free = 36 * kMiB;
  EXPECT_FALSE(trimmer.CheckOnce());
  // As much again freed above the new low (20 MiB) trims again.
  p.free = 52 * kMiB;
  p.floor = 250 * kMiB;  // nothing to give back
  EXPECT_TRUE(trimmer.CheckOnce());
  s = trimmer.stats();
  EXPECT_EQ(s.trims, 2u);
  EXPECT_EQ(s.released_bytes, 50 * kMiB);
  EXPECT_EQ(p.trims.load(), 2);
}

// A trim that gave back a burst's worth may have come while the burst was
// still freeing: the next check trims for a quarter of the threshold, and
// only the next one.
TEST(HeapTrimmerTest, ABigTrimIsFollowedUpForTheRestOfTheBurst) {
  FakeProcess p;
  HeapTrimmer trimmer(Manual(32 * kMiB), p.Free(), p.Resident(), p.Trim());
  EXPECT_FALSE(trimmer.CheckOnce());  // low 10 MiB
  p.resident = 300 * kMiB;
  p.free = 50 * kMiB;
  p.floor = 250 * kMiB;
  EXPECT_TRUE(trimmer.CheckOnce());  // gives back 50 MiB; low 50 MiB
  p.resident = 270 * kMiB;
  p.free = 58 * kMiB;  // 8 MiB more freed since: a quarter of 32 MiB
  EXPECT_TRUE(trimmer.CheckOnce());
  EXPECT_EQ(trimmer.stats().released_bytes, 70 * kMiB);
  // That trim gave back 20 MiB, less than the threshold: no follow-up.
  p.resident = 270 * kMiB;
  p.free = 70 * kMiB;  // 12 MiB above the low
  EXPECT_FALSE(trimmer.CheckOnce());
  EXPECT_EQ(p.trims.load(), 2);
}

// The follow-up is for the check right after the big trim only; a rise that
// comes later needs the whole threshold again.
TEST(HeapTrimmerTest, TheFollowUpLastsOneCheck) {
  FakeProcess p;
  HeapTrimmer trimmer(Manual(32 * kMiB), p.Free(), p.Resident(), p.Trim());
  EXPECT_FALSE(trimmer.CheckOnce());
  p.resident = 300 * kMiB;
  p.free = 50 * kMiB;
  EXPECT_TRUE(trimmer.CheckOnce());  // gives back 200 MiB
  EXPECT_FALSE(trimmer.CheckOnce());  // nothing more freed
  p.free = 60 * kMiB;
  EXPECT_FALSE(trimmer.CheckOnce());
  EXPECT_EQ(p.trims.load(), 1);
}

TEST(HeapTrimmerTest, GrowthInUseDoesNotTrim) {
  FakeProcess p;
  HeapTrimmer trimmer(Manual(32 * kMiB), p.Free(), p.Resident(), p.Trim());
  // The resident size grows by a gigabyte while the free heap stays small.
  for (int i = 0; i < 10; ++i) {
    p.resident = p.resident + 100 * kMiB;
    p.free = (i % 2 == 0 ? 8 : 2) * kMiB;
    EXPECT_FALSE(trimmer.CheckOnce());
  }
  EXPECT_EQ(p.trims.load(), 0);
}

TEST(HeapTrimmerTest, TheThreadChecksEveryIntervalAndStops) {
  FakeProcess p;
  HeapTrimOptions options;
  options.interval = absl::Milliseconds(5);
  options.freed_bytes = 1 * kMiB;
  HeapTrimmer trimmer(options, p.Free(), p.Resident(), p.Trim());
  // Waits for the first check (the baseline), then grows.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (trimmer.stats().checks == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_GT(trimmer.stats().checks, 0u);
  p.floor = 100 * kMiB;
  p.resident = 200 * kMiB;
  p.free = 50 * kMiB;
  while (p.trims.load() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(p.trims.load(), 1);
  trimmer.Stop();
  const uint64_t checks = trimmer.stats().checks;
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_EQ(trimmer.stats().checks, checks);
  trimmer.Stop();  // idempotent
}

TEST(HeapTrimmerTest, ZeroIntervalStartsNoThread) {
  FakeProcess p;
  HeapTrimOptions options;
  options.interval = absl::ZeroDuration();
  HeapTrimmer trimmer(options, p.Free(), p.Resident(), p.Trim());
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(trimmer.stats().checks, 0u);
}

// The real functions: a heap fragmented by a burst (small blocks, most of
// them freed, every 64th kept) keeps its free pages resident until the
// trim gives them back. A free run gives back only the whole pages inside
// it, so how many depends on where the runs start within a page (the
// heap's earlier allocations): runs of 63 blocks (~32 KB, 7.9 pages) give
// back 6 or 7 pages each wherever they start (154 or 179 MB here). (Runs
// of ~15 KB gave back 3 or 2 pages each, 154 MB or 102 MB, with the
// layout that the test binary's other tests left.)
TEST(HeapTrimmerTest, TheRealTrimGivesFreePagesBack) {
  constexpr size_t kBlocks = 400'000;
  constexpr size_t kBlock = 500;
  std::vector<char*> blocks(kBlocks);
  for (size_t i = 0; i < kBlocks; ++i) {
    blocks[i] = new char[kBlock];
    std::memset(blocks[i], 1, kBlock);
  }
  for (size_t i = 0; i < kBlocks; ++i) {
    if (i % 64 != 0) {
      delete[] blocks[i];
      blocks[i] = nullptr;
    }
  }
  const size_t before = ResidentBytes();
  ASSERT_GT(before, 0u);
  // ~190 MB were allocated and ~187 MB freed in runs of 63 blocks (~32 KB).
  EXPECT_GT(HeapFreeBytes(), 150 * kMiB);
  HeapTrimmer trimmer(Manual(0), HeapFreeBytes, ResidentBytes, TrimHeap);
  EXPECT_TRUE(trimmer.CheckOnce());  // 0 >= 0 freed above the low: trims
  const size_t after = ResidentBytes();
  // Most of the freed pages go back.
  EXPECT_LT(after + 100 * kMiB, before)
      << "before " << before << " after " << after;
  EXPECT_GE(trimmer.stats().released_bytes, 100 * kMiB);
  for (char* b : blocks) delete[] b;
}

}  // namespace
}  // namespace lumo::process
