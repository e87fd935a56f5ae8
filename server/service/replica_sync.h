// Acknowledged revocation across replicas (docs/replication.md).
//
// One ReplicaSync per server process. It
//   - registers the replica in the `replicas` table under its id and a
//     random incarnation (lease, heartbeat on the database clock, its gap
//     timeout), renews the lease after every successful round and deletes
//     the row on Stop;
//   - tails key_changes with a FeedCursor (never skipping a change whose
//     commit was delayed; gaps are abandoned only after the longest gap
//     timeout any replica runs with), evicts every changed key from the
//     Verifier, and publishes the low-water mark it has fully applied
//     (applied_seq) with the newest row it has seen (its anchor): the
//     legacy stream, ordered by seq;
//   - reads every registered writer's stream with one FeedCursor per
//     stream, evicts the keys of its rows (voids change nothing) and
//     publishes its position in each stream (feed_positions) before the
//     heartbeat ("Per-writer streams" in docs/replication.md);
//   - with a stream writer (options.stream_writer), names that key store
//     the writer of this replica's stream (its incarnation), so this
//     process's mutations wait only for their own stream;
//   - detects a feed that was rolled back (its anchor row vanished or was
//     replaced) and then drops the whole cache and re-reads the feed from a
//     safe starting point;
//   - gates the Verifier's cache: entries are used only until
//     (send time of the last successful heartbeat) + lease - lease_margin on
//     the local monotonic clock, so a replica that cannot reach the database
//     stops answering from its cache before the others consider its lease
//     expired. A heartbeat that returns after that bound renews trust only
//     after dropping the whole cache (writers may have stopped waiting for
//     this replica meanwhile). So does a round that finds the database
//     clock advanced further than the local one (the process or its VM was
//     suspended);
//   - implements ChangeBarrier for KeyService: after a Rotate/Revoke/Delete
//     (or a restricting edit) commits, wait until every other live replica
//     has applied it: its published position in this process's stream
//     covers the stream's head (with a stream writer; a replica of a release
//     before streams instead by its applied_seq covering the feed's head),
//     else its applied_seq covers the feed's head. One poller thread per
//     process reads the acknowledgements for every waiting writer.
//
// Thread-safe. Owns the tailer thread and the acknowledgement poller.
#ifndef LUMOKEYS_SERVER_SERVICE_REPLICA_SYNC_H_
#define LUMOKEYS_SERVER_SERVICE_REPLICA_SYNC_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/service/change_barrier.h"
#include "server/service/feed_cursor.h"
#include "server/service/verifier.h"
#include "server/storage/change_feed_store.h"
#include "server/storage/key_store.h"

namespace lumo::service {

struct ReplicaSyncOptions {
  // Empty: a random id. A label: two processes with the same id are two
  // replicas (each has its own incarnation).
  std::string replica_id;
  // For operators (SELECT * FROM replicas): where this replica serves.
  std::string address;
  std::string hostname;
  int64_t pid = 0;
  // Other replicas stop waiting for this one `lease` after its last
  // heartbeat (database clock); it stops trusting its cache
  // `lease - lease_margin` after sending that heartbeat (local clock).
  absl::Duration lease = absl::Seconds(3);
  absl::Duration lease_margin = absl::Milliseconds(600);
  // Idle pause between feed reads.
  absl::Duration poll_interval = absl::Milliseconds(20);
  // Longest pause between heartbeats when nothing changes (a heartbeat is
  // also sent as soon as the applied position moves).
  absl::Duration heartbeat_interval = absl::Milliseconds(250);
  // How long a missing seq is waited for before it is abandoned as rolled
  // back (FeedCursor; the longest value of all registered replicas
  // applies); writers whose mutation or announcement took gap_timeout / 2
  // or more announce their change again.
  absl::Duration gap_timeout = absl::Seconds(1);
  // How often the acknowledgement poller re-reads the replicas table while
  // writers wait.
  absl::Duration ack_poll_interval = absl::Milliseconds(5);
  // Rows per feed read.
  int batch = 1000;
  // The scope under which this instance's fault-injection points fire
  // (server/fault/fault_points.h); empty: the replica id. Tests only.
  std::string fault_scope;
  // The key store this process's mutations go through. Set: Start names
  // it the writer of this replica's stream and writers wait for their own
  // stream (what a Galera cluster needs); null: the legacy stream only.
  // Must outlive the ReplicaSync.
  storage::KeyStore* stream_writer = nullptr;
  // Optional: receives state changes (lease lost / regained, errors).
  std::function<void(absl::string_view level, absl::string_view message)> log;
};

// INVALID_ARGUMENT unless the durations compose into the guarantee
// (docs/replication.md, "Timing").
absl::Status ValidateReplicaSyncOptions(const ReplicaSyncOptions& options);

class ReplicaSync : public ChangeBarrier {
 public:
  // Registers the replica, positions the cursor and starts the tailer and
  // the acknowledgement poller. The verifier's cache is untrusted until the
  // first round has renewed the lease. `store` serves the tailer and its
  // heartbeats; `ack_store` (null: `store`) serves the writers (feed head,
  // announcements, the acknowledgement poll): give the two separate pools
  // so that waiting writers can never delay the heartbeat. The stores and
  // the verifier must outlive the ReplicaSync.
  static absl::StatusOr<std::unique_ptr<ReplicaSync>> Start(
      storage::ChangeFeedStore* store, Verifier* verifier,
      ReplicaSyncOptions options,
      storage::ChangeFeedStore* ack_store = nullptr);
  ~ReplicaSync() override;

  // Stops the threads and deletes the replica's row. Idempotent. Writers
  // still waiting get UNAVAILABLE.
  void Stop();

  // Bounded by ack_timeout() and by the caller's deadline
  // (storage::CurrentCallDeadline): DEADLINE_EXCEEDED when that came first.
  absl::Status AwaitChange(const ChangeRef& change,
                           absl::Duration mutation_took) override;
  // Announces them all, then waits once for the last announcement.
  absl::Status AwaitAnnouncements(
      const std::vector<ChangeRef>& changes) override;

  // The bounded wait of AwaitChange: long enough for a healthy replica to
  // acknowledge (the longest gap timeout of any replica + rounds) and for a
  // dead one's lease to run out.
  absl::Duration ack_timeout() const;
  const std::string& id() const { return options_.replica_id; }
  const std::string& incarnation() const { return name_.incarnation; }
  int64_t applied() const { return applied_.load(std::memory_order_relaxed); }
  // The live replicas (this one included) as last counted, at most once a
  // second after a successful heartbeat; at least 1. The N of the shared
  // counters (docs/limits.md).
  int live_replicas() const {
    return live_replicas_.load(std::memory_order_relaxed);
  }
  int64_t abandoned() const {
    return abandoned_.load(std::memory_order_relaxed);
  }
  // Positions of the per-writer streams given up after the gap timeout
  // (a writer that died before closing a hole of its stream; 0 on a
  // healthy cluster).
  int64_t stream_abandoned() const {
    return stream_abandoned_.load(std::memory_order_relaxed);
  }
  uint64_t reannounced() const {
    return reannounced_.load(std::memory_order_relaxed);
  }
  // Times the whole cache was dropped because the replica could not prove
  // it was current (lapsed lease, rolled-back feed, clock jump).
  uint64_t cache_resets() const {
    return cache_resets_.load(std::memory_order_relaxed);
  }
  // How long ago this replica last read the feed to its end (every change
  // committed before that read and not held back by a gap is applied): an
  // upper bound on how far its view trails the feed. Infinite before the
  // first complete read. For the lag metric (docs/operations.md).
  absl::Duration FeedLag() const {
    const int64_t at = caught_up_at_.load(std::memory_order_relaxed);
    if (at == kNever) return absl::InfiniteDuration();
    return absl::FromChrono(Clock::now().time_since_epoch() -
                            Clock::duration(at));
  }

 private:
  using Clock = std::chrono::steady_clock;
  ReplicaSync(storage::ChangeFeedStore* store,
              storage::ChangeFeedStore* ack_store, Verifier* verifier,
              ReplicaSyncOptions options, storage::ReplicaName name,
              storage::FeedPosition start);
  void Loop();
  // One read + apply + (maybe) heartbeat. Returns true when the feed must
  // be read again at once (a truncated read, a repositioning).
  bool Round();
  // Sends the heartbeat and renews cache trust; false when it failed.
  bool Heartbeat();
  // Drops every cache entry and stops trusting the cache until the next
  // heartbeat.
  void ResetCache(absl::string_view why);
  storage::ReplicaRegistration Registration() const;
  void Log(absl::string_view level, absl::string_view message);

  // Reads the per-writer streams and applies their new rows; false when the
  // read failed. `truncated`: some stream returned a full batch.
  bool StreamRound(bool* truncated);
  // Publishes the stream positions that moved; false when that failed.
  bool PublishStreamPositions();
  bool streams() const { return options_.stream_writer != nullptr; }

  // Writers' side: publishes the change again until one announcement
  // committed within half the gap timeout; the position to wait for (its
  // wseq in this process's stream, or its seq in the legacy stream), or
  // the failure.
  absl::StatusOr<int64_t> Announce(const ChangeRef& change,
                                   absl::Time deadline);
  absl::Status WaitAcknowledged(int64_t target, absl::Time deadline,
                                absl::Time call_deadline);
  void PollLoop();

  storage::ChangeFeedStore* const store_;
  storage::ChangeFeedStore* const ack_store_;
  Verifier* const verifier_;
  const ReplicaSyncOptions options_;
  const storage::ReplicaName name_;

  // Tailer thread only.
  // One writer's stream as this reader sees it.
  struct Stream {
    FeedCursor cursor;
    int64_t published = 0;  // as last read back from feed_positions
  };
  std::map<std::string, Stream> streams_;
  // Positions abandoned by cursors of streams since forgotten.
  int64_t forgotten_abandoned_ = 0;
  FeedCursor cursor_;
  storage::FeedPosition anchor_;  // the newest row seen
  int64_t published_ = -1;
  Clock::time_point last_heartbeat_{};
  // The bound last given to the verifier (epoch: not trusted).
  Clock::time_point trusted_until_{};
  bool trusted_ = false;
  bool last_round_failed_ = false;
  // The previous successful read: when it started (local) and the
  // database clock it returned.
  std::optional<std::pair<Clock::time_point, absl::Time>> previous_read_;

  std::atomic<int64_t> applied_{0};
  std::atomic<int> live_replicas_{1};
  Clock::time_point live_counted_at_{};
  std::atomic<int64_t> abandoned_{0};
  std::atomic<int64_t> stream_abandoned_{0};
  std::atomic<uint64_t> reannounced_{0};
  std::atomic<uint64_t> cache_resets_{0};
  // The longest gap timeout of any registered replica, as last read.
  std::atomic<int64_t> longest_gap_us_{0};
  // Clock ticks (since its epoch) when a read reached the feed's end.
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::min();
  std::atomic<int64_t> caught_up_at_{kNever};

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;

  // The acknowledgement poller and its waiters.
  absl::Mutex ack_mu_;
  bool ack_stop_ ABSL_GUARDED_BY(ack_mu_) = false;
  int waiters_ ABSL_GUARDED_BY(ack_mu_) = 0;
  // A waiter arrived since the last poll started: poll without pausing.
  bool waiter_arrived_ ABSL_GUARDED_BY(ack_mu_) = false;
  // Polls are numbered; a waiter uses only polls that started after it
  // registered (their query ran after its change committed).
  uint64_t polls_started_ ABSL_GUARDED_BY(ack_mu_) = 0;
  uint64_t last_poll_ ABSL_GUARDED_BY(ack_mu_) = 0;
  // The result of poll `last_poll_` (kNotAcknowledged when it failed).
  int64_t acknowledged_through_ ABSL_GUARDED_BY(ack_mu_) = kNotAcknowledged;
  // Of the last successful poll, with a stream writer: the lowest
  // applied_seq of live replicas of a release before streams (INT64_MAX:
  // none), and the feed head it read. Without one: INT64_MAX and 0.
  int64_t legacy_through_ ABSL_GUARDED_BY(ack_mu_) = 0;
  int64_t poll_head_ ABSL_GUARDED_BY(ack_mu_) = 0;
  static constexpr int64_t kNotAcknowledged =
      std::numeric_limits<int64_t>::min();
  std::thread poller_;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_REPLICA_SYNC_H_
