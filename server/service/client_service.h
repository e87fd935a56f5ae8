// Domain logic of OAuth clients and tenant settings (docs/product.md §3.2):
// defaults, validation (client_validation.h), ids and secrets, and the
// audit events written with every change. Knows neither gRPC nor SQL.
//
// Error contract (every method): INVALID_ARGUMENT ("validation_error", the
// message names the field) for a bad request; NOT_FOUND
// ("resource_not_found") for a client that does not exist in the caller's
// tenant; FAILED_PRECONDITION ("invalid_request") when rotating the secret
// of a public client; ABORTED when an update kept racing with others;
// UNAVAILABLE / DEADLINE_EXCEEDED when the store cannot answer. No status
// message ever contains a secret.
#ifndef LUMOKEYS_SERVER_SERVICE_CLIENT_SERVICE_H_
#define LUMOKEYS_SERVER_SERVICE_CLIENT_SERVICE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/pepper.h"
#include "server/service/principal.h"
#include "server/storage/client_store.h"

namespace lumo::service {

// Public OAuth client ids: `cli_` + 24 base62 characters (~143 bits).
inline constexpr absl::string_view kClientIdPrefix = "cli_";
inline constexpr size_t kClientIdRandomLength = 24;
// Client secrets: `cls_` + 43 base62 characters (~256 bits).
inline constexpr absl::string_view kClientSecretPrefix = "cls_";
inline constexpr size_t kClientSecretRandomLength = 43;
// Record ids: 16 base62 characters.
inline constexpr size_t kClientRecordIdLength = 16;

// A client together with its secret, which exists only in this reply.
struct ClientWithSecret {
  storage::ClientRecord record;
  std::optional<std::string> secret;  // unset for public clients
};

// Create (all members) and replace (is_public unset: it cannot change).
// Empty strings and lists take the documented defaults.
struct ClientParams {
  std::string name;
  std::vector<std::string> redirect_uris;
  std::vector<std::string> post_logout_redirect_uris;
  std::vector<std::string> scopes;
  std::vector<std::string> grant_types;  // default ["authorization_code"]
  std::optional<bool> is_public;         // default: method == "none"
  std::optional<bool> pkce_required;     // default true
  std::string client_uri;
  std::string logo_uri;
  std::string token_endpoint_auth_method;  // default by is_public
  std::string application_type;            // default "web"
};

// A partial update: unset members keep their value.
struct ClientPatch {
  std::optional<std::string> name;
  std::optional<std::vector<std::string>> redirect_uris;
  std::optional<std::vector<std::string>> post_logout_redirect_uris;
  std::optional<std::vector<std::string>> scopes;
  std::optional<std::vector<std::string>> grant_types;
  std::optional<bool> pkce_required;
  std::optional<std::string> client_uri;
  std::optional<std::string> logo_uri;
  std::optional<std::string> token_endpoint_auth_method;
  std::optional<std::string> application_type;
};

struct ListClientsParams {
  std::optional<int32_t> page;   // unset: 1
  std::optional<int32_t> limit;  // unset: 25
  std::string search;
  std::string sort_by;   // "", createdAt, name, updatedAt
  std::string sort_dir;  // "", ASC, DESC
  // A meta.nextPageToken of an earlier page of the same query.
  std::string page_token;
  // Count the total (default: without page_token only).
  std::optional<bool> include_total;
};

// The audit actor for `caller`: api_key/<key id>, anonymous, or system.
storage::AuditEvent ActorEvent(const Principal& caller,
                               const RequestInfo& info);

// Thread-safe (holds no mutable state of its own).
class ClientService {
 public:
  ClientService(storage::ClientStore* store,
                std::shared_ptr<const core::PepperSet> peppers);

  // `caller` is an API-key principal of its tenant for all but
  // InsertRegistered.
  absl::StatusOr<ClientWithSecret> CreateClient(const Principal& caller,
                                                const RequestInfo& info,
                                                const ClientParams& params);
  absl::StatusOr<storage::ClientRecord> GetClient(const Principal& caller,
                                                  absl::string_view id);
  absl::StatusOr<storage::ClientPage> ListClients(
      const Principal& caller, const ListClientsParams& params,
      storage::ListClientsQuery* query);
  // The token of the page after `page`, listed by `query` (the applied
  // query ListClients returned); "" when it is the last page.
  static std::string NextPageToken(int64_t tenant_id,
                                   const storage::ListClientsQuery& query,
                                   const storage::ClientPage& page);
  absl::StatusOr<storage::ClientRecord> ReplaceClient(
      const Principal& caller, const RequestInfo& info, absl::string_view id,
      const ClientParams& params);
  absl::StatusOr<storage::ClientRecord> PatchClient(const Principal& caller,
                                                    const RequestInfo& info,
                                                    absl::string_view id,
                                                    const ClientPatch& patch);
  absl::Status DeleteClient(const Principal& caller, const RequestInfo& info,
                            absl::string_view id);
  absl::StatusOr<ClientWithSecret> RotateClientSecret(const Principal& caller,
                                                      const RequestInfo& info,
                                                      absl::string_view id);
  // Enabling an enabled (disabling a disabled) client changes nothing and
  // writes no event.
  absl::StatusOr<storage::ClientRecord> SetClientActive(const Principal& caller,
                                                        const RequestInfo& info,
                                                        absl::string_view id,
                                                        bool active);

  // For RegistrationService: stores `fields` (validated by the caller) as
  // an RFC 7591 registration of `tenant_id` by `caller` (an API key or
  // anonymous). An empty name becomes the client_id. FAILED_PRECONDITION
  // when the tenant's settings refuse the registration at commit time
  // (storage::ClientStore::InsertRegisteredClient).
  absl::StatusOr<ClientWithSecret> InsertRegistered(
      const Principal& caller, const RequestInfo& info, int64_t tenant_id,
      storage::ClientFields fields);

  // Settings: reads need nothing beyond the RPC's access rule.
  absl::StatusOr<storage::TenantSettings> GetSettings(const Principal& caller);
  // An update that changes nothing writes no event.
  absl::StatusOr<storage::TenantSettings> UpdateSettings(
      const Principal& caller, const RequestInfo& info,
      const storage::SettingsUpdate& update);

 private:
  absl::StatusOr<ClientWithSecret> Insert(
      const Principal& caller, const RequestInfo& info, int64_t tenant_id,
      storage::ClientFields fields,
      std::optional<storage::RegistrationAuth> registration);
  // Draws a secret; stores its digest in `*stored`.
  absl::StatusOr<std::string> NewSecret(storage::StoredSecret* stored);
  // Get, apply `change`, validate, and update with the version read;
  // retried when another update won the race.
  template <typename Change>
  absl::StatusOr<storage::ClientRecord> Update(const Principal& caller,
                                               const RequestInfo& info,
                                               absl::string_view id,
                                               Change change);

  storage::ClientStore* const store_;
  const std::shared_ptr<const core::PepperSet> peppers_;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_CLIENT_SERVICE_H_
