// The deadline of the call the current thread is working for, so that a
// storage backend can bound every statement it runs by the caller's
// deadline (docs/reliability.md "Deadlines").
//
// The RPC layer opens a ScopedCallDeadline around the work of each call on
// the thread that does it; backends read CurrentCallDeadline(). Without an
// open scope the deadline is absl::InfiniteFuture() (the backend's own
// ceilings still apply). Thread-compatible: the state is per thread.
#ifndef LUMOKEYS_SERVER_STORAGE_CALL_DEADLINE_H_
#define LUMOKEYS_SERVER_STORAGE_CALL_DEADLINE_H_

#include <algorithm>

#include "absl/time/time.h"

namespace lumo::storage {

namespace internal {
inline absl::Time& ThreadCallDeadline() {
  thread_local absl::Time deadline = absl::InfiniteFuture();
  return deadline;
}
}  // namespace internal

// The innermost open scope's deadline on this thread, or InfiniteFuture.
inline absl::Time CurrentCallDeadline() {
  return internal::ThreadCallDeadline();
}

// Sets this thread's call deadline for its lifetime (restores the previous
// one on destruction). A nested scope can only shorten the deadline.
class ScopedCallDeadline {
 public:
  explicit ScopedCallDeadline(absl::Time deadline)
      : previous_(internal::ThreadCallDeadline()) {
    internal::ThreadCallDeadline() = std::min(previous_, deadline);
  }
  ScopedCallDeadline(const ScopedCallDeadline&) = delete;
  ScopedCallDeadline& operator=(const ScopedCallDeadline&) = delete;
  ~ScopedCallDeadline() { internal::ThreadCallDeadline() = previous_; }

 private:
  const absl::Time previous_;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_CALL_DEADLINE_H_
