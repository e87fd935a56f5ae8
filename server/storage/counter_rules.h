// The rules of the shared counters (storage/counter_store.h) that do not
// depend on a database: argument checks, slot arithmetic, the window's
// reset, bucket refill and quota refill. Every CounterStore backend (and
// the in-memory fake) applies them, so the arithmetic is written once.
// Pure functions; thread-safe.
#ifndef LUMOKEYS_SERVER_STORAGE_COUNTER_RULES_H_
#define LUMOKEYS_SERVER_STORAGE_COUNTER_RULES_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/storage/counter_store.h"
#include "server/storage/key_store.h"

namespace lumo::storage {

// INVALID_ARGUMENT unless 1 <= counter.size() <= kMaxCounterKeyBytes.
absl::Status CheckCounterKey(absl::string_view counter);
// INVALID_ARGUMENT unless limit >= 1, the slot is a whole number of
// milliseconds >= 1, want >= 0 and debt >= 0.
absl::Status CheckWindowLease(const WindowSpec& spec, int64_t want,
                              int64_t debt);
// INVALID_ARGUMENT unless capacity >= 1, per_minute >= 0 and want >= 0.
absl::Status CheckBucketLease(const BucketSpec& spec, int64_t want);
// INVALID_ARGUMENT unless remaining >= 0 and a refill has amount >= 1 and
// an interval of a whole number of milliseconds >= 1.
absl::Status CheckQuota(int64_t remaining, const std::optional<Refill>& refill);

// INVALID_ARGUMENT unless every named limit of a key has a name (without
// ':' or ','), unique among them, limit >= 1 and a duration of whole
// milliseconds >= 1.
absl::Status CheckKeyRateLimits(const std::vector<KeyRateLimit>& limits);
// INVALID_ARGUMENT for an empty external id or limits CheckKeyRateLimits
// refuses.
absl::Status CheckIdentityLimits(absl::string_view external_id,
                                 const std::vector<KeyRateLimit>& limits);

// The slot holding `t`: floor(unix ms / slot ms).
int64_t SlotOf(absl::Time t, absl::Duration slot);
absl::Time SlotStart(int64_t slot, absl::Duration slot_length);
// The first slot counted by the window of `current`.
inline int64_t FirstCountedSlot(int64_t current) {
  return current - kWindowSlots;
}
// When the window stops counting `oldest` (the oldest slot holding tokens).
absl::Time WindowReset(int64_t oldest, absl::Duration slot_length);

// A bucket row: tokens as of `updated`.
struct BucketRow {
  double tokens = 0;
  absl::Time updated;
};
// The bucket refilled up to `now` (a clock that went back refills
// nothing); a missing row is a full bucket.
BucketRow RefilledBucket(const std::optional<BucketRow>& row,
                         const BucketSpec& spec, absl::Time now);
// How long until `tokens` reaches one whole token (zero when it has one;
// InfiniteDuration when the bucket never refills).
absl::Duration NextTokenIn(double tokens, const BucketSpec& spec);

// A quota row.
struct QuotaRow {
  int64_t remaining = 0;
  std::optional<Refill> refill;
  absl::Time period_start;
  int64_t epoch = 0;
};
// Applies every refill due at `now`: remaining reset to the amount, the
// period start moved on by whole intervals, the epoch moved on by one.
// Returns whether it changed the row.
bool ApplyDueRefill(QuotaRow& row, absl::Time now);
// The next refill of `row` (unset without refill).
std::optional<absl::Time> NextRefill(const QuotaRow& row);
QuotaState StateOf(const QuotaRow& row, absl::Time now);

// A key's quota as the stores take it and give it back (key_store.h): the
// refill of `quota` (unset when amount and interval are both 0); the check
// of CheckQuota; and the quota of a stored row at `now` (after any refill
// due then, applied to a copy).
std::optional<Refill> RefillOf(const KeyQuota& quota);
absl::Status CheckKeyQuota(const KeyQuota& quota);
KeyQuota KeyQuotaAt(QuotaRow row, absl::Time now);

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_COUNTER_RULES_H_
