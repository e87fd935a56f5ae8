// The wake-on-commit signal of the webhook outbox (docs/webhooks.md
// "Delivery"): a backend raises it after a transaction of this process
// that wrote webhook deliveries has committed, so this process's delivery
// worker claims them at once instead of at its next poll. Deliveries
// committed by other processes are not signalled here; the worker's poll
// finds those.
//
// Thread-safe. Raise may run on any committing thread, concurrently with
// other Raises; Listen waits for Raises in progress, so after
// Listen(nullptr) returns the previous listener is never called again.
#ifndef LUMOKEYS_SERVER_STORAGE_OUTBOX_SIGNAL_H_
#define LUMOKEYS_SERVER_STORAGE_OUTBOX_SIGNAL_H_

#include <functional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace lumo::storage {

class OutboxSignal {
 public:
  // Replaces the listener (nullptr: none). The listener runs on the
  // committing thread, after the commit, and must return quickly.
  void Listen(std::function<void()> listener) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::WriterMutexLock lock(&mu_);
    listener_ = std::move(listener);
  }

  // Tells the listener, if any, that deliveries were committed.
  void Raise() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::ReaderMutexLock lock(&mu_);
    if (listener_) listener_();
  }

 private:
  mutable absl::Mutex mu_;
  std::function<void()> listener_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_OUTBOX_SIGNAL_H_
