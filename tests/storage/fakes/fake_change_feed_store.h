// An in-memory ChangeFeedStore (server/storage/change_feed_store.h) over a
// FakeDatabase, held to the contract by the change feed conformance suite.
// The key store fake appends the feed rows of its mutations to the same
// database. The hooks script what other processes would do to the shared
// tables (a transaction committing its feed row late, a restored feed,
// peers). Thread-safe.
#ifndef LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_CHANGE_FEED_STORE_H_
#define LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_CHANGE_FEED_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "server/storage/change_feed_store.h"
#include "tests/storage/fakes/fake_database.h"

namespace lumo::testing {

class FakeChangeFeedStore : public storage::ChangeFeedStore {
 public:
  explicit FakeChangeFeedStore(std::shared_ptr<FakeDatabase> db)
      : db_(std::move(db)) {}

  absl::StatusOr<storage::FeedRead> ReadChanges(
      int64_t after, const storage::FeedPosition& anchor, int limit) override;
  absl::StatusOr<int64_t> Head() override;
  absl::StatusOr<absl::Duration> MaxGapTimeout() override;
  absl::StatusOr<storage::FeedPosition> StartingPoint(
      absl::Duration lookback) override;
  absl::StatusOr<int64_t> Announce(const storage::KeyChange& change) override;
  absl::Status Register(const storage::ReplicaRegistration& replica,
                        absl::Duration prune_after) override;
  absl::Status Heartbeat(const storage::ReplicaName& replica,
                         int64_t applied_seq,
                         const storage::FeedPosition& anchor) override;
  absl::Status Deregister(const storage::ReplicaName& replica) override;
  absl::StatusOr<int64_t> AcknowledgedThrough(
      const storage::ReplicaName& self) override;
  absl::StatusOr<storage::StreamRead> ReadStreams(
      const storage::ReplicaName& reader, int limit) override;
  absl::Status PublishPositions(
      const storage::ReplicaName& reader,
      const std::vector<storage::StreamPosition>& positions) override;
  absl::Status AppendVoid(const storage::StreamPosition& slot) override;
  absl::StatusOr<storage::StreamAcknowledgement> AcknowledgeStream(
      const storage::ReplicaName& self, absl::string_view writer) override;
  absl::StatusOr<int64_t> LiveReplicas() override;

  // Test hooks.

  // A transaction that took `seq` commits now its row about `key_id`
  // ("revoked"), in any order relative to other seqs.
  void CommitChange(int64_t seq, const std::string& key_id);
  // The feed is restored empty (seqs are reused from 1).
  void Truncate();
  // Another replica `id` (incarnation "peer") that has applied `applied`:
  // heartbeating with a lease that outlasts any test when `live`, its lease
  // long gone otherwise.
  void SetPeer(const std::string& id, int64_t applied, bool live);
  // The applied position of the replica `id` (any incarnation); -1 when it
  // has no row.
  int64_t AppliedOf(const std::string& id);
  bool Registered(const std::string& id);
  // The rows written by Announce, in seq order.
  std::vector<storage::KeyChange> Announcements();

 private:
  const std::shared_ptr<FakeDatabase> db_;
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_CHANGE_FEED_STORE_H_
