#include "tests/storage/fakes/fake_change_feed_store.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>

namespace lumo::testing {
namespace {

using FeedRow = FakeDatabase::FeedRow;
using ReplicaRow = FakeDatabase::ReplicaRow;

// Whether the row `position` names is still in the feed as remembered.
bool Intact(const FakeDatabase& db, const storage::FeedPosition& position)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  if (position.seq == 0) return true;
  auto it = db.feed.find(position.seq);
  return it != db.feed.end() &&
         it->second.change.created_at == position.created_at;
}

// Whether `writer`'s stream already holds `wseq`.
bool SlotTaken(const FakeDatabase& db, const std::string& writer, int64_t wseq)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  for (const auto& [seq, row] : db.feed) {
    if (row.change.writer == writer && row.change.wseq == wseq) return true;
  }
  return false;
}

// Drops positions whose reader or writer has no replicas row.
void PrunePositions(FakeDatabase& db) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  for (auto it = db.feed_positions.begin(); it != db.feed_positions.end();) {
    const auto& [reader_id, reader_incarnation, writer] = it->first;
    bool writer_known = false;
    for (const auto& [name, row] : db.replicas) {
      if (name.second == writer) writer_known = true;
    }
    const bool keep =
        writer_known && db.replicas.count({reader_id, reader_incarnation}) > 0;
    it = keep ? std::next(it) : db.feed_positions.erase(it);
  }
}

// The lowest `position_of(row)` among the live replicas other than `self`;
// INT64_MAX when there is none.
template <typename F>
int64_t LowestOfLivePeers(const FakeDatabase& db,
                          const storage::ReplicaName& self, F position_of)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  const absl::Time now = db.Now();
  int64_t through = std::numeric_limits<int64_t>::max();
  for (const auto& [name, row] : db.replicas) {
    if (name.first == self.id && name.second == self.incarnation) continue;
    if (row.heartbeat_at + row.registration.lease <= now) continue;
    through = std::min(through, position_of(row));
  }
  return through;
}

absl::Duration LongestGapTimeout(const FakeDatabase& db)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  absl::Duration longest = absl::ZeroDuration();
  for (const auto& [name, row] : db.replicas) {
    longest = std::max(longest, row.registration.gap_timeout);
  }
  return longest;
}

}  // namespace

absl::StatusOr<storage::FeedRead> FakeChangeFeedStore::ReadChanges(
    int64_t after, const storage::FeedPosition& anchor, int limit) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  storage::FeedRead out;
  for (auto it = db_->feed.upper_bound(after);
       it != db_->feed.end() && static_cast<int>(out.changes.size()) < limit;
       ++it) {
    out.changes.push_back(it->second.change);
  }
  out.anchor_intact = Intact(*db_, anchor);
  out.max_gap_timeout = LongestGapTimeout(*db_);
  out.db_now = db_->Now();
  return out;
}

absl::StatusOr<int64_t> FakeChangeFeedStore::Head() {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  return db_->feed.empty() ? 0 : db_->feed.rbegin()->first;
}

absl::StatusOr<absl::Duration> FakeChangeFeedStore::MaxGapTimeout() {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  return LongestGapTimeout(*db_);
}

absl::StatusOr<storage::FeedPosition> FakeChangeFeedStore::StartingPoint(
    absl::Duration lookback) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const absl::Time before = db_->Now() - lookback;
  storage::FeedPosition position;
  for (const auto& [seq, row] : db_->feed) {
    const storage::KeyChange& c = row.change;
    if (c.created_at >= before) continue;
    if (position.seq == 0 ||
        std::make_pair(c.created_at, c.seq) >
            std::make_pair(position.created_at, position.seq)) {
      position = {c.seq, c.created_at};
    }
  }
  return position;
}

absl::StatusOr<int64_t> FakeChangeFeedStore::Announce(
    const storage::KeyChange& change) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  if (!change.writer.empty() && SlotTaken(*db_, change.writer, change.wseq)) {
    return absl::AlreadyExistsError("announce: the stream slot is taken");
  }
  const int64_t seq =
      db_->AppendChange(change.tenant_id, change.key_id, change.change_type,
                        change.key_version, /*announcement=*/true);
  if (!change.writer.empty()) {
    db_->feed[seq].change.writer = change.writer;
    db_->feed[seq].change.wseq = change.wseq;
  }
  return seq;
}

absl::Status FakeChangeFeedStore::Register(
    const storage::ReplicaRegistration& replica, absl::Duration prune_after) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const absl::Time now = db_->Now();
  for (auto it = db_->replicas.begin(); it != db_->replicas.end();) {
    const bool stale = it->second.heartbeat_at <
                       now - (it->second.registration.lease + prune_after);
    it = stale ? db_->replicas.erase(it) : std::next(it);
  }
  db_->replicas[{replica.name.id, replica.name.incarnation}] =
      ReplicaRow{replica, now};
  PrunePositions(*db_);
  return absl::OkStatus();
}

absl::Status FakeChangeFeedStore::Heartbeat(
    const storage::ReplicaName& replica, int64_t applied_seq,
    const storage::FeedPosition& anchor) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  auto it = db_->replicas.find({replica.id, replica.incarnation});
  if (it == db_->replicas.end()) {
    return absl::NotFoundError("replica row is gone");
  }
  it->second.heartbeat_at = db_->Now();
  it->second.registration.applied_seq = applied_seq;
  it->second.registration.anchor = anchor;
  return absl::OkStatus();
}

absl::Status FakeChangeFeedStore::Deregister(
    const storage::ReplicaName& replica) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  db_->replicas.erase({replica.id, replica.incarnation});
  for (auto it = db_->feed_positions.begin();
       it != db_->feed_positions.end();) {
    const bool mine = std::get<0>(it->first) == replica.id &&
                      std::get<1>(it->first) == replica.incarnation;
    it = mine ? db_->feed_positions.erase(it) : std::next(it);
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> FakeChangeFeedStore::AcknowledgedThrough(
    const storage::ReplicaName& self) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  return LowestOfLivePeers(*db_, self, [&](const ReplicaRow& row) {
    const storage::ReplicaRegistration& r = row.registration;
    return Intact(*db_, r.anchor) ? r.applied_seq : -1;
  });
}

absl::StatusOr<storage::StreamRead> FakeChangeFeedStore::ReadStreams(
    const storage::ReplicaName& reader, int limit) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  storage::StreamRead out;
  std::set<std::string> writers;
  for (const auto& [name, row] : db_->replicas) {
    if (!name.second.empty()) writers.insert(name.second);
  }
  for (const std::string& writer : writers) {
    auto position =
        db_->feed_positions.find({reader.id, reader.incarnation, writer});
    const int64_t published =
        position == db_->feed_positions.end() ? 0 : position->second;
    out.published.push_back({writer, published});
    std::map<int64_t, storage::KeyChange> stream;  // by wseq
    for (const auto& [seq, row] : db_->feed) {
      if (row.change.writer == writer && row.change.wseq > published) {
        stream[row.change.wseq] = row.change;
      }
    }
    int taken = 0;
    for (auto& [wseq, change] : stream) {
      if (taken++ == limit) break;
      out.changes.push_back(std::move(change));
    }
  }
  out.max_gap_timeout = LongestGapTimeout(*db_);
  out.db_now = db_->Now();
  return out;
}

absl::Status FakeChangeFeedStore::PublishPositions(
    const storage::ReplicaName& reader,
    const std::vector<storage::StreamPosition>& positions) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  for (const storage::StreamPosition& position : positions) {
    db_->feed_positions[{reader.id, reader.incarnation, position.writer}] =
        position.wseq;
  }
  return absl::OkStatus();
}

absl::Status FakeChangeFeedStore::AppendVoid(
    const storage::StreamPosition& slot) {
  if (slot.writer.empty() || slot.wseq < 1) {
    return absl::InvalidArgumentError("a void row needs a writer and a wseq");
  }
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  if (SlotTaken(*db_, slot.writer, slot.wseq)) return absl::OkStatus();
  const int64_t seq = db_->AppendChange(0, "", "void", 0, false);
  db_->feed[seq].change.writer = slot.writer;
  db_->feed[seq].change.wseq = slot.wseq;
  return absl::OkStatus();
}

absl::StatusOr<storage::StreamAcknowledgement>
FakeChangeFeedStore::AcknowledgeStream(const storage::ReplicaName& self,
                                       absl::string_view writer) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  constexpr int64_t kNobody = std::numeric_limits<int64_t>::max();
  storage::StreamAcknowledgement out;
  out.through = LowestOfLivePeers(*db_, self, [&](const ReplicaRow& row) {
    const storage::ReplicaName& name = row.registration.name;
    if (!row.registration.feed_streams) return kNobody;
    auto position = db_->feed_positions.find(
        {name.id, name.incarnation, std::string(writer)});
    return position == db_->feed_positions.end() ? int64_t{0}
                                                 : position->second;
  });
  out.legacy_through =
      LowestOfLivePeers(*db_, self, [&](const ReplicaRow& row) {
        const storage::ReplicaRegistration& r = row.registration;
        if (r.feed_streams) return kNobody;
        return Intact(*db_, r.anchor) ? r.applied_seq : int64_t{-1};
      });
  out.head = db_->feed.empty() ? 0 : db_->feed.rbegin()->first;
  return out;
}

absl::StatusOr<int64_t> FakeChangeFeedStore::LiveReplicas() {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const absl::Time now = db_->Now();
  int64_t live = 0;
  for (const auto& [name, row] : db_->replicas) {
    if (row.heartbeat_at + row.registration.lease > now) ++live;
  }
  return live;
}

void FakeChangeFeedStore::CommitChange(int64_t seq, const std::string& key_id) {
  absl::MutexLock lock(&db_->mu);
  FeedRow row;
  row.change.seq = seq;
  row.change.key_id = key_id;
  row.change.change_type = "revoked";
  row.change.created_at = db_->Now();
  db_->feed[seq] = std::move(row);
  db_->next_feed_seq = std::max(db_->next_feed_seq, seq + 1);
}

void FakeChangeFeedStore::Truncate() {
  absl::MutexLock lock(&db_->mu);
  db_->feed.clear();
  db_->next_feed_seq = 1;
}

void FakeChangeFeedStore::SetPeer(const std::string& id, int64_t applied,
                                  bool live) {
  absl::MutexLock lock(&db_->mu);
  storage::ReplicaRegistration r;
  r.name = {id, "peer"};
  r.lease = live ? absl::Hours(24) : absl::Seconds(1);
  r.applied_seq = applied;
  db_->replicas[{id, "peer"}] =
      ReplicaRow{r, live ? db_->Now() : db_->Now() - absl::Hours(1)};
}

int64_t FakeChangeFeedStore::AppliedOf(const std::string& id) {
  absl::MutexLock lock(&db_->mu);
  for (const auto& [name, row] : db_->replicas) {
    if (name.first == id) return row.registration.applied_seq;
  }
  return -1;
}

bool FakeChangeFeedStore::Registered(const std::string& id) {
  return AppliedOf(id) >= 0;
}

std::vector<storage::KeyChange> FakeChangeFeedStore::Announcements() {
  absl::MutexLock lock(&db_->mu);
  std::vector<storage::KeyChange> out;
  for (const auto& [seq, row] : db_->feed) {
    if (row.announcement) out.push_back(row.change);
  }
  return out;
}

}  // namespace lumo::testing
