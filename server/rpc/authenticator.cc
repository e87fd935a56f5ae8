#include "server/rpc/authenticator.h"

#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"
#include "grpcpp/security/auth_context.h"
#include "lumo/api/annotations.pb.h"
#include "server/core/key_format.h"
#include "server/core/net.h"
#include "server/core/scopes.h"
#include "server/service/key_service.h"

namespace lumo::rpc {
namespace {

using service::Principal;
using service::VerifyReason;

absl::string_view View(const grpc::string_ref& ref) {
  return absl::string_view(ref.data(), ref.size());
}

// All values of a metadata key.
std::vector<absl::string_view> Values(const grpc::ServerContextBase& context,
                                      absl::string_view key) {
  std::vector<absl::string_view> out;
  auto range = context.client_metadata().equal_range(
      grpc::string_ref(key.data(), key.size()));
  for (auto it = range.first; it != range.second; ++it) {
    out.push_back(View(it->second));
  }
  return out;
}

absl::Status InvalidToken() {
  return service::WithErrorKind(
      absl::UnauthenticatedError("missing or invalid API key"),
      service::ErrorKind::kUnauthenticated);
}

absl::Status InsufficientScope() {
  return service::WithErrorKind(
      absl::PermissionDeniedError("the credential lacks the required scope"),
      service::ErrorKind::kScopeExceeded);
}

bool IsSafeToken(absl::string_view s, size_t max_len) {
  if (s.empty() || s.size() > max_len) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '_' && c != '.' && c != ':') {
      return false;
    }
  }
  return true;
}

std::string NewRequestId() {
  absl::StatusOr<std::string> id = core::RandomBase62(20);
  return id.ok() ? *id : "unknown";
}

}  // namespace

absl::Status CheckAccessAnnotations(
    const std::vector<const google::protobuf::ServiceDescriptor*>& services) {
  for (const google::protobuf::ServiceDescriptor* service : services) {
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* method = service->method(i);
      const lumo::api::AccessRule& rule =
          method->options().GetExtension(lumo::api::access);
      if (rule.principals_size() == 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            method->full_name(), " has no (lumo.api.access) rule"));
      }
      for (const std::string& scope : rule.any_of_scopes()) {
        if (!core::IsKnownScope(scope)) {
          return absl::FailedPreconditionError(absl::StrCat(
              method->full_name(), " names unknown scope ", scope));
        }
      }
    }
  }
  return absl::OkStatus();
}

// Metadata that only the gateway (or another internal service) may send:
// the end client's facts, forwarded over the internal listener.
constexpr absl::string_view kForwardedFields[] = {
    "x-lumo-client-ip", "x-lumo-user-agent", "x-lumo-http-method",
    "x-lumo-http-route"};

Authenticator::Authenticator(const AuthenticatorDeps& deps,
                             AuthenticatorOptions options)
    : verifier_(deps.verifier),
      service_token_sha256_(std::move(options.service_token_sha256)),
      operator_token_sha256_(std::move(options.operator_token_sha256)),
      internal_listener_only_(options.internal_listener_only),
      usage_(deps.usage),
      throttle_(deps.failure_throttle),
      portal_(deps.portal) {}

bool Authenticator::HasVerifiedClientCertificate(
    const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  return auth != nullptr && auth->IsPeerAuthenticated() &&
         !auth->FindPropertyValues("x509_pem_cert").empty();
}

bool Authenticator::PrivilegedAllowed(
    const grpc::ServerContextBase& context) const {
  return !internal_listener_only_ || HasVerifiedClientCertificate(context);
}

bool Authenticator::TokenMatches(const grpc::ServerContextBase& context,
                                 absl::string_view header,
                                 const std::optional<core::Digest>& expected,
                                 bool* present) const {
  std::vector<absl::string_view> values = Values(context, header);
  *present = !values.empty();
  if (values.size() != 1 || !expected.has_value()) return false;
  // Comparing hashes keeps the comparison constant-time in the length too.
  return core::ConstantTimeEquals(core::Sha256(values[0]), *expected);
}

service::RequestInfo Authenticator::DescribeRequest(
    const grpc::ServerContextBase& context) const {
  service::RequestInfo info;
  std::vector<absl::string_view> ids = Values(context, "x-request-id");
  info.request_id = ids.size() == 1 && IsSafeToken(ids[0], 128)
                        ? std::string(ids[0])
                        : NewRequestId();
  info.service_token_valid =
      TokenMatches(context, "x-lumo-service-token", service_token_sha256_,
                   &info.service_token_present);
  if (info.service_token_valid && !PrivilegedAllowed(context)) {
    // The right token on the public listener: refused (AuthenticateImpl).
    info.service_token_valid = false;
  }
  const bool trusted = info.service_token_valid;
  std::vector<absl::string_view> forwarded_ip =
      trusted ? Values(context, "x-lumo-client-ip")
              : std::vector<absl::string_view>();
  absl::StatusOr<core::IpAddress> forwarded =
      forwarded_ip.size() == 1 ? core::IpAddress::Parse(forwarded_ip[0])
                               : absl::NotFoundError("none");
  if (forwarded.ok()) {
    info.ip_address = forwarded->ToString();
  } else if (absl::StatusOr<core::IpAddress> peer =
                 core::IpAddress::FromGrpcPeer(context.peer());
             peer.ok()) {
    info.ip_address = peer->ToString();
  }
  if (trusted) {
    // The gateway's description of the HTTP call (audit only).
    std::vector<absl::string_view> http_method =
        Values(context, "x-lumo-http-method");
    std::vector<absl::string_view> http_route =
        Values(context, "x-lumo-http-route");
    if (http_method.size() == 1) {
      info.http_method = std::string(http_method[0].substr(0, 16));
    }
    if (http_route.size() == 1) {
      info.http_route = std::string(http_route[0].substr(0, 256));
    }
  }
  std::vector<absl::string_view> agent =
      trusted ? Values(context, "x-lumo-user-agent")
              : Values(context, "user-agent");
  if (!agent.empty()) info.user_agent = std::string(agent[0].substr(0, 512));
  return info;
}

absl::StatusOr<Principal> Authenticator::Authenticate(
    const grpc::ServerContextBase& context,
    const google::protobuf::MethodDescriptor& method,
    absl::string_view tenant_slug, const service::RequestInfo& info,
    service::VerifyOutcome* outcome_out) const {
  service::VerifyOutcome outcome;
  std::string failure;
  absl::StatusOr<Principal> principal =
      AuthenticateImpl(context, method, tenant_slug, info, &outcome, &failure);
  if (outcome_out != nullptr) *outcome_out = outcome;
  if (!principal.ok() && !failure.empty() && usage_ != nullptr) {
    usage_->RecordAuthFailure(info, method.full_name(), tenant_slug, failure,
                              &outcome);
  }
  return principal;
}

absl::StatusOr<Principal> Authenticator::AuthenticateImpl(
    const grpc::ServerContextBase& context,
    const google::protobuf::MethodDescriptor& method,
    absl::string_view tenant_slug, const service::RequestInfo& info,
    service::VerifyOutcome* outcome_out, std::string* failure) const {
  const lumo::api::AccessRule& rule =
      method.options().GetExtension(lumo::api::access);
  bool allows_key = false, allows_service = false, allows_operator = false,
       allows_anonymous = false, allows_session = false;
  for (int p : rule.principals()) {
    allows_key |= p == lumo::api::PRINCIPAL_API_KEY;
    allows_service |= p == lumo::api::PRINCIPAL_SERVICE;
    allows_operator |= p == lumo::api::PRINCIPAL_OPERATOR;
    allows_anonymous |= p == lumo::api::PRINCIPAL_ANONYMOUS;
    allows_session |= p == lumo::api::PRINCIPAL_SESSION;
  }

  bool operator_present = false;
  const bool operator_ok =
      TokenMatches(context, "x-lumo-operator-token", operator_token_sha256_,
                   &operator_present);
  if (internal_listener_only_) {
    bool privileged = operator_present || info.service_token_present;
    for (absl::string_view field : kForwardedFields) {
      privileged |= !Values(context, field).empty();
    }
    if (privileged && !HasVerifiedClientCertificate(context)) {
      *failure = "internal_credential_on_public_listener";
      return InvalidToken();
    }
  }
  if (operator_present && !operator_ok) {
    *failure = "bad_operator_token";
    return InvalidToken();
  }
  if (operator_ok) {
    if (!allows_operator) {
      *failure = "principal_not_allowed";
      return InsufficientScope();
    }
    Principal principal;
    principal.kind = Principal::Kind::kOperator;
    return principal;
  }

  // Collect every presented API key; several different ones are refused.
  std::vector<absl::string_view> keys;
  bool unusable_authorization = false;
  for (absl::string_view value : Values(context, "authorization")) {
    absl::string_view v = value;
    if (absl::StartsWithIgnoreCase(v, "Bearer ")) {
      v.remove_prefix(7);
    } else if (absl::StartsWithIgnoreCase(v, "ApiKey ")) {
      v.remove_prefix(7);
    } else {
      unusable_authorization = true;
      continue;
    }
    keys.push_back(absl::StripAsciiWhitespace(v));
  }
  for (absl::string_view value : Values(context, "x-api-key")) {
    keys.push_back(absl::StripAsciiWhitespace(value));
  }
  if (!keys.empty()) {
    // The public id only (for attribution), never the key.
    core::ParsedKey parsed = core::ParseKey(keys[0]);
    outcome_out->key_id = std::string(parsed.id);
  }
  for (absl::string_view k : keys) {
    if (k != keys[0]) {
      *failure = "conflicting_credentials";
      return InvalidToken();
    }
  }

  // Hashed once per call, in DescribeRequest.
  const bool service_ok = info.service_token_valid;
  if (info.service_token_present && !service_ok) {
    *failure = "bad_service_token";
    return InvalidToken();
  }

  if (std::vector<absl::string_view> sessions =
          Values(context, "x-lumo-session");
      !sessions.empty()) {
    if (!keys.empty() || unusable_authorization || sessions.size() != 1) {
      *failure = "conflicting_credentials";
      return InvalidToken();
    }
    if (!allows_session) {
      *failure = "principal_not_allowed";
      return InsufficientScope();
    }
    service::PortalService* const portal = portal_;
    if (portal == nullptr) {
      *failure = "sessions_disabled";
      return InvalidToken();
    }
    // Reads are safe without CSRF; everything else needs the token.
    const google::api::HttpRule& http =
        method.options().GetExtension(google::api::http);
    const bool csrf_required =
        http.pattern_case() != google::api::HttpRule::kGet;
    std::vector<absl::string_view> csrf = Values(context, "x-lumo-csrf-token");
    absl::StatusOr<Principal> principal = portal->Authenticate(
        sessions[0], tenant_slug, csrf_required,
        csrf.size() == 1 ? std::optional<absl::string_view>(csrf[0])
                         : std::nullopt);
    if (!principal.ok() && !absl::IsUnavailable(principal.status())) {
      *failure = absl::IsPermissionDenied(principal.status()) ? "csrf_failed"
                                                              : "bad_session";
    }
    return principal;
  }

  if (keys.empty()) {
    if (service_ok && allows_service) {
      Principal principal;
      principal.kind = Principal::Kind::kService;
      return principal;
    }
    if (allows_anonymous && !unusable_authorization) {
      Principal principal;
      principal.kind = Principal::Kind::kAnonymous;
      return principal;
    }
    // No credential of a kind the method admits (a service token alone is
    // the gateway's transport credential, not the caller's).
    *failure = unusable_authorization ? "unsupported_authorization"
                                      : "missing_credential";
    return InvalidToken();
  }
  if (unusable_authorization) {
    *failure = "unsupported_authorization";
    return InvalidToken();
  }
  if (!allows_key) {
    *failure = "principal_not_allowed";
    return InsufficientScope();
  }

  // An address over its failure budget is
  // refused before anything is verified (no store access, not audited).
  service::FailureThrottle* const throttle = throttle_;
  if (throttle != nullptr) {
    if (std::optional<absl::Duration> wait =
            throttle->CheckAddress(info.ip_address)) {
      outcome_out->retry_after = *wait;
      return service::FailureThrottle::ThrottledError();
    }
  }

  service::VerifyParams params;
  params.tenant_slug = std::string(tenant_slug);
  params.client_ip = info.ip_address;
  absl::StatusOr<service::VerifyOutcome> outcome =
      verifier_->Verify(keys[0], params);
  if (!outcome.ok()) {
    return absl::UnavailableError("cannot verify credentials right now");
  }
  *outcome_out = *outcome;
  if (outcome->reason != VerifyReason::kValid) {
    *failure = service::ReasonSlug(outcome->reason);
  }
  // A failure on a key id over its budget is
  // answered as throttled (still audited as the failure it is).
  if (throttle != nullptr) {
    if (std::optional<absl::Duration> wait =
            throttle->AfterVerify(info.ip_address, *outcome)) {
      outcome_out->retry_after = *wait;
      return service::FailureThrottle::ThrottledError();
    }
  }
  switch (outcome->reason) {
    case VerifyReason::kValid:
      break;
    case VerifyReason::kIpNotAllowed:
      return service::WithErrorKind(
          absl::PermissionDeniedError(
              "the key may not be used from this address"),
          service::ErrorKind::kPermissionDenied);
    case VerifyReason::kRateLimited:
      return service::WithErrorKind(
          absl::ResourceExhaustedError("the key's rate limit is exhausted"),
          service::ErrorKind::kRateLimited);
    case VerifyReason::kUsageExceeded:
      return service::WithErrorKind(
          absl::ResourceExhaustedError("the key's usage quota is exhausted"),
          service::ErrorKind::kUsageExceeded);
    default:
      return InvalidToken();
  }
  const std::vector<std::string> any_of(rule.any_of_scopes().begin(),
                                        rule.any_of_scopes().end());
  if (!core::GrantsAny(outcome->scopes, any_of)) {
    *failure = "insufficient_scope";
    return InsufficientScope();
  }
  Principal principal;
  principal.kind = Principal::Kind::kApiKey;
  principal.tenant_id = outcome->tenant_id;
  principal.tenant_slug = outcome->tenant_slug;
  principal.key_id = outcome->key_id;
  principal.scopes = outcome->scopes;
  principal.key_expires_at = outcome->expires_at;
  principal.key_allowed_cidrs = outcome->allowed_cidrs;
  principal.key_rate_limit_per_minute = outcome->rate_limit_per_minute;
  principal.key_external_id = outcome->external_id;
  principal.key_previous_secret_of = outcome->previous_secret_of;
  if (outcome->rate_limits != nullptr) {
    principal.key_rate_limits = *outcome->rate_limits;
  }
  return principal;
}

}  // namespace lumo::rpc
