// RFC 7591 dynamic client registration (docs/product.md §3.3): RFC defaults,
// validation, the tenant's policy (settings) and the per-address limit for
// anonymous callers. Knows neither gRPC nor SQL.
//
// Order of checks: the metadata (no database access, so a malformed
// request is 400 whoever sends it), then the tenant's policy: disabled (or
// an unknown tenant, indistinguishable) → 403; anonymous while an API key
// is required → 401; anonymous over the per-address limit → 429. A key
// without admin:clients/admin:write never gets here (the RPC's access rule
// answers 403 insufficient_scope first).
//
// Error contract:
//   INVALID_ARGUMENT "invalid_redirect_uri" / "invalid_client_metadata"
//   PERMISSION_DENIED "registration_not_allowed"
//   UNAUTHENTICATED "invalid_token" (an API key is required)
//   RESOURCE_EXHAUSTED "rate_limit_exceeded", with the seconds to wait in
//     the payload kRetryAfterPayload
//   UNAVAILABLE / DEADLINE_EXCEEDED when the store cannot answer.
#ifndef LUMOKEYS_SERVER_SERVICE_REGISTRATION_SERVICE_H_
#define LUMOKEYS_SERVER_SERVICE_REGISTRATION_SERVICE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/service/client_service.h"
#include "server/service/ip_rate_limiter.h"
#include "server/service/principal.h"
#include "server/storage/client_store.h"
#include "server/storage/key_store.h"

namespace lumo::service {

// Payload URL of a RESOURCE_EXHAUSTED status: the decimal seconds after
// which a retry may succeed (the rpc layer sends it as `retry-after`).
inline constexpr absl::string_view kRetryAfterPayload = "lumo.dev/retry-after";

// The registration request, RFC 7591 §2 members as received.
struct RegistrationRequest {
  std::vector<std::string> redirect_uris;
  std::string client_name;
  std::string client_uri;
  std::string logo_uri;
  std::vector<std::string> grant_types;
  std::vector<std::string> response_types;
  std::string application_type;
  std::string token_endpoint_auth_method;
  std::string scope;  // space separated
  std::vector<std::string> post_logout_redirect_uris;
};

// Applies the RFC 7591 defaults: grant_types ["authorization_code"],
// response_types ["code"] when authorization_code is among the grant types
// (else []), application_type "web", token_endpoint_auth_method
// "client_secret_basic"; PKCE is required. Scope tokens are split on
// spaces.
storage::ClientFields RegistrationFields(const RegistrationRequest& request);

// Thread-safe.
class RegistrationService {
 public:
  // Borrowed pointers; `tenants` resolves the slug for anonymous callers.
  RegistrationService(storage::KeyStore* tenants, storage::ClientStore* store,
                      ClientService* clients,
                      IpRateLimiterOptions anonymous_limit);

  // `caller` is an API key of the tenant (already scope-checked) or
  // anonymous.
  absl::StatusOr<ClientWithSecret> Register(const Principal& caller,
                                            const RequestInfo& info,
                                            absl::string_view tenant_slug,
                                            const RegistrationRequest& request);

 private:
  storage::KeyStore* const tenants_;
  storage::ClientStore* const store_;
  ClientService* const clients_;
  IpRateLimiter anonymous_limiter_;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_REGISTRATION_SERVICE_H_
