#include "tests/storage/fakes/fake_key_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

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
ApiKeyRecord Snapshot(const KeyRow& row, absl::Time now) {
  ApiKeyRecord r = row.record;
  r.db_now = now;
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
  if (absl::Status s = CheckList(key.scopes, ' ', "scopes"); !s.ok()) return s;
  return CheckList(key.allowed_cidrs, ',', "allowed_cidrs");
}

KeyRow NewRow(const storage::NewKey& k, int64_t tenant_id, absl::Time now) {
  KeyRow row;
  row.record.id = k.id;
  row.record.tenant_id = tenant_id;
  row.record.name = k.name;
  row.record.scopes = k.scopes;
  row.record.allowed_cidrs = k.allowed_cidrs;
  row.record.rate_limit_per_minute = k.rate_limit_per_minute;
  row.record.expires_at = k.expires_at;
  row.record.created_at = now;
  row.record.created_by_type = k.created_by_type;
  row.record.created_by_id = k.created_by_id;
  row.current = k.secret;
  return row;
}

// Whether `key` passes the list query's search and status filter.
bool Matches(const ApiKeyRecord& key, const storage::ListKeysQuery& q,
             absl::Time now) {
  switch (q.status) {
    case storage::KeyStatusFilter::kActive:
      if (key.revoked || IsExpired(key, now)) return false;
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
  if (q.search.empty()) return true;
  // A pasted key ("lmk_<id>_...") searches for its id.
  if (absl::StartsWith(q.search, "lmk_") && q.search.size() > 4) {
    absl::string_view id = absl::string_view(q.search).substr(4);
    id = id.substr(0, std::min<size_t>(id.find('_'), 12));
    return ContainsIgnoringCase(key.name, absl::StrCat("lmk_", id)) ||
           absl::StartsWith(key.id, id);
  }
  return ContainsIgnoringCase(key.name, q.search) ||
         absl::StrContains(key.id, q.search);
}

// The list order: the sort field, then the id, both in the query's
// direction. A missing last use sorts as the oldest, a missing expiry as
// the latest.
bool Before(const ApiKeyRecord& a, const ApiKeyRecord& b,
            const storage::ListKeysQuery& q) {
  auto key = [&](const ApiKeyRecord& r) {
    switch (q.sort_by) {
      case storage::KeySortField::kName:
        return std::make_tuple(0, absl::InfinitePast(), Lower(r.name), r.id);
      case storage::KeySortField::kLastUsedAt:
        return std::make_tuple(0, r.last_used_at.value_or(absl::InfinitePast()),
                               std::string(), r.id);
      case storage::KeySortField::kExpiresAt:
        return std::make_tuple(r.expires_at.has_value() ? 0 : 1,
                               r.expires_at.value_or(absl::InfinitePast()),
                               std::string(), r.id);
      case storage::KeySortField::kCreatedAt:
        break;
    }
    return std::make_tuple(0, r.created_at, std::string(), r.id);
  };
  return q.descending ? key(b) < key(a) : key(a) < key(b);
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
  db_->keys[k.id] = NewRow(k, k.tenant_id, db_->Now());
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
  return Snapshot(*row, db_->Now());
}

absl::StatusOr<storage::KeyPage> FakeKeyStore::ListKeys(
    int64_t tenant_id, const storage::ListKeysQuery& query) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (absl::Status s = CheckPaging(query.page, query.limit); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const absl::Time now = db_->Now();
  std::vector<ApiKeyRecord> all;
  for (const auto& [id, row] : db_->keys) {
    if (row.deleted || row.record.tenant_id != tenant_id) continue;
    ApiKeyRecord record = Snapshot(row, now);
    if (Matches(record, query, now)) all.push_back(std::move(record));
  }
  std::sort(all.begin(), all.end(),
            [&](const ApiKeyRecord& a, const ApiKeyRecord& b) {
              return Before(a, b, query);
            });
  storage::KeyPage page;
  page.total = static_cast<int64_t>(all.size());
  page.keys = PageOf(all, query.page, query.limit);
  return page;
}

absl::StatusOr<ApiKeyRecord> FakeKeyStore::RotateKey(
    int64_t tenant_id, absl::string_view id,
    const storage::StoredSecret& new_secret, absl::Duration grace,
    const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("grace period must not be negative");
  }
  absl::MutexLock lock(&db_->mu);
  KeyRow* row = LiveKey(*db_, tenant_id, id);
  if (row == nullptr) return NotFound();
  const absl::Time now = db_->Now();
  if (row->record.revoked) {
    return absl::FailedPreconditionError("a revoked key cannot be rotated");
  }
  if (IsExpired(row->record, now)) {
    return absl::FailedPreconditionError("an expired key cannot be rotated");
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
  return Snapshot(*row, now);
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
  result.key = Snapshot(*row, now);
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
    out.key = Snapshot(row, db_->Now());
    auto tenant = db_->tenants.find(row.record.tenant_id);
    if (tenant != db_->tenants.end()) out.tenant_slug = tenant->second.slug;
    out.deleted = row.deleted;
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
