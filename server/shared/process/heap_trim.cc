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

size_t HeapFreeBytes() { return mallinfo2().fordblks; }

void TrimHeap() { malloc_trim(0); }

HeapTrimmer::HeapTrimmer(HeapTrimOptions options,
                         std::function<size_t()> free_bytes,
                         std::function<size_t()> resident,
                         std::function<void()> trim)
    : options_(options),
      free_bytes_(std::move(free_bytes)),
      resident_(std::move(resident)),
      trim_(std::move(trim)) {
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

bool HeapTrimmer::CheckOnce() {
  absl::MutexLock lock(&mu_);
  ++stats_.checks;
  const size_t free = free_bytes_();
  if (!low_.has_value() || free < *low_) low_ = free;
  const size_t needed =
      follow_up_ ? options_.freed_bytes / 4 : options_.freed_bytes;
  follow_up_ = false;
  if (free - *low_ < needed) return false;
  const size_t before = resident_();
  const absl::Time start = absl::Now();
  trim_();
  const absl::Duration took = absl::Now() - start;
  const size_t after = resident_();
  // Trimmed pages stay free chunks: the next trim waits for as much again
  // to be freed.
  low_ = free_bytes_();
  ++stats_.trims;
  const size_t released = before > after ? before - after : 0;
  stats_.released_bytes += released;
  follow_up_ = released >= options_.freed_bytes;
  stats_.last_trim_duration = took;
  if (took > stats_.longest_trim_duration) stats_.longest_trim_duration = took;
  log::Line(log::Level::kInfo, "heap trimmed")
      .Int("heap_free_bytes", static_cast<int64_t>(free))
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
