// The periodic clean-up of the shared counters' stale rows (docs/limits.md
// "Memory"): token buckets untouched for `bucket_idle` (full again by
// then, like a missing row), known networks of portal accounts past
// their lifetime, window slots no window counts any more and the window
// heads of counters left without slots (CounterStore::SweepStale), in
// bounded batches. Every replica runs it; two replicas
// deleting the same stale rows is harmless.
//
// Thread-compatible: one thread calls MaybeRun.
#ifndef LUMOKEYS_SERVER_SERVICE_COUNTER_SWEEP_H_
#define LUMOKEYS_SERVER_SERVICE_COUNTER_SWEEP_H_

#include <cstdint>

#include "absl/time/time.h"
#include "server/storage/counter_store.h"

namespace lumo::service {

struct CounterSweepOptions {
  // A bucket row untouched this long is deleted. Every bucket the server
  // keeps refills within it: the failure throttles in burst / per-minute
  // minutes, the login throttles in one failure window, the exhaustion
  // reports in a day.
  absl::Duration bucket_idle = absl::Hours(48);
  // Known networks whose last login is older are deleted (the login
  // throttle's known-network lifetime).
  absl::Duration known_ttl = absl::Hours(24 * 30);
  // Rows of each kind per statement, and statements per run at most.
  int64_t batch = 1000;
  int max_batches = 10;
  // A run at most this often.
  absl::Duration every = absl::Minutes(5);
};

class CounterSweep {
 public:
  // `store` must outlive the sweep.
  CounterSweep(storage::CounterStore* store, CounterSweepOptions options);

  // Runs when `every` has passed since the last run (the first call
  // runs): statements of `batch` rows until one deletes fewer than
  // `batch` or `max_batches` ran. Returns the rows deleted (0 when it did
  // not run; a failed statement ends the run).
  int64_t MaybeRun(absl::Time now);

 private:
  storage::CounterStore* const store_;
  const CounterSweepOptions options_;
  absl::Time last_run_ = absl::InfinitePast();
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_COUNTER_SWEEP_H_
