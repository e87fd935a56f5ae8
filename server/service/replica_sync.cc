#include "server/service/replica_sync.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/core/crypto.h"
#include "server/fault/fault_points.h"
#include "server/storage/call_deadline.h"

namespace lumo::service {

namespace {

std::chrono::nanoseconds ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

// Ids and incarnations only have to be unique among replicas: 16 base62
// characters.
absl::StatusOr<std::string> RandomName() { return core::RandomBase62(16); }

// The status of a wait that ended without the acknowledgement: the change
// itself is committed either way.
absl::Status Unacknowledged(absl::string_view why, absl::Time call_deadline) {
  const std::string message =
      absl::StrCat("the change is committed and stands, but ", why);
  if (absl::Now() >= call_deadline) {
    return absl::DeadlineExceededError(
        absl::StrCat(message, " (the call's deadline passed)"));
  }
  return absl::UnavailableError(message);
}

}  // namespace

absl::Status ValidateReplicaSyncOptions(const ReplicaSyncOptions& o) {
  if (o.poll_interval <= absl::ZeroDuration() ||
      o.heartbeat_interval <= absl::ZeroDuration() ||
      o.gap_timeout <= absl::ZeroDuration() ||
      o.ack_poll_interval <= absl::ZeroDuration() ||
      o.lease_margin <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("replica durations must be positive");
  }
  if (o.batch < 1) {
    return absl::InvalidArgumentError("replica feed batch must be >= 1");
  }
  // A replica must get several heartbeats into one lease, and its cache
  // trust (lease - margin) must outlast the pause between heartbeats.
  if (o.lease - o.lease_margin < 2 * (o.heartbeat_interval + o.poll_interval)) {
    return absl::InvalidArgumentError(
        "--replica_lease minus its margin must be at least twice "
        "(--replica_heartbeat_interval + --replica_poll_interval)");
  }
  if (o.gap_timeout < 4 * o.poll_interval) {
    return absl::InvalidArgumentError(
        "--replica_gap_timeout must be at least 4 x --replica_poll_interval");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ReplicaSync>> ReplicaSync::Start(
    storage::ChangeFeedStore* store, Verifier* verifier,
    ReplicaSyncOptions options, storage::ChangeFeedStore* ack_store) {
  if (absl::Status s = ValidateReplicaSyncOptions(options); !s.ok()) return s;
  if (options.replica_id.empty()) {
    absl::StatusOr<std::string> id = RandomName();
    if (!id.ok()) return id.status();
    options.replica_id = *std::move(id);
  }
  if (options.fault_scope.empty()) options.fault_scope = options.replica_id;
  storage::ReplicaName name;
  name.id = options.replica_id;
  absl::StatusOr<std::string> incarnation = RandomName();
  if (!incarnation.ok()) return incarnation.status();
  name.incarnation = *std::move(incarnation);
  // Untrusted until the first round renews the lease.
  verifier->SetCacheTrustedUntil(Clock::time_point{});
  // Any change still uncommitted now allocated its seq less than half the
  // writer's gap timeout ago or will be announced again; starting three of
  // the longest gap timeouts back leaves room for the clock read and
  // created_at skew.
  absl::StatusOr<absl::Duration> longest = store->MaxGapTimeout();
  if (!longest.ok()) return longest.status();
  absl::StatusOr<storage::FeedPosition> start =
      store->StartingPoint(3 * std::max(options.gap_timeout, *longest));
  if (!start.ok()) return start.status();
  std::unique_ptr<ReplicaSync> sync(
      new ReplicaSync(store, ack_store != nullptr ? ack_store : store, verifier,
                      std::move(options), std::move(name), *start));
  if (absl::Status s = store->Register(sync->Registration(), absl::Hours(1));
      !s.ok()) {
    return s;
  }
  // Registered first: readers learn of a stream from its writer's row, so
  // every row of it is written after they can know of it.
  if (sync->streams()) {
    sync->options_.stream_writer->SetFeedWriter(sync->name_.incarnation);
  }
  sync->thread_ = std::thread([p = sync.get()] { p->Loop(); });
  sync->poller_ = std::thread([p = sync.get()] { p->PollLoop(); });
  return sync;
}

ReplicaSync::ReplicaSync(storage::ChangeFeedStore* store,
                         storage::ChangeFeedStore* ack_store,
                         Verifier* verifier, ReplicaSyncOptions options,
                         storage::ReplicaName name, storage::FeedPosition start)
    : store_(store),
      ack_store_(ack_store),
      verifier_(verifier),
      options_(std::move(options)),
      name_(std::move(name)),
      cursor_(start.seq, ToChrono(options_.gap_timeout)),
      anchor_(start) {
  applied_.store(start.seq, std::memory_order_relaxed);
  published_ = start.seq;
}

ReplicaSync::~ReplicaSync() { Stop(); }

void ReplicaSync::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    stop_ = true;
  }
  {
    absl::MutexLock lock(&ack_mu_);
    ack_stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (poller_.joinable()) poller_.join();
  if (absl::Status s = store_->Deregister(name_); !s.ok()) {
    Log("warning",
        absl::StrCat("replica deregistration failed: ", s.message()));
  }
}

absl::Duration ReplicaSync::ack_timeout() const {
  // A dead replica's lease ends at most `lease` after the commit; a live one
  // acknowledges within the (longest) gap timeout plus a few rounds.
  const absl::Duration gap = std::max(
      options_.gap_timeout,
      absl::Microseconds(longest_gap_us_.load(std::memory_order_relaxed)));
  return std::max(options_.lease, gap + 2 * options_.poll_interval +
                                      options_.heartbeat_interval) +
         absl::Seconds(1);
}

void ReplicaSync::Log(absl::string_view level, absl::string_view message) {
  if (options_.log) options_.log(level, message);
}

storage::ReplicaRegistration ReplicaSync::Registration() const {
  storage::ReplicaRegistration reg;
  reg.name = name_;
  reg.address = options_.address;
  reg.hostname = options_.hostname;
  reg.pid = options_.pid;
  reg.lease = options_.lease;
  reg.gap_timeout = options_.gap_timeout;
  reg.applied_seq = cursor_.applied();
  reg.anchor = anchor_;
  return reg;
}

void ReplicaSync::Loop() {
  for (;;) {
    const Clock::time_point started = Clock::now();
    bool again = Round();
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    if (!again) {
      // Rounds start every poll_interval: a slow round (a loaded database
      // node, a certification round trip) does not add its own length to
      // the pause, which is what a change waits before it is read. At least
      // a quarter of the interval passes between two rounds, so rounds
      // never come more often than one per interval.
      const absl::Duration took = absl::FromChrono(Clock::now() - started);
      mu_.AwaitWithTimeout(
          absl::Condition(&stop_),
          std::max(options_.poll_interval - took, options_.poll_interval / 4));
      if (stop_) return;
    }
  }
}

void ReplicaSync::ResetCache(absl::string_view why) {
  // Untrusted first, so that no lookup uses an entry in between.
  trusted_until_ = Clock::time_point{};
  verifier_->SetCacheTrustedUntil(trusted_until_);
  verifier_->EvictAll();
  cache_resets_.fetch_add(1, std::memory_order_relaxed);
  Log("warning",
      absl::StrCat(why,
                   ": verify cache dropped; verifying against the database "
                   "until the lease is renewed"));
  trusted_ = false;
}

bool ReplicaSync::Round() {
  if (trusted_ && !verifier_->cache_trusted()) {
    trusted_ = false;
    Log("warning",
        "replica lease lapsed: verifying against the database only until "
        "the lease is renewed");
  }
  if (!fault::kTailerBeforeRead.Hit(options_.fault_scope).ok()) {
    last_round_failed_ = true;
    return false;
  }
  // The streams first, and their moved positions written at once: that
  // write is what this replica's acknowledgements of other writers' changes
  // wait for, so it comes before the legacy feed read (on a cluster a causal
  // read, a round trip through the group). A published position is true as
  // soon as it is written (its rows are evicted), whatever the rest of the
  // round does.
  bool streams_truncated = false;
  if (!StreamRound(&streams_truncated)) {
    last_round_failed_ = true;
    return false;
  }
  bool streams_moved = false;
  for (const auto& [writer, stream] : streams_) {
    if (stream.cursor.applied() != stream.published) streams_moved = true;
  }
  if (!PublishStreamPositions()) {
    last_round_failed_ = true;
    return false;
  }

  const Clock::time_point read_started = Clock::now();
  absl::StatusOr<storage::FeedRead> read =
      store_->ReadChanges(cursor_.applied(), anchor_, options_.batch);
  const Clock::time_point read_finished = Clock::now();
  if (!read.ok()) {
    if (!last_round_failed_) {
      Log("warning",
          absl::StrCat("change feed read failed: ", read.status().message()));
    }
    last_round_failed_ = true;
    return false;
  }

  // The database clock was read during this statement and the previous
  // one; between them at most (this read's end - that read's start) passed
  // on a clock that keeps running. When the database clock advanced
  // further, this process (or its VM) did not run while time passed:
  // writers may have stopped waiting for it without it noticing.
  if (previous_read_.has_value()) {
    const absl::Duration db_span = read->db_now - previous_read_->second;
    const absl::Duration local_span =
        absl::FromChrono(read_finished - previous_read_->first);
    if (db_span - local_span > options_.lease_margin / 2) {
      ResetCache(absl::StrCat(
          "the database clock advanced ",
          absl::FormatDuration(db_span - local_span),
          " more than this process's monotonic clock (was it suspended?)"));
    }
  }
  previous_read_.emplace(read_started, read->db_now);

  const absl::Duration gap =
      std::max(options_.gap_timeout, read->max_gap_timeout);
  longest_gap_us_.store(absl::ToInt64Microseconds(gap),
                        std::memory_order_relaxed);
  if (!read->anchor_intact) {
    // The newest row this replica had seen is gone or replaced: the feed
    // was rolled back and new changes may reuse seqs at or below our
    // position. Everything cached may predate them; re-read from a point
    // every uncommitted change lies beyond.
    verifier_->EvictAll();
    cache_resets_.fetch_add(1, std::memory_order_relaxed);
    Log("warning",
        "the change feed was rolled back (a restore, a failover that lost "
        "commits, or a TRUNCATE): verify cache dropped, re-reading the feed");
    absl::StatusOr<storage::FeedPosition> start =
        store_->StartingPoint(3 * gap);
    if (!start.ok()) {
      last_round_failed_ = true;
      return false;
    }
    cursor_ = FeedCursor(start->seq, ToChrono(options_.gap_timeout));
    anchor_ = *start;
    applied_.store(cursor_.applied(), std::memory_order_relaxed);
    published_ = -1;  // publish the new position with the next round
    return true;
  }

  std::vector<int64_t> seqs;
  seqs.reserve(read->changes.size());
  for (const storage::KeyChange& c : read->changes) seqs.push_back(c.seq);
  const bool truncated = static_cast<int>(seqs.size()) >= options_.batch;
  const int64_t covered = truncated ? seqs.back() : FeedCursor::kCoveredAll;
  std::vector<int64_t> fresh = cursor_.Observe(seqs, covered, read_started,
                                               read_finished, ToChrono(gap));
  // `fresh` is a subsequence of `seqs` in the same order.
  size_t next = 0;
  for (const storage::KeyChange& c : read->changes) {
    if (next < fresh.size() && fresh[next] == c.seq) {
      verifier_->Evict(c.key_id);
      ++next;
    }
  }
  if (!read->changes.empty() && read->changes.back().seq > anchor_.seq) {
    anchor_.seq = read->changes.back().seq;
    anchor_.created_at = read->changes.back().created_at;
  }
  applied_.store(cursor_.applied(), std::memory_order_relaxed);
  abandoned_.store(cursor_.abandoned(), std::memory_order_relaxed);
  if (!truncated) {
    caught_up_at_.store(read_started.time_since_epoch().count(),
                        std::memory_order_relaxed);
  }

  const bool due =
      read_started - last_heartbeat_ >= ToChrono(options_.heartbeat_interval);
  if (cursor_.applied() != published_ || streams_moved || due || !trusted_) {
    last_round_failed_ = !Heartbeat();
  } else {
    last_round_failed_ = false;
  }
  return truncated || streams_truncated;
}

bool ReplicaSync::StreamRound(bool* truncated) {
  const Clock::time_point read_started = Clock::now();
  absl::StatusOr<storage::StreamRead> read =
      store_->ReadStreams(name_, options_.batch);
  const Clock::time_point read_finished = Clock::now();
  if (!read.ok()) {
    if (!last_round_failed_) {
      Log("warning", absl::StrCat("change feed stream read failed: ",
                                  read.status().message()));
    }
    return false;
  }
  const Clock::duration gap =
      ToChrono(std::max(options_.gap_timeout, read->max_gap_timeout));
  // The registered writers; the streams of writers that left are forgotten
  // (their callers got OK only once every live replica had applied them).
  std::map<std::string, Stream> next;
  for (const storage::StreamPosition& p : read->published) {
    auto it = streams_.find(p.writer);
    if (it != streams_.end()) {
      it->second.published = p.wseq;
      next.insert(streams_.extract(it));
    } else {
      // A stream new to this reader starts where this reader last
      // published (nothing: its first row).
      next.emplace(
          p.writer,
          Stream{FeedCursor(p.wseq, ToChrono(options_.gap_timeout)), p.wseq});
    }
  }
  for (const auto& [writer, stream] : streams_) {
    forgotten_abandoned_ += stream.cursor.abandoned();
  }
  streams_ = std::move(next);

  // Each stream's rows, in wseq order.
  std::map<std::string, std::vector<const storage::KeyChange*>> by_writer;
  for (const storage::KeyChange& row : read->changes) {
    by_writer[row.writer].push_back(&row);
  }
  int64_t abandoned = forgotten_abandoned_;
  for (auto& [writer, stream] : streams_) {
    std::vector<const storage::KeyChange*> rows;
    if (auto it = by_writer.find(writer); it != by_writer.end()) {
      rows = std::move(it->second);
    }
    std::vector<int64_t> wseqs;
    wseqs.reserve(rows.size());
    for (const storage::KeyChange* row : rows) wseqs.push_back(row->wseq);
    const bool full = static_cast<int>(wseqs.size()) >= options_.batch;
    if (full) *truncated = true;
    const int64_t before = stream.cursor.abandoned();
    std::vector<int64_t> fresh = stream.cursor.Observe(
        wseqs, full ? wseqs.back() : FeedCursor::kCoveredAll, read_started,
        read_finished, gap);
    // `fresh` is a subsequence of `wseqs` in the same order.
    size_t f = 0;
    for (const storage::KeyChange* row : rows) {
      if (f == fresh.size()) break;
      if (row->wseq != fresh[f]) continue;
      ++f;
      if (row->change_type != "void") verifier_->Evict(row->key_id);
    }
    if (stream.cursor.abandoned() != before) {
      Log("warning",
          absl::StrCat("gave up ", stream.cursor.abandoned() - before,
                       " missing position(s) of writer ", writer,
                       "'s change stream after the gap timeout"));
    }
    abandoned += stream.cursor.abandoned();
  }
  stream_abandoned_.store(abandoned, std::memory_order_relaxed);
  return true;
}

bool ReplicaSync::PublishStreamPositions() {
  std::vector<storage::StreamPosition> moved;
  for (const auto& [writer, stream] : streams_) {
    if (stream.cursor.applied() != stream.published) {
      moved.push_back({writer, stream.cursor.applied()});
    }
  }
  if (moved.empty()) return true;
  absl::Status s = store_->PublishPositions(name_, moved);
  if (!s.ok()) {
    if (!last_round_failed_) {
      Log("warning", absl::StrCat("publishing the change stream positions "
                                  "failed: ",
                                  s.message()));
    }
    return false;
  }
  for (const storage::StreamPosition& p : moved) {
    streams_.at(p.writer).published = p.wseq;
  }
  return true;
}

bool ReplicaSync::Heartbeat() {
  if (!fault::kTailerBeforeHeartbeat.Hit(options_.fault_scope).ok()) {
    return false;
  }
  const Clock::time_point sent = Clock::now();
  absl::Status hb = store_->Heartbeat(name_, cursor_.applied(), anchor_);
  if (absl::IsNotFound(hb)) {
    // Our row was pruned or deleted: writers may have stopped waiting for
    // us, so nothing cached can be trusted. Register again; trust comes
    // back with the next heartbeat.
    ResetCache("replica row missing; registering again");
    absl::Status registered = store_->Register(Registration(), absl::Hours(1));
    if (registered.ok()) published_ = cursor_.applied();
    return registered.ok();
  }
  if (!hb.ok()) {
    if (!last_round_failed_) {
      Log("warning", absl::StrCat("replica heartbeat failed: ", hb.message()));
    }
    return false;
  }
  const Clock::time_point returned = Clock::now();
  if (returned >= trusted_until_) {
    // The trust bound in force passed before we knew this heartbeat had
    // landed. Writers stop waiting for a replica `lease` after its previous
    // heartbeat, which is no earlier than that bound plus the margin, so
    // some may have returned OK without us: whatever the cache holds may
    // predate their changes, and the feed read of this round may too.
    // Trust only what is read from now on.
    verifier_->EvictAll();
    if (trusted_until_ != Clock::time_point{}) {
      cache_resets_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  last_heartbeat_ = sent;
  published_ = cursor_.applied();
  if (returned - live_counted_at_ >= std::chrono::seconds(1)) {
    absl::StatusOr<int64_t> live = store_->LiveReplicas();
    if (live.ok()) {
      live_replicas_.store(static_cast<int>(std::max<int64_t>(1, *live)),
                           std::memory_order_relaxed);
      live_counted_at_ = returned;
    }
  }
  trusted_until_ = sent + ToChrono(options_.lease - options_.lease_margin);
  verifier_->SetCacheTrustedUntil(trusted_until_);
  if (!trusted_) {
    Log("info", "replica lease held: answering from the verify cache");
  }
  trusted_ = true;
  return true;
}

absl::StatusOr<int64_t> ReplicaSync::Announce(const ChangeRef& change,
                                              absl::Time deadline) {
  const absl::Time call_deadline = storage::CurrentCallDeadline();
  storage::KeyChange again;
  again.tenant_id = change.tenant_id;
  again.key_id = change.key_id;
  again.change_type = change.change_type;
  again.key_version = change.key_version;
  for (;;) {
    // In this process's stream when it has one.
    std::optional<storage::StreamPosition> slot;
    if (streams()) {
      slot = options_.stream_writer->DrawFeedSlot();
      if (!slot.has_value()) {
        return Unacknowledged(
            "this server has no change stream to announce it in",
            call_deadline);
      }
      again.writer = slot->writer;
      again.wseq = slot->wseq;
    }
    const Clock::time_point started = Clock::now();
    absl::StatusOr<int64_t> seq = ack_store_->Announce(again);
    const absl::Duration took = absl::FromChrono(Clock::now() - started);
    if (!seq.ok()) {
      // Its outcome may be unknown: close the position unless the
      // announcement took it (a void that fails too leaves a hole readers
      // give up after the gap timeout).
      if (slot.has_value()) ack_store_->AppendVoid(*slot).IgnoreError();
      return Unacknowledged("it could not be announced to the other replicas",
                            call_deadline);
    }
    reannounced_.fetch_add(1, std::memory_order_relaxed);
    // An announcement whose own commit took this long may have been
    // abandoned as a gap too: announce once more.
    if (took < options_.gap_timeout / 2) {
      return slot.has_value() ? slot->wseq : *seq;
    }
    if (absl::Now() >= deadline) {
      return Unacknowledged(
          "its announcements to the other replicas kept committing too "
          "slowly",
          call_deadline);
    }
  }
}

absl::Status ReplicaSync::AwaitChange(const ChangeRef& change,
                                      absl::Duration mutation_took) {
  const absl::Time call_deadline = storage::CurrentCallDeadline();
  const absl::Time deadline =
      std::min(absl::Now() + ack_timeout(), call_deadline);
  int64_t target = 0;
  if (!change.wrote_feed_row || mutation_took >= options_.gap_timeout / 2) {
    // Tailers may have abandoned the mutation's seq as a rolled-back gap
    // before it committed (or, when this call wrote nothing, an earlier
    // attempt's): publish the change again under a fresh seq.
    absl::StatusOr<int64_t> seq = Announce(change, deadline);
    if (!seq.ok()) return seq.status();
    target = *seq;
  } else if (streams()) {
    // Our row is committed at a position of this process's stream at or
    // below the head drawn so far.
    target = options_.stream_writer->FeedWriterHead();
  } else {
    // Our row is committed, so the head is at or past it.
    absl::StatusOr<int64_t> head = ack_store_->Head();
    if (!head.ok()) {
      return Unacknowledged(
          "its acknowledgement by the other replicas could not be checked",
          call_deadline);
    }
    target = *head;
  }
  return WaitAcknowledged(target, deadline, call_deadline);
}

absl::Status ReplicaSync::AwaitAnnouncements(
    const std::vector<ChangeRef>& changes) {
  if (changes.empty()) return absl::OkStatus();
  const absl::Time call_deadline = storage::CurrentCallDeadline();
  const absl::Time deadline =
      std::min(absl::Now() + ack_timeout(), call_deadline);
  int64_t target = 0;
  for (const ChangeRef& change : changes) {
    absl::StatusOr<int64_t> seq = Announce(change, deadline);
    if (!seq.ok()) return seq.status();
    target = std::max(target, *seq);
  }
  return WaitAcknowledged(target, deadline, call_deadline);
}

absl::Status ReplicaSync::WaitAcknowledged(int64_t target, absl::Time deadline,
                                           absl::Time call_deadline) {
  absl::MutexLock lock(&ack_mu_);
  ++waiters_;
  waiter_arrived_ = true;
  // A poll already running may have read the table before our change
  // committed: only later polls count.
  const uint64_t after = polls_started_;
  // Replicas of a release before streams are waited for by their
  // applied_seq: it must reach the feed head read by a successful poll that
  // started after our change committed (the head then covers our row's seq,
  // and its announcement's). Without such replicas legacy_through_ is
  // INT64_MAX and the legacy target does not hold anything up.
  std::optional<int64_t> legacy_target;
  auto acknowledged = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(ack_mu_) {
    if (last_poll_ <= after || acknowledged_through_ == kNotAcknowledged) {
      return false;
    }
    if (!legacy_target.has_value()) legacy_target = poll_head_;
    return acknowledged_through_ >= target && legacy_through_ >= *legacy_target;
  };
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(ack_mu_) {
    return ack_stop_ || acknowledged();
  };
  ack_mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
  --waiters_;
  if (acknowledged()) return absl::OkStatus();
  if (ack_stop_) {
    return absl::UnavailableError(
        "the change is committed and stands, but this server is shutting "
        "down before every live replica acknowledged it");
  }
  if (last_poll_ > after && acknowledged_through_ == kNotAcknowledged) {
    return Unacknowledged(
        "its acknowledgement by the other replicas could not be checked",
        call_deadline);
  }
  return Unacknowledged(
      "not every live replica acknowledged it within the bounded wait",
      call_deadline);
}

void ReplicaSync::PollLoop() {
  for (;;) {
    uint64_t id = 0;
    {
      absl::MutexLock lock(&ack_mu_);
      auto wanted = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(ack_mu_) {
        return ack_stop_ || waiters_ > 0;
      };
      ack_mu_.Await(absl::Condition(&wanted));
      if (ack_stop_) return;
      id = ++polls_started_;
      waiter_arrived_ = false;
    }
    // With streams, replicas of a release before them are judged by the
    // legacy stream (docs/replication.md, "Rolling upgrade from a release
    // without streams").
    absl::StatusOr<storage::StreamAcknowledgement> through;
    if (streams()) {
      through = ack_store_->AcknowledgeStream(name_, name_.incarnation);
    } else {
      absl::StatusOr<int64_t> legacy = ack_store_->AcknowledgedThrough(name_);
      if (legacy.ok()) {
        through = storage::StreamAcknowledgement{
            *legacy, std::numeric_limits<int64_t>::max(), 0};
      } else {
        through = legacy.status();
      }
    }
    absl::MutexLock lock(&ack_mu_);
    last_poll_ = id;
    acknowledged_through_ = through.ok() ? through->through : kNotAcknowledged;
    if (through.ok()) {
      legacy_through_ = through->legacy_through;
      poll_head_ = through->head;
    }
    // Pause before the next poll, unless a writer arrived meanwhile (it
    // needs a poll that starts after its commit).
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(ack_mu_) {
      return ack_stop_ || waiter_arrived_;
    };
    ack_mu_.AwaitWithTimeout(absl::Condition(&woken),
                             options_.ack_poll_interval);
  }
}

}  // namespace lumo::service
