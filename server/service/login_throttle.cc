#include "server/service/login_throttle.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

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
    return refuse(LoginThrottleScope::kAccount, *acct);
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

void LoginThrottle::Succeeded(const LoginReservation& r) {
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
