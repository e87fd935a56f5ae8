// Sliding-window rate limits counted across replicas (docs/limits.md
// "Cluster-wide counting"). Each counter's tokens are leased in batches
// from the shared CounterStore and spent in memory; Take never touches the
// store. A counter with neither a lease token nor overdraft left answers
// kNeedLease: the caller (on a worker thread) calls Renew and takes again.
// Renewals ahead of need are handed to `schedule`; returns of unspent
// tokens whose slot ended are queued when a Take or Renew finds them, and
// one FlushReturns at a time is handed to `schedule` to send them.
//
// Per counter and replica, what is admitted is bounded three ways: by the
// replica's own SlotWindow (never more than `limit` in a window on one
// replica), by the lease (tokens the database granted) and by the
// overdraft (at most floor(overdraft_fraction * limit / N) per window,
// reported to the database as debt with the next lease). While the store
// is unreachable, a counter admits up to ceil(limit / N) per window on
// this replica (its fair share), and once a second answers kNeedLease so
// that the caller tries a lease itself.
//
// Slots are judged on the database clock: local time plus the offset
// measured at the last lease reply.
//
// Thread-safe.
#ifndef LUMOKEYS_SERVER_SERVICE_CLUSTER_WINDOWS_H_
#define LUMOKEYS_SERVER_SERVICE_CLUSTER_WINDOWS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/service/slot_window.h"
#include "server/storage/counter_store.h"

namespace lumo::service {

struct ClusterWindowsOptions {
  // The share of a limit all replicas together may admit beyond it while
  // leases renew (ε); each replica gets floor(fraction * limit / N).
  double overdraft_fraction = 0.05;
  // The largest lease asked for.
  int64_t max_lease = 1000;
  // The local clock.
  std::function<absl::Time()> now = [] { return absl::Now(); };
  // The number of live replicas (at least 1 is used).
  std::function<int()> replicas = [] { return 1; };
  // Runs a renewal off the hot path (a worker pool in the server).
  std::function<void(std::function<void()>)> schedule =
      [](std::function<void()> f) { f(); };
};

// One named limit of one subject: `limit` per `duration` on `counter`
// (storage/counter_store.h key).
struct WindowLimit {
  std::string counter;
  std::string name;
  int64_t limit = 0;
  absl::Duration duration;
};

// What a caller is told about one limit (docs/limits.md "What callers
// see"): as this replica knows it.
struct LimitState {
  std::string name;
  int64_t limit = 0;
  int64_t remaining = 0;
  absl::Time reset;
};

struct TakeOutcome {
  enum class Result { kAdmitted, kRefused, kNeedLease };
  Result result = Result::kRefused;
  // Admitted: the tightest limit after the take (least remaining, then
  // latest reset). Refused: the refusing limit with the latest retry time.
  LimitState reported;
  // Refused: when every refusing limit admits again (local clock).
  absl::Time retry_at;
  // kNeedLease: the limits to Renew before taking again.
  std::vector<size_t> need_lease;
};

class ClusterWindows {
 public:
  ClusterWindows(storage::CounterStore* store, ClusterWindowsOptions options);
  // Tasks handed to `schedule` must have run (or been dropped) before.
  ~ClusterWindows();

  // In memory: admits when every limit has a token, taking one from each;
  // otherwise takes none.
  TakeOutcome Take(absl::Span<const WindowLimit> limits);

  // One lease for `limit` from the store (with any debt). On a store
  // failure the counter enters outage mode (fair share) and the status is
  // returned. While a lease for the same counter is in flight on this
  // replica, waits for its reply instead (OK once it is applied).
  absl::Status Renew(const WindowLimit& limit) ABSL_LOCKS_EXCLUDED(mu_);

  // Sends the queued returns of unspent tokens (slots that ended), and
  // with `all` the unspent tokens of every current lease too (shutdown).
  // Returns that fail are dropped (they stay counted: the safe side).
  void FlushReturns(bool all = false);

  // Store calls made (leases and returns), for the statement figure.
  int64_t store_calls() const;

  // Counters held in memory (idle ones are forgotten: see Take).
  size_t counters_held() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Counter;
  struct PendingReturn {
    std::string counter;
    int64_t slot;
    int64_t amount;
  };

  // Sends `returns` (taken from returns_ under the lock, and counted in
  // store_calls_ there) to the store, outside the lock. Failures are dropped
  // (FlushReturns).
  void SendReturns(const std::vector<PendingReturn>& returns)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Renew; `queued`: a renewal ahead of need that Take scheduled, skipped
  // when a caller renewed meanwhile.
  absl::Status RenewCounter(const WindowLimit& limit, bool queued)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Applies a lease reply (or failure) to the counter.
  absl::Status RenewReply(const WindowLimit& limit, int64_t debt,
                          const absl::StatusOr<storage::WindowLease>& lease,
                          absl::Time local_now, bool& flush)
      ABSL_LOCKS_EXCLUDED(mu_);
  Counter& CounterFor(const WindowLimit& limit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time DbNow() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True (once) when returns are queued and no flush is scheduled.
  bool FlushDue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleFlush();
  int Replicas() const;
  // Queues the return of an ended lease's unspent tokens.
  void ExpireLease(Counter& c, absl::Time db_now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  LimitState StateOf(const Counter& c, absl::Time db_now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets every idle counter (Idle); returns of ended leases are
  // queued first.
  void SweepIdle(absl::Time db_now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  storage::CounterStore* const store_;
  const ClusterWindowsOptions options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Counter>> counters_
      ABSL_GUARDED_BY(mu_);
  std::vector<PendingReturn> returns_ ABSL_GUARDED_BY(mu_);
  bool flush_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time flush_scheduled_at_ ABSL_GUARDED_BY(mu_);
  absl::Duration db_offset_ ABSL_GUARDED_BY(mu_);
  int64_t store_calls_ ABSL_GUARDED_BY(mu_) = 0;
  // The map size at which Take sweeps idle counters next.
  size_t sweep_at_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_CLUSTER_WINDOWS_H_
