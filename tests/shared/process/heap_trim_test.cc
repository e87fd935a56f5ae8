// HeapTrimmer (server/shared/process/heap_trim.h): trims only when the
// free resident heap (resident size less what malloc handed out less what
// is resident outside malloc) rose by the threshold above its low since the
// last trim, at most once per check, also when a burst reused pages an
// earlier trim gave back, never for growth in use or outside malloc,
// follows a big trim up once, and counts what it released; the real trim
// gives the free pages of a fragmented heap back; the thread checks every
// interval and stops.
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

// A process the test sets: what malloc has handed out, what is resident
// outside malloc (slabs), the resident size, and a trim that lowers the
// resident size to `floor`. Free resident heap, as the trimmer estimates
// it: resident - in_use - outside.
struct FakeProcess {
  std::atomic<size_t> in_use{90 * kMiB};
  std::atomic<size_t> outside{0};
  std::atomic<size_t> resident{100 * kMiB};
  std::atomic<size_t> floor{100 * kMiB};
  std::atomic<int> trims{0};

  HeapProbe Probe() {
    HeapProbe probe;
    probe.heap = [this] {
      // The free-chunk count is only logged; constant here, as it is when
      // a burst reuses free chunks and frees them again.
      return HeapUse{5 * kMiB, in_use.load()};
    };
    probe.resident = [this] { return resident.load(); };
    probe.outside = [this] { return outside.load(); };
    probe.trim = [this] {
      trims.fetch_add(1);
      resident.store(floor.load());
    };
    return probe;
  }
};

HeapTrimOptions Manual(size_t freed) {
  HeapTrimOptions options;
  options.interval = absl::ZeroDuration();  // no thread: CheckOnce only
  options.freed_bytes = freed;
  return options;
}

TEST(HeapTrimmerTest, TrimsOnlyWhenTheFreeResidentHeapRoseByTheThreshold) {
  FakeProcess p;
  HeapTrimmer trimmer(Manual(32 * kMiB), p.Probe());
  EXPECT_FALSE(trimmer.CheckOnce());  // 10 MiB idle: the low
  // A burst: the heap grows while in use, then frees.
  p.resident = 300 * kMiB;
  p.in_use = 296 * kMiB;  // 4 MiB idle: the low
  EXPECT_FALSE(trimmer.CheckOnce());
  p.in_use = 265 * kMiB;  // 35 MiB idle, 31 MiB above the low
  EXPECT_FALSE(trimmer.CheckOnce());
  EXPECT_EQ(p.trims.load(), 0);
  p.in_use = 264 * kMiB;
  p.floor = 250 * kMiB;
  EXPECT_TRUE(trimmer.CheckOnce());
  EXPECT_EQ(p.trims.load(), 1);
  HeapTrimStats s = trimmer.stats();
  EXPECT_EQ(s.checks, 4u);
  EXPECT_EQ(s.trims, 1u);
  EXPECT_EQ(s.released_bytes, 50 * kMiB);
  // The estimate after the trim is the new low: a steady process does not
  // trim again.
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(trimmer.CheckOnce());
  EXPECT_EQ(p.trims.load(), 1);
}

// A burst that takes free pages an earlier trim gave back and frees them
// again leaves malloc's free-chunk count where it was; the resident size
// shows it, and it trims.
TEST(HeapTrimmerTest, PagesUsedAgainAndFreedTrimAgain) {
  FakeProcess p;
  HeapTrimmer trimmer(Manual(32 * kMiB), p.Probe());
  EXPECT_FALSE(trimmer.CheckOnce());  // 10 MiB idle: the low
  // A first burst, freed: 60 MiB idle, trimmed back to 10.
  p.resident = 150 * kMiB;
  EXPECT_TRUE(trimmer.CheckOnce());
  EXPECT_FALSE(trimmer.CheckOnce());
  // A second burst takes the pages that trim gave back ...
  p.in_use = 130 * kMiB;
  p.resident = 140 * kMiB;
  EXPECT_FALSE(trimmer.CheckOnce());
  // ... and frees them: malloc's free-chunk count is what it was after the
  // first trim, the resident size is 40 MiB above.
  p.in_use = 90 * kMiB;
  EXPECT_TRUE(trimmer.CheckOnce());
  EXPECT_EQ(p.trims.load(), 2);
  EXPECT_EQ(trimmer.stats().released_bytes, 90 * kMiB);
}

TEST(HeapTrimmerTest, GrowthInUseDoesNotTrim) {
  FakeProcess p;
  HeapTrimmer trimmer(Manual(32 * kMiB), p.Probe());
  // The resident size grows by a gigabyte, all of it handed out.
  for (int i = 0; i < 10; ++i) {
    p.resident = p.resident + 100 * kMiB;
    p.in_use = p.in_use + (i % 2 == 0 ? 94 : 106) * kMiB;
    EXPECT_FALSE(trimmer.CheckOnce());
  }
  EXPECT_EQ(p.trims.load(), 0);
}

// Memory the process holds outside malloc (the verify cache's slabs) grows
// the resident size without being free heap.
TEST(HeapTrimmerTest, GrowthOutsideMallocDoesNotTrim) {
  FakeProcess p;
  HeapTrimmer trimmer(Manual(32 * kMiB), p.Probe());
  EXPECT_FALSE(trimmer.CheckOnce());
  for (int i = 0; i < 10; ++i) {
    p.resident = p.resident + 100 * kMiB;
    p.outside = p.outside + 100 * kMiB;
    EXPECT_FALSE(trimmer.CheckOnce());
  }
  EXPECT_EQ(p.trims.load(), 0);
  // The same growth without the slabs accounted for would have trimmed.
  HeapProbe blind = p.Probe();
  blind.outside = [] { return size_t{0}; };
  HeapTrimmer unaware(Manual(32 * kMiB), blind);
  p.resident = 100 * kMiB;
  EXPECT_FALSE(unaware.CheckOnce());
  p.resident = 200 * kMiB;
  EXPECT_TRUE(unaware.CheckOnce());
}

// A trim that gave back a burst's worth may have come while the burst was
// still freeing: the next check trims for a quarter of the threshold, and
// only the next one.
TEST(HeapTrimmerTest, ABigTrimIsFollowedUpForTheRestOfTheBurst) {
  FakeProcess p;
  HeapTrimmer trimmer(Manual(32 * kMiB), p.Probe());
  EXPECT_FALSE(trimmer.CheckOnce());  // 10 MiB idle: the low
  p.resident = 300 * kMiB;
  p.in_use = 250 * kMiB;
  p.floor = 250 * kMiB;
  EXPECT_TRUE(trimmer.CheckOnce());  // gives back 50 MiB; low 0
  p.in_use = 242 * kMiB;             // 8 MiB more freed: a quarter of 32 MiB
  p.floor = 240 * kMiB;
  EXPECT_TRUE(trimmer.CheckOnce());
  EXPECT_EQ(trimmer.stats().released_bytes, 60 * kMiB);
  // That trim gave back 10 MiB, less than the threshold: no follow-up.
  p.in_use = 228 * kMiB;  // 12 MiB idle, above the low of 0
  EXPECT_FALSE(trimmer.CheckOnce());
  EXPECT_EQ(p.trims.load(), 2);
}

// The follow-up is for the check right after the big trim only; a rise that
// comes later needs the whole threshold again.
TEST(HeapTrimmerTest, TheFollowUpLastsOneCheck) {
  FakeProcess p;
  HeapTrimmer trimmer(Manual(32 * kMiB), p.Probe());
  EXPECT_FALSE(trimmer.CheckOnce());
  p.resident = 300 * kMiB;
  EXPECT_TRUE(trimmer.CheckOnce());   // 210 MiB idle; gives back 200 MiB
  EXPECT_FALSE(trimmer.CheckOnce());  // nothing more freed
  p.in_use = 80 * kMiB;               // 20 MiB idle: 10 MiB above the low
  EXPECT_FALSE(trimmer.CheckOnce());
  EXPECT_EQ(p.trims.load(), 1);
}

TEST(HeapTrimmerTest, TheThreadChecksEveryIntervalAndStops) {
  FakeProcess p;
  HeapTrimOptions options;
  options.interval = absl::Milliseconds(5);
  options.freed_bytes = 1 * kMiB;
  HeapTrimmer trimmer(options, p.Probe());
  // Waits for the first check (the baseline), then frees.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (trimmer.stats().checks == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_GT(trimmer.stats().checks, 0u);
  p.floor = 100 * kMiB;
  p.resident = 200 * kMiB;
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
  HeapTrimmer trimmer(options, p.Probe());
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
  EXPECT_GT(ReadHeapUse().free_bytes, 150 * kMiB);
  HeapTrimmer trimmer(Manual(0), HeapProbe());
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
