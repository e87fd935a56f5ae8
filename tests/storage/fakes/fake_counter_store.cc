#include "tests/storage/fakes/fake_counter_store.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

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
  db_->limit_window_heads[std::string(counter)] = spec.slot;
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

absl::Status FakeCounterStore::RememberNetwork(absl::string_view account,
                                               absl::string_view network,
                                               size_t keep,
                                               absl::Duration ttl) {
  if (absl::Status s = storage::CheckKnownNetwork(account, network, keep, ttl);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const absl::Time now = db_->Now();
  const std::string acct(account);
  db_->limit_known_networks[{acct, std::string(network)}] = now;
  // The account's rows, most recent first (ties: by network key).
  std::vector<std::pair<absl::Time, std::string>> rows;
  for (auto it = db_->limit_known_networks.lower_bound({acct, ""});
       it != db_->limit_known_networks.end() && it->first.first == acct; ++it) {
    rows.emplace_back(it->second, it->first.second);
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i >= keep || rows[i].first <= now - ttl) {
      db_->limit_known_networks.erase({acct, rows[i].second});
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> FakeCounterStore::SweepStale(absl::Duration bucket_idle,
                                                     absl::Duration known_ttl,
                                                     int64_t limit) {
  if (absl::Status s = storage::CheckSweep(bucket_idle, known_ttl, limit);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const absl::Time now = db_->Now();
  int64_t buckets = 0;
  for (auto it = db_->limit_buckets.begin();
       it != db_->limit_buckets.end() && buckets < limit;) {
    if (it->second.updated < now - bucket_idle) {
      it = db_->limit_buckets.erase(it);
      ++buckets;
    } else {
      ++it;
    }
  }
  int64_t networks = 0;
  for (auto it = db_->limit_known_networks.begin();
       it != db_->limit_known_networks.end() && networks < limit;) {
    if (it->second < now - known_ttl) {
      it = db_->limit_known_networks.erase(it);
      ++networks;
    } else {
      ++it;
    }
  }
  // Window slots no window counts, then heads of counters without slots.
  int64_t slots = 0;
  for (auto& [counter, rows] : db_->limit_windows) {
    auto head = db_->limit_window_heads.find(counter);
    if (head == db_->limit_window_heads.end()) continue;
    for (auto it = rows.begin(); it != rows.end() && slots < limit;) {
      if (storage::WindowReset(it->first, head->second) < now) {
        it = rows.erase(it);
        ++slots;
      } else {
        ++it;
      }
    }
  }
  for (auto it = db_->limit_windows.begin(); it != db_->limit_windows.end();) {
    it = it->second.empty() ? db_->limit_windows.erase(it) : std::next(it);
  }
  int64_t heads = 0;
  for (auto it = db_->limit_window_heads.begin();
       it != db_->limit_window_heads.end() && heads < limit;) {
    if (db_->limit_windows.count(it->first) == 0) {
      it = db_->limit_window_heads.erase(it);
      ++heads;
    } else {
      ++it;
    }
  }
  return buckets + networks + slots + heads;
}

absl::StatusOr<bool> FakeCounterStore::IsKnownNetwork(absl::string_view account,
                                                      absl::string_view network,
                                                      absl::Duration ttl) {
  if (absl::Status s = storage::CheckKnownNetwork(account, network, 1, ttl);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  auto it = db_->limit_known_networks.find(
      {std::string(account), std::string(network)});
  return it != db_->limit_known_networks.end() && it->second > db_->Now() - ttl;
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

absl::StatusOr<storage::CreditsChange> FakeCounterStore::ChangeCredits(
    absl::string_view key_id, const storage::CreditsUpdate& update,
    absl::FunctionRef<storage::AuditEvent(const storage::CreditsChange&)>
        audit) {
  if (update.op == storage::CreditsOp::kSet) {
    if (absl::Status s = storage::CheckQuota(update.value, update.refill);
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const std::string id(key_id);
  auto key = db_->keys.find(id);
  if (key == db_->keys.end()) return absl::NotFoundError("no such key");
  storage::CreditsChange out;
  out.tenant_id = key->second.record.tenant_id;
  const absl::Time now = db_->Now();
  auto it = db_->key_quotas.find(id);
  if (it != db_->key_quotas.end()) {
    storage::ApplyDueRefill(it->second, now);
    out.before = storage::StateOf(it->second, now);
  }
  switch (update.op) {
    case storage::CreditsOp::kSet: {
      QuotaRow row;
      row.remaining = update.value;
      row.refill = update.refill;
      row.period_start = now;
      row.epoch = out.before.has_value() ? out.before->epoch + 1 : 0;
      db_->key_quotas[id] = row;
      out.after = storage::StateOf(row, now);
      break;
    }
    case storage::CreditsOp::kAdd: {
      if (!out.before.has_value()) {
        return absl::NotFoundError("the key has no quota");
      }
      QuotaRow& q = it->second;
      q.remaining = update.value < 0
                        ? std::max<int64_t>(0, q.remaining + update.value)
                        : q.remaining + update.value;
      ++q.epoch;
      out.after = storage::StateOf(q, now);
      break;
    }
    case storage::CreditsOp::kRemove:
      if (!out.before.has_value()) return out;
      db_->key_quotas.erase(it);
      break;
  }
  db_->AppendAudit(out.tenant_id, storage::NextTransactionChainLane(),
                   audit(out));
  return out;
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
