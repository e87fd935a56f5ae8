#include "server/rpc/portal_services.h"

#include <string>

#include "server/core/crypto.h"
#include "server/core/scopes.h"
#include "server/rpc/call.h"
#include "server/service/registration_service.h"

namespace lumo::rpc {
namespace {

using service::Principal;
using service::RequestInfo;

// The one `x-lumo-session` value (the authenticator already required
// exactly one for PRINCIPAL_SESSION methods).
std::string SessionToken(const grpc::CallbackServerContext& context) {
  auto it = context.client_metadata().find("x-lumo-session");
  if (it == context.client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

grpc::ServerUnaryReactor* PortalServiceImpl::Login(
    grpc::CallbackServerContext* context,
    const lumo::portal::v1::LoginRequest* request,
    lumo::portal::v1::LoginResponse* response) {
  static const auto& method = Method("lumo.portal.v1.PortalService.Login");
  // The password check runs on the portal's hashing pool: the worker only
  // reserves the attempt and looks the account up, then is free again.
  return RunAuthenticatedAsync(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, context, request, response](const Principal&,
                                         const RequestInfo& info, auto done) {
        ctx_.portal->LoginAsync(
            request->tenant_slug(), request->email(), request->password(), info,
            [context, response, done = std::move(done)](
                absl::StatusOr<service::LoginResult> result) {
              if (!result.ok()) {
                if (auto wait = result.status().GetPayload(
                        service::kRetryAfterPayload)) {
                  AddTrailingMetadataSafely(context, "retry-after",
                                            std::string(*wait));
                }
                done(result.status());
                return;
              }
              response->mutable_user()->set_id(result->user_id);
              response->mutable_user()->set_email(result->email);
              response->set_session_token(result->session_token);
              response->set_csrf_token(result->csrf_token);
              response->set_idle_timeout_seconds(
                  absl::ToInt64Seconds(result->idle_ttl));
              response->set_absolute_timeout_seconds(
                  absl::ToInt64Seconds(result->absolute_ttl));
              core::Cleanse(result->session_token);
              done(absl::OkStatus());
            });
      });
}

grpc::ServerUnaryReactor* PortalServiceImpl::Logout(
    grpc::CallbackServerContext* context,
    const lumo::portal::v1::LogoutRequest* request,
    google::protobuf::Empty* /*response*/) {
  static const auto& method = Method("lumo.portal.v1.PortalService.Logout");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, context](const Principal& caller,
                      const RequestInfo& info) -> absl::Status {
        return ctx_.portal->Logout(caller, SessionToken(*context), info);
      });
}

grpc::ServerUnaryReactor* PortalServiceImpl::GetSession(
    grpc::CallbackServerContext* context,
    const lumo::portal::v1::GetSessionRequest* request,
    lumo::portal::v1::SessionInfo* response) {
  static const auto& method = Method("lumo.portal.v1.PortalService.GetSession");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [response](const Principal& caller, const RequestInfo&) -> absl::Status {
        response->mutable_user()->set_id(caller.user_id);
        response->mutable_user()->set_email(caller.user_email);
        response->set_tenant_slug(caller.tenant_slug);
        for (const std::string& scope : core::AllScopes()) {
          response->add_grantable_scopes(scope);
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PortalServiceImpl::SetPortalAdmin(
    grpc::CallbackServerContext* context,
    const lumo::portal::v1::SetPortalAdminRequest* request,
    lumo::portal::v1::PortalUser* response) {
  static const auto& method =
      Method("lumo.portal.v1.PortalService.SetPortalAdmin");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal&,
                                const RequestInfo& info) -> absl::Status {
        absl::StatusOr<std::string> user_id =
            ctx_.portal->SetAdmin(request->tenant_slug(), request->email(),
                                  request->password(), info);
        if (!user_id.ok()) return user_id.status();
        response->set_id(*user_id);
        response->set_email(request->email());
        return absl::OkStatus();
      });
}

}  // namespace lumo::rpc
