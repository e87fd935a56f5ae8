#include "server/service/cluster_windows.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "server/observability/log.h"

namespace lumo::service {

struct ClusterWindows::Counter {
  explicit Counter(const WindowLimit& l)
      : key(l.counter), local(l.limit, l.duration), overdraft(1, l.duration) {}

  const std::string key;

  // What this replica admitted (lease, overdraft and outage share).
  SlotWindow local;
  // The overdraft taken; its limit is set at each use.
  SlotWindow overdraft;
  // The current lease: tokens left, spendable in `lease_slot` until
  // `lease_end` (database clock).
  int64_t lease = 0;
  int64_t lease_slot = 0;
  absl::Time lease_end = absl::InfinitePast();
  int64_t last_grant = 0;
  // Overdraft not yet reported to the store.
  int64_t debt = 0;
  // From the last lease reply.
  int64_t db_used = 0;
  absl::Time db_reset = absl::InfinitePast();
  // The store granted nothing: refuse in memory until then.
  absl::Time exhausted_until = absl::InfinitePast();
  // A renewal handed to `schedule` that has not started.
  bool renew_queued = false;
  // A lease statement is in flight (at most one per counter and replica).
  bool leasing = false;
  // The last lease failed: fair share until a lease succeeds.
  bool outage = false;
  absl::Time outage_retry_at = absl::InfinitePast();

  // Whether this replica can forget the counter without changing any
  // answer: no lease, debt or statement of its own outstanding, nothing it
  // admitted (or overdrew) still in its window, no cached refusal and no
  // outage. A later use starts it afresh, as the first use did.
  bool Idle(absl::Time db_now) {
    return !leasing && !renew_queued && lease == 0 && debt == 0 && !outage &&
           exhausted_until <= db_now && local.Count(db_now) == 0 &&
           overdraft.Count(db_now) == 0;
  }
};

// Take sweeps idle counters once the map holds this many, then at twice
// what the sweep left (amortised: a sweep per as many new counters as it
// visits).
constexpr size_t kMinSweepAt = 1024;

namespace {

enum class Source { kLease, kOverdraft, kShare, kRefused, kNeedLease };

int64_t Overdraft(double fraction, int64_t limit, int replicas) {
  return static_cast<int64_t>(std::floor(fraction * limit / replicas));
}

// How long a renewal waits for the lease already in flight on its counter:
// longer than a lease statement may take (lock wait and statement
// ceilings).
constexpr absl::Duration kLeaseWait = absl::Seconds(10);

int64_t FairShare(int64_t limit, int replicas) {
  return (limit + replicas - 1) / replicas;
}

// Tighter: less remaining, then a later reset.
bool Tighter(const LimitState& a, const LimitState& b) {
  if (a.remaining != b.remaining) return a.remaining < b.remaining;
  return a.reset > b.reset;
}

}  // namespace

ClusterWindows::ClusterWindows(storage::CounterStore* store,
                               ClusterWindowsOptions options)
    : store_(store), options_(std::move(options)), sweep_at_(kMinSweepAt) {}

ClusterWindows::~ClusterWindows() = default;

int ClusterWindows::Replicas() const {
  return std::max(1, options_.replicas());
}

absl::Time ClusterWindows::DbNow() const { return options_.now() + db_offset_; }

ClusterWindows::Counter& ClusterWindows::CounterFor(const WindowLimit& limit) {
  std::unique_ptr<Counter>& c = counters_[limit.counter];
  if (c == nullptr ||
      c->local.slot_length() != SlotWindow::SlotLength(limit.duration)) {
    c = std::make_unique<Counter>(limit);
  }
  if (c->local.limit() != limit.limit) {
    // An edited limit (docs/limits.md "Editing limits"): a lowered one
    // drops the lease granted under the old limit (its tokens stay counted
    // as spent: the safe side), a raised one ends the cached refusal so the
    // new room is asked for at once.
    if (limit.limit < c->local.limit()) c->lease = 0;
    c->exhausted_until = absl::InfinitePast();
    c->local.set_limit(limit.limit);
  }
  return *c;
}

void ClusterWindows::SweepIdle(absl::Time db_now) {
  for (auto& [key, c] : counters_) ExpireLease(*c, db_now);
  absl::erase_if(counters_, [db_now](const auto& item) {
    return item.second->Idle(db_now);
  });
  sweep_at_ = std::max(kMinSweepAt, 2 * counters_.size());
}

size_t ClusterWindows::counters_held() const {
  absl::MutexLock lock(&mu_);
  return counters_.size();
}

void ClusterWindows::ExpireLease(Counter& c, absl::Time db_now) {
  if (c.lease_end > db_now) return;
  if (c.lease > 0) returns_.push_back({c.key, c.lease_slot, c.lease});
  c.lease = 0;
}

LimitState ClusterWindows::StateOf(const Counter& c, absl::Time db_now) const {
  LimitState s;
  s.limit = c.local.limit();
  int64_t remaining = c.local.Remaining(db_now);
  absl::Time reset = c.local.Reset(db_now);
  if (c.outage) {
    const int64_t share = FairShare(s.limit, Replicas());
    remaining = std::max<int64_t>(
        0, std::min(remaining, share - c.local.Count(db_now)));
  } else if (c.db_reset != absl::InfinitePast()) {
    remaining = std::max<int64_t>(
        0, std::min(remaining, s.limit - c.db_used + c.lease));
    if (c.db_reset > db_now) reset = std::max(reset, c.db_reset);
  }
  s.remaining = remaining;
  s.reset = reset - db_offset_;
  return s;
}

bool ClusterWindows::FlushDue() {
  if (returns_.empty()) return false;
  // A scheduled flush that has not run within a second was dropped (a full
  // pool): schedule another.
  const absl::Time now = options_.now();
  if (flush_scheduled_ && now - flush_scheduled_at_ < absl::Seconds(1)) {
    return false;
  }
  flush_scheduled_ = true;
  flush_scheduled_at_ = now;
  return true;
}

void ClusterWindows::ScheduleFlush() {
  options_.schedule([this] { FlushReturns(); });
}

TakeOutcome ClusterWindows::Take(absl::Span<const WindowLimit> limits) {
  TakeOutcome out;
  // Limits whose renewal ahead of need this take starts (rare).
  absl::InlinedVector<const WindowLimit*, 2> renew;
  bool flush = false;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time db_now = DbNow();
    // Before this take holds any counter (the sweep may erase them).
    if (counters_.size() >= sweep_at_) SweepIdle(db_now);
    const int replicas = Replicas();
    absl::InlinedVector<Source, 4> sources(limits.size(), Source::kNeedLease);
    absl::InlinedVector<Counter*, 4> counters(limits.size());
    absl::Time retry_db = absl::InfinitePast();
    bool refused = false;
    bool need_lease = false;
    for (size_t i = 0; i < limits.size(); ++i) {
      const WindowLimit& l = limits[i];
      Counter& c = CounterFor(l);
      counters[i] = &c;
      ExpireLease(c, db_now);
      absl::Time retry = absl::InfinitePast();
      const int64_t overdraft =
          Overdraft(options_.overdraft_fraction, l.limit, replicas);
      if (c.local.Count(db_now) >= l.limit) {
        retry = c.local.AvailableAt(db_now);
      } else if (c.lease > 0) {
        sources[i] = Source::kLease;
      } else if (c.exhausted_until > db_now) {
        retry = c.exhausted_until;
      } else if (c.outage && c.outage_retry_at <= db_now) {
        // Once a second the caller tries a lease itself (a scheduled
        // renewal could be dropped by a full pool and never come back).
        c.outage_retry_at = db_now + absl::Seconds(1);
        sources[i] = Source::kNeedLease;
        need_lease = true;
        out.need_lease.push_back(i);
        continue;
      } else if (c.outage) {
        if (c.local.Count(db_now) < FairShare(l.limit, replicas)) {
          sources[i] = Source::kShare;
        } else {
          retry = c.local.Reset(db_now);
        }
      } else if (overdraft > 0 && c.overdraft.Count(db_now) < overdraft) {
        sources[i] = Source::kOverdraft;
      } else {
        sources[i] = Source::kNeedLease;
        need_lease = true;
        out.need_lease.push_back(i);
        continue;
      }
      if (retry != absl::InfinitePast()) {
        sources[i] = Source::kRefused;
        refused = true;
        if (retry > retry_db) {
          retry_db = retry;
          out.reported = StateOf(c, db_now);
          out.reported.name = l.name;
        }
      }
    }
    if (refused) {
      out.result = TakeOutcome::Result::kRefused;
      out.retry_at = retry_db - db_offset_;
      out.need_lease.clear();
    } else if (need_lease) {
      out.result = TakeOutcome::Result::kNeedLease;
    } else {
      out.result = TakeOutcome::Result::kAdmitted;
      bool first = true;
      for (size_t i = 0; i < limits.size(); ++i) {
        Counter& c = *counters[i];
        c.local.Add(db_now, 1);
        if (sources[i] == Source::kLease) {
          --c.lease;
          if (c.lease * 2 < c.last_grant && !c.renew_queued && !c.leasing) {
            c.renew_queued = true;
            renew.push_back(&limits[i]);
          }
        } else if (sources[i] == Source::kOverdraft) {
          c.overdraft.set_limit(
              std::max<int64_t>(1, Overdraft(options_.overdraft_fraction,
                                             limits[i].limit, replicas)));
          c.overdraft.Add(db_now, 1);
          ++c.debt;
          if (!c.renew_queued && !c.leasing) {
            c.renew_queued = true;
            renew.push_back(&limits[i]);
          }
        }
        LimitState s = StateOf(c, db_now);
        if (first || Tighter(s, out.reported)) {
          out.reported = std::move(s);
          out.reported.name = limits[i].name;
        }
        first = false;
      }
    }
    flush = FlushDue();
  }
  if (flush) ScheduleFlush();
  for (const WindowLimit* l : renew) {
    options_.schedule(
        [this, l = *l] { (void)RenewCounter(l, /*queued=*/true); });
  }
  return out;
}

absl::Status ClusterWindows::Renew(const WindowLimit& limit) {
  return RenewCounter(limit, /*queued=*/false);
}

absl::Status ClusterWindows::RenewCounter(const WindowLimit& limit,
                                          bool queued) {
  int64_t debt = 0;
  int64_t want = 1;
  std::vector<PendingReturn> own_returns;
  {
    absl::MutexLock lock(&mu_);
    Counter* c = &CounterFor(limit);
    if (queued) {
      c->renew_queued = false;
      // A caller renewed since this was queued: nothing left to do.
      if (c->leasing || (c->lease * 2 >= c->last_grant && c->debt == 0)) {
        return absl::OkStatus();
      }
    } else {
      // This call does what a queued renewal would (one that a full pool
      // dropped would otherwise stop renewals ahead of need for good).
      c->renew_queued = false;
    }
    if (c->leasing) {
      // One lease per counter at a time on a replica: the caller waits for
      // the reply in flight instead of asking again. (Two replies applied
      // in the other order than the store granted them would refuse
      // requests while the replica holds tokens: the later grant of 0
      // marks the counter exhausted before the earlier grant's tokens
      // arrive.)
      const std::string key = limit.counter;
      auto replied = [this, &key]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        auto it = counters_.find(key);
        return it == counters_.end() || !it->second->leasing;
      };
      if (mu_.AwaitWithTimeout(absl::Condition(&replied), kLeaseWait)) {
        return absl::OkStatus();
      }
      // A reply slower than any statement may take: ask for a lease too.
      c = &CounterFor(limit);
    }
    debt = std::exchange(c->debt, 0);
    want = std::clamp<int64_t>(limit.limit / (4 * Replicas()), 1,
                               std::max<int64_t>(1, options_.max_lease));
    c->leasing = true;
    ++store_calls_;
    // The unspent tokens of this counter's ended leases go back before the
    // lease, in this call rather than the scheduled flush: until they do,
    // the store counts them as granted and would grant less, or nothing,
    // for tokens nobody spent (a renewal that runs before the flush).
    ExpireLease(*c, DbNow());
    for (size_t i = 0; i < returns_.size();) {
      if (returns_[i].counter == limit.counter) {
        own_returns.push_back(std::move(returns_[i]));
        returns_[i] = std::move(returns_.back());
        returns_.pop_back();
      } else {
        ++i;
      }
    }
    store_calls_ += static_cast<int64_t>(own_returns.size());
  }
  SendReturns(own_returns);
  // A lease that lost a deadlock (ABORTED: replicas creating the same
  // counter's rows at once) was rolled back whole, so it is asked for again
  // a few times before the store counts as unreachable: outage mode is for
  // a store that cannot answer, not for a lost race.
  constexpr int kLeaseAttempts = 4;
  absl::StatusOr<storage::WindowLease> lease;
  for (int attempt = 0; attempt < kLeaseAttempts; ++attempt) {
    lease = store_->LeaseWindow(
        limit.counter,
        storage::WindowSpec{limit.limit,
                            SlotWindow::SlotLength(limit.duration)},
        want, debt);
    if (lease.ok() || lease.status().code() != absl::StatusCode::kAborted) {
      break;
    }
  }
  const absl::Time local_now = options_.now();
  bool flush = false;
  absl::Status status = RenewReply(limit, debt, lease, local_now, flush);
  if (flush) ScheduleFlush();
  return status;
}

absl::Status ClusterWindows::RenewReply(
    const WindowLimit& limit, int64_t debt,
    const absl::StatusOr<storage::WindowLease>& lease, absl::Time local_now,
    bool& flush) {
  absl::MutexLock lock(&mu_);
  Counter& c = CounterFor(limit);
  c.leasing = false;
  if (!lease.ok()) {
    c.debt += debt;
    if (!c.outage) {
      log::Line(log::Level::kWarning,
                "rate limit counter in outage mode: lease failed")
          .Str("counter", limit.counter)
          .Str("error", lease.status().ToString());
    }
    c.outage = true;
    c.outage_retry_at = DbNow() + absl::Seconds(1);
    return lease.status();
  }
  if (c.outage) {
    log::Line(log::Level::kInfo, "rate limit counter leased again")
        .Str("counter", limit.counter);
  }
  c.outage = false;
  db_offset_ = lease->db_now - local_now;
  if (c.lease > 0 && c.lease_slot == lease->slot) {
    c.lease += lease->granted;
  } else {
    ExpireLease(c, absl::InfiniteFuture());  // queue any unspent tokens
    c.lease = lease->granted;
    c.lease_slot = lease->slot;
    c.lease_end = lease->slot_end;
  }
  if (lease->granted > 0) c.last_grant = lease->granted;
  c.db_used = lease->used;
  c.db_reset = lease->reset;
  c.exhausted_until = lease->granted > 0
                          ? absl::InfinitePast()
                          : std::min(lease->reset, lease->slot_end);
  flush = FlushDue();
  return absl::OkStatus();
}

void ClusterWindows::FlushReturns(bool all) {
  std::vector<PendingReturn> returns;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time db_now = all ? absl::InfiniteFuture() : DbNow();
    for (auto& [key, c] : counters_) ExpireLease(*c, db_now);
    returns.swap(returns_);
    flush_scheduled_ = false;
    store_calls_ += static_cast<int64_t>(returns.size());
  }
  SendReturns(returns);
}

void ClusterWindows::SendReturns(const std::vector<PendingReturn>& returns) {
  for (const PendingReturn& r : returns) {
    (void)store_->ReturnWindow(r.counter, r.slot, r.amount);
  }
}

int64_t ClusterWindows::store_calls() const {
  absl::MutexLock lock(&mu_);
  return store_calls_;
}

}  // namespace lumo::service
