#include "server/service/replica_sync.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/core/crypto.h"
#include "server/fault/fault_points.h"

namespace lumo::service {

namespace {

std::chrono::nanoseconds ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

absl::StatusOr<std::string> RandomReplicaId() {
  // Only has to be unique among replicas: 16 base62 characters.
  return core::RandomBase62(16);
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
    ReplicaSyncOptions options) {
  if (absl::Status s = ValidateReplicaSyncOptions(options); !s.ok()) return s;
  if (options.replica_id.empty()) {
    absl::StatusOr<std::string> id = RandomReplicaId();
    if (!id.ok()) return id.status();
    options.replica_id = *std::move(id);
  }
  if (options.fault_scope.empty()) options.fault_scope = options.replica_id;
  // Untrusted until the first round renews the lease.
  verifier->SetCacheTrustedUntil(Clock::time_point{});
  // Any change still uncommitted now allocated its seq less than
  // gap_timeout / 2 ago or will be re-announced; starting three gap
  // timeouts back leaves room for the clock read and created_at skew.
  absl::StatusOr<int64_t> start = store->StartingPoint(3 * options.gap_timeout);
  if (!start.ok()) return start.status();
  storage::ReplicaRegistration reg;
  reg.id = options.replica_id;
  reg.address = options.address;
  reg.hostname = options.hostname;
  reg.pid = options.pid;
  reg.lease = options.lease;
  reg.applied_seq = *start;
  if (absl::Status s = store->Register(reg, absl::Hours(1)); !s.ok()) return s;
  std::unique_ptr<ReplicaSync> sync(
      new ReplicaSync(store, verifier, std::move(options), *start));
  sync->thread_ = std::thread([p = sync.get()] { p->Loop(); });
  return sync;
}

ReplicaSync::ReplicaSync(storage::ChangeFeedStore* store, Verifier* verifier,
                         ReplicaSyncOptions options, int64_t start_after)
    : store_(store),
      verifier_(verifier),
      options_(std::move(options)),
      cursor_(start_after, ToChrono(options_.gap_timeout)) {
  applied_.store(start_after, std::memory_order_relaxed);
  published_ = start_after;
}

ReplicaSync::~ReplicaSync() { Stop(); }

void ReplicaSync::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (absl::Status s = store_->Deregister(options_.replica_id); !s.ok()) {
    Log("warning",
        absl::StrCat("replica deregistration failed: ", s.message()));
  }
}

absl::Duration ReplicaSync::ack_timeout() const {
  // A dead replica's lease ends at most `lease` after the commit; a live one
  // acknowledges within the gap timeout plus a few rounds.
  return std::max(options_.lease, options_.gap_timeout +
                                      2 * options_.poll_interval +
                                      options_.heartbeat_interval) +
         absl::Seconds(1);
}

void ReplicaSync::Log(absl::string_view level, absl::string_view message) {
  if (options_.log) options_.log(level, message);
}

void ReplicaSync::Loop() {
  for (;;) {
    bool again = Round();
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    if (!again) {
      mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.poll_interval);
      if (stop_) return;
    }
  }
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
  const Clock::time_point read_started = Clock::now();
  absl::StatusOr<std::vector<storage::KeyChange>> rows =
      store_->ReadChanges(cursor_.applied(), options_.batch);
  const Clock::time_point read_finished = Clock::now();
  if (!rows.ok()) {
    if (!last_round_failed_) {
      Log("warning",
          absl::StrCat("change feed read failed: ", rows.status().message()));
    }
    last_round_failed_ = true;
    return false;
  }
  std::vector<int64_t> seqs;
  seqs.reserve(rows->size());
  for (const storage::KeyChange& c : *rows) seqs.push_back(c.seq);
  const bool truncated = static_cast<int>(rows->size()) >= options_.batch;
  const int64_t covered =
      truncated ? rows->back().seq : FeedCursor::kCoveredAll;
  std::vector<int64_t> fresh =
      cursor_.Observe(seqs, covered, read_started, read_finished);
  // `fresh` is a subsequence of `seqs` in the same order.
  size_t next = 0;
  for (const storage::KeyChange& c : *rows) {
    if (next < fresh.size() && fresh[next] == c.seq) {
      verifier_->Evict(c.key_id);
      ++next;
    }
  }
  applied_.store(cursor_.applied(), std::memory_order_relaxed);
  abandoned_.store(cursor_.abandoned(), std::memory_order_relaxed);
  if (!truncated) {
    caught_up_at_.store(read_started.time_since_epoch().count(),
                        std::memory_order_relaxed);
  }

  const bool due =
      read_started - last_heartbeat_ >= ToChrono(options_.heartbeat_interval);
  if (cursor_.applied() != published_ || due || !trusted_) {
    if (!fault::kTailerBeforeHeartbeat.Hit(options_.fault_scope).ok()) {
      last_round_failed_ = true;
      return false;
    }
    const Clock::time_point sent = Clock::now();
    absl::Status hb = store_->Heartbeat(options_.replica_id, cursor_.applied());
    if (absl::IsNotFound(hb)) {
      // Our row was pruned or deleted: writers may have stopped waiting
      // for us, so nothing cached can be trusted. Start afresh.
      Log("warning", "replica row missing; registering again");
      verifier_->SetCacheTrustedUntil(Clock::time_point{});
      verifier_->EvictAll();
      trusted_ = false;
      storage::ReplicaRegistration reg;
      reg.id = options_.replica_id;
      reg.address = options_.address;
      reg.hostname = options_.hostname;
      reg.pid = options_.pid;
      reg.lease = options_.lease;
      reg.applied_seq = cursor_.applied();
      hb = store_->Register(reg, absl::Hours(1));
      if (hb.ok()) published_ = cursor_.applied();
      last_round_failed_ = !hb.ok();
      return false;
    }
    if (!hb.ok()) {
      if (!last_round_failed_) {
        Log("warning",
            absl::StrCat("replica heartbeat failed: ", hb.message()));
      }
      last_round_failed_ = true;
      return false;
    }
    last_heartbeat_ = sent;
    published_ = cursor_.applied();
    verifier_->SetCacheTrustedUntil(
        sent + ToChrono(options_.lease - options_.lease_margin));
    if (!trusted_) {
      Log("info", "replica lease held: answering from the verify cache");
    }
    trusted_ = true;
  }
  last_round_failed_ = false;
  return truncated;
}

absl::Status ReplicaSync::AwaitChange(const ChangeRef& change,
                                      absl::Duration mutation_took) {
  const Clock::time_point deadline = Clock::now() + ToChrono(ack_timeout());
  int64_t target = 0;
  if (mutation_took >= options_.gap_timeout / 2) {
    // Tailers may have abandoned our seq as a rolled-back gap before it
    // committed: publish the change again under a fresh seq.
    storage::KeyChange again;
    again.tenant_id = change.tenant_id;
    again.key_id = change.key_id;
    again.change_type = change.change_type;
    again.key_version = change.key_version;
    absl::StatusOr<int64_t> seq = store_->Announce(again);
    if (!seq.ok()) {
      return absl::UnavailableError(
          "the change is committed and stands, but it could not be announced "
          "to the other replicas");
    }
    reannounced_.fetch_add(1, std::memory_order_relaxed);
    target = *seq;
  } else {
    // Our row is committed, so the head is at or past it.
    absl::StatusOr<int64_t> head = store_->Head();
    if (!head.ok()) {
      return absl::UnavailableError(
          "the change is committed and stands, but its acknowledgement by "
          "the other replicas could not be checked");
    }
    target = *head;
  }
  for (;;) {
    absl::StatusOr<int64_t> pending =
        store_->CountUnacknowledged(options_.replica_id, target);
    if (pending.ok() && *pending == 0) return absl::OkStatus();
    if (Clock::now() >= deadline) {
      return absl::UnavailableError(
          "the change is committed and stands, but not every live replica "
          "acknowledged it within the bounded wait");
    }
    absl::SleepFor(options_.ack_poll_interval);
  }
}

}  // namespace lumo::service
