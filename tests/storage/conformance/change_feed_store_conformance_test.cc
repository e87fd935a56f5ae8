// The ChangeFeedStore contract (server/storage/change_feed_store.h): the
// key change feed the key store writes and replicas read, and the replica
// membership table, run against every implementation. Each test has a
// database of its own (the feed and the membership are database-wide).
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/storage/change_feed_store.h"
#include "tests/storage/conformance/store_fixture.h"

namespace lumo::testing {
namespace {

template <typename Impl>
class ChangeFeedStoreConformanceTest : public FreshStoreTest<Impl> {
 protected:
  std::vector<storage::KeyChange> ReadAll(int64_t after = 0) {
    absl::StatusOr<storage::FeedRead> read =
        this->f().feed().ReadChanges(after, storage::FeedPosition(), 1000);
    EXPECT_TRUE(read.ok()) << read.status();
    return read.ok() ? read->changes : std::vector<storage::KeyChange>();
  }
  static storage::ReplicaRegistration Replica(absl::string_view id,
                                              int64_t applied_seq) {
    storage::ReplicaRegistration r;
    r.name = {std::string(id), Unique("inc")};
    r.address = "127.0.0.1:50051";
    r.hostname = "test-host";
    r.pid = 4242;
    r.lease = absl::Seconds(60);
    r.gap_timeout = absl::Seconds(5);
    r.applied_seq = applied_seq;
    return r;
  }
};
TYPED_TEST_SUITE(ChangeFeedStoreConformanceTest, Implementations,
                 ImplementationName);

TYPED_TEST(ChangeFeedStoreConformanceTest, KeyWritesAppendFeedRowsInOrder) {
  StoreFixture& f = this->f();
  absl::StatusOr<int64_t> empty = f.feed().Head();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(*empty, 0);
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewKey key = NewKey(tenant.id);
  ASSERT_TRUE(f.keys().InsertKey(key, Event("c")).ok());
  ASSERT_TRUE(f.keys()
                  .RotateKey(tenant.id, key.id, {RandomDigest(), 1},
                             absl::ZeroDuration(), Event("r"))
                  .ok());
  ASSERT_TRUE(f.keys().RevokeKey(tenant.id, key.id, Event("v")).ok());
  // Revoking again writes nothing.
  ASSERT_TRUE(f.keys().RevokeKey(tenant.id, key.id, Event("v")).ok());
  ASSERT_TRUE(f.keys().DeleteKey(tenant.id, key.id, Event("d")).ok());

  const std::vector<storage::KeyChange> changes = this->ReadAll();
  ASSERT_EQ(changes.size(), 4u);
  const char* types[] = {"created", "rotated", "revoked", "deleted"};
  for (size_t i = 0; i < changes.size(); ++i) {
    EXPECT_EQ(changes[i].change_type, types[i]);
    EXPECT_EQ(changes[i].key_id, key.id);
    EXPECT_EQ(changes[i].tenant_id, tenant.id);
    EXPECT_EQ(changes[i].key_version, static_cast<int64_t>(i) + 1);
    if (i > 0) EXPECT_GT(changes[i].seq, changes[i - 1].seq);
  }
  absl::StatusOr<int64_t> head = f.feed().Head();
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(*head, changes.back().seq);

  // After and limit.
  const std::vector<storage::KeyChange> tail = this->ReadAll(changes[1].seq);
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].change_type, "revoked");
  absl::StatusOr<storage::FeedRead> one =
      f.feed().ReadChanges(0, storage::FeedPosition(), 1);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->changes.size(), 1u);
  EXPECT_EQ(one->changes[0].change_type, "created");
}

TYPED_TEST(ChangeFeedStoreConformanceTest, TheAnchorIsCheckedBySeqAndTime) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  ASSERT_TRUE(f.keys().InsertKey(NewKey(tenant.id), Event("c")).ok());
  const std::vector<storage::KeyChange> changes = this->ReadAll();
  ASSERT_EQ(changes.size(), 1u);
  const storage::FeedPosition anchor{changes[0].seq, changes[0].created_at};
  absl::StatusOr<storage::FeedRead> read = f.feed().ReadChanges(0, anchor, 10);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->anchor_intact);
  EXPECT_GE(read->db_now, changes[0].created_at);

  const storage::FeedPosition replaced{
      changes[0].seq, changes[0].created_at - absl::Seconds(1)};
  read = f.feed().ReadChanges(0, replaced, 10);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_FALSE(read->anchor_intact);
  const storage::FeedPosition vanished{changes[0].seq + 100,
                                       changes[0].created_at};
  read = f.feed().ReadChanges(0, vanished, 10);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_FALSE(read->anchor_intact);
}

TYPED_TEST(ChangeFeedStoreConformanceTest, AnnouncementsTakeTheNextSeq) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewKey key = NewKey(tenant.id);
  ASSERT_TRUE(f.keys().InsertKey(key, Event("c")).ok());
  storage::KeyChange change;
  change.tenant_id = tenant.id;
  change.key_id = key.id;
  change.change_type = "revoked";
  change.key_version = 7;
  absl::StatusOr<int64_t> seq = f.feed().Announce(change);
  ASSERT_TRUE(seq.ok()) << seq.status();
  const std::vector<storage::KeyChange> changes = this->ReadAll();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[1].seq, *seq);
  EXPECT_GT(changes[1].seq, changes[0].seq);
  EXPECT_EQ(changes[1].change_type, "revoked");
  EXPECT_EQ(changes[1].key_version, 7);
  absl::StatusOr<int64_t> head = f.feed().Head();
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(*head, *seq);
}

TYPED_TEST(ChangeFeedStoreConformanceTest, MembershipTracksLiveReplicas) {
  StoreFixture& f = this->f();
  absl::StatusOr<absl::Duration> none = f.feed().MaxGapTimeout();
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, absl::ZeroDuration());
  const storage::ReplicaRegistration self = this->Replica("self", 0);
  storage::ReplicaRegistration peer = this->Replica("peer", 0);
  peer.gap_timeout = absl::Seconds(9);
  ASSERT_TRUE(f.feed().Register(self, absl::Hours(1)).ok());
  absl::StatusOr<int64_t> alone = f.feed().AcknowledgedThrough(self.name);
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(*alone, std::numeric_limits<int64_t>::max());

  ASSERT_TRUE(f.feed().Register(peer, absl::Hours(1)).ok());
  absl::StatusOr<absl::Duration> gap = f.feed().MaxGapTimeout();
  ASSERT_TRUE(gap.ok()) << gap.status();
  EXPECT_EQ(*gap, absl::Seconds(9));
  absl::StatusOr<storage::FeedRead> read =
      f.feed().ReadChanges(0, storage::FeedPosition(), 10);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->max_gap_timeout, absl::Seconds(9));

  const storage::Tenant tenant = NewTenant(f);
  ASSERT_TRUE(f.keys().InsertKey(NewKey(tenant.id), Event("c")).ok());
  const std::vector<storage::KeyChange> changes = this->ReadAll();
  ASSERT_EQ(changes.size(), 1u);
  const storage::FeedPosition anchor{changes[0].seq, changes[0].created_at};
  ASSERT_TRUE(f.feed().Heartbeat(peer.name, changes[0].seq, anchor).ok());
  absl::StatusOr<int64_t> acked = f.feed().AcknowledgedThrough(self.name);
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(*acked, changes[0].seq);

  // A peer whose anchor row is not in the feed has applied nothing.
  const storage::FeedPosition foreign{changes[0].seq,
                                      changes[0].created_at + absl::Hours(1)};
  ASSERT_TRUE(f.feed().Heartbeat(peer.name, changes[0].seq, foreign).ok());
  acked = f.feed().AcknowledgedThrough(self.name);
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(*acked, -1);

  ASSERT_TRUE(f.feed().Deregister(peer.name).ok());
  EXPECT_EQ(f.feed().Heartbeat(peer.name, 0, storage::FeedPosition()).code(),
            absl::StatusCode::kNotFound);
  acked = f.feed().AcknowledgedThrough(self.name);
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(*acked, std::numeric_limits<int64_t>::max());
  gap = f.feed().MaxGapTimeout();
  ASSERT_TRUE(gap.ok()) << gap.status();
  EXPECT_EQ(*gap, absl::Seconds(5));
}

TYPED_TEST(ChangeFeedStoreConformanceTest, AReplicaPastItsLeaseIsNotLive) {
  StoreFixture& f = this->f();
  const storage::ReplicaRegistration self = this->Replica("self", 0);
  storage::ReplicaRegistration peer = this->Replica("peer", 0);
  peer.lease = absl::Milliseconds(200);
  absl::StatusOr<int64_t> live = f.feed().LiveReplicas();
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(*live, 0);
  ASSERT_TRUE(f.feed().Register(self, absl::Hours(1)).ok());
  ASSERT_TRUE(f.feed().Register(peer, absl::Hours(1)).ok());
  absl::StatusOr<int64_t> acked = f.feed().AcknowledgedThrough(self.name);
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(*acked, 0);
  live = f.feed().LiveReplicas();
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(*live, 2);
  f.LetTimePass(absl::Milliseconds(300));
  acked = f.feed().AcknowledgedThrough(self.name);
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(*acked, std::numeric_limits<int64_t>::max());
  live = f.feed().LiveReplicas();
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(*live, 1);  // the peer's lease ran out
  // Registering again prunes the peer whose lease ran out long enough ago.
  ASSERT_TRUE(f.feed().Register(self, absl::ZeroDuration()).ok());
  EXPECT_EQ(f.feed().Heartbeat(peer.name, 0, storage::FeedPosition()).code(),
            absl::StatusCode::kNotFound);
}

TYPED_TEST(ChangeFeedStoreConformanceTest, StartingPointLooksBack) {
  StoreFixture& f = this->f();
  absl::StatusOr<storage::FeedPosition> nothing =
      f.feed().StartingPoint(absl::ZeroDuration());
  ASSERT_TRUE(nothing.ok()) << nothing.status();
  EXPECT_EQ(nothing->seq, 0);
  const storage::Tenant tenant = NewTenant(f);
  ASSERT_TRUE(f.keys().InsertKey(NewKey(tenant.id), Event("c")).ok());
  const std::vector<storage::KeyChange> changes = this->ReadAll();
  ASSERT_EQ(changes.size(), 1u);
  absl::StatusOr<storage::FeedPosition> too_new =
      f.feed().StartingPoint(absl::Hours(1));
  ASSERT_TRUE(too_new.ok()) << too_new.status();
  EXPECT_EQ(too_new->seq, 0);
  f.LetTimePass(absl::Milliseconds(50));
  absl::StatusOr<storage::FeedPosition> start =
      f.feed().StartingPoint(absl::Milliseconds(20));
  ASSERT_TRUE(start.ok()) << start.status();
  EXPECT_EQ(start->seq, changes[0].seq);
  EXPECT_EQ(start->created_at, changes[0].created_at);
}

}  // namespace
}  // namespace lumo::testing
