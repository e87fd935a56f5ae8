// The storage interface of OAuth clients, RFC 7591 registrations and tenant
// settings. Domain logic (server/service) depends only on this header; the
// MySQL backend is storage/mysql/mysql_client_store.h.
//
// Every method is scoped by the tenant id it is given; nothing here reads
// or writes another tenant's rows.
//
// Error contract (all methods), as key_store.h: INVALID_ARGUMENT when a
// value does not fit the schema; ABORTED on a deadlock (retry);
// UNAVAILABLE when the database cannot be reached (retry later);
// DEADLINE_EXCEEDED when a statement or lock wait hit its ceiling; INTERNAL
// for anything unexpected. Method comments list the other codes. No status
// message ever contains secret material or a stored value.
#ifndef LUMOKEYS_SERVER_STORAGE_CLIENT_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_CLIENT_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/storage/key_store.h"
#include "server/storage/list_page.h"

namespace lumo::storage {

// The registered metadata of a client: what the admin API and RFC 7591
// registration set. Validated by the service before it reaches a store.
struct ClientFields {
  std::string name;
  std::vector<std::string> redirect_uris;
  std::vector<std::string> post_logout_redirect_uris;
  // OAuth scopes the client may request (not API-key scopes).
  std::vector<std::string> scopes;
  std::vector<std::string> grant_types;
  std::vector<std::string> response_types;
  std::string application_type = "web";  // "web" | "native"
  // "client_secret_basic" | "client_secret_post" | "none" (public client).
  std::string token_endpoint_auth_method = "client_secret_basic";
  std::string client_uri;
  std::string logo_uri;
  bool pkce_required = true;

  bool is_public() const { return token_endpoint_auth_method == "none"; }
};

struct ClientRecord {
  std::string id;  // 16 base62 characters
  int64_t tenant_id = 0;
  std::string client_id;  // public OAuth client_id
  ClientFields fields;
  bool is_active = true;
  bool has_secret = false;      // false exactly for public clients
  std::string created_via;      // "admin" | "registration"
  std::string created_by_type;  // "api_key", "user", "system", "anonymous"
  std::string created_by_id;
  int64_t version = 1;
  absl::Time created_at;
  absl::Time updated_at;
  std::optional<absl::Time> secret_rotated_at;
};

struct NewClient {
  std::string id;
  int64_t tenant_id = 0;
  std::string client_id;
  ClientFields fields;
  // Unset exactly when fields.is_public().
  std::optional<StoredSecret> secret;
  std::string created_via = "admin";
  std::string created_by_type;
  std::string created_by_id;
};

enum class ClientSortField { kCreatedAt, kName, kUpdatedAt };

// A position in a client list: the sort value of a listed client and its
// record id (the order is the sort value, then the id). Built by
// PositionOf.
struct ClientPosition {
  std::optional<absl::Time> time;  // kCreatedAt, kUpdatedAt
  std::string name;                // kName
  std::string id;
};

struct ListClientsQuery {
  int page = 1;    // 1-based; must be 1 with `after`
  int limit = 25;  // 1..100
  // Set: only the clients after this position (keyset paging).
  std::optional<ClientPosition> after;
  // The total's count (ClientPage::total).
  CountRequest count;
  // Case-insensitive substring of the name, or a prefix of the record id or
  // of the client_id.
  std::string search;
  ClientSortField sort_by = ClientSortField::kCreatedAt;
  bool descending = true;
};

struct ClientPage {
  std::vector<ClientRecord> clients;
  int64_t total = 0;  // matching clients over all pages (see total_kind)
  TotalKind total_kind = TotalKind::kExact;
  bool has_more = false;  // matching clients follow the last one returned
};

// The position of `client` in a list sorted by `sort_by`.
inline ClientPosition PositionOf(const ClientRecord& client,
                                 ClientSortField sort_by) {
  ClientPosition position;
  position.id = client.id;
  switch (sort_by) {
    case ClientSortField::kName:
      position.name = client.fields.name;
      break;
    case ClientSortField::kUpdatedAt:
      position.time = client.updated_at;
      break;
    case ClientSortField::kCreatedAt:
      position.time = client.created_at;
      break;
  }
  return position;
}

struct DynamicRegistrationSettings {
  bool enabled = false;
  bool require_api_key = true;
};

struct TenantSettings {
  DynamicRegistrationSettings dynamic_registration;
  KeyPolicy key_policy;
  // What a secret-scanning report of one of the tenant's live keys does
  // (docs/webhooks.md "Leaked-key intake"): "revoke" (default), "disable"
  // or "notify". The service validates values; the stores keep them.
  std::string leak_response = "revoke";
  // Unset while the tenant has the defaults (no row written yet).
  std::optional<absl::Time> updated_at;
  int64_t version = 0;  // 0: defaults, no row
};

// A partial settings change; unset members keep their value.
struct SettingsUpdate {
  std::optional<bool> dynamic_registration_enabled;
  std::optional<bool> dynamic_registration_require_api_key;
  std::optional<bool> key_require_expiry;
  std::optional<int32_t> key_max_lifetime_days;
  std::optional<int32_t> key_rotation_period_days;
  std::optional<int32_t> key_expiry_warning_days;
  std::optional<int32_t> key_inactive_after_days;
  std::optional<std::string> leak_response;
  // Set: apply only while the settings' version is this (0: no row yet);
  // ABORTED otherwise. Lets a caller validate the settings as they will be
  // after the change against the very version it changes.
  std::optional<int64_t> expected_version;
};

// `settings` with the members `update` sets replaced.
inline TenantSettings ApplySettingsUpdate(const TenantSettings& settings,
                                          const SettingsUpdate& update) {
  TenantSettings next = settings;
  DynamicRegistrationSettings& dr = next.dynamic_registration;
  dr.enabled = update.dynamic_registration_enabled.value_or(dr.enabled);
  dr.require_api_key =
      update.dynamic_registration_require_api_key.value_or(dr.require_api_key);
  KeyPolicy& p = next.key_policy;
  p.require_expiry = update.key_require_expiry.value_or(p.require_expiry);
  p.max_lifetime_days =
      update.key_max_lifetime_days.value_or(p.max_lifetime_days);
  p.rotation_period_days =
      update.key_rotation_period_days.value_or(p.rotation_period_days);
  p.expiry_warning_days =
      update.key_expiry_warning_days.value_or(p.expiry_warning_days);
  p.inactive_after_days =
      update.key_inactive_after_days.value_or(p.inactive_after_days);
  next.leak_response = update.leak_response.value_or(next.leak_response);
  return next;
}

// Whether the values of `a` and `b` differ (version and time aside).
inline bool SettingsValuesDiffer(const TenantSettings& a,
                                 const TenantSettings& b) {
  return a.dynamic_registration.enabled != b.dynamic_registration.enabled ||
         a.dynamic_registration.require_api_key !=
             b.dynamic_registration.require_api_key ||
         a.key_policy != b.key_policy || a.leak_response != b.leak_response;
}

// How a registration was authenticated, checked against the settings
// inside the inserting transaction.
enum class RegistrationAuth { kApiKey, kAnonymous };

// How a string names a client: record ids are 16 base62 characters,
// client ids contain '_' (`cli_...`), so the two never collide and a lookup
// uses exactly one unique index; anything else names no client.
enum class ClientIdKind { kNone, kRecordId, kClientId };

inline ClientIdKind ClientIdKindOf(absl::string_view id) {
  if (id.empty() || id.size() > 64) return ClientIdKind::kNone;
  bool underscore = false;
  for (char c : id) {
    if (c == '_') {
      underscore = true;
    } else if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      return ClientIdKind::kNone;
    }
  }
  if (underscore) return ClientIdKind::kClientId;
  return id.size() == 16 ? ClientIdKind::kRecordId : ClientIdKind::kNone;
}

// Thread-safe: every method may be called concurrently from any thread.
class ClientStore {
 public:
  virtual ~ClientStore() = default;

  // Inserts the client and `event` in one transaction. ALREADY_EXISTS when
  // the id or the client_id is taken (the caller draws new ones).
  // NOT_FOUND when the tenant does not exist.
  virtual absl::Status InsertClient(const NewClient& client,
                                    const AuditEvent& event) = 0;

  // As InsertClient for an RFC 7591 registration, and in the same
  // transaction re-reads the tenant's settings (shared row lock, so a
  // concurrent settings change serialises with it): FAILED_PRECONDITION
  // when dynamic registration is disabled, or when `auth` is kAnonymous and
  // the tenant requires an API key. Nothing is written then.
  virtual absl::Status InsertRegisteredClient(const NewClient& client,
                                              RegistrationAuth auth,
                                              const AuditEvent& event) = 0;

  // By record id or by client_id. NOT_FOUND when there is no such client in
  // the tenant (another tenant's client is indistinguishable from none).
  virtual absl::StatusOr<ClientRecord> GetClient(
      int64_t tenant_id, absl::string_view id_or_client_id) = 0;

  // INVALID_ARGUMENT when page < 1 or limit is outside 1..100.
  virtual absl::StatusOr<ClientPage> ListClients(
      int64_t tenant_id, const ListClientsQuery& query) = 0;

  // Replaces the registered metadata of client `id` (record id) if its
  // version is still `expected_version`, bumps the version and updated_at
  // and writes `event`, in one transaction holding the row lock. Whether
  // the client is public cannot change (INVALID_ARGUMENT). NOT_FOUND as
  // GetClient; ABORTED when the version moved (re-read and retry).
  virtual absl::StatusOr<ClientRecord> UpdateClient(
      int64_t tenant_id, absl::string_view id, int64_t expected_version,
      const ClientFields& fields, const AuditEvent& event) = 0;

  // Installs `secret` in place of the current one (the old one stops
  // matching at once), sets secret_rotated_at, bumps version and writes
  // `event`, in one transaction holding the row lock. NOT_FOUND as
  // GetClient; FAILED_PRECONDITION for a public client.
  virtual absl::StatusOr<ClientRecord> RotateClientSecret(
      int64_t tenant_id, absl::string_view id, const StoredSecret& secret,
      const AuditEvent& event) = 0;

  // Sets is_active. Writes `event` (and bumps the version) only when the
  // flag changes; `*changed` (optional) tells which. NOT_FOUND as GetClient.
  virtual absl::StatusOr<ClientRecord> SetClientActive(int64_t tenant_id,
                                                       absl::string_view id,
                                                       bool active,
                                                       const AuditEvent& event,
                                                       bool* changed) = 0;

  // Deletes the client and writes `event` in one transaction. NOT_FOUND as
  // GetClient (so deleting twice is NOT_FOUND).
  virtual absl::Status DeleteClient(int64_t tenant_id, absl::string_view id,
                                    const AuditEvent& event) = 0;

  // The tenant's settings; the defaults when none were ever written.
  virtual absl::StatusOr<TenantSettings> GetSettings(int64_t tenant_id) = 0;

  // Applies `update` under the settings row lock (creating the row from the
  // defaults if needed) and writes `event`, in one transaction; returns the
  // settings after the change. An update that changes nothing writes
  // nothing (no row, no event). NOT_FOUND when the tenant does not exist;
  // ABORTED when update.expected_version is set and the version differs.
  // `*changed` (optional) tells whether anything was written.
  virtual absl::StatusOr<TenantSettings> UpdateSettings(
      int64_t tenant_id, const SettingsUpdate& update, const AuditEvent& event,
      bool* changed) = 0;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_CLIENT_STORE_H_
