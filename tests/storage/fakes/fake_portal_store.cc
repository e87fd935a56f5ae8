#include "tests/storage/fakes/fake_portal_store.h"

#include <utility>

namespace lumo::testing {
namespace {

std::string Key(const core::Digest& d) {
  return std::string(core::AsStringView(d));
}

}  // namespace

absl::StatusOr<storage::PortalAdmin> FakePortalStore::FindAdmin(
    absl::string_view tenant_slug, absl::string_view email) {
  find_calls_.fetch_add(1);
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const storage::Tenant* tenant = db_->TenantBySlug(tenant_slug);
  if (tenant == nullptr) return absl::NotFoundError("portal admin not found");
  const FakeDatabase::UserRow* user =
      db_->FindUser(tenant->id, storage::UserRef::Email(email));
  if (user == nullptr) return absl::NotFoundError("portal admin not found");
  auto credential = db_->portal_credentials.find({tenant->id, user->user.id});
  if (credential == db_->portal_credentials.end()) {
    return absl::NotFoundError("portal admin not found");
  }
  storage::PortalAdmin admin;
  admin.tenant_id = tenant->id;
  admin.tenant_slug = tenant->slug;
  admin.user_id = user->user.id;
  admin.email = user->user.email;
  admin.blocked = user->user.blocked;
  admin.password_hash = credential->second;
  return admin;
}

absl::StatusOr<std::string> FakePortalStore::UpsertAdmin(
    absl::string_view tenant_slug, absl::string_view email,
    absl::string_view new_user_id, absl::string_view password_hash,
    const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const storage::Tenant* tenant = db_->TenantBySlug(tenant_slug);
  if (tenant == nullptr) return absl::NotFoundError("tenant not found");
  const int64_t tenant_id = tenant->id;
  std::string user_id;
  if (const FakeDatabase::UserRow* user =
          db_->FindUser(tenant_id, storage::UserRef::Email(email))) {
    user_id = user->user.id;
  } else {
    user_id = std::string(new_user_id);
    if (db_->users.count({tenant_id, user_id})) {
      return absl::AlreadyExistsError("set portal admin: user id taken");
    }
    FakeDatabase::UserRow& row = db_->users[{tenant_id, user_id}];
    row.user.id = user_id;
    row.user.tenant_id = tenant_id;
    row.user.email = std::string(email);
    row.user.created_at = row.user.updated_at = db_->Now();
  }
  db_->portal_credentials[{tenant_id, user_id}] = std::string(password_hash);
  // A changed password ends every session of the user.
  for (auto it = db_->sessions.begin(); it != db_->sessions.end();) {
    const bool owned =
        it->second.tenant_id == tenant_id && it->second.user_id == user_id;
    it = owned ? db_->sessions.erase(it) : std::next(it);
  }
  storage::AuditEvent audit = event;
  audit.target_type = "user";
  audit.target_id = user_id;
  db_->AppendAudit(tenant_id, storage::NextTransactionChainLane(),
                   std::move(audit));
  return user_id;
}

absl::Status FakePortalStore::InsertSession(int64_t tenant_id,
                                            absl::string_view user_id,
                                            const core::Digest& token_sha256,
                                            const core::Digest& csrf_sha256,
                                            absl::Duration absolute_ttl,
                                            const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  if (!db_->users.count({tenant_id, std::string(user_id)})) {
    // The session row's foreign key to its user.
    return absl::FailedPreconditionError("insert portal session: no such user");
  }
  if (db_->sessions.count(Key(token_sha256))) {
    return absl::AlreadyExistsError("insert portal session: token taken");
  }
  FakeDatabase::SessionRow& row = db_->sessions[Key(token_sha256)];
  row.tenant_id = tenant_id;
  row.user_id = std::string(user_id);
  row.csrf_sha256 = csrf_sha256;
  row.created_at = row.last_seen_at = db_->Now();
  row.expires_at = row.created_at + absolute_ttl;
  db_->AppendAudit(tenant_id, storage::NextTransactionChainLane(), event);
  return absl::OkStatus();
}

absl::StatusOr<storage::PortalSessionRecord> FakePortalStore::TouchSession(
    const core::Digest& token_sha256, absl::Duration idle_ttl,
    absl::Duration touch_every) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  auto it = db_->sessions.find(Key(token_sha256));
  if (it == db_->sessions.end())
    return absl::NotFoundError("session not found");
  FakeDatabase::SessionRow& row = it->second;
  auto tenant = db_->tenants.find(row.tenant_id);
  auto user = db_->users.find({row.tenant_id, row.user_id});
  if (tenant == db_->tenants.end() || user == db_->users.end()) {
    return absl::NotFoundError("session not found");
  }
  const absl::Time now = db_->Now();
  if (user->second.user.blocked || now >= row.expires_at ||
      now - row.last_seen_at >= idle_ttl) {
    db_->sessions.erase(it);
    return absl::NotFoundError("session expired");
  }
  if (now - row.last_seen_at >= touch_every) row.last_seen_at = now;
  storage::PortalSessionRecord record;
  record.tenant_id = row.tenant_id;
  record.tenant_slug = tenant->second.slug;
  record.user_id = row.user_id;
  record.email = user->second.user.email;
  record.csrf_sha256 = row.csrf_sha256;
  record.created_at = row.created_at;
  record.last_seen_at = row.last_seen_at;
  record.expires_at = row.expires_at;
  record.db_now = now;
  return record;
}

absl::Status FakePortalStore::DeleteSession(const core::Digest& token_sha256,
                                            const storage::AuditEvent* event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  auto it = db_->sessions.find(Key(token_sha256));
  if (it == db_->sessions.end()) return absl::OkStatus();
  const int64_t tenant_id = it->second.tenant_id;
  db_->sessions.erase(it);
  if (event != nullptr) {
    db_->AppendAudit(tenant_id, storage::NextTransactionChainLane(), *event);
  }
  return absl::OkStatus();
}

std::vector<std::string> FakePortalStore::StoredSessionHashes() {
  absl::MutexLock lock(&db_->mu);
  std::vector<std::string> out;
  for (const auto& [hash, row] : db_->sessions) out.push_back(hash);
  return out;
}

}  // namespace lumo::testing
