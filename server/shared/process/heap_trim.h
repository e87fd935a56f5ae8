// Gives the free heap that a burst of allocations left behind back to the
// system (docs/operations.md "Heap trimming", docs/benchmarks.md "Cache
// entry size").
//
// glibc's malloc returns freed memory to the system only from the top of
// each arena; memory freed below a chunk still in use stays resident. After
// a burst (a warm-up of the verifier's cache: a store read, gRPC buffers
// and an audit event per cold verification, on many threads and so in many
// arenas; an audit backlog while the database is slow) the heap keeps its
// peak. malloc_trim(0) hands the whole free pages inside the arenas back
// (madvise) and keeps the chunks; a page given back and used again costs
// one page fault.
//
// A HeapTrimmer estimates, every `interval`, how much of the process's
// resident memory is free heap: the resident size (/proc/self/statm) less
// what malloc has handed out (mallinfo2: uordblks in its arenas, hblkhd in
// chunks of their own mappings) less what the process holds resident
// outside malloc and accounts for itself (`outside`: memory pools with
// mappings of their own, such as the verify cache's slabs). The estimate
// also holds a steady rest (code, stacks), so what counts is how far it
// rose: when it rose by at least `freed_bytes` above its lowest reading
// since the previous trim, the trimmer trims. That is memory a burst took
// and freed, whether the pages it freed were fresh or pages an earlier
// trim had given back and the burst used again (malloc's free-byte count
// cannot tell those apart). Growth in use moves the resident size and
// what malloc handed out alike, and does not trim.
//
// A trim that gave back at least `freed_bytes` may have come in the middle
// of the burst's freeing (an audit backlog drains for a while): the next
// check trims again when a quarter of `freed_bytes` rose since. A process
// whose memory is steady never trims, and one trims at most once per
// interval. Reading mallinfo2 walks each arena's free chunks under that
// arena's lock (milliseconds for tens of thousands of free chunks,
// measured in docs/operations.md "Heap trimming"). A trim
// locks each arena in turn while it walks the arena's free chunks and
// gives their whole pages back: allocations of other threads in that arena
// wait for it (tens of milliseconds for a hundred megabytes of free heap,
// measured in docs/benchmarks.md); it runs on the trimmer's own thread,
// never on a request's.
//
// Thread-safe: CheckOnce, Stop and stats may be called from any thread.
#ifndef LUMOKEYS_SERVER_SHARED_PROCESS_HEAP_TRIM_H_
#define LUMOKEYS_SERVER_SHARED_PROCESS_HEAP_TRIM_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace lumo::process {

struct HeapTrimOptions {
  // How often the heap's free bytes are read; zero: never (no thread).
  absl::Duration interval = absl::Seconds(30);
  // How far the estimated free resident heap must rise above its lowest
  // reading since the last trim to call for one.
  size_t freed_bytes = size_t{32} << 20;
};

struct HeapTrimStats {
  uint64_t checks = 0;
  uint64_t trims = 0;
  // Resident bytes before minus after, summed over the trims (0 for a trim
  // that released nothing; other threads may allocate meanwhile, so this is
  // what the process's size showed, not an exact count).
  uint64_t released_bytes = 0;
  absl::Duration last_trim_duration = absl::ZeroDuration();
  absl::Duration longest_trim_duration = absl::ZeroDuration();
};

// What malloc holds (mallinfo2).
struct HeapUse {
  size_t free_bytes = 0;    // free chunks in the arenas (fordblks)
  size_t in_use_bytes = 0;  // handed out: uordblks + hblkhd
};

// The process's resident size in bytes (/proc/self/statm), 0 when unknown.
size_t ResidentBytes();
// mallinfo2 of every arena.
HeapUse ReadHeapUse();
// malloc_trim(0).
void TrimHeap();

// What a HeapTrimmer reads and does: the process's own unless a test
// passes its own.
struct HeapProbe {
  std::function<HeapUse()> heap = ReadHeapUse;
  std::function<size_t()> resident = ResidentBytes;
  // Resident bytes outside malloc that the process accounts for itself.
  std::function<size_t()> outside = [] { return size_t{0}; };
  std::function<void()> trim = TrimHeap;
};

class HeapTrimmer {
 public:
  // Starts the checking thread when options.interval is positive.
  explicit HeapTrimmer(HeapTrimOptions options, HeapProbe probe = HeapProbe());
  // Stops the thread (Stop).
  ~HeapTrimmer();
  HeapTrimmer(const HeapTrimmer&) = delete;
  HeapTrimmer& operator=(const HeapTrimmer&) = delete;

  // One check, as the thread runs it every interval: trims when the
  // estimated free resident heap rose by freed_bytes above its low since
  // the last trim (a quarter of that right after a trim that gave back
  // freed_bytes). True
  // when it trimmed. Logs each trim (info: released bytes, duration).
  bool CheckOnce();
  // Stops and joins the thread; idempotent.
  void Stop();

  HeapTrimStats stats() const;

 private:
  void Run();
  // The estimate of the free resident heap (plus a steady rest), with the
  // malloc figures it came from.
  size_t Idle(HeapUse* use, size_t* resident) const;

  const HeapTrimOptions options_;
  const HeapProbe probe_;
  mutable absl::Mutex mu_;
  // The lowest estimate read since the last trim (none before the first
  // check).
  std::optional<size_t> low_ ABSL_GUARDED_BY(mu_);
  // The last check trimmed and gave back at least freed_bytes: this check
  // needs only a quarter of them.
  bool follow_up_ ABSL_GUARDED_BY(mu_) = false;
  HeapTrimStats stats_ ABSL_GUARDED_BY(mu_);
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace lumo::process

#endif  // LUMOKEYS_SERVER_SHARED_PROCESS_HEAP_TRIM_H_
