#include "tests/storage/fakes/fake_key_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/storage/counter_rules.h"
#include "server/storage/key_states.h"

namespace lumo::testing {
namespace {

using storage::ApiKeyRecord;
using KeyRow = FakeDatabase::KeyRow;

absl::Status NotFound() { return absl::NotFoundError("API key not found"); }

// Key ids are 1-12 base62 characters; nothing else names a key.
bool IsWellFormedKeyId(absl::string_view id) {
  if (id.empty() || id.size() > 12) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// The record as a read at `now` sees it.
// The record of `row` at `now`, with its quota from the shared counters.
ApiKeyRecord Snapshot(const FakeDatabase& db, const KeyRow& row, absl::Time now)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  ApiKeyRecord r = row.record;
  r.db_now = now;
  r.quota.reset();
  if (auto it = db.key_quotas.find(r.id); it != db.key_quotas.end()) {
    r.quota = storage::KeyQuotaAt(it->second, now);
  }
  r.previous_secret_valid_until.reset();
  for (const auto& [version, retired] : row.retired) {
    if (retired.valid_until > now &&
        (!r.previous_secret_valid_until ||
         retired.valid_until > *r.previous_secret_valid_until)) {
      r.previous_secret_valid_until = retired.valid_until;
    }
  }
  return r;
}

bool IsExpired(const ApiKeyRecord& key, absl::Time now) {
  return key.expires_at.has_value() && *key.expires_at <= now;
}

// The live key `id` of the tenant, or null.
KeyRow* LiveKey(FakeDatabase& db, int64_t tenant_id, absl::string_view id)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  auto it = db.keys.find(std::string(id));
  if (it == db.keys.end() || it->second.deleted ||
      it->second.record.tenant_id != tenant_id) {
    return nullptr;
  }
  return &it->second;
}

absl::Status CheckNewKey(const storage::NewKey& key) {
  if (!IsWellFormedKeyId(key.id)) {
    return absl::InvalidArgumentError("key id must be 1-12 base62 characters");
  }
  if (absl::Status s = storage::CheckKeyRateLimits(key.rate_limits); !s.ok()) {
    return s;
  }
  if (key.quota.has_value()) {
    if (absl::Status s = storage::CheckKeyQuota(*key.quota); !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = CheckList(key.scopes, ' ', "scopes"); !s.ok()) return s;
  return CheckList(key.allowed_cidrs, ',', "allowed_cidrs");
}

// Stores the quota of a key being inserted (its period starts `now`).
void InsertQuota(FakeDatabase& db, const storage::NewKey& k, absl::Time now)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  if (!k.quota.has_value()) return;
  storage::QuotaRow row;
  row.remaining = k.quota->remaining;
  row.refill = storage::RefillOf(*k.quota);
  row.period_start = now;
  db.key_quotas[k.id] = row;
}

KeyRow NewRow(const storage::NewKey& k, int64_t tenant_id, absl::Time now) {
  KeyRow row;
  row.record = storage::RecordOfNewKey(k);
  row.record.tenant_id = tenant_id;
  row.record.created_at = now;
  row.current = k.secret;
  return row;
}

// Whether `key` passes the list query's search, status and state filters
// (`policy`: the tenant's key policy).
bool Matches(const ApiKeyRecord& key, const storage::ListKeysQuery& q,
             const storage::KeyPolicy& policy, absl::Time now) {
  if (key.decoy != q.decoys) return false;
  switch (q.status) {
    case storage::KeyStatusFilter::kActive:
      if (key.revoked || IsExpired(key, now) || key.disabled) return false;
      break;
    case storage::KeyStatusFilter::kDisabled:
      if (key.revoked || IsExpired(key, now) || !key.disabled) return false;
      break;
    case storage::KeyStatusFilter::kRevoked:
      if (!key.revoked) return false;
      break;
    case storage::KeyStatusFilter::kExpired:
      if (key.revoked || !IsExpired(key, now)) return false;
      break;
    case storage::KeyStatusFilter::kAny:
      break;
  }
  const storage::KeyStates states = storage::KeyStatesAt(key, policy, now);
  switch (q.state) {
    case storage::KeyStateFilter::kRotationDue:
      if (!states.rotation_due) return false;
      break;
    case storage::KeyStateFilter::kExpiring:
      if (!states.expiring_soon) return false;
      break;
    case storage::KeyStateFilter::kInactive:
      if (!states.inactive) return false;
      break;
    case storage::KeyStateFilter::kDisabled:
      if (!states.disabled) return false;
      break;
    case storage::KeyStateFilter::kAny:
      break;
  }
  if (q.search.empty()) return true;
  // A pasted key ("lmk_<id>_...") searches for its id.
  if (absl::StartsWith(q.search, "lmk_") && q.search.size() > 4) {
    absl::string_view id = absl::string_view(q.search).substr(4);
    id = id.substr(0, std::min<size_t>(id.find('_'), 12));
    const std::string display = absl::StrCat("lmk_", id);
    return ContainsIgnoringCase(key.name, display) ||
           absl::StartsWith(key.id, id) ||
           Lower(key.external_id) == Lower(display);
  }
  return ContainsIgnoringCase(key.name, q.search) ||
         absl::StrContains(key.id, q.search) ||
         Lower(key.external_id) == Lower(q.search);
}

// The list order: the sort field, then the id, both in the query's
// direction. A missing last use sorts as the oldest, a missing expiry as
// the latest.
auto SortKey(const storage::KeyPosition& p, storage::KeySortField sort_by) {
  switch (sort_by) {
    case storage::KeySortField::kName:
      return std::make_tuple(0, absl::InfinitePast(), Lower(p.name), p.id);
    case storage::KeySortField::kLastUsedAt:
      return std::make_tuple(0, p.time.value_or(absl::InfinitePast()),
                             std::string(), p.id);
    case storage::KeySortField::kExpiresAt:
      return std::make_tuple(p.time.has_value() ? 0 : 1,
                             p.time.value_or(absl::InfinitePast()),
                             std::string(), p.id);
    case storage::KeySortField::kCreatedAt:
      break;
  }
  return std::make_tuple(0, p.time.value_or(absl::InfinitePast()),
                         std::string(), p.id);
}

bool Before(const storage::KeyPosition& a, const storage::KeyPosition& b,
            const storage::ListKeysQuery& q) {
  return q.descending ? SortKey(b, q.sort_by) < SortKey(a, q.sort_by)
                      : SortKey(a, q.sort_by) < SortKey(b, q.sort_by);
}

}  // namespace

FakeKeyStore::FakeKeyStore() : db_(std::make_shared<FakeDatabase>()) {
  db_->FreezeClock(absl::FromCivil(absl::CivilSecond(2026, 1, 1, 0, 0, 0),
                                   absl::UTCTimeZone()));
}

FakeKeyStore::FakeKeyStore(std::shared_ptr<FakeDatabase> db)
    : db_(std::move(db)) {}

absl::StatusOr<storage::Tenant> FakeKeyStore::CreateTenant(
    absl::string_view slug, absl::string_view name,
    const storage::NewKey* initial_key,
    const std::vector<storage::AuditEvent>& events) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  if (db_->TenantBySlug(slug) != nullptr) {
    return absl::AlreadyExistsError("create tenant: slug taken");
  }
  if (initial_key != nullptr) {
    if (absl::Status s = CheckNewKey(*initial_key); !s.ok()) return s;
    if (db_->keys.count(initial_key->id)) {
      return absl::AlreadyExistsError("create tenant: key id taken");
    }
  }
  const storage::Tenant tenant = db_->InsertTenant(slug, name);
  if (initial_key != nullptr) {
    db_->keys[initial_key->id] = NewRow(*initial_key, tenant.id, db_->Now());
    InsertQuota(*db_, *initial_key, db_->Now());
  }
  const int lane = storage::NextTransactionChainLane();
  for (const storage::AuditEvent& e : events) {
    db_->AppendAudit(tenant.id, lane, e);
  }
  if (initial_key != nullptr) {
    AppendKeyChange(tenant.id, initial_key->id, "created", 1);
  }
  return tenant;
}

absl::StatusOr<storage::Tenant> FakeKeyStore::GetTenantBySlug(
    absl::string_view slug) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const storage::Tenant* tenant = db_->TenantBySlug(slug);
  if (tenant == nullptr) return absl::NotFoundError("tenant not found");
  return *tenant;
}

absl::Status FakeKeyStore::InsertKey(const storage::NewKey& k,
                                     const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (absl::Status s = CheckNewKey(k); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  if (!db_->tenants.count(k.tenant_id)) {
    return absl::NotFoundError("insert key: tenant not found");
  }
  if (db_->keys.count(k.id)) {
    return absl::AlreadyExistsError("insert key: id taken");
  }
  db_->keys[k.id] = NewRow(k, k.tenant_id, k.created_at.value_or(db_->Now()));
  InsertQuota(*db_, k, db_->Now());
  db_->AppendAudit(k.tenant_id, storage::NextTransactionChainLane(), event);
  AppendKeyChange(k.tenant_id, k.id, "created", 1);
  return absl::OkStatus();
}

absl::StatusOr<ApiKeyRecord> FakeKeyStore::GetKey(int64_t tenant_id,
                                                  absl::string_view id) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const KeyRow* row = LiveKey(*db_, tenant_id, id);
  if (row == nullptr) return NotFound();
  return Snapshot(*db_, *row, db_->Now());
}

absl::StatusOr<storage::KeyWithPolicy> FakeKeyStore::GetKeyWithPolicy(
    int64_t tenant_id, absl::string_view id) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const KeyRow* row = LiveKey(*db_, tenant_id, id);
  if (row == nullptr) return NotFound();
  return storage::KeyWithPolicy{Snapshot(*db_, *row, db_->Now()),
                                db_->KeyPolicyOf(tenant_id)};
}

absl::StatusOr<storage::KeyPage> FakeKeyStore::ListKeys(
    int64_t tenant_id, const storage::ListKeysQuery& query) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (absl::Status s = CheckPaging(query.page, query.limit); !s.ok()) return s;
  if (query.after.has_value() && query.page != 1) {
    return absl::InvalidArgumentError("page must be 1 with a list position");
  }
  absl::MutexLock lock(&db_->mu);
  const absl::Time now = db_->Now();
  const storage::KeyPolicy policy = db_->KeyPolicyOf(tenant_id);
  std::vector<ApiKeyRecord> all;
  for (const auto& [id, row] : db_->keys) {
    if (row.deleted || row.record.tenant_id != tenant_id) continue;
    ApiKeyRecord record = Snapshot(*db_, row, now);
    if (Matches(record, query, policy, now)) all.push_back(std::move(record));
  }
  std::sort(all.begin(), all.end(),
            [&](const ApiKeyRecord& a, const ApiKeyRecord& b) {
              return Before(storage::PositionOf(a, query.sort_by),
                            storage::PositionOf(b, query.sort_by), query);
            });
  storage::KeyPage page;
  const storage::CountedTotal total =
      storage::TotalOf(query.count, static_cast<int64_t>(all.size()));
  page.total = total.total;
  page.total_kind = total.kind;
  if (query.after.has_value()) {
    std::vector<ApiKeyRecord> rest;
    for (ApiKeyRecord& record : all) {
      if (Before(*query.after, storage::PositionOf(record, query.sort_by),
                 query)) {
        rest.push_back(std::move(record));
      }
    }
    all = std::move(rest);
  }
  page.keys = PageOf(all, query.page, query.limit);
  page.has_more = static_cast<size_t>(query.page) * query.limit < all.size();
  return page;
}

absl::StatusOr<ApiKeyRecord> FakeKeyStore::RotateKey(
    int64_t tenant_id, absl::string_view id,
    const storage::StoredSecret& new_secret, absl::Duration grace,
    const storage::RotateOptions& options, const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("grace period must not be negative");
  }
  absl::MutexLock lock(&db_->mu);
  KeyRow* row = LiveKey(*db_, tenant_id, id);
  if (row == nullptr) return NotFound();
  const absl::Time now = db_->Now();
  if (options.expected_version.has_value() &&
      *options.expected_version != row->record.version) {
    return absl::AbortedError("rotate key: the key changed meanwhile");
  }
  if (absl::Status s =
          storage::CheckRotation(Snapshot(*db_, *row, now), options);
      !s.ok()) {
    return s;
  }
  if (options.expires_at.has_value()) {
    row->record.expires_at = *options.expires_at;
  }
  const absl::Time valid_until = now + grace;
  // A rotation ends earlier grace periods that would outlast its own.
  for (auto& [version, retired] : row->retired) {
    retired.valid_until = std::min(retired.valid_until, valid_until);
  }
  row->retired.insert(
      row->retired.begin(),
      {row->record.version, storage::RetiredSecret{row->current, valid_until}});
  if (row->retired.size() > storage::kMaxRetiredSecrets) {
    row->retired.resize(storage::kMaxRetiredSecrets);
  }
  row->current = new_secret;
  row->record.rotated_at = now;
  ++row->record.version;
  db_->AppendAudit(tenant_id, storage::NextTransactionChainLane(), event);
  AppendKeyChange(tenant_id, id, "rotated", row->record.version);
  return Snapshot(*db_, *row, now);
}

absl::StatusOr<storage::RevokeResult> FakeKeyStore::RevokeKey(
    int64_t tenant_id, absl::string_view id, const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  KeyRow* row = LiveKey(*db_, tenant_id, id);
  if (row == nullptr) return NotFound();
  const absl::Time now = db_->Now();
  storage::RevokeResult result;
  if (!row->record.revoked) {
    row->record.revoked = true;
    row->record.revoked_at = now;
    ++row->record.version;
    db_->AppendAudit(tenant_id, storage::NextTransactionChainLane(), event);
    AppendKeyChange(tenant_id, id, "revoked", row->record.version);
    result.changed = true;
  }
  result.key = Snapshot(*db_, *row, now);
  return result;
}

absl::StatusOr<storage::UpdateResult> FakeKeyStore::UpdateKey(
    int64_t tenant_id, absl::string_view id, int64_t expected_version,
    const storage::KeyEdit& edit, const storage::AuditEvent& event) {
  if (edit.empty()) {
    return absl::InvalidArgumentError("update key: the edit changes nothing");
  }
  if (edit.scopes) {
    if (absl::Status s = CheckList(*edit.scopes, ' ', "scopes"); !s.ok()) {
      return s;
    }
  }
  if (edit.allowed_cidrs) {
    if (absl::Status s = CheckList(*edit.allowed_cidrs, ',', "allowed_cidrs");
        !s.ok()) {
      return s;
    }
  }
  if (edit.rate_limits) {
    if (absl::Status s = storage::CheckKeyRateLimits(*edit.rate_limits);
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  KeyRow* row = LiveKey(*db_, tenant_id, id);
  if (row == nullptr) return NotFound();
  const absl::Time now = db_->Now();
  if (row->record.revoked) {
    return absl::FailedPreconditionError("a revoked key cannot be edited");
  }
  if (row->record.version != expected_version) {
    return absl::AbortedError("update key: the key changed meanwhile");
  }
  if (edit.expires_at.has_value() && IsExpired(row->record, now)) {
    return absl::FailedPreconditionError(
        "the expiry of an expired key cannot be edited; rotate the key with a "
        "new expiry to renew it");
  }
  storage::ApplyEdit(edit, &row->record);
  ++row->record.version;
  db_->AppendAudit(tenant_id, storage::NextTransactionChainLane(), event);
  AppendKeyChange(tenant_id, id, "updated", row->record.version);
  storage::UpdateResult result;
  result.key = Snapshot(*db_, *row, now);
  result.changed = true;
  return result;
}

absl::StatusOr<storage::UpdateResult> FakeKeyStore::SetKeyDisabled(
    int64_t tenant_id, absl::string_view id, bool disabled,
    std::optional<int64_t> expected_version, const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  KeyRow* row = LiveKey(*db_, tenant_id, id);
  if (row == nullptr) return NotFound();
  const absl::Time now = db_->Now();
  if (row->record.revoked) {
    return absl::FailedPreconditionError(
        disabled ? "a revoked key cannot be disabled"
                 : "a revoked key cannot be enabled");
  }
  if (expected_version.has_value() &&
      *expected_version != row->record.version) {
    return absl::AbortedError("the key changed since it was checked");
  }
  storage::UpdateResult result;
  if (row->record.disabled != disabled) {
    row->record.disabled = disabled;
    row->record.disabled_at =
        disabled ? std::optional<absl::Time>(now) : std::nullopt;
    ++row->record.version;
    db_->AppendAudit(tenant_id, storage::NextTransactionChainLane(), event);
    AppendKeyChange(tenant_id, id, disabled ? "disabled" : "enabled",
                    row->record.version);
    result.changed = true;
  }
  result.key = Snapshot(*db_, *row, now);
  return result;
}

absl::StatusOr<storage::UpdateResult> FakeKeyStore::EndRetiredSecretGrace(
    int64_t tenant_id, absl::string_view id, const core::Digest& digest,
    const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  KeyRow* row = LiveKey(*db_, tenant_id, id);
  if (row == nullptr) return NotFound();
  const absl::Time now = db_->Now();
  storage::UpdateResult result;
  for (auto& [version, retired] : row->retired) {
    if (retired.valid_until > now &&
        core::ConstantTimeEquals(retired.secret.digest, digest)) {
      retired.valid_until = now;
      result.changed = true;
    }
  }
  if (result.changed) {
    ++row->record.version;
    db_->AppendAudit(tenant_id, storage::NextTransactionChainLane(), event);
    AppendKeyChange(tenant_id, id, "updated", row->record.version);
  }
  result.key = Snapshot(*db_, *row, now);
  return result;
}

absl::StatusOr<storage::DeleteResult> FakeKeyStore::DeleteKey(
    int64_t tenant_id, absl::string_view id, const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  auto it = db_->keys.find(std::string(id));
  if (it == db_->keys.end() || it->second.record.tenant_id != tenant_id) {
    return NotFound();
  }
  KeyRow& row = it->second;
  storage::DeleteResult result;
  if (!row.deleted) {
    row.deleted = true;
    ++row.record.version;
    db_->AppendAudit(tenant_id, storage::NextTransactionChainLane(), event);
    AppendKeyChange(tenant_id, id, "deleted", row.record.version);
    result.changed = true;
  }
  result.version = row.record.version;
  return result;
}

absl::StatusOr<storage::VerifyRecord> FakeKeyStore::LoadForVerify(
    absl::string_view id) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  verify_loads_.fetch_add(1);
  storage::VerifyRecord out;
  {
    absl::MutexLock lock(&db_->mu);
    auto it = db_->keys.find(std::string(id));
    if (it == db_->keys.end()) return NotFound();
    const KeyRow& row = it->second;
    out.key = Snapshot(*db_, row, db_->Now());
    auto tenant = db_->tenants.find(row.record.tenant_id);
    if (tenant != db_->tenants.end()) out.tenant_slug = tenant->second.slug;
    out.deleted = row.deleted;
    out.policy = db_->KeyPolicyOf(row.record.tenant_id);
    if (!row.record.external_id.empty()) {
      auto limits = db_->identity_limits.find(
          {row.record.tenant_id, row.record.external_id});
      if (limits != db_->identity_limits.end()) {
        out.identity_limits = limits->second;
      }
    }
    out.current = row.current;
    for (const auto& [version, retired] : row.retired) {
      out.retired.push_back(retired);
    }
  }
  std::function<void()> hook;
  {
    absl::MutexLock lock(&hook_mu_);
    hook = std::move(load_hook_);
    load_hook_ = nullptr;
  }
  if (hook) hook();
  return out;
}

absl::StatusOr<storage::KeyPolicy> FakeKeyStore::GetKeyPolicy(
    int64_t tenant_id) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  return db_->KeyPolicyOf(tenant_id);
}

absl::StatusOr<storage::KeyPolicyAt> FakeKeyStore::GetKeyPolicyAt(
    int64_t tenant_id) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  return storage::KeyPolicyAt{db_->KeyPolicyOf(tenant_id), db_->Now()};
}

absl::StatusOr<bool> FakeKeyStore::TakeSweepLease(absl::string_view holder,
                                                  absl::Duration lease) {
  if (holder.empty() || holder.size() > 64) {
    return absl::InvalidArgumentError("a lease holder is 1-64 bytes");
  }
  if (lease <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("a lease must be positive");
  }
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const absl::Time now = db_->Now();
  if (db_->sweep_holder != holder && db_->sweep_lease_until > now) {
    return false;
  }
  db_->sweep_holder = std::string(holder);
  db_->sweep_lease_until = now + lease;
  return true;
}

absl::StatusOr<storage::AnnouncementBatch> FakeKeyStore::PendingAnnouncements(
    absl::string_view after_key_id, int limit) {
  if (limit < 1 || limit > 1000) {
    return absl::InvalidArgumentError("limit must be between 1 and 1000");
  }
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const absl::Time now = db_->Now();
  storage::AnnouncementBatch batch;
  int keys = 0;
  for (auto it = db_->keys.upper_bound(std::string(after_key_id));
       it != db_->keys.end() && keys < limit; ++it) {
    const KeyRow& row = it->second;
    if (row.deleted || row.record.decoy) continue;
    const ApiKeyRecord& key = row.record;
    const storage::KeyPolicy policy = db_->KeyPolicyOf(key.tenant_id);
    const storage::KeyStates states = storage::KeyStatesAt(key, policy, now);
    std::optional<absl::Time> for_date[3];
    if (states.rotation_due) for_date[0] = states.rotation_due_at;
    if (states.expiring_soon) for_date[1] = key.expires_at;
    if (states.inactive) {
      for_date[2] = key.last_used_at.value_or(key.created_at);
    }
    bool pending = false;
    for (int i = 0; i < 3; ++i) {
      if (!for_date[i].has_value() || for_date[i] == row.announced_for[i]) {
        continue;
      }
      pending = true;
      storage::StateAnnouncement a;
      a.tenant_id = key.tenant_id;
      a.key_id = key.id;
      a.state = static_cast<storage::AnnouncedState>(i);
      a.for_date = *for_date[i];
      a.announced_for = row.announced_for[i];
      batch.announcements.push_back(std::move(a));
    }
    if (pending && ++keys == limit) batch.last_key_id = key.id;
  }
  return batch;
}

absl::StatusOr<bool> FakeKeyStore::AnnounceKeyState(
    const storage::StateAnnouncement& a, const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  auto it = db_->keys.find(a.key_id);
  if (it == db_->keys.end()) return false;
  KeyRow& row = it->second;
  std::optional<absl::Time>& announced =
      row.announced_for[static_cast<int>(a.state)];
  if (row.record.tenant_id != a.tenant_id || row.deleted ||
      row.record.revoked || announced != a.announced_for) {
    return false;
  }
  announced = a.for_date;
  db_->AppendAudit(a.tenant_id, storage::NextTransactionChainLane(), event);
  return true;
}

absl::StatusOr<absl::Time> FakeKeyStore::Now() {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  return db_->Now();
}

std::vector<storage::AuditEvent> FakeKeyStore::events() const {
  absl::MutexLock lock(&db_->mu);
  std::vector<storage::AuditEvent> out;
  for (const auto& [id, row] : db_->audit) out.push_back(row.stored.event);
  return out;
}

void FakeKeyStore::SetLoadHook(std::function<void()> hook) {
  absl::MutexLock lock(&hook_mu_);
  load_hook_ = std::move(hook);
}

void FakeKeyStore::SetFeedWriter(absl::string_view writer) {
  absl::MutexLock lock(&feed_mu_);
  feed_writer_ = std::string(writer);
}

int64_t FakeKeyStore::FeedWriterHead() {
  absl::MutexLock lock(&feed_mu_);
  return feed_wseq_;
}

std::optional<storage::StreamPosition> FakeKeyStore::DrawFeedSlot() {
  absl::MutexLock lock(&feed_mu_);
  if (feed_writer_.empty()) return std::nullopt;
  return storage::StreamPosition{feed_writer_, ++feed_wseq_};
}

void FakeKeyStore::AppendKeyChange(int64_t tenant_id, absl::string_view key_id,
                                   absl::string_view change_type,
                                   int64_t version) {
  const int64_t seq =
      db_->AppendChange(tenant_id, key_id, change_type, version, false);
  absl::MutexLock lock(&feed_mu_);
  if (feed_writer_.empty()) return;
  db_->feed[seq].change.writer = feed_writer_;
  db_->feed[seq].change.wseq = ++feed_wseq_;
}

}  // namespace lumo::testing
