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
};

class LoginThrottle {
 public:
  explicit LoginThrottle(LoginThrottleOptions options);

  // `account` names the account (tenant and normalised email), `network`
  // the client network. Reserves the attempt in every counter, or refuses
  // it without counting anything.
  LoginReservation Reserve(absl::string_view account,
                           absl::string_view network);
  // The reserved attempt logged in: refunds it, clears the pair's failures
  // and remembers the network as known for the account.
  void Succeeded(const LoginReservation& reservation);
  // The reserved attempt was not decided: refunds it everywhere.
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

  const LoginThrottleOptions options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Window> windows_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::vector<Known>> known_
      ABSL_GUARDED_BY(mu_);
  size_t known_count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_LOGIN_THROTTLE_H_
