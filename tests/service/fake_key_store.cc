#include "tests/service/fake_key_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace lumo::testing {

using storage::ApiKeyRecord;

FakeKeyStore::FakeKeyStore()
    : now_(absl::FromCivil(absl::CivilSecond(2026, 1, 1, 0, 0, 0),
                           absl::UTCTimeZone())) {}

absl::Status FakeKeyStore::Begin() const {
  calls_.fetch_add(1);
  absl::MutexLock lock(&mu_);
  if (unavailable_) return absl::UnavailableError("fake store is down");
  return absl::OkStatus();
}

ApiKeyRecord FakeKeyStore::Snapshot(const Row& row) const {
  ApiKeyRecord r = row.record;
  r.db_now = now_;
  r.previous_secret_valid_until.reset();
  for (const storage::RetiredSecret& s : row.retired) {
    if (s.valid_until > now_ &&
        (!r.previous_secret_valid_until ||
         s.valid_until > *r.previous_secret_valid_until)) {
      r.previous_secret_valid_until = s.valid_until;
    }
  }
  return r;
}

absl::StatusOr<storage::Tenant> FakeKeyStore::CreateTenant(
    absl::string_view slug, absl::string_view name,
    const storage::NewKey* initial_key,
    const std::vector<storage::AuditEvent>& events) {
  if (absl::Status s = Begin(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (tenants_.count(std::string(slug))) {
    return absl::AlreadyExistsError("slug taken");
  }
  if (initial_key != nullptr && keys_.count(initial_key->id)) {
    return absl::AlreadyExistsError("id taken");
  }
  storage::Tenant tenant;
  tenant.id = static_cast<int64_t>(tenants_.size()) + 1;
  tenant.slug = std::string(slug);
  tenant.name = std::string(name);
  tenant.created_at = now_;
  tenants_[tenant.slug] = tenant;
  if (initial_key != nullptr) {
    Row row;
    const storage::NewKey& k = *initial_key;
    row.record.id = k.id;
    row.record.tenant_id = tenant.id;
    row.record.name = k.name;
    row.record.scopes = k.scopes;
    row.record.created_at = now_;
    row.record.created_by_type = k.created_by_type;
    row.record.created_by_id = k.created_by_id;
    row.current = k.secret;
    keys_[k.id] = row;
  }
  for (storage::AuditEvent e : events) events_.push_back(std::move(e));
  return tenant;
}

absl::StatusOr<storage::Tenant> FakeKeyStore::GetTenantBySlug(
    absl::string_view slug) {
  if (absl::Status s = Begin(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  auto it = tenants_.find(std::string(slug));
  if (it == tenants_.end()) return absl::NotFoundError("no tenant");
  return it->second;
}

absl::Status FakeKeyStore::InsertKey(const storage::NewKey& k,
                                     const storage::AuditEvent& event) {
  if (absl::Status s = Begin(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (keys_.count(k.id)) return absl::AlreadyExistsError("id taken");
  Row row;
  row.record.id = k.id;
  row.record.tenant_id = k.tenant_id;
  row.record.name = k.name;
  row.record.scopes = k.scopes;
  row.record.allowed_cidrs = k.allowed_cidrs;
  row.record.rate_limit_per_minute = k.rate_limit_per_minute;
  row.record.expires_at = k.expires_at;
  row.record.created_at = now_;
  row.record.created_by_type = k.created_by_type;
  row.record.created_by_id = k.created_by_id;
  row.current = k.secret;
  keys_[k.id] = row;
  events_.push_back(event);
  return absl::OkStatus();
}

absl::StatusOr<ApiKeyRecord> FakeKeyStore::GetKey(int64_t tenant_id,
                                                  absl::string_view id) {
  if (absl::Status s = Begin(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(std::string(id));
  if (it == keys_.end() || it->second.deleted ||
      it->second.record.tenant_id != tenant_id) {
    return absl::NotFoundError("no key");
  }
  return Snapshot(it->second);
}

absl::StatusOr<storage::KeyPage> FakeKeyStore::ListKeys(
    int64_t tenant_id, const storage::ListKeysQuery& query) {
  if (absl::Status s = Begin(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  std::vector<ApiKeyRecord> all;
  for (const auto& [id, row] : keys_) {
    if (row.deleted || row.record.tenant_id != tenant_id) continue;
    if (!query.search.empty() &&
        !absl::StrContains(absl::AsciiStrToLower(row.record.name),
                           absl::AsciiStrToLower(query.search)) &&
        !absl::StartsWith(id, query.search)) {
      continue;
    }
    all.push_back(Snapshot(row));
  }
  std::sort(all.begin(), all.end(),
            [&](const ApiKeyRecord& a, const ApiKeyRecord& b) {
              bool less = query.sort_by == storage::KeySortField::kName
                              ? a.name < b.name
                              : a.created_at < b.created_at;
              return query.descending ? !less : less;
            });
  storage::KeyPage page;
  page.total = static_cast<int64_t>(all.size());
  const size_t begin = static_cast<size_t>(query.page - 1) * query.limit;
  for (size_t i = begin; i < all.size() && i < begin + query.limit; ++i) {
    page.keys.push_back(all[i]);
  }
  return page;
}

absl::StatusOr<ApiKeyRecord> FakeKeyStore::RotateKey(
    int64_t tenant_id, absl::string_view id,
    const storage::StoredSecret& new_secret, absl::Duration grace,
    const storage::AuditEvent& event) {
  if (absl::Status s = Begin(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(std::string(id));
  if (it == keys_.end() || it->second.deleted ||
      it->second.record.tenant_id != tenant_id) {
    return absl::NotFoundError("no key");
  }
  Row& row = it->second;
  if (row.record.revoked) return absl::FailedPreconditionError("revoked");
  if (row.record.expires_at && *row.record.expires_at <= now_) {
    return absl::FailedPreconditionError("expired");
  }
  // A rotation ends earlier grace periods that would outlast its own.
  for (storage::RetiredSecret& r : row.retired) {
    r.valid_until = std::min(r.valid_until, now_ + grace);
  }
  row.retired.insert(row.retired.begin(),
                     storage::RetiredSecret{row.current, now_ + grace});
  if (row.retired.size() > storage::kMaxRetiredSecrets) {
    row.retired.resize(storage::kMaxRetiredSecrets);
  }
  row.current = new_secret;
  row.record.rotated_at = now_;
  ++row.record.version;
  events_.push_back(event);
  return Snapshot(row);
}

absl::StatusOr<storage::RevokeResult> FakeKeyStore::RevokeKey(
    int64_t tenant_id, absl::string_view id, const storage::AuditEvent& event) {
  if (absl::Status s = Begin(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(std::string(id));
  if (it == keys_.end() || it->second.deleted ||
      it->second.record.tenant_id != tenant_id) {
    return absl::NotFoundError("no key");
  }
  Row& row = it->second;
  storage::RevokeResult result;
  if (!row.record.revoked) {
    row.record.revoked = true;
    row.record.revoked_at = now_;
    ++row.record.version;
    events_.push_back(event);
    result.changed = true;
  }
  result.key = Snapshot(row);
  return result;
}

absl::StatusOr<storage::DeleteResult> FakeKeyStore::DeleteKey(
    int64_t tenant_id, absl::string_view id, const storage::AuditEvent& event) {
  if (absl::Status s = Begin(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(std::string(id));
  if (it == keys_.end() || it->second.record.tenant_id != tenant_id) {
    return absl::NotFoundError("no key");
  }
  storage::DeleteResult result;
  if (!it->second.deleted) {
    it->second.deleted = true;
    ++it->second.record.version;
    events_.push_back(event);
    result.changed = true;
  }
  result.version = it->second.record.version;
  return result;
}

absl::StatusOr<storage::VerifyRecord> FakeKeyStore::LoadForVerify(
    absl::string_view id) {
  if (absl::Status s = Begin(); !s.ok()) return s;
  verify_loads_.fetch_add(1);
  std::function<void()> hook;
  storage::VerifyRecord out;
  {
    absl::MutexLock lock(&mu_);
    auto it = keys_.find(std::string(id));
    if (it == keys_.end()) return absl::NotFoundError("no key");
    const Row& row = it->second;
    out.key = Snapshot(row);
    for (const auto& [slug, tenant] : tenants_) {
      if (tenant.id == row.record.tenant_id) out.tenant_slug = slug;
    }
    out.deleted = row.deleted;
    out.current = row.current;
    out.retired = row.retired;
    hook = std::move(load_hook_);
    load_hook_ = nullptr;
  }
  if (hook) hook();
  return out;
}

absl::StatusOr<absl::Time> FakeKeyStore::Now() {
  if (absl::Status s = Begin(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  return now_;
}

void FakeKeyStore::SetNow(absl::Time now) {
  absl::MutexLock lock(&mu_);
  now_ = now;
}

void FakeKeyStore::Advance(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  now_ += d;
}

void FakeKeyStore::SetUnavailable(bool unavailable) {
  absl::MutexLock lock(&mu_);
  unavailable_ = unavailable;
}

std::vector<storage::AuditEvent> FakeKeyStore::events() const {
  absl::MutexLock lock(&mu_);
  return events_;
}

void FakeKeyStore::SetLoadHook(std::function<void()> hook) {
  absl::MutexLock lock(&mu_);
  load_hook_ = std::move(hook);
}

}  // namespace lumo::testing
