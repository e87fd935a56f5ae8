// The storage interface of replica coordination (docs/replication.md): the
// key_changes feed every replica tails, and the replicas membership table
// (lease, heartbeat, applied position). Domain logic (server/service)
// depends only on this header; the MySQL backend is
// storage/mysql/mysql_change_feed_store.h.
//
// Error contract (all methods): UNAVAILABLE when the database cannot be
// reached or the pool has no connection in time; DEADLINE_EXCEEDED when a
// statement hit its ceiling; INTERNAL for anything unexpected.
#ifndef LUMOKEYS_SERVER_STORAGE_CHANGE_FEED_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_CHANGE_FEED_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace lumo::storage {

// One key_changes row.
struct KeyChange {
  int64_t seq = 0;
  int64_t tenant_id = 0;
  std::string key_id;
  // created, rotated, revoked, deleted, updated, disabled, enabled; or void:
  // a row that closes a hole of its writer's stream and changes no key
  // (tenant 0, key id "").
  std::string change_type;
  int64_t key_version = 0;
  absl::Time created_at;  // database clock, microseconds
  // The stream the row belongs to (docs/replication.md, "Per-writer
  // streams"): the incarnation of the server process that wrote it and the
  // row's position in that process's stream (1, 2, 3, ...; never reused).
  // Rows of the legacy stream (servers that predate streams) have writer ""
  // and wseq 0.
  std::string writer;
  int64_t wseq = 0;
};

// A position in one writer's stream: every row of `writer` with wseq <=
// `wseq` is meant.
struct StreamPosition {
  std::string writer;
  int64_t wseq = 0;
  friend bool operator==(const StreamPosition& a, const StreamPosition& b) {
    return a.writer == b.writer && a.wseq == b.wseq;
  }
};

// The result of one read of the per-writer streams (one statement: one
// consistent view).
struct StreamRead {
  // Every writer with a row in the membership table (live, or expired and
  // not yet pruned; a writer registers before it writes its first row), in
  // writer order, each with the position the reader last published for it
  // (0 without one).
  std::vector<StreamPosition> published;
  // For each of those writers, up to `limit` rows of its stream above that
  // published position, in (writer, wseq) order.
  std::vector<KeyChange> changes;
  // The longest gap timeout any registered replica runs with.
  absl::Duration max_gap_timeout;
  // The database clock when the read ran.
  absl::Time db_now;
};

// One feed row, identified for good by its seq and creation time. A replica
// remembers the newest row it has seen (its anchor); if that row vanishes
// or is replaced, the feed was rolled back (a restore, a failover that lost
// commits, a TRUNCATE) and seqs at or below the replica's position may be
// reused by new changes. seq 0: before the first row (nothing to check).
struct FeedPosition {
  int64_t seq = 0;
  absl::Time created_at = absl::UnixEpoch();
};

// The result of one feed read (one statement: one consistent view).
struct FeedRead {
  // Up to `limit` committed rows with seq > `after`, in seq order.
  std::vector<KeyChange> changes;
  // False when the anchor row no longer exists as remembered.
  bool anchor_intact = true;
  // The longest gap timeout any registered replica runs with.
  absl::Duration max_gap_timeout;
  // The database clock when the read ran.
  absl::Time db_now;
};

// A replica's row: its id (a label, --replica_id) and the random
// incarnation of the process, so two processes started with one id are two
// rows.
struct ReplicaName {
  std::string id;
  std::string incarnation;
};

// What a replica says about itself in the membership table.
struct ReplicaRegistration {
  ReplicaName name;
  std::string address;
  std::string hostname;
  int64_t pid = 0;
  absl::Duration lease;
  absl::Duration gap_timeout;
  int64_t applied_seq = 0;
  FeedPosition anchor;
  // Whether the replica publishes its positions in the per-writer streams
  // (replicas.feed_streams). Every server of this release does; false
  // stands for a server of a release before streams, whose rows get the
  // column's default 0 (tests simulating a rolling upgrade set it).
  bool feed_streams = true;
};

// What the live replicas other than the writer acknowledged of its stream
// (docs/replication.md, "Rolling upgrade from a release without streams"),
// read in one statement.
struct StreamAcknowledgement {
  // The position in the writer's stream every live replica that publishes
  // stream positions has published (a replica without a position for the
  // stream: 0); INT64_MAX when no such replica is live.
  int64_t through = 0;
  // The lowest applied_seq (with AcknowledgedThrough's anchor rule) among
  // the live replicas that do not publish stream positions (servers of a
  // release before streams); INT64_MAX when none is live.
  int64_t legacy_through = 0;
  // The highest committed seq (0 for an empty feed).
  int64_t head = 0;
};

// Thread-safe: every method may be called concurrently from any thread.
class ChangeFeedStore {
 public:
  virtual ~ChangeFeedStore() = default;

  // Reads the rows after `after`, checks `anchor`, and reads the longest
  // gap timeout and the database clock, in one statement.
  virtual absl::StatusOr<FeedRead> ReadChanges(int64_t after,
                                               const FeedPosition& anchor,
                                               int limit) = 0;

  // The highest committed seq (0 for an empty feed).
  virtual absl::StatusOr<int64_t> Head() = 0;

  // The longest gap timeout any registered replica runs with (zero when
  // none is registered).
  virtual absl::StatusOr<absl::Duration> MaxGapTimeout() = 0;

  // A safe starting point for a new tailer: the newest row created more
  // than `lookback` ago on the database clock (seq 0 if none). Every
  // transaction still uncommitted that allocated its seq less than
  // `lookback` ago has a larger seq.
  virtual absl::StatusOr<FeedPosition> StartingPoint(
      absl::Duration lookback) = 0;

  // Appends a row marked as an announcement (key_changes.announcement = 1)
  // in its own transaction and returns its seq. Used to announce a change
  // again when its own feed row may have been abandoned. With a writer, the
  // row takes the stream position (change.writer, change.wseq):
  // ALREADY_EXISTS when that slot is taken.
  virtual absl::StatusOr<int64_t> Announce(const KeyChange& change) = 0;

  // Per-writer streams (docs/replication.md, "Per-writer streams").

  // Reads, for `reader`, every registered writer's stream above the
  // position the reader published for it; see StreamRead.
  virtual absl::StatusOr<StreamRead> ReadStreams(const ReplicaName& reader,
                                                 int limit) = 0;

  // Publishes the reader's positions (one transaction): for each writer,
  // every row of its stream up to the wseq is applied by the reader (or a
  // hole it abandoned). Positions of writers not named are kept.
  virtual absl::Status PublishPositions(
      const ReplicaName& reader,
      const std::vector<StreamPosition>& positions) = 0;

  // Closes a hole of a stream: writes a void row at `slot` unless the slot
  // is taken (the transaction that drew it committed after all, or a void
  // is there already); OK in both cases.
  virtual absl::Status AppendVoid(const StreamPosition& slot) = 0;

  // What the live replicas other than `self` acknowledged of `writer`'s
  // stream; see StreamAcknowledgement.
  virtual absl::StatusOr<StreamAcknowledgement> AcknowledgeStream(
      const ReplicaName& self, absl::string_view writer) = 0;

  // AcknowledgeStream's `through`: the position in `writer`'s stream every
  // live replica other than `self` that publishes stream positions has
  // published.
  absl::StatusOr<int64_t> StreamAcknowledgedThrough(const ReplicaName& self,
                                                    absl::string_view writer) {
    absl::StatusOr<StreamAcknowledgement> a = AcknowledgeStream(self, writer);
    if (!a.ok()) return a.status();
    return a->through;
  }

  // Inserts (or replaces) this replica's row with heartbeat_at = now
  // (database clock), and deletes rows whose lease ran out more than
  // `prune_after` ago, with the stream positions published by them or about
  // their streams.
  virtual absl::Status Register(const ReplicaRegistration& replica,
                                absl::Duration prune_after) = 0;

  // Renews the lease and publishes `applied_seq` and `anchor`. NOT_FOUND
  // when the row is gone (the caller must register again).
  virtual absl::Status Heartbeat(const ReplicaName& replica,
                                 int64_t applied_seq,
                                 const FeedPosition& anchor) = 0;

  // Deletes the row and the positions it published (clean shutdown).
  virtual absl::Status Deregister(const ReplicaName& replica) = 0;

  // The feed position every live replica other than `self` has applied:
  // the lowest applied_seq among them (heartbeat_at + lease in the future
  // on the database clock), where a replica whose anchor row is gone or
  // replaced counts as having applied nothing (-1). INT64_MAX when no
  // other replica is live.
  virtual absl::StatusOr<int64_t> AcknowledgedThrough(
      const ReplicaName& self) = 0;

  // How many replicas are live (heartbeat_at + lease in the future on the
  // database clock), this one included if it is: the N that shared
  // counters divide limits by (docs/limits.md).
  virtual absl::StatusOr<int64_t> LiveReplicas() = 0;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_CHANGE_FEED_STORE_H_
