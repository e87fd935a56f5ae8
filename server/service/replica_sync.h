// Acknowledged revocation across replicas (docs/replication.md).
//
// One ReplicaSync per server process. It
//   - registers the replica in the `replicas` table (lease, heartbeat on the
//     database clock), renews the lease after every successful round and
//     deletes the row on Stop;
//   - tails key_changes with a FeedCursor (never skipping a change whose
//     commit was delayed), evicts every changed key from the Verifier, and
//     publishes the low-water mark it has fully applied as applied_seq;
//   - gates the Verifier's cache: entries are used only until
//     (send time of the last successful heartbeat) + lease - lease_margin on
//     the local monotonic clock, so a replica that cannot reach the database
//     stops answering from its cache before the others consider its lease
//     expired;
//   - implements ChangeBarrier for KeyService: after a Rotate/Revoke/Delete
//     commits, wait until every other live replica's applied_seq covers it.
//
// Thread-safe. Owns one tailer thread.
#ifndef LUMOKEYS_SERVER_SERVICE_REPLICA_SYNC_H_
#define LUMOKEYS_SERVER_SERVICE_REPLICA_SYNC_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
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

namespace lumo::service {

struct ReplicaSyncOptions {
  // Empty: a random id.
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
  // back (FeedCursor); writers whose mutation took gap_timeout / 2 or more
  // re-announce their change.
  absl::Duration gap_timeout = absl::Seconds(1);
  // How often a waiting writer re-reads the replicas table.
  absl::Duration ack_poll_interval = absl::Milliseconds(5);
  // Rows per feed read.
  int batch = 1000;
  // The scope under which this instance's fault-injection points fire
  // (server/fault/fault_points.h); empty: the replica id. Tests only.
  std::string fault_scope;
  // Optional: receives state changes (lease lost / regained, errors).
  std::function<void(absl::string_view level, absl::string_view message)> log;
};

// INVALID_ARGUMENT unless the durations compose into the guarantee
// (docs/replication.md, "Timing").
absl::Status ValidateReplicaSyncOptions(const ReplicaSyncOptions& options);

class ReplicaSync : public ChangeBarrier {
 public:
  // Registers the replica, positions the cursor and starts the tailer. The
  // verifier's cache is untrusted until the first round has renewed the
  // lease. `store` and `verifier` must outlive the ReplicaSync.
  static absl::StatusOr<std::unique_ptr<ReplicaSync>> Start(
      storage::ChangeFeedStore* store, Verifier* verifier,
      ReplicaSyncOptions options);
  ~ReplicaSync() override;

  // Stops the tailer and deletes the replica's row. Idempotent.
  void Stop();

  absl::Status AwaitChange(const ChangeRef& change,
                           absl::Duration mutation_took) override;

  // The bounded wait of AwaitChange: long enough for a healthy replica to
  // acknowledge (gap timeout + rounds) and for a dead one's lease to run
  // out.
  absl::Duration ack_timeout() const;
  const std::string& id() const { return options_.replica_id; }
  int64_t applied() const { return applied_.load(std::memory_order_relaxed); }
  int64_t abandoned() const {
    return abandoned_.load(std::memory_order_relaxed);
  }
  uint64_t reannounced() const {
    return reannounced_.load(std::memory_order_relaxed);
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
  ReplicaSync(storage::ChangeFeedStore* store, Verifier* verifier,
              ReplicaSyncOptions options, int64_t start_after);
  void Loop();
  // One read + apply + (maybe) heartbeat. Returns true when the read was
  // truncated (read again at once).
  bool Round();
  void Log(absl::string_view level, absl::string_view message);

  storage::ChangeFeedStore* const store_;
  Verifier* const verifier_;
  const ReplicaSyncOptions options_;

  // Tailer thread only.
  FeedCursor cursor_;
  int64_t published_ = -1;
  Clock::time_point last_heartbeat_{};
  bool trusted_ = false;
  bool last_round_failed_ = false;

  std::atomic<int64_t> applied_{0};
  std::atomic<int64_t> abandoned_{0};
  std::atomic<uint64_t> reannounced_{0};
  // Clock ticks (since its epoch) when a read reached the feed's end.
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::min();
  std::atomic<int64_t> caught_up_at_{kNever};

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_REPLICA_SYNC_H_
