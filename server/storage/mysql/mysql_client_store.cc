#include "server/storage/mysql/mysql_client_store.h"

#include <cppconn/datatype.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/storage/mysql/key_policy_columns.h"
#include "server/storage/mysql/keyset.h"
#include "server/storage/mysql/mysql_session.h"
#include "server/storage/mysql/select_list.h"

namespace lumo::storage {
namespace {

// ---------------------------------------------------------------------------
// SQL. Values are always bound; spliced text comes from this file only.

// The oauth_clients columns every client read selects.
struct ClientColumns {
  explicit ClientColumns(SelectList& s)
      : id(s.Add("c.id")),
        tenant_id(s.Add("c.tenant_id")),
        client_id(s.Add("c.client_id")),
        name(s.Add("c.name")),
        redirect_uris(s.Add("c.redirect_uris")),
        post_logout_redirect_uris(s.Add("c.post_logout_redirect_uris")),
        scopes(s.Add("c.scopes")),
        grant_types(s.Add("c.grant_types")),
        response_types(s.Add("c.response_types")),
        application_type(s.Add("c.application_type")),
        token_endpoint_auth_method(s.Add("c.token_endpoint_auth_method")),
        client_uri(s.Add("c.client_uri")),
        logo_uri(s.Add("c.logo_uri")),
        is_public(s.Add("c.is_public")),
        pkce_required(s.Add("c.pkce_required")),
        is_active(s.Add("c.is_active")),
        created_via(s.Add("c.created_via")),
        created_by_type(s.Add("c.created_by_type")),
        created_by_id(s.Add("c.created_by_id")),
        version(s.Add("c.version")),
        created_at(s.Add("c.created_at")),
        updated_at(s.Add("c.updated_at")),
        secret_rotated_at(s.Add("c.secret_rotated_at")) {}
  int id, tenant_id, client_id, name, redirect_uris, post_logout_redirect_uris,
      scopes, grant_types, response_types, application_type,
      token_endpoint_auth_method, client_uri, logo_uri, is_public,
      pkce_required, is_active, created_via, created_by_type, created_by_id,
      version, created_at, updated_at, secret_rotated_at;
};

// One client, and a page row with the number of matching clients.
struct ClientSelect {
  SelectList list;
  ClientColumns client{list};
};
struct ClientPageSelect {
  SelectList list;
  ClientColumns client{list};
};

// A tenant's settings row.
struct SettingsSelect {
  SelectList list;
  int enabled = list.Add("dynamic_registration_enabled");
  int require_api_key = list.Add("dynamic_registration_require_api_key");
  KeyPolicyColumns policy{list};
  int leak_response = list.Add("leak_response");
  int version = list.Add("version");
  int updated_at = list.Add("updated_at");
  std::string sql = absl::StrCat("SELECT ", list.sql(),
                                 " FROM tenant_settings WHERE tenant_id = ?");
};

// Copies tenant ? 's key policy from its settings row to its tenants row,
// which the verification read names (docs/storage.md "What the
// verification read names"). Run with the tenant row locked, after the
// settings row was written, in the same transaction.
constexpr char kCopyKeyPolicySql[] =
    "UPDATE tenants t JOIN tenant_settings ts ON ts.tenant_id = t.id"
    " SET t.key_require_expiry = ts.key_require_expiry,"
    " t.key_max_lifetime_days = ts.key_max_lifetime_days,"
    " t.key_rotation_period_days = ts.key_rotation_period_days,"
    " t.key_expiry_warning_days = ts.key_expiry_warning_days,"
    " t.key_inactive_after_days = ts.key_inactive_after_days"
    " WHERE t.id = ?";

constexpr char kInsertClientSql[] =
    "INSERT INTO oauth_clients (id, tenant_id, client_id, name,"
    " secret_digest, secret_pepper_version, redirect_uris,"
    " post_logout_redirect_uris, scopes, grant_types, response_types,"
    " application_type, token_endpoint_auth_method, client_uri, logo_uri,"
    " is_public, pkce_required, is_active, created_via, created_by_type,"
    " created_by_id, version, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?,"
    " 1, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))";

const std::string& SelectClientSql(ClientIdKind kind, bool for_update) {
  auto make = [](const char* column, bool lock) {
    return new std::string(
        absl::StrCat("SELECT ", SelectOf<ClientSelect>().list.sql(),
                     " FROM oauth_clients c", " WHERE c.tenant_id = ? AND c.",
                     column, " = ?", lock ? " FOR UPDATE" : ""));
  };
  static const std::string* const by_id = make("id", false);
  static const std::string* const by_client_id = make("client_id", false);
  static const std::string* const lock_id = make("id", true);
  static const std::string* const lock_client_id = make("client_id", true);
  if (kind == ClientIdKind::kRecordId) return for_update ? *lock_id : *by_id;
  return for_update ? *lock_client_id : *by_client_id;
}

absl::Status NotFound() {
  return absl::NotFoundError("OAuth client not found");
}

absl::Status ReadClient(const sql::ResultSet& rs, const ClientColumns& c,
                        ClientRecord* client) {
  client->id = rs.getString(c.id).asStdString();
  client->tenant_id = rs.getInt64(c.tenant_id);
  client->client_id = rs.getString(c.client_id).asStdString();
  ClientFields& f = client->fields;
  f.name = rs.getString(c.name).asStdString();
  f.redirect_uris = SplitList(rs.getString(c.redirect_uris), ' ');
  f.post_logout_redirect_uris =
      SplitList(rs.getString(c.post_logout_redirect_uris), ' ');
  f.scopes = SplitList(rs.getString(c.scopes), ' ');
  f.grant_types = SplitList(rs.getString(c.grant_types), ' ');
  f.response_types = SplitList(rs.getString(c.response_types), ' ');
  f.application_type = rs.getString(c.application_type).asStdString();
  f.token_endpoint_auth_method =
      rs.getString(c.token_endpoint_auth_method).asStdString();
  f.client_uri = rs.getString(c.client_uri).asStdString();
  f.logo_uri = rs.getString(c.logo_uri).asStdString();
  client->has_secret = rs.getInt(c.is_public) == 0;
  f.pkce_required = rs.getInt(c.pkce_required) != 0;
  client->is_active = rs.getInt(c.is_active) != 0;
  client->created_via = rs.getString(c.created_via).asStdString();
  client->created_by_type = rs.getString(c.created_by_type).asStdString();
  client->created_by_id = rs.getString(c.created_by_id).asStdString();
  client->version = rs.getInt64(c.version);
  absl::StatusOr<absl::Time> created = GetTime(rs, c.created_at);
  if (!created.ok()) return created.status();
  client->created_at = *created;
  absl::StatusOr<absl::Time> updated = GetTime(rs, c.updated_at);
  if (!updated.ok()) return updated.status();
  client->updated_at = *updated;
  absl::StatusOr<std::optional<absl::Time>> rotated =
      GetOptionalTime(rs, c.secret_rotated_at);
  if (!rotated.ok()) return rotated.status();
  client->secret_rotated_at = *rotated;
  return absl::OkStatus();
}

// The list columns of `fields`, joined for storage.
struct JoinedLists {
  std::string redirect_uris;
  std::string post_logout_redirect_uris;
  std::string scopes;
  std::string grant_types;
  std::string response_types;
};

absl::StatusOr<JoinedLists> Join(const ClientFields& f) {
  JoinedLists out;
  struct Item {
    const std::vector<std::string>* values;
    std::string* joined;
    const char* field;
  } items[] = {
      {&f.redirect_uris, &out.redirect_uris, "redirect_uris"},
      {&f.post_logout_redirect_uris, &out.post_logout_redirect_uris,
       "post_logout_redirect_uris"},
      {&f.scopes, &out.scopes, "scopes"},
      {&f.grant_types, &out.grant_types, "grant_types"},
      {&f.response_types, &out.response_types, "response_types"},
  };
  for (const Item& item : items) {
    absl::StatusOr<std::string> joined =
        JoinList(*item.values, ' ', item.field);
    if (!joined.ok()) return joined.status();
    *item.joined = *std::move(joined);
  }
  return out;
}

// Locks the client row (FOR UPDATE) and reads it. NOT_FOUND when there is
// no such client in the tenant.
absl::Status LockClient(Session& s, int64_t tenant_id, absl::string_view id,
                        ClientRecord* client) {
  const ClientIdKind kind = ClientIdKindOf(id);
  if (kind == ClientIdKind::kNone) return NotFound();
  s.Step("lock client");
  sql::PreparedStatement& stmt = s.Prepare(SelectClientSql(kind, true));
  stmt.setInt64(1, tenant_id);
  stmt.setString(2, Str(id));
  std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
  if (!rs->next()) return NotFound();
  return ReadClient(*rs, SelectOf<ClientSelect>().client, client);
}

// Re-reads a row the session just changed (same transaction).
absl::Status ReadBack(Session& s, int64_t tenant_id, absl::string_view id,
                      ClientRecord* client) {
  s.Step("read client");
  sql::PreparedStatement& stmt =
      s.Prepare(SelectClientSql(ClientIdKind::kRecordId, false));
  stmt.setInt64(1, tenant_id);
  stmt.setString(2, Str(id));
  std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
  if (!rs->next()) return absl::InternalError("changed client not found");
  return ReadClient(*rs, SelectOf<ClientSelect>().client, client);
}

// The common tail of a write to a locked client row: runs `update` (which
// must change exactly that row), writes `event` in the same transaction,
// reads the row back into `client` and commits.
absl::Status FinishLockedUpdate(Session& s, sql::PreparedStatement& update,
                                int64_t tenant_id, const AuditEvent& event,
                                ClientRecord* client, absl::string_view what) {
  if (s.Update(update) != 1) {
    return absl::InternalError(
        absl::StrCat(what, ": the locked row did not update"));
  }
  if (absl::Status st = InsertAudit(s, tenant_id, event); !st.ok()) return st;
  const std::string record_id = client->id;
  if (absl::Status st = ReadBack(s, tenant_id, record_id, client); !st.ok()) {
    return st;
  }
  s.Commit();
  return absl::OkStatus();
}

absl::Status ReadSettings(Session& s, int64_t tenant_id, bool lock,
                          TenantSettings* settings) {
  const SettingsSelect& c = SelectOf<SettingsSelect>();
  // LOCK IN SHARE MODE is understood by MariaDB and MySQL alike.
  static const std::string* const kShared =
      new std::string(absl::StrCat(c.sql, " LOCK IN SHARE MODE"));
  s.Step("read settings");
  sql::PreparedStatement& stmt = s.Prepare(lock ? *kShared : c.sql);
  stmt.setInt64(1, tenant_id);
  std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
  *settings = TenantSettings();
  if (!rs->next()) return absl::OkStatus();  // the defaults
  settings->dynamic_registration.enabled = rs->getInt(c.enabled) != 0;
  settings->dynamic_registration.require_api_key =
      rs->getInt(c.require_api_key) != 0;
  settings->key_policy = ReadKeyPolicy(*rs, c.policy);
  settings->leak_response = rs->getString(c.leak_response).asStdString();
  settings->version = rs->getInt64(c.version);
  absl::StatusOr<absl::Time> updated = GetTime(*rs, c.updated_at);
  if (!updated.ok()) return updated.status();
  settings->updated_at = *updated;
  return absl::OkStatus();
}

// The sort column of a client list (an index of (tenant_id, column)).
const char* SortColumn(ClientSortField sort_by) {
  switch (sort_by) {
    case ClientSortField::kName:
      return "c.name";
    case ClientSortField::kUpdatedAt:
      return "c.updated_at";
    case ClientSortField::kCreatedAt:
      break;
  }
  return "c.created_at";
}

constexpr char kSearchCondition[] =
    " AND (c.name LIKE ? ESCAPE '!' OR c.id LIKE ? ESCAPE '!'"
    " OR c.client_id LIKE ? ESCAPE '!')";

}  // namespace

MysqlClientStore::MysqlClientStore(std::shared_ptr<ConnectionPool> pool)
    : pool_(std::move(pool)) {}

MysqlClientStore::~MysqlClientStore() = default;

absl::Status MysqlClientStore::Insert(
    const NewClient& client, std::optional<RegistrationAuth> registration,
    const AuditEvent& event) {
  if (ClientIdKindOf(client.id) != ClientIdKind::kRecordId) {
    return absl::InvalidArgumentError("client record id must be 16 base62");
  }
  if (ClientIdKindOf(client.client_id) != ClientIdKind::kClientId) {
    return absl::InvalidArgumentError("malformed client_id");
  }
  if (client.secret.has_value() == client.fields.is_public()) {
    return absl::InvalidArgumentError(
        "a client has a secret exactly when it is not public");
  }
  absl::StatusOr<JoinedLists> lists = Join(client.fields);
  if (!lists.ok()) return lists.status();

  absl::Status status =
      Run(*pool_, "insert client", OnConflict::kRetry,
          [&](Session& s) -> absl::Status {
            s.Begin();
            if (registration.has_value()) {
              // A shared lock on the tenant row orders this insert after any
              // settings change in flight (UpdateSettings locks it exclusively)
              // and is the lock the foreign-key check takes anyway.
              s.Step("lock tenant");
              sql::PreparedStatement& tenant = s.Prepare(
                  "SELECT id FROM tenants WHERE id = ? LOCK IN SHARE MODE");
              tenant.setInt64(1, client.tenant_id);
              std::unique_ptr<sql::ResultSet> found = s.Query(tenant);
              if (!found->next())
                return absl::NotFoundError("tenant not found");
              found.reset();
              TenantSettings settings;
              if (absl::Status st = ReadSettings(s, client.tenant_id,
                                                 /*lock=*/true, &settings);
                  !st.ok()) {
                return st;
              }
              if (!settings.dynamic_registration.enabled) {
                return absl::FailedPreconditionError(
                    "dynamic registration is disabled");
              }
              if (*registration == RegistrationAuth::kAnonymous &&
                  settings.dynamic_registration.require_api_key) {
                return absl::FailedPreconditionError(
                    "dynamic registration requires an API key");
              }
            }
            s.Step("insert client");
            sql::PreparedStatement& stmt = s.Prepare(kInsertClientSql);
            const ClientFields& f = client.fields;
            int i = 1;
            stmt.setString(i++, client.id);
            stmt.setInt64(i++, client.tenant_id);
            stmt.setString(i++, client.client_id);
            stmt.setString(i++, f.name);
            if (client.secret.has_value()) {
              stmt.setString(
                  i++, std::string(core::AsStringView(client.secret->digest)));
              stmt.setInt(i++, client.secret->pepper_version);
            } else {
              stmt.setNull(i++, sql::DataType::BINARY);
              stmt.setNull(i++, sql::DataType::INTEGER);
            }
            stmt.setString(i++, lists->redirect_uris);
            stmt.setString(i++, lists->post_logout_redirect_uris);
            stmt.setString(i++, lists->scopes);
            stmt.setString(i++, lists->grant_types);
            stmt.setString(i++, lists->response_types);
            stmt.setString(i++, f.application_type);
            stmt.setString(i++, f.token_endpoint_auth_method);
            stmt.setString(i++, f.client_uri);
            stmt.setString(i++, f.logo_uri);
            stmt.setInt(i++, f.is_public() ? 1 : 0);
            stmt.setInt(i++, f.pkce_required ? 1 : 0);
            stmt.setString(i++, client.created_via);
            stmt.setString(i++, client.created_by_type);
            stmt.setString(i++, client.created_by_id);
            s.Update(stmt);
            if (absl::Status st = InsertAudit(s, client.tenant_id, event);
                !st.ok()) {
              return st;
            }
            s.Commit();
            return absl::OkStatus();
          });
  if (status.code() == absl::StatusCode::kFailedPrecondition &&
      !registration.has_value()) {
    // The foreign key to tenants failed.
    return absl::NotFoundError("insert client: tenant not found");
  }
  return status;
}

absl::Status MysqlClientStore::InsertClient(const NewClient& client,
                                            const AuditEvent& event) {
  return Insert(client, std::nullopt, event);
}

absl::Status MysqlClientStore::InsertRegisteredClient(const NewClient& client,
                                                      RegistrationAuth auth,
                                                      const AuditEvent& event) {
  return Insert(client, auth, event);
}

absl::StatusOr<ClientRecord> MysqlClientStore::GetClient(
    int64_t tenant_id, absl::string_view id_or_client_id) {
  const ClientIdKind kind = ClientIdKindOf(id_or_client_id);
  if (kind == ClientIdKind::kNone) return NotFound();
  ClientRecord client;
  absl::Status status =
      Run(*pool_, "get client", [&](Session& s) -> absl::Status {
        sql::PreparedStatement& stmt = s.Prepare(SelectClientSql(kind, false));
        stmt.setInt64(1, tenant_id);
        stmt.setString(2, Str(id_or_client_id));
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        if (!rs->next()) return NotFound();
        return ReadClient(*rs, SelectOf<ClientSelect>().client, &client);
      });
  if (!status.ok()) return status;
  return client;
}

absl::StatusOr<ClientPage> MysqlClientStore::ListClients(
    int64_t tenant_id, const ListClientsQuery& query) {
  if (query.page < 1) {
    return absl::InvalidArgumentError("page must be at least 1");
  }
  if (query.after.has_value() && query.page != 1) {
    return absl::InvalidArgumentError("page must be 1 with a list position");
  }
  if (query.limit < 1 || query.limit > 100) {
    return absl::InvalidArgumentError("limit must be between 1 and 100");
  }
  const ClientPageSelect& cols = SelectOf<ClientPageSelect>();
  KeysetList list;
  list.outer_select = absl::StrCat("SELECT ", cols.list.sql());
  list.inner_columns = "c.*";
  list.alias = "c";
  list.from_where = " FROM oauth_clients c WHERE c.tenant_id = ?";
  list.where_values = {tenant_id};
  if (!query.search.empty()) {
    const std::string escaped = EscapeLike(query.search);
    list.from_where += kSearchCondition;
    list.where_values.push_back(absl::StrCat("%", escaped, "%"));
    list.where_values.push_back(absl::StrCat(escaped, "%"));
    list.where_values.push_back(absl::StrCat(escaped, "%"));
  }
  KeysetOrder order;
  order.column = SortColumn(query.sort_by);
  order.id_column = "c.id";
  order.descending = query.descending;
  std::optional<KeysetPosition> after;
  if (query.after.has_value()) {
    after = KeysetPosition{std::nullopt, query.after->id};
    if (query.sort_by == ClientSortField::kName) {
      after->value = query.after->name;
    } else if (query.after->time.has_value()) {
      after->value = *query.after->time;
    }
  }
  const int64_t offset =
      static_cast<int64_t>(query.page - 1) * static_cast<int64_t>(query.limit);

  ClientPage page;
  absl::Status status =
      Run(*pool_, "list clients", [&](Session& s) -> absl::Status {
        page = ClientPage();
        CountedTotal total;
        absl::Status read = ReadCountedPage(
            s, list, order, after, offset, query.limit, query.count,
            [&](sql::ResultSet& rs) -> absl::Status {
              ClientRecord client;
              if (absl::Status st = ReadClient(rs, cols.client, &client);
                  !st.ok()) {
                return st;
              }
              page.clients.push_back(std::move(client));
              return absl::OkStatus();
            },
            &page.has_more, &total);
        page.total = total.total;
        page.total_kind = total.kind;
        return read;
      });
  if (!status.ok()) return status;
  return page;
}

absl::StatusOr<ClientRecord> MysqlClientStore::UpdateClient(
    int64_t tenant_id, absl::string_view id, int64_t expected_version,
    const ClientFields& fields, const AuditEvent& event) {
  absl::StatusOr<JoinedLists> lists = Join(fields);
  if (!lists.ok()) return lists.status();
  ClientRecord client;
  absl::Status status = Run(
      *pool_, "update client", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        s.Begin();
        if (absl::Status st = LockClient(s, tenant_id, id, &client); !st.ok()) {
          return st;
        }
        if (client.version != expected_version) {
          return absl::AbortedError("the client changed concurrently");
        }
        if (client.fields.is_public() != fields.is_public()) {
          return absl::InvalidArgumentError(
              "whether a client is public cannot change");
        }
        s.Step("update client");
        sql::PreparedStatement& stmt = s.Prepare(
            "UPDATE oauth_clients SET name = ?, redirect_uris = ?,"
            " post_logout_redirect_uris = ?, scopes = ?, grant_types = ?,"
            " response_types = ?, application_type = ?,"
            " token_endpoint_auth_method = ?, client_uri = ?, logo_uri = ?,"
            " pkce_required = ?, version = version + 1,"
            " updated_at = UTC_TIMESTAMP(6)"
            " WHERE tenant_id = ? AND id = ? AND version = ?");
        int i = 1;
        stmt.setString(i++, fields.name);
        stmt.setString(i++, lists->redirect_uris);
        stmt.setString(i++, lists->post_logout_redirect_uris);
        stmt.setString(i++, lists->scopes);
        stmt.setString(i++, lists->grant_types);
        stmt.setString(i++, lists->response_types);
        stmt.setString(i++, fields.application_type);
        stmt.setString(i++, fields.token_endpoint_auth_method);
        stmt.setString(i++, fields.client_uri);
        stmt.setString(i++, fields.logo_uri);
        stmt.setInt(i++, fields.pkce_required ? 1 : 0);
        stmt.setInt64(i++, tenant_id);
        stmt.setString(i++, client.id);
        stmt.setInt64(i++, client.version);
        if (absl::Status st = FinishLockedUpdate(s, stmt, tenant_id, event,
                                                 &client, "update client");
            !st.ok()) {
          return st;
        }
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return client;
}

absl::StatusOr<ClientRecord> MysqlClientStore::RotateClientSecret(
    int64_t tenant_id, absl::string_view id, const StoredSecret& secret,
    const AuditEvent& event) {
  ClientRecord client;
  absl::Status status = Run(
      *pool_, "rotate client secret", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        s.Begin();
        if (absl::Status st = LockClient(s, tenant_id, id, &client); !st.ok()) {
          return st;
        }
        if (!client.has_secret) {
          return absl::FailedPreconditionError("a public client has no secret");
        }
        s.Step("update client secret");
        sql::PreparedStatement& stmt = s.Prepare(
            "UPDATE oauth_clients SET secret_digest = ?,"
            " secret_pepper_version = ?, secret_rotated_at = UTC_TIMESTAMP(6),"
            " updated_at = UTC_TIMESTAMP(6), version = version + 1"
            " WHERE tenant_id = ? AND id = ? AND version = ?");
        stmt.setString(1, std::string(core::AsStringView(secret.digest)));
        stmt.setInt(2, secret.pepper_version);
        stmt.setInt64(3, tenant_id);
        stmt.setString(4, client.id);
        stmt.setInt64(5, client.version);
        if (absl::Status st = FinishLockedUpdate(
                s, stmt, tenant_id, event, &client, "rotate client secret");
            !st.ok()) {
          return st;
        }
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return client;
}

absl::StatusOr<ClientRecord> MysqlClientStore::SetClientActive(
    int64_t tenant_id, absl::string_view id, bool active,
    const AuditEvent& event, bool* changed) {
  ClientRecord client;
  bool wrote = false;
  absl::Status status = Run(
      *pool_, "set client active", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        wrote = false;
        s.Begin();
        if (absl::Status st = LockClient(s, tenant_id, id, &client); !st.ok()) {
          return st;
        }
        if (client.is_active == active) {
          s.Step("rollback");
          s.Rollback();
          return absl::OkStatus();
        }
        s.Step("update client");
        sql::PreparedStatement& stmt = s.Prepare(
            "UPDATE oauth_clients SET is_active = ?, version = version + 1,"
            " updated_at = UTC_TIMESTAMP(6)"
            " WHERE tenant_id = ? AND id = ? AND version = ?");
        stmt.setInt(1, active ? 1 : 0);
        stmt.setInt64(2, tenant_id);
        stmt.setString(3, client.id);
        stmt.setInt64(4, client.version);
        if (absl::Status st = FinishLockedUpdate(s, stmt, tenant_id, event,
                                                 &client, "set client active");
            !st.ok()) {
          return st;
        }
        wrote = true;
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  if (changed != nullptr) *changed = wrote;
  return client;
}

absl::Status MysqlClientStore::DeleteClient(int64_t tenant_id,
                                            absl::string_view id,
                                            const AuditEvent& event) {
  return Run(
      *pool_, "delete client", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        s.Begin();
        ClientRecord client;
        if (absl::Status st = LockClient(s, tenant_id, id, &client); !st.ok()) {
          return st;
        }
        s.Step("delete client");
        sql::PreparedStatement& stmt = s.Prepare(
            "DELETE FROM oauth_clients WHERE tenant_id = ? AND id = ?");
        stmt.setInt64(1, tenant_id);
        stmt.setString(2, client.id);
        if (s.Update(stmt) != 1) {
          return absl::InternalError(
              "delete client: the locked row was not deleted");
        }
        if (absl::Status st = InsertAudit(s, tenant_id, event); !st.ok()) {
          return st;
        }
        s.Commit();
        return absl::OkStatus();
      });
}

absl::StatusOr<TenantSettings> MysqlClientStore::GetSettings(
    int64_t tenant_id) {
  TenantSettings settings;
  absl::Status status =
      Run(*pool_, "get settings", [&](Session& s) -> absl::Status {
        return ReadSettings(s, tenant_id, /*lock=*/false, &settings);
      });
  if (!status.ok()) return status;
  return settings;
}

absl::StatusOr<TenantSettings> MysqlClientStore::UpdateSettings(
    int64_t tenant_id, const SettingsUpdate& update, const AuditEvent& event,
    bool* changed) {
  TenantSettings settings;
  bool wrote = false;
  absl::Status status = Run(
      *pool_, "update settings", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        wrote = false;
        s.Begin();
        // Lock the tenant row first: it exists for every live tenant, so
        // concurrent first writers of the settings row serialise here
        // instead of deadlocking on the gap.
        s.Step("lock tenant");
        sql::PreparedStatement& tenant =
            s.Prepare("SELECT id FROM tenants WHERE id = ? FOR UPDATE");
        tenant.setInt64(1, tenant_id);
        std::unique_ptr<sql::ResultSet> found = s.Query(tenant);
        if (!found->next()) return absl::NotFoundError("tenant not found");
        found.reset();

        if (absl::Status st =
                ReadSettings(s, tenant_id, /*lock=*/false, &settings);
            !st.ok()) {
          return st;
        }
        if (update.expected_version.has_value() &&
            *update.expected_version != settings.version) {
          return absl::AbortedError(
              "the settings changed since they were read");
        }
        const TenantSettings wanted = ApplySettingsUpdate(settings, update);
        const DynamicRegistrationSettings& next = wanted.dynamic_registration;
        const KeyPolicy& policy = wanted.key_policy;
        if (!SettingsValuesDiffer(wanted, settings)) {
          s.Step("rollback");
          s.Rollback();
          return absl::OkStatus();
        }
        s.Step("write settings");
        sql::PreparedStatement& upsert = s.Prepare(
            "INSERT INTO tenant_settings (tenant_id,"
            " dynamic_registration_enabled,"
            " dynamic_registration_require_api_key, key_require_expiry,"
            " key_max_lifetime_days, key_rotation_period_days,"
            " key_expiry_warning_days, key_inactive_after_days,"
            " leak_response, version, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, UTC_TIMESTAMP(6))"
            " ON DUPLICATE KEY UPDATE dynamic_registration_enabled = ?,"
            " dynamic_registration_require_api_key = ?,"
            " key_require_expiry = ?, key_max_lifetime_days = ?,"
            " key_rotation_period_days = ?, key_expiry_warning_days = ?,"
            " key_inactive_after_days = ?, leak_response = ?,"
            " version = version + 1, updated_at = UTC_TIMESTAMP(6)");
        upsert.setInt64(1, tenant_id);
        // The update half binds the values again rather than using
        // VALUES(column), which MySQL 8.0 deprecates.
        for (int offset : {0, 8}) {
          upsert.setInt(2 + offset, next.enabled ? 1 : 0);
          upsert.setInt(3 + offset, next.require_api_key ? 1 : 0);
          upsert.setInt(4 + offset, policy.require_expiry ? 1 : 0);
          upsert.setInt(5 + offset, policy.max_lifetime_days);
          upsert.setInt(6 + offset, policy.rotation_period_days);
          upsert.setInt(7 + offset, policy.expiry_warning_days);
          upsert.setInt(8 + offset, policy.inactive_after_days);
          upsert.setString(9 + offset, wanted.leak_response);
        }
        s.Update(upsert);
        s.Step("copy key policy");
        sql::PreparedStatement& copy = s.Prepare(kCopyKeyPolicySql);
        copy.setInt64(1, tenant_id);
        s.Update(copy);
        if (absl::Status st = InsertAudit(s, tenant_id, event); !st.ok()) {
          return st;
        }
        if (absl::Status st =
                ReadSettings(s, tenant_id, /*lock=*/false, &settings);
            !st.ok()) {
          return st;
        }
        s.Commit();
        wrote = true;
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  if (changed != nullptr) *changed = wrote;
  return settings;
}

absl::StatusOr<int64_t> MysqlClientStore::ReconcileKeyPolicyCopies() {
  // The tenants whose copy differs, by a consistent read; each is then
  // corrected under its tenant row lock, which every settings writer takes
  // before it writes, so the copy is made from the latest committed policy.
  std::vector<int64_t> stale;
  absl::Status status =
      Run(*pool_, "find stale key policy copies", [&](Session& s) {
        stale.clear();
        sql::PreparedStatement& find = s.Prepare(
            "SELECT t.id FROM tenants t"
            " JOIN tenant_settings ts ON ts.tenant_id = t.id"
            " WHERE NOT (t.key_require_expiry <=> ts.key_require_expiry"
            " AND t.key_max_lifetime_days <=> ts.key_max_lifetime_days"
            " AND t.key_rotation_period_days <=> ts.key_rotation_period_days"
            " AND t.key_expiry_warning_days <=> ts.key_expiry_warning_days"
            " AND t.key_inactive_after_days <=> ts.key_inactive_after_days)");
        std::unique_ptr<sql::ResultSet> rs = s.Query(find);
        while (rs->next()) stale.push_back(rs->getInt64(1));
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  int64_t corrected = 0;
  for (int64_t tenant_id : stale) {
    status = Run(*pool_, "correct key policy copy", OnConflict::kRetry,
                 [&](Session& s) -> absl::Status {
                   s.Begin();
                   s.Step("lock tenant");
                   sql::PreparedStatement& lock = s.Prepare(
                       "SELECT id FROM tenants WHERE id = ? FOR UPDATE");
                   lock.setInt64(1, tenant_id);
                   s.Query(lock).reset();
                   s.Step("copy key policy");
                   sql::PreparedStatement& copy = s.Prepare(kCopyKeyPolicySql);
                   copy.setInt64(1, tenant_id);
                   const uint64_t changed = s.Update(copy);
                   s.Commit();
                   corrected += static_cast<int64_t>(changed);
                   return absl::OkStatus();
                 });
    if (!status.ok()) return status;
  }
  return corrected;
}

}  // namespace lumo::storage
