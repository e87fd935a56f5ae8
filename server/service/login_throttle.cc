#include "server/service/login_throttle.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/crypto.h"

namespace lumo::service {
namespace {

std::string PairKey(absl::string_view account, absl::string_view network) {
  return absl::StrCat("p:", account, "\x1f", network);
}
std::string NetworkKey(absl::string_view network) {
  return absl::StrCat("n:", network);
}
std::string AccountKey(absl::string_view account) {
  return absl::StrCat("a:", account);
}

// 32 hex digits of SHA-256 of `text`: shared counter keys never carry the
// account's email or the client's address.
std::string Digest32(absl::string_view text) {
  return core::HexEncode(core::AsStringView(core::Sha256(text))).substr(0, 32);
}

// The names of an attempt in the shared store (docs/limits.md "Terms").
struct SharedKeys {
  std::string account;  // known networks: the account
  std::string network;  // known networks: the network
  std::string pair_counter, network_counter, account_counter;
};

SharedKeys SharedKeysOf(absl::string_view account, absl::string_view network) {
  SharedKeys k;
  k.account = Digest32(account);
  k.network = Digest32(network);
  k.pair_counter =
      absl::StrCat("p:pair:", Digest32(absl::StrCat(account, "\x1f", network)));
  k.network_counter = absl::StrCat("p:net:", k.network);
  k.account_counter = absl::StrCat("p:acct:", k.account);
  return k;
}

// A counter with a non-positive limit never refuses.
bool AtLimit(int count, int limit) { return limit > 0 && count >= limit; }

}  // namespace

absl::string_view LoginThrottleScopeName(LoginThrottleScope scope) {
  switch (scope) {
    case LoginThrottleScope::kNone:
      return "";
    case LoginThrottleScope::kPair:
      return "pair";
    case LoginThrottleScope::kNetwork:
      return "network";
    case LoginThrottleScope::kAccount:
      return "account";
    case LoginThrottleScope::kTableFull:
      return "table_full";
  }
  return "";
}

LoginThrottle::LoginThrottle(LoginThrottleOptions options)
    : options_(std::move(options)) {}

LoginThrottle::Window* LoginThrottle::LiveLocked(const std::string& key,
                                                 absl::Time now) {
  auto it = windows_.find(key);
  if (it == windows_.end()) return nullptr;
  if (now >= it->second.start + options_.window) {
    windows_.erase(it);
    return nullptr;
  }
  return &it->second;
}

bool LoginThrottle::IsKnownLocked(absl::string_view account,
                                  absl::string_view network, absl::Time now) {
  auto it = known_.find(account);
  if (it == known_.end()) return false;
  for (const Known& k : it->second) {
    if (k.network == network &&
        now < k.last_success + options_.known_network_ttl) {
      return true;
    }
  }
  return false;
}

bool LoginThrottle::MakeRoomLocked(size_t needed, absl::Time now) {
  if (windows_.size() + needed <= options_.max_tracked) return true;
  for (auto it = windows_.begin(); it != windows_.end();) {
    if (now >= it->second.start + options_.window) {
      windows_.erase(it++);
    } else {
      ++it;
    }
  }
  return windows_.size() + needed <= options_.max_tracked;
}

LoginReservation LoginThrottle::Reserve(absl::string_view account,
                                        absl::string_view network) {
  const absl::Time now = options_.now();
  const std::string pair_key = PairKey(account, network);
  const std::string network_key = NetworkKey(network);
  const std::string account_key = AccountKey(account);
  LoginReservation r;
  r.account = std::string(account);
  r.network = std::string(network);
  absl::MutexLock lock(&mu_);
  Window* pair = LiveLocked(pair_key, now);
  Window* net = LiveLocked(network_key, now);
  Window* acct = LiveLocked(account_key, now);
  auto refuse = [&](LoginThrottleScope scope, const Window& w) {
    r.refused_by = scope;
    r.retry_after = w.start + options_.window - now;
    return r;
  };
  if (pair != nullptr && AtLimit(pair->count, options_.max_failures_per_pair)) {
    return refuse(LoginThrottleScope::kPair, *pair);
  }
  if (net != nullptr &&
      AtLimit(net->count, options_.max_failures_per_network)) {
    return refuse(LoginThrottleScope::kNetwork, *net);
  }
  if (acct != nullptr &&
      AtLimit(acct->count, options_.max_failures_per_account) &&
      !IsKnownLocked(account, network, now)) {
    // With shared counters another replica may know the network: the
    // account counter refuses in ReserveShared.
    if (options_.shared == nullptr) {
      return refuse(LoginThrottleScope::kAccount, *acct);
    }
    r.account_at_limit = true;
  }
  const size_t needed =
      (pair == nullptr) + (net == nullptr) + (acct == nullptr);
  if (needed > 0 && !MakeRoomLocked(needed, now)) {
    r.refused_by = LoginThrottleScope::kTableFull;
    r.retry_after = std::min(options_.window, absl::Minutes(1));
    return r;
  }
  // Inserting may move entries: look each one up again.
  for (const std::string* key : {&pair_key, &network_key, &account_key}) {
    auto [it, inserted] = windows_.try_emplace(*key);
    if (inserted) it->second.start = now;
    ++it->second.count;
  }
  r.pair_start = windows_[pair_key].start;
  r.network_start = windows_[network_key].start;
  r.account_start = windows_[account_key].start;
  return r;
}

void LoginThrottle::RefundLocked(const std::string& key, absl::Time start) {
  auto it = windows_.find(key);
  if (it == windows_.end() || it->second.start != start) return;
  if (--it->second.count <= 0) windows_.erase(it);
}

storage::BucketSpec LoginThrottle::SpecOf(int max_failures) const {
  const double minutes =
      std::max(absl::ToDoubleMinutes(options_.window), 1.0 / 60);
  return storage::BucketSpec{static_cast<double>(max_failures),
                             max_failures / minutes};
}

void LoginThrottle::ReserveShared(LoginReservation& r) {
  if (options_.shared == nullptr || !r.ok()) return;
  storage::CounterStore& store = *options_.shared;
  const SharedKeys keys = SharedKeysOf(r.account, r.network);
  absl::Duration wait;
  // Takes a token of the counter's shared bucket: true when the bucket is
  // empty (`wait` until its next token). A failed statement refuses
  // nothing: this replica's own counters counted the attempt.
  auto empty = [&](const std::string& counter, int max_failures, bool* took) {
    if (max_failures <= 0) return false;
    absl::StatusOr<storage::BucketLease> lease =
        store.LeaseBucket(counter, SpecOf(max_failures), 1);
    if (!lease.ok()) return false;
    if (lease->granted >= 1) {
      *took = true;
      return false;
    }
    wait = lease->next_token_in;
    return true;
  };
  LoginThrottleScope refused = LoginThrottleScope::kNone;
  if (empty(keys.pair_counter, options_.max_failures_per_pair,
            &r.shared_pair)) {
    refused = LoginThrottleScope::kPair;
  } else if (empty(keys.network_counter, options_.max_failures_per_network,
                   &r.shared_network)) {
    refused = LoginThrottleScope::kNetwork;
  } else {
    const bool shared_empty =
        empty(keys.account_counter, options_.max_failures_per_account,
              &r.shared_account);
    if (r.account_at_limit) {
      wait = std::max(wait, r.account_start + options_.window - options_.now());
    }
    if (shared_empty || r.account_at_limit) {
      absl::StatusOr<bool> known = store.IsKnownNetwork(
          keys.account, keys.network, options_.known_network_ttl);
      if (!known.ok() || !*known) {
        // The store cannot say: this replica's own list decides (Reserve
        // found the network unknown to it when the local count is full).
        bool known_here = false;
        if (shared_empty && !r.account_at_limit) {
          absl::MutexLock lock(&mu_);
          known_here = IsKnownLocked(r.account, r.network, options_.now());
        }
        if (!known_here) refused = LoginThrottleScope::kAccount;
      }
    }
  }
  if (refused == LoginThrottleScope::kNone) return;
  ReturnShared(r, /*clear_pair=*/false);
  RefundLocal(r);
  r.shared_pair = r.shared_network = r.shared_account = false;
  r.refused_by = refused;
  r.retry_after = std::max(absl::Seconds(1), std::min(wait, options_.window));
}

void LoginThrottle::ReturnShared(const LoginReservation& r, bool clear_pair) {
  if (options_.shared == nullptr) return;
  const SharedKeys keys = SharedKeysOf(r.account, r.network);
  auto give_back = [&](const std::string& counter, int max_failures,
                       int64_t amount) {
    // A lost return only makes the counter stricter until it refills.
    (void)options_.shared->ReturnBucket(counter, SpecOf(max_failures), amount)
        .ok();
  };
  if (options_.max_failures_per_pair > 0 && (clear_pair || r.shared_pair)) {
    give_back(keys.pair_counter, options_.max_failures_per_pair,
              clear_pair ? options_.max_failures_per_pair : 1);
  }
  if (r.shared_network) {
    give_back(keys.network_counter, options_.max_failures_per_network, 1);
  }
  if (r.shared_account) {
    give_back(keys.account_counter, options_.max_failures_per_account, 1);
  }
}

void LoginThrottle::Succeeded(const LoginReservation& r) {
  if (options_.shared != nullptr) {
    ReturnShared(r, /*clear_pair=*/true);
    const SharedKeys keys = SharedKeysOf(r.account, r.network);
    // A network not remembered stays unknown to the other replicas: the
    // account counter stays as strict as without the login.
    (void)options_.shared
        ->RememberNetwork(keys.account, keys.network,
                          std::max<size_t>(1, options_.max_known_per_account),
                          options_.known_network_ttl)
        .ok();
  }
  const absl::Time now = options_.now();
  absl::MutexLock lock(&mu_);
  windows_.erase(PairKey(r.account, r.network));
  RefundLocked(NetworkKey(r.network), r.network_start);
  RefundLocked(AccountKey(r.account), r.account_start);
  std::vector<Known>& known = known_[r.account];
  for (Known& k : known) {
    if (k.network == r.network) {
      k.last_success = now;
      return;
    }
  }
  if (known.size() >= options_.max_known_per_account) {
    auto oldest = std::min_element(known.begin(), known.end(),
                                   [](const Known& a, const Known& b) {
                                     return a.last_success < b.last_success;
                                   });
    *oldest = Known{r.network, now};
    return;
  }
  if (known_count_ >= options_.max_tracked) {
    // Forget one whole account's networks (the first found): stricter, not
    // looser.
    auto victim = known_.begin();
    if (victim->first == r.account) ++victim;
    if (victim != known_.end()) {
      known_count_ -= victim->second.size();
      known_.erase(victim);
    }
  }
  // known_ may have rehashed: look the account up again.
  known_[r.account].push_back(Known{r.network, now});
  ++known_count_;
}

void LoginThrottle::Cancel(const LoginReservation& r) {
  ReturnShared(r, /*clear_pair=*/false);
  RefundLocal(r);
}

void LoginThrottle::RefundLocal(const LoginReservation& r) {
  absl::MutexLock lock(&mu_);
  RefundLocked(PairKey(r.account, r.network), r.pair_start);
  RefundLocked(NetworkKey(r.network), r.network_start);
  RefundLocked(AccountKey(r.account), r.account_start);
}

size_t LoginThrottle::tracked() const {
  absl::MutexLock lock(&mu_);
  return windows_.size();
}

}  // namespace lumo::service
