// Failed portal logins, counted so that guessing is slow and a known admin
// is never locked out (docs/portal.md "Login answers and throttling").
//
// Three counters, each in fixed windows of `window`:
//   pair     (account, client network): at most `max_failures_per_pair`;
//   network  (client network):          at most `max_failures_per_network`;
//   account  (all networks):            at most `max_failures_per_account`,
//            after which only networks the account logged in from before
//            ("known networks") may try; the others wait for the window.
// A client network is the address for IPv4 and its /`ipv6_prefix_len` for
// IPv6 (core::ClientNetwork).
//
// An attempt is reserved before the password is checked (Reserve counts it
// as a failure in all three counters at once, under one lock), so parallel
// attempts can never pass a limit between a check and a record. Its
// outcome then settles it: a failure keeps the count, Succeeded refunds it
// (and clears the pair), Cancel refunds it (the attempt was not decided,
// e.g. no hashing slot).
//
// Bounded memory: at most `max_tracked` counters. When a new counter is
// needed and the table is full even after dropping ended windows, the
// attempt is refused (kTableFull): the throttle fails closed, never open.
// Known networks are kept for `known_network_ttl`, at most
// `max_known_per_account` per account and `max_tracked` in all (the oldest
// is forgotten first: forgetting only makes the account cap stricter).
//
// Shared by the replicas (docs/limits.md "Shared throttles"), with
// `shared` set: each counter is also a token bucket in the shared counters
// (capacity = the counter's maximum, refilled at maximum / window), and
// the known networks live in the shared store too. ReserveShared takes one
// token from each shared bucket for a reserved attempt (a blocking call of
// up to four statements: call it off the RPC threads); Succeeded refills the
// pair's bucket, gives the others their token back and records the network
// as known; Cancel gives every token back. The account counter then
// refuses only in ReserveShared (this replica's own account count as well
// as the shared one: a network any replica saw the account log in from is
// known). When the shared store fails, the attempt is counted by this
// replica alone.
//
// Thread-safe.
#ifndef LUMOKEYS_SERVER_SERVICE_LOGIN_THROTTLE_H_
#define LUMOKEYS_SERVER_SERVICE_LOGIN_THROTTLE_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/storage/counter_store.h"

namespace lumo::service {

struct LoginThrottleOptions {
  int max_failures_per_pair = 5;
  int max_failures_per_network = 20;
  int max_failures_per_account = 20;
  absl::Duration window = absl::Minutes(15);
  absl::Duration known_network_ttl = absl::Hours(24 * 30);
  size_t max_known_per_account = 8;
  size_t max_tracked = 100000;
  int ipv6_prefix_len = 64;
  std::function<absl::Time()> now = [] { return absl::Now(); };
  // The shared counters (null: this replica's counters only); must outlive
  // the throttle.
  storage::CounterStore* shared = nullptr;
};

// Which counter refused an attempt.
enum class LoginThrottleScope {
  kNone,       // not refused
  kPair,       // the account from this network
  kNetwork,    // this network, any account
  kAccount,    // the account from networks it never logged in from
  kTableFull,  // no room to count the attempt (fail closed)
};

// "pair", "network", "account", "table_full" ("" for kNone).
absl::string_view LoginThrottleScopeName(LoginThrottleScope scope);

struct LoginReservation {
  // kNone when the attempt was reserved and may go ahead.
  LoginThrottleScope refused_by = LoginThrottleScope::kNone;
  // When refused: how long until the refusing counter's window ends.
  absl::Duration retry_after;
  bool ok() const { return refused_by == LoginThrottleScope::kNone; }

  // The windows the attempt was counted in (a refund never lands in a later
  // window of the same counter).
  std::string account;
  std::string network;
  absl::Time pair_start, network_start, account_start;
  // With shared counters: this replica's account counter was at its limit
  // (ReserveShared decides whether the network is known).
  bool account_at_limit = false;
  // The shared buckets the attempt took a token from.
  bool shared_pair = false;
  bool shared_network = false;
  bool shared_account = false;
};

class LoginThrottle {
 public:
  explicit LoginThrottle(LoginThrottleOptions options);

  // `account` names the account (tenant and normalised email), `network`
  // the client network. Reserves the attempt in every counter, or refuses
  // it without counting anything.
  LoginReservation Reserve(absl::string_view account,
                           absl::string_view network);
  // With shared counters, counts the reserved attempt `reservation` in
  // the shared buckets too (blocking). When a shared counter (or the
  // account counter, for a network the account is not known from) refuses,
  // the attempt is refunded everywhere and `reservation` says which and
  // for how long. Without shared counters: nothing.
  void ReserveShared(LoginReservation& reservation);
  // The reserved attempt logged in: refunds it, clears the pair's failures
  // and remembers the network as known for the account (blocking with
  // shared counters).
  void Succeeded(const LoginReservation& reservation);
  // The reserved attempt was not decided: refunds it everywhere (blocking
  // when it took shared tokens).
  void Cancel(const LoginReservation& reservation);

  const LoginThrottleOptions& options() const { return options_; }
  // Counters held now (tests, metrics).
  size_t tracked() const;

 private:
  struct Window {
    absl::Time start;
    int count = 0;
  };
  struct Known {
    std::string network;
    absl::Time last_success;
  };
  // The live window of `key` (nullptr when absent or ended; an ended one is
  // erased).
  Window* LiveLocked(const std::string& key, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IsKnownLocked(absl::string_view account, absl::string_view network,
                     absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Room for `needed` new counters, after dropping ended windows if full.
  bool MakeRoomLocked(size_t needed, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RefundLocked(const std::string& key, absl::Time start)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Refunds the attempt in this replica's three counters.
  void RefundLocal(const LoginReservation& reservation);
  // Gives back the shared tokens the attempt took (the pair's bucket filled
  // up with `clear_pair`).
  void ReturnShared(const LoginReservation& reservation, bool clear_pair);
  storage::BucketSpec SpecOf(int max_failures) const;

  const LoginThrottleOptions options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Window> windows_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::vector<Known>> known_
      ABSL_GUARDED_BY(mu_);
  size_t known_count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_LOGIN_THROTTLE_H_
