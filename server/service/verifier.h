// API-key verification with a per-process cache (docs/replication.md).
//
// A warm verification is parse + checksum + one HMAC + one constant-time
// compare + a hash-map lookup, with no I/O. Malformed keys and keys with a
// bad checksum never reach the store. A cache entry is trusted for at most
// `cache_ttl` after it was read; local mutations evict it at once (Evict),
// and an entry read concurrently with an eviction is never installed, so a
// rotated or revoked secret cannot be re-cached from a read that raced the
// change. Expiry and grace periods are judged on the database clock: each
// entry carries the offset between the database clock and the local clock
// measured when it was read.
#ifndef LUMOKEYS_SERVER_SERVICE_VERIFIER_H_
#define LUMOKEYS_SERVER_SERVICE_VERIFIER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/core/net.h"
#include "server/core/pepper.h"
#include "server/observability/metrics.h"
#include "server/service/cluster_credits.h"
#include "server/service/cluster_windows.h"
#include "server/service/decoy_trap.h"
#include "server/service/intrusive_ptr.h"
#include "server/service/lazy_window.h"
#include "server/service/slot_window.h"
#include "server/service/two_slot_window.h"
#include "server/storage/key_states.h"
#include "server/storage/key_store.h"

namespace lumo::service {

enum class VerifyReason {
  kValid,
  kMalformed,
  kNotFound,
  kRevoked,
  kExpired,
  kRotated,
  kWrongTenant,
  kInsufficientScope,
  kIpNotAllowed,
  kRateLimited,
  // The key is paused (disable/enable); checked after kExpired.
  kDisabled,
  // The key's usage quota cannot pay the request's cost (checked last,
  // after the rate limits).
  kUsageExceeded,
};

const char* VerifyReasonName(VerifyReason reason);

struct VerifyParams {
  // Empty: any tenant.
  std::string tenant_slug;
  // Every one must be granted.
  std::vector<std::string> required_scopes;
  // Checked against the key's allowed CIDRs; empty or unparsable fails a
  // key that has CIDRs.
  std::string client_ip;
  // Credits a valid request spends from the key's usage quota (0 - 10 000;
  // 0 checks nothing and spends nothing). Keys without a quota ignore it.
  int64_t cost = 1;
};

struct VerifyOutcome {
  VerifyReason reason = VerifyReason::kMalformed;
  // The key id when the presented key parsed (also for failures), so that
  // failures can be attributed.
  std::string key_id;
  // True when the key id is known but the key is dead or paused (revoked,
  // deleted, expired, disabled or a rotated-away secret): the signal that a
  // key leaked.
  bool known_dead = false;
  // True when the key id exists but belongs to a tenant other than the one
  // the verification was for (whether or not the secret matched): the id
  // must then not be shown to the addressed tenant.
  bool other_tenant_key = false;
  // True when the key id names a stored key (a deleted one included),
  // whether or not the secret matched.
  bool key_found = false;
  // Set when the secret matched (reason kValid and the checks after the
  // secret: scope, IP, tenant, rate limit).
  bool secret_matched = false;
  // The whole key of a decoy was presented (docs/webhooks.md "Decoy
  // keys"): the reason is kNotFound, exactly as for an unknown key, and
  // only tenant_id / tenant_slug (the decoy's) are set besides the id, for
  // the audit event.
  bool decoy = false;
  // The whole key of one of the tenant's keys was presented from an address
  // the tenant's decoy trap blocks: the reason is kNotFound and only
  // tenant_id / tenant_slug are set besides the id, as for a decoy.
  bool decoy_blocked = false;
  // Set when the key matched one of its retired secrets still in its grace
  // period (docs/webhooks.md "Rotation stragglers"): the key's rotated_at,
  // naming the rotation the use belongs to. Unset for the current secret.
  std::optional<absl::Time> previous_secret_of;
  int64_t tenant_id = 0;
  std::string tenant_slug;
  std::string name;
  std::vector<std::string> scopes;
  std::optional<absl::Time> expires_at;
  std::string external_id;
  core::StringMap metadata;
  // The key's states under its tenant's key policy at this verification's
  // database time, from the cached record and the policy read with it.
  // Not computed (and `states_computed` false) with
  // VerifierOptions::key_states off.
  storage::KeyStates states;
  bool states_computed = false;
  // The key's allowed CIDRs (canonical text; empty: any address) and its
  // configured rate limit per minute (0: none), when the secret matched.
  std::vector<std::string> allowed_cidrs;
  int32_t rate_limit_per_minute = 0;
  // The key's named rate limits, when the secret matched and it has some
  // (null otherwise); shared with the cache entry, not copied.
  std::shared_ptr<const std::vector<storage::KeyRateLimit>> rate_limits;
  // For kRateLimited and rate-limited keys: the tightest limit (the
  // refusing one for kRateLimited; docs/limits.md "What callers see"): its
  // name, limit, what is left in the sliding window and when it resets
  // (for kRateLimited: when the request would be admitted).
  std::string rate_limit_name;
  int32_t rate_limit = 0;
  int32_t rate_remaining = 0;
  absl::Time rate_reset;
  // For keys with a usage quota, when the verification got as far as the
  // quota: the credits left as this replica knows them, and the next
  // refill when the quota has one.
  std::optional<int64_t> credits_remaining;
  std::optional<absl::Time> credits_reset;
  // True when the quota could not be consulted (no credits leased and the
  // shared counters unreachable): Verify then fails closed (UNAVAILABLE).
  bool credits_unavailable = false;
  // For kUsageExceeded: this refusal is the one to report for the key's
  // balance (once per key and balance epoch in the cluster: docs/limits.md
  // "Exhaustion"), as `api_key.usage_exceeded`.
  bool report_usage_exceeded = false;
  // Set when the attempt was refused by the
  // FailureThrottle (too many failures from the address or on the key id);
  // announced as `retry-after`.
  absl::Duration retry_after = absl::ZeroDuration();
};

// The name under which the server's default key limit is reported.
inline constexpr char kServerLimitName[] = "server";

struct VerifierOptions {
  absl::Duration cache_ttl = absl::Seconds(30);
  // Upper bound on cached key ids (positive and negative entries).
  size_t max_entries = 4'000'000;
  // The rate-limit counters shared by the replicas (docs/limits.md); must
  // outlive the Verifier. Null: limits are counted in this process alone
  // (a single server; tools and unit tests).
  ClusterWindows* rate_limits = nullptr;
  // BENCHMARK ONLY when false: verification computes no key-policy states
  // (VerifyOutcome::states), to measure what they cost. Never off in
  // production: callers rely on the states in the verify reply.
  bool key_states = true;
  // The usage quotas' credits shared by the replicas; must outlive the
  // Verifier. Null: keys with a quota fail closed (UNAVAILABLE).
  ClusterCredits* credits = nullptr;
  // The server's default key limit (docs/limits.md "What callers see"):
  // a key without rate limits of its own is held to this many requests
  // per sliding minute (0: none), counted by each replica alone at its
  // share ceil(limit / N), N from `replicas`: no database statement, and
  // never more than limit + N in the cluster.
  int32_t default_limit_per_minute = 0;
  std::function<int()> replicas = [] { return 1; };
  // The decoy trap (docs/webhooks.md "Decoy keys"): a decoy presented
  // springs it for its tenant and the verification's client address; a
  // key of that tenant presented from that address while it is blocked
  // answers as an unknown key (VerifyOutcome::decoy_blocked). Null: off.
  // Must outlive the Verifier.
  DecoyTrap* decoy_trap = nullptr;
};

// Thread-safe.
class Verifier {
 public:
  Verifier(storage::KeyStore* store,
           std::shared_ptr<const core::PepperSet> peppers,
           VerifierOptions options);
  ~Verifier();

  // Decides without I/O when it can: malformed keys, and ids with a fresh
  // cache entry. Returns nullopt when the store must be consulted.
  std::optional<VerifyOutcome> VerifyCached(absl::string_view key,
                                            const VerifyParams& params);

  // Full verification; reads the store on a cache miss (one query).
  // UNAVAILABLE / DEADLINE_EXCEEDED when the store cannot answer: the
  // caller must fail closed.
  absl::StatusOr<VerifyOutcome> Verify(absl::string_view key,
                                       const VerifyParams& params);

  // Drops the cached entry for `key_id`; any read of it in flight is not
  // installed. Call after every committed mutation of the key. Also
  // releases this replica's lease of the key's credits
  // (ClusterCredits::Release): the next use confirms the epoch with the
  // database, so no replica that applied a change of the balance spends a
  // lease of the old one.
  void Evict(absl::string_view key_id);

  // Replication (docs/replication.md). Cached entries are used only while
  // the local monotonic clock is before `until`; afterwards every
  // verification of a well-formed key reads the store (and fails closed
  // when it cannot). A new Verifier trusts its cache forever; ReplicaSync
  // moves the bound forward after each round that renewed its lease. One
  // atomic load and one clock read on the hot path.
  void SetCacheTrustedUntil(std::chrono::steady_clock::time_point until);
  bool cache_trusted() const;
  // Drops every entry; reads in flight are not installed.
  void EvictAll();

  // Observability and tests.
  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }
  size_t size() const;
  // Cache entries alive in the process, in every Verifier and held by
  // outcomes (an entry lives while the cache or an outcome's rate limits
  // refer to it).
  static size_t live_entries();
  // Verifications decided with each
  // reason (VerifyCached and Verify count each verification once; store
  // failures are not outcomes). Malformed keys whose only fault is the
  // checksum are also counted by bad_checksum_count().
  uint64_t outcome_count(VerifyReason reason) const {
    return outcomes_[static_cast<int>(reason)].Value();
  }
  uint64_t bad_checksum_count() const { return bad_checksum_.Value(); }
  // Every reason has a counter: the last enumerator plus one (move it
  // along when a reason is added).
  static constexpr int kReasonCount =
      static_cast<int>(VerifyReason::kUsageExceeded) + 1;

 private:
  struct Entry;
  struct TenantPart;
  struct Rare;
  // The cache's entries count their own references (intrusive_ptr.h).
  using EntryPtr = IntrusivePtr<const Entry>;
  // The id an entry holds.
  static absl::string_view IdOf(const EntryPtr& entry);
  // Hashes and compares the cache's entries by the id they hold, and finds
  // them by id (a string_view) without building a key.
  struct EntryHash {
    using is_transparent = void;
    size_t operator()(absl::string_view id) const {
      return absl::Hash<absl::string_view>{}(id);
    }
    size_t operator()(const EntryPtr& entry) const {
      return (*this)(IdOf(entry));
    }
  };
  struct EntryEq {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Id(a) == Id(b);
    }
    static absl::string_view Id(absl::string_view id) { return id; }
    static absl::string_view Id(const EntryPtr& entry) { return IdOf(entry); }
  };
  struct Shard {
    mutable absl::Mutex mu;
    // The cached entries, found by key id: a set of entry pointers, the id
    // held by the entry (docs/benchmarks.md "Cache entry size").
    absl::flat_hash_set<EntryPtr, EntryHash, EntryEq> map ABSL_GUARDED_BY(mu);
    // Incremented by every Evict in this shard; a load started under an
    // older epoch is not installed.
    uint64_t epoch ABSL_GUARDED_BY(mu) = 0;
    // Without shared counters (and for the server's default limit): the
    // sliding windows of this process, by counter key (node map: a take
    // holds pointers to several at once). Windows that count nothing any
    // more are dropped whenever the map has doubled since the last sweep,
    // so it holds about the keys used in the last window. A window holds
    // its slots inline until it needs a ring (lazy_window.h).
    //
    // The server's default limit of a cached key is counted inside its
    // entry (Entry::server_window) while its tokens fit a TwoSlotWindow;
    // it moves here (counter key "s:<id>") when they no longer do, and when
    // the entry leaves the cache while its window counts something (Evict,
    // EvictAll, the size bound). An entry installed while this map holds
    // its key's window uses the one here; a reloaded entry takes over the
    // window of the entry it replaces. So a key has one window whatever
    // happens to its cache entry.
    absl::node_hash_map<std::string, LazyWindow> windows ABSL_GUARDED_BY(mu);
    size_t sweep_windows_at ABSL_GUARDED_BY(mu) = 1024;
  };
  static constexpr size_t kShards = 64;

  // Verify, before a quota that could not be consulted becomes an error.
  absl::StatusOr<VerifyOutcome> VerifyOnce(absl::string_view key,
                                           const VerifyParams& params);
  Shard& ShardFor(absl::string_view id);
  // The fresh cached entry of `id` at `now` (the local clock), or null.
  EntryPtr Lookup(absl::string_view id, absl::Time now);
  // Moves the server window of `entry`, which is leaving the cache, into
  // the shard's window map when it counts something at `now`.
  void RetireLocked(Shard& shard, const Entry& entry, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Fills a positive entry (loaded_at set) from what the store read.
  void Fill(absl::string_view id, storage::VerifyRecord record,
            absl::Time loaded_at, Entry& entry);
  // The shared tenant part and scope set of entries: the one already held
  // by a cached entry when it is equal, else a new one.
  std::shared_ptr<const TenantPart> InternTenant(
      int64_t tenant_id, std::string slug, const storage::KeyPolicy& policy);
  std::shared_ptr<const std::vector<std::string>> InternScopes(
      std::vector<std::string> scopes);
  // The outcome for a cached or loaded entry. With `may_renew` false (the
  // in-memory path) nullopt when a rate limit needs a lease from the
  // shared counters first; with `may_renew` true the lease is taken here
  // (one store call) and an outcome is always returned.
  std::optional<VerifyOutcome> Decide(const EntryPtr& entry,
                                      absl::string_view key,
                                      absl::string_view id,
                                      const VerifyParams& params,
                                      bool may_renew, absl::Time now);
  // Counts one request against every rate limit of the key (all or
  // nothing); false when one refuses. Fills the rate fields of `outcome`.
  // nullopt: a lease is needed and `may_renew` is false.
  // The limits and their counter keys come built with the cache entry.
  std::optional<bool> TakeRateTokens(absl::string_view id, const Entry& entry,
                                     bool may_renew, absl::Time now,
                                     VerifyOutcome& outcome);
  // Spends the request's cost from the key's quota in memory, taking a
  // lease first when `may_renew`. Fills the credit fields of `outcome`, or
  // sets outcome.credits_unavailable (fail closed). nullopt: a lease is
  // needed and `may_renew` is false (nothing was spent).
  std::optional<SpendOutcome> SpendCredits(absl::string_view id, int64_t cost,
                                           bool may_renew,
                                           VerifyOutcome& outcome);
  // The same without shared counters, in this process's windows, each
  // limit at its share ceil(limit / share).
  bool TakeLocalTokens(absl::string_view id,
                       absl::Span<const WindowLimit> limits, int share,
                       absl::Time now, VerifyOutcome& outcome);
  bool TakeLocalTokensLocked(Shard& shard, absl::Span<const WindowLimit> limits,
                             int share, absl::Time now, VerifyOutcome& outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // The server's default limit of key `id` (no limits of its own), at
  // this replica's share: in the window of the key's cached entry when it
  // has one that holds it, else in the shard's window map.
  bool TakeServerLimit(absl::string_view id, int share, absl::Time now,
                       VerifyOutcome& outcome);

  storage::KeyStore* const store_;
  const std::shared_ptr<const core::PepperSet> peppers_;
  const VerifierOptions options_;
  // options_.cache_ttl in nanoseconds (entries hold nanosecond times).
  const int64_t cache_ttl_ns_;
  Shard shards_[kShards];
  // The interned parts of entries, by tenant id and by scope set (joined by
  // spaces). Expired ones are dropped whenever a table has doubled since
  // its last sweep.
  absl::Mutex intern_mu_;
  absl::flat_hash_map<int64_t, std::weak_ptr<const TenantPart>> tenants_
      ABSL_GUARDED_BY(intern_mu_);
  size_t sweep_tenants_at_ ABSL_GUARDED_BY(intern_mu_) = 1024;
  absl::flat_hash_map<std::string,
                      std::weak_ptr<const std::vector<std::string>>>
      scope_sets_ ABSL_GUARDED_BY(intern_mu_);
  size_t sweep_scope_sets_at_ ABSL_GUARDED_BY(intern_mu_) = 1024;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  // Sharded, no contention on the hot
  // path.
  // A quota that could not be consulted is a store failure, not an outcome.
  VerifyOutcome Counted(VerifyOutcome outcome) {
    if (!outcome.credits_unavailable) {
      outcomes_[static_cast<int>(outcome.reason)].Increment();
    }
    return outcome;
  }
  metrics::Counter outcomes_[kReasonCount];
  metrics::Counter bad_checksum_;
  // steady_clock ticks since its epoch; see SetCacheTrustedUntil.
  std::atomic<int64_t> trusted_until_{std::numeric_limits<int64_t>::max()};
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_VERIFIER_H_
