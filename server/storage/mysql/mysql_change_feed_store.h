// ChangeFeedStore over MySQL/MariaDB: key_changes and replicas
// (sql/migrations/0001_init.sql, 0006_replicas.sql,
// 0008_replica_incarnations.sql).
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_CHANGE_FEED_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_CHANGE_FEED_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "server/storage/change_feed_store.h"
#include "server/storage/mysql/connection_pool.h"
#include "server/storage/mysql/mysql_options.h"

namespace lumo::storage {

// Thread-safe. Give it a pool of its own (Open does): the tailer's reads
// and heartbeats must not queue behind request traffic or behind writers
// waiting for acknowledgements, or a busy replica would lose its lease.
class MysqlChangeFeedStore : public ChangeFeedStore {
 public:
  // Opens a pool of `pool_size` connections with `options` (the key store's
  // DSN). Does not connect.
  static absl::StatusOr<std::unique_ptr<MysqlChangeFeedStore>> Open(
      MysqlOptions options, int pool_size = 2);
  explicit MysqlChangeFeedStore(std::shared_ptr<ConnectionPool> pool);

  absl::StatusOr<FeedRead> ReadChanges(int64_t after,
                                       const FeedPosition& anchor,
                                       int limit) override;
  absl::StatusOr<int64_t> Head() override;
  absl::StatusOr<absl::Duration> MaxGapTimeout() override;
  absl::StatusOr<FeedPosition> StartingPoint(absl::Duration lookback) override;
  absl::StatusOr<int64_t> Announce(const KeyChange& change) override;
  absl::Status Register(const ReplicaRegistration& replica,
                        absl::Duration prune_after) override;
  absl::Status Heartbeat(const ReplicaName& replica, int64_t applied_seq,
                         const FeedPosition& anchor) override;
  absl::Status Deregister(const ReplicaName& replica) override;
  absl::StatusOr<int64_t> LiveReplicas() override;
  absl::StatusOr<int64_t> AcknowledgedThrough(const ReplicaName& self) override;
  absl::StatusOr<StreamRead> ReadStreams(const ReplicaName& reader,
                                         int limit) override;
  absl::Status PublishPositions(
      const ReplicaName& reader,
      const std::vector<StreamPosition>& positions) override;
  absl::Status AppendVoid(const StreamPosition& slot) override;
  absl::StatusOr<StreamAcknowledgement> AcknowledgeStream(
      const ReplicaName& self, absl::string_view writer) override;

 private:
  std::shared_ptr<ConnectionPool> pool_;
  // Per reader (id and incarnation), the positions it had published when
  // ReadStreams last read for it: the next read's lower bounds (published
  // positions only move up; a read that finds one lower reads again
  // without bounds).
  absl::Mutex hints_mu_;
  absl::flat_hash_map<std::string, std::vector<StreamPosition>> hints_
      ABSL_GUARDED_BY(hints_mu_);
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_CHANGE_FEED_STORE_H_
