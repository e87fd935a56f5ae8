#include "server/storage/counter_rules.h"

#include <algorithm>
#include <cmath>

namespace lumo::storage {
namespace {

bool WholePositiveMillis(absl::Duration d) {
  return d >= absl::Milliseconds(1) &&
         d == absl::Milliseconds(absl::ToInt64Milliseconds(d));
}

}  // namespace

absl::Status CheckCounterKey(absl::string_view counter) {
  if (counter.empty() || counter.size() > kMaxCounterKeyBytes) {
    return absl::InvalidArgumentError("counter key must be 1-160 bytes");
  }
  return absl::OkStatus();
}

absl::Status CheckWindowLease(const WindowSpec& spec, int64_t want,
                              int64_t debt) {
  if (spec.limit < 1) return absl::InvalidArgumentError("limit must be >= 1");
  if (!WholePositiveMillis(spec.slot)) {
    return absl::InvalidArgumentError("slot must be whole milliseconds >= 1");
  }
  if (want < 0 || debt < 0) {
    return absl::InvalidArgumentError("want and debt must be >= 0");
  }
  return absl::OkStatus();
}

absl::Status CheckBucketLease(const BucketSpec& spec, int64_t want) {
  if (!(spec.capacity >= 1) || !(spec.per_minute >= 0) || want < 0) {
    return absl::InvalidArgumentError(
        "capacity must be >= 1, per_minute and want >= 0");
  }
  return absl::OkStatus();
}

absl::Status CheckQuota(int64_t remaining,
                        const std::optional<Refill>& refill) {
  if (remaining < 0) {
    return absl::InvalidArgumentError("remaining must be >= 0");
  }
  if (refill.has_value() &&
      (refill->amount < 1 || !WholePositiveMillis(refill->interval))) {
    return absl::InvalidArgumentError(
        "a refill needs amount >= 1 and an interval of whole milliseconds");
  }
  return absl::OkStatus();
}

absl::Status CheckKeyRateLimits(const std::vector<KeyRateLimit>& limits) {
  for (size_t i = 0; i < limits.size(); ++i) {
    const KeyRateLimit& l = limits[i];
    if (l.name.empty() || l.name.find_first_of(":,") != std::string::npos ||
        l.limit < 1 || !WholePositiveMillis(l.duration)) {
      return absl::InvalidArgumentError("invalid rate limit");
    }
    for (size_t j = 0; j < i; ++j) {
      if (limits[j].name == l.name) {
        return absl::InvalidArgumentError("rate limit names must be unique");
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckIdentityLimits(absl::string_view external_id,
                                 const std::vector<KeyRateLimit>& limits) {
  if (external_id.empty()) {
    return absl::InvalidArgumentError("an identity needs an external id");
  }
  return CheckKeyRateLimits(limits);
}

int64_t SlotOf(absl::Time t, absl::Duration slot) {
  const int64_t ms = absl::ToUnixMillis(t);
  const int64_t len = absl::ToInt64Milliseconds(slot);
  // Floor division (times before 1970 are not expected, but stay correct).
  return ms >= 0 ? ms / len : -((-ms + len - 1) / len);
}

absl::Time SlotStart(int64_t slot, absl::Duration slot_length) {
  return absl::FromUnixMillis(slot * absl::ToInt64Milliseconds(slot_length));
}

absl::Time WindowReset(int64_t oldest, absl::Duration slot_length) {
  return SlotStart(oldest + kWindowSlots + 1, slot_length);
}

BucketRow RefilledBucket(const std::optional<BucketRow>& row,
                         const BucketSpec& spec, absl::Time now) {
  if (!row.has_value()) return BucketRow{spec.capacity, now};
  BucketRow out = *row;
  if (now > out.updated) {
    const double minutes = absl::ToDoubleMinutes(now - out.updated);
    out.tokens =
        std::min(spec.capacity, out.tokens + minutes * spec.per_minute);
    out.updated = now;
  }
  return out;
}

absl::Duration NextTokenIn(double tokens, const BucketSpec& spec) {
  if (tokens >= 1) return absl::ZeroDuration();
  if (spec.per_minute <= 0) return absl::InfiniteDuration();
  return absl::Minutes((1 - tokens) / spec.per_minute);
}

bool ApplyDueRefill(QuotaRow& row, absl::Time now) {
  if (!row.refill.has_value() ||
      now < row.period_start + row.refill->interval) {
    return false;
  }
  absl::Duration rest;
  const int64_t periods =
      absl::IDivDuration(now - row.period_start, row.refill->interval, &rest);
  row.period_start += periods * row.refill->interval;
  row.remaining = row.refill->amount;
  ++row.epoch;
  return true;
}

std::optional<absl::Time> NextRefill(const QuotaRow& row) {
  if (!row.refill.has_value()) return std::nullopt;
  return row.period_start + row.refill->interval;
}

QuotaState StateOf(const QuotaRow& row, absl::Time now) {
  QuotaState out;
  out.remaining = row.remaining;
  out.refill = row.refill;
  out.epoch = row.epoch;
  out.next_refill = NextRefill(row);
  out.db_now = now;
  return out;
}

std::optional<Refill> RefillOf(const KeyQuota& quota) {
  if (quota.refill_amount == 0 &&
      quota.refill_interval == absl::ZeroDuration()) {
    return std::nullopt;
  }
  return Refill{quota.refill_amount, quota.refill_interval};
}

absl::Status CheckKeyQuota(const KeyQuota& quota) {
  return CheckQuota(quota.remaining, RefillOf(quota));
}

KeyQuota KeyQuotaAt(QuotaRow row, absl::Time now) {
  ApplyDueRefill(row, now);
  KeyQuota quota;
  quota.remaining = row.remaining;
  if (row.refill.has_value()) {
    quota.refill_amount = row.refill->amount;
    quota.refill_interval = row.refill->interval;
  }
  return quota;
}

}  // namespace lumo::storage
