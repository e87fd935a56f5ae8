#include "tests/storage/fakes/fake_client_store.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/match.h"

namespace lumo::testing {
namespace {

using storage::ClientRecord;
using ClientRow = FakeDatabase::ClientRow;

absl::Status NotFound() {
  return absl::NotFoundError("OAuth client not found");
}

absl::Status CheckLists(const storage::ClientFields& f) {
  const std::pair<const std::vector<std::string>*, const char*> lists[] = {
      {&f.redirect_uris, "redirect_uris"},
      {&f.post_logout_redirect_uris, "post_logout_redirect_uris"},
      {&f.scopes, "scopes"},
      {&f.grant_types, "grant_types"},
      {&f.response_types, "response_types"}};
  for (const auto& [values, field] : lists) {
    if (absl::Status s = CheckList(*values, ' ', field); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// The tenant's client by record id or client_id, or null.
ClientRow* Find(FakeDatabase& db, int64_t tenant_id, absl::string_view id)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  const storage::ClientIdKind kind = storage::ClientIdKindOf(id);
  if (kind == storage::ClientIdKind::kNone) return nullptr;
  for (auto& [record_id, row] : db.clients) {
    if (row.client.tenant_id != tenant_id) continue;
    if (kind == storage::ClientIdKind::kRecordId ? record_id == id
                                                 : row.client.client_id == id) {
      return &row;
    }
  }
  return nullptr;
}

// Bumps the version and updated_at of a changed client and writes `event`.
ClientRecord Changed(FakeDatabase& db, ClientRow& row,
                     const storage::AuditEvent& event)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  ++row.client.version;
  row.client.updated_at = db.Now();
  db.AppendAudit(row.client.tenant_id, storage::NextTransactionChainLane(),
                 event);
  return row.client;
}

}  // namespace

absl::Status FakeClientStore::Insert(
    const storage::NewClient& client,
    std::optional<storage::RegistrationAuth> registration,
    const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (storage::ClientIdKindOf(client.id) != storage::ClientIdKind::kRecordId) {
    return absl::InvalidArgumentError("client record id must be 16 base62");
  }
  if (storage::ClientIdKindOf(client.client_id) !=
      storage::ClientIdKind::kClientId) {
    return absl::InvalidArgumentError("malformed client_id");
  }
  if (client.secret.has_value() == client.fields.is_public()) {
    return absl::InvalidArgumentError(
        "a client has a secret exactly when it is not public");
  }
  if (absl::Status s = CheckLists(client.fields); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  if (!db_->tenants.count(client.tenant_id)) {
    return absl::NotFoundError("insert client: tenant not found");
  }
  if (registration.has_value()) {
    const storage::TenantSettings settings =
        db_->settings.count(client.tenant_id) ? db_->settings[client.tenant_id]
                                              : storage::TenantSettings();
    if (!settings.dynamic_registration.enabled) {
      return absl::FailedPreconditionError("dynamic registration is disabled");
    }
    if (*registration == storage::RegistrationAuth::kAnonymous &&
        settings.dynamic_registration.require_api_key) {
      return absl::FailedPreconditionError(
          "dynamic registration requires an API key");
    }
  }
  for (const auto& [id, row] : db_->clients) {
    if (id == client.id || row.client.client_id == client.client_id) {
      return absl::AlreadyExistsError("insert client: id taken");
    }
  }
  ClientRow& row = db_->clients[client.id];
  ClientRecord& r = row.client;
  r.id = client.id;
  r.tenant_id = client.tenant_id;
  r.client_id = client.client_id;
  r.fields = client.fields;
  r.is_active = true;
  r.has_secret = client.secret.has_value();
  r.created_via = client.created_via;
  r.created_by_type = client.created_by_type;
  r.created_by_id = client.created_by_id;
  r.version = 1;
  r.created_at = r.updated_at = db_->Now();
  row.secret = client.secret;
  db_->AppendAudit(client.tenant_id, storage::NextTransactionChainLane(),
                   event);
  return absl::OkStatus();
}

absl::Status FakeClientStore::InsertClient(const storage::NewClient& client,
                                           const storage::AuditEvent& event) {
  return Insert(client, std::nullopt, event);
}

absl::Status FakeClientStore::InsertRegisteredClient(
    const storage::NewClient& client, storage::RegistrationAuth auth,
    const storage::AuditEvent& event) {
  return Insert(client, auth, event);
}

absl::StatusOr<ClientRecord> FakeClientStore::GetClient(
    int64_t tenant_id, absl::string_view id_or_client_id) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const ClientRow* row = Find(*db_, tenant_id, id_or_client_id);
  if (row == nullptr) return NotFound();
  return row->client;
}

absl::StatusOr<storage::ClientPage> FakeClientStore::ListClients(
    int64_t tenant_id, const storage::ListClientsQuery& query) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (absl::Status s = CheckPaging(query.page, query.limit); !s.ok()) return s;
  if (query.after.has_value() && query.page != 1) {
    return absl::InvalidArgumentError("page must be 1 with a list position");
  }
  absl::MutexLock lock(&db_->mu);
  std::vector<ClientRecord> all;
  for (const auto& [id, row] : db_->clients) {
    const ClientRecord& c = row.client;
    if (c.tenant_id != tenant_id) continue;
    if (!query.search.empty() &&
        !ContainsIgnoringCase(c.fields.name, query.search) &&
        !absl::StartsWith(c.id, query.search) &&
        !absl::StartsWith(c.client_id, query.search)) {
      continue;
    }
    all.push_back(c);
  }
  // The list order: the sort value, then the id.
  auto key = [&](const storage::ClientPosition& p) {
    return std::make_tuple(Lower(p.name), p.time.value_or(absl::InfinitePast()),
                           p.id);
  };
  auto before = [&](const storage::ClientPosition& a,
                    const storage::ClientPosition& b) {
    return query.descending ? key(b) < key(a) : key(a) < key(b);
  };
  std::sort(all.begin(), all.end(),
            [&](const ClientRecord& a, const ClientRecord& b) {
              return before(storage::PositionOf(a, query.sort_by),
                            storage::PositionOf(b, query.sort_by));
            });
  storage::ClientPage page;
  const storage::CountedTotal total =
      storage::TotalOf(query.count, static_cast<int64_t>(all.size()));
  page.total = total.total;
  page.total_kind = total.kind;
  if (query.after.has_value()) {
    std::vector<ClientRecord> rest;
    for (ClientRecord& c : all) {
      if (before(*query.after, storage::PositionOf(c, query.sort_by))) {
        rest.push_back(std::move(c));
      }
    }
    all = std::move(rest);
  }
  page.clients = PageOf(all, query.page, query.limit);
  page.has_more = static_cast<size_t>(query.page) * query.limit < all.size();
  return page;
}

absl::StatusOr<ClientRecord> FakeClientStore::UpdateClient(
    int64_t tenant_id, absl::string_view id, int64_t expected_version,
    const storage::ClientFields& fields, const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (absl::Status s = CheckLists(fields); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  ClientRow* row = Find(*db_, tenant_id, id);
  if (row == nullptr) return NotFound();
  if (row->client.version != expected_version) {
    return absl::AbortedError("the client changed concurrently");
  }
  if (row->client.fields.is_public() != fields.is_public()) {
    return absl::InvalidArgumentError(
        "whether a client is public cannot change");
  }
  row->client.fields = fields;
  return Changed(*db_, *row, event);
}

absl::StatusOr<ClientRecord> FakeClientStore::RotateClientSecret(
    int64_t tenant_id, absl::string_view id,
    const storage::StoredSecret& secret, const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  ClientRow* row = Find(*db_, tenant_id, id);
  if (row == nullptr) return NotFound();
  if (!row->client.has_secret) {
    return absl::FailedPreconditionError("a public client has no secret");
  }
  row->secret = secret;
  row->client.secret_rotated_at = db_->Now();
  return Changed(*db_, *row, event);
}

absl::StatusOr<ClientRecord> FakeClientStore::SetClientActive(
    int64_t tenant_id, absl::string_view id, bool active,
    const storage::AuditEvent& event, bool* changed) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  ClientRow* row = Find(*db_, tenant_id, id);
  if (row == nullptr) return NotFound();
  const bool wrote = row->client.is_active != active;
  if (changed != nullptr) *changed = wrote;
  if (!wrote) return row->client;
  row->client.is_active = active;
  return Changed(*db_, *row, event);
}

absl::Status FakeClientStore::DeleteClient(int64_t tenant_id,
                                           absl::string_view id,
                                           const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const ClientRow* row = Find(*db_, tenant_id, id);
  if (row == nullptr) return NotFound();
  db_->clients.erase(row->client.id);
  db_->AppendAudit(tenant_id, storage::NextTransactionChainLane(), event);
  return absl::OkStatus();
}

absl::StatusOr<storage::TenantSettings> FakeClientStore::GetSettings(
    int64_t tenant_id) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  auto it = db_->settings.find(tenant_id);
  return it == db_->settings.end() ? storage::TenantSettings() : it->second;
}

absl::StatusOr<storage::TenantSettings> FakeClientStore::UpdateSettings(
    int64_t tenant_id, const storage::SettingsUpdate& update,
    const storage::AuditEvent& event, bool* changed) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  if (!db_->tenants.count(tenant_id)) {
    return absl::NotFoundError("tenant not found");
  }
  auto it = db_->settings.find(tenant_id);
  storage::TenantSettings settings =
      it == db_->settings.end() ? storage::TenantSettings() : it->second;
  if (update.expected_version.has_value() &&
      *update.expected_version != settings.version) {
    return absl::AbortedError("the settings changed since they were read");
  }
  const storage::TenantSettings next =
      storage::ApplySettingsUpdate(settings, update);
  const bool wrote = storage::SettingsValuesDiffer(next, settings);
  if (changed != nullptr) *changed = wrote;
  if (!wrote) return settings;
  settings.dynamic_registration = next.dynamic_registration;
  settings.key_policy = next.key_policy;
  settings.leak_response = next.leak_response;
  ++settings.version;
  settings.updated_at = db_->Now();
  db_->settings[tenant_id] = settings;
  db_->AppendAudit(tenant_id, storage::NextTransactionChainLane(), event);
  return settings;
}

}  // namespace lumo::testing
