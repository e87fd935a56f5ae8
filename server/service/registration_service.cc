#include "server/service/registration_service.h"

#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/core/validation.h"
#include "server/service/client_validation.h"
#include "server/service/key_service.h"

namespace lumo::service {
namespace {

absl::Status NotAllowed() {
  return WithErrorKind(
      absl::PermissionDeniedError(
          "dynamic client registration is not enabled for this tenant"),
      ErrorKind::kRegistrationClosed);
}

}  // namespace

storage::ClientFields RegistrationFields(const RegistrationRequest& request) {
  storage::ClientFields f;
  f.name = request.client_name;
  f.redirect_uris = request.redirect_uris;
  f.post_logout_redirect_uris = request.post_logout_redirect_uris;
  f.scopes = absl::StrSplit(request.scope, ' ', absl::SkipEmpty());
  f.grant_types = request.grant_types.empty()
                      ? std::vector<std::string>{"authorization_code"}
                      : request.grant_types;
  if (!request.response_types.empty()) {
    f.response_types = request.response_types;
  } else {
    for (const std::string& g : f.grant_types) {
      if (g == "authorization_code") f.response_types = {"code"};
    }
  }
  f.application_type =
      request.application_type.empty() ? "web" : request.application_type;
  f.token_endpoint_auth_method = request.token_endpoint_auth_method.empty()
                                     ? "client_secret_basic"
                                     : request.token_endpoint_auth_method;
  f.client_uri = request.client_uri;
  f.logo_uri = request.logo_uri;
  f.pkce_required = true;
  return f;
}

RegistrationService::RegistrationService(storage::KeyStore* tenants,
                                         storage::ClientStore* store,
                                         ClientService* clients,
                                         IpRateLimiterOptions anonymous_limit)
    : tenants_(tenants),
      store_(store),
      clients_(clients),
      anonymous_limiter_(std::move(anonymous_limit)) {}

absl::StatusOr<ClientWithSecret> RegistrationService::Register(
    const Principal& caller, const RequestInfo& info,
    absl::string_view tenant_slug, const RegistrationRequest& request) {
  storage::ClientFields fields = RegistrationFields(request);
  if (request.redirect_uris.empty()) {
    return WithErrorKind(
        InvalidField("redirect_uris", "at least one is required"),
        ErrorKind::kInvalidRedirectUri);
  }
  if (absl::Status s = ValidateClientFields(fields, FieldNaming::kSnakeCase);
      !s.ok()) {
    return s;
  }

  const bool anonymous = caller.kind == Principal::Kind::kAnonymous;
  int64_t tenant_id = caller.tenant_id;
  if (anonymous) {
    // An unknown tenant answers like a disabled one: nothing tells an
    // anonymous caller which tenants exist.
    if (!core::IsValidSlug(tenant_slug)) return NotAllowed();
    absl::StatusOr<storage::Tenant> tenant =
        tenants_->GetTenantBySlug(tenant_slug);
    if (absl::IsNotFound(tenant.status())) return NotAllowed();
    if (!tenant.ok()) return tenant.status();
    tenant_id = tenant->id;
  } else if (caller.kind != Principal::Kind::kApiKey) {
    return NotAllowed();
  }

  absl::StatusOr<storage::TenantSettings> settings =
      store_->GetSettings(tenant_id);
  if (!settings.ok()) return settings.status();
  if (!settings->dynamic_registration.enabled) return NotAllowed();
  if (anonymous && settings->dynamic_registration.require_api_key) {
    return WithErrorKind(
        absl::UnauthenticatedError(
            "this tenant requires an API key with admin:clients to register "
            "clients"),
        ErrorKind::kUnauthenticated);
  }
  if (anonymous) {
    if (std::optional<absl::Duration> wait =
            anonymous_limiter_.Acquire(info.ip_address)) {
      absl::Status limited = WithErrorKind(
          absl::ResourceExhaustedError(
              "too many registrations from this address; retry later"),
          ErrorKind::kRateLimited);
      limited.SetPayload(kRetryAfterPayload,
                         absl::Cord(absl::StrCat(absl::ToInt64Seconds(*wait))));
      return limited;
    }
  }

  absl::StatusOr<ClientWithSecret> created =
      clients_->InsertRegistered(caller, info, tenant_id, std::move(fields));
  if (absl::IsFailedPrecondition(created.status())) {
    // The settings changed between the check above and the insert.
    return NotAllowed();
  }
  return created;
}

}  // namespace lumo::service
