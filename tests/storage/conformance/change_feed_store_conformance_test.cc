// The ChangeFeedStore contract (server/storage/change_feed_store.h): the
// key change feed the key store writes and replicas read, and the replica
// membership table, run against every implementation. Each test has a
// database of its own (the feed and the membership are database-wide).
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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
  // A key of a new tenant created, rotated, revoked, revoked again (which
  // writes nothing) and deleted.
  storage::NewKey KeyLifecycle() {
    StoreFixture& f = this->f();
    const storage::Tenant tenant = NewTenant(f);
    const storage::NewKey key = NewKey(tenant.id);
    EXPECT_TRUE(f.keys().InsertKey(key, Event("c")).ok());
    EXPECT_TRUE(f.keys()
                    .RotateKey(tenant.id, key.id, {RandomDigest(), 1},
                               absl::ZeroDuration(), Event("r"))
                    .ok());
    EXPECT_TRUE(f.keys().RevokeKey(tenant.id, key.id, Event("v")).ok());
    EXPECT_TRUE(f.keys().RevokeKey(tenant.id, key.id, Event("v")).ok());
    EXPECT_TRUE(f.keys().DeleteKey(tenant.id, key.id, Event("d")).ok());
    return key;
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
  const storage::NewKey key = this->KeyLifecycle();
  const int64_t tenant_id = key.tenant_id;

  const std::vector<storage::KeyChange> changes = this->ReadAll();
  ASSERT_EQ(changes.size(), 4u);
  const char* types[] = {"created", "rotated", "revoked", "deleted"};
  for (size_t i = 0; i < changes.size(); ++i) {
    EXPECT_EQ(changes[i].change_type, types[i]);
    EXPECT_EQ(changes[i].key_id, key.id);
    EXPECT_EQ(changes[i].tenant_id, tenant_id);
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

// A row of `writer`'s stream at `wseq` about `key_id`.
storage::KeyChange StreamRow(const storage::ReplicaName& writer, int64_t wseq,
                             const std::string& key_id) {
  storage::KeyChange change;
  change.tenant_id = 7;
  change.key_id = key_id;
  change.change_type = "revoked";
  change.key_version = 2;
  change.writer = writer.incarnation;
  change.wseq = wseq;
  return change;
}

// "writer:wseq:key_id:change_type" of each row, in the order read.
std::vector<std::string> Described(
    const std::vector<storage::KeyChange>& changes,
    const std::map<std::string, std::string>& names) {
  std::vector<std::string> out;
  for (const storage::KeyChange& c : changes) {
    out.push_back(absl::StrCat(names.at(c.writer), ":", c.wseq, ":", c.key_id,
                               ":", c.change_type));
  }
  return out;
}

TYPED_TEST(ChangeFeedStoreConformanceTest,
           StreamsAreReadPerWriterAboveThePublishedPosition) {
  StoreFixture& f = this->f();
  const storage::ReplicaRegistration reader = this->Replica("reader", 0);
  const storage::ReplicaRegistration one = this->Replica("one", 0);
  const storage::ReplicaRegistration two = this->Replica("two", 0);
  for (const auto* r : {&reader, &one, &two}) {
    ASSERT_TRUE(f.feed().Register(*r, absl::Hours(1)).ok());
  }
  // Writers come out in writer (incarnation) order.
  std::map<std::string, std::string> names = {
      {reader.name.incarnation, "reader"},
      {one.name.incarnation, "one"},
      {two.name.incarnation, "two"}};
  std::vector<std::string> order;
  for (const auto& [incarnation, name] : names) order.push_back(name);
  const bool one_first = one.name.incarnation < two.name.incarnation;

  // Stream rows committed out of order; a legacy row (no writer) too.
  ASSERT_TRUE(f.feed().Announce(StreamRow(one.name, 2, "key000000002")).ok());
  ASSERT_TRUE(f.feed().Announce(StreamRow(two.name, 1, "key000000021")).ok());
  ASSERT_TRUE(f.feed().Announce(StreamRow(one.name, 1, "key000000001")).ok());
  ASSERT_TRUE(f.feed().Announce(StreamRow(one.name, 3, "key000000003")).ok());
  const storage::Tenant tenant = NewTenant(f);
  ASSERT_TRUE(f.keys().InsertKey(NewKey(tenant.id), Event("c")).ok());
  // Stream rows take seqs too: the legacy read sees all five.
  EXPECT_EQ(this->ReadAll().size(), 5u);

  absl::StatusOr<storage::StreamRead> read =
      f.feed().ReadStreams(reader.name, 100);
  ASSERT_TRUE(read.ok()) << read.status();
  std::vector<std::string> published;
  for (const storage::StreamPosition& p : read->published) {
    published.push_back(absl::StrCat(names.at(p.writer), "@", p.wseq));
  }
  std::vector<std::string> expected_published;
  for (const std::string& name : order) {
    expected_published.push_back(name + "@0");
  }
  EXPECT_EQ(published, expected_published);
  std::vector<std::string> of_one = {"one:1:key000000001:revoked",
                                     "one:2:key000000002:revoked",
                                     "one:3:key000000003:revoked"};
  std::vector<std::string> of_two = {"two:1:key000000021:revoked"};
  std::vector<std::string> all = one_first ? of_one : of_two;
  for (const std::string& row : one_first ? of_two : of_one) all.push_back(row);
  EXPECT_EQ(Described(read->changes, names), all);
  EXPECT_EQ(read->max_gap_timeout, absl::Seconds(5));
  for (const storage::KeyChange& c : read->changes) {
    EXPECT_GT(c.seq, 0);
    EXPECT_EQ(c.tenant_id, 7);
    EXPECT_EQ(c.key_version, 2);
  }

  // At most `limit` rows per stream: a backlog in one stream hides no other.
  read = f.feed().ReadStreams(reader.name, 1);
  ASSERT_TRUE(read.ok()) << read.status();
  std::vector<std::string> firsts = {"one:1:key000000001:revoked",
                                     "two:1:key000000021:revoked"};
  if (!one_first) std::swap(firsts[0], firsts[1]);
  EXPECT_EQ(Described(read->changes, names), firsts);

  // Published positions move the read; other readers are not affected.
  ASSERT_TRUE(f.feed()
                  .PublishPositions(reader.name, {{one.name.incarnation, 2},
                                                  {two.name.incarnation, 1}})
                  .ok());
  read = f.feed().ReadStreams(reader.name, 100);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(Described(read->changes, names),
            std::vector<std::string>({"one:3:key000000003:revoked"}));
  for (const storage::StreamPosition& p : read->published) {
    const int64_t expected = p.writer == one.name.incarnation   ? 2
                             : p.writer == two.name.incarnation ? 1
                                                                : 0;
    EXPECT_EQ(p.wseq, expected) << names.at(p.writer);
  }
  read = f.feed().ReadStreams(one.name, 100);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->changes.size(), 4u);

  // A writer taken out of the membership table takes its stream with it.
  ASSERT_TRUE(f.feed().Deregister(two.name).ok());
  names.erase(two.name.incarnation);
  read = f.feed().ReadStreams(one.name, 100);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->published.size(), 2u);
  EXPECT_EQ(read->changes.size(), 3u);
}

// Repeated reads (a tailer's polls) return what one read would: a stream
// whose published position moved up, one whose position moved down (a
// restored table), a writer registered after the previous read and one row
// committed below the reader's in-memory position but above its published
// one (re-read until published).
TYPED_TEST(ChangeFeedStoreConformanceTest,
           RepeatedReadsFollowThePublishedPositionsBothWays) {
  StoreFixture& f = this->f();
  const storage::ReplicaRegistration reader = this->Replica("reader", 0);
  const storage::ReplicaRegistration one = this->Replica("one", 0);
  for (const auto* r : {&reader, &one}) {
    ASSERT_TRUE(f.feed().Register(*r, absl::Hours(1)).ok());
  }
  std::map<std::string, std::string> names = {
      {reader.name.incarnation, "reader"}, {one.name.incarnation, "one"}};
  for (int wseq = 1; wseq <= 6; ++wseq) {
    ASSERT_TRUE(f.feed()
                    .Announce(StreamRow(one.name, wseq,
                                        absl::StrCat("key00000000", wseq)))
                    .ok());
  }
  auto rows_of = [&](const storage::ReplicaName& who) {
    absl::StatusOr<storage::StreamRead> read = f.feed().ReadStreams(who, 100);
    EXPECT_TRUE(read.ok()) << read.status();
    std::vector<int64_t> out;
    if (!read.ok()) return out;
    for (const storage::KeyChange& c : read->changes) {
      if (c.writer == one.name.incarnation) out.push_back(c.wseq);
    }
    return out;
  };
  EXPECT_EQ(rows_of(reader.name), std::vector<int64_t>({1, 2, 3, 4, 5, 6}));
  ASSERT_TRUE(
      f.feed().PublishPositions(reader.name, {{one.name.incarnation, 4}}).ok());
  EXPECT_EQ(rows_of(reader.name), std::vector<int64_t>({5, 6}));
  EXPECT_EQ(rows_of(reader.name), std::vector<int64_t>({5, 6}));

  // Down again: the rows above the lower position come back.
  ASSERT_TRUE(
      f.feed().PublishPositions(reader.name, {{one.name.incarnation, 2}}).ok());
  EXPECT_EQ(rows_of(reader.name), std::vector<int64_t>({3, 4, 5, 6}));

  // A writer registered since the last read, with rows; a late row of the
  // first stream.
  const storage::ReplicaRegistration two = this->Replica("two", 0);
  ASSERT_TRUE(f.feed().Register(two, absl::Hours(1)).ok());
  names[two.name.incarnation] = "two";
  ASSERT_TRUE(f.feed().Announce(StreamRow(two.name, 1, "key000000021")).ok());
  ASSERT_TRUE(f.feed().Announce(StreamRow(one.name, 8, "key000000008")).ok());
  absl::StatusOr<storage::StreamRead> read =
      f.feed().ReadStreams(reader.name, 100);
  ASSERT_TRUE(read.ok()) << read.status();
  std::vector<std::string> expected = {
      "one:3:key000000003:revoked", "one:4:key000000004:revoked",
      "one:5:key000000005:revoked", "one:6:key000000006:revoked",
      "one:8:key000000008:revoked"};
  if (two.name.incarnation < one.name.incarnation) {
    expected.insert(expected.begin(), "two:1:key000000021:revoked");
  } else {
    expected.push_back("two:1:key000000021:revoked");
  }
  EXPECT_EQ(Described(read->changes, names), expected);

  // Another reader's positions do not bound this one's read.
  ASSERT_TRUE(
      f.feed().PublishPositions(one.name, {{one.name.incarnation, 6}}).ok());
  EXPECT_EQ(rows_of(one.name), std::vector<int64_t>({8}));
  EXPECT_EQ(rows_of(reader.name), std::vector<int64_t>({3, 4, 5, 6, 8}));
}

TYPED_TEST(ChangeFeedStoreConformanceTest, AVoidTakesAFreeStreamSlotOnly) {
  StoreFixture& f = this->f();
  const storage::ReplicaRegistration writer = this->Replica("writer", 0);
  ASSERT_TRUE(f.feed().Register(writer, absl::Hours(1)).ok());
  ASSERT_TRUE(
      f.feed().Announce(StreamRow(writer.name, 1, "key000000001")).ok());
  // Slot 1 is taken by the change itself: the void changes nothing.
  EXPECT_TRUE(f.feed().AppendVoid({writer.name.incarnation, 1}).ok());
  EXPECT_TRUE(f.feed().AppendVoid({writer.name.incarnation, 2}).ok());
  EXPECT_TRUE(f.feed().AppendVoid({writer.name.incarnation, 2}).ok());
  // The change that drew slot 2 cannot commit into it any more.
  EXPECT_EQ(f.feed()
                .Announce(StreamRow(writer.name, 2, "key000000002"))
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(f.feed().AppendVoid({"", 3}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.feed().AppendVoid({writer.name.incarnation, 0}).code(),
            absl::StatusCode::kInvalidArgument);

  absl::StatusOr<storage::StreamRead> read =
      f.feed().ReadStreams(writer.name, 100);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->changes.size(), 2u);
  EXPECT_EQ(read->changes[0].change_type, "revoked");
  EXPECT_EQ(read->changes[0].key_id, "key000000001");
  EXPECT_EQ(read->changes[1].wseq, 2);
  EXPECT_EQ(read->changes[1].change_type, "void");
  EXPECT_EQ(read->changes[1].key_id, "");
  EXPECT_EQ(read->changes[1].tenant_id, 0);
}

TYPED_TEST(ChangeFeedStoreConformanceTest,
           AStreamIsAcknowledgedThroughTheLowestLivePeerPosition) {
  StoreFixture& f = this->f();
  const storage::ReplicaRegistration self = this->Replica("self", 0);
  const storage::ReplicaRegistration fast = this->Replica("fast", 0);
  const storage::ReplicaRegistration slow = this->Replica("slow", 0);
  storage::ReplicaRegistration dying = this->Replica("dying", 0);
  ASSERT_TRUE(f.feed().Register(self, absl::Hours(1)).ok());
  const std::string& stream = self.name.incarnation;
  absl::StatusOr<int64_t> acked =
      f.feed().StreamAcknowledgedThrough(self.name, stream);
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(*acked, std::numeric_limits<int64_t>::max());

  for (const storage::ReplicaRegistration* r :
       std::initializer_list<const storage::ReplicaRegistration*>{&fast, &slow,
                                                                  &dying}) {
    ASSERT_TRUE(f.feed().Register(*r, absl::Hours(1)).ok());
  }
  // The writer's own position and other streams' positions do not count;
  // a live peer without a position has applied nothing.
  ASSERT_TRUE(f.feed().PublishPositions(self.name, {{stream, 9}}).ok());
  ASSERT_TRUE(f.feed().PublishPositions(fast.name, {{stream, 5}}).ok());
  ASSERT_TRUE(
      f.feed().PublishPositions(slow.name, {{slow.name.incarnation, 8}}).ok());
  ASSERT_TRUE(f.feed().PublishPositions(dying.name, {{stream, 1}}).ok());
  acked = f.feed().StreamAcknowledgedThrough(self.name, stream);
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(*acked, 0);

  ASSERT_TRUE(f.feed().PublishPositions(slow.name, {{stream, 3}}).ok());
  acked = f.feed().StreamAcknowledgedThrough(self.name, stream);
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(*acked, 1);
  // A peer past its lease is not waited for. Its lease is made short only
  // now (a heartbeat with it; the row is replaced, its positions stay), so
  // however slowly the statements above ran it was live for them.
  dying.lease = absl::Milliseconds(200);
  ASSERT_TRUE(f.feed().Register(dying, absl::Hours(1)).ok());
  f.LetTimePass(absl::Milliseconds(300));
  acked = f.feed().StreamAcknowledgedThrough(self.name, stream);
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(*acked, 3);
  // Publishing again replaces the position.
  ASSERT_TRUE(f.feed().PublishPositions(slow.name, {{stream, 7}}).ok());
  acked = f.feed().StreamAcknowledgedThrough(self.name, stream);
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(*acked, 5);

  // A deregistered reader's positions go with it; a pruned one's too.
  ASSERT_TRUE(f.feed().Deregister(fast.name).ok());
  ASSERT_TRUE(f.feed().Register(fast, absl::Hours(1)).ok());
  acked = f.feed().StreamAcknowledgedThrough(self.name, stream);
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(*acked, 0);
  ASSERT_TRUE(f.feed().Register(self, absl::ZeroDuration()).ok());
  ASSERT_TRUE(f.feed().Register(dying, absl::Hours(1)).ok());
  absl::StatusOr<storage::StreamRead> read =
      f.feed().ReadStreams(dying.name, 10);
  ASSERT_TRUE(read.ok()) << read.status();
  for (const storage::StreamPosition& p : read->published) {
    EXPECT_EQ(p.wseq, 0) << "the pruned reader's position survived";
  }
}

TYPED_TEST(ChangeFeedStoreConformanceTest, KeyWritesFillTheWritersStream) {
  StoreFixture& f = this->f();
  const storage::ReplicaRegistration writer = this->Replica("writer", 0);
  ASSERT_TRUE(f.feed().Register(writer, absl::Hours(1)).ok());
  EXPECT_EQ(f.keys().FeedWriterHead(), 0);
  f.keys().SetFeedWriter(writer.name.incarnation);
  // The revoke that writes nothing draws no position either.
  const storage::NewKey key = this->KeyLifecycle();
  EXPECT_EQ(f.keys().FeedWriterHead(), 4);

  absl::StatusOr<storage::StreamRead> read =
      f.feed().ReadStreams(writer.name, 100);
  ASSERT_TRUE(read.ok()) << read.status();
  const std::map<std::string, std::string> names = {
      {writer.name.incarnation, "w"}};
  EXPECT_EQ(
      Described(read->changes, names),
      std::vector<std::string>({absl::StrCat("w:1:", key.id, ":created"),
                                absl::StrCat("w:2:", key.id, ":rotated"),
                                absl::StrCat("w:3:", key.id, ":revoked"),
                                absl::StrCat("w:4:", key.id, ":deleted")}));
  // The same rows, by seq, for tailers of the legacy stream.
  EXPECT_EQ(this->ReadAll().size(), 4u);
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

// During a rolling upgrade a replica of the release before streams
// (feed_streams false: it never publishes stream positions) is judged by
// its applied_seq against the feed head, the others by their positions.
TYPED_TEST(ChangeFeedStoreConformanceTest,
           AReplicaWithoutStreamsIsAcknowledgedByItsAppliedSeq) {
  StoreFixture& f = this->f();
  const storage::ReplicaRegistration self = this->Replica("self", 0);
  const storage::ReplicaRegistration current = this->Replica("current", 0);
  storage::ReplicaRegistration old = this->Replica("old-release", 0);
  old.feed_streams = false;
  ASSERT_TRUE(f.feed().Register(self, absl::Hours(1)).ok());
  const std::string& stream = self.name.incarnation;
  auto acknowledge = [&]() {
    absl::StatusOr<storage::StreamAcknowledgement> a =
        f.feed().AcknowledgeStream(self.name, stream);
    EXPECT_TRUE(a.ok()) << a.status();
    return a.value_or(storage::StreamAcknowledgement{-2, -2, -2});
  };
  constexpr int64_t kNobody = std::numeric_limits<int64_t>::max();
  storage::StreamAcknowledgement a = acknowledge();
  EXPECT_EQ(a.through, kNobody);
  EXPECT_EQ(a.legacy_through, kNobody);
  EXPECT_EQ(a.head, 0);

  absl::StatusOr<int64_t> seq =
      f.feed().Announce(StreamRow(self.name, 1, "key000000001"));
  ASSERT_TRUE(seq.ok()) << seq.status();
  ASSERT_TRUE(f.feed().Register(old, absl::Hours(1)).ok());
  a = acknowledge();
  EXPECT_EQ(a.through, kNobody) << "an old replica publishes no positions";
  EXPECT_EQ(a.legacy_through, 0);
  EXPECT_EQ(a.head, *seq);

  ASSERT_TRUE(f.feed().Register(current, absl::Hours(1)).ok());
  ASSERT_TRUE(f.feed().PublishPositions(current.name, {{stream, 1}}).ok());
  ASSERT_TRUE(f.feed().Heartbeat(old.name, *seq, storage::FeedPosition()).ok());
  a = acknowledge();
  EXPECT_EQ(a.through, 1);
  EXPECT_EQ(a.legacy_through, *seq);
  EXPECT_EQ(*f.feed().StreamAcknowledgedThrough(self.name, stream), 1);
}

}  // namespace
}  // namespace lumo::testing
