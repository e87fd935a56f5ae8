#include "tests/storage/fakes/fake_counter_store.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "server/storage/audit_chain.h"
#include "server/storage/counter_rules.h"

namespace lumo::testing {

using storage::BucketLease;
using storage::BucketRow;
using storage::BucketSpec;
using storage::CreditLease;
using storage::QuotaRow;
using storage::QuotaState;
using storage::Refill;
using storage::WindowLease;
using storage::WindowSpec;

absl::StatusOr<WindowLease> FakeCounterStore::LeaseWindow(
    absl::string_view counter, const WindowSpec& spec, int64_t want,
    int64_t debt) {
  if (absl::Status s = storage::CheckCounterKey(counter); !s.ok()) return s;
  if (absl::Status s = storage::CheckWindowLease(spec, want, debt); !s.ok()) {
    return s;
  }
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  WindowLease out;
  out.db_now = db_->Now();
  out.slot = storage::SlotOf(out.db_now, spec.slot);
  out.slot_end = storage::SlotStart(out.slot + 1, spec.slot);
  std::map<int64_t, int64_t>& slots = db_->limit_windows[std::string(counter)];
  // Prune what the window no longer counts.
  slots.erase(slots.begin(),
              slots.lower_bound(storage::FirstCountedSlot(out.slot)));
  int64_t used = 0;
  for (const auto& [slot, granted] : slots) used += granted;
  used += debt;
  out.granted = std::clamp<int64_t>(spec.limit - used, 0, want);
  out.used = used + out.granted;
  if (debt + out.granted > 0) slots[out.slot] += debt + out.granted;
  int64_t oldest = out.slot;
  for (const auto& [slot, granted] : slots) {
    if (granted > 0) {
      oldest = slot;
      break;
    }
  }
  out.reset = storage::WindowReset(oldest, spec.slot);
  if (slots.empty()) db_->limit_windows.erase(std::string(counter));
  return out;
}

absl::Status FakeCounterStore::ReturnWindow(absl::string_view counter,
                                            int64_t slot, int64_t amount) {
  if (absl::Status s = storage::CheckCounterKey(counter); !s.ok()) return s;
  if (amount < 0) return absl::InvalidArgumentError("amount must be >= 0");
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  auto it = db_->limit_windows.find(std::string(counter));
  if (it == db_->limit_windows.end()) return absl::OkStatus();
  auto row = it->second.find(slot);
  if (row == it->second.end()) return absl::OkStatus();
  row->second = std::max<int64_t>(0, row->second - amount);
  return absl::OkStatus();
}

absl::StatusOr<BucketLease> FakeCounterStore::LeaseBucket(
    absl::string_view counter, const BucketSpec& spec, int64_t want) {
  if (absl::Status s = storage::CheckCounterKey(counter); !s.ok()) return s;
  if (absl::Status s = storage::CheckBucketLease(spec, want); !s.ok()) {
    return s;
  }
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  BucketLease out;
  out.db_now = db_->Now();
  const std::string key(counter);
  auto it = db_->limit_buckets.find(key);
  BucketRow row = storage::RefilledBucket(
      it == db_->limit_buckets.end() ? std::nullopt
                                     : std::optional<BucketRow>(it->second),
      spec, out.db_now);
  out.granted = std::clamp<int64_t>(
      static_cast<int64_t>(std::floor(row.tokens)), 0, want);
  row.tokens -= out.granted;
  out.left = static_cast<int64_t>(std::floor(row.tokens));
  out.next_token_in = storage::NextTokenIn(row.tokens, spec);
  db_->limit_buckets[key] = row;
  return out;
}

absl::Status FakeCounterStore::ReturnBucket(absl::string_view counter,
                                            const BucketSpec& spec,
                                            int64_t amount) {
  if (absl::Status s = storage::CheckCounterKey(counter); !s.ok()) return s;
  if (absl::Status s = storage::CheckBucketLease(spec, amount); !s.ok()) {
    return s;
  }
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  auto it = db_->limit_buckets.find(std::string(counter));
  if (it == db_->limit_buckets.end()) return absl::OkStatus();  // full
  BucketRow row = storage::RefilledBucket(it->second, spec, db_->Now());
  row.tokens = std::min(spec.capacity, row.tokens + amount);
  it->second = row;
  return absl::OkStatus();
}

absl::StatusOr<QuotaRow*> FakeCounterStore::QuotaOf(absl::string_view key_id,
                                                    absl::Time now) {
  auto it = db_->key_quotas.find(std::string(key_id));
  if (it == db_->key_quotas.end()) {
    return absl::NotFoundError("the key has no quota");
  }
  storage::ApplyDueRefill(it->second, now);
  return &it->second;
}

absl::StatusOr<QuotaState> FakeCounterStore::SetQuota(
    absl::string_view key_id, int64_t remaining, std::optional<Refill> refill) {
  if (absl::Status s = storage::CheckQuota(remaining, refill); !s.ok()) {
    return s;
  }
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  if (db_->keys.count(std::string(key_id)) == 0) {
    return absl::NotFoundError("no such key");
  }
  const absl::Time now = db_->Now();
  auto [it, inserted] = db_->key_quotas.try_emplace(std::string(key_id));
  QuotaRow& row = it->second;
  row.remaining = remaining;
  row.refill = refill;
  row.period_start = now;
  row.epoch = inserted ? 0 : row.epoch + 1;
  return storage::StateOf(row, now);
}

absl::Status FakeCounterStore::ClearQuota(absl::string_view key_id) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  db_->key_quotas.erase(std::string(key_id));
  return absl::OkStatus();
}

absl::StatusOr<QuotaState> FakeCounterStore::GetQuota(
    absl::string_view key_id) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const absl::Time now = db_->Now();
  absl::StatusOr<QuotaRow*> row = QuotaOf(key_id, now);
  if (!row.ok()) return row.status();
  return storage::StateOf(**row, now);
}

absl::StatusOr<QuotaState> FakeCounterStore::AddCredits(
    absl::string_view key_id, int64_t delta) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const absl::Time now = db_->Now();
  absl::StatusOr<QuotaRow*> row = QuotaOf(key_id, now);
  if (!row.ok()) return row.status();
  QuotaRow& q = **row;
  q.remaining = delta < 0 ? std::max<int64_t>(0, q.remaining + delta)
                          : q.remaining + delta;
  ++q.epoch;
  return storage::StateOf(q, now);
}

absl::StatusOr<CreditLease> FakeCounterStore::LeaseCredits(
    absl::string_view key_id, int64_t want) {
  if (want < 0) return absl::InvalidArgumentError("want must be >= 0");
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const absl::Time now = db_->Now();
  absl::StatusOr<QuotaRow*> row = QuotaOf(key_id, now);
  if (!row.ok()) return row.status();
  QuotaRow& q = **row;
  CreditLease out;
  out.granted = std::min(want, q.remaining);
  q.remaining -= out.granted;
  out.remaining = q.remaining;
  out.epoch = q.epoch;
  out.next_refill = storage::NextRefill(q);
  out.db_now = now;
  return out;
}

absl::Status FakeCounterStore::ReturnCredits(absl::string_view key_id,
                                             int64_t epoch, int64_t amount) {
  if (amount < 0) return absl::InvalidArgumentError("amount must be >= 0");
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  absl::StatusOr<QuotaRow*> row = QuotaOf(key_id, db_->Now());
  if (!row.ok() || (*row)->epoch != epoch) return absl::OkStatus();
  (*row)->remaining += amount;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<storage::KeyRateLimit>>
FakeCounterStore::GetIdentityLimits(int64_t tenant_id,
                                    absl::string_view external_id) {
  if (absl::Status s = storage::CheckIdentityLimits(external_id, {}); !s.ok()) {
    return s;
  }
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  auto it = db_->identity_limits.find({tenant_id, std::string(external_id)});
  if (it == db_->identity_limits.end()) {
    return std::vector<storage::KeyRateLimit>();
  }
  return it->second;
}

absl::StatusOr<storage::IdentityLimitsChange>
FakeCounterStore::SetIdentityLimits(
    int64_t tenant_id, absl::string_view external_id,
    const std::vector<storage::KeyRateLimit>& limits,
    absl::FunctionRef<
        storage::AuditEvent(const std::vector<storage::KeyRateLimit>& before)>
        audit) {
  if (absl::Status s = storage::CheckIdentityLimits(external_id, limits);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  if (db_->tenants.count(tenant_id) == 0) {
    return absl::NotFoundError("no such tenant");
  }
  storage::IdentityLimitsChange out;
  const std::pair<int64_t, std::string> identity{tenant_id,
                                                 std::string(external_id)};
  if (auto it = db_->identity_limits.find(identity);
      it != db_->identity_limits.end()) {
    out.before = it->second;
  }
  if (limits.empty()) {
    db_->identity_limits.erase(identity);
  } else {
    std::vector<storage::KeyRateLimit> sorted = limits;
    storage::SortByName(&sorted);
    db_->identity_limits[identity] = std::move(sorted);
  }
  for (const auto& [id, row] : db_->keys) {
    if (row.deleted || row.record.tenant_id != tenant_id ||
        row.record.external_id != external_id) {
      continue;
    }
    out.keys.push_back({id, row.record.version});
  }
  db_->AppendAudit(tenant_id, storage::NextTransactionChainLane(),
                   audit(out.before));
  return out;
}

}  // namespace lumo::testing
