// Credits (usage quotas) counted across replicas (docs/limits.md "Usage
// quotas"). A key's credits live in the shared CounterStore; each replica
// leases a batch and spends it in memory. Unlike rate limits there is no
// overdraft and no local allowance: every credit spent was granted by the
// database, so the cluster never spends more than the balance, and a
// replica that cannot reach the database spends only what it holds (fail
// closed). A request whose cost exceeds what can be had spends nothing.
//
// Lease size (docs/limits.md "Usage quotas"): a lease covers about
// `lease_horizon` of the key's recent use on this replica (the credits it
// spent since its previous lease, per second of that interval, times the
// horizon), at least `base_lease`, at most `max_lease` and never more than
// floor(remaining / (4 N)) of the balance the database last reported;
// always enough for the request's cost when the balance allows. A key at a
// high rate so pays about one lease per horizon, a key at a moderate rate
// one per `base_lease` credits, and a replica that dies holding a lease
// loses at most that lease. One lease statement per key is in flight at a
// time: a Renew that finds one in flight waits for its reply.
//
// Leases belong to an epoch (storage/counter_store.h): at a refill or an
// API set/add the epoch moves on, the replica drops what it holds of the
// old one (at the refill time, judged on the database clock, or when told
// with Drop) and its returns of old-epoch credits are ignored.
//
// Thread-safe.
#ifndef LUMOKEYS_SERVER_SERVICE_CLUSTER_CREDITS_H_
#define LUMOKEYS_SERVER_SERVICE_CLUSTER_CREDITS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/storage/counter_store.h"

namespace lumo::service {

struct ClusterCreditsOptions {
  // A lease covers about this long of the key's use on this replica, at
  // the rate it spent its previous lease ...
  absl::Duration lease_horizon = absl::Seconds(1);
  // ... measured over at least this long (a few spends right after a lease
  // do not make a rate of their own) ...
  absl::Duration min_rate_interval = absl::Milliseconds(10);
  // ... and is at least this many credits (a key at a moderate rate pays
  // one lease per this many credits) ...
  int64_t base_lease = 1000;
  // ... and at most this many (and a quarter of the replica's share of the
  // balance).
  int64_t max_lease = 100000;
  // A Renew that finds a lease statement of the same key in flight waits
  // for its reply at most this long (real time), then asks itself.
  absl::Duration renewal_wait = absl::Seconds(10);
  // Unspent credits are given back after this long unused.
  absl::Duration idle_return = absl::Seconds(5);
  // The local clock.
  std::function<absl::Time()> now = [] { return absl::Now(); };
  // The number of live replicas (at least 1 is used).
  std::function<int()> replicas = [] { return 1; };
};

struct SpendOutcome {
  enum class Result { kSpent, kExhausted, kNeedLease };
  Result result = Result::kNeedLease;
  // Credits this replica knows of after the request: its lease plus what
  // the database had left at the last lease.
  int64_t remaining = 0;
  // The next refill (local clock), when the quota has one.
  std::optional<absl::Time> next_refill;
  // The epoch of the lease spent from (Refund).
  int64_t epoch = 0;
};

class ClusterCredits {
 public:
  ClusterCredits(storage::CounterStore* store, ClusterCreditsOptions options);

  // In memory: spends `cost` (>= 0; 0 spends nothing and always succeeds)
  // from this replica's lease; kExhausted when the database had nothing
  // more at a lease less than a second ago and the lease cannot pay;
  // kNeedLease otherwise (call Renew on a worker thread, then Spend again).
  SpendOutcome Spend(absl::string_view key_id, int64_t cost);

  // Puts back `cost` credits a kSpent Spend took for a request that was
  // then refused for another reason; nothing when the lease has moved to
  // another epoch since (the credits are void then).
  void Refund(absl::string_view key_id, int64_t epoch, int64_t cost);

  // One lease from the store, large enough for `cost` when the balance
  // allows, sized as the class comment says. When a lease statement of the
  // key is in flight already, waits for its reply instead (at most
  // `renewal_wait`, and never past the call's deadline) and returns OK when
  // it succeeded (the caller spends again, and renews again if that lease
  // went to other requests first); when it failed (another caller's
  // deadline, say) or the wait ran out, asks the store itself. NOT_FOUND:
  // the key has no quota. UNAVAILABLE and the like: the caller must fail
  // closed. Blocking.
  absl::Status Renew(absl::string_view key_id, int64_t cost);

  // Forgets this replica's lease of `key_id` (its balance was set or
  // added to: the lease's epoch is over).
  void Drop(absl::string_view key_id);

  // The key changed (its balance may have been set or added to): the next
  // Spend of a cost > 0 asks the store first (kNeedLease), and that lease
  // keeps the credits held only when the epoch has not moved on; an
  // exhausted balance is not believed any more either. Nothing is lost
  // when the change was not a balance change.
  void Release(absl::string_view key_id);

  // Whether this replica is the one to report a refusal of `key_id` for
  // its balance of `epoch` (docs/limits.md "Exhaustion"): one replica per
  // key and epoch, decided by the shared bucket `x:<keyId>:<epoch>` of one
  // token (refilled once a day, so the row ends up a full bucket), true
  // also when the store cannot say (a duplicate report rather than none).
  // Each replica asks at most once per key and epoch while it holds the
  // key's lease. Blocking: one statement, unless asked already.
  bool ClaimExhaustionReport(absl::string_view key_id, int64_t epoch);
  // Whether this replica has asked ClaimExhaustionReport for (key, epoch)
  // (in memory).
  bool ExhaustionAsked(absl::string_view key_id, int64_t epoch) const;

  // Gives back the leases unused for `idle_return` (all of them with
  // `all`, at shutdown). Failed returns are dropped: the credits stay
  // spent, never doubled.
  void FlushReturns(bool all = false);

  int64_t store_calls() const;
  // The credits this replica holds of `key_id` (tests).
  int64_t held(absl::string_view key_id) const;
  // Renew calls waiting for another's lease statement now (tests).
  int renewals_waiting() const;

 private:
  struct Lease {
    int64_t credits = 0;
    int64_t epoch = 0;
    int64_t last_grant = 0;
    // What the database had left at the last lease.
    int64_t db_remaining = -1;  // unknown
    // The lease's epoch ends then (database clock).
    std::optional<absl::Time> next_refill;
    absl::Time used_at;
    // When the database last answered (an empty balance is believed for a
    // second: other replicas return what they did not spend).
    absl::Time leased_at = absl::InfinitePast();
    // Released: confirm the epoch with the store before spending.
    bool stale = false;
    // The epoch ClaimExhaustionReport was last asked for (-1: none).
    int64_t exhaustion_asked = -1;
    // Credits spent since `rate_since` (local clock), when the last lease
    // was applied: the rate that sizes the next lease. InfinitePast: no
    // lease yet.
    int64_t spent_since = 0;
    absl::Time rate_since = absl::InfinitePast();
    // The lease statement in flight (0: none), and the status of the last
    // one that ended.
    uint64_t renewing = 0;
    absl::Status renewal_status;
  };

  // The credits to ask for (the class comment).
  int64_t LeaseSize(const Lease& lease, int64_t cost, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Time DbNow() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops a lease whose epoch ended with a refill.
  void ExpireAtRefill(Lease& lease, absl::Time db_now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<absl::Time> Local(std::optional<absl::Time> db) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  storage::CounterStore* const store_;
  const ClusterCreditsOptions options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Lease> leases_ ABSL_GUARDED_BY(mu_);
  absl::Duration db_offset_ ABSL_GUARDED_BY(mu_);
  int64_t store_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int renewals_waiting_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t renewal_seq_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_CLUSTER_CREDITS_H_
