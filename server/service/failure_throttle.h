// Throttles failed API-key verifications (brute force, credential
// stuffing) per source address and per key id (docs/reliability.md
// "Brute force").
//
// Each address and each key id has a token bucket of `*_burst` failures
// that refills at `*_per_minute`. Only failures take tokens (a malformed,
// unknown, revoked, expired, rotated-away or other-tenant key); successes,
// scope and CIDR refusals and the key's own rate limit do not.
//   * An address with an empty bucket is refused before anything is
//     verified, whatever key it presents (CheckAddress).
//   * A key id with an empty bucket turns further *failures* for that id
//     into "throttled" (CheckKeyFailure); the right secret is still
//     accepted, so hammering a key id never locks its owner out.
// Addresses are counted per client network: IPv4 addresses one by one,
// IPv6 addresses per /`ipv6_prefix_len` (default 64, what one subscriber
// usually holds).
// Memory is bounded by `max_tracked` entries per kind. When a new entry is
// needed and the table is full, refilled buckets are forgotten first, then
// the fullest buckets (those that spent least), a tenth of the table at a
// time; an entry that is throttled (less than one token) is never
// forgotten while any other has a token. When every entry is throttled, a
// new address or key id is refused as throttled: the table fails closed,
// never open.
//
// Shared across replicas (docs/limits.md "Shared throttles"), with
// `shared` set: every bucket also lives in the shared counters (counter
// keys "t:ip:<network>" and "t:id:<keyId>"). A replica leases failure
// tokens from the shared bucket in batches of max(1, burst / (4 N)) off the
// request path (`schedule`), spends one per failure, and reports failures
// it counted without a token (at most one batch of them: beyond that it
// refuses until the reply). Alone (N = 1) it leases nothing ahead and only
// reports its failures, so the shared bucket counts exactly what its own
// does. When the shared bucket cannot pay, the replica
// refuses the address (or the key id's failures) for N times the wait for
// the next token, so that the N replicas together verify about one attempt
// per token. Its own bucket still applies; a store failure leaves only
// that (each replica its own budget, as without sharing).
// At most `max_shared_in_flight` lease statements are outstanding at once
// (handed to `schedule` and not yet finished or dropped; one more for the
// moment a returning statement hands its place on before giving it back):
// a flood of
// failures from many addresses must not take the database connections and
// workers that other requests need. A failure that would start a statement
// beyond that stays owed by its entry, which then refuses like one with a
// statement in flight (at most one batch of failures without a token), and
// is sent when a statement returns and frees its place, or with the
// entry's next failure.
//
// Thread-safe.
#ifndef LUMOKEYS_SERVER_SERVICE_FAILURE_THROTTLE_H_
#define LUMOKEYS_SERVER_SERVICE_FAILURE_THROTTLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/service/verifier.h"
#include "server/storage/counter_store.h"

namespace lumo::service {

struct FailureThrottleOptions {
  // Per source address: failures allowed in a burst, and the refill rate
  // (failures per minute). 0 disables address throttling.
  int ip_burst = 1000;
  int ip_per_minute = 600;
  // Per key id, likewise. 0 disables key-id throttling.
  int key_burst = 100;
  int key_per_minute = 60;
  size_t max_tracked = 100'000;
  int ipv6_prefix_len = 64;
  // The clock (tests inject one).
  std::function<absl::Time()> now = [] { return absl::Now(); };
  // The shared counters (null: this replica's buckets only); must outlive
  // the throttle.
  storage::CounterStore* shared = nullptr;
  // Runs a lease statement off the request path. Tasks must have run (or
  // been dropped) before the throttle is destroyed; a dropped task's lease
  // is asked for again after 10 s.
  std::function<void(std::function<void()>)> schedule =
      [](std::function<void()> task) { task(); };
  // The number of live replicas (at least 1 is used).
  std::function<int()> replicas = [] { return 1; };
  // Lease statements outstanding at once (at least 1).
  int max_shared_in_flight = 4;
};

class FailureThrottle {
 public:
  explicit FailureThrottle(FailureThrottleOptions options);

  // Before verifying: nullopt when `address` may attempt, else how long
  // until it may (at least one second). An empty address is never
  // throttled. A new address while the table is full of throttled entries
  // is refused.
  std::optional<absl::Duration> CheckAddress(absl::string_view address);

  // After a failed verification of `key_id`, before RecordFailure: nullopt
  // when the failure is answered as usual, else the wait to announce (at
  // least one second). An empty id is never throttled.
  std::optional<absl::Duration> CheckKeyFailure(absl::string_view key_id);

  // Counts one failure against `address` and `key_id` (either may be
  // empty: not counted).
  void RecordFailure(absl::string_view address, absl::string_view key_id);

  // After a verification from `address`: when `outcome` is a failure that
  // counts (see above), CheckKeyFailure then RecordFailure; returns the
  // wait when the failure is to be answered as throttled.
  std::optional<absl::Duration> AfterVerify(absl::string_view address,
                                            const VerifyOutcome& outcome);

  // True for the verification failures that take tokens.
  static bool CountsAsFailure(VerifyReason reason);

  // The status of a throttled attempt: RESOURCE_EXHAUSTED with the REST
  // code "rate_limit_exceeded" (429), the same for both kinds of throttle.
  static absl::Status ThrottledError();

  // Lease statements sent to the shared counters (tests, metrics).
  int64_t shared_calls() const;
  // Lease statements handed to `schedule` that have not finished (or been
  // dropped) yet.
  int shared_in_flight() const { return in_flight_.load(); }

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time updated;
  };
  struct Table {
    int burst = 0;
    int per_minute = 0;
    // Counter keys of the shared buckets: prefix + name.
    const char* prefix = "";
    absl::flat_hash_map<std::string, Bucket> buckets;
  };
  // This replica's view of one shared bucket.
  struct Shared {
    int64_t lease = 0;  // tokens granted and not spent
    int64_t debt = 0;   // failures counted without a token, not yet sent
    int64_t sent = 0;   // the debt sent with the lease in flight
    bool in_flight = false;
    absl::Time sent_at;
    // Owes failures that found every statement place taken; in owed_
    // until a place frees or its next failure sends them.
    bool queued = false;
    absl::Time queued_at;
    // Its name is in owed_ (queued or not any more).
    bool listed = false;
    absl::Time refused_until = absl::InfinitePast();
  };
  struct LeaseRequest {
    std::string counter;
    storage::BucketSpec spec;
    int64_t want = 0;
  };
  // Holds one of the max_shared_in_flight places while a statement's task
  // exists (it is released when the task has run or was dropped).
  class InFlightSlot;

  // The bucket for `name` refilled to `now`, or null when untracked.
  static Bucket* Find(Table& table, absl::string_view name, absl::Time now);
  std::optional<absl::Duration> Check(Table& table, absl::string_view name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts a failure; a lease to send (after unlocking) when one is due.
  std::optional<LeaseRequest> Take(Table& table, absl::string_view name,
                                   absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The shared side of Check / Take.
  std::optional<absl::Duration> CheckShared(const Table& table,
                                            absl::string_view name,
                                            absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<LeaseRequest> TakeShared(const Table& table,
                                         absl::string_view name, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands the leases to `schedule`; each reply is applied under mu_.
  void SendLeases(std::optional<LeaseRequest> a, std::optional<LeaseRequest> b)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Lease(const LeaseRequest& request) ABSL_LOCKS_EXCLUDED(mu_);
  // Starts the statement of the entry `s` (named `counter`), reporting its
  // debt: marks it in flight and takes a place.
  LeaseRequest StartLeaseLocked(const std::string& counter, Shared& s,
                                const storage::BucketSpec& spec, int64_t batch,
                                absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The statement of the first entry in owed_ that still owes, started
  // (nullopt when none).
  std::optional<LeaseRequest> NextOwedLocked(absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int Replicas() const;
  // Tokens leased ahead of need: max(1, burst / (4 N)); none when alone.
  int64_t Batch(double burst) const;
  // Room for one new entry (see the class comment); false when every entry
  // is throttled.
  bool MakeRoom(Table& table, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string Network(absl::string_view address) const;

  const size_t max_tracked_;
  const int ipv6_prefix_len_;
  const std::function<absl::Time()> now_;
  storage::CounterStore* const shared_store_;
  const std::function<void(std::function<void()>)> schedule_;
  const std::function<int()> replicas_;
  mutable absl::Mutex mu_;
  Table addresses_ ABSL_GUARDED_BY(mu_);
  Table keys_ ABSL_GUARDED_BY(mu_);
  // By counter key; at most max_tracked_ entries.
  absl::flat_hash_map<std::string, Shared> shared_ ABSL_GUARDED_BY(mu_);
  // Counter keys of entries that owe failures for want of a statement
  // place, oldest first, each at most once (an entry that no longer owes is
  // skipped). A place is handed on when a statement returns, whatever its
  // reply; a task the pool dropped hands on nothing (its entry refuses for
  // at most the lease wait, then sends again with its next failure).
  std::deque<std::string> owed_ ABSL_GUARDED_BY(mu_);
  int64_t shared_calls_ ABSL_GUARDED_BY(mu_) = 0;
  const int max_in_flight_;
  // Taken under mu_ (TakeShared, Lease), given back by InFlightSlot.
  std::atomic<int> in_flight_{0};
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_FAILURE_THROTTLE_H_
