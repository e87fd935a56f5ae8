// A small synchronous client for the LumoKeys gRPC services
// (KeyService, WebhookService, OperatorService, AuthService, AuditService).
//
// Every call carries exactly the credential its service needs, an
// `x-request-id` and a deadline of `ClientOptions::timeout`:
//
//   KeyService       authorization: Bearer <api_key>
//   WebhookService   authorization: Bearer <api_key>
//   AuditService     authorization: Bearer <api_key>
//   OperatorService  x-lumo-operator-token: <operator_token>
//   AuthService      x-lumo-service-token: <service_token>
//
// A credential that is not configured is simply not sent; the server then
// answers UNAUTHENTICATED (the client does not pre-judge that).
//
// Thread-safety: a Client is immutable after construction and may be used
// from any number of threads at once.
//
// Secrets: no status returned by this class contains key material or a
// configured token. Messages coming from the server are scrubbed of
// anything shaped like a full key (`lmk_<id>_<secret>` keeps `lmk_<id>_`)
// and of the configured credentials, in case a server ever echoes them.
//
// Transport: TLS when ClientOptions::tls_ca_file is set (optionally with a
// client certificate, for the server's mTLS port), else plaintext gRPC, for
// loopback or a trusted network only.
#ifndef LUMOKEYS_CLIENT_LUMOKEYS_CLIENT_H_
#define LUMOKEYS_CLIENT_LUMOKEYS_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/empty.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/status.h"
#include "lumo/audit/v1/audit.grpc.pb.h"
#include "lumo/auth/v1/auth.grpc.pb.h"
#include "lumo/keys/v1/keys.grpc.pb.h"
#include "lumo/ops/v1/ops.grpc.pb.h"
#include "lumo/portal/v1/portal.grpc.pb.h"
#include "lumo/webhooks/v1/webhooks.grpc.pb.h"

namespace lumo::client {

struct ClientOptions {
  // gRPC target, e.g. "127.0.0.1:50051" or "dns:///keys.internal:50051".
  std::string address = "127.0.0.1:50051";
  // Full API key (`lmk_...`) for KeyService calls; empty: none sent.
  std::string api_key;
  // Operator token for OperatorService calls; empty: none sent.
  std::string operator_token;
  // Internal-service token for AuthService calls; empty: none sent.
  std::string service_token;
  // Deadline of every call, measured from the moment the call starts.
  // Must be positive.
  absl::Duration timeout = absl::Seconds(5);
  // TLS: PEM file of the CA the server certificate must chain to; empty:
  // plaintext. With tls_cert_file and tls_key_file (both or neither), the
  // client presents that certificate (mTLS). tls_server_name overrides the
  // name the server certificate must carry (default: the address's host).
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_server_name;
};

// The channel credentials `options` ask for: TLS (see tls_ca_file) or
// insecure. FAILED_PRECONDITION naming the option when a file cannot be
// read, INVALID_ARGUMENT when only one of cert/key is set.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const ClientOptions& options);

// The type URL under which a failed call's `x-request-id` is attached to the
// returned status as a payload (see RequestIdOf).
inline constexpr absl::string_view kRequestIdPayloadUrl =
    "type.googleapis.com/lumo.client.RequestId";

// Converts a gRPC status to the absl status with the same code and the
// message scrubbed by RedactKeyMaterial. Unknown codes become UNKNOWN.
absl::Status FromGrpcStatus(const grpc::Status& status);

// Returns `text` with the secret part of everything shaped like a LumoKeys
// key (`lmk_` + 12 base62 + `_` + base62...) replaced by "[REDACTED]", so
// only the public `lmk_<id>_` remains.
std::string RedactKeyMaterial(absl::string_view text);

// The `x-request-id` attached to a status returned by Client, or "" when
// there is none.
std::string RequestIdOf(const absl::Status& status);

class Client {
 public:
  // Connects lazily to `options.address`, over TLS when tls_ca_file is set
  // (a bad TLS option makes every call fail with its error).
  explicit Client(ClientOptions options);
  // Uses `channel` instead of creating one (tests, custom credentials);
  // `options.address` is then ignored.
  Client(ClientOptions options,
         std::shared_ptr<grpc::ChannelInterface> channel);

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // lumo.keys.v1.KeyService (API key).
  absl::StatusOr<lumo::keys::v1::ListApiKeysResponse> ListApiKeys(
      const lumo::keys::v1::ListApiKeysRequest& request) const;
  absl::StatusOr<lumo::keys::v1::ApiKey> CreateApiKey(
      const lumo::keys::v1::CreateApiKeyRequest& request) const;
  absl::StatusOr<lumo::keys::v1::ApiKey> GetApiKey(
      const lumo::keys::v1::GetApiKeyRequest& request) const;
  absl::StatusOr<lumo::keys::v1::ApiKey> RotateApiKey(
      const lumo::keys::v1::RotateApiKeyRequest& request) const;
  absl::StatusOr<lumo::keys::v1::ApiKey> RevokeApiKey(
      const lumo::keys::v1::RevokeApiKeyRequest& request) const;
  absl::StatusOr<lumo::keys::v1::ApiKey> UpdateApiKey(
      const lumo::keys::v1::UpdateApiKeyRequest& request) const;
  absl::StatusOr<lumo::keys::v1::ApiKey> DisableApiKey(
      const lumo::keys::v1::SetApiKeyDisabledRequest& request) const;
  absl::StatusOr<lumo::keys::v1::ApiKey> EnableApiKey(
      const lumo::keys::v1::SetApiKeyDisabledRequest& request) const;
  absl::StatusOr<google::protobuf::Empty> DeleteApiKey(
      const lumo::keys::v1::DeleteApiKeyRequest& request) const;
  absl::StatusOr<lumo::keys::v1::ApiKeyCredits> GetApiKeyCredits(
      const lumo::keys::v1::GetApiKeyCreditsRequest& request) const;
  absl::StatusOr<lumo::keys::v1::ApiKeyCredits> UpdateApiKeyCredits(
      const lumo::keys::v1::UpdateApiKeyCreditsRequest& request) const;
  absl::StatusOr<lumo::keys::v1::IdentityLimits> GetIdentityLimits(
      const lumo::keys::v1::GetIdentityLimitsRequest& request) const;
  absl::StatusOr<lumo::keys::v1::IdentityLimits> SetIdentityLimits(
      const lumo::keys::v1::SetIdentityLimitsRequest& request) const;

  // lumo.webhooks.v1.WebhookService (API key).
  absl::StatusOr<lumo::webhooks::v1::ListWebhooksResponse> ListWebhooks(
      const lumo::webhooks::v1::ListWebhooksRequest& request) const;
  absl::StatusOr<lumo::webhooks::v1::Webhook> CreateWebhook(
      const lumo::webhooks::v1::CreateWebhookRequest& request) const;
  absl::StatusOr<lumo::webhooks::v1::Webhook> GetWebhook(
      const lumo::webhooks::v1::GetWebhookRequest& request) const;
  absl::StatusOr<lumo::webhooks::v1::Webhook> UpdateWebhook(
      const lumo::webhooks::v1::UpdateWebhookRequest& request) const;
  absl::StatusOr<google::protobuf::Empty> DeleteWebhook(
      const lumo::webhooks::v1::DeleteWebhookRequest& request) const;
  absl::StatusOr<lumo::webhooks::v1::Webhook> RotateWebhookSecret(
      const lumo::webhooks::v1::RotateWebhookSecretRequest& request) const;
  absl::StatusOr<lumo::webhooks::v1::WebhookDelivery> TestWebhook(
      const lumo::webhooks::v1::TestWebhookRequest& request) const;
  absl::StatusOr<lumo::webhooks::v1::ListWebhookDeliveriesResponse>
  ListWebhookDeliveries(
      const lumo::webhooks::v1::ListWebhookDeliveriesRequest& request) const;

  // lumo.ops.v1.OperatorService (operator token).
  absl::StatusOr<lumo::ops::v1::CreateTenantResponse> CreateTenant(
      const lumo::ops::v1::CreateTenantRequest& request) const;
  absl::StatusOr<lumo::ops::v1::Tenant> GetTenant(
      const lumo::ops::v1::GetTenantRequest& request) const;
  absl::StatusOr<lumo::keys::v1::ApiKey> CreateTenantKey(
      const lumo::ops::v1::CreateTenantKeyRequest& request) const;
  absl::StatusOr<lumo::ops::v1::VerifyAuditChainResponse> VerifyAuditChain(
      const lumo::ops::v1::VerifyAuditChainRequest& request) const;
  // Operator: creates the tenant's portal admin or sets its password.
  absl::StatusOr<lumo::portal::v1::PortalUser> SetPortalAdmin(
      const lumo::portal::v1::SetPortalAdminRequest& request) const;

  // lumo.audit.v1.AuditService (API key).
  absl::StatusOr<lumo::audit::v1::ListAuditLogsResponse> ListAuditLogs(
      const lumo::audit::v1::ListAuditLogsRequest& request) const;
  absl::StatusOr<lumo::audit::v1::ApiKeyUsage> GetApiKeyUsage(
      const lumo::audit::v1::GetApiKeyUsageRequest& request) const;
  absl::StatusOr<lumo::audit::v1::TenantUsage> GetTenantUsage(
      const lumo::audit::v1::GetTenantUsageRequest& request) const;

  // lumo.auth.v1.AuthService (service token).
  absl::StatusOr<lumo::auth::v1::VerifyApiKeyResponse> VerifyApiKey(
      const lumo::auth::v1::VerifyApiKeyRequest& request) const;

  // grpc.health.v1.Health/Check for `service` ("" = the whole server),
  // without credentials. OK when the server answers SERVING; UNAVAILABLE
  // with the reported status otherwise; the RPC's error if the call fails.
  absl::Status CheckHealth(absl::string_view service = "") const;

 private:
  enum class Credential { kNone, kApiKey, kOperatorToken, kServiceToken };

  // Prepares `context` for one call: deadline, request id, credential.
  // Fails (INVALID_ARGUMENT) when the client was built with unusable
  // options; the message never contains the offending value.
  absl::Status PrepareContext(Credential credential,
                              grpc::ClientContext& context,
                              std::string& request_id) const;
  // FromGrpcStatus plus removal of the configured credentials and the
  // request-id payload.
  absl::Status ConvertStatus(const grpc::Status& status,
                             absl::string_view request_id) const;

  // Runs one unary call of `stub` and converts its status.
  template <typename Stub, typename Request, typename Reply>
  absl::StatusOr<Reply> Call(Stub& stub, Credential credential,
                             grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                          const Request&,
                                                          Reply*),
                             const Request& request) const;

  const ClientOptions options_;
  // OK, or why options_ cannot be used (checked once at construction).
  const absl::Status options_status_;
  const std::shared_ptr<grpc::ChannelInterface> channel_;
  const std::unique_ptr<lumo::keys::v1::KeyService::Stub> keys_;
  const std::unique_ptr<lumo::webhooks::v1::WebhookService::Stub> webhooks_;
  const std::unique_ptr<lumo::ops::v1::OperatorService::Stub> ops_;
  const std::unique_ptr<lumo::portal::v1::PortalService::Stub> portal_;
  const std::unique_ptr<lumo::auth::v1::AuthService::Stub> auth_;
  const std::unique_ptr<lumo::audit::v1::AuditService::Stub> audit_;
};

}  // namespace lumo::client

#endif  // LUMOKEYS_CLIENT_LUMOKEYS_CLIENT_H_
