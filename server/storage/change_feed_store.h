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
  std::string change_type;  // created, rotated, revoked, deleted
  int64_t key_version = 0;
};

// What a replica says about itself in the membership table.
struct ReplicaRegistration {
  std::string id;
  std::string address;
  std::string hostname;
  int64_t pid = 0;
  absl::Duration lease;
  int64_t applied_seq = 0;
};

// Thread-safe: every method may be called concurrently from any thread.
class ChangeFeedStore {
 public:
  virtual ~ChangeFeedStore() = default;

  // Up to `limit` committed rows with seq > `after`, in seq order (one
  // statement: one consistent view of what was committed when it ran).
  virtual absl::StatusOr<std::vector<KeyChange>> ReadChanges(int64_t after,
                                                             int limit) = 0;

  // The highest committed seq (0 for an empty feed).
  virtual absl::StatusOr<int64_t> Head() = 0;

  // A safe starting point for a new tailer: the seq of the newest row
  // created more than `lookback` ago on the database clock (0 if none).
  // Every transaction still uncommitted that allocated its seq less than
  // `lookback` ago has a larger seq.
  virtual absl::StatusOr<int64_t> StartingPoint(absl::Duration lookback) = 0;

  // Appends a row in its own transaction and returns its seq. Used to
  // re-announce a change whose own commit took so long that tailers may
  // have abandoned its seq.
  virtual absl::StatusOr<int64_t> Announce(const KeyChange& change) = 0;

  // Inserts (or replaces) this replica's row with heartbeat_at = now
  // (database clock), and deletes rows whose lease ran out more than
  // `prune_after` ago.
  virtual absl::Status Register(const ReplicaRegistration& replica,
                                absl::Duration prune_after) = 0;

  // Renews the lease and publishes `applied_seq`. NOT_FOUND when the row is
  // gone (the caller must register again).
  virtual absl::Status Heartbeat(absl::string_view replica_id,
                                 int64_t applied_seq) = 0;

  // Deletes the row (clean shutdown).
  virtual absl::Status Deregister(absl::string_view replica_id) = 0;

  // How many replicas other than `self_id` are live (heartbeat_at + lease
  // in the future on the database clock) and have applied_seq < `seq`.
  virtual absl::StatusOr<int64_t> CountUnacknowledged(absl::string_view self_id,
                                                      int64_t seq) = 0;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_CHANGE_FEED_STORE_H_
