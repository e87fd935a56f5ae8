// The storage interface of the counters shared by every replica
// (docs/limits.md): sliding-window rate limits leased in batches, credits
// (quotas) with refill leased in batches, and token buckets for the
// throttles. Domain logic depends only on this header; the MySQL backend
// is storage/mysql/mysql_counter_store.h.
//
// Every time is the database clock's. A lease is what the database grants
// one replica; the replica spends it in memory and returns what it did not
// spend. Everything a method writes is written in one transaction.
//
// Error contract: INVALID_ARGUMENT for arguments outside the documented
// ranges (nothing written); NOT_FOUND where stated; UNAVAILABLE when the
// database cannot be reached; DEADLINE_EXCEEDED when a statement hit its
// ceiling; INTERNAL for anything unexpected.
#ifndef LUMOKEYS_SERVER_STORAGE_COUNTER_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_COUNTER_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/storage/key_store.h"

namespace lumo::storage {

// Counter keys are 1 to kMaxCounterKeyBytes bytes (docs/limits.md "Terms").
inline constexpr size_t kMaxCounterKeyBytes = 160;
// A sliding window counts the current slot and the kWindowSlots before it.
inline constexpr int64_t kWindowSlots = 60;

// A sliding-window limit: at most `limit` tokens granted in the slots
// `s - kWindowSlots ... s`, slots being `slot` long (at least 1 ms).
struct WindowSpec {
  int64_t limit = 0;
  absl::Duration slot;
};

struct WindowLease {
  // Tokens granted into `slot` (0: the window is spent).
  int64_t granted = 0;
  // The database's current slot (floor(unix ms / slot length)), and when it
  // ends: the grant is spendable until then.
  int64_t slot = 0;
  absl::Time slot_end;
  // Tokens counted in the window after this grant (debt included).
  int64_t used = 0;
  // When the oldest slot still holding tokens leaves the window (the
  // window then holds fewer tokens); the end of the current slot's window
  // when nothing is counted.
  absl::Time reset;
  absl::Time db_now;
};

// A token bucket: `capacity` tokens, refilled at `per_minute`.
struct BucketSpec {
  double capacity = 0;
  double per_minute = 0;
};

struct BucketLease {
  int64_t granted = 0;
  // Whole tokens left in the bucket after the grant.
  int64_t left = 0;
  // How long until the bucket holds one whole token again (zero when it
  // holds one).
  absl::Duration next_token_in;
  absl::Time db_now;
};

// A quota's refill: every `interval` after the period start, `remaining`
// is reset to `amount`.
struct Refill {
  int64_t amount = 0;
  absl::Duration interval;
};

struct QuotaState {
  // Credits not leased out, after any refill that was due.
  int64_t remaining = 0;
  std::optional<Refill> refill;
  // Grows at every refill and every SetQuota / AddCredits.
  int64_t epoch = 0;
  // The next refill (unset without refill).
  std::optional<absl::Time> next_refill;
  absl::Time db_now;
};

struct CreditLease {
  int64_t granted = 0;
  // The epoch the grant belongs to (ReturnCredits).
  int64_t epoch = 0;
  // What the database has left after the grant.
  int64_t remaining = 0;
  // The grant is spendable until then (unset without refill).
  std::optional<absl::Time> next_refill;
  absl::Time db_now;
};

// A change of a key's credits through the API (ChangeCredits).
enum class CreditsOp { kSet, kAdd, kRemove };
struct CreditsUpdate {
  CreditsOp op = CreditsOp::kSet;
  // kSet: the balance; kAdd: the credits added (negative: taken).
  int64_t value = 0;
  // kSet only: the refill (unset: none).
  std::optional<Refill> refill;
};
struct CreditsChange {
  // The key's tenant.
  int64_t tenant_id = 0;
  // The quota before the change (after any refill that was due) and after
  // it; unset where the key had (has) no quota.
  std::optional<QuotaState> before;
  std::optional<QuotaState> after;
};

// A key of an identity, as SetIdentityLimits found it.
struct IdentityKey {
  std::string id;
  int64_t version = 0;
};

struct IdentityLimitsChange {
  // The identity's limits before the change, by name.
  std::vector<KeyRateLimit> before;
  // The identity's keys (not deleted) when the change committed: the keys
  // whose verification the change affects.
  std::vector<IdentityKey> keys;
};

// Thread-safe.
class CounterStore {
 public:
  virtual ~CounterStore() = default;

  // ---- Sliding windows (rate limits).

  // Adds `debt` tokens (spent without a grant) to the current slot, then
  // grants min(want, limit - used) tokens (0 when spent) into it. want >=
  // 0, debt >= 0, limit >= 1, slot >= 1 ms.
  virtual absl::StatusOr<WindowLease> LeaseWindow(absl::string_view counter,
                                                  const WindowSpec& spec,
                                                  int64_t want,
                                                  int64_t debt) = 0;
  // Gives back `amount` unspent tokens granted into `slot` (never below 0;
  // a slot already pruned is ignored).
  virtual absl::Status ReturnWindow(absl::string_view counter, int64_t slot,
                                    int64_t amount) = 0;

  // ---- Token buckets (throttles). A counter never seen is a full bucket.

  // Refills the bucket to now, then grants min(want, whole tokens held).
  virtual absl::StatusOr<BucketLease> LeaseBucket(absl::string_view counter,
                                                  const BucketSpec& spec,
                                                  int64_t want) = 0;
  // Puts `amount` unspent tokens back (never above capacity).
  virtual absl::Status ReturnBucket(absl::string_view counter,
                                    const BucketSpec& spec, int64_t amount) = 0;

  // ---- Known networks of portal accounts (the login throttles): the
  // networks an account logged in from, named by opaque keys (1 to
  // kMaxCounterKeyBytes bytes each, like counter keys).

  // Records a login of `account` from `network` now (database clock), then
  // keeps the account's `keep` most recent networks (at least 1), deleting
  // the others and those older than `ttl` (> 0).
  virtual absl::Status RememberNetwork(absl::string_view account,
                                       absl::string_view network, size_t keep,
                                       absl::Duration ttl) = 0;
  // Whether `account` logged in from `network` within the last `ttl` (> 0).
  virtual absl::StatusOr<bool> IsKnownNetwork(absl::string_view account,
                                              absl::string_view network,
                                              absl::Duration ttl) = 0;

  // ---- Clean-up (docs/limits.md "Memory").

  // Deletes up to `limit` (>= 1) rows of each kind: token buckets not
  // updated for `bucket_idle` (> 0; a missing row is a full bucket, so
  // this forgets only buckets that refill within `bucket_idle`), known
  // networks whose last login is older than `known_ttl` (> 0), window
  // slots no window counts any more (now at or past their WindowReset: a
  // lease would prune them), and the window heads of counters left without
  // slots (a lease starts such a counter afresh, as it would with the
  // rows). Returns the rows deleted.
  virtual absl::StatusOr<int64_t> SweepStale(absl::Duration bucket_idle,
                                             absl::Duration known_ttl,
                                             int64_t limit) = 0;

  // ---- Quotas (credits) of API keys. NOT_FOUND when `key_id` has no
  // quota (or no such key, for SetQuota).

  // Sets (or replaces) the key's quota: `remaining` credits now, a new
  // period starting now, the epoch moved on. remaining >= 0; a refill has
  // amount >= 1 and interval >= 1 ms.
  virtual absl::StatusOr<QuotaState> SetQuota(absl::string_view key_id,
                                              int64_t remaining,
                                              std::optional<Refill> refill) = 0;
  // Removes the key's quota (OK when it had none).
  virtual absl::Status ClearQuota(absl::string_view key_id) = 0;
  // The key's quota after any refill that was due (applied and stored).
  virtual absl::StatusOr<QuotaState> GetQuota(absl::string_view key_id) = 0;
  // Adds `delta` credits (negative: takes, stopping at 0); epoch moves on.
  virtual absl::StatusOr<QuotaState> AddCredits(absl::string_view key_id,
                                                int64_t delta) = 0;
  // Applies `update` to the key's quota as SetQuota, AddCredits or
  // ClearQuota do, and appends `audit(change)` to the key's tenant's audit
  // log, in one transaction. NOT_FOUND when there is no such key, and for
  // kAdd when the key has no quota (nothing written); kRemove of a key
  // without a quota writes nothing and appends no event (before and after
  // unset). INVALID_ARGUMENT for a kSet SetQuota refuses.
  virtual absl::StatusOr<CreditsChange> ChangeCredits(
      absl::string_view key_id, const CreditsUpdate& update,
      absl::FunctionRef<AuditEvent(const CreditsChange& change)> audit) = 0;
  // After any due refill, grants min(want, remaining). want >= 0.
  virtual absl::StatusOr<CreditLease> LeaseCredits(absl::string_view key_id,
                                                   int64_t want) = 0;
  // Gives back `amount` unspent credits leased in `epoch`; ignored when the
  // quota has moved to another epoch since (or is gone).
  virtual absl::Status ReturnCredits(absl::string_view key_id, int64_t epoch,
                                     int64_t amount) = 0;

  // ---- Identity limits: named rate limits shared by every key of one
  // identity (tenant, externalId). The limits of a key's identity are read
  // with the key (VerifyRecord::identity_limits).

  // The identity's limits by name (empty: none). INVALID_ARGUMENT for an
  // empty external id.
  virtual absl::StatusOr<std::vector<KeyRateLimit>> GetIdentityLimits(
      int64_t tenant_id, absl::string_view external_id) = 0;
  // Replaces the identity's limits with `limits` (empty: none) and appends
  // `audit(before)` to the tenant's audit log, in one transaction. An
  // identity needs no key: limits set first apply to its keys created
  // later. INVALID_ARGUMENT for an empty external id or limits
  // CheckKeyRateLimits refuses (nothing written); ABORTED when a
  // concurrent change of the same identity won.
  virtual absl::StatusOr<IdentityLimitsChange> SetIdentityLimits(
      int64_t tenant_id, absl::string_view external_id,
      const std::vector<KeyRateLimit>& limits,
      absl::FunctionRef<AuditEvent(const std::vector<KeyRateLimit>& before)>
          audit) = 0;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_COUNTER_STORE_H_
