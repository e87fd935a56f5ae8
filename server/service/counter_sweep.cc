#include "server/service/counter_sweep.h"

#include <utility>

#include "absl/status/statusor.h"

namespace lumo::service {

CounterSweep::CounterSweep(storage::CounterStore* store,
                           CounterSweepOptions options)
    : store_(store), options_(std::move(options)) {}

int64_t CounterSweep::MaybeRun(absl::Time now) {
  if (now - last_run_ < options_.every) return 0;
  last_run_ = now;
  int64_t deleted = 0;
  for (int i = 0; i < options_.max_batches; ++i) {
    absl::StatusOr<int64_t> n = store_->SweepStale(
        options_.bucket_idle, options_.known_ttl, options_.batch);
    if (!n.ok()) break;
    deleted += *n;
    // Fewer than a batch of either kind: nothing stale is left.
    if (*n < options_.batch) break;
  }
  return deleted;
}

}  // namespace lumo::service
