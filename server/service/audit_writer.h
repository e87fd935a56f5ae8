// The batched audit writer (docs/audit.md): a bounded
// in-memory queue of usage and authentication events, drained by one
// flusher thread into AuditStore::AppendEvents in batches.
//
// Never silent: an event that finds the queue full is dropped and counted
// per tenant; the flusher then writes one `audit.dropped` event per tenant
// with the count (the counts live outside the queue, so they cannot be
// dropped themselves). Batches that fail to write are retried with backoff
// while the writer runs; what is still unwritten when Stop() gives up is
// counted in lost().
//
// Summaries (docs/audit.md "Verification summaries"): events enqueued with
// EnqueueSummarized under the same summary key within `summary_window` of
// the first become one event, the first one, whose metadata gains
// `"count": N` (the number of events it stands for), as do its usage
// count (docs/usage.md) and its previous-secret use when it has them. A summary
// is queued when its window ends, and at Flush() and Stop(); it is written like
// any other event. With a zero window every such event is queued at once with
// count 1.
//
// Thread-safety: every method may be called from any thread. Enqueue never
// blocks on I/O (one mutex, a deque push). Shutdown order: stop every
// producer (gRPC server, worker pool) first, then Stop() (or destroy),
// which writes everything queued before returning; the store must outlive
// the writer.
#ifndef LUMOKEYS_SERVER_SERVICE_AUDIT_WRITER_H_
#define LUMOKEYS_SERVER_SERVICE_AUDIT_WRITER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/observability/metrics.h"
#include "server/service/packed_audit_event.h"
#include "server/storage/audit_store.h"

namespace lumo::service {

struct AuditWriterOptions {
  // Events held in memory at most; beyond, events are dropped and counted.
  size_t max_queue = 100'000;
  // A batch is written when this many events are queued, or when the oldest
  // has waited flush_interval.
  size_t max_batch = 500;
  absl::Duration flush_interval = absl::Milliseconds(100);
  // How long events enqueued with EnqueueSummarized are folded into the
  // first of their key before the summary is queued; zero: not folded.
  absl::Duration summary_window = absl::Seconds(1);
  // Open summaries held at most; beyond, a new key's event is queued on its
  // own (count 1), so memory stays bounded under many distinct keys.
  size_t max_summaries = 100'000;
  // How long Stop() keeps retrying a failing store before giving up.
  absl::Duration stop_timeout = absl::Seconds(10);
  // When set, the duration of every batch write (retries included) in
  // seconds. Borrowed; must outlive the writer.
  metrics::Histogram* flush_duration = nullptr;
};

struct AuditWriterStats {
  uint64_t enqueued = 0;
  uint64_t written = 0;     // events committed (audit.dropped ones included)
  uint64_t dropped = 0;     // refused by a full queue (recorded as counts)
  uint64_t batches = 0;     // successful AppendEvents calls
  uint64_t failures = 0;    // failed AppendEvents calls (retried)
  uint64_t lost = 0;        // given up at Stop() after failures
  uint64_t queued = 0;      // events waiting in memory now (queue depth)
  uint64_t summarized = 0;  // events folded into an earlier one's summary
  uint64_t open_summaries = 0;  // summaries not yet queued
};

class AuditWriter {
 public:
  // Starts the flusher thread. `store` is borrowed.
  AuditWriter(storage::AuditStore* store, AuditWriterOptions options);
  ~AuditWriter();  // Stop()
  AuditWriter(const AuditWriter&) = delete;
  AuditWriter& operator=(const AuditWriter&) = delete;

  // Queues a copy of `event` (packed: packed_audit_event.h); false (and
  // counted as dropped for its tenant) when the queue is full or the writer
  // is stopped.
  bool Enqueue(const storage::PendingAuditEvent& event);

  // Counts an event into the open summary for `summary_key` (see the class
  // comment); the event's `metadata_json` must be a JSON object. The first
  // event of a key opens the summary and is the one written. False (and
  // counted as dropped) when the writer is stopped, or when the summary has
  // to be queued on its own and the queue is full.
  // `make_event` builds the event only when one is needed (a new summary or
  // one queued on its own), never while the writer's lock is held: folding
  // into an open summary costs a lookup and an increment.
  bool EnqueueSummarized(
      absl::string_view summary_key,
      absl::FunctionRef<storage::PendingAuditEvent()> make_event);

  // Blocks until every event enqueued before the call has been written or
  // the flusher gave up on it (tests, and Stop()).
  void Flush();

  // Writes everything queued, then joins the flusher. Idempotent.
  void Stop();

  AuditWriterStats stats() const;

 private:
  void Loop();
  // Queues the summaries whose window ended by `now` (all of them when
  // `all`), with their counts set (PackedAuditEvent::set_count).
  void ReleaseSummaries(absl::Time now, bool all)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues one event that stands for `stands_for` events; false (and that
  // many counted as dropped) when the queue is full.
  bool PushLocked(PackedAuditEvent event, uint64_t stands_for)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the next batch: returns the dropped-count events, which come
  // first, and moves the queue's events of the batch to `from_queue`, to
  // be unpacked after mu_ is released.
  std::vector<storage::PendingAuditEvent> TakeBatch(
      std::vector<PackedAuditEvent>* from_queue)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `batch`, retrying failures with backoff; false when it gave up
  // (only while stopping, after stop_timeout).
  bool Write(const std::vector<storage::PendingAuditEvent>& batch);

  storage::AuditStore* const store_;
  const AuditWriterOptions options_;

  mutable absl::Mutex mu_;
  // The events waiting, packed: a full queue's memory is most of the
  // writer's (docs/audit.md "Queue memory").
  std::deque<PackedAuditEvent> queue_ ABSL_GUARDED_BY(mu_);
  struct Summary {
    PackedAuditEvent event;  // PackedAuditEvent::Summary
    int64_t count = 0;
    absl::Time window_end;
  };
  absl::flat_hash_map<std::string, Summary> summaries_ ABSL_GUARDED_BY(mu_);
  // Keys of summaries_ in the order they were opened, which is the order
  // their windows end (one window length for all).
  std::deque<std::string> summary_order_ ABSL_GUARDED_BY(mu_);
  // Dropped events not yet recorded, by tenant id (0 for unresolved slugs).
  std::map<int64_t, uint64_t> dropped_by_tenant_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Sequence numbers for Flush(): events ever enqueued / finished.
  uint64_t enqueued_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t finished_ ABSL_GUARDED_BY(mu_) = 0;
  // Flush() callers waiting, and whether a batch is being written.
  int flush_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;
  // Set at the first failure after Stop(): when writing gives up.
  std::optional<absl::Time> give_up_at_ ABSL_GUARDED_BY(mu_);
  AuditWriterStats stats_ ABSL_GUARDED_BY(mu_);
  std::thread flusher_;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_AUDIT_WRITER_H_
