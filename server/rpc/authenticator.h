// Authenticates every RPC from its metadata and authorises it against the
// method's `(lumo.api.access)` annotation (docs/architecture.md). The rule is
// read from the descriptor, so no handler checks scopes itself.
//
// Credentials (metadata):
//   authorization: Bearer lmk_... | authorization: ApiKey lmk_... |
//   x-api-key: lmk_...            an API key; different keys in several
//                                 headers are UNAUTHENTICATED
//   x-lumo-service-token: T       an internal service (e.g. the gateway)
//   x-lumo-operator-token: T      the operator
//   x-lumo-session: lps_...       a portal session (PRINCIPAL_SESSION;
//                                 methods other than GET also need
//                                 x-lumo-csrf-token); never together with
//                                 a key
// A method that admits PRINCIPAL_ANONYMOUS is called with an anonymous
// principal when no credential is presented; a presented key is still
// verified and must carry the scopes.
// When a valid service token is present, `x-lumo-client-ip` and
// `x-lumo-user-agent` are taken as the end client's address and agent
// (the gateway forwards them); otherwise the peer address is used. Likewise
// `x-lumo-http-method` and `x-lumo-http-route` (audit metadata).
//
// Trust boundary (docs/operations.md "Internal listener"): with
// `internal_listener_only` set (the server has an mTLS --internal_listen),
// the service token, the operator token and the forwarded `x-lumo-*`
// fields are accepted only on calls whose peer presented a verified client
// certificate, i.e. that arrived on the internal listener (the public
// listener never asks for one). A call on the public listener that
// presents any of them is UNAUTHENTICATED. Without it, every listener
// accepts them (a single listener set-up).
#ifndef LUMOKEYS_SERVER_RPC_AUTHENTICATOR_H_
#define LUMOKEYS_SERVER_RPC_AUTHENTICATOR_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/server_context.h"
#include "server/core/crypto.h"
#include "server/service/failure_throttle.h"
#include "server/service/portal_service.h"
#include "server/service/principal.h"
#include "server/service/usage_auditor.h"
#include "server/service/verifier.h"

namespace lumo::rpc {

// Every method of every service in `services` carries an access rule with
// at least one principal kind, and every scope it names is known.
// FAILED_PRECONDITION naming the first offending method otherwise.
absl::Status CheckAccessAnnotations(
    const std::vector<const google::protobuf::ServiceDescriptor*>& services);

// The authenticator's collaborators, borrowed: each must outlive every
// call the authenticator serves.
struct AuthenticatorDeps {
  // Verifies API keys (required).
  service::Verifier* verifier = nullptr;
  // Where usage and failure events go (docs/audit.md); null records
  // nothing.
  service::UsageAuditor* usage = nullptr;
  // Throttles failed key verifications (failure_throttle.h); null
  // throttles nothing. A throttled call gets RESOURCE_EXHAUSTED
  // ("rate_limit_exceeded") with outcome->retry_after set; an address over
  // its budget is refused before its key is verified and that refusal is
  // not audited (it costs nothing).
  service::FailureThrottle* failure_throttle = nullptr;
  // Checks `x-lumo-session`; null refuses every session.
  service::PortalService* portal = nullptr;
};

// Which privileged callers exist and where they are accepted.
struct AuthenticatorOptions {
  // A token whose hash is unset disables that kind of caller.
  std::optional<core::Digest> service_token_sha256;
  std::optional<core::Digest> operator_token_sha256;
  // See "Trust boundary" above.
  bool internal_listener_only = false;
};

// Thread-safe. Immutable once constructed: every collaborator is given to
// the constructor.
class Authenticator {
 public:
  Authenticator(const AuthenticatorDeps& deps, AuthenticatorOptions options);

  // True when the call's peer presented a client certificate that the TLS
  // handshake verified (the mTLS internal listener).
  static bool HasVerifiedClientCertificate(
      const grpc::ServerContextBase& context);

  // Request facts from metadata and peer (request id, client ip, agent).
  // Also decides, once per call, whether the service token is present and
  // valid here (not valid on the public listener, see above).
  service::RequestInfo DescribeRequest(
      const grpc::ServerContextBase& context) const;

  // Authenticates the caller of `method` and checks its access rule.
  // `tenant_slug` is the tenant the request addresses (API keys must belong
  // to it). May read the key store on a verification-cache miss.
  // UNAUTHENTICATED ("invalid_token"): no, bad, conflicting, revoked,
  // expired, rotated or other-tenant credentials - one message for all.
  // PERMISSION_DENIED: "insufficient_scope" (scope missing, or a kind of
  // caller the method does not admit) or "permission_denied" (source
  // address outside the key's allowed CIDRs). RESOURCE_EXHAUSTED: the key's
  // rate limit. UNAVAILABLE: the store could not be asked (fail closed).
  // Every failure is recorded as `auth.api_key.failed` through the usage
  // auditor when there is one (except UNAVAILABLE: nothing was decided).
  // `info` must be DescribeRequest(context): the service token is checked
  // there, once per call.
  absl::StatusOr<service::Principal> Authenticate(
      const grpc::ServerContextBase& context,
      const google::protobuf::MethodDescriptor& method,
      absl::string_view tenant_slug, const service::RequestInfo& info,
      service::VerifyOutcome* outcome = nullptr) const;

  // The collaborators given to the constructor (null when absent).
  service::UsageAuditor* usage_auditor() const { return usage_; }
  service::FailureThrottle* failure_throttle() const { return throttle_; }

 private:
  // Authenticate without recording; `*failure` names why it failed.
  absl::StatusOr<service::Principal> AuthenticateImpl(
      const grpc::ServerContextBase& context,
      const google::protobuf::MethodDescriptor& method,
      absl::string_view tenant_slug, const service::RequestInfo& info,
      service::VerifyOutcome* outcome, std::string* failure) const;

  bool TokenMatches(const grpc::ServerContextBase& context,
                    absl::string_view header,
                    const std::optional<core::Digest>& expected,
                    bool* present) const;

  // Privileged metadata is accepted here: always without
  // internal_listener_only_, else only on the internal listener.
  bool PrivilegedAllowed(const grpc::ServerContextBase& context) const;

  service::Verifier* const verifier_;
  const std::optional<core::Digest> service_token_sha256_;
  const std::optional<core::Digest> operator_token_sha256_;
  const bool internal_listener_only_;
  service::UsageAuditor* const usage_;
  service::FailureThrottle* const throttle_;
  service::PortalService* const portal_;
};

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_AUTHENTICATOR_H_
