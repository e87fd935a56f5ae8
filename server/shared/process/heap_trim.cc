#include "server/shared/process/heap_trim.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <utility>

#include "server/observability/log.h"

namespace lumo::process {

size_t ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;  // NOLINT: the scanf type
  const int read = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (read != 2) return 0;
  return static_cast<size_t>(resident) *
         static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

HeapUse ReadHeapUse() {
  const struct mallinfo2 info = mallinfo2();
  return HeapUse{info.fordblks, info.uordblks + info.hblkhd};
}

void TrimHeap() { malloc_trim(0); }

HeapTrimmer::HeapTrimmer(HeapTrimOptions options, HeapProbe probe)
    : options_(options), probe_(std::move(probe)) {
  if (options_.interval > absl::ZeroDuration()) {
    thread_ = std::thread([this] { Run(); });
  }
}

HeapTrimmer::~HeapTrimmer() { Stop(); }

void HeapTrimmer::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void HeapTrimmer::Run() {
  while (!stop_.WaitForNotificationWithTimeout(options_.interval)) {
    CheckOnce();
  }
}

size_t HeapTrimmer::Idle(HeapUse* use, size_t* resident) const {
  *use = probe_.heap();
  *resident = probe_.resident();
  const size_t accounted = use->in_use_bytes + probe_.outside();
  return *resident > accounted ? *resident - accounted : 0;
}

bool HeapTrimmer::CheckOnce() {
  absl::MutexLock lock(&mu_);
  ++stats_.checks;
  HeapUse use;
  size_t before = 0;
  const size_t idle = Idle(&use, &before);
  if (!low_.has_value() || idle < *low_) low_ = idle;
  const size_t needed =
      follow_up_ ? options_.freed_bytes / 4 : options_.freed_bytes;
  follow_up_ = false;
  if (idle - *low_ < needed) return false;
  const absl::Time start = absl::Now();
  probe_.trim();
  const absl::Duration took = absl::Now() - start;
  // What the trim gave back is no longer counted, and pages used again
  // count again: the next trim waits for as much again.
  HeapUse after_use;
  size_t after = 0;
  low_ = Idle(&after_use, &after);
  ++stats_.trims;
  const size_t released = before > after ? before - after : 0;
  stats_.released_bytes += released;
  follow_up_ = released >= options_.freed_bytes;
  stats_.last_trim_duration = took;
  if (took > stats_.longest_trim_duration) stats_.longest_trim_duration = took;
  log::Line(log::Level::kInfo, "heap trimmed")
      .Int("heap_free_bytes", static_cast<int64_t>(use.free_bytes))
      .Int("idle_bytes", static_cast<int64_t>(idle))
      .Int("resident_before_bytes", static_cast<int64_t>(before))
      .Int("released_bytes", static_cast<int64_t>(released))
      .Int("duration_us", absl::ToInt64Microseconds(took));
  return true;
}

HeapTrimStats HeapTrimmer::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace lumo::process
